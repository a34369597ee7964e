"""The order of the gallery: the user guide's order, not the alphabet's."""

import os

ORDER = [
    "plot_xor.py",
    "plot_activations.py",
    "plot_early_stopping.py",
    "plot_regularization.py",
    "plot_augmentation.py",
    "plot_transfer_learning.py",
    "plot_autoencoder.py",
    "plot_recurrent_gradients.py",
    "plot_sine_forecast.py",
    "plot_unequal_lengths.py",
    "plot_grid_search.py",
    "plot_speed.py",
    "plot_onnx_export.py",
]


class GuideOrder:
    """Sort key for sphinx-gallery: listed examples first, in ORDER; then by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        rank = ORDER.index(name) if name in ORDER else len(ORDER)
        return (rank, name)

    def __repr__(self):
        return f"{type(self).__name__}()"

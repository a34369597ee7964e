"""Transfer learning: copy the first layers of a fitted network.

"Train a base network, then copy its first n layers to the first n layers of
a target network; the copied layers are frozen (not updated during backprop)
or fine-tuned (updated)." A layer is a hidden layer's weight matrix and bias;
the output layer is never copied. The source is a fitted sknet
``MLPClassifier``, ``MLPRegressor`` or ``AutoencoderTransformer`` (whose
encoder layers are used), or a recurrent estimator (its recurrent layers:
every weight and bias of a layer), possibly wrapped in
:class:`sklearn.frozen.FrozenEstimator` so that it survives ``clone``.
"""

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

__all__ = ["source_layers", "apply_transfer", "transfer_lr_scale"]


def _unwrap(source):
    """The fitted sknet network behind ``source`` (FrozenEstimator unwrapped)."""
    inner = source
    if type(source).__name__ == "FrozenEstimator":
        inner = source.estimator
    from ._base import BaseNetworkEstimator

    if not isinstance(inner, BaseNetworkEstimator):
        raise TypeError(
            "transfer_from must be a fitted sknet MLPClassifier, MLPRegressor, "
            "AutoencoderTransformer, RecurrentClassifier or RecurrentRegressor (or a "
            f"FrozenEstimator of one); got {type(inner).__name__}."
        )
    try:
        check_is_fitted(inner, "coefs_")
    except NotFittedError:
        raise ValueError(
            "transfer_from holds an unfitted estimator. scikit-learn's clone (and so "
            "GridSearchCV) replaces an estimator parameter by an unfitted copy: wrap "
            "the fitted source in sklearn.frozen.FrozenEstimator(source) to keep it."
        ) from None
    return inner


def source_layers(source):
    """The arrays of each of the source's transferable layers (weights, bias, ...)."""
    inner = _unwrap(source)
    return [inner._transferable_layer(i) for i in range(inner._n_transferable_layers())]


def n_layers_to_copy(source, n_transfer_layers, n_target_hidden):
    """How many layers to copy, checked against the source and the target."""
    available = len(source_layers(source))
    n = available if n_transfer_layers is None else n_transfer_layers
    if n > available:
        raise ValueError(
            f"n_transfer_layers={n} but the source has only {available} "
            "transferable hidden layers."
        )
    if n > n_target_hidden:
        raise ValueError(
            f"n_transfer_layers={n} but this network has only {n_target_hidden} "
            "hidden layers (the output layer is never copied)."
        )
    return n


def apply_transfer(network, source, n):
    """Copy the source's first ``n`` layers into ``network`` (shapes checked)."""
    for i, arrays in enumerate(source_layers(source)[:n]):
        targets = network.layer_arrays(i)
        shapes = [np.shape(a) for a in arrays]
        if shapes != [t.shape for t in targets]:
            raise ValueError(
                f"Cannot copy layer {i} of the source, of shapes {shapes}, into layer "
                f"{i} of this network, of shapes {[t.shape for t in targets]}: set "
                "hidden_layer_sizes (and for recurrent networks cell and "
                "bidirectional) so that the copied layers have the source's sizes."
            )
        for target, array in zip(targets, arrays):
            target[...] = array


def transfer_lr_scale(network, n, factor):
    """Per-parameter step factors: ``factor`` on the first ``n`` layers, else 1."""
    if n == 0 or factor == 1.0:
        return None
    scale = np.ones_like(network.params)
    scale[:network.layer_slice(n - 1).stop] = factor
    return scale

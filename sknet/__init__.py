"""sknet: neural-network estimators that are scikit-learn citizens."""

from ._autoencoder import AutoencoderTransformer
from ._core.activations import register_activation
from ._mlp import MLPClassifier, MLPRegressor
from ._perceptron import Perceptron, PerceptronClassifier
from ._recurrent import RecurrentClassifier, RecurrentRegressor, as_sequences
from ._version import __version__

__all__ = [
    "AutoencoderTransformer",
    "MLPClassifier",
    "MLPRegressor",
    "Perceptron",
    "PerceptronClassifier",
    "RecurrentClassifier",
    "RecurrentRegressor",
    "as_sequences",
    "register_activation",
    "__version__",
]

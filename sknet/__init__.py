"""sknet: neural-network estimators that are scikit-learn citizens."""

from ._core.activations import register_activation
from ._mlp import MLPClassifier, MLPRegressor

from ._version import __version__

__all__ = ["MLPClassifier", "MLPRegressor", "register_activation", "__version__"]

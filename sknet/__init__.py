"""sknet: neural-network estimators that are scikit-learn citizens."""

from ._core.activations import register_activation
from ._mlp import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "register_activation", "__version__"]

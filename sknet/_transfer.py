"""Transfer learning: copy the first layers of a fitted network.

"Train a base network, then copy its first n layers to the first n layers of
a target network; the copied layers are frozen (not updated during backprop)
or fine-tuned (updated)." A layer is a hidden layer's weight matrix and bias;
the output layer is never copied. The source is a fitted sknet
``MLPClassifier``, ``MLPRegressor`` or ``AutoencoderTransformer`` (whose
encoder layers are used), a recurrent estimator (its recurrent layers:
every weight and bias of a layer), or scikit-learn's own fitted
``MLPClassifier`` or ``MLPRegressor``, possibly wrapped in
:class:`sklearn.frozen.FrozenEstimator` so that it survives ``clone``.
"""

import inspect

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier as _SklearnMLPClassifier
from sklearn.neural_network import MLPRegressor as _SklearnMLPRegressor
from sklearn.utils.validation import check_is_fitted

__all__ = ["source_layers", "apply_transfer", "transfer_lr_scale"]

_SKLEARN_MLPS = (_SklearnMLPClassifier, _SklearnMLPRegressor)


def _unwrap(source):
    """The fitted network behind ``source`` (FrozenEstimator unwrapped)."""
    inner = source
    if type(source).__name__ == "FrozenEstimator":
        inner = source.estimator
    from ._base import BaseNetworkEstimator

    if not isinstance(inner, (BaseNetworkEstimator, *_SKLEARN_MLPS)):
        raise TypeError(
            "transfer_from must be a fitted sknet MLPClassifier, MLPRegressor, "
            "AutoencoderTransformer, RecurrentClassifier or RecurrentRegressor, or "
            "scikit-learn's MLPClassifier or MLPRegressor (or a FrozenEstimator of "
            f"one); got {type(inner).__module__}.{type(inner).__name__}."
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
    if isinstance(inner, _SKLEARN_MLPS):
        return list(zip(inner.coefs_[:-1], inner.intercepts_[:-1]))  # its hidden layers
    return [inner._transferable_layer(i) for i in range(inner._n_transferable_layers())]


def _copies(n_transfer_layers, n):
    """What ``n_transfer_layers`` asks for, saying so when it is the default."""
    if n_transfer_layers is None:
        return (f"n_transfer_layers=None (the default) copies every transferable "
                f"hidden layer of the source ({n})")
    return f"n_transfer_layers={n_transfer_layers}"


def _layers(n, noun):
    """``n`` and ``noun``, plural unless ``n`` is 1."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def n_layers_to_copy(source, n_transfer_layers, n_target_hidden):
    """How many layers to copy, checked against the source and the target."""
    available = len(source_layers(source))
    n = available if n_transfer_layers is None else n_transfer_layers
    if n > available:
        raise ValueError(
            f"{_copies(n_transfer_layers, n)} but the source has only "
            f"{_layers(available, 'transferable hidden layer')}."
        )
    if n > n_target_hidden:
        raise ValueError(
            f"{_copies(n_transfer_layers, n)} but this network has only "
            f"{_layers(n_target_hidden, 'hidden layer')} (the output layer is never copied): "
            "set n_transfer_layers, or add hidden layers with hidden_layer_sizes."
        )
    return n


def _setting(estimator, name):
    """``name=value``, followed by "(the default)" when the user left it so."""
    value = getattr(estimator, name)
    default = inspect.signature(type(estimator).__init__).parameters[name].default
    try:
        is_default = type(value) is type(default) and bool(value == default)
    except (TypeError, ValueError):  # values without a plain equality
        is_default = False
    return f"{name}={value!r}" + (" (the default)" if is_default else "")


def apply_transfer(network, source, n, estimator=None):
    """Copy the source's first ``n`` layers into ``network`` (shapes checked).

    ``estimator``, the target, lets a shape error quote the parameters that
    gave the network its sizes, and say which of them are defaults.
    """
    for i, arrays in enumerate(source_layers(source)[:n]):
        targets = network.layer_arrays(i)
        shapes = [np.shape(a) for a in arrays]
        if shapes != [t.shape for t in targets]:
            sizes = "hidden_layer_sizes" if estimator is None else \
                _setting(estimator, "hidden_layer_sizes")
            copies = "" if estimator is None else \
                f" ({_copies(estimator.n_transfer_layers, n)})"
            raise ValueError(
                f"Cannot copy layer {i} of the source, of shapes {shapes}, into layer "
                f"{i} of this network, of shapes {[t.shape for t in targets]}, built "
                f"from {sizes}{copies}: set hidden_layer_sizes (and for recurrent "
                "networks cell and bidirectional) so that the copied layers have the "
                "source's sizes, or copy fewer layers with n_transfer_layers."
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

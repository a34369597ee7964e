"""Weight initialization schemes, from (fan_in, fan_out, rng).

``"sklearn"`` reproduces scikit-learn's MLP initialization draw for draw:
weights and biases uniform in ``±sqrt(factor / (fan_in + fan_out))`` with
``factor = 2`` for a logistic layer and 6 otherwise, weights drawn before
biases from the same ``RandomState``. The other schemes draw weights only and
start biases at zero:

==================  ===========================================
glorot_uniform      U(±sqrt(6 / (fan_in + fan_out)))
glorot_normal       N(0, 2 / (fan_in + fan_out))
he_uniform          U(±sqrt(6 / fan_in))
he_normal           N(0, 2 / fan_in)
lecun_uniform       U(±sqrt(3 / fan_in))
lecun_normal        N(0, 1 / fan_in)
==================  ===========================================

``"auto"`` picks by the layer's activation: Glorot for logistic, tanh,
identity and softmax, He for the relu family and elu, LeCun for selu.
"""

import numpy as np

__all__ = ["INITIALIZERS", "initialize_layer", "resolve_initializer"]

_VARIANCE = {  # scheme -> variance as a function of (fan_in, fan_out)
    "glorot": lambda fi, fo: 2.0 / (fi + fo),
    "he": lambda fi, fo: 2.0 / fi,
    "lecun": lambda fi, fo: 1.0 / fi,
}

INITIALIZERS = ("sklearn", "auto") + tuple(
    f"{scheme}_{dist}" for scheme in _VARIANCE for dist in ("uniform", "normal")
)

_AUTO = {
    "relu": "he_normal",
    "leaky_relu": "he_normal",
    "elu": "he_normal",
    "selu": "lecun_normal",
}


def resolve_initializer(name, activation_name):
    """Return the concrete scheme ``name`` means for a layer's activation."""
    if name not in INITIALIZERS:
        raise ValueError(
            f"Unknown weight_init {name!r}; choose one of {list(INITIALIZERS)}."
        )
    if name == "auto":
        return _AUTO.get(activation_name, "glorot_uniform")
    return name


def initialize_layer(name, fan_in, fan_out, rng, dtype, activation_name="relu"):
    """Draw one layer's weights and biases.

    Parameters
    ----------
    name : str
        One of :data:`INITIALIZERS`.
    fan_in, fan_out : int
        The layer's input and output widths.
    rng : numpy.random.RandomState or numpy.random.Generator
    dtype : numpy dtype
    activation_name : str
        The activation of the layer being initialized.

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out)
    b : ndarray of shape (fan_out,)
    """
    name = resolve_initializer(name, activation_name)
    if name == "sklearn":
        factor = 2.0 if activation_name == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        W = rng.uniform(-bound, bound, (fan_in, fan_out))
        b = rng.uniform(-bound, bound, fan_out)
        return W.astype(dtype, copy=False), b.astype(dtype, copy=False)
    scheme, dist = name.split("_")
    variance = _VARIANCE[scheme](fan_in, fan_out)
    if dist == "uniform":
        bound = np.sqrt(3.0 * variance)
        W = rng.uniform(-bound, bound, (fan_in, fan_out))
    else:
        W = rng.normal(0.0, np.sqrt(variance), (fan_in, fan_out))
    return W.astype(dtype, copy=False), np.zeros(fan_out, dtype=dtype)

"""Activation functions: a forward map and its derivative, found by name.

Every activation is an :class:`Activation` holding two small functions:

* ``forward(z)`` overwrites the pre-activation ``z`` with ``f(z)`` and returns it;
* ``backward(a, grad)`` overwrites ``grad`` (the gradient with respect to the
  activation's output) with the gradient with respect to its input, using the
  output ``a = f(z)`` only. Writing derivatives from the output lets the network
  keep one buffer per layer.

An activation whose derivative needs the input ``z`` instead of the output can
be registered with ``derivative_of="input"``; the network then keeps a copy of
``z`` for that layer.

All built-in functions are computed without overflow for inputs up to the
largest finite value of their dtype: ``scipy.special.expit`` for the logistic,
a max-shifted softmax, ``expm1`` on the negative part only for elu/selu, and a
saturating exponential.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from scipy.special import expit

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "register_activation",
]

# SELU constants (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    """An activation function with its derivative.

    Parameters
    ----------
    name : str
        Name under which the activation is registered.
    forward : callable
        ``forward(z) -> a``; may (and for speed should) work in place.
    backward : callable
        ``backward(a_or_z, grad) -> grad``; multiplies ``grad`` by the
        derivative, in place where possible.
    derivative_of : {"output", "input"}
        Whether ``backward`` receives the activation's output or its input.
    elementwise : bool
        False for activations, like softmax, whose Jacobian is not diagonal.
    params : dict
        The parameters the functions were built with (for example a slope).
    masked : tuple of two callables or None
        An optional faster pair for hidden layers in training,
        ``(forward(z, mask) -> a, backward(mask, grad) -> grad)``: the forward
        pass records a ``mask`` (an array like ``z``) from which the backward
        pass takes the derivative (relu's is the mask itself).
    kernel : tuple or None
        ``(formula, p1, p2)`` for the built-in activations that the compiled
        training step (:mod:`sknet._core._dense_fast`) computes itself: the
        formula's name and its two parameters (leaky_relu's slope; elu's and
        selu's alpha and scale). None for the others, registered ones
        included, which the numpy layers compute.
    """

    name: str
    forward: Callable
    backward: Callable
    derivative_of: str = "output"
    elementwise: bool = True
    params: dict = field(default_factory=dict)
    masked: Optional[tuple] = None
    kernel: Optional[tuple] = None


# --------------------------------------------------------------------------- #
# forward maps (in place)                                                      #
# --------------------------------------------------------------------------- #
def _identity(z):
    return z


def _logistic(z):
    return expit(z, out=z)


def _tanh(z):
    return np.tanh(z, out=z)


def _relu(z):
    return np.maximum(z, 0, out=z)


def _saturating_exp(z):
    # exp is clipped just below the overflow threshold of the dtype: the
    # output saturates at a huge finite value instead of becoming inf.
    upper = np.log(np.finfo(z.dtype).max) - 1.0
    np.minimum(z, upper, out=z)
    return np.exp(z, out=z)


def _softmax(z):
    if z.shape[1] > 32:
        z -= np.maximum.reduce(z, axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= np.add.reduce(z, axis=1, keepdims=True)
        return z
    # numpy reduces slowly along short contiguous rows (a few classes), so
    # the shift and the normalization are done on a transposed copy, where
    # each reduction runs over whole contiguous rows: 2x faster for 10 classes.
    zT = np.ascontiguousarray(z.T)
    zT -= np.maximum.reduce(zT, axis=0)
    np.exp(zT, out=zT)
    zT /= np.add.reduce(zT, axis=0)
    np.copyto(z, zT.T)
    return z


def _make_leaky_relu(negative_slope):
    def forward(z):
        return np.multiply(z, negative_slope, out=z, where=z < 0)

    def backward(a, grad):
        # a <= 0 exactly where z <= 0 because the slope is positive. At the kink
        # the slope is taken, as relu takes 0 there: the limit of a slope of 0.
        return np.multiply(grad, negative_slope, out=grad, where=a <= 0)

    return forward, backward


def _make_elu(alpha, scale=1.0):
    def forward(z):
        neg = np.minimum(z, 0)
        np.expm1(neg, out=neg)
        neg *= alpha * scale
        np.maximum(z, 0, out=z)
        if scale != 1.0:
            z *= scale
        z += neg
        return z

    def backward(a, grad):
        # f'(z) = scale for z > 0, and f(z) + scale * alpha for z <= 0.
        d = a + scale * alpha
        np.copyto(d, scale, where=a > 0)
        grad *= d
        return grad

    return forward, backward


# --------------------------------------------------------------------------- #
# derivatives from the output (in place on grad)                               #
# --------------------------------------------------------------------------- #
def _identity_backward(a, grad):
    return grad


def _logistic_backward(a, grad):
    grad *= a
    grad *= 1 - a
    return grad


def _tanh_backward(a, grad):
    grad *= 1 - a * a
    return grad


def _relu_backward(a, grad):
    return np.multiply(grad, a > 0, out=grad)


# relu with a recorded mask, a 0/1 array of the layer's dtype: comparing,
# then multiplying by the mask, is faster than np.maximum, and the backward
# pass multiplies by the same mask instead of comparing again.
def _relu_masked(z, mask):
    np.greater(z, 0, out=mask)  # 0/1 in the mask's dtype, no temporary
    return np.multiply(z, mask, out=z)


def _relu_masked_backward(mask, grad):
    return np.multiply(grad, mask, out=grad)


def _exp_backward(a, grad):
    grad *= a
    return grad


def _softmax_backward(p, grad):
    # Full Jacobian-vector product: J = diag(p) - p p^T, so
    # J^T g = p * (g - sum(g * p)).
    dot = np.einsum("ij,ij->i", grad, p)[:, None]
    grad -= dot
    grad *= p
    return grad


ACTIVATIONS = {}


def _in_place(function):
    """Wrap a user's ``function`` so that its result always lands in ``z``.

    The network reads a layer's output back from the buffer it passed in as
    ``z`` (derivatives are written from the output), so a function that
    returns a new array must still leave ``f(z)`` in that buffer. Writing
    into ``z`` also keeps the network's dtype.
    """

    def forward(z):
        a = function(z)
        if a is not z:
            z[...] = a
        return z

    forward.__wrapped__ = function
    return forward


def register_activation(name, function, derivative, *, derivative_of="output",
                        elementwise=True, overwrite=False):
    """Register a custom activation under ``name``.

    Parameters
    ----------
    name : str
        The name estimators will accept, for example ``activation="swish"``.
    function : callable
        ``function(z) -> a``. It may work in place on ``z``.
    derivative : callable
        ``derivative(x, grad) -> grad * f'(...)`` where ``x`` is the output
        ``a`` (``derivative_of="output"``) or the input ``z``
        (``derivative_of="input"``). It may work in place on ``grad``.
    derivative_of : {"output", "input"}, default="output"
        What ``derivative`` receives.
    elementwise : bool, default=True
        Whether the activation acts on each unit alone.
    overwrite : bool, default=False
        Allow replacing an activation that is already registered.

    Returns
    -------
    activation : Activation

    Examples
    --------
    >>> import numpy as np
    >>> from sknet import register_activation
    >>> act = register_activation(
    ...     "softsign_demo",
    ...     lambda z: z / (1 + np.abs(z)),
    ...     lambda z, g: g / (1 + np.abs(z)) ** 2,
    ...     derivative_of="input",
    ... )
    >>> act.name
    'softsign_demo'
    """
    if not isinstance(name, str) or not name:
        raise ValueError("An activation name must be a non-empty string.")
    if name in ACTIVATIONS and not overwrite:
        raise ValueError(
            f"An activation named {name!r} is already registered; "
            "pass overwrite=True to replace it."
        )
    if derivative_of not in ("output", "input"):
        raise ValueError(
            f"derivative_of must be 'output' or 'input', got {derivative_of!r}."
        )
    if not callable(function) or not callable(derivative):
        raise TypeError("function and derivative must both be callables.")
    act = Activation(name, _in_place(function), derivative, derivative_of, elementwise)
    ACTIVATIONS[name] = act
    return act


def _register_builtins():
    for name, fwd, bwd in [
        ("identity", _identity, _identity_backward),
        ("logistic", _logistic, _logistic_backward),
    ]:
        ACTIVATIONS[name] = Activation(name, fwd, bwd, kernel=(name, 0.0, 0.0))
    # The compiled step computes tanh with the C library's tanh, which may
    # round differently from numpy's by an ulp or so.
    ACTIVATIONS["tanh"] = Activation("tanh", _tanh, _tanh_backward,
                                     kernel=("tanh", 0.0, 0.0))
    ACTIVATIONS["exp"] = Activation("exp", _saturating_exp, _exp_backward)
    ACTIVATIONS["relu"] = Activation("relu", _relu, _relu_backward,
                                     masked=(_relu_masked, _relu_masked_backward),
                                     kernel=("relu", 0.0, 0.0))
    ACTIVATIONS["softmax"] = Activation(
        "softmax", _softmax, _softmax_backward, elementwise=False,
        kernel=("softmax", 0.0, 0.0),
    )
    ACTIVATIONS["leaky_relu"] = _parametrized("leaky_relu", negative_slope=0.01)
    ACTIVATIONS["elu"] = _parametrized("elu", alpha=1.0)
    ACTIVATIONS["selu"] = _parametrized("selu")


def _parametrized(name, **params):
    if name == "leaky_relu":
        fwd, bwd = _make_leaky_relu(params["negative_slope"])
        kernel = ("leaky_relu", params["negative_slope"], 0.0)
    elif name == "elu":
        fwd, bwd = _make_elu(params["alpha"])
        kernel = ("elu", params["alpha"], 1.0)
    else:  # selu
        fwd, bwd = _make_elu(SELU_ALPHA, SELU_SCALE)
        kernel = ("elu", SELU_ALPHA, SELU_SCALE)
    return Activation(name, fwd, bwd, params=params, kernel=kernel)


_BUILTIN_PARAMS = {"leaky_relu": "negative_slope", "elu": "alpha"}


def get_activation(name, **params):
    """Return the activation registered as ``name``.

    Parameters
    ----------
    name : str
        A registered activation name.
    **params
        ``negative_slope`` for ``"leaky_relu"`` (default 0.01) and ``alpha``
        for ``"elu"`` (default 1.0); other activations take none and ignore
        the ones that are not theirs.

    Returns
    -------
    activation : Activation
    """
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}; known activations are "
            f"{sorted(ACTIVATIONS)}."
        )
    key = _BUILTIN_PARAMS.get(name)
    if key is not None and key in params:
        value = float(params[key])
        if name == "leaky_relu" and not value > 0:
            raise ValueError(f"The leaky_relu slope must be > 0, got {value}.")
        if name == "elu" and not value > 0:
            raise ValueError(f"The elu alpha must be > 0, got {value}.")
        return _parametrized(name, **{key: value})
    return ACTIVATIONS[name]


_register_builtins()

"""Loss functions: a value and the gradient at the network's output.

Each :class:`Loss` gives

* ``value(Y, P, sample_weight)``: the per-sample loss summed over outputs,
  averaged over samples with the sample weights (as scikit-learn's MLP does);
* ``data_scale``: the factor the training loops put on ``value`` where they
  report the loss (1, except for a loss reported as scikit-learn's
  multi-output squared error is, see :func:`with_data_scale`);
* ``gradient(Y, P)``: dL_i/dP for each sample, for the general chain rule;
* ``canonical``: the output activation for which the gradient with respect to
  the output layer's pre-activation collapses to ``P - Y`` (the canonical link).

:func:`output_delta` uses the fused ``P - Y`` for a canonical pair and the
general chain rule through the activation's derivative for any other pair.
"""

from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np
from scipy.special import xlogy

__all__ = ["Loss", "LOSSES", "get_loss", "with_data_scale", "output_delta",
           "kernel_output"]


_EPS = {c: float(np.finfo(c).eps) for c in "fd"}  # looked up once, not per batch


def _clip_probabilities(P):
    """A copy of ``P`` clipped to [eps, 1 - eps] (as scikit-learn clips)."""
    eps = _EPS.get(P.dtype.char) or float(np.finfo(P.dtype).eps)
    return np.clip(P, eps, 1 - eps)


def _average(per_sample, sample_weight):
    if sample_weight is None:
        return float(np.sum(per_sample)) / per_sample.shape[0]
    return float(np.dot(per_sample, sample_weight) / np.sum(sample_weight))


def _squared_value(Y, P, sample_weight):
    diff = P - Y
    if sample_weight is None:
        return 0.5 * float(np.vdot(diff, diff)) / Y.shape[0]
    return 0.5 * _average(np.einsum("ij,ij->i", diff, diff), sample_weight)


def _squared_gradient(Y, P):
    return P - Y


def _log_value(Y, P, sample_weight):
    if P.shape[1] == 1:  # one logistic unit: the two-class log-loss
        return _binary_log_value(Y, P, sample_weight)
    logP = _clip_probabilities(P)
    np.log(logP, out=logP)
    if sample_weight is None:
        return -float(np.vdot(Y, logP)) / Y.shape[0]
    return _average(-np.einsum("ij,ij->i", Y, logP), sample_weight)


def _log_gradient(Y, P):
    P = _clip_probabilities(P)
    if P.shape[1] == 1:
        return _binary_log_gradient(Y, P)
    return -Y / P


def _binary_log_value(Y, P, sample_weight):
    P = _clip_probabilities(P)
    per_sample = -(xlogy(Y, P) + xlogy(1 - Y, 1 - P)).sum(axis=1)
    return _average(per_sample, sample_weight)


def _binary_log_gradient(Y, P):
    P = _clip_probabilities(P)
    return (P - Y) / (P * (1 - P))


def _poisson_value(Y, P, sample_weight):
    # Half Poisson deviance, as scikit-learn's MLPRegressor(loss="poisson").
    log_P = np.log(np.maximum(P, np.finfo(P.dtype).tiny))
    per_sample = (xlogy(Y, Y) - Y * log_P - Y + P).sum(axis=1)
    return _average(per_sample, sample_weight)


def _poisson_gradient(Y, P):
    return 1 - Y / np.maximum(P, np.finfo(P.dtype).tiny)


@dataclass(frozen=True)
class Loss:
    """A loss function and the output activation it pairs with canonically.

    Parameters
    ----------
    name : str
    value : callable
        ``value(Y, P, sample_weight) -> float``.
    gradient : callable
        ``gradient(Y, P) -> dL/dP`` per sample (not averaged, not weighted).
    canonical : str or None
        The output activation whose pairing gives the delta ``P - Y``.
    data_scale : float, default=1.0
        The factor on ``value`` in the loss a network returns with its
        gradient (and so in the loss the fit reports and its stopping rule
        watches), never on the gradient itself.
    """

    name: str
    value: Callable
    gradient: Callable
    canonical: Optional[str]
    data_scale: float = 1.0

    def scaled_value(self, Y, P, sample_weight=None):
        """``data_scale * value(Y, P, sample_weight)``: the data term of the loss a
        network returns with its gradient."""
        return self.data_scale * float(self.value(Y, P, sample_weight))


LOSSES = {
    "squared_error": Loss("squared_error", _squared_value, _squared_gradient,
                          "identity"),
    "log_loss": Loss("log_loss", _log_value, _log_gradient, "softmax"),
    "binary_log_loss": Loss("binary_log_loss", _binary_log_value,
                            _binary_log_gradient, "logistic"),
    "poisson": Loss("poisson", _poisson_value, _poisson_gradient, "exp"),
}


def get_loss(name):
    """Return the loss registered as ``name``."""
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; known losses are {sorted(LOSSES)}.")
    return LOSSES[name]


def with_data_scale(loss, data_scale):
    """``loss`` whose value the networks return ``data_scale`` times as large.

    The gradient stays that of ``loss.value``. scikit-learn's MLP reports the
    squared error with ``k`` outputs as ``0.5 * mean_ij (P_ij - Y_ij)^2``: its
    mean over the outputs, ``1 / k`` of the objective whose gradient it
    follows (and hands that pair to L-BFGS). ``with_data_scale(loss, 1 / k)``
    reports and stops on the same values.
    """
    return replace(loss, data_scale=float(data_scale))


def is_canonical(loss, activation):
    """Whether ``loss`` paired with ``activation`` has the delta ``P - Y``."""
    if loss.canonical == activation.name:
        return True
    # A single logistic unit is the two-class softmax.
    return loss.name == "log_loss" and activation.name == "logistic"


_KERNEL_OUTPUTS = {  # (loss value, output formula) -> the compiled output kernel
    (_squared_value, "identity"): "squared_error",
    (_log_value, "softmax"): "log_loss",
    (_log_value, "logistic"): "binary_log_loss",
    (_binary_log_value, "logistic"): "binary_log_loss",
}


def kernel_output(loss, activation, n_outputs):
    """The compiled step's name for a canonical output pair, or None.

    ``"squared_error"``, ``"log_loss"`` (softmax) or ``"binary_log_loss"``
    (logistic units, or log-loss on a single output, which is the two-class
    case): the pairs whose delta is ``P - Y`` and whose loss
    :mod:`sknet._core._dense_fast` sums alongside it. Only built-in losses
    and activations qualify.
    """
    if activation.kernel is None:
        return None
    name = _KERNEL_OUTPUTS.get((loss.value, activation.kernel[0]))
    if name == "log_loss" and n_outputs == 1:
        return "binary_log_loss"
    return name


def output_delta(loss, activation, Y, P, Z=None, out=None, fused=None):
    """Gradient of the per-sample loss with respect to the output pre-activation.

    Parameters
    ----------
    loss : Loss
    activation : Activation
        The output activation.
    Y, P : ndarray of shape (n_samples, n_outputs)
        Targets and the network's output.
    Z : ndarray, default=None
        The output pre-activation, needed only by activations registered with
        ``derivative_of="input"``.
    out : ndarray, default=None
        Where to write the result.
    fused : bool, default=None
        Force (True) or forbid (False) the fused canonical delta ``P - Y``;
        by default it is used exactly for canonical pairs.

    Returns
    -------
    delta : ndarray of shape (n_samples, n_outputs)
    """
    if fused is None:
        fused = is_canonical(loss, activation)
    if fused:
        return np.subtract(P, Y, out=out)
    grad = loss.gradient(Y, P)
    if out is not None:
        out[...] = grad
        grad = out
    x = P if activation.derivative_of == "output" else Z
    return activation.backward(x, grad)

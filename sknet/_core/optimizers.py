"""Optimizers that step one flat parameter vector in place.

An optimizer only steps: the schedule decides the learning rate and the
stopping rule decides when to stop. State is plain arrays and numbers
(``state()`` / ``set_state()``), so it can be saved, restored after an
interrupted epoch, and carried across ``partial_fit`` calls.

Both follow scikit-learn's MLP update rules exactly:

* SGD: ``v <- momentum * v - lr * g``; the step is ``v`` or, with Nesterov,
  ``momentum * v - lr * g``.
* Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``, and the step
  ``-lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``.
"""

import numpy as np
from scipy.linalg import blas


def _blas(dtype):
    """In-place ``y += a * x`` and ``x *= a`` for ``dtype`` (one pass each)."""
    return blas.get_blas_funcs(("axpy", "scal"), dtype=np.dtype(dtype))

__all__ = ["SGD", "Adam", "make_optimizer"]


class SGD:
    """Stochastic gradient descent with (Nesterov) momentum."""

    def __init__(self, n_params, dtype, momentum=0.9, nesterov=True):
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity = np.zeros(n_params, dtype=dtype)

    def step(self, params, grad, lr, scale=None):
        """Update ``params`` in place from ``grad`` at learning rate ``lr``.

        ``scale`` (an array broadcastable to ``params``, or None) multiplies the
        step, for per-layer learning-rate factors.
        """
        v = self.velocity[self.velocity.size - params.size:]
        v *= self.momentum
        v -= lr * grad
        if self.nesterov:
            update = self.momentum * v
            update -= lr * grad
        else:
            update = v if scale is None else v.copy()
        if scale is not None:
            update *= scale
        params += update

    def state(self):
        return {"velocity": self.velocity.copy()}

    def set_state(self, state):
        self.velocity[...] = state["velocity"]


class Adam:
    """Adam (Kingma and Ba, 2014), as scikit-learn's MLP applies it."""

    def __init__(self, n_params, dtype, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0
        self.m = np.zeros(n_params, dtype=dtype)
        self.v = np.zeros(n_params, dtype=dtype)
        self._tmp = np.zeros(n_params, dtype=dtype)
        self._axpy, self._scal = _blas(dtype)

    def step(self, params, grad, lr, scale=None):
        """Update ``params`` in place (see :meth:`SGD.step`)."""
        start = self.m.size - params.size
        m, v, tmp = self.m[start:], self.v[start:], self._tmp[start:]
        axpy, scal = self._axpy, self._scal
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        scal(b1, m)
        axpy(grad, m, a=1 - b1)
        np.multiply(grad, grad, out=tmp)
        scal(b2, v)
        axpy(tmp, v, a=1 - b2)
        lr_t = lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        np.sqrt(v, out=tmp)
        np.add(tmp, self.epsilon, out=tmp)
        np.divide(m, tmp, out=tmp)
        if scale is not None:
            tmp *= scale
        axpy(tmp, params, a=-lr_t)

    def state(self):
        return {"t": self.t, "m": self.m.copy(), "v": self.v.copy()}

    def set_state(self, state):
        self.t = int(state["t"])
        self.m[...] = state["m"]
        self.v[...] = state["v"]


def make_optimizer(solver, n_params, dtype, *, momentum=0.9, nesterov=True,
                   beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """Build the optimizer named ``solver`` ("sgd" or "adam")."""
    if solver == "sgd":
        return SGD(n_params, dtype, momentum, nesterov)
    if solver == "adam":
        return Adam(n_params, dtype, beta_1, beta_2, epsilon)
    raise ValueError(f"Unknown stochastic solver {solver!r}; use 'sgd' or 'adam'.")

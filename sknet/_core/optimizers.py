"""Optimizers that step one flat parameter vector in place.

An optimizer only steps: the schedule decides the learning rate and the
stopping rule decides when to stop. State is plain arrays and numbers
(``state()`` / ``set_state()``), so it can be saved and carried across
``partial_fit`` calls.

Both follow scikit-learn's MLP update rules exactly:

* SGD: ``v <- momentum * v - lr * g``; the step is ``v`` or, with Nesterov,
  ``momentum * v - lr * g``.
* Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``, and the step
  ``-lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``.
"""

import math

import numpy as np

from .blas import axpy_for

__all__ = ["SGD", "Adam", "make_optimizer"]


class SGD:
    """Stochastic gradient descent with (Nesterov) momentum."""

    def __init__(self, n_params, dtype, momentum=0.9, nesterov=True, fast_blas=False):
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity = np.zeros(n_params, dtype=dtype)
        # Nesterov's mu * v term: one BLAS axpy, or numpy with a temporary
        self._axpy = axpy_for(dtype, fast_blas)

    def step(self, params, grad, lr, scale=None, overwrite_grad=False):
        """Update ``params`` in place from ``grad`` at learning rate ``lr``.

        ``scale`` (an array broadcastable to ``params``, or None) multiplies the
        step, for per-layer learning-rate factors. With ``overwrite_grad`` the
        step is computed in ``grad``'s memory (the training loop's choice: it
        saves a parameter-sized buffer); otherwise ``grad`` is left as it was.
        """
        start = self.velocity.size - params.size
        v = self.velocity[start:]
        step = grad if overwrite_grad else grad.copy()
        mu = self.momentum
        step *= float(lr)  # lr * g
        v *= mu
        v -= step
        if self.nesterov:
            step *= -1.0
            self._axpy(v, step, mu)  # mu * v - lr * g
        else:
            step[...] = v
        if scale is not None:
            step *= scale
        params += step

    def state(self):
        return {"velocity": self.velocity.copy()}

    def is_finite(self):
        return bool(np.isfinite(self.velocity).all())

    def reset(self):
        """Forget the velocity, as a fresh optimizer."""
        self.velocity[...] = 0

    def set_state(self, state):
        self.velocity[...] = state["velocity"]


class Adam:
    """Adam (Kingma and Ba, 2014), as scikit-learn's MLP applies it.

    scikit-learn's update is ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2)
    g^2`` and the step ``-lr_t m / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1 -
    b2^t) / (1 - b1^t)``. To step in few passes over memory the moments are
    kept rescaled, ``m = (1 - b1) f1 A`` and ``v = (1 - b2) f2 B``, so that no
    update multiplies the gradient by ``1 - b``:

    * with numpy (``f1 = f2 = 1``): ``A <- b1 A + g``, ``B <- b2 B + g^2``;
    * with ``fast_blas`` (BLAS known to run one thread, see
      :mod:`sknet._core.blas`), the decay is deferred into the scalars
      ``f1``, ``f2`` (the powers of ``b1``, ``b2`` since the last
      renormalization), and each moment update is one ``axpy``:
      ``A += g / f1``, ``B += g^2 / f2``. ``A`` and ``B`` are renormalized
      (multiplied by their scalar) whenever a scalar falls below 2**-20.

    In both, the step is ``-lr_t (1 - b1) / sqrt(1 - b2) * f1 / sqrt(f2) *
    A / (sqrt(B) + eps / sqrt((1 - b2) f2))``, computed in the gradient's
    memory. :meth:`state` reports ``m`` and ``v``.
    """

    _RENORMALIZE_BELOW = 2.0 ** -20

    def __init__(self, n_params, dtype, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 fast_blas=False):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0
        self._A = np.zeros(n_params, dtype=dtype)
        self._B = np.zeros(n_params, dtype=dtype)
        self._f1 = self._f2 = 1.0
        self._axpy = axpy_for(dtype, fast_blas) if fast_blas else None

    def step(self, params, grad, lr, scale=None, overwrite_grad=False):
        """Update ``params`` in place (see :meth:`SGD.step`)."""
        start = self._A.size - params.size
        A, B = self._A[start:], self._B[start:]
        g = grad if overwrite_grad else grad.copy()
        b1, b2 = self.beta_1, self.beta_2
        self.t += 1
        if self._axpy is None:
            A *= b1
            A += g
            np.multiply(g, g, out=g)
            B *= b2
            B += g
        else:
            self._f1 = self._accumulate(self._A, A, self._f1, b1, g)
            np.multiply(g, g, out=g)
            self._f2 = self._accumulate(self._B, B, self._f2, b2, g)
        # Python floats: numpy scalars would make float32 arithmetic run in float64.
        root_f2 = math.sqrt((1 - b2) * self._f2)
        lr_t = float(lr) * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        np.sqrt(B, out=g)
        g += self.epsilon / root_f2
        factor = -lr_t * (1 - b1) * self._f1 / root_f2
        if self._axpy is None:
            g *= 1.0 / factor
            np.divide(A, g, out=g)
            if scale is not None:
                g *= scale
            params += g
            return
        np.divide(A, g, out=g)
        if scale is not None:
            g *= scale
        self._axpy(g, params, factor)

    def _accumulate(self, whole, part, f, beta, x):
        """``part``'s moment ``f * part`` becomes ``beta * f * part + x``; returns the new f."""
        f_new = beta * f
        if f_new < self._RENORMALIZE_BELOW:
            whole *= f  # renormalize: the stored values become the moments
            f_new = beta
            if f_new < self._RENORMALIZE_BELOW:  # a tiny beta: no deferral
                part *= beta
                part += x
                return 1.0
        self._axpy(x, part, 1.0 / f_new)
        return f_new

    @property
    def m(self):
        """The first-moment estimate."""
        return self._A * ((1 - self.beta_1) * self._f1)

    @property
    def v(self):
        """The second-moment estimate."""
        return self._B * ((1 - self.beta_2) * self._f2)

    def state(self):
        return {"t": self.t, "m": self.m, "v": self.v}

    def is_finite(self):
        return bool(np.isfinite(self._A).all() and np.isfinite(self._B).all())

    def reset(self):
        """Forget the moments and the step count, as a fresh optimizer."""
        self.t = 0
        self._A[...] = 0
        self._B[...] = 0
        self._f1 = self._f2 = 1.0

    def set_state(self, state):
        self.t = int(state["t"])
        np.divide(state["m"], 1 - self.beta_1, out=self._A)
        np.divide(state["v"], 1 - self.beta_2, out=self._B)
        self._f1 = self._f2 = 1.0


def make_optimizer(solver, n_params, dtype, *, momentum=0.9, nesterov=True,
                   beta_1=0.9, beta_2=0.999, epsilon=1e-8, fast_blas=False):
    """Build the optimizer named ``solver`` ("sgd" or "adam")."""
    if solver == "sgd":
        return SGD(n_params, dtype, momentum, nesterov, fast_blas)
    if solver == "adam":
        return Adam(n_params, dtype, beta_1, beta_2, epsilon, fast_blas)
    raise ValueError(f"Unknown stochastic solver {solver!r}; use 'sgd' or 'adam'.")

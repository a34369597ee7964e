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

import numpy as np

__all__ = ["SGD", "Adam", "make_optimizer"]


class SGD:
    """Stochastic gradient descent with (Nesterov) momentum."""

    def __init__(self, n_params, dtype, momentum=0.9, nesterov=True):
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity = np.zeros(n_params, dtype=dtype)

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
            step += mu * v  # mu * v - lr * g
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

    To step in few passes over memory the moments are kept rescaled,
    ``M = m / (1 - beta_1)`` and ``V = v / (1 - beta_2)``, so that their
    updates need no multiplication of the gradient:

        M <- beta_1 M + g,   V <- beta_2 V + g^2,
        step = -lr_t (1 - beta_1) / sqrt(1 - beta_2) * M / (sqrt(V) + eps'),

    with ``eps' = eps / sqrt(1 - beta_2)``: the same step as
    ``-lr_t m / (sqrt(v) + eps)``. :meth:`state` reports ``m`` and ``v``.
    Everything is numpy ufuncs, so training uses one BLAS library.
    """

    def __init__(self, n_params, dtype, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0
        self._M = np.zeros(n_params, dtype=dtype)
        self._V = np.zeros(n_params, dtype=dtype)

    def step(self, params, grad, lr, scale=None, overwrite_grad=False):
        """Update ``params`` in place (see :meth:`SGD.step`)."""
        start = self._M.size - params.size
        M, V = self._M[start:], self._V[start:]
        tmp = grad if overwrite_grad else np.empty_like(grad)
        b1, b2 = self.beta_1, self.beta_2
        self.t += 1
        M *= b1
        M += grad
        V *= b2
        np.multiply(grad, grad, out=tmp)
        V += tmp
        # Python floats: numpy scalars would make float32 arithmetic run in float64.
        root = float(np.sqrt(1 - b2))
        lr_t = float(lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t))
        np.sqrt(V, out=tmp)
        tmp += self.epsilon / root
        tmp *= -root / (lr_t * (1 - b1))
        np.divide(M, tmp, out=tmp)
        if scale is not None:
            tmp *= scale
        params += tmp

    @property
    def m(self):
        """The first-moment estimate."""
        return self._M * (1 - self.beta_1)

    @property
    def v(self):
        """The second-moment estimate."""
        return self._V * (1 - self.beta_2)

    def state(self):
        return {"t": self.t, "m": self.m, "v": self.v}

    def is_finite(self):
        return bool(np.isfinite(self._M).all() and np.isfinite(self._V).all())

    def reset(self):
        """Forget the moments and the step count, as a fresh optimizer."""
        self.t = 0
        self._M[...] = 0
        self._V[...] = 0

    def set_state(self, state):
        self.t = int(state["t"])
        np.divide(state["m"], 1 - self.beta_1, out=self._M)
        np.divide(state["v"], 1 - self.beta_2, out=self._V)


def make_optimizer(solver, n_params, dtype, *, momentum=0.9, nesterov=True,
                   beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """Build the optimizer named ``solver`` ("sgd" or "adam")."""
    if solver == "sgd":
        return SGD(n_params, dtype, momentum, nesterov)
    if solver == "adam":
        return Adam(n_params, dtype, beta_1, beta_2, epsilon)
    raise ValueError(f"Unknown stochastic solver {solver!r}; use 'sgd' or 'adam'.")

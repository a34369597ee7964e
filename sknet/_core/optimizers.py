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

Each step is one compiled pass over the parameters
(:mod:`sknet._core._optim`): it reads the gradient once, multiplied by
``gscale`` (the gradient-clipping factor), and writes the parameters and the
state once, in the parameters' dtype, without the GIL.
"""

import math

import numpy as np

from ._optim import adam_step, instruction_set, sgd_step

__all__ = ["SGD", "Adam", "make_optimizer"]

# What ``kernel()`` says an optimizer is, for a compiled loop that takes its
# steps itself (``sknet._core._dense_fast.DenseStep.run_epoch``).
SGD_KERNEL, ADAM_KERNEL = 0, 1


def step_scale(scale, n, dtype):
    """Per-parameter step factors ``scale`` (or None) as a contiguous vector of ``n``
    values of ``dtype``, as a step takes them."""
    if scale is None:
        return None
    return np.ascontiguousarray(np.broadcast_to(scale, (n,)), dtype=dtype)


def _as_step_inputs(params, grad, scale):
    """``grad`` and ``scale`` as contiguous vectors of ``params``' dtype."""
    grad = np.ascontiguousarray(grad, dtype=params.dtype)
    return grad, step_scale(scale, params.size, params.dtype)


class SGD:
    """Stochastic gradient descent with (Nesterov) momentum.

    Parameters
    ----------
    n_params : int
        Size of the flat parameter vector.
    dtype : numpy dtype
        The parameters' dtype; the velocity is kept in it.
    momentum : float, default=0.9
    nesterov : bool, default=True
    """

    # OpenMP threads a step may split its pass between (set by the trainer)
    threads = 1

    def __init__(self, n_params, dtype, momentum=0.9, nesterov=True):
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity = np.zeros(n_params, dtype=dtype)

    def step(self, params, grad, lr, scale=None, gscale=1.0):
        """Update ``params`` in place from ``grad`` at learning rate ``lr``.

        ``params`` may be a suffix of the vector the optimizer was made for
        (the trainable part): it is stepped with the tail of the state.
        ``scale`` (an array broadcastable to ``params``, or None) multiplies the
        step, for per-layer learning-rate factors; ``gscale`` multiplies the
        gradient (gradient clipping). ``grad`` is only read.
        """
        v = self.velocity[self.velocity.size - params.size:]
        grad, scale = _as_step_inputs(params, grad, scale)
        sgd_step(params, grad, v, float(lr), self.momentum, self.nesterov,
                 float(gscale), scale, self.threads)

    def kernel(self, n):
        """``(kind, state, state, hyper-parameters, avx2)``: what a compiled loop needs
        to step the last ``n`` parameters as :meth:`step` does."""
        v = self.velocity[self.velocity.size - n:]
        return SGD_KERNEL, v, v, (self.momentum, float(self.nesterov), 0.0), False

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

    Parameters
    ----------
    n_params : int
        Size of the flat parameter vector.
    dtype : numpy dtype
        The parameters' dtype; the moments are kept in it.
    beta_1, beta_2 : float, default=0.9, 0.999
    epsilon : float, default=1e-8

    Notes
    -----
    With the step count ``t``, each step computes

    .. math::

        m \\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\qquad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2, \\qquad
        w \\leftarrow w - \\eta_t \\frac{m}{\\sqrt{v} + \\epsilon},
        \\qquad \\eta_t = \\eta \\frac{\\sqrt{1 - \\beta_2^t}}{1 - \\beta_1^t},

    element by element in one pass.
    """

    threads = 1  # as SGD.threads

    def __init__(self, n_params, dtype, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0
        self._m = np.zeros(n_params, dtype=dtype)
        self._v = np.zeros(n_params, dtype=dtype)

    def step(self, params, grad, lr, scale=None, gscale=1.0):
        """Update ``params`` in place (see :meth:`SGD.step`)."""
        start = self._m.size - params.size
        grad, scale = _as_step_inputs(params, grad, scale)
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        lr_t = float(lr) * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        adam_step(params, grad, self._m[start:], self._v[start:], lr_t, b1, b2,
                  self.epsilon, float(gscale), scale, self.threads)

    def kernel(self, n):
        """``(kind, m, v, (beta_1, beta_2, epsilon), avx2)`` for the last ``n``
        parameters (see :meth:`SGD.kernel`); the loop counts ``t`` on."""
        start = self._m.size - n
        return (ADAM_KERNEL, self._m[start:], self._v[start:],
                (self.beta_1, self.beta_2, self.epsilon), instruction_set() == "avx2")

    @property
    def m(self):
        """The first-moment estimate."""
        return self._m

    @property
    def v(self):
        """The second-moment estimate."""
        return self._v

    def state(self):
        return {"t": self.t, "m": self._m.copy(), "v": self._v.copy()}

    def is_finite(self):
        return bool(np.isfinite(self._m).all() and np.isfinite(self._v).all())

    def reset(self):
        """Forget the moments and the step count, as a fresh optimizer."""
        self.t = 0
        self._m[...] = 0
        self._v[...] = 0

    def set_state(self, state):
        self.t = int(state["t"])
        self._m[...] = state["m"]
        self._v[...] = state["v"]


def make_optimizer(solver, n_params, dtype, *, momentum=0.9, nesterov=True,
                   beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """Build the optimizer named ``solver`` ("sgd" or "adam")."""
    if solver == "sgd":
        return SGD(n_params, dtype, momentum, nesterov)
    if solver == "adam":
        return Adam(n_params, dtype, beta_1, beta_2, epsilon)
    raise ValueError(f"Unknown stochastic solver {solver!r}; use 'sgd' or 'adam'.")

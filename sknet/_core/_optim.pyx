"""Optimizer steps as one pass over the parameters, without the GIL.

Each kernel reads the gradient once and writes the parameters and the
optimizer state once, in the parameters' own precision (float32 or
float64); ``gscale`` multiplies the gradient first (gradient clipping),
``scale`` (or None) multiplies each parameter's step (per-layer factors).
The numpy reference they are tested against is ``sknet._core.optimizers``'
formulas, which are scikit-learn's.
"""

from cython cimport floating
from libc.math cimport sqrt


def adam_step(floating[::1] params, const floating[::1] grad, floating[::1] m,
              floating[::1] v, double lr_t, double beta_1, double beta_2,
              double epsilon, double gscale=1.0, const floating[::1] scale=None):
    """``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``, ``w -= lr_t m / (sqrt(v) + eps)``."""
    cdef Py_ssize_t i, n = params.shape[0]
    cdef floating gi, mi, vi, step
    cdef floating b1 = <floating>beta_1, b2 = <floating>beta_2
    cdef floating c1 = <floating>(1.0 - beta_1), c2 = <floating>(1.0 - beta_2)
    cdef floating lr = <floating>lr_t, eps = <floating>epsilon, gs = <floating>gscale
    cdef bint scaled = scale is not None
    _check_sizes(n, grad.shape[0], m.shape[0], v.shape[0], scale.shape[0] if scaled else n)
    with nogil:
        for i in range(n):
            gi = grad[i] * gs
            mi = b1 * m[i] + c1 * gi
            vi = b2 * v[i] + c2 * gi * gi
            m[i] = mi
            v[i] = vi
            step = lr * mi / (sqrt(vi) + eps)
            if scaled:
                step = step * scale[i]
            params[i] -= step


def sgd_step(floating[::1] params, const floating[::1] grad, floating[::1] velocity,
             double lr, double momentum, bint nesterov, double gscale=1.0,
             const floating[::1] scale=None):
    """``v <- mu v - lr g``; the step is ``v``, or ``mu v - lr g`` with Nesterov."""
    cdef Py_ssize_t i, n = params.shape[0]
    cdef floating gi, vi, step
    cdef floating mu = <floating>momentum, eta = <floating>lr, gs = <floating>gscale
    cdef bint scaled = scale is not None
    _check_sizes(n, grad.shape[0], velocity.shape[0], n, scale.shape[0] if scaled else n)
    with nogil:
        for i in range(n):
            gi = eta * (grad[i] * gs)
            vi = mu * velocity[i] - gi
            velocity[i] = vi
            step = mu * vi - gi if nesterov else vi
            if scaled:
                step = step * scale[i]
            params[i] += step


cdef inline void _check_sizes(Py_ssize_t n, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c,
                              Py_ssize_t d) except *:
    if a != n or b != n or c != n or d != n:
        raise ValueError(f"optimizer arrays differ in size: {n}, {a}, {b}, {c}, {d}")

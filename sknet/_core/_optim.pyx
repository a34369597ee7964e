# distutils: extra_compile_args = -O3 -fno-math-errno
"""Optimizer steps as one pass over the parameters, without the GIL.

Each kernel reads the gradient once and writes the parameters and the
optimizer state once, in the parameters' own precision (float32 or
float64); ``gscale`` multiplies the gradient first (gradient clipping),
``scale`` (or None) multiplies each parameter's step (per-layer factors).
The numpy reference they are tested against is scikit-learn's formulas
(``sklearn.neural_network._stochastic_optimizers``).

The loops are written so that the compiler vectorizes them: no branch
inside (the scaled and unscaled variants are separate loops) and a square
root that sets no ``errno`` (``-fno-math-errno``). Adam's loop, bound by
its square roots and divisions, is in ``_optim_loops.h``, built a second
time for AVX2 on x86 and chosen at import when the processor has it (see
:func:`instruction_set`); both builds give the same result bit for bit.
With ``n_threads > 1`` OpenMP threads update blocks of the vector (every
element is computed the same way, so the result does not depend on the
threads). The passes themselves are in ``_optim_loops.pxd``, which the
compiled epoch (``_dense_fast.DenseStep.run_epoch``) calls as well.
"""

import sys

from cython cimport floating
from libc.stdint cimport uint32_t
from cython.parallel cimport prange  # (the passes of _optim_loops.pxd run threads)

from sknet._core._optim_loops cimport (SKNET_AVX2_BUILD, adam_pass, sgd_pass,
                                       sknet_avx2_supported)

from ._dense_fast import in_forked_child

cdef bint _LITTLE_ENDIAN = sys.byteorder == "little"

# Adam's loop runs its AVX2 build where the processor has AVX2.
cdef bint _AVX2_USABLE = SKNET_AVX2_BUILD and sknet_avx2_supported()
cdef bint _avx2 = _AVX2_USABLE


def instruction_set():
    """The build of Adam's loop in use: ``"avx2"`` or ``"baseline"``."""
    return "avx2" if _avx2 else "baseline"


def available_instruction_sets():
    """The builds of Adam's loop this processor can run, baseline first."""
    return ("baseline", "avx2") if _AVX2_USABLE else ("baseline",)


def set_instruction_set(name):
    """Use the build ``name`` of Adam's loop (for tests); returns the one used before."""
    global _avx2
    if name not in available_instruction_sets():
        raise ValueError(f"instruction set {name!r} is not available here; choose from "
                         f"{available_instruction_sets()}.")
    before = instruction_set()
    _avx2 = name == "avx2"
    return before

cdef int _threads_for(int n_threads):
    return 1 if n_threads > 1 and in_forked_child() else n_threads  # GNU OpenMP: not fork-safe


def adam_step(floating[::1] params, const floating[::1] grad, floating[::1] m,
              floating[::1] v, double lr_t, double beta_1, double beta_2,
              double epsilon, double gscale=1.0, const floating[::1] scale=None,
              int n_threads=1):
    """``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``, ``w -= lr_t m / (sqrt(v) + eps)``.

    ``g`` is ``gscale * grad``; with ``scale`` the step is multiplied by it.
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef bint scaled = scale is not None
    cdef int T = _threads_for(n_threads)
    _check_sizes(n, grad.shape[0], m.shape[0], v.shape[0], scale.shape[0] if scaled else n)
    if n == 0:
        return
    with nogil:
        adam_pass(&params[0], &grad[0], &m[0], &v[0], &scale[0] if scaled else NULL, n,
                  lr_t, beta_1, beta_2, epsilon, gscale, _avx2, T)


def sgd_step(floating[::1] params, const floating[::1] grad, floating[::1] velocity,
             double lr, double momentum, bint nesterov, double gscale=1.0,
             const floating[::1] scale=None, int n_threads=1):
    """``v <- mu v - lr g``; the step is ``v``, or ``mu v - lr g`` with Nesterov.

    ``g`` is ``gscale * grad``; with ``scale`` the step is multiplied by it.
    """
    cdef Py_ssize_t n = params.shape[0]
    cdef bint scaled = scale is not None
    cdef int T = _threads_for(n_threads)
    _check_sizes(n, grad.shape[0], velocity.shape[0], n, scale.shape[0] if scaled else n)
    if n == 0:
        return
    with nogil:
        sgd_pass(&params[0], &grad[0], &velocity[0], &scale[0] if scaled else NULL, n, lr,
                 momentum, nesterov, gscale, T)


def all_finite(const floating[::1] a):
    """Whether ``a`` holds no inf or NaN, in one pass.

    A value is inf or NaN when its exponent bits are all ones; counting those
    is an integer sum, which the compiler vectorizes (a sum of floats it
    would not reorder).
    """
    cdef Py_ssize_t i, n = a.shape[0]
    cdef const uint32_t *f
    cdef Py_ssize_t bad = 0
    if n == 0:
        return True
    with nogil:
        if floating is double:  # the exponent's bits are in each value's upper half
            f = <const uint32_t *>&a[0] + (1 if _LITTLE_ENDIAN else 0)
            for i in range(n):
                bad += (f[2 * i] & 0x7FF00000U) == 0x7FF00000U
        else:
            f = <const uint32_t *>&a[0]
            for i in range(n):
                bad += (f[i] & 0x7F800000U) == 0x7F800000U
    return bad == 0


cdef inline void _check_sizes(Py_ssize_t n, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c,
                              Py_ssize_t d) except *:
    if a != n or b != n or c != n or d != n:
        raise ValueError(f"optimizer arrays differ in size: {n}, {a}, {b}, {c}, {d}")

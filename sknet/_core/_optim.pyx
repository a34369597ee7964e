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
threads).
"""

from cython cimport floating
from cython.parallel cimport prange

from ._dense_fast import in_forked_child

cdef extern from "_optim_loops.h" nogil:
    int SKNET_AVX2_BUILD
    int sknet_avx2_supported()
    void sknet_adam_f64(double* w, const double* g, double* m, double* v,
                        const double* scale, Py_ssize_t n, double lr, double b1,
                        double b2, double eps, double gs)
    void sknet_adam_f32(float* w, const float* g, float* m, float* v,
                        const float* scale, Py_ssize_t n, float lr, float b1, float b2,
                        float eps, float gs)
    void sknet_adam_f64_avx2(double* w, const double* g, double* m, double* v,
                             const double* scale, Py_ssize_t n, double lr, double b1,
                             double b2, double eps, double gs)
    void sknet_adam_f32_avx2(float* w, const float* g, float* m, float* v,
                             const float* scale, Py_ssize_t n, float lr, float b1,
                             float b2, float eps, float gs)

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

# Below this many parameters per thread a parallel region costs more than it saves.
cdef Py_ssize_t MIN_PER_THREAD = 2048


cdef int _threads_for(Py_ssize_t n, int n_threads):
    cdef Py_ssize_t most = n // MIN_PER_THREAD
    if n_threads > 1 and in_forked_child():  # GNU OpenMP is not fork-safe
        return 1
    if most < 1:
        return 1
    return <int>(n_threads if n_threads < most else most)


def adam_step(floating[::1] params, const floating[::1] grad, floating[::1] m,
              floating[::1] v, double lr_t, double beta_1, double beta_2,
              double epsilon, double gscale=1.0, const floating[::1] scale=None,
              int n_threads=1):
    """``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``, ``w -= lr_t m / (sqrt(v) + eps)``.

    ``g`` is ``gscale * grad``; with ``scale`` the step is multiplied by it.
    """
    cdef Py_ssize_t n = params.shape[0], lo, hi
    cdef bint scaled = scale is not None
    cdef int c, T
    cdef floating* w
    cdef const floating* g
    cdef floating* mp
    cdef floating* vp
    cdef const floating* sp
    _check_sizes(n, grad.shape[0], m.shape[0], v.shape[0], scale.shape[0] if scaled else n)
    if n == 0:
        return
    w, g, mp, vp = &params[0], &grad[0], &m[0], &v[0]
    sp = &scale[0] if scaled else NULL
    T = _threads_for(n, n_threads)
    with nogil:
        if T == 1:
            _adam(w, g, mp, vp, sp, n, <floating>lr_t, <floating>beta_1, <floating>beta_2,
                  <floating>epsilon, <floating>gscale)
        else:
            for c in prange(T, num_threads=T, schedule="static"):
                lo, hi = c * n // T, (c + 1) * n // T
                _adam(w + lo, g + lo, mp + lo, vp + lo, NULL if sp == NULL else sp + lo,
                      hi - lo, <floating>lr_t, <floating>beta_1, <floating>beta_2,
                      <floating>epsilon, <floating>gscale)


cdef void _adam(floating* w, const floating* g, floating* m, floating* v,
                const floating* scale, Py_ssize_t n, floating lr, floating b1,
                floating b2, floating eps, floating gs) noexcept nogil:
    if floating is double:
        if _avx2:
            sknet_adam_f64_avx2(w, g, m, v, scale, n, lr, b1, b2, eps, gs)
        else:
            sknet_adam_f64(w, g, m, v, scale, n, lr, b1, b2, eps, gs)
    else:
        if _avx2:
            sknet_adam_f32_avx2(w, g, m, v, scale, n, lr, b1, b2, eps, gs)
        else:
            sknet_adam_f32(w, g, m, v, scale, n, lr, b1, b2, eps, gs)


def sgd_step(floating[::1] params, const floating[::1] grad, floating[::1] velocity,
             double lr, double momentum, bint nesterov, double gscale=1.0,
             const floating[::1] scale=None, int n_threads=1):
    """``v <- mu v - lr g``; the step is ``v``, or ``mu v - lr g`` with Nesterov.

    ``g`` is ``gscale * grad``; with ``scale`` the step is multiplied by it.
    """
    cdef Py_ssize_t n = params.shape[0], lo, hi
    cdef bint scaled = scale is not None
    cdef int c, T
    cdef floating* w
    cdef const floating* g
    cdef floating* vel
    cdef const floating* sp
    _check_sizes(n, grad.shape[0], velocity.shape[0], n, scale.shape[0] if scaled else n)
    if n == 0:
        return
    w, g, vel = &params[0], &grad[0], &velocity[0]
    sp = &scale[0] if scaled else NULL
    T = _threads_for(n, n_threads)
    with nogil:
        if T == 1:
            _sgd(w, g, vel, sp, n, <floating>lr, <floating>momentum, nesterov,
                 <floating>gscale)
        else:
            for c in prange(T, num_threads=T, schedule="static"):
                lo, hi = c * n // T, (c + 1) * n // T
                _sgd(w + lo, g + lo, vel + lo, NULL if sp == NULL else sp + lo, hi - lo,
                     <floating>lr, <floating>momentum, nesterov, <floating>gscale)


cdef void _sgd(floating* w, const floating* g, floating* vel, const floating* scale,
               Py_ssize_t n, floating eta, floating mu, bint nesterov,
               floating gs) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi
    # the step is a * v - b * g: (1, 0) plain momentum, (mu, 1) Nesterov
    cdef floating a = mu if nesterov else 1
    cdef floating b = 1 if nesterov else 0
    if scale == NULL:
        for i in range(n):
            gi = eta * (g[i] * gs)
            vi = mu * vel[i] - gi
            vel[i] = vi
            w[i] += a * vi - b * gi
    else:
        for i in range(n):
            gi = eta * (g[i] * gs)
            vi = mu * vel[i] - gi
            vel[i] = vi
            w[i] += (a * vi - b * gi) * scale[i]


cdef inline void _check_sizes(Py_ssize_t n, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c,
                              Py_ssize_t d) except *:
    if a != n or b != n or c != n or d != n:
        raise ValueError(f"optimizer arrays differ in size: {n}, {a}, {b}, {c}, {d}")

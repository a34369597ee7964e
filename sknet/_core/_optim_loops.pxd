"""The optimizers' passes over a flat parameter vector, shared by
:mod:`sknet._core._optim` (one step from Python) and the compiled epoch
(:meth:`sknet._core._dense_fast.DenseStep.run_epoch`).

Adam's loop is ``_optim_loops.h``'s, in two builds (baseline and AVX2; the
caller says which, see ``_optim.instruction_set``). A pass splits the vector
into blocks that OpenMP threads update (every element is computed the same
way, so the result does not depend on the threads). Each block runs with
subnormal numbers flushed to zero (``_fp_mode.h``), the thread's own mode
put back after it.
"""

from cython cimport floating
from cython.parallel cimport prange

cdef extern from "_fp_mode.h" nogil:
    unsigned long sk_flush_subnormals()
    void sk_restore_fp(unsigned long mode)

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

cdef enum:
    # Below this many parameters per thread a parallel region costs more than it saves.
    MIN_PER_THREAD = 2048


cdef inline int _pass_threads(Py_ssize_t n, int n_threads) noexcept nogil:
    """Threads for a pass over ``n`` parameters: at most ``n_threads``, each with at
    least ``MIN_PER_THREAD`` of them."""
    cdef Py_ssize_t most = n // MIN_PER_THREAD
    if n_threads <= 1 or most < 1:
        return 1
    return <int>(n_threads if n_threads < most else most)


cdef inline void _adam(floating* w, const floating* g, floating* m, floating* v,
                       const floating* scale, Py_ssize_t n, floating lr, floating b1,
                       floating b2, floating eps, floating gs, bint avx2) noexcept nogil:
    cdef unsigned long mode = sk_flush_subnormals()
    if floating is double:
        if avx2:
            sknet_adam_f64_avx2(w, g, m, v, scale, n, lr, b1, b2, eps, gs)
        else:
            sknet_adam_f64(w, g, m, v, scale, n, lr, b1, b2, eps, gs)
    else:
        if avx2:
            sknet_adam_f32_avx2(w, g, m, v, scale, n, lr, b1, b2, eps, gs)
        else:
            sknet_adam_f32(w, g, m, v, scale, n, lr, b1, b2, eps, gs)
    sk_restore_fp(mode)


cdef inline void adam_pass(floating* w, const floating* g, floating* m, floating* v,
                           const floating* scale, Py_ssize_t n, double lr_t, double b1,
                           double b2, double eps, double gs, bint avx2,
                           int n_threads) noexcept nogil:
    """``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``, ``w -= lr_t m / (sqrt(v) + eps)``
    (times ``scale``, where not NULL), with ``g = gs * grad``; in the AVX2
    build with ``avx2``."""
    cdef int c, T = _pass_threads(n, n_threads)
    cdef Py_ssize_t lo, hi
    if T == 1:
        _adam(w, g, m, v, scale, n, <floating>lr_t, <floating>b1, <floating>b2,
              <floating>eps, <floating>gs, avx2)
    else:
        for c in prange(T, num_threads=T, schedule="static"):
            lo, hi = c * n // T, (c + 1) * n // T
            _adam(w + lo, g + lo, m + lo, v + lo, NULL if scale == NULL else scale + lo,
                  hi - lo, <floating>lr_t, <floating>b1, <floating>b2, <floating>eps,
                  <floating>gs, avx2)


cdef inline void _sgd(floating* w, const floating* g, floating* vel, const floating* scale,
                      Py_ssize_t n, floating eta, floating mu, bint nesterov,
                      floating gs) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi, vi
    # the step is a * v - b * g: (1, 0) plain momentum, (mu, 1) Nesterov
    cdef floating a = mu if nesterov else 1
    cdef floating b = 1 if nesterov else 0
    cdef unsigned long mode = sk_flush_subnormals()
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
    sk_restore_fp(mode)


cdef inline void sgd_pass(floating* w, const floating* g, floating* vel,
                          const floating* scale, Py_ssize_t n, double lr, double momentum,
                          bint nesterov, double gs, int n_threads) noexcept nogil:
    """``v <- mu v - lr g``; the step is ``v``, or ``mu v - lr g`` with Nesterov (times
    ``scale``, where not NULL), with ``g = gs * grad``."""
    cdef int c, T = _pass_threads(n, n_threads)
    cdef Py_ssize_t lo, hi
    if T == 1:
        _sgd(w, g, vel, scale, n, <floating>lr, <floating>momentum, nesterov, <floating>gs)
    else:
        for c in prange(T, num_threads=T, schedule="static"):
            lo, hi = c * n // T, (c + 1) * n // T
            _sgd(w + lo, g + lo, vel + lo, NULL if scale == NULL else scale + lo, hi - lo,
                 <floating>lr, <floating>momentum, nesterov, <floating>gs)

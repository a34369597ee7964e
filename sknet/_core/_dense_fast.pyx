# distutils: extra_compile_args = -O3 -fno-math-errno
"""Compiled training step of a stack of dense layers.

:class:`DenseStep` holds raw pointers to a workspace's buffers (allocated
once per fit) and runs, without the GIL:

* the forward pass: ``a = f(a_in @ W + b)`` per layer, the bias addition and
  the activation in one pass, then dropout or alpha dropout from uniform
  draws the caller made (so the random stream is numpy's);
* the output delta and the loss in one pass: ``(P - Y) * sample_weight *
  scale`` for the canonical pairs (identity and squared error, softmax and
  log-loss, logistic and binary log-loss), with the loss summed alongside;
* the backward pass: ``a_in.T @ delta`` added by BLAS to the L2 gradient
  ``l2 W`` written first (so no pass zeroes the gradient), the L1 gradient,
  the bias gradient, then ``delta @ W.T`` times the dropout mask and the
  activation's derivative (from its output), in one pass, down to the lowest
  trainable layer; the penalty sums after the passes.

:meth:`DenseStep.run` does the matrix products through
``scipy.linalg.cython_blas`` (scipy's BLAS, run on one thread by the caller's
thread limits). It cuts the step into parts that OpenMP threads share out
(blocks of the batch's rows, then of each weight matrix's rows; for small
networks, blocks of rows only, each with its own gradient, summed after),
with the same result on any number of threads; on one thread it is meant
for small networks, where a step is otherwise mostly per-call overhead. Otherwise the
products are better left to numpy's (threaded) BLAS; the caller then does
them itself and calls the per-layer stages (:meth:`DenseStep.forward_layer`,
:meth:`DenseStep.output_delta`, :meth:`DenseStep.layer_gradient`,
:meth:`DenseStep.hidden_delta`) between them.

:meth:`DenseStep.run_epoch` runs a whole epoch of mini-batch steps where the
step does its own products: each part gathering its rows of the shuffled
batch, the step, and the optimizer's pass (``_optim_loops.pxd``), with
Python called only around each step. A step by rows on several threads
takes the optimizer's pass in its own parallel region, each thread over its
block of the parameters (:func:`_step_and_update`). The element-wise loops
are C (``_dense_loops.h``), built for AVX-512, for AVX2 and for the baseline.

The numpy reference every stage is tested against is
:class:`sknet._core.network.Network`'s own forward and backward passes; the
one a compiled epoch is tested against, the trainer's Python loop.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport isfinite, log, logf, pow, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from sknet._core._optim_loops cimport adam_pass, sgd_pass
from sknet._core._small_gemm cimport (SK_MR, SK_NR_d, SK_NR_f, SK_PACKED_SIZE, _gemm_inplace,
                                      _gemm_packed, _pack)
from scipy.linalg.cython_blas cimport dasum, ddot, dgemm, sasum, sdot, sgemm

import os

import numpy as np

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int sknet_openmp_threads(void) { return omp_get_max_threads(); }
    /* The threads of the innermost parallel region, and its barrier (orphaned:
       it binds to whichever region calls it). */
    static int sknet_team_size(void) { return omp_get_num_threads(); }
    static void sknet_barrier(void) {
        #pragma omp barrier
    }
    #else
    static int sknet_openmp_threads(void) { return 0; }
    static int sknet_team_size(void) { return 1; }
    static void sknet_barrier(void) { }
    #endif
    """
    int sknet_openmp_threads() noexcept nogil
    int sknet_team_size() noexcept nogil
    void sknet_barrier() noexcept nogil

cdef extern from *:
    """
    /* Ask for the cache lines of a row about to be copied (a hint; no effect
       where the compiler has no prefetch). */
    static void sknet_prefetch_row(const char* row, Py_ssize_t bytes) {
    #if defined(__GNUC__) || defined(__clang__)
        Py_ssize_t k;
        for (k = 0; k < bytes; k += 64) __builtin_prefetch(row + k, 0, 0);
    #else
        (void)row; (void)bytes;
    #endif
    }
    """
    void sknet_prefetch_row(const char* row, Py_ssize_t bytes) noexcept nogil


cdef extern from "_dense_loops.h" nogil:
    # the element-wise loops, built for AVX-512, AVX2 and the baseline (_dense_loops.h)
    void sk_bias_activation_f(float* z, const float* b, Py_ssize_t n, Py_ssize_t m,
                              int kind, float p1, float p2)
    void sk_bias_activation_d(double* z, const double* b, Py_ssize_t n, Py_ssize_t m,
                              int kind, double p1, double p2)
    void sk_activation_gradient_f(float* a, const float* d, float* out, Py_ssize_t size,
                                  int kind, float p1, float p2)
    void sk_activation_gradient_d(double* a, const double* d, double* out,
                                  Py_ssize_t size, int kind, double p1, double p2)
    void sk_column_sums_f(const float* D, float* out, Py_ssize_t n, Py_ssize_t m,
                          Py_ssize_t stride)
    void sk_column_sums_d(const double* D, double* out, Py_ssize_t n, Py_ssize_t m,
                          Py_ssize_t stride)
    void sk_claim_lines(void* a, size_t bytes)
    void sk_add_f(float* dst, const float* src, Py_ssize_t n)
    void sk_add_d(double* dst, const double* src, Py_ssize_t n)

# GNU OpenMP is not fork-safe: in a child forked after its threads started
# (multiprocessing's "fork" start method), a parallel region of more than one
# thread waits for ever. Forked children therefore run every part on one thread.
cdef bint _forked = False


def _after_fork_in_child():
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_forked_child():
    """Whether this process was forked from one that imported this module."""
    return _forked


def openmp_threads():
    """The threads an OpenMP region would use now; 0 when built without OpenMP.

    OpenMP's own limit: ``OMP_NUM_THREADS``, or a ``threadpoolctl`` limit
    on the OpenMP library this module was linked with; 1 in a process
    forked from one that imported this module (see ``_forked``).
    """
    cdef int threads = sknet_openmp_threads()
    return min(threads, 1) if _forked else threads


def gather_rows(const floating[:, ::1] X, const Py_ssize_t[::1] idx, floating[:, ::1] out,
                int n_threads=1):
    """``out[i] = X[idx[i]]`` for each ``i``: a shuffled batch's rows, copied by threads.

    The rows of a large ``X`` come from memory, not from the caches; each of
    ``n_threads`` OpenMP threads copies a block of them, asking for the next
    row's cache lines while it copies one. The same copy as
    ``X.take(idx, axis=0, out=out)``, about twice as fast on two threads.

    Raises
    ------
    IndexError
        If an index is outside ``X``'s rows.
    ValueError
        If ``out`` does not have ``len(idx)`` rows of ``X``'s width.
    """
    cdef Py_ssize_t n = idx.shape[0], d = X.shape[1], rows = X.shape[0], i, c
    cdef int T = n_threads if n_threads > 1 and not _forked else 1
    if out.shape[0] != n or out.shape[1] != d:
        raise ValueError(f"out has shape ({out.shape[0]}, {out.shape[1]}); the rows need "
                         f"({n}, {d}).")
    for i in range(n):
        if idx[i] < 0 or idx[i] >= rows:
            raise IndexError(f"row index {idx[i]} is outside X's {rows} rows.")
    if n == 0 or d == 0:
        return
    T = T if T < n else <int>n
    with nogil:
        if T == 1:
            _copy_rows(&X[0, 0], &idx[0], &out[0, 0], 0, n, d)
        else:
            for c in prange(T, num_threads=T, schedule="static"):
                _copy_rows(&X[0, 0], &idx[0], &out[0, 0], c * n // T, (c + 1) * n // T, d)


cdef void _copy_rows(const floating* X, const Py_ssize_t* idx, floating* out, Py_ssize_t lo,
                     Py_ssize_t hi, Py_ssize_t d) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(lo, hi):
        if i + 1 < hi:
            sknet_prefetch_row(<const char*>(X + idx[i + 1] * d), d * sizeof(floating))
        memcpy(out + i * d, X + idx[i] * d, d * sizeof(floating))


# The step runs with subnormal numbers flushed to zero (``_fp_mode.h``): each
# thread sets the mode in its own share of the work and puts its mode back
# after, and no thread holds it while it starts a parallel region (OpenMP's
# threads begin with the mode of the thread that creates them).
cdef extern from "_fp_mode.h" nogil:
    unsigned long sk_flush_subnormals()
    void sk_restore_fp(unsigned long mode)


cdef enum:  # activation codes (the first item of ``Activation.kernel``)
    IDENTITY = 0
    RELU = 1
    LEAKY_RELU = 2
    ELU = 3
    TANH = 4
    LOGISTIC = 5
    SOFTMAX = 6

cdef void _gather(const floating* X, const floating* Y, const floating* sw,
                  const unsigned char* Y8, const Py_ssize_t* idx, Py_ssize_t start,
                  Py_ssize_t n, Py_ssize_t d, Py_ssize_t k, floating* Xb, floating* Yb,
                  floating* swb) noexcept nogil:
    """A mini-batch: rows ``idx[start:start + n]`` of ``X``, ``Y`` and ``sw`` (where not
    NULL) into ``Xb``, ``Yb``, ``swb``; or, with ``idx`` NULL, only the targets
    ``Y8`` (stored as bytes) of rows ``start:start + n``, converted into ``Yb``.

    With ``Y8``, its rows are converted in place of ``Y``'s.
    """
    cdef Py_ssize_t i, j, r
    if idx != NULL:
        _copy_rows(X, idx + start, Xb, 0, n, d)
        if Y8 == NULL:
            _copy_rows(Y, idx + start, Yb, 0, n, k)
        if sw != NULL:
            for i in range(n):
                swb[i] = sw[idx[start + i]]
    if Y8 != NULL:
        for i in range(n):
            r = start + i if idx == NULL else idx[start + i]
            for j in range(k):
                Yb[i * k + j] = Y8[r * k + j]


cdef enum:  # what ``optimizer.kernel`` says the optimizer is (see optimizers.py)
    SGD_KERNEL = 0
    ADAM_KERNEL = 1


cdef enum:  # the widest layer whose whole packed operands size a part's room (NARROW_BYTES)
    NARROW_UNITS = 32


cdef enum:  # output codes: (P - Y) deltas, and the loss summed alongside
    SQUARED = 0
    LOG_SOFTMAX = 1
    LOG_BINARY = 2

ACTIVATION_CODES = {"identity": IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU,
                    "elu": ELU, "tanh": TANH, "logistic": LOGISTIC, "softmax": SOFTMAX}
OUTPUT_CODES = {"squared_error": SQUARED, "log_loss": LOG_SOFTMAX,
                "binary_log_loss": LOG_BINARY}


cdef struct Plan:
    int n_layers
    bint double_precision
    Py_ssize_t* units      # n_layers + 1 widths
    Py_ssize_t* w_off      # each layer's weights in the flat vector
    Py_ssize_t* b_off      # each layer's bias
    void** acts            # (rows, units[i + 1]) activations
    void** deltas          # (rows, units[i + 1]) pre-activation gradients
    void** masks           # dropout factors, or NULL
    void** dropped         # the activations after dropout, or NULL
    int* kind
    double* p1
    double* p2
    int* drop_kind         # 0: none, 1: dropout, 2: alpha dropout
    double* rate
    double* keep_factor    # what a kept unit is multiplied by
    double* keep_shift     # what is added to a kept unit (alpha dropout)
    double* drop_value     # the value of a dropped unit (alpha dropout)
    double* row_loss       # (rows,) each row's weighted loss, summed in row order
    Py_ssize_t panel_rows  # rows of a hidden delta's product at a time, by rows
    Py_ssize_t panel_size  # room for one such panel (items)
    Py_ssize_t packed_size  # room for a W.T packed for those products (items), or 0
    Py_ssize_t narrow_size  # room for a packed operand (items; a narrow layer's whole), or 0
    Py_ssize_t part_room   # a part's room for a panel and a packed matrix (items)


cdef struct Update:
    # The optimizer's step, taken by a split step's threads in the step's own
    # parallel region (see _step_and_update): params[offset:] from grad[offset:].
    int kind               # ADAM_KERNEL or SGD_KERNEL
    Py_ssize_t offset
    void* s1               # Adam's m, SGD's velocity (of params[offset:])
    void* s2               # Adam's v
    const void* factors    # per-parameter step factors, or NULL
    double lr              # Adam: this step's lr_t; SGD: the rate
    double h1, h2, h3      # Adam: beta_1, beta_2, epsilon; SGD: momentum, nesterov
    bint avx2              # Adam's AVX2 build
    double alpha, l1       # the penalties' strengths, for the loss
    double sw_sum          # the batch's weight sum (its rows, without weights)
    bint applied           # out: whether the step was taken (its loss finite)


cdef struct Source:
    # Where the step's parts gather a mini-batch's rows from (see _gather): batch row r
    # is row idx[start + r] of X and Y (or of the targets stored as bytes, Y8); with
    # idx NULL the rows are read in place, and only Y8's rows start + r converted.
    const void* X
    const void* Y
    const unsigned char* Y8
    const Py_ssize_t* idx
    Py_ssize_t start


# ---------------------------------------------------------------------- #
# element-wise stages                                                      #
# ---------------------------------------------------------------------- #
cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline void _bias_activation(floating* z, const floating* b, Py_ssize_t n,
                                  Py_ssize_t m, int kind, floating p1,
                                  floating p2) noexcept nogil:
    """``z[i, :] = f(z[i, :] + b)`` for each of the ``n`` rows of width ``m``."""
    if floating is float:
        sk_bias_activation_f(z, b, n, m, kind, p1, p2)
    else:
        sk_bias_activation_d(z, b, n, m, kind, p1, p2)


cdef inline void _activation_gradient(const floating* a, floating* d, Py_ssize_t size,
                                      int kind, floating p1, floating p2) noexcept nogil:
    """``d *= f'`` where ``f'`` is written from the activation's output ``a``."""
    if floating is float:
        sk_activation_gradient_f(<float*>a, d, d, size, kind, p1, p2)
    else:
        sk_activation_gradient_d(<double*>a, d, d, size, kind, p1, p2)


cdef inline void _activation_gradient_over(floating* a, const floating* d, Py_ssize_t size,
                                           int kind, floating p1,
                                           floating p2) noexcept nogil:
    """``a = d * f'`` where ``f'`` is written from ``a``, the activation's output (the
    formulas of :func:`_activation_gradient`, written over ``a``)."""
    if floating is float:
        sk_activation_gradient_f(a, d, a, size, kind, p1, p2)
    else:
        sk_activation_gradient_d(a, d, a, size, kind, p1, p2)


cdef void _dropout(floating* a, floating* mask, floating* out, Py_ssize_t size,
                   double rate, double keep_factor, double keep_shift,
                   double drop_value) noexcept nogil:
    """Turn uniform draws in ``mask`` into factors, and write the dropped ``a`` into ``out``.

    A unit is kept where its draw is at least ``rate``. Kept units become
    ``keep_factor * a + keep_shift``, dropped ones ``drop_value``; ``mask``
    keeps the derivative (``keep_factor`` or 0).
    """
    cdef Py_ssize_t k
    cdef floating r = <floating>rate, f = <floating>keep_factor
    cdef floating s = <floating>keep_shift, v = <floating>drop_value
    cdef floating zero = 0
    if keep_shift == 0 and drop_value == 0:
        for k in range(size):
            mask[k] = f if mask[k] >= r else zero
            out[k] = a[k] * mask[k]
    else:
        for k in range(size):
            if mask[k] >= r:
                mask[k] = f
                out[k] = a[k] * f + s
            else:
                mask[k] = zero
                out[k] = a[k] * zero + v


cdef void _output_delta(const floating* P, const floating* Y, const floating* sw,
                        floating* D, Py_ssize_t n, Py_ssize_t m, int code,
                        floating scale, floating eps, double* row_loss) noexcept nogil:
    """Write ``(P - Y) * sw * scale`` into ``D``, and each row's ``sw * loss`` into ``row_loss``."""
    cdef Py_ssize_t i, j
    cdef const floating* p
    cdef const floating* y
    cdef floating* d
    cdef floating w, diff, q, s
    for i in range(n):
        p, y, d = P + i * m, Y + i * m, D + i * m
        s = 0
        if code == SQUARED:
            for j in range(m):
                diff = p[j] - y[j]
                s = s + diff * diff
            s = s / 2
        elif code == LOG_SOFTMAX:
            for j in range(m):
                if y[j] != 0:  # a zero target adds nothing (one-hot rows: one log)
                    q = eps if p[j] < eps else p[j]  # NaN stays NaN, as np.clip
                    q = 1 - eps if q > 1 - eps else q
                    s = s - y[j] * _log(q)
        else:
            for j in range(m):
                q = eps if p[j] < eps else p[j]  # NaN stays NaN, as np.clip
                q = 1 - eps if q > 1 - eps else q
                if y[j] != 0:
                    s = s - y[j] * _log(q)
                if y[j] != 1:
                    s = s - (1 - y[j]) * _log(1 - q)
        if sw == NULL:
            for j in range(m):
                d[j] = (p[j] - y[j]) * scale
            row_loss[i] = s
        else:
            w = sw[i]
            for j in range(m):
                d[j] = (p[j] - y[j]) * w * scale
            row_loss[i] = <double>s * w


cdef double _sum_rows(const double* row_loss, Py_ssize_t n) noexcept nogil:
    """The rows' losses summed in row order (the same sum for any thread count)."""
    cdef Py_ssize_t i
    cdef double total = 0
    for i in range(n):
        total += row_loss[i]
    return total


cdef inline void _column_sums(const floating* D, floating* out, Py_ssize_t n,
                              Py_ssize_t m, Py_ssize_t stride) noexcept nogil:
    """``out[j] = sum_i D[i, j]`` for ``m`` columns of rows ``stride`` apart."""
    if floating is float:
        sk_column_sums_f(D, out, n, m, stride)
    else:
        sk_column_sums_d(D, out, n, m, stride)


cdef void _penalty_gradient(const floating* W, floating* G, Py_ssize_t size, floating l2,
                            floating l1) noexcept nogil:
    """``G += l2 W + l1 sign(W)``."""
    cdef Py_ssize_t k
    cdef floating w
    if l2 != 0:
        for k in range(size):
            G[k] = G[k] + l2 * W[k]
    if l1 != 0:
        for k in range(size):
            w = W[k]
            G[k] = G[k] + l1 * ((w > 0) - (w < 0))


cdef void _scaled(const floating* W, floating* G, Py_ssize_t size, floating l2) noexcept nogil:
    """``G = l2 W``."""
    cdef Py_ssize_t k
    for k in range(size):
        G[k] = l2 * W[k]


cdef void _penalty_sums(const floating* W, Py_ssize_t size, floating l2, floating l1,
                        double* sums) noexcept nogil:
    """Add ``sum W^2`` (when ``l2``) and ``sum |W|`` (when ``l1``) to ``sums``.

    The sums are BLAS's ``dot`` and ``asum``, as numpy's ``vdot`` is.
    """
    cdef int n = <int>size, one = 1
    if l2 != 0:
        if floating is float:
            sums[0] += sdot(&n, <float*>W, &one, <float*>W, &one)
        else:
            sums[0] += ddot(&n, <double*>W, &one, <double*>W, &one)
    if l1 != 0:
        if floating is float:
            sums[1] += sasum(&n, <float*>W, &one)
        else:
            sums[1] += dasum(&n, <double*>W, &one)


# ---------------------------------------------------------------------- #
# row-major matrix products through scipy's BLAS                           #
# ---------------------------------------------------------------------- #
cdef void _gemm(char ta, char tb, int m, int n, int k, const floating* a, int lda,
                const floating* b, int ldb, floating* c, int ldc,
                floating beta=0) noexcept nogil:
    """Column-major ``c = op(a) @ op(b) + beta * c``."""
    cdef floating one = 1
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &one, <float*>a, &lda, <float*>b, &ldb, &beta,
              c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &one, <double*>a, &lda, <double*>b, &ldb, &beta,
              c, &ldc)


cdef inline void _mm(const floating* A, const floating* B, floating* C, Py_ssize_t n,
                     Py_ssize_t k, Py_ssize_t m) noexcept nogil:
    """``C = A @ B`` with ``A`` (n, k), ``B`` (k, m), all C-contiguous."""
    _gemm(c'N', c'N', <int>m, <int>n, <int>k, B, <int>m, A, <int>k, C, <int>m)


cdef inline void _mm_tn(const floating* A, const floating* D, floating* G, Py_ssize_t n,
                        Py_ssize_t k, Py_ssize_t m) noexcept nogil:
    """``G = A.T @ D`` with ``A`` (n, k), ``D`` (n, m), all C-contiguous."""
    _gemm(c'N', c'T', <int>m, <int>k, <int>n, D, <int>m, A, <int>k, G, <int>m)


cdef int _block_columns(Plan* p, Py_ssize_t K, Py_ssize_t m, int nr) noexcept nogil:
    """Columns of a ``K x m`` operand packed at a time in a part's room (a multiple
    of ``nr``, at least one panel), or 0: no room for a panel."""
    cdef Py_ssize_t cols
    if K < 1:
        return 0
    cols = p.narrow_size // K // nr * nr
    if cols < nr:
        return 0
    return <int>(cols if cols < m else m)


cdef enum:
    # B's rows read in place by the small-product kernel must not be a multiple
    # of this many bytes apart: rows 512 bytes apart (or 1024, 2048, ...) fall
    # into a few of the level-1 cache's sets and evict each other, where packed
    # panels do not (a 256-unit float64 layer's fit ran 1.10x slower in place)
    INPLACE_STRIDE_BYTES = 512


cdef void _product(Plan* p, const floating* A, const floating* B, floating* C,
                   Py_ssize_t n, Py_ssize_t k, Py_ssize_t m,
                   floating* packed) noexcept nogil:
    """``C = A @ B`` (as :func:`_mm`); where ``packed`` is given and its room
    (``narrow_size`` values) holds ``k`` rows of a panel: the small-product
    kernel, where BLAS's own packing costs more than the product (see
    :func:`_small_product`)."""
    cdef int nr = SK_NR_f if floating is float else SK_NR_d
    cdef int cols = 0 if packed == NULL else _block_columns(p, k, m, nr)
    if cols == 0:
        _mm(A, B, C, n, k, m)
    else:
        _small_product(<int>n, A, <int>k, 1, <int>k, B, <int>m, cols, packed, C)


cdef void _product_tn(Plan* p, const floating* A, const floating* D, floating* G,
                      Py_ssize_t n, Py_ssize_t k, Py_ssize_t m,
                      floating* packed) noexcept nogil:
    """``G = A.T @ D`` (as :func:`_mm_tn`); as :func:`_product`, on ``D`` (``A.T``'s
    rows are ``A``'s columns: 1 apart, ``k`` along the sum)."""
    cdef int nr = SK_NR_f if floating is float else SK_NR_d
    cdef int cols = 0 if packed == NULL else _block_columns(p, n, m, nr)
    if cols == 0:
        _mm_tn(A, D, G, n, k, m)
    else:
        _small_product(<int>k, A, 1, <int>k, <int>n, D, <int>m, cols, packed, G)


cdef void _small_product(int M, const floating* A, int lda, int aks, int K,
                         const floating* B, int m, int cols, floating* packed,
                         floating* C) noexcept nogil:
    """``C = A B`` on the small-product kernel, ``B`` ``K x m`` (C-contiguous), ``C``
    ``M x m``: ``B`` read in place (its columns past its last whole panel packed
    into ``packed``), unless its rows' stride is a multiple of
    ``INPLACE_STRIDE_BYTES``; then packed ``cols`` columns at a time."""
    cdef int j0 = 0, w
    if (m * sizeof(floating)) % INPLACE_STRIDE_BYTES != 0:
        _gemm_inplace(M, m, A, lda, K, B, m, packed, C, m, False, aks)
        return
    while j0 < m:
        w = cols if cols < m - j0 else m - j0
        _pack(B + j0, m, 1, K, w, packed, 0, K)
        _gemm_packed(M, w, A, lda, K, NULL, 0, 0, packed, K, C + j0, m, False, aks)
        j0 += w


cdef inline void _mm_nt(const floating* D, const floating* W, floating* E, Py_ssize_t n,
                        Py_ssize_t k, Py_ssize_t m) noexcept nogil:
    """``E = D @ W.T`` with ``D`` (n, m), ``W`` (k, m), all C-contiguous."""
    _gemm(c'T', c'N', <int>k, <int>n, <int>m, W, <int>m, D, <int>m, E, <int>k)


# ---------------------------------------------------------------------- #
# the stages of one step, per layer                                        #
# ---------------------------------------------------------------------- #
cdef floating* _layer_input(Plan* p, const floating* X, int i, bint training,
                            Py_ssize_t r0) noexcept nogil:
    """What layer ``i`` reads from row ``r0`` on: ``X``, or the layer below's (dropped) activations."""
    if i == 0:
        return <floating*>X + r0 * p.units[0]
    if training and p.drop_kind[i - 1] != 0:
        return <floating*>p.dropped[i - 1] + r0 * p.units[i]
    return <floating*>p.acts[i - 1] + r0 * p.units[i]


cdef void _forward_layer(Plan* p, floating* params, int i, Py_ssize_t r0, Py_ssize_t n,
                         bint dropping) noexcept nogil:
    """Bias, activation and (with ``dropping``) dropout of layer ``i``'s rows ``r0:r0 + n``, after its product."""
    cdef Py_ssize_t m = p.units[i + 1]
    cdef floating* a = <floating*>p.acts[i] + r0 * m
    _bias_activation(a, params + p.b_off[i], n, m, p.kind[i], <floating>p.p1[i],
                     <floating>p.p2[i])
    if dropping:
        _dropout(a, <floating*>p.masks[i] + r0 * m, <floating*>p.dropped[i] + r0 * m,
                 n * m, p.rate[i], p.keep_factor[i], p.keep_shift[i], p.drop_value[i])


cdef void _layer_gradient(Plan* p, floating* params, floating* grad, int i,
                          Py_ssize_t n, floating l2, floating l1,
                          double* sums) noexcept nogil:
    """Penalty and bias gradient of layer ``i``, after ``grad``'s weights hold ``a.T @ delta``."""
    cdef Py_ssize_t k = p.units[i], m = p.units[i + 1]
    _penalty_gradient(params + p.w_off[i], grad + p.w_off[i], k * m, l2, l1)
    _penalty_sums(params + p.w_off[i], k * m, l2, l1, sums)
    _column_sums(<floating*>p.deltas[i], grad + p.b_off[i], n, m, m)


cdef void _hidden_delta(Plan* p, floating* d, int j, Py_ssize_t r0, Py_ssize_t n,
                        bint dropped, bint over_acts=False) noexcept nogil:
    """Layer ``j``'s delta of rows ``r0:r0 + n`` from ``d`` holding ``delta_above @ W.T``:
    mask and derivative, in ``d`` (or, ``over_acts``, written over the rows'
    activations)."""
    cdef Py_ssize_t width = p.units[j + 1], size = n * width, k
    cdef floating* mask
    cdef floating* a = <floating*>p.acts[j] + r0 * width
    if dropped:
        mask = <floating*>p.masks[j] + r0 * width
        for k in range(size):
            d[k] = d[k] * mask[k]
    if over_acts:
        _activation_gradient_over(a, d, size, p.kind[j], <floating>p.p1[j], <floating>p.p2[j])
    else:
        _activation_gradient(a, d, size, p.kind[j], <floating>p.p1[j], <floating>p.p2[j])


# ---------------------------------------------------------------------- #
# one step, in two passes that split between threads                       #
# ---------------------------------------------------------------------- #
cdef void _forward_rows(Plan* p, const floating* X, const floating* Y, const floating* sw,
                        floating* params, Py_ssize_t r0, Py_ssize_t n, int code,
                        floating scale, floating eps, bint training,
                        const Source* src, floating* packed) noexcept nogil:
    """The forward pass of rows ``r0:r0 + n``, every layer, then their output delta
    (into ``deltas[-1]``) and weighted losses (into ``row_loss``).

    With ``src``, the rows of ``X`` and ``Y`` (the batch's buffers) are gathered
    from it first. With ``packed`` (room for ``narrow_size`` values), the
    layers' products run on their weights packed there (:func:`_product`).
    """
    cdef int i, last = p.n_layers - 1
    cdef Py_ssize_t* u = p.units
    cdef Py_ssize_t m = u[last + 1]
    if src != NULL:
        _gather(<const floating*>src.X, <const floating*>src.Y, NULL, src.Y8, src.idx,
                src.start + r0, n, u[0], m, <floating*>X + r0 * u[0], <floating*>Y + r0 * m,
                NULL)
    for i in range(p.n_layers):
        _product(p, _layer_input(p, X, i, training, r0), params + p.w_off[i],
                 <floating*>p.acts[i] + r0 * u[i + 1], n, u[i], u[i + 1], packed)
        _forward_layer(p, params, i, r0, n, training and p.drop_kind[i] != 0)
    _output_delta(<floating*>p.acts[last] + r0 * m, Y + r0 * m,
                  NULL if sw == NULL else sw + r0, <floating*>p.deltas[last] + r0 * m, n,
                  m, code, scale, eps, p.row_loss + r0)


cdef void _rows_pass(Plan* p, const floating* X, const floating* Y, const floating* sw,
                     floating* params, Py_ssize_t r0, Py_ssize_t r1, int code,
                     floating scale, floating eps, int n_frozen, bint training,
                     const Source* src) noexcept nogil:
    """Everything of rows ``r0:r1`` that is row by row: the forward pass, the output
    delta and the deltas passed down to the lowest trainable layer."""
    cdef int i, last = p.n_layers - 1
    cdef Py_ssize_t n = r1 - r0
    cdef Py_ssize_t* u = p.units
    _forward_rows(p, X, Y, sw, params, r0, n, code, scale, eps, training, src, NULL)
    for i in range(last, n_frozen, -1):
        _mm_nt(<floating*>p.deltas[i] + r0 * u[i + 1], params + p.w_off[i],
               <floating*>p.deltas[i - 1] + r0 * u[i], n, u[i], u[i + 1])
        _hidden_delta(p, <floating*>p.deltas[i - 1] + r0 * u[i], i - 1, r0, n,
                      training and p.drop_kind[i - 1] != 0)


cdef void _weights_pass(Plan* p, const floating* X, floating* params, floating* grad,
                        Py_ssize_t n, int c, int n_chunks, floating l2, floating l1,
                        int n_frozen, bint training, Update* u=NULL) noexcept nogil:
    """Part ``c`` of ``n_chunks`` of the trainable layers' gradients over all ``n`` rows.

    A part is a block of each weight matrix's rows (``a_in.T @ delta`` and the
    penalty's gradient) and of its bias's entries: every entry is computed
    whole by one thread, in the same order whatever the number of parts.
    With ``u``, each block then takes the optimizer's step
    (:func:`_update_range`) while it is in the thread's cache; nothing reads
    a block's parameters after its gradient (every delta is computed before).
    """
    cdef int i
    cdef Py_ssize_t k, m, k0, k1, m0, m1
    cdef floating* G
    cdef floating* W
    for i in range(p.n_layers - 1, n_frozen - 1, -1):
        k, m = p.units[i], p.units[i + 1]
        k0, k1 = c * k // n_chunks, (c + 1) * k // n_chunks
        if k1 > k0:
            G = grad + p.w_off[i] + k0 * m
            W = params + p.w_off[i] + k0 * m
            if l2 != 0:  # G = l2 W, then the product added to it (no pass to zero G)
                _scaled(W, G, (k1 - k0) * m, l2)
            _gemm(c'N', c'T', <int>m, <int>(k1 - k0), <int>n, <floating*>p.deltas[i],
                  <int>m, _layer_input(p, X, i, training, 0) + k0, <int>k, G, <int>m,
                  1 if l2 != 0 else 0)
            _penalty_gradient(W, G, (k1 - k0) * m, 0, l1)
            if u != NULL:
                _update_range(params, grad, u, p.w_off[i] + k0 * m, p.w_off[i] + k1 * m)
        m0, m1 = c * m // n_chunks, (c + 1) * m // n_chunks
        if m1 > m0:
            _column_sums(<floating*>p.deltas[i] + m0, grad + p.b_off[i] + m0, n, m1 - m0, m)
            if u != NULL:
                _update_range(params, grad, u, p.b_off[i] + m0, p.b_off[i] + m1)


cdef void _delta_over_acts(Plan* p, floating* params, const floating* d, int i,
                          Py_ssize_t r0, Py_ssize_t n, floating* scratch,
                          bint dropped) noexcept nogil:
    """Layer ``i - 1``'s delta of rows ``r0:r0 + n``, from layer ``i``'s ``d``, written
    over layer ``i - 1``'s activations.

    ``d @ W.T`` goes a panel of ``panel_rows`` rows at a time into ``scratch``;
    the mask and the derivative, read from the panel's activations, turn it
    into the delta, written over them in the same pass. The panels' products
    run on ``W.T`` packed after the panel in ``scratch`` (``_small_gemm.h``),
    which costs nothing per call, where it fits in ``packed_size``; else on
    BLAS.
    """
    cdef Py_ssize_t k = p.units[i], m = p.units[i + 1], q = 0, rows
    cdef floating* W = params + p.w_off[i]
    cdef floating* packed = scratch + p.panel_size
    cdef int nr = SK_NR_f if floating is float else SK_NR_d
    cdef bint packs = <Py_ssize_t>SK_PACKED_SIZE(<int>m, <int>k, nr) <= p.packed_size
    if packs:  # W.T, m x k: its [j][c] is W[c * m + j]
        _pack(W, 1, m, <int>m, <int>k, packed, 0, <int>m)
    while q < n:
        rows = p.panel_rows if p.panel_rows < n - q else n - q
        if packs:
            _gemm_packed(<int>rows, <int>k, d + q * m, <int>m, <int>m, NULL, 0, 0, packed,
                         <int>m, scratch, <int>k, False)
        else:
            _mm_nt(d + q * m, W, scratch, rows, k, m)
        _hidden_delta(p, scratch, i - 1, r0 + q, rows, dropped, True)
        q += rows


cdef void _rows_part(Plan* p, const floating* X, const floating* Y, const floating* sw,
                     floating* params, floating* G, floating* scratch, Py_ssize_t r0,
                     Py_ssize_t r1, int code, floating scale, floating eps, int n_frozen,
                     bint training, const Source* src) noexcept nogil:
    """The whole step of rows ``r0:r1``, their terms of the gradients into ``G`` (laid
    out like ``params``).

    The forward pass and the output delta; then, down the trainable layers,
    each layer's terms (``a_in.T @ delta`` and the column sums of ``delta``)
    and the delta of the layer below, written over that layer's activations,
    which nothing reads after (so a hidden layer needs no delta buffer). The
    layers' products run on an operand packed in ``scratch`` a block of
    columns at a time (:func:`_product`, :func:`_product_tn`).
    """
    cdef int i, last = p.n_layers - 1
    cdef Py_ssize_t n = r1 - r0, k, m
    cdef floating* d = <floating*>p.deltas[last] + r0 * p.units[last + 1]
    cdef floating* packed = scratch + p.panel_size
    _forward_rows(p, X, Y, sw, params, r0, n, code, scale, eps, training, src, packed)
    for i in range(last, n_frozen - 1, -1):
        k, m = p.units[i], p.units[i + 1]
        _product_tn(p, _layer_input(p, X, i, training, r0), d, G + p.w_off[i], n, k, m,
                    packed)
        _column_sums(d, G + p.b_off[i], n, m, m)
        if i > n_frozen:
            _delta_over_acts(p, params, d, i, r0, n, scratch,
                             training and p.drop_kind[i - 1] != 0)
            d = <floating*>p.acts[i - 1] + r0 * k


cdef void _all_penalty_sums(Plan* p, const floating* params, floating l2, floating l1,
                            int n_frozen, double* sums) noexcept nogil:
    """Add the trainable layers' ``sum W^2`` and ``sum |W|`` to ``sums`` (see :func:`_penalty_sums`)."""
    cdef int i
    for i in range(p.n_layers - 1, n_frozen - 1, -1):
        _penalty_sums(params + p.w_off[i], p.units[i] * p.units[i + 1], l2, l1, sums)


cdef inline double _batch_loss(double loss_sum, double alpha, double l1, const double* sums,
                               double sw_sum) noexcept nogil:
    """A batch's loss: ``(loss sum + alpha sum W^2 / 2 + l1 sum |W|) / sw_sum``."""
    return (loss_sum + 0.5 * alpha * sums[0] + l1 * sums[1]) / sw_sum


cdef void _gradient_block(Plan* p, const floating* params, floating* grad,
                          const floating* parts, Py_ssize_t size, int P, floating l2,
                          floating l1, int n_frozen, Py_ssize_t lo,
                          Py_ssize_t hi) noexcept nogil:
    """Entries ``lo:hi`` of the gradient: ``grad`` (part 0's terms) plus parts 1 ..
    P - 1's, in that order, then the penalties' gradients of the trainable
    layers' weights among them."""
    cdef int c, i
    cdef Py_ssize_t a, b, w0, w1
    for c in range(1, P):
        if floating is float:
            sk_add_f(grad + lo, parts + (c - 1) * size + lo, hi - lo)
        else:
            sk_add_d(grad + lo, parts + (c - 1) * size + lo, hi - lo)
    for i in range(p.n_layers - 1, n_frozen - 1, -1):
        w0 = p.w_off[i]
        w1 = w0 + p.units[i] * p.units[i + 1]
        a = w0 if w0 > lo else lo
        b = w1 if w1 < hi else hi
        if b > a:
            _penalty_gradient(params + a, grad + a, b - a, l2, l1)


cdef void _update_block(Plan* p, floating* params, floating* grad, const floating* parts,
                        Py_ssize_t size, int P, floating l2, floating l1, int n_frozen,
                        Update* u, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Entries ``lo:hi`` of the gradient (:func:`_gradient_block`), then the
    optimizer's pass over them (``u``; those from ``u.offset`` on)."""
    _gradient_block(p, params, grad, parts, size, P, l2, l1, n_frozen, lo, hi)
    _update_range(params, grad, u, lo, hi)


cdef void _update_range(floating* params, const floating* grad, Update* u, Py_ssize_t lo,
                        Py_ssize_t hi) noexcept nogil:
    """The optimizer's pass (``u``) over entries ``lo:hi`` of ``params``, those from
    ``u.offset`` on, on this thread.

    First the thread stores each of their cache lines back unchanged: the
    other parts read them during the step, and the pass's own writes, each
    behind a square root and a division, would otherwise stall one by one on
    taking their lines over.
    """
    cdef Py_ssize_t off = u.offset, a = u.offset if u.offset > lo else lo
    cdef const floating* factors
    if hi <= a:
        return
    sk_claim_lines(params + a, (hi - a) * sizeof(floating))
    factors = NULL if u.factors == NULL else <const floating*>u.factors + (a - off)
    if u.kind == ADAM_KERNEL:
        adam_pass(params + a, grad + a, <floating*>u.s1 + (a - off),
                  <floating*>u.s2 + (a - off), factors, hi - a, u.lr, u.h1, u.h2, u.h3,
                  1.0, u.avx2, 1)
    else:
        sgd_pass(params + a, grad + a, <floating*>u.s1 + (a - off), factors, hi - a, u.lr,
                 u.h1, u.h2 != 0, 1.0, 1)


cdef void _step_and_update(Plan* p, const floating* X, const floating* Y,
                           const floating* sw, floating* params, floating* grad,
                           Py_ssize_t n, int code, floating scale, floating eps,
                           floating l2, floating l1, int n_frozen, bint training,
                           double* sums, int P, int T, floating* parts,
                           floating* scratch, Py_ssize_t size, const Source* src,
                           Update* u) noexcept nogil:
    """A step by rows on ``T`` threads and the optimizer's step, in one parallel region.

    Each thread runs its parts (:func:`_rows_part`), the first also the
    penalty sums (of the parameters before the step); after a barrier every
    thread has the batch's loss (the same sum in each), and where it is
    finite sums the parts' gradients over its own block of the parameters,
    adds the penalties' gradients and takes the optimizer's pass over it
    (:func:`_update_block`). A thread keeps the same block from step
    to step, so its parameters and moments stay in its core's cache, and
    nothing waits on one thread between the step and the update. Every
    entry is computed as by the step and the optimizer's own pass, whatever
    the threads.
    """
    cdef int tid, nt, c
    cdef Py_ssize_t lo, hi, first = p.w_off[n_frozen]
    cdef double value
    cdef unsigned long mode
    if u.offset < first:
        first = u.offset
    with parallel(num_threads=T):
        mode = sk_flush_subnormals()
        tid = threadid()
        nt = sknet_team_size()
        c = tid
        while c < P:
            _rows_part(p, X, Y, sw, params, grad if c == 0 else parts + (c - 1) * size,
                       scratch + c * p.part_room, c * n // P, (c + 1) * n // P, code,
                       scale, eps, n_frozen, training, src)
            c = c + nt
        if tid == 0:
            _all_penalty_sums(p, params, l2, l1, n_frozen, sums)
        sknet_barrier()
        value = _batch_loss(_sum_rows(p.row_loss, n), u.alpha, u.l1, sums, u.sw_sum)
        if isfinite(value):
            lo = first + tid * (size - first) // nt
            hi = first + (tid + 1) * (size - first) // nt
            _update_block(p, params, grad, parts, size, P, l2, l1, n_frozen, u, lo, hi)
        if tid == 0:
            u.applied = isfinite(value)
        sk_restore_fp(mode)


cdef void _part_penalty_sums(Plan* p, const floating* params, int c, int n_chunks,
                             floating l2, floating l1, int n_frozen,
                             double* sums) noexcept nogil:
    """``sums`` = ``sum W^2`` and ``sum |W|`` over part ``c``'s blocks of the trainable
    weights (the rows :func:`_weights_pass` gives it), before the step."""
    cdef int i
    cdef Py_ssize_t k, m, k0, k1
    sums[0] = sums[1] = 0
    for i in range(p.n_layers - 1, n_frozen - 1, -1):
        k, m = p.units[i], p.units[i + 1]
        k0, k1 = c * k // n_chunks, (c + 1) * k // n_chunks
        if k1 > k0:
            _penalty_sums(params + p.w_off[i] + k0 * m, (k1 - k0) * m, l2, l1, sums)


cdef inline void _add_part_sums(const double* part_sums, int P, double* sums) noexcept nogil:
    """Add the ``P`` parts' penalty sums to ``sums``, in part order."""
    cdef int c
    for c in range(P):
        sums[0] += part_sums[2 * c]
        sums[1] += part_sums[2 * c + 1]


cdef void _weights_step_thread(Plan* p, const floating* X, const floating* Y,
                               const floating* sw, floating* params, floating* grad,
                               Py_ssize_t n, int code, floating scale, floating eps,
                               floating l2, floating l1, int n_frozen, bint training,
                               double* sums, int P, int tid, int nt, double* part_sums,
                               const Source* src, Update* u) noexcept nogil:
    """Thread ``tid`` of ``nt``'s share of :func:`_weights_step`: parts ``tid``,
    ``tid + nt``, ... of the rows pass (and of the penalty sums), a barrier,
    then the same parts of the weights pass, with the optimizer's step
    (``u``) where the batch's loss is finite. Thread 0 adds the penalty sums
    to ``sums`` and sets ``u.applied``."""
    cdef int c = tid
    cdef double total[2]
    cdef bint finite = False
    while c < P:
        _rows_pass(p, X, Y, sw, params, c * n // P, (c + 1) * n // P, code, scale, eps,
                   n_frozen, training, src)
        _part_penalty_sums(p, params, c, P, l2, l1, n_frozen, part_sums + 2 * c)
        c = c + nt
    sknet_barrier()
    total[0] = total[1] = 0
    _add_part_sums(part_sums, P, total)
    if u != NULL:
        finite = isfinite(_batch_loss(_sum_rows(p.row_loss, n), u.alpha, u.l1, total,
                                      u.sw_sum))
    if tid == 0:
        sums[0] += total[0]
        sums[1] += total[1]
        if u != NULL:
            u.applied = finite
    c = tid
    while c < P:
        _weights_pass(p, X, params, grad, n, c, P, l2, l1, n_frozen, training,
                      u if finite else NULL)
        c = c + nt


cdef void _weights_step(Plan* p, const floating* X, const floating* Y, const floating* sw,
                        floating* params, floating* grad, Py_ssize_t n, int code,
                        floating scale, floating eps, floating l2, floating l1,
                        int n_frozen, bint training, double* sums, int P, int T,
                        double* part_sums, const Source* src, Update* u) noexcept nogil:
    """A step by weights on ``T`` threads in one parallel region, and with ``u`` the
    optimizer's step in it.

    Each thread runs its parts of the rows pass (:func:`_rows_pass`) and
    their penalty sums (into ``part_sums``, two per part, added in part
    order: the same sums for any thread count); after a barrier every thread
    has the batch's loss, and runs its parts of the weights pass
    (:func:`_weights_pass`), each block stepped by the optimizer as soon as
    its gradient is done, where the loss is finite (the parameters from
    ``u.offset`` on, which is not below the lowest trainable layer's first:
    the weights pass has no block below it).
    """
    cdef int tid, nt
    cdef unsigned long mode
    if T <= 1:
        mode = sk_flush_subnormals()
        _weights_step_thread(p, X, Y, sw, params, grad, n, code, scale, eps, l2, l1,
                             n_frozen, training, sums, P, 0, 1, part_sums, src, u)
        sk_restore_fp(mode)
    else:
        with parallel(num_threads=T):
            mode = sk_flush_subnormals()
            tid = threadid()
            nt = sknet_team_size()
            _weights_step_thread(p, X, Y, sw, params, grad, n, code, scale, eps, l2, l1,
                                 n_frozen, training, sums, P, tid, nt, part_sums, src, u)
            sk_restore_fp(mode)


cdef double _step(Plan* p, const floating* X, const floating* Y, const floating* sw,
                  floating* params, floating* grad, Py_ssize_t n, int code,
                  floating scale, floating eps, floating l2, floating l1, int n_frozen,
                  bint training, double* sums, int n_parts, int n_threads, bint by_rows,
                  floating* parts, floating* scratch, Py_ssize_t size,
                  const Source* src, Update* update=NULL,
                  double* part_sums=NULL) noexcept nogil:
    """Forward and backward passes, the products through BLAS; returns the loss sum.

    The step is cut into ``n_parts`` parts, and ``n_threads`` OpenMP threads
    share them out (each calling BLAS, held to one thread). ``by_rows``
    (small networks): a part is a block of the batch's rows, run whole by
    one thread (:func:`_rows_part`, the rows staying in its cache, no wait
    between the passes), its gradient terms into ``grad`` (the first part)
    or into ``parts`` (room for the others', ``size`` values each), summed
    after; ``scratch`` holds ``part_room`` values for each part. Otherwise
    the rows pass splits the batch's rows and the weights pass, after all
    rows are through, each matrix's rows. Every value is computed by one
    call in a fixed order, so the result depends on the parts, not on the
    threads. With ``src``, each block of rows is gathered into ``X`` and ``Y``
    (the batch's buffers) by the thread that runs it, first. With ``update``,
    a step by rows on more than one thread (:func:`_step_and_update`), and a
    step by weights on any (:func:`_weights_step`, its penalty sums in
    ``part_sums``, two per part), also takes the optimizer's step and sets
    ``update.applied`` where it did (the caller clears it first).
    """
    cdef int c, P = <int>(n_parts if n_parts < n else n)
    cdef int T = n_threads if n_threads < P else P
    cdef unsigned long mode
    if by_rows and T > 1 and update != NULL:
        _step_and_update(p, X, Y, sw, params, grad, n, code, scale, eps, l2, l1, n_frozen,
                         training, sums, P, T, parts, scratch, size, src, update)
        return _sum_rows(p.row_loss, n)
    if by_rows:
        if T <= 1:
            mode = sk_flush_subnormals()
            for c in range(P):
                _rows_part(p, X, Y, sw, params, grad if c == 0 else parts + (c - 1) * size,
                           scratch + c * p.part_room, c * n // P, (c + 1) * n // P, code,
                           scale, eps, n_frozen, training, src)
            sk_restore_fp(mode)
        else:
            for c in prange(P, num_threads=T, schedule="static"):
                mode = sk_flush_subnormals()
                _rows_part(p, X, Y, sw, params, grad if c == 0 else parts + (c - 1) * size,
                           scratch + c * p.part_room, c * n // P, (c + 1) * n // P, code,
                           scale, eps, n_frozen, training, src)
                sk_restore_fp(mode)
        _gradient_block(p, params, grad, parts, size, P, l2, l1, n_frozen,
                        p.w_off[n_frozen], size)
    else:
        _weights_step(p, X, Y, sw, params, grad, n, code, scale, eps, l2, l1, n_frozen,
                      training, sums, P, T, part_sums, src, update)
        return _sum_rows(p.row_loss, n)
    _all_penalty_sums(p, params, l2, l1, n_frozen, sums)
    return _sum_rows(p.row_loss, n)


cdef class DenseStep:
    """One training step of a dense stack over a workspace's buffers.

    Parameters
    ----------
    units : list of int
        Widths from the input to the output.
    offsets : list of int
        Where each layer's parameters start in the flat vector (and the end).
    kernels : list of tuple
        Per layer, the activation's ``(code, p1, p2)`` (see ``Activation.kernel``).
    dropouts : list
        Per layer, ``None`` or a dropout layer (``rate``; alpha dropout also
        ``A``, ``B`` and ``alpha_p``).
    acts, deltas : list of ndarray of shape (batch_size, units[i + 1])
        A hidden layer's delta may be None: a step by rows
        (:meth:`splits_by_rows`) writes it over the layer's activations. The
        stages and a step by weights need it (:meth:`set_deltas`).
    masks, dropped : list of ndarray or None
        Per layer, the dropout buffers (None where no dropout follows).
    dtype : numpy dtype
        float32 or float64.

    Notes
    -----
    The buffers are kept alive by this object; rows ``[:n]`` of each are used
    for a batch of ``n`` rows (they are C-contiguous, so these are
    contiguous too).
    """

    cdef Plan plan
    cdef list _keep
    cdef object _parts  # the gradients of the row parts after the first (small networks)
    cdef object _scratch  # each row part's panel of a hidden delta, and W.T packed
    cdef void* _parts_data  # their addresses and sizes (items), kept for every batch
    cdef object _part_sums_room  # each part's penalty sums (a step by weights)
    cdef void* _scratch_data
    cdef Py_ssize_t _parts_size, _scratch_size
    cdef readonly object dtype
    cdef readonly Py_ssize_t batch_size

    def __cinit__(self):
        self._parts_data = self._scratch_data = NULL
        self._parts_size = self._scratch_size = 0
        self.plan.n_layers = 0
        self.plan.units = self.plan.w_off = self.plan.b_off = NULL
        self.plan.acts = self.plan.deltas = self.plan.masks = self.plan.dropped = NULL
        self.plan.kind = self.plan.drop_kind = NULL
        self.plan.p1 = self.plan.p2 = self.plan.rate = NULL
        self.plan.keep_factor = self.plan.keep_shift = self.plan.drop_value = NULL
        self.plan.row_loss = NULL
        self.plan.panel_rows = self.plan.panel_size = 0
        self.plan.packed_size = self.plan.narrow_size = self.plan.part_room = 0

    def __init__(self, units, offsets, kernels, dropouts, acts, deltas, masks, dropped,
                 dtype):
        cdef int L = len(units) - 1, i
        self.dtype = np.dtype(dtype)
        if self.dtype.char not in "fd":
            raise ValueError(f"DenseStep computes in float32 or float64, not {dtype}.")
        self.plan.double_precision = self.dtype.char == "d"
        self.batch_size = acts[0].shape[0]
        self._keep = [acts, deltas, masks, dropped]
        self._allocate(L, self.batch_size)
        for i in range(L + 1):
            self.plan.units[i] = units[i]
        for i in range(L):
            fan_in, fan_out = units[i], units[i + 1]
            self.plan.w_off[i] = offsets[i]
            self.plan.b_off[i] = offsets[i] + fan_in * fan_out
            code, p1, p2 = kernels[i]
            self.plan.kind[i], self.plan.p1[i], self.plan.p2[i] = code, p1, p2
            shape = (self.batch_size, fan_out)
            self.plan.acts[i] = <void*>_address(acts[i], self.dtype, shape)
            self._set_dropout(i, dropouts[i], masks[i], dropped[i], fan_out)
        if deltas[L - 1] is None:
            raise ValueError("The output layer needs its delta buffer.")
        self.set_deltas(deltas)
        widest = max(units[1:L], default=0)  # the hidden layers
        # whole tiles of the packed kernel's rows (SK_MR)
        self.plan.panel_rows = max(SK_MR, min(60, DELTA_PANEL_BYTES // max(
            1, widest * self.dtype.itemsize)) // SK_MR * SK_MR)
        # W.T of the hidden deltas' products packed, where it is small
        nr = SK_NR_f if self.dtype.char == "f" else SK_NR_d
        packed = [SK_PACKED_SIZE(units[i + 1], units[i], nr) for i in range(1, L)]
        self.plan.packed_size = max([0] + [size for size in packed
                                           if size * self.dtype.itemsize <= PACKED_BYTES])
        # a narrow layer's weights (forward) and a part's deltas (gradient) packed
        narrow = [SK_PACKED_SIZE(rows, units[i + 1], nr) for i in range(L)
                  if units[i + 1] <= NARROW_UNITS for rows in (units[i], self.batch_size)]
        self.plan.narrow_size = max([0] + [size for size in narrow
                                           if size * self.dtype.itemsize <= NARROW_BYTES])
        # each part's room on cache lines of its own (the parts run on different cores)
        line = _CACHE_LINE // self.dtype.itemsize
        self.plan.panel_size = (self.plan.panel_rows * widest + line - 1) // line * line
        self.plan.part_room = (self.plan.panel_size + max(self.plan.packed_size,
                               self.plan.narrow_size) + 2 * line - 1) // line * line

    def set_deltas(self, deltas):
        """Use ``deltas`` (per layer, an array of shape ``(batch_size, units[i + 1])``
        or None) as the layers' delta buffers."""
        cdef int i
        for i in range(self.plan.n_layers):
            shape = (self.batch_size, self.plan.units[i + 1])
            self.plan.deltas[i] = NULL if deltas[i] is None else <void*>_address(
                deltas[i], self.dtype, shape)
        self._keep[1] = list(deltas)

    cdef _allocate(self, int L, Py_ssize_t rows):
        cdef Plan* p = &self.plan
        p.units = <Py_ssize_t*>malloc((L + 1) * sizeof(Py_ssize_t))
        p.w_off = <Py_ssize_t*>malloc(L * sizeof(Py_ssize_t))
        p.b_off = <Py_ssize_t*>malloc(L * sizeof(Py_ssize_t))
        p.acts = <void**>malloc(L * sizeof(void*))
        p.deltas = <void**>malloc(L * sizeof(void*))
        p.masks = <void**>malloc(L * sizeof(void*))
        p.dropped = <void**>malloc(L * sizeof(void*))
        p.kind = <int*>malloc(L * sizeof(int))
        p.drop_kind = <int*>malloc(L * sizeof(int))
        p.p1 = <double*>malloc(L * sizeof(double))
        p.p2 = <double*>malloc(L * sizeof(double))
        p.rate = <double*>malloc(L * sizeof(double))
        p.keep_factor = <double*>malloc(L * sizeof(double))
        p.keep_shift = <double*>malloc(L * sizeof(double))
        p.drop_value = <double*>malloc(L * sizeof(double))
        p.row_loss = <double*>malloc(max(rows, 1) * sizeof(double))
        p.n_layers = L
        if (p.units == NULL or p.w_off == NULL or p.b_off == NULL or p.acts == NULL
                or p.deltas == NULL or p.masks == NULL or p.dropped == NULL
                or p.kind == NULL or p.drop_kind == NULL or p.p1 == NULL or p.p2 == NULL
                or p.rate == NULL or p.keep_factor == NULL or p.keep_shift == NULL
                or p.drop_value == NULL or p.row_loss == NULL):
            raise MemoryError()

    cdef _set_dropout(self, int i, drop, mask, dropped, Py_ssize_t width):
        cdef Plan* p = &self.plan
        p.masks[i] = p.dropped[i] = NULL
        p.drop_kind[i] = 0
        p.rate[i] = p.keep_factor[i] = p.keep_shift[i] = p.drop_value[i] = 0
        if drop is None:
            return
        shape = (self.batch_size, width)
        p.masks[i] = <void*>_address(mask, self.dtype, shape)
        p.dropped[i] = <void*>_address(dropped, self.dtype, shape)
        p.rate[i] = drop.rate
        if getattr(drop, "kind", "dropout") == "alpha_dropout":
            p.drop_kind[i] = 2
            p.keep_factor[i] = drop.A
            p.keep_shift[i] = drop.B
            p.drop_value[i] = drop.A * drop.alpha_p + drop.B
        else:
            p.drop_kind[i] = 1
            p.keep_factor[i] = 1.0 / (1.0 - drop.rate)

    def __dealloc__(self):
        cdef Plan* p = &self.plan
        free(p.units)
        free(p.w_off)
        free(p.b_off)
        free(p.acts)
        free(p.deltas)
        free(p.masks)
        free(p.dropped)
        free(p.kind)
        free(p.drop_kind)
        free(p.p1)
        free(p.p2)
        free(p.rate)
        free(p.keep_factor)
        free(p.keep_shift)
        free(p.drop_value)
        free(p.row_loss)

    def run(self, X, Y, sw, params, grad, int code, double scale, double l2, double l1,
            int n_frozen, bint training, int n_parts=1, int n_threads=1):
        """Forward and backward passes of one batch, the products through BLAS.

        Parameters
        ----------
        X : ndarray of shape (n, units[0]), C-contiguous
        Y : ndarray of shape (n, units[-1]), C-contiguous
        sw : ndarray of shape (n,) or None
            Sample weights.
        params, grad : ndarray of shape (n_params,)
            The flat parameters, and where the gradient goes (its frozen
            prefix, before layer ``n_frozen``, is not written).
        code : int
            The output's code (``OUTPUT_CODES``; ``LOG_BINARY`` for a
            logistic output).
        scale : float
            Multiplies every delta (``1 / sum(sw)``).
        l2, l1 : float
            The penalties' gradient factors (already multiplied by ``scale``).
        n_frozen : int
        training : bool
            Apply dropout; the masks hold uniform draws in [0, 1).
        n_parts : int, default=1
            Parts to cut the step into: for a network whose parameters are
            small (:meth:`splits_by_rows`), blocks of the batch's rows (at
            least ``ROWS_PART_MIN_ROWS`` each, or one block), each run whole
            with its own gradient, summed after; otherwise blocks of the
            batch's rows, then of each weight matrix's rows (at most one per
            row).
        n_threads : int, default=1
            OpenMP threads to share the parts out (each calls BLAS, which the
            caller holds to one thread). The result is the same for any
            number; without OpenMP the parts run one after the other.

        Returns
        -------
        loss_sum : float
            The sample-weighted sum of the per-sample losses.
        squares, absolutes : float
            ``sum W^2`` and ``sum |W|`` over the trainable weights (each 0
            when its penalty is 0).
        """
        cdef double sums[2]
        cdef double total
        cdef Py_ssize_t n = self._check(X, Y, sw, params, grad)
        if n_parts < 1 or n_threads < 1:
            raise ValueError(f"n_parts and n_threads must be at least 1, got {n_parts} "
                             f"and {n_threads}.")
        if self.plan.double_precision:
            total = _run_typed[double](self, X, Y, sw, params, grad, n, code, scale, l2,
                                       l1, n_frozen, training, sums, n_parts, n_threads)
        else:
            total = _run_typed[float](self, X, Y, sw, params, grad, n, code, scale, l2, l1,
                                      n_frozen, training, sums, n_parts, n_threads)
        return total, sums[0], sums[1]

    cdef double _run_batch(self, const void* X, const void* Y, const void* sw,
                           void* params, void* grad, Py_ssize_t n, int code, double scale,
                           double l2, double l1, int frozen, bint training, double* sums,
                           int n_parts, int n_threads, const Source* src=NULL,
                           Update* update=NULL) except? -1:
        """:meth:`run` on the batch at these addresses, of this step's dtype (gathered
        into them from ``src`` by the step's parts, when given; with ``update``, the
        optimizer's step taken in the step's parallel region where it can be, see
        :func:`_step`)."""
        cdef bint by_rows = self._by_rows(n_parts)
        cdef void* partp = NULL
        cdef void* scratchp = NULL
        cdef double* part_sums = NULL
        cdef Py_ssize_t size = self._size()
        cdef double total
        if _forked:
            n_threads = 1
        sums[0] = sums[1] = 0
        if update != NULL:
            update.applied = False
        if by_rows:  # each part at least ROWS_PART_MIN_ROWS rows, or one part
            n_parts = max(1, min(n_parts, n // ROWS_PART_MIN_ROWS))
            partp, scratchp = self._part_gradients(n_parts), self._panels(n_parts)
        elif not self._has_deltas():
            raise ValueError(f"A step in {n_parts} parts by weights needs every layer's "
                             "delta buffer (set_deltas).")
        else:
            part_sums = self._part_sums(n_parts)
            if update != NULL and update.offset < self.plan.w_off[frozen]:
                update = NULL  # the weights pass has blocks of the trainable layers only
        with nogil:
            if self.plan.double_precision:
                total = _step(&self.plan, <const double*>X, <const double*>Y,
                              <const double*>sw, <double*>params, <double*>grad, n, code,
                              scale, <double>_EPS64, l2, l1, frozen, training, sums,
                              n_parts, n_threads, by_rows, <double*>partp,
                              <double*>scratchp, size, src, update, part_sums)
            else:
                total = _step(&self.plan, <const float*>X, <const float*>Y,
                              <const float*>sw, <float*>params, <float*>grad, n, code,
                              <float>scale, <float>_EPS32, <float>l2, <float>l1, frozen,
                              training, sums, n_parts, n_threads, by_rows, <float*>partp,
                              <float*>scratchp, size, src, update, part_sums)
        return total

    def run_epoch(self, X, Y, sw, order, Xb, Yb, swb, params, grad, Py_ssize_t offset,
                  int code, double alpha, double l1, int n_frozen, bint training,
                  optimizer, double lr, scale=None, clip_norm=None, choice=None, draw=None,
                  int n_parts=1, int n_threads=1, bint openmp=True, double data_scale=1.0):
        """One epoch of training: :meth:`run` and the optimizer's step on each mini-batch.

        The mini-batches are ``Xb.shape[0]`` rows of ``X``, ``Y`` and ``sw``
        at a time (the last may be shorter), taken in the order ``order``
        (gathered into ``Xb``, ``Yb`` and ``swb``), or in place when
        ``order`` is None. For each mini-batch:

        1. ``threads = choice.start(rows)`` (a
           :class:`~sknet._core.thread_choice.ThreadChoice`; without one,
           ``n_threads``), which also become ``optimizer.threads`` (1
           without ``openmp``);
        2. ``draw(rows)``, when given: the dropout draws into the masks;
        3. the step, as :meth:`run` with ``scale = 1 / sum(sw)`` (the rows
           without ``sw``), and the loss ``(data_scale * loss_sum + alpha *
           sum W^2 / 2 + l1 * sum |W|) * scale``;
        4. when the loss is finite, the optimizer's step of ``params[offset:]``
           from ``grad[offset:]``, as ``optimizer.step(params[offset:],
           grad[offset:], lr, scale, gscale)`` takes it (from the state and
           hyper-parameters ``optimizer.kernel`` gives, Adam's step count
           ``optimizer.t`` counted on), with ``gscale`` the factor that brings
           the gradient's norm down to ``clip_norm`` (1 within it or without
           ``clip_norm``); then ``choice.stop()``.

        Parameters
        ----------
        X, Y, sw : ndarray
            The training data: ``X`` of shape (n_samples, units[0]), ``Y``
            of shape (n_samples, units[-1]) in this step's dtype or as
            ``uint8`` (0/1 targets, converted as they are gathered), ``sw``
            of shape (n_samples,) or None; C-contiguous.
        order : ndarray of shape (n_samples,) of intp, or None
            A permutation of the rows.
        Xb, Yb, swb : ndarray
            The mini-batch buffers (``swb`` None without ``sw``).
        params, grad, offset, code, n_frozen, training, n_parts
            As for :meth:`run`; only ``params[offset:]`` is stepped.
        alpha, l1 : float
            The penalties' strengths (divided by each batch's weight sum).
        optimizer : :class:`~sknet._core.optimizers.SGD` or :class:`~sknet._core.optimizers.Adam`
        lr : float
        scale : ndarray or None
            Per-parameter step factors of ``params[offset:]``, C-contiguous in
            its dtype.
        clip_norm : float or None
        data_scale : float, default=1.0
            The factor on each batch's data term in its loss (not in its
            gradient; see :func:`sknet._core.losses.with_data_scale`).

        Returns
        -------
        total : float
            The sum over the mini-batches of each one's loss times its rows;
            at the first mini-batch whose loss is not finite, that loss (and
            no step for it).
        """
        cdef Py_ssize_t n = X.shape[0], batch = Xb.shape[0], start, stop, rows, i
        cdef Py_ssize_t d = self.plan.units[0], k = self.plan.units[self.plan.n_layers]
        cdef Py_ssize_t item = self.dtype.itemsize, size = self._size()
        cdef bint y_bytes = isinstance(Y, np.ndarray) and Y.dtype == np.uint8
        cdef const char* Xp = <const char*>_address(X, self.dtype, (n, d))
        cdef const char* Yp = <const char*>_address(Y, Y.dtype if y_bytes else self.dtype,
                                                     (n, k))
        cdef const char* swp = NULL
        cdef char* Xbp = <char*>_address(Xb, self.dtype, (batch, d))
        cdef char* Ybp = <char*>_address(Yb, self.dtype, (batch, k))
        cdef char* swbp = NULL
        cdef const Py_ssize_t* idx = NULL
        cdef void* pp = <void*>_address(params, self.dtype, (size,))
        cdef void* gp = <void*>_address(grad, self.dtype, (size,))
        cdef const char* x
        cdef const char* y
        cdef const char* s
        cdef double sums[2]
        cdef double total = 0, value, sw_sum, scale_rows, gscale, norm
        cdef double clip = -1.0 if clip_norm is None else clip_norm
        cdef int threads = n_threads
        cdef Source src
        cdef const Source* source
        if batch < 1 or batch > self.batch_size or n_parts < 1 or n_threads < 1:
            raise ValueError("run_epoch needs 1 <= Xb.shape[0] <= batch_size, "
                             "n_parts >= 1 and n_threads >= 1.")
        if sw is not None:
            swp = <const char*>_address(sw, self.dtype, (n,))
            swbp = <char*>_address(swb, self.dtype, (batch,))
        if order is not None:
            idx = <const Py_ssize_t*>_address(order, np.dtype(np.intp), (n,))
            for i in range(n):
                if idx[i] < 0 or idx[i] >= n:
                    raise IndexError(f"order holds row {idx[i]}, outside X's {n} rows.")
        src.X, src.Y, src.idx, src.start = Xp, Yp, idx, 0
        src.Y8 = <const unsigned char*>Yp if y_bytes else NULL
        g = grad[offset:]
        trainable = size - offset
        kind, state1, state2, (h1, h2, h3), avx2 = optimizer.kernel(trainable)
        cdef char* s1 = <char*>_address(state1, self.dtype, (trainable,))
        cdef char* s2 = <char*>_address(state2, self.dtype, (trainable,))
        cdef const char* factors = NULL if scale is None else <const char*>_address(
            scale, self.dtype, (trainable,))
        cdef long t = optimizer.t if kind == ADAM_KERNEL else 0
        cdef int opt_threads = optimizer.threads
        cdef double lr_t = lr
        cdef Update update
        cdef Update* fused = NULL if clip_norm is not None else &update  # clipping: after
        update.kind, update.offset, update.s1, update.s2 = kind, offset, s1, s2
        update.factors, update.avx2, update.alpha, update.l1 = factors, avx2, alpha, l1
        update.h1, update.h2, update.h3 = h1, h2, h3
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            rows = stop - start
            if choice is not None:
                threads = choice.start(rows)
                opt_threads = optimizer.threads = threads if openmp else 1
            x, y, s = Xp + start * d * item, Yp + start * k * item, NULL
            if swp != NULL:
                s = swbp if idx != NULL else swp + start * item
            source = NULL
            if idx != NULL or y_bytes:  # rows gathered or converted into the buffers
                x, y = Xbp if idx != NULL else x, Ybp
                if sw is None:  # by the step's parts, each its own rows
                    src.start = start
                    source = &src
                else:  # here: the weights' sum scales the step
                    with nogil:
                        if self.plan.double_precision:
                            _gather(<const double*>Xp, <const double*>Yp, <const double*>swp,
                                    src.Y8, idx, start, rows, d, k, <double*>Xbp,
                                    <double*>Ybp, <double*>swbp)
                        else:
                            _gather(<const float*>Xp, <const float*>Yp, <const float*>swp,
                                    src.Y8, idx, start, rows, d, k, <float*>Xbp,
                                    <float*>Ybp, <float*>swbp)
            if draw is not None:
                draw(rows)
            sw_sum = rows if sw is None else float(np.add.reduce(
                swb[:rows] if idx != NULL else sw[start:stop]))
            scale_rows = 1.0 / sw_sum
            if kind == ADAM_KERNEL:
                lr_t = lr * sqrt(1 - pow(update.h2, t + 1)) / (1 - pow(update.h1, t + 1))
            update.lr, update.sw_sum = lr_t, sw_sum
            value = self._run_batch(x, y, s, pp, gp, rows, code, scale_rows,
                                    alpha * scale_rows, l1 * scale_rows, n_frozen, training,
                                    sums, n_parts, threads, source, fused)
            value = _batch_loss(data_scale * value, alpha, l1, sums, sw_sum)
            if not isfinite(value):
                return value
            total += value * rows
            if fused == NULL or not update.applied:  # else the step's threads took it
                gscale = 1.0
                if clip_norm is not None:  # as trainer._clip_factor
                    norm = sqrt(float(np.dot(g, g)))
                    gscale = clip / norm if norm > clip else 1.0
                if kind == ADAM_KERNEL:
                    self._adam(pp, gp, s1, s2, factors, offset, trainable, lr_t, h1, h2, h3,
                               gscale, avx2, opt_threads)
                else:
                    self._sgd(pp, gp, s1, factors, offset, trainable, lr, h1, h2 != 0,
                              gscale, opt_threads)
            if kind == ADAM_KERNEL:
                t += 1
                optimizer.t = t
            if choice is not None:
                choice.stop()
            PyErr_CheckSignals()
        return total

    cdef void _adam(self, void* params, void* grad, char* m, char* v, const char* scale,
                    Py_ssize_t offset, Py_ssize_t n, double lr_t, double b1, double b2,
                    double eps, double gscale, bint avx2, int n_threads) noexcept:
        """Adam's step of ``params[offset:]`` (``_optim.adam_step``)."""
        if _forked:
            n_threads = 1
        with nogil:
            if self.plan.double_precision:
                adam_pass(<double*>params + offset, <const double*>grad + offset,
                          <double*>m, <double*>v, <const double*>scale, n, lr_t, b1, b2,
                          eps, gscale, avx2, n_threads)
            else:
                adam_pass(<float*>params + offset, <const float*>grad + offset,
                          <float*>m, <float*>v, <const float*>scale, n, lr_t, b1, b2, eps,
                          gscale, avx2, n_threads)

    cdef void _sgd(self, void* params, void* grad, char* velocity, const char* scale,
                   Py_ssize_t offset, Py_ssize_t n, double lr, double momentum,
                   bint nesterov, double gscale, int n_threads) noexcept:
        """SGD's step of ``params[offset:]`` (``_optim.sgd_step``)."""
        if _forked:
            n_threads = 1
        with nogil:
            if self.plan.double_precision:
                sgd_pass(<double*>params + offset, <const double*>grad + offset,
                         <double*>velocity, <const double*>scale, n, lr, momentum,
                         nesterov, gscale, n_threads)
            else:
                sgd_pass(<float*>params + offset, <const float*>grad + offset,
                         <float*>velocity, <const float*>scale, n, lr, momentum, nesterov,
                         gscale, n_threads)

    def splits_by_rows(self, int n_parts):
        """Whether a step in ``n_parts`` parts runs as blocks of rows, each with its own
        gradient (the step of a small network): where the gradients of the parts
        after the first take at most ``ROWS_GRADIENT_BYTES``."""
        return self._by_rows(n_parts)

    cdef bint _by_rows(self, int n_parts):
        return (n_parts - 1) * self._size() * self.dtype.itemsize <= ROWS_GRADIENT_BYTES

    cdef bint _has_deltas(self):
        cdef int i
        for i in range(self.plan.n_layers):
            if self.plan.deltas[i] == NULL:
                return False
        return True

    cdef void* _part_gradients(self, int n_parts) except? NULL:
        """Room for the gradients of the parts after the first (NULL for one part)."""
        cdef Py_ssize_t size = (n_parts - 1) * self._size()
        if size == 0:
            return NULL
        if self._parts_size < size:
            self._parts = np.empty(size, dtype=self.dtype)
            self._parts_data = <void*><size_t>self._parts.__array_interface__["data"][0]
            self._parts_size = size
        return self._parts_data

    cdef double* _part_sums(self, int n_parts) except NULL:
        """Room for each part's two penalty sums (a step by weights)."""
        if self._part_sums_room is None or self._part_sums_room.size < 2 * n_parts:
            self._part_sums_room = np.zeros(2 * n_parts)
        return <double*><size_t>self._part_sums_room.__array_interface__["data"][0]

    cdef void* _panels(self, int n_parts) except? NULL:
        """Room for each part's panel of a hidden delta and packed ``W.T``, from a
        cache line's start (NULL without hidden layers)."""
        cdef Py_ssize_t size = n_parts * self.plan.part_room, line = _CACHE_LINE // self.dtype.itemsize
        if self.plan.n_layers < 2:
            return NULL
        if self._scratch_size < size:
            room = np.empty(size + line, dtype=self.dtype)
            start = (-room.__array_interface__["data"][0] // self.dtype.itemsize) % line
            self._scratch = room[start:start + size]
            self._scratch_data = <void*><size_t>self._scratch.__array_interface__["data"][0]
            self._scratch_size = size
        return self._scratch_data

    cdef Py_ssize_t _size(self):
        return self.plan.b_off[self.plan.n_layers - 1] + self.plan.units[self.plan.n_layers]

    cdef Py_ssize_t _check(self, X, Y, sw, params, grad) except -1:
        cdef Py_ssize_t n = X.shape[0]
        cdef Plan* p = &self.plan
        if n < 1 or n > self.batch_size:
            raise ValueError(f"A batch of {n} rows does not fit buffers of "
                             f"{self.batch_size} rows.")
        if X.shape[1] != p.units[0] or Y.shape[0] != n or Y.shape[1] != p.units[p.n_layers]:
            raise ValueError(f"X {X.shape} and Y {Y.shape} do not fit the layers.")
        if sw is not None and sw.shape[0] != n:
            raise ValueError("sample_weight does not have one weight per row.")
        self._check_flat(params)
        self._check_flat(grad)
        return n

    cdef int _check_flat(self, flat) except -1:
        cdef Py_ssize_t size = self._size()
        if flat.shape[0] != size:
            raise ValueError(f"params and grad must hold {size} values.")
        return 0

    # -------------------------------------------------------------- #
    # the stages, for a caller that does the products itself           #
    # -------------------------------------------------------------- #
    def forward_layer(self, params, int i, Py_ssize_t n, bint dropping):
        """Bias, activation and dropout of layer ``i``; ``acts[i][:n]`` holds ``a_in @ W``."""
        self._check_layer(i, n)
        self._check_flat(params)
        if dropping and self.plan.drop_kind[i] == 0:
            raise ValueError(f"Layer {i} has no dropout.")
        if self.plan.double_precision:
            _forward_double(&self.plan, params, i, n, dropping)
        else:
            _forward_float(&self.plan, params, i, n, dropping)

    def output_delta(self, Y, sw, Py_ssize_t n, int code, double scale):
        """The output layer's delta into ``deltas[-1][:n]``; returns the loss sum."""
        self._check_layer(self.plan.n_layers - 1, n)
        if Y.shape[0] != n or Y.shape[1] != self.plan.units[self.plan.n_layers]:
            raise ValueError(f"Y {Y.shape} does not fit the output layer.")
        if sw is not None and sw.shape[0] != n:
            raise ValueError("sample_weight does not have one weight per row.")
        if self.plan.double_precision:
            return _delta_double(&self.plan, Y, sw, n, code, scale)
        return _delta_float(&self.plan, Y, sw, n, code, scale)

    def layer_gradient(self, params, grad, int i, Py_ssize_t n, double l2, double l1):
        """Penalty and bias gradient of layer ``i``; returns ``(sum W^2, sum |W|)``.

        ``grad``'s weights of layer ``i`` already hold ``a_in.T @ delta``.
        """
        cdef double sums[2]
        self._check_layer(i, n)
        self._check_flat(params)
        self._check_flat(grad)
        sums[0] = sums[1] = 0
        if self.plan.double_precision:
            _gradient_double(&self.plan, params, grad, i, n, l2, l1, sums)
        else:
            _gradient_float(&self.plan, params, grad, i, n, l2, l1, sums)
        return sums[0], sums[1]

    def hidden_delta(self, int j, Py_ssize_t n, bint dropped):
        """Mask and derivative of layer ``j``; ``deltas[j][:n]`` holds ``delta_above @ W.T``."""
        self._check_layer(j, n)
        if dropped and self.plan.drop_kind[j] == 0:
            raise ValueError(f"Layer {j} has no dropout.")
        with nogil:
            if self.plan.double_precision:
                _hidden_delta(&self.plan, <double*>self.plan.deltas[j], j, 0, n, dropped)
            else:
                _hidden_delta(&self.plan, <float*>self.plan.deltas[j], j, 0, n, dropped)

    cdef int _check_layer(self, int i, Py_ssize_t n) except -1:
        if i < 0 or i >= self.plan.n_layers:
            raise IndexError(f"No layer {i}.")
        if self.plan.deltas[i] == NULL:
            raise ValueError(f"Layer {i} has no delta buffer (set_deltas).")
        if n < 1 or n > self.batch_size:
            raise ValueError(f"A batch of {n} rows does not fit buffers of "
                             f"{self.batch_size} rows.")
        return 0


#: A step split between threads gives each block of rows its own gradient
#: (summed after) where those of the blocks after the first take at most this,
ROWS_GRADIENT_BYTES = 1 << 18
#: and each block has at least this many rows (a smaller batch: fewer blocks).
ROWS_PART_MIN_ROWS = 16
#: A step by rows computes a hidden delta's product in panels of rows of about
#: this size (6 to 60 rows), which stay in the cache while the panel becomes
#: the delta.
DELTA_PANEL_BYTES = 1 << 14
#: Its products run on the layer's ``W.T`` packed once per step (no cost per
#: call) where that takes at most this, else on BLAS.
PACKED_BYTES = 1 << 15
#: A step by rows runs each layer's products on its weights or a part's deltas
#: packed, a block of columns at a time, in a room per part sized for the
#: whole operands of the layers at most ``NARROW_UNITS`` (32) wide (an output
#: layer mostly) where that takes at most this: BLAS's own packing costs more
#: than such products.
NARROW_BYTES = 1 << 16

cdef Py_ssize_t _CACHE_LINE = 64  # bytes
cdef double _EPS64 = np.finfo(np.float64).eps
cdef float _EPS32 = np.finfo(np.float32).eps


cdef size_t _address(arr, dtype, shape) except 0:
    """The data address of a C-contiguous ``arr`` of ``dtype`` and ``shape``."""
    if (not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape
            or not arr.flags.c_contiguous):
        raise ValueError(f"A buffer must be a C-contiguous {dtype} array of shape {shape}.")
    return arr.__array_interface__["data"][0]


cdef void _forward_double(Plan* p, double[::1] params, int i, Py_ssize_t n,
                          bint dropping) except *:
    with nogil:
        _forward_layer(p, &params[0], i, 0, n, dropping)


cdef void _forward_float(Plan* p, float[::1] params, int i, Py_ssize_t n,
                         bint dropping) except *:
    with nogil:
        _forward_layer(p, &params[0], i, 0, n, dropping)


cdef double _delta_double(Plan* p, const double[:, ::1] Y, sw, Py_ssize_t n, int code,
                          double scale) except? -1:
    cdef const double[::1] w
    cdef const double* swp = NULL
    cdef int last = p.n_layers - 1
    cdef double total
    if sw is not None:
        w = sw
        swp = &w[0]
    with nogil:
        _output_delta(<double*>p.acts[last], &Y[0, 0], swp, <double*>p.deltas[last], n,
                      p.units[last + 1], code, scale, _EPS64, p.row_loss)
        total = _sum_rows(p.row_loss, n)
    return total


cdef double _delta_float(Plan* p, const float[:, ::1] Y, sw, Py_ssize_t n, int code,
                         double scale) except? -1:
    cdef const float[::1] w
    cdef const float* swp = NULL
    cdef int last = p.n_layers - 1
    cdef double total
    if sw is not None:
        w = sw
        swp = &w[0]
    with nogil:
        _output_delta(<float*>p.acts[last], &Y[0, 0], swp, <float*>p.deltas[last], n,
                      p.units[last + 1], code, <float>scale, _EPS32, p.row_loss)
        total = _sum_rows(p.row_loss, n)
    return total


cdef void _gradient_double(Plan* p, double[::1] params, double[::1] grad, int i,
                           Py_ssize_t n, double l2, double l1, double* sums) except *:
    with nogil:
        _layer_gradient(p, &params[0], &grad[0], i, n, l2, l1, sums)


cdef void _gradient_float(Plan* p, float[::1] params, float[::1] grad, int i,
                          Py_ssize_t n, double l2, double l1, double* sums) except *:
    with nogil:
        _layer_gradient(p, &params[0], &grad[0], i, n, <float>l2, <float>l1, sums)


cdef double _run_typed(DenseStep step, const floating[:, ::1] X, const floating[:, ::1] Y,
                       const floating[::1] sw, floating[::1] params, floating[::1] grad,
                       Py_ssize_t n, int code, double scale, double l2, double l1,
                       int frozen, bint training, double* sums, int n_parts,
                       int n_threads) except? -1:
    """:meth:`DenseStep.run` on the typed arrays' addresses."""
    cdef const floating* swp = NULL
    if sw is not None:
        swp = &sw[0]
    return step._run_batch(&X[0, 0], &Y[0, 0], swp, &params[0], &grad[0], n, code, scale,
                           l2, l1, frozen, training, sums, n_parts, n_threads)

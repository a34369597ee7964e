"""The time loops of the recurrent cells, forward and back through time, without the GIL.

One call runs one direction of one layer over every time step: per step the
matrix products with the weights (forward ``x_t W_ih^T + h_{t-1} W_hh^T``,
backward ``dG_t W_hh``) and the gate arithmetic of each sequence in C loops.
The backward loops also add each step's terms to the weight and bias
gradients (``dG_t^T x_t``, ``dG_t^T h_{t-1}`` and the rows' sums of ``dG_t``)
while the step's rows are in cache (the LSTM's several steps at a time, one
product over their rows: four in a single layer, whose loop keeps one step's
gate gradients, two where every step's are kept); the gradient with respect
to the layer's input, one product for all steps, stays with the caller.

Each sequence's loop is independent of the others', so a call cuts the
batch's rows into ``parts`` blocks and runs ``threads`` of them at once on
OpenMP's threads (one in a process forked from one that used them: GNU
OpenMP's workers do not survive a fork). A block is computed alike whichever
thread runs it, so the result does not depend on ``threads``; the backward
loops write each block's weight gradients into arrays of its own, for the
caller to sum in a fixed order.

Layouts, all row-major. A per-step array is ``(T, n, W)`` and *blocked*:
seen as ``T n`` rows, block ``c``'s rows (``lo_c:lo_{c+1}`` of the batch,
``lo_c = c n // P`` for ``P = min(parts, n)`` blocks) take its rows
``T lo_c`` to ``T lo_{c+1}``, time-major among themselves (step ``t``'s
rows, then step ``t + 1``'s). So each block's thread streams through memory
of its own from step to step, where the time-major layout of the whole batch
interleaved the blocks at every step (each block's forward loop then ran
about 7 % slower on two threads, and up to 1.7 times slower when the
machine's memory was busy). With one block (``parts=1``) the layout is
time-major, ``[t, i]`` being step ``t`` of sequence ``i``.
:func:`blocked` and :func:`time_major` convert. ``pad``, ``record`` and the
``(n, W)`` work arrays are indexed by batch row (``pad`` and ``record``
time-major); a per-step array with a zero stride along time is one step's
rows, seen at every step.

* ``x`` ``(T, n, F)``: the layer's input; rows may be strided, the last axis
  is contiguous.
* ``A`` ``(T, n, G * H)``: on return the activated gates (the
  pre-activations, biases included, for the simple RNN), which the backward
  pass reads.
* ``hs`` ``(T, n, H)``: the states; rows may be strided (a direction's
  columns of the layer's output sequence), the last axis is contiguous.
* ``pad`` ``(T, n)`` of 0/1 or None: a padding step copies the state of the
  step before it (the zero state when it is the direction's first) and
  carries the gradients back unchanged; its gate gradients are zero.
* ``dG`` ``(T, n, G * H)``: the gradients with respect to the gates'
  pre-activations (GRU: ``dGh`` holds those of the ``W_hh`` side).

The per-step products are small (a block of a batch's rows, tens of them) and
their weights do not change within a call. So a call of up to
``_PACKED_MAX_ROWS`` rows packs the weights once (``[W_ih^T; W_hh^T]``
forward, ``W_hh`` backward) and runs every step's product on a
register-blocked kernel over them (``_small_gemm.h``); the input projection
and the recurrent product are then one product over ``[x_t, h_{t-1}]``
(two, for the GRU, whose ``h_{t-1} W_hh^T`` is kept apart), and the
weight gradients' terms read ``dG_t`` as a transpose, in place, against one
step's rows packed. A larger call runs them in BLAS (``gemm`` through
``scipy.linalg.cython_blas``, so that nothing links a BLAS of its own),
which a fit holds to one thread where numpy brings a BLAS of its own
(``sknet._base._blas_plan``): the two libraries' thread pools then never
compete.

The formulas are those of :mod:`sknet._core.recurrent`'s cells (PyTorch's).
The logistic and tanh are computed from a polynomial exponential, within a
few units in the last place of each precision, in branch-free code that the
compiler vectorizes (the other activations' exponentials are the C library's).
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

import numpy as np
from scipy.linalg.cython_blas cimport dgemm, sgemm

from sknet._core._dense_fast import in_forked_child
from sknet._core._small_gemm cimport (SK_NR_d, SK_NR_f, SK_PACKED_SIZE, _gemm_packed,
                                      _pack)

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    #include "_small_gemm.h"

    /* The gate loops select with ?: ; gcc if-converts (and so vectorizes) them
       only when floating-point exceptions need not be kept exact. */
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC push_options
    #pragma GCC optimize ("no-trapping-math")
    #endif

    /* The gate loops are compiled three times, for AVX-512 (x86-64-v4), for
       AVX2 (with FMA: x86-64-v3) and for the baseline, and the loader picks
       one by the processor's features (gcc on x86-64 Linux): _small_gemm.h's
       SK_CLONES. */
    #define SK_CLONES_f SK_CLONES
    #define SK_CLONES_d SK_CLONES

    #if defined(_MSC_VER)
    #define SK_RESTRICT __restrict
    #else
    #define SK_RESTRICT __restrict__
    #endif

    #include "_vector_math.h"

    /* The "exp" activation's: the C library's, unclamped (sk_expm1_* for the ELU
       come from _vector_math.h). */
    static inline float sk_exp_f(float x) { return expf(x); }
    static inline double sk_exp_d(double x) { return exp(x); }

    /* The simple RNN's activations, by code (see ACTIVATION_CODES). */
    enum { SK_IDENTITY, SK_TANH, SK_LOGISTIC, SK_RELU, SK_LEAKY_RELU, SK_ELU, SK_EXP };

    /* One sequence's gate arithmetic for one step, for float (f) and double (d):
       the same text twice through a macro. */
    #define SK_CELL_ROWS(T, S)                                                         \\
    SK_CLONES_##S static void sk_act_forward_##S(int code, T p1, T p2, T upper,        \\
                                   const T *SK_RESTRICT z, T *SK_RESTRICT h,           \\
                                   Py_ssize_t H) {                                     \\
        Py_ssize_t j;                                                                  \\
        switch (code) {                                                                \\
        case SK_IDENTITY:                                                              \\
            for (j = 0; j < H; j++) h[j] = z[j];                                       \\
            break;                                                                     \\
        case SK_TANH:                                                                  \\
            for (j = 0; j < H; j++) h[j] = sk_tanh_##S(z[j]);                          \\
            break;                                                                     \\
        case SK_LOGISTIC:                                                              \\
            for (j = 0; j < H; j++) h[j] = sk_sigmoid_##S(z[j]);                       \\
            break;                                                                     \\
        case SK_RELU:                                                                  \\
            for (j = 0; j < H; j++) h[j] = z[j] > 0 ? z[j] : 0;                        \\
            break;                                                                     \\
        case SK_LEAKY_RELU:                                                            \\
            for (j = 0; j < H; j++) h[j] = z[j] < 0 ? z[j] * p1 : z[j];                \\
            break;                                                                     \\
        case SK_ELU: /* p1 = alpha, p2 = scale */                                      \\
            for (j = 0; j < H; j++)                                                    \\
                h[j] = z[j] > 0 ? z[j] * p2 : sk_expm1_##S(z[j]) * (p1 * p2);          \\
            break;                                                                     \\
        case SK_EXP: /* clipped below the overflow threshold */                        \\
            for (j = 0; j < H; j++) h[j] = sk_exp_##S(z[j] < upper ? z[j] : upper);    \\
            break;                                                                     \\
        }                                                                              \\
    }                                                                                  \\
                                                                                       \\
    /* g = dh * f'(z), from the output h = f(z). */                                    \\
    SK_CLONES_##S static void sk_act_backward_##S(int code, T p1, T p2,                \\
                                    const T *SK_RESTRICT h,                            \\
                                    const T *SK_RESTRICT dh, T *SK_RESTRICT g,         \\
                                    Py_ssize_t H) {                                    \\
        Py_ssize_t j;                                                                  \\
        switch (code) {                                                                \\
        case SK_IDENTITY:                                                              \\
            for (j = 0; j < H; j++) g[j] = dh[j];                                      \\
            break;                                                                     \\
        case SK_TANH:                                                                  \\
            for (j = 0; j < H; j++) g[j] = dh[j] * (1 - h[j] * h[j]);                  \\
            break;                                                                     \\
        case SK_LOGISTIC:                                                              \\
            for (j = 0; j < H; j++) g[j] = dh[j] * h[j] * (1 - h[j]);                  \\
            break;                                                                     \\
        case SK_RELU:                                                                  \\
            for (j = 0; j < H; j++) g[j] = h[j] > 0 ? dh[j] : 0;                       \\
            break;                                                                     \\
        case SK_LEAKY_RELU:                                                            \\
            for (j = 0; j < H; j++) g[j] = h[j] <= 0 ? dh[j] * p1 : dh[j];             \\
            break;                                                                     \\
        case SK_ELU:                                                                   \\
            for (j = 0; j < H; j++) g[j] = dh[j] * (h[j] > 0 ? p2 : h[j] + p2 * p1);   \\
            break;                                                                     \\
        case SK_EXP:                                                                   \\
            for (j = 0; j < H; j++) g[j] = dh[j] * h[j];                               \\
            break;                                                                     \\
        }                                                                              \\
    }                                                                                  \\
                                                                                       \\
    /* LSTM: pre-activations a + bias = [i f g o] turn into the gates; c, tanh c, h.  \\
       Each gate block is its own loop, short and free of dependences between      \\
       elements, so that the processor overlaps its iterations (one loop over      \\
       all of a step's arithmetic ran latency-bound, 15% slower). */               \\
    SK_CLONES_##S static void sk_lstm_forward_##S(T *SK_RESTRICT a, const T *SK_RESTRICT bias, \\
                                    const T *SK_RESTRICT c_prev,                       \\
                                    T *SK_RESTRICT c, T *SK_RESTRICT tc,               \\
                                    T *SK_RESTRICT h, Py_ssize_t H) {                  \\
        const T *SK_RESTRICT ai = a, *SK_RESTRICT af = a + H;                          \\
        const T *SK_RESTRICT ag = a + 2 * H, *SK_RESTRICT ao = a + 3 * H;              \\
        Py_ssize_t j;                                                                  \\
        for (j = 0; j < 2 * H; j++) a[j] = sk_sigmoid_##S(a[j] + bias[j]);             \\
        for (j = 2 * H; j < 3 * H; j++) a[j] = sk_tanh_##S(a[j] + bias[j]);            \\
        for (j = 3 * H; j < 4 * H; j++) a[j] = sk_sigmoid_##S(a[j] + bias[j]);         \\
        for (j = 0; j < H; j++) {                                                      \\
            T cj = af[j] * c_prev[j] + ai[j] * ag[j];                                  \\
            T t = sk_tanh_##S(cj);                                                     \\
            c[j] = cj; tc[j] = t; h[j] = ao[j] * t;                                    \\
        }                                                                              \\
    }                                                                                  \\
                                                                                       \\
    /* LSTM backward: d = dZ of the four gates; dc becomes dL/dc_{t-1} in place. */    \\
    SK_CLONES_##S static void sk_lstm_backward_##S(const T *SK_RESTRICT a,             \\
                                     const T *SK_RESTRICT c_prev,                      \\
                                     const T *SK_RESTRICT tc, const T *SK_RESTRICT dh, \\
                                     T *SK_RESTRICT dc, T *SK_RESTRICT d,              \\
                                     Py_ssize_t H) {                                   \\
        const T *SK_RESTRICT ai = a, *SK_RESTRICT af = a + H;                          \\
        const T *SK_RESTRICT ag = a + 2 * H, *SK_RESTRICT ao = a + 3 * H;              \\
        T *SK_RESTRICT di = d, *SK_RESTRICT df = d + H;                                \\
        T *SK_RESTRICT dg = d + 2 * H, *SK_RESTRICT dout = d + 3 * H;                  \\
        Py_ssize_t j;                                                                  \\
        for (j = 0; j < H; j++) {                                                      \\
            T i = ai[j], f = af[j], g = ag[j], o = ao[j], t = tc[j];                   \\
            T dcj = dc[j] + dh[j] * o * (1 - t * t);                                   \\
            dout[j] = dh[j] * t * (o * (1 - o));                                       \\
            di[j] = dcj * g * (i * (1 - i));                                           \\
            df[j] = dcj * c_prev[j] * (f * (1 - f));                                   \\
            dg[j] = dcj * i * (1 - g * g);                                             \\
            dc[j] = dcj * f;                                                           \\
        }                                                                              \\
    }                                                                                  \\
                                                                                       \\
    /* GRU: a + bias = [gi_r gi_z gi_n] turns into [r z n]; gh = h_{t-1} W_hh^T. */    \\
    SK_CLONES_##S static void sk_gru_forward_##S(T *SK_RESTRICT a, const T *SK_RESTRICT bias, \\
                                   const T *SK_RESTRICT gh,                            \\
                                   const T *SK_RESTRICT b_hn, const T *SK_RESTRICT h_prev, \\
                                   T *SK_RESTRICT ghn, T *SK_RESTRICT h, Py_ssize_t H) { \\
        const T *SK_RESTRICT ar = a, *SK_RESTRICT az = a + H;                          \\
        T *SK_RESTRICT an = a + 2 * H;                                                 \\
        Py_ssize_t j;                                                                  \\
        /* r and z first, in a loop of their own (as the LSTM's gates) */             \\
        for (j = 0; j < 2 * H; j++) a[j] = sk_sigmoid_##S((a[j] + bias[j]) + gh[j]);   \\
        for (j = 0; j < H; j++) {                                                      \\
            T hn = gh[2 * H + j] + b_hn[j];                                            \\
            T nj = sk_tanh_##S((an[j] + bias[2 * H + j]) + ar[j] * hn);                \\
            an[j] = nj; ghn[j] = hn;                                                   \\
            h[j] = nj + (h_prev[j] - nj) * az[j];                                      \\
        }                                                                              \\
    }                                                                                  \\
                                                                                       \\
    /* GRU backward: d = dZ on the W_ih side, dhh on the W_hh side (r dn for n);      \\
       dh_prev gets the direct part dh z (the caller adds dhh W_hh). */               \\
    SK_CLONES_##S static void sk_gru_backward_##S(const T *SK_RESTRICT a,              \\
                                    const T *SK_RESTRICT ghn,                          \\
                                    const T *SK_RESTRICT h_prev, const T *SK_RESTRICT dh, \\
                                    T *SK_RESTRICT d, T *SK_RESTRICT dhh,              \\
                                    T *SK_RESTRICT dh_prev, Py_ssize_t H) {            \\
        const T *SK_RESTRICT ar = a, *SK_RESTRICT az = a + H, *SK_RESTRICT an = a + 2 * H; \\
        Py_ssize_t j;                                                                  \\
        for (j = 0; j < H; j++) {                                                      \\
            T r = ar[j], z = az[j], nj = an[j];                                        \\
            T direct = dh[j] * z;                                                      \\
            T dn = (dh[j] - direct) * (1 - nj * nj);                                   \\
            T dr = dn * ghn[j] * (r * (1 - r));                                        \\
            T dz = dh[j] * (h_prev[j] - nj) * (z * (1 - z));                           \\
            d[j] = dr; d[H + j] = dz; d[2 * H + j] = dn;                               \\
            dhh[j] = dr; dhh[H + j] = dz; dhh[2 * H + j] = dn * r;                     \\
            dh_prev[j] = direct;                                                       \\
        }                                                                              \\
    }                                                                                  \\
                                                                                       \\
    /* dst[i ldd + j] += src[i lds + j] for rows i < n, columns j < W (ldd = 0:     \\
       the rows summed into one; lds = 0: one row added to each). */                \\
    SK_CLONES_##S static void sk_add_rows_##S(T *SK_RESTRICT dst, Py_ssize_t ldd,      \\
                                const T *SK_RESTRICT src, Py_ssize_t lds,          \\
                                Py_ssize_t n, Py_ssize_t W) {                      \\
        Py_ssize_t i, j;                                                               \\
        for (i = 0; i < n; i++)                                                        \\
            for (j = 0; j < W; j++) dst[i * ldd + j] += src[i * lds + j];              \\
    }

    SK_CELL_ROWS(float, f)
    SK_CELL_ROWS(double, d)

    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC pop_options
    #endif
    """
    void sk_act_forward_f(int code, float p1, float p2, float upper, const float *z,
                          float *h, Py_ssize_t H) noexcept nogil
    void sk_act_forward_d(int code, double p1, double p2, double upper, const double *z,
                          double *h, Py_ssize_t H) noexcept nogil
    void sk_act_backward_f(int code, float p1, float p2, const float *h, const float *dh,
                           float *g, Py_ssize_t H) noexcept nogil
    void sk_act_backward_d(int code, double p1, double p2, const double *h,
                           const double *dh, double *g, Py_ssize_t H) noexcept nogil
    void sk_lstm_forward_f(float *a, const float *bias, const float *c_prev, float *c,
                           float *tc, float *h, Py_ssize_t H) noexcept nogil
    void sk_lstm_forward_d(double *a, const double *bias, const double *c_prev, double *c,
                           double *tc, double *h, Py_ssize_t H) noexcept nogil
    void sk_lstm_backward_f(const float *a, const float *c_prev, const float *tc,
                            const float *dh, float *dc, float *d, Py_ssize_t H) noexcept nogil
    void sk_lstm_backward_d(const double *a, const double *c_prev, const double *tc,
                            const double *dh, double *dc, double *d,
                            Py_ssize_t H) noexcept nogil
    void sk_gru_forward_f(float *a, const float *bias, const float *gh, const float *b_hn,
                          const float *h_prev, float *ghn, float *h, Py_ssize_t H) noexcept nogil
    void sk_gru_forward_d(double *a, const double *bias, const double *gh,
                          const double *b_hn, const double *h_prev, double *ghn, double *h,
                          Py_ssize_t H) noexcept nogil
    void sk_gru_backward_f(const float *a, const float *ghn, const float *h_prev,
                           const float *dh, float *d, float *dhh, float *dh_prev,
                           Py_ssize_t H) noexcept nogil
    void sk_gru_backward_d(const double *a, const double *ghn, const double *h_prev,
                           const double *dh, double *d, double *dhh, double *dh_prev,
                           Py_ssize_t H) noexcept nogil
    void sk_add_rows_f(float *dst, Py_ssize_t ldd, const float *src, Py_ssize_t lds,
                       Py_ssize_t n, Py_ssize_t W) noexcept nogil
    void sk_add_rows_d(double *dst, Py_ssize_t ldd, const double *src, Py_ssize_t lds,
                       Py_ssize_t n, Py_ssize_t W) noexcept nogil
    int SK_IDENTITY, SK_TANH, SK_LOGISTIC, SK_RELU, SK_LEAKY_RELU, SK_ELU, SK_EXP

#: The simple RNN's activations computed here, by name; others are called back.
ACTIVATION_CODES = {"identity": SK_IDENTITY, "tanh": SK_TANH, "logistic": SK_LOGISTIC,
                    "relu": SK_RELU, "leaky_relu": SK_LEAKY_RELU, "elu": SK_ELU,
                    "selu": SK_ELU, "exp": SK_EXP}

cdef enum:
    _CALLBACK = -1
    # Up to this many rows per call, the per-step products run on the weights
    # packed once per call (``_small_gemm.h``); above, BLAS, whose threads
    # (outside a fit's split, which holds it to one) then gain more than packing.
    _PACKED_MAX_ROWS = 128
    # The LSTM's backward loop on one step's rows of dG (a single layer) adds
    # the weight gradients' terms of this many steps at a time: one product
    # over all their rows, so that a block's gradients are read and written
    # once per that many steps.
    _HELD_STEPS = 4

#: The code that calls ``forward_step(t)`` / ``backward_step(t)`` back instead.
CALLBACK = _CALLBACK

#: Calls of up to this many rows run their per-step products on packed weights.
PACKED_MAX_ROWS = _PACKED_MAX_ROWS


# --------------------------------------------------------------------------- #
# helpers                                                                      #
# --------------------------------------------------------------------------- #
cdef inline void _gemm(char *ta, char *tb, int m, int n, int k, const floating *a,
                       int lda, const floating *b, int ldb, floating beta, floating *c,
                       int ldc) noexcept nogil:
    """``C = op(A) op(B) + beta C``, column-major (BLAS's convention)."""
    cdef floating one = 1
    if floating is float:
        sgemm(ta, tb, &m, &n, &k, &one, <float *>a, &lda, <float *>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(ta, tb, &m, &n, &k, &one, <double *>a, &lda, <double *>b, &ldb, &beta, c, &ldc)


cdef floating *_packed(const floating *W_ih, int F, const floating *W_hh, int H, int GH,
                       Py_ssize_t n) except? NULL:
    """The weights packed for :func:`_gemm_packed` (freed by the caller), or NULL
    (BLAS) for a call of more than ``_PACKED_MAX_ROWS`` rows.

    With ``W_ih`` (the forward loops): ``[W_ih^T; W_hh^T]``, ``F + H`` rows
    per panel. Without (NULL, the backward loops): ``W_hh``, ``GH`` rows.
    """
    cdef int K = F + H if W_ih != NULL else GH, N = GH if W_ih != NULL else H
    cdef floating *packed = _panels(W_hh, n, K, N)
    if packed == NULL:
        return NULL
    if W_ih == NULL:
        _pack(W_hh, H, 1, GH, H, packed, 0, GH)
    else:
        _pack(W_ih, 1, F, F, GH, packed, 0, K)
        _pack(W_hh, 1, H, H, GH, packed, F, K)
    return packed


cdef floating *_panels(const floating *like, Py_ssize_t n, int K, int N,
                       Py_ssize_t count=1) except? NULL:
    """Room for ``count`` ``K x N`` matrices packed into panels, ``_panel_room``
    apart (freed by the caller; ``like`` gives the type), or NULL (BLAS) for
    a call of more than ``_PACKED_MAX_ROWS`` rows."""
    if n > _PACKED_MAX_ROWS:
        return NULL
    cdef floating *panels = <floating *>malloc(count * _panel_room(like, K, N)
                                               * sizeof(floating))
    if panels == NULL:
        raise MemoryError()
    return panels


cdef inline size_t _panel_room(const floating *like, int K, int N) noexcept:
    """The items of a ``K x N`` matrix packed into panels."""
    return SK_PACKED_SIZE(K, N, SK_NR_f if floating is float else SK_NR_d)


cdef inline void _step_product(const floating *x, int ldx, int F, const floating *W_ih,
                               const floating *h, int ldh, int H, const floating *W_hh,
                               const floating *packed, int n, int GH, floating *out,
                               int ldo) noexcept nogil:
    """``out = x W_ih^T + h W_hh^T``, either term left out where its rows are NULL.

    ``x`` is ``(n, F)`` and ``h`` ``(n, H)``, rows ``ldx`` and ``ldh`` apart.
    """
    cdef int nr = SK_NR_f if floating is float else SK_NR_d
    if packed != NULL and x != NULL:
        _gemm_packed(n, GH, x, ldx, F, h, ldh, H if h != NULL else 0, packed, F + H, out,
                     ldo, False)
    elif packed != NULL:
        _gemm_packed(n, GH, h, ldh, H, NULL, 0, 0, packed + F * nr, F + H, out, ldo, False)
    else:
        if x != NULL:
            _gemm(b"T", b"N", GH, n, F, W_ih, F, x, ldx, 0, out, ldo)
        if h != NULL:
            _gemm(b"T", b"N", GH, n, H, W_hh, H, h, ldh, 1 if x != NULL else 0, out, ldo)


cdef inline void _back_product(const floating *dG, int GH, const floating *W_hh,
                               const floating *packed, int n, int H, floating beta,
                               floating *out) noexcept nogil:
    """``out = dG W_hh + beta out``, ``dG`` ``(n, GH)``, ``out`` ``(n, H)`` contiguous."""
    if packed != NULL:
        _gemm_packed(n, H, dG, GH, GH, NULL, 0, 0, packed, GH, out, H, beta != 0)
    else:
        _gemm(b"N", b"N", H, n, GH, W_hh, H, dG, GH, beta, out, H)


cdef inline Py_ssize_t _row_stride(name, Py_ssize_t[8] strides, Py_ssize_t[8] shape,
                                   Py_ssize_t itemsize) except -1:
    """The row stride in items of a blocked ``(T, n, H)`` array whose rows are
    contiguous (and whose steps follow each other's rows)."""
    if strides[2] != itemsize or strides[1] % itemsize:
        raise ValueError(f"{name}: its rows must be contiguous and aligned")
    _steps_follow(name, shape[0], shape[1], strides[0], strides[1])
    return strides[1] // itemsize


cdef int _steps_follow(name, Py_ssize_t T, Py_ssize_t n, Py_ssize_t step,
                       Py_ssize_t row) except -1:
    """A blocked per-step array's steps (``step`` bytes apart) are its ``n`` rows
    (``row`` bytes apart) apart, or 0 apart (one step's rows)."""
    if T > 1 and step != 0 and step != n * row:
        raise ValueError(f"{name}: each step's rows must follow the step before's")
    return 0


cdef inline floating *_steps_of(const floating *a, Py_ssize_t[8] strides, Py_ssize_t T,
                                Py_ssize_t r0, Py_ssize_t r1,
                                Py_ssize_t *step) noexcept nogil:
    """Block ``r0:r1`` of a blocked per-step array that starts at ``a``: its first
    step's first row, and in ``step`` the items from one step's rows to the next's
    (0 for an array with a zero stride along time: one step's rows)."""
    cdef Py_ssize_t ld = strides[1] // sizeof(floating)
    if strides[0] == 0:
        step[0] = 0
        return <floating *>a + r0 * ld
    step[0] = (r1 - r0) * ld
    return <floating *>a + T * r0 * ld


def blocked(a, Py_ssize_t parts, out=None):
    """A time-major ``(T, n, W)`` array in the blocked layout of ``parts`` blocks,
    into ``out`` (C-contiguous, apart from ``a``; a new array when None; see the
    module's notes)."""
    a = np.asarray(a)
    T, n = a.shape[:2]
    P = _blocks(parts, n)
    out = np.empty_like(a, order="C") if out is None else out
    flat = out.reshape((T * n,) + a.shape[2:])
    for c in range(P):
        lo, hi = _lo(c, n, P), _lo(c + 1, n, P)
        flat[T * lo:T * hi] = a[:, lo:hi].reshape(((hi - lo) * T,) + a.shape[2:])
    return out


def time_major(a, Py_ssize_t parts, out=None):
    """The time-major ``(T, n, W)`` array of ``a``, in the blocked layout of ``parts``
    blocks, into ``out`` (apart from ``a``; when None, ``a`` itself for one block,
    else a new array)."""
    a = np.asarray(a)
    T, n = a.shape[:2]
    P = _blocks(parts, n)
    if P == 1:
        if out is None:
            return a
        np.copyto(out, a)
        return out
    out = np.empty(a.shape, a.dtype) if out is None else out
    flat = np.ascontiguousarray(a).reshape((T * n,) + a.shape[2:])
    for c in range(P):
        lo, hi = _lo(c, n, P), _lo(c + 1, n, P)
        out[:, lo:hi] = flat[T * lo:T * hi].reshape((T, hi - lo) + a.shape[2:])
    return out


cdef floating *_last_rows(floating[:, :] last, Py_ssize_t n, Py_ssize_t H,
                          Py_ssize_t *ld) except? NULL:
    """Where a forward loop copies each sequence's last state: ``last`` ``(n, H)``
    (rows ``ld`` apart, each contiguous), or NULL for None."""
    ld[0] = 0
    if last is None:
        return NULL
    _check([("last", last.shape, (n, H))])
    if last.strides[1] != sizeof(floating) or last.strides[0] % sizeof(floating):
        raise ValueError("last: each row must be contiguous")
    ld[0] = last.strides[0] // sizeof(floating)
    return &last[0, 0] if n > 0 else NULL


cdef inline void _keep_last(floating *last, Py_ssize_t ldl, const floating *h,
                            Py_ssize_t ldh, Py_ssize_t n, Py_ssize_t H) noexcept nogil:
    """A block's ``n`` states ``h`` (rows ``ldh`` apart) into ``last`` (``ldl`` apart;
    nothing for NULL): on the thread whose caches hold them."""
    cdef Py_ssize_t i
    if last == NULL:
        return
    for i in range(n):
        _copy_row(last + i * ldl, h + i * ldh, H)


cdef inline void _copy_row(floating *dst, const floating *src, Py_ssize_t H) noexcept nogil:
    memcpy(dst, src, H * sizeof(floating))


cdef inline void _add_rows(floating *dst, Py_ssize_t ldd, const floating *src,
                           Py_ssize_t lds, Py_ssize_t n, Py_ssize_t W) noexcept nogil:
    """``dst[i ldd + j] += src[i lds + j]`` for ``n`` rows of ``W`` (``ldd = 0``: the rows
    summed into one; ``lds = 0``: one row added to each)."""
    if floating is float:
        sk_add_rows_f(dst, ldd, src, lds, n, W)
    else:
        sk_add_rows_d(dst, ldd, src, lds, n, W)


cdef inline void *_zeros(Py_ssize_t size, size_t itemsize) except NULL:
    """A zero state row of ``size`` items (freed by the caller)."""
    cdef void *z = calloc(size if size > 0 else 1, itemsize)
    if z == NULL:
        raise MemoryError()
    return z


def _strided(name, arr):
    """``(name, strides, shape)`` of a 3-D array, for :func:`_rows_contiguous`."""
    return name, arr.strides, arr.shape


def _maybe(name, arr):
    """``(_strided(name, arr),)`` for an optional 3-D array, or ``()``."""
    return () if arr is None else (_strided(name, arr),)


def _rows_contiguous(arrays, Py_ssize_t itemsize):
    """Each ``(T, n, W)`` array's rows are contiguous and ``W`` apart, and its steps
    ``n`` rows apart (or 0: one step's rows).

    A block's loop walks rows ``r0:r1`` of each step from a pointer to row
    ``r0``, ``W`` items a row.
    """
    for name, strides, shape in arrays:
        if strides[2] != itemsize or strides[1] != shape[2] * itemsize:
            raise ValueError(f"{name}: each step's rows must be contiguous")
        _steps_follow(name, shape[0], shape[1], strides[0], strides[1])


def _check(shapes):
    """Every array of ``shapes`` (name, shape, expected) has its expected shape."""
    for name, shape, expected in shapes:
        if tuple(shape[:len(expected)]) != expected:
            raise ValueError(f"{name} has shape {tuple(shape)}, expected {expected}")


# --------------------------------------------------------------------------- #
# blocks of rows                                                               #
# --------------------------------------------------------------------------- #
cdef inline Py_ssize_t _blocks(Py_ssize_t parts, Py_ssize_t n) noexcept:
    """How many blocks of rows a batch of ``n`` rows runs in (at least one)."""
    return max(1, min(parts, n))


cdef inline int _team(int threads, Py_ssize_t P):
    """The OpenMP threads that run ``P`` blocks: one in a forked child (GNU
    OpenMP's workers do not exist there)."""
    if threads <= 1 or P <= 1 or in_forked_child():
        return 1
    return <int>min(threads, P)


cdef inline Py_ssize_t _lo(Py_ssize_t c, Py_ssize_t n, Py_ssize_t P) noexcept nogil:
    """The first row of block ``c`` of ``P`` blocks of ``n`` rows."""
    return c * n // P


cdef inline Py_ssize_t _block_rows(Py_ssize_t n, Py_ssize_t P) noexcept:
    """The rows of the largest of ``P`` blocks of ``n`` rows."""
    return (n + P - 1) // P


cdef floating **_gradient_pointers(grads, Py_ssize_t P, Py_ssize_t GH, Py_ssize_t F,
                                   Py_ssize_t H, bint gb_hh, floating *like) except NULL:
    """Four pointers per block: its ``gW_ih``, ``gW_hh``, ``gb_ih`` and ``gb_hh``
    (NULL without ``gb_hh``), from ``grads``' arrays (freed by the caller;
    ``like`` gives the type)."""
    if len(grads) != P:
        raise ValueError(f"grads holds {len(grads)} blocks' arrays; the batch runs in {P}")
    cdef floating **out = <floating **>calloc(4 * P, sizeof(floating *))
    cdef floating[:, ::1] w
    cdef floating[::1] v
    cdef Py_ssize_t c, k
    if out == NULL:
        raise MemoryError()
    try:
        for c in range(P):
            arrays = grads[c]
            for k, (name, expected) in enumerate((("gW_ih", (GH, F)), ("gW_hh", (GH, H)),
                                                  ("gb_ih", (GH,)), ("gb_hh", (GH,)))):
                if k == 3 and not gb_hh:
                    break
                _check([(name, arrays[k].shape, expected)])
                if k < 2:
                    w = arrays[k]
                    out[4 * c + k] = &w[0, 0]
                else:
                    v = arrays[k]
                    out[4 * c + k] = &v[0]
    except BaseException:
        free(out)
        raise
    return out


cdef void _sum_block_gradients(floating **g, Py_ssize_t P, Py_ssize_t GH, Py_ssize_t F,
                               Py_ssize_t H, int threads) noexcept:
    """The blocks' gradients (``g`` as :func:`_gradient_pointers` gives them) summed
    into the first block's, in block order, each array cut into ``threads``
    slices run at once."""
    if P < 2:
        return
    cdef Py_ssize_t c
    for c in prange(threads, nogil=True, num_threads=threads, schedule="static",
                    chunksize=1):
        _sum_block_slice(g, P, GH, F, H, c, threads)


cdef void _sum_block_slice(floating **g, Py_ssize_t P, Py_ssize_t GH, Py_ssize_t F,
                           Py_ssize_t H, Py_ssize_t c, Py_ssize_t S) noexcept nogil:
    """Slice ``c`` of ``S`` of :func:`_sum_block_gradients`."""
    cdef Py_ssize_t sizes[4]
    cdef Py_ssize_t k, b, lo, hi
    sizes[0], sizes[1], sizes[2], sizes[3] = GH * F, GH * H, GH, GH
    for k in range(4):
        if g[k] == NULL:
            continue
        lo, hi = _lo(c, sizes[k], S), _lo(c + 1, sizes[k], S)
        for b in range(1, P):
            _add_rows(g[k] + lo, 0, g[4 * b + k] + lo, 0, 1, hi - lo)


cdef void _zero_block_gradients(floating **g, Py_ssize_t GH, Py_ssize_t F,
                                Py_ssize_t H) noexcept nogil:
    """Zero the arrays a block's loop adds every step's terms to."""
    memset(g[0], 0, GH * F * sizeof(floating))
    memset(g[1], 0, GH * H * sizeof(floating))
    memset(g[2], 0, GH * sizeof(floating))
    if g[3] != NULL:
        memset(g[3], 0, GH * sizeof(floating))


# --------------------------------------------------------------------------- #
# the batch, in the loops' layout                                            #
# --------------------------------------------------------------------------- #
def load_steps(const floating[:, :, ::1] X, floating[:, :, ::1] x, unsigned char[:, ::1] pad,
               Py_ssize_t parts=1, int threads=1, const Py_ssize_t[::1] rows=None):
    """Sequences ``X`` ``(n, T, F)`` into ``x`` ``(T, n, F)``, blocked (time-major
    for one block); returns whether any step pads.

    With ``rows``, the batch is ``X[rows]`` (``n = len(rows)``), gathered in
    the same pass.

    A step whose first feature is NaN is padding: its ``pad[t, i]`` is 1 and
    its row of ``x`` is 0 (NaN is moved, never computed with); the other
    steps' ``pad`` is 0. The rows run in the blocks, and on the threads, of
    the time loops' calls with the same ``parts`` and ``threads``, so that
    each block's rows of ``x`` are written by the core that reads them next.
    """
    cdef Py_ssize_t n = X.shape[0] if rows is None else rows.shape[0]
    cdef Py_ssize_t T = X.shape[1], F = X.shape[2], i
    _check([("x", x.shape, (T, n, F)), ("pad", pad.shape, (T, n))])
    if F < 1:
        raise ValueError("a step needs at least one feature")
    if rows is not None:
        for i in range(n):
            if rows[i] < 0 or rows[i] >= X.shape[0]:
                raise IndexError(f"rows[{i}] = {rows[i]} is out of bounds for "
                                 f"{X.shape[0]} sequences")
    cdef const Py_ssize_t *index = &rows[0] if rows is not None and n > 0 else NULL
    cdef Py_ssize_t P = _blocks(parts, n), c
    cdef int nt = _team(threads, P)
    cdef unsigned char *found = <unsigned char *>_zeros(P, 1)
    cdef bint padded = False
    if T * n > 0:
        memset(&pad[0, 0], 0, T * n)
    try:
        for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
            found[c] = _load_rows(X, index, x, pad, _lo(c, n, P), _lo(c + 1, n, P))
        for c in range(P):
            padded = padded or found[c]
    finally:
        free(found)
    return padded


cdef unsigned char _load_rows(const floating[:, :, ::1] X, const Py_ssize_t *rows,
                              floating[:, :, ::1] x, unsigned char[:, ::1] pad,
                              Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows ``r0:r1`` of :func:`load_steps` (batch row ``i`` is ``X[rows[i]]``, or
    ``X[i]`` without ``rows``); whether one of their steps pads.

    ``pad`` comes zeroed: only a padding step's byte is written (the blocks'
    bytes of a step share a cache line, which the threads would otherwise
    pass to and fro at every step).
    """
    cdef Py_ssize_t T = X.shape[1], F = X.shape[2], i, t, f, xs
    cdef unsigned char padded = 0, here
    cdef const floating *src
    cdef floating *dst
    cdef floating *xb = _steps_of(&x[0, 0, 0], x.strides, T, r0, r1, &xs)
    for i in range(r0, r1):
        for t in range(T):
            src = &X[rows[i] if rows != NULL else i, t, 0]
            dst = xb + t * xs + (i - r0) * F
            here = src[0] != src[0]
            padded |= here
            if here:
                pad[t, i] = 1
                for f in range(F):
                    dst[f] = 0
            else:  # a loop, not memcpy: a step's few features cost less than a call
                for f in range(F):
                    dst[f] = src[f]
    return padded


# --------------------------------------------------------------------------- #
# simple RNN                                                                   #
# --------------------------------------------------------------------------- #
def rnn_forward(const floating[:, :, :] x, const floating[:, ::1] W_ih, floating[:, :, :] A,
                floating[:, :, :] hs, const floating[:, ::1] W_hh, const floating[::1] bias,
                const unsigned char[:, :] pad, bint reverse, int code, double p1=0.0,
                double p2=1.0, double upper=0.0, forward_step=None, Py_ssize_t parts=1,
                int threads=1, floating[:, :] last=None):
    """``h_t = f(x_t W_ih^T + h_{t-1} W_hh^T + bias)`` over every step; ``A_t`` gets the
    pre-activation; ``last`` (or None), ``(n, H)``, each sequence's state after
    the last step (the first in ``reverse``).

    ``code`` is one of :data:`ACTIVATION_CODES` (``p1``: leaky_relu's slope
    or elu's alpha, ``p2``: elu's scale, ``upper``: exp's clip), or
    :data:`CALLBACK`: then ``forward_step(t)`` writes ``f(A_t)`` into ``hs[t]``
    (for all rows at once: one block). The rows run in ``parts`` blocks,
    ``threads`` of them at once (see :func:`lstm_forward`).
    """
    cdef Py_ssize_t T = A.shape[0], n = A.shape[1], H = A.shape[2], F = x.shape[2]
    cdef bint masked = pad is not None
    _check([("x", x.shape, (T, n, F)), ("W_ih", W_ih.shape, (H, F)),
            ("hs", hs.shape, (T, n, H)), ("W_hh", W_hh.shape, (H, H)),
            ("bias", bias.shape, (H,))]
           + ([("pad", pad.shape, (T, n))] if masked else []))
    _rows_contiguous((_strided("A", A),), sizeof(floating))
    _row_stride("hs", hs.strides, hs.shape, sizeof(floating))
    _row_stride("x", x.strides, x.shape, sizeof(floating))
    if code == _CALLBACK and forward_step is None:
        raise ValueError("a registered activation needs forward_step")
    cdef Py_ssize_t ldl
    cdef floating *lastp = _last_rows(last, n, H, &ldl)
    cdef Py_ssize_t P = 1 if code == _CALLBACK else _blocks(parts, n), c
    cdef int nt = _team(threads, P)
    cdef floating *zero = <floating *>_zeros(H, sizeof(floating))
    cdef floating *packed = NULL
    cdef void *step = <void *>forward_step
    try:
        packed = _packed(&W_ih[0, 0], <int>F, &W_hh[0, 0], <int>H, <int>H, _block_rows(n, P))
        for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
            _rnn_forward_rows(x, W_ih, A, hs, W_hh, bias, pad, reverse, code, <floating>p1,
                              <floating>p2, <floating>upper, step, packed, zero,
                              lastp + _lo(c, n, P) * ldl if lastp != NULL else NULL, ldl,
                              _lo(c, n, P), _lo(c + 1, n, P))
    finally:
        free(zero)
        free(packed)


cdef int _rnn_forward_rows(const floating[:, :, :] x, const floating[:, ::1] W_ih,
                           floating[:, :, :] A, floating[:, :, :] hs,
                           const floating[:, ::1] W_hh, const floating[::1] bias,
                           const unsigned char[:, :] pad, bint reverse, int code, floating p1,
                           floating p2, floating upper, void *forward_step,
                           const floating *packed, floating *zero, floating *last,
                           Py_ssize_t ldl, Py_ssize_t r0, Py_ssize_t r1) except -1 nogil:
    """Rows ``r0:r1`` of :func:`rnn_forward`'s loop (``last``: their rows of it, or NULL)."""
    cdef Py_ssize_t T = A.shape[0], H = A.shape[2], F = x.shape[2], n = r1 - r0
    cdef Py_ssize_t ldh = hs.strides[1] // sizeof(floating)
    cdef Py_ssize_t ldx = x.strides[1] // sizeof(floating)
    cdef Py_ssize_t s, t, p = 0, i, xs, hss, As
    cdef bint masked = pad is not None
    cdef const floating *xb = _steps_of(&x[0, 0, 0], x.strides, T, r0, r1, &xs)
    cdef floating *hb = _steps_of(&hs[0, 0, 0], hs.strides, T, r0, r1, &hss)
    cdef floating *Ab = _steps_of(&A[0, 0, 0], A.strides, T, r0, r1, &As)
    for s in range(T):
        t = T - 1 - s if reverse else s
        _step_product(xb + t * xs, <int>ldx, <int>F, &W_ih[0, 0],
                      hb + p * hss if s > 0 else NULL, <int>ldh, <int>H, &W_hh[0, 0],
                      packed, <int>n, <int>H, Ab + t * As, <int>H)
        _add_rows(Ab + t * As, H, &bias[0], 0, n, H)
        if code == _CALLBACK:
            with gil:
                (<object>forward_step)(t)
        else:
            for i in range(n):
                if masked and pad[t, r0 + i]:
                    continue
                if floating is float:
                    sk_act_forward_f(code, p1, p2, upper, Ab + t * As + i * H,
                                     hb + t * hss + i * ldh, H)
                else:
                    sk_act_forward_d(code, p1, p2, upper, Ab + t * As + i * H,
                                     hb + t * hss + i * ldh, H)
        if masked:
            for i in range(n):
                if pad[t, r0 + i]:
                    _copy_row(hb + t * hss + i * ldh, hb + p * hss + i * ldh if s > 0 else zero,
                              H)
        p = t
    if T > 0:
        _keep_last(last, ldl, hb + p * hss, ldh, n, H)
    return 0


def rnn_backward(const floating[:, :, :] hs, const floating[:, ::1] W_hh,
                 const unsigned char[:, :] pad, bint reverse, floating[:, :, :] dG,
                 floating[:, ::1] dh, floating[:, ::1] dh_prev, const floating[:, :] dh_last,
                 const floating[:, :, :] dout, floating[:, :, :] record, int code,
                 double p1=0.0, double p2=1.0, backward_step=None, Py_ssize_t parts=1,
                 int threads=1):
    """Backpropagation through time of :func:`rnn_forward`: ``dG[t] = dL/dA_t``.

    ``dh_last`` (the gradient with respect to the last state) and ``dout``
    (with respect to every state, rows may be strided) may each be None;
    ``record`` (or None) receives ``dL/dh_t`` at every step. ``dh`` and
    ``dh_prev`` are ``(n, H)`` work arrays. With :data:`CALLBACK`,
    ``backward_step(t)`` turns ``dG[t]`` (holding ``dL/dh_t``) into ``dL/dA_t``.
    The weight gradients are :func:`rnn_weight_gradients`'.
    """
    cdef Py_ssize_t T = dG.shape[0], n = dG.shape[1], H = dG.shape[2]
    _check(_backward_shapes(T, n, H, H, hs.shape, W_hh, pad, dh, dh_prev, dh_last, dout,
                            record))
    _rows_contiguous((_strided("dG", dG),) + _maybe("record", record), sizeof(floating))
    if code == _CALLBACK and backward_step is None:
        raise ValueError("a registered activation needs backward_step")
    _row_stride("hs", hs.strides, hs.shape, sizeof(floating))
    if dout is not None:
        _row_stride("dout", dout.strides, dout.shape, sizeof(floating))
    cdef Py_ssize_t P = 1 if code == _CALLBACK else _blocks(parts, n), c
    cdef int nt = _team(threads, P)
    cdef floating *packed = NULL
    cdef void *step = <void *>backward_step
    _start(dh, dh_last)
    try:
        packed = _packed(<floating *>NULL, 0, &W_hh[0, 0], <int>H, <int>H, _block_rows(n, P))
        for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
            _rnn_backward_rows(hs, W_hh, pad, reverse, dG, dh, dh_prev, dout, record, code,
                               <floating>p1, <floating>p2, step, packed, _lo(c, n, P),
                               _lo(c + 1, n, P))
    finally:
        free(packed)


cdef int _rnn_backward_rows(const floating[:, :, :] hs, const floating[:, ::1] W_hh,
                            const unsigned char[:, :] pad, bint reverse, floating[:, :, :] dG,
                            floating[:, ::1] dh, floating[:, ::1] dh_prev,
                            const floating[:, :, :] dout, floating[:, :, :] record, int code,
                            floating p1, floating p2, void *backward_step,
                            const floating *packed, Py_ssize_t r0,
                            Py_ssize_t r1) except -1 nogil:
    """Rows ``r0:r1`` of :func:`rnn_backward`'s loop."""
    cdef Py_ssize_t T = dG.shape[0], H = dG.shape[2], n = r1 - r0, s, t, i, hss, Gs
    cdef Py_ssize_t ldh = hs.strides[1] // sizeof(floating)
    cdef bint masked = pad is not None
    cdef floating *cur = &dh[r0, 0]
    cdef floating *prev = &dh_prev[r0, 0]
    cdef const floating *hb = _steps_of(&hs[0, 0, 0], hs.strides, T, r0, r1, &hss)
    cdef floating *Gb = _steps_of(&dG[0, 0, 0], dG.strides, T, r0, r1, &Gs)
    cdef Py_ssize_t os, ldo
    cdef const floating *ob = _output_rows(dout, T, r0, r1, &os, &ldo)
    for s in range(T):
        t = s if reverse else T - 1 - s
        _take_output(cur, ob + t * os if ob != NULL else NULL, ldo, record, t, r0, r1, H)
        if code == _CALLBACK:
            for i in range(n):
                _copy_row(Gb + t * Gs + i * H, cur + i * H, H)
            with gil:
                (<object>backward_step)(t)
        for i in range(n):
            if masked and pad[t, r0 + i]:
                memset(Gb + t * Gs + i * H, 0, H * sizeof(floating))
            elif code == _CALLBACK:
                continue
            elif floating is float:
                sk_act_backward_f(code, p1, p2, hb + t * hss + i * ldh, cur + i * H,
                                  Gb + t * Gs + i * H, H)
            else:
                sk_act_backward_d(code, p1, p2, hb + t * hss + i * ldh, cur + i * H,
                                  Gb + t * Gs + i * H, H)
        if s == T - 1:
            break
        _step_back(Gb + t * Gs, <int>H, &W_hh[0, 0], packed, <int>n, <int>H, pad, t, r0,
                   cur, prev)
        cur, prev = prev, cur
    return 0


def rnn_weight_gradients(const floating[:, :, :] dG, const floating[:, :, :] x,
                         const floating[:, :, :] hs, bint reverse, floating[:, ::1] gW_ih,
                         floating[:, ::1] gW_hh, floating[::1] gb_ih, Py_ssize_t parts=1,
                         int threads=1):
    """The simple RNN's weight gradients over every step at once, after its loop.

    ``gW_ih = dG^T x``, ``gW_hh = dG_later^T hs_earlier`` (each step against
    the state it read: the step before it, after it in ``reverse``) and
    ``gb_ih`` the sums of ``dG``'s rows: products over all ``T n`` rows
    (``gW_hh`` one per block of the blocked layout of ``parts`` blocks). Its
    ``H`` rows of gates run in ``parts`` blocks, ``threads`` at once. Every
    step's rows of ``x`` and ``hs`` must be as far apart as the rows within a
    step (the ``(T, n, W)`` arrays seen as ``(T n, W)``).
    """
    cdef Py_ssize_t T = dG.shape[0], n = dG.shape[1], H = dG.shape[2], F = x.shape[2]
    _check([("x", x.shape, (T, n, F)), ("hs", hs.shape, (T, n, H)),
            ("gW_ih", gW_ih.shape, (H, F)), ("gW_hh", gW_hh.shape, (H, H)),
            ("gb_ih", gb_ih.shape, (H,))])
    _rows_contiguous((_strided("dG", dG),), sizeof(floating))
    cdef Py_ssize_t ldx = _row_stride("x", x.strides, x.shape, sizeof(floating))
    cdef Py_ssize_t ldh = _row_stride("hs", hs.strides, hs.shape, sizeof(floating))
    # _row_stride lets one step's rows stand for every step (a zero stride along
    # time); the products over all T n rows need every step's own rows
    if T > 1 and n > 0 and (x.strides[0] == 0 or hs.strides[0] == 0):
        raise ValueError("x and hs must hold every step's rows, not one step's")
    cdef Py_ssize_t P = _blocks(parts, H), c, R = _blocks(parts, n)
    cdef int nt = _team(threads, P)
    if n == 0:
        memset(&gW_ih[0, 0], 0, H * F * sizeof(floating))
        memset(&gW_hh[0, 0], 0, H * H * sizeof(floating))
        memset(&gb_ih[0], 0, H * sizeof(floating))
        return
    for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        _rnn_gradient_rows(&dG[0, 0, 0], &x[0, 0, 0], ldx, &hs[0, 0, 0], ldh, T, n, R, F, H,
                           reverse, &gW_ih[0, 0], &gW_hh[0, 0], &gb_ih[0], _lo(c, H, P),
                           _lo(c + 1, H, P))


cdef void _rnn_gradient_rows(const floating *dG, const floating *x, Py_ssize_t ldx,
                             const floating *hs, Py_ssize_t ldh, Py_ssize_t T, Py_ssize_t n,
                             Py_ssize_t R, Py_ssize_t F, Py_ssize_t H, bint reverse,
                             floating *gW_ih, floating *gW_hh, floating *gb_ih,
                             Py_ssize_t g0, Py_ssize_t g1) noexcept nogil:
    """Gate rows ``g0:g1`` of :func:`rnn_weight_gradients` (``R`` blocks of rows)."""
    cdef int G = <int>(g1 - g0), m
    cdef Py_ssize_t r, j, b, lo
    _gemm(b"N", b"T", <int>F, G, <int>(T * n), x, <int>ldx, dG + g0, <int>H, 0,
          gW_ih + g0 * F, <int>F)
    memset(gW_hh + g0 * H, 0, G * H * sizeof(floating))
    for b in range(R):  # each block's rows time-major: step t's m rows after step t-1's
        lo, m = _lo(b, n, R), <int>(_lo(b + 1, n, R) - _lo(b, n, R))
        if T > 1 and m > 0:
            # step t reads the state of the step before it (after it, in reverse)
            _gemm(b"N", b"T", <int>H, G, <int>((T - 1) * m),
                  hs + (T * lo + (m if reverse else 0)) * ldh, <int>ldh,
                  dG + (T * lo + (0 if reverse else m)) * H + g0, <int>H, 1, gW_hh + g0 * H,
                  <int>H)
    memset(gb_ih + g0, 0, G * sizeof(floating))
    for r in range(T * n):
        for j in range(g0, g1):
            gb_ih[j] += dG[r * H + j]


# --------------------------------------------------------------------------- #
# LSTM                                                                         #
# --------------------------------------------------------------------------- #
def lstm_forward(const floating[:, :, :] x, const floating[:, ::1] W_ih, floating[:, :, :] A,
                 floating[:, :, :] hs, floating[:, :, :] C, floating[:, :, :] TC,
                 const floating[:, ::1] W_hh, const floating[::1] bias,
                 const unsigned char[:, :] pad, bint reverse, Py_ssize_t parts=1,
                 int threads=1, floating[:, :] last=None):
    """Gates ``i, f, g, o`` (of ``x_t W_ih^T + h_{t-1} W_hh^T + bias``) into ``A``,
    ``c_t`` into ``C``, ``tanh c_t`` into ``TC``, ``h_t`` into ``hs``; ``last``
    (or None), ``(n, H)``, each sequence's state after the last step (the
    first in ``reverse``), copied by the thread that computed it.

    Each sequence's loop is independent of the others', so the batch's rows
    run in ``parts`` blocks (``min(parts, n)``), ``threads`` of them at once
    on OpenMP's threads (one in a process forked from one that used them).
    Every block is computed alike whichever thread runs it, so the result
    does not depend on ``threads``; the weights are packed once for all.
    """
    cdef Py_ssize_t T = A.shape[0], n = A.shape[1], GH = A.shape[2], H = GH // 4
    cdef Py_ssize_t F = x.shape[2]
    cdef bint masked = pad is not None
    _check([("x", x.shape, (T, n, F)), ("W_ih", W_ih.shape, (GH, F)),
            ("hs", hs.shape, (T, n, H)), ("C", C.shape, (T, n, H)),
            ("TC", TC.shape, (T, n, H)), ("W_hh", W_hh.shape, (GH, H)),
            ("bias", bias.shape, (GH,))]
           + ([("pad", pad.shape, (T, n))] if masked else []))
    _rows_contiguous((_strided("A", A), _strided("C", C), _strided("TC", TC)),
                     sizeof(floating))
    _row_stride("hs", hs.strides, hs.shape, sizeof(floating))
    _row_stride("x", x.strides, x.shape, sizeof(floating))
    cdef Py_ssize_t ldl
    cdef floating *lastp = _last_rows(last, n, H, &ldl)
    cdef Py_ssize_t P = _blocks(parts, n), c
    cdef int nt = _team(threads, P)
    cdef floating *zero = <floating *>_zeros(H, sizeof(floating))
    cdef floating *packed = NULL
    try:
        packed = _packed(&W_ih[0, 0], <int>F, &W_hh[0, 0], <int>H, <int>GH, _block_rows(n, P))
        for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
            _lstm_forward_rows(x, W_ih, A, hs, C, TC, W_hh, bias, pad, reverse, packed, zero,
                               lastp + _lo(c, n, P) * ldl if lastp != NULL else NULL, ldl,
                               _lo(c, n, P), _lo(c + 1, n, P))
    finally:
        free(zero)
        free(packed)


cdef void _lstm_forward_rows(const floating[:, :, :] x, const floating[:, ::1] W_ih,
                             floating[:, :, :] A, floating[:, :, :] hs, floating[:, :, :] C,
                             floating[:, :, :] TC, const floating[:, ::1] W_hh,
                             const floating[::1] bias, const unsigned char[:, :] pad,
                             bint reverse, const floating *packed, floating *zero,
                             floating *last, Py_ssize_t ldl, Py_ssize_t r0,
                             Py_ssize_t r1) noexcept nogil:
    """Rows ``r0:r1`` of :func:`lstm_forward`'s loop (``last``: their rows of it, or NULL)."""
    cdef Py_ssize_t T = A.shape[0], GH = A.shape[2], H = GH // 4, F = x.shape[2]
    cdef Py_ssize_t ldh = hs.strides[1] // sizeof(floating)
    cdef Py_ssize_t ldx = x.strides[1] // sizeof(floating)
    cdef Py_ssize_t s, t, p = 0, i, n = r1 - r0, xs, hss, As, Cs, TCs
    cdef bint masked = pad is not None
    cdef const floating *c_prev
    cdef const floating *xb = _steps_of(&x[0, 0, 0], x.strides, T, r0, r1, &xs)
    cdef floating *hb = _steps_of(&hs[0, 0, 0], hs.strides, T, r0, r1, &hss)
    cdef floating *Ab = _steps_of(&A[0, 0, 0], A.strides, T, r0, r1, &As)
    cdef floating *Cb = _steps_of(&C[0, 0, 0], C.strides, T, r0, r1, &Cs)
    cdef floating *TCb = _steps_of(&TC[0, 0, 0], TC.strides, T, r0, r1, &TCs)
    for s in range(T):
        t = T - 1 - s if reverse else s
        _step_product(xb + t * xs, <int>ldx, <int>F, &W_ih[0, 0],
                      hb + p * hss if s > 0 else NULL, <int>ldh, <int>H, &W_hh[0, 0],
                      packed, <int>n, <int>GH, Ab + t * As, <int>GH)
        for i in range(n):
            c_prev = Cb + p * Cs + i * H if s > 0 else zero
            if masked and pad[t, r0 + i]:
                _copy_row(hb + t * hss + i * ldh, hb + p * hss + i * ldh if s > 0 else zero, H)
                _copy_row(Cb + t * Cs + i * H, c_prev, H)
            elif floating is float:
                sk_lstm_forward_f(Ab + t * As + i * GH, &bias[0], c_prev, Cb + t * Cs + i * H,
                                  TCb + t * TCs + i * H, hb + t * hss + i * ldh, H)
            else:
                sk_lstm_forward_d(Ab + t * As + i * GH, &bias[0], c_prev, Cb + t * Cs + i * H,
                                  TCb + t * TCs + i * H, hb + t * hss + i * ldh, H)
        p = t
    if T > 0:
        _keep_last(last, ldl, hb + p * hss, ldh, n, H)


def lstm_backward(const floating[:, :, :] A, const floating[:, :, :] C,
                  const floating[:, :, :] TC, const floating[:, ::1] W_hh,
                  const unsigned char[:, :] pad, bint reverse, floating[:, :, :] dG,
                  floating[:, ::1] dh, floating[:, ::1] dh_prev, floating[:, ::1] dc,
                  const floating[:, :] dh_last, const floating[:, :, :] dout,
                  floating[:, :, :] record, const floating[:, :, :] hs=None,
                  const floating[:, :, :] x=None, grads=None, Py_ssize_t parts=1,
                  int threads=1):
    """Backpropagation through time of :func:`lstm_forward` (``dc``: an ``(n, H)`` work array).

    The rows run in blocks as in :func:`lstm_forward`. With ``grads`` (and
    ``x``, the loop's input, and ``hs``, the states), one
    ``(gW_ih, gW_hh, gb_ih)`` per block: the loop also writes the weight
    gradients of the block's rows into its arrays, and the rows' sums of
    ``dG`` into its ``gb_ih`` (see :func:`_held_gradients`); then the blocks'
    arrays are summed into the first block's (in block order, on the threads).
    """
    cdef Py_ssize_t T = dG.shape[0], n = dG.shape[1], GH = dG.shape[2], H = GH // 4
    cdef bint masked = pad is not None, with_grads = grads is not None
    cdef Py_ssize_t F = x.shape[2] if with_grads and x is not None else 0
    if with_grads and (hs is None or x is None):
        raise ValueError("the weight gradients need x and hs")
    _check(_backward_shapes(T, n, H, GH, hs.shape if with_grads else None, W_hh, pad, dh,
                            dh_prev, dh_last, dout, record)
           + [("A", A.shape, (T, n, GH)), ("C", C.shape, (T, n, H)), ("TC", TC.shape, (T, n, H)),
              ("dc", dc.shape, (n, H))]
           + ([("x", x.shape, (T, n, F))] if with_grads else []))
    if with_grads:
        _row_stride("hs", hs.strides, hs.shape, sizeof(floating))
        _row_stride("x", x.strides, x.shape, sizeof(floating))
    _rows_contiguous((_strided("A", A), _strided("C", C), _strided("TC", TC), _strided("dG", dG))
                     + _maybe("record", record), sizeof(floating))
    if dout is not None:
        _row_stride("dout", dout.strides, dout.shape, sizeof(floating))
    cdef Py_ssize_t P = _blocks(parts, n), c, rows = _block_rows(n, P), steps
    cdef int nt = _team(threads, P)
    cdef floating *zero = <floating *>_zeros(H, sizeof(floating))
    cdef floating *packed = NULL
    cdef floating *scratch = NULL
    cdef floating *spare = NULL
    cdef floating **g = NULL
    cdef size_t room = 0
    cdef bint one_step = dG.strides[0] == 0
    cdef Py_ssize_t slots = 0  # the steps' gate gradients spare holds per block
    _start(dh, dh_last)
    memset(&dc[0, 0], 0, n * H * sizeof(floating))
    try:
        packed = _packed(<floating *>NULL, 0, &W_hh[0, 0], <int>H, <int>GH, rows)
        if with_grads:
            g = _gradient_pointers(grads, P, GH, F, H, False, &dG[0, 0, 0])
            # dG holding one step's rows: _HELD_STEPS steps' gate gradients wait
            # in spare for one packed product (_held_gradients); else two steps'
            # (_step_gradients), the second in spare where dG holds one step
            steps = _HELD_STEPS if one_step else 2
            scratch = _panels(&W_hh[0, 0], rows, <int>(steps * rows), <int>max(F, H), P)
            room = _panel_room(&W_hh[0, 0], <int>(steps * rows), <int>max(F, H))
            if one_step:  # no scratch: BLAS (over _PACKED_MAX_ROWS rows), in pairs
                slots = _HELD_STEPS if scratch != NULL else 1
                spare = <floating *>malloc(P * rows * GH * slots * sizeof(floating))
                if spare == NULL:
                    raise MemoryError()
        for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
            _lstm_backward_rows(A, C, TC, W_hh, pad, reverse, dG, dh, dh_prev, dc, dout,
                                record, hs, x, g + 4 * c if g != NULL else NULL,
                                scratch + c * room if scratch != NULL else NULL,
                                spare + c * rows * GH * slots if spare != NULL else NULL,
                                packed, zero, _lo(c, n, P), _lo(c + 1, n, P))
        if g != NULL:
            _sum_block_gradients(g, P, GH, F, H, nt)
    finally:
        free(zero)
        free(packed)
        free(scratch)
        free(spare)
        free(g)


cdef void _lstm_backward_rows(const floating[:, :, :] A, const floating[:, :, :] C,
                              const floating[:, :, :] TC, const floating[:, ::1] W_hh,
                              const unsigned char[:, :] pad, bint reverse,
                              floating[:, :, :] dG, floating[:, ::1] dh,
                              floating[:, ::1] dh_prev, floating[:, ::1] dc,
                              const floating[:, :, :] dout, floating[:, :, :] record,
                              const floating[:, :, :] hs, const floating[:, :, :] x,
                              floating **g, floating *scratch, floating *spare,
                              const floating *packed, floating *zero, Py_ssize_t r0,
                              Py_ssize_t r1) noexcept nogil:
    """Rows ``r0:r1`` of :func:`lstm_backward`'s loop; ``g``: the block's gradients or NULL.

    The weight gradients' terms are added several steps at a time, one
    product over the steps' rows. Where ``dG`` holds one step's rows (a zero
    stride along time) and the products are packed (``scratch``), the gate
    gradients of ``_HELD_STEPS`` steps wait in ``spare``, one after the other
    (:func:`_held_gradients`). Else two steps' (:func:`_step_gradients`): a
    step's gate gradients wait for the next step's, in ``dG`` or, where
    ``dG`` holds one step's rows, the next step's go to ``spare``.
    """
    cdef Py_ssize_t T = dG.shape[0], GH = dG.shape[2], H = GH // 4, n = r1 - r0
    cdef Py_ssize_t F = x.shape[2] if g != NULL else 0
    cdef Py_ssize_t ldx = x.strides[1] // sizeof(floating) if g != NULL else 0
    cdef Py_ssize_t ldh = hs.strides[1] // sizeof(floating) if g != NULL else 0
    cdef Py_ssize_t s, t, p, i, xs = 0, hss = 0, As, Cs, TCs, Gs, os, ldo
    cdef bint masked = pad is not None
    cdef floating *cur = &dh[r0, 0]
    cdef floating *prev = &dh_prev[r0, 0]
    cdef const floating *xb = NULL
    cdef const floating *hb = NULL
    cdef const floating *Ab = _steps_of(&A[0, 0, 0], A.strides, T, r0, r1, &As)
    cdef const floating *Cb = _steps_of(&C[0, 0, 0], C.strides, T, r0, r1, &Cs)
    cdef const floating *TCb = _steps_of(&TC[0, 0, 0], TC.strides, T, r0, r1, &TCs)
    cdef floating *Gb = _steps_of(&dG[0, 0, 0], dG.strides, T, r0, r1, &Gs)
    cdef const floating *ob = _output_rows(dout, T, r0, r1, &os, &ldo)
    cdef floating *d  # this step's gate gradients
    cdef const floating *h_t
    cdef const floating *waiting = NULL  # the step before's, its terms not yet added
    cdef const floating *x_w = NULL
    cdef const floating *h_w = NULL
    cdef bint holds = spare != NULL and scratch != NULL
    cdef int held = 0  # steps whose gate gradients wait in spare (holds)
    cdef const floating *x_held[_HELD_STEPS]
    cdef const floating *h_held[_HELD_STEPS]
    if g != NULL:
        _zero_block_gradients(g, GH, F, H)
        xb = _steps_of(&x[0, 0, 0], x.strides, T, r0, r1, &xs)
        hb = _steps_of(&hs[0, 0, 0], hs.strides, T, r0, r1, &hss)
    for s in range(T):
        t = s if reverse else T - 1 - s
        p = t + 1 if reverse else t - 1
        if holds:
            d = spare + held * n * GH
        else:
            d = spare if waiting != NULL and spare != NULL else Gb + t * Gs
        _take_output(cur, ob + t * os if ob != NULL else NULL, ldo, record, t, r0, r1, H)
        for i in range(n):
            if masked and pad[t, r0 + i]:
                memset(d + i * GH, 0, GH * sizeof(floating))
            elif floating is float:
                sk_lstm_backward_f(Ab + t * As + i * GH, Cb + p * Cs + i * H if s < T - 1 else zero,
                                   TCb + t * TCs + i * H, cur + i * H, &dc[r0 + i, 0],
                                   d + i * GH, H)
            else:
                sk_lstm_backward_d(Ab + t * As + i * GH, Cb + p * Cs + i * H if s < T - 1 else zero,
                                   TCb + t * TCs + i * H, cur + i * H, &dc[r0 + i, 0],
                                   d + i * GH, H)
        if g != NULL:
            h_t = hb + p * hss if s < T - 1 else NULL
            if holds:
                x_held[held], h_held[held] = xb + t * xs, h_t
                held += 1
                if held == _HELD_STEPS or s == T - 1:
                    _held_gradients(spare, held, <int>GH, x_held, <int>ldx, <int>F, h_held,
                                    <int>ldh, <int>H, <int>n, scratch, g)
                    held = 0
            elif waiting == NULL and s < T - 1:
                waiting, x_w, h_w = d, xb + t * xs, h_t
            else:
                _step_gradients(waiting, d, waiting, d, <int>GH, x_w, xb + t * xs, <int>ldx,
                                <int>F, h_w, h_t, <int>ldh, <int>H, <int>n, scratch, g)
                waiting = NULL
        if s == T - 1:
            break
        _step_back(d, <int>GH, &W_hh[0, 0], packed, <int>n, <int>H, pad, t, r0, cur, prev)
        cur, prev = prev, cur


# --------------------------------------------------------------------------- #
# GRU                                                                          #
# --------------------------------------------------------------------------- #
def gru_forward(const floating[:, :, :] x, const floating[:, ::1] W_ih, floating[:, :, :] A,
                floating[:, :, :] hs, floating[:, :, :] GHn, floating[:, ::1] gh,
                const floating[:, ::1] W_hh, const floating[::1] bias,
                const floating[::1] b_hn, const unsigned char[:, :] pad, bint reverse,
                Py_ssize_t parts=1, int threads=1, floating[:, :] last=None):
    """Gates ``r, z, n`` into ``A``, ``h_{t-1} W_hn^T + b_hn`` into ``GHn``, ``h_t`` into ``hs``;
    ``last`` as :func:`lstm_forward`'s.

    ``bias`` is ``b_ih`` plus ``b_hh``'s ``r`` and ``z`` blocks; ``gh`` is an
    ``(n, 3 H)`` work array. The rows run in blocks as in :func:`lstm_forward`.
    """
    cdef Py_ssize_t T = A.shape[0], n = A.shape[1], GH = A.shape[2], H = GH // 3
    cdef Py_ssize_t F = x.shape[2]
    cdef bint masked = pad is not None
    _check([("x", x.shape, (T, n, F)), ("W_ih", W_ih.shape, (GH, F)),
            ("hs", hs.shape, (T, n, H)), ("GHn", GHn.shape, (T, n, H)),
            ("gh", gh.shape, (n, GH)), ("W_hh", W_hh.shape, (GH, H)),
            ("bias", bias.shape, (GH,)), ("b_hn", b_hn.shape, (H,))]
           + ([("pad", pad.shape, (T, n))] if masked else []))
    _rows_contiguous((_strided("A", A), _strided("GHn", GHn)), sizeof(floating))
    _row_stride("hs", hs.strides, hs.shape, sizeof(floating))
    _row_stride("x", x.strides, x.shape, sizeof(floating))
    cdef Py_ssize_t ldl
    cdef floating *lastp = _last_rows(last, n, H, &ldl)
    cdef Py_ssize_t P = _blocks(parts, n), c
    cdef int nt = _team(threads, P)
    cdef floating *zero = <floating *>_zeros(H, sizeof(floating))
    cdef floating *packed = NULL
    try:
        packed = _packed(&W_ih[0, 0], <int>F, &W_hh[0, 0], <int>H, <int>GH, _block_rows(n, P))
        for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
            _gru_forward_rows(x, W_ih, A, hs, GHn, gh, W_hh, bias, b_hn, pad, reverse, packed,
                              zero, lastp + _lo(c, n, P) * ldl if lastp != NULL else NULL, ldl,
                              _lo(c, n, P), _lo(c + 1, n, P))
    finally:
        free(zero)
        free(packed)


cdef void _gru_forward_rows(const floating[:, :, :] x, const floating[:, ::1] W_ih,
                            floating[:, :, :] A, floating[:, :, :] hs, floating[:, :, :] GHn,
                            floating[:, ::1] gh, const floating[:, ::1] W_hh,
                            const floating[::1] bias, const floating[::1] b_hn,
                            const unsigned char[:, :] pad, bint reverse,
                            const floating *packed, floating *zero, floating *last,
                            Py_ssize_t ldl, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows ``r0:r1`` of :func:`gru_forward`'s loop (``last``: their rows of it, or NULL)."""
    cdef Py_ssize_t T = A.shape[0], GH = A.shape[2], H = GH // 3, F = x.shape[2], n = r1 - r0
    cdef Py_ssize_t ldh = hs.strides[1] // sizeof(floating)
    cdef Py_ssize_t ldx = x.strides[1] // sizeof(floating)
    cdef Py_ssize_t s, t, p = 0, i, xs, hss, As, Ns
    cdef bint masked = pad is not None
    cdef const floating *h_prev
    cdef const floating *xb = _steps_of(&x[0, 0, 0], x.strides, T, r0, r1, &xs)
    cdef floating *hb = _steps_of(&hs[0, 0, 0], hs.strides, T, r0, r1, &hss)
    cdef floating *Ab = _steps_of(&A[0, 0, 0], A.strides, T, r0, r1, &As)
    cdef floating *Nb = _steps_of(&GHn[0, 0, 0], GHn.strides, T, r0, r1, &Ns)
    for s in range(T):
        t = T - 1 - s if reverse else s
        _step_product(xb + t * xs, <int>ldx, <int>F, &W_ih[0, 0], NULL, 0, <int>H,
                      &W_hh[0, 0], packed, <int>n, <int>GH, Ab + t * As, <int>GH)
        if s > 0:
            _step_product(NULL, 0, <int>F, &W_ih[0, 0], hb + p * hss, <int>ldh, <int>H,
                          &W_hh[0, 0], packed, <int>n, <int>GH, &gh[r0, 0], <int>GH)
        else:
            memset(&gh[r0, 0], 0, n * GH * sizeof(floating))
        for i in range(n):
            h_prev = hb + p * hss + i * ldh if s > 0 else zero
            if masked and pad[t, r0 + i]:
                _copy_row(hb + t * hss + i * ldh, h_prev, H)
            elif floating is float:
                sk_gru_forward_f(Ab + t * As + i * GH, &bias[0], &gh[r0 + i, 0], &b_hn[0],
                                 h_prev, Nb + t * Ns + i * H, hb + t * hss + i * ldh, H)
            else:
                sk_gru_forward_d(Ab + t * As + i * GH, &bias[0], &gh[r0 + i, 0], &b_hn[0],
                                 h_prev, Nb + t * Ns + i * H, hb + t * hss + i * ldh, H)
        p = t
    if T > 0:
        _keep_last(last, ldl, hb + p * hss, ldh, n, H)


def gru_backward(const floating[:, :, :] A, const floating[:, :, :] GHn,
                 const floating[:, :, :] hs, const floating[:, ::1] W_hh,
                 const unsigned char[:, :] pad, bint reverse, floating[:, :, :] dG,
                 floating[:, :, :] dGh, floating[:, ::1] dh, floating[:, ::1] dh_prev,
                 const floating[:, :] dh_last, const floating[:, :, :] dout,
                 floating[:, :, :] record, const floating[:, :, :] x=None, grads=None,
                 Py_ssize_t parts=1, int threads=1):
    """Backpropagation through time of :func:`gru_forward`; ``dGh`` gets the ``W_hh`` side.

    The rows run in blocks as in :func:`lstm_forward`. With ``grads`` (and
    ``x``, the loop's input), one ``(gW_ih, gW_hh, gb_ih, gb_hh)`` per
    block: the loop also writes the weight gradients of the block's rows
    into its arrays, and the rows' sums of ``dG`` into its ``gb_ih`` (see
    :func:`_step_gradients`); ``gW_hh`` and ``gb_hh`` come from ``dGh``. Then
    the blocks' arrays are summed into the first block's, as in :func:`lstm_backward`.
    """
    cdef Py_ssize_t T = dG.shape[0], n = dG.shape[1], GH = dG.shape[2], H = GH // 3
    cdef bint masked = pad is not None, with_grads = grads is not None
    cdef Py_ssize_t F = x.shape[2] if with_grads and x is not None else 0
    if with_grads and x is None:
        raise ValueError("the weight gradients need x")
    _check(_backward_shapes(T, n, H, GH, hs.shape, W_hh, pad, dh, dh_prev, dh_last, dout,
                            record)
           + [("A", A.shape, (T, n, GH)), ("GHn", GHn.shape, (T, n, H)),
              ("dGh", dGh.shape, (T, n, GH))]
           + ([("x", x.shape, (T, n, F))] if with_grads else []))
    _rows_contiguous((_strided("A", A), _strided("GHn", GHn), _strided("dG", dG),
                      _strided("dGh", dGh)) + _maybe("record", record), sizeof(floating))
    _row_stride("hs", hs.strides, hs.shape, sizeof(floating))
    if with_grads:
        _row_stride("x", x.strides, x.shape, sizeof(floating))
    if dout is not None:
        _row_stride("dout", dout.strides, dout.shape, sizeof(floating))
    cdef Py_ssize_t P = _blocks(parts, n), c, rows = _block_rows(n, P)
    cdef int nt = _team(threads, P)
    cdef floating *zero = <floating *>_zeros(H, sizeof(floating))
    cdef floating *packed = NULL
    cdef floating *scratch = NULL
    cdef floating **g = NULL
    cdef size_t room = 0
    _start(dh, dh_last)
    try:
        packed = _packed(<floating *>NULL, 0, &W_hh[0, 0], <int>H, <int>GH, rows)
        if with_grads:
            g = _gradient_pointers(grads, P, GH, F, H, True, &dG[0, 0, 0])
            scratch = _panels(&W_hh[0, 0], rows, <int>rows, <int>max(F, H), P)
            room = _panel_room(&W_hh[0, 0], <int>rows, <int>max(F, H))
        for c in prange(P, nogil=True, num_threads=nt, schedule="static", chunksize=1):
            _gru_backward_rows(A, GHn, hs, W_hh, pad, reverse, dG, dGh, dh, dh_prev, dout,
                               record, x, g + 4 * c if g != NULL else NULL,
                               scratch + c * room if scratch != NULL else NULL, packed, zero,
                               _lo(c, n, P), _lo(c + 1, n, P))
        if g != NULL:
            _sum_block_gradients(g, P, GH, F, H, nt)
    finally:
        free(zero)
        free(packed)
        free(scratch)
        free(g)


cdef void _gru_backward_rows(const floating[:, :, :] A, const floating[:, :, :] GHn,
                             const floating[:, :, :] hs, const floating[:, ::1] W_hh,
                             const unsigned char[:, :] pad, bint reverse,
                             floating[:, :, :] dG, floating[:, :, :] dGh,
                             floating[:, ::1] dh, floating[:, ::1] dh_prev,
                             const floating[:, :, :] dout, floating[:, :, :] record,
                             const floating[:, :, :] x, floating **g, floating *scratch,
                             const floating *packed, floating *zero, Py_ssize_t r0,
                             Py_ssize_t r1) noexcept nogil:
    """Rows ``r0:r1`` of :func:`gru_backward`'s loop; ``g``: the block's gradients or NULL."""
    cdef Py_ssize_t T = dG.shape[0], GH = dG.shape[2], H = GH // 3, n = r1 - r0
    cdef Py_ssize_t F = x.shape[2] if g != NULL else 0
    cdef Py_ssize_t ldx = x.strides[1] // sizeof(floating) if g != NULL else 0
    cdef Py_ssize_t ldh = hs.strides[1] // sizeof(floating)
    cdef Py_ssize_t s, t, p, i, xs = 0, hss, As, Ns, Gs, Ghs, os, ldo
    cdef bint masked = pad is not None, first
    cdef floating *cur = &dh[r0, 0]
    cdef floating *prev = &dh_prev[r0, 0]
    cdef const floating *h_prev
    cdef const floating *xb = NULL
    cdef const floating *hb = _steps_of(&hs[0, 0, 0], hs.strides, T, r0, r1, &hss)
    cdef const floating *Ab = _steps_of(&A[0, 0, 0], A.strides, T, r0, r1, &As)
    cdef const floating *Nb = _steps_of(&GHn[0, 0, 0], GHn.strides, T, r0, r1, &Ns)
    cdef floating *Gb = _steps_of(&dG[0, 0, 0], dG.strides, T, r0, r1, &Gs)
    cdef floating *Ghb = _steps_of(&dGh[0, 0, 0], dGh.strides, T, r0, r1, &Ghs)
    cdef const floating *ob = _output_rows(dout, T, r0, r1, &os, &ldo)
    if g != NULL:
        _zero_block_gradients(g, GH, F, H)
        xb = _steps_of(&x[0, 0, 0], x.strides, T, r0, r1, &xs)
    for s in range(T):
        t = s if reverse else T - 1 - s
        p = t + 1 if reverse else t - 1
        first = s == T - 1
        _take_output(cur, ob + t * os if ob != NULL else NULL, ldo, record, t, r0, r1, H)
        for i in range(n):
            if masked and pad[t, r0 + i]:
                memset(Gb + t * Gs + i * GH, 0, GH * sizeof(floating))
                memset(Ghb + t * Ghs + i * GH, 0, GH * sizeof(floating))
                _copy_row(prev + i * H, cur + i * H, H)
                continue
            h_prev = zero
            if not first:
                h_prev = hb + p * hss + i * ldh
            if floating is float:
                sk_gru_backward_f(Ab + t * As + i * GH, Nb + t * Ns + i * H, h_prev, cur + i * H,
                                  Gb + t * Gs + i * GH, Ghb + t * Ghs + i * GH, prev + i * H, H)
            else:
                sk_gru_backward_d(Ab + t * As + i * GH, Nb + t * Ns + i * H, h_prev, cur + i * H,
                                  Gb + t * Gs + i * GH, Ghb + t * Ghs + i * GH, prev + i * H, H)
        if g != NULL:
            _step_gradients(NULL, Gb + t * Gs, NULL, Ghb + t * Ghs, <int>GH, NULL,
                            xb + t * xs, <int>ldx, <int>F, NULL,
                            hb + p * hss if not first else NULL, <int>ldh, <int>H, <int>n,
                            scratch, g)
        if first:
            break
        _back_product(Ghb + t * Ghs, <int>GH, &W_hh[0, 0], packed, <int>n, <int>H, 1, prev)
        cur, prev = prev, cur


# --------------------------------------------------------------------------- #
# shared steps of the backward loops                                           #
# --------------------------------------------------------------------------- #
def _backward_shapes(T, n, H, GH, hs_shape, W_hh, pad, dh, dh_prev, dh_last, dout, record):
    shapes = [("W_hh", W_hh.shape, (GH, H)), ("dh", dh.shape, (n, H)),
              ("dh_prev", dh_prev.shape, (n, H))]
    if hs_shape is not None:
        shapes.append(("hs", hs_shape, (T, n, H)))
    for name, a, expected in (("pad", pad, (T, n)), ("dh_last", dh_last, (n, H)),
                              ("dout", dout, (T, n, H)), ("record", record, (T, n, H))):
        if a is not None:
            shapes.append((name, a.shape, expected))
    if not (dh.strides[0] == H * dh.itemsize and dh_prev.strides[0] == H * dh.itemsize):
        raise ValueError("dh and dh_prev must be C-contiguous")
    return shapes


cdef void _step_gradients(const floating *dG_u, const floating *dG_t,
                          const floating *dGh_u, const floating *dGh_t, int GH,
                          const floating *x_u, const floating *x_t, int ldx, int F,
                          const floating *h_u, const floating *h_t, int ldh, int H, int n,
                          floating *scratch, floating **g) noexcept nogil:
    """Add the terms of step ``t``, and of step ``u`` unless ``dG_u`` is NULL, to a
    block's weight and bias gradients ``g`` (``gW_ih, gW_hh, gb_ih, gb_hh``).

    ``gW_ih += dG^T x`` and ``gW_hh += dGh^T h`` (none for a step whose ``h``
    is NULL: a sequence's first step reads the zero state), ``gb_ih`` gets
    the rows' sums of ``dG`` and ``gb_hh`` (unless NULL: the caller copies
    ``gb_ih``) those of ``dGh``; ``n`` rows a step.
    """
    _pair_product(dG_u, x_u, dG_t, x_t, ldx, F, n, GH, scratch, g[0])
    _pair_product(dGh_u if h_u != NULL else NULL, h_u, dGh_t if h_t != NULL else NULL, h_t,
                  ldh, H, n, GH, scratch, g[1])
    if dG_u != NULL:
        _add_rows(g[2], 0, dG_u, GH, n, GH)
    _add_rows(g[2], 0, dG_t, GH, n, GH)
    if g[3] != NULL:
        if dGh_u != NULL:
            _add_rows(g[3], 0, dGh_u, GH, n, GH)
        _add_rows(g[3], 0, dGh_t, GH, n, GH)


cdef void _held_gradients(const floating *dG, int steps, int GH, const floating **x, int ldx,
                          int F, const floating **h, int ldh, int H, int n,
                          floating *scratch, floating **g) noexcept nogil:
    """Add the terms of ``steps`` steps, whose gate gradients lie one after the other
    in ``dG`` (``steps * n`` rows), to a block's ``gW_ih``, ``gW_hh`` and
    ``gb_ih`` (``g``): ``dG^T`` times the steps' rows of ``x`` (and of ``h``,
    the states they read; a last step whose ``h`` is NULL reads the zero
    state and adds no term to ``gW_hh``), each one packed product over all
    the rows, in ``scratch``; the rows' sums of ``dG``.
    """
    cdef int k, K = steps * n
    cdef int with_h = steps if h[steps - 1] != NULL else steps - 1  # steps with a state
    for k in range(steps):
        _pack(x[k], ldx, 1, n, F, scratch, k * n, K)
    _gemm_packed(GH, F, dG, 1, K, NULL, 0, 0, scratch, K, g[0], F, True, GH)
    if with_h > 0:
        for k in range(with_h):
            _pack(h[k], ldh, 1, n, H, scratch, k * n, with_h * n)
        _gemm_packed(GH, H, dG, 1, with_h * n, NULL, 0, 0, scratch, with_h * n, g[1], H, True,
                     GH)
    _add_rows(g[2], 0, dG, GH, K, GH)


cdef void _pair_product(const floating *a1, const floating *b1, const floating *a2,
                        const floating *b2, int ldb, int N, int n, int GH,
                        floating *scratch, floating *out) noexcept nogil:
    """``out += a1^T b1 + a2^T b2`` (a term dropped where its ``a`` is NULL): the
    ``a`` ``(n, GH)`` read as their transposes in place, the ``b`` ``(n, N)``
    with rows ``ldb`` apart. With ``scratch`` (room for ``2 n`` rows), one
    packed product over both terms' rows; without, through BLAS.
    """
    if a1 == NULL:
        a1, b1, a2, b2 = a2, b2, NULL, NULL
    if a1 == NULL:
        return
    cdef int k2 = n if a2 != NULL else 0
    if scratch != NULL:
        _pack(b1, ldb, 1, n, N, scratch, 0, n + k2)
        if a2 != NULL:
            _pack(b2, ldb, 1, n, N, scratch, n, n + k2)
        _gemm_packed(GH, N, a1, 1, n, a2, 1, k2, scratch, n + k2, out, N, True, GH)
    else:
        _gemm(b"N", b"T", N, GH, n, b1, ldb, a1, GH, 1, out, N)
        if a2 != NULL:
            _gemm(b"N", b"T", N, GH, n, b2, ldb, a2, GH, 1, out, N)


cdef void _start(floating[:, ::1] dh, const floating[:, :] dh_last) noexcept:
    """``dh`` = the gradient with respect to the last state (zero when None)."""
    cdef Py_ssize_t i, j
    if dh_last is None:
        memset(&dh[0, 0], 0, dh.shape[0] * dh.shape[1] * sizeof(floating))
        return
    for i in range(dh.shape[0]):
        for j in range(dh.shape[1]):
            dh[i, j] = dh_last[i, j]


cdef inline const floating *_output_rows(const floating[:, :, :] dout, Py_ssize_t T,
                                         Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t *step,
                                         Py_ssize_t *ld) noexcept nogil:
    """Block ``r0:r1``'s rows of the output gradient ``dout`` (see :func:`_steps_of`;
    ``ld``: its row stride), or NULL without one."""
    step[0] = ld[0] = 0
    if dout is None:
        return NULL
    ld[0] = dout.strides[1] // sizeof(floating)
    return _steps_of(&dout[0, 0, 0], dout.strides, T, r0, r1, step)


cdef inline void _take_output(floating *dh, const floating *dout_t, Py_ssize_t ldo,
                              floating[:, :, :] record, Py_ssize_t t, Py_ssize_t r0,
                              Py_ssize_t r1, Py_ssize_t H) noexcept nogil:
    """Add step ``t``'s output gradient of rows ``r0:r1`` (``dout_t``, rows ``ldo``
    apart, or NULL) to ``dh`` (theirs); record ``dh`` (time-major)."""
    if dout_t != NULL:
        _add_rows(dh, H, dout_t, ldo, r1 - r0, H)
    if record is not None:
        memcpy(&record[t, r0, 0], dh, (r1 - r0) * H * sizeof(floating))


cdef inline void _step_back(const floating *dG_t, int GH, const floating *W_hh,
                            const floating *packed, int n, int H, const unsigned char[:, :] pad,
                            Py_ssize_t t, Py_ssize_t r0, const floating *dh,
                            floating *dh_prev) noexcept nogil:
    """``dh_prev = dG_t W_hh`` (``dL/dh_{t-1}``) for ``n`` rows from ``r0``, padding rows
    carrying ``dh`` instead."""
    _back_product(dG_t, GH, W_hh, packed, n, H, 0, dh_prev)
    _carry_padded(dh_prev, dh, pad, t, r0, n, H)


cdef inline void _carry_padded(floating *dh_prev, const floating *dh,
                               const unsigned char[:, :] pad, Py_ssize_t t, Py_ssize_t r0,
                               Py_ssize_t n, Py_ssize_t H) noexcept nogil:
    """Padding rows (of the ``n`` from ``r0``) pass their state gradient on unchanged."""
    cdef Py_ssize_t i
    if pad is None:
        return
    for i in range(n):
        if pad[t, r0 + i]:
            _copy_row(dh_prev + i * H, dh + i * H, H)

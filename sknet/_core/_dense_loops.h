/* The dense step's element-wise loops: bias and activation, the activation's
   derivative, column sums, and the sums of the parts' gradients.

   They are compiled three times, for AVX-512 (x86-64-v4), for AVX2
   (x86-64-v3) and for the baseline, and the loader picks one by the
   processor (_small_gemm.h's SK_CLONES): AVX2 does four doubles (eight
   floats) an instruction instead of two (four), AVX-512 eight (sixteen).
   Fused multiply-adds are off here, so every build does the same IEEE
   operations on every element and gives the same results bit for bit;
   floating-point exceptions need not be kept exact, so that gcc if-converts
   (and so vectorizes) the loops that select with ?: .

   The activation codes are those of ACTIVATION_CODES in _dense_fast.pyx.
   Every loop is written for float (f) and double (d) by one macro. */
#ifndef SKNET_DENSE_LOOPS_H
#define SKNET_DENSE_LOOPS_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "_small_gemm.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize ("fp-contract=off", "no-trapping-math")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "_vector_math.h"

#if defined(_MSC_VER)
#define SK_DENSE_RESTRICT __restrict
#else
#define SK_DENSE_RESTRICT __restrict__
#endif

enum { SK_D_IDENTITY, SK_D_RELU, SK_D_LEAKY_RELU, SK_D_ELU, SK_D_TANH, SK_D_LOGISTIC,
       SK_D_SOFTMAX };

/* tanh in float32: a [13/6] rational approximation on [-7.9053, 7.9053], the
   odd/even polynomial pair of Eigen's float tanh; within 7 ulp of the exact
   tanh (about 5e-7 absolute), saturating at +-1 beyond the interval, x itself
   below 4e-4 in magnitude, and NaN for NaN. No call and no branch, so the
   loop over a row vectorizes. */
static inline float sk_dense_tanh_f(float x) {
    const float c = 7.90531110763549805f;
    float x2, p, q;
    x = x > c ? c : x;
    x = x < -c ? -c : x;
    x2 = x * x;
    p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    return fabsf(x) < 0.0004f ? x : p / q;
}

/* float64: the branch-free tanh of _vector_math.h (within 3 ulp of the exact
   tanh), which vectorizes, unlike the C library's. (In float32, without fused
   multiply-adds, the rational one above is the faster.) */
static inline double sk_dense_tanh_d(double x) { return sk_tanh_d(x); }
/* The logistic's e^-z, the softmax's e^(z - max) and the ELU's e^z - 1: the
   branch-free ones, which vectorize (the C library's do not). */
static inline float sk_dense_exp_f(float x) { return sk_expf(x); }
static inline double sk_dense_exp_d(double x) { return sk_exp_fast_d(x); }
static inline float sk_dense_expm1_f(float x) { return sk_expm1_f(x); }
static inline double sk_dense_expm1_d(double x) { return sk_expm1_d(x); }

/* Take the cache lines of a[0:bytes] for writing: store each line's first byte
   back unchanged. Where another core holds copies of them (it read them since
   this core last wrote them), a pass that then writes them, the optimizer's,
   stalls on each line's hand-over; these stores get the lines over about ten
   times faster. Only the caller's own bytes are touched, so a line shared with
   another thread's block is safe. */
static void sk_claim_lines(void *a, size_t bytes) {
    volatile unsigned char *p = (volatile unsigned char *)a;
    size_t k;
    for (k = 0; k < bytes; k += 64) p[k] = p[k];
}

#define SK_DENSE_LOOPS(T, S)                                                            \
/* z[i, :] = f(z[i, :] + b) for each of the n rows of width m; p1, p2: the          \
   activation's parameters (leaky_relu: slope; elu: alpha, scale). The softmax      \
   is shifted by the row's maximum; its exponentials run in one pass over the      \
   n * m values (rows of ten would leave most of each row's vectors empty). */     \
SK_CLONES static void sk_bias_activation_##S(T *SK_DENSE_RESTRICT z,               \
                                             const T *SK_DENSE_RESTRICT b,         \
                                             Py_ssize_t n, Py_ssize_t m, int kind, \
                                             T p1, T p2) {                          \
    Py_ssize_t i, j;                                                                \
    if (kind == SK_D_SOFTMAX) {                                                     \
        for (i = 0; i < n; i++) {                                                   \
            T *SK_DENSE_RESTRICT row = z + i * m;                                   \
            T top;                                                                  \
            for (j = 0; j < m; j++) row[j] = row[j] + b[j];                         \
            top = row[0];                                                           \
            for (j = 1; j < m; j++) top = row[j] > top ? row[j] : top;              \
            for (j = 0; j < m; j++) row[j] = row[j] - top;                          \
        }                                                                           \
        for (j = 0; j < n * m; j++) z[j] = sk_dense_exp_##S(z[j]);                  \
        for (i = 0; i < n; i++) {                                                   \
            T *SK_DENSE_RESTRICT row = z + i * m;                                   \
            T total = 0;                                                            \
            for (j = 0; j < m; j++) total = total + row[j];                         \
            for (j = 0; j < m; j++) row[j] = row[j] / total;                        \
        }                                                                           \
        return;                                                                     \
    }                                                                               \
    for (i = 0; i < n; i++) {                                                       \
        T *SK_DENSE_RESTRICT row = z + i * m;                                       \
        T x;                                                                        \
        switch (kind) {                                                             \
        case SK_D_IDENTITY:                                                         \
            for (j = 0; j < m; j++) row[j] = row[j] + b[j];                         \
            break;                                                                  \
        case SK_D_RELU:                                                             \
            for (j = 0; j < m; j++) {                                               \
                x = row[j] + b[j];                                                  \
                row[j] = x > 0 ? x : 0;                                             \
            }                                                                       \
            break;                                                                  \
        case SK_D_LEAKY_RELU:                                                       \
            for (j = 0; j < m; j++) {                                               \
                x = row[j] + b[j];                                                  \
                row[j] = x >= 0 ? x : x * p1;                                       \
            }                                                                       \
            break;                                                                  \
        case SK_D_ELU:                                                              \
            for (j = 0; j < m; j++) {                                               \
                x = row[j] + b[j];                                                  \
                row[j] = x > 0 ? p2 * x : p2 * p1 * sk_dense_expm1_##S(x);         \
            }                                                                       \
            break;                                                                  \
        case SK_D_TANH:                                                             \
            for (j = 0; j < m; j++) row[j] = sk_dense_tanh_##S(row[j] + b[j]);      \
            break;                                                                  \
        case SK_D_LOGISTIC: /* scipy.special.expit's formula: exp(-z) may overflow   \
                               to inf, giving 0 */                                  \
            for (j = 0; j < m; j++)                                                 \
                row[j] = 1 / (1 + sk_dense_exp_##S(-(row[j] + b[j])));              \
            break;                                                                  \
        }                                                                           \
    }                                                                               \
}                                                                                   \
                                                                                    \
/* out = d * f', f' written from the activation's output a; out may be a (the     \
   delta written over the activations) or d. */                                    \
SK_CLONES static void sk_activation_gradient_##S(T *a, const T *d, T *out,         \
                                                 Py_ssize_t size, int kind,        \
                                                 T p1, T p2) {                      \
    Py_ssize_t k;                                                                   \
    T x, y;                                                                         \
    switch (kind) {                                                                 \
    case SK_D_RELU:                                                                 \
        for (k = 0; k < size; k++) {                                                \
            x = d[k];                                                               \
            out[k] = a[k] > 0 ? x : 0;                                              \
        }                                                                           \
        break;                                                                      \
    case SK_D_LEAKY_RELU:                                                           \
        for (k = 0; k < size; k++) {                                                \
            x = d[k];                                                               \
            out[k] = a[k] <= 0 ? x * p1 : x;                                        \
        }                                                                           \
        break;                                                                      \
    case SK_D_ELU: /* f' = scale for z > 0, f(z) + scale * alpha otherwise */       \
        for (k = 0; k < size; k++) {                                                \
            x = d[k];                                                               \
            y = a[k];                                                               \
            out[k] = x * (y > 0 ? p2 : y + p2 * p1);                                \
        }                                                                           \
        break;                                                                      \
    case SK_D_TANH:                                                                 \
        for (k = 0; k < size; k++) {                                                \
            y = a[k];                                                               \
            out[k] = d[k] * (1 - y * y);                                            \
        }                                                                           \
        break;                                                                      \
    case SK_D_LOGISTIC:                                                             \
        for (k = 0; k < size; k++) {                                                \
            y = a[k];                                                               \
            out[k] = d[k] * y * (1 - y);                                            \
        }                                                                           \
        break;                                                                      \
    default: /* identity (and a softmax output's delta, which is given) */         \
        if (out != d) memcpy(out, d, (size_t)size * sizeof(T));                     \
    }                                                                               \
}                                                                                   \
                                                                                    \
/* out[j] = sum_i D[i, j] for m columns of n rows stride apart, in row order. */    \
SK_CLONES static void sk_column_sums_##S(const T *SK_DENSE_RESTRICT D,              \
                                         T *SK_DENSE_RESTRICT out, Py_ssize_t n,    \
                                         Py_ssize_t m, Py_ssize_t stride) {         \
    Py_ssize_t i, j;                                                                \
    for (j = 0; j < m; j++) out[j] = 0;                                             \
    for (i = 0; i < n; i++) {                                                       \
        const T *SK_DENSE_RESTRICT row = D + i * stride;                            \
        for (j = 0; j < m; j++) out[j] = out[j] + row[j];                           \
    }                                                                               \
}                                                                                   \
                                                                                    \
/* dst += src over n values. */                                                     \
SK_CLONES static void sk_add_##S(T *SK_DENSE_RESTRICT dst,                          \
                                 const T *SK_DENSE_RESTRICT src, Py_ssize_t n) {    \
    Py_ssize_t k;                                                                   \
    for (k = 0; k < n; k++) dst[k] = dst[k] + src[k];                               \
}

SK_DENSE_LOOPS(float, f)
SK_DENSE_LOOPS(double, d)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif /* SKNET_DENSE_LOOPS_H */

/* Adam's pass over the parameters, in two builds chosen at run time.
 *
 * The loop is compiled for the baseline instruction set of the target and,
 * on x86 with GCC or Clang, once more for AVX2. A pass over the parameters
 * is bound by its square roots and divisions; AVX2 does them four doubles
 * (eight floats) at a time instead of two (four), about twice as fast.
 *
 * Both builds do the same IEEE operations in the same order (no fused
 * multiply-add: the AVX2 build does not enable FMA), so they give the same
 * result bit for bit. Unlike the recurrent gate loops (target_clones, picked
 * by the loader), the build is picked by a flag the module sets at import,
 * so that the tests can run both on one machine and compare them.
 */
#ifndef SKNET_OPTIM_LOOPS_H
#define SKNET_OPTIM_LOOPS_H

#include <math.h>
#include <stddef.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define SKNET_AVX2_BUILD 1
#else
#define SKNET_AVX2_BUILD 0
#endif

/* The moments of element i (gi, mi, vi hold its gradient and new moments). */
#define SKNET_ADAM_MOMENTS           \
    gi = g[i] * gs;                  \
    mi = b1 * m[i] + c1 * gi;        \
    vi = b2 * v[i] + c2 * gi * gi;   \
    m[i] = mi;                       \
    v[i] = vi;

/* m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, w -= lr m / (sqrt(v) + eps) [* scale],
 * with g = gs * grad: the same expressions, in the same order, as
 * sklearn.neural_network's AdamOptimizer (with its learning rate lr_t).
 * Two loops, so that neither has a branch inside (both vectorize). */
#define SKNET_ADAM_BODY(T, ROOT)                                  \
    {                                                             \
        Py_ssize_t i;                                             \
        T gi, mi, vi, c1 = 1 - b1, c2 = 1 - b2;                   \
        if (scale == NULL) {                                      \
            for (i = 0; i < n; i++) {                             \
                SKNET_ADAM_MOMENTS                                \
                w[i] -= lr * mi / (ROOT(vi) + eps);               \
            }                                                     \
        } else {                                                  \
            for (i = 0; i < n; i++) {                             \
                SKNET_ADAM_MOMENTS                                \
                w[i] -= (lr * mi / (ROOT(vi) + eps)) * scale[i];  \
            }                                                     \
        }                                                         \
    }

#define SKNET_ADAM_ARGS(T)                                                    \
    T *w, const T *g, T *m, T *v, const T *scale, Py_ssize_t n, T lr, T b1, \
        T b2, T eps, T gs

static void sknet_adam_f64(SKNET_ADAM_ARGS(double)) SKNET_ADAM_BODY(double, sqrt)
static void sknet_adam_f32(SKNET_ADAM_ARGS(float)) SKNET_ADAM_BODY(float, sqrtf)

#if SKNET_AVX2_BUILD
__attribute__((target("avx2")))
static void sknet_adam_f64_avx2(SKNET_ADAM_ARGS(double)) SKNET_ADAM_BODY(double, sqrt)
__attribute__((target("avx2")))
static void sknet_adam_f32_avx2(SKNET_ADAM_ARGS(float)) SKNET_ADAM_BODY(float, sqrtf)

/* Whether this processor (and its operating system) runs AVX2 code. */
static int sknet_avx2_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
}
#else
#define sknet_adam_f64_avx2 sknet_adam_f64
#define sknet_adam_f32_avx2 sknet_adam_f32
static int sknet_avx2_supported(void) { return 0; }
#endif

#endif /* SKNET_OPTIM_LOOPS_H */

/* Exponentials and the functions built on them, branch-free so that loops over
   them vectorize (each is a few ulp from the C library's; see each one).

   Shared by the recurrent gate loops (_recurrent_fast) and the dense step's
   softmax, logistic, ELU and float64 tanh (_dense_loops.h). Include after any pragma the
   includer wants them compiled under (the gate loops': no-trapping-math). */
#ifndef SKNET_VECTOR_MATH_H
#define SKNET_VECTOR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* x = k ln2 + r with |r| <= ln2 / 2, for x in [-87.3, 88.3]: returns r, and 2^k in
   *scale. ln2 is split in two, so k ln2 is exact; kb = x log2e + 1.5 2^23 + 127
   rounds x log2e to k and holds k + 127 in its last mantissa bits, which shifted
   are 2^k's exponent field. */
static inline float sk_reduce_f(float x, float *scale) {
    float kb = x * 1.44269504088896341f + 12583039.0f;
    float k = kb - 12583039.0f;
    float r = x - k * 0.693359375f;
    int32_t bits;
    memcpy(&bits, &kb, sizeof bits);
    bits <<= 23;
    memcpy(scale, &bits, sizeof *scale);
    return r - k * -2.12194440054690583e-4f;
}

/* float64, as sk_reduce_f, for x in [-708, 709] (ln2's high part has 32 bits;
   kb = x log2e + 1.5 2^52 + 1023). */
static inline double sk_reduce_d(double x, double *scale) {
    double kb = x * 1.4426950408889634 + 6755399441056767.0;
    double k = kb - 6755399441056767.0;
    double r = x - k * 0.6931471806019545;
    int64_t bits;
    memcpy(&bits, &kb, sizeof bits);
    bits <<= 52;
    memcpy(scale, &bits, sizeof *scale);
    return r - k * -4.2009150726810846e-11;
}

/* e^r - 1 for |r| <= ln2 / 2 as r + r^2 P(r), P a degree-4 fit to
   (e^r - 1 - r) / r^2 on that interval (relative error 2.5e-8): no term
   cancels, so it keeps its relative accuracy as r goes to 0. */
static inline float sk_expm1_reduced_f(float r) {
    float P = 1.3926392421126366e-3f;
    P = P * r + 8.363345637917519e-3f;
    P = P * r + 4.166655242443085e-2f;
    P = P * r + 1.6666576266288757e-1f;
    P = P * r + 0.5f;
    return r + (r * r) * P;
}

/* float64: P the Taylor polynomial of (e^r - 1 - r) / r^2 to degree 11
   (truncation below 0.01 ulp). */
static inline double sk_expm1_reduced_d(double r) {
    double P = 1.6059043836821613e-10;
    P = P * r + 2.08767569878681e-09;
    P = P * r + 2.505210838544172e-08;
    P = P * r + 2.755731922398589e-07;
    P = P * r + 2.7557319223985893e-06;
    P = P * r + 2.48015873015873e-05;
    P = P * r + 0.0001984126984126984;
    P = P * r + 0.001388888888888889;
    P = P * r + 0.008333333333333333;
    P = P * r + 0.041666666666666664;
    P = P * r + 0.16666666666666666;
    P = P * r + 0.5;
    return r + (r * r) * P;
}

/* e^x in float32 for x in [-87.3, 88.3] (clamped outside): 2^k e^r, e^r by a
   degree-6 polynomial fit on |r| <= ln2 / 2 (relative error 2.6e-9). Within 1.1
   ulp of the exact e^x (1.4 without fused multiply-adds). */
static inline float sk_expf(float x) {
    float scale, r;
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    r = sk_reduce_f(x, &scale);
    float p = 1.3941411161795259e-3f;
    p = p * r + 8.37536808103323e-3f;
    p = p * r + 4.166634753346443e-2f;
    p = p * r + 1.6666412353515625e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * scale;
}

static inline float sk_sigmoid_f(float x) {
    return 1.0f / (1.0f + sk_expf(-x));
}

/* tanh(x) = |em / (2 + em)| with the sign of x, for em = e^y - 1, y = -2|x|
   (clamped below at -20, where em is -1 in float32): em = 2^k (1 + q) - 1 =
   2^k q + (2^k - 1) with q = e^r - 1. No term cancels, so small |x| needs no
   branch of its own: within 3 ulp of the exact tanh everywhere. */
static inline float sk_tanh_f(float x) {
    float scale, y = -2.0f * fabsf(x);
    y = y < -20.0f ? -20.0f : y;
    float q = sk_expm1_reduced_f(sk_reduce_f(y, &scale));
    float em = scale * q + (scale - 1.0f);
    return copysignf(fabsf(em / (2.0f + em)), x);
}

/* e^x - 1 in float32 for x in [-20, 88.3] (clamped outside; below, it is -1):
   2^k q + (2^k - 1) with q = e^r - 1, no term cancelling, so within 2 ulp of
   the exact e^x - 1 also near 0. */
static inline float sk_expm1_f(float x) {
    float scale;
    x = x < -20.0f ? -20.0f : x;
    x = x > 88.3f ? 88.3f : x;
    float q = sk_expm1_reduced_f(sk_reduce_f(x, &scale));
    return scale * q + (scale - 1.0f);
}

/* e^x in float64 for x in [-708, 709] (clamped outside): 2^k (1 + (e^r - 1)),
   within an ulp of the exact e^x. */
static inline double sk_exp_fast_d(double x) {
    double scale;
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    return (1.0 + sk_expm1_reduced_d(sk_reduce_d(x, &scale))) * scale;
}

static inline double sk_sigmoid_d(double x) {
    return 1.0 / (1.0 + sk_exp_fast_d(-x));
}

/* e^x - 1 in float64, as sk_expm1_f, for x in [-40, 709]. */
static inline double sk_expm1_d(double x) {
    double scale;
    x = x < -40.0 ? -40.0 : x;
    x = x > 709.0 ? 709.0 : x;
    double q = sk_expm1_reduced_d(sk_reduce_d(x, &scale));
    return scale * q + (scale - 1.0);
}

/* tanh, as sk_tanh_f (y clamped below at -40); within 3 ulp of the exact tanh. */
static inline double sk_tanh_d(double x) {
    double scale, y = -2.0 * fabs(x);
    y = y < -40.0 ? -40.0 : y;
    double q = sk_expm1_reduced_d(sk_reduce_d(y, &scale));
    double em = scale * q + (scale - 1.0);
    return copysign(fabs(em / (2.0 + em)), x);
}

#endif /* SKNET_VECTOR_MATH_H */

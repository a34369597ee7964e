/* Exponentials and the functions built on them, branch-free so that loops over
   them vectorize (each is a few ulp from the C library's; see each one).

   Shared by the recurrent gate loops (_recurrent_fast) and the dense step's
   softmax (_dense_loops.h). Include after any pragma the includer wants them
   compiled under (the gate loops': no-trapping-math). */
#ifndef SKNET_VECTOR_MATH_H
#define SKNET_VECTOR_MATH_H

#include <stdint.h>
#include <string.h>

/* e^x in float32 for x in [-87.3, 88.3] (clamped outside): x = k ln2 + r with
   |r| <= ln2 / 2 (ln2 split in two for an exact k ln2), e^r by its Taylor
   polynomial of degree 7 (truncation below 0.2 ulp), times 2^k built in the
   exponent bits. Branch-free, so that loops over it vectorize. */
static inline float sk_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440054690583e-4f;
    float p = 1.98412698412698413e-4f;
    p = p * r + 1.38888888888888889e-3f;
    p = p * r + 8.33333333333333333e-3f;
    p = p * r + 4.16666666666666667e-2f;
    p = p * r + 1.66666666666666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sk_sigmoid_f(float x) {
    return 1.0f / (1.0f + sk_expf(-x));
}

/* tanh: its odd Taylor polynomial to x^9 below |x| = 0.25 (truncation below
   0.1 ulp), (1 - e) / (1 + e) with e = exp(-2 |x|) above (no cancellation). */
static inline float sk_tanh_f(float x) {
    float ax = x < 0.0f ? -x : x;
    float x2 = x * x;
    float small = 2.18694885361552028e-2f;
    small = small * x2 - 5.39682539682539683e-2f;
    small = small * x2 + 1.33333333333333333e-1f;
    small = small * x2 - 3.33333333333333333e-1f;
    small = x + x * (small * x2);
    float e = sk_expf(-2.0f * ax);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0.0f ? -big : big;
    return ax < 0.25f ? small : big;
}

/* e^x in float64 for x in [-708, 709] (clamped outside), as sk_expf: k ln2
   exact (ln2's high part has 32 bits), e^r by its Taylor polynomial of
   degree 13 (truncation below 0.05 ulp), 2^k from the bits of the rounded
   k (no float-to-integer conversion, which AVX2 lacks for 64 bits). */
static inline double sk_exp_fast_d(double x) {
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    double kd = x * 1.4426950408889634 + 6755399441055744.0;
    int64_t kbits;
    memcpy(&kbits, &kd, sizeof kbits);
    double k = kd - 6755399441055744.0;
    double r = x - k * 0.6931471806019545;
    r = r - k * -4.2009150726810846e-11;
    double p = 1.6059043836821613e-10;
    p = p * r + 2.08767569878681e-09;
    p = p * r + 2.505210838544172e-08;
    p = p * r + 2.755731922398589e-07;
    p = p * r + 2.7557319223985893e-06;
    p = p * r + 2.48015873015873e-05;
    p = p * r + 0.0001984126984126984;
    p = p * r + 0.001388888888888889;
    p = p * r + 0.008333333333333333;
    p = p * r + 0.041666666666666664;
    p = p * r + 0.16666666666666666;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t bits = (kbits - (int64_t)0x4338000000000000LL + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline double sk_sigmoid_d(double x) {
    return 1.0 / (1.0 + sk_exp_fast_d(-x));
}

/* tanh: its odd Taylor polynomial to x^15 below |x| = 0.125 (truncation below
   0.01 ulp), (1 - e) / (1 + e) with e = exp(-2 |x|) above (within a few ulp). */
static inline double sk_tanh_d(double x) {
    double ax = x < 0.0 ? -x : x;
    double x2 = x * x;
    double small = -0.0014558343870513183;
    small = small * x2 + 0.003592128036572481;
    small = small * x2 - 0.008863235529902197;
    small = small * x2 + 0.021869488536155203;
    small = small * x2 - 0.05396825396825397;
    small = small * x2 + 0.13333333333333333;
    small = small * x2 - 0.3333333333333333;
    small = x + x * (small * x2);
    double e = sk_exp_fast_d(-2.0 * ax);
    double big = (1.0 - e) / (1.0 + e);
    big = x < 0.0 ? -big : big;
    return ax < 0.125 ? small : big;
}

#endif /* SKNET_VECTOR_MATH_H */

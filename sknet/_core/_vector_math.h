/* Exponentials and the functions built on them, branch-free so that loops over
   them vectorize (each is a few ulp from the C library's; see each one).

   Shared by the recurrent gate loops (_recurrent_fast) and the dense step's
   softmax and float64 tanh (_dense_loops.h). Include after any pragma the includer wants them
   compiled under (the gate loops': no-trapping-math). */
#ifndef SKNET_VECTOR_MATH_H
#define SKNET_VECTOR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x in float32 for x in [-87.3, 88.3] (clamped outside): x = k ln2 + r with
   |r| <= ln2 / 2 (ln2 split in two for an exact k ln2), e^r by a degree-6
   polynomial fit on that interval (relative error 2.6e-9), times 2^k built in
   the exponent bits: t = x log2e + 1.5 2^23 + 127 rounds x log2e to k, and holds
   k + 127 in its last mantissa bits. Within 1.1 ulp of the exact e^x (1.4
   without fused multiply-adds). Branch-free, so that loops over it vectorize. */
static inline float sk_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float kb = x * 1.44269504088896341f + 12583039.0f;
    float k = kb - 12583039.0f;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440054690583e-4f;
    float p = 1.3941411161795259e-3f;
    p = p * r + 8.37536808103323e-3f;
    p = p * r + 4.166634753346443e-2f;
    p = p * r + 1.6666412353515625e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits;
    memcpy(&bits, &kb, sizeof bits);
    bits <<= 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sk_sigmoid_f(float x) {
    return 1.0f / (1.0f + sk_expf(-x));
}

/* tanh(x) = |em / (2 + em)| with the sign of x, for em = e^y - 1, y = -2|x|
   (clamped below at -20, where em is -1 in float32): y = k ln2 + r as for sk_expf,
   and em = 2^k (1 + q) - 1 = 2^k q + (2^k - 1), with q = e^r - 1 = r + r^2 P(r)
   for P a degree-4 fit to (e^r - 1 - r) / r^2 on |r| <= ln2 / 2 (relative error
   2.5e-8). No term cancels, so small |x| needs no branch of its own: within 3 ulp
   of the exact tanh everywhere, and the loops over it vectorize. */
static inline float sk_tanh_f(float x) {
    float y = -2.0f * fabsf(x);
    y = y < -20.0f ? -20.0f : y;
    float kb = y * 1.44269504088896341f + 12583039.0f;  /* 1.5 2^23 + 127 */
    float k = kb - 12583039.0f;
    float r = y - k * 0.693359375f;
    r = r - k * -2.12194440054690583e-4f;
    float P = 1.3926392421126366e-3f;
    P = P * r + 8.363345637917519e-3f;
    P = P * r + 4.166655242443085e-2f;
    P = P * r + 1.6666576266288757e-1f;
    P = P * r + 0.5f;
    float q = r + (r * r) * P;
    int32_t bits;  /* k + 127 in kb's last mantissa bits: 2^k's exponent field */
    memcpy(&bits, &kb, sizeof bits);
    bits <<= 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float em = scale * q + (scale - 1.0f);
    return copysignf(fabsf(em / (2.0f + em)), x);
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

/* tanh, as sk_tanh_f: y = -2|x| clamped below at -40, q = e^r - 1 = r + r^2 P(r)
   with P the Taylor polynomial of (e^r - 1 - r) / r^2 to degree 12 (truncation
   below 0.01 ulp); within 3 ulp of the exact tanh. */
static inline double sk_tanh_d(double x) {
    double y = -2.0 * fabs(x);
    y = y < -40.0 ? -40.0 : y;
    double kb = y * 1.4426950408889634 + 6755399441056767.0;  /* 1.5 2^52 + 1023 */
    double k = kb - 6755399441056767.0;
    double r = y - k * 0.6931471806019545;
    r = r - k * -4.2009150726810846e-11;
    double P = 1.1470745597729725e-11;
    P = P * r + 1.6059043836821613e-10;
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
    double q = r + (r * r) * P;
    int64_t bits;  /* k + 1023 in kb's last mantissa bits: 2^k's exponent field */
    memcpy(&bits, &kb, sizeof bits);
    bits <<= 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double em = scale * q + (scale - 1.0);
    return copysign(fabs(em / (2.0 + em)), x);
}

#endif /* SKNET_VECTOR_MATH_H */

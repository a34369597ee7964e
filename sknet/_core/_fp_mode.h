/* The processor's handling of subnormal numbers, for the training kernels.

   sk_flush_subnormals() sets the calling thread to flush subnormal results
   to zero and to read subnormal inputs as zero (x86: MXCSR's FTZ and DAZ
   bits; AArch64: FPCR's FZ bit), and returns the mode it found, which
   sk_restore_fp() puts back. Elsewhere both do nothing. */
#ifndef SKNET_FP_MODE_H
#define SKNET_FP_MODE_H

#if defined(__x86_64__) || (defined(_M_X64) && !defined(_M_ARM64EC))
#include <xmmintrin.h>
static inline unsigned long sk_flush_subnormals(void) {
    unsigned int mode = _mm_getcsr();
    _mm_setcsr(mode | 0x8040u);  /* FTZ (bit 15) and DAZ (bit 6) */
    return mode;
}
static inline void sk_restore_fp(unsigned long mode) { _mm_setcsr((unsigned int)mode); }
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
static inline unsigned long sk_flush_subnormals(void) {
    unsigned long mode;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(mode));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(mode | (1ul << 24)));  /* FZ */
    return mode;
}
static inline void sk_restore_fp(unsigned long mode) {
    __asm__ __volatile__("msr fpcr, %0" : : "r"(mode));
}
#else
static inline unsigned long sk_flush_subnormals(void) { return 0; }
static inline void sk_restore_fp(unsigned long mode) { (void)mode; }
#endif

#endif

/* Products with a right-hand matrix packed once and used many times.

   The recurrent loops multiply by the same W_hh at every time step of a
   batch, in products too small (tens of rows) for BLAS's per-call packing of
   both operands to pay off. Here the right-hand matrix B (K x N) is packed
   once into panels of SK_NR(T) columns, each panel's K rows of SK_NR(T)
   values contiguous (zero beyond N), and each product
   C = A B (+ C) runs a register-blocked kernel over it: SK_MR rows of A by one
   panel, the rows of A read in place (any row stride).

   A may come in two pieces side by side, C = [A1 A2] [B1; B2] (+ C), so that
   a recurrent step's x_t W_ih^T + h_{t-1} W_hh^T is one product: B1 fills
   the first K1 rows of each panel, B2 the next K2 (the panels keep their
   size when a call leaves A2 out, K2 = 0, as the first step does).

   The kernel is written with vector types (GCC and Clang): built for AVX2
   with FMA (x86-64-v3) and for the baseline, the loader choosing by the
   processor (SK_GEMM_CLONES, where the compiler supports target_clones). Without
   vector types it falls back to plain loops.

   Sums run in order over k = 0 .. K-1, one product per term (fused with the
   addition under FMA), so the result differs from BLAS's only in rounding. */

#ifndef SKNET_SMALL_GEMM_H
#define SKNET_SMALL_GEMM_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && __GNUC__ >= 12
#define SK_GEMM_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SK_GEMM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SK_GEMM_CLONES
#endif

#define SK_MR 6                 /* rows of A per tile */
#define SK_NR_f 16              /* columns per panel: two vectors of 8 floats */
#define SK_NR_d 8               /* two vectors of 4 doubles */

/* Size, in items, of B (K x N) packed. */
#define SK_PACKED_SIZE(K, N, NR) ((size_t)(K) * (size_t)(((N) + (NR) - 1) / (NR)) * (NR))

/* Pack B (K x N) into rows k0 .. k0 + K - 1 of panels of Kp rows: B[k][j] is
   B[k * rs + j * cs] (rs, cs: strides in items, so that B may be a
   transposed view). */
#define SK_DEFINE_PACK(S, T)                                                     \
static void sk_pack_##S(const T *B, ptrdiff_t rs, ptrdiff_t cs, int K, int N,   \
                        T *packed, int k0, int Kp) {                             \
    int j0, k, j;                                                                \
    for (j0 = 0; j0 < N; j0 += SK_NR_##S) {                                      \
        T *panel = packed + ((size_t)(j0 / SK_NR_##S) * Kp + k0) * SK_NR_##S;    \
        for (k = 0; k < K; k++)                                                  \
            for (j = 0; j < SK_NR_##S; j++)                                      \
                panel[k * SK_NR_##S + j] =                                       \
                    j0 + j < N ? B[k * rs + (ptrdiff_t)(j0 + j) * cs] : (T)0;    \
    }                                                                            \
}

SK_DEFINE_PACK(f, float)
SK_DEFINE_PACK(d, double)

#if defined(__GNUC__) || defined(__clang__)

typedef float sk_v8f __attribute__((vector_size(32)));
typedef double sk_v4d __attribute__((vector_size(32)));

/* One tile: rows a[0..5] of A times one panel. The twelve accumulators, two
   panel vectors and one broadcast fill AVX2's sixteen registers. A full tile
   (SK_MR rows, 2W columns) goes straight to C (ldc apart); a partial one to
   out (SK_MR x 2W), which the caller copies. */
#define SK_STORE_ROW(S, T, V, W, c, row, x0, x1)                                 \
    do {                                                                         \
        T *dst_ = (c) + (row) * ldc;                                             \
        if (accumulate) {                                                        \
            V y0_, y1_;                                                          \
            memcpy(&y0_, dst_, sizeof y0_); memcpy(&y1_, dst_ + W, sizeof y1_);  \
            x0 += y0_; x1 += y1_;                                                \
        }                                                                        \
        memcpy(dst_, &x0, sizeof x0); memcpy(dst_ + W, &x1, sizeof x1);          \
    } while (0)

#define SK_TILE_STEPS(W, a0, a1, a2, a3, a4, a5, panel, K)                       \
    for (k = 0; k < (K); k++) {                                                  \
        memcpy(&b0, (panel) + 2 * W * k, sizeof b0);                             \
        memcpy(&b1, (panel) + 2 * W * k + W, sizeof b1);                         \
        c00 += a0[k] * b0; c01 += a0[k] * b1;                                    \
        c10 += a1[k] * b0; c11 += a1[k] * b1;                                    \
        c20 += a2[k] * b0; c21 += a2[k] * b1;                                    \
        c30 += a3[k] * b0; c31 += a3[k] * b1;                                    \
        c40 += a4[k] * b0; c41 += a4[k] * b1;                                    \
        c50 += a5[k] * b0; c51 += a5[k] * b1;                                    \
    }

#define SK_DEFINE_TILE(S, T, V, W)                                               \
static inline __attribute__((always_inline)) void sk_tile_##S(                   \
        const T *const *a, int K1, const T *const *b, int K2, const T *panel,   \
        T *C, ptrdiff_t ldc, int accumulate, int full, T *out) {                \
    V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};          \
    V c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};          \
    V b0, b1;                                                                    \
    int k;                                                                       \
    {                                                                            \
        const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4];      \
        const T *a5 = a[5];                                                      \
        SK_TILE_STEPS(W, a0, a1, a2, a3, a4, a5, panel, K1)                      \
    }                                                                            \
    if (K2 > 0) {                                                                \
        const T *a0 = b[0], *a1 = b[1], *a2 = b[2], *a3 = b[3], *a4 = b[4];      \
        const T *a5 = b[5];                                                      \
        SK_TILE_STEPS(W, a0, a1, a2, a3, a4, a5, panel + 2 * W * K1, K2)         \
    }                                                                            \
    if (full) {                                                                  \
        SK_STORE_ROW(S, T, V, W, C, 0, c00, c01);                                \
        SK_STORE_ROW(S, T, V, W, C, 1, c10, c11);                                \
        SK_STORE_ROW(S, T, V, W, C, 2, c20, c21);                                \
        SK_STORE_ROW(S, T, V, W, C, 3, c30, c31);                                \
        SK_STORE_ROW(S, T, V, W, C, 4, c40, c41);                                \
        SK_STORE_ROW(S, T, V, W, C, 5, c50, c51);                                \
        return;                                                                  \
    }                                                                            \
    memcpy(out + 0 * W, &c00, sizeof c00); memcpy(out + 1 * W, &c01, sizeof c01);\
    memcpy(out + 2 * W, &c10, sizeof c10); memcpy(out + 3 * W, &c11, sizeof c11);\
    memcpy(out + 4 * W, &c20, sizeof c20); memcpy(out + 5 * W, &c21, sizeof c21);\
    memcpy(out + 6 * W, &c30, sizeof c30); memcpy(out + 7 * W, &c31, sizeof c31);\
    memcpy(out + 8 * W, &c40, sizeof c40); memcpy(out + 9 * W, &c41, sizeof c41);\
    memcpy(out + 10 * W, &c50, sizeof c50); memcpy(out + 11 * W, &c51, sizeof c51);\
}

SK_DEFINE_TILE(f, float, sk_v8f, 8)
SK_DEFINE_TILE(d, double, sk_v4d, 4)

#else

#define SK_DEFINE_TILE(S, T)                                                     \
static void sk_tile_##S(const T *const *a, int K1, const T *const *b, int K2,   \
                        const T *panel, T *C, ptrdiff_t ldc, int accumulate,    \
                        int full, T *out) {                                      \
    int r, k, j;                                                                 \
    for (r = 0; r < SK_MR; r++)                                                  \
        for (j = 0; j < SK_NR_##S; j++) {                                        \
            T s = 0;                                                             \
            for (k = 0; k < K1; k++)                                             \
                s += a[r][k] * panel[k * SK_NR_##S + j];                         \
            for (k = 0; k < K2; k++)                                             \
                s += b[r][k] * panel[(K1 + k) * SK_NR_##S + j];                  \
            out[r * SK_NR_##S + j] = s;                                          \
        }                                                                        \
    (void)C; (void)ldc; (void)accumulate; (void)full;                            \
}

SK_DEFINE_TILE(f, float)
SK_DEFINE_TILE(d, double)

#endif

/* The rows of a tile: SK_MR pointers from row i0 of X (rows ld apart), rows
   past M repeating row i0 (their results are not stored). */
#define SK_TILE_ROWS(rows, X, ld, i0, mr)                                        \
    for (r = 0; r < SK_MR; r++)                                                  \
        rows[r] = (X) + ((i0) + (r < (mr) ? r : 0)) * (ld);

/* C (M x N, row stride ldc) = A1 B1 + A2 B2 + (accumulate ? C : 0): A1 is
   M x K1 (row stride lda1), A2 M x K2 (lda2; unread when K2 is 0), B1 and B2
   packed by sk_pack into the first K1 and the next K2 rows of panels of Kp. */
#define SK_DEFINE_GEMM(S, T)                                                     \
SK_GEMM_CLONES static void sk_gemm_packed_##S(                                   \
        int M, int N, const T *A1, ptrdiff_t lda1, int K1, const T *A2,         \
        ptrdiff_t lda2, int K2, const T *packed, int Kp, T *C, ptrdiff_t ldc,   \
        int accumulate) {                                                        \
    T out[SK_MR * SK_NR_##S];                                                    \
    const T *a[SK_MR], *b[SK_MR];                                                \
    int i0, j0, r, j, mr, nr, full;                                              \
    for (j0 = 0; j0 < N; j0 += SK_NR_##S) {                                      \
        const T *panel = packed + (size_t)(j0 / SK_NR_##S) * Kp * SK_NR_##S;     \
        nr = N - j0 < SK_NR_##S ? N - j0 : SK_NR_##S;                            \
        for (i0 = 0; i0 < M; i0 += SK_MR) {                                      \
            mr = M - i0 < SK_MR ? M - i0 : SK_MR;                                \
            full = mr == SK_MR && nr == SK_NR_##S;                               \
            SK_TILE_ROWS(a, A1, lda1, i0, mr)                                    \
            if (K2 > 0) {                                                        \
                SK_TILE_ROWS(b, A2, lda2, i0, mr)                                \
            } else {                                                             \
                for (r = 0; r < SK_MR; r++) b[r] = a[r];                         \
            }                                                                    \
            sk_tile_##S(a, K1, b, K2, panel, C + i0 * ldc + j0, ldc, accumulate, \
                        full, out);                                              \
            for (r = 0; r < mr && !full; r++) {                                  \
                T *c = C + (i0 + r) * ldc + j0;                                  \
                const T *o = out + r * SK_NR_##S;                                \
                if (accumulate)                                                  \
                    for (j = 0; j < nr; j++) c[j] += o[j];                       \
                else                                                             \
                    for (j = 0; j < nr; j++) c[j] = o[j];                        \
            }                                                                    \
        }                                                                        \
    }                                                                            \
}

SK_DEFINE_GEMM(f, float)
SK_DEFINE_GEMM(d, double)

#endif

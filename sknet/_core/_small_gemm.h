/* Products with a right-hand matrix packed once and used many times.

   The recurrent loops multiply by the same W_hh at every time step of a
   batch, in products too small (tens of rows) for BLAS's per-call packing of
   both operands to pay off. Here the right-hand matrix B (K x N) is packed
   once into panels of SK_NR(T) columns, each panel's K rows of SK_NR(T)
   values contiguous (zero beyond N), and each product
   C = A B (+ C) runs a register-blocked kernel over it: SK_MR rows of A by one
   panel, A read in place (any row stride, and any stride along k, so that A
   may be a transposed view: the backward loops' weight gradients
   dG_t^T [x_t, h_{t-1}] read dG_t so, B packed from one step's rows).

   A may come in two pieces side by side, C = [A1 A2] [B1; B2] (+ C), so that
   a recurrent step's x_t W_ih^T + h_{t-1} W_hh^T is one product: B1 fills
   the first K1 rows of each panel, B2 the next K2 (the panels keep their
   size when a call leaves A2 out, K2 = 0, as the first step does).

   A B used once (the dense step's weights and deltas) need not be packed:
   sk_gemm_inplace reads its whole panels where they lie, SK_NR(T) columns
   of each row, rows apart by B's own stride, and packs only the columns
   after them.

   The kernel is written with vector types (GCC and Clang): tiles of
   256-bit vectors built for AVX-512 (x86-64-v4), for AVX2 with FMA
   (x86-64-v3) and for the baseline, the loader choosing by the processor
   (SK_CLONES, where the compiler supports target_clones), and tiles of
   512-bit vectors (sk_zgemm), run where the processor has AVX-512. Without
   vector types it falls back to plain loops.

   Sums run in order over k = 0 .. K-1, one product per term (fused with the
   addition under FMA), so the result differs from BLAS's only in rounding. */

#ifndef SKNET_SMALL_GEMM_H
#define SKNET_SMALL_GEMM_H

#include <stddef.h>
#include <string.h>

/* Three builds of a function, AVX-512, AVX2 with FMA and the baseline, the
   loader choosing (gcc on x86-64 Linux); _recurrent_fast's gate loops use it
   too. The loops the compiler vectorizes itself take 512-bit vectors in the
   AVX-512 build (a float64 load_digits fit on one thread of an AMD EPYC with
   AVX-512: 1.036x to 1.058x faster than with the AVX2 build). There the
   products run on their own 512-bit tiles (SK_ZMM_RUNTIME, below). A
   harness may define SK_CLONES itself (empty) to test one build. */
#ifndef SK_CLONES
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && __GNUC__ >= 12
#define SK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define SK_ZMM_RUNTIME 1
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SK_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SK_CLONES
#endif
#endif

/* The product's body, inlined into each build of its callers. */
#if defined(__GNUC__) || defined(__clang__)
#define SK_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define SK_ALWAYS_INLINE static inline
#endif

#define SK_MR 6                 /* rows of A per tile */
#define SK_NR_f 16              /* columns per panel: two vectors of 8 floats */
#define SK_NR_d 8               /* two vectors of 4 doubles */

/* Size, in items, of B (K x N) packed. */
#define SK_PACKED_SIZE(K, N, NR) ((size_t)(K) * (size_t)(((N) + (NR) - 1) / (NR)) * (NR))

/* Pack B (K x N) into rows k0 .. k0 + K - 1 of panels of Kp rows: B[k][j] is
   B[k * rs + j * cs] (rs, cs: strides in items, so that B may be a
   transposed view). A full panel of B's rows (cs = 1) is copied row by row. */
#define SK_DEFINE_PACK(S, T)                                                     \
static void sk_pack_##S(const T *B, ptrdiff_t rs, ptrdiff_t cs, int K, int N,    \
                        T *packed, int k0, int Kp) {                             \
    int j0, k, j;                                                                \
    for (j0 = 0; j0 < N; j0 += SK_NR_##S) {                                      \
        T *panel = packed + ((size_t)(j0 / SK_NR_##S) * Kp + k0) * SK_NR_##S;    \
        if (cs == 1 && j0 + SK_NR_##S <= N) {                                    \
            for (k = 0; k < K; k++)                                              \
                memcpy(panel + k * SK_NR_##S, B + k * rs + j0,                   \
                       SK_NR_##S * sizeof(T));                                   \
            continue;                                                            \
        }                                                                        \
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
#define SK_STORE_ROW(T, V, W, c, row, x0, x1)                                    \
    do {                                                                         \
        T *dst_ = (c) + (row) * ldc;                                             \
        if (accumulate) {                                                        \
            V y0_, y1_;                                                          \
            memcpy(&y0_, dst_, sizeof y0_); memcpy(&y1_, dst_ + W, sizeof y1_);  \
            x0 += y0_; x1 += y1_;                                                \
        }                                                                        \
        memcpy(dst_, &x0, sizeof x0); memcpy(dst_ + W, &x1, sizeof x1);          \
    } while (0)

/* The twelve accumulators, in order, into out (12 x W values). */
#define SK_SPILL(out, W, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11)       \
    do {                                                                         \
        memcpy((out) + 0 * W, &x0, sizeof x0); memcpy((out) + 1 * W, &x1, sizeof x1); \
        memcpy((out) + 2 * W, &x2, sizeof x2); memcpy((out) + 3 * W, &x3, sizeof x3); \
        memcpy((out) + 4 * W, &x4, sizeof x4); memcpy((out) + 5 * W, &x5, sizeof x5); \
        memcpy((out) + 6 * W, &x6, sizeof x6); memcpy((out) + 7 * W, &x7, sizeof x7); \
        memcpy((out) + 8 * W, &x8, sizeof x8); memcpy((out) + 9 * W, &x9, sizeof x9); \
        memcpy((out) + 10 * W, &x10, sizeof x10);                                \
        memcpy((out) + 11 * W, &x11, sizeof x11);                                \
    } while (0)

#define SK_TILE_STEPS(W, a0, a1, a2, a3, a4, a5, panel, K)                       \
    for (k = 0; k < (K); k++) {                                                  \
        memcpy(&b0, (panel) + prs * k, sizeof b0);                               \
        memcpy(&b1, (panel) + prs * k + W, sizeof b1);                           \
        c00 += a0[k * aks] * b0; c01 += a0[k * aks] * b1;                        \
        c10 += a1[k * aks] * b0; c11 += a1[k * aks] * b1;                        \
        c20 += a2[k * aks] * b0; c21 += a2[k * aks] * b1;                        \
        c30 += a3[k * aks] * b0; c31 += a3[k * aks] * b1;                        \
        c40 += a4[k * aks] * b0; c41 += a4[k * aks] * b1;                        \
        c50 += a5[k * aks] * b0; c51 += a5[k * aks] * b1;                        \
    }

#define SK_DEFINE_TILE(S, T, V, W)                                               \
static inline __attribute__((always_inline)) void sk_tile_##S(                   \
        const T *const *a, int K1, const T *const *b, int K2, const T *panel,    \
        T *C, ptrdiff_t ldc, int accumulate, int full, T *out, ptrdiff_t aks,    \
        ptrdiff_t prs) {                                                         \
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
        SK_TILE_STEPS(W, a0, a1, a2, a3, a4, a5, panel + prs * K1, K2)           \
    }                                                                            \
    if (full) {                                                                  \
        SK_STORE_ROW(T, V, W, C, 0, c00, c01);                                   \
        SK_STORE_ROW(T, V, W, C, 1, c10, c11);                                   \
        SK_STORE_ROW(T, V, W, C, 2, c20, c21);                                   \
        SK_STORE_ROW(T, V, W, C, 3, c30, c31);                                   \
        SK_STORE_ROW(T, V, W, C, 4, c40, c41);                                   \
        SK_STORE_ROW(T, V, W, C, 5, c50, c51);                                   \
        return;                                                                  \
    }                                                                            \
    SK_SPILL(out, W, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);    \
}

SK_DEFINE_TILE(f, float, sk_v8f, 8)
SK_DEFINE_TILE(d, double, sk_v4d, 4)

/* The rows left below a multiple of SK_MR, two at a time: rows a[0..1] times
   three panels p[0..2], twelve accumulators again; straight to C when the
   two rows and the three panels are whole, else into out (2 x 3 x 2W). */
#define SK_WIDE_STEPS(T, V, W, a0, a1, q0, q1, q2, K)                            \
    for (k = 0; k < (K); k++) {                                                  \
        V b0, b1;                                                                \
        const T x0 = a0[k * aks], x1 = a1[k * aks];                              \
        memcpy(&b0, (q0) + prs * k, sizeof b0);                                  \
        memcpy(&b1, (q0) + prs * k + W, sizeof b1);                              \
        c00 += x0 * b0; c01 += x0 * b1; c10 += x1 * b0; c11 += x1 * b1;          \
        memcpy(&b0, (q1) + prs * k, sizeof b0);                                  \
        memcpy(&b1, (q1) + prs * k + W, sizeof b1);                              \
        c02 += x0 * b0; c03 += x0 * b1; c12 += x1 * b0; c13 += x1 * b1;          \
        memcpy(&b0, (q2) + prs * k, sizeof b0);                                  \
        memcpy(&b1, (q2) + prs * k + W, sizeof b1);                              \
        c04 += x0 * b0; c05 += x0 * b1; c14 += x1 * b0; c15 += x1 * b1;          \
    }

#define SK_DEFINE_WIDE(S, T, V, W)                                               \
static inline __attribute__((always_inline)) void sk_wide_##S(                   \
        const T *const *a, int K1, const T *const *b, int K2,                    \
        const T *const *p, T *C, ptrdiff_t ldc, int accumulate, int full,        \
        T *out, ptrdiff_t aks, ptrdiff_t prs) {                                  \
    V c00 = {0}, c01 = {0}, c02 = {0}, c03 = {0}, c04 = {0}, c05 = {0};          \
    V c10 = {0}, c11 = {0}, c12 = {0}, c13 = {0}, c14 = {0}, c15 = {0};          \
    int k;                                                                       \
    {                                                                            \
        const T *a0 = a[0], *a1 = a[1];                                          \
        SK_WIDE_STEPS(T, V, W, a0, a1, p[0], p[1], p[2], K1)                     \
    }                                                                            \
    if (K2 > 0) {                                                                \
        const T *a0 = b[0], *a1 = b[1];                                          \
        SK_WIDE_STEPS(T, V, W, a0, a1, p[0] + prs * K1, p[1] + prs * K1,         \
                      p[2] + prs * K1, K2)                                       \
    }                                                                            \
    if (full) {                                                                  \
        SK_STORE_ROW(T, V, W, C, 0, c00, c01);                                   \
        SK_STORE_ROW(T, V, W, C + 2 * W, 0, c02, c03);                           \
        SK_STORE_ROW(T, V, W, C + 4 * W, 0, c04, c05);                           \
        SK_STORE_ROW(T, V, W, C, 1, c10, c11);                                   \
        SK_STORE_ROW(T, V, W, C + 2 * W, 1, c12, c13);                           \
        SK_STORE_ROW(T, V, W, C + 4 * W, 1, c14, c15);                           \
        return;                                                                  \
    }                                                                            \
    SK_SPILL(out, W, c00, c01, c02, c03, c04, c05, c10, c11, c12, c13, c14, c15);    \
}

SK_DEFINE_WIDE(f, float, sk_v8f, 8)
SK_DEFINE_WIDE(d, double, sk_v4d, 4)

/* A last panel whose columns fit its first vector (N mod 2W in 1 .. W, as a
   layer of 10 outputs leaves in float64): rows a[0..11] times that vector,
   twelve accumulators, into out (12 x W), which the caller copies. A tile of
   SK_MR rows would run the panel's empty second vector as well. */
#define SK_NARROW_STEPS(W, a, panel, K)                                          \
    for (k = 0; k < (K); k++) {                                                  \
        memcpy(&b0, (panel) + prs * k, sizeof b0);                               \
        c0 += a[0][k * aks] * b0; c1 += a[1][k * aks] * b0;                      \
        c2 += a[2][k * aks] * b0; c3 += a[3][k * aks] * b0;                      \
        c4 += a[4][k * aks] * b0; c5 += a[5][k * aks] * b0;                      \
        c6 += a[6][k * aks] * b0; c7 += a[7][k * aks] * b0;                      \
        c8 += a[8][k * aks] * b0; c9 += a[9][k * aks] * b0;                      \
        c10 += a[10][k * aks] * b0; c11 += a[11][k * aks] * b0;                  \
    }

#define SK_DEFINE_NARROW(S, T, V, W)                                             \
static inline __attribute__((always_inline)) void sk_narrow_##S(                 \
        const T *const *a, int K1, const T *const *b, int K2, const T *panel,    \
        T *out, ptrdiff_t aks, ptrdiff_t prs) {                                  \
    V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0};                \
    V c6 = {0}, c7 = {0}, c8 = {0}, c9 = {0}, c10 = {0}, c11 = {0};              \
    V b0;                                                                        \
    int k;                                                                       \
    SK_NARROW_STEPS(W, a, panel, K1)                                             \
    if (K2 > 0) SK_NARROW_STEPS(W, b, panel + prs * K1, K2)                      \
    SK_SPILL(out, W, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);          \
}

SK_DEFINE_NARROW(f, float, sk_v8f, 8)
SK_DEFINE_NARROW(d, double, sk_v4d, 4)

#else

#define SK_DEFINE_TILE(S, T)                                                     \
static void sk_tile_##S(const T *const *a, int K1, const T *const *b, int K2,    \
                        const T *panel, T *C, ptrdiff_t ldc, int accumulate,     \
                        int full, T *out, ptrdiff_t aks, ptrdiff_t prs) {        \
    int r, k, j;                                                                 \
    for (r = 0; r < SK_MR; r++)                                                  \
        for (j = 0; j < SK_NR_##S; j++) {                                        \
            T s = 0;                                                             \
            for (k = 0; k < K1; k++)                                             \
                s += a[r][k * aks] * panel[k * prs + j];                         \
            for (k = 0; k < K2; k++)                                             \
                s += b[r][k * aks] * panel[(K1 + k) * prs + j];                  \
            if (!full)                                                           \
                out[r * SK_NR_##S + j] = s;                                      \
            else if (accumulate)                                                 \
                C[r * ldc + j] += s;                                             \
            else                                                                 \
                C[r * ldc + j] = s;                                              \
        }                                                                        \
}

SK_DEFINE_TILE(f, float)
SK_DEFINE_TILE(d, double)

#define SK_DEFINE_WIDE(S, T)                                                     \
static void sk_wide_##S(const T *const *a, int K1, const T *const *b, int K2,    \
                        const T *const *p, T *C, ptrdiff_t ldc, int accumulate,  \
                        int full, T *out, ptrdiff_t aks, ptrdiff_t prs) {        \
    int r, q, k, j;                                                              \
    for (r = 0; r < 2; r++)                                                      \
        for (q = 0; q < 3; q++)                                                  \
            for (j = 0; j < SK_NR_##S; j++) {                                    \
                T s = 0;                                                         \
                for (k = 0; k < K1; k++)                                         \
                    s += a[r][k * aks] * p[q][k * prs + j];                      \
                for (k = 0; k < K2; k++)                                         \
                    s += b[r][k * aks] * p[q][(K1 + k) * prs + j];               \
                if (!full)                                                       \
                    out[(r * 3 + q) * SK_NR_##S + j] = s;                        \
                else if (accumulate)                                             \
                    C[r * ldc + q * SK_NR_##S + j] += s;                         \
                else                                                             \
                    C[r * ldc + q * SK_NR_##S + j] = s;                          \
            }                                                                    \
}

SK_DEFINE_WIDE(f, float)
SK_DEFINE_WIDE(d, double)

#define SK_DEFINE_NARROW(S, T)                                                   \
static void sk_narrow_##S(const T *const *a, int K1, const T *const *b, int K2,  \
                          const T *panel, T *out, ptrdiff_t aks,                 \
                          ptrdiff_t prs) {                                       \
    int r, k, j;                                                                 \
    for (r = 0; r < 12; r++)                                                     \
        for (j = 0; j < SK_NR_##S / 2; j++) {                                    \
            T s = 0;                                                             \
            for (k = 0; k < K1; k++)                                             \
                s += a[r][k * aks] * panel[k * prs + j];                         \
            for (k = 0; k < K2; k++)                                             \
                s += b[r][k * aks] * panel[(K1 + k) * prs + j];                  \
            out[r * (SK_NR_##S / 2) + j] = s;                                    \
        }                                                                        \
}

SK_DEFINE_NARROW(f, float)
SK_DEFINE_NARROW(d, double)

#endif

/* The rows of a tile: n pointers from row i0 of X (rows ld apart), rows past
   M (mr rows are left) repeating row i0 (their results are not stored). */
#define SK_TILE_ROWS(rows, n, X, ld, i0, mr)                                     \
    for (r = 0; r < (n); r++)                                                    \
        rows[r] = (X) + ((i0) + (r < (mr) ? r : 0)) * (ld);

/* Add (accumulate) or copy the first nr values of o into c. */
#define SK_PUT(c, o, nr)                                                         \
    do {                                                                         \
        if (accumulate)                                                          \
            for (j = 0; j < (nr); j++) (c)[j] += (o)[j];                         \
        else                                                                     \
            for (j = 0; j < (nr); j++) (c)[j] = (o)[j];                          \
    } while (0)

/* The products' parameters, and their names as arguments. */
#define SK_GEMM_PARAMS(T)                                                        \
    int M, int N, const T *A1, ptrdiff_t lda1, int K1, const T *A2,              \
    ptrdiff_t lda2, int K2, const T *B, size_t step, ptrdiff_t prs, T *C,        \
    ptrdiff_t ldc, int accumulate, ptrdiff_t aks
#define SK_GEMM_ARGS M, N, A1, lda1, K1, A2, lda2, K2, B, step, prs, C, ldc, accumulate, aks

/* The product bodies' panels: NR columns each, and a last panel of at most
   W columns (narrow) that runs on its own, twelve rows at a time on
   sk_narrow (into thin), after the others. */
#define SK_PANELS(S, T)                                                          \
    const int NR = SK_NR_##S, W = NR / 2, all = (N + NR - 1) / NR;               \
    const int narrow = N % NR > 0 && N % NR <= W, panels = all - narrow;         \
    T thin[12 * SK_NR_##S / 2];                                                  \
    const T *a12[12], *b12[12];

/* The product bodies' last step (their variables): a last panel of at most
   W columns (narrow), twelve rows at a time on sk_narrow. */
#define SK_NARROW_PANEL(S, T)                                                    \
    if (narrow) {                                                                \
        const T *panel = B + (size_t)panels * step;                              \
        const int jn = panels * NR, nn = N - jn;                                 \
        for (i0 = 0; i0 < M; i0 += 12) {                                         \
            mr = M - i0 < 12 ? M - i0 : 12;                                      \
            SK_TILE_ROWS(a12, 12, A1, lda1, i0, mr)                              \
            SK_TILE_ROWS(b12, 12, A2, lda2, i0, mr)                              \
            sk_narrow_##S(a12, K1, b12, K2, panel, thin, aks, prs);              \
            for (r = 0; r < mr; r++)                                             \
                SK_PUT(C + (i0 + r) * ldc + jn, thin + r * W, nn);               \
        }                                                                        \
    }

/* C (M x N, row stride ldc) = A1 B1 + A2 B2 + (accumulate ? C : 0): A1 is
   M x K1 (row stride lda1), A2 M x K2 (lda2; unread when K2 is 0), both aks
   apart along k (1: rows of A contiguous; a row stride of A's transpose:
   A = D^T for a D whose rows are aks apart). B's panels of SK_NR columns
   start pstep apart, each of its rows prs apart (sk_pack's panels: Kp * NR
   and NR; B read in place: NR and its row stride), B1 in each panel's first
   K1 rows and B2 in the next K2. Each panel is read whole (a last panel that
   runs on its own, as below, its first vector), so B's last panel must hold
   SK_NR columns: sk_pack pads it with zeros, and sk_gemm_inplace reads only
   whole panels in place.
   Three panels at a time (they stay in L1): tiles of SK_MR rows by one
   panel; one or two rows left over run by all three panels at once (a
   partial tile of SK_MR rows costs a full one, a wide one about half). A
   last panel whose columns fit one vector runs last, twelve rows at a time
   (sk_narrow). */
#define SK_DEFINE_GEMM_BODY(S, T)                                                \
SK_ALWAYS_INLINE void sk_gemm_body_##S(                                          \
        SK_GEMM_PARAMS(T)) {                                                     \
    SK_PANELS(S, T)                                                              \
    /* rows in tiles of SK_MR (a last partial one when more than two are left) */ \
    const int Mt = M % SK_MR > 2 ? M : M - M % SK_MR;                            \
    T out[SK_MR * SK_NR_##S];                                                    \
    const T *a[SK_MR], *b[SK_MR], *p[3];                                         \
    int i0, j0, q, q0, r, j, mr, nr, full;                                       \
    if (K2 <= 0) A2 = A1, lda2 = lda1;  /* never read */                         \
    for (q0 = 0; q0 < panels; q0 += 3) {  /* three panels stay in L1 */          \
        for (q = q0; q < q0 + 3 && q < panels; q++) {                            \
            const T *panel = B + (size_t)q * step;                               \
            j0 = q * NR;                                                         \
            nr = N - j0 < NR ? N - j0 : NR;                                      \
            for (i0 = 0; i0 < Mt; i0 += SK_MR) {                                 \
                mr = Mt - i0 < SK_MR ? Mt - i0 : SK_MR;                          \
                full = nr == NR && mr == SK_MR;                                  \
                SK_TILE_ROWS(a, SK_MR, A1, lda1, i0, mr)                         \
                SK_TILE_ROWS(b, SK_MR, A2, lda2, i0, mr)                         \
                sk_tile_##S(a, K1, b, K2, panel, C + i0 * ldc + j0, ldc,         \
                            accumulate, full, out, aks, prs);                    \
                for (r = 0; r < mr && !full; r++)                                \
                    SK_PUT(C + (i0 + r) * ldc + j0, out + r * NR, nr);           \
            }                                                                    \
        }                                                                        \
        for (q = 0; q < 3; q++)                                                  \
            p[q] = B + (size_t)(q0 + q < panels ? q0 + q : q0) * step;           \
        for (i0 = Mt; i0 < M; i0 += 2) {                                         \
            mr = M - i0 < 2 ? M - i0 : 2;                                        \
            SK_TILE_ROWS(a, 2, A1, lda1, i0, mr)                                 \
            SK_TILE_ROWS(b, 2, A2, lda2, i0, mr)                                 \
            full = mr == 2 && N >= (q0 + 3) * NR;                                \
            sk_wide_##S(a, K1, b, K2, p, C + i0 * ldc + q0 * NR, ldc, accumulate,\
                        full, out, aks, prs);                                    \
            for (r = 0; r < mr && !full; r++)                                    \
                for (q = 0; q < 3 && q0 + q < panels; q++) {                     \
                    j0 = (q0 + q) * NR;                                          \
                    nr = N - j0 < NR ? N - j0 : NR;                              \
                    SK_PUT(C + (i0 + r) * ldc + j0, out + (r * 3 + q) * NR, nr); \
                }                                                                \
        }                                                                        \
    }                                                                            \
    SK_NARROW_PANEL(S, T)                                                        \
}

/* The tiles of processors with AVX-512 (x86-64-v4): each panel one 512-bit
   vector (SK_NR values), tiles of SK_ZR rows of A by up to three panels,
   twenty-four accumulators of AVX-512's thirty-two registers. On a processor
   that runs 512-bit multiply-adds at full width they do twice the work of
   the 256-bit tiles per instruction (in C, on an Intel Xeon with AVX-512, a
   100-row part of load_digits' hidden layer in float64: the forward product
   in 17.0 us against 26.2 us, the weight gradient in 17.6 against 29.9 us).
   Every entry of C is the same sum as in sk_gemm_body, in
   the same order (one fused multiply-add per term, then C added where it
   accumulates), so the two builds give the same values bit for bit. The
   rows left below a multiple of SK_ZR run in the smallest tile of 8, 4 or 2
   rows that holds them, its rows past M repeating row i0 (their results are
   not stored); a last panel of at most half a vector of columns runs on
   sk_narrow, as in sk_gemm_body.

   Built where gcc chooses builds at load time (SK_ZMM_RUNTIME: the function
   compiled for x86-64-v4 and called where the processor runs it), or where
   the whole file is compiled for AVX-512 (a harness's -march=x86-64-v4). */
#if defined(__GNUC__) && (defined(SK_ZMM_RUNTIME) || (defined(__AVX512F__) && defined(__AVX512VL__)))
#define SK_ZMM 1
#define SK_UNUSED __attribute__((unused))
#ifdef SK_ZMM_RUNTIME
#define SK_ZMM_TARGET __attribute__((target("arch=x86-64-v4")))
static int sk_zmm_ok;
__attribute__((constructor)) static void sk_zmm_detect(void) {
    __builtin_cpu_init();
    sk_zmm_ok = __builtin_cpu_supports("x86-64-v4") > 0;
}
#define SK_USE_ZMM sk_zmm_ok
#else
#define SK_ZMM_TARGET
#define SK_USE_ZMM 1
#endif

typedef float sk_z16f __attribute__((vector_size(64)));
typedef double sk_z8d __attribute__((vector_size(64)));

#define SK_ZR 8                 /* rows of A per tile */

/* A tile's sums over k, rows x of A against the panels from q (each panel
   pstep apart, its rows prs apart). */
#define SK_ZSTEPS(T, V, R, P, x, q, K)                                           \
    for (k = 0; k < (K); k++) {                                                  \
        V v[P];                                                                  \
        _Pragma("GCC unroll 4")                                                  \
        for (j = 0; j < P; j++) memcpy(&v[j], (q) + j * pstep + prs * k, sizeof(V)); \
        _Pragma("GCC unroll 8")                                                  \
        for (r = 0; r < R; r++) {                                                \
            const T y = x[r][k * aks];                                           \
            _Pragma("GCC unroll 4")                                              \
            for (j = 0; j < P; j++) c[r][j] += y * v[j];                         \
        }                                                                        \
    }

/* R rows a[0..R-1] (then b, K2 > 0) times P panels from q into C (ldc
   apart): the first mr rows and nc columns. */
#define SK_DEFINE_ZTILE(S, T, V, R, P)                                           \
SK_ZMM_TARGET SK_ALWAYS_INLINE void sk_ztile_##S##_##R##_##P(                    \
        const T *const *a, int K1, const T *const *b, int K2, const T *q,        \
        size_t pstep, ptrdiff_t prs, ptrdiff_t aks, T *C, ptrdiff_t ldc,         \
        int accumulate, int mr, int nc) {                                        \
    V c[R][P];                                                                   \
    T out[R][P * SK_NR_##S];                                                     \
    int r, j, k;                                                                 \
    _Pragma("GCC unroll 8")                                                      \
    for (r = 0; r < R; r++)                                                      \
        _Pragma("GCC unroll 4")                                                  \
        for (j = 0; j < P; j++) c[r][j] = (V){0};                                \
    SK_ZSTEPS(T, V, R, P, a, q, K1)                                              \
    if (K2 > 0) SK_ZSTEPS(T, V, R, P, b, q + prs * K1, K2)                       \
    if (mr == R && nc == P * SK_NR_##S) {                                        \
        _Pragma("GCC unroll 8")                                                  \
        for (r = 0; r < R; r++)                                                  \
            _Pragma("GCC unroll 4")                                              \
            for (j = 0; j < P; j++) {                                            \
                T *dst = C + r * ldc + j * SK_NR_##S;                            \
                if (accumulate) {                                                \
                    V y;                                                         \
                    memcpy(&y, dst, sizeof y);                                   \
                    c[r][j] += y;                                                \
                }                                                                \
                memcpy(dst, &c[r][j], sizeof(V));                                \
            }                                                                    \
        return;                                                                  \
    }                                                                            \
    _Pragma("GCC unroll 8")                                                      \
    for (r = 0; r < R; r++)                                                      \
        _Pragma("GCC unroll 4")                                                  \
        for (j = 0; j < P; j++) memcpy(&out[r][j * SK_NR_##S], &c[r][j], sizeof(V)); \
    for (r = 0; r < mr; r++)                                                     \
        SK_PUT(C + r * ldc, out[r], nc);                                         \
}

#define SK_ZTILES(S, T, V)                                                       \
SK_DEFINE_ZTILE(S, T, V, 8, 3) SK_DEFINE_ZTILE(S, T, V, 8, 2)                    \
SK_DEFINE_ZTILE(S, T, V, 8, 1) SK_DEFINE_ZTILE(S, T, V, 4, 3)                    \
SK_DEFINE_ZTILE(S, T, V, 4, 2) SK_DEFINE_ZTILE(S, T, V, 4, 1)                    \
SK_DEFINE_ZTILE(S, T, V, 2, 3) SK_DEFINE_ZTILE(S, T, V, 2, 2)                    \
SK_DEFINE_ZTILE(S, T, V, 2, 1)

/* One tile of h rows by np panels (the arguments as sk_ztile's). */
#define SK_ZTILE_CALL(S, h, np, ...)                                             \
    switch ((h) * 4 + (np)) {                                                    \
    case 35: sk_ztile_##S##_8_3(__VA_ARGS__); break;                             \
    case 34: sk_ztile_##S##_8_2(__VA_ARGS__); break;                             \
    case 33: sk_ztile_##S##_8_1(__VA_ARGS__); break;                             \
    case 19: sk_ztile_##S##_4_3(__VA_ARGS__); break;                             \
    case 18: sk_ztile_##S##_4_2(__VA_ARGS__); break;                             \
    case 17: sk_ztile_##S##_4_1(__VA_ARGS__); break;                             \
    case 11: sk_ztile_##S##_2_3(__VA_ARGS__); break;                             \
    case 10: sk_ztile_##S##_2_2(__VA_ARGS__); break;                             \
    default: sk_ztile_##S##_2_1(__VA_ARGS__); break;                             \
    }

/* sk_gemm_body's product (the same arguments) on the 512-bit tiles: three
   panels at a time, by every row of A, then the narrow last panel. */
#define SK_DEFINE_ZGEMM(S, T, V)                                                 \
SK_ZTILES(S, T, V)                                                               \
SK_ZMM_TARGET static void sk_zgemm_##S(                                          \
        SK_GEMM_PARAMS(T)) {                                                     \
    SK_PANELS(S, T)                                                              \
    const T *a[SK_ZR], *b[SK_ZR];                                                \
    int i0, q0, np, nc, h, mr, r, j;                                             \
    if (K2 <= 0) A2 = A1, lda2 = lda1;  /* never read */                         \
    for (q0 = 0; q0 < panels; q0 += 3) {                                         \
        np = panels - q0 < 3 ? panels - q0 : 3;                                  \
        nc = N - q0 * NR < np * NR ? N - q0 * NR : np * NR;                      \
        for (i0 = 0; i0 < M; i0 += h) {                                          \
            mr = M - i0;                                                         \
            h = mr > 4 ? SK_ZR : mr > 2 ? 4 : 2;                                 \
            mr = mr < h ? mr : h;                                                \
            SK_TILE_ROWS(a, h, A1, lda1, i0, mr)                                 \
            SK_TILE_ROWS(b, h, A2, lda2, i0, mr)                                 \
            SK_ZTILE_CALL(S, h, np, a, K1, b, K2, B + (size_t)q0 * step, step,   \
                          prs, aks, C + i0 * ldc + q0 * NR, ldc, accumulate, mr, \
                          nc)                                                    \
        }                                                                        \
    }                                                                            \
    SK_NARROW_PANEL(S, T)                                                        \
}

SK_DEFINE_ZGEMM(f, float, sk_z16f)
SK_DEFINE_ZGEMM(d, double, sk_z8d)
#define SK_ZGEMM_f sk_zgemm_f
#define SK_ZGEMM_d sk_zgemm_d

#else
#define SK_UNUSED
#define SK_USE_ZMM 0
#define SK_ZGEMM_f sk_gemm_ymm_f  /* never called */
#define SK_ZGEMM_d sk_gemm_ymm_d
#endif

/* The product on the processor's tiles: the 512-bit ones where it runs
   x86-64-v4 code (sk_zgemm), else the SK_CLONES build of sk_gemm_body. */
#define SK_DEFINE_GEMM(S, T)                                                     \
SK_DEFINE_GEMM_BODY(S, T)                                                        \
SK_CLONES SK_UNUSED static void sk_gemm_ymm_##S(                                 \
        SK_GEMM_PARAMS(T)) {                                                     \
    sk_gemm_body_##S(SK_GEMM_ARGS);                                              \
}                                                                                \
                                                                                 \
static inline void sk_gemm_run_##S(                                              \
        SK_GEMM_PARAMS(T)) {                                                     \
    if (SK_USE_ZMM)                                                              \
        SK_ZGEMM_##S(SK_GEMM_ARGS);                                              \
    else                                                                         \
        sk_gemm_ymm_##S(SK_GEMM_ARGS);                                           \
}                                                                                \
                                                                                 \
/* The product on B1 and B2 packed by sk_pack into panels of Kp rows. */         \
static void sk_gemm_packed_##S(                                                  \
        int M, int N, const T *A1, ptrdiff_t lda1, int K1, const T *A2,          \
        ptrdiff_t lda2, int K2, const T *packed, int Kp, T *C, ptrdiff_t ldc,    \
        int accumulate, ptrdiff_t aks) {                                         \
    sk_gemm_run_##S(M, N, A1, lda1, K1, A2, lda2, K2, packed,                    \
                    (size_t)Kp * SK_NR_##S, SK_NR_##S, C, ldc, accumulate, aks); \
}                                                                                \
                                                                                 \
/* C (M x N) = A B (+ C), A as above (K2 = 0), B (K x N, rows ldb apart)         \
   read in place for its whole panels; the columns after them (N mod SK_NR)      \
   are packed into tail (room for K x SK_NR), so nothing past B's own values     \
   is read. */                                                                   \
static void sk_gemm_inplace_##S(                                                 \
        int M, int N, const T *A, ptrdiff_t lda, int K, const T *B,              \
        ptrdiff_t ldb, T *tail, T *C, ptrdiff_t ldc, int accumulate,             \
        ptrdiff_t aks) {                                                         \
    const int NR = SK_NR_##S, whole = N - N % NR;                                \
    if (whole > 0)                                                               \
        sk_gemm_run_##S(M, whole, A, lda, K, A, lda, 0, B, NR, ldb, C, ldc,      \
                        accumulate, aks);                                        \
    if (N > whole) {                                                             \
        sk_pack_##S(B + whole, ldb, 1, K, N - whole, tail, 0, K);                \
        sk_gemm_run_##S(M, N - whole, A, lda, K, A, lda, 0, tail, (size_t)K * NR, \
                        NR, C + whole, ldc, accumulate, aks);                    \
    }                                                                            \
}

SK_DEFINE_GEMM(f, float)
SK_DEFINE_GEMM(d, double)

#endif

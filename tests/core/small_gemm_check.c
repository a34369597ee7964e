/* Checks one build of sknet/_core/_small_gemm.h against a naive product.

   Compiled by test_small_gemm_builds.py with SK_CLONES defined empty and one
   -march, so that the build the loader would not pick on this processor is
   tested too. Every shape of up to 39 rows (every remainder of the 6- and
   12-row tiles), up to 50 columns (every remainder of the panels) and a
   range of depths; C written and added to; the packed kernel on one operand
   (its rows read as rows and as a transpose's columns) and on two ([A1, A2]
   against B's rows stacked), and the in-place kernel. Prints the cases and the values
   off by more than the tolerance, and exits 1 if any is.

   Compiled as the extension is (SK_CLONES left to the header), on a processor
   that runs x86-64-v4 code, it also compares the 512-bit tiles with the
   256-bit ones: every value the same bit for bit ("identical"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "_small_gemm.h"

#ifdef SK_ZMM_RUNTIME
#define SK_BOTH_TILES sk_zmm_ok
#else
#define SK_BOTH_TILES 0
#endif

#define CHECK(S, T, NR, TOL)                                                        \
static long check_##S(long *cases, long *compared) {                                               \
    long bad = 0;                                                                   \
    for (int M = 1; M <= 39; M++)                                                   \
    for (int N = 1; N <= 50; N += N < 20 ? 1 : 7)                                   \
    for (int K = 1; K <= 40; K += K < 8 ? 1 : 11)                                   \
    for (int K2 = 0; K2 <= 5; K2 += 5)                                              \
    for (int acc = 0; acc < 2; acc++)                                               \
    for (int tr = 0; tr < 2 - (K2 > 0); tr++) {  /* two operands: rows only */      \
        int Kt = K + K2;                                                            \
        T *A = malloc(sizeof(T) * M * K), *A2 = malloc(sizeof(T) * M * (K2 + 1));   \
        T *B = malloc(sizeof(T) * Kt * N), *R = malloc(sizeof(T) * M * N);          \
        T *C = malloc(sizeof(T) * M * N), *C2 = malloc(sizeof(T) * M * N);          \
        T *C3 = malloc(sizeof(T) * M * N);                                          \
        T *P = malloc(sizeof(T) * SK_PACKED_SIZE(Kt, N, NR));                       \
        T *tail = malloc(sizeof(T) * K * NR);                                       \
        ptrdiff_t lda = tr ? 1 : K, aks = tr ? M : 1;                               \
        for (int i = 0; i < M * K; i++) A[i] = (T)(rand() % 200 - 100) / 37;        \
        for (int i = 0; i < M * K2; i++) A2[i] = (T)(rand() % 200 - 100) / 29;      \
        for (int i = 0; i < Kt * N; i++) B[i] = (T)(rand() % 200 - 100) / 41;       \
        for (int i = 0; i < M * N; i++) C[i] = C2[i] = C3[i] = (T)(rand() % 100) / 13; \
        for (int i = 0; i < M; i++)                                                 \
            for (int j = 0; j < N; j++) {                                           \
                double s = acc ? C[i * N + j] : 0;                                  \
                for (int k = 0; k < K; k++)                                         \
                    s += (double)A[tr ? k * M + i : i * K + k] * B[k * N + j];      \
                for (int k = 0; k < K2; k++)                                        \
                    s += (double)A2[i * K2 + k] * B[(K + k) * N + j];               \
                R[i * N + j] = (T)s;                                                \
            }                                                                       \
        sk_pack_##S(B, N, 1, Kt, N, P, 0, Kt);                                      \
        sk_gemm_packed_##S(M, N, A, lda, K, A2, K2, K2, P, Kt, C, N, acc, aks);     \
        for (int i = 0; i < M * N; i++)                                             \
            bad += fabs(C[i] - R[i]) > TOL * (1 + fabs(R[i]));                      \
        if (SK_BOTH_TILES) {                                                        \
            sk_gemm_ymm_##S(M, N, A, lda, K, A2, K2, K2, P, (size_t)Kt * NR, NR,    \
                            C3, N, acc, aks);                                       \
            bad += memcmp(C, C3, sizeof(T) * M * N) != 0;                           \
            *compared += 1;                                                         \
        }                                                                           \
        if (K2 == 0) {                                                              \
            sk_gemm_inplace_##S(M, N, A, lda, K, B, N, tail, C2, N, acc, aks);      \
            for (int i = 0; i < M * N; i++)                                         \
                bad += fabs(C2[i] - R[i]) > TOL * (1 + fabs(R[i]));                 \
        }                                                                           \
        *cases += 1;                                                                \
        free(A); free(A2); free(B); free(R); free(C); free(C2); free(C3); free(P); free(tail); \
    }                                                                               \
    return bad;                                                                     \
}

CHECK(d, double, SK_NR_d, 1e-10)
CHECK(f, float, SK_NR_f, 1e-4)

int main(void) {
    long cases = 0, compared = 0, bad = check_d(&cases, &compared) + check_f(&cases, &compared);
    if (compared)
        printf("%ld cases compared between the 512-bit and the 256-bit tiles\n", compared);
    printf("%ld cases, %ld values off\n", cases, bad);
    return bad != 0;
}

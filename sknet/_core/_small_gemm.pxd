"""Declarations of ``_small_gemm.h``'s small products, with wrappers typed by ``floating``."""

from cython cimport floating

cdef extern from "_small_gemm.h" nogil:
    int SK_MR, SK_NR_f, SK_NR_d
    size_t SK_PACKED_SIZE(int K, int N, int NR)
    void sk_pack_f(const float *B, Py_ssize_t rs, Py_ssize_t cs, int K, int N, float *packed,
                   int k0, int Kp)
    void sk_pack_d(const double *B, Py_ssize_t rs, Py_ssize_t cs, int K, int N,
                   double *packed, int k0, int Kp)
    void sk_gemm_packed_f(int M, int N, const float *A1, Py_ssize_t lda1, int K1,
                          const float *A2, Py_ssize_t lda2, int K2, const float *packed,
                          int Kp, float *C, Py_ssize_t ldc, int accumulate, Py_ssize_t aks)
    void sk_gemm_packed_d(int M, int N, const double *A1, Py_ssize_t lda1, int K1,
                          const double *A2, Py_ssize_t lda2, int K2, const double *packed,
                          int Kp, double *C, Py_ssize_t ldc, int accumulate, Py_ssize_t aks)
    void sk_gemm_inplace_f(int M, int N, const float *A, Py_ssize_t lda, int K, const float *B,
                           Py_ssize_t ldb, float *tail, float *C, Py_ssize_t ldc,
                           int accumulate, Py_ssize_t aks)
    void sk_gemm_inplace_d(int M, int N, const double *A, Py_ssize_t lda, int K,
                           const double *B, Py_ssize_t ldb, double *tail, double *C,
                           Py_ssize_t ldc, int accumulate, Py_ssize_t aks)


cdef inline void _pack(const floating *B, Py_ssize_t rs, Py_ssize_t cs, int K, int N,
                       floating *packed, int k0, int Kp) noexcept nogil:
    """Pack ``B`` (``K x N``, ``B[k][j]`` at ``k * rs + j * cs``) into rows ``k0 ..``
    of panels of ``Kp`` rows."""
    if floating is float:
        sk_pack_f(B, rs, cs, K, N, packed, k0, Kp)
    else:
        sk_pack_d(B, rs, cs, K, N, packed, k0, Kp)


cdef inline void _gemm_packed(int n, int N, const floating *a1, int lda1, int K1,
                              const floating *a2, int lda2, int K2, const floating *packed,
                              int Kp, floating *out, int ldo, bint accumulate,
                              int aks=1) noexcept nogil:
    """``out = a1 B1 + a2 B2 (+ out)``, ``B1``, ``B2`` packed by :func:`_pack`
    (``a1``, ``a2``: rows ``lda`` apart, ``aks`` apart along ``k``)."""
    if floating is float:
        sk_gemm_packed_f(n, N, a1, lda1, K1, a2, lda2, K2, packed, Kp, out, ldo, accumulate,
                         aks)
    else:
        sk_gemm_packed_d(n, N, a1, lda1, K1, a2, lda2, K2, packed, Kp, out, ldo, accumulate,
                         aks)


cdef inline void _gemm_inplace(int n, int N, const floating *a, int lda, int K,
                               const floating *B, int ldb, floating *tail, floating *out,
                               int ldo, bint accumulate, int aks=1) noexcept nogil:
    """``out = a B (+ out)``, ``B`` (``K x N``, rows ``ldb`` apart) read in place but
    for its columns past its last whole panel, packed into ``tail`` (room for
    ``K`` rows of a panel)."""
    if floating is float:
        sk_gemm_inplace_f(n, N, a, lda, K, B, ldb, tail, out, ldo, accumulate, aks)
    else:
        sk_gemm_inplace_d(n, N, a, lda, K, B, ldb, tail, out, ldo, accumulate, aks)

"""Vector updates of the training loop, in BLAS where that is safe.

numpy has no fused multiply-add and no rank-one update: ``y += a * x`` takes
two passes and a temporary, and adding a bias to every row is a broadcasting
loop. BLAS ``axpy`` and ``ger`` do each in one pass. The catch: a numpy and a
scipy installed from wheels each bring their own OpenBLAS, and calling
scipy's while numpy's worker threads are active makes the two thread pools
fight over the cores (on 2 cores, steps became 100x slower). So the BLAS
versions are used only where the caller knows BLAS runs one thread
(``fast=True``), which is also where the saved calls matter: small networks,
whose steps are dominated by per-call overhead.

The compiled kernels (:mod:`sknet._core._dense_fast`) reach the same scipy
library through ``scipy.linalg.cython_blas`` and follow the same rule: the
dense step does its matrix products there only with ``fast_blas=True`` and
products small enough for one thread; otherwise numpy does them.
"""

import numpy as np
from scipy.linalg import blas

__all__ = ["axpy_for", "add_rows_for"]

_AXPY = {"f": blas.saxpy, "d": blas.daxpy}
_GER = {"f": blas.sger, "d": blas.dger}


def _numpy_axpy(x, y, a):
    y += a * x
    return y


def _numpy_add_rows(z, b, ones):
    z += b
    return z


def axpy_for(dtype, fast):
    """``axpy(x, y, a)``: ``y += a * x`` in place, for 1-D contiguous arrays."""
    blas_axpy = _AXPY.get(np.dtype(dtype).char) if fast else None
    if blas_axpy is None:
        return _numpy_axpy

    def axpy(x, y, a):
        blas_axpy(x, y, a=a)  # y is updated in place (intent in,out; no copy)
        return y

    return axpy


def add_rows_for(dtype, fast):
    """``add_rows(z, b, ones)``: ``z += b`` for each row of a C-contiguous ``z``.

    ``ones`` holds ``z.shape[0]`` ones (the rank-one update ``z += ones b^T``).
    """
    ger = _GER.get(np.dtype(dtype).char) if fast else None
    if ger is None:
        return _numpy_add_rows

    def add_rows(z, b, ones):
        ger(1.0, b, ones, a=z.T, overwrite_a=1)  # z.T is Fortran-ordered: no copy
        return z

    return add_rows

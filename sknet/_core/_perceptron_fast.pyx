"""The perceptron rule, one epoch of one unit at a time, without the GIL.

A :class:`PerceptronUnit` holds one output unit of the perceptron: its
weights ``w`` (as ``wscale * v``, so that an L2 shrink is one multiplication),
its intercept, the running norms and the L1 bookkeeping, and the order of
the samples. :meth:`PerceptronUnit.epoch` makes one pass over the training
rows (a C-contiguous dense matrix or the arrays of a CSR matrix) in compiled
code, with the GIL released, so that units in several threads train at once.

The pass is scikit-learn's ``_plain_sgd`` with the perceptron loss
(``Hinge(threshold=0)``) and a constant learning rate, step for step and in
the same precision: at every sample

1. the score ``p = w . x + b`` and the margin ``z = t p``; the loss ``-z``
   when ``z <= 0`` enters the epoch's sum, and with a penalty the objective
   also gets ``alpha ((1 - l1_ratio) |w|^2 / 2 + l1_ratio |w|_1)`` computed
   from the running norms;
2. with an L2 or elastic-net penalty, ``w`` shrinks by
   ``max(0, 1 - eta0 alpha (1 - l1_ratio))`` (only ``wscale`` changes; the
   vector is multiplied out when ``wscale`` falls below 1e-9, 1e-6 in
   float32);
3. a mistake (``z <= 0``) of a sample with non-zero weight moves
   ``w += u x`` and ``b += u decay`` with ``u = eta0 t s`` (``s`` the sample
   weight times the class weight, ``decay`` 1, or 0.01 on sparse rows);
4. with an L1 or elastic-net penalty, the cumulative truncated gradient
   (Tsuruoka et al., 2009) moves each feature the row touches toward 0 by
   what it still owes, never across 0.

Shuffling is scikit-learn's: before each epoch a Fisher-Yates shuffle driven
by a 32-bit xorshift generator seeded with the same seed is applied to the
current order. Samples flagged in ``skip`` (held out for validation) are
passed over. A score is summed in double in another order than
scikit-learn's single running sum (by BLAS for long dense rows, in partial
sums otherwise), so a score within rounding of 0 may be decided
differently; the updates are the same numbers.

The numpy reference the tests compare this kernel against is
``tests/core/reference_perceptron.py``.
"""

from cython cimport floating
from libc.math cimport fabs, isfinite, sqrt
from libc.stdint cimport uint32_t
from scipy.linalg.cython_blas cimport ddot, dsdot

import numpy as np

cdef extern from *:
    """
    static int sknet_read_flag(const volatile int *flag) { return *flag; }
    #if defined(__GNUC__) || defined(__clang__)
    #define sknet_prefetch(p) __builtin_prefetch(p)
    #else
    #define sknet_prefetch(p) ((void)0)
    #endif
    """
    int _read_flag "sknet_read_flag"(const int *flag) noexcept nogil
    void _prefetch "sknet_prefetch"(const void *p) noexcept nogil

cdef enum:
    CHECK_STOP_EVERY = 4096  # samples between two looks at the stop flag
    BLAS_DOT_FROM = 32       # dense rows at least this long are scored by BLAS
    # Dense rows are asked for this many bytes of rows ahead of the one scored
    # (at least one row, at most PREFETCH_MAX_ROWS): a short row is scored in a
    # few nanoseconds, far less than a shuffled row's trip from memory.
    PREFETCH_BYTES = 1024
    PREFETCH_MAX_ROWS = 16


cdef struct Params:
    double eta0
    double alpha
    double l1_ratio
    double shrink        # the L2 factor of every sample (1: none)
    double l1_step       # the L1 penalty owed by every sample (0: none)
    double decay         # the intercept's share of a step
    double weight_neg
    double weight_pos
    bint fit_intercept
    bint penalized       # the objective has a penalty term
    bint norms           # the running norms are kept (a penalty, or verbose output)
    bint l2
    bint l1


cdef struct State:
    double intercept
    double wscale
    double sq_norm
    double l1_norm
    double u             # the L1 penalty accumulated so far, per feature


cdef struct Totals:
    double sumloss
    double objective
    Py_ssize_t n_updates
    bint stopped


# --------------------------------------------------------------------------- #
# one row: score, update, L1 truncation                                        #
# --------------------------------------------------------------------------- #
cdef inline double _dot(const floating *x, const int *ind, Py_ssize_t nnz,
                        const floating *w) noexcept nogil:
    """``w . x``, summed in double (long dense rows by BLAS, with its own order)."""
    cdef Py_ssize_t j = 0
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef int n = <int>nnz, one = 1
    if ind != NULL:
        while j + 2 <= nnz:
            s0 += w[ind[j]] * x[j]
            s1 += w[ind[j + 1]] * x[j + 1]
            j += 2
        if j < nnz:
            s0 += w[ind[j]] * x[j]
        return s0 + s1
    if nnz >= BLAS_DOT_FROM:
        if floating is double:
            return ddot(&n, <double *>x, &one, <double *>w, &one)
        else:
            return dsdot(&n, <float *>x, &one, <float *>w, &one)
    while j + 4 <= nnz:
        s0 += w[j] * x[j]
        s1 += w[j + 1] * x[j + 1]
        s2 += w[j + 2] * x[j + 2]
        s3 += w[j + 3] * x[j + 3]
        j += 4
    while j < nnz:
        s0 += w[j] * x[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef inline void _add(const floating *x, const int *ind, Py_ssize_t nnz, floating *w,
                      floating c, State *s, bint norms) noexcept nogil:
    """``w += c x`` (``w = wscale v``); with ``norms``, recount the norms over ``x``'s features."""
    cdef floating wscale = <floating>s.wscale
    cdef double step = <double>(c / wscale)
    cdef double l2 = 0.0, l1 = 0.0
    cdef Py_ssize_t j, idx
    if ind == NULL:
        for j in range(nnz):
            w[j] = <floating>(w[j] + x[j] * step)
        if norms:
            for j in range(nnz):
                l2 += w[j] * w[j]
                l1 += fabs(w[j])
    else:
        for j in range(nnz):
            idx = ind[j]
            w[idx] = <floating>(w[idx] + x[j] * step)
            if norms:
                l2 += w[idx] * w[idx]
                l1 += fabs(w[idx])
    if norms:
        s.sq_norm = <floating>(l2 * <double>(wscale * wscale))
        s.l1_norm = <floating>(l1 * wscale)


cdef inline void _scale(floating *w, Py_ssize_t n_features, floating c,
                        State *s) noexcept nogil:
    """``w *= c``: only the scale and the norms change, until the scale is tiny."""
    cdef floating wscale = <floating>s.wscale * c
    cdef double threshold = 1e-9 if floating is double else 1e-6
    cdef Py_ssize_t j
    s.sq_norm = <floating>s.sq_norm * (c * c)
    s.l1_norm = <floating>(s.l1_norm * fabs(c))
    if wscale < threshold:
        for j in range(n_features):
            w[j] = w[j] * wscale
        wscale = 1.0
    s.wscale = wscale


cdef inline void _truncate(const int *ind, Py_ssize_t nnz, floating *w, floating *q,
                           double u, double wscale) noexcept nogil:
    """Move each touched weight toward 0 by the L1 penalty it owes, never across 0."""
    cdef double z, new
    cdef Py_ssize_t j, idx
    for j in range(nnz):
        idx = ind[j] if ind != NULL else j
        z = w[idx]
        if wscale * z > 0.0:
            new = w[idx] - ((u + q[idx]) / wscale)
            w[idx] = <floating>(new if new > 0.0 else 0.0)
        elif wscale * z < 0.0:
            new = w[idx] + ((u - q[idx]) / wscale)
            w[idx] = <floating>(new if new < 0.0 else 0.0)
        q[idx] = <floating>(q[idx] + wscale * (w[idx] - z))


cdef inline void _sample(const floating *x, const int *ind, Py_ssize_t nnz,
                         Py_ssize_t n_features, double t, floating weight,
                         floating *w, floating *q, const Params *p, State *s,
                         Totals *out) noexcept nogil:
    """Everything one training sample does, in scikit-learn's order."""
    cdef floating wscale = <floating>s.wscale
    cdef double score = <floating>(_dot(x, ind, nnz, w) * wscale) + s.intercept
    cdef double z = score * t
    cdef double update = 0.0
    cdef floating nrm
    if z <= 0.0:
        out.sumloss -= z
        out.objective -= z
    if p.penalized:
        nrm = <floating>sqrt(<floating>s.sq_norm)
        out.objective += p.alpha * ((1.0 - p.l1_ratio) * 0.5 * (<double>nrm * nrm)
                                    + p.l1_ratio * <floating>s.l1_norm)
    if z <= 0.0:
        update = p.eta0 * t
        update *= weight * <floating>(p.weight_pos if t > 0.0 else p.weight_neg)
    if p.l2:
        _scale(w, n_features, <floating>p.shrink, s)
    if update != 0.0:
        _add(x, ind, nnz, w, <floating>update, s, p.norms)
        out.n_updates += 1
        if p.fit_intercept:
            s.intercept += update * p.decay
    if p.l1:
        s.u += p.l1_step
        _truncate(ind, nnz, w, q, s.u, <floating>s.wscale)


cdef inline void _shuffle(int *order, Py_ssize_t n, uint32_t seed) noexcept nogil:
    """scikit-learn's ``SequentialDataset.shuffle(seed)`` of ``order``, in place."""
    cdef uint32_t i, j, r
    cdef int tmp
    if seed == 0:
        seed = 1
    for i in range(<uint32_t>(n - 1) if n > 0 else 0):
        seed ^= <uint32_t>(seed << 13)
        seed ^= <uint32_t>(seed >> 17)
        seed ^= <uint32_t>(seed << 5)
        r = seed & 0x7FFFFFFF  # a draw below 2**31
        j = i + r % <uint32_t>(n - i)
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


def shuffle_order(int[::1] order, seed):
    """Apply scikit-learn's shuffle with ``seed`` to ``order``, in place (one epoch's)."""
    cdef uint32_t s = <uint32_t>(int(seed) & 0xFFFFFFFF)
    if order.shape[0]:
        with nogil:
            _shuffle(&order[0], order.shape[0], s)


# --------------------------------------------------------------------------- #
# one epoch                                                                    #
# --------------------------------------------------------------------------- #
cdef void _epoch(const floating *data, const int *indices, const int *indptr,
                 Py_ssize_t n_samples, Py_ssize_t n_features,
                 const signed char *t, Py_ssize_t t_stride,
                 const floating *sample_weight, const unsigned char *skip,
                 int *order, bint shuffle, uint32_t seed, const int *stop,
                 floating *w, floating *q, const Params *p, State *s,
                 Totals *out) noexcept nogil:
    """One pass over the rows in ``order`` (dense rows when ``indptr`` is NULL)."""
    cdef Py_ssize_t k, i, j, lo, nnz
    cdef Py_ssize_t ahead = _rows_ahead(n_features * sizeof(floating)) if indptr == NULL else 1
    cdef floating weight
    cdef const floating *x
    cdef const int *ind
    if shuffle:
        _shuffle(order, n_samples, seed)
    for k in range(n_samples):
        if stop != NULL and k % CHECK_STOP_EVERY == 0 and _read_flag(stop):
            out.stopped = True
            return
        i = order[k]
        if k + ahead < n_samples:  # a row ahead, and its target, while this one is scored
            j = order[k + ahead]
            if indptr == NULL:
                _prefetch(data + j * n_features)
                _prefetch(data + (j + 1) * n_features - 1)  # a short row's second line
            else:
                _prefetch(data + indptr[j])
                _prefetch(indices + indptr[j])
            _prefetch(t + j * t_stride)
        if skip != NULL and skip[i]:
            continue
        if indptr == NULL:
            x, ind, nnz = data + i * n_features, NULL, n_features
        else:
            lo = indptr[i]
            nnz = indptr[i + 1] - lo
            x, ind = data + lo, indices + lo
        weight = 1.0 if sample_weight == NULL else sample_weight[i]
        _sample(x, ind, nnz, n_features, <double>t[i * t_stride], weight, w, q, p, s,
                out)


cdef inline Py_ssize_t _rows_ahead(Py_ssize_t row_bytes) noexcept nogil:
    """How many dense rows of ``row_bytes`` ahead of the scored one to ask for."""
    cdef Py_ssize_t rows = PREFETCH_BYTES // row_bytes if row_bytes > 0 else 1
    return 1 if rows < 1 else (PREFETCH_MAX_ROWS if rows > PREFETCH_MAX_ROWS else rows)


cdef void _norms(const floating *w, Py_ssize_t n, State *s) noexcept nogil:
    """The running norms of ``w`` (in its precision; an overflow gives inf, silently)."""
    cdef double l2 = 0.0, l1 = 0.0
    cdef Py_ssize_t j
    for j in range(n):
        l2 += w[j] * w[j]
        l1 += fabs(w[j])
    s.sq_norm = <floating>l2
    s.l1_norm = <floating>l1


cdef bint _finite(const floating *w, Py_ssize_t n, double intercept) noexcept nogil:
    cdef Py_ssize_t j
    if not isfinite(intercept):
        return False
    for j in range(n):
        if not isfinite(w[j]):
            return False
    return True


# --------------------------------------------------------------------------- #
# the Python-facing unit                                                       #
# --------------------------------------------------------------------------- #
def _padded(values, dtype):
    """A copy of ``values`` alone on its cache lines (64 bytes free on each side).

    Units trained in parallel threads write their weights at every mistake;
    two small weight vectors sharing a cache line would stall both threads.
    """
    pad = 64 // np.dtype(dtype).itemsize
    buffer = np.zeros(values.shape[0] + 2 * pad, dtype=dtype)
    out = buffer[pad:pad + values.shape[0]]
    out[...] = values
    return out


cdef class PerceptronUnit:
    """One output unit trained by the perceptron rule, epoch by epoch.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or tuple
        C-contiguous float32/float64 rows, or a CSR matrix's
        ``(data, indices, indptr)`` with int32 indices (``data`` float32 or
        float64).
    n_features : int
    t : ndarray of int8 of shape (n_samples,)
        The unit's targets, +1 or -1 (a strided view is fine).
    w0 : ndarray of shape (n_features,)
        The starting weights, in the training dtype (copied).
    b0 : float
        The starting intercept.
    eta0, alpha, l1_ratio : float
        The learning rate and the penalty's strength and mix.
    penalty : {None, "l2", "l1", "elasticnet"}
    fit_intercept : bool
    decay : float
        The intercept's share of a step (0.01 on sparse rows, else 1).
    weight_neg, weight_pos : float
        The class weights of the unit's negative and positive samples.
    sample_weight : ndarray of shape (n_samples,) or None
        In the training dtype.
    shuffle : bool
    seed : int
        The 32-bit shuffle seed.
    skip : ndarray of uint8 of shape (n_samples,) or None
        Non-zero for held-out samples, which are passed over.
    stop : ndarray of int32 of shape (1,) or None
        An epoch stops early (and reports it) once ``stop[0]`` is non-zero.
    """

    cdef Params p
    cdef State s
    cdef State saved
    cdef readonly object w, q
    cdef object _w_saved, _q_saved, _order, _data, _indices, _indptr, _t
    cdef object _sample_weight, _skip, _stop
    cdef readonly Py_ssize_t n_samples, n_features
    cdef bint shuffle, sparse, is64
    cdef uint32_t seed

    def __init__(self, X, Py_ssize_t n_features, t, w0, double b0, *, double eta0,
                 penalty, double alpha, double l1_ratio, bint fit_intercept,
                 double decay, double weight_neg, double weight_pos,
                 sample_weight, bint shuffle, seed, skip=None, stop=None,
                 bint track_norms=False):
        self.sparse = isinstance(X, tuple)
        if self.sparse:
            self._data, self._indices, self._indptr = X
            self.n_samples = self._indptr.shape[0] - 1
        else:
            self._data = X
            self.n_samples = X.shape[0]
        self.n_features = n_features
        dtype = np.dtype(self._data.dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"the rows must be float32 or float64, got {dtype}")
        self.is64 = dtype == np.float64
        self.w = _padded(np.asarray(w0), dtype)
        self._w_saved = np.empty_like(self.w)
        self._t = t
        self._sample_weight = sample_weight
        self._skip = skip
        self._stop = stop
        self._order = np.arange(self.n_samples, dtype=np.intc)
        self.shuffle = shuffle
        self.seed = <uint32_t>(int(seed) & 0xFFFFFFFF)
        if penalty == "l2":
            l1_ratio = 0.0
        elif penalty == "l1":
            l1_ratio = 1.0
        self.p.eta0 = eta0
        self.p.alpha = alpha if penalty is not None else 0.0
        self.p.l1_ratio = l1_ratio
        self.p.penalized = penalty is not None
        self.p.norms = self.p.penalized or track_norms
        self.p.l2 = penalty in ("l2", "elasticnet")
        self.p.l1 = penalty in ("l1", "elasticnet")
        self.p.shrink = max(0.0, 1.0 - (1.0 - l1_ratio) * eta0 * alpha)
        self.p.l1_step = l1_ratio * eta0 * alpha
        self.p.decay = decay
        self.p.fit_intercept = fit_intercept
        self.p.weight_neg = weight_neg
        self.p.weight_pos = weight_pos
        self.q = _padded(np.zeros(n_features), dtype) if self.p.l1 else None
        self._q_saved = np.empty_like(self.w) if self.p.l1 else None
        self.s.intercept = b0
        self.s.wscale = 1.0
        self.s.u = 0.0
        cdef double[::1] w64
        cdef float[::1] w32
        if self.is64:
            w64 = self.w
            _norms(&w64[0], n_features, &self.s)
        else:
            w32 = self.w
            _norms(&w32[0], n_features, &self.s)

    @property
    def intercept(self):
        """The unit's intercept."""
        return self.s.intercept

    @property
    def penalized(self):
        """Whether a penalty moves the weights even without mistakes."""
        return self.p.penalized

    def epoch(self):
        """One pass over the training rows.

        Returns
        -------
        totals : tuple (loss_sum, objective_sum, n_updates) or None
            The summed perceptron loss, the summed objective (loss plus
            penalty) and the number of updates (a mistake whose score
            overflowed makes the sums infinite, as in scikit-learn's loop);
            None when ``stop`` ended the pass part-way (the unit is then
            part-way through an epoch: see :meth:`restore`).
        """
        cdef Totals out
        out.sumloss = 0.0
        out.objective = 0.0
        out.n_updates = 0
        out.stopped = False
        if self.is64:
            self._epoch64(&out)
        else:
            self._epoch32(&out)
        if out.stopped:
            return None
        return out.sumloss, out.objective, out.n_updates

    cdef void _epoch64(self, Totals *out):
        cdef const double[::1] data = self._data.reshape(-1)
        cdef double[::1] w = self.w
        cdef double[::1] q = self.q
        cdef const double[::1] sw = self._sample_weight
        self._run(&data[0] if data.shape[0] else NULL, &w[0],
                  &q[0] if q is not None else NULL,
                  &sw[0] if sw is not None else NULL, out)

    cdef void _epoch32(self, Totals *out):
        cdef const float[::1] data = self._data.reshape(-1)
        cdef float[::1] w = self.w
        cdef float[::1] q = self.q
        cdef const float[::1] sw = self._sample_weight
        self._run(&data[0] if data.shape[0] else NULL, &w[0],
                  &q[0] if q is not None else NULL,
                  &sw[0] if sw is not None else NULL, out)

    cdef void _run(self, const floating *data, floating *w, floating *q,
                   const floating *sw, Totals *out):
        cdef const int[::1] indices = self._indices if self.sparse else None
        cdef const int[::1] indptr = self._indptr if self.sparse else None
        cdef const signed char[:] t = self._t
        cdef const unsigned char[::1] skip = self._skip
        cdef const int[::1] stop = self._stop
        cdef int[::1] order = self._order
        cdef const int *ind_ptr = NULL
        cdef const int *ptr_ptr = NULL
        cdef const unsigned char *skip_ptr = &skip[0] if skip is not None else NULL
        cdef const int *stop_ptr = &stop[0] if stop is not None else NULL
        cdef Py_ssize_t t_stride = t.strides[0]
        if self.sparse:
            ind_ptr = &indices[0] if indices.shape[0] else NULL
            ptr_ptr = &indptr[0]
        cdef Params p = self.p  # copies on this thread's stack: units in other
        cdef State s = self.s   # threads write no cache line this one reads
        with nogil:
            _epoch(data, ind_ptr, ptr_ptr, self.n_samples, self.n_features,
                   &t[0], t_stride, sw, skip_ptr, &order[0], self.shuffle, self.seed,
                   stop_ptr, w, q, &p, &s, out)
        self.s = s

    def finite(self):
        """Whether the weights and the intercept are all finite."""
        cdef double[::1] w64
        cdef float[::1] w32
        cdef bint ok
        if self.is64:
            w64 = self.w
            with nogil:
                ok = _finite(&w64[0], w64.shape[0], self.s.intercept)
        else:
            w32 = self.w
            with nogil:
                ok = _finite(&w32[0], w32.shape[0], self.s.intercept)
        return ok

    @property
    def running_norm(self):
        """The L2 norm scikit-learn's rule keeps as it goes (with a penalty or ``track_norms``).

        As scikit-learn's, a step on a row recomputes it over the row's
        features only and a shrink scales it, but the L1 truncation does not
        move it: on sparse rows, or with an L1 term, it drifts from the
        weights' own norm. Verbose fits print it, as scikit-learn's do.
        """
        return sqrt(self.s.sq_norm)

    def weights(self):
        """The unit's weights ``wscale * v`` (a new array) and intercept."""
        return self.w * self.w.dtype.type(self.s.wscale), self.s.intercept

    def finish(self):
        """Multiply the scale into the weights (in place); returns ``(w, intercept)``."""
        if self.s.wscale != 1.0:
            self.w *= self.w.dtype.type(self.s.wscale)
            self.s.wscale = 1.0
        return self.w, self.s.intercept

    def snapshot(self):
        """Remember the unit's state (weights, intercept, norms, L1 bookkeeping)."""
        np.copyto(self._w_saved, self.w)
        if self.q is not None:
            np.copyto(self._q_saved, self.q)
        self.saved = self.s

    def restore(self):
        """Go back to the state of the last :meth:`snapshot`."""
        np.copyto(self.w, self._w_saved)
        if self.q is not None:
            np.copyto(self.q, self._q_saved)
        self.s = self.saved

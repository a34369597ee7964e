"""The perceptron rule on a one-layer network: threshold units, one sample at a time.

Each output unit of a :class:`~sknet._core.network.Network` with one dense
layer is a perceptron. For a sample ``x`` with target ``t`` in {-1, +1} (the
unit's one-vs-rest target) the unit's score is ``z = w . x + b``; the sample
is a *mistake* when its margin ``t z <= 0``, and a mistake moves the unit by

    w <- w + eta * t * a * x,        b <- b + eta * t * a * decay,

where ``a`` is the sample's weight (sample weight times class weight) and
``decay`` is 1 for dense input and 0.01 for sparse input. This is the
subgradient step of the perceptron criterion ``max(0, -t z)`` (registered
here as the ``"perceptron"`` loss), and scikit-learn's
``Perceptron``/``SGDClassifier(loss="perceptron")`` rule, including its
penalties: with an L2 term every sample first shrinks ``w`` by
``1 - eta * alpha * (1 - l1_ratio)``, and with an L1 term every sample then
applies the cumulative truncated-gradient penalty to the features it touches
(Tsuruoka et al., 2009).

The lecture writes the rule as ``w <- w + eta (y - y_hat) x`` with 0/1 targets
and the threshold output ``y_hat = step(z)``; it is the same update, except
for a score of exactly 0, which the margin rule counts as a mistake for
either target (so training from zero weights moves at the first sample).

Speed without changing the result
---------------------------------
The rule is sequential, but between two mistakes nothing changes. So the
loops below score a *window* of upcoming samples against the current weights
at once, jump to the first mistake, apply its update and go on right after
it; the window's length follows the recent distance between mistakes. Dense
rows are gathered a chunk at a time into a contiguous buffer (views of ``X``
in the natural order) and scored by one matrix-vector product; sparse rows
are gathered a chunk at a time with their targets folded in and the
intercept as one more entry, and scored by one segment sum. With an L2
penalty the weights are ``scale * v`` (as in scikit-learn) and the known
per-sample shrink factors are folded into the window's scores. The updates
are the same numbers, applied in the same order, as in a plain per-sample
loop, so the weights agree with it (only the scores are summed in another
order, which can flip a decision only on a score within rounding of 0). An
L1 or elastic-net penalty moves every weight at every sample; on dense rows
those moves have a closed form between two mistakes, so windows work there
too (the weights then agree to rounding, not to the bit); on sparse rows
each sample moves only its own features, and the rule runs sample by sample,
much more slowly.

Memory: beyond ``X`` a unit holds per sample a one-byte target and two
4-byte indices (the shuffle and the epoch's order, which is updated in
place), a gather buffer of ``_CHUNK_BYTES`` (dense rows) or of about
``_SPARSE_CHUNK_ENTRIES`` entries (sparse rows), and a few weight-sized
vectors. Without sample weights and with equal class weights the per-sample
steps are one number.

Stopping follows scikit-learn's loop: the training objective is the summed
perceptron loss plus the penalty evaluated with scikit-learn's running norms
(on sparse rows these count only the features of the last update, and so do
these), or the unit's accuracy on held-out samples. Shuffling reproduces
scikit-learn's: a seeded Fisher-Yates shuffle driven by a 32-bit xorshift
generator, applied again to the previous epoch's order at every epoch.
"""

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp

from .activations import ACTIVATIONS, register_activation
from .losses import LOSSES, Loss
from .stopping import StoppingRule

__all__ = [
    "PerceptronConfig",
    "UnitResult",
    "fit_perceptron",
    "needs_canonical_rows",
    "perceptron_scores",
    "shuffle_permutation",
]

SPARSE_INTERCEPT_DECAY = 0.01  # scikit-learn's intercept step for sparse input
_RESCALE_BELOW = 1e-9  # fold the L2 scale into the weights below this value
_CHUNK_BYTES = 192 * 2 ** 10  # dense rows gathered at a time (a chunk of 16 to 1024 rows)
_SPARSE_CHUNK_ENTRIES = 2 ** 12  # sparse entries gathered at a time (16 to 1024 rows)


# --------------------------------------------------------------------------- #
# the threshold unit and the perceptron criterion, in the core registries       #
# --------------------------------------------------------------------------- #
def _step(z):
    """Threshold output: 1 where ``z > 0``, else 0 (in place)."""
    return np.greater(z, 0, out=z)


def _straight_through(a, grad):
    """The perceptron passes the error through the threshold unchanged."""
    return grad


def _perceptron_value(Y, P, sample_weight):
    """Mean (sample-weighted) perceptron criterion ``sum_k max(0, -t z)``."""
    per_sample = np.maximum(-(2 * Y - 1) * P, 0).sum(axis=1)
    if sample_weight is None:
        return float(per_sample.mean())
    return float(np.dot(per_sample, sample_weight) / np.sum(sample_weight))


def _perceptron_gradient(Y, P):
    """Subgradient ``-t`` where the margin ``t z <= 0``, else 0."""
    T = 2 * Y - 1
    return np.where(T * P <= 0, -T, 0).astype(P.dtype, copy=False)


if "step" not in ACTIVATIONS:
    register_activation("step", _step, _straight_through)
if "perceptron" not in LOSSES:
    # Defined on the unit's score (an identity output): 0/1 targets, t = 2y - 1.
    LOSSES["perceptron"] = Loss("perceptron", _perceptron_value,
                                _perceptron_gradient, None)


# --------------------------------------------------------------------------- #
# configuration and results                                                    #
# --------------------------------------------------------------------------- #
@dataclass
class PerceptronConfig:
    """The knobs of the perceptron loop (scikit-learn's names and meanings).

    ``tol=None`` disables the tolerance rule; ``stop_on_no_mistakes`` ends a
    unit's training after an epoch without an update when no penalty is set
    (its weights cannot change any more). ``max_iter=1`` with
    ``early_stopping=False`` is one pass, as ``partial_fit``.
    """

    eta0: float = 1.0
    penalty: Optional[str] = None
    alpha: float = 0.0001
    l1_ratio: float = 0.15
    fit_intercept: bool = True
    max_iter: int = 1000
    tol: Optional[float] = 1e-3
    n_iter_no_change: int = 5
    shuffle: bool = True
    early_stopping: bool = False
    stop_on_no_mistakes: bool = True
    verbose: int = 0


@dataclass
class UnitResult:
    """How one unit's training ended.

    ``status`` is one of "max_iter", "tol" (training objective plateau),
    "validation" (validation score plateau), "no_mistakes" (an epoch without
    an update) or "interrupted" (Ctrl-C: the unit keeps its weights of the
    last completed epoch).
    """

    n_iter: int
    status: str
    n_updates: int


# --------------------------------------------------------------------------- #
# scikit-learn's shuffle                                                        #
# --------------------------------------------------------------------------- #
def shuffle_permutation(n, seed):
    """The order scikit-learn's ``SequentialDataset.shuffle(seed)`` gives ``arange(n)``.

    A Fisher-Yates shuffle whose draws are ``state % 2**31`` of a 32-bit
    xorshift generator seeded with ``seed``. Applying the same shuffle to an
    order ``o`` gives ``o[shuffle_permutation(n, seed)]``.

    Parameters
    ----------
    n : int
    seed : int
        A 32-bit unsigned seed (0 is replaced by 1, as scikit-learn does).

    Returns
    -------
    perm : ndarray of shape (n,), dtype int32 (int64 beyond its range)
    """
    mask = 0xFFFFFFFF
    state = int(seed) & mask or 1
    # swapped through a memoryview (a list would hold int objects): 4 bytes a number
    perm = np.arange(n, dtype=np.int32 if n <= np.iinfo(np.int32).max else np.int64)
    ind = memoryview(perm)
    for i in range(n - 1):
        state ^= (state << 13) & mask
        state ^= state >> 17
        state ^= (state << 5) & mask
        j = i + (state & 0x7FFFFFFF) % (n - i)
        ind[i], ind[j] = ind[j], ind[i]
    return perm


# --------------------------------------------------------------------------- #
# one unit's data and weights                                                  #
# --------------------------------------------------------------------------- #
@dataclass
class _UnitData:
    """A unit's view of the training set: targets and per-sample step sizes."""

    X: object  # ndarray or CSR matrix
    t: np.ndarray  # +1 / -1, int8
    a: np.ndarray  # eta * class_weight * sample_weight (>= 0), float64 (maybe a broadcast)
    decay: float  # intercept step factor


# numpy 1.25 made ufunc.at fast: then np.add.at beats ``v[cols] += x`` (one
# pass instead of a gather and a scatter); the columns of a row are distinct,
# so both give the same numbers.
_FAST_UFUNC_AT = np.lib.NumpyVersion(np.__version__) >= "1.25.0"


def _scatter_add(v, cols, x):
    """``v[cols] += x``, each entry added (``cols`` must be distinct before numpy 1.25)."""
    if _FAST_UFUNC_AT:
        np.add.at(v, cols, x)
    else:
        v[cols] += x


def needs_canonical_rows(penalty):
    """Whether the rule for ``penalty`` needs CSR rows without repeated columns.

    Without a penalty the sparse rule sums a row's stored entries and adds
    each of them to the weights one by one (as scikit-learn's loop does), so
    repeated or unsorted columns need no canonical copy, given a fast
    ``np.add.at``.
    """
    return penalty is not None or not _FAST_UFUNC_AT


def _chunks(order, n_rows, size):
    """The epoch's samples ``size`` at a time, as ``(idx, m)`` pairs.

    ``idx`` is a slice of the natural order (``order`` None) or a piece of
    ``order``; ``m`` is its number of samples.
    """
    n = n_rows if order is None else order.size
    for start in range(0, n, size):
        stop = min(start + size, n)
        yield (slice(start, stop) if order is None else order[start:stop]), stop - start


def _dense_rows(X, idx, buf):
    """Rows ``idx`` of a dense ``X``: a view for a slice, else gathered into ``buf``.

    ``mode="clip"`` skips the bounds check, which would gather through a
    temporary (the indices are valid).
    """
    if isinstance(idx, slice):
        return X[idx]
    return np.take(X, idx, axis=0, out=buf[:idx.size], mode="clip")


def _take_steps(a, idx, m):
    """``a[idx]`` (``m`` samples); a view when the steps are one broadcast number."""
    return a[:m] if a.strides == (0,) else a[idx]


def _growth(c, length):
    """``c**k`` and sums of ``c**(2j)`` for ``k, j < length``, for the L2 shrink."""
    if c == 1.0:
        return None, None
    powers = c ** np.arange(length + 1, dtype=np.float64)
    sq_sums = np.concatenate([[0.0], np.cumsum(powers[:-1] ** 2)])
    return powers, sq_sums


class _Rule:
    """State shared by the loops: ``w = scale * v``, the intercept and norms.

    ``sq_norm`` and ``l1_norm`` follow scikit-learn's bookkeeping exactly
    (scaled with ``w``, recomputed over the touched features after an
    update) because they enter the stopping objective.
    """

    def __init__(self, data, w0, b0, cfg):
        self.data = data
        self.v = np.array(w0, order="C")
        self.scale = 1.0
        self.b = float(b0)
        self.fit_intercept = bool(cfg.fit_intercept)
        l1_ratio = {"l2": 0.0, "l1": 1.0}.get(cfg.penalty, cfg.l1_ratio)
        self.alpha = cfg.alpha if cfg.penalty is not None else 0.0
        self.l1_ratio = l1_ratio
        shrink = cfg.penalty in ("l2", "elasticnet")
        self.c = max(0.0, 1.0 - (1.0 - l1_ratio) * cfg.eta0 * cfg.alpha) if shrink else 1.0
        self.l1_step = l1_ratio * cfg.eta0 * cfg.alpha if cfg.penalty in ("l1", "elasticnet") \
            else 0.0
        self.sq_norm = float(np.dot(self.v, self.v))
        self.l1_norm = float(np.abs(self.v).sum())
        self._saved = None  # snapshot buffer

    def weights(self):
        """The unit's current weights (maybe a view of its state) and intercept."""
        return (self.v if self.scale == 1.0 else self.v * self.scale), self.b

    def snapshot(self):
        """The state, to go back to (the weights in a buffer reused by every call)."""
        if self._saved is None or self._saved.shape != self.v.shape:
            self._saved = np.empty_like(self.v)
        np.copyto(self._saved, self.v)
        return self._saved, self.scale, self.b, self.sq_norm, self.l1_norm

    def restore(self, snap):
        v, self.scale, self.b, self.sq_norm, self.l1_norm = snap
        self.v[...] = v

    def finite(self):
        return bool(np.isfinite(self.b) and np.isfinite(self.scale)
                    and np.all(np.isfinite(self.v)))

    def _fold_scale(self):
        if self.scale < _RESCALE_BELOW:
            self.v *= self.scale
            self.scale = 1.0

    def _scan(self, m, totals):
        """Jump from mistake to mistake through ``m`` prepared samples.

        ``_window_margins(p, q)`` gives the margins of samples ``p..q-1``
        under the current weights and ``_update(j)`` applies sample ``j``'s
        step. The window length follows the recent distance between mistakes.
        """
        p, since, gap, window = 0, 0, self.gap, self.window
        margins, shrink, a = self._window_margins, self.powers is not None, self._a
        while p < m:
            q = min(p + window, m)
            s = margins(p, q)
            bad = np.less_equal(s, 0, out=self._bad[:q - p])
            k = int(bad.argmax())
            if not bad[k]:
                if shrink:
                    totals[1] += self._shrink(q - p)
                since += q - p
                p, window = q, min(2 * window, self.chunk)
                continue
            totals[0] -= float(s[k])
            if shrink:
                totals[1] += self._shrink(k + 1)
            j = p + k
            if a[j] != 0:
                self._update(j)
                totals[2] += 1
            gap = 0.5 * gap + 0.5 * (since + k + 1)
            p, since = j + 1, 0
            window = min(max(8, int(self.reach * gap)), self.chunk)
        self.gap, self.window = gap, window

    def _shrink(self, k):
        """Apply ``k`` per-sample L2 shrinks; returns their objective term."""
        if self.powers is None or k == 0:
            return 0.0
        term = 0.5 * self.alpha * self.sq_norm * self.sq_sums[k]
        self.scale *= self.powers[k]
        self.sq_norm *= self.powers[k] ** 2
        self._fold_scale()
        return term


# --------------------------------------------------------------------------- #
# dense input: windows of samples scored at once                               #
# --------------------------------------------------------------------------- #

    def _finish_margins(self, s, p, q):
        """Turn raw window scores ``x . v`` into margins ``y (w . x + b)``."""
        if self.powers is not None:
            s *= self.powers[:q - p] * self.scale
        elif self.scale != 1.0:
            s *= self.scale
        if self.b != 0.0:
            s += self.b
        s *= self._t[p:q]
        return s


class _DenseRule(_Rule):
    """The rule on dense rows (no penalty or L2).

    With shuffling, rows are gathered a chunk at a time into a contiguous
    buffer; in the natural order the windows are views of ``X`` itself.
    """

    reach = 2.0  # window length, in recent distances between mistakes

    def __init__(self, data, w0, b0, cfg, chunk):
        super().__init__(data, w0, b0, cfg)
        n_features = data.X.shape[1]
        self.chunk, self.gap, self.window = chunk, 16.0, 32
        self._bad = np.empty(chunk, dtype=bool)
        self.buf = np.empty((chunk, n_features), dtype=self.v.dtype)
        self.scores = np.empty(chunk, dtype=self.v.dtype)
        self.step_buf = np.empty(n_features + 1, dtype=self.v.dtype)
        self.powers, self.sq_sums = _growth(self.c, chunk)

    def epoch(self, order):
        """One pass over ``X[order]`` (``X`` itself when ``order`` is None).

        Returns the loss sum, the penalty sum and the number of updates.
        """
        d = self.data
        totals = [0.0, 0.0, 0]
        for idx, m in _chunks(order, d.X.shape[0], self.chunk):
            self._rows = _dense_rows(d.X, idx, self.buf)
            self._t, self._a = d.t[idx], _take_steps(d.a, idx, m)
            self._scan(m, totals)
        return totals[0], totals[1], totals[2]

    def _window_margins(self, p, q):
        s = np.dot(self._rows[p:q], self.v, out=self.scores[:q - p])
        return self._finish_margins(s, p, q)

    def _update(self, j):
        """``w += u x`` and ``b += u``, as a per-sample loop does them."""
        x, u = self._rows[j], float(self._a[j]) * float(self._t[j])
        if u == 1.0 and self.scale == 1.0:
            self.v += x
        else:
            self.v += np.multiply(x, u / self.scale, out=self.step_buf[:x.size])
        if self.fit_intercept:
            self.b += u * self.data.decay
        if self.powers is not None:
            self.sq_norm = float(np.dot(self.v, self.v)) * self.scale * self.scale


# --------------------------------------------------------------------------- #
# sparse input: the same windows on CSR rows                                   #
# --------------------------------------------------------------------------- #
class _SparseRule(_Rule):
    """The rule on CSR rows (no penalty or L2), a gathered chunk at a time."""

    reach = 2.0

    def __init__(self, data, w0, b0, cfg, chunk):
        super().__init__(data, w0, b0, cfg)
        self.chunk, self.gap, self.window = chunk, 16.0, 32
        self._bad = np.empty(chunk, dtype=bool)
        self.powers, self.sq_sums = _growth(self.c, chunk)

    def epoch(self, order):
        """One pass over ``X[order]``; returns (loss sum, penalty sum, updates)."""
        d = self.data
        totals = [0.0, 0.0, 0]
        for idx, m in _chunks(order, d.X.shape[0], self.chunk):
            self._rows = rows = d.X[idx]
            self._row_of = np.repeat(np.arange(m), np.diff(rows.indptr))
            self._t, self._a = d.t[idx], _take_steps(d.a, idx, m)
            self._scan(m, totals)
        return totals[0], totals[1], totals[2]

    def _window_margins(self, p, q):
        rows = self._rows
        lo, hi = rows.indptr[p], rows.indptr[q]
        if hi == lo:  # empty rows (numpy's bincount then gives integers)
            s = np.zeros(q - p)
        else:
            products = rows.data[lo:hi] * self.v[rows.indices[lo:hi]]
            s = np.bincount(self._row_of[lo:hi], weights=products, minlength=q)[p:]
        return self._finish_margins(s, p, q)

    def _update(self, j):
        rows = self._rows
        sl = slice(rows.indptr[j], rows.indptr[j + 1])
        cols, u = rows.indices[sl], float(self._a[j]) * float(self._t[j])
        touched = self.v[cols] + rows.data[sl] * (u / self.scale)
        self.v[cols] = touched
        if self.fit_intercept:
            self.b += u * self.data.decay
        if self.powers is not None:
            # as scikit-learn: the running norm counts the touched features only
            self.sq_norm = float(np.dot(touched, touched)) * self.scale * self.scale


class _FoldedSparseRule(_SparseRule):
    """The sparse rule without a penalty, in fewer steps.

    A chunk's rows are gathered as ``t * x`` followed by one extra entry
    ``t`` for the intercept, and the weights are stored as ``[w, b]``: a
    window's margins are then one gather-multiply and one segment sum, summed
    in the row's own order (every row has at least one entry, so no segment
    is empty). The entries are multiplied by ``t = +1 or -1`` only, so the
    updates are the same numbers as in the per-sample loop. Only one chunk is
    held in this form at a time.
    """

    def __init__(self, data, w0, b0, cfg, chunk):
        super().__init__(data, w0, b0, cfg, chunk)
        self.v = np.append(self.v, self.v.dtype.type(self.b))

    def weights(self):
        return self.v[:-1], float(self.v[-1])

    def restore(self, snap):
        super().restore(snap)
        self.b = float(self.v[-1])

    def epoch(self, order):
        """One pass over ``X[order]``; returns (loss sum, penalty sum, updates)."""
        d = self.data
        totals = [0.0, 0.0, 0]
        for idx, m in _chunks(order, d.X.shape[0], self.chunk):
            self._t, self._a = d.t[idx], _take_steps(d.a, idx, m)
            self._fold(idx)
            self._scan(m, totals)
        self._indices = self._values = None  # one chunk's copy at a time
        self.b = float(self.v[-1])
        return totals[0], totals[1], totals[2]

    def _fold(self, idx):
        """Rows ``idx`` of ``X`` (a slice or indices) as ``[t x, t]``, one after another."""
        X = self.data.X
        self._indices = self._values = None  # one chunk's copy at a time
        if isinstance(idx, slice):
            starts, ends = X.indptr[idx.start:idx.stop], X.indptr[idx.start + 1:idx.stop + 1]
        else:
            starts, ends = X.indptr[idx], X.indptr[idx + 1]
        sizes = ends - starts + 1  # the row's entries and its intercept entry
        m = sizes.size
        self._indptr = indptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        # where each entry comes from in X: steps of 1 within a row (its
        # intercept entry points one past the row, then is overwritten), a jump
        # to the next row's start between rows
        src = np.ones(indptr[-1], dtype=np.intp)
        if m:
            src[0] = starts[0]
            src[indptr[1:-1]] = starts[1:] - ends[:-1]
            np.cumsum(src, out=src)
            np.minimum(src, max(X.nnz - 1, 0), out=src)
        last = indptr[1:] - 1
        values = X.data[src] if X.nnz else np.empty(src.size, dtype=self.v.dtype)
        values[last] = 1
        values *= np.repeat(self._t, sizes)
        indices = X.indices[src] if X.nnz else np.empty(src.size, dtype=X.indices.dtype)
        indices[last] = X.shape[1]
        self._indices, self._values = indices, values
        self._ptr = indptr.tolist()

    def _window_margins(self, p, q):
        lo, hi = self._ptr[p], self._ptr[q]
        products = self.v.take(self._indices[lo:hi])  # (take: faster than [])
        products *= self._values[lo:hi]
        return np.add.reduceat(products, self._indptr[p:q] - lo)

    def _update(self, j):
        """``[w, b] += a t [x, decay]``: the per-sample loop's numbers."""
        lo, hi = self._ptr[j], self._ptr[j + 1] - 1
        a = float(self._a[j])
        step = self._values[lo:hi] if a == 1.0 else self._values[lo:hi] * a
        _scatter_add(self.v, self._indices[lo:hi], step)
        if self.fit_intercept:
            self.v[-1] += a * float(self._t[j]) * self.data.decay


# --------------------------------------------------------------------------- #
# L1 / elastic net: sample by sample                                           #
# --------------------------------------------------------------------------- #
def _each_index(order, n, block=4096):
    """The integers of ``order`` (``range(n)`` when None), a block at a time."""
    if order is None:
        yield from range(n)
        return
    for start in range(0, order.size, block):
        yield from order[start:start + block].tolist()


class _SampleRule(_Rule):
    """The rule one sample at a time, with the truncated-gradient L1 penalty."""

    def __init__(self, data, w0, b0, cfg):
        super().__init__(data, w0, b0, cfg)
        self.applied = np.zeros_like(self.v)  # L1 penalty applied so far, per feature
        self.u_total = 0.0  # L1 penalty accumulated so far, per feature

    def snapshot(self):
        return super().snapshot(), self.applied.copy(), self.u_total

    def restore(self, snap):
        base, applied, self.u_total = snap
        super().restore(base)
        self.applied[...] = applied

    def _row(self, i):
        X = self.data.X
        if sp.issparse(X):
            sl = slice(X.indptr[i], X.indptr[i + 1])
            return X.indices[sl], X.data[sl]
        return slice(None), X[i]

    def epoch(self, order):
        """One pass over ``X[order]``; returns (loss sum, penalty sum, updates)."""
        t, a = self.data.t, self.data.a
        totals = [0.0, 0.0, 0]
        for i in _each_index(order, self.data.X.shape[0]):
            cols, x = self._row(i)
            z = float(t[i]) * (self.scale * float(np.dot(x, self.v[cols])) + self.b)
            self._step(cols, x, z, float(a[i]), float(t[i]), totals)
        return totals[0], totals[1], totals[2]

    def _step(self, cols, x, z, a, t, totals):
        """Everything a sample with margin ``z`` does after being scored."""
        totals[1] += self.alpha * ((1 - self.l1_ratio) * 0.5 * self.sq_norm
                                   + self.l1_ratio * self.l1_norm)
        if z <= 0:
            totals[0] -= z
        if self.c != 1.0:
            self.scale *= self.c
            self.sq_norm *= self.c * self.c
            self.l1_norm *= self.c
            self._fold_scale()
        if z <= 0 and a != 0:
            self._add(cols, x, a * t)
            totals[2] += 1
        self.u_total += self.l1_step
        self._truncate(cols)

    def _add(self, cols, x, u):
        touched = self.v[cols] + x * (u / self.scale)
        self.v[cols] = touched
        self.sq_norm = float(np.dot(touched, touched)) * self.scale * self.scale
        self.l1_norm = float(np.abs(touched).sum()) * self.scale
        if self.fit_intercept:
            self.b += u * self.data.decay

    def _truncate(self, cols):
        """Clip each touched weight toward 0 by the penalty it still owes."""
        z = np.array(self.v[cols])
        applied = self.applied[cols]
        s = self.scale
        new = np.where(z > 0, np.maximum(0, z - (self.u_total + applied) / s),
                       np.where(z < 0, np.minimum(0, z + (self.u_total - applied) / s), z))
        self.v[cols] = new
        self.applied[cols] = applied + s * (new - z)


class _DenseL1Rule(_SampleRule):
    """Dense rows with an L1 or elastic-net penalty, a window at a time.

    Every sample shrinks every weight (by ``c``) and then moves it toward 0
    by what it owes of the cumulative penalty, stopping at 0. Between two
    mistakes that has a closed form: after ``i`` samples a weight of
    magnitude ``m`` that owes ``o`` has magnitude

        max(0, c**i m - c**(i-1) o - delta (1 + c + ... + c**(i-1)))

    (``delta`` is the penalty per sample), so a window's weights, and its
    scores, come at once; the mistake itself is then one explicit step. The
    closed form rounds differently from the sequence of steps, so weights
    agree with a per-sample loop to rounding, not to the bit.
    """

    def __init__(self, data, w0, b0, cfg, chunk):
        super().__init__(data, w0, b0, cfg)
        self.chunk, self.gap, self.window = chunk, 16.0, 32
        self.buf = np.empty((chunk, data.X.shape[1]), dtype=self.v.dtype)
        self.powers = self.c ** np.arange(chunk + 2, dtype=np.float64)
        self.geometric = np.concatenate([[0.0], np.cumsum(self.powers)])

    def epoch(self, order):
        """One pass over ``X[order]``; returns (loss sum, penalty sum, updates)."""
        d = self.data
        totals = [0.0, 0.0, 0]
        for idx, m in _chunks(order, d.X.shape[0], self.chunk):
            self._scan_l1(_dense_rows(d.X, idx, self.buf), d.t[idx],
                          _take_steps(d.a, idx, m), totals)
        return totals[0], totals[1], totals[2]

    def _scan_l1(self, rows, t, a, totals):
        """Windows of closed-form steps, one explicit step at each mistake."""
        m, p, gap, window = rows.shape[0], 0, self.gap, self.window
        while p < m:
            q = min(p + window, m)
            path = self._path(q - p)
            s = np.einsum("ij,ij->i", path[:q - p], rows[p:q])
            s += self.b
            s *= t[p:q]
            bad = s <= 0
            k = int(bad.argmax())
            if not bad[k]:
                self._advance(path, q - p, totals)
                p, window = q, min(2 * window, self.chunk)
                continue
            self._advance(path, k, totals)
            j = p + k
            self._step(slice(None), rows[j], float(s[k]), float(a[j]), float(t[j]), totals)
            gap = 0.5 * gap + 0.5 * (k + 1)
            p, window = j + 1, min(max(8, int(2 * gap)), self.chunk)
        self.gap, self.window = gap, window

    def _path(self, r):
        """The signed weights before each of the next ``r + 1`` samples."""
        w = self.v * self.scale
        sign = np.sign(w)
        owed = self.u_total + sign * self.applied
        path = np.multiply.outer(self.powers[:r + 1], np.abs(w))
        path[1:] -= np.multiply.outer(self.powers[:r], owed)
        path[1:] -= (self.l1_step * self.geometric[1:r + 1])[:, None]
        np.maximum(path, 0, out=path)
        path *= sign
        return path

    def _advance(self, path, k, totals):
        """Move the state ``k`` mistake-free samples on along ``path``."""
        if k == 0:
            return
        c, powers = self.c, self.powers
        totals[1] += self.alpha * (
            (1 - self.l1_ratio) * 0.5 * self.sq_norm * float(np.sum(powers[:k] ** 2))
            + self.l1_ratio * self.l1_norm * float(np.sum(powers[:k])))
        if c == 1.0:
            self.applied += path[k] - path[0]
        else:
            self.applied += path[1:k + 1].sum(axis=0) - c * path[:k].sum(axis=0)
        self.v[...] = path[k]
        self.scale = 1.0
        self.sq_norm *= powers[k] ** 2
        self.l1_norm *= powers[k]
        self.u_total += k * self.l1_step


# --------------------------------------------------------------------------- #
# epochs and stopping                                                          #
# --------------------------------------------------------------------------- #
def _validation_score(validation, w, b):
    """Accuracy of the unit's threshold output on the held-out samples."""
    X_val, t_val, sw_val = validation
    s = np.asarray(X_val @ w).ravel() + b
    return float(np.average((s > 0) == (t_val > 0), weights=sw_val))


def _report(cfg, rule, epoch, n_seen, loss, n_train, started):
    if not cfg.verbose:
        return
    w, b = rule.weights()
    print("-- Epoch %d" % epoch)
    print("Norm: %.2f, NNZs: %d, Bias: %.6f, T: %d, Avg. loss: %f"
          % (np.linalg.norm(w), np.count_nonzero(w), b, n_seen, loss / max(n_train, 1)))
    print("Total training time: %.2f seconds." % (time.perf_counter() - started))


def _epoch_order(order, perm, train_mask):
    """The samples of an epoch in order; None for all of them in their own order."""
    if train_mask is not None:
        return order[train_mask[order]]
    return order if perm is not None else None


def _run_epoch(rule, order, epoch):
    """One epoch, applied whole: None when interrupted (the weights roll back)."""
    snap = None
    try:
        snap = rule.snapshot()
        # overflow is an error of the fit, reported as scikit-learn reports it
        with np.errstate(over="raise", invalid="raise"):
            loss, penalty, updates = rule.epoch(order)
    except KeyboardInterrupt:
        if snap is not None:
            rule.restore(snap)
        return None
    except FloatingPointError:
        loss = np.nan
    if not (np.isfinite(loss) and rule.finite()):
        raise ValueError(
            "Floating-point under-/overflow occurred at epoch #%d. Scaling "
            "input data with StandardScaler or MinMaxScaler might help." % epoch)
    return loss, penalty, updates


def _shuffle_again(order, perm, block=2048):
    """``order[:] = order[perm]``, in place.

    The orders are powers of one permutation, ``perm`` applied ``e`` times,
    and powers commute: ``order[perm]`` equals ``perm[order]``, whose
    entries each depend on one entry of ``order`` only. So it runs a block at
    a time in place, and numpy's intp copy of an int32 index stays a block.
    """
    for start in range(0, order.size, block):
        part = order[start:start + block]
        part[...] = np.take(perm, part, mode="clip")


def _train_unit(rule, n_samples, perm, train_mask, validation, cfg):
    """Epochs of one unit until a stopping rule fires; returns a UnitResult.

    scikit-learn stops once ``n_iter_no_change`` epochs in a row made no
    progress; the core's rule stops once more than its count did, hence the
    ``- 1``.
    """
    stopping = StoppingRule(-np.inf if cfg.tol is None else cfg.tol,
                            cfg.n_iter_no_change - 1, on_validation=validation is not None)
    order = np.arange(n_samples, dtype=np.intp if perm is None else perm.dtype)
    n_updates = 0
    n_train = n_samples if train_mask is None else int(train_mask.sum())
    frozen_without_updates = rule.c == 1.0 and rule.l1_step == 0.0
    started = time.perf_counter()
    for epoch in range(1, cfg.max_iter + 1):
        if perm is not None:  # this epoch's order: the shuffle applied to the last one
            _shuffle_again(order, perm)
        outcome = _run_epoch(rule, _epoch_order(order, perm, train_mask), epoch)
        if outcome is None:
            return UnitResult(epoch - 1, "interrupted", n_updates)
        loss, penalty, updates = outcome
        n_updates += updates
        try:  # Ctrl-C after a whole epoch keeps it
            _report(cfg, rule, epoch, epoch * n_train, loss, n_train, started)
            if cfg.stop_on_no_mistakes and updates == 0 and frozen_without_updates:
                return UnitResult(epoch, "no_mistakes", n_updates)
            score = None if validation is None else _validation_score(validation, *rule.weights())
            stopping.update((loss + penalty) / n_train, score)
            if stopping.triggered:
                if cfg.verbose:
                    print("Convergence after %d epochs took %.2f seconds"
                          % (epoch, time.perf_counter() - started))
                return UnitResult(epoch, "validation" if validation else "tol", n_updates)
        except KeyboardInterrupt:
            return UnitResult(epoch, "interrupted", n_updates)
    return UnitResult(cfg.max_iter, "max_iter", n_updates)


# --------------------------------------------------------------------------- #
# the entry points                                                             #
# --------------------------------------------------------------------------- #
def _make_rule(data, w0, b0, cfg):
    if cfg.penalty in ("l1", "elasticnet") and sp.issparse(data.X):
        return _SampleRule(data, w0, b0, cfg)
    if sp.issparse(data.X):
        sparse_rule = _FoldedSparseRule if cfg.penalty is None else _SparseRule
        rows = _SPARSE_CHUNK_ENTRIES * data.X.shape[0] // max(data.X.nnz, 1)
        return sparse_rule(data, w0, b0, cfg, chunk=int(np.clip(rows, 16, 1024)))
    n_features = data.X.shape[1]
    chunk = int(np.clip(_CHUNK_BYTES // (data.X.dtype.itemsize * n_features), 16, 1024))
    if cfg.penalty in ("l1", "elasticnet"):
        return _DenseL1Rule(data, w0, b0, cfg, chunk)
    return _DenseRule(data, w0, b0, cfg, chunk)


def _step_sizes(t, sample_weight, class_weight, eta0, dtype):
    """Each sample's step ``eta0 * class_weight * sample_weight``, float64.

    The weights are multiplied in ``dtype``, as scikit-learn does. Without
    sample weights and with equal class weights the steps are one number,
    returned as a read-only broadcast (no memory per sample).
    """
    neg, pos = dtype.type(class_weight[0]), dtype.type(class_weight[1])
    if sample_weight is None and neg == pos:
        return np.broadcast_to(np.float64(eta0 * float(pos)), t.shape)
    cw = np.where(t > 0, pos, neg).astype(dtype, copy=False)
    if sample_weight is not None:
        cw *= sample_weight.astype(dtype, copy=False)
    return eta0 * cw.astype(np.float64, copy=False)


def _fit_unit(network, k, X, y, sample_weight, cfg, seed, class_weight, validation_mask,
              interrupted):
    """Train output unit ``k`` of ``network`` on its targets ``y`` (see fit_perceptron)."""
    if interrupted:
        return UnitResult(0, "interrupted", 0)
    t = y if y.dtype == np.int8 else np.where(y > 0, np.int8(1), np.int8(-1))
    a = _step_sizes(t, sample_weight, class_weight, cfg.eta0, network.dtype)
    decay = SPARSE_INTERCEPT_DECAY if sp.issparse(X) else 1.0
    data = _UnitData(X, t, a, decay)
    W, b = network.coefs[0], network.intercepts[0]
    rule = _make_rule(data, W[:, k], b[k], cfg)
    perm = shuffle_permutation(X.shape[0], seed) if cfg.shuffle else None
    validation, train_mask = None, None
    if validation_mask is not None and cfg.early_stopping:
        sw_val = None if sample_weight is None else sample_weight[validation_mask]
        validation = (X[validation_mask], t[validation_mask], sw_val)
        train_mask = ~validation_mask
    result = _train_unit(rule, X.shape[0], perm, train_mask, validation, cfg)
    if result.status == "interrupted":
        interrupted.append(k)
    w, b_k = rule.weights()
    W[:, k] = w
    b[k] = b_k
    return result


def fit_perceptron(network, X, Y, sample_weight, config, *, seeds, class_weights,
                   validation_mask=None, parallel=None):
    """Train each output unit of a one-layer ``network`` by the perceptron rule.

    Parameters
    ----------
    network : Network
        One dense layer ``[n_features, n_units]``; its weights are the start
        and receive the result.
    X : ndarray or CSR matrix of shape (n_samples, n_features)
        In the network's dtype; a CSR matrix in canonical format where
        :func:`needs_canonical_rows` says so.
    Y : ndarray of shape (n_samples, n_units)
        Targets, one column per unit (one-vs-rest): +1/-1 as int8 (used as
        they are), or 0/1 of another dtype.
    sample_weight : ndarray of shape (n_samples,) or None
    config : PerceptronConfig
    seeds : sequence of int
        The 32-bit shuffle seed of each unit.
    class_weights : ndarray of shape (n_units, 2)
        Per unit, the weight of its negative and of its positive samples.
    validation_mask : ndarray of bool of shape (n_samples,), default=None
        Held-out samples: with ``config.early_stopping`` they are not trained
        on and each unit stops on its accuracy there.
    parallel : callable, default=None
        ``parallel(list of zero-argument callables) -> list of results``; runs
        the units one after another when None.

    Returns
    -------
    results : list of UnitResult, one per unit
    """
    if network.n_layers != 1:
        raise ValueError("The perceptron rule trains a network of one layer.")
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    interrupted = []
    tasks = [
        (lambda k=k: _fit_unit(network, k, X, Y[:, k], sw, config, int(seeds[k]),
                               class_weights[k], validation_mask, interrupted))
        for k in range(Y.shape[1])
    ]
    if parallel is None:
        return [task() for task in tasks]
    return list(parallel(tasks))


def perceptron_scores(X, coef, intercept):
    """The units' scores ``X coef^T + intercept`` for dense or sparse ``X``/``coef``.

    Returns
    -------
    scores : ndarray of shape (n_samples, n_units)
    """
    if sp.issparse(coef):
        S = coef @ X.T
        S = S.toarray() if sp.issparse(S) else np.asarray(S)
        return S.T + intercept
    return np.asarray(X @ coef.T) + intercept

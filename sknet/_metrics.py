"""Scores on arrays whose values may be too large to square in float64.

Validation scores and ``score`` methods accept any finite input; squaring a
difference near the largest float overflows. These compute in float64, scale
large values down before squaring, and combine the results as Python floats,
so an error beyond the largest float is ``inf``, never a RuntimeWarning.
"""

import numpy as np
from sklearn.metrics import r2_score
from sklearn.utils import check_consistent_length

# Below this magnitude, (2 * value) ** 2 summed over any array that fits in
# memory stays finite in float64.
_SAFE_MAGNITUDE = 1e100


def _relative_weights(sample_weight):
    """Weights divided by the largest one (ratios of weighted sums do not change)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    largest = float(np.max(w, initial=0.0))
    return w / largest if largest > 0 else w


def sum_of_squared_errors(A, B, sample_weight=None):
    """``sum(w * (A - B) ** 2)`` over all entries, as a Python float.

    Parameters
    ----------
    A, B : ndarray of the same shape, rows first
    sample_weight : ndarray of shape (n_rows,), default=None
        Non-negative weight of each row, at most 1 (see ``_relative_weights``).

    Returns
    -------
    total : float
        ``inf`` when the sum exceeds the largest float.
    """
    scale, total = _scaled_sum_of_squares(A, B, sample_weight)
    return scale * (scale * total)


def _scaled_sum_of_squares(A, B, sample_weight=None):
    """``(scale, total)`` with ``sum(w * (A - B) ** 2) == scale ** 2 * total``, both finite."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    scale = max(float(np.max(np.abs(A), initial=0.0)),
                float(np.max(np.abs(B), initial=0.0)))
    if scale < _SAFE_MAGNITUDE:
        scale, D = 1.0, A - B
    else:
        D = A / scale - B / scale
    if sample_weight is not None:
        D = D * np.sqrt(sample_weight).reshape((-1,) + (1,) * (D.ndim - 1))
    D = D.ravel()
    return scale, float(np.dot(D, D))


def row_mean_squared_error(Y, P, sample_weight=None):
    """The (weighted) mean over rows of each row's mean squared error, as a Python float."""
    n_samples, n_features = Y.shape
    w = _relative_weights(sample_weight)
    total = sum_of_squared_errors(Y, P, w)
    weight = n_samples if w is None else float(np.sum(w))
    return total / (weight * n_features)


def r2_score_without_overflow(y_true, y_pred, sample_weight=None):
    """scikit-learn's ``r2_score`` (uniform average over outputs), for any finite values.

    Values below ``1e100`` in magnitude go to ``r2_score`` itself; larger ones
    are scored with overflow-free sums of squares, with ``r2_score``'s
    conventions for a constant target (1.0 for a perfect fit, else 0.0).
    """
    try:  # float32 values square into float32: score in float64
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        largest = max(float(np.max(np.abs(a), initial=0.0)) for a in (y_true, y_pred))
        sample_weight = _relative_weights(sample_weight)  # huge weights, too
    except (TypeError, ValueError):
        largest = np.nan  # not numbers: r2_score says what is wrong
    if not _SAFE_MAGNITUDE <= largest < np.inf:  # ordinary, or not finite
        return float(r2_score(y_true, y_pred, sample_weight=sample_weight))
    check_consistent_length(y_true, y_pred, sample_weight)
    Y = y_true.reshape(len(y_true), -1)
    P = y_pred.reshape(len(y_pred), -1)
    top = max(float(np.max(np.abs(Y), initial=0.0)), 1.0)
    mean = np.average(Y / top, axis=0, weights=sample_weight) * top  # a sum may overflow
    scores = []
    for j in range(Y.shape[1]):
        r_scale, residual = _scaled_sum_of_squares(Y[:, j], P[:, j], sample_weight)
        s_scale, spread = _scaled_sum_of_squares(Y[:, j], np.full(len(Y), mean[j]),
                                                 sample_weight)
        if spread == 0 or np.all(Y[:, j] == Y[0, j]):  # a constant target
            scores.append(1.0 if residual == 0 else 0.0)
        else:  # Python floats: a ratio beyond the largest float is inf, R^2 is -inf
            ratio = r_scale / s_scale
            scores.append(1.0 - (residual / spread) * ratio * ratio)
    return sum(scores) / len(scores)

"""A plain perceptron, one sample at a time: the reference for the compiled kernel.

Written from the definition of scikit-learn's ``_plain_sgd`` with the
perceptron loss (``Hinge(threshold=0)``) and a constant learning rate, one
Python statement per step, with the weights kept as ``wscale * v`` and the
running norms where scikit-learn keeps them, because they decide the
stopping objective. Scalars that scikit-learn keeps in the data's precision
(the weights, their scale and norms, the sample and class weights, a
score) are rounded to it here too, so float32 runs follow the same numbers.
"""

import numpy as np
import scipy.sparse as sp

RESET_BELOW = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-6}


def xorshift_shuffle(order, seed):
    """scikit-learn's Fisher-Yates shuffle of ``order`` (a list), in place."""
    state, n = (seed & 0xFFFFFFFF) or 1, len(order)
    for i in range(n - 1):
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        j = i + (state % 2 ** 31) % (n - i)
        order[i], order[j] = order[j], order[i]


def _rows(X):
    """Each row as (feature indices, values)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        return [(X.indices[X.indptr[i]:X.indptr[i + 1]], X.data[X.indptr[i]:X.indptr[i + 1]])
                for i in range(X.shape[0])]
    cols = np.arange(X.shape[1])
    return [(cols, X[i]) for i in range(X.shape[0])]


def reference_fit(X, t, n_epochs, *, w0=None, b0=0.0, eta0=1.0, penalty=None, alpha=1e-4,
                  l1_ratio=0.15, fit_intercept=True, sample_weight=None, weight_neg=1.0,
                  weight_pos=1.0, shuffle=False, seed=1, skip=None):
    """Train one unit for ``n_epochs`` epochs.

    Parameters
    ----------
    X : ndarray or CSR matrix, float32 or float64
    t : array of +1/-1
    n_epochs : int
    skip : array of bool or None
        Samples passed over (held out).

    Returns
    -------
    w : ndarray
    b : float
    epochs : list of (loss_sum, objective_sum, n_updates), one per epoch
    """
    f = X.dtype.type
    rows = _rows(X)
    decay = 0.01 if sp.issparse(X) else 1.0
    n_features = X.shape[1]
    v = np.zeros(n_features, dtype=X.dtype) if w0 is None else np.array(w0, dtype=X.dtype)
    q = np.zeros(n_features, dtype=X.dtype)
    wscale = f(1.0)
    sq_norm = f(np.sum(v.astype(np.float64) ** 2))
    l1_norm = f(np.sum(np.abs(v.astype(np.float64))))
    b, u = float(b0), 0.0
    if penalty == "l2":
        l1_ratio = 0.0
    elif penalty == "l1":
        l1_ratio = 1.0
    shrink = f(max(0.0, 1.0 - (1.0 - l1_ratio) * eta0 * alpha))
    order = list(range(len(rows)))
    epochs = []
    for _ in range(n_epochs):
        loss_sum = objective = 0.0
        n_updates = 0
        if shuffle:
            xorshift_shuffle(order, seed)
        for i in order:
            if skip is not None and skip[i]:
                continue
            cols, x = rows[i]
            products = (v[cols] * x).astype(np.float64)  # in the data's precision
            score = float(f(float(np.sum(products)) * float(wscale))) + b
            z = score * t[i]
            loss = -z if z <= 0 else 0.0
            loss_sum += loss
            objective += loss
            if penalty is not None:
                norm = float(f(np.sqrt(float(sq_norm))))
                objective += alpha * ((1 - l1_ratio) * 0.5 * norm * norm
                                      + l1_ratio * float(l1_norm))
            update = 0.0
            if z <= 0:
                sw = f(1.0) if sample_weight is None else f(sample_weight[i])
                class_weight = f(weight_pos if t[i] > 0 else weight_neg)
                update = eta0 * t[i] * float(f(class_weight * sw))
            if penalty in ("l2", "elasticnet"):  # w *= shrink, in the scale
                wscale = f(wscale * shrink)
                sq_norm = f(sq_norm * f(shrink * shrink))
                l1_norm = f(float(l1_norm) * abs(float(shrink)))
                if wscale < RESET_BELOW[X.dtype]:
                    v = (v * wscale).astype(X.dtype)
                    wscale = f(1.0)
            if update != 0.0:  # w += update x
                step = float(f(f(update) / wscale))
                v[cols] = (v[cols].astype(np.float64) + x.astype(np.float64) * step)
                touched = v[cols]
                sq_norm = f(float(np.sum((touched * touched).astype(np.float64)))
                            * float(f(wscale * wscale)))
                l1_norm = f(float(np.sum(np.abs(touched.astype(np.float64)))) * float(wscale))
                n_updates += 1
                if fit_intercept:
                    b += update * decay
            if penalty in ("l1", "elasticnet"):  # cumulative truncated gradient
                u += l1_ratio * eta0 * alpha
                s = float(wscale)
                for j in cols:
                    z_j = float(v[j])
                    if s * z_j > 0:
                        v[j] = max(0.0, z_j - (u + float(q[j])) / s)
                    elif s * z_j < 0:
                        v[j] = min(0.0, z_j + (u - float(q[j])) / s)
                    q[j] = float(q[j]) + s * (float(v[j]) - z_j)
        epochs.append((loss_sum, objective, n_updates))
    return (v * wscale).astype(X.dtype), b, epochs

"""L1 and L2 penalties on weight matrices (never on biases).

The penalty added to the mean loss is ``(0.5 * alpha * sum(W**2) + l1 *
sum(|W|)) / sum(sample_weight)``: the L2 term is scaled exactly as in
scikit-learn's MLP, and the L1 term the same way. Callers pass only the
trainable (not frozen) weight matrices.
"""

import numpy as np

__all__ = ["penalty_value", "add_penalty_gradient"]


def penalty_value(coefs, alpha, l1):
    """``0.5 * alpha * sum ||W||^2 + l1 * sum |W|`` over ``coefs``."""
    value = 0.0
    for W in coefs:
        if alpha:
            value += 0.5 * alpha * float(np.vdot(W, W))
        if l1:
            value += l1 * float(np.abs(W).sum())
    return value


def add_penalty_gradient(W, G, alpha, l1, axpy=None):
    """Add the penalty's gradient for weights ``W`` to ``G`` in place.

    The L1 subgradient at exactly zero is taken as zero. ``axpy`` (see
    :func:`sknet._core.blas.axpy_for`) adds the L2 term in one pass.
    """
    if alpha:
        if axpy is not None and W.flags.c_contiguous and G.flags.c_contiguous:
            axpy(W.reshape(-1), G.reshape(-1), alpha)
        else:
            G += alpha * W
    if l1:
        G += l1 * np.sign(W)
    return G

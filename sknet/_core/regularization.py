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
        flat = W.ravel()
        if alpha:
            value += 0.5 * alpha * float(np.dot(flat, flat))
        if l1:
            value += l1 * float(np.abs(flat).sum())
    return value


def add_penalty_gradient(coefs, grads, alpha, l1):
    """Add the penalty's gradient to ``grads`` (aligned with ``coefs``) in place.

    The L1 subgradient at exactly zero is taken as zero.
    """
    for W, G in zip(coefs, grads):
        if alpha:
            G += alpha * W
        if l1:
            G += l1 * np.sign(W)
    return grads

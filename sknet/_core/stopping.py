"""The stopping rule: records scores and answers "stop?"; never raises.

It follows scikit-learn's MLP rule. With validation, an epoch is "no
improvement" when its score is below ``best_score + tol``; without, when its
training loss is above ``best_loss - tol``. The rule triggers once more than
``n_iter_no_change`` epochs in a row were no improvement.
"""

import numpy as np

__all__ = ["StoppingRule"]


class StoppingRule:
    """Plateau detection on the training loss or a validation score."""

    def __init__(self, tol, n_iter_no_change, on_validation, best_loss=None,
                 best_score=None, count=0):
        self.tol = float(tol)
        self.n_iter_no_change = n_iter_no_change
        self.on_validation = bool(on_validation)
        self.best_loss = np.inf if best_loss is None else float(best_loss)
        self.best_score = -np.inf if best_score is None else float(best_score)
        self.count = int(count)

    def update(self, loss, score=None):
        """Record an epoch. Returns True when it is the best epoch so far."""
        if self.on_validation:
            self.count = self.count + 1 if score < self.best_score + self.tol else 0
            improved = score > self.best_score
            if improved:
                self.best_score = score
        else:
            self.count = self.count + 1 if loss > self.best_loss - self.tol else 0
            improved = loss < self.best_loss
            if improved:
                self.best_loss = loss
        return improved

    @property
    def triggered(self):
        """Whether the last epochs made no progress for too long."""
        return self.count > self.n_iter_no_change

    def reset(self):
        """Start counting again (after the schedule lowered the rate)."""
        self.count = 0

    def message(self):
        if self.on_validation:
            return ("Validation score did not improve more than tol=%f for %d "
                    "consecutive epochs." % (self.tol, self.n_iter_no_change))
        return ("Training loss did not improve more than tol=%f for %d "
                "consecutive epochs." % (self.tol, self.n_iter_no_change))

"""Progress reporting and user callbacks, called after every epoch.

``verbose=1`` prints scikit-learn's own per-epoch lines ("Iteration N, loss =
...", then "Validation score: ..." when there is a validation set) with the
epoch's seconds and the validation loss appended. ``verbose>=2`` shows a tqdm
progress bar when tqdm is installed (the ``progress`` extra:
``pip install "sknet-nn[progress]"``) and standard error is a terminal, and
prints the lines otherwise; without tqdm it says so, once per process.
"""

import sys

__all__ = ["EpochPrinter", "ProgressBar", "make_reporter", "wrap_callbacks"]


class EpochPrinter:
    """Print one epoch's lines, in scikit-learn's format plus timing."""

    def __call__(self, history):
        seconds = history.epoch_seconds[-1]
        print("Iteration %d, loss = %.8f, %.3f s"
              % (history.n_iter, history.loss_curve[-1], seconds))
        if history.validation_scores is not None:
            print("Validation score: %f, validation loss = %.8f"
                  % (history.validation_scores[-1], history.validation_losses[-1]))

    def close(self):
        pass


class ProgressBar:
    """A tqdm bar over epochs, with the latest losses as its postfix."""

    def __init__(self, total):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="epoch", disable=None, leave=False)

    def __call__(self, history):
        postfix = {"loss": "%.5f" % history.loss_curve[-1]}
        if history.validation_scores is not None:
            postfix["val_score"] = "%.4f" % history.validation_scores[-1]
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


TQDM_MISSING = ("verbose=2 shows a progress bar, which needs tqdm: install the "
                "'progress' extra (pip install \"sknet-nn[progress]\") or tqdm. "
                "Printing one line per epoch instead.")
_said_tqdm_missing = False


def _tqdm_missing():
    """Say, once per process, that the bar needs tqdm."""
    global _said_tqdm_missing
    if not _said_tqdm_missing:
        _said_tqdm_missing = True
        print(TQDM_MISSING)


def make_reporter(verbose, total_epochs):
    """The reporter ``verbose`` asks for, or None when silent."""
    if not verbose:
        return None
    if verbose is not True and verbose >= 2:
        try:
            import tqdm  # noqa: F401 - the bar's only requirement
        except ImportError:
            _tqdm_missing()
        else:
            if sys.stderr.isatty():
                return ProgressBar(total_epochs)
    return EpochPrinter()


def check_callbacks(callbacks):
    """``callbacks`` as a list of callables, or a TypeError naming the parameter."""
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError("callbacks must be a callable callback(estimator, history) or a "
                        f"list of them; got {callbacks!r}.")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables; got {cb!r} in the list.")
    return callbacks


def wrap_callbacks(estimator, callbacks):
    """Turn ``callback(estimator, history)`` into the core's ``f(history)``."""
    return tuple(lambda history, cb=cb: cb(estimator, history)
                 for cb in check_callbacks(callbacks))

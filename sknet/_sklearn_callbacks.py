"""scikit-learn's callback API (``sklearn.callback``) for sknet's networks.

scikit-learn 1.9 added callbacks such as ``ProgressBar`` and ``ScoringMonitor``,
set with ``estimator.set_callbacks(...)``, or set on a meta-estimator
(``Pipeline``, ``GridSearchCV``) that propagates them into the estimators it
fits. An estimator takes part as scikit-learn's own do: it inherits
``CallbackSupportMixin``, runs its fit inside ``with_callbacks`` (which tears
the callbacks down however the fit ends) and describes its work as a tree of
tasks. Here the fit is the root task, opened with the mixin's
``_init_callback_context`` (the method scikit-learn documents for estimators
outside scikit-learn), and each epoch (each L-BFGS iteration) is one subtask.

Everything sknet takes from scikit-learn's callback API is here, by public
names. With a scikit-learn without ``sklearn.callback`` the mixin is an empty
class, ``with_callbacks`` returns the method unchanged and
:func:`start_fit_task` returns a task that does nothing.
"""

import copy

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # scikit-learn < 1.9
    class CallbackSupportMixin:
        """Nothing: this scikit-learn has no callback API."""

    def with_callbacks(method):
        """Return ``method`` unchanged: this scikit-learn has no callback API."""
        return method

__all__ = ["CallbackSupportMixin", "HAS_SKLEARN_CALLBACKS", "start_fit_task",
           "with_callbacks"]

HAS_SKLEARN_CALLBACKS = hasattr(CallbackSupportMixin, "set_callbacks")

# The fitted attributes ``_publish`` sets: views of the network's parameters,
# which training keeps changing.
WEIGHT_ATTRIBUTES = ("coefs_", "intercepts_", "recurrent_weights_")


def start_fit_task(estimator, X, y, sample_weight, max_epochs):
    """Open the fit's root task; a task that does nothing without the API.

    Parameters
    ----------
    estimator : BaseNetworkEstimator
        The estimator being fitted, its parameters already checked.
    X, y : array-like
        What ``fit`` received; callbacks such as ``ScoringMonitor`` score on them.
    sample_weight : array-like or None
        Passed to the callbacks as ``metadata={"sample_weight": ...}``.
    max_epochs : int
        The most epochs (L-BFGS iterations) this fit can run.

    Returns
    -------
    task : FitTask or NoFitTask
    """
    if not HAS_SKLEARN_CALLBACKS:
        return NoFitTask()
    return FitTask(estimator, X, y, sample_weight, max_epochs)


class NoFitTask:
    """The fit task where scikit-learn has no callback API: nothing to call."""

    def start_epochs(self):
        return ()

    def end(self, fitted=True):
        pass


class FitTask:
    """A fit as the root task of scikit-learn's callback API, one subtask per epoch.

    As in scikit-learn's ``LogisticRegression``, the trainer's per-epoch call
    (:meth:`__call__`) ends the epoch's task and begins the next one, so a
    fit that stops before ``max_epochs`` leaves one begun task, which
    :meth:`end` closes without data (callbacks such as ``ScoringMonitor``
    record nothing for it).

    Parameters
    ----------
    See :func:`start_fit_task`.
    """

    def __init__(self, estimator, X, y, sample_weight, max_epochs):
        self.estimator = estimator
        self.max_epochs = max_epochs
        self.n_epochs = 0
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self.data = {"X": X, "y": y, "metadata": metadata}
        self.root = estimator._init_callback_context(max_subtasks=max_epochs)
        self.root.call_on_fit_task_begin(estimator=estimator, **self.data)
        self.epoch = None

    def start_epochs(self):
        """Begin the first epoch's task; returns the trainer's callbacks (``(self,)``)."""
        self._begin_epoch()
        return (self,)

    def _begin_epoch(self):
        self.epoch = self.root.subcontext(task_name="epoch")
        self.epoch.call_on_fit_task_begin(estimator=self.estimator, **self.data,
                                          reconstruction_attributes=self._state)

    def __call__(self, history):
        """End this epoch's task, begin the next; True when a callback asks to stop."""
        self.n_epochs += 1
        stop = self.epoch.call_on_fit_task_end(estimator=self.estimator, **self.data,
                                               reconstruction_attributes=self._state)
        self.epoch = None
        if not stop and self.n_epochs < self.max_epochs:
            self._begin_epoch()
        return stop

    def _state(self):
        """Fitted attributes of the model as it is now, copied (called only when needed)."""
        state = {name: copy.deepcopy(getattr(self.estimator, name))
                 for name in WEIGHT_ATTRIBUTES if hasattr(self.estimator, name)}
        state["n_iter_"] = self.n_epochs
        return state

    def end(self, fitted=True):
        """Close a begun epoch that never ran, then the fit (``fitted``: it succeeded)."""
        if self.epoch is not None:
            self.epoch.call_on_fit_task_end(estimator=self.estimator)
            self.epoch = None
        if fitted:
            self.root.call_on_fit_task_end(estimator=self.estimator, **self.data,
                                           reconstruction_attributes={})

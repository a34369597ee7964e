"""scikit-learn's callback API (``set_callbacks``): one task per epoch.

With scikit-learn's own ``ScoringMonitor`` and ``ProgressBar``, on an
estimator alone, in a Pipeline and in a GridSearchCV (which propagates the
progress bar into the estimators it fits). The scores a monitor records are
checked against a forward pass written here in numpy, from weights that
sknet's own ``callbacks=`` hook copies at every epoch.
"""

import copy
import pickle
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn.callback")  # scikit-learn >= 1.9

from sklearn.base import clone  # noqa: E402
from sklearn.callback import ProgressBar, ScoringMonitor  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sknet import (  # noqa: E402
    AutoencoderTransformer,
    MLPClassifier,
    MLPRegressor,
    RecurrentClassifier,
    RecurrentRegressor,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, Y = load_iris(return_X_y=True)
X_SCALED = StandardScaler().fit_transform(X)
Y_REG = X[:, 3] + 0.5 * X[:, 0]


def needs_rich():
    """scikit-learn's ProgressBar draws with rich (a test dependency of both)."""
    pytest.importorskip("rich")


class WeightsPerEpoch:
    """sknet's own ``callbacks=`` hook: a copy of the weights after every epoch."""

    def __init__(self):
        self.weights = []

    def __call__(self, estimator, history):
        self.weights.append(copy.deepcopy((estimator.coefs_, estimator.intercepts_)))


def forward(X, weights):
    """An MLP's output pre-activation, in numpy: tanh hidden layers."""
    coefs, intercepts = weights
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        X = np.tanh(X @ W + b)
    return X @ coefs[-1] + intercepts[-1]


def epoch_rows(monitor):
    """The most recent run's rows for epochs, in order."""
    return [row for row in monitor.get_logs().data if row["task_name"] == "epoch"]


def small(cls, **params):
    return cls(**{"hidden_layer_sizes": (6,), "activation": "tanh", "max_iter": 8,
                  "tol": 0.0, "random_state": 0, **params})


# --------------------------------------------------------------------------- #
# ScoringMonitor: one score per epoch, the score of the model at that epoch    #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_scoring_monitor_scores_the_classifier_of_every_epoch(solver):
    recorder, monitor = WeightsPerEpoch(), ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, solver=solver, callbacks=recorder)
    clf.set_callbacks(monitor).fit(X_SCALED, Y)

    rows = epoch_rows(monitor)
    assert clf.n_iter_ == len(recorder.weights) == len(rows) == 8
    assert [row["task_id"] for row in rows] == list(range(8))
    expected = [accuracy_score(Y, clf.classes_[forward(X_SCALED, w).argmax(1)])
                for w in recorder.weights]
    assert [row["accuracy"] for row in rows] == pytest.approx(expected)
    assert len(set(expected)) > 1  # the model changes from epoch to epoch
    root = monitor.get_logs().data[0]
    assert root["task_name"] == "fit" and root["task_id_path"] == (0,)
    assert root["accuracy"] == pytest.approx(clf.score(X_SCALED, Y))


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_scoring_monitor_scores_the_regressor_of_every_epoch_with_sample_weight(solver):
    recorder, monitor = WeightsPerEpoch(), ScoringMonitor(scoring="r2")
    sw = np.linspace(0.5, 2.0, len(Y_REG))
    reg = small(MLPRegressor, solver=solver, learning_rate_init=0.01,
                callbacks=recorder)
    reg.set_callbacks(monitor).fit(X_SCALED, Y_REG, sample_weight=sw)

    expected = [r2_score(Y_REG, forward(X_SCALED, w).ravel(), sample_weight=sw)
                for w in recorder.weights]
    assert [row["r2"] for row in epoch_rows(monitor)] == pytest.approx(expected)


def test_a_fit_that_converges_early_records_only_the_epochs_it_ran():
    monitor = ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, solver="sgd", max_iter=200, tol=10.0,
                n_iter_no_change=2).set_callbacks(monitor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X_SCALED, Y)
    assert clf.n_iter_ == len(epoch_rows(monitor)) < 10


class TaskEvents:
    """A callback of scikit-learn's protocol that records each task's begin and end."""

    def __init__(self):
        self.events = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, **kwargs):
        self.events.append(("begin", id(context), context.task_name))

    def on_fit_task_end(self, estimator, context, **kwargs):
        self.events.append(("end", id(context), context.task_name))


@pytest.mark.parametrize("params", [dict(max_iter=200, tol=10.0, n_iter_no_change=2),
                                    dict(max_iter=3)], ids=["stops-early", "runs-max-iter"])
def test_every_task_begun_ends_nested_in_its_fit(params):
    # a fit that stops early has begun one more epoch than it ran: it ends too
    events = TaskEvents()
    clf = small(MLPClassifier, solver="sgd", **params).set_callbacks(events)
    clf.fit(X_SCALED, Y)
    open_tasks = []
    for kind, task, _ in events.events:
        if kind == "begin":
            open_tasks.append(task)
        else:
            assert open_tasks.pop() == task
    assert not open_tasks
    names = [name for kind, _, name in events.events if kind == "end"]
    begun = clf.n_iter_ + (clf.n_iter_ < clf.max_iter)  # the epoch after an early stop
    assert names[-1] == "fit" and names.count("epoch") == begun


def test_each_partial_fit_is_one_run_of_one_epoch():
    monitor = ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, solver="adam").set_callbacks(monitor)
    for _ in range(3):
        clf.partial_fit(X_SCALED, Y, classes=np.unique(Y))
    runs = monitor.get_logs(select="all")
    assert [[row["task_name"] for row in run.data] for run in runs] == [["fit", "epoch"]] * 3
    assert runs[-1].data[1]["accuracy"] == pytest.approx(clf.score(X_SCALED, Y))


def test_sknet_callbacks_and_scikit_learn_callbacks_work_together():
    monitor = ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, max_iter=50,
                callbacks=lambda est, history: history.n_iter >= 2)
    clf.set_callbacks(monitor).fit(X_SCALED, Y)
    assert clf.n_iter_ == len(clf.loss_curve_) == len(epoch_rows(monitor)) == 2


# --------------------------------------------------------------------------- #
# what an epoch's callbacks receive, and what they may ask                     #
# --------------------------------------------------------------------------- #
class KeepFittedEstimators:
    """A callback following scikit-learn's FitCallback protocol: keeps each
    epoch's ``fitted_estimator``, asks to stop after ``stop_after`` epochs."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.fitted = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name != "epoch" or fitted_estimator is None:
            return False
        self.fitted.append(fitted_estimator)
        return len(self.fitted) == self.stop_after


def _sequences():
    X_seq = np.random.default_rng(0).normal(size=(40, 5, 2))
    return X_seq, (X_seq[:, :, 0].sum(1) > 0).astype(int), X_seq[:, :, 0].sum(1)


NETWORKS = {
    "MLPClassifier": lambda: (small(MLPClassifier, max_iter=4), X_SCALED, Y),
    "MLPRegressor": lambda: (small(MLPRegressor, max_iter=4), X_SCALED, Y_REG),
    "Autoencoder": lambda: (AutoencoderTransformer(2, hidden_layer_sizes=(4,), max_iter=4,
                                                   random_state=0), X_SCALED, None),
    "RecurrentClassifier": lambda: (RecurrentClassifier((4,), max_iter=4, random_state=0),
                                    *_sequences()[:2]),
    "RecurrentRegressor": lambda: (RecurrentRegressor((4,), max_iter=4, random_state=0),
                                   _sequences()[0], _sequences()[2]),
}


def _output(estimator, X):
    for method in ("transform", "predict_proba", "predict"):
        if hasattr(estimator, method):
            return getattr(estimator, method)(X)


@pytest.mark.parametrize("name", NETWORKS)
def test_every_epoch_hands_callbacks_the_model_as_it_was_then(name):
    estimator, X_fit, y_fit = NETWORKS[name]()
    outputs = []
    keep = KeepFittedEstimators()
    estimator.set_params(callbacks=lambda est, h: outputs.append(_output(est, X_fit)))
    estimator.set_callbacks(keep).fit(X_fit, y_fit)
    assert [est.n_iter_ for est in keep.fitted] == [1, 2, 3, 4]
    for fitted, output in zip(keep.fitted, outputs):  # copies: training moved on
        np.testing.assert_allclose(_output(fitted, X_fit), output, rtol=1e-12)
    assert not np.allclose(outputs[0], outputs[-1])


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_callback_returning_true_stops_the_fit_without_a_warning(solver):
    clf = small(MLPClassifier, solver=solver, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.set_callbacks(KeepFittedEstimators(stop_after=3)).fit(X_SCALED, Y)
    assert clf.n_iter_ == 3


def _progress_threads():
    return [t for t in threading.enumerate() if type(t).__name__ == "RichProgressMonitor"]


def test_a_failing_fit_still_tears_the_callbacks_down_and_restores_the_estimator(capsys):
    needs_rich()

    def fail_at_two(estimator, history):
        if history.n_iter == 2:
            raise RuntimeError("stop here")

    clf = small(MLPClassifier, callbacks=fail_at_two).set_callbacks(ProgressBar())
    with pytest.raises(RuntimeError, match="stop here"):
        clf.fit(X_SCALED, Y)
    assert not _progress_threads()  # ProgressBar's teardown joined its thread
    assert not hasattr(clf, "coefs_")
    clf.set_params(callbacks=None).fit(X_SCALED, Y)
    assert "MLPClassifier - fit" in capsys.readouterr().out


# --------------------------------------------------------------------------- #
# ProgressBar, Pipeline and GridSearchCV                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_progress_bar_on_an_estimator_alone(solver, capsys):
    needs_rich()
    small(MLPRegressor, solver=solver).set_callbacks(ProgressBar()).fit(X_SCALED, Y_REG)
    out = capsys.readouterr().out
    assert "MLPRegressor - fit" in out and "100%" in out
    assert not _progress_threads()


def test_pipeline_propagates_the_progress_bar_and_scores_its_network(capsys):
    needs_rich()
    recorder, monitor = WeightsPerEpoch(), ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, solver="lbfgs", callbacks=recorder).set_callbacks(monitor)
    pipe = make_pipeline(StandardScaler(), clf)
    pipe.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X, Y)

    out = capsys.readouterr().out
    assert "Pipeline - fit-final-estimator | MLPClassifier - fit" in out
    rows = epoch_rows(monitor)
    assert [row["task_id_path"] for row in rows] == [(0, 1, i) for i in range(8)]
    expected = [accuracy_score(Y, forward(X_SCALED, w).argmax(1)) for w in recorder.weights]
    assert [row["accuracy"] for row in rows] == pytest.approx(expected)
    clf.fit(X_SCALED, Y)  # alone: the propagated bar is gone, its own monitor stays
    assert capsys.readouterr().out == ""
    assert len(monitor.get_logs(select="all")) == 2


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_grid_search_propagates_the_progress_bar_into_every_fit(solver, capsys):
    needs_rich()
    monitor = ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, solver=solver, max_iter=3).set_callbacks(monitor)
    search = GridSearchCV(clf, {"alpha": [1e-4, 1e-1]}, cv=2)
    search.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X_SCALED, Y)

    out = capsys.readouterr().out
    # 4 fits of the search and the refit, each shown under the search's task
    assert out.count("| MLPClassifier - fit") == 5
    rows = monitor.get_logs().data
    fits = [row for row in rows if row["task_name"] == "fit"]
    assert len(fits) == 5 and len(rows) == 5 * (1 + 3)
    refit = max(fits, key=lambda row: row["task_id_path"][1])  # the refit task
    assert refit["accuracy"] == pytest.approx(search.best_estimator_.score(X_SCALED, Y))


# --------------------------------------------------------------------------- #
# clone and pickle, as scikit-learn's estimators                               #
# --------------------------------------------------------------------------- #
def test_clone_shares_the_callbacks_as_scikit_learn_does():
    monitor = ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, max_iter=2).set_callbacks(monitor)
    clone(clf).fit(X_SCALED, Y)
    clone(clone(clf)).fit(X_SCALED, Y)
    assert len(monitor.get_logs(select="all")) == 2
    assert clone(clf).get_params() == clf.get_params()


@pytest.mark.parametrize("when", ["before fit", "after fit"])
def test_pickle_keeps_the_callbacks_and_a_refit_adds_a_run(when):
    monitor = ScoringMonitor(scoring="accuracy")
    clf = small(MLPClassifier, max_iter=2).set_callbacks(monitor)
    if when == "after fit":
        clf.fit(X_SCALED, Y)
    restored, restored_monitor = pickle.loads(pickle.dumps((clf, monitor)))
    restored.fit(X_SCALED, Y)
    runs = restored_monitor.get_logs(select="all")
    assert len(runs) == (2 if when == "after fit" else 1)
    assert [row["task_name"] for row in runs[-1].data] == ["fit", "epoch", "epoch"]


def test_a_fit_leaves_nothing_of_its_callback_tasks_on_the_estimator():
    plain = small(MLPClassifier, max_iter=2).fit(X_SCALED, Y)
    clf = small(MLPClassifier, max_iter=2).set_callbacks(ScoringMonitor(scoring="accuracy"))
    unfitted = set(vars(clf))
    clf.fit(X_SCALED, Y)
    assert set(vars(clf)) - unfitted == set(vars(plain)) - set(vars(small(MLPClassifier)))

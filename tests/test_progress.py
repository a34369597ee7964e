"""verbose output and callbacks."""

import pickle
import re
import subprocess
import sys
import warnings

import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sknet import MLPClassifier, MLPRegressor

X, Y = load_iris(return_X_y=True)


def stop_after_two(estimator, history):
    """A module-level callback (pickles, survives clone)."""
    return history.n_iter >= 2


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, estimator, history):
        self.calls.append((history.n_iter, len(history.loss_curve),
                           estimator.predict(X[:3]).tolist()))
        return False


def test_verbose_prints_scikit_learns_lines_with_time_and_validation_loss(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((5,), max_iter=3, verbose=1, early_stopping=True,
                      random_state=0).fit(X, Y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert re.fullmatch(r"Iteration 1, loss = \d+\.\d{8}, \d+\.\d{3} s", lines[0])
    assert re.fullmatch(r"Validation score: \d\.\d{6}, validation loss = \d+\.\d{8}", lines[1])
    assert lines[4].startswith("Iteration 3, loss = ")


@pytest.mark.parametrize("params", [dict(solver="sgd"), dict(solver="sgd", early_stopping=True),
                                    dict(solver="sgd", learning_rate="adaptive")],
                         ids=["training-loss", "validation-score", "adaptive"])
def test_verbose_stopping_lines_are_scikit_learns(capsys, params):
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    def stop_lines(cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls((5,), max_iter=300, verbose=1, random_state=0, n_iter_no_change=2,
                tol=1e-2, **params).fit(X, Y)
        return [line for line in capsys.readouterr().out.splitlines()
                if "did not improve" in line or "Setting learning rate" in line]

    ours = stop_lines(MLPClassifier)
    assert ours and ours == stop_lines(SkMLPClassifier)


@pytest.mark.parametrize("verbose", [0, False])
def test_a_quiet_fit_prints_nothing(capsys, verbose):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier((5,), max_iter=3, verbose=verbose, random_state=0).fit(X, Y)
    assert capsys.readouterr() == ("", "")


def test_verbose_two_falls_back_to_lines_when_not_a_terminal(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, verbose=2, random_state=0).fit(X, Y)
    assert capsys.readouterr().out.count("Iteration") == 2


def test_a_callback_stops_training_by_its_return_value():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning, no interruption warning
        clf = MLPClassifier((5,), max_iter=50, callbacks=stop_after_two,
                            random_state=0).fit(X, Y)
    assert clf.n_iter_ == 2 == len(clf.loss_curve_)


def test_every_callback_is_called_each_epoch_and_sees_the_current_model():
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((5,), max_iter=4, callbacks=[stop_after_two, rec],
                            random_state=0).fit(X, Y)
    assert [c[0] for c in rec.calls] == [1, 2]  # called even when the first says stop
    assert [c[1] for c in rec.calls] == [1, 2]
    assert rec.calls[-1][2] == clf.predict(X[:3]).tolist()


def test_lbfgs_calls_callbacks_once_per_iteration():
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier((5,), solver="lbfgs", max_iter=20,
                            callbacks=[rec, stop_after_two], random_state=0).fit(X, Y)
    assert [c[0] for c in rec.calls] == [1, 2]
    assert clf.n_iter_ == 2


def test_callbacks_survive_clone_grid_search_and_pickle():
    clf = MLPClassifier((5,), max_iter=50, callbacks=[stop_after_two], random_state=0)
    assert clone(clf).callbacks[0] is stop_after_two
    grid = GridSearchCV(clf, {"alpha": [1e-4, 1e-3]}, cv=2).fit(X, Y)
    assert grid.best_estimator_.n_iter_ == 2
    assert pickle.loads(pickle.dumps(grid.best_estimator_)).callbacks[0] is stop_after_two


def test_a_non_callable_callback_is_refused():
    with pytest.raises(TypeError, match="callbacks must be callables; got 'print' in the list"):
        MLPClassifier(callbacks=["print"]).fit(X, Y)
    for value in ("print", 3):  # a string is no list of callbacks
        with pytest.raises(TypeError, match=rf"callbacks must be a callable callback\(estimator, "
                                            rf"history\) or a list of them; got {value!r}"):
            MLPClassifier(callbacks=value).fit(X, Y)


def test_progress_bar_with_tqdm(monkeypatch):
    pytest.importorskip("tqdm")  # an optional extra
    from sknet import _progress

    monkeypatch.setattr(_progress.sys.stderr, "isatty", lambda: True, raising=False)
    reporter = _progress.make_reporter(2, 3)
    assert isinstance(reporter, _progress.ProgressBar)
    reporter.close()


def test_a_fresh_process_says_that_the_bar_needs_tqdm():
    # the once-per-process flag starts lowered: the first verbose=2 fit says it
    code = ("import sys, warnings; sys.modules['tqdm'] = None; warnings.simplefilter('ignore')\n"
            "from sklearn.datasets import load_iris\nfrom sknet import MLPClassifier\n"
            "X, y = load_iris(return_X_y=True)\n"
            "MLPClassifier((3,), max_iter=1, verbose=2).fit(X, y)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.count("needs tqdm") == 1


class FakeTqdm:
    """tqdm's bar as sknet uses it, recording the calls (tqdm is an optional extra)."""

    bars = []

    def __init__(self, total, **kwargs):
        self.total, self.kwargs, self.n, self.closed = total, kwargs, 0, 0
        self.postfixes, self.refreshes = [], []
        FakeTqdm.bars.append(self)

    def set_postfix(self, postfix, refresh=True):
        self.postfixes.append(dict(postfix))
        self.refreshes.append(refresh)

    def update(self, n=1):
        self.n += n

    def close(self):
        self.closed += 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_progress_bar_counts_epochs_and_shows_the_last_losses(monkeypatch):
    import types

    from sknet import _progress

    module = types.ModuleType("tqdm.auto")
    module.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", module)
    monkeypatch.setattr(_progress.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(FakeTqdm, "bars", [])
    clf = MLPClassifier((5,), max_iter=7, verbose=2, early_stopping=True,
                        random_state=0).fit(X, Y)
    (bar,) = FakeTqdm.bars
    assert bar.total == 7 and bar.n == clf.n_iter_ == 7 and bar.closed == 1
    # on a terminal only, and gone when done: no bar left behind in a notebook's output
    assert bar.kwargs == {"unit": "epoch", "disable": None, "leave": False}
    assert bar.refreshes == [False] * 7  # the update that follows redraws
    assert bar.postfixes == [{"loss": "%.5f" % loss, "val_score": "%.4f" % score}
                             for loss, score in zip(clf.loss_curve_, clf.validation_scores_)]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_two_without_tqdm_says_once_that_the_bar_needs_the_extra(monkeypatch, capsys):
    from sknet import _progress

    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(_progress, "_said_tqdm_missing", False)
    monkeypatch.setattr(_progress.sys.stderr, "isatty", lambda: True, raising=False)
    for _ in range(2):
        MLPClassifier((5,), max_iter=2, verbose=2, random_state=0).fit(X, Y)
    out = capsys.readouterr().out
    assert out.count("needs tqdm") == 1 and "sknet-nn[progress]" in out
    assert "needs tqdm" in out
    assert len(re.findall(r"^Iteration \d+, loss", out, re.MULTILINE)) == 4  # lines instead

"""Behaviour in the corners, compared with scikit-learn's where it has one.

Parameter errors raise the class scikit-learn raises (its
``InvalidParameterError`` is both a ValueError and a TypeError); a single
class, a diverging fit with early stopping, multilabel log-probabilities,
a validation set with L-BFGS, a non-finite L-BFGS loss, validation sets too
small to score, the perceptron's early stopping with a penalty, and the BLAS
thread limit of fits that overlap in threads. (A refit that diverges and
Ctrl-C in L-BFGS or while results are recorded: tests/test_robustness.py.)
"""

import copy
import os
import warnings
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.linear_model import Perceptron as SKPerceptron
from sklearn.neural_network import MLPClassifier as SKClassifier
from sklearn.neural_network import MLPRegressor as SKRegressor
from sklearn.utils._param_validation import InvalidParameterError
from sknet._core._dense_fast import openmp_threads

from sknet import MLPClassifier, MLPRegressor, PerceptronClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X_SMALL = RNG.normal(size=(30, 3))
Y_BINARY = np.arange(30) % 2


# --------------------------------------------------------------------------- #
# parameter errors                                                             #
# --------------------------------------------------------------------------- #
# Wrong types, out-of-range numbers, non-finite numbers, sequences, strings.
# Booleans are left out: scikit-learn takes True as the number 1 where it
# wants a number, sknet refuses it (see docs/differences.rst).
BAD_VALUES = ["x", "auto", None, -1, 0, 1, 2, 1.5, -0.5, 0.0, 1.0, 3.0, np.nan, np.inf,
              -np.inf, [1], (0,), (-1,), (1.5,), ("a",)]

PAIRS = {"MLPClassifier": (SKClassifier, MLPClassifier),
         "MLPRegressor": (SKRegressor, MLPRegressor),
         "Perceptron": (SKPerceptron, PerceptronClassifier)}


def _fast(name):
    if name == "Perceptron":
        return {"max_iter": 2}
    return {"max_iter": 2, "hidden_layer_sizes": (3,)}


def _error_class(cls, params, name, value):
    """The class of the error ``cls(**params)`` with ``name=value`` raises in fit, or None."""
    params = {**params, name: value}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**params).fit(X_SMALL, Y_BINARY)
    except Exception as exc:  # noqa: BLE001 - the class is what is compared
        return type(exc)
    return None


def _catchable_as(error):
    """What a user catches ``error`` as: InvalidParameterError, TypeError or ValueError."""
    if error is InvalidParameterError:
        return error
    return TypeError if issubclass(error, TypeError) else ValueError


def _shared_parameters():
    for name, (sk_cls, own_cls) in PAIRS.items():
        for param in sk_cls().get_params():
            assert param in own_cls().get_params(), param
            yield pytest.param(name, param, id=f"{name}-{param}")


@pytest.mark.parametrize("estimator, param", list(_shared_parameters()))
def test_bad_parameter_raises_the_class_scikit_learn_raises(estimator, param):
    sk_cls, own_cls = PAIRS[estimator]
    fast = _fast(estimator)
    fast.pop(param, None)
    mismatches = []
    for value in BAD_VALUES:
        expected = _error_class(sk_cls, fast, param, value)
        got = _error_class(own_cls, fast, param, value)
        if got is None or expected is None:
            same = got is expected
        else:
            same = issubclass(got, _catchable_as(expected))
        if not same:
            mismatches.append((value, expected, got))
    assert not mismatches, mismatches



def _flat_tags(estimator):
    from dataclasses import asdict

    def flat(tags, prefix=""):
        for key, value in tags.items():
            if isinstance(value, dict):
                yield from flat(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    return dict(flat(asdict(estimator.__sklearn_tags__())))


@pytest.mark.parametrize("estimator", list(PAIRS))
def test_tags_are_scikit_learns(estimator):
    """Multi-label targets, sparse input, no NaN, the estimator type: what
    scikit-learn's checks and meta-estimators read from the tags."""
    sk_cls, own_cls = PAIRS[estimator]
    assert _flat_tags(own_cls()) == _flat_tags(sk_cls())

@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor", "Perceptron"])
@pytest.mark.parametrize("param", ["max_iter", "tol", "alpha"])
def test_bad_parameter_is_caught_as_type_error_and_value_error(estimator, param):
    _, own_cls = PAIRS[estimator]
    for catch in (TypeError, ValueError, InvalidParameterError):
        with pytest.raises(catch, match=param):
            own_cls(**{param: "x"}).fit(X_SMALL, Y_BINARY)


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor", "Perceptron"])
@pytest.mark.parametrize("param", ["max_iter", "alpha", "tol"])
def test_a_boolean_is_refused_where_a_number_is_expected(estimator, param):
    # scikit-learn takes True as 1 here (see docs/differences.rst)
    _, own_cls = PAIRS[estimator]
    with pytest.raises(InvalidParameterError, match=param):
        own_cls(**{param: True}).fit(X_SMALL, Y_BINARY)


def test_elasticnet_without_l1_ratio_is_scikit_learns_parameter_error():
    with pytest.raises(InvalidParameterError, match="l1_ratio"):
        SKPerceptron(penalty="elasticnet", l1_ratio=None).fit(X_SMALL, Y_BINARY)
    with pytest.raises(InvalidParameterError, match="l1_ratio"):
        PerceptronClassifier(penalty="elasticnet", l1_ratio=None).fit(X_SMALL, Y_BINARY)


@pytest.mark.parametrize("fit_kwargs, y, message", [
    ({"coef_init": np.zeros((1, 4))}, Y_BINARY, "Provided coef_init does not match dataset"),
    ({"intercept_init": np.zeros(2)}, Y_BINARY,
     "Provided intercept_init does not match dataset"),
    ({"intercept_init": np.zeros(2)}, np.arange(30) % 3,
     "Provided intercept_init does not match dataset"),
], ids=["coef_init", "intercept_init-binary", "intercept_init-multiclass"])
def test_initial_weights_of_the_wrong_shape_say_what_scikit_learn_says(fit_kwargs, y,
                                                                      message):
    for cls in (SKPerceptron, PerceptronClassifier):
        with pytest.raises(ValueError, match=message):
            cls().fit(X_SMALL, y, **fit_kwargs)


# --------------------------------------------------------------------------- #
# a single class                                                               #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("label", [7, "a"], ids=["int", "str"])
def test_single_class_is_fitted_and_predicted_as_scikit_learn_does(solver, label):
    y = np.full(X_SMALL.shape[0], label)
    params = dict(hidden_layer_sizes=(3,), max_iter=5, solver=solver, random_state=0)
    reference = SKClassifier(**params).fit(X_SMALL, y)
    model = MLPClassifier(**params).fit(X_SMALL, y)
    np.testing.assert_array_equal(model.classes_, reference.classes_)
    np.testing.assert_array_equal(model.predict(X_SMALL), y)
    np.testing.assert_array_equal(model.predict(X_SMALL), reference.predict(X_SMALL))
    proba = model.predict_proba(X_SMALL)
    assert proba.shape == reference.predict_proba(X_SMALL).shape == (30, 2)
    np.testing.assert_allclose(proba, reference.predict_proba(X_SMALL), rtol=1e-10)
    assert model.predict_log_proba(X_SMALL).shape == proba.shape
    assert model.score(X_SMALL, y) == reference.score(X_SMALL, y) == 1.0
    for W, W_ref in zip(model.coefs_, reference.coefs_, strict=True):
        np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)


def test_single_class_with_early_stopping_and_partial_fit():
    y = np.full(X_SMALL.shape[0], 3)
    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, early_stopping=True,
                          random_state=0).fit(X_SMALL, y)
    assert model.validation_scores_ == [1.0] * model.n_iter_
    model = MLPClassifier(hidden_layer_sizes=(3,), random_state=0)
    model.partial_fit(X_SMALL, y, classes=[3])
    np.testing.assert_array_equal(model.predict(X_SMALL[:4]), [3, 3, 3, 3])


def test_recurrent_classifier_on_a_single_class_predicts_it():
    from sknet import RecurrentClassifier

    y = np.full(X_SMALL.shape[0], "only")
    model = RecurrentClassifier(hidden_layer_sizes=(3,), max_iter=3,
                                random_state=0).fit(X_SMALL, y)
    np.testing.assert_array_equal(model.classes_, ["only"])
    np.testing.assert_array_equal(model.predict(X_SMALL), y)
    assert model.predict_proba(X_SMALL).shape == (30, 2)


# --------------------------------------------------------------------------- #
# divergence with early stopping                                               #
# --------------------------------------------------------------------------- #
def test_diverging_fit_with_early_stopping_keeps_the_best_weights_as_scikit_learn():
    # scikit-learn records a NaN validation score for the epoch that diverged,
    # goes on, and ends with the best epoch's weights; sknet stops at that epoch.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ np.arange(1.0, 6.0) * 30
    params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.05,
                  max_iter=30, early_stopping=True, n_iter_no_change=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflows
        reference = SKRegressor(**params).fit(X, y)
    with pytest.warns(UserWarning, match="diverged"):
        model = MLPRegressor(**params).fit(X, y)
    scores = model.validation_scores_
    assert np.isnan(scores[-1]) and not np.isnan(scores[:-1]).any()
    assert len(scores) == len(model.loss_curve_) == model.n_iter_ < params["max_iter"]
    losses = model.validation_loss_curve_
    assert len(losses) == len(scores) and np.isnan(losses[-1]) and np.isnan(model.loss_curve_[-1])
    np.testing.assert_allclose(scores[:-1], reference.validation_scores_[:len(scores) - 1],
                               rtol=1e-8)
    assert np.isnan(reference.validation_scores_[len(scores) - 1])
    assert model.best_validation_score_ == reference.best_validation_score_
    # every epoch, the diverged one too, counts its training rows as scikit-learn's
    assert model.t_ == model.n_iter_ * (reference.t_ // reference.n_iter_)
    for W, W_ref in zip(model.coefs_ + model.intercepts_,
                        reference.coefs_ + reference.intercepts_, strict=True):
        assert np.isfinite(W).all()
        np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- #
# multilabel log-probabilities                                                 #
# --------------------------------------------------------------------------- #
@lru_cache(maxsize=None)
def _fitted_multilabel_model():
    return _multilabel_model()


def _multilabel_model(n_labels=3):
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(60, 4, n_classes=n_labels, random_state=0)
    model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, Y)
    return model, X


@pytest.mark.parametrize("n_labels", [2, 3])
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4, 1e8])
def test_multilabel_predict_log_proba_is_the_log_of_predict_proba(scale, n_labels):
    model, X = _multilabel_model(n_labels)
    assert model.n_outputs_ == n_labels
    X = X * scale  # large inputs: logits where expit rounds to 1 or to 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        proba, log_proba = model.predict_proba(X), model.predict_log_proba(X)
    expected = np.full_like(proba, -np.inf)
    np.log(proba, out=expected, where=proba > 0)
    np.testing.assert_array_equal(log_proba, expected)


def test_multilabel_log_proba_ranks_labels_as_predict_proba():
    # Logits 40 and 50 both give a probability of exactly 1.0: the first label
    # is the argmax of predict_proba, and must be that of predict_log_proba.
    model, X = _multilabel_model()
    model.coefs_[-1][...] = 0.0
    model.intercepts_[-1][...] = [40.0, 50.0, -800.0]
    proba, log_proba = model.predict_proba(X), model.predict_log_proba(X)
    np.testing.assert_array_equal(proba[0], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(np.argmax(log_proba, axis=1), np.argmax(proba, axis=1))
    np.testing.assert_array_equal(log_proba[0], [0.0, 0.0, -np.inf])


@settings(max_examples=60, deadline=None)
@given(logits=hnp.arrays(np.float64, 3, elements=st.floats(-1000, 1000)))
def test_multilabel_log_proba_is_the_log_of_proba_for_any_logits(logits):
    model, X = _fitted_multilabel_model()
    model = copy.deepcopy(model)
    model.coefs_[-1][...] = 0.0
    model.intercepts_[-1][...] = logits
    proba, log_proba = model.predict_proba(X[:2]), model.predict_log_proba(X[:2])
    expected = np.full_like(proba, -np.inf)
    np.log(proba, out=expected, where=proba > 0)
    np.testing.assert_array_equal(log_proba, expected)
    np.testing.assert_array_equal(np.argmax(log_proba, axis=1), np.argmax(proba, axis=1))


# --------------------------------------------------------------------------- #
# L-BFGS: a validation set, a non-finite loss                                  #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_lbfgs_records_the_validation_score_of_every_iteration(cls):
    X = RNG.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(int) if cls is MLPClassifier else X @ [1.0, 2.0, 0.5, 0.0]
    model = cls(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=15, random_state=0)
    model.fit(X[:80], y[:80], X_val=X[80:], y_val=y[80:])
    assert len(model.validation_scores_) == len(model.validation_loss_curve_) == model.n_iter_
    assert model.validation_scores_[-1] == pytest.approx(model.score(X[80:], y[80:]),
                                                         rel=1e-12)
    # the same iterations as without a validation set
    plain = cls(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=15,
                random_state=0).fit(X[:80], y[:80])
    np.testing.assert_array_equal(plain.coefs_[0], model.coefs_[0])


NON_FINITE = r"^Solver produced non-finite parameter weights"


def _lbfgs_non_finite_cases():
    X = RNG.normal(size=(60, 4))
    y = X @ np.arange(1.0, 5.0)
    lbfgs = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5, random_state=0)
    return [
        pytest.param(MLPRegressor(alpha=1e308, **lbfgs), X, y, id="huge-alpha"),
        pytest.param(MLPRegressor(**lbfgs), X * 1e300, y, id="huge-inputs"),
        pytest.param(MLPClassifier(**lbfgs), X * 1e300, (y > 0).astype(int),
                     id="huge-inputs-classifier"),
        pytest.param(MLPRegressor(loss="poisson", **lbfgs), X * 1e3, np.abs(y) * 1e3,
                     id="exp-output-overflows"),
    ]


@pytest.mark.parametrize("model, X, y", _lbfgs_non_finite_cases())
def test_lbfgs_non_finite_loss_raises_the_stochastic_solvers_error(model, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=NON_FINITE):
            model.fit(X, y)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert all(np.isfinite(W).all() for W in model.coefs_ + model.intercepts_)


# --------------------------------------------------------------------------- #
# validation sets too small to score                                           #
# --------------------------------------------------------------------------- #
def _too_small_validation_cases():
    from sknet import AutoencoderTransformer, RecurrentRegressor

    X = RNG.normal(size=(40, 3))
    y = X @ [1.0, 2.0, 3.0]
    labels = np.arange(40) % 3
    fast = dict(hidden_layer_sizes=(3,), max_iter=3, early_stopping=True, random_state=0)
    return [
        pytest.param(MLPRegressor(**fast), X, y, X[:1], y[:1], "X_val has 1 sample",
                     id="regressor-one-row"),
        pytest.param(MLPClassifier(**fast), X, labels, X[:1], labels[:1],
                     "X_val has 1 sample", id="classifier-one-row"),
        pytest.param(MLPClassifier(**fast), X, labels, X[labels == 2], labels[labels == 2],
                     "only one class", id="classifier-one-class"),
        pytest.param(RecurrentRegressor(**fast), X, y, X[:1], y[:1], "X_val has 1 sample",
                     id="recurrent-one-row"),
        pytest.param(AutoencoderTransformer(n_components=2, **fast), X, None, X[:1], None,
                     "X_val has 1 sample", id="autoencoder-one-row"),
    ]


@pytest.mark.parametrize("model, X, y, X_val, y_val, message", _too_small_validation_cases())
def test_early_stopping_on_a_validation_set_too_small_to_score_is_refused(
        model, X, y, X_val, y_val, message):
    with pytest.raises(ValueError, match=message):
        if y is None:
            model.fit(X, X_val=X_val)
        else:
            model.fit(X, y, X_val=X_val, y_val=y_val)
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize("fraction", [0.05, 0.1])  # 1 and 2 of 20 rows held out
def test_a_split_of_one_validation_row_is_refused_as_by_scikit_learn(fraction):
    """scikit-learn refuses it from 1.7 on; sknet follows the current behaviour."""
    import sklearn

    X = RNG.normal(size=(20, 3))
    y = X @ [1.0, 2.0, 3.0]
    params = dict(hidden_layer_sizes=(3,), max_iter=3, early_stopping=True,
                  validation_fraction=fraction, random_state=0)
    outcomes = []
    for cls in (SKRegressor, MLPRegressor):
        try:
            cls(**params).fit(X, y)
            outcomes.append("fitted")
        except ValueError as exc:
            assert "validation set is too small" in str(exc)
            outcomes.append("refused")
    expected = "refused" if fraction == 0.05 else "fitted"
    assert outcomes[1] == expected
    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 7):
        assert outcomes[0] == expected


# --------------------------------------------------------------------------- #
# the perceptron's early stopping scores the true weights                      #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
def test_perceptron_early_stopping_scores_the_weights_it_ends_with(penalty):
    # The epoch early stopping ends at follows from the validation accuracy of
    # the model after each epoch, as predict computes it (the weights with
    # their scale): fits of 1, 2, ... epochs give those models.
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedShuffleSplit

    X, y = make_classification(300, 5, random_state=0, flip_y=0.1)
    X = X + 3.0  # an intercept far from 0: scaled and unscaled weights disagree
    params = dict(penalty=penalty, alpha=1e-2, early_stopping=True, random_state=0,
                  tol=1e-3)
    split = StratifiedShuffleSplit(test_size=0.1, random_state=0)
    _, val = next(split.split(np.zeros((len(y), 1)), y))
    best, count, expected = -np.inf, 0, None
    for n_epochs in range(1, 40):
        model = PerceptronClassifier(**params, max_iter=n_epochs,
                                     n_iter_no_change=1000).fit(X, y)
        score = model.score(X[val], y[val])
        count = count + 1 if score < best + params["tol"] else 0
        best = max(best, score)
        if count >= 3:
            expected = model
            break
    stopped = PerceptronClassifier(**params, max_iter=100, n_iter_no_change=3).fit(X, y)
    assert stopped.n_iter_ == expected.n_iter_
    np.testing.assert_array_equal(stopped.coef_, expected.coef_)
    # scikit-learn scores the unscaled weights, and stops elsewhere
    reference = SKPerceptron(**params, max_iter=100, n_iter_no_change=3).fit(X, y)
    assert reference.n_iter_ != stopped.n_iter_


# --------------------------------------------------------------------------- #
# BLAS threads                                                                 #
# --------------------------------------------------------------------------- #
def _blas_threads():
    from sknet._base import _blas_libraries, _threadpools

    return [lib.num_threads for lib in _blas_libraries(_threadpools())]


# Run in a fresh interpreter: once the main thread has set OpenBLAS's thread
# count (as the test session's fixture does), some OpenBLAS builds ignore the
# settings other threads make. Fit A runs in a thread, fit B in the main
# thread, which sets the count last.
OVERLAPPING_FITS = """
import json, sys, threading
import numpy as np
from sknet import MLPClassifier
from sknet._base import _blas_libraries, _threadpools

def blas_threads():
    return [lib.num_threads for lib in _blas_libraries(_threadpools())]

X = np.random.default_rng(0).normal(size=(30, 3))
y = np.arange(30) % 2
a_started, b_started, a_ended = threading.Event(), threading.Event(), threading.Event()
seen = {"start": blas_threads()}

def callback_a(model, history):  # A waits, inside its fit, until B has begun
    if history.n_iter == 1:
        seen["a"] = blas_threads()
        a_started.set()
        b_started.wait(20)

def callback_b(model, history):  # B waits, inside its fit, until A has ended
    if history.n_iter == 1:
        b_started.set()
        a_ended.wait(20)
        seen["b"] = blas_threads()

def fit(callback, before, after):
    if before is not None:
        before.wait(20)
    MLPClassifier(hidden_layer_sizes=(4,), solver=sys.argv[1], max_iter=3,
                  random_state=0, callbacks=[callback]).fit(X, y)
    if after is not None:
        after.set()

thread_a = threading.Thread(target=fit, args=(callback_a, None, a_ended))
thread_a.start()
fit(callback_b, a_started, None)  # B in the main thread: it ends last
thread_a.join(60)
seen["end"] = blas_threads()
print(json.dumps(seen))
"""


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fits_overlapping_in_threads_leave_the_blas_threads_as_they_were(solver):
    # Fit A begins, then B; A ends while B runs; then B ends (callbacks make
    # the order). Both hold BLAS to one thread (small products) while they run.
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([sys.executable, "-c", OVERLAPPING_FITS, solver], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    start = seen["start"]
    assert start and all(n == 2 for n in start)
    assert seen["a"] == seen["b"] == [1] * len(start)  # one thread while a fit runs
    assert seen["end"] == start


def test_blas_limits_of_overlapping_fits_are_counted():
    # The same order in one thread: A enters, B enters, A leaves, B leaves.
    from threadpoolctl import threadpool_limits

    from sknet._base import _blas_plan

    with threadpool_limits(2, user_api="blas"):
        start = _blas_threads()
        a, b = _blas_plan(True)[0](), _blas_plan(True)[0]()
        a.__enter__()
        b.__enter__()
        a.__exit__(None, None, None)
        assert _blas_threads() == [1] * len(start)  # B still runs
        b.__exit__(None, None, None)
        assert _blas_threads() == start


def _recorded_plans(monkeypatch):
    """The ``single`` argument (one BLAS thread for everything) of each coming fit's plan."""
    import sknet._base as base

    plans, plan = [], base._blas_plan
    monkeypatch.setattr(base, "_blas_plan", lambda single: plans.append(single) or plan(single))
    return plans


def test_lbfgs_chooses_blas_threads_by_the_stochastic_solvers_rule(monkeypatch):
    plans = _recorded_plans(monkeypatch)
    from threadpoolctl import threadpool_limits

    seen = []
    with threadpool_limits(2, user_api="blas"):
        start = _blas_threads()
        MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=3, random_state=0,
                      callbacks=[lambda model, history: seen.append(_blas_threads())]
                      ).fit(X_SMALL, Y_BINARY)
        assert _blas_threads() == start
    assert plans == [True]  # a small network: one BLAS thread
    assert seen and all(threads == [1] * len(start) for threads in seen)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_blas_is_held_to_one_thread_exactly_where_the_kernel_does_the_products(
        monkeypatch, solver):
    """On one OpenMP thread, the step's products below 16 million floating-point
    operations run in the compiled step, on one BLAS thread; from 16 million
    on, numpy's threaded BLAS does them. 200 rows of 400 inputs: 99 hidden
    units make 15.84 million, 100 make 16 million."""
    from threadpoolctl import threadpool_limits

    plans = _recorded_plans(monkeypatch)
    made = _recorded_workspaces(monkeypatch)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(200, 400)), np.arange(200) % 2
    with threadpool_limits(1, user_api="openmp"):
        for units in (99, 100):
            MLPClassifier(hidden_layer_sizes=(units,), solver=solver, batch_size=200,
                          max_iter=1, random_state=0).fit(X, y)
    assert [ws.parts for ws in made] == [1, 1]
    assert [ws.blas_in_kernel for ws in made] == plans == [True, False]


def test_a_recurrent_fit_holds_blas_to_one_thread_below_16_million_operations(monkeypatch):
    """The largest product of an LSTM step is the batch's input projection,
    ``2 * 200 rows * 4 gates * units * 50 steps * 4 features``: 15.68 million
    for 49 units, 16 million for 50."""
    import sknet._base as base
    from sknet import RecurrentRegressor

    plans = _recorded_plans(monkeypatch)
    monkeypatch.setattr(base, "_split_parts", lambda *args, **kwargs: 1)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(200, 50, 4)), rng.normal(size=200)
    for units in (49, 50):
        RecurrentRegressor(hidden_layer_sizes=(units,), cell="lstm", batch_size=200,
                           max_iter=1, random_state=0).fit(X, y)
    assert plans == [True, False]


# --------------------------------------------------------------------------- #
# steps split between OpenMP threads                                           #
# --------------------------------------------------------------------------- #
def _recorded_workspaces(monkeypatch):
    """The workspaces the dense networks of the coming fits make, in order."""
    from sknet._core.network import Network

    made, workspace = [], Network.workspace

    def recording(self, batch_size, fast_blas=False, threads=1):
        made.append(workspace(self, batch_size, fast_blas=fast_blas, threads=threads))
        return made[-1]

    monkeypatch.setattr(Network, "workspace", recording)
    return made


def _digits_part(n=400):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


@pytest.mark.skipif(openmp_threads() < 2, reason="needs sknet built with OpenMP, 2 threads")
@pytest.mark.parametrize("units", [50, 700])  # products below, and above, 16 million
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_a_dense_fit_splits_its_steps_between_the_openmp_threads(monkeypatch, solver, units):
    from threadpoolctl import threadpool_limits

    made = _recorded_workspaces(monkeypatch)
    seen = []
    X, y = _digits_part()
    with threadpool_limits(2, user_api="blas"):  # the suite runs with one BLAS thread
        MLPClassifier(hidden_layer_sizes=(units,), solver=solver, max_iter=2, random_state=0,
                      callbacks=[lambda model, history: seen.append(_blas_threads())]
                      ).fit(X, y)
    ws = made[0]
    rows = 200 if solver != "lbfgs" else X.shape[0]
    assert ws.blas_in_kernel
    assert ws.parts == min(openmp_threads(), rows // 16) >= 2
    # each part calls BLAS, which the fit holds to one thread meanwhile
    assert seen and all(threads == [1] * len(threads) for threads in seen)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_the_threads_a_fit_runs_on_do_not_change_its_result(monkeypatch, solver):
    """Three parts on three threads (or in turn without OpenMP), or in turn on one thread."""
    import sknet._base as base
    from sknet._core.network import Network
    from sknet._core.thread_choice import ThreadChoice

    monkeypatch.setattr(Network, "split_parts", lambda self, batch_size, threads=None: 3)
    made = _recorded_workspaces(monkeypatch)
    used, start = [], ThreadChoice.start
    monkeypatch.setattr(ThreadChoice, "start",
                        lambda self, rows: used.append(start(self, rows)) or used[-1])
    X, y = _digits_part()
    params = dict(hidden_layer_sizes=(30, 20), solver=solver, max_iter=4, batch_size=64,
                  alpha=1e-3, random_state=0)
    free = MLPClassifier(**params).fit(X, y)
    used_free, used[:] = set(used), []
    monkeypatch.setattr(base, "_threads_now", lambda parts: lambda: 1)
    held = MLPClassifier(**params).fit(X, y)
    assert [ws.parts for ws in made] == [3, 3]
    assert 3 in used_free and set(used) == {1}
    for a, b in zip(free.coefs_ + free.intercepts_, held.coefs_ + held.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert free.loss_ == held.loss_


@pytest.mark.parametrize("parts", [2, 1])
def test_lbfgs_takes_the_stochastic_solvers_blas_thread_rule(monkeypatch, parts):
    """Large products: one BLAS thread where the step splits between threads, else numpy's."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import sknet._base as base
    from sknet._core.network import Network

    if (os.cpu_count() or 1) < 2:
        pytest.skip("a BLAS of two threads needs two cores")
    monkeypatch.setattr(Network, "split_parts", lambda self, batch_size, threads=None: parts)
    seen, real = {}, base.fit_lbfgs

    def recording(*args, **kwargs):
        seen["blas"] = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
        seen["threads"] = kwargs["threads"]
        return real(*args, **kwargs)

    monkeypatch.setattr(base, "fit_lbfgs", recording)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(1000, 400)), rng.integers(3, size=1000)  # 2 n 400 40: 32 MFLOP
    with threadpool_limits(limits=2):
        MLPClassifier(hidden_layer_sizes=(40,), solver="lbfgs", max_iter=2).fit(X, y)
    assert seen["threads"] == parts
    if parts > 1:  # every BLAS held to one thread: the parts' threads do the products
        assert seen["blas"] == {1}
    else:  # numpy's BLAS keeps its threads (scipy's own, if it has one, is held to one)
        assert 2 in seen["blas"]


def test_overlapping_fits_run_their_steps_on_one_thread_each():
    from sknet._base import _blas_plan, _threads_now

    threads_now = _threads_now(2)
    with _blas_plan(True)[0]():  # this fit alone
        assert threads_now() == 2
        with _blas_plan(True)[0]():  # another fit begins in another thread
            assert threads_now() == 1
        assert threads_now() == 2
    assert _threads_now(1) is None  # nothing to share


@pytest.mark.skipif(openmp_threads() < 1, reason="sknet built without OpenMP")
def test_threadpoolctl_and_omp_num_threads_limit_the_split():
    from threadpoolctl import threadpool_limits

    from sknet._base import _split_parts
    from sknet._core.activations import get_activation
    from sknet._core.network import Network

    net = Network([64, 100, 10], [get_activation("relu"), get_activation("softmax")])
    X = np.zeros((2, 64))
    with threadpool_limits(1, user_api="openmp"):
        assert openmp_threads() == 1
        assert _split_parts(net, X, 200, gathered=True) == 1
    assert _split_parts(net, X, 200, gathered=False) == min(openmp_threads(), 12)
    import scipy.sparse as sparse
    # numpy's products: sparse rows, and Fortran-ordered batches that are not gathered
    assert _split_parts(net, sparse.csr_matrix((2, 64)), 200, gathered=True) == 1
    assert _split_parts(net, np.asfortranarray(X), 200, gathered=False) == 1
    assert _split_parts(net, np.asfortranarray(X), 200, gathered=True) > 1


FORKED_FITS = """
import json, multiprocessing, warnings
from sklearn.datasets import load_digits
from sknet import MLPClassifier
from sknet._core._dense_fast import in_forked_child, openmp_threads

warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True)
X = X / 16.0

def fit(seed):
    model = MLPClassifier(max_iter=3, random_state=seed).fit(X, y)
    return openmp_threads(), in_forked_child(), float(model.score(X, y))

if __name__ == "__main__":
    parent = fit(0)  # the OpenMP threads start here
    with multiprocessing.get_context("fork").Pool(2) as pool:
        children = pool.map(fit, [1, 2])
    print(json.dumps({"parent": parent, "children": children}))
"""


@pytest.mark.skipif(openmp_threads() < 2 or not hasattr(os, "fork"),
                    reason="needs OpenMP with 2 threads, and fork")
def test_processes_forked_after_a_threaded_fit_fit_on_one_thread(tmp_path):
    # GNU OpenMP's threads do not survive a fork: a child that opened a
    # parallel region of two threads would wait for ever (the timeout).
    import json
    import subprocess
    import sys

    script = tmp_path / "forked_fits.py"
    script.write_text(FORKED_FITS)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["parent"][:2] == [openmp_threads(), False]
    assert [child[:2] for child in seen["children"]] == [[1, True], [1, True]]
    assert all(child[2] > 0.5 for child in seen["children"])

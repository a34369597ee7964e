"""MLPClassifier and MLPRegressor: drop-in parity with scikit-learn, new features, bad input."""

import copy
import inspect
import pickle
import re
import warnings
from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.datasets import (
    load_diabetes,
    load_digits,
    load_iris,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SKClassifier
from sklearn.neural_network import MLPRegressor as SKRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import AutoencoderTransformer, MLPClassifier, MLPRegressor, register_activation
from sknet._core import Network, Workspace, get_activation
from sknet._core.initializers import initialize_layer, resolve_initializer

# scikit-learn 1.7 added sample weights to its MLP and loss functions, and the
# Poisson loss: comparisons that need them run from that version on.
SKLEARN_1_7 = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 7)
requires_sklearn_1_7 = pytest.mark.skipif(
    not SKLEARN_1_7, reason="scikit-learn < 1.7 has no MLP sample weights or Poisson loss")


pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(8,), max_iter=30)


# --------------------------------------------------------------------------- #
# data                                                                         #
# --------------------------------------------------------------------------- #
@lru_cache(maxsize=None)
def _data(kind):
    if kind == "multiclass":
        return make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    if kind == "binary":
        return make_classification(120, 6, random_state=1)
    if kind == "multilabel":
        return make_multilabel_classification(120, 6, n_classes=3, random_state=0)
    if kind == "counts":
        X, y = make_regression(120, 6, random_state=2)
        return X, np.random.default_rng(0).poisson(np.exp(y / y.std()))
    X, y = make_regression(120, 6, n_targets=2, random_state=0)
    y = y / 100.0
    return (X, y) if kind == "multioutput" else (X, y[:, 0])


def _fitted(kind="multiclass", **params):
    X, y = _data(kind)
    est = MLPClassifier if kind in ("multiclass", "binary", "multilabel") else MLPRegressor
    return est(random_state=0, **{**SMALL, **params}).fit(X, y)


def _public_attrs(est):
    return {k for k in vars(est) if k.endswith("_") and not k.startswith("_")}


# --------------------------------------------------------------------------- #
# drop-in: constructor, attributes, methods                                     #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("ours, theirs", [
    (MLPClassifier, SKClassifier),
    pytest.param(MLPRegressor, SKRegressor, marks=requires_sklearn_1_7),  # 1.7 added `loss`
])
def test_constructor_has_scikit_learns_parameters_in_place(ours, theirs):
    mine = list(inspect.signature(ours).parameters.values())
    ref = list(inspect.signature(theirs).parameters.values())
    for i, p in enumerate(ref):
        assert (mine[i].name, mine[i].kind) == (p.name, p.kind), i
        assert mine[i].default == p.default, p.name
    # what sknet adds comes after, keyword-only, and keeps scikit-learn's behaviour
    assert all(q.kind is inspect.Parameter.KEYWORD_ONLY for q in mine[len(ref):])


def test_regressor_takes_loss_first():
    assert list(inspect.signature(MLPRegressor).parameters)[0] == "loss"
    assert MLPRegressor("poisson").loss == "poisson"


@pytest.mark.parametrize("kind, params", [
    ("multiclass", {}), ("multiclass", {"solver": "sgd", "early_stopping": True}),
    ("multiclass", {"solver": "lbfgs"}), ("multilabel", {}), ("regression", {}),
    ("regression", {"early_stopping": True}), ("regression", {"solver": "lbfgs"}),
])
def test_fitted_attributes_include_scikit_learns(kind, params):
    X, y = _data(kind)
    ref = (SKClassifier if kind != "regression" else SKRegressor)(
        random_state=0, **SMALL, **params).fit(X, y)
    ours = _fitted(kind, **params)
    missing = _public_attrs(ref) - _public_attrs(ours)
    assert not missing
    for name in _public_attrs(ref):
        assert type(getattr(ours, name)) is type(getattr(ref, name)) or \
            np.isscalar(getattr(ref, name)), name


@pytest.mark.parametrize("est", [MLPClassifier, MLPRegressor])
def test_partial_fit_exists_only_for_stochastic_solvers(est):
    assert hasattr(est(solver="adam"), "partial_fit")
    assert hasattr(est(solver="sgd"), "partial_fit")
    assert not hasattr(est(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError):
        _ = est(solver="lbfgs").partial_fit


@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_classifier_methods(kind):
    X, y = _data(kind)
    clf = _fitted(kind)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)


# --------------------------------------------------------------------------- #
# drop-in: sknet reproduces scikit-learn's fit                                  #
# --------------------------------------------------------------------------- #
def _assert_same_fit(ref, ours, rtol=1e-9, atol=1e-12):
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    assert (ours.n_iter_, ours.t_) == (ref.n_iter_, ref.t_)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=rtol)
    if hasattr(ref, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol, atol=atol)
    for name in ("best_loss_", "validation_scores_", "best_validation_score_"):
        if getattr(ref, name, None) is None:
            assert getattr(ours, name, None) is None, name
        else:
            np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=rtol,
                                       err_msg=name)
    if hasattr(ref, "classes_"):
        np.testing.assert_array_equal(ours.classes_, ref.classes_)


PARITY = [
    ("adam-multiclass", "multiclass", {}),
    ("adam-binary", "binary", {}),
    ("adam-multilabel", "multilabel", {}),
    ("sgd-momentum", "multiclass", dict(solver="sgd", nesterovs_momentum=False,
                                        learning_rate_init=0.01)),
    ("sgd-nesterov", "multiclass", dict(solver="sgd", learning_rate_init=0.01)),
    ("sgd-invscaling", "multiclass", dict(solver="sgd", learning_rate="invscaling",
                                          learning_rate_init=0.1)),
    ("sgd-adaptive", "multiclass", dict(solver="sgd", learning_rate="adaptive",
                                        learning_rate_init=0.05, tol=1e-2,
                                        n_iter_no_change=2, max_iter=60)),
    ("early-stopping-binary", "binary", dict(early_stopping=True)),
    ("early-stopping-multiclass", "multiclass", dict(early_stopping=True)),
    ("early-stopping-multilabel", "multilabel", dict(early_stopping=True)),
    # tol=0: a score equal to the best resets the count, as in scikit-learn (stops at 62)
    ("early-stopping-tol-0", "multiclass", dict(early_stopping=True, tol=0.0, max_iter=300)),
    ("logistic", "multiclass", dict(activation="logistic")),
    ("tanh", "multiclass", dict(activation="tanh")),
    ("identity", "binary", dict(activation="identity")),
    ("batch-16-no-shuffle", "multiclass", dict(batch_size=16, shuffle=False)),
    ("batch-1", "multiclass", dict(batch_size=1, max_iter=5)),
    ("adam-ignores-sgd-schedules", "multiclass", dict(learning_rate="invscaling")),
    ("two-hidden-layers", "multiclass", dict(hidden_layer_sizes=(7, 5))),
    ("reg-adam", "regression", {}),
    ("reg-sgd", "regression", dict(solver="sgd", learning_rate_init=0.01)),
    ("reg-early-stopping", "regression", dict(early_stopping=True)),
    ("reg-poisson", "counts", dict(loss="poisson")),
]
PARITY_PARAMS = [pytest.param(kind, params, id=name,
                              marks=requires_sklearn_1_7 if "poisson" in name else ())
                 for name, kind, params in PARITY]


@pytest.mark.parametrize("kind, params", PARITY_PARAMS)
def test_reproduces_scikit_learns_fit(kind, params):
    X, y = _data(kind)
    ref_cls = SKRegressor if kind in ("regression", "counts") else SKClassifier
    ref = ref_cls(random_state=0, **{**SMALL, **params}).fit(X, y)
    _assert_same_fit(ref, _fitted(kind, **params))


@requires_sklearn_1_7
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("high", [2.0, 0.9], ids=["weights-to-2", "weights-below-1"])
def test_reproduces_scikit_learns_weighted_fit(kind, early_stopping, high):
    X, y = _data(kind)
    sw = np.random.default_rng(0).uniform(0.0, high, X.shape[0])
    ref_cls, ours_cls = ((SKRegressor, MLPRegressor) if kind == "regression"
                         else (SKClassifier, MLPClassifier))
    params = dict(SMALL, random_state=0, early_stopping=early_stopping)
    ref = ref_cls(**params).fit(X, y, sample_weight=sw)
    _assert_same_fit(ref, ours_cls(**params).fit(X, y, sample_weight=sw))


@requires_sklearn_1_7
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_reproduces_scikit_learns_fit_on_sparse_rows_with_tiny_weights(kind):
    # CSR rows train in the Python step loop; with weights of at most 1e-3 a
    # batch's weights sum to less than 1, and it still steps (only a batch
    # whose weights sum to 0 moves nothing)
    X, y = _data(kind)
    X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    sw = np.random.default_rng(0).uniform(0.0, 1e-3, X.shape[0])
    ref_cls, ours_cls = ((SKRegressor, MLPRegressor) if kind == "regression"
                         else (SKClassifier, MLPClassifier))
    params = dict(SMALL, random_state=0, batch_size=50)
    ref = ref_cls(**params).fit(X, y, sample_weight=sw)
    _assert_same_fit(ref, ours_cls(**params).fit(X, y, sample_weight=sw))


@pytest.mark.parametrize("params", [
    dict(solver="adam"),
    dict(solver="sgd", learning_rate="adaptive"),
    dict(solver="adam", early_stopping=True),
    dict(solver="adam", alpha=0.0),
], ids=["adam", "sgd-adaptive", "early-stopping", "no-penalty"])
def test_multi_output_squared_error_is_reported_and_stopped_on_as_scikit_learn(params):
    """scikit-learn reports the squared error of k outputs as its mean over the outputs,
    1/k of the objective whose gradient both libraries follow: the loss curve, tol's
    stopping rule and the adaptive rate all see that value, so the fits stop at the
    same epoch with the same weights."""
    X, Y = _data("multioutput")
    params = dict(hidden_layer_sizes=(8,), max_iter=300, tol=1e-3, learning_rate_init=0.01,
                  random_state=0, **params)
    ref = SKRegressor(**params).fit(X, Y)
    assert ref.n_iter_ < params["max_iter"]  # the stopping rule ended the fit
    _assert_same_fit(ref, MLPRegressor(**params).fit(X, Y))


@requires_sklearn_1_7
def test_weighted_multi_output_squared_error_is_scikit_learns():
    X, Y = _data("multioutput")
    sw = np.random.default_rng(0).uniform(0.0, 2.0, X.shape[0])
    params = dict(hidden_layer_sizes=(8,), max_iter=300, tol=1e-3, learning_rate_init=0.01,
                  random_state=0)
    ref = SKRegressor(**params).fit(X, Y, sample_weight=sw)
    assert ref.n_iter_ < params["max_iter"]
    _assert_same_fit(ref, MLPRegressor(**params).fit(X, Y, sample_weight=sw))


def test_multi_output_lbfgs_gets_scikit_learns_loss_value():
    """scikit-learn hands L-BFGS the mean over the outputs with the objective's
    gradient; sknet hands it the same pair, so the iterations agree."""
    X, Y = _data("multioutput")
    ref = SKRegressor(random_state=0, solver="lbfgs", **SMALL).fit(X, Y)
    _assert_same_fit(ref, _fitted("multioutput", solver="lbfgs"), rtol=1e-6, atol=1e-8)


def test_multi_output_validation_loss_is_the_half_mean_squared_error():
    X, Y = _data("multioutput")
    Xv, Yv = X[:20] + 0.1, Y[:20]
    reg = _fitted("multioutput").fit(X, Y, X_val=Xv, y_val=Yv)
    assert reg.validation_loss_curve_[-1] == pytest.approx(
        0.5 * np.mean((reg.predict(Xv) - Yv) ** 2), rel=1e-9)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_reproduces_scikit_learns_lbfgs(kind):
    X, y = _data(kind)
    ref_cls = SKRegressor if kind == "regression" else SKClassifier
    ref = ref_cls(random_state=0, solver="lbfgs", **SMALL).fit(X, y)
    _assert_same_fit(ref, _fitted(kind, solver="lbfgs"), rtol=1e-6, atol=1e-8)


def test_reproduces_scikit_learns_float32_fit():
    X, y = _data("multiclass")
    X = X.astype(np.float32)
    ref = SKClassifier(random_state=0, **SMALL).fit(X, y)
    ours = MLPClassifier(random_state=0, **SMALL).fit(X, y)
    _assert_same_fit(ref, ours, rtol=1e-4, atol=1e-5)


def test_one_hot_targets_are_kept_as_bytes_and_train_as_floats():
    from sknet._base import _compact_targets

    onehot = np.eye(3, dtype=np.int64)[[0, 2, 1, 2]]
    assert _compact_targets(onehot, np.float32).dtype == np.uint8
    assert _compact_targets(np.array([[0], [2]]), np.float32).dtype == np.float32
    assert _compact_targets(np.array([[0.0], [1.0]]), np.float64).dtype == np.float64
    # a regressor given 0/1 integer targets trains exactly as on float targets
    X, y = _data("binary")
    as_int = MLPRegressor(random_state=0, **SMALL).fit(X, y.astype(np.int64))
    as_float = MLPRegressor(random_state=0, **SMALL).fit(X, y.astype(np.float64))
    _assert_same_fit(as_float, as_int, rtol=0, atol=0)


@pytest.mark.parametrize("params", [{}, dict(solver="sgd", learning_rate="invscaling",
                                             learning_rate_init=0.05)])
def test_reproduces_scikit_learns_partial_fit(params):
    X, y = _data("multiclass")
    ref = SKClassifier(random_state=0, hidden_layer_sizes=(8,), **params)
    ours = MLPClassifier(random_state=0, hidden_layer_sizes=(8,), **params)
    for chunk in np.array_split(np.arange(len(y)), 4):
        ref.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
        ours.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
        _assert_same_fit(ref, ours)


def test_reproduces_scikit_learns_multilabel_partial_fit():
    # the first call's label binarizer learns the label columns from y itself
    X, Y = _data("multilabel")
    ref = SKClassifier(random_state=0, hidden_layer_sizes=(8,))
    ours = MLPClassifier(random_state=0, hidden_layer_sizes=(8,))
    for chunk in np.array_split(np.arange(len(Y)), 3):
        ref.partial_fit(X[chunk], Y[chunk], classes=[0, 1, 2])
        ours.partial_fit(X[chunk], Y[chunk], classes=[0, 1, 2])
        _assert_same_fit(ref, ours)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_reproduces_scikit_learns_regressor_partial_fit():
    X, y = _data("regression")
    ref, ours = SKRegressor(random_state=0, **SMALL), MLPRegressor(random_state=0, **SMALL)
    for chunk in np.array_split(np.arange(len(y)), 3):
        ref.partial_fit(X[chunk], y[chunk])
        ours.partial_fit(X[chunk], y[chunk])
    _assert_same_fit(ref, ours)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_reproduces_scikit_learns_warm_start(solver):
    X, y = _data("multiclass")
    params = dict(random_state=0, hidden_layer_sizes=(8,), max_iter=10, warm_start=True,
                  solver=solver)
    ref, ours = SKClassifier(**params), MLPClassifier(**params)
    for _ in range(3):
        ref.fit(X, y)
        ours.fit(X, y)
    assert len(ours.loss_curve_) == 30
    _assert_same_fit(ref, ours)


@pytest.mark.parametrize("method", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("sizes", [(9,), (8, 4), ()])
def test_changed_hidden_layer_sizes_are_refused_where_training_continues(method, sizes):
    """partial_fit and a warm start go on training the fitted layers: sizes the
    fitted weights do not have raise an error naming both, and change nothing.
    (scikit-learn trains the old layers on for a width and fails inside numpy
    for another depth.)"""
    X, y = _data("multiclass")
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                          warm_start=method == "warm_start")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    before = copy.deepcopy(model.__dict__)
    model.set_params(hidden_layer_sizes=sizes)
    call = model.partial_fit if method == "partial_fit" else model.fit
    with pytest.raises(ValueError, match=r"fitted network \(hidden_layer_sizes=\(8,\)\), "
                                         rf"but .* give hidden_layer_sizes={re.escape(repr(sizes))}"):
        call(X, y)
    assert model.n_iter_ == before["n_iter_"] and model.t_ == before["t_"]
    for W, W0 in zip(model.coefs_ + model.intercepts_,
                     before["coefs_"] + before["intercepts_"], strict=True):
        np.testing.assert_array_equal(W, W0)
    model.set_params(hidden_layer_sizes=[8])  # the same layers, as a list
    call(X, y)
    assert model.t_ > before["t_"]  # trained on


def test_edited_coefs_change_predictions_and_warm_starts():
    """coefs_ and intercepts_ are the model: edits show in predictions and warm starts."""
    X, y = _data("multiclass")
    clf = _fitted(warm_start=True, max_iter=5)
    ref = SKClassifier(random_state=0, **{**SMALL, "warm_start": True, "max_iter": 5}).fit(X, y)
    clf.coefs_[-1][...] = 0.0
    clf.intercepts_[-1][...] = [0.0, 3.0, 0.0]
    assert np.all(clf.predict(X) == clf.classes_[1])
    for model in (clf, ref):
        model.coefs_[0] *= 0.5
        model.coefs_[-1][...] = 0.1
        model.intercepts_[-1][...] = 0.0
    _assert_same_fit(ref.fit(X, y), clf.fit(X, y))


def test_convergence_warning_at_max_iter():
    X, y = _data("multiclass")
    for solver in ("adam", "sgd", "lbfgs"):
        with pytest.warns(ConvergenceWarning):
            MLPClassifier(solver=solver, max_iter=2, random_state=0).fit(X, y)


def test_batch_size_larger_than_the_data_warns_and_is_clipped():
    X, y = _data("multiclass")
    with pytest.warns(UserWarning, match="clipped"):
        clf = MLPClassifier(batch_size=1000, random_state=0, **SMALL).fit(X, y)
    ref = SKClassifier(batch_size=1000, random_state=0, **SMALL)
    with pytest.warns(UserWarning, match="clipped"):
        ref.fit(X, y)
    _assert_same_fit(ref, clf)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_weights_raise_scikit_learns_value_error():
    rng = np.random.RandomState(0)
    X = rng.randn(50, 3) * 1e3
    y = X.sum(axis=1) * 1e3
    reg = MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        reg.fit(X, y)
    # sknet keeps the last finite epoch (scikit-learn keeps non-finite weights)
    assert all(np.isfinite(c).all() for c in reg.coefs_)
    assert reg.n_iter_ == len(reg.loss_curve_) and np.isfinite(reg.loss_curve_).all()


# --------------------------------------------------------------------------- #
# Ctrl-C                                                                       #
# --------------------------------------------------------------------------- #
def _interrupting_tanh(registry, at_call):
    """A numpy tanh that raises KeyboardInterrupt on its ``at_call``-th forward call.

    ``at_call=0`` never interrupts.
    """
    calls = []

    def tanh(z):
        calls.append(1)
        if len(calls) == at_call:
            raise KeyboardInterrupt
        return np.tanh(z, out=z)

    name = f"tanh_interrupt_{at_call}_{len(registry)}"
    registry.append(name)
    register_activation(name, tanh, lambda a, g: g * (1 - a * a))
    return name


def test_ctrl_c_warns_and_keeps_the_last_completed_epoch(activation_registry):
    X, y = _data("multiclass")  # 120 samples, 3 batches of 40: call 8 is inside epoch 3
    name = _interrupting_tanh(activation_registry, at_call=8)
    clf = MLPClassifier(activation=name, batch_size=40, random_state=0, **SMALL)
    with pytest.warns(UserWarning, match="interrupted"):
        assert clf.fit(X, y) is clf
    # the same numpy tanh, never interrupted (the built-in one is compiled,
    # and rounds differently by an ulp or so)
    plain = _interrupting_tanh(activation_registry, at_call=0)
    done = MLPClassifier(activation=plain, batch_size=40, random_state=0,
                         **{**SMALL, "max_iter": 2}).fit(X, y)
    assert clf.n_iter_ == len(clf.loss_curve_) == 2
    for a, b in zip(done.coefs_ + done.intercepts_, clf.coefs_ + clf.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_during_validation_keeps_counters_consistent(activation_registry):
    X, y = _data("binary")  # 108 train (3 batches of 36) + 12 validation: 4 calls per epoch
    name = _interrupting_tanh(activation_registry, at_call=8)  # epoch 2's validation
    clf = MLPClassifier(activation=name, batch_size=36, early_stopping=True,
                        random_state=0, **SMALL)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert clf.n_iter_ == len(clf.loss_curve_) == len(clf.validation_scores_) == 1
    assert clf.t_ == 108


# --------------------------------------------------------------------------- #
# the lecture's XOR                                                            #
# --------------------------------------------------------------------------- #
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, dtype=float)
XOR_Y = np.array([0, 1, 1, 0] * 5)


def test_a_single_linear_unit_cannot_separate_xor():
    # no hidden layer: one logistic unit, as the lecture's perceptron
    unit = MLPClassifier(hidden_layer_sizes=(), solver="lbfgs", random_state=0).fit(XOR_X, XOR_Y)
    assert unit.score(XOR_X, XOR_Y) <= 0.75
    # hidden layers without a nonlinearity are still one linear unit
    linear = MLPClassifier(hidden_layer_sizes=(4,), activation="identity", solver="lbfgs",
                           random_state=0).fit(XOR_X, XOR_Y)
    assert linear.score(XOR_X, XOR_Y) <= 0.75
    assert LogisticRegression().fit(XOR_X, XOR_Y).score(XOR_X, XOR_Y) <= 0.75


@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu"])
def test_one_small_hidden_layer_solves_xor(activation):
    clf = MLPClassifier(hidden_layer_sizes=(4,), activation=activation, solver="lbfgs",
                        random_state=1, max_iter=1000).fit(XOR_X, XOR_Y)
    assert clf.score(XOR_X, XOR_Y) == 1.0


# --------------------------------------------------------------------------- #
# accuracy against scikit-learn (means over seeds)                              #
# --------------------------------------------------------------------------- #
def _digits_accuracy(est_cls, seeds, **params):
    X, y = load_digits(return_X_y=True)
    scores = []
    for seed in seeds:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed)
        scores.append(est_cls(random_state=seed, **params).fit(Xtr, ytr).score(Xte, yte))
    return np.mean(scores)


def _diabetes_r2(est_cls, seeds, scale_y=False, **params):
    X, y = load_diabetes(return_X_y=True)
    scores = []
    for seed in seeds:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed)
        mean, std = (ytr.mean(), ytr.std()) if scale_y else (0.0, 1.0)
        model = make_pipeline(StandardScaler(), est_cls(random_state=seed, **params))
        model.fit(Xtr, (ytr - mean) / std)
        scores.append(model.score(Xte, (yte - mean) / std))
    return np.mean(scores)


def test_digits_accuracy_small_network():
    params = dict(hidden_layer_sizes=(32,), max_iter=30)
    ours = _digits_accuracy(MLPClassifier, range(5), **params)
    ref = _digits_accuracy(SKClassifier, range(5), **params)
    assert ours >= ref - 0.005
    assert ours > 0.85


@pytest.mark.slow
def test_digits_accuracy_default_settings():
    ours = _digits_accuracy(MLPClassifier, range(5))
    ref = _digits_accuracy(SKClassifier, range(5))
    assert ours >= ref - 0.005
    assert ours > 0.95


def test_diabetes_r2_small_network():
    params = dict(hidden_layer_sizes=(20,), learning_rate_init=0.01, alpha=1.0, max_iter=100)
    ours = _diabetes_r2(MLPRegressor, range(5), scale_y=True, **params)
    ref = _diabetes_r2(SKRegressor, range(5), scale_y=True, **params)
    assert abs(ours - ref) <= 0.02
    assert ours > 0.3


@pytest.mark.slow
def test_diabetes_r2_max_iter_2000():
    ours = _diabetes_r2(MLPRegressor, range(5), max_iter=2000)
    ref = _diabetes_r2(SKRegressor, range(5), max_iter=2000)
    assert abs(ours - ref) <= 0.02


# --------------------------------------------------------------------------- #
# scikit-learn machinery                                                       #
# --------------------------------------------------------------------------- #
def test_pipeline_in_grid_search_with_two_jobs():
    X, y = load_iris(return_X_y=True)
    grid = {"mlpclassifier__hidden_layer_sizes": [(5,), (10,)],
            "mlpclassifier__alpha": [1e-4, 1e-1],
            "mlpclassifier__activation": ["relu", "tanh"]}
    ours = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, learning_rate_init=0.02,
                                                             random_state=0)),
                        grid, cv=3, n_jobs=2).fit(X, y)
    ref = GridSearchCV(make_pipeline(StandardScaler(), SKClassifier(max_iter=60, learning_rate_init=0.02,
                                                           random_state=0)),
                       grid, cv=3, n_jobs=1).fit(X, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"])
    assert ours.best_params_ == ref.best_params_
    assert ours.score(X, y) > 0.8


@pytest.mark.parametrize("params", [{}, {"dropout": 0.3}])
def test_same_random_state_same_model(params):
    a, b = _fitted(**params), _fitted(**params)
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(u, v)
    assert a.loss_curve_ == b.loss_curve_
    X, y = _data("multiclass")
    c = MLPClassifier(random_state=np.random.RandomState(0), **SMALL, **params).fit(X, y)
    np.testing.assert_array_equal(c.coefs_[0], a.coefs_[0])
    d = MLPClassifier(random_state=1, **SMALL, **params).fit(X, y)
    assert not np.array_equal(d.coefs_[0], a.coefs_[0])


def test_the_largest_seed_is_valid_and_draws_as_scikit_learns():
    X, y = _data("multiclass")
    ours = MLPClassifier(random_state=2**32 - 1, max_iter=1).fit(X, y)
    ref = SKClassifier(random_state=2**32 - 1, max_iter=1).fit(X, y)
    np.testing.assert_allclose(ours.coefs_[0], ref.coefs_[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_pickle_round_trip(kind):
    X, y = _data(kind)
    est = _fitted(kind)
    copy_ = pickle.loads(pickle.dumps(est))
    if kind == "multiclass":
        np.testing.assert_array_equal(copy_.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(copy_.predict(X), est.predict(X))
    # training continues identically from the copy
    est.partial_fit(X, y)
    copy_.partial_fit(X, y)
    np.testing.assert_array_equal(copy_.coefs_[0], est.coefs_[0])


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_float32_in_float32_out(kind):
    X, y = _data(kind)
    cls = MLPClassifier if kind == "multiclass" else MLPRegressor
    est = cls(random_state=0, **SMALL).fit(X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    out = est.predict_proba(X.astype(np.float32)) if kind == "multiclass" else \
        est.predict(X.astype(np.float32))
    assert out.dtype == np.float32
    est64 = cls(random_state=0, **SMALL).fit(X, y)
    assert all(c.dtype == np.float64 for c in est64.coefs_)
    assert est64.predict(X).dtype == (np.float64 if kind == "regression" else y.dtype)
    # other numeric input is converted to float64, as scikit-learn converts it
    est_int = cls(random_state=0, **SMALL).fit(np.round(X * 10).astype(np.int64), y)
    assert est_int.coefs_[0].dtype == np.float64


@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_matrix])
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_sparse_input_gives_the_dense_model(kind, fmt):
    X, y = _data(kind)
    X = X * (np.random.default_rng(0).random(X.shape) < 0.5)
    cls = MLPClassifier if kind == "multiclass" else MLPRegressor
    dense = cls(random_state=0, **SMALL).fit(X, y)
    sparse = cls(random_state=0, **SMALL).fit(fmt(X), y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sparse.predict(fmt(X)), dense.predict(X), rtol=1e-10)


# --------------------------------------------------------------------------- #
# what sknet adds                                                              #
# --------------------------------------------------------------------------- #
def _hand_forward(est, X, hidden_fns, out="softmax"):
    a = X
    for W, b, f in zip(est.coefs_[:-1], est.intercepts_[:-1], hidden_fns, strict=True):
        a = f(a @ W + b)
    z = a @ est.coefs_[-1] + est.intercepts_[-1]
    if out == "identity":
        return z
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_per_layer_activations():
    X, y = _data("multiclass")
    clf = _fitted(hidden_layer_sizes=(6, 5), activation=["relu", "tanh"])
    proba = _hand_forward(clf, X, [lambda z: np.maximum(z, 0), np.tanh])
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-10)
    # a list naming one activation for every layer is that activation
    same = _fitted(hidden_layer_sizes=(6, 5), activation=["tanh", "tanh"])
    np.testing.assert_array_equal(same.coefs_[0], _fitted(hidden_layer_sizes=(6, 5),
                                                          activation="tanh").coefs_[0])


def test_leaky_relu_slope_and_elu_alpha_are_used():
    X, y = _data("multiclass")
    clf = _fitted(activation="leaky_relu", leaky_relu_slope=0.2)
    proba = _hand_forward(clf, X, [lambda z: np.where(z < 0, 0.2 * z, z)])
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-10)
    clf = _fitted(activation="elu", elu_alpha=2.0)
    proba = _hand_forward(clf, X, [lambda z: np.where(z < 0, 2.0 * np.expm1(np.minimum(z, 0)), z)])
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-10)


def test_dropout_acts_in_training_only():
    X, y = _data("multiclass")
    clf = _fitted(dropout=0.5, hidden_layer_sizes=(16,))
    p1, p2 = clf.predict_proba(X), clf.predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    # prediction is the plain forward pass: no mask, no rescaling
    np.testing.assert_allclose(p1, _hand_forward(clf, X, [lambda z: np.maximum(z, 0)]),
                               rtol=1e-10)
    plain = _fitted(hidden_layer_sizes=(16,))
    assert not np.allclose(clf.coefs_[0], plain.coefs_[0])
    # a rate per hidden layer; zero everywhere is no dropout at all
    none = _fitted(hidden_layer_sizes=(16,), dropout=[0.0])
    np.testing.assert_array_equal(none.coefs_[0], plain.coefs_[0])


def _masked_layer(activation, rate, n=100_000, width=4):
    """A layer whose pre-activations are N(0, 1), passed through training-mode dropout."""
    X = np.random.default_rng(0).standard_normal((n, width))
    kind = "alpha_dropout" if activation == "selu" else "dropout"
    net = Network([width, width, 1], [get_activation(activation), get_activation("identity")],
                  dropout=[rate], dropout_kind=kind)
    net.coefs[0][...] = np.eye(width)
    ws = Workspace(net, n)
    net.forward(X, ws, training=True, rng=np.random.default_rng(1))
    return ws.inputs[1], get_activation(activation).forward(X.copy())


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_alpha_dropout_keeps_selus_mean_and_variance(rate):
    dropped, clean = _masked_layer("selu", rate)
    assert abs(clean.mean()) < 0.02 and abs(clean.var() - 1) < 0.02  # selu's fixed point
    assert abs(dropped.mean()) < 0.02
    assert abs(dropped.var() - 1) < 0.03


def test_the_estimator_picks_alpha_dropout_after_selu_layers():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(4, 4, 4), activation=["selu", "relu", "selu"],
                        dropout=[0.1, 0.2, 0.0])
    clf._check_params()
    y2 = clf._encode_targets(y, True, False, None)
    net = clf._build_network([4, 4, 4], 4, y2.shape[1], np.float64, True,
                             np.random.RandomState(0))
    kinds = [None if d is None else d.kind for d in net.dropouts]
    assert kinds == ["alpha_dropout", "dropout", None, None]


def test_inverted_dropout_keeps_the_mean_and_drops_the_rate():
    dropped, clean = _masked_layer("relu", 0.3)
    active = clean > 0
    assert abs(np.mean(dropped[active] == 0) - 0.3) < 0.01
    assert dropped.mean() == pytest.approx(clean.mean(), rel=0.02)
    np.testing.assert_allclose(dropped[dropped != 0], clean[dropped != 0] / 0.7, rtol=1e-12)


def test_l1_drives_weights_towards_zero():
    X, y = make_regression(200, 10, n_informative=2, noise=1.0, random_state=0)
    y = y / y.std()
    common = dict(hidden_layer_sizes=(10,), max_iter=300, learning_rate_init=0.01,
                  random_state=0)
    plain = MLPRegressor(**common).fit(X, y)
    sparse = MLPRegressor(l1=0.5, **common).fit(X, y)
    small = lambda m: np.mean(np.abs(m.coefs_[0]) < 1e-2)  # noqa: E731
    assert small(plain) < 0.1 and small(sparse) > 0.5
    assert sparse.score(X, y) > 0.95


@pytest.mark.parametrize("scheme, variance", [
    ("glorot_uniform", lambda fi, fo: 2 / (fi + fo)), ("glorot_normal", lambda fi, fo: 2 / (fi + fo)),
    ("he_uniform", lambda fi, fo: 2 / fi), ("he_normal", lambda fi, fo: 2 / fi),
    ("lecun_uniform", lambda fi, fo: 1 / fi), ("lecun_normal", lambda fi, fo: 1 / fi),
    ("sklearn", lambda fi, fo: 6 / (fi + fo) / 3),  # U(+-sqrt(6 / (fi + fo)))
])
def test_weight_init_variances(scheme, variance):
    fi, fo = 300, 200
    W, b = initialize_layer(scheme, fi, fo, np.random.RandomState(0), np.float64, "relu")
    assert W.shape == (fi, fo) and b.shape == (fo,)
    assert W.var() == pytest.approx(variance(fi, fo), rel=0.03)
    assert abs(W.mean()) < 0.01 * np.sqrt(variance(fi, fo)) * 10
    if scheme.endswith("uniform") or scheme == "sklearn":
        assert np.abs(W).max() <= np.sqrt(3 * variance(fi, fo))


def test_sklearn_init_uses_factor_two_for_logistic():
    W, _ = initialize_layer("sklearn", 30, 20, np.random.RandomState(0), np.float64, "logistic")
    assert np.abs(W).max() <= np.sqrt(2 / 50) and np.abs(W).max() > 0.9 * np.sqrt(2 / 50)


def test_auto_init_picks_by_activation():
    assert resolve_initializer("auto", "relu") == "he_normal"
    assert resolve_initializer("auto", "leaky_relu") == "he_normal"
    assert resolve_initializer("auto", "selu") == "lecun_normal"
    assert resolve_initializer("auto", "tanh") == "glorot_uniform"
    assert resolve_initializer("auto", "logistic") == "glorot_uniform"


def test_estimator_draws_the_requested_init():
    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier(weight_init="he_normal", learning_rate_init=1e-12, max_iter=1,
                        random_state=0).fit(X, y)
    assert clf.coefs_[0].var() == pytest.approx(2 / 64, rel=0.05)
    np.testing.assert_allclose(clf.intercepts_[0], 0.0, atol=1e-9)


def _identity_net_by_hand(X, y, params, lrs, alpha, clip=None, norms=None):
    """Full-batch gradient descent on a one-hidden-layer linear network, by hand.

    ``norms``, a list, receives each step's gradient norm before clipping.
    """
    W1, b1, W2, b2 = [p.copy() for p in params]
    n, losses = X.shape[0], []
    y = y.reshape(-1, 1)
    for lr in lrs:
        H = X @ W1 + b1
        P = H @ W2 + b2
        losses.append(0.5 * np.mean((P - y) ** 2) + 0.5 * alpha * (np.sum(W1 ** 2) + np.sum(W2 ** 2)) / n)
        d2 = (P - y) / n
        d1 = d2 @ W2.T
        grads = [X.T @ d1 + alpha * W1 / n, d1.sum(0), H.T @ d2 + alpha * W2 / n, d2.sum(0)]
        norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
        if norms is not None:
            norms.append(norm)
        if clip is not None and norm > clip:
            grads = [g * clip / norm for g in grads]
        W1, b1, W2, b2 = [p - lr * g for p, g in zip((W1, b1, W2, b2), grads, strict=True)]
    return [W1, b1, W2, b2], losses


@pytest.mark.parametrize("decay_rate, clip_norm", [(0.5, None), (0.8, 0.9)])
def test_exponential_schedule_and_clip_norm_by_hand(decay_rate, clip_norm):
    X, y = _data("regression")
    start = [np.full((6, 3), 0.1) * np.arange(3), np.array([0.1, -0.2, 0.0]),
             np.array([[0.3], [-0.5], [0.2]]), np.array([0.05])]
    reg = MLPRegressor(hidden_layer_sizes=(3,), activation="identity", solver="sgd",
                       momentum=0.0, batch_size=X.shape[0], shuffle=False, alpha=0.01,
                       learning_rate="exponential", decay_rate=decay_rate,
                       learning_rate_init=0.1, clip_norm=clip_norm, max_iter=1,
                       warm_start=True, n_iter_no_change=100, random_state=0).fit(X, y)
    layers = [reg.coefs_[0], reg.intercepts_[0], reg.coefs_[1], reg.intercepts_[1]]
    for dst, src in zip(layers, start, strict=True):
        dst[...] = src
    reg.set_params(max_iter=5).fit(X, y)
    # the warm start goes on decaying from the first fit's one epoch
    rates = [0.1 * decay_rate ** (e + 1) for e in range(5)]
    norms = []
    expected, losses = _identity_net_by_hand(X, y, start, rates, 0.01, clip_norm, norms)
    if clip_norm is not None:  # the first gradient is clipped, the later ones are not
        assert norms[0] > clip_norm and max(norms[1:]) < clip_norm
    got = [reg.coefs_[0], reg.intercepts_[0], reg.coefs_[1], reg.intercepts_[1]]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(reg.loss_curve_[-5:], losses, rtol=1e-10)


def test_adam_exponential_with_decay_one_is_constant():
    X, y = _data("multiclass")
    ref = SKClassifier(random_state=0, **SMALL).fit(X, y)
    _assert_same_fit(ref, _fitted(learning_rate="exponential", decay_rate=1.0))
    decayed = _fitted(learning_rate="exponential", decay_rate=0.5)
    assert decayed.loss_curve_[-1] > ref.loss_curve_[-1]


def test_user_validation_set_replaces_the_split_under_early_stopping():
    # Training and validation data from one draw, so that the epochs score
    # differently: the best epoch is neither the first nor the last.
    X, y = make_classification(200, 6, n_informative=4, n_classes=3, random_state=0,
                               flip_y=0.15)
    X, Xv, y, yv = X[:120], X[120:], y[:120], y[120:]
    clf = MLPClassifier(random_state=0, early_stopping=True, learning_rate_init=0.01,
                        **{**SMALL, "max_iter": 60}).fit(X, y, X_val=Xv, y_val=yv)
    assert clf.t_ == clf.n_iter_ * X.shape[0]  # every sample trains: no internal split
    scores = clf.validation_scores_
    assert len(scores) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(scores)
    assert scores[0] < max(scores) and scores[-1] < max(scores)  # the check can fail
    # the best epoch's weights are restored: its validation score is the model's
    assert clf.score(Xv, yv) == clf.best_validation_score_


def test_user_validation_set_is_only_monitored_without_early_stopping():
    X, y = _data("multiclass")
    Xv, yv = make_classification(40, 6, n_informative=4, n_classes=3, random_state=5)
    plain = _fitted()
    clf = _fitted().fit(X, y, X_val=Xv, y_val=yv)
    for a, b in zip(plain.coefs_, clf.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.validation_scores_[-1] == clf.score(Xv, yv)
    assert clf.validation_loss_curve_[-1] == pytest.approx(log_loss(yv, clf.predict_proba(Xv)))
    assert clf.best_validation_score_ is None


def test_regressor_validation_loss_curve_is_the_half_squared_error():
    X, y = _data("regression")
    Xv, yv = X[:20] + 0.1, y[:20]
    reg = _fitted("regression").fit(X, y, X_val=Xv, y_val=yv)
    assert reg.validation_loss_curve_[-1] == pytest.approx(0.5 * np.mean((reg.predict(Xv) - yv) ** 2))
    assert reg.validation_scores_[-1] == pytest.approx(reg.score(Xv, yv))


def test_internal_split_also_records_the_validation_loss():
    clf = _fitted(early_stopping=True)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_
    assert all(v > 0 for v in clf.validation_loss_curve_)


# --------------------------------------------------------------------------- #
# bad input                                                                    #
# --------------------------------------------------------------------------- #
def _same(a, b):
    """Deep equality for estimator state (arrays, lists, dicts, small objects)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return type(a) is type(b) and _same(vars(a), vars(b))
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return a == b


def _nan_X():
    X = _data("multiclass")[0].copy()
    X[3, 2] = np.nan
    return X


def _inf_X():
    X = _data("multiclass")[0].copy()
    X[5, 0] = np.inf
    return X


X_MC, Y_MC = _data("multiclass")
CLASSIFIER_BAD_CALLS = {
    "nan": ({}, lambda e: e.fit(_nan_X(), Y_MC), ValueError, "NaN"),
    "inf": ({}, lambda e: e.fit(_inf_X(), Y_MC), ValueError, "infinity"),
    "nan-partial-fit": ({}, lambda e: e.partial_fit(_nan_X(), Y_MC), ValueError, "NaN"),
    "short-y": ({}, lambda e: e.fit(X_MC, Y_MC[:-1]), ValueError, "inconsistent"),
    "1d-X": ({}, lambda e: e.fit(X_MC[:, 0], Y_MC), ValueError, "2D"),
    "3d-X": ({}, lambda e: e.fit(X_MC[:, :, None], Y_MC), ValueError, "dim 3"),
    "early-stopping-y_val-one-class": (
        {"early_stopping": True},
        lambda e: e.fit(X_MC, Y_MC, X_val=X_MC[Y_MC == 0], y_val=Y_MC[Y_MC == 0]),
        ValueError, "y_val holds only one class"),
    "early-stopping-X_val-one-row": (
        {"early_stopping": True}, lambda e: e.fit(X_MC, Y_MC, X_val=X_MC[:1], y_val=Y_MC[:1]),
        ValueError, "X_val has 1 sample"),
    "unknown-activation": ({"activation": "rleu"}, lambda e: e.fit(X_MC, Y_MC), ValueError,
                           "^(?!.*'softmax').*'activation'.*Did you mean 'relu'"),  # lists hidden ones only
    "unknown-solver": ({"solver": "adma"}, lambda e: e.fit(X_MC, Y_MC), ValueError,
                       "'solver'.*Did you mean 'adam'"),
    "unknown-layer-activation": ({"hidden_layer_sizes": (8, 4), "activation": ["relu", "tahn"]},
                                 lambda e: e.fit(X_MC, Y_MC), ValueError, "Did you mean 'tanh'"),
    "zero-layer": ({"hidden_layer_sizes": (8, 0)}, lambda e: e.fit(X_MC, Y_MC), ValueError,
                   "hidden_layer_sizes"),
    "negative-layer": ({"hidden_layer_sizes": -3}, lambda e: e.fit(X_MC, Y_MC), ValueError,
                       "hidden_layer_sizes"),
    "dropout-lbfgs": ({"solver": "lbfgs", "dropout": 0.2}, lambda e: e.fit(X_MC, Y_MC),
                      ValueError, "dropout.*lbfgs"),
    "clip-lbfgs": ({"solver": "lbfgs", "clip_norm": 1.0}, lambda e: e.fit(X_MC, Y_MC),
                   ValueError, "clip_norm.*lbfgs"),
    "negative-random-state": ({"random_state": -1}, lambda e: e.fit(X_MC, Y_MC), ValueError,
                              r"'random_state'.*\[0, 4294967295\]"),
    "random-state-past-2**32-1": ({"random_state": 2**32}, lambda e: e.fit(X_MC, Y_MC),
                                  ValueError, r"'random_state'.*\[0, 4294967295\]"),
    "zero-weights": ({}, lambda e: e.fit(X_MC, Y_MC, sample_weight=np.zeros(len(Y_MC))),
                     ValueError, "weight.*zero|zero.*weight"),
    "negative-weights": ({}, lambda e: e.fit(X_MC, Y_MC, sample_weight=-np.ones(len(Y_MC))),
                         ValueError, "Negative"),
    "new-class-partial-fit": ({}, lambda e: e.partial_fit(X_MC, Y_MC + 1), ValueError, "class"),
    "warm-start-other-classes": ({"warm_start": True}, lambda e: e.fit(X_MC, Y_MC % 2),
                                 ValueError, "class"),
    "X_val-features": ({}, lambda e: e.fit(X_MC, Y_MC, X_val=X_MC[:, :3], y_val=Y_MC),
                       ValueError, "features"),
    "X_val-alone": ({}, lambda e: e.fit(X_MC, Y_MC, X_val=X_MC), ValueError,
                    "Pass both X_val and y_val, or neither"),
    "y_val-alone": ({}, lambda e: e.fit(X_MC, Y_MC, y_val=Y_MC), ValueError,
                    "Pass both X_val and y_val, or neither"),
    "y_val-unseen": ({}, lambda e: e.fit(X_MC, Y_MC, X_val=X_MC, y_val=Y_MC + 7), ValueError,
                     "y_val"),
    "predict-features": ({}, lambda e: e.predict(X_MC[:, :4]), ValueError, "features"),
    "predict-nan": ({}, lambda e: e.predict_proba(_nan_X()), ValueError, "NaN"),
    "early-stopping-partial-fit": ({"early_stopping": True}, lambda e: e.partial_fit(X_MC, Y_MC),
                                   ValueError, "early_stopping"),
}


@pytest.mark.parametrize("params, call, error, match", CLASSIFIER_BAD_CALLS.values(),
                         ids=list(CLASSIFIER_BAD_CALLS))
def test_rejected_call_leaves_a_fitted_classifier_as_it_was(params, call, error, match):
    clf = _fitted()
    old = {k: clf.get_params()[k] for k in params}
    clf.set_params(**params)
    before = copy.deepcopy(vars(clf))
    with pytest.raises(error, match=match):
        call(clf)
    assert _same(vars(clf), before)
    clf.set_params(**old)


UNFITTED_BAD_CALLS = {k: v for k, v in CLASSIFIER_BAD_CALLS.items()
                      if k != "warm-start-other-classes"}  # a valid first fit


@pytest.mark.parametrize("params, call, error, match", UNFITTED_BAD_CALLS.values(),
                         ids=list(UNFITTED_BAD_CALLS))
def test_rejected_call_leaves_an_unfitted_classifier_unfitted(params, call, error, match):
    clf = MLPClassifier(random_state=0, **SMALL).set_params(**params)
    before = copy.deepcopy(vars(clf))
    with pytest.raises(error):  # NotFittedError is a ValueError too
        call(clf)
    assert _same(vars(clf), before)


X_R, Y_R = _data("regression")
REGRESSOR_BAD_CALLS = {
    "nan-y": ({}, lambda e: e.fit(X_R, np.r_[np.nan, Y_R[1:]]), "NaN"),
    "poisson-negative": ({"loss": "poisson"}, lambda e: e.fit(X_R, Y_R), "non-negative"),
    "unknown-loss": ({"loss": "squared_eror"}, lambda e: e.fit(X_R, Y_R), "squared_error"),
    "partial-fit-outputs": ({}, lambda e: e.partial_fit(X_R, np.c_[Y_R, Y_R]), "outputs"),
    "validation-too-small": ({"early_stopping": True}, lambda e: e.fit(X_R[:8], Y_R[:8]),
                             "validation"),
}


@pytest.mark.parametrize("params, call, match", REGRESSOR_BAD_CALLS.values(),
                         ids=list(REGRESSOR_BAD_CALLS))
def test_rejected_call_leaves_a_fitted_regressor_as_it_was(params, call, match):
    reg = _fitted("regression")
    reg.set_params(**params)
    before = copy.deepcopy(vars(reg))
    with pytest.raises(ValueError, match=match):
        call(reg)
    assert _same(vars(reg), before)


def test_too_few_samples_for_the_classifier_validation_split():
    with pytest.raises(ValueError, match="validation"):
        MLPClassifier(early_stopping=True, **SMALL).fit(X_MC[:10], Y_MC[:10] % 2)


def test_early_stopping_with_validation_fraction_zero_names_the_parameter():
    with pytest.raises(ValueError, match="validation_fraction"):
        MLPRegressor(early_stopping=True, validation_fraction=0.0, **SMALL).fit(X_R, Y_R)



# sknet's own parameters, at their documented ranges' edges: (refused, taken).
OWN_RANGES = {
    "l1": ([-1e-300, np.nan, np.inf], [0.0, 1e300]),
    "decay_rate": ([0.0, 1.0000001, 2.0, np.nan], [1e-300, 1.0]),
    "dropout": ([-1e-300, 1.0, np.nan], [0.0, 0.999]),
    "clip_norm": ([0.0, -1.0, np.nan, np.inf], [None, 1e-300]),
    "leaky_relu_slope": ([0.0, -0.1, np.nan, np.inf], [1e-300, 5.0]),
    "elu_alpha": ([0.0, -1.0, np.nan, np.inf], [1e-300, 5.0]),
    "transfer_lr_factor": ([-1e-300, np.nan, np.inf], [0.0, 5.0]),
    "n_transfer_layers": ([0, -1, 1.5], [None, 1]),
    "freeze_transferred": ([1, "yes"], [False, True]),
}


@pytest.mark.parametrize("name", list(OWN_RANGES))
def test_own_parameters_refuse_values_outside_their_range_by_name(name):
    """As scikit-learn does for every parameter, whether or not the fit uses it
    (the transfer parameters without ``transfer_from``)."""
    refused, taken = OWN_RANGES[name]
    for value in refused:
        with pytest.raises((ValueError, TypeError), match=f"'{name}'"):
            MLPClassifier(**SMALL, **{name: value}).fit(X_MC, Y_MC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for value in taken:
            MLPClassifier(**SMALL, **{name: value}).fit(X_MC, Y_MC)


@pytest.mark.parametrize("name, value, interval", [
    ("l1", -1.0, "[0, inf)"), ("decay_rate", 2.0, "(0, 1]"), ("dropout", 1.0, "[0, 1)"),
    ("clip_norm", 0.0, "(0, inf)"), ("elu_alpha", -1.0, "(0, inf)")])
def test_own_parameter_errors_state_the_documented_range(name, value, interval):
    # the ranges the docstring gives: non-negative, (0, 1], [0, 1), positive
    with pytest.raises(ValueError) as info:
        MLPClassifier(**SMALL, **{name: value}).fit(X_MC, Y_MC)
    assert str(info.value) == (f"The {name!r} parameter must be in the range {interval}; "
                               f"got {value!r}.")


@pytest.mark.parametrize("name, values", [("activation", ["relu", "tanh", "relu"]),
                                          ("activation", ["relu"]),
                                          ("dropout", [0.1, 0.2, 0.3])])
def test_a_per_layer_list_must_name_every_hidden_layer(name, values):
    with pytest.raises(ValueError, match=rf"The '{name}' parameter has {len(values)} entries "
                                         r"but the network has 2 hidden layers"):
        MLPClassifier(**{**SMALL, "hidden_layer_sizes": (4, 3)}, **{name: values}).fit(
            X_MC, Y_MC)


def test_a_mini_batch_whose_weights_are_all_zero_is_skipped():
    """scikit-learn's MLP divides by zero here; sknet skips the batch's update."""
    X, y = _data("multiclass")
    sw = np.ones(len(y))
    sw[:40] = 0.0  # the whole first batch (no shuffling, batches of 40)
    params = dict(random_state=0, batch_size=40, shuffle=False, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    rest = MLPClassifier(**params).fit(X[40:], y[40:])  # the same model without that batch
    for a, b in zip(rest.coefs_ + rest.intercepts_, clf.coefs_ + clf.intercepts_, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    # the skipped batch contributes zero loss to the epoch mean over all 120 samples
    np.testing.assert_allclose(clf.loss_curve_, np.array(rest.loss_curve_) * 80 / 120,
                               rtol=1e-12)


def test_blas_vector_updates_train_the_same_model_as_numpy_ones(monkeypatch):
    """The loop's vector updates go through BLAS where no thread pools can
    compete (a small network trains with one thread); numpy's give the same model.
    No BLAS thread limit outlives a fit."""
    from contextlib import nullcontext

    import sknet._base as base

    X, y = _data("multiclass")
    params = dict(hidden_layer_sizes=(7,), max_iter=15, alpha=1e-3, random_state=0)
    plans, plan = [], base._blas_plan
    monkeypatch.setattr(base, "_blas_plan", lambda single: plans.append(single) or plan(single))
    fast = MLPClassifier(**params).fit(X, y)
    assert plans == [True] and plan(True)[1]
    pools = base._threadpools()
    with pools.limit(limits=2, user_api="blas"):
        before = [lib.num_threads for lib in pools.lib_controllers]
        with pytest.raises(TypeError):  # a fit that fails after choosing its threads
            MLPClassifier(**params, callbacks=[1]).fit(X, y)
        assert [lib.num_threads for lib in pools.lib_controllers] == before
    monkeypatch.setattr(base, "_blas_plan", lambda single: (nullcontext, False))
    plain = MLPClassifier(**params).fit(X, y)
    _assert_same_fit(plain, fast, rtol=1e-9, atol=1e-12)


def test_scipy_blas_is_told_apart_from_numpys_by_its_package_folder():
    from types import SimpleNamespace

    from sknet._base import _scipy_own_blas

    def libs(*paths):
        return SimpleNamespace(lib_controllers=[SimpleNamespace(user_api="blas", filepath=p)
                                                for p in paths])

    wheels = libs("/env/site-packages/numpy.libs/libscipy_openblas64_-1.so",
                  "/env/site-packages/scipy.libs/libscipy_openblas-2.so")
    assert _scipy_own_blas(wheels) == "/env/site-packages/scipy.libs/libscipy_openblas-2.so"
    mac = libs("/env/site-packages/numpy/.dylibs/libscipy_openblas64_.dylib",
               "/env/site-packages/scipy/.dylibs/libscipy_openblas.dylib")
    assert _scipy_own_blas(mac) == "/env/site-packages/scipy/.dylibs/libscipy_openblas.dylib"
    assert _scipy_own_blas(libs("/opt/conda/lib/libopenblasp-r0.3.so")) is None
    # scipy's library the only one: numpy's calls go to it too, so it is shared
    assert _scipy_own_blas(libs("/env/site-packages/scipy.libs/libscipy_openblas-2.so")) is None


@pytest.mark.parametrize("y, classes", [
    (np.array([3, 1, 3, 3]), None),
    (np.array(["b", "a", "c", "a", "c"]), None),
    (np.array([0.0, 2.0, 2.0]), [0, 1, 2]),  # partial_fit: a class not in y
    (np.array([1, 1, 1]), [0, 1]),
    (np.array([[1, 0, 1], [0, 1, 1], [0, 0, 1]]), None),  # multilabel rows
])
def test_targets_are_one_hot_as_label_binarizer_makes_them(y, classes):
    from sklearn.preprocessing import LabelBinarizer

    clf = MLPClassifier()
    clf._label_binarizer = LabelBinarizer().fit(y if classes is None else classes)
    clf.classes_ = clf._label_binarizer.classes_
    Y = clf._one_hot(y)
    assert Y.dtype == np.uint8
    np.testing.assert_array_equal(Y, clf._label_binarizer.transform(y))


@pytest.mark.parametrize("name", ["softmax", "exp", "step"])
@pytest.mark.parametrize("make", [
    lambda a: MLPClassifier((3,), activation=a, max_iter=2),
    lambda a: MLPClassifier((3, 3), activation=["relu", a], max_iter=2),
    lambda a: AutoencoderTransformer(n_components=2, hidden_layer_sizes=(3,), activation=a,
                                     max_iter=2),
])
def test_output_only_activations_are_refused_in_hidden_layers(name, make):
    X, y = load_iris(return_X_y=True)
    model = make(name)
    with pytest.raises(ValueError, match=f"{name}.*output activation.*hidden layers"):
        model.fit(X, y)
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize("callbacks", [5, "print", [print, 5]])
def test_callbacks_that_are_not_callables_name_the_parameter(callbacks):
    X, y = load_iris(return_X_y=True)
    model = MLPClassifier((3,), max_iter=2, callbacks=callbacks)
    with pytest.raises(TypeError, match="callbacks must be"):
        model.fit(X, y)
    assert not hasattr(model, "coefs_")


def test_complex_and_sparse_sample_weights_are_refused():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="Complex data not supported in sample_weight"):
        MLPClassifier((3,), max_iter=2).fit(X, y, sample_weight=np.ones(len(y)) * (1 + 1j))
    with pytest.raises(TypeError, match="sample_weight.*not a sparse matrix"):
        MLPClassifier((3,), max_iter=2).fit(X, y,
                                            sample_weight=sp.csr_matrix(np.ones((1, len(y)))))


def _step_sizes(train, model, X, y, calls):
    """Norm of the weight change made by each of ``calls`` calls of ``train(X, y)``."""
    sizes, before = [], None
    for _ in range(calls):
        train(X, y)
        now = np.concatenate([W.ravel() for W in model.coefs_])
        if before is not None:
            sizes.append(np.linalg.norm(now - before))
        before = now.copy()
    return sizes


def test_exponential_decay_goes_on_across_partial_fit_calls_and_warm_starts():
    X, y = make_regression(100, 4, random_state=0)
    y = y / y.std()
    params = dict(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, learning_rate="exponential",
                  decay_rate=0.5, learning_rate_init=0.01, batch_size=100, random_state=0)
    # one full-batch step per call, at lr_init * 0.5 ** (calls so far): the steps
    # shrink geometrically (a rate restarting each call would keep them level)
    inc = MLPRegressor(**params)
    sizes = _step_sizes(inc.partial_fit, inc, X, y, 25)
    assert sizes[-1] < 1e-5 * sizes[0]
    warm = MLPRegressor(max_iter=1, warm_start=True, **params)
    sizes = _step_sizes(warm.fit, warm, X, y, 25)
    assert sizes[-1] < 1e-5 * sizes[0]


def test_warm_start_with_early_stopping_returns_the_best_weights_of_both_fits():
    # The second fit never beats the first one's best validation score: sknet
    # keeps the first fit's best weights. scikit-learn trains its copy of the
    # best weights in place and returns the second fit's last epoch (listed in
    # docs/differences.rst).
    X, y = _data("multiclass")
    params = dict(random_state=0, early_stopping=True, warm_start=True,
                  **{**SMALL, "max_iter": 200})
    ours, ref = MLPClassifier(**params).fit(X, y), SKClassifier(**params).fit(X, y)
    _assert_same_fit(ref, ours)
    best = [W.copy() for W in ours.coefs_ + ours.intercepts_]
    ours.set_params(max_iter=15).fit(X, y)
    ref.set_params(max_iter=15).fit(X, y)
    assert max(ours.validation_scores_[-ours.n_iter_:]) < ours.best_validation_score_
    for a, b in zip(best, ours.coefs_ + ours.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(ref.coefs_[0], best[0], rtol=0, atol=1e-6)  # the last epoch

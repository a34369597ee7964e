"""PerceptronClassifier: the lecture's rule, scikit-learn's Perceptron, and the compiled loop.

Expected values come from three independent places: the lecture's worked
update (by hand), scikit-learn's compiled Perceptron (same data, order and
parameters), and a plain per-sample loop written here from the rule's
definition (one sample at a time, in Python).
"""

import copy
import re
import threading
import time
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import Perceptron as SkPerceptron
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import sknet._core.perceptron as core
from sknet._core import Network, get_activation, get_loss
from sknet._mlp import MLPClassifier
from sknet._perceptron import Perceptron, PerceptronClassifier

SKLEARN_1_7 = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 7)

MAX_INT = np.iinfo(np.int32).max


def _data(n=300, n_features=8, n_classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=n_features, n_informative=5,
                               n_redundant=1, n_classes=n_classes, random_state=seed)
    return X, y


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# --------------------------------------------------------------------------- #
# a plain per-sample loop, written from the rule's definition                  #
# --------------------------------------------------------------------------- #
def xorshift_fisher_yates(n, seed):
    """Fisher-Yates over arange(n) with a 32-bit xorshift(13, 17, 5), draws mod 2**31."""
    state, ind = seed or 1, list(range(n))
    for i in range(n - 1):
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        j = i + (state % 2 ** 31) % (n - i)
        ind[i], ind[j] = ind[j], ind[i]
    return np.array(ind)


def binary_shuffle_seed(random_state):
    """The seed scikit-learn's binary fit draws: after the dataset's own seed."""
    rng = np.random.RandomState(random_state)
    rng.randint(1, MAX_INT)
    return rng.randint(MAX_INT)


def plain_loop(X, y01, epochs, *, eta0=1.0, sample_weight=None, alpha=0.0,
               decay=1.0, seed=None):
    """The perceptron rule, one sample at a time (L2 shrink when alpha > 0)."""
    dense = X.toarray() if sp.issparse(X) else X
    t = np.where(y01 > 0, 1.0, -1.0)
    sw = np.ones(len(t)) if sample_weight is None else sample_weight
    w, b = np.zeros(dense.shape[1]), 0.0
    order = np.arange(len(t))
    perm = None if seed is None else xorshift_fisher_yates(len(t), seed)
    for _ in range(epochs):
        if perm is not None:
            order = order[perm]
        for i in order:
            margin = t[i] * (np.dot(w, dense[i]) + b)
            if alpha:
                w = w * (1.0 - eta0 * alpha)
            if margin <= 0 and sw[i] != 0:
                u = (eta0 * t[i]) * sw[i]
                w = w + dense[i] * u
                b = b + u * decay
    return w, b


# --------------------------------------------------------------------------- #
# the lecture                                                                  #
# --------------------------------------------------------------------------- #
def test_lecture_worked_update_is_reproduced_exactly():
    """eta = 0.1, y - y_hat = 1, x = (1, 0, 1): the updates are 0.1, 0.0, 0.1."""
    x = np.array([[1.0, 0.0, 1.0]])
    network = Network([3, 1], [get_activation("step")])
    y_hat = network.predict(x)[0, 0]  # threshold output of the untrained unit
    assert y_hat == 0.0  # so y - y_hat = 1 for the target y = 1

    clf = PerceptronClassifier(eta0=0.1, shuffle=False)
    clf.partial_fit(x, [1], classes=[0, 1])
    assert clf.coef_[0].tolist() == [0.1, 0.0, 0.1]
    assert clf.intercept_.tolist() == [0.1]

    # y = y_hat: no update
    clf.partial_fit(x, [1])
    assert clf.coef_[0].tolist() == [0.1, 0.0, 0.1]
    # y - y_hat = -1 (score 0.2 > 0 for a sample of class 0): w decreases by 0.1 x
    clf.partial_fit([[1.0, 1.0, 0.0]], [0])
    assert clf.coef_[0].tolist() == [0.1 - 0.1, 0.0 - 0.1, 0.1]
    assert clf.intercept_.tolist() == [0.1 - 0.1]


def test_step_activation_and_perceptron_criterion_are_registered_in_the_core():
    step = get_activation("step")
    z = np.array([[-1.0, 0.0, 0.5, 2.5]])
    assert step.forward(z.copy()).tolist() == [[0.0, 0.0, 1.0, 1.0]]
    grad = np.array([[0.3, -0.2, 0.1, 1.0]])
    assert step.backward(z, grad.copy()).tolist() == grad.tolist()  # straight through

    loss = get_loss("perceptron")
    Y = np.array([[1.0], [0.0], [1.0], [0.0], [1.0]])
    P = np.array([[0.5], [0.5], [0.0], [-2.0], [-1.5]])  # right, wrong, tie, right, wrong
    assert loss.gradient(Y, P).ravel().tolist() == [0.0, 1.0, -1.0, 0.0, -1.0]
    assert loss.value(Y, P, None) == pytest.approx((0 + 0.5 + 0 + 0 + 1.5) / 5)
    weights = np.array([1.0, 1.0, 1.0, 1.0, 3.0])
    assert loss.value(Y, P, weights) == pytest.approx((0.5 + 3 * 1.5) / 7)

    # batch size 1, identity output: the gradient step is the rule's update
    x, eta = np.array([[2.0, -1.0]]), 0.5
    net = Network([2, 1], [get_activation("identity")])
    net.coefs[0][...] = [[0.25], [1.0]]  # score 0.5 - 1.0 < 0 for a positive sample
    _, grad, _ = net.loss_and_gradient(x, np.array([[1.0]]), loss)
    g_coef, g_intercept = net.views(grad)
    np.testing.assert_array_equal(-eta * g_coef[0].ravel(), eta * 1.0 * x[0])
    assert -eta * g_intercept[0][0] == eta


# --------------------------------------------------------------------------- #
# scikit-learn's Perceptron, weight for weight                                 #
# --------------------------------------------------------------------------- #
SK_CASES = [
    {},
    {"eta0": 0.3},
    {"fit_intercept": False},
    {"penalty": "l2", "alpha": 0.01},
    {"penalty": "l1", "alpha": 0.001, "max_iter": 8},
    {"penalty": "elasticnet", "alpha": 0.001, "l1_ratio": 0.4, "max_iter": 8},
    {"class_weight": "balanced"},
    {"early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 2},
    {"tol": None, "max_iter": 15},
    {"tol": 0.3},  # a tolerance that decides the stopping epoch (the mean objective's)
    {"random_state": 7},
]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("params", SK_CASES,
                         ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "default")
def test_weights_match_scikit_learn(params, shuffle, n_classes):
    if params.get("penalty") == "l2" and shuffle and n_classes > 2 and not SKLEARN_1_7:
        pytest.skip("scikit-learn < 1.7 trains a shuffled, penalized one-vs-rest fit "
                    "differently; sknet follows the current behaviour")
    X, y = _data(n_classes=n_classes)
    sw = np.random.default_rng(1).uniform(0.2, 2.0, len(y)) if "eta0" in params else None
    theirs = _quiet_fit(SkPerceptron(shuffle=shuffle, **params), X, y, sample_weight=sw)
    ours = _quiet_fit(PerceptronClassifier(shuffle=shuffle, stop_on_no_mistakes=False,
                                           **params), X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-10, atol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_default_weights_are_bit_identical_to_scikit_learn():
    X, y = _data(n=400, n_features=10, n_classes=4, seed=3)
    theirs = _quiet_fit(SkPerceptron(), X, y)
    ours = _quiet_fit(Perceptron(), X, y)
    np.testing.assert_array_equal(ours.coef_, theirs.coef_)
    np.testing.assert_array_equal(ours.intercept_, theirs.intercept_)
    np.testing.assert_array_equal(ours.decision_function(X), theirs.decision_function(X))


def test_partial_fit_warm_start_and_initial_weights_match_scikit_learn():
    X, y = _data()
    a, b = SkPerceptron(), PerceptronClassifier()
    for part in np.array_split(np.arange(len(y)), 3):
        a.partial_fit(X[part], y[part], classes=[0, 1, 2])
        b.partial_fit(X[part], y[part], classes=[0, 1, 2])
    np.testing.assert_array_equal(b.coef_, a.coef_)
    assert (b.t_, b.n_iter_) == (a.t_, a.n_iter_)

    a = _quiet_fit(SkPerceptron(warm_start=True, max_iter=3), X, y)
    b = _quiet_fit(PerceptronClassifier(warm_start=True, max_iter=3), X, y)
    _quiet_fit(a, X[:150], y[:150])
    _quiet_fit(b, X[:150], y[:150])
    np.testing.assert_array_equal(b.coef_, a.coef_)

    coef = np.random.default_rng(0).normal(size=(3, X.shape[1]))
    icpt = np.array([0.5, -0.5, 0.25])
    given = coef.copy()
    a = _quiet_fit(SkPerceptron(), X, y, coef_init=coef.copy(), intercept_init=icpt.copy())
    b = _quiet_fit(PerceptronClassifier(), X, y, coef_init=coef, intercept_init=icpt)
    np.testing.assert_array_equal(b.coef_, a.coef_)
    np.testing.assert_array_equal(b.intercept_, a.intercept_)
    np.testing.assert_array_equal(coef, given)  # the caller's array is not written to

    # two classes: one unit, whose initial weights scikit-learn also takes as a vector of
    # n_features (or a 1 x n_features matrix) and whose intercept as a scalar
    binary = y == y[0]
    for coef_init in (coef[0], coef[:1]):
        a = _quiet_fit(SkPerceptron(), X, binary, coef_init=coef_init.copy(), intercept_init=0.5)
        b = _quiet_fit(PerceptronClassifier(), X, binary, coef_init=coef_init,
                       intercept_init=0.5)
        np.testing.assert_array_equal(b.coef_, a.coef_)
        np.testing.assert_array_equal(b.intercept_, a.intercept_)


def test_convergence_warning_as_scikit_learn():
    X, y = _data(seed=5)
    with pytest.warns(ConvergenceWarning, match="Maximum number of iteration"):
        SkPerceptron(max_iter=2).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="Maximum number of iteration"):
        PerceptronClassifier(max_iter=2).fit(X, y)


# --------------------------------------------------------------------------- #
# stopping: the lecture's "until no errors are made"                           #
# --------------------------------------------------------------------------- #
def _separable(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    score = X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + 0.3
    keep = np.abs(score) > 0.5  # a margin, so the rule converges quickly
    return X[keep], (score[keep] > 0).astype(int)


def test_separable_data_reaches_zero_errors_and_stops_before_max_iter_even_with_tol_none():
    X, y = _separable()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = PerceptronClassifier(tol=None, max_iter=1000).fit(X, y)
    assert clf.score(X, y) == 1.0
    assert clf.n_iter_ < 1000
    assert clf.t_ == clf.n_iter_ * len(y) + 1
    # scikit-learn goes on to max_iter; the weights cannot have moved after that epoch
    theirs = SkPerceptron(tol=None, max_iter=1000).fit(X, y)
    assert theirs.n_iter_ == 1000
    np.testing.assert_array_equal(clf.coef_, theirs.coef_)
    np.testing.assert_array_equal(clf.intercept_, theirs.intercept_)


def test_no_mistake_rule_can_be_switched_off():
    X, y = _separable()
    clf = PerceptronClassifier(tol=None, max_iter=50, stop_on_no_mistakes=False).fit(X, y)
    assert clf.n_iter_ == 50


def test_each_class_stops_on_its_own():
    X, y = _data(n=300, n_classes=3, seed=2)
    clf = _quiet_fit(PerceptronClassifier(stop_on_no_mistakes=False), X, y)
    epochs = []
    for k in range(3):  # each unit alone, as a binary problem with the same seed
        seed = np.random.RandomState(0).randint(MAX_INT, size=3)[k]
        one = _quiet_fit(SkPerceptron(random_state=int(seed)), X, (y == k).astype(int))
        epochs.append(one.n_iter_)
    assert clf.n_iter_ == max(epochs)
    assert len(set(epochs)) > 1  # the units really stopped at different epochs


def test_xor_never_reaches_an_epoch_without_mistakes_but_and_does():
    """On XOR no epoch is free of mistakes, so the lecture's stop never fires:
    every run goes to max_iter. The same fit on AND (separable)
    stops at an epoch without mistakes. A hidden layer learns XOR."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    for seed in range(5):
        for kwargs in ({}, {"eta0": 0.1}, {"weight_init": "random"}, {"shuffle": False}):
            params = dict(random_state=seed, tol=None, max_iter=60, **kwargs)
            xor = PerceptronClassifier(**params).fit(X, [0, 1, 1, 0])
            assert xor.n_iter_ == 60
            and_ = PerceptronClassifier(**params).fit(X, [0, 0, 0, 1])
            assert and_.n_iter_ < 60 and and_.score(X, [0, 0, 0, 1]) == 1.0
    # epoch by epoch, through the core: every XOR epoch makes updates
    network = Network([2, 1], [get_activation("step")])
    t = np.array([[-1], [1], [1], [-1]], dtype=np.int8)
    config = core.PerceptronConfig(max_iter=1, tol=None, stop_on_no_mistakes=False)
    for _ in range(60):
        (result,) = core.fit_perceptron(network, X, t, None, config, seeds=[3],
                                        class_weights=np.ones((1, 2)))
        assert result.n_updates > 0
    for seed in range(3):
        mlp = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh", solver="lbfgs",
                            max_iter=500, random_state=seed).fit(X, [0, 1, 1, 0])
        assert mlp.score(X, [0, 1, 1, 0]) == 1.0


def test_iris_mean_accuracy_within_one_point_of_scikit_learn():
    X, y = load_iris(return_X_y=True)
    ours, theirs = [], []
    for seed in range(5):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                                  random_state=seed)
        ours.append(_quiet_fit(Perceptron(random_state=seed), X_tr, y_tr).score(X_te, y_te))
        theirs.append(_quiet_fit(SkPerceptron(random_state=seed), X_tr, y_tr)
                      .score(X_te, y_te))
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.01


# --------------------------------------------------------------------------- #
# the compiled loop equals the plain per-sample loop                           #
# --------------------------------------------------------------------------- #
def _wide_integer_data(n=600, n_features=600, seed=0):
    """Small integers (all sums exact) and wide rows."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, n_features)).astype(float)
    y = (X @ rng.normal(size=n_features) + rng.normal(scale=5, size=n) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("shuffle", [False, True])
def test_compiled_loop_equals_plain_loop_bit_for_bit(shuffle):
    X, y = _wide_integer_data()
    clf = PerceptronClassifier(shuffle=shuffle, tol=None, max_iter=4,
                               stop_on_no_mistakes=False).fit(X, y)
    w, b = plain_loop(X, y, 4, seed=binary_shuffle_seed(0) if shuffle else None)
    np.testing.assert_array_equal(clf.coef_[0], w)
    assert clf.intercept_[0] == b


@pytest.mark.parametrize("alpha", [0.0, 0.002])
def test_compiled_loop_equals_plain_loop_with_weights_and_l2(alpha):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 300))
    y = (X[:, :10].sum(axis=1) + rng.normal(size=500) > 0).astype(int)
    sw = rng.uniform(0, 2, size=500)
    sw[::7] = 0.0
    penalty = "l2" if alpha else None
    clf = PerceptronClassifier(eta0=0.7, penalty=penalty, alpha=alpha or 1e-4, tol=None,
                               max_iter=3, stop_on_no_mistakes=False)
    clf.fit(X, y, sample_weight=sw)
    w, b = plain_loop(X, y, 3, eta0=0.7, sample_weight=sw, alpha=alpha,
                      seed=binary_shuffle_seed(0))
    np.testing.assert_allclose(clf.coef_[0], w, rtol=1e-10, atol=1e-12)
    assert clf.intercept_[0] == pytest.approx(b, rel=1e-12)


@pytest.mark.parametrize("params", [{"penalty": "l1", "alpha": 0.002},
                                    {"penalty": "elasticnet", "alpha": 0.01, "l1_ratio": 0.3}],
                         ids=["l1", "elasticnet"])
def test_dense_l1_matches_scikit_learn_sample_by_sample(params):
    """The L1 truncation on dense rows touches every feature at every sample, as
    in scikit-learn. Same epochs, same zero weights, weights to rounding."""
    X, y = _wide_integer_data(n=500, n_features=400, seed=2)
    X /= 3.0
    theirs = _quiet_fit(SkPerceptron(max_iter=6, **params), X, y)
    ours = _quiet_fit(PerceptronClassifier(max_iter=6, **params), X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.coef_ == 0, theirs.coef_ == 0)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-12)


def test_compiled_loop_equals_plain_loop_on_sparse_rows():
    X, y = _wide_integer_data(n=800, n_features=400, seed=1)
    X[np.abs(X) < 3] = 0.0
    Xs = sp.csr_matrix(X)
    clf = PerceptronClassifier(tol=None, max_iter=3, stop_on_no_mistakes=False).fit(Xs, y)
    # scikit-learn's sparse fit moves the intercept by 0.01 of each step
    w, b = plain_loop(Xs, y, 3, decay=0.01, seed=binary_shuffle_seed(0))
    np.testing.assert_array_equal(clf.coef_[0], w)
    assert clf.intercept_[0] == pytest.approx(b, rel=1e-12)


def test_shuffle_is_scikit_learn_shuffle():
    for n, seed in [(1, 5), (2, 1), (10, 123456789), (257, 0), (1000, 2 ** 31 - 2)]:
        np.testing.assert_array_equal(core.shuffle_permutation(n, seed),
                                      xorshift_fisher_yates(n, seed))
    seq = pytest.importorskip("sklearn.utils._seq_dataset")
    n = 50
    data = seq.ArrayDataset64(np.zeros((n, 1)), np.zeros(n), np.ones(n), seed=1)
    order = np.arange(n)
    for _ in range(3):  # the same shuffle applied again each epoch
        data._shuffle_py(987654)
        order = order[core.shuffle_permutation(n, 987654)]
        np.testing.assert_array_equal([data._next_py()[-1] for _ in range(n)], order)


# --------------------------------------------------------------------------- #
# sparse input                                                                 #
# --------------------------------------------------------------------------- #
def test_sparse_input_equals_dense_input():
    X, y = _data(n=300, n_features=20, seed=6)
    X[np.abs(X) < 0.8] = 0.0
    Xs = sp.csr_matrix(X)
    dense = _quiet_fit(PerceptronClassifier(fit_intercept=False), X, y)
    sparse = _quiet_fit(PerceptronClassifier(fit_intercept=False), Xs, y)
    np.testing.assert_array_equal(sparse.coef_, dense.coef_)
    np.testing.assert_array_equal(sparse.predict(Xs), dense.predict(X))
    np.testing.assert_allclose(sparse.decision_function(Xs), dense.decision_function(X))
    np.testing.assert_allclose(dense.decision_function(Xs), dense.decision_function(X))


@pytest.mark.parametrize("params", [{}, {"penalty": "l2", "alpha": 0.001}],
                         ids=["default", "l2"])
def test_sparse_input_matches_scikit_learn_sparse_fit(params):
    """With an intercept, a sparse fit moves it by 0.01 of a step; with L2 the
    stopping objective counts the touched features only -- both as scikit-learn."""
    X, y = _data(n=300, n_features=20, seed=6)
    X[np.abs(X) < 0.8] = 0.0
    Xs = sp.csr_matrix(X)
    theirs = _quiet_fit(SkPerceptron(**params), Xs, y)
    ours = _quiet_fit(PerceptronClassifier(stop_on_no_mistakes=False, **params), Xs, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-10, atol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("params", [{"penalty": "l1", "alpha": 0.002},
                                    {"penalty": "elasticnet", "alpha": 0.005, "l1_ratio": 0.3},
                                    {"penalty": "l1", "alpha": 0.001, "eta0": 0.4,
                                     "class_weight": "balanced"}],
                         ids=["l1", "elasticnet", "l1-weighted"])
def test_sparse_l1_and_elasticnet_with_shuffling_match_scikit_learn(params, n_classes):
    """The truncated gradient on CSR rows touches only a row's features; the
    shuffled epochs, the zero weights and the stopping epoch are scikit-learn's."""
    if n_classes > 2 and not SKLEARN_1_7:
        pytest.skip("scikit-learn < 1.7 trains a shuffled, penalized one-vs-rest fit "
                    "differently; sknet follows the current behaviour")
    X, y = _data(n=400, n_features=30, n_classes=n_classes, seed=8)
    X[np.abs(X) < 0.9] = 0.0
    Xs = sp.csr_matrix(X)
    sw = np.random.default_rng(3).uniform(0.5, 1.5, size=y.size)
    theirs = _quiet_fit(SkPerceptron(max_iter=30, **params), Xs, y, sample_weight=sw)
    ours = _quiet_fit(PerceptronClassifier(max_iter=30, **params), Xs, y, sample_weight=sw)
    assert np.sum(theirs.coef_ == 0) > 0  # the penalty zeroes weights
    np.testing.assert_array_equal(ours.coef_ == 0, theirs.coef_ == 0)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-10, atol=1e-12)
    assert (ours.n_iter_, ours.t_) == (theirs.n_iter_, theirs.t_)


def _sparse_rows_with_empties(n=2500, n_features=40, seed=3):
    """CSR rows of ~4 small-integer entries (sums exact), every 7th row and the last empty."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, n_features)).astype(float)
    X[rng.random((n, n_features)) < 0.9] = 0.0
    X[::7] = 0.0
    X[-1] = 0.0
    y = (X @ rng.normal(size=n_features) + rng.normal(scale=2, size=n) > 0).astype(int)
    return sp.csr_matrix(X), y


@pytest.mark.parametrize("shuffle", [False, True])
def test_sparse_rows_with_empty_rows_match_the_plain_loop(shuffle):
    """Empty rows score the intercept alone, the last row of X included. With eta0=100 the
    intercept's steps are 100 * 0.01 = 1 exactly, so every sum is exact and
    the weights must agree to the bit (with steps of 0.01 the intercept can
    sit within rounding of 0 and flip a decision, as the core's docstring says)."""
    Xs, y = _sparse_rows_with_empties()
    clf = PerceptronClassifier(eta0=100.0, shuffle=shuffle, tol=None, max_iter=3,
                               stop_on_no_mistakes=False).fit(Xs, y)
    w, b = plain_loop(Xs, y, 3, eta0=100.0, decay=0.01,
                      seed=binary_shuffle_seed(0) if shuffle else None)
    np.testing.assert_array_equal(clf.coef_[0], w)
    assert clf.intercept_[0] == b


@pytest.mark.parametrize("labels", [
    np.array(["no", "yes", "maybe"], dtype=object),
    pd.Series(["no", "yes", "maybe"], dtype="category"),
    pd.Series(["no", "yes", "maybe"], dtype="string"),
    np.array([True, False, True]),
    np.array([-5, 7, 2**40]),
], ids=["object-strings", "categorical", "pandas-string", "bool", "int"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_labels_come_back_as_scikit_learn_returns_them(labels, method):
    """classes_ and predict have scikit-learn's values and dtype (strings held
    as objects come back as numpy strings, as scikit-learn's unique_labels
    returns them)."""
    X, codes = _data(n=60, n_classes=3)
    y = labels.take(codes % len(labels)) if isinstance(labels, pd.Series) else labels[codes % len(labels)]
    kwargs = {"classes": np.unique(np.asarray(y))} if method == "partial_fit" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = getattr(PerceptronClassifier(max_iter=5), method)(X, y, **kwargs)
        theirs = getattr(SkPerceptron(max_iter=5), method)(X, y, **kwargs)
    assert ours.classes_.dtype == theirs.classes_.dtype
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.predict(X).dtype == theirs.predict(X).dtype
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_sparse_rows_match_scikit_learn_with_weights_and_classes():
    Xs, y = _sparse_rows_with_empties(seed=4)
    y = y + (np.arange(y.size) % 3 == 0)  # three classes
    sw = np.random.default_rng(0).uniform(0, 2, size=y.size)
    params = dict(eta0=0.5, class_weight={0: 2.0, 1: 1.0, 2: 0.5}, max_iter=4, tol=None)
    theirs = _quiet_fit(SkPerceptron(**params), Xs, y, sample_weight=sw)
    ours = _quiet_fit(PerceptronClassifier(stop_on_no_mistakes=False, **params), Xs, y,
                      sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_fit_holds_no_more_memory_than_scikit_learn(sparse, dtype):
    """Per sample a fit keeps one byte of target and two 4-byte indices (the
    shuffle and the order); scikit-learn keeps targets and weights in X's
    dtype and an int32 order. Measured with tracemalloc, which sees numpy's
    buffers."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 30_000
    if sparse:
        indices = np.sort(rng.choice(2000, size=(n, 10)), axis=1).ravel()  # 10 a row
        X = sp.csr_matrix((rng.normal(size=indices.size), indices, np.arange(0, 10 * n + 1, 10)),
                          shape=(n, 2000))
        X.sum_duplicates()
    else:
        X = rng.normal(size=(n, 20))
    X = X.astype(dtype)
    y = (np.asarray(X @ rng.normal(size=X.shape[1])).ravel() > 0).astype(int)

    def peak(est):
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            _quiet_fit(est, X, y)
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    params = dict(max_iter=2, tol=None, random_state=0)  # the order is remade at epoch 2
    ours = peak(PerceptronClassifier(**params))
    theirs = peak(SkPerceptron(**params))
    assert ours <= theirs, (ours, theirs)


def _non_canonical(X):
    """``X`` as CSR with every entry split in two halves, columns in reverse order."""
    canonical = sp.csr_matrix(X)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(canonical.indptr))
    order = np.lexsort((-canonical.indices, rows))
    data = np.repeat(canonical.data[order] / 2, 2)
    indices = np.repeat(canonical.indices[order], 2)
    Xs = sp.csr_matrix((data, indices, 2 * canonical.indptr), shape=X.shape)
    assert not Xs.has_canonical_format
    return Xs


def _trained_on(monkeypatch):
    """The matrices the perceptron rule is handed, recorded."""
    import sknet._perceptron as estimator_module

    seen, original = [], estimator_module.fit_perceptron

    def recording(network, X, *args, **kwargs):
        seen.append(X)
        return original(network, X, *args, **kwargs)

    monkeypatch.setattr(estimator_module, "fit_perceptron", recording)
    return seen


def test_non_canonical_csr_without_penalty_matches_scikit_learn(monkeypatch):
    """scikit-learn's loop visits every stored entry, repeats included; so
    does sknet's rule without a penalty, on the matrix as given (no copy)."""
    X, y = _data(n=300, n_features=20, seed=6)
    X[np.abs(X) < 0.8] = 0.0
    Xs = _non_canonical(X)
    stored = (Xs.data.copy(), Xs.indices.copy())
    seen = _trained_on(monkeypatch)
    theirs = _quiet_fit(SkPerceptron(), Xs, y)
    ours = _quiet_fit(PerceptronClassifier(stop_on_no_mistakes=False), Xs, y)
    if core.needs_canonical_rows(None):  # numpy < 1.25: a summed copy
        assert seen[0] is not Xs and seen[0].has_canonical_format
    else:
        assert seen[0].data is Xs.data
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-10, atol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(Xs.data, stored[0])  # the input is left as it was
    np.testing.assert_array_equal(Xs.indices, stored[1])


def test_non_canonical_csr_with_penalty_is_summed_first(monkeypatch):
    """With a penalty the rule needs distinct columns: it trains on a summed
    copy (scikit-learn's running norm counts the halves separately, so its
    stopping differs there), and the input is left as it was."""
    X, y = _data(n=300, n_features=20, seed=6)
    X[np.abs(X) < 0.8] = 0.0
    Xs = _non_canonical(X)
    stored = Xs.data.copy()
    params = dict(penalty="l2", alpha=0.001, stop_on_no_mistakes=False)
    seen = _trained_on(monkeypatch)
    ours = _quiet_fit(PerceptronClassifier(**params), Xs, y)
    assert seen[0].has_canonical_format
    summed = _quiet_fit(PerceptronClassifier(**params), sp.csr_matrix(X), y)
    np.testing.assert_allclose(ours.coef_, summed.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(Xs.data, stored)


def test_sparsify_and_densify_keep_the_predictions():
    X, y = _data()
    clf = _quiet_fit(PerceptronClassifier(penalty="l1", alpha=0.01, max_iter=5), X, y)
    scores = clf.decision_function(X)
    assert sp.issparse(clf.sparsify().coef_)
    for rows in (X, sp.csr_matrix(X)):
        sparse_scores = clf.decision_function(rows)
        assert type(sparse_scores) is np.ndarray and sparse_scores.shape == scores.shape
        np.testing.assert_allclose(sparse_scores, scores)
    assert isinstance(clf.densify().coef_, np.ndarray)
    np.testing.assert_allclose(clf.decision_function(X), scores)


# --------------------------------------------------------------------------- #
# the rest of the contract                                                     #
# --------------------------------------------------------------------------- #
def test_float32_trains_and_predicts_in_float32():
    X, y = _data()
    clf = _quiet_fit(PerceptronClassifier(), X.astype(np.float32), y)
    assert clf.coef_.dtype == np.float32 and clf.intercept_.dtype == np.float32
    assert clf.decision_function(X.astype(np.float32)).dtype == np.float32
    theirs = _quiet_fit(SkPerceptron(), X.astype(np.float32), y)
    np.testing.assert_allclose(clf.coef_, theirs.coef_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_partial_fit_reads_later_rows_in_the_first_calls_dtype(sparse):
    """A float32 model stays float32 when later rows come as float64 (where
    scikit-learn's partial_fit raises a TypeError): the same weights as
    rows cast to float32 first."""
    X, y = _data(n=200, n_classes=3)
    convert = sp.csr_matrix if sparse else np.asarray
    first = X[:100].astype(np.float32)
    a = PerceptronClassifier().partial_fit(first, y[:100], classes=[0, 1, 2])
    a.partial_fit(convert(X[100:]), y[100:])
    b = PerceptronClassifier().partial_fit(first, y[:100], classes=[0, 1, 2])
    b.partial_fit(convert(X[100:].astype(np.float32)), y[100:])
    assert a.coef_.dtype == a.intercept_.dtype == np.float32
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)


@pytest.mark.parametrize("params", [{}, {"early_stopping": True, "n_iter_no_change": 2}],
                         ids=["plain", "early-stopping"])
def test_scipy_sparse_arrays_train_as_sparse_matrices(params):
    X, y = _data(n=200, n_classes=3)
    X[np.abs(X) < 0.8] = 0.0
    matrix = _quiet_fit(PerceptronClassifier(**params), sp.csr_matrix(X), y)
    array = _quiet_fit(PerceptronClassifier(**params), sp.csr_array(X), y)
    np.testing.assert_array_equal(array.coef_, matrix.coef_)
    assert array.n_iter_ == matrix.n_iter_
    np.testing.assert_array_equal(array.predict(sp.csr_array(X)), matrix.predict(X))


def test_fits_print_nothing_unless_verbose(capsys, monkeypatch):
    """Nothing on stdout or stderr, and no worker thread ends on an error."""
    errors = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    X, y = _data(n=200, n_classes=4)
    for n_jobs in (None, 2):
        clf = _quiet_fit(PerceptronClassifier(n_jobs=n_jobs, max_iter=20), X, y)
        clf.partial_fit(X, y)
    _quiet_fit(PerceptronClassifier(early_stopping=True), X, y)
    assert capsys.readouterr() == ("", "") and errors == []


def test_threads_give_the_same_units():
    X, y = _data(n_classes=4, n=400)
    one = _quiet_fit(PerceptronClassifier(), X, y)
    two = _quiet_fit(PerceptronClassifier(n_jobs=2), X, y)
    np.testing.assert_array_equal(two.coef_, one.coef_)
    assert two.n_iter_ == one.n_iter_


def test_n_jobs_trains_units_at_the_same_time_on_threads_of_their_own(monkeypatch):
    barrier, original, seen = threading.Barrier(2, timeout=5), core._fit_unit, []

    def fit_unit(*args):
        seen.append(threading.get_ident())
        if len(seen) <= 2:
            barrier.wait()  # passes only while the first two units run at once
        return original(*args)

    monkeypatch.setattr(core, "_fit_unit", fit_unit)
    _quiet_fit(PerceptronClassifier(n_jobs=2), *_data(n_classes=3))
    assert len(seen) == 3 and len(set(seen)) == 2 and threading.get_ident() not in seen


@pytest.mark.parametrize("params", [{"penalty": "l1", "alpha": 0.001},
                                    {"early_stopping": True, "n_iter_no_change": 2}],
                         ids=["sparse-l1", "sparse-early-stopping"])
def test_threads_give_the_same_units_on_sparse_rows(params):
    X, y = _data(n_classes=4, n=400)
    X[np.abs(X) < 0.8] = 0.0
    Xs = sp.csr_matrix(X)
    one = _quiet_fit(PerceptronClassifier(**params), Xs, y)
    three = _quiet_fit(PerceptronClassifier(n_jobs=3, **params), Xs, y)
    np.testing.assert_array_equal(three.coef_, one.coef_)
    np.testing.assert_array_equal(three.intercept_, one.intercept_)
    assert three.n_iter_ == one.n_iter_


@pytest.mark.parametrize("params", [{}, {"penalty": "l2"}, {"penalty": "elasticnet"},
                                    {"early_stopping": True}, {"verbose": 1}],
                         ids=["plain", "l2", "elasticnet", "early-stopping", "verbose"])
def test_huge_initial_weights_train_without_runtime_warnings(params, capsys):
    """Weights of 1e300 give finite scores here: the fit goes on (as
    scikit-learn's does) and nothing overflows silently into a RuntimeWarning."""
    X, y = _data(n=120, n_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = PerceptronClassifier(max_iter=5, **params).fit(
            X, y, coef_init=np.full((3, X.shape[1]), 1e300))
    assert np.all(np.isfinite(clf.coef_)) and np.abs(clf.coef_).max() > 1e299
    theirs = _quiet_fit(SkPerceptron(max_iter=5, **{k: v for k, v in params.items()
                                                    if k != "verbose"}),
                        X, y, coef_init=np.full((3, X.shape[1]), 1e300))
    np.testing.assert_array_equal(clf.predict(X), theirs.predict(X))


@pytest.mark.parametrize("scale", [1e160, 1e250])
@pytest.mark.parametrize("params", [{}, {"penalty": "l2"}, {"early_stopping": True}],
                         ids=["plain", "l2", "early-stopping"])
def test_overflowing_scores_alone_do_not_stop_training_as_in_scikit_learn(scale, params):
    """Scores of about scale**2 overflow while the weights (about scale) stay
    finite: scikit-learn's loop raises only on non-finite weights, so both
    fits run to the same weights and epochs, with an infinite loss that the
    tol rule reads the same way (and validation scores that overflow, without
    a RuntimeWarning from sknet)."""
    if params.get("penalty") == "l2" and not SKLEARN_1_7:
        pytest.skip("scikit-learn < 1.7 trains a shuffled, penalized one-vs-rest fit "
                    "differently; sknet follows the current behaviour")
    X, y = _data(n=120, n_classes=3)
    y = np.random.RandomState(0).permutation(y)  # mistakes with infinite scores
    params = dict(max_iter=30, random_state=0, **params)
    ours = _quiet_fit(PerceptronClassifier(stop_on_no_mistakes=False, **params), X * scale, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's validation scores
        theirs = _quiet_fit(SkPerceptron(**params), X * scale, y)
    assert np.abs(X).max() * scale > np.sqrt(np.finfo(float).max)  # the scores overflow
    assert np.all(np.isfinite(ours.coef_)) and np.abs(ours.coef_).max() > scale / 100
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-12)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-12)
    assert (ours.n_iter_, ours.t_) == (theirs.n_iter_, theirs.t_)


@pytest.mark.parametrize("eta0, epoch", [(8.0, 3), (10.0, 1)])
def test_overflowing_weights_raise_scikit_learns_error_naming_the_epoch(eta0, epoch):
    """Weights that overflow stop the fit with scikit-learn's message, which
    counts epochs from 1, and leave an unfitted model unfitted."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(20, 3) * 1e307, rng.randint(0, 2, 20)
    params = dict(eta0=eta0, max_iter=50, tol=None, random_state=0)
    with pytest.raises(ValueError) as theirs:
        SkPerceptron(**params).fit(X, y)
    assert f"epoch #{epoch}." in str(theirs.value)  # this data's epoch, by scikit-learn
    model = PerceptronClassifier(**params)
    with pytest.raises(ValueError, match=re.escape(str(theirs.value))):
        model.fit(X, y)
    assert not hasattr(model, "coef_")


def _verbose_lines(model, X, y, capsys):
    capsys.readouterr()
    _quiet_fit(model, X, y)
    return [re.sub(r"[0-9.]+ seconds", "", line)
            for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("params", [{}, {"penalty": "l2", "alpha": 0.01},
                                    {"penalty": "elasticnet", "alpha": 0.01},
                                    {"early_stopping": True}],
                         ids=["plain", "l2", "elasticnet", "early-stopping"])
def test_verbose_prints_scikit_learns_lines(params, sparse, capsys):
    """The same lines as scikit-learn's verbose fit: its running norm (over
    the last updated row's features on sparse rows), the loss and objective,
    the validation score."""
    X, y = _data(n=90, n_classes=3)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    params = dict(verbose=1, max_iter=6, random_state=0, **params)
    theirs = _verbose_lines(SkPerceptron(**params), X, y, capsys)
    if not any("Objective" in line for line in theirs):
        pytest.skip("an older scikit-learn prints other verbose lines (no objective or "
                    "validation score, another running norm); sknet prints the current ones")
    ours = _verbose_lines(PerceptronClassifier(stop_on_no_mistakes=False, **params), X, y,
                          capsys)
    assert len(ours) > 12 and ours == theirs


def test_verbose_says_when_the_no_mistakes_rule_ends_training(capsys):
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # the lecture's OR
    lines = _verbose_lines(PerceptronClassifier(verbose=1, random_state=0), X,
                           np.array([0, 1, 1, 1]), capsys)
    model = PerceptronClassifier(random_state=0).fit(X, [0, 1, 1, 1])
    assert model.n_iter_ < 1000  # the rule ended it, not max_iter
    assert lines[-1] == f"Convergence after {model.n_iter_} epochs took "


def test_verbose_times_are_the_seconds_the_fit_took(capsys):
    X, y = _data(n=200, n_classes=3)
    capsys.readouterr()
    started = time.perf_counter()
    _quiet_fit(PerceptronClassifier(verbose=1, stop_on_no_mistakes=False), X, y)
    took = time.perf_counter() - started
    out = capsys.readouterr().out
    converged = [float(s) for s in re.findall(r"epochs took ([0-9.]+) seconds", out)]
    totals = [float(s) for s in re.findall(r"training time: ([0-9.]+) seconds", out)]
    assert len(converged) == 3 and len(totals) > 3  # each unit stopped by the tolerance
    assert all(0.0 <= s <= took + 0.01 for s in converged + totals)


def test_an_error_in_a_thread_is_raised_and_changes_nothing():
    import threading

    X, y = _data(n=120, n_classes=3)
    clf = _quiet_fit(PerceptronClassifier(max_iter=5, n_jobs=2), X, y)
    before = _state(clf)
    with pytest.raises(ValueError, match="overflow"):  # the weights overflow
        clf.fit(X * 1e10, y, sample_weight=np.full(len(y), 1e300))
    _assert_same_state(before, clf)
    assert not [t for t in threading.enumerate() if t.name.startswith("sknet-perceptron")]


def test_random_initial_weights_are_small_and_seeded():
    X, y = _data(n=100, n_classes=2)
    a = PerceptronClassifier(weight_init="random", random_state=3, max_iter=1,
                             shuffle=False)
    start = np.random.RandomState(3).uniform(-0.01, 0.01, size=(1, X.shape[1] + 1))
    # one epoch from those weights, by the plain loop
    _quiet_fit(a, X, y)
    t = np.where(y == 1, 1.0, -1.0)
    w, b = start[0, :-1].copy(), start[0, -1]
    for i in range(len(y)):
        if t[i] * (np.dot(w, X[i]) + b) <= 0:
            w, b = w + X[i] * t[i], b + t[i]
    np.testing.assert_allclose(a.coef_[0], w, rtol=1e-12, atol=1e-12)
    assert a.intercept_[0] == pytest.approx(b)


@pytest.mark.parametrize("where, kept", [("_epoch", 2), ("_after_epoch", 3)],
                         ids=["during-the-third-epoch", "after-it"])
def test_interrupted_fit_keeps_the_last_complete_epoch(monkeypatch, where, kept):
    """A Ctrl-C while the third epoch moves the weights rolls it back; one
    while the stopping rules read it (its validation score, its verbose line)
    keeps it."""
    X, y = _data(n=200, n_classes=2)
    expected = PerceptronClassifier(tol=None, max_iter=kept, shuffle=False,
                                    stop_on_no_mistakes=False).fit(X, y)
    original, calls = getattr(core, where), []

    def interrupted_third(*args):
        calls.append(1)
        result = original(*args)
        if len(calls) == 3:  # the third epoch has moved the weights, or been read
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(core, where, interrupted_third)
    clf = PerceptronClassifier(tol=None, max_iter=10, shuffle=False,
                               stop_on_no_mistakes=False)
    with pytest.warns(UserWarning, match="interrupted") as record:
        clf.fit(X, y)
    assert [w.filename for w in record] == [__file__]  # the caller's line
    assert clf.n_iter_ == kept
    np.testing.assert_array_equal(clf.coef_, expected.coef_)
    np.testing.assert_array_equal(clf.intercept_, expected.intercept_)


def test_ctrl_c_between_units_keeps_the_trained_ones_and_stops_the_rest(monkeypatch):
    """One unit after another (``n_jobs=1``): a Ctrl-C that reaches the loop
    itself, as the second unit starts, ends the fit with the first unit's weights."""
    X, y = _data(n=200, n_classes=3)
    expected = PerceptronClassifier(random_state=0).fit(X, y)
    original = core._fit_unit

    def fit_unit(network, k, *args):
        if k == 1:
            raise KeyboardInterrupt
        return original(network, k, *args)

    monkeypatch.setattr(core, "_fit_unit", fit_unit)
    clf = PerceptronClassifier(random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.coef_[0], expected.coef_[0])
    assert not clf.coef_[1:].any() and not clf.intercept_[1:].any()


def test_ctrl_c_before_the_first_unit_trains_ends_the_fit_with_no_epoch(monkeypatch):
    X, y = _data(n=200, n_classes=3)

    def fit_unit(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "_fit_unit", fit_unit)
    clf = PerceptronClassifier(random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert clf.n_iter_ == 0 and clf.t_ == 1.0
    assert not clf.coef_.any() and not clf.intercept_.any()


def test_ctrl_c_while_the_first_snapshot_is_taken_keeps_the_starting_weights(monkeypatch):
    """The first unit stops before its first epoch; the others do not start."""
    X, y = _data(n=200, n_classes=3)
    start = np.linspace(-1.0, 1.0, 3 * X.shape[1]).reshape(3, -1)

    class InterruptedSnapshot(core.PerceptronUnit):
        def snapshot(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(core, "PerceptronUnit", InterruptedSnapshot)
    clf = PerceptronClassifier()
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y, coef_init=start, intercept_init=[0.25, 0.5, 0.75])
    assert clf.n_iter_ == 0
    np.testing.assert_array_equal(clf.coef_, start)
    assert clf.intercept_.tolist() == [0.25, 0.5, 0.75]


def test_ctrl_c_as_the_threads_start_stops_them_and_ends_the_fit(monkeypatch):
    """With ``n_jobs=2``, a Ctrl-C that reaches the main thread as the units
    start raises the stop flag: every thread ends, and the fit warns and returns."""
    X, y = _data(n=400, n_classes=4)
    original, calls = core._wait_for, []

    def wait_for(workers, stop):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return original(workers, stop)

    monkeypatch.setattr(core, "_wait_for", wait_for)
    clf = PerceptronClassifier(n_jobs=2, random_state=0, max_iter=1000, tol=None,
                               stop_on_no_mistakes=False)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert calls == [1, 1] and clf.n_iter_ < 1000 and np.all(np.isfinite(clf.coef_))
    assert not [t for t in threading.enumerate() if t.name.startswith("sknet-perceptron")]


def test_ctrl_c_while_a_unit_is_copied_out_copies_it_and_stops_the_rest(monkeypatch):
    X, y = _data(n=200, n_classes=3)
    expected = PerceptronClassifier(random_state=0).fit(X, y)

    class InterruptedOnce(core.PerceptronUnit):
        interrupted = []

        def finish(self):  # Ctrl-C while the first unit's weights are copied out
            if not self.interrupted:
                self.interrupted.append(True)
                raise KeyboardInterrupt
            return super().finish()

    monkeypatch.setattr(core, "PerceptronUnit", InterruptedOnce)
    clf = PerceptronClassifier(random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.coef_[0], expected.coef_[0])  # copied again
    assert clf.intercept_[0] == expected.intercept_[0]
    assert not clf.coef_[1:].any() and not clf.intercept_[1:].any()  # never trained


def test_fit_too_big_for_memory_is_refused_before_allocating(monkeypatch):
    """20 classes of a million sparse features need 320 MB of weights alone."""
    import tracemalloc

    import sknet._base

    rng = np.random.default_rng(0)
    X = sp.random(60, 10**6, density=1e-5, format="csr", random_state=0)
    y = np.arange(60) % 20
    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: 2**28)
    clf = PerceptronClassifier(max_iter=1)
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match=r"perceptron needs about 0\.[3-9] GiB"):
            clf.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    assert not hasattr(clf, "coef_")
    X_small = rng.normal(size=(60, 5))
    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: 2**30)
    assert _quiet_fit(clf, X_small, y).coef_.shape == (20, 5)


def _state(est):
    return copy.deepcopy({k: v for k, v in vars(est).items()})


def _assert_same_state(before, est):
    after = vars(est)
    assert set(after) == set(before)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value)
        else:
            assert after[key] == value, key


BAD_CALLS = [
    ("fit", lambda X, y: ((np.where(X > 1, np.nan, X), y), {}), "NaN"),
    ("fit", lambda X, y: ((X, y + 0.5), {}), "Unknown label type"),
    ("fit", lambda X, y: ((X, np.zeros_like(y)), {}), "class"),
    ("fit", lambda X, y: ((X, y), {"sample_weight": np.ones(3)}), "sample_weight"),
    ("fit", lambda X, y: ((X, y), {"sample_weight": -np.ones(len(y))}), "Negative"),
    ("fit", lambda X, y: ((X, y), {"coef_init": np.zeros((2, X.shape[1]))}), "coef_init"),
    ("fit", lambda X, y: ((X, y), {"intercept_init": np.zeros(5)}), "intercept_init"),
    # three units' weights transposed: as many values, the wrong shape
    ("fit", lambda X, y: ((X, y), {"coef_init": np.zeros((X.shape[1], 3))}), "coef_init"),
    ("fit", lambda X, y: ((X, y), {"coef_init": np.full((3, X.shape[1]), np.nan)}),
     "coef_init contains NaN"),
    ("fit", lambda X, y: ((X, y), {"intercept_init": [0.0, np.inf, 0.0]}),
     "intercept_init contains NaN or infinity"),
    ("fit", lambda X, y: ((X * 1e10, y), {"sample_weight": np.full(len(y), 1e300)}),
     "overflow"),
    ("partial_fit", lambda X, y: ((X, y + 7), {}), "not in classes"),
    ("partial_fit", lambda X, y: ((X[:, :3], y), {}), "features"),
    ("partial_fit", lambda X, y: ((X, y), {"classes": [0, 1]}), "classes"),
    ("predict", lambda X, y: ((X[:, :3],), {}), "features"),
]


@pytest.mark.parametrize("method, make, match", BAD_CALLS)
def test_bad_input_gives_a_clear_error_and_changes_nothing(method, make, match):
    X, y = _data(n=120, n_classes=3)
    clf = _quiet_fit(PerceptronClassifier(max_iter=5), X, y)
    before = _state(clf)
    args, kwargs = make(X, y)
    with pytest.raises(ValueError, match=match):
        getattr(clf, method)(*args, **kwargs)
    _assert_same_state(before, clf)


BAD_PARAMS = [
    ({"penalty": "elastic_net"}, ValueError, "Did you mean 'elasticnet'"),
    ({"penalty": "none"}, ValueError, "penalty"),
    ({"eta0": 0.0}, ValueError, "eta0"),
    ({"alpha": -1.0}, ValueError, "alpha"),
    ({"l1_ratio": 1.5}, ValueError, "l1_ratio"),
    ({"max_iter": 0}, ValueError, "max_iter"),
    ({"tol": -1.0}, ValueError, "tol"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change"),
    ({"class_weight": "auto"}, InvalidParameterError, "class_weight"),
    ({"stop_on_no_mistakes": "yes"}, InvalidParameterError, "stop_on_no_mistakes"),
    ({"weight_init": "ones"}, ValueError, "weight_init"),
    ({"shuffle": "yes"}, TypeError, "shuffle"),
    ({"random_state": "seed"}, ValueError, "seed"),
]


@pytest.mark.parametrize("params, error, match", BAD_PARAMS)
def test_bad_parameters_are_named_and_change_nothing(params, error, match):
    X, y = _data(n=60)
    clf = _quiet_fit(PerceptronClassifier(max_iter=3), X, y)
    fitted = {k: copy.deepcopy(v) for k, v in vars(clf).items() if k.endswith("_")}
    clf.set_params(**params)
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    assert {k for k in vars(clf) if k.endswith("_")} == set(fitted)
    for key, value in fitted.items():
        np.testing.assert_array_equal(getattr(clf, key), value)


def test_partial_fit_refusals():
    X, y = _data(n=60)
    with pytest.raises(ValueError, match="classes must be passed"):
        PerceptronClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        PerceptronClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="balanced"):
        PerceptronClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(NotFittedError):
        PerceptronClassifier().predict(X)


def test_class_weights_outside_none_balanced_or_a_dict_are_refused_as_by_scikit_learn():
    X, y = _data(n=60)
    for bad in ("auto", [1.0, 2.0, 3.0], 3):
        with pytest.raises(InvalidParameterError, match="class_weight"):
            SkPerceptron(class_weight=bad).fit(X, y)
        with pytest.raises(InvalidParameterError,
                           match=r"must be None, 'balanced' or a dict .* got"):
            PerceptronClassifier(class_weight=bad).fit(X, y)


def test_validation_rows_of_zero_weight_are_refused_as_by_scikit_learn():
    X, y = _data(n=100, n_classes=2)
    params = {"early_stopping": True, "random_state": 0}
    _, val = next(StratifiedShuffleSplit(test_size=0.1, random_state=0).split(X, y))
    sw = np.ones(len(y))
    sw[val] = 0.0
    message = "The sample weights for validation set are all zero"
    with pytest.raises(ValueError, match=message):
        SkPerceptron(**params).fit(X, y, sample_weight=sw)
    with pytest.raises(ValueError, match=message):
        PerceptronClassifier(**params).fit(X, y, sample_weight=sw)
    sw[val[0]] = 1e-9  # one validation row of positive weight is enough for both
    a = _quiet_fit(SkPerceptron(**params), X, y, sample_weight=sw)
    b = _quiet_fit(PerceptronClassifier(**params), X, y, sample_weight=sw)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_early_stopping_set_after_the_first_partial_fit_holds_the_split_out(n_classes):
    """partial_fit refuses early stopping only on its first call. Set later,
    scikit-learn's pass trains on the split's training rows alone (and
    prints the validation score); sknet's does the same."""
    rng = np.random.RandomState(0)  # noisy classes: the held-out rows make mistakes too
    X = rng.normal(size=(200, 4))
    y = np.digitize(X[:, 0] + 1.5 * rng.normal(size=200), [0.0, 1.0][:n_classes - 1])
    fitted = []
    for est in (SkPerceptron(random_state=0), PerceptronClassifier(random_state=0)):
        est.partial_fit(X[:50], y[:50], classes=np.unique(y))
        est.set_params(early_stopping=True)
        fitted.append(est.partial_fit(X[50:], y[50:]))
    sk, ours = fitted
    np.testing.assert_allclose(ours.coef_, sk.coef_, rtol=1e-12)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, rtol=1e-12)
    # and the split matters: a pass over all the rows lands elsewhere
    every_row = PerceptronClassifier(random_state=0)
    every_row.partial_fit(X[:50], y[:50], classes=np.unique(y)).partial_fit(X[50:], y[50:])
    assert not np.allclose(every_row.coef_, ours.coef_)


def test_verbose_partial_fit_with_early_stopping_set_later_prints_scikit_learns_line(capsys):
    X, y = _data(n=120, n_classes=2)
    lines = []
    for est in (SkPerceptron(random_state=0), PerceptronClassifier(random_state=0)):
        est.partial_fit(X[:40], y[:40], classes=[0, 1])
        est.set_params(early_stopping=True, verbose=1)
        capsys.readouterr()
        est.partial_fit(X[40:], y[40:])
        lines.append([line for line in capsys.readouterr().out.splitlines()
                      if line.startswith("Norm")])
    if "Objective" not in lines[0][0]:
        pytest.skip("an older scikit-learn prints other verbose lines")
    assert lines[1] == lines[0] and "Validation score" in lines[0][0]


def test_verbose_partial_fit_on_one_sample_prints_scikit_learns_mean_loss(capsys):
    X, y = _data(n=30, n_classes=2)
    lines = []
    for est in (SkPerceptron(), PerceptronClassifier()):
        est.partial_fit(X[:10], y[:10], classes=[0, 1])
        est.set_params(verbose=1)
        capsys.readouterr()
        for i in range(10, 30):  # one sample a call: the loss of the ones it gets wrong
            est.partial_fit(X[i:i + 1], y[i:i + 1])
        lines.append([line for line in capsys.readouterr().out.splitlines()
                      if line.startswith("Norm")])
    if "Objective" not in lines[0][0]:
        pytest.skip("an older scikit-learn prints other verbose lines")
    assert lines[1] == lines[0]
    assert any("Avg. loss: 0.000000" not in line for line in lines[1])


def test_random_start_fills_what_coef_init_and_intercept_init_leave_out():
    """``weight_init='random'`` draws the whole start (scikit-learn's uniform
    +-0.01 of shape ``(n_units, n_features + 1)``), then the given parts
    replace theirs."""
    X, y = _data(n=60, n_classes=3)
    n_features = X.shape[1]
    draw = np.random.RandomState(5).uniform(-0.01, 0.01, (3, n_features + 1))
    coef, intercept = np.full((3, n_features), 0.5), np.array([0.1, 0.2, 0.3])
    params = {"weight_init": "random", "random_state": 5, "max_iter": 2}
    cases = [
        ({"intercept_init": intercept}, {"coef_init": draw[:, :-1], "intercept_init": intercept}),
        ({"coef_init": coef}, {"coef_init": coef, "intercept_init": draw[:, -1]}),
    ]
    for given, start in cases:
        a = _quiet_fit(PerceptronClassifier(**params), X, y, **given)
        b = _quiet_fit(PerceptronClassifier(**{**params, "weight_init": "zeros"}), X, y,
                       **start)
        np.testing.assert_array_equal(a.coef_, b.coef_)
        np.testing.assert_array_equal(a.intercept_, b.intercept_)


def test_random_start_without_an_intercept_keeps_the_intercept_at_zero():
    X, y = _data(n=60, n_classes=3)
    clf = _quiet_fit(PerceptronClassifier(weight_init="random", fit_intercept=False,
                                          max_iter=3), X, y)
    assert clf.intercept_.tolist() == [0.0, 0.0, 0.0]


def test_a_warm_start_on_fewer_features_names_the_previous_solution():
    X, y = _data(n=60, n_classes=3)
    clf = _quiet_fit(PerceptronClassifier(warm_start=True, max_iter=2), X, y)
    with pytest.raises(ValueError, match="coef_ \\(the previous solution\\) does not match"):
        clf.fit(X[:, :5], y)
    clf.coef_ = clf.coef_[:, :5]  # the coefficients fit; the intercepts of 2 units do not
    clf.intercept_ = clf.intercept_[:2]
    with pytest.raises(ValueError, match="intercept_ \\(the previous solution\\) does not"):
        clf.fit(X[:, :5], y)


def test_a_score_of_exactly_zero_predicts_the_first_class_as_scikit_learn():
    X, y = _data(n=60, n_classes=2)
    sk, ours = _quiet_fit(SkPerceptron(max_iter=2), X, y), _quiet_fit(
        PerceptronClassifier(max_iter=2), X, y)
    for est in (sk, ours):
        est.coef_[...] = 0.0
        est.intercept_[...] = 0.0
    assert ours.predict(X[:5]).tolist() == sk.predict(X[:5]).tolist() == [0] * 5


@pytest.mark.parametrize("method", ["densify", "sparsify"])
def test_densify_and_sparsify_need_a_fitted_model(method):
    with pytest.raises(NotFittedError, match=f"must be fitted before {method[:-1]}"):
        getattr(PerceptronClassifier(), method)()


def test_the_iteration_warning_follows_scikit_learns_conditions():
    """scikit-learn warns only for ``fit`` with a tolerance that used up
    ``max_iter`` epochs; the warning points at the caller's line."""
    X, y = _data(n=150, n_classes=3)
    for make in (lambda: SkPerceptron(tol=None, max_iter=2).fit(X, y),
                 lambda: PerceptronClassifier(tol=None, max_iter=2).fit(X, y),
                 lambda: SkPerceptron(max_iter=1).partial_fit(X, y, classes=[0, 1, 2]),
                 lambda: PerceptronClassifier(max_iter=1).partial_fit(X, y, classes=[0, 1, 2])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            make()
    with pytest.warns(ConvergenceWarning, match="Maximum number of iteration") as record:
        PerceptronClassifier(max_iter=2).fit(X, y)
    assert [w.filename for w in record] == [__file__]


def _refused_below(monkeypatch, need, fit):
    """``fit`` runs with ``need`` bytes available and is refused with one byte less."""
    import sknet._base

    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: need - 1)
    with pytest.raises(MemoryError, match="perceptron needs about"):
        fit()
    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: need)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit()


def test_memory_guard_counts_the_held_out_rows_and_the_weights_it_copies(monkeypatch):
    """The guard's estimate, by hand: the +-1 targets (one byte per sample and
    unit), the weights twice, per unit in training its order (4 bytes a
    sample) and three weight-sized vectors, the sample weights, and the dense
    held-out rows (10% of 100, rounded up)."""
    X, y = _data(n=100, n_features=8, n_classes=2)
    sw = np.ones(100)
    base = 100 + 2 * 9 * 8 + 4 * 100 + 10 * 8 * 8  # targets, weights, order, held-out rows
    # an L1 term keeps two more weight-sized vectors (the cumulative penalties)
    for penalty, vectors in ((None, 3), ("l2", 3), ("l1", 5), ("elasticnet", 5)):
        clf = PerceptronClassifier(early_stopping=True, max_iter=3, penalty=penalty)
        _refused_below(monkeypatch, base + vectors * 8 * 8 + 100 * 8,
                       partial(clf.fit, X, y, sample_weight=sw))
    clf = PerceptronClassifier(early_stopping=True, max_iter=3)
    _refused_below(monkeypatch, base + 3 * 8 * 8, lambda: clf.fit(X, y))  # no weights copied
    # on CSR rows the held-out rows are CSR too: not counted
    _refused_below(monkeypatch, base + 3 * 8 * 8 + 100 * 8 - 10 * 8 * 8,
                   lambda: clf.fit(sp.csr_matrix(X), y, sample_weight=sw))
    # three classes: three units' targets and weights, one unit in training at a time
    X3, y3 = _data(n=100, n_features=8, n_classes=3)
    _refused_below(monkeypatch, 3 * 100 + 2 * 9 * 3 * 8 + (4 * 100 + 3 * 8 * 8),
                   lambda: PerceptronClassifier(max_iter=3).fit(X3, y3))


def test_perceptron_is_the_same_class():
    assert Perceptron is PerceptronClassifier
    sk_params = set(SkPerceptron().get_params())
    ours = PerceptronClassifier().get_params()
    assert sk_params <= set(ours)
    assert {k: ours[k] for k in sk_params} == SkPerceptron().get_params()
    assert set(ours) - sk_params == {"stop_on_no_mistakes", "weight_init"}


# --------------------------------------------------------------------------- #
# scikit-learn's estimator checks                                              #
# --------------------------------------------------------------------------- #
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "The rule is sequential: a sample of weight 2 makes one step of twice "
        "the size, while the same sample repeated makes two steps, the second "
        "only if the first did not fix the mistake (scikit-learn lists the "
        "same failure for its Perceptron)."
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "As on dense data: a weighted step is not two sequential steps."
    ),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([PerceptronClassifier(max_iter=5)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)

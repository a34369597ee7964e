"""The compiled perceptron epoch against a plain per-sample loop and scikit-learn.

The reference (``reference_perceptron.py``, next to this file) is a Python
loop written from scikit-learn's ``_plain_sgd``; scikit-learn's own
``_plain_sgd`` (compiled) is the second, independent oracle.
"""

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sknet._core._perceptron_fast import PerceptronUnit, shuffle_order


def _load_reference():
    """The reference loop, loaded from its file (the tests are not a package)."""
    path = Path(__file__).with_name("reference_perceptron.py")
    spec = importlib.util.spec_from_file_location("reference_perceptron", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()
reference_fit, xorshift_shuffle = reference.reference_fit, reference.xorshift_shuffle

PENALTIES = [None, "l2", "l1", "elasticnet"]


def _problem(n=300, n_features=12, sparse=False, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    t = np.where(X @ rng.normal(size=n_features) + rng.normal(scale=1.5, size=n) > 0, 1, -1)
    if sparse:
        X[rng.random(X.shape) < 0.7] = 0.0
        X[::9] = 0.0  # empty rows score the intercept alone
        X = sp.csr_matrix(X)
    return X.astype(dtype), t.astype(np.int8)


def _rows(X):
    if sp.issparse(X):
        return (X.data, X.indices.astype(np.intc), X.indptr.astype(np.intc))
    return np.ascontiguousarray(X)


def _unit(X, t, *, penalty=None, alpha=1e-4, l1_ratio=0.15, eta0=1.0, sample_weight=None,
          weight_neg=1.0, weight_pos=1.0, shuffle=False, seed=1, skip=None, stop=None,
          fit_intercept=True, w0=None, b0=0.0):
    w0 = np.zeros(X.shape[1], dtype=X.dtype) if w0 is None else w0
    return PerceptronUnit(
        _rows(X), X.shape[1], t, w0, b0, eta0=eta0, penalty=penalty, alpha=alpha,
        l1_ratio=l1_ratio, fit_intercept=fit_intercept,
        decay=0.01 if sp.issparse(X) else 1.0, weight_neg=weight_neg, weight_pos=weight_pos,
        sample_weight=sample_weight, shuffle=shuffle, seed=seed,
        skip=None if skip is None else skip.astype(np.uint8), stop=stop)


def _epochs(unit, n_epochs):
    totals = [unit.epoch() for _ in range(n_epochs)]
    w, b = unit.finish()
    return w, b, totals


CASES = [
    dict(),
    dict(penalty="l2", alpha=0.01),
    dict(penalty="l1", alpha=0.005),
    dict(penalty="elasticnet", alpha=0.01, l1_ratio=0.4),
    dict(penalty="l2", alpha=0.2, eta0=0.5),  # the scale goes below 1e-9: multiplied out
    dict(eta0=0.3, weights=True, weight_neg=2.0, weight_pos=0.5),
    dict(penalty="elasticnet", alpha=0.002, weights=True, fit_intercept=False),
    dict(skip=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items())
                         or "plain")
def test_kernel_epochs_equal_the_plain_loop(case, shuffle, sparse, dtype):
    X, t = _problem(sparse=sparse, dtype=dtype)
    params = dict(case)
    rng = np.random.default_rng(5)
    if params.pop("weights", False):
        sw = rng.uniform(0.0, 2.0, size=t.size).astype(dtype)
        sw[::11] = 0.0  # a mistake of weight 0 moves nothing
        params["sample_weight"] = sw
    if params.pop("skip", False):
        params["skip"] = rng.random(t.size) < 0.2
    seed = 12345 if shuffle else 1
    w, b, totals = _epochs(_unit(X, t, shuffle=shuffle, seed=seed, **params), 6)
    w_ref, b_ref, ref = reference_fit(X, t, 6, shuffle=shuffle, seed=seed, **params)
    assert w.dtype == dtype
    rtol = 1e-11 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(w, w_ref, rtol=rtol, atol=rtol * np.abs(w_ref).max())
    assert b == pytest.approx(b_ref, rel=rtol, abs=1e-12)
    assert [n for _, _, n in totals] == [n for _, _, n in ref]  # the same mistakes
    np.testing.assert_allclose([lo for lo, _, _ in totals], [lo for lo, _, _ in ref],
                               rtol=max(rtol, 1e-9))
    np.testing.assert_allclose([o for _, o, _ in totals], [o for _, o, _ in ref],
                               rtol=max(rtol, 1e-9))
    if params.get("penalty") in ("l1", "elasticnet"):
        if params["alpha"] >= 0.005:
            assert np.sum(w == 0) > 0  # the truncation reaches 0 exactly
        np.testing.assert_array_equal(w == 0, w_ref == 0)


def _sklearn_plain_sgd(X, t, n_epochs, penalty, alpha, l1_ratio, seed, sample_weight=None,
                       eta0=1.0):
    """scikit-learn's compiled loop for one unit (perceptron loss, constant rate)."""
    sgd = pytest.importorskip("sklearn.linear_model._sgd_fast")
    from sklearn.linear_model._base import make_dataset

    y = t.astype(X.dtype)
    sw = np.ones(t.size, dtype=X.dtype) if sample_weight is None else sample_weight
    dataset, decay = make_dataset(X, y, sw, random_state=0)
    plain = sgd._plain_sgd64 if X.dtype == np.float64 else sgd._plain_sgd32
    penalty_type = {None: 0, "l1": 1, "l2": 2, "elasticnet": 3}[penalty]
    w = np.zeros(X.shape[1], dtype=X.dtype)
    out = plain(w, 0.0, None, 0.0, sgd.Hinge(0.0), penalty_type, alpha, l1_ratio, dataset,
                np.zeros(t.size, dtype=np.uint8), False, None, 5, n_epochs, -np.inf, 1, 0,
                True, seed, 1.0, 1.0, 1, eta0, 0.5, False, 1.0, decay, 0)
    return out[0], out[1]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("penalty", PENALTIES)
def test_kernel_epochs_equal_scikit_learn_plain_sgd(penalty, sparse):
    X, t = _problem(n=400, sparse=sparse, seed=3)
    sw = np.random.default_rng(2).uniform(0.5, 1.5, size=t.size)
    try:
        w_sk, b_sk = _sklearn_plain_sgd(X, t, 5, penalty, 0.003, 0.3, 777, sw, eta0=0.7)
    except TypeError:
        pytest.skip("scikit-learn's private _plain_sgd has another signature")
    w, b, _ = _epochs(_unit(X, t, penalty=penalty, alpha=0.003, l1_ratio=0.3, eta0=0.7,
                            sample_weight=sw, shuffle=True, seed=777), 5)
    np.testing.assert_allclose(w, w_sk, rtol=1e-11, atol=1e-13)
    assert b == pytest.approx(b_sk, rel=1e-11, abs=1e-13)


def test_shuffle_is_scikit_learn_sequential_dataset_shuffle():
    for n, seed in [(1, 5), (2, 1), (10, 123456789), (257, 0), (1000, 2 ** 31 - 2)]:
        order, expected = np.arange(n, dtype=np.intc), list(range(n))
        for _ in range(3):  # the same shuffle, applied again each epoch
            shuffle_order(order, seed)
            xorshift_shuffle(expected, seed)
            np.testing.assert_array_equal(order, expected)
    seq = pytest.importorskip("sklearn.utils._seq_dataset")
    n = 50
    data = seq.ArrayDataset64(np.zeros((n, 1)), np.zeros(n), np.ones(n), seed=1)
    order = np.arange(n, dtype=np.intc)
    for _ in range(3):
        data._shuffle_py(987654)
        shuffle_order(order, 987654)
        np.testing.assert_array_equal([data._next_py()[-1] for _ in range(n)], order)


def test_restore_goes_back_to_the_snapshot_exactly():
    X, t = _problem(sparse=True)
    unit = _unit(X, t, penalty="elasticnet", alpha=0.01, shuffle=True)
    unit.epoch()
    unit.snapshot()
    w_saved, b_saved = unit.weights()
    q_saved = unit.q.copy()
    after_one = unit.epoch()
    unit.epoch()
    unit.restore()
    w, b = unit.weights()
    np.testing.assert_array_equal(w, w_saved)
    np.testing.assert_array_equal(unit.q, q_saved)
    assert b == b_saved
    # the same epoch again gives the same numbers (the order is not rolled back,
    # so a shuffled unit draws its next order: compare without shuffling)
    plain = _unit(X, t, penalty="elasticnet", alpha=0.01)
    plain.epoch()
    plain.snapshot()
    first = plain.epoch()
    plain.restore()
    assert plain.epoch() == first
    assert after_one is not None


def test_stop_flag_ends_an_epoch_part_way_and_releases_the_gil():
    """The epoch runs without the GIL: the main thread raises the flag while a
    long epoch runs in another thread, and that epoch stops part-way."""
    rng = np.random.default_rng(0)
    n = 2_000_000
    X = rng.normal(size=(n, 4))
    t = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)  # random labels: many updates
    stop = np.zeros(1, dtype=np.intc)
    unit = _unit(X, t, stop=stop)
    started, out = threading.Event(), []

    def run():
        started.set()
        out.append(unit.epoch())

    worker = threading.Thread(target=run)
    worker.start()
    started.wait()
    stop[0] = 1
    worker.join()
    assert out == [None]
    stop[0] = 0
    assert unit.epoch() is not None


def test_zero_samples_weight_and_huge_weights_are_handled():
    X, t = _problem(n=50)
    w0 = np.random.default_rng(0).normal(size=X.shape[1])
    unit = _unit(X, t, sample_weight=np.zeros(50), w0=w0, b0=0.5)
    loss, objective, n_updates = unit.epoch()
    assert n_updates == 0 and loss > 0  # mistakes, but no step
    w, b = unit.finish()
    np.testing.assert_array_equal(w, w0)
    assert b == 0.5
    huge = _unit(X, t, w0=np.full(X.shape[1], 1e300))
    assert np.isfinite(huge.epoch()[0]) and huge.finite()


def test_overflowing_scores_count_as_in_scikit_learns_loop():
    """A margin of -inf is a mistake with an infinite loss and a finite step;
    a NaN score (inf - inf) is no mistake: no loss and no step."""
    w0 = np.array([1e306, 1e306])
    mistake = _unit(np.array([[1e306, 1e306]]), np.array([-1], dtype=np.int8), w0=w0, b0=0.0)
    loss, objective, n_updates = mistake.epoch()
    assert (loss, objective, n_updates) == (np.inf, np.inf, 1) and mistake.finite()
    w, b = mistake.finish()
    np.testing.assert_array_equal(w, [0.0, 0.0])  # w0 - x
    assert b == -1.0
    undecided = _unit(np.array([[1e306, -1e306]]), np.array([-1], dtype=np.int8), w0=w0, b0=0.0)
    assert undecided.epoch() == (0.0, 0.0, 0)
    w, b = undecided.finish()
    np.testing.assert_array_equal(w, w0)
    assert b == 0.0


def test_a_units_result_counts_every_epochs_updates():
    from sknet._core import Network, get_activation
    from sknet._core.perceptron import PerceptronConfig, fit_perceptron

    X, t = _problem(n=200)
    network = Network([X.shape[1], 1], [get_activation("step")])
    config = PerceptronConfig(max_iter=4, tol=None, shuffle=False, stop_on_no_mistakes=False)
    (result,) = fit_perceptron(network, X, t[:, None], None, config, seeds=[1],
                               class_weights=np.ones((1, 2)))
    _, _, ref = reference_fit(X, t, 4)
    assert (result.n_iter, result.status) == (4, "max_iter")
    assert result.n_updates == sum(n for _, _, n in ref) > 4


def _fit_core(X, Y, config, mask=None):
    from sknet._core import Network, get_activation
    from sknet._core.perceptron import fit_perceptron

    network = Network([X.shape[1], Y.shape[1]], [get_activation("step")])
    results = fit_perceptron(network, X, Y, None, config, seeds=[1] * Y.shape[1],
                             class_weights=np.ones((Y.shape[1], 2)), validation_mask=mask)
    return network.coefs[0].copy(), network.intercepts[0].copy(), results


def test_zero_one_targets_of_any_dtype_train_as_plus_minus_one():
    """``fit_perceptron`` reads int8 targets as +1/-1 and 0/1 targets of
    another dtype by their sign: both give the plain loop's weights."""
    from sknet._core.perceptron import PerceptronConfig

    X, t = _problem(n=150)
    config = PerceptronConfig(max_iter=3, tol=None, shuffle=False, stop_on_no_mistakes=False)
    expected = _fit_core(X, t[:, None].astype(np.int8), config)
    for Y in ((t > 0).astype(np.float64)[:, None], (t > 0).astype(np.int64)[:, None]):
        W, b, _ = _fit_core(X, Y, config)
        np.testing.assert_array_equal(W, expected[0])
        np.testing.assert_array_equal(b, expected[1])


def test_a_validation_mask_is_used_only_with_early_stopping():
    """Without ``early_stopping`` a mask is ignored: every row trains. With
    it, the held-out rows are skipped (the same as training on the others)."""
    from sknet._core.perceptron import PerceptronConfig

    X, t = _problem(n=150)
    Y = t[:, None].astype(np.int8)
    mask = np.zeros(len(t), dtype=bool)
    mask[::5] = True
    config = PerceptronConfig(max_iter=3, tol=None, shuffle=False, stop_on_no_mistakes=False)
    every_row = _fit_core(X, Y, config)
    ignored = _fit_core(X, Y, config, mask)
    np.testing.assert_array_equal(ignored[0], every_row[0])
    config.early_stopping, config.n_iter_no_change = True, 100
    held_out = _fit_core(X, Y, config, mask)
    config.early_stopping = False
    others = _fit_core(X[~mask], Y[~mask], config)
    np.testing.assert_array_equal(held_out[0], others[0])
    assert not np.array_equal(held_out[0], every_row[0])
    config.early_stopping = True  # early stopping without a mask: nothing held out
    np.testing.assert_array_equal(_fit_core(X, Y, config)[0], every_row[0])


def test_the_validation_score_counts_a_zero_score_as_the_negative_class():
    """As scikit-learn's ``predict``: positive only where the score is > 0."""
    from sknet._core.perceptron import _validation_score

    X_val = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 2.0], [2.0, 1.0]])
    t_val = np.array([1, -1, 1, -1], dtype=np.int8)
    w = np.array([1.0, 0.5])  # scores 1, 0, 0, 2.5
    assert _validation_score((X_val, t_val, None), w, 0.0) == 0.5
    assert _validation_score((X_val, t_val, np.array([1.0, 3.0, 1.0, 1.0])), w, 0.0) == 4 / 6


def test_a_units_status_names_the_rule_that_stopped_it():
    from sknet._core.perceptron import PerceptronConfig

    X, t = _problem(n=200)
    Y = t[:, None].astype(np.int8)
    mask = np.zeros(len(t), dtype=bool)
    mask[::4] = True
    config = PerceptronConfig(max_iter=200, tol=1e-3, n_iter_no_change=2,
                              stop_on_no_mistakes=False)
    (by_tol,) = _fit_core(X, Y, config)[2]
    config.early_stopping = True
    (by_validation,) = _fit_core(X, Y, config, mask)[2]
    assert (by_tol.status, by_validation.status) == ("tol", "validation")
    assert by_tol.n_iter < 200 and by_validation.n_iter < 200


def test_the_rule_trains_a_network_of_one_layer_only():
    from sknet._core import Network, get_activation
    from sknet._core.perceptron import PerceptronConfig, fit_perceptron

    X, t = _problem(n=50)
    network = Network([X.shape[1], 3, 1], [get_activation("relu"), get_activation("step")])
    with pytest.raises(ValueError, match="network of one layer"):
        fit_perceptron(network, X, t[:, None].astype(np.int8), None, PerceptronConfig(),
                       seeds=[1], class_weights=np.ones((1, 2)))

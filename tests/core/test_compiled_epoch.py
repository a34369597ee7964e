"""The compiled epoch (``DenseStep.run_epoch``) against the Python epoch loop.

Where a fit can run its epochs in compiled code (a dense network whose step
does its own products, dense data), :func:`sknet._core.trainer._run_epoch`
hands each epoch to ``Network.epoch_runner``. The reference is the trainer's
Python loop over the same steps (``loss_and_gradient`` and the optimizer's
``step``, themselves tested against the numpy passes and scikit-learn's
formulas), run by making ``_compiled_epoch`` return None: every fitted
weight, loss and counter must be the same bit for bit.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

from sknet import AutoencoderTransformer, MLPClassifier, MLPRegressor
from sknet._core import Network, _dense_fast, trainer
from sknet._core.activations import get_activation
from sknet._core.losses import get_loss
from sknet._core.optimizers import Adam
from sknet._core.thread_choice import ThreadChoice

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def _spy_runs(monkeypatch):
    """Count the compiled epochs run (wraps ``Network.epoch_runner``'s result)."""
    runs = []
    original = Network.epoch_runner

    def epoch_runner(self, *args, **kwargs):
        run = original(self, *args, **kwargs)
        if run is None:
            return None

        def counted(*a):
            runs.append(1)
            return run(*a)
        return counted
    monkeypatch.setattr(Network, "epoch_runner", epoch_runner)
    return runs


def _fit_both(monkeypatch, make, X, y, **fit_params):
    """The estimator fitted with compiled epochs, then with the Python loop."""
    runs = _spy_runs(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = make().fit(X, y, **fit_params)
    n_compiled = len(runs)
    monkeypatch.setattr(trainer, "_compiled_epoch", lambda *a: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        python = make().fit(X, y, **fit_params)
    return compiled, python, n_compiled


class _TwoThreads:
    """A thread choice that runs every step on two threads."""

    parts = cap = 2

    def start(self, rows):
        return 2

    def stop(self):
        pass


def _on_two_threads(monkeypatch, by_weights=False):
    """Every step of a fit in two parts, on two threads, by rows or (``by_weights``,
    ``ROWS_GRADIENT_BYTES`` 0) by weights: either step then takes the optimizer's
    step in its own parallel region (where it is not clipped)."""
    monkeypatch.setattr(Network, "split_parts", lambda self, batch, threads=None: 2)
    monkeypatch.setattr(trainer, "_thread_choice", lambda ws, batch_size: _TwoThreads())
    if by_weights:
        monkeypatch.setattr(_dense_fast, "ROWS_GRADIENT_BYTES", 0)


def _assert_same_fit(a, b):
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(ca, cb)
    if a.coefs_[0].dtype == np.float64:
        assert a.loss_curve_ == b.loss_curve_
    else:  # BLAS's float32 asum (the L1 term) sums in an order set by the vector's
        # alignment, which differs between two fits' parameter vectors
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-6)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_


CLASSIFIER_CASES = [
    {},
    {"solver": "sgd", "learning_rate_init": 0.05},
    {"solver": "sgd", "nesterovs_momentum": False, "momentum": 0.5},
    {"batch_size": 64},  # a short last batch (300 = 4 * 64 + 44)
    {"batch_size": 7},  # one part per batch
    {"shuffle": False},
    {"alpha": 0.3, "l1": 1e-3},
    {"clip_norm": 0.05},
    {"dropout": 0.3},
    {"dropout": 0.2, "activation": "selu"},  # alpha dropout
    {"hidden_layer_sizes": (30, 20), "activation": "tanh", "dropout": [0.1, 0.0]},
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("params", CLASSIFIER_CASES)
def test_compiled_epochs_fit_the_python_loops_weights(monkeypatch, digits, dtype, params):
    X, y = digits
    params = {"hidden_layer_sizes": (40,), "max_iter": 4, "random_state": 0, **params}
    compiled, python, n_compiled = _fit_both(
        monkeypatch, lambda: MLPClassifier(**params), X.astype(dtype), y)
    assert n_compiled == compiled.n_iter_ > 0
    _assert_same_fit(compiled, python)


TWO_THREAD_CASES = [
    {},
    {"solver": "sgd", "learning_rate_init": 0.05},
    {"solver": "sgd", "nesterovs_momentum": False, "momentum": 0.5},
    {"batch_size": 64},  # a short last batch, still in two parts
    {"alpha": 0.3, "l1": 1e-3},
    {"clip_norm": 0.05},  # clipped: the epoch's loop takes the step after the step
    {"dropout": 0.3},
    {"hidden_layer_sizes": (30, 20), "activation": "tanh"},
]


@pytest.mark.parametrize("by_weights", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("params", TWO_THREAD_CASES)
def test_steps_on_two_threads_fit_the_python_loops_weights(monkeypatch, digits, dtype,
                                                           params, by_weights):
    """Each thread of a step split in two by rows sums its block of the parts'
    gradients, adds the penalties' and takes Adam's or SGD's pass over it; by
    weights, it steps each block of the weights' rows and of the biases as soon
    as it has the block's gradient: the same bits as the Python loop, whose step
    and optimizer run one after the other."""
    X, y = digits
    _on_two_threads(monkeypatch, by_weights)
    params = {"hidden_layer_sizes": (40,), "max_iter": 4, "random_state": 0, **params}
    compiled, python, n_compiled = _fit_both(
        monkeypatch, lambda: MLPClassifier(**params), X.astype(dtype), y)
    assert n_compiled == compiled.n_iter_ > 0
    _assert_same_fit(compiled, python)


@pytest.mark.parametrize("by_rows", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("regression", [True, False])
def test_parts_gather_their_own_rows_by_rows_and_by_weights(monkeypatch, digits, by_rows,
                                                            shuffle, regression):
    """A batch split into 3 parts (on the threads there are): each part gathers its
    rows (and converts its one-hot targets), whether the step runs by rows or by
    weights (``ROWS_GRADIENT_BYTES`` 0)."""
    X, y = digits
    monkeypatch.setattr(Network, "split_parts", lambda self, batch, threads=None: 3)
    if not by_rows:
        monkeypatch.setattr(_dense_fast, "ROWS_GRADIENT_BYTES", 0)
    target = np.c_[y, y ** 0.5] if regression else y
    estimator = MLPRegressor if regression else MLPClassifier

    def make():
        return estimator(hidden_layer_sizes=(30,), max_iter=3, batch_size=70,
                         shuffle=shuffle, random_state=0, dropout=0.2)
    compiled, python, n_compiled = _fit_both(monkeypatch, make, X, target)
    assert n_compiled == 3
    _assert_same_fit(compiled, python)


@pytest.mark.parametrize("two_threads", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sample_weights_binary_and_regression_targets(monkeypatch, digits, dtype,
                                                      two_threads):
    X, y = digits
    X = X.astype(dtype)
    sw = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    for make, target in [
        (lambda: MLPClassifier((20,), max_iter=3, random_state=1), y),
        (lambda: MLPClassifier((20,), max_iter=3, random_state=1), y % 2),  # logistic
        (lambda: MLPRegressor(hidden_layer_sizes=(20,), max_iter=3, random_state=1),
         np.c_[y, y ** 0.5]),
    ]:
        if two_threads:
            _on_two_threads(monkeypatch)
        compiled, python, n_compiled = _fit_both(monkeypatch, make, X, target,
                                                 sample_weight=sw)
        monkeypatch.undo()
        assert n_compiled == 3
        _assert_same_fit(compiled, python)


@pytest.mark.parametrize("two_threads", [False, "by rows", "by weights"])
def test_transferred_layers_frozen_or_at_their_own_rate(monkeypatch, digits, two_threads):
    X, y = digits
    source = MLPClassifier((30, 20), max_iter=3, random_state=0).fit(X, y)
    for extra in ({"freeze_transferred": True}, {"transfer_lr_factor": 0.1}):
        def make(extra=extra):
            return MLPClassifier((30, 20), max_iter=3, random_state=2, transfer_from=source,
                                 n_transfer_layers=1, **extra)
        if two_threads:
            _on_two_threads(monkeypatch, two_threads == "by weights")
        compiled, python, n_compiled = _fit_both(monkeypatch, make, X, y)
        monkeypatch.undo()
        assert n_compiled == 3
        _assert_same_fit(compiled, python)
        np.testing.assert_array_equal(compiled.coefs_[0] == source.coefs_[0],
                                      extra.get("freeze_transferred", False))


def test_partial_fit_and_warm_start_carry_the_optimizer(monkeypatch, digits):
    X, y = digits

    def make():
        return MLPClassifier((25,), random_state=0)

    def run():
        est = make()
        for start in range(0, 300, 100):
            est.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
        return est
    runs = _spy_runs(monkeypatch)
    compiled = run()
    assert len(runs) == 3
    monkeypatch.setattr(trainer, "_compiled_epoch", lambda *a: None)
    python = run()
    for a, b in zip(compiled.coefs_, python.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("two_threads", [False, "by rows", "by weights"])
def test_a_diverging_fit_ends_as_the_python_loop_does(monkeypatch, digits, two_threads):
    """An epoch whose loss overflows (float32) is undone alike: the same error, and
    the estimator keeps the same weights (those of its first fit, warm started)."""
    X, y = digits
    if two_threads:
        _on_two_threads(monkeypatch, two_threads == "by weights")
    X, Y = X.astype(np.float32), np.c_[y, -y] * 1e3

    def fit_twice():
        est = MLPRegressor(hidden_layer_sizes=(20,), solver="sgd", max_iter=2,
                           random_state=0, warm_start=True).fit(X, Y)
        est.set_params(learning_rate_init=1e4, max_iter=8)
        with pytest.raises(ValueError, match="non-finite parameter weights"):
            est.fit(X, Y)
        return est
    runs = _spy_runs(monkeypatch)
    compiled = fit_twice()
    assert len(runs) >= 3
    monkeypatch.setattr(trainer, "_compiled_epoch", lambda *a: None)
    python = fit_twice()
    _assert_same_fit(compiled, python)


@pytest.mark.parametrize("failing_call", [2, 6])
def test_a_ctrl_c_mid_epoch_rolls_back_as_the_python_loop_does(monkeypatch, digits,
                                                                failing_call):
    """An interrupt inside the compiled epoch (here from the thread choice that
    starts each step, at its ``failing_call``-th step) ends the fit with the last
    whole epoch's weights, and Adam's step count where the Python loop leaves it."""
    X, y = digits
    monkeypatch.setattr(Network, "split_parts", lambda self, batch, threads=None: 2)
    original = ThreadChoice.start

    def make():
        calls = []

        def start(self, rows):
            calls.append(1)
            if len(calls) == failing_call:
                raise KeyboardInterrupt
            return original(self, rows)
        monkeypatch.setattr(ThreadChoice, "start", start)
        return MLPClassifier((20,), max_iter=5, random_state=0, batch_size=100)
    runs = _spy_runs(monkeypatch)
    with pytest.warns(UserWarning, match="interrupted"):
        compiled = make().fit(X, y)
    assert len(runs) == 1 + (failing_call > 3)
    monkeypatch.setattr(trainer, "_compiled_epoch", lambda *a: None)
    with pytest.warns(UserWarning, match="interrupted"):
        python = make().fit(X, y)
    _assert_same_fit(compiled, python)
    assert compiled.n_iter_ == (failing_call - 1) // 3
    assert compiled._optimizer_state["t"] == python._optimizer_state["t"] == failing_call - 1


def test_fits_it_cannot_run_take_the_python_loop(monkeypatch, digits):
    X, y = digits
    runs = _spy_runs(monkeypatch)
    sw = np.ones(len(y))
    sw[5] = 0.0  # a batch could sum to 0: the Python loop skips its step
    MLPClassifier((10,), max_iter=2, random_state=0).fit(X, y, sample_weight=sw)
    MLPClassifier((10,), max_iter=2, random_state=0,
                  augment=lambda Xb, rng: Xb).fit(X, y)
    MLPClassifier((10,), max_iter=2, random_state=0).fit(sp.csr_matrix(X), y)
    AutoencoderTransformer(hidden_layer_sizes=(16,), n_components=4, max_iter=2,
                           random_state=0).fit(X)  # tied weights
    assert runs == []
    MLPClassifier((10,), max_iter=2, random_state=0).fit(X, y)
    assert runs == [1, 1]


def _epoch_args(dtype=np.float64, n=50, batch=16):
    rng = np.random.default_rng(0)
    net = Network([4, 6, 3], [get_activation("relu"), get_activation("softmax")],
                  dtype=dtype).initialize("glorot_uniform", rng)
    ws = net.workspace(batch, fast_blas=True, threads=2)
    X = rng.normal(size=(n, 4)).astype(dtype)
    Y = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, n)]
    Xb, Yb = np.empty((batch, 4), dtype), np.empty((batch, 3), dtype)
    return net, ws, X, Y, Xb, Yb


def test_run_epoch_matches_the_steps_it_is_made_of():
    """One epoch by hand: gather, ``loss_and_gradient``, ``Adam.step``."""
    net, ws, X, Y, Xb, Yb = _epoch_args()
    order = np.random.default_rng(3).permutation(len(X))
    start = net.params.copy()
    loss = get_loss("log_loss")
    run = net.epoch_runner(loss, ws, alpha=0.01)
    opt = Adam(net.params.size, net.dtype)
    total = run(X, Y, None, order, Xb, Yb, None, opt, 0.01, None, None, None)
    got, net.params[...] = net.params.copy(), start
    ref_opt, expected = Adam(net.params.size, net.dtype), 0.0
    for lo in range(0, len(X), 16):
        idx = order[lo:lo + 16]
        value, g, _ = net.loss_and_gradient(X[idx], Y[idx].astype(float), loss, alpha=0.01,
                                            ws=ws, training=True)
        expected += value * len(idx)
        ref_opt.step(net.params, g, 0.01)
    np.testing.assert_array_equal(got, net.params)
    assert total == expected and opt.t == ref_opt.t == 4


@pytest.mark.parametrize("by_weights", [False, True])
def test_run_epoch_on_two_threads_takes_no_step_for_a_non_finite_loss(monkeypatch,
                                                                      by_weights):
    """A step's threads take the optimizer's step only where the batch's loss is
    finite: an epoch whose third batch holds an infinite row stops there, with the
    weights and Adam's count of the first two steps."""
    if by_weights:
        monkeypatch.setattr(_dense_fast, "ROWS_GRADIENT_BYTES", 0)
    net, ws, X, Y, Xb, Yb = _epoch_args(n=96, batch=32)
    assert ws.step.splits_by_rows(2) != by_weights
    X[70] = np.inf
    start = net.params.copy()
    loss = get_loss("log_loss")
    opt = Adam(net.params.size, net.dtype)
    total = net.epoch_runner(loss, ws, alpha=0.01)(X, Y, None, None, Xb, Yb, None, opt, 0.01,
                                                   None, None, _TwoThreads())
    assert not np.isfinite(total) and opt.t == 2
    got, net.params[...] = net.params.copy(), start
    ref_opt = Adam(net.params.size, net.dtype)
    for lo in (0, 32):
        _, g, _ = net.loss_and_gradient(X[lo:lo + 32], Y[lo:lo + 32].astype(float), loss,
                                        alpha=0.01, ws=ws, training=True)
        ref_opt.step(net.params, g, 0.01)
    np.testing.assert_array_equal(got, net.params)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("by_weights", [False, True])
def test_run_epoch_on_two_threads_flushes_subnormal_numbers(monkeypatch, dtype, by_weights):
    """Each thread of a step runs with subnormal numbers flushed to zero, as the
    calling thread does: a relu unit whose bias is subnormal (its weights zero)
    is dead, so the epoch's one batch gives its weights and bias no gradient,
    from either thread's rows, and its outgoing weights (summed by the second
    thread, in its block of the parameters) none either. The numpy passes see
    a live unit and give them a gradient. (Adam, at a learning rate of 0, then
    leaves every weight as it was, but for the subnormal bias, which it too
    reads as zero.)"""
    if by_weights:
        monkeypatch.setattr(_dense_fast, "ROWS_GRADIENT_BYTES", 0)
    net, ws, X, Y, Xb, Yb = _epoch_args(dtype, n=32, batch=32)
    assert ws.step.splits_by_rows(2) != by_weights
    tiny = np.finfo(dtype).tiny
    net.coefs[0][:, 2] = 0
    net.intercepts[0][2] = tiny / 8
    start = net.params.copy()
    w2 = 4 * 6 + 6  # after W1 (4 x 6) and b1
    unit_2_out = slice(w2 + 2 * 3, w2 + 3 * 3)  # W2[2, :]
    assert unit_2_out.start > net.params.size // 2  # in the second thread's block
    loss = get_loss("log_loss")
    opt = Adam(net.params.size, net.dtype)
    net.epoch_runner(loss, ws)(X, Y, None, None, Xb, Yb, None, opt, 0.0, None, None,
                               _TwoThreads())
    assert opt.t == 1
    unit_2_in = [2, 8, 14, 20, 26]  # W1[:, 2] and b1[2]
    np.testing.assert_array_equal(ws.grad[unit_2_in], 0)
    np.testing.assert_array_equal(ws.grad[unit_2_out], 0)
    assert net.intercepts[0][2] == 0
    net.params[...] = start
    numpy_ws = net.workspace(32)  # the numpy passes, in the caller's mode
    net.forward(X, numpy_ws, training=True)
    numpy_ws.grad[...] = 0
    net.backward(loss, Y.astype(dtype), numpy_ws, numpy_ws.grad_views, None, 1 / 32, 0.0,
                 0.0)
    assert np.all(numpy_ws.grad[unit_2_in] != 0)
    assert np.all(numpy_ws.grad[unit_2_out] != 0)


def test_run_epoch_uses_the_thread_choice_around_each_step():
    net, ws, X, Y, Xb, Yb = _epoch_args(n=64, batch=32)
    choice = ThreadChoice(2, 32)
    seen = []
    start, stop = choice.start, choice.stop
    choice.start = lambda rows: seen.append(("start", rows)) or start(rows)
    choice.stop = lambda: seen.append("stop") or stop()
    opt = Adam(net.params.size, net.dtype)
    net.epoch_runner(get_loss("log_loss"), ws)(X, Y, None, None, Xb, Yb, None, opt, 0.01,
                                               None, None, choice)
    assert seen == [("start", 32), "stop", ("start", 32), "stop"]


def test_run_epoch_rejects_data_that_do_not_fit():
    net, ws, X, Y, Xb, Yb = _epoch_args()
    run = net.epoch_runner(get_loss("log_loss"), ws)
    opt = Adam(net.params.size, net.dtype)
    with pytest.raises(ValueError, match="C-contiguous float64 array of shape"):
        run(X[:, :3].copy(), Y, None, None, Xb, Yb, None, opt, 0.01, None, None, None)
    with pytest.raises(ValueError, match="C-contiguous"):
        run(np.asfortranarray(X), Y, None, None, Xb, Yb, None, opt, 0.01, None, None, None)
    with pytest.raises(IndexError, match="outside X's 50 rows"):
        order = np.arange(50)
        order[7] = 50
        run(X, Y, None, order, Xb, Yb, None, opt, 0.01, None, None, None)
    big = np.empty((ws.step.batch_size + 1, 4))
    with pytest.raises(ValueError, match="batch_size"):
        run(X, Y, None, None, big, np.empty((big.shape[0], 3)), None, opt, 0.01, None, None,
            None)


def test_no_epoch_runner_without_the_kernel_products():
    net, _, X, Y, Xb, Yb = _epoch_args()
    assert net.epoch_runner(get_loss("log_loss"), net.workspace(16)) is None  # numpy's BLAS
    ws = net.workspace(16, fast_blas=True)
    assert net.epoch_runner(get_loss("squared_error"), ws) is None  # softmax, squared error


def test_run_epoch_by_weights_steps_only_the_parameters_from_offset(monkeypatch):
    """Asked to step only a suffix of the parameters (``offset`` past the lowest
    trainable layer's first), a step by weights steps in its threads the part of
    each block from ``offset`` on: the Python loop's weights, and the parameters
    before ``offset`` as they were."""
    monkeypatch.setattr(_dense_fast, "ROWS_GRADIENT_BYTES", 0)
    net, ws, X, Y, Xb, Yb = _epoch_args(n=64, batch=32)
    assert not ws.step.splits_by_rows(2)
    offset = net.params.size - 10  # the last layer's bias and two rows of its weights
    start = net.params.copy()
    loss = get_loss("log_loss")
    opt = Adam(net.params.size, net.dtype)
    ws.step.run_epoch(X, Y, None, None, Xb, Yb, None, net.params, ws.grad, offset,
                      net._output_code(loss, None, ws), 0.01, 0.0, 0, False, opt, 0.01,
                      None, None, _TwoThreads(), None, 2, 2)
    got, net.params[...] = net.params.copy(), start
    ref_opt = Adam(net.params.size, net.dtype)
    for lo in (0, 32):
        _, g, _ = net.loss_and_gradient(X[lo:lo + 32], Y[lo:lo + 32].astype(float), loss,
                                        alpha=0.01, ws=ws, training=True)
        ref_opt.step(net.params[offset:], g[offset:], 0.01)
    np.testing.assert_array_equal(got, net.params)
    np.testing.assert_array_equal(got[:offset], start[:offset])
    assert not np.array_equal(got[offset:], start[offset:])


def test_targets_and_weights_the_kernel_cannot_read_train_in_the_python_loop(monkeypatch,
                                                                            digits):
    """The compiled epoch reads targets in the network's dtype (or one-hot uint8) and
    C-contiguous sample weights; integer targets and strided weights train in the
    Python loop instead, converted batch by batch, to the same weights bit for bit."""
    from sknet._core import History, Schedule, StoppingRule, TrainConfig

    X, y = digits
    Y = np.eye(10)[y]
    sw = np.repeat(np.random.default_rng(0).uniform(0.5, 2.0, len(y)), 2)
    runs = _spy_runs(monkeypatch)

    def fit(Y, sw):
        net = Network([64, 16, 10], [get_activation("relu"), get_activation("softmax")])
        net.initialize("glorot_uniform", np.random.RandomState(0))
        trainer.fit_stochastic(
            net, get_loss("log_loss"), Adam(net.params.size, net.dtype),
            Schedule("constant", 1e-3), StoppingRule(0.0, 10 ** 6, False), X, Y, sw,
            config=TrainConfig(max_iter=3, batch_size=50, fast_blas=True),
            history=History(), rng=np.random.RandomState(0), dropout_rng=None)
        return net.params

    converted = fit(Y, sw[::2].copy())
    assert len(runs) == 3
    np.testing.assert_array_equal(fit(Y.astype(np.int64), sw[::2].copy()), converted)
    np.testing.assert_array_equal(fit(Y, sw[::2]), converted)
    assert len(runs) == 3  # both ran in the Python loop

"""The compiled training step of a dense stack against the numpy passes.

:class:`sknet._core._dense_fast.DenseStep` runs the forward pass, the output
delta with the loss, and the backward pass with the penalty; the reference is
the network's own numpy layers (``Network.forward`` / ``Network.backward``),
which the estimators use for every activation or loss the kernels lack.
Both run with the same dropout draws: float64 agrees to rounding, float32
closely (its tanh is an approximation, checked to a few ulp, as float64's is). The
tied autoencoder runs the same step on an untied copy of its weights, checked
against its own numpy passes.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from sknet._core import Network, _dense_fast
from sknet._core.activations import get_activation, register_activation
from sknet._core.losses import get_loss
from sknet._core.regularization import penalty_value
from sknet._core.tied import TiedNetwork

TOL = {np.float64: dict(rtol=1e-11, atol=1e-13), np.float32: dict(rtol=2e-4, atol=2e-6)}

OUTPUTS = [("softmax", "log_loss", 4), ("logistic", "binary_log_loss", 3),
           ("logistic", "log_loss", 1), ("identity", "squared_error", 2)]


def _network(hidden, out, k, dtype, seed=0, dropout=None, dropout_kind="dropout",
             n_features=6, widths=(7, 5)):
    acts = [get_activation(name, **params) for name, params in hidden] + [get_activation(out)]
    units = [n_features, *widths[:len(hidden)], k]
    net = Network(units, acts, dtype=dtype, dropout=dropout, dropout_kind=dropout_kind)
    net.initialize("glorot_uniform", np.random.default_rng(seed))
    net.params[...] += np.random.default_rng(seed + 1).normal(scale=0.3, size=net.params.size)
    return net


def _data(k, loss_name, dtype, n=13, n_features=6, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    if loss_name == "squared_error":
        Y = rng.normal(size=(n, k))
    elif loss_name == "log_loss" and k > 1:
        Y = np.eye(k)[rng.integers(0, k, n)]
    else:
        Y = (rng.random((n, k)) < 0.5).astype(float)
    return X, Y.astype(dtype)


def _numpy_reference(net, X, Y, loss, sw, alpha, l1, training, seed):
    """The numpy passes: forward, backward, loss value and penalty."""
    ws = net.workspace(X.shape[0])
    rng = np.random.default_rng(seed)
    P = net.forward(X, ws, training=training, rng=rng)
    sw_sum = float(X.shape[0] if sw is None else np.sum(sw))
    value = loss.value(Y, P, sw) + penalty_value(net.coefs[net.n_frozen:], alpha, l1) / sw_sum
    ws.grad[...] = 0
    net.backward(loss, Y, ws, ws.grad_views, sw, 1.0 / sw_sum, alpha, l1)
    return value, ws.grad.copy()


def _compiled(net, X, Y, loss, sw, alpha, l1, training, seed, blas_in_kernel):
    ws = net.workspace(X.shape[0], fast_blas=blas_in_kernel)
    assert ws.step is not None and ws.blas_in_kernel == blas_in_kernel
    ws.grad[...] = 0
    value, grad, _ = net.loss_and_gradient(X, Y, loss, sw, alpha, l1, ws=ws,
                                           training=training,
                                           rng=np.random.default_rng(seed))
    return value, grad.copy()


def _check(net, X, Y, loss, dtype, sw=None, alpha=0.0, l1=0.0, training=False,
           modes=(True, False)):
    ref_value, ref_grad = _numpy_reference(net, X, Y, loss, sw, alpha, l1, training, 5)
    for blas_in_kernel in modes:
        value, grad = _compiled(net, X, Y, loss, sw, alpha, l1, training, 5, blas_in_kernel)
        assert grad.dtype == dtype
        np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])
        np.testing.assert_allclose(value, ref_value, rtol=TOL[dtype]["rtol"])


HIDDEN = [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.7}),
          ("selu", {}), ("tanh", {}), ("logistic", {}), ("identity", {})]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden", HIDDEN, ids=[h for h, _ in HIDDEN])
@pytest.mark.parametrize("out, loss_name, k", OUTPUTS, ids=[o[1] + str(o[2]) for o in OUTPUTS])
def test_compiled_step_matches_the_numpy_passes(hidden, out, loss_name, k, dtype):
    net = _network([hidden, ("relu", {})], out, k, dtype)
    X, Y = _data(k, loss_name, dtype)
    _check(net, X, Y, get_loss(loss_name), dtype, alpha=0.3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alpha, l1", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.2), (0.4, 0.1)])
def test_sample_weights_and_penalties(alpha, l1, dtype):
    net = _network([("relu", {}), ("elu", {"alpha": 1.0})], "softmax", 3, dtype)
    X, Y = _data(3, "log_loss", dtype)
    net.coefs[0][0, :3] = 0  # sign(0) = 0 in the L1 subgradient
    sw = np.random.default_rng(3).random(X.shape[0]).astype(dtype)
    sw[[1, 4]] = 0
    _check(net, X, Y, get_loss("log_loss"), dtype, sw=sw, alpha=alpha, l1=l1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["dropout", "alpha_dropout"])
def test_dropout_masks_come_from_the_same_draws(kind, dtype):
    hidden = ("selu", {}) if kind == "alpha_dropout" else ("relu", {})
    net = _network([hidden, hidden], "softmax", 4, dtype, dropout=[0.3, 0.5],
                   dropout_kind=kind)
    X, Y = _data(4, "log_loss", dtype)
    _check(net, X, Y, get_loss("log_loss"), dtype, alpha=0.1, training=True)
    _check(net, X, Y, get_loss("log_loss"), dtype, alpha=0.1, training=False)


def test_mixed_dropout_kinds_and_a_layer_without():
    dtype = np.float64
    net = _network([("selu", {}), ("relu", {})], "identity", 2, dtype, dropout=[0.4, 0.0],
                   dropout_kind=["alpha_dropout", "dropout"])
    X, Y = _data(2, "squared_error", dtype)
    _check(net, X, Y, get_loss("squared_error"), dtype, training=True)


@pytest.mark.parametrize("n_frozen", [1, 2])
def test_frozen_layers_get_no_gradient_and_no_penalty(n_frozen):
    dtype = np.float64
    net = _network([("relu", {}), ("relu", {})], "softmax", 3, dtype)
    net.n_frozen = n_frozen
    X, Y = _data(3, "log_loss", dtype)
    _check(net, X, Y, get_loss("log_loss"), dtype, alpha=0.5, l1=0.1)
    for blas_in_kernel in (True, False):
        ws = net.workspace(X.shape[0], fast_blas=blas_in_kernel)
        ws.grad[...] = 7.0  # the frozen prefix is never written
        net.loss_and_gradient(X, Y, get_loss("log_loss"), None, 0.5, 0.1, ws=ws)
        assert np.all(ws.grad[:net.trainable_offset] == 7.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_short_batches_use_the_first_rows_of_the_buffers(dtype):
    net = _network([("relu", {})], "softmax", 3, dtype, dropout=[0.2])
    X, Y = _data(3, "log_loss", dtype, n=20)
    loss = get_loss("log_loss")
    for blas_in_kernel in (True, False):
        ws = net.workspace(20, fast_blas=blas_in_kernel)
        for n in (20, 7, 1):
            value, grad, _ = net.loss_and_gradient(X[:n], Y[:n], loss, None, 0.1, 0.0,
                                                   ws=ws, training=True,
                                                   rng=np.random.default_rng(9))
            ref_value, ref_grad = _numpy_reference(net, X[:n], Y[:n], loss, None, 0.1,
                                                   0.0, True, 9)
            np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])
            np.testing.assert_allclose(value, ref_value, rtol=TOL[dtype]["rtol"])


def _split_step(net, X, Y, loss, sw, alpha, l1, parts, threads, seed=5):
    """The compiled step cut into ``parts`` parts, shared out between ``threads`` threads."""
    ws = net.workspace(X.shape[0], fast_blas=True, threads=parts)
    assert ws.blas_in_kernel and ws.parts == parts
    ws.threads = threads
    ws.grad[...] = 0
    value, grad, _ = net.loss_and_gradient(X, Y, loss, sw, alpha, l1, ws=ws, training=True,
                                           rng=np.random.default_rng(seed))
    return value, grad.copy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("parts, n", [(1, 37), (2, 37), (3, 37), (5, 37), (40, 37), (2, 150),
                                      (3, 150), (4, 150)])
@pytest.mark.parametrize("n_frozen", [0, 1])
@pytest.mark.parametrize("mode", ["rows", "rows-6-row-panels", "rows-blas",
                                  "rows-narrow-blas", "weights"])
def test_a_step_split_into_parts_is_the_numpy_passes_on_any_thread_count(
        monkeypatch, mode, parts, n, n_frozen, dtype):
    """By rows (a small network): each part's rows with their own gradient, summed
    after, the hidden deltas written over the activations a panel of rows at a
    time, on ``W.T`` packed (or, too large to pack, through BLAS); the products
    of these narrow layers (forward and gradient) on an operand packed (or,
    with no room for it, through BLAS). By weights: rows split in the forward
    pass, weight rows and bias entries in the weights pass.

    By rows, each part has at least 16 rows (37 rows: at most 2 parts); with
    6-row panels, a part's 18 to 75 rows take 3 to 13 panels (the last of 75
    rows partial). By weights, 5 parts leave some parts without a weight row of the
    3-wide layer or a bias entry of the 4-wide output; 40 parts are more than
    the 37 rows.
    """
    if mode == "weights":  # no room for the parts' gradients: the weights pass
        monkeypatch.setattr(_dense_fast, "ROWS_GRADIENT_BYTES", 0)
    if mode == "rows-6-row-panels":
        monkeypatch.setattr(_dense_fast, "DELTA_PANEL_BYTES", 1)
    if mode == "rows-blas":
        monkeypatch.setattr(_dense_fast, "PACKED_BYTES", 0)
    if mode == "rows-narrow-blas":
        monkeypatch.setattr(_dense_fast, "NARROW_BYTES", 0)
    net = _network([("relu", {}), ("tanh", {})], "softmax", 4, dtype, dropout=[0.3, 0.2],
                   widths=(7, 3))
    net.n_frozen = n_frozen
    ws = net.workspace(n, fast_blas=True, threads=parts)
    assert ws.step.splits_by_rows(parts) == (mode != "weights" or parts == 1)
    # by rows, the hidden layers have no delta buffers
    assert [d is None for d in ws.deltas] == [ws.step.splits_by_rows(parts)] * 2 + [False]
    X, Y = _data(4, "log_loss", dtype, n=n)
    sw = np.random.default_rng(3).random(X.shape[0]).astype(dtype)
    loss = get_loss("log_loss")
    ref_value, ref_grad = _numpy_reference(net, X, Y, loss, sw, 0.3, 0.1, True, 5)
    results = [_split_step(net, X, Y, loss, sw, 0.3, 0.1, parts, threads)
               for threads in (1, 2, parts)]
    for value, grad in results:
        np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])
        np.testing.assert_allclose(value, ref_value, rtol=TOL[dtype]["rtol"])
        # every value is computed by one part in a fixed order: the threads change nothing
        assert value == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])
        assert np.all(grad[:net.trainable_offset] == 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("parts, threads", [(1, 1), (2, 1), (2, 2)])
@pytest.mark.parametrize("by_weights", [False, True])
def test_the_compiled_step_flushes_subnormal_numbers_to_zero(monkeypatch, dtype, parts,
                                                             threads, by_weights):
    """The step runs with subnormal numbers flushed to zero, on every thread (see
    the optimizers' passes). A relu unit whose bias is subnormal (its weights
    zero) is then dead, as with a bias of zero: its weights and bias get no
    gradient, bit for bit the step with the zero bias. The numpy passes, run
    after the step in the caller's mode (which the step puts back), see a
    positive activation and give them a gradient. So does a feature whose
    values are all subnormal: it trains as a feature of zeros in the step."""
    if by_weights:
        monkeypatch.setattr(_dense_fast, "ROWS_GRADIENT_BYTES", 0)
    net = _network([("relu", {})], "softmax", 3, dtype, widths=(7,))
    X, Y = _data(3, "log_loss", dtype, n=40)
    assert net.workspace(40, fast_blas=True, threads=2).step.splits_by_rows(2) != by_weights
    tiny = np.finfo(dtype).tiny
    X[:, 0] = tiny / 8 * np.sign(X[:, 0])
    zeroed = X.copy()
    zeroed[:, 0] = 0
    net.coefs[0][:, 2] = 0
    net.intercepts[0][2] = 0
    loss = get_loss("log_loss")
    expected_value, expected = _split_step(net, zeroed, Y, loss, None, 0.0, 0.0, parts,
                                           threads)
    net.intercepts[0][2] = tiny / 8
    value, grad = _split_step(net, X, Y, loss, None, 0.0, 0.0, parts, threads)
    assert value == expected_value
    np.testing.assert_array_equal(grad, expected)
    unit_2_in = np.r_[np.arange(2, 42, 7), 42 + 2]  # W1[:, 2] and b1[2]
    feature_0 = slice(0, 7)  # W1[0, :]
    np.testing.assert_array_equal(grad[unit_2_in], 0)
    np.testing.assert_array_equal(grad[feature_0], 0)
    ref_grad = _numpy_reference(net, X, Y, loss, None, 0.0, 0.0, True, 5)[1]
    assert np.all(ref_grad[unit_2_in] != 0)
    assert np.count_nonzero(ref_grad[feature_0]) >= 6  # subnormal, from the live units


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("parts, n", [(1, 150), (2, 150), (3, 150), (2, 37)])
@pytest.mark.parametrize("room", ["small", "blas"])
@pytest.mark.parametrize("widths", [(40, 100), (64, 128)])
def test_wider_layers_multiply_on_operands_in_place_or_packed_a_block_of_columns_at_a_time(
        monkeypatch, room, widths, parts, n, dtype):
    """By rows, a layer wider than the parts' room for a packed operand (sized by
    the 4-wide output) runs its products on the small-product kernel with its
    operand (the weights forward, a part's deltas for the gradient) read in
    place, the columns past its last whole panel packed; where the operand's
    rows are a multiple of 512 bytes apart (64 and 128 float64 units, 128
    float32), packed a block of columns at a time (the last block partial).
    With no room, BLAS runs them. The numpy passes either way."""
    if room == "blas":
        monkeypatch.setattr(_dense_fast, "NARROW_BYTES", 0)
    net = _network([("relu", {}), ("tanh", {})], "softmax", 4, dtype, dropout=[0.3, 0.2],
                   widths=widths)
    ws = net.workspace(n, fast_blas=True, threads=parts)
    assert ws.step.splits_by_rows(parts)
    X, Y = _data(4, "log_loss", dtype, n=n)
    sw = np.random.default_rng(3).random(n).astype(dtype)
    loss = get_loss("log_loss")
    ref_value, ref_grad = _numpy_reference(net, X, Y, loss, sw, 0.3, 0.1, True, 5)
    for threads in sorted({1, parts}):
        value, grad = _split_step(net, X, Y, loss, sw, 0.3, 0.1, parts, threads)
        np.testing.assert_allclose(grad, ref_grad, rtol=TOL[dtype]["rtol"],
                                   atol=TOL[dtype]["atol"] * np.abs(ref_grad).max())
        np.testing.assert_allclose(value, ref_value, rtol=TOL[dtype]["rtol"])


def test_a_step_reused_with_more_parts_grows_its_part_buffers():
    """The parts' gradients and scratch are allocated for the most parts asked so far:
    a step first run in 2 parts, then in 4, gives the fresh 4-part step's bits."""
    net = _network([("relu", {}), ("tanh", {})], "softmax", 4, np.float64, widths=(7, 3))
    X, Y = _data(4, "log_loss", np.float64, n=80)
    loss = get_loss("log_loss")
    ws = net.workspace(80, fast_blas=True, threads=4)
    ws.parts = ws.threads = 2
    net.loss_and_gradient(X, Y, loss, ws=ws)
    ws.parts = ws.threads = 4
    value, grad, _ = net.loss_and_gradient(X, Y, loss, ws=ws)
    expected_value, expected_grad = _split_step(net, X, Y, loss, None, 0.0, 0.0, 4, 4)
    assert value == expected_value
    np.testing.assert_array_equal(grad, expected_grad)


def test_a_step_by_rows_gains_the_hidden_delta_buffers_when_the_numpy_passes_run():
    dtype = np.float64
    net = _network([("relu", {})], "softmax", 3, dtype)
    X, Y = _data(3, "log_loss", dtype)
    loss = get_loss("log_loss")
    ref_value, ref_grad = _numpy_reference(net, X, Y, loss, None, 0.2, 0.0, False, 0)
    ws = net.workspace(X.shape[0], fast_blas=True)
    assert ws.deltas[0] is None
    with pytest.raises(ValueError, match="no delta buffer"):
        ws.step.hidden_delta(0, 4, False)
    # the fused output delta forbidden: the numpy passes, which need the buffers
    value, grad, _ = net.loss_and_gradient(X, Y, loss, None, 0.2, ws=ws, fused=False)
    assert ws.deltas[0] is not None
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    # and the compiled step still runs by rows, over the activations
    value, grad, _ = net.loss_and_gradient(X, Y, loss, None, 0.2, ws=ws)
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])


def test_split_parts_follow_the_threads_the_rows_and_the_arithmetic():
    net = _network([("relu", {})], "softmax", 10, np.float64, n_features=64, widths=(100,))
    assert net.split_parts(200, threads=2) == 2
    assert net.split_parts(200, threads=0) == 1  # built without OpenMP
    assert net.split_parts(200, threads=64) == 12  # at least 16 rows a part
    assert net.split_parts(31, threads=2) == 1
    small = _network([("relu", {})], "softmax", 2, np.float64, n_features=3, widths=(4,))
    assert small.split_parts(200, threads=8) == 1  # 6 * 200 * 20 flops: one part's worth


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_takes_the_staged_step(fmt):
    dtype = np.float64
    net = _network([("relu", {})], "softmax", 3, dtype)
    X, Y = _data(3, "log_loss", dtype)
    X[np.abs(X) < 0.8] = 0
    ref_value, ref_grad = _numpy_reference(net, X, Y, get_loss("log_loss"), None, 0.2, 0.0,
                                           False, 0)
    ws = net.workspace(X.shape[0], fast_blas=True)
    value, grad, _ = net.loss_and_gradient(sp.csr_matrix(X).asformat(fmt), Y,
                                           get_loss("log_loss"), None, 0.2, ws=ws)
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)


def test_wide_layers_leave_the_products_to_numpy():
    net = Network([500, 200, 3], [get_activation("relu"), get_activation("softmax")])
    assert not net.workspace(200, fast_blas=True).blas_in_kernel
    assert net.workspace(20, fast_blas=True).blas_in_kernel
    assert not net.workspace(20, fast_blas=False).blas_in_kernel


def test_activations_without_a_kernel_take_the_numpy_passes(activation_registry):
    name = "softsign_dense_kernels"
    activation_registry.append(name)
    act = register_activation(name, lambda z: z / (1 + np.abs(z)),
                              lambda a, g: g * (1 - np.abs(a)) ** 2)
    net = Network([4, 5, 2], [act, get_activation("softmax")])
    assert net.workspace(8, fast_blas=True).step is None
    assert net.split_parts(200, threads=4) == 1  # nothing compiled to split
    assert net.workspace(200, fast_blas=True, threads=4).parts == 1
    # softmax below the output, exp (Poisson): no compiled form either
    softmax_hidden = Network([4, 5, 2], [get_activation("softmax")] * 2)
    assert softmax_hidden.workspace(8).step is None
    exp_out = Network([4, 5, 2], [get_activation("relu"), get_activation("exp")])
    exp_out.initialize("glorot_uniform", np.random.default_rng(0))
    ws = exp_out.workspace(8, fast_blas=True)
    assert ws.step is None
    X, Y = _data(2, "squared_error", np.float64, n=8, n_features=4)
    Y = np.abs(Y)
    ref_value, ref_grad = _numpy_reference(exp_out, X, Y, get_loss("poisson"), None,
                                           0.0, 0.0, False, 0)
    value, grad, _ = exp_out.loss_and_gradient(X, Y, get_loss("poisson"), ws=ws)
    np.testing.assert_array_equal(grad, ref_grad)
    assert value == ref_value


def _tied(names, dtype, units=(6, 5, 3, 5, 6), n_frozen=0, dropout=None, seed=0):
    tied = TiedNetwork(list(units), [get_activation(n) for n in names], dtype=dtype,
                       dropout=dropout)
    tied.params[...] = np.random.default_rng(seed).normal(scale=0.5, size=tied.params.size)
    tied.n_frozen = n_frozen
    return tied


def _tied_numpy_reference(tied, X, Y, loss, sw, alpha, l1, training, seed):
    """The tied network's numpy passes; the penalty counts each shared matrix once."""
    ws = Network.workspace(tied, X.shape[0])
    ws.step = None  # the numpy layers only
    ws.grad[...] = 0
    value, grad, _ = tied.loss_and_gradient(X, Y, loss, sw, alpha, l1, ws=ws,
                                            training=training,
                                            rng=np.random.default_rng(seed))
    return value, grad.copy()


TIED = [(("relu", "tanh", "relu", "identity"), "squared_error"),
        (("tanh", "elu", "tanh", "logistic"), "binary_log_loss"),
        (("selu", "logistic", "leaky_relu", "identity"), "squared_error")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("names, loss_name", TIED, ids=[t[1] + "-" + t[0][0] for t in TIED])
@pytest.mark.parametrize("alpha, l1", [(0.0, 0.0), (0.4, 0.1)])
def test_tied_network_runs_the_compiled_step_on_untied_weights(names, loss_name, alpha,
                                                                l1, dtype):
    tied = _tied(names, dtype)
    rng = np.random.default_rng(4)
    X = rng.random((11, 6)).astype(dtype)
    Y = X if loss_name == "binary_log_loss" else rng.normal(size=(11, 6)).astype(dtype)
    sw = (rng.random(11) + 0.1).astype(dtype)
    loss = get_loss(loss_name)
    for weights in (None, sw):
        ref_value, ref_grad = _tied_numpy_reference(tied, X, Y, loss, weights, alpha, l1,
                                                    False, 0)
        for blas_in_kernel in (True, False):
            value, grad = _compiled(tied, X, Y, loss, weights, alpha, l1, False, 0,
                                    blas_in_kernel)
            assert grad.dtype == dtype and grad.shape == tied.params.shape
            np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])
            np.testing.assert_allclose(value, ref_value, rtol=TOL[dtype]["rtol"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [23, 150])  # by weight rows, by rows
def test_tied_network_splits_its_step_like_the_untied_one(dtype, n):
    tied = _tied(("relu", "tanh", "elu", "identity"), dtype, dropout=[0.2, 0.0, 0.3])
    rng = np.random.default_rng(4)
    X = rng.random((n, 6)).astype(dtype)
    sw = (rng.random(n) + 0.1).astype(dtype)
    loss = get_loss("squared_error")
    ref_value, ref_grad = _tied_numpy_reference(tied, X, X, loss, sw, 0.4, 0.1, True, 5)
    results = [_split_step(tied, X, X, loss, sw, 0.4, 0.1, 3, threads) for threads in (1, 3)]
    for value, grad in results:
        assert grad.shape == tied.params.shape
        np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])
        np.testing.assert_allclose(value, ref_value, rtol=TOL[dtype]["rtol"])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("n_frozen", [0, 1])
def test_tied_network_with_dropout_and_a_frozen_encoder_layer(n_frozen):
    dtype = np.float64
    tied = _tied(("relu", "tanh", "relu", "identity"), dtype, n_frozen=n_frozen,
                 dropout=[0.3, 0.2, 0.4])
    rng = np.random.default_rng(5)
    X, Y = rng.random((9, 6)), rng.normal(size=(9, 6))
    loss = get_loss("squared_error")
    ref_value, ref_grad = _tied_numpy_reference(tied, X, Y, loss, None, 0.2, 0.1, True, 3)
    for blas_in_kernel in (True, False):
        ws = tied.workspace(X.shape[0], fast_blas=blas_in_kernel)
        ws.grad[...] = 7.0  # the frozen prefix is never written
        value, grad, _ = tied.loss_and_gradient(X, Y, loss, None, 0.2, 0.1, ws=ws,
                                                training=True, rng=np.random.default_rng(3))
        off = tied.trainable_offset
        assert np.all(grad[:off] == 7.0)
        np.testing.assert_allclose(grad[off:], ref_grad[off:], **TOL[dtype])
        np.testing.assert_allclose(value, ref_value, rtol=TOL[dtype]["rtol"])


def test_non_canonical_fused_choice_takes_the_numpy_passes():
    dtype = np.float64
    net = _network([("relu", {})], "softmax", 3, dtype)
    X, Y = _data(3, "log_loss", dtype)
    ws = net.workspace(X.shape[0], fast_blas=True)
    loss = get_loss("log_loss")
    fused, _, _ = net.loss_and_gradient(X, Y, loss, ws=ws)
    general, grad, _ = net.loss_and_gradient(X, Y, loss, ws=ws, fused=False)
    _, ref_grad = _numpy_reference(net, X, Y, loss, None, 0.0, 0.0, False, 0)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fused, general, rtol=1e-12)


def test_float32_softmax_and_logistic_saturate_without_overflow():
    """Huge pre-activations: the compiled step gives finite deltas and a clipped loss."""
    dtype = np.float32
    for out, loss_name, k in OUTPUTS[:2]:
        net = _network([("relu", {})], out, k, dtype)
        net.params[...] *= 200
        X, Y = _data(k, loss_name, dtype)
        X *= 100
        ws = net.workspace(X.shape[0], fast_blas=True)
        value, grad, _ = net.loss_and_gradient(X, Y, get_loss(loss_name), ws=ws)
        assert np.isfinite(value) and np.isfinite(grad).all()
        # the loss per sample is at most -log(eps) per output
        assert value <= k * -np.log(np.finfo(dtype).eps) * 1.001


def test_step_rejects_batches_that_do_not_fit():
    net = _network([("relu", {})], "softmax", 3, np.float64)
    ws = net.workspace(5, fast_blas=True)
    X, Y = _data(3, "log_loss", np.float64, n=6)
    with pytest.raises(ValueError, match="does not fit"):
        ws.step.run(X, Y, None, net.params, ws.grad, 1, 1.0, 0.0, 0.0, 0, False)
    with pytest.raises(ValueError, match="must hold"):
        ws.step.run(X[:5], Y[:5], None, net.params[:-1], ws.grad, 1, 1.0, 0.0, 0.0, 0,
                    False)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_small_fit_runs_the_kernels_blas_on_one_thread(monkeypatch):
    """The compiled step calls scipy's BLAS: the fit's thread limit must cover it."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from sknet import MLPClassifier

    seen = []
    compiled, runner = Network._compiled_loss_and_gradient, Network.epoch_runner

    def record():
        seen.append({lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
                     if lib["user_api"] == "blas"})

    def recording(self, *args):
        record()
        return compiled(self, *args)

    def epoch_runner(self, *args):  # whole epochs in compiled code
        run = runner(self, *args)
        return None if run is None else lambda *a: record() or run(*a)

    monkeypatch.setattr(Network, "_compiled_loss_and_gradient", recording)
    monkeypatch.setattr(Network, "epoch_runner", epoch_runner)
    X, y = _data(3, "log_loss", np.float64, n=40)
    with threadpool_limits(2, user_api="blas"):
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, batch_size=20,
                      random_state=0).fit(X, y.argmax(axis=1))
    assert seen and all(n == 1 for threads in seen for n in threads.values())


def _expm1_exact(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


@pytest.mark.parametrize("name, exact, ulps", [
    ("tanh", np.tanh, {np.float64: 3, np.float32: 8}),
    ("logistic", lambda x: 1 / (1 + np.exp(-x)), {np.float64: 3, np.float32: 3}),
    ("elu", _expm1_exact, {np.float64: 2, np.float32: 2})])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_activations_are_within_a_few_ulp(name, exact, ulps, dtype):
    """The kernels' tanh, logistic and ELU against long double numpy.

    float32's tanh is a rational approximation, within 7 ulp; the others come
    from the branch-free exponentials of ``_vector_math.h`` (float64's tanh
    from ``e^-2|x| - 1``, the ELU's ``e^x - 1`` alike), within 3 ulp. Results
    below ``tiny * 1e3`` (the logistic far left) are within ``tiny * 1e3``.
    """
    tiny = float(np.finfo(dtype).tiny)
    z = np.concatenate([np.linspace(-50, 50, 200_001), np.geomspace(1e-30, 40, 50_001),
                        -np.geomspace(1e-30, 40, 50_001),
                        [0.0, np.inf, -np.inf, np.finfo(dtype).max]]).astype(dtype)
    net = Network([1, z.size], [get_activation(name)], dtype=dtype)
    ws = net.workspace(1)
    ws.acts[0][0] = z  # the layer's product; its bias is 0
    ws.step.forward_layer(net.params, 0, 1, False)
    a = ws.acts[0][0].astype(np.longdouble)
    want = exact(z.astype(np.longdouble))
    infinite = np.isinf(want)  # the ELU at +inf
    assert np.array_equal(a[infinite], want[infinite])
    a, want = a[~infinite], want[~infinite]
    error = np.abs(a - want)
    normal = np.abs(want) > tiny * 1e3
    with np.errstate(over="ignore"):  # the spacing above the largest float: inf
        spacing = np.spacing(np.abs(want[normal]).astype(dtype))
    assert (error[normal] / spacing).max() <= ulps[dtype]
    assert error[~normal].max() <= tiny * 1e3
    ws.acts[0][0] = np.nan
    ws.step.forward_layer(net.params, 0, 1, False)
    assert np.isnan(ws.acts[0][0]).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_gather_rows_copies_the_rows_numpy_takes(dtype, threads):
    """A shuffled batch's rows, copied in blocks by threads: ``X.take(idx, axis=0)``."""
    from sknet._core._dense_fast import gather_rows
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 13)).astype(dtype)
    for idx in (rng.permutation(50)[:11], np.array([49, 0, 0, 49]), np.arange(50)):
        out = np.full((idx.size, 13), np.nan, dtype)
        gather_rows(X, idx, out, threads)
        np.testing.assert_array_equal(out, X.take(idx, axis=0))


def test_gather_rows_rejects_indices_outside_x_and_a_wrong_buffer():
    from sknet._core._dense_fast import gather_rows
    X = np.zeros((4, 3))
    with pytest.raises(IndexError, match="row index 4 is outside X's 4 rows"):
        gather_rows(X, np.array([0, 4]), np.empty((2, 3)))
    with pytest.raises(IndexError, match="row index -1"):
        gather_rows(X, np.array([-1]), np.empty((1, 3)))
    with pytest.raises(ValueError, match=r"out has shape \(2, 2\); the rows need \(2, 3\)"):
        gather_rows(X, np.array([0, 1]), np.empty((2, 2)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_large_shuffled_batches_are_gathered_by_gather_rows(monkeypatch):
    """Dense float X: batches of at least ``GATHER_BYTES`` come from ``gather_rows``
    (on the step's threads), smaller ones from numpy's take; the fit is the same.

    (The trainer's Python loop; compiled epochs gather in the step's parts.)
    """
    from sknet import MLPClassifier
    from sknet._core import trainer

    monkeypatch.setattr(trainer, "_compiled_epoch", lambda *a: None)

    calls = []
    real = trainer.gather_rows

    def spy(X, idx, out, threads):
        calls.append(threads)
        real(X, idx, out, threads)

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 20))
    y = (X[:, 0] > 0).astype(int)
    params = dict(hidden_layer_sizes=(16,), max_iter=3, batch_size=64, random_state=0)
    monkeypatch.setattr(trainer, "gather_rows", spy)
    small = MLPClassifier(**params).fit(X, y)  # 64 x 20 float64: 10 KiB batches
    assert calls == []
    monkeypatch.setattr(trainer, "GATHER_BYTES", 64 * 20 * 8)
    large = MLPClassifier(**params).fit(X, y)
    assert len(calls) == 3 * 5
    for a, b in zip(small.coefs_ + small.intercepts_, large.coefs_ + large.intercepts_):
        np.testing.assert_array_equal(a, b)

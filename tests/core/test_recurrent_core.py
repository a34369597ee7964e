"""The recurrent core: gradients, padding, directions, dtypes, kernels, and PyTorch parity.

Finite differences in float64 check every cell x depth x direction x padding,
with penalties, sample weights, dropout and frozen layers. The compiled time
loops must give what the numpy loops of ``reference_recurrent.py`` give
(float64 to rounding, float32 closely), for every cell x depth x direction x
padding and every activation of the simple RNN. Padding must change
nothing, the reverse direction must be the forward one on reversed steps, and
(with torch installed) outputs and gradients must match ``torch.nn.RNN``,
``LSTM`` and ``GRU`` given the same weights.
"""

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sknet._core._dense_fast import openmp_threads

from sknet._core import _recurrent_fast as fast
from sknet._core import fit_lbfgs, get_activation, get_loss, register_activation
from sknet._core import recurrent as recurrent_module
from sknet._core.protocol import TrainableNetwork
from sknet._core.recurrent import RecurrentNetwork
from sknet._core.trainer import History

CELLS = ["rnn", "lstm", "gru"]
SQUARED = get_loss("squared_error")


def _load_reference():
    path = Path(__file__).with_name("reference_recurrent.py")
    spec = importlib.util.spec_from_file_location("reference_recurrent", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


def _network(cell, layers, bidirectional, n_features=2, n_outputs=2, seed=0, **kw):
    net = RecurrentNetwork(n_features, layers, n_outputs, cell=cell,
                           bidirectional=bidirectional, **kw)
    net.params[...] = np.random.default_rng(seed).normal(scale=0.5, size=net.params.size)
    return net


def _sequences(n, T, F, lengths=None, seed=1):
    """``(n, T, F)`` normal values, NaN after each sequence's length."""
    X = np.random.default_rng(seed).normal(size=(n, T, F))
    if lengths is not None:
        for i, length in enumerate(lengths):
            X[i, length:] = np.nan
    return X


def _pad_to(X, lengths, T):
    """The same sequences NaN-padded to ``T`` steps."""
    out = np.full((X.shape[0], T, X.shape[2]), np.nan)
    for i, length in enumerate(lengths):
        out[i, :length] = X[i, :length]
    return out


def _numeric_gradient(f, params, indices, h=1e-6):
    g = np.empty(len(indices))
    for j, i in enumerate(indices):
        old = params[i]
        params[i] = old + h
        up = f()
        params[i] = old - h
        down = f()
        params[i] = old
        g[j] = (up - down) / (2 * h)
    return g


def _check_gradient(net, X, Y, loss=SQUARED, indices=None, seed=None, **kw):
    """Compare the gradient with central differences; ``seed`` re-seeds dropout."""
    def evaluate():
        rng = None if seed is None else np.random.default_rng(seed)
        return net.loss_and_gradient(X, Y, loss, rng=rng, **kw)

    value, grad, _ = evaluate()
    grad = grad.copy()
    if indices is None:
        indices = np.arange(net.trainable_offset, net.params.size)
    numeric = _numeric_gradient(lambda: evaluate()[0], net.params, indices)
    assert np.isfinite(value)
    np.testing.assert_allclose(grad[indices], numeric, rtol=1e-6, atol=1e-8)
    return grad


# --------------------------------------------------------------------------- #
# finite differences                                                           #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cell, layers, bidirectional, padded",
                         list(itertools.product(CELLS, ([3], [3, 2]), [False, True], [False, True])))
def test_gradient_matches_finite_differences(cell, layers, bidirectional, padded):
    X = _sequences(4, 5, 2, lengths=[5, 3, 1, 4] if padded else None)
    Y = np.random.default_rng(2).normal(size=(4, 2))
    net = _network(cell, layers, bidirectional)
    kw = {}
    if padded:
        kw = {"alpha": 0.3, "l1": 0.1}
    if bidirectional:
        kw["sample_weight"] = np.array([0.5, 2.0, 1.0, 0.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _check_gradient(net, X, Y, **kw)


@pytest.mark.parametrize("cell, n, T", [("lstm", 3, 1), ("gru", 1, 4), ("rnn", 1, 1)])
def test_gradient_for_a_single_step_or_a_single_sequence(cell, n, T):
    X = _sequences(n, T, 2)
    Y = np.random.default_rng(2).normal(size=(n, 2))
    _check_gradient(_network(cell, [3, 2], True), X, Y, alpha=0.1)


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_with_one_unit_a_layer(cell):
    X = _sequences(4, 5, 2, lengths=[5, 3, 1, 4])
    Y = np.random.default_rng(2).normal(size=(4, 2))
    _check_gradient(_network(cell, [1, 1], True), X, Y, alpha=0.1)


@pytest.mark.parametrize("rates", [[0.3, 0.4], [0.3, 0.0], [0.0, 0.4]],
                         ids=["both-layers", "lower-layer", "upper-layer"])
@pytest.mark.parametrize("kind", ["dropout", "alpha_dropout"])
def test_gradient_with_dropout_matches_finite_differences_for_a_fixed_mask(kind, rates):
    X = _sequences(4, 5, 2, lengths=[5, 2, 4, 3])
    Y = np.random.default_rng(2).normal(size=(4, 2))
    net = _network("lstm", [3, 2], True, dropout=rates, dropout_kind=kind)
    assert net.uses_rng
    grad = _check_gradient(net, X, Y, seed=7, training=True, alpha=0.1)
    # the masks matter: without dropout the gradient differs
    plain = net.loss_and_gradient(X, Y, SQUARED, alpha=0.1)[1]
    assert not np.allclose(grad, plain)


@pytest.mark.parametrize("cell", CELLS)
def test_frozen_first_layer_gets_zero_gradient_and_the_rest_matches(cell):
    X = _sequences(4, 5, 2, lengths=[5, 3, 2, 4])
    Y = np.random.default_rng(2).normal(size=(4, 2))
    net = _network(cell, [3, 2], True)
    net.n_frozen = 1
    assert net.trainable_offset == net.layer_slice(1).start
    grad = _check_gradient(net, X, Y, alpha=0.2, l1=0.1)
    assert np.all(grad[:net.trainable_offset] == 0)
    full = _network(cell, [3, 2], True).loss_and_gradient(X, Y, SQUARED, alpha=0.2, l1=0.1)[1]
    np.testing.assert_allclose(grad[net.trainable_offset:], full[net.trainable_offset:],
                               rtol=1e-13)
    net.n_frozen = net.n_layers
    assert np.all(net.loss_and_gradient(X, Y, SQUARED)[1] == 0)


def test_gradient_through_an_activation_that_needs_its_input(activation_registry):
    softsign = register_activation("softsign_rnn_test", lambda z: z / (1 + np.abs(z)),
                                   lambda z, g: g / (1 + np.abs(z)) ** 2,
                                   derivative_of="input")
    activation_registry.append(softsign.name)
    X = _sequences(3, 4, 2, lengths=[4, 2, 3])
    Y = np.random.default_rng(2).normal(size=(3, 2))
    net = _network("rnn", [3, 3], True, activation=softsign)
    _check_gradient(net, X, Y, alpha=0.1)


@pytest.mark.parametrize("loss, output, k", [("log_loss", "softmax", 3),
                                             ("squared_error", "logistic", 2),
                                             ("binary_log_loss", "logistic", 2)])
def test_gradient_through_other_outputs(loss, output, k):
    X = _sequences(5, 4, 2, lengths=[4, 2, 3, 1, 4])
    Y = np.eye(k)[[0, 1, 2 % k, 1, 0]]
    net = _network("gru", [3], False, n_outputs=k, output_activation=get_activation(output))
    _check_gradient(net, X, Y, loss=get_loss(loss))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("frozen", [0, 1, 2])
@pytest.mark.parametrize("loss, output, k", [("squared_error", "identity", 2),
                                             ("log_loss", "softmax", 3),
                                             ("log_loss", "logistic", 1),
                                             ("binary_log_loss", "logistic", 3)])
def test_the_compiled_output_layer_matches_the_numpy_one(loss, output, k, frozen, dtype):
    """The output layer's compiled step (forward, loss, delta, gradients) against the
    numpy layers, with sample weights, both penalties, dropout and frozen layers."""
    rng = np.random.default_rng(2)
    X = _sequences(6, 5, 2, [5, 2, 3, 1, 5, 4]).astype(dtype)
    if output == "identity":
        Y = rng.normal(size=(6, k))
    elif output == "softmax":
        Y = np.eye(k)[rng.integers(0, k, 6)]
    else:
        Y = rng.integers(0, 2, (6, k)).astype(float)
    sw = rng.uniform(0.5, 2.0, 6)
    net = RecurrentNetwork(2, [4], k, cell="lstm", output_activation=get_activation(output),
                           dropout=[0.3], dtype=dtype)
    net.params[...] = rng.normal(scale=0.5, size=net.params.size)
    net.n_frozen = frozen
    loss = get_loss(loss)

    def run(compiled):
        ws = net.workspace(8)
        assert net._head_code(loss, ws, 6) is not None
        if not compiled:
            ws.head = None  # the numpy layers
        value, grad, _ = net.loss_and_gradient(X, Y, loss, sw, alpha=0.1, l1=0.05, ws=ws,
                                               training=True, rng=np.random.default_rng(5))
        return value, grad.copy()

    (value, grad), (expected_value, expected_grad) = run(True), run(False)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(value, expected_value, rtol=rtol)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol,
                               atol=rtol * np.abs(expected_grad).max())
    assert not grad[:net.trainable_offset].any()
    assert grad[net.trainable_offset:].any() == (frozen < 2)


# --------------------------------------------------------------------------- #
# compiled time loops against the numpy reference                              #
# --------------------------------------------------------------------------- #
def _everything(net, X, Y, training, seed=3):
    """What the time loops reach: outputs, sequences, loss, gradient, state gradients."""
    out = {"predict": net.predict(X).copy()}
    for k in range(len(net.recurrent)):
        out[f"sequence {k}"] = net.sequence_output(X, layer=k)
    rng = np.random.default_rng(seed) if training else None
    value, grad, _ = net.loss_and_gradient(X, Y, SQUARED, alpha=0.1, training=training,
                                           rng=rng)
    out["loss"], out["gradient"] = np.array(value, dtype=net.dtype), grad.copy()
    out["state gradient norms"] = net.state_gradient_norms(X, Y, SQUARED)
    return out


def _assert_matches_reference(net, X, Y, training=False):
    ours = _everything(net, X, Y, training)
    with reference.reference_cells(net):
        theirs = _everything(net, X, Y, training)
    assert ours["gradient"][net.trainable_offset:].any()
    if net.dtype == np.float64:
        rtol, atol = 1e-11, 1e-13
    else:
        rtol, atol = 2e-4, 2e-5
    for key, expected in theirs.items():
        assert ours[key].dtype == net.dtype, key
        scale = max(np.abs(expected).max(), 1e-300)
        np.testing.assert_allclose(ours[key], expected, rtol=rtol, atol=atol * scale,
                                   err_msg=key)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell, layers, bidirectional, padded",
                         list(itertools.product(CELLS, ([9], [9, 17]), [False, True],
                                                [False, True])))
def test_compiled_loops_match_the_numpy_reference(cell, layers, bidirectional, padded, dtype):
    lengths = [8, 3, 1, 8, 6, 2, 7] if padded else None
    X = _sequences(7, 8, 3, lengths).astype(dtype)
    Y = np.random.default_rng(2).normal(size=(7, 2)).astype(dtype)
    net = RecurrentNetwork(3, layers, 2, cell=cell, bidirectional=bidirectional,
                           dropout=[0.3] * len(layers), dtype=dtype)
    net.params[...] = np.random.default_rng(0).normal(scale=0.5, size=net.params.size)
    _assert_matches_reference(net, X, Y)
    _assert_matches_reference(net, X, Y, training=True)  # dropout masks from one seed
    net.n_frozen = len(layers) - 1 if len(layers) > 1 else 1
    _assert_matches_reference(net, X, Y, training=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("n", [8, 10, 12, fast.PACKED_MAX_ROWS + 12])
def test_packed_and_blas_step_products_match_the_numpy_reference(cell, n, dtype):
    """Up to ``PACKED_MAX_ROWS`` rows the loops multiply by packed weights, above in BLAS.

    A state of 16 fills whole panels; 12 rows fill tiles of 6, 8 leave two
    rows (run across three panels at once), 10 leave a partial tile of 4. The
    other tests' odd sizes leave partial panels.
    """
    lengths = np.random.default_rng(4).integers(1, 6, n)
    X = _sequences(n, 5, 3, lengths).astype(dtype)
    Y = np.random.default_rng(2).normal(size=(n, 2)).astype(dtype)
    net = RecurrentNetwork(3, [16, 8], 2, cell=cell, bidirectional=True, dtype=dtype)
    net.params[...] = np.random.default_rng(0).normal(scale=0.5, size=net.params.size)
    _assert_matches_reference(net, X, Y)


RNN_ACTIVATIONS = [("identity", {}), ("tanh", {}), ("logistic", {}), ("relu", {}),
                   ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.7}),
                   ("selu", {}), ("exp", {})]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, params", RNN_ACTIVATIONS)
def test_every_rnn_activation_is_compiled_and_matches_the_reference(name, params, dtype):
    activation = get_activation(name, **params)
    X = _sequences(6, 6, 3, [6, 2, 5, 1, 6, 4]).astype(dtype)
    Y = np.random.default_rng(2).normal(size=(6, 2)).astype(dtype)
    net = RecurrentNetwork(3, [9, 5], 2, cell="rnn", bidirectional=True,
                           activation=activation, dtype=dtype)
    scale = 0.1 if name == "exp" else 0.3  # exp's states must stay far from overflow
    net.params[...] = np.random.default_rng(0).normal(scale=scale, size=net.params.size)
    assert net.recurrent[0].cell._code == fast.ACTIVATION_CODES[name]
    _assert_matches_reference(net, X, Y)


def test_the_exp_activation_saturates_where_the_dense_one_does():
    """At ``log(max) - 1``: a state of ``exp(708.5)`` is kept, one of ``exp(720)``
    becomes ``max / e``, in the compiled loop as in the numpy activation."""
    net = RecurrentNetwork(1, [2], 1, cell="rnn", activation=get_activation("exp"))
    (layer,), (W,), (b,) = net.weights()
    for value in layer.values():
        value[...] = 0.0
    layer["weight_ih"][...] = [[708.5], [720.0]]
    W[...], b[...] = [[1e-300], [1e-300]], 0.0
    X = np.ones((3, 2, 1))
    states = np.array([np.exp(708.5), np.finfo(float).max / np.e])
    np.testing.assert_allclose(net.predict(X), states.sum() * 1e-300, rtol=1e-12)
    with reference.reference_cells(net):
        np.testing.assert_allclose(net.predict(X), states.sum() * 1e-300, rtol=1e-12)


@pytest.mark.parametrize("name, params", [case for case in RNN_ACTIVATIONS
                                          if case[0] in ("relu", "leaky_relu", "elu", "selu")])
def test_a_kinked_activation_at_its_kink_matches_the_reference(name, params):
    """Zero inputs and zero biases hold every pre-activation at 0, where the
    numpy activations take the left-hand derivative (tests/core/test_activations.py)."""
    net = RecurrentNetwork(3, [5], 2, cell="rnn", activation=get_activation(name, **params))
    net.params[...] = np.random.default_rng(0).normal(scale=0.5, size=net.params.size)
    for key, value in net.weights()[0][0].items():
        if key.startswith("bias"):
            value[...] = 0.0
    X = np.zeros((4, 3, 3))
    _assert_matches_reference(net, X, np.random.default_rng(2).normal(size=(4, 2)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_registered_activation_is_called_back_from_the_compiled_loop(activation_registry,
                                                                        dtype):
    softsign = register_activation("softsign_kernel_test", lambda z: z / (1 + np.abs(z)),
                                   lambda z, g: g / (1 + np.abs(z)) ** 2,
                                   derivative_of="input")
    activation_registry.append(softsign.name)
    X = _sequences(5, 6, 3, [6, 2, 5, 1, 4]).astype(dtype)
    Y = np.random.default_rng(2).normal(size=(5, 2)).astype(dtype)
    net = RecurrentNetwork(3, [4, 3], 2, cell="rnn", bidirectional=True, activation=softsign,
                           dtype=dtype)
    net.params[...] = np.random.default_rng(0).normal(scale=0.5, size=net.params.size)
    assert net.recurrent[0].cell._code == fast.CALLBACK
    _assert_matches_reference(net, X, Y)


def test_an_activation_overwriting_a_builtin_name_is_not_compiled():
    from sknet._core import ACTIVATIONS

    builtin = ACTIVATIONS["identity"]
    try:
        twice = register_activation("identity", lambda z: 2 * z, lambda a, g: 2 * g,
                                    overwrite=True)
        net = RecurrentNetwork(2, [3], 1, cell="rnn", activation=twice)
        assert net.recurrent[0].cell._code == fast.CALLBACK
        net.params[...] = np.random.default_rng(0).normal(size=net.params.size)
        X = _sequences(2, 3, 2)
        with reference.reference_cells(net):
            expected = net.predict(X)
        np.testing.assert_allclose(net.predict(X), expected, rtol=1e-13)
    finally:
        ACTIVATIONS["identity"] = builtin


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_logistic_and_tanh_are_within_a_few_units_in_the_last_place(dtype):
    """The gate loops' logistic and tanh (``_vector_math.h``) against long double numpy:
    within 3 ulp, results below ``tiny * 1e3`` within ``tiny * 1e4``."""
    tiny = float(np.finfo(dtype).tiny)
    z = np.concatenate([np.linspace(-800, 800, 16001), np.linspace(-3, 3, 12001),
                        np.geomspace(tiny * 1e6, 20, 4000), [0.0, 0.125, 0.25]])
    z = np.concatenate([z, -z])
    z = np.concatenate([z, np.zeros(-len(z) % 32)]).astype(dtype)
    for name, exact in (("tanh", np.tanh), ("logistic", lambda x: 1 / (1 + np.exp(-x)))):
        x = z.reshape(1, -1, 32)
        A, hs = np.empty_like(x), np.empty_like(x)
        fast.rnn_forward(x, np.eye(32, dtype=dtype), A, hs, np.zeros((32, 32), dtype),
                         np.zeros(32, dtype), None, False, fast.ACTIVATION_CODES[name])
        assert np.array_equal(A, x)  # x times the identity: the pre-activation is z
        want = exact(z.astype(np.longdouble)).reshape(A.shape)
        error = np.abs(hs - want)
        normal = np.abs(want) > tiny * 1e3  # below, an absolute error of ~tiny
        assert (error[normal] / np.spacing(np.abs(want[normal]).astype(dtype))).max() <= 3, name
        assert error[~normal].max() <= tiny * 1e4, name


def test_a_fit_holds_the_kernels_blas_to_one_thread():
    """The per-step products call scipy's BLAS; a fit's plan limits it where numpy has another."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from sknet import _base

    controller = threadpoolctl.ThreadpoolController()
    own = _base._scipy_own_blas(controller)
    if own is None:
        pytest.skip("numpy and scipy share one BLAS: its threads are numpy's too")

    def threads():
        return threadpoolctl.ThreadpoolController().select(filepath=own).info()[0]["num_threads"]

    with controller.select(filepath=own).limit(limits=2):
        assert threads() == 2
        for single in (True, False):
            plan, _ = _base._blas_plan(single)
            with plan():
                assert threads() == 1
        assert threads() == 2


def test_kernels_reject_arrays_of_the_wrong_shape():
    A, x, W_ih = np.zeros((3, 2, 8)), np.zeros((3, 2, 5)), np.zeros((8, 5))
    with pytest.raises(ValueError, match="W_hh"):
        fast.lstm_forward(x, W_ih, A, np.zeros((3, 2, 2)), np.zeros((3, 2, 2)),
                          np.zeros((3, 2, 2)), np.zeros((8, 3)), np.zeros(8), None, False)
    with pytest.raises(ValueError, match="W_ih"):
        fast.gru_forward(x, np.zeros((6, 4)), np.zeros((3, 2, 6)), np.zeros((3, 2, 2)),
                         np.zeros((3, 2, 2)), np.zeros((2, 6)), np.zeros((6, 2)), np.zeros(6),
                         np.zeros(2), None, False)
    with pytest.raises(ValueError, match="x has shape"):
        fast.rnn_forward(np.zeros((2, 2, 5)), np.zeros((4, 5)), np.zeros((3, 2, 4)),
                         np.zeros((3, 2, 4)), np.zeros((4, 4)), np.zeros(4), None, False, 1)
    x4, W4 = np.zeros((3, 2, 4)), np.zeros((4, 4))
    with pytest.raises(ValueError, match="pad"):
        fast.rnn_forward(x4, W4, np.zeros((3, 2, 4)), np.zeros((3, 2, 4)), np.zeros((4, 4)),
                         np.zeros(4), np.zeros((3, 3), np.uint8), False, 1)
    with pytest.raises(ValueError, match="contiguous"):
        fast.rnn_forward(x4, W4, np.zeros((3, 2, 4)), np.zeros((3, 2, 8))[:, :, ::2],
                         np.zeros((4, 4)), np.zeros(4), None, False, 1)
    with pytest.raises(ValueError, match="contiguous"):
        fast.rnn_forward(np.zeros((3, 2, 8))[:, :, ::2], W4, np.zeros((3, 2, 4)),
                         np.zeros((3, 2, 4)), np.zeros((4, 4)), np.zeros(4), None, False, 1)
    # the blocked layout needs each step's rows right after the step before's
    gappy = np.zeros((3, 3, 4))[:, :2]
    with pytest.raises(ValueError, match="x: each step's rows must follow"):
        fast.rnn_forward(gappy, W4, np.zeros((3, 2, 4)), np.zeros((3, 2, 4)), W4,
                         np.zeros(4), None, False, 1)
    with pytest.raises(ValueError, match="A: each step's rows must follow"):
        fast.rnn_forward(x4, W4, gappy, np.zeros((3, 2, 4)), W4, np.zeros(4), None, False, 1)


# --------------------------------------------------------------------------- #
# padding                                                                      #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("parts, threads", [(1, 1), (3, 1), (3, 3), (9, 2)])
def test_batches_load_blocked_as_the_numpy_reference(parts, threads, dtype):
    X = _sequences(7, 6, 3, [6, 3, 1, 6, 4, 2, 5]).astype(dtype)
    X[0, 2, 1] = X[5, 0, 2] = np.nan  # NaN in another feature of a real step: no padding
    X[3, 4, 0] = -0.0
    x, pad = np.full((6, 7, 3), 7, dtype), np.full((6, 7), 7, np.uint8)
    padded = fast.load_steps(X, x, pad, parts, threads)
    ref_x, ref_pad, ref_padded = reference.load_steps(X)
    assert padded is ref_padded is True
    np.testing.assert_array_equal(pad, ref_pad)  # pad: time-major, whatever the blocks
    x = fast.time_major(x, parts)
    np.testing.assert_array_equal(x, ref_x)  # NaN where NaN, and the zeros' signs:
    np.testing.assert_array_equal(np.signbit(x), np.signbit(ref_x))
    X = X[[0, 3, 6]][:, :5]  # full-length sequences: no padding
    x, pad = np.empty((5, 3, 3), dtype), np.full((5, 3), 7, np.uint8)
    assert fast.load_steps(np.ascontiguousarray(X), x, pad, parts, threads) is False
    assert not pad.any()
    np.testing.assert_array_equal(fast.time_major(x, parts), reference.load_steps(X)[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("parts, threads", [(1, 1), (3, 1), (3, 3), (9, 2)])
def test_batches_load_their_rows_of_the_data_as_the_numpy_reference(parts, threads, dtype):
    X = _sequences(7, 6, 3, [6, 3, 1, 6, 4, 2, 5]).astype(dtype)
    X[5, 0, 2] = np.nan
    rows = np.array([5, 2, 2, 0, 6], dtype=np.intp)  # shuffled, one sequence twice
    x, pad = np.full((6, 5, 3), 7, dtype), np.full((6, 5), 7, np.uint8)
    padded = fast.load_steps(X, x, pad, parts, threads, rows=rows)
    ref_x, ref_pad, ref_padded = reference.load_steps(X[rows])
    assert padded is ref_padded is True
    np.testing.assert_array_equal(pad, ref_pad)
    np.testing.assert_array_equal(fast.time_major(x, parts), ref_x)
    x, pad = np.full((6, 2, 3), 7, dtype), np.full((6, 2), 7, np.uint8)
    assert fast.load_steps(X, x, pad, parts, threads, rows=np.array([3, 0])) is False
    np.testing.assert_array_equal(fast.time_major(x, parts), reference.load_steps(X[[3, 0]])[0])


def _blocked_by_hand(a, P):
    """``a`` ``(T, n, W)`` blocked, entry by entry: block ``c`` (rows ``c n // P``
    to ``(c + 1) n // P``) fills rows ``T lo`` onward of the ``(T n, W)`` result,
    its step ``t``'s rows after step ``t - 1``'s."""
    T, n = a.shape[:2]
    flat = np.empty((T * n,) + a.shape[2:], a.dtype)
    for c in range(P):
        lo, hi = c * n // P, (c + 1) * n // P
        for t in range(T):
            for i in range(lo, hi):
                flat[T * lo + t * (hi - lo) + (i - lo)] = a[t, i]
    return flat.reshape(a.shape)


@pytest.mark.parametrize("n, parts", [(7, 1), (7, 3), (6, 2), (3, 5), (1, 2), (64, 2)])
def test_the_blocked_layout_keeps_each_block_s_steps_together(n, parts):
    T = 4
    a = np.random.default_rng(0).normal(size=(T, n, 3))
    P = min(parts, n)
    want = _blocked_by_hand(a, P)
    got = fast.blocked(a, parts)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(fast.time_major(got, parts), a)
    room = np.full_like(a, np.nan)  # into a buffer of the caller's
    assert fast.blocked(a, parts, out=room) is room
    np.testing.assert_array_equal(room, want)
    back = np.full_like(a, np.nan)
    assert fast.time_major(room, parts, out=back) is back
    np.testing.assert_array_equal(back, a)
    if P == 1:  # time-major: nothing moves
        np.testing.assert_array_equal(got, a)
        assert fast.time_major(a, parts) is a


@pytest.mark.parametrize("parts", [2, 3])
def test_a_batch_loads_each_block_of_rows_into_memory_of_its_own(parts):
    """Block c's rows of every step lie together, time-major, rows T lo onward."""
    T, n, F = 5, 7, 2
    X = np.random.default_rng(1).normal(size=(n, T, F))
    x, pad = np.empty((T, n, F)), np.empty((T, n), np.uint8)
    fast.load_steps(X, x, pad, parts, 1)
    flat = x.reshape(T * n, F)
    for c in range(parts):
        lo, hi = c * n // parts, (c + 1) * n // parts
        np.testing.assert_array_equal(flat[T * lo:T * hi],
                                      X[lo:hi].transpose(1, 0, 2).reshape(-1, F))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_the_forward_loops_copy_each_sequence_s_final_state(cell, parts, reverse):
    """``last`` gets the state after the direction's last step (step 0 in reverse),
    padding steps carrying the state of a sequence's last real step."""
    T, n, F, H = 6, 7, 3, 4
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    rng = np.random.default_rng(5)
    X = _sequences(n, T, F, [6, 3, 1, 6, 4, 2, 5])
    x, pad = np.empty((T, n, F)), np.empty((T, n), np.uint8)
    padded = fast.load_steps(X, x, pad, parts, 1)
    W_ih, W_hh = rng.normal(size=(G * H, F)), rng.normal(size=(G * H, H)) * 0.5
    bias = rng.normal(size=G * H)
    A, hs = np.empty((T, n, G * H)), np.empty((T, n, H))
    wide = np.full((n, 2 * H + 1), 7.0)  # a direction's columns of a wider array
    last = wide[:, 1:H + 1]
    args = (pad if padded else None, reverse)
    if cell == "rnn":
        fast.rnn_forward(x, W_ih, A, hs, W_hh, bias, *args, fast.ACTIVATION_CODES["tanh"],
                         parts=parts, last=last)
    elif cell == "lstm":
        C, TC = np.empty((T, n, H)), np.empty((T, n, H))
        fast.lstm_forward(x, W_ih, A, hs, C, TC, W_hh, bias, *args, parts=parts, last=last)
    else:
        fast.gru_forward(x, W_ih, A, hs, np.empty((T, n, H)), np.empty((n, G * H)), W_hh,
                         bias, np.zeros(H), *args, parts=parts, last=last)
    states = fast.time_major(hs, parts)
    np.testing.assert_array_equal(last, states[0 if reverse else T - 1])
    assert (wide[:, 0] == 7).all() and (wide[:, H + 1:] == 7).all()
    if not reverse:  # a forward direction ends on each sequence's last real step
        lengths = [6, 3, 1, 6, 4, 2, 5]
        np.testing.assert_array_equal(last, [states[k - 1, i] for i, k in enumerate(lengths)])
    with pytest.raises(ValueError, match="last has shape"):
        fast.lstm_forward(x, np.zeros((4 * H, F)), np.empty((T, n, 4 * H)), hs, hs.copy(),
                          hs.copy(), np.zeros((4 * H, H)), np.zeros(4 * H), None, False,
                          last=np.empty((n, H + 1)))


def test_loading_checks_the_shapes_and_the_rows():
    X = np.zeros((4, 3, 2))
    with pytest.raises(ValueError, match="x has shape"):
        fast.load_steps(X, np.zeros((4, 3, 2)), np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="pad has shape"):
        fast.load_steps(X, np.zeros((3, 4, 2)), np.zeros((4, 3), np.uint8))
    x, pad = np.zeros((3, 2, 2)), np.zeros((3, 2), np.uint8)
    with pytest.raises(ValueError, match="x has shape"):  # n is len(rows), not len(X)
        fast.load_steps(X, x, pad, rows=np.array([0, 1, 2]))
    for bad in (4, -1):
        with pytest.raises(IndexError, match=rf"rows\[1\] = {bad} is out of bounds for 4"):
            fast.load_steps(X, x, pad, rows=np.array([0, bad]))


@pytest.mark.parametrize("cell", CELLS)
def test_padding_length_changes_neither_predictions_nor_gradients(cell):
    lengths = [30, 7, 1, 22, 40]
    X = _sequences(5, 40, 3, lengths)
    Y = np.random.default_rng(2).normal(size=(5, 2))
    net = _network(cell, [4, 3], True, n_features=3, seed=3)
    X100 = _pad_to(X, lengths, 100)
    np.testing.assert_array_equal(net.predict(X), net.predict(X100))
    g40 = net.loss_and_gradient(X, Y, SQUARED, alpha=0.1)[1].copy()
    g100 = net.loss_and_gradient(X100, Y, SQUARED, alpha=0.1)[1]
    np.testing.assert_allclose(g40, g100, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS)
def test_a_batch_of_rows_of_the_data_is_the_batch_of_those_sequences(cell):
    X = _sequences(6, 8, 3, [8, 3, 1, 8, 5, 2])
    rows = [4, 1, 1, 5]  # shuffled, one twice, as a list
    Y = np.random.default_rng(2).normal(size=(4, 2))
    net = _network(cell, [4, 3], True, n_features=3, seed=5)
    value, grad, _ = net.loss_and_gradient(X[rows], Y, SQUARED, alpha=0.1)
    grad = grad.copy()
    value_rows, grad_rows, _ = net.loss_and_gradient(X, Y, SQUARED, alpha=0.1, rows=rows)
    assert value_rows == value
    np.testing.assert_array_equal(grad_rows, grad)


@pytest.mark.parametrize("cell", CELLS)
def test_a_padded_sequence_predicts_as_it_does_alone(cell):
    lengths = [9, 4, 1, 6]
    X = _sequences(4, 9, 3, lengths)
    net = _network(cell, [4, 3], True, n_features=3, seed=4)
    together = net.predict(X)
    for i, length in enumerate(lengths):
        alone = net.predict(X[i:i + 1, :length])
        np.testing.assert_allclose(together[i:i + 1], alone, rtol=1e-12, atol=1e-15)


def test_input_is_neither_modified_nor_computed_with_where_it_is_nan():
    X = _sequences(4, 6, 2, [6, 3, 2, 5])
    before = X.copy()
    X.setflags(write=False)
    Y = np.random.default_rng(2).normal(size=(4, 2))
    net = _network("lstm", [3, 2], True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad, _ = net.loss_and_gradient(X, Y, SQUARED, alpha=0.1, l1=0.1)
        P = net.predict(X)
    assert np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(P))
    np.testing.assert_array_equal(X, before)


def test_sequence_output_is_zero_on_padding_steps():
    lengths = [5, 2, 3]
    X = _sequences(3, 5, 2, lengths)
    out = _network("gru", [3], True).sequence_output(X)
    for i, length in enumerate(lengths):
        assert np.all(out[i, length:] == 0) and np.all(out[i, :length] != 0)


# --------------------------------------------------------------------------- #
# directions                                                                   #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cell", CELLS)
def test_reverse_direction_is_the_forward_network_on_reversed_steps(cell):
    lengths = [6, 3, 1, 5]
    X = _sequences(4, 6, 2, lengths)
    bi = _network(cell, [3], True, seed=5)
    uni = RecurrentNetwork(2, [3], 2, cell=cell)
    named = bi.weights()[0][0]
    uni.set_weights([{k: named[k + "_reverse"] for k in uni.weights()[0][0]}],
                    [np.zeros((3, 2))], [np.zeros(2)])
    reversed_X = np.full_like(X, np.nan)
    for i, length in enumerate(lengths):
        reversed_X[i, :length] = X[i, length - 1::-1]
    np.testing.assert_allclose(bi.features(X)[:, 3:], uni.features(reversed_X), rtol=1e-13)
    seq_bi, seq_uni = bi.sequence_output(X), uni.sequence_output(reversed_X)
    for i, length in enumerate(lengths):
        np.testing.assert_allclose(seq_bi[i, :length, 3:], seq_uni[i, length - 1::-1],
                                   rtol=1e-13)


# --------------------------------------------------------------------------- #
# dtypes, workspace, weights, protocol                                         #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cell", CELLS)
def test_float32_computes_in_float32(cell):
    X = _sequences(6, 7, 3, [7, 4, 2, 7, 5, 1])
    Y = np.random.default_rng(2).normal(size=(6, 2))
    net64 = _network(cell, [5, 4], True, n_features=3)
    net32 = RecurrentNetwork(3, [5, 4], 2, cell=cell, bidirectional=True, dtype=np.float32,
                             dropout=[0.2, 0.2])
    net32.params[...] = net64.params
    X32 = X.astype(np.float32)
    assert net32.predict(X32).dtype == np.float32
    assert net32.features(X32).dtype == np.float32
    value32, g32, _ = net32.loss_and_gradient(X32, Y.astype(np.float32), SQUARED, alpha=0.1)
    value64, g64, _ = net64.loss_and_gradient(X, Y, SQUARED, alpha=0.1)
    assert g32.dtype == np.float32 and net32.params.dtype == np.float32
    np.testing.assert_allclose(value32, value64, rtol=1e-4)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-3 * np.abs(g64).max())
    ws = net32.workspace(6)
    _, g, _ = net32.loss_and_gradient(X32, Y, SQUARED, ws=ws, training=True,
                                      rng=np.random.default_rng(0))
    assert g.dtype == np.float32 and g is ws.grad
    # no buffer the pass computes in is float64 (the values alone cannot tell:
    # a float64 pass rounded at the end is as close to the float64 gradient)
    dtypes = {a.dtype for a in _arrays(ws.trace(6, 7))}
    assert dtypes == {np.dtype(np.float32), np.dtype(bool), np.dtype(np.uint8)}  # + masks


def _arrays(obj, seen=None):
    """Every ndarray reachable through the attributes and lists of ``obj``."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [a for item in obj for a in _arrays(item, seen)]
    if hasattr(obj, "__dict__") and type(obj).__module__ == recurrent_module.__name__:
        return [a for value in vars(obj).values() for a in _arrays(value, seen)]
    return []


def test_workspace_is_reused_from_batch_to_batch():
    X = _sequences(8, 5, 2, [5, 4, 3, 5, 2, 1, 5, 5])
    Y = np.random.default_rng(2).normal(size=(8, 2))
    net = _network("lstm", [3, 2], True)
    ws = net.workspace(8)
    first = net.loss_and_gradient(X, Y, SQUARED, ws=ws)[1].copy()
    trace = ws.trace(8, 5)
    net.loss_and_gradient(X[:3], Y[:3], SQUARED, ws=ws)  # the last, smaller batch
    again = net.loss_and_gradient(X, Y, SQUARED, ws=ws)[1]
    assert ws.trace(8, 5) is trace  # both shapes keep their views
    np.testing.assert_array_equal(first, again)
    fresh = net.loss_and_gradient(X, Y, SQUARED)[1]
    np.testing.assert_array_equal(first, fresh)
    out = np.empty_like(net.params)
    assert net.loss_and_gradient(X, Y, SQUARED, ws=ws, grad=out)[1] is out
    np.testing.assert_array_equal(out, first)


def test_predicting_in_blocks_equals_predicting_at_once(monkeypatch):
    X = _sequences(7, 5, 2, [5, 4, 3, 5, 2, 1, 5])
    net = _network("gru", [3], True)
    whole = net.predict(X)
    monkeypatch.setattr(recurrent_module, "_BLOCK_BYTES", 1)
    np.testing.assert_allclose(net.predict(X), whole, rtol=1e-13)


def test_predicting_holds_a_few_tens_of_mb_however_many_sequences():
    """An LSTM's trace takes about 18 KB a sequence here (40 steps, 8 units):
    4,000 and 8,000 sequences at once would take 70 and 140 MB."""
    import tracemalloc

    net = _network("lstm", [8], False)
    peaks = []
    for n in (4000, 8000):
        X = _sequences(n, 40, 2)
        tracemalloc.start()
        try:
            net.predict(X)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2 ** 20)
        finally:
            tracemalloc.stop()
    assert max(peaks) < 64 and peaks[1] < 1.1 * peaks[0], peaks


def test_threads_may_predict_on_one_network_at_once():
    batches = [_sequences(64, 20, 2, np.random.default_rng(i).integers(1, 21, 64), seed=i)
               for i in range(4)]
    net = _network("lstm", [16], True)
    expected = [net.predict(X).copy() for X in batches]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that races would show
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(net.predict, batches * 4))
    finally:
        sys.setswitchinterval(interval)
    for result, wanted in zip(results, expected * 4):
        np.testing.assert_array_equal(result, wanted)


def test_zero_weight_sum_moves_nothing():
    X = _sequences(3, 4, 2)
    net = _network("rnn", [3], False)
    value, grad, sw_sum = net.loss_and_gradient(X, np.ones((3, 2)), SQUARED,
                                                sample_weight=np.zeros(3), alpha=1.0)
    assert value == 0.0 and sw_sum == 0.0 and np.all(grad == 0)


def test_sample_weight_scales_each_sequences_loss():
    X = _sequences(3, 4, 2, [4, 2, 3])
    Y = np.random.default_rng(2).normal(size=(3, 2))
    net = _network("gru", [3], True)
    w = np.array([2.0, 0.5, 1.0])
    repeated = np.repeat(np.arange(3), [4, 1, 2])  # weights 2, 0.5, 1 as counts 4, 1, 2
    value, grad, _ = net.loss_and_gradient(X, Y, SQUARED, sample_weight=w, alpha=0.3)
    value_r, grad_r, _ = net.loss_and_gradient(X[repeated], Y[repeated], SQUARED,
                                               alpha=0.3 * 2)
    np.testing.assert_allclose(value, value_r, rtol=1e-12)
    np.testing.assert_allclose(grad, grad_r, rtol=1e-10, atol=1e-14)


def test_set_weights_round_trips_and_checks_names_and_shapes():
    a = _network("lstm", [3, 2], True, seed=1)
    b = RecurrentNetwork(2, [3, 2], 2, cell="lstm", bidirectional=True)
    b.set_weights(*a.weights())
    np.testing.assert_array_equal(a.params, b.params)
    recurrent, coefs, intercepts = a.weights()
    assert recurrent[1]["weight_ih_reverse"].shape == (8, 6)  # 4 gates x H=2, 2 x 3 inputs
    assert np.shares_memory(recurrent[0]["bias_hh"], a.params)
    bad = [dict(layer) for layer in recurrent]
    bad[1]["weight_hh"] = np.zeros((8, 3))
    with pytest.raises(ValueError, match=r"recurrent\[1\]\['weight_hh'\] has shape"):
        b.set_weights(bad, coefs, intercepts)
    with pytest.raises(ValueError, match="coefs"):
        b.set_weights(recurrent, [np.zeros((6, 3))], intercepts)
    missing = [dict(layer) for layer in recurrent]
    del missing[0]["bias_ih"]
    with pytest.raises(ValueError, match="bias_ih"):
        b.set_weights(missing, coefs, intercepts)


@pytest.mark.parametrize("cell", CELLS)
def test_initialize_draws_from_the_rng_as_documented(cell):
    net = RecurrentNetwork(3, [4, 5], 2, cell=cell, bidirectional=True)
    net.initialize("sklearn", np.random.RandomState(0), forget_bias=None)
    recurrent = net.weights()[0]
    for layer, H in zip(recurrent, (4, 5)):  # PyTorch's U(-1/sqrt(H), 1/sqrt(H))
        for name, a in layer.items():
            assert np.all(np.abs(a) <= 1 / np.sqrt(H)) and np.std(a) > 0.1 / np.sqrt(H), name
    drawn = net.params.copy()
    net.initialize("sklearn", np.random.RandomState(0))  # the default forget bias
    changed = drawn != net.params
    if cell == "lstm":
        assert np.all(recurrent[0]["bias_ih"][4:8] == 1.0)
        assert np.all(recurrent[1]["bias_hh_reverse"][5:10] == 0.0)
        assert changed.sum() == 2 * (4 + 5) * 2  # two forget blocks per direction
    else:
        assert not changed.any()
    net.initialize("he_normal", np.random.default_rng(0), forget_bias=None)
    for layer in net.weights()[0]:
        assert all(np.all(a == 0) for name, a in layer.items() if name.startswith("bias"))
        assert all(np.std(a) > 0 for name, a in layer.items() if name.startswith("weight"))
    with pytest.raises(ValueError, match="weight_init"):
        net.initialize("nope", np.random.default_rng(0))


def test_the_network_offers_the_training_protocol():
    net = _network("gru", [3, 2], False)
    assert isinstance(net, TrainableNetwork)
    assert not net.uses_rng
    assert net.n_layers == 3
    assert net.trainable_offset == 0
    net.n_frozen = 2
    assert net.trainable_offset == net.layer_slice(2).start
    with pytest.raises(ValueError, match="n_frozen"):
        net.n_frozen = 4
    with pytest.raises(ValueError, match="elementwise"):
        RecurrentNetwork(2, [3], 1, cell="rnn", activation=get_activation("softmax"))
    with pytest.raises(ValueError, match="cell"):
        RecurrentNetwork(2, [3], 1, cell="transformer")
    with pytest.raises(ValueError, match="shape"):
        net.predict(np.zeros((2, 3)))


@pytest.mark.parametrize("cell", CELLS)
def test_lbfgs_fits_a_sequence_task(cell):
    # the target is the mean of the first feature over each sequence's real steps
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 8, 40)
    X = _sequences(40, 8, 2, lengths, seed=3)
    Y = np.array([np.mean(X[i, :length, 0]) for i, length in enumerate(lengths)])[:, None]
    net = RecurrentNetwork(2, [6], 1, cell=cell).initialize("sklearn", np.random.RandomState(0))
    start = net.loss_and_gradient(X, Y, SQUARED)[0]
    fit_lbfgs(net, SQUARED, X, Y, None, max_iter=150, history=History())
    assert net.loss_and_gradient(X, Y, SQUARED)[0] < 0.05 * start


# --------------------------------------------------------------------------- #
# state gradients                                                              #
# --------------------------------------------------------------------------- #
def test_state_gradients_vanish_for_the_simple_rnn_and_not_for_the_lstm():
    X = _sequences(16, 100, 4, seed=0)
    Y = np.random.default_rng(2).normal(size=(16, 1))
    norms = {cell: RecurrentNetwork(4, [16], 1, cell=cell)
             .initialize("sklearn", np.random.RandomState(0))
             .state_gradient_norms(X, Y, SQUARED) for cell in ("rnn", "lstm")}
    assert norms["rnn"].shape == (100,)
    assert norms["rnn"][0] < 1e-6 * norms["lstm"][0]
    assert norms["rnn"][-1] > 0.1 * norms["lstm"][-1]


@pytest.mark.parametrize("cell", CELLS)
def test_state_gradient_at_the_last_step_is_the_output_weights_times_the_delta(cell):
    X = _sequences(5, 6, 2)
    Y = np.random.default_rng(2).normal(size=(5, 2))
    net = _network(cell, [3], False)
    net.n_frozen = 1  # no effect on the norms
    norms = net.state_gradient_norms(X, Y, SQUARED)
    dh = (net.predict(X) - Y) @ net.weights()[1][0].T  # identity output, squared error
    np.testing.assert_allclose(norms[-1], np.linalg.norm(dh, axis=1).mean(), rtol=1e-12)


# --------------------------------------------------------------------------- #
# PyTorch                                                                      #
# --------------------------------------------------------------------------- #
def _torch_twin(torch, net, cell, n_layers, bidirectional):
    """A torch module and output layer holding ``net``'s weights."""
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        net.n_features, net.recurrent[0].hidden, num_layers=n_layers,
        bidirectional=bidirectional, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(net.output.fan_in, net.n_outputs, dtype=torch.float64)
    recurrent, coefs, intercepts = net.weights()
    with torch.no_grad():
        for k, named in enumerate(recurrent):
            for name, a in named.items():  # weight_ih_reverse -> weight_ih_l{k}_reverse
                base = name.removesuffix("_reverse")
                getattr(module, f"{base}_l{k}{name[len(base):]}").copy_(torch.from_numpy(a))
        head.weight.copy_(torch.from_numpy(coefs[0].T))
        head.bias.copy_(torch.from_numpy(intercepts[0]))
    return module, head


@pytest.mark.torch
@pytest.mark.parametrize("cell, n_layers, bidirectional, padded",
                         list(itertools.product(CELLS, (1, 2), [False, True], [False, True])))
def test_outputs_and_gradients_match_torch(cell, n_layers, bidirectional, padded):
    torch = pytest.importorskip("torch")
    N, T, F, H = 5, 6, 3, 4
    lengths = np.array([6, 2, 4, 1, 5]) if padded else np.full(N, T)
    X = _sequences(N, T, F, lengths if padded else None)
    Y = np.random.default_rng(2).normal(size=(N, 2))
    net = RecurrentNetwork(F, [H] * n_layers, 2, cell=cell, bidirectional=bidirectional)
    net.initialize("glorot_normal", np.random.default_rng(0))
    net.params += np.random.default_rng(1).normal(scale=0.1, size=net.params.size)
    module, head = _torch_twin(torch, net, cell, n_layers, bidirectional)

    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(np.nan_to_num(X)), torch.from_numpy(lengths), batch_first=True,
        enforce_sorted=False)
    out, h_n = module(packed)
    h_n = h_n[0] if cell == "lstm" else h_n
    out = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)[0]
    features = torch.cat([h_n[-2], h_n[-1]], 1) if bidirectional else h_n[-1]
    value = 0.5 * ((head(features) - torch.from_numpy(Y)) ** 2).sum() / N
    value.backward()

    np.testing.assert_allclose(net.sequence_output(X), out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(net.features(X), features.detach().numpy(), atol=1e-12)
    for k in range(n_layers):  # every layer's final states
        seq = net.sequence_output(X, layer=k)
        np.testing.assert_allclose(seq[np.arange(N), lengths - 1, :H],
                                   h_n[k * (1 + bidirectional)].detach().numpy(), atol=1e-12)
        if bidirectional:
            np.testing.assert_allclose(seq[:, 0, H:], h_n[2 * k + 1].detach().numpy(),
                                       atol=1e-12)
    ours, grad, _ = net.loss_and_gradient(X, Y, SQUARED)
    theirs = np.concatenate([p.grad.numpy().ravel() for p in module.parameters()]
                            + [head.weight.grad.numpy().T.ravel(), head.bias.grad.numpy()])
    np.testing.assert_allclose(ours, value.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, theirs, rtol=1e-10, atol=1e-13)


@pytest.mark.torch
@pytest.mark.parametrize("cell", CELLS)
def test_state_gradient_norms_match_torch_autograd(cell):
    torch = pytest.importorskip("torch")
    N, T, F, H = 4, 12, 3, 5
    X = _sequences(N, T, F)
    Y = np.random.default_rng(2).normal(size=(N, 2))
    net = RecurrentNetwork(F, [H, H], 2, cell=cell).initialize("sklearn",
                                                                np.random.RandomState(0))
    module, head = _torch_twin(torch, net, cell, 2, False)
    cells = []
    for k in range(2):  # unroll the same weights step by step to reach every h_t
        step = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell,
                "gru": torch.nn.GRUCell}[cell](F if k == 0 else H, H, dtype=torch.float64)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(step, name).data = getattr(module, f"{name}_l{k}").data
        cells.append(step)
    inputs = list(torch.from_numpy(X).unbind(1))
    first_layer_states = []
    for k, step in enumerate(cells):
        h = c = torch.zeros(N, H, dtype=torch.float64)
        outputs = []
        for x in inputs:
            if cell == "lstm":
                h, c = step(x, (h, c))
            else:
                h = step(x, h)
            if k == 0:
                h.retain_grad()
                first_layer_states.append(h)
            outputs.append(h)
        inputs = outputs
    per_sequence = 0.5 * ((head(inputs[-1]) - torch.from_numpy(Y)) ** 2).sum()
    per_sequence.backward()
    expected = np.array([np.linalg.norm(h.grad.numpy(), axis=1).mean()
                         for h in first_layer_states])
    np.testing.assert_allclose(net.state_gradient_norms(X, Y, SQUARED), expected, rtol=1e-10)


# --------------------------------------------------------------------------- #
# time loops on blocks of rows, in threads                                     #
# --------------------------------------------------------------------------- #
def _split_gradient(net, X, Y, parts, threads, seed=3):
    ws = net.workspace(X.shape[0], fast_blas=True, threads=parts)
    assert ws.parts == parts and (ws.split is None) == (parts == 1)
    ws.threads = threads
    value, grad, _ = net.loss_and_gradient(X, Y, SQUARED, alpha=0.1, ws=ws, training=True,
                                           rng=np.random.default_rng(seed))
    return value, grad.copy()


@pytest.mark.parametrize("steps", [8, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
def test_time_loops_on_blocks_of_rows_are_the_numpy_reference_on_any_thread_count(cell,
                                                                                  dtype,
                                                                                  steps):
    """3 blocks of 7 ragged sequences, 2 stacked bidirectional layers, dropout; 8 and 7
    steps (the LSTM's lower layer adds its weight gradients' terms 4 steps at a time)."""
    X = _sequences(7, steps, 3, [min(k, steps) for k in (8, 3, 1, 8, 6, 2, 7)]).astype(dtype)
    Y = np.random.default_rng(2).normal(size=(7, 2)).astype(dtype)
    net = RecurrentNetwork(3, [9, 5], 2, cell=cell, bidirectional=True, dropout=[0.3, 0.2],
                           dtype=dtype)
    net.params[...] = np.random.default_rng(0).normal(scale=0.5, size=net.params.size)
    with reference.reference_cells(net):
        ref_value, ref_grad = _split_gradient(net, X, Y, 1, 1)
    results = [_split_gradient(net, X, Y, 3, threads) for threads in (1, 3)]
    rtol, atol = (1e-11, 1e-13) if dtype == np.float64 else (2e-4, 2e-5)
    for value, grad in results:
        np.testing.assert_allclose(grad, ref_grad, rtol=rtol, atol=atol * np.abs(ref_grad).max())
        np.testing.assert_allclose(value, ref_value, rtol=rtol)
    # every block is computed the same way whichever thread runs it
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][0] == results[1][0]


@pytest.mark.parametrize("cell", CELLS)
def test_blocks_too_large_for_packing_run_their_products_in_blas(cell):
    """Blocks of more than ``PACKED_MAX_ROWS`` rows call BLAS from OpenMP's threads."""
    n = 2 * (fast.PACKED_MAX_ROWS + 4)
    X = _sequences(n, 4, 3, np.random.default_rng(4).integers(1, 5, n))
    Y = np.random.default_rng(2).normal(size=(n, 2))
    net = RecurrentNetwork(3, [6, 5], 2, cell=cell, bidirectional=True)
    net.params[...] = np.random.default_rng(0).normal(scale=0.5, size=net.params.size)
    with reference.reference_cells(net):
        ref_value, ref_grad = _split_gradient(net, X, Y, 1, 1)
    results = [_split_gradient(net, X, Y, 2, threads) for threads in (1, 2)]
    for value, grad in results:
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-11, atol=1e-13 * np.abs(ref_grad).max())
        np.testing.assert_allclose(value, ref_value, rtol=1e-11)
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_split_parts_of_recurrent_networks(activation_registry):
    assert _network("lstm", [4], False).split_parts(64, threads=2) == 2
    assert _network("lstm", [4], False).split_parts(64, threads=8) == 4  # 16 rows a block
    assert _network("gru", [4], False).split_parts(64, threads=0) == 1  # no OpenMP
    cube = register_activation("cube_rnn_split", lambda z: z ** 3,
                               lambda z, g: 3 * z ** 2 * g, derivative_of="input")
    activation_registry.append(cube.name)
    # a registered activation is called back for whole time steps: no blocks
    assert _network("rnn", [4], False, activation=cube).split_parts(64, threads=2) == 1


FORKED_BLOCKS = """
import json, multiprocessing
import numpy as np
from sknet._core.losses import get_loss
from sknet._core.recurrent import RecurrentNetwork

net = RecurrentNetwork(3, [9], 2, cell="%s")
net.params[...] = np.random.default_rng(0).normal(scale=0.5, size=net.params.size)
X = np.random.default_rng(1).normal(size=(16, 6, 3))
Y = np.random.default_rng(2).normal(size=(16, 2))

def gradient(_):
    ws = net.workspace(16, fast_blas=True, threads=2)
    assert ws.split is not None
    ws.threads = 2
    return net.loss_and_gradient(X, Y, get_loss("squared_error"), ws=ws)[1].tolist()

if __name__ == "__main__":
    parent = gradient(0)  # OpenMP's threads start here
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.map(gradient, [0])[0]
    print(json.dumps({"parent": parent, "child": child}))
"""


@pytest.mark.skipif(openmp_threads() < 2 or not hasattr(os, "fork"),
                    reason="needs OpenMP with 2 threads, and fork")
@pytest.mark.parametrize("cell", CELLS)
def test_a_process_forked_after_threaded_blocks_runs_them_on_one_thread(tmp_path, cell):
    # GNU OpenMP's threads do not survive a fork: a child that opened a
    # parallel region of two threads would wait for ever (the timeout).
    script = tmp_path / "forked_blocks.py"
    script.write_text(FORKED_BLOCKS % cell)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["child"] == seen["parent"]  # the same blocks, one after the other


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("parts", [1, 3])
def test_the_rnn_weight_gradients_are_products_over_every_step(reverse, parts):
    T, n, H, F = 4, 5, 7, 3
    rng = np.random.default_rng(0)
    dG, x, hs = rng.normal(size=(T, n, H)), rng.normal(size=(T, n, F)), rng.normal(size=(T, n, H))
    gW_ih, gW_hh, gb_ih = np.empty((H, F)), np.empty((H, H)), np.empty(H)
    # the arrays in the blocked layout of the parts (time-major with one)
    fast.rnn_weight_gradients(*(fast.blocked(a, parts) for a in (dG, x, hs)), reverse, gW_ih,
                              gW_hh, gb_ih, parts, parts)
    # step t reads the state of step t - 1 (t + 1 in reverse); the first step, zeros
    earlier = [t + 1 if reverse else t - 1 for t in range(T)]
    want_hh = sum(dG[t].T @ hs[e] for t, e in enumerate(earlier) if 0 <= e < T)
    np.testing.assert_allclose(gW_ih, sum(dG[t].T @ x[t] for t in range(T)), rtol=1e-12)
    np.testing.assert_allclose(gW_hh, want_hh, rtol=1e-12)
    np.testing.assert_allclose(gb_ih, dG.sum(axis=(0, 1)), rtol=1e-12)
    with pytest.raises(ValueError, match="x: each step's rows must follow"):
        fast.rnn_weight_gradients(dG, x[:, ::-1], hs, reverse, gW_ih, gW_hh, gb_ih)
    with pytest.raises(ValueError, match="every step's rows, not one step's"):
        fast.rnn_weight_gradients(dG, x, np.broadcast_to(hs[:1], hs.shape), reverse, gW_ih,
                                  gW_hh, gb_ih)


def test_the_backward_loops_need_one_set_of_gradients_per_block():
    T, n, H, F = 3, 5, 2, 4
    grads = [(np.zeros((4 * H, F)), np.zeros((4 * H, H)), np.zeros(4 * H))] * 2
    states = [np.zeros((T, n, k)) for k in (4 * H, H, H)]
    with pytest.raises(ValueError, match="grads holds 2 blocks' arrays; the batch runs in 3"):
        fast.lstm_backward(*states, np.zeros((4 * H, H)), None, False, np.zeros((T, n, 4 * H)),
                           np.zeros((n, H)), np.zeros((n, H)), np.zeros((n, H)), None, None,
                           None, np.zeros((T, n, H)), np.zeros((T, n, F)), grads, parts=3)
    with pytest.raises(ValueError, match="gW_hh has shape"):
        fast.lstm_backward(*states, np.zeros((4 * H, H)), None, False, np.zeros((T, n, 4 * H)),
                           np.zeros((n, H)), np.zeros((n, H)), np.zeros((n, H)), None, None,
                           None, np.zeros((T, n, H)), np.zeros((T, n, F)),
                           [(grads[0][0], grads[0][0], grads[0][2])])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_named_initializer_draws_every_gates_matrices_and_zero_biases(cell):
    """Glorot uniform, gate by gate: input matrices within sqrt(6 / (F + H)),
    recurrent ones within sqrt(6 / (2 H)), each filling most of its range
    (the LSTM's forget-gate bias aside, every bias 0)."""
    F, H = 5, 7
    net = RecurrentNetwork(F, [H], 2, cell=cell)
    net.params[...] = np.nan
    net.initialize("glorot_uniform", np.random.RandomState(0), forget_bias=None)
    names = net.weights()[0][0]
    n_gates = names["weight_ih"].shape[0] // H
    for key, fan_in in (("weight_ih", F), ("weight_hh", H)):
        bound = np.sqrt(6.0 / (fan_in + H))
        for gate in np.split(names[key], n_gates):
            assert np.all(np.abs(gate) <= bound) and np.abs(gate).max() > 0.6 * bound
    assert not names["bias_ih"].any() and not names["bias_hh"].any()


def test_set_weights_refuses_the_wrong_number_of_layers():
    net = RecurrentNetwork(3, [4, 5], 2, cell="gru")
    recurrent, coefs, intercepts = net.weights()
    with pytest.raises(ValueError, match="Expected 2 recurrent layers"):
        net.set_weights(recurrent[:1], coefs, intercepts)
    with pytest.raises(ValueError, match="one output weight matrix"):
        net.set_weights(recurrent, coefs * 2, intercepts)
    # the output layer's arrays, as the dense layers list them
    W, b = net.layer_arrays(len(net.layers) - 1)
    assert np.shares_memory(W, net.params) and np.shares_memory(b, net.params)
    np.testing.assert_array_equal(W, coefs[0])
    np.testing.assert_array_equal(b, intercepts[0])


def test_sequence_output_checks_its_sequences():
    net = _network("lstm", [4], False, n_features=3)
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_steps, 3\)"):
        net.sequence_output(np.zeros((2, 5, 4)))
    X = _sequences(2, 5, 3)
    np.testing.assert_array_equal(net.sequence_output(X.tolist()), net.sequence_output(X))


def test_loss_and_gradient_checks_its_sequences():
    net = _network("gru", [4], False, n_features=3)
    Y = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_steps, 3\)"):
        net.loss_and_gradient(np.zeros((2, 5, 4)), Y, SQUARED)
    X = _sequences(2, 5, 3)
    loss, grad, _ = net.loss_and_gradient(X, Y, SQUARED)
    from_list = net.loss_and_gradient(X.tolist(), Y, SQUARED)
    assert from_list[0] == loss
    np.testing.assert_array_equal(from_list[1], grad)

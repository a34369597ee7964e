"""Finite-difference checks of Network.loss_and_gradient, in float64.

Every hidden activation x (loss, output activation) x penalty, with and without
sample weights; non-canonical pairs through the general chain rule; dropout
with a fixed mask; frozen layers; sparse and float32 input; the tied
autoencoder through the compiled step and through the numpy layers.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from sknet._core import Network, get_activation, get_loss
from sknet._core.tied import TiedNetwork

HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "selu",
          "softmax", "exp"]
# (loss, output activation, number of outputs)
OUTPUTS = [("squared_error", "identity", 2), ("log_loss", "softmax", 3),
           ("log_loss", "logistic", 1), ("binary_log_loss", "logistic", 3),
           ("poisson", "exp", 2)]
PENALTIES = {"none": (0.0, 0.0), "l2": (0.3, 0.0), "l1": (0.0, 0.2), "both": (0.3, 0.2)}


def _targets(loss_name, n, k, rng):
    if loss_name == "squared_error":
        return rng.normal(size=(n, k))
    if loss_name == "poisson":
        return rng.poisson(1.5, size=(n, k)).astype(float)
    if loss_name == "log_loss" and k > 1:
        return np.eye(k)[rng.integers(0, k, n)]
    return (rng.random((n, k)) < 0.5).astype(float)


def _network(hidden, out, k, seed=0, units=(3, 4, 3), dropout=None):
    net = Network(list(units) + [k], [get_activation(hidden)] * (len(units) - 1)
                  + [get_activation(out)], dropout=dropout)
    net.params[...] = np.random.default_rng(seed).normal(scale=0.6, size=net.params.size)
    return net


def _numeric_gradient(f, params, h=1e-6):
    g = np.empty_like(params)
    for i in range(params.size):
        old = params[i]
        params[i] = old + h
        up = f()
        params[i] = old - h
        down = f()
        params[i] = old
        g[i] = (up - down) / (2 * h)
    return g


def _check(net, X, Y, loss, **kw):
    value, grad, _ = net.loss_and_gradient(X, Y, loss, **kw)
    grad = grad.copy()
    numeric = _numeric_gradient(lambda: net.loss_and_gradient(X, Y, loss, **kw)[0],
                                net.params)
    assert np.isfinite(value)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    return grad


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
@pytest.mark.parametrize("loss_name, out, k", OUTPUTS, ids=[f"{a}+{b}" for a, b, _ in OUTPUTS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_matches_finite_differences(hidden, loss_name, out, k, penalty, weighted):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    Y = _targets(loss_name, 6, k, rng)
    sw = rng.uniform(0.2, 2.0, 6) if weighted else None
    alpha, l1 = PENALTIES[penalty]
    net = _network(hidden, out, k)
    _check(net, X, Y, get_loss(loss_name), sample_weight=sw, alpha=alpha, l1=l1)


@pytest.mark.parametrize("loss_name, out, k", OUTPUTS, ids=[f"{a}+{b}" for a, b, _ in OUTPUTS])
def test_canonical_pairs_through_the_general_chain_rule(loss_name, out, k):
    """fused=False differentiates through the output activation: same gradient."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, 3))
    Y = _targets(loss_name, 6, k, rng)
    net = _network("tanh", out, k)
    loss = get_loss(loss_name)
    chain = _check(net, X, Y, loss, alpha=0.1, fused=False)
    fused = net.loss_and_gradient(X, Y, loss, alpha=0.1, fused=True)[1]
    np.testing.assert_allclose(chain, fused, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss_name, out, k", [
    ("squared_error", "logistic", 2), ("squared_error", "tanh", 2),
    ("squared_error", "softmax", 3), ("squared_error", "exp", 2),
    ("binary_log_loss", "softmax", 3), ("poisson", "softmax", 3),
])
@pytest.mark.parametrize("penalty", ["none", "both"])
def test_non_canonical_pairs(loss_name, out, k, penalty):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 3))
    Y = _targets(loss_name, 6, k, rng)
    alpha, l1 = PENALTIES[penalty]
    net = _network("relu", out, k)
    _check(net, X, Y, get_loss(loss_name), sample_weight=rng.uniform(0.5, 1.5, 6),
           alpha=alpha, l1=l1)


def test_penalty_is_scaled_like_scikit_learns_and_skips_biases():
    """loss = data loss + (0.5 alpha ||W||^2 + l1 |W|_1) / sum(sample_weight), weights only."""
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    sw = rng.uniform(0.5, 2.0, 5)
    net = _network("tanh", "identity", 2)
    loss = get_loss("squared_error")
    base = net.loss_and_gradient(X, Y, loss, sample_weight=sw)[0]
    pen = net.loss_and_gradient(X, Y, loss, sample_weight=sw, alpha=0.7, l1=0.3)[0]
    sq = sum(float(np.sum(W ** 2)) for W in net.coefs)
    ab = sum(float(np.sum(np.abs(W))) for W in net.coefs)
    assert pen - base == pytest.approx((0.5 * 0.7 * sq + 0.3 * ab) / sw.sum(), rel=1e-12)


@pytest.mark.parametrize("hidden", ["relu", "tanh", "selu"])
def test_dropout_gradient_with_a_fixed_mask(hidden):
    """With the mask held fixed (same seed each call), backprop through (alpha) dropout is exact."""
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(8, 3)), np.eye(3)[rng.integers(0, 3, 8)]
    net = _network(hidden, "softmax", 3, dropout=[0.3, 0.5])
    loss = get_loss("log_loss")

    def run():
        return net.loss_and_gradient(X, Y, loss, alpha=0.1, training=True,
                                     rng=np.random.default_rng(7))

    grad = run()[1].copy()
    numeric = _numeric_gradient(lambda: run()[0], net.params)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    # the mask really acts in training, and not otherwise
    off = net.loss_and_gradient(X, Y, loss, alpha=0.1)[0]
    assert run()[0] != pytest.approx(off)
    assert net.loss_and_gradient(X, Y, loss, alpha=0.1, training=False,
                                 rng=np.random.default_rng(7))[0] == off


def test_frozen_prefix_gets_no_gradient_and_the_rest_is_unchanged():
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    net = _network("tanh", "identity", 2)
    loss = get_loss("squared_error")
    full = net.loss_and_gradient(X, Y, loss, alpha=0.2)[1].copy()
    net.n_frozen = 1
    off = net.trainable_offset
    assert off == 3 * 4 + 4
    grad = net.loss_and_gradient(X, Y, loss, alpha=0.2, grad=np.zeros_like(full))[1]
    np.testing.assert_array_equal(grad[:off], 0.0)
    np.testing.assert_allclose(grad[off:], full[off:], rtol=1e-12)


@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_matrix])
def test_sparse_input_gives_the_dense_gradient(fmt):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(6, 3)) * (rng.random((6, 3)) < 0.5)
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    net = _network("relu", "softmax", 3)
    loss = get_loss("log_loss")
    v_dense, g_dense, _ = net.loss_and_gradient(X, Y, loss, alpha=0.1)
    g_dense = g_dense.copy()
    v_sparse, g_sparse, _ = net.loss_and_gradient(fmt(X), Y, loss, alpha=0.1)
    assert v_sparse == pytest.approx(v_dense, rel=1e-12)
    np.testing.assert_allclose(g_sparse, g_dense, rtol=1e-12, atol=1e-15)


def test_float32_network_computes_in_float32():
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(6, 3)), np.eye(3)[rng.integers(0, 3, 6)]
    net64 = _network("tanh", "softmax", 3)
    net32 = Network(net64.layer_units, net64.activations, dtype=np.float32)
    net32.params[...] = net64.params
    loss = get_loss("log_loss")
    v64, g64, _ = net64.loss_and_gradient(X, Y, loss)
    v32, g32, _ = net32.loss_and_gradient(X.astype(np.float32), Y.astype(np.float32), loss)
    assert g32.dtype == np.float32
    assert v32 == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("tied", [False, True], ids=["network", "tied-network"])
def test_all_zero_sample_weights_give_a_zero_gradient_and_no_warning(tied):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(4, 3))
    if tied:
        net = TiedNetwork([3, 2, 3], [get_activation("tanh"), get_activation("identity")])
        net.params[...] = rng.normal(size=net.params.size)
        Y = X
    else:
        net, Y = _network("relu", "identity", 2), rng.normal(size=(4, 2))
    value, grad, sw_sum = net.loss_and_gradient(X, Y, get_loss("squared_error"),
                                                sample_weight=np.zeros(4), alpha=0.5, l1=0.1)
    assert sw_sum == 0.0 and value == 0.0
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("path", ["compiled-blas", "compiled-numpy-products", "numpy"])
@pytest.mark.parametrize("penalty", ["none", "both"])
@pytest.mark.parametrize("weight_scale", [1.0, 0.05], ids=["weights", "weights-below-1-in-all"])
def test_tied_network_gradient_matches_finite_differences(path, penalty, weight_scale):
    """Each shared matrix's gradient sums its encoder and decoder parts; the
    penalty counts each shared matrix once, however small the batch's total
    weight."""
    rng = np.random.default_rng(11)
    net = TiedNetwork([4, 3, 2, 3, 4], [get_activation(n) for n in
                                        ("tanh", "elu", "tanh", "logistic")])
    net.params[...] = rng.normal(scale=0.6, size=net.params.size)
    X = rng.random((6, 4))
    loss = get_loss("binary_log_loss")
    alpha, l1 = PENALTIES[penalty]
    sw = (rng.random(6) + 0.1) * weight_scale
    ws = net.workspace(6, fast_blas=path == "compiled-blas")
    assert ws.step is not None
    if path == "numpy":
        ws.step = None
    else:
        assert ws.blas_in_kernel == (path == "compiled-blas")
    _check(net, X, X, loss, sample_weight=sw, alpha=alpha, l1=l1, ws=ws)
    value = net.loss_and_gradient(X, X, loss, sample_weight=sw, alpha=alpha, l1=l1, ws=ws)[0]
    plain = net.loss_and_gradient(X, X, loss, sample_weight=sw, ws=ws)[0]
    by_hand = sum(0.5 * alpha * np.sum(W ** 2) + l1 * np.sum(np.abs(W)) for W in net.coefs[:2])
    np.testing.assert_allclose(value - plain, by_hand / sw.sum(), rtol=1e-10, atol=1e-15)

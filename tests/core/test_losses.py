"""Losses: values against scikit-learn's, gradients, and fused versus chain-rule deltas."""

import numpy as np
import pytest
import sklearn
from sklearn.neural_network import _base as sk_base

from sknet._core import LOSSES, get_activation, get_loss, output_delta
from sknet._core.losses import is_canonical, with_data_scale
from sknet._core.network import Network
from sknet._core.recurrent import RecurrentNetwork
from sknet._core.tied import TiedNetwork

# scikit-learn 1.7 added sample weights to its MLP and loss functions, and the
# Poisson loss: comparisons that need them run from that version on.
SKLEARN_1_7 = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 7)
requires_sklearn_1_7 = pytest.mark.skipif(
    not SKLEARN_1_7, reason="scikit-learn < 1.7 has no MLP sample weights or Poisson loss")



def _data(loss_name, n=8, k=3, seed=0):
    """Targets and predictions valid for ``loss_name`` (P strictly inside the range)."""
    rng = np.random.default_rng(seed)
    if loss_name == "squared_error":
        return rng.normal(size=(n, k)), rng.normal(size=(n, k))
    if loss_name == "poisson":
        return rng.poisson(2.0, size=(n, k)).astype(float), rng.uniform(0.2, 4.0, (n, k))
    if loss_name == "binary_log_loss":
        return (rng.random((n, k)) < 0.5).astype(float), rng.uniform(0.05, 0.95, (n, k))
    Y = np.eye(k)[rng.integers(0, k, n)]  # log_loss: one-hot rows, probability rows
    P = rng.uniform(0.1, 1.0, (n, k))
    return Y, P / P.sum(axis=1, keepdims=True)


@requires_sklearn_1_7
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["log_loss", "binary_log_loss", "poisson"])
def test_loss_values_equal_scikit_learns(name, weighted):
    Y, P = _data(name)
    sw = np.random.default_rng(1).uniform(0.1, 2.0, Y.shape[0]) if weighted else None
    expected = sk_base.LOSS_FUNCTIONS[name](Y, P, sw)
    assert get_loss(name).value(Y, P, sw) == pytest.approx(expected, rel=1e-12)


@requires_sklearn_1_7
@pytest.mark.parametrize("weighted", [False, True])
def test_two_class_log_loss_on_one_logistic_unit_equals_scikit_learns(weighted):
    Y, P = _data("binary_log_loss", k=1)
    sw = np.random.default_rng(1).uniform(0.1, 2.0, Y.shape[0]) if weighted else None
    expected = sk_base.log_loss(Y, P, sw)
    assert get_loss("log_loss").value(Y, P, sw) == pytest.approx(expected, rel=1e-12)


@requires_sklearn_1_7
@pytest.mark.parametrize("weighted", [False, True])
def test_squared_error_single_output_equals_scikit_learns(weighted):
    Y, P = _data("squared_error", k=1)
    sw = np.random.default_rng(1).uniform(0.1, 2.0, Y.shape[0]) if weighted else None
    expected = sk_base.squared_loss(Y, P, sw)
    assert get_loss("squared_error").value(Y, P, sw) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("k", [2, 5])
def test_squared_error_sums_over_outputs_where_scikit_learn_averages(k):
    """The squared error's value is 0.5 * mean_i sum_j (P - Y)^2, the objective whose
    gradient is P - Y; scikit-learn reports the mean over the k outputs, k times smaller
    (what the regressors report through ``with_data_scale``, tested below)."""
    Y, P = _data("squared_error", k=k)
    by_hand = 0.5 * np.mean(np.sum((P - Y) ** 2, axis=1))
    value = get_loss("squared_error").value(Y, P, None)
    assert value == pytest.approx(by_hand, rel=1e-12)
    assert value == pytest.approx(k * sk_base.squared_loss(Y, P), rel=1e-12)


@pytest.mark.parametrize("name, k", [(name, 3) for name in sorted(LOSSES)] + [("log_loss", 1)])
def test_loss_gradient_matches_finite_differences(name, k):
    """gradient(Y, P)[i] is d(per-sample loss_i)/dP_i, so mean-loss derivative = gradient / n."""
    if k == 1:  # log_loss on one logistic unit: the two-class log-loss
        Y, P = _data("binary_log_loss", n=4, k=1)
    else:
        Y, P = _data(name, n=4, k=k)
    loss = get_loss(name)
    numeric = np.empty_like(P)
    h = 1e-7
    for idx in np.ndindex(P.shape):
        up, down = P.copy(), P.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss.value(Y, up, None) - loss.value(Y, down, None)) / (2 * h)
    np.testing.assert_allclose(loss.gradient(Y, P) / P.shape[0], numeric, rtol=1e-5, atol=1e-8)


CANONICAL = [("log_loss", "softmax"), ("binary_log_loss", "logistic"),
             ("squared_error", "identity"), ("poisson", "exp")]


@pytest.mark.parametrize("loss_name, act_name", CANONICAL)
def test_fused_delta_equals_general_chain_rule(loss_name, act_name):
    Y, P = _data(loss_name, n=10, k=4)
    loss, act = get_loss(loss_name), get_activation(act_name)
    assert loss.canonical == act_name and is_canonical(loss, act)
    fused = output_delta(loss, act, Y, P, fused=True)
    chain = output_delta(loss, act, Y, P, fused=False)
    np.testing.assert_allclose(fused, P - Y, rtol=1e-14)
    np.testing.assert_allclose(chain, fused, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(output_delta(loss, act, Y, P), fused, rtol=1e-14)


def test_one_logistic_unit_with_log_loss_is_canonical():
    Y, P = _data("binary_log_loss", k=1)
    loss, act = get_loss("log_loss"), get_activation("logistic")
    assert is_canonical(loss, act)
    np.testing.assert_allclose(output_delta(loss, act, Y, P, fused=False), P - Y, rtol=1e-10)


@pytest.mark.parametrize("loss_name, act_name", [
    ("squared_error", "logistic"), ("squared_error", "tanh"), ("squared_error", "exp"),
    ("binary_log_loss", "softmax"), ("squared_error", "softmax"),
])
def test_non_canonical_pairs_use_the_chain_rule(loss_name, act_name):
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(6, 3))
    act, loss = get_activation(act_name), get_loss(loss_name)
    P = act.forward(Z.copy())
    Y = _data(loss_name, n=6, k=3)[0]
    assert not is_canonical(loss, act)
    # d(per-sample loss)/dZ by central differences through the activation
    numeric = np.empty_like(Z)
    for idx in np.ndindex(Z.shape):
        up, down = Z.copy(), Z.copy()
        up[idx] += 1e-6
        down[idx] -= 1e-6
        numeric[idx] = (loss.value(Y, act.forward(up), None)
                        - loss.value(Y, act.forward(down), None)) / 2e-6 * Z.shape[0]
    np.testing.assert_allclose(output_delta(loss, act, Y, P), numeric, rtol=1e-5, atol=1e-8)


def test_output_delta_writes_into_out():
    Y, P = _data("squared_error")
    out = np.empty_like(P)
    res = output_delta(get_loss("squared_error"), get_activation("logistic"), Y,
                       get_activation("logistic").forward(P.copy()), out=out)
    assert res is out


def test_log_loss_clips_probabilities_of_zero_and_one():
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    P = np.array([[0.0, 1.0], [0.0, 1.0]])
    value = get_loss("log_loss").value(Y, P, None)
    assert np.isfinite(value)
    assert value == pytest.approx(-0.5 * np.log(np.finfo(float).eps), rel=1e-6)


@pytest.mark.parametrize("name, Y, P", [
    ("log_loss", [[1.0], [0.0]], [[0.0], [1.0]]),  # one logistic unit, two classes
    ("binary_log_loss", [[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]),
])
def test_two_class_log_losses_clip_both_ends(name, Y, P):
    # Clipped to [eps, 1 - eps] as scikit-learn clips, each saturated wrong
    # probability costs -log(eps): -log(eps) for P = 0 and Y = 1, and
    # -log(1 - (1 - eps)) = -log(eps) (exactly: 1 - eps is a double) for P = 1, Y = 0.
    Y, P = np.array(Y), np.array(P)
    eps = np.finfo(float).eps
    per_row = Y.shape[1]
    assert get_loss(name).value(Y, P, None) == pytest.approx(-per_row * np.log(eps), rel=1e-12)
    grad = get_loss(name).gradient(Y, P)
    assert np.isfinite(grad).all()


def test_unknown_loss_names_the_known_ones():
    with pytest.raises(ValueError, match="squared_error"):
        get_loss("hinge")


def _dense():
    net = Network([4, 5, 3], [get_activation("tanh"), get_activation("identity")])
    return net, np.random.default_rng(2).normal(size=(9, 4)), {}


def _tied():
    net = TiedNetwork([3, 2, 3], [get_activation("tanh"), get_activation("identity")])
    return net, np.random.default_rng(2).normal(size=(9, 3)), {}


def _recurrent(numpy_head):
    net = RecurrentNetwork(2, [4], 3, cell="gru")
    X = np.random.default_rng(2).normal(size=(9, 5, 2))
    # a batch longer than the workspace's runs the output layer in numpy
    return net, X, {"ws": net.workspace(4 if numpy_head else 9)}


@pytest.mark.parametrize("make, fused", [
    (_dense, None), (_dense, False), (_tied, None), (_tied, False),
    (lambda: _recurrent(False), None), (lambda: _recurrent(True), None),
], ids=["dense", "dense-numpy", "tied", "tied-numpy", "recurrent", "recurrent-numpy"])
def test_data_scale_scales_the_returned_loss_and_not_its_gradient(make, fused):
    """``with_data_scale(loss, 1 / k)``: the loss scikit-learn reports for k outputs,
    ``0.5 * mean_ij (P - Y)^2`` plus the penalty, with the gradient of the objective
    ``0.5 * mean_i sum_j (P - Y)^2`` (plus the penalty): in each network's compiled
    and numpy paths."""
    net, X, kw = make()
    if fused is not None:
        kw["fused"] = fused
    rng = np.random.default_rng(3)
    net.params[...] = rng.normal(scale=0.5, size=net.params.size)
    k = 3
    Y = rng.normal(size=(X.shape[0], k))
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    plain = get_loss("squared_error")
    reported = with_data_scale(plain, 1.0 / k)
    data, _, _ = net.loss_and_gradient(X, Y, plain, sw, **kw)
    P = net.predict(X)
    assert data == pytest.approx(0.5 * np.average(np.sum((P - Y) ** 2, axis=1), weights=sw),
                                 rel=1e-12)
    value, grad, _ = net.loss_and_gradient(X, Y, plain, sw, alpha=0.3, l1=0.1, **kw)
    grad = grad.copy()
    penalty = value - data
    assert penalty > 0
    scaled, scaled_grad, _ = net.loss_and_gradient(X, Y, reported, sw, alpha=0.3, l1=0.1, **kw)
    by_hand = 0.5 * np.average(np.mean((P - Y) ** 2, axis=1), weights=sw)  # scikit-learn's
    assert scaled == pytest.approx(by_hand + penalty, rel=1e-12)
    np.testing.assert_array_equal(scaled_grad, grad)

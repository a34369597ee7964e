"""Activations: values and derivatives against closed forms and finite differences."""

import warnings

import numpy as np
import pytest
from scipy import integrate

from sknet._core import ACTIVATIONS, Network, get_activation, get_loss, register_activation

ELEMENTWISE = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "selu", "exp"]
ALL = ELEMENTWISE + ["softmax"]

# SELU's constants as published by Klambauer et al. (2017), to 10 digits.
SELU_LAMBDA = 1.0507009874
SELU_ALPHA = 1.6732632423


def _closed_form(name, z, slope=0.01, alpha=1.0):
    """f(z) and f'(z) written from the textbook formulas (moderate z only)."""
    if name == "identity":
        return z, np.ones_like(z)
    if name == "logistic":
        s = 1.0 / (1.0 + np.exp(-z))
        return s, np.exp(-z) / (1.0 + np.exp(-z)) ** 2
    if name == "tanh":  # the lecture's (e^2x - 1) / (e^2x + 1)
        t = (np.exp(2 * z) - 1) / (np.exp(2 * z) + 1)
        return t, 4.0 / (np.exp(z) + np.exp(-z)) ** 2
    if name == "relu":
        return np.maximum(0.0, z), (z > 0).astype(float)
    if name == "leaky_relu":  # the lecture's max(alpha x, x), alpha < 1
        return np.maximum(slope * z, z), np.where(z > 0, 1.0, slope)
    if name == "elu":
        return (np.where(z < 0, alpha * (np.exp(z) - 1), z),
                np.where(z < 0, alpha * np.exp(z), 1.0))
    if name == "selu":
        f, d = _closed_form("elu", z, alpha=SELU_ALPHA)
        return SELU_LAMBDA * f, SELU_LAMBDA * d
    if name == "exp":
        return np.exp(z), np.exp(z)
    raise AssertionError(name)


def _forward(act, z):
    return act.forward(np.array(z, copy=True))


def _derivative(act, z):
    """f'(z) through the activation's own backward with a unit gradient."""
    a = _forward(act, z)
    x = a if act.derivative_of == "output" else np.array(z, copy=True)
    return act.backward(x, np.ones_like(a))


def _points(rng, shape=(7, 5)):
    z = rng.uniform(-4, 4, size=shape)
    z[np.abs(z) < 1e-3] = 0.5  # keep finite differences away from kinks
    return z


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_matches_closed_form(name):
    z = _points(np.random.default_rng(0))
    f, d = _closed_form(name, z)
    act = get_activation(name)
    np.testing.assert_allclose(_forward(act, z), f, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_derivative(act, z), d, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_derivative_matches_finite_differences(name):
    z = _points(np.random.default_rng(1))
    act = get_activation(name)
    h = 1e-6
    numeric = (_forward(act, z + h) - _forward(act, z - h)) / (2 * h)
    np.testing.assert_allclose(_derivative(act, z), numeric, rtol=1e-6, atol=1e-8)


# At z = 0 exactly, relu's derivative is 0, as in scikit-learn; the other kinked
# activations take their left-hand derivative there too, so that leaky_relu's
# tends to relu's as its slope goes to 0.
KINKS = [("relu", {}, 0.0), ("leaky_relu", {"negative_slope": 0.2}, 0.2),
         ("elu", {"alpha": 0.7}, 0.7), ("selu", {}, SELU_LAMBDA * SELU_ALPHA)]


@pytest.mark.parametrize("name, params, left", KINKS, ids=[k[0] for k in KINKS])
def test_at_the_kink_the_derivative_is_the_left_hand_one(name, params, left):
    act = get_activation(name, **params)
    np.testing.assert_allclose(_derivative(act, np.zeros(4)), left, rtol=1e-9, atol=0)


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("name, params, left", KINKS, ids=[k[0] for k in KINKS])
def test_the_training_step_takes_the_left_hand_derivative_at_the_kink(name, params, left, path):
    """Zero inputs and zero biases put every hidden pre-activation at 0: the
    hidden biases' gradient is the identity network's times f'(0), and the
    rest of the gradient is the identity network's."""
    X, Y = np.zeros((5, 2)), np.random.default_rng(1).normal(size=(5, 1))
    grads = []
    for act in (get_activation(name, **params), get_activation("identity")):
        net = Network([2, 3, 1], [act, get_activation("identity")])
        net.params[...] = np.random.default_rng(0).normal(size=net.params.size)
        net.views(net.params)[1][0][...] = 0.0
        ws = net.workspace(5, fast_blas=True)
        assert ws.step is not None
        if path == "numpy":
            ws.step = None
        grads.append(net.loss_and_gradient(X, Y, get_loss("squared_error"), ws=ws)[1].copy())
    expected = grads[1].copy()
    hidden_biases = net.views(expected)[1][0]
    assert np.all(hidden_biases != 0)
    hidden_biases *= left
    np.testing.assert_allclose(grads[0], expected, rtol=1e-9, atol=0)  # SELU to 10 digits


def test_softmax_matches_closed_form_and_sums_to_one():
    z = _points(np.random.default_rng(2), (6, 4))
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p = _forward(get_activation("softmax"), z)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_softmax_backward_applies_the_full_jacobian():
    """backward(p, g) = J^T g with J_ij = dp_i/dz_j, checked against J by finite differences."""
    rng = np.random.default_rng(3)
    act = get_activation("softmax")
    assert not act.elementwise
    z = rng.normal(size=(5, 4))
    g = rng.normal(size=(5, 4))
    got = act.backward(_forward(act, z), g.copy())
    h = 1e-6
    for s in range(z.shape[0]):
        jac = np.empty((4, 4))  # jac[i, j] = dp_i / dz_j
        for j in range(4):
            zp, zm = z[s:s + 1].copy(), z[s:s + 1].copy()
            zp[0, j] += h
            zm[0, j] -= h
            jac[:, j] = (_forward(act, zp) - _forward(act, zm))[0] / (2 * h)
        p = _forward(act, z[s:s + 1])[0]
        np.testing.assert_allclose(jac, np.diag(p) - np.outer(p, p), atol=1e-8)
        np.testing.assert_allclose(got[s], jac.T @ g[s], atol=1e-8)


def test_leaky_relu_default_slope_is_the_lectures_001():
    act = get_activation("leaky_relu")
    assert act.params == {"negative_slope": 0.01}
    np.testing.assert_allclose(_forward(act, np.array([[-2.0, 3.0]])), [[-0.02, 3.0]])
    np.testing.assert_allclose(_derivative(act, np.array([[-2.0, 3.0]])), [[0.01, 1.0]])


@pytest.mark.parametrize("slope", [0.2, 0.5, 3.0])
def test_leaky_relu_slope_is_settable(slope):
    z = _points(np.random.default_rng(4))
    act = get_activation("leaky_relu", negative_slope=slope)
    np.testing.assert_allclose(_forward(act, z), np.where(z < 0, slope * z, z))
    np.testing.assert_allclose(_derivative(act, z), np.where(z < 0, slope, 1.0))
    # the registry's default is untouched
    np.testing.assert_allclose(_forward(get_activation("leaky_relu"), [[-1.0]]), [[-0.01]])


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_elu_alpha_is_settable(alpha):
    z = _points(np.random.default_rng(5))
    f, d = _closed_form("elu", z, alpha=alpha)
    act = get_activation("elu", alpha=alpha)
    np.testing.assert_allclose(_forward(act, z), f, rtol=1e-12)
    np.testing.assert_allclose(_derivative(act, z), d, rtol=1e-12)
    np.testing.assert_allclose(_forward(act, np.array([[-50.0]])), [[-alpha]])


def test_selu_is_self_normalizing():
    """With N(0, 1) input, selu's output has mean 0 and variance 1 (its defining property)."""
    act = get_activation("selu")

    def selu(x):
        return float(_forward(act, np.array([[x]]))[0, 0])

    def pdf(x):
        return np.exp(-x * x / 2) / np.sqrt(2 * np.pi)

    mean = integrate.quad(lambda x: selu(x) * pdf(x), -np.inf, np.inf)[0]
    second = integrate.quad(lambda x: selu(x) ** 2 * pdf(x), -np.inf, np.inf)[0]
    assert abs(mean) < 1e-6
    assert abs(second - 1.0) < 1e-6


@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_nonpositive_activation_parameters_are_rejected(name, bad):
    key = "negative_slope" if name == "leaky_relu" else "alpha"
    with pytest.raises(ValueError, match=name):
        get_activation(name, **{key: bad})


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="relu"):
        get_activation("rleu")


# --------------------------------------------------------------------------- #
# numerical stability                                                          #
# --------------------------------------------------------------------------- #
EXTREMES = np.array([-1e4, -1e3, -100.0, -1.0, 0.0, 1.0, 100.0, 1e3, 1e4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL)
def test_no_overflow_for_inputs_up_to_1e4(name, dtype):
    z = np.stack([EXTREMES, -EXTREMES, EXTREMES[::-1] * 0.5]).astype(dtype)
    act = get_activation(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow / invalid value fails
        a = act.forward(z.copy())
        d = act.backward(a if act.derivative_of == "output" else z.copy(),
                         np.ones_like(a))
    assert a.dtype == dtype and d.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(d))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturation_limits(dtype):
    z = np.array([[-1e4, 1e4]], dtype=dtype)
    lim = {
        "logistic": [0.0, 1.0], "tanh": [-1.0, 1.0], "relu": [0.0, 1e4],
        "leaky_relu": [-100.0, 1e4], "elu": [-1.0, 1e4],
        "selu": [-SELU_LAMBDA * SELU_ALPHA, SELU_LAMBDA * 1e4],
    }
    for name, expected in lim.items():
        np.testing.assert_allclose(_forward(get_activation(name), z), [expected],
                                   rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(_forward(get_activation("softmax"), z), [[0.0, 1.0]])
    big = _forward(get_activation("exp"), z)
    assert big[0, 0] == 0.0 and np.isfinite(big[0, 1]) and big[0, 1] > 1e30


# --------------------------------------------------------------------------- #
# register_activation                                                          #
# --------------------------------------------------------------------------- #
@pytest.fixture
def registry(activation_registry):
    """Names registered by a test, removed again afterwards (see conftest)."""
    return activation_registry


def _softsign(z):
    return z / (1 + np.abs(z))


def _softsign_from_input(z, grad):
    return grad / (1 + np.abs(z)) ** 2


def _softsign_from_output(a, grad):  # f' = (1 - |f|)^2
    return grad * (1 - np.abs(a)) ** 2


def _gradient_error(hidden):
    """Max |analytic - numeric| gradient of a small network through ``hidden``."""
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    net = Network([3, 4, 2], [hidden, get_activation("identity")])
    net.initialize("glorot_normal", np.random.RandomState(0))
    loss = get_loss("squared_error")
    grad = net.loss_and_gradient(X, Y, loss)[1].copy()
    numeric = np.empty_like(grad)
    for i in range(grad.size):
        old = net.params[i]
        net.params[i] = old + 1e-6
        up = net.loss_and_gradient(X, Y, loss)[0]
        net.params[i] = old - 1e-6
        down = net.loss_and_gradient(X, Y, loss)[0]
        net.params[i] = old
        numeric[i] = (up - down) / 2e-6
    return np.abs(grad - numeric).max()


@pytest.mark.parametrize("derivative_of", ["input", "output"])
@pytest.mark.parametrize("in_place", [True, False])
def test_registered_activation_backpropagates_correctly(registry, derivative_of, in_place):
    """Custom activations give exact gradients, in place or not, from input or output."""
    name = f"softsign_{derivative_of}_{in_place}"
    registry.append(name)

    def function(z):
        if in_place:
            np.divide(z, 1 + np.abs(z), out=z)
            return z
        return _softsign(z)

    derivative = _softsign_from_input if derivative_of == "input" else _softsign_from_output
    act = register_activation(name, function, derivative, derivative_of=derivative_of)
    assert ACTIVATIONS[name] is act and get_activation(name) is act
    assert _gradient_error(act) < 1e-7


def test_registered_activation_trains_an_mlp(registry):
    from sknet import MLPClassifier

    registry.append("softsign_mlp")
    register_activation("softsign_mlp", _softsign, _softsign_from_output)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, dtype=float)
    y = np.array([0, 1, 1, 0] * 10)
    clf = MLPClassifier(hidden_layer_sizes=(8,), activation="softsign_mlp",
                        solver="lbfgs", random_state=0, max_iter=500).fit(X, y)
    assert clf.score(X, y) == 1.0
    # predictions go through softsign: recompute them by hand
    h = _softsign(X @ clf.coefs_[0] + clf.intercepts_[0])
    p = 1 / (1 + np.exp(-(h @ clf.coefs_[1] + clf.intercepts_[1])))
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], p.ravel(), rtol=1e-10)


@pytest.mark.parametrize("args, kwargs, error", [
    (("", _softsign, _softsign_from_input), {}, ValueError),
    ((3, _softsign, _softsign_from_input), {}, ValueError),
    (("relu", _softsign, _softsign_from_input), {}, ValueError),
    (("bad_deriv_of", _softsign, _softsign_from_input), {"derivative_of": "both"}, ValueError),
    (("not_callable", "softsign", _softsign_from_input), {}, TypeError),
    (("not_callable2", _softsign, None), {}, TypeError),
])
def test_bad_registrations_are_rejected_and_change_nothing(args, kwargs, error):
    before = dict(ACTIVATIONS)
    with pytest.raises(error):
        register_activation(*args, **kwargs)
    assert ACTIVATIONS == before


def test_overwrite_replaces_a_registered_activation(registry):
    registry.append("twice")
    register_activation("twice", lambda z: 2 * z, lambda a, g: 2 * g)
    with pytest.raises(ValueError, match="overwrite"):
        register_activation("twice", lambda z: 3 * z, lambda a, g: 3 * g)
    register_activation("twice", lambda z: 3 * z, lambda a, g: 3 * g, overwrite=True)
    np.testing.assert_allclose(_forward(get_activation("twice"), [[1.0]]), [[3.0]])

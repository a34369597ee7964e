"""The lecture's worked network, computed by hand and compared with sknet's core.

The lecture ("A Step by Step Backpropagation algorithm") builds 3 inputs ->
a ReLU hidden layer of 3 -> a sigmoid hidden layer of 3 -> a softmax output of
3, with the error

    E = -1/3 * sum_i [ y_i log(O_out_i) + (1 - y_i) log(1 - O_out_i) ],

the binary cross-entropy averaged over the three softmax outputs. The lecture
gives no numbers, so the weights and inputs below are chosen here; the forward
pass follows the lecture's formulas and the backward pass applies the chain
rule by hand, in plain numpy, independently of sknet. Every test compares sknet's core
with this hand computation, or with finite differences of the core's own loss.

Where this test departs from the slides (on purpose, because the slides are
wrong there):

1. The slides write dE_i/dO_out_i = -(y_i / O_out_i + (1 - y_i) / (1 - O_out_i)).
   The derivative of -(y log o + (1 - y) log(1 - o)) is
   -(y / o - (1 - y) / (1 - o)): the slides slip a sign.
2. The slides keep only dO_out_i/dO_in_i (the diagonal of the softmax
   Jacobian). Every softmax output depends on every input, so
   dO_out_i/dO_in_j = O_out_i (delta_ij - O_out_j) and the error reaching
   O_in_j sums over all i. The test uses the full Jacobian and shows that the
   diagonal-only version gives a different gradient that finite differences
   reject.
"""

import numpy as np
import pytest

from sknet._core import SGD, Network, feed_forward, get_activation, get_loss

# inputs i1..i3 and the target Output = [1 0 0], as on the slides
X = np.array([[0.5, -1.0, 2.0]])
Y = np.array([[1.0, 0.0, 0.0]])
# w_{i j}: input -> hidden 1 (ReLU); row = input, column = neuron, as on the slides
W1 = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [-0.7, 0.8, 0.9]])
B1 = np.array([0.1, 0.2, -0.1])
# w_{j k}: hidden 1 -> hidden 2 (sigmoid)
W2 = np.array([[0.2, -0.3, 0.5], [-0.4, 0.6, 0.1], [0.7, -0.1, -0.8]])
B2 = np.array([0.05, -0.05, 0.1])
# w_{k l}: hidden 2 -> output (softmax)
W3 = np.array([[0.3, -0.6, 0.2], [0.9, 0.4, -0.5], [-0.2, 0.7, 0.1]])
B3 = np.array([0.0, 0.1, -0.1])


def forward(W1, B1, W2, B2, W3, B3, x=X[0]):
    """The lecture's forward pass, one neuron at a time."""
    h1_in = np.array([sum(x[i] * W1[i, j] for i in range(3)) + B1[j] for j in range(3)])
    h1_out = np.array([max(0.0, v) for v in h1_in])
    h2_in = np.array([sum(h1_out[j] * W2[j, k] for j in range(3)) + B2[k] for k in range(3)])
    h2_out = np.array([1 / (1 + np.exp(-v)) for v in h2_in])
    o_in = np.array([sum(h2_out[k] * W3[k, m] for k in range(3)) + B3[m] for m in range(3)])
    o_out = np.array([np.exp(o_in[m]) / sum(np.exp(o_in[a]) for a in range(3))
                      for m in range(3)])
    return h1_in, h1_out, h2_in, h2_out, o_in, o_out


def error(o_out, y=Y[0]):
    """The lecture's cross-entropy: binary cross-entropies averaged over 3 outputs."""
    return -sum(y[i] * np.log(o_out[i]) + (1 - y[i]) * np.log(1 - o_out[i])
                for i in range(3)) / 3


def backward(full_jacobian=True, slide_sign=False):
    """Chain rule by hand. Returns (dW1, dB1, dW2, dB2, dW3, dB3)."""
    h1_in, h1_out, h2_in, h2_out, o_in, o = forward(W1, B1, W2, B2, W3, B3)
    y = Y[0]
    sign = 1.0 if slide_sign else -1.0  # the slides' slip: + instead of -
    dE_do = np.array([-(y[i] / o[i] + sign * (1 - y[i]) / (1 - o[i])) / 3 for i in range(3)])
    # dO_out_i / dO_in_j = o_i (delta_ij - o_j); the slides keep only i == j
    do_dz = np.array([[o[i] * ((i == j) - o[j]) for j in range(3)] for i in range(3)])
    if not full_jacobian:
        do_dz = np.diag(np.diag(do_dz))
    d_o_in = np.array([sum(dE_do[i] * do_dz[i, j] for i in range(3)) for j in range(3)])
    dW3 = np.array([[h2_out[k] * d_o_in[m] for m in range(3)] for k in range(3)])
    # dE_total/dh2_out_k = sum over outputs of (error at O_in_m) * w_{k m}
    dE_dh2 = np.array([sum(d_o_in[m] * W3[k, m] for m in range(3)) for k in range(3)])
    d_h2_in = dE_dh2 * h2_out * (1 - h2_out)  # sigmoid' = s (1 - s)
    dW2 = np.array([[h1_out[j] * d_h2_in[k] for k in range(3)] for j in range(3)])
    dE_dh1 = np.array([sum(d_h2_in[k] * W2[j, k] for k in range(3)) for j in range(3)])
    d_h1_in = dE_dh1 * (h1_in > 0)  # relu' = 1 where the neuron is active
    dW1 = np.array([[X[0, i] * d_h1_in[j] for j in range(3)] for i in range(3)])
    return dW1, d_h1_in, dW2, d_h2_in, dW3, d_o_in


def finite_differences(h=1e-6):
    params = [W1, B1, W2, B2, W3, B3]
    grads = []
    for p in params:
        g = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = error(forward(*params)[-1])
            p[idx] = old - h
            down = error(forward(*params)[-1])
            p[idx] = old
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def _core_network():
    net = Network([3, 3, 3, 3], [get_activation("relu"), get_activation("logistic"),
                                 get_activation("softmax")])
    net.set_weights([W1, W2, W3], [B1, B2, B3])
    return net


def _as_layers(flat_grad, net):
    coefs, intercepts = net.views(flat_grad)
    return [coefs[0], intercepts[0], coefs[1], intercepts[1], coefs[2], intercepts[2]]


def core_loss_and_gradient(fused=False):
    """The lecture's E and its gradient by layer, from the core (a third of binary_log_loss)."""
    net = _core_network()
    value, grad, _ = net.loss_and_gradient(X, Y, get_loss("binary_log_loss"), fused=fused)
    return value / 3, _as_layers(grad / 3, net)


def core_finite_differences(h=1e-6):
    """Central differences of the core's own loss value, parameter by parameter."""
    net = _core_network()
    loss = get_loss("binary_log_loss")
    grad = np.empty_like(net.params)
    for i in range(net.params.size):
        old = net.params[i]
        net.params[i] = old + h
        up = net.loss_and_gradient(X, Y, loss, fused=False)[0]
        net.params[i] = old - h
        down = net.loss_and_gradient(X, Y, loss, fused=False)[0]
        net.params[i] = old
        grad[i] = (up - down) / (2 * h) / 3
    return _as_layers(grad, net)


def test_the_core_relu_gate_closes_where_the_lecture_says():
    h1_in, h1_out = forward(W1, B1, W2, B2, W3, B3)[:2]
    assert (h1_in < 0).any() and (h1_in > 0).any()  # the chosen weights use the gate
    core_h1 = feed_forward(X, [W1], [B1], [get_activation("relu")])[0]
    np.testing.assert_allclose(core_h1, h1_out, rtol=1e-14)
    # no gradient reaches a closed neuron's weights; every open one gets some
    _, (dW1, dB1, *_) = core_loss_and_gradient()
    closed = h1_in < 0
    assert np.all(dW1[:, closed] == 0) and np.all(dB1[closed] == 0)
    assert np.all(dB1[~closed] != 0)


def test_forward_pass_matches_the_core():
    *_, o_out = forward(W1, B1, W2, B2, W3, B3)
    np.testing.assert_allclose(_core_network().predict(X)[0], o_out, rtol=1e-14)
    assert o_out.sum() == pytest.approx(1.0)


def test_hand_and_core_gradients_match_finite_differences():
    _, core = core_loss_and_gradient()
    lecture_numeric, core_numeric = finite_differences(), core_finite_differences()
    for hand, got, numeric, numeric_core in zip(backward(), core, lecture_numeric,
                                                core_numeric, strict=True):
        np.testing.assert_allclose(hand, numeric, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(got, numeric_core, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("fused", [False, None], ids=["chain-rule", "default"])
def test_core_loss_and_gradient_match_the_hand_computation(fused):
    """The core's binary_log_loss sums over outputs: the lecture's E is a third of it."""
    value, core = core_loss_and_gradient(fused)
    *_, o_out = forward(W1, B1, W2, B2, W3, B3)
    assert value == pytest.approx(error(o_out), rel=1e-12)
    for got, hand in zip(core, backward(), strict=True):
        np.testing.assert_allclose(got, hand, rtol=1e-10, atol=1e-14)


def test_the_core_uses_the_full_softmax_jacobian_not_the_slides_diagonal():
    _, core = core_loss_and_gradient()
    diagonal = backward(full_jacobian=False)
    numeric = finite_differences()
    for layer in (4, 0):  # the output weights, and the first layer the error reaches
        np.testing.assert_allclose(core[layer], numeric[layer], rtol=1e-6, atol=1e-10)
        assert not np.allclose(diagonal[layer], numeric[layer], rtol=1e-3)
        assert not np.allclose(core[layer], diagonal[layer], rtol=1e-3)


def test_the_core_has_the_right_sign_where_the_slides_slip():
    _, core = core_loss_and_gradient()
    slipped = backward(slide_sign=True)
    numeric = finite_differences()
    np.testing.assert_allclose(core[4], numeric[4], rtol=1e-6, atol=1e-10)
    assert not np.allclose(slipped[4], numeric[4], rtol=1e-3)
    assert not np.allclose(core[4], slipped[4], rtol=1e-3)


def test_one_gradient_step_is_the_lectures_update_rule():
    """w' = w - alpha * dE/dw, through the core's SGD with no momentum."""
    net = _core_network()
    grad = net.loss_and_gradient(X, Y, get_loss("binary_log_loss"), fused=False)[1] / 3
    opt = SGD(net.params.size, net.dtype, momentum=0.0, nesterov=False)
    opt.step(net.params, grad, 0.5)
    for new, old, g in zip(_as_layers(net.params, net), [W1, B1, W2, B2, W3, B3], backward(),
                           strict=True):
        np.testing.assert_allclose(new, old - 0.5 * g, rtol=1e-12, atol=1e-15)

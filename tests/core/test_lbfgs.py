"""The L-BFGS loop never leaves non-finite weights in the network."""

import numpy as np
import pytest
import scipy.optimize

from sknet._core import Network, fit_lbfgs, get_activation, get_loss


def test_a_non_finite_solution_keeps_the_starting_weights(monkeypatch):
    rng = np.random.RandomState(0)
    net = Network([3, 4, 1], [get_activation("tanh"), get_activation("identity")])
    net.initialize("sklearn", rng)
    start = net.params.copy()
    X, Y = rng.rand(10, 3), rng.rand(10, 1)

    def diverging_minimize(fun, x0, **kwargs):
        fun(x0)  # the loop evaluates the network as scipy would
        return scipy.optimize.OptimizeResult(x=np.full_like(x0, np.nan), fun=np.nan,
                                             nit=1, status=0, message="")

    monkeypatch.setattr(scipy.optimize, "minimize", diverging_minimize)
    result = fit_lbfgs(net, get_loss("squared_error"), X, Y, None)
    assert result.diverged
    np.testing.assert_array_equal(net.params, start)


def _regression():
    """A small tanh network and a linear target it can fit."""
    rng = np.random.RandomState(0)
    net = Network([3, 4, 1], [get_activation("tanh"), get_activation("identity")])
    net.initialize("sklearn", rng)
    X = rng.rand(30, 3)
    return net, X, X.sum(axis=1, keepdims=True)


def test_a_finite_solution_is_kept():
    net, X, Y = _regression()
    before, _, _ = net.loss_and_gradient(X, Y, get_loss("squared_error"))
    result = fit_lbfgs(net, get_loss("squared_error"), X, Y, None, max_iter=50)
    after, _, _ = net.loss_and_gradient(X, Y, get_loss("squared_error"))
    assert not result.diverged and after < before
    np.testing.assert_array_equal(net.params, result.x)


def test_a_ctrl_c_in_the_first_line_search_keeps_the_start_and_its_loss(monkeypatch):
    # scipy evaluated the start point, then a Ctrl-C came before the first
    # iteration ended: the result is the start, with the loss computed there
    net, X, Y = _regression()
    start = net.params.copy()
    at_start, _, _ = net.loss_and_gradient(X, Y, get_loss("squared_error"))

    def interrupted_minimize(fun, x0, **kwargs):
        fun(x0)
        fun(x0 + 0.5)  # a line-search trial
        raise KeyboardInterrupt

    monkeypatch.setattr(scipy.optimize, "minimize", interrupted_minimize)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        result = fit_lbfgs(net, get_loss("squared_error"), X, Y, None)
    assert result.interrupted and not result.diverged
    assert result.nit == 0 and result.fun == pytest.approx(at_start, rel=1e-12)
    np.testing.assert_array_equal(net.params, start)


def test_a_ctrl_c_after_two_iterations_keeps_the_second(monkeypatch):
    net, X, Y = _regression()
    steps = [net.params + 0.01 * k for k in (1, 2)]

    def interrupted_minimize(fun, x0, callback, **kwargs):
        fun(x0)
        for k, x in enumerate(steps, start=1):
            callback(scipy.optimize.OptimizeResult(x=x, fun=float(k)))
        fun(x0 - 0.5)  # the third iteration's line search
        raise KeyboardInterrupt

    monkeypatch.setattr(scipy.optimize, "minimize", interrupted_minimize)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        result = fit_lbfgs(net, get_loss("squared_error"), X, Y, None)
    assert result.interrupted and not result.diverged
    assert result.nit == 2 and result.fun == 2.0
    np.testing.assert_array_equal(net.params, steps[1])


def test_a_ctrl_c_in_an_iterations_callbacks_cuts_its_records_back(monkeypatch):
    # The third iteration's loss and validation score were recorded when a
    # callback was interrupted: they go, with the iteration, as its count does
    from sknet._core import History, Validation

    net, X, Y = _regression()
    history = History(validation_scores=[], validation_losses=[])
    validation = Validation(X[:5], Y[:5], None, lambda P: 0.5)

    def interrupt_third(history):
        if history.n_iter == 3:
            raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="Training interrupted by user"):
        result = fit_lbfgs(net, get_loss("squared_error"), X, Y, None, max_iter=50,
                           history=history, validation=validation,
                           callbacks=(interrupt_third,))
    assert result.interrupted and result.nit == 2 and history.n_iter == 2
    assert not result.success and result.status == -1
    assert len(history.loss_curve) == len(history.validation_scores) == 2
    assert len(history.validation_losses) == 2
    assert history.loss_curve[-1] == result.fun

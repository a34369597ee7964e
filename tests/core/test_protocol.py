"""The training loops rely on the written protocol alone.

A least-squares model written here, which is none of sknet's networks, trains
through both loops to the solution ``numpy.linalg.lstsq`` gives; and the
trainer's source names no network class.
"""

import ast
import inspect

import numpy as np
import pytest

from sknet._core import (
    History,
    Network,
    Schedule,
    StoppingRule,
    TrainConfig,
    fit_lbfgs,
    fit_stochastic,
    get_activation,
    get_loss,
    make_optimizer,
    trainer,
)
from sknet._core.protocol import TrainableNetwork
from sknet._core.tied import TiedNetwork


class _Scratch:
    def __init__(self, size, dtype):
        self.grad = np.zeros(size, dtype=dtype)


class LinearModel:
    """``P = X @ w[:-1] + w[-1]``, squared error: the smallest network there is."""

    uses_rng = False

    def __init__(self, n_features):
        self.params = np.zeros(n_features + 1)
        self.dtype = self.params.dtype
        self.trainable_offset = 0

    def workspace(self, batch_size, fast_blas=False, threads=1):
        return _Scratch(self.params.size, self.dtype)

    def predict(self, X):
        return (X @ self.params[:-1] + self.params[-1])[:, None]

    def loss_and_gradient(self, X, Y, loss, sample_weight=None, alpha=0.0, l1=0.0,
                          ws=None, grad=None, training=False, rng=None):
        ws = ws or self.workspace(X.shape[0])
        r = self.predict(X) - Y  # the squared-error loss is 0.5 * mean(r^2)
        ws.grad[:-1] = X.T @ r[:, 0] / X.shape[0]
        ws.grad[-1] = r.mean()
        return 0.5 * float(np.mean(r ** 2)), ws.grad, float(X.shape[0])


def _regression(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, 3))
    Y = (X @ [1.5, -2.0, 0.5] + 0.3 + 0.1 * rng.normal(size=64))[:, None]
    w, *_ = np.linalg.lstsq(np.c_[X, np.ones(64)], Y[:, 0], rcond=None)
    return X, Y, w


def test_a_network_of_the_callers_own_trains_through_the_stochastic_loop():
    X, Y, w = _regression()
    model = LinearModel(3)
    assert isinstance(model, TrainableNetwork)
    optimizer = make_optimizer("adam", model.params.size, model.dtype)
    status = fit_stochastic(
        model, get_loss("squared_error"), optimizer, Schedule("constant", 0.05),
        StoppingRule(0.0, 10 ** 6, False), X, Y, None,
        config=TrainConfig(max_iter=300, batch_size=16), history=History(),
        rng=np.random.RandomState(0), dropout_rng=None)
    assert status == "max_iter"
    np.testing.assert_allclose(model.params, w, atol=2e-2)


class RowsLinearModel(LinearModel):
    """The same model, gathering its shuffled batches itself (``takes_rows``)."""

    takes_rows = True

    def __init__(self, n_features):
        super().__init__(n_features)
        self.given = []  # (rows of the X handed over, rows of the batch) per batch

    def loss_and_gradient(self, X, Y, loss, sample_weight=None, alpha=0.0, l1=0.0,
                          ws=None, grad=None, training=False, rng=None, rows=None):
        self.given.append((X.shape[0], None if rows is None else len(rows)))
        X = X if rows is None else X[rows]
        return super().loss_and_gradient(X, Y, loss, sample_weight, alpha, l1, ws, grad,
                                         training, rng)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_network_that_takes_rows_trains_as_one_handed_its_batches(shuffle):
    X, Y, _ = _regression(2)
    fitted = []
    for model in (LinearModel(3), RowsLinearModel(3)):
        optimizer = make_optimizer("adam", model.params.size, model.dtype)
        fit_stochastic(
            model, get_loss("squared_error"), optimizer, Schedule("constant", 0.05),
            StoppingRule(0.0, 10 ** 6, False), X, Y, None,
            config=TrainConfig(max_iter=5, batch_size=24, shuffle=shuffle), history=History(),
            rng=np.random.RandomState(0), dropout_rng=None)
        fitted.append(model)
    np.testing.assert_array_equal(fitted[0].params, fitted[1].params)
    # shuffled: the whole X and each batch's indices (24, 24, 16); in order: the batches
    expected = [(64, 24), (64, 24), (64, 16)] if shuffle else [(24, None), (24, None),
                                                               (16, None)]
    assert fitted[1].given == expected * 5


def test_a_network_of_the_callers_own_trains_through_lbfgs():
    X, Y, w = _regression(1)
    model = LinearModel(3)
    result = fit_lbfgs(model, get_loss("squared_error"), X, Y, None, tol=1e-12)
    assert not result.diverged
    np.testing.assert_allclose(model.params, w, rtol=1e-6, atol=1e-8)


def test_the_trainer_names_no_network():
    tree = ast.parse(inspect.getsource(trainer))
    imported = {alias.name for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not {"Network", "TiedNetwork", "RecurrentNetwork", "Workspace"} & (imported | names)
    assert not {"network", "tied", "recurrent", "layers"} & modules


@pytest.mark.parametrize("make", [
    lambda acts: Network([4, 3, 2], acts),
    lambda acts: TiedNetwork([2, 3, 2], acts),
])
def test_sknets_networks_offer_the_protocol(make):
    net = make([get_activation("tanh"), get_activation("identity")])
    assert isinstance(net, TrainableNetwork)
    ws = net.workspace(5)
    assert ws.grad.shape == net.params.shape and ws.grad.dtype == net.dtype

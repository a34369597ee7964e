"""SGD (momentum, Nesterov) and Adam against scikit-learn's optimizers, step by step."""

import numpy as np
import pytest
from sklearn.neural_network import _stochastic_optimizers as sk_opt

from sknet._core import SGD, Adam, make_optimizer


def _gradients(n_steps, size, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=size) for _ in range(n_steps)]


@pytest.mark.parametrize("fast_blas", [False, True], ids=["numpy", "blas"])
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True),
                                                (0.5, True)])
def test_sgd_matches_scikit_learn_step_by_step(momentum, nesterov, fast_blas):
    start = np.random.default_rng(1).normal(size=12)
    ours, theirs = start.copy(), [start.copy()]
    sgd = SGD(12, np.float64, momentum=momentum, nesterov=nesterov, fast_blas=fast_blas)
    ref = sk_opt.SGDOptimizer(theirs, learning_rate_init=0.05, lr_schedule="constant",
                              momentum=momentum, nesterov=nesterov)
    for g in _gradients(15, 12):
        sgd.step(ours, g, 0.05)
        ref.update_params(theirs, [g])
        np.testing.assert_allclose(ours, theirs[0], rtol=1e-13, atol=1e-15)


def test_sgd_without_momentum_is_plain_gradient_descent():
    params = np.ones(3)
    SGD(3, np.float64, momentum=0.0, nesterov=False).step(params, np.array([1.0, -2.0, 0.5]), 0.1)
    np.testing.assert_allclose(params, [0.9, 1.2, 0.95])


@pytest.mark.parametrize("fast_blas", [False, True], ids=["numpy", "blas"])
@pytest.mark.parametrize("beta_1, beta_2, epsilon", [(0.9, 0.999, 1e-8), (0.5, 0.9, 1e-4)])
def test_adam_matches_scikit_learn_step_by_step(beta_1, beta_2, epsilon, fast_blas):
    start = np.random.default_rng(2).normal(size=10)
    ours, theirs = start.copy(), [start.copy()]
    adam = Adam(10, np.float64, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                fast_blas=fast_blas)
    ref = sk_opt.AdamOptimizer(theirs, learning_rate_init=0.01, beta_1=beta_1,
                               beta_2=beta_2, epsilon=epsilon)
    for g in _gradients(20, 10, seed=3):
        adam.step(ours, g, 0.01)
        ref.update_params(theirs, [g])
        np.testing.assert_allclose(ours, theirs[0], rtol=1e-12, atol=1e-15)
    assert adam.t == ref.t == 20


@pytest.mark.parametrize("fast_blas", [False, True], ids=["numpy", "blas"])
@pytest.mark.parametrize("beta_1, beta_2", [(0.9, 0.5), (0.99, 0.999), (0.0, 0.999),
                                            (1e-9, 0.9)])
def test_adam_matches_scikit_learn_over_many_renormalizations(beta_1, beta_2, fast_blas):
    """600 steps: the deferred decay (BLAS) is renormalized many times (or, for a
    zero or tiny beta, not deferred at all) and the steps still match scikit-learn's."""
    start = np.random.default_rng(5).normal(size=7)
    ours, theirs = start.copy(), [start.copy()]
    adam = Adam(7, np.float64, beta_1=beta_1, beta_2=beta_2, fast_blas=fast_blas)
    ref = sk_opt.AdamOptimizer(theirs, learning_rate_init=0.01, beta_1=beta_1,
                               beta_2=beta_2, epsilon=1e-8)
    for g in _gradients(600, 7, seed=6):
        adam.step(ours, g, 0.01)
        ref.update_params(theirs, [g])
    np.testing.assert_allclose(ours, theirs[0], rtol=1e-10, atol=1e-13)
    state = adam.state()
    np.testing.assert_allclose(state["m"], ref.ms[0], rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(state["v"], ref.vs[0], rtol=1e-10, atol=1e-300)


def test_adam_first_step_is_lr_times_sign():
    """With bias correction, Adam's first step is -lr * g / (|g| + eps / sqrt(1 - beta_2))."""
    params, g = np.zeros(3), np.array([3.0, -0.2, 1e3])
    Adam(3, np.float64).step(params, g, 0.01)
    np.testing.assert_allclose(params, -0.01 * g / (np.abs(g) + 1e-8 / np.sqrt(1 - 0.999)),
                               rtol=1e-12)
    np.testing.assert_allclose(params, -0.01 * np.sign(g), rtol=1e-5)


@pytest.mark.parametrize("solver, fast_blas", [("sgd", False), ("adam", False),
                                               ("adam", True)])
def test_state_round_trip_continues_with_the_same_steps(solver, fast_blas):
    grads = _gradients(10, 6, seed=4)
    a = make_optimizer(solver, 6, np.float64, fast_blas=fast_blas)
    pa = np.zeros(6)
    for g in grads[:5]:
        a.step(pa, g, 0.1)
    saved, p_saved = a.state(), pa.copy()
    for g in grads[5:]:
        a.step(pa, g, 0.1)
    b = make_optimizer(solver, 6, np.float64)
    b.set_state(saved)
    pb = p_saved
    for g in grads[5:]:
        b.step(pb, g, 0.1)
    np.testing.assert_allclose(pa, pb, rtol=1e-13)  # Adam: up to its deferred decay's rounding


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_stepping_a_suffix_leaves_the_prefix_and_its_state_alone(solver):
    """A frozen prefix: the optimizer steps params[off:] with the tail of its state."""
    opt_full = make_optimizer(solver, 8, np.float64)
    opt_tail = make_optimizer(solver, 8, np.float64)
    full, part = np.ones(8), np.ones(8)
    for g in _gradients(4, 8, seed=5):
        g[:3] = 0.0  # the frozen layer's gradient is zero in the full run
        opt_full.step(full, g, 0.1)
        opt_tail.step(part[3:], g[3:], 0.1)
    np.testing.assert_array_equal(part[:3], 1.0)
    np.testing.assert_allclose(part[3:], full[3:], rtol=1e-13)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_scale_multiplies_the_step(solver):
    grads = _gradients(3, 4, seed=6)
    a, b = make_optimizer(solver, 4, np.float64), make_optimizer(solver, 4, np.float64)
    pa, pb = np.zeros(4), np.zeros(4)
    for g in grads:
        before_a, before_b = pa.copy(), pb.copy()
        a.step(pa, g, 0.1)
        b.step(pb, g, 0.1, np.full(4, 0.5))
        np.testing.assert_allclose(pb - before_b, 0.5 * (pa - before_a), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_keep_the_dtype(dtype):
    for solver in ("sgd", "adam"):
        opt = make_optimizer(solver, 5, dtype)
        params = np.ones(5, dtype=dtype)
        opt.step(params, np.full(5, 0.3, dtype=dtype), 0.01)
        assert params.dtype == dtype
        assert all(v.dtype == dtype for v in opt.state().values() if isinstance(v, np.ndarray))


def test_unknown_solver_is_rejected():
    with pytest.raises(ValueError, match="sgd"):
        make_optimizer("rmsprop", 3, np.float64)


@pytest.mark.parametrize("solver, kw", [("sgd", dict(nesterov=True)), ("sgd", dict(nesterov=False)),
                                        ("adam", {}), ("adam", dict(fast_blas=True))])
def test_overwrite_grad_gives_the_same_steps_and_only_then_uses_grad(solver, kw):
    kept = make_optimizer(solver, 8, np.float64, **kw)
    scratch = make_optimizer(solver, 8, np.float64, **kw)
    p_kept, p_scratch = np.zeros(8), np.zeros(8)
    for g in _gradients(6, 8, seed=7):
        g_kept, g_scratch = g.copy(), g.copy()
        kept.step(p_kept, g_kept, 0.01)
        scratch.step(p_scratch, g_scratch, 0.01, overwrite_grad=True)
        np.testing.assert_array_equal(g_kept, g)  # the default leaves grad alone
        assert not np.array_equal(g_scratch, g)  # the loop's choice reuses it
        np.testing.assert_array_equal(p_kept, p_scratch)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_reset_makes_a_fresh_optimizer(solver):
    used, fresh = make_optimizer(solver, 5, np.float64), make_optimizer(solver, 5, np.float64)
    with np.errstate(all="ignore"):
        used.step(np.zeros(5), np.full(5, np.inf), 0.1)
    assert not used.is_finite() and fresh.is_finite()
    used.reset()
    assert used.is_finite()
    p_used, p_fresh, g = np.zeros(5), np.zeros(5), np.arange(5.0)
    used.step(p_used, g.copy(), 0.1)
    fresh.step(p_fresh, g.copy(), 0.1)
    np.testing.assert_array_equal(p_used, p_fresh)
    for key, value in fresh.state().items():
        np.testing.assert_array_equal(used.state()[key], value)

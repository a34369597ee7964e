"""SGD (momentum, Nesterov) and Adam against scikit-learn's optimizers, step by step."""

import numpy as np
import pytest
from sklearn.neural_network import _stochastic_optimizers as sk_opt

from sknet._core import SGD, Adam, make_optimizer


def _gradients(n_steps, size, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=size) for _ in range(n_steps)]


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True),
                                                (0.5, True)])
def test_sgd_matches_scikit_learn_step_by_step(momentum, nesterov):
    start = np.random.default_rng(1).normal(size=12)
    ours, theirs = start.copy(), [start.copy()]
    sgd = SGD(12, np.float64, momentum=momentum, nesterov=nesterov)
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


@pytest.mark.parametrize("beta_1, beta_2, epsilon", [(0.9, 0.999, 1e-8), (0.5, 0.9, 1e-4)])
def test_adam_matches_scikit_learn_step_by_step(beta_1, beta_2, epsilon):
    start = np.random.default_rng(2).normal(size=10)
    ours, theirs = start.copy(), [start.copy()]
    adam = Adam(10, np.float64, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    ref = sk_opt.AdamOptimizer(theirs, learning_rate_init=0.01, beta_1=beta_1,
                               beta_2=beta_2, epsilon=epsilon)
    for g in _gradients(20, 10, seed=3):
        adam.step(ours, g, 0.01)
        ref.update_params(theirs, [g])
        np.testing.assert_allclose(ours, theirs[0], rtol=1e-12, atol=1e-15)
    assert adam.t == ref.t == 20


@pytest.mark.parametrize("beta_1, beta_2", [(0.9, 0.5), (0.99, 0.999), (0.0, 0.999),
                                            (1e-9, 0.9)])
def test_adam_matches_scikit_learn_over_many_steps(beta_1, beta_2):
    """600 steps, with zero, tiny and large betas: the steps and the moments still
    match scikit-learn's."""
    start = np.random.default_rng(5).normal(size=7)
    ours, theirs = start.copy(), [start.copy()]
    adam = Adam(7, np.float64, beta_1=beta_1, beta_2=beta_2)
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


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_state_round_trip_continues_with_the_same_steps(solver):
    grads = _gradients(10, 6, seed=4)
    a = make_optimizer(solver, 6, np.float64)
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
    np.testing.assert_array_equal(pa, pb)


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


@pytest.mark.parametrize("solver, kw", [("sgd", dict(nesterov=True)),
                                        ("sgd", dict(nesterov=False)), ("adam", {})])
def test_step_only_reads_the_gradient(solver, kw):
    opt = make_optimizer(solver, 8, np.float64, **kw)
    params = np.zeros(8)
    for g in _gradients(3, 8, seed=7):
        kept = g.copy()
        opt.step(params, g, 0.01)
        np.testing.assert_array_equal(g, kept)


@pytest.mark.parametrize("solver, kw", [("sgd", dict(nesterov=True)),
                                        ("sgd", dict(nesterov=False)), ("adam", {})])
@pytest.mark.parametrize("with_scale", [False, True])
def test_gscale_steps_as_the_rescaled_gradient_does(solver, kw, with_scale):
    """Clipping folded into the step: ``gscale=c`` steps exactly as ``c * grad``."""
    folded, rescaled = (make_optimizer(solver, 9, np.float64, **kw) for _ in range(2))
    p_folded, p_rescaled = np.ones(9), np.ones(9)
    scale = np.linspace(0.1, 1.0, 9) if with_scale else None
    for c, g in zip([0.25, 1.0, 0.6, 0.125], _gradients(4, 9, seed=8)):
        folded.step(p_folded, g, 0.05, scale, gscale=c)
        rescaled.step(p_rescaled, c * g, 0.05, scale)
        np.testing.assert_allclose(p_folded, p_rescaled, rtol=1e-15, atol=1e-15)
    for key, value in folded.state().items():
        np.testing.assert_allclose(rescaled.state()[key], value, rtol=1e-15, atol=1e-300)


def _numpy_adam(params, m, v, g, lr, t, b1=0.9, b2=0.999, eps=1e-8):
    """scikit-learn's Adam step in numpy (float64), the reference for float32."""
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    params -= lr_t * m / (np.sqrt(v) + eps)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_float32_steps_stay_close_to_float64(solver):
    """float32 state and arithmetic track the float64 reference to float32 rounding."""
    n = 1000  # long enough for the vectorized loop body and its remainder
    opt32 = make_optimizer(solver, n, np.float32)
    p32, p64 = np.ones(n, np.float32), np.ones(n)
    m, v, vel = np.zeros(n), np.zeros(n), np.zeros(n)
    for t, g in enumerate(_gradients(20, n, seed=9), start=1):
        opt32.step(p32, g.astype(np.float32), 0.01, gscale=0.5)
        if solver == "adam":
            _numpy_adam(p64, m, v, 0.5 * g, 0.01, t)
        else:
            vel[...] = 0.9 * vel - 0.01 * 0.5 * g
            p64 += 0.9 * vel - 0.01 * 0.5 * g
    np.testing.assert_allclose(p32, p64, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_arrays_of_different_sizes_are_rejected(solver):
    opt = make_optimizer(solver, 4, np.float64)
    with pytest.raises(ValueError, match="differ in size"):
        opt.step(np.zeros(4), np.zeros(3), 0.1)


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


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_step_split_between_threads_is_the_same_step(solver, dtype):
    """Blocks of the vector on OpenMP threads: every element as on one thread."""
    size = 5 * 2048 + 3  # enough for several threads, and a ragged last block
    start = np.random.default_rng(4).normal(size=size).astype(dtype)
    runs = []
    for threads in (1, 2, 5):
        opt = make_optimizer(solver, size, dtype)
        opt.threads = threads
        params = start.copy()
        scale = np.linspace(0.5, 1.5, size).astype(dtype)
        for i, g in enumerate(_gradients(3, size, seed=5)):
            opt.step(params, g.astype(dtype), 0.01, scale if i else None, 0.7)
        runs.append(params)
    np.testing.assert_array_equal(runs[1], runs[0])
    np.testing.assert_array_equal(runs[2], runs[0])
    assert not np.array_equal(runs[0], start)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scaled", [False, True])
def test_adams_avx2_build_gives_the_baseline_result_bit_for_bit(dtype, scaled):
    """Adam's loop, built for the baseline instruction set and for AVX2: the same
    operations in the same order, so the same bits (an AVX2 build that fused the
    multiply-adds would differ), and both as scikit-learn's step."""
    from sknet._core import _optim
    if "avx2" not in _optim.available_instruction_sets():
        pytest.skip("this processor has no AVX2")
    size = 1003  # not a whole number of vectors: the loop's scalar tail too
    rng = np.random.default_rng(8)
    start = rng.normal(size=size).astype(dtype)
    # gradients from tiny to large, some zero: square roots of zero and of subnormals
    grads = [(rng.normal(size=size) * 10.0 ** rng.integers(-20, 4, size)).astype(dtype)
             for _ in range(6)]
    grads[0][::7] = 0
    scale = np.linspace(0.5, 1.5, size).astype(dtype) if scaled else None
    runs = {}
    before = _optim.instruction_set()
    try:
        for name in ("baseline", "avx2"):
            _optim.set_instruction_set(name)
            adam, params = Adam(size, dtype), start.copy()
            for g in grads:
                adam.step(params, g, 0.01, scale, 0.9)
            runs[name] = params, adam.m.copy(), adam.v.copy()
    finally:
        _optim.set_instruction_set(before)
    for a, b in zip(runs["baseline"], runs["avx2"]):
        np.testing.assert_array_equal(a, b)
    theirs = [start.astype(np.float64)]
    ref = sk_opt.AdamOptimizer(theirs, learning_rate_init=0.01)
    for g in grads:
        step = [0.9 * g.astype(np.float64)]
        if scaled:  # scikit-learn has no per-parameter scale: apply it to its update
            before_step = theirs[0].copy()
            ref.update_params(theirs, step)
            theirs[0] = before_step + (theirs[0] - before_step) * scale
        else:
            ref.update_params(theirs, step)
    tol = 1e-11 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(runs["avx2"][0], theirs[0], rtol=tol, atol=tol)


def test_an_unavailable_instruction_set_is_refused():
    from sknet._core import _optim
    with pytest.raises(ValueError, match="instruction set 'sse9'"):
        _optim.set_instruction_set("sse9")
    assert _optim.instruction_set() in _optim.available_instruction_sets()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1001])
def test_all_finite_is_numpys_isfinite_all(n, dtype):
    from sknet._core._optim import all_finite

    info = np.finfo(dtype)
    edge = np.array([info.max, -info.max, info.tiny, info.tiny / 2, -0.0, 0.0, 1.0], dtype)
    a = np.random.default_rng(n).normal(scale=1e3, size=n).astype(dtype)
    a[-len(edge):] = edge[-n:] if n else edge[:0]  # the largest, subnormals, zeros
    assert all_finite(a) is True
    for bad in (np.inf, -np.inf, np.nan, -np.nan):
        for i in {0, n // 2, n - 1} if n else ():
            b = a.copy()
            b[i] = bad
            assert all_finite(b) is bool(np.isfinite(b).all()) is False


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_compiled_passes_flush_subnormal_numbers_to_zero(dtype, n_threads):
    """The compiled passes run with subnormal results flushed to zero and subnormal
    inputs read as zero (on many processors each subnormal operand costs a
    microcode assist; their effect on a weight is below its rounding). numpy's
    arithmetic keeps them: 0.9 times the smallest normal number is subnormal.
    The caller's mode is put back after the pass."""
    from sknet._core import _optim
    n = 4 * 2048  # two threads' worth of parameters
    tiny = np.finfo(dtype).tiny
    moments = np.full(n, tiny, dtype)
    moments[1::2] = tiny / 4  # subnormal already
    assert np.all(dtype(0.9) * moments > 0)
    params, grad = np.ones(n, dtype), np.zeros(n, dtype)
    m, v = moments.copy(), moments.copy()
    _optim.adam_step(params, grad, m, v, 0.001, 0.9, 0.999, 1e-8, n_threads=n_threads)
    np.testing.assert_array_equal(m, 0)
    np.testing.assert_array_equal(v, 0)
    np.testing.assert_array_equal(params, 1)
    velocity = moments.copy()
    _optim.sgd_step(params, grad, velocity, 0.1, 0.9, False, n_threads=n_threads)
    np.testing.assert_array_equal(velocity, 0)
    np.testing.assert_array_equal(params, 1)
    # w - lr m' / (sqrt(v') + eps), with m' = 0.9, v' = 0.999 and lr = 2 tiny: a
    # weight of 2.5 tiny ends subnormal (0.7 tiny), flushed to zero; a subnormal
    # weight of tiny / 4 is read as zero (numpy: -1.55 tiny)
    params = np.tile(np.array([2.5 * tiny, tiny / 4], dtype), n // 2)
    m, v, grad = np.ones(n, dtype), np.ones(n, dtype), np.zeros(n, dtype)
    _optim.adam_step(params, grad, m, v, 2 * tiny, 0.9, 0.999, 1e-8, n_threads=n_threads)
    step = dtype(2 * tiny) * dtype(0.9) / (np.sqrt(dtype(0.999)) + dtype(1e-8))
    assert dtype(2.5 * tiny) - step > 0 and dtype(tiny / 4) - step > -step
    np.testing.assert_array_equal(params[0::2], 0)
    np.testing.assert_array_equal(params[1::2], -step)
    assert np.all(np.full(8, tiny, dtype) / dtype(4) > 0)  # the caller's mode again

"""Learning-rate schedules, the stopping rule, and the stochastic loop that uses them."""

import warnings

import numpy as np
import pytest
from sklearn.neural_network import _stochastic_optimizers as sk_opt

from sknet._core import (
    History,
    Network,
    Schedule,
    StoppingRule,
    TrainConfig,
    Validation,
    fit_stochastic,
    get_activation,
    get_loss,
    make_optimizer,
)


# --------------------------------------------------------------------------- #
# schedules                                                                    #
# --------------------------------------------------------------------------- #
def test_constant_schedule_never_changes():
    s = Schedule("constant", 0.3)
    for epoch in range(1, 6):
        s.epoch_end(epoch * 100, epoch)
        assert s.lr == 0.3
    assert s.on_plateau()[0] is True


@pytest.mark.parametrize("power_t", [0.5, 0.25])
def test_invscaling_matches_scikit_learn(power_t):
    s = Schedule("invscaling", 0.1, power_t=power_t)
    ref = sk_opt.SGDOptimizer([np.zeros(1)], 0.1, lr_schedule="invscaling", power_t=power_t)
    for epoch in range(1, 8):
        t = 37 * epoch
        s.epoch_end(t, epoch)
        ref.iteration_ends(t)
        assert s.lr == pytest.approx(ref.learning_rate, rel=1e-14)
        assert s.lr == pytest.approx(0.1 / (t + 1) ** power_t, rel=1e-14)


def test_adaptive_divides_by_five_until_1e_6_like_scikit_learn():
    s = Schedule("adaptive", 0.1)
    ref = sk_opt.SGDOptimizer([np.zeros(1)], 0.1, lr_schedule="adaptive")
    history = []
    while True:
        stop, _ = s.on_plateau()
        assert stop == ref.trigger_stopping("", verbose=False)
        assert s.lr == pytest.approx(ref.learning_rate, rel=1e-14)
        if stop:
            break
        history.append(s.lr)
        s.epoch_end(100, 1)  # epochs do not move an adaptive rate
    # 0.1 / 5^k for k = 1..8: 0.1 / 5^7 = 1.28e-6 > 1e-6 still divides once more
    assert history == pytest.approx([0.1 / 5 ** k for k in range(1, 9)], rel=1e-12)
    assert s.lr == history[-1] <= 1e-6


@pytest.mark.parametrize("lr", [1e-6, np.nextafter(1e-6, 1.0)])
def test_adaptive_stops_at_a_rate_of_1e_6_itself_like_scikit_learn(lr):
    s = Schedule("adaptive", lr)
    ref = sk_opt.SGDOptimizer([np.zeros(1)], lr, lr_schedule="adaptive")
    stop, _ = s.on_plateau()
    assert stop == ref.trigger_stopping("", verbose=False) == (lr <= 1e-6)


@pytest.mark.parametrize("decay_rate", [0.5, 0.95, None], ids=["0.5", "0.95", "default"])
def test_exponential_schedule(decay_rate):
    if decay_rate is None:  # the documented default, the estimators' default too
        s, decay_rate = Schedule("exponential", 0.2), 0.95
    else:
        s = Schedule("exponential", 0.2, decay_rate=decay_rate)
    for epoch in range(1, 6):
        s.epoch_end(epoch * 10, epoch)
        assert s.lr == pytest.approx(0.2 * decay_rate ** epoch, rel=1e-14)


def test_schedule_continues_from_a_given_rate():
    s = Schedule("adaptive", 0.1, lr=0.004)
    assert s.lr == 0.004
    s.on_plateau()
    assert s.lr == pytest.approx(0.0008)


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="invscaling"):
        Schedule("cosine", 0.1)


# --------------------------------------------------------------------------- #
# stopping rule (scikit-learn's: more than n_iter_no_change epochs within tol)  #
# --------------------------------------------------------------------------- #
def test_stopping_on_training_loss_by_hand():
    rule = StoppingRule(tol=0.1, n_iter_no_change=2, on_validation=False)
    # epoch:  loss   no-improvement (loss > best - tol)   count
    #   1     1.00   1.00 > inf    no                      0
    #   2     0.95   0.95 > 0.90   yes                     1
    #   3     0.93   0.93 > 0.85   yes                     2
    #   4     0.92   0.92 > 0.83   yes                     3  -> triggered (3 > 2)
    expected = [(True, 0, False), (True, 1, False), (True, 2, False), (True, 3, True)]
    for loss, (improved, count, triggered) in zip([1.0, 0.95, 0.93, 0.92], expected, strict=True):
        assert rule.update(loss) is improved
        assert (rule.count, rule.triggered) == (count, triggered)
    assert rule.best_loss == 0.92
    rule.reset()
    assert rule.count == 0 and not rule.triggered
    assert rule.update(0.5) is True and rule.count == 0  # 0.5 <= 0.92 - 0.1


def test_stopping_on_validation_score_by_hand():
    rule = StoppingRule(tol=0.05, n_iter_no_change=1, on_validation=True)
    # score 0.50 (best -inf): count 0; 0.52 < 0.55: count 1, best 0.52;
    # 0.51 < 0.57: count 2 -> triggered, best stays 0.52
    assert rule.update(9.0, 0.50) is True and rule.count == 0
    assert rule.update(9.0, 0.52) is True and rule.count == 1 and not rule.triggered
    assert rule.update(0.0, 0.51) is False and rule.count == 2 and rule.triggered
    assert rule.best_score == 0.52
    assert "Validation score" in rule.message()


def test_stopping_at_tol_zero_counts_only_worse_epochs():
    # scikit-learn's rule at tol=0: a score below the best (a loss above it)
    # counts; an equal one resets the count without being an improvement.
    rule = StoppingRule(tol=0.0, n_iter_no_change=1, on_validation=True)
    steps = [(0.5, True, 0), (0.4, False, 1), (0.5, False, 0), (0.3, False, 1),
             (0.3, False, 2)]
    for score, improved, count in steps:
        assert rule.update(9.0, score) is improved and rule.count == count
    assert rule.triggered and rule.best_score == 0.5
    rule = StoppingRule(tol=0.0, n_iter_no_change=1, on_validation=False)
    steps = [(1.0, True, 0), (1.0, False, 0), (1.1, False, 1), (0.9, True, 0),
             (0.95, False, 1), (0.9, False, 0), (1.2, False, 1), (1.3, False, 2)]
    for loss, improved, count in steps:
        assert rule.update(loss) is improved and rule.count == count
    assert rule.triggered and rule.best_loss == 0.9


def test_stopping_rule_resumes_from_saved_state():
    rule = StoppingRule(0.0, 3, False, best_loss=0.4, count=2)
    rule.update(0.41)
    assert rule.count == 3 and not rule.triggered
    rule.update(0.42)
    assert rule.triggered


# --------------------------------------------------------------------------- #
# the stochastic loop                                                          #
# --------------------------------------------------------------------------- #
def _problem(seed=0):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    net = Network([3, 4, 2], [get_activation("tanh"), get_activation("identity")])
    net.initialize("glorot_normal", np.random.RandomState(seed))
    return X, Y, net


def _fit(net, X, Y, schedule, config, stopping=None, validation=None):
    opt = make_optimizer("sgd", net.params.size, net.dtype, momentum=0.0, nesterov=False)
    stopping = stopping or StoppingRule(0.0, 10 ** 6, validation is not None)
    history = History(validation_scores=[] if validation else None,
                      validation_losses=[] if validation else None)
    status = fit_stochastic(net, get_loss("squared_error"), opt, schedule, stopping, X, Y,
                            None, config=config, history=history,
                            rng=np.random.RandomState(0), dropout_rng=None,
                            validation=validation)
    return status, history


def _by_hand(net, X, Y, lrs, alpha=0.0, clip=None, norms=None):
    """Full-batch gradient descent written out: returns the loss before each step.

    ``norms``, a list, receives the norm of each step's gradient before clipping.
    """
    losses = []
    for lr in lrs:
        value, grad, _ = net.loss_and_gradient(X, Y, get_loss("squared_error"), alpha=alpha)
        losses.append(value)
        norm = np.linalg.norm(grad)
        if norms is not None:
            norms.append(norm)
        if clip is not None and norm > clip:
            grad = grad * (clip / norm)
        net.params -= lr * grad
    return losses


def test_exponential_decay_in_the_loop_is_gradient_descent_with_decaying_steps():
    X, Y, net = _problem()
    reference = Network(net.layer_units, net.activations)
    reference.params[...] = net.params
    config = TrainConfig(max_iter=5, batch_size=20, shuffle=False, alpha=0.01)
    status, history = _fit(net, X, Y, Schedule("exponential", 0.3, decay_rate=0.5), config)
    losses = _by_hand(reference, X, Y, [0.3 * 0.5 ** e for e in range(5)], alpha=0.01)
    assert status == "max_iter" and history.n_iter == 5 and history.t == 100
    np.testing.assert_allclose(history.loss_curve, losses, rtol=1e-12)
    np.testing.assert_allclose(net.params, reference.params, rtol=1e-12)


def test_clip_norm_rescales_large_gradients_and_leaves_small_ones():
    X, Y, net = _problem(1)
    reference = Network(net.layer_units, net.activations)
    reference.params[...] = net.params
    config = TrainConfig(max_iter=6, batch_size=20, shuffle=False, clip_norm=0.5)
    _fit(net, X, Y, Schedule("constant", 0.5), config)
    norms = []
    _by_hand(reference, X, Y, [0.5] * 6, clip=0.5, norms=norms)
    # the first two gradients are above the threshold, the last four below it
    assert np.all(np.array(norms[:2]) > 0.5) and np.all(np.array(norms[2:]) < 0.5)
    np.testing.assert_allclose(net.params, reference.params, rtol=1e-12)


def test_loop_stops_when_the_rule_triggers():
    X, Y, net = _problem(2)
    config = TrainConfig(max_iter=500, batch_size=20, shuffle=False)
    rule = StoppingRule(tol=1e9, n_iter_no_change=3, on_validation=False)
    status, history = _fit(net, X, Y, Schedule("constant", 0.01), config, stopping=rule)
    # every epoch after the first is "no improvement": count > 3 at epoch 5
    assert status == "converged" and history.n_iter == 5


def test_restore_best_keeps_the_best_validation_epoch():
    X, Y, net = _problem(3)
    Xv, Yv = X[:5], Y[:5]
    scores_seen = []

    def score(P):  # made-up validation score that peaks at epoch 3
        scores_seen.append(len(scores_seen) + 1)
        return [0.1, 0.5, 0.9, 0.3, 0.2, 0.1][len(scores_seen) - 1]

    snapshots = []
    config = TrainConfig(max_iter=6, batch_size=20, shuffle=False, restore_best=True,
                         callbacks=(lambda h: snapshots.append(net.params.copy()),))
    val = Validation(Xv, Yv, None, score)
    status, history = _fit(net, X, Y, Schedule("constant", 0.1), config, validation=val)
    assert history.validation_scores == [0.1, 0.5, 0.9, 0.3, 0.2, 0.1]
    np.testing.assert_array_equal(net.params, snapshots[2])


def _interrupt_at(epoch):
    calls = []

    def callback(history):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt

    return callback


def test_interrupt_warns_and_keeps_the_last_completed_epoch():
    X, Y, net = _problem(4)
    done = Network(net.layer_units, net.activations)
    done.params[...] = net.params
    _fit(done, X, Y, Schedule("constant", 0.1),
         TrainConfig(max_iter=2, batch_size=7, shuffle=True))
    config = TrainConfig(max_iter=10, batch_size=7, shuffle=True, callbacks=(_interrupt_at(3),))
    with pytest.warns(UserWarning, match="interrupted"):
        status, history = _fit(net, X, Y, Schedule("constant", 0.1), config)
    assert status == "interrupted"
    assert len(history.loss_curve) == 2
    np.testing.assert_array_equal(net.params, done.params)


def test_interrupt_rolls_back_the_epoch_counters():
    X, Y, net = _problem(4)
    config = TrainConfig(max_iter=10, batch_size=7, callbacks=(_interrupt_at(3),))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, history = _fit(net, X, Y, Schedule("constant", 0.1), config)
    assert history.n_iter == len(history.loss_curve) == 2
    assert history.t == 2 * X.shape[0]


def test_the_loop_holds_one_gradient_and_one_saved_copy_of_the_parameters():
    """Peak memory of training: the gradient, the epoch's saved parameters, batches.

    Adam steps inside the gradient's memory and no epoch copies the moments,
    so a network whose parameters dwarf its batches needs about 2 parameter
    vectors on top of the parameters and moments allocated before the loop.
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 300)), rng.normal(size=(40, 3))
    net = Network([300, 400, 400, 3], [get_activation("relu")] * 2 + [get_activation("identity")])
    net.initialize("glorot_uniform", np.random.RandomState(0))
    opt = make_optimizer("adam", net.params.size, net.dtype)
    P = net.params.nbytes
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fit_stochastic(net, get_loss("squared_error"), opt, Schedule("constant", 1e-3),
                       StoppingRule(0.0, 10 ** 6, False), X, Y, None,
                       config=TrainConfig(max_iter=3, batch_size=8), history=History(),
                       rng=np.random.RandomState(0), dropout_rng=None)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert 2 * P <= peak < 2.2 * P


def test_interrupt_rolls_back_the_best_epochs_copy_too():
    # epoch 3 improves the score, so its parameters became the best copy before
    # the Ctrl-C in its callbacks: undoing the epoch undoes that copy, and the
    # fit ends on epoch 2's parameters, the best of the epochs it kept
    X, Y, net = _problem(3)
    snapshots = []
    val = Validation(X[:5], Y[:5], None, lambda P: len(snapshots) + 1)  # rises each epoch

    def record_then_interrupt(history):
        snapshots.append(net.params.copy())
        if len(snapshots) == 3:
            raise KeyboardInterrupt

    config = TrainConfig(max_iter=6, batch_size=20, shuffle=False, restore_best=True,
                         callbacks=(record_then_interrupt,))
    stopping = StoppingRule(0.0, 10 ** 6, True)
    with pytest.warns(UserWarning, match="interrupted"):
        status, history = _fit(net, X, Y, Schedule("constant", 0.1), config,
                               stopping=stopping, validation=val)
    assert status == "interrupted" and history.validation_scores == [1, 2]
    np.testing.assert_array_equal(net.params, snapshots[1])
    # the stopping rule forgets epoch 3's score too
    assert (stopping.best_score, stopping.count) == (2, 0)


def test_interrupt_rolls_back_the_learning_rate_of_the_undone_epoch():
    # exponential decay multiplies the rate at each epoch's end, before the
    # callbacks: a Ctrl-C in epoch 3's callbacks undoes its decay too
    X, Y, net = _problem()

    def interrupt_third(history):
        if history.n_iter == 3:
            raise KeyboardInterrupt

    schedule = Schedule("exponential", 0.3, decay_rate=0.5)
    config = TrainConfig(max_iter=6, batch_size=20, shuffle=False,
                         callbacks=(interrupt_third,))
    with pytest.warns(UserWarning, match="interrupted"):
        status, history = _fit(net, X, Y, schedule, config)
    assert status == "interrupted" and history.n_iter == 2
    assert schedule.lr == 0.3 * 0.5 ** 2


@pytest.mark.parametrize("restore_best, diverging_epoch", [(True, 3), (False, 3), (True, 1)])
def test_a_divergence_keeps_the_best_epoch_only_where_one_was_kept(restore_best,
                                                                    diverging_epoch):
    # The diverging epoch overflows: its parameters were scaled up before it.
    # After scored epochs, a best copy ends the fit on the best epoch and the
    # diverged one is recorded as scikit-learn records it (a NaN loss and
    # score). A monitored fit that keeps no best copy, or one that diverges
    # before any epoch was scored, ends as any divergence: "diverged", the
    # epoch undone, the last finite parameters kept.
    X, Y, net = _problem()
    val = Validation(X[:5], Y[:5], None, lambda P: 1.0)
    start = net.params.copy()
    kept = []

    def blow_up(history):
        kept.append(net.params.copy())
        if history.n_iter == diverging_epoch - 1:
            net.params *= 1e200

    if diverging_epoch == 1:
        net.params *= 1e200
    config = TrainConfig(max_iter=6, batch_size=20, shuffle=False, restore_best=restore_best,
                         callbacks=(blow_up,))
    status, history = _fit(net, X, Y, Schedule("constant", 0.1), config, validation=val)
    if diverging_epoch == 1:
        assert status == "diverged" and history.n_iter == 0 and not kept
        np.testing.assert_array_equal(net.params, start * 1e200)
    elif restore_best:
        assert status == "diverged_kept_best" and history.n_iter == 3
        assert np.isnan(history.loss_curve[-1]) and np.isnan(history.validation_scores[-1])
        np.testing.assert_array_equal(net.params, kept[0])  # the first of the equal scores
    else:
        assert status == "diverged" and history.n_iter == 2
        assert history.validation_scores == [1.0, 1.0]
        np.testing.assert_array_equal(net.params, kept[1] * 1e200)


def test_epoch_seconds_time_each_epoch_within_the_fit():
    import time

    X, Y, net = _problem()
    seen = []
    config = TrainConfig(max_iter=4, batch_size=5, callbacks=(
        lambda history: seen.append(list(history.epoch_seconds)),))
    start = time.perf_counter()
    _, history = _fit(net, X, Y, Schedule("constant", 0.1), config)
    elapsed = time.perf_counter() - start
    assert [len(s) for s in seen] == [1, 2, 3, 4] and seen[-1] == history.epoch_seconds
    assert all(s > 0 for s in history.epoch_seconds)
    assert sum(history.epoch_seconds) <= elapsed


def test_a_thread_count_for_a_step_that_is_not_split_changes_nothing():
    # threads_now() caps the threads of a step split between threads; a
    # workspace of one part has no split to cap
    X, Y, net = _problem()
    twin = Network(net.layer_units, net.activations)
    twin.params[...] = net.params
    asked = []
    for network, threads_now in ((net, None), (twin, lambda: asked.append(1) or 1)):
        config = TrainConfig(max_iter=3, batch_size=5, threads_now=threads_now)
        status, _ = _fit(network, X, Y, Schedule("constant", 0.1), config)
        assert status == "max_iter"
    np.testing.assert_array_equal(twin.params, net.params)
    assert not asked  # nothing to cap, so never asked

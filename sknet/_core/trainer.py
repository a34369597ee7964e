"""The training loops: mini-batch epochs for SGD/Adam, and L-BFGS.

The loop owns the order of events and nothing else: the network computes
loss and gradients (through the members :mod:`sknet._core.protocol` writes
down, and no others, so every kind of network plugs in alike), the optimizer steps, the schedule gives the learning
rate, the stopping rule says when to stop. Everything random comes from the
``rng`` passed in (shuffling) and ``dropout_rng`` (dropout masks and
augmentation draws).

An epoch is applied whole or not at all: the parameters and counters are
saved at the start of each epoch, and a ``KeyboardInterrupt`` or a non-finite
loss inside the epoch rolls them back. The optimizer's moment estimates are
not saved (that would cost two more parameter-sized copies): after a rollback
they keep their latest values, or start afresh when they are not finite.
"""

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from ._dense_fast import gather_rows
from ._optim import all_finite
from .thread_choice import ThreadChoice

__all__ = ["History", "Validation", "TrainConfig", "fit_stochastic", "fit_lbfgs"]


@dataclass
class History:
    """What training records, epoch by epoch (carried across warm starts)."""

    loss_curve: list = field(default_factory=list)
    validation_scores: Optional[list] = None
    validation_losses: Optional[list] = None
    epoch_seconds: list = field(default_factory=list)
    n_iter: int = 0
    t: int = 0


@dataclass
class Validation:
    """Held-out data and how to score the network's output on it."""

    X: object
    Y: np.ndarray
    sample_weight: Optional[np.ndarray]
    score: Callable  # score(P) -> float, higher is better


@dataclass
class TrainConfig:
    """The knobs of the stochastic loop."""

    max_iter: int
    batch_size: int
    shuffle: bool = True
    alpha: float = 0.0
    l1: float = 0.0
    clip_norm: Optional[float] = None
    verbose: int = 0
    one_epoch: bool = False  # partial_fit: a single pass, no stopping test
    restore_best: bool = False  # early stopping: keep the best validation epoch
    augment: Optional[Callable] = None  # augment(X_batch, rng) -> X_batch
    callbacks: tuple = ()  # callback(history) -> truthy to stop, after each epoch
    lr_scale: Optional[np.ndarray] = None  # per-parameter step factor
    fast_blas: bool = False  # BLAS runs one thread: vector updates may call it
    # threads a compiled step may split a batch between (see Network.split_parts),
    # and, when given, how many it may use now (asked before each epoch)
    threads: int = 1
    threads_now: Optional[Callable[[], int]] = None


def _clip_factor(grad, clip_norm):
    """The factor that brings ``grad``'s norm down to ``clip_norm`` (1 when within it).

    The optimizer applies it as it reads the gradient (``gscale``), so
    clipping costs one pass over the gradient, the norm's.
    """
    norm = math.sqrt(float(np.dot(grad, grad)))
    return clip_norm / norm if norm > clip_norm else 1.0


# A batch of at least this many bytes is gathered by gather_rows.
GATHER_BYTES = 1 << 18


class _Batcher:
    """Gathers mini-batches into buffers allocated once per fit.

    ``Y`` may be stored compactly (one-hot ``uint8`` targets); its batches
    are converted to the network's dtype as they are gathered. With
    ``rows_to_network`` (a network that ``takes_rows``, ``X`` C-contiguous
    in its dtype), a shuffled batch's ``X`` is left to the network: ``get``
    hands back the whole ``X`` and the batch's indices.
    """

    def __init__(self, X, Y, sw, batch_size, dtype, rows_to_network=False):
        self.X, self.Y, self.sw = X, Y, sw
        self.dense = not sp.issparse(X)
        self.rows_to_network = (rows_to_network and self.dense and X.dtype == dtype
                                and X.flags.c_contiguous)
        # batches that gather_rows copies (on the step's threads): large ones,
        # whose rows come from memory; numpy's take is faster on small ones
        self.rows_in_c = (self.dense and X.ndim == 2 and X.dtype in (np.float32, np.float64)
                          and X.flags.c_contiguous
                          and batch_size * X.shape[1] * X.itemsize >= GATHER_BYTES)
        self.Xb = np.empty((batch_size,) + X.shape[1:], X.dtype) \
            if self.dense and not self.rows_to_network else None
        self.Yb = np.empty((batch_size,) + Y.shape[1:], dtype)
        self.Yraw = None if Y.dtype == dtype else np.empty(self.Yb.shape, Y.dtype)
        self.swb = None if sw is None else np.empty(batch_size, sw.dtype)

    def get(self, order, start, stop, threads=1):
        """Rows ``start:stop`` of the epoch's ``order`` (None: in place), on ``threads``
        threads: ``(Xb, Yb, swb, rows)``, with ``rows`` None, or the batch's
        indices into ``Xb = X`` (``rows_to_network``)."""
        n = stop - start
        rows = None
        # mode="clip" skips the bounds check (the indices are a permutation),
        # which would otherwise gather through a temporary: 3x slower.
        if order is None:
            idx = slice(start, stop)
            Xb, Yb = self.X[idx], self.Y[idx]
            swb = None if self.sw is None else self.sw[idx]
        else:
            idx = order[start:stop]
            if self.rows_to_network:
                Xb, rows = self.X, idx
            elif self.rows_in_c:
                Xb = self.Xb[:n]
                gather_rows(self.X, idx, Xb, threads)
            else:
                Xb = self.X.take(idx, axis=0, out=self.Xb[:n], mode="clip") \
                    if self.dense else self.X[idx]
            Yb = self.Y.take(idx, axis=0, mode="clip",
                             out=(self.Yb if self.Yraw is None else self.Yraw)[:n])
            swb = None if self.sw is None else \
                self.sw.take(idx, out=self.swb[:n], mode="clip")
        if Yb.dtype != self.Yb.dtype:  # compact targets: convert into the buffer
            np.copyto(self.Yb[:n], Yb)
            Yb = self.Yb[:n]
        return Xb, Yb, swb, rows


def _augmented(augment, Xb, rng, is_view):
    """Apply ``augment`` to a batch; never lets it write into the user's X."""
    try:
        out = augment(Xb.copy() if is_view else Xb, rng)
    except TypeError as exc:
        kind = "a scipy.sparse CSR matrix" if sp.issparse(Xb) else "a 2-D numpy array"
        raise TypeError(
            f"augment(X_batch, rng) raised TypeError: {exc}. An augment function is "
            f"called as augment(X_batch, rng) -> X_batch, with X_batch {kind} here and "
            "rng a numpy.random.Generator.") from exc
    return _checked_batch(out, Xb)


def _checked_batch(out, Xb):
    """The augmented batch ``out`` as the network takes it, or a clear error."""
    if out is None:
        raise TypeError("augment returned None; it must return the augmented batch.")
    if sp.issparse(out):
        out = out.tocsr() if sp.issparse(Xb) else out.toarray()
    else:
        out = np.asarray(out)
    if out.dtype.kind == "c":
        raise ValueError(f"augment returned complex values (dtype {out.dtype}); it must "
                         "return real values.")
    if out.dtype.kind not in "biuf":
        raise TypeError(f"augment returned values of dtype {out.dtype}; it must return "
                        "real numbers.")
    if out.shape != Xb.shape:
        raise ValueError(
            f"augment returned an array of shape {out.shape} for a batch of shape "
            f"{Xb.shape}; it must keep the shape.")
    out = out.astype(Xb.dtype, copy=False)
    if not np.isfinite(out.data if sp.issparse(out) else out).all():
        raise ValueError("augment returned non-finite values (NaN or inf) for a "
                         "training batch of finite X; it must return finite values.")
    return out


def _compiled_epoch(network, loss, ws, batcher, config, rng):
    """The network's whole epoch in compiled code (``network.epoch_runner``) where it
    can train on these data, else None.

    It takes a dense C-contiguous ``X`` in the network's dtype, targets in it
    or stored as ``uint8``, and sample weights in it that are all positive
    (so that no batch's weights sum to 0); no ``augment``.
    """
    runner = getattr(network, "epoch_runner", None)
    X, Y, sw, dt = batcher.X, batcher.Y, batcher.sw, network.dtype
    if (runner is None or config.augment is not None or not batcher.dense or X.ndim != 2
            or X.dtype != dt or not X.flags.c_contiguous or Y.ndim != 2
            or Y.dtype not in (dt, np.uint8) or not Y.flags.c_contiguous):
        return None
    if sw is not None and (sw.dtype != dt or not sw.flags.c_contiguous
                           or not np.all(sw > 0)):
        return None
    return runner(loss, ws, config.alpha, config.l1, rng)


def _error_state(compiled):
    """numpy's floating-point error state for an epoch: overflows raise (the
    divergence scikit-learn reports); unchanged for a compiled epoch, which
    does no numpy arithmetic (its loss tells a divergence)."""
    if compiled is not None:
        return contextlib.nullcontext()
    return np.errstate(over="raise", invalid="raise", divide="raise")


def _run_epoch(network, loss, optimizer, schedule, batcher, order, ws, config,
               dropout_rng, choice=None, compiled=None):
    """One pass over the data; returns the mean batch loss (as scikit-learn).

    ``choice`` (a :class:`ThreadChoice`, for a step split between threads)
    says how many threads each step runs on. ``compiled`` (from
    :func:`_compiled_epoch`) runs the same steps in compiled code.
    """
    off = network.trainable_offset
    scale = None if config.lr_scale is None else config.lr_scale[off:]
    n_samples, batch_size = batcher.X.shape[0], config.batch_size
    if compiled is not None:
        total = compiled(batcher.X, batcher.Y, batcher.sw, order, batcher.Xb, batcher.Yb,
                         batcher.swb, optimizer, schedule.lr, scale, config.clip_norm,
                         choice)
        return total / n_samples
    params, g = network.params[off:], ws.grad[off:]
    alpha, l1, clip_norm, augment = config.alpha, config.l1, config.clip_norm, config.augment
    get, loss_and_gradient, step = batcher.get, network.loss_and_gradient, optimizer.step
    total = 0.0
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        threads = 1  # OpenMP threads for the gather and the optimizer
        if choice is not None:
            ws.threads = choice.start(stop - start)
            threads = optimizer.threads = ws.threads if getattr(ws, "openmp", True) else 1
        Xb, Yb, swb, rows = get(order, start, stop, threads)
        if augment is not None:
            Xb = _augmented(augment, Xb, dropout_rng, order is None)
        # with rows, the network gathers the batch's rows of X itself
        value, _, sw_sum = loss_and_gradient(Xb, Yb, loss, swb, alpha, l1, ws=ws,
                                             training=True, rng=dropout_rng,
                                             **({} if rows is None else {"rows": rows}))
        if not math.isfinite(value):
            return value
        total += value * (stop - start)
        if sw_sum > 0:  # a batch whose weights are all zero moves nothing
            gscale = 1.0 if clip_norm is None else _clip_factor(g, clip_norm)
            step(params, g, schedule.lr, scale, gscale)
        if choice is not None:
            choice.stop()
    return total / n_samples


def _validate(network, loss, validation, history):
    try:
        with np.errstate(over="raise", invalid="raise"):
            P = network.predict(validation.X)
    except FloatingPointError:
        P = np.array([np.nan])
    if np.all(np.isfinite(P)):
        score = float(validation.score(P))
        val_loss = loss.scaled_value(validation.Y, P, validation.sample_weight)
    else:
        score = val_loss = np.nan
    history.validation_scores.append(score)
    history.validation_losses.append(val_loss)
    return score, val_loss


def fit_stochastic(network, loss, optimizer, schedule, stopping, X, Y,
                   sample_weight, *, config, history, rng, dropout_rng,
                   validation=None):
    """Train ``network`` with mini-batches.

    With ``config.restore_best`` the best validation epoch's parameters are
    copied into ``network.params`` at the end.

    Returns
    -------
    status : {"max_iter", "converged", "one_epoch", "interrupted", "diverged",
              "diverged_kept_best", "callback"}
        ``"diverged"``: an epoch gave a non-finite loss or parameters; it is
        undone, and ``network.params`` holds the last finite parameters.
        ``"diverged_kept_best"``: the same with early stopping after a scored
        epoch; the diverged epoch is recorded with NaN loss and score, and
        ``network.params`` holds the best epoch's parameters.
    """
    n = X.shape[0]
    batch_size = min(config.batch_size, n)
    ws = network.workspace(batch_size, fast_blas=config.fast_blas, threads=config.threads)
    choice = _thread_choice(ws, batch_size)
    batcher = _Batcher(X, Y, sample_weight, batch_size, network.dtype,
                       rows_to_network=(getattr(network, "takes_rows", False)
                                        and config.augment is None))
    compiled = _compiled_epoch(network, loss, ws, batcher, config, dropout_rng)
    order = np.arange(n, dtype=np.intp) if config.shuffle else None  # the kernels index with intp
    best = network.params.copy() if config.restore_best else None
    status = "one_epoch" if config.one_epoch else "max_iter"
    # buffers for the epoch's snapshot, allocated once for the whole fit
    saved = (np.empty_like(network.params), None if best is None else np.empty_like(best))
    snapshot = None
    errors = np.geterr()
    try:  # the whole loop: Ctrl-C anywhere in it rolls back to a whole epoch
        for _ in range(1 if config.one_epoch else config.max_iter):
            snapshot = None  # nothing of this epoch has changed anything yet
            snapshot = _snapshot(network, saved, history, stopping, schedule, best)
            status_now = _epoch(network, loss, optimizer, schedule, stopping,
                                batcher, order, ws, config, history, rng,
                                dropout_rng, validation, best, choice, compiled)
            if status_now == "diverged":
                _rollback(network, optimizer, history, stopping, schedule, best,
                          snapshot)
                status = _after_divergence(history, stopping, best, validation,
                                           batcher.X.shape[0])
                break
            if status_now is not None:
                status = status_now
                break
    except KeyboardInterrupt:
        _restore_errors(errors)
        if snapshot is not None:
            _rollback(network, optimizer, history, stopping, schedule, best, snapshot)
        warnings.warn("Training interrupted by user.")
        status = "interrupted"
    if best is not None and status != "diverged":
        network.params[...] = best
    return status


def _restore_errors(errors):
    """Put back numpy's floating-point error handling as the fit found it.

    A Ctrl-C that lands inside ``np.errstate``'s exit (the loop's overflow
    checks) leaves the ``"raise"`` state behind; the fit swallows the
    interrupt, so nothing else would undo it.
    """
    np.seterr(**errors)


def _after_divergence(history, stopping, best, validation, n_samples):
    """The status of a fit whose last epoch diverged (and was undone).

    With early stopping and an epoch already scored, the epoch is recorded
    as scikit-learn records it (a NaN loss and validation score) and the fit
    ends with the best epoch's weights: ``"diverged_kept_best"``. Otherwise
    ``"diverged"``: the parameters are the last finite ones.
    """
    if best is None or validation is None or not np.isfinite(stopping.best_score):
        return "diverged"
    history.loss_curve.append(np.nan)
    history.validation_scores.append(np.nan)
    history.validation_losses.append(np.nan)
    history.epoch_seconds.append(0.0)
    history.n_iter += 1
    history.t += n_samples
    return "diverged_kept_best"


def _snapshot(network, saved, history, stopping, schedule, best):
    """What an epoch changes, saved so the epoch can be undone.

    The parameters (and the best epoch's) go into the buffers ``saved``.
    """
    saved_params, saved_best = saved
    np.copyto(saved_params, network.params)
    if best is not None:
        np.copyto(saved_best, best)
    return {
        "params": saved_params,
        "n_epochs": len(history.loss_curve),
        "counters": (history.n_iter, history.t),
        "stopping": (stopping.best_loss, stopping.best_score, stopping.count),
        "lr": schedule.lr,
        "best": saved_best,
    }


def _rollback(network, optimizer, history, stopping, schedule, best, snapshot):
    """Undo a partial epoch: back to the state ``_snapshot`` recorded."""
    network.params[...] = snapshot["params"]
    if not optimizer.is_finite():
        optimizer.reset()
    history.n_iter, history.t = snapshot["counters"]
    stopping.best_loss, stopping.best_score, stopping.count = snapshot["stopping"]
    schedule.lr = snapshot["lr"]
    if best is not None:
        best[...] = snapshot["best"]
    n_epochs = snapshot["n_epochs"]
    for lst in (history.loss_curve, history.validation_scores,
                history.validation_losses, history.epoch_seconds):
        if lst is not None:
            del lst[n_epochs:]


def _epoch(network, loss, optimizer, schedule, stopping, batcher, order, ws,
           config, history, rng, dropout_rng, validation, best, choice=None,
           compiled=None):
    """Run one epoch and its bookkeeping; returns a stop status or None."""
    start_time = time.perf_counter()
    _cap_threads(choice, config.threads_now)
    if order is not None:
        # The swaps of a shuffle do not depend on the values swapped, so this
        # is ``order[perm]`` for the ``perm`` that shuffling ``arange`` gives.
        rng.shuffle(order)
    try:  # an overflow is the divergence scikit-learn reports, not a warning
        with _error_state(compiled):
            mean_loss = _run_epoch(network, loss, optimizer, schedule, batcher,
                                   order, ws, config, dropout_rng, choice, compiled)
    except FloatingPointError:
        return "diverged"
    if not math.isfinite(mean_loss) or not all_finite(network.params):
        return "diverged"
    history.loss_curve.append(mean_loss)
    history.n_iter += 1
    history.t += batcher.X.shape[0]
    score = None
    if validation is not None:
        score, _ = _validate(network, loss, validation, history)
    history.epoch_seconds.append(time.perf_counter() - start_time)
    improved = stopping.update(mean_loss, score)
    if improved and best is not None:
        best[...] = network.params
    schedule.epoch_end(history.t, history.n_iter)
    stops = [bool(cb(history)) for cb in config.callbacks]  # every one is called
    if any(stops):
        return "callback"
    if stopping.triggered:
        stop, suffix = schedule.on_plateau()
        if config.verbose:
            print(stopping.message() + suffix)
        if stop:
            return "converged"
        stopping.reset()
    return None


def _thread_choice(ws, batch_size):
    """A :class:`ThreadChoice` for a workspace whose step is split between threads."""
    parts = getattr(ws, "parts", 1)
    return ThreadChoice(parts, batch_size) if parts > 1 else None


def _cap_threads(choice, threads_now):
    """Hold ``choice`` to the threads this fit may use now (``threads_now()``)."""
    if choice is not None and threads_now is not None:
        choice.cap = max(1, min(choice.parts, threads_now()))


def fit_lbfgs(network, loss, X, Y, sample_weight, *, alpha=0.0, l1=0.0,
              max_iter=200, max_fun=15000, tol=1e-4, callbacks=(), history=None,
              validation=None, fast_blas=False, threads=1, threads_now=None):
    """Minimize the full-batch penalized loss with scipy's L-BFGS-B.

    After each iteration ``network.params`` holds the iteration's solution,
    ``history.loss_curve`` gets its loss and, with ``validation``,
    ``history.validation_scores`` and ``history.validation_losses`` its
    validation score and loss; then ``callbacks`` are called with
    ``history`` (a truthy return value ends the minimization).

    A loss that is not finite (an overflow included) counts as infinite, so
    that the line search steps back. A ``KeyboardInterrupt`` warns and ends
    the minimization with the last completed iteration.

    Returns the ``scipy.optimize.OptimizeResult``; ``network.params`` holds
    the solution, or the starting weights when the loss or the solution is
    not finite (``result.diverged``). ``result.interrupted`` tells a Ctrl-C.
    ``fast_blas`` and ``threads`` are passed to ``network.workspace``;
    ``threads_now()`` (when given) says how many of them it may use.
    """
    history = History() if history is None else history
    ws = network.workspace(X.shape[0], fast_blas=fast_blas, threads=threads)
    choice = _thread_choice(ws, X.shape[0])
    off = network.trainable_offset
    fixed = network.params[:off].copy()
    x0 = network.params[off:].astype(np.float64)
    done = _LbfgsProgress(x0, history)

    def fun(x):
        network.params[off:] = x
        if choice is not None:
            _cap_threads(choice, threads_now)
            ws.threads = choice.start(X.shape[0])
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                value, g, _ = network.loss_and_gradient(X, Y, loss, sample_weight,
                                                        alpha, l1, ws=ws)
        except FloatingPointError:
            value = np.inf
        if choice is not None:
            choice.stop()
        if not math.isfinite(value):
            return np.inf, np.zeros_like(x)  # too far: the line search steps back
        done.first_value(value)
        return value, g[off:].astype(np.float64)

    def on_iteration(intermediate_result):
        network.params[off:] = intermediate_result.x  # not a line-search trial
        history.loss_curve.append(float(intermediate_result.fun))
        history.n_iter += 1
        if validation is not None:
            _validate(network, loss, validation, history)
        stop = any([bool(cb(history)) for cb in callbacks])
        done.record(intermediate_result)
        if stop:
            raise StopIteration  # scipy's documented way to end the minimization

    errors = np.geterr()
    try:
        result = scipy.optimize.minimize(
            fun, x0, method="L-BFGS-B", jac=True, callback=on_iteration,
            options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
        )
        result.interrupted = False
    except KeyboardInterrupt:
        _restore_errors(errors)
        warnings.warn("Training interrupted by user.")
        result = done.result()
    network.params[:off] = fixed
    # Non-finite weights are never kept: the start point is the last finite one.
    # (A Ctrl-C before the first loss was computed leaves ``fun`` NaN.)
    result.diverged = not np.all(np.isfinite(result.x)) or (
        not math.isfinite(result.fun) and not result.interrupted)
    network.params[off:] = x0 if result.diverged else result.x
    return result


class _LbfgsProgress:
    """The last completed L-BFGS iteration, to end with on a Ctrl-C.

    Each record replaces one tuple in a single assignment, so that a Ctrl-C
    never finds the parameters of one iteration with the counters of another.
    """

    def __init__(self, x0, history):
        self.history = history
        # (x, loss, iterations, history lengths, history.n_iter)
        self.last = (x0.copy(), np.nan, 0, _history_lengths(history), history.n_iter)

    def first_value(self, value):
        """The loss at the start point (the first evaluation)."""
        x, fun, nit, lengths, n_iter = self.last
        if nit == 0 and not math.isfinite(fun):
            self.last = (x, float(value), nit, lengths, n_iter)

    def record(self, intermediate_result):
        self.last = (intermediate_result.x.copy(), float(intermediate_result.fun),
                     self.last[2] + 1, _history_lengths(self.history),
                     self.history.n_iter)

    def result(self):
        """The last completed iteration as an OptimizeResult; history cut back to it."""
        x, fun, nit, lengths, n_iter = self.last
        for lst, n in zip(_history_lists(self.history), lengths):
            if lst is not None:
                del lst[n:]
        self.history.n_iter = n_iter
        return scipy.optimize.OptimizeResult(
            x=x, fun=fun, nit=nit, status=-1, success=False,
            message="Training interrupted by user.", interrupted=True)


def _history_lists(history):
    return (history.loss_curve, history.validation_scores, history.validation_losses)


def _history_lengths(history):
    return [None if lst is None else len(lst) for lst in _history_lists(history)]

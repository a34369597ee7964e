"""The perceptron rule on a one-layer network: threshold units, one sample at a time.

Each output unit of a :class:`~sknet._core.network.Network` with one dense
layer is a perceptron. For a sample ``x`` with target ``t`` in {-1, +1} (the
unit's one-vs-rest target) the unit's score is ``z = w . x + b``; the sample
is a *mistake* when its margin ``t z <= 0``, and a mistake moves the unit by

    w <- w + eta * t * a * x,        b <- b + eta * t * a * decay,

where ``a`` is the sample's weight (sample weight times class weight) and
``decay`` is 1 for dense input and 0.01 for sparse input. This is the
subgradient step of the perceptron criterion ``max(0, -t z)`` (registered
here as the ``"perceptron"`` loss), and scikit-learn's
``Perceptron``/``SGDClassifier(loss="perceptron")`` rule, including its
penalties: with an L2 term every sample first shrinks ``w`` by
``1 - eta * alpha * (1 - l1_ratio)``, and with an L1 term every sample then
applies the cumulative truncated-gradient penalty to the features it touches
(Tsuruoka et al., 2009).

The lecture writes the rule as ``w <- w + eta (y - y_hat) x`` with 0/1 targets
and the threshold output ``y_hat = step(z)``; it is the same update, except
for a score of exactly 0, which the margin rule counts as a mistake for
either target (so training from zero weights moves at the first sample).

The sequential rule is a deliberate second training path of the core (the
trainer's mini-batches cannot reproduce it): one epoch of one unit is a
compiled loop, :class:`~sknet._core._perceptron_fast.PerceptronUnit`, which
runs without the GIL and makes scikit-learn's updates in scikit-learn's
order and precision. This module loops over the epochs, applies the
stopping rules, rolls an interrupted epoch back, and trains the units of a
one-vs-rest problem one after another or in threads.

Stopping follows scikit-learn's loop: the training objective is the summed
perceptron loss plus the penalty evaluated with scikit-learn's running norms
(on sparse rows these count only the features of the last update), or the
unit's accuracy on held-out samples. Shuffling reproduces scikit-learn's: a
seeded Fisher-Yates shuffle driven by a 32-bit xorshift generator, applied
again to the previous epoch's order at every epoch.

Memory: beyond ``X``, a unit in training holds a 4-byte index per sample (the
epoch's order) and a few weight-sized vectors (the weights, their copy at the
start of the epoch, and with an L1 penalty the penalty applied so far and its
copy); the targets are one byte per sample and unit, the sample weights (if
any) one number per sample shared by the units.

Interruption: Ctrl-C during an epoch rolls that epoch back, so each unit
keeps the weights of its last completed epoch. With threads, Ctrl-C reaches
the waiting main thread, which raises a stop flag that every running epoch
reads every few thousand samples; the threads roll back and end before
:func:`fit_perceptron` returns.
"""

import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Optional

import numpy as np
import scipy.sparse as sp

from ._perceptron_fast import PerceptronUnit
from .activations import ACTIVATIONS, register_activation
from .losses import LOSSES, Loss
from .stopping import StoppingRule

__all__ = [
    "PerceptronConfig",
    "UnitResult",
    "fit_perceptron",
    "needs_canonical_rows",
    "perceptron_fit_bytes",
    "perceptron_scores",
    "shuffle_permutation",
]

SPARSE_INTERCEPT_DECAY = 0.01  # scikit-learn's intercept step for sparse input


# --------------------------------------------------------------------------- #
# the threshold unit and the perceptron criterion, in the core registries       #
# --------------------------------------------------------------------------- #
def _step(z):
    """Threshold output: 1 where ``z > 0``, else 0 (in place)."""
    return np.greater(z, 0, out=z)


def _straight_through(a, grad):
    """The perceptron passes the error through the threshold unchanged."""
    return grad


def _perceptron_value(Y, P, sample_weight):
    """Mean (sample-weighted) perceptron criterion ``sum_k max(0, -t z)``."""
    per_sample = np.maximum(-(2 * Y - 1) * P, 0).sum(axis=1)
    if sample_weight is None:
        return float(per_sample.mean())
    return float(np.dot(per_sample, sample_weight) / np.sum(sample_weight))


def _perceptron_gradient(Y, P):
    """Subgradient ``-t`` where the margin ``t z <= 0``, else 0."""
    T = 2 * Y - 1
    return np.where(T * P <= 0, -T, 0).astype(P.dtype, copy=False)


if "step" not in ACTIVATIONS:
    register_activation("step", _step, _straight_through)
if "perceptron" not in LOSSES:
    # Defined on the unit's score (an identity output): 0/1 targets, t = 2y - 1.
    LOSSES["perceptron"] = Loss("perceptron", _perceptron_value,
                                _perceptron_gradient, None)


# --------------------------------------------------------------------------- #
# configuration and results                                                    #
# --------------------------------------------------------------------------- #
@dataclass
class PerceptronConfig:
    """The knobs of the perceptron loop (scikit-learn's names and meanings).

    ``tol=None`` disables the tolerance rule; ``stop_on_no_mistakes`` ends a
    unit's training after an epoch without an update when no penalty is set
    (its weights cannot change any more). ``max_iter=1`` with
    ``early_stopping=False`` is one pass, as ``partial_fit``.
    """

    eta0: float = 1.0
    penalty: Optional[str] = None
    alpha: float = 0.0001
    l1_ratio: float = 0.15
    fit_intercept: bool = True
    max_iter: int = 1000
    tol: Optional[float] = 1e-3
    n_iter_no_change: int = 5
    shuffle: bool = True
    early_stopping: bool = False
    stop_on_no_mistakes: bool = True
    verbose: int = 0


@dataclass
class UnitResult:
    """How one unit's training ended.

    ``status`` is one of "max_iter", "tol" (training objective plateau),
    "validation" (validation score plateau), "no_mistakes" (an epoch without
    an update) or "interrupted" (Ctrl-C: the unit keeps its weights of the
    last completed epoch).
    """

    n_iter: int
    status: str
    n_updates: int


def shuffle_permutation(n, seed):
    """The order scikit-learn's ``SequentialDataset.shuffle(seed)`` gives ``arange(n)``.

    A Fisher-Yates shuffle whose draws are ``state % 2**31`` of a 32-bit
    xorshift generator seeded with ``seed`` (0 is replaced by 1), as every
    epoch of :class:`PerceptronUnit` applies it to the previous order.

    Parameters
    ----------
    n : int
    seed : int

    Returns
    -------
    perm : ndarray of int32 of shape (n,)
    """
    from ._perceptron_fast import shuffle_order

    order = np.arange(n, dtype=np.intc)
    shuffle_order(order, seed)
    return order


def needs_canonical_rows(penalty):
    """Whether the rule for ``penalty`` needs CSR rows without repeated columns.

    Without a penalty the rule sums a row's stored entries and adds each of
    them to the weights one by one, as scikit-learn's loop does, so repeated
    or unsorted columns need no canonical copy. With a penalty the running
    norms and the L1 truncation are defined per feature.
    """
    return penalty is not None


def perceptron_fit_bytes(n_samples, n_features, n_units, dtype, *, n_threads=1,
                         penalty=None, sample_weight=False, n_validation=0):
    """Bytes a perceptron fit allocates beyond its input and targets.

    The weights twice (the network and the published ``coef_``), then per
    unit in training (``n_threads`` at once) the epoch's order and three or
    five weight-sized vectors, the sample weights in the training dtype,
    and the held-out rows (dense) for early stopping.

    Returns
    -------
    n_bytes : int
    """
    itemsize = np.dtype(dtype).itemsize
    n_threads = max(1, min(int(n_threads), int(n_units)))
    vectors = 5 if penalty in ("l1", "elasticnet") else 3
    per_unit = 4 * n_samples + vectors * n_features * itemsize
    return int(2 * (n_features + 1) * n_units * itemsize + n_threads * per_unit
               + (n_samples * itemsize if sample_weight else 0)
               + n_validation * n_features * itemsize)


# --------------------------------------------------------------------------- #
# epochs and stopping                                                          #
# --------------------------------------------------------------------------- #
def _validation_score(validation, w, b):
    """Accuracy of the unit's threshold output on the held-out samples.

    A score that overflowed counts as scikit-learn counts it: by its sign
    when infinite, for the negative class when NaN (``inf - inf``).
    """
    X_val, t_val, sw_val = validation
    with np.errstate(over="ignore", invalid="ignore"):
        s = (X_val @ w if sp.issparse(X_val) else np.dot(X_val, w)) + b
    return float(np.average((s > 0) == (t_val > 0), weights=sw_val))


def _report(cfg, unit, epoch, n_seen, totals, n_train, score, started):
    """scikit-learn's verbose lines for an epoch, its running norm included."""
    if not cfg.verbose:
        return
    w, b = unit.weights()
    loss, objective, _ = totals
    n = max(n_train, 1)
    print("-- Epoch %d" % epoch)
    print("Norm: %.2f, NNZs: %d, Bias: %.6f, T: %d, Avg. loss: %f, Objective: %f%s"
          % (unit.running_norm, np.count_nonzero(w), b, n_seen, loss / n, objective / n,
             "" if score is None else ", Validation score: %f" % score))
    print("Total training time: %.2f seconds." % (time.perf_counter() - started))


def _epoch(unit):
    """One compiled epoch of ``unit`` (see :meth:`PerceptronUnit.epoch`)."""
    return unit.epoch()


def _check_finite(unit, epoch):
    """Raise scikit-learn's error when a weight or the intercept overflowed.

    As in scikit-learn's loop, a score that overflowed (inputs or weights
    near the largest float) does not stop training by itself: its loss is
    infinite, its update finite.
    """
    if not unit.finite():
        raise ValueError(
            "Floating-point under-/overflow occurred at epoch #%d. Scaling "
            "input data with StandardScaler or MinMaxScaler might help." % epoch)


def _after_epoch(cfg, unit, stopping, validation, totals, epoch, n_train, started):
    """Report the epoch and apply the stopping rules: the status that ends training, or None."""
    loss, objective, updates = totals
    score = None if validation is None else _validation_score(validation, *unit.weights())
    _report(cfg, unit, epoch, epoch * n_train, totals, n_train, score, started)
    if cfg.stop_on_no_mistakes and updates == 0 and not unit.penalized:
        status = "no_mistakes"
    else:
        stopping.update(objective / n_train, score)
        if not stopping.triggered:
            return None
        status = "validation" if validation is not None else "tol"
    if cfg.verbose:
        print("Convergence after %d epochs took %.2f seconds"
              % (epoch, time.perf_counter() - started))
    return status


def _train_unit(unit, n_train, validation, cfg, stop):
    """Epochs of one unit until a stopping rule fires; returns a UnitResult.

    Ctrl-C (KeyboardInterrupt) may arrive at any call: while an epoch is
    ``running`` the unit goes back to its snapshot, otherwise it keeps its
    ``done`` epochs. scikit-learn stops once ``n_iter_no_change`` epochs in
    a row made no progress; the core's rule stops once more than its count
    did, hence the ``- 1``.
    """
    stopping = StoppingRule(-np.inf if cfg.tol is None else cfg.tol,
                            cfg.n_iter_no_change - 1, on_validation=validation is not None)
    done, running, n_updates = 0, False, 0
    started = time.perf_counter()
    try:
        while done < cfg.max_iter:
            if stop[0]:
                return UnitResult(done, "interrupted", n_updates)
            unit.snapshot()
            running = True
            totals = _epoch(unit)
            if totals is None:  # the stop flag ended the epoch part-way
                unit.restore()
                return UnitResult(done, "interrupted", n_updates)
            _check_finite(unit, done + 1)
            done, running = done + 1, False
            n_updates += totals[2]
            status = _after_epoch(cfg, unit, stopping, validation, totals, done, n_train,
                                  started)
            if status is not None:
                return UnitResult(done, status, n_updates)
        return UnitResult(done, "max_iter", n_updates)
    except KeyboardInterrupt:
        if running:
            unit.restore()
        return UnitResult(done, "interrupted", n_updates)


# --------------------------------------------------------------------------- #
# units and threads                                                            #
# --------------------------------------------------------------------------- #
def _kernel_rows(X, dtype):
    """``X`` as the kernel reads it: C-contiguous rows, or CSR arrays with int32 indices."""
    if sp.issparse(X):
        return (np.ascontiguousarray(X.data, dtype=dtype),
                np.ascontiguousarray(X.indices, dtype=np.intc),
                np.ascontiguousarray(X.indptr, dtype=np.intc))
    return np.ascontiguousarray(X, dtype=dtype)


def _make_unit(network, k, rows, t, shared, cfg, seed, class_weight, stop):
    W, b = network.coefs[0], network.intercepts[0]
    return PerceptronUnit(
        rows, W.shape[0], t, W[:, k], float(b[k]), eta0=cfg.eta0, penalty=cfg.penalty,
        alpha=cfg.alpha, l1_ratio=cfg.l1_ratio, fit_intercept=cfg.fit_intercept,
        decay=shared["decay"], weight_neg=float(class_weight[0]),
        weight_pos=float(class_weight[1]), sample_weight=shared["sample_weight"],
        shuffle=cfg.shuffle, seed=seed, skip=shared["skip"], stop=stop,
        track_norms=bool(cfg.verbose))


def _fit_unit(network, k, rows, targets, shared, cfg, seed, class_weight, stop):
    """Train output unit ``k`` of ``network`` on its targets (see fit_perceptron).

    Ctrl-C before the unit trains leaves its weights as they were; while
    its weights are copied into the network, the copy is made again.
    """
    result, unit = UnitResult(0, "interrupted", 0), None
    try:
        if not stop[0]:
            t = targets if targets.dtype == np.int8 else \
                np.where(targets > 0, np.int8(1), np.int8(-1))
            unit = _make_unit(network, k, rows, t, shared, cfg, seed, class_weight, stop)
            validation = shared["validation"]
            if validation is not None:
                X_val, sw_val, mask = validation
                validation = (X_val, t[mask], sw_val)
            result = _train_unit(unit, shared["n_train"], validation, cfg, stop)
    except KeyboardInterrupt:
        result = UnitResult(result.n_iter, "interrupted", result.n_updates)
    except BaseException:
        stop[0] = 1  # the other units stop too
        raise
    if result.status == "interrupted":
        stop[0] = 1
    while unit is not None:
        try:
            w, b_k = unit.finish()
            network.coefs[0][:, k] = w
            network.intercepts[0][k] = b_k
            break
        except KeyboardInterrupt:
            stop[0] = 1
            result = UnitResult(result.n_iter, "interrupted", result.n_updates)
    return result


def _run_in_turn(tasks, stop):
    """Run ``tasks`` one after another; after Ctrl-C the rest keep their weights."""
    results = [UnitResult(0, "interrupted", 0)] * len(tasks)
    try:
        for k, task in enumerate(tasks):
            results[k] = task()
    except KeyboardInterrupt:
        stop[0] = 1
    return results


def _run_in_threads(tasks, n_threads, stop):
    """Run ``tasks`` in ``n_threads`` threads; returns their results in order.

    Ctrl-C while waiting raises the stop flag: the running units roll back
    their epoch and return, the waiting ones return at once, and every
    thread has ended when this returns. A unit's error is raised here.
    """
    results = [UnitResult(0, "interrupted", 0)] * len(tasks)
    errors, lock, pending = [], threading.Lock(), list(range(len(tasks)))[::-1]

    def worker(done):
        try:
            while True:
                with lock:
                    if not pending:
                        return
                    k = pending.pop()
                try:
                    results[k] = tasks[k]()
                except BaseException as exc:  # raised again in the calling thread
                    stop[0] = 1
                    errors.append(exc)
        finally:
            done.release()

    workers = []
    try:
        for i in range(n_threads):
            done = threading.Lock()
            done.acquire()
            thread = threading.Thread(target=worker, args=(done,), daemon=True,
                                      name=f"sknet-perceptron-{i}")
            workers.append((thread, done))
            thread.start()
        _wait_for(workers, stop)
    except KeyboardInterrupt:
        stop[0] = 1
        _wait_for(workers, stop)
    if errors:
        raise errors[0]
    return results


def _wait_for(workers, stop):
    """Wait until every started worker has ended; Ctrl-C meanwhile raises ``stop``.

    The wait is on a plain lock each worker releases last: its acquire is
    one C call, which a Ctrl-C cannot leave holding a lock (an interrupted
    ``Thread.join`` may leave a thread looking finished, and an interrupted
    ``Event.wait`` its condition's lock held, so that the worker blocks for
    good when it sets the event). The join after it only lets the finishing
    thread exit.
    """
    while True:
        try:
            for thread, done in workers:
                while not done.acquire(timeout=0.05) and thread.is_alive():
                    pass
                thread.join()
            return
        except KeyboardInterrupt:
            stop[0] = 1


def fit_perceptron(network, X, Y, sample_weight, config, *, seeds, class_weights,
                   validation_mask=None, n_threads=1):
    """Train each output unit of a one-layer ``network`` by the perceptron rule.

    Parameters
    ----------
    network : Network
        One dense layer ``[n_features, n_units]``; its weights are the start
        and receive the result.
    X : ndarray or CSR matrix of shape (n_samples, n_features)
        In the network's dtype; a CSR matrix in canonical format where
        :func:`needs_canonical_rows` says so.
    Y : ndarray of shape (n_samples, n_units)
        Targets, one column per unit (one-vs-rest): +1/-1 as int8 (used as
        they are), or 0/1 of another dtype.
    sample_weight : ndarray of shape (n_samples,) or None
    config : PerceptronConfig
    seeds : sequence of int
        The 32-bit shuffle seed of each unit.
    class_weights : ndarray of shape (n_units, 2)
        Per unit, the weight of its negative and of its positive samples.
    validation_mask : ndarray of bool of shape (n_samples,), default=None
        Held-out samples: with ``config.early_stopping`` they are not trained
        on and each unit stops on its accuracy there.
    n_threads : int, default=1
        Units trained at once, each in its own thread (the epochs release the
        GIL).

    Returns
    -------
    results : list of UnitResult, one per unit
    """
    if network.n_layers != 1:
        raise ValueError("The perceptron rule trains a network of one layer.")
    dtype = network.dtype
    shared = {
        "decay": SPARSE_INTERCEPT_DECAY if sp.issparse(X) else 1.0,
        "sample_weight": None if sample_weight is None else
        np.ascontiguousarray(sample_weight, dtype=dtype),
        "skip": None, "validation": None, "n_train": X.shape[0],
    }
    if validation_mask is not None and config.early_stopping:
        mask = np.asarray(validation_mask, dtype=bool)
        shared["skip"] = np.ascontiguousarray(mask).view(np.uint8)
        sw_val = None if sample_weight is None else \
            np.asarray(sample_weight, dtype=np.float64)[mask]
        shared["validation"] = (X[mask], sw_val, mask)
        shared["n_train"] = int(X.shape[0] - mask.sum())
    rows = _kernel_rows(X, dtype)
    stop = np.zeros(1, dtype=np.intc)
    tasks = [partial(_fit_unit, network, k, rows, Y[:, k], shared, config, int(seeds[k]),
                     class_weights[k], stop) for k in range(Y.shape[1])]
    errors = np.geterr()
    if n_threads <= 1 or len(tasks) == 1:
        results = _run_in_turn(tasks, stop)
    else:
        results = _run_in_threads(tasks, min(int(n_threads), len(tasks)), stop)
    if stop[0]:
        # A Ctrl-C that lands inside np.errstate's entry or exit (the validation
        # score's) leaves its "ignore" state behind; the fit swallows the
        # interrupt, so nothing else would undo it.
        np.seterr(**errors)
    return results


def perceptron_scores(X, coef, intercept):
    """The units' scores ``X coef^T + intercept`` for dense or sparse ``X``/``coef``.

    Returns
    -------
    scores : ndarray of shape (n_samples, n_units)
    """
    if sp.issparse(coef):
        S = coef @ X.T
        S = S.toarray() if sp.issparse(S) else np.asarray(S)
        return S.T + intercept
    return np.asarray(X @ coef.T) + intercept

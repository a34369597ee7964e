"""The one fit path shared by sknet's network estimators.

Public methods validate; subclasses implement small hooks:

* ``_encode_targets(y, first_pass, incremental, classes)`` -> 2-D float targets
* ``_output_setup()`` -> (output activation name, loss name)
* ``_validation_scorer(y_val_2d, sample_weight)`` -> score(P) for early stopping
* ``_validate_fit_data(X, y, reset)`` -> validated X, y

No weight arithmetic happens here: the network, optimizer, schedule, stopping
rule and loops all live in ``sknet._core``.
"""

import os
import threading
import warnings
from contextlib import contextmanager, nullcontext
from functools import partial

import numpy as np
import scipy.sparse as sp
from sklearn import get_config, set_config
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from ._core import (
    ACTIVATIONS,
    INITIALIZERS,
    History,
    Network,
    Schedule,
    StoppingRule,
    TrainConfig,
    Validation,
    feed_forward,
    fit_lbfgs,
    fit_stochastic,
    get_activation,
    get_loss,
    make_optimizer,
)
from ._progress import check_callbacks, make_reporter, wrap_callbacks
from ._sklearn_callbacks import CallbackSupportMixin, start_fit_task, with_callbacks
from ._transfer import apply_transfer, n_layers_to_copy, transfer_lr_scale
from ._validation import (
    InvalidParameterError,
    check_bool,
    check_int,
    check_option,
    check_per_layer,
    check_random_state_param,
    check_real,
    check_verbose,
)
from ._version import __version__
from .augment import _check_augment

NON_FINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed. Try scaling the data (for "
    "example with StandardScaler), lowering learning_rate_init, or setting "
    "clip_norm. The estimator keeps the last finite weights it had."
)

STOCHASTIC_SOLVERS = ("sgd", "adam")


@contextmanager
def restore_on_error(estimator):
    """Undo every attribute change if the block raises."""
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


def hidden_layer_list(hidden_layer_sizes):
    """``hidden_layer_sizes`` as a list of positive ints, or a clear error.

    The error classes are scikit-learn's: ``InvalidParameterError`` for a value
    that is neither a sequence nor an int >= 1, TypeError for a sequence that
    holds something other than integers, ValueError for one that holds a size
    below 1.
    """
    sizes = hidden_layer_sizes
    if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
        if isinstance(sizes, bool) or not isinstance(sizes, (int, np.integer)) \
                or sizes < 1:
            cls = TypeError if isinstance(sizes, bool) else InvalidParameterError
            raise cls("The 'hidden_layer_sizes' parameter must be a sequence of "
                      f"integers or an int >= 1; got {hidden_layer_sizes!r}.")
        sizes = [sizes]
    sizes = list(sizes)
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(
                f"hidden_layer_sizes must hold integers; got {hidden_layer_sizes!r}."
            )
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


# Activations that only make sense on an output layer: softmax couples the
# units, exp (Poisson) and step (the perceptron) have no useful gradient inside.
OUTPUT_ONLY_ACTIVATIONS = ("softmax", "exp", "step")


def check_hidden_activation(name, value):
    """A hidden layer's activation: a registered one that is not output-only."""
    hidden = sorted(a for a in ACTIVATIONS if a not in OUTPUT_ONLY_ACTIVATIONS)
    if isinstance(value, str) and value in OUTPUT_ONLY_ACTIVATIONS:
        raise ValueError(f"{name}={value!r} is an output activation and cannot be used "
                         f"in hidden layers; choose one of {hidden}.")
    check_option(name, value, hidden)


def dropout_kinds(activation_names):
    """The dropout after each hidden layer: alpha dropout keeps ``selu`` self-normalizing."""
    return ["alpha_dropout" if name == "selu" else "dropout" for name in activation_names]


def _compact_targets(Y, dtype):
    """Targets for training: 0/1 integer targets (one-hot classes) as uint8.

    A quarter of float32's memory (an eighth of float64's); the trainer
    converts each mini-batch to ``dtype`` as it gathers it. Any other targets
    are converted to ``dtype`` here.
    """
    Y = np.asarray(Y)
    if Y.dtype.kind in "biu" and Y.size and Y.min() >= 0 and Y.max() <= 1:
        return Y.astype(np.uint8, copy=False)
    return Y.astype(dtype, copy=False)


def _check_sample_weight_public(sample_weight, X, dtype):
    if sp.issparse(sample_weight):
        raise TypeError("sample_weight must be a 1-D array of one weight per sample, "
                        "not a sparse matrix.")
    sw = np.asarray(sample_weight)
    if np.iscomplexobj(sw):
        raise ValueError("Complex data not supported in sample_weight.")
    sw = sw.astype(np.float64, copy=False)
    if sw.ndim == 0:
        sw = np.full(X.shape[0], float(sw))
    if sw.ndim != 1 or sw.shape[0] != X.shape[0]:
        raise ValueError(
            f"sample_weight.shape == {sw.shape}, expected ({X.shape[0]},)!"
        )
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(sw < 0):
        raise ValueError("Negative values in data passed to sample_weight.")
    if X.shape[0] and not np.any(sw > 0):
        raise ValueError("Sample weights must contain at least one non-zero weight.")
    return sw.astype(dtype, copy=False)


# Below this many floating-point operations per mini-batch product, a second
# BLAS thread costs more than it saves (measured on 2 cores), and on a busy
# machine competing BLAS threads slow such products down a hundredfold.
SMALL_PRODUCT_FLOPS = 16e6


_THREADPOOLS = []  # one ThreadpoolController, made on first use (finding the
                   # loaded libraries reads files: milliseconds per fit)


def _threadpools():
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0]


def _scipy_own_blas(controller):
    """The BLAS library scipy's wheel brings along, when numpy has another one.

    Wheels of numpy and scipy each carry an OpenBLAS (in ``numpy.libs`` and
    ``scipy.libs``, or ``.dylibs`` inside each package); conda and system
    installs share one library. Returns its file, or None.
    """
    blas_libs = _blas_libraries(controller)
    own = [lib.filepath for lib in blas_libs if _in_package(lib.filepath, "scipy")]
    if len(own) == 1 and len(blas_libs) > 1:
        return own[0]
    return None


def _blas_libraries(controller):
    return [lib for lib in controller.lib_controllers if lib.user_api == "blas"]


def _in_package(path, package):
    parts = os.path.normpath(path).split(os.sep)
    return any(part in (package, package + ".libs") for part in parts)


def _blas_plan(single):
    """``(threads, fast_blas)`` for a fit.

    ``threads()`` makes the context manager that sets BLAS threads for the
    fit (see :func:`_one_blas_thread`). ``single``: one BLAS thread for
    everything (small products). Otherwise numpy's BLAS keeps its threads,
    and the loop's vector updates (and L-BFGS's own) may call scipy's BLAS
    (``fast_blas``) only where that cannot make two thread pools compete:
    scipy's own library held to one thread, or one library shared by both.
    """
    controller = _threadpools()
    blas = _blas_libraries(controller)
    if single:
        return partial(_one_blas_thread, blas), True
    own = _scipy_own_blas(controller)
    if own is not None:
        return partial(_one_blas_thread, [lib for lib in blas if lib.filepath == own]), True
    return nullcontext, len(blas) == 1  # shared by numpy and scipy


@contextmanager
def sklearn_config_kept():
    """Put scikit-learn's configuration back as the block found it.

    A Ctrl-C that lands inside one of scikit-learn's ``config_context`` blocks
    (those its scorers' parameter validation opens, each epoch's validation
    score among them) between its setting and its ``try`` leaves the block's
    settings in force, ``skip_parameter_validation`` among them; the fit
    swallows the interrupt, so nothing else would undo it (as the trainer
    puts numpy's error state back).
    """
    config = get_config()
    try:
        yield
    finally:
        set_config(**config)


_HOLDS_LOCK = threading.Lock()
_HOLDS = {}  # BLAS library file -> [fits holding it to one thread, threads before]


@contextmanager
def _one_blas_thread(libraries):
    """Hold each of the BLAS ``libraries`` to one thread while the block runs.

    Counted across threads: the first fit to hold a library saves its thread
    count, and the last one to let go puts it back, in whatever order fits
    that overlap (threaded searches, fits started from two threads) begin
    and end. (A plain threadpoolctl limit restores what it saw on entering,
    which may be another fit's limit.)
    """
    with _HOLDS_LOCK:
        for lib in libraries:
            hold = _HOLDS.setdefault(lib.filepath, [0, None])
            if hold[0] == 0:
                hold[1] = lib.num_threads
                lib.set_num_threads(1)
            hold[0] += 1
    try:
        yield
    finally:
        with _HOLDS_LOCK:
            for lib in libraries:
                hold = _HOLDS[lib.filepath]
                hold[0] -= 1
                if hold[0] == 0:
                    lib.set_num_threads(hold[1])
                    del _HOLDS[lib.filepath]


def _split_parts(network, X, batch_size, gathered):
    """Parts the compiled step splits a batch of ``X`` between (1: one thread).

    Dense networks whose step is compiled, on dense ``X`` whose batches are
    C-contiguous (``gathered``: copied row by row into a buffer, as shuffled
    batches are), split each batch between the threads OpenMP may use (see
    ``Network.split_parts``); each part then calls BLAS on one thread.
    """
    split = getattr(network, "split_parts", None)
    if split is None or sp.issparse(X) or not (gathered or X.flags.c_contiguous):
        return 1
    return split(batch_size)


def _threads_now(parts):
    """``threads_now()`` for the loop: ``parts``, or 1 while other fits overlap this one.

    Fits that run at the same time in this process (threaded searches) each
    hold BLAS to one thread (see :func:`_one_blas_thread`); their steps then
    run on one thread each instead of competing for the cores. The parts
    stay the same, and so does the result.
    """
    if parts <= 1:
        return None

    def threads_now():
        with _HOLDS_LOCK:
            overlapping = max((hold[0] for hold in _HOLDS.values()), default=1)
        return parts if overlapping <= 1 else 1

    return threads_now


def _print_lbfgs_iteration(history):
    print("Iteration %d, loss = %.8f" % (history.n_iter, history.loss_curve[-1]))


def available_memory_bytes():
    """Memory this process can still allocate, in bytes (None when unknown).

    ``MemAvailable`` from ``/proc/meminfo`` on Linux, else the physical memory.
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


# Parameter-sized arrays a fit holds at once: the parameters, their gradient and
# the epoch snapshot, plus the optimizer's state, its snapshot and the copy
# published as ``_optimizer_state`` (L-BFGS: scipy's float64 history of 10 pairs).
_PARAMETER_COPIES = {"sgd": 3 + 3 * 1, "adam": 3 + 3 + 2 * 2, "lbfgs": 3 + 2 * 10 + 5}
# Of those, the copies held in float64 whatever the training dtype: scipy's
# L-BFGS-B works on float64 vectors (its start point, gradients, history, workspace).
_FLOAT64_COPIES = {"sgd": 0, "adam": 0, "lbfgs": 2 * 10 + 5}


def estimate_fit_bytes(layer_units, batch_size, dtype, solver, early_stopping=False):
    """Bytes a fit allocates for a network: weights, gradients, optimizer, batch.

    Parameters
    ----------
    layer_units : list of int
        Widths from the input to the output.
    batch_size : int
        Rows of the buffers one forward/backward pass uses.
    dtype : numpy dtype
        The training dtype (scipy's L-BFGS-B keeps its vectors in float64 whatever it is).
    solver : {"sgd", "adam", "lbfgs"}
    early_stopping : bool, default=False
        Whether a copy of the best parameters is kept.

    Returns
    -------
    n_bytes : int
    """
    itemsize = np.dtype(dtype).itemsize
    units = [int(u) for u in layer_units]
    n_params = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    wide = _FLOAT64_COPIES[solver]
    copies = _PARAMETER_COPIES[solver] - wide + bool(early_stopping)
    per_row = 4 * sum(units[1:])  # activations, deltas, pre-activations, masks
    return itemsize * (copies * n_params + batch_size * per_row) + 8 * wide * n_params


def finite_output(compute, X):
    """``compute()``, the network's output for ``X``, or a ValueError that says why not.

    Input values so large that the network's sums overflow (values near the
    largest float) give no prediction: the error names the cause and the
    fix, where a warning and NaN or infinite outputs would pass on silently.
    """
    try:
        with np.errstate(over="raise", invalid="raise"):
            out = compute()
    except FloatingPointError:
        out = None
    if out is None or not np.all(np.isfinite(out)):
        data = np.abs(X.data if sp.issparse(X) else np.asarray(X))
        largest = float(np.max(data, initial=0.0, where=~np.isnan(data)))  # NaN: padding
        raise ValueError(
            "The model's output overflows on this input: X holds values up to "
            f"{largest:.3g} in magnitude, too large for the fitted weights, so "
            "there is no finite prediction. Scale X the way the training data "
            "were scaled (for example with a StandardScaler in a Pipeline).")
    return out


class VersionStamped:
    """Stamps sknet's version in the pickled state; warns when it differs on load.

    ``__setstate__`` only compares two strings: no I/O, import or eval.
    """

    def __getstate__(self):
        state = dict(super().__getstate__())  # it may be the live __dict__
        state["_sknet_version"] = __version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_sknet_version", "unknown (before 0.1.0)")
        if saved != __version__:
            warnings.warn(
                f"This {type(self).__name__} was saved with sknet {saved} and is "
                f"loaded with sknet {__version__}: it may fail or predict "
                "differently. Refit it, or load it with the sknet that saved it.",
                UserWarning)
        super().__setstate__(state)


class BaseNetworkEstimator(VersionStamped, CallbackSupportMixin, BaseEstimator):
    """Shared parameter checks, fit path and prediction for sknet networks.

    With scikit-learn >= 1.9, ``set_callbacks`` (scikit-learn's callback API,
    see :mod:`sknet._sklearn_callbacks`) as well as sknet's ``callbacks``.
    """

    # ------------------------------------------------------------------ #
    # parameters                                                           #
    # ------------------------------------------------------------------ #
    def _check_params(self):
        hidden = hidden_layer_list(self.hidden_layer_sizes)
        n_configurable = self._n_configurable_layers(hidden)
        check_option("solver", self.solver, ("lbfgs", "sgd", "adam"))
        check_per_layer("activation", self.activation, n_configurable,
                        check_hidden_activation)
        check_real("alpha", self.alpha, 0, None, "left")
        check_real("l1", self.l1, 0, None, "left")
        if self.batch_size != "auto":
            check_int("batch_size", self.batch_size, 1)
        check_option("learning_rate", self.learning_rate,
                     ("constant", "invscaling", "adaptive", "exponential"))
        check_real("learning_rate_init", self.learning_rate_init, 0, None, "neither")
        check_real("power_t", self.power_t, 0, None, "left")
        check_real("decay_rate", self.decay_rate, 0, 1, "right")
        check_int("max_iter", self.max_iter, 1)
        check_bool("shuffle", self.shuffle)
        check_real("tol", self.tol, 0, None, "left")
        check_bool("warm_start", self.warm_start)
        check_real("momentum", self.momentum, 0, 1, "both")
        check_bool("nesterovs_momentum", self.nesterovs_momentum)
        check_bool("early_stopping", self.early_stopping)
        check_real("validation_fraction", self.validation_fraction, 0, 1, "left")
        check_real("beta_1", self.beta_1, 0, 1, "left")
        check_real("beta_2", self.beta_2, 0, 1, "left")
        check_real("epsilon", self.epsilon, 0, None, "neither")
        check_int("n_iter_no_change", self.n_iter_no_change, 1, allow_inf=True)
        check_int("max_fun", self.max_fun, 1)
        check_verbose("verbose", self.verbose)
        check_random_state_param("random_state", self.random_state)
        check_per_layer("dropout", self.dropout, n_configurable,
                        lambda n, v: check_real(n, v, 0, 1, "left"))
        check_real("clip_norm", self.clip_norm, 0, None, "neither", allow_none=True)
        check_option("weight_init", self.weight_init, INITIALIZERS)
        check_real("leaky_relu_slope", self.leaky_relu_slope, 0, None, "neither")
        check_real("elu_alpha", self.elu_alpha, 0, None, "neither")
        self._check_transfer_params()
        check_callbacks(getattr(self, "callbacks", None))
        if self.solver == "lbfgs":
            if any(p > 0 for p in self._dropout_list(n_configurable)):
                raise ValueError("dropout needs a stochastic solver ('sgd' or "
                                 "'adam'); it cannot be used with solver='lbfgs'.")
            if self.clip_norm is not None:
                raise ValueError("clip_norm needs a stochastic solver ('sgd' or "
                                 "'adam'); it cannot be used with solver='lbfgs'.")
        return hidden

    def _n_configurable_layers(self, hidden):
        """How many entries a per-layer ``activation`` or ``dropout`` takes."""
        return len(hidden)

    def _training_augment(self):
        """``augment(X_batch, rng) -> X_batch`` for training batches, or None."""
        return getattr(self, "augment", None)

    def _n_transferable_layers(self):
        """How many of this fitted network's first layers another may copy."""
        return len(self.coefs_) - 1

    def _largest_product_flops(self, X, batch_size):
        """Floating-point operations of the largest matrix product of a mini-batch step."""
        units = self._planned_units(hidden_layer_list(self.hidden_layer_sizes), X.shape[1],
                                    self.n_outputs_)
        return max(2 * batch_size * a * b for a, b in zip(units[:-1], units[1:]))

    def _transferable_layer(self, i):
        """The arrays of fitted layer ``i``, in the order ``layer_arrays`` lists them."""
        return self.coefs_[i], self.intercepts_[i]

    def _check_transfer_params(self):
        if getattr(self, "augment", None) is not None:
            _check_augment(self.augment)
            if self.solver == "lbfgs":
                raise ValueError("augment transforms mini-batches and needs a "
                                 "stochastic solver ('sgd' or 'adam'); it cannot be "
                                 "used with solver='lbfgs'.")
        if not hasattr(self, "transfer_from"):
            return
        # checked with or without a source, as scikit-learn checks every parameter
        check_int("n_transfer_layers", self.n_transfer_layers, 1, allow_none=True)
        check_bool("freeze_transferred", self.freeze_transferred)
        check_real("transfer_lr_factor", self.transfer_lr_factor, 0, None, "left")

    def _setup_transfer(self, network, first):
        """Copy (fresh fit only) and freeze the layers of ``transfer_from``.

        Returns the number of transferred layers (0 without a source).
        """
        source = getattr(self, "transfer_from", None)
        if source is None:
            return 0
        n = n_layers_to_copy(source, self.n_transfer_layers, network.n_layers - 1)
        if first:
            apply_transfer(network, source, n, self)
        if self.freeze_transferred:
            network.n_frozen = n
        return n

    def _dropout_list(self, n_hidden):
        d = self.dropout
        if isinstance(d, str) or not hasattr(d, "__len__"):
            return [float(d)] * n_hidden
        return [float(v) for v in d]

    def _hidden_activation_names(self, n_hidden):
        a = self.activation
        return [a] * n_hidden if isinstance(a, str) else list(a)

    def _activation(self, name):
        return get_activation(name, negative_slope=self.leaky_relu_slope,
                              alpha=self.elu_alpha)

    # ------------------------------------------------------------------ #
    # the fit path                                                         #
    # ------------------------------------------------------------------ #
    def _is_first_pass(self, incremental):
        return not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

    @with_callbacks
    def _fit(self, X, y, sample_weight=None, *, incremental=False, X_val=None,
             y_val=None, sample_weight_val=None, classes=None):
        hidden = self._check_params()
        # scikit-learn's callbacks: set up before the state restore_on_error
        # saves, so that their teardown still runs when the fit fails
        task = start_fit_task(self, X, y, sample_weight,
                              max_epochs=1 if incremental else self.max_iter)
        fitted_before = hasattr(self, "coefs_")
        with restore_on_error(self), sklearn_config_kept():
            prepared = self._prepare_fit(hidden, X, y, sample_weight, incremental,
                                         X_val, y_val, sample_weight_val, classes)
            status = self._train(*prepared, incremental=incremental, task=task)
            if status == "diverged" and fitted_before:
                # the model fitted before this call stays exactly as it was
                task.end(fitted=False)
                raise ValueError(NON_FINITE_MESSAGE)
        task.end(fitted=status != "diverged")
        if status == "diverged":  # a first fit keeps its last finite weights
            raise ValueError(NON_FINITE_MESSAGE)
        return self

    def _prepare_fit(self, hidden, X, y, sample_weight, incremental, X_val, y_val,
                     sample_weight_val, classes):
        if incremental and self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = self._is_first_pass(incremental)
        X, y = self._validate_fit_data(X, y, reset=first)
        if not first:
            X = X.astype(self.coefs_[0].dtype, copy=False)
        Y = _compact_targets(self._encode_targets(y, first, incremental, classes),
                             X.dtype)
        sw = None if sample_weight is None else \
            _check_sample_weight_public(sample_weight, X, X.dtype)
        val = None
        if X_val is not None or y_val is not None:
            val = self._user_validation(X_val, y_val, sample_weight_val, X.dtype)
        rng = check_random_state(self.random_state)
        n_features = X.shape[-1]  # sequences (n_samples, n_steps, n_features) too
        self._check_memory(hidden, X, Y.shape[1])
        network = self._build_network(hidden, n_features, Y.shape[1], X.dtype,
                                      first, rng)
        if sp.issparse(X):
            X = X.tocsr()
        return X, Y, sw, val, network, rng

    def _planned_units(self, hidden, n_features, n_outputs):
        """Widths of the layers a fit builds (a subclass with another layout overrides)."""
        return [n_features, *hidden, n_outputs]

    def _fit_bytes(self, hidden, X, n_outputs, batch):
        """Bytes a fit on ``X`` allocates (see :func:`estimate_fit_bytes`)."""
        units = self._planned_units(hidden, X.shape[-1], n_outputs)
        return units, estimate_fit_bytes(units, batch, X.dtype, self.solver,
                                         self.early_stopping)

    def _check_memory(self, hidden, X, n_outputs):
        """Refuse, before allocating, a network that cannot fit in memory."""
        n_samples, dtype = X.shape[0], X.dtype
        if self.solver == "lbfgs":
            batch = n_samples
        elif self.batch_size == "auto":
            batch = self._batch_size(n_samples)  # each estimator's own default
        else:
            batch = max(1, min(self.batch_size, n_samples))
        units, need = self._fit_bytes(hidden, X, n_outputs, batch)
        available = available_memory_bytes()
        if available is not None and need > available:
            raise MemoryError(
                f"Training this network needs about {need / 2**30:.1f} GiB "
                f"(layer widths {units} from hidden_layer_sizes="
                f"{self.hidden_layer_sizes!r}, batches of {batch} rows, "
                f"{np.dtype(dtype).name}), but only {available / 2**30:.1f} GiB of "
                "memory is available. Use smaller hidden_layer_sizes, a smaller "
                "batch_size, or float32 data.")

    def _build_network(self, hidden, n_features, n_outputs, dtype, first, rng):
        out_name, loss_name = self._output_setup(n_outputs)
        units = [n_features] + hidden + [n_outputs]
        names = self._hidden_activation_names(len(hidden))
        acts = [self._activation(a) for a in names] + [get_activation(out_name)]
        network = Network(units, acts, dtype=dtype,
                          dropout=self._dropout_list(len(hidden)),
                          dropout_kind=dropout_kinds(names))
        if first:
            init_names = names + [names[-1] if names else self.activation]
            if isinstance(self.activation, str):
                init_names = [self.activation] * len(acts)
            network.initialize(self.weight_init, rng, init_names)
            self._reset_training_state(n_outputs, out_name)
        else:
            self._check_warm_layout(
                {"hidden_layer_sizes": tuple(np.shape(W)[1] for W in self.coefs_[:-1])},
                {"hidden_layer_sizes": tuple(hidden)})
            network.set_weights(self.coefs_, self.intercepts_)
        self._n_transferred = self._setup_transfer(network, first)
        self._loss_name = loss_name
        return network

    @staticmethod
    def _check_warm_layout(fitted, current):
        """Refuse to go on training a fitted network the parameters no longer describe.

        ``fitted`` and ``current`` map the parameters that shape the weights to
        their values in the fitted network and in the current parameters.
        """
        if fitted != current:
            def show(layout):
                return ", ".join(f"{name}={value!r}" for name, value in layout.items())
            raise ValueError(
                f"warm_start and partial_fit continue the fitted network ({show(fitted)}), "
                f"but the current parameters give {show(current)}. Set them back or fit "
                "from scratch.")

    def _reset_training_state(self, n_outputs, out_name):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(hidden_layer_list(self.hidden_layer_sizes)) + 2
        self.out_activation_ = out_name
        for attr in ("_optimizer_state", "_learning_rate", "_no_improvement_count"):
            self.__dict__.pop(attr, None)
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
            self.validation_loss_curve_ = [] if self.early_stopping else None

    def _train(self, X, Y, sw, val, network, rng, *, incremental, task):
        loss = self._reported_loss(get_loss(self._loss_name), Y.shape[1])
        if self.solver == "lbfgs":
            return self._train_lbfgs(network, loss, X, Y.astype(X.dtype, copy=False),
                                     sw, val, task)
        if self.early_stopping and val is None:
            X, Y, sw, val = self._split_validation(X, Y, sw, rng)
        return self._train_stochastic(network, loss, X, Y, sw, val, rng, incremental,
                                      task)

    def _reported_loss(self, loss, n_outputs):
        """The loss the fit reports and its stopping rule watches (``loss`` itself
        here; see :func:`sknet._core.losses.with_data_scale`)."""
        return loss

    def _epoch_callbacks(self, network, task):
        """What the trainer calls after every epoch: ``callbacks``, then scikit-learn's.

        Publishes the network first: callbacks may look at (and predict with)
        the model, whose weights are then views of the network's.
        """
        self._publish(network)
        return wrap_callbacks(self, getattr(self, "callbacks", None)) + task.start_epochs()

    def _train_lbfgs(self, network, loss, X, Y, sw, val, task):
        callbacks = self._epoch_callbacks(network, task)
        if self.verbose:
            callbacks = (_print_lbfgs_iteration,) + callbacks
        history = History() if val is None else \
            History(validation_scores=[], validation_losses=[])
        # the same BLAS thread rule as the stochastic solvers, for one full batch
        parts = _split_parts(network, X, X.shape[0], gathered=False)
        blas_threads, fast_blas = _blas_plan(
            parts > 1 or self._largest_product_flops(X, X.shape[0]) < SMALL_PRODUCT_FLOPS)
        with blas_threads():
            result = fit_lbfgs(network, loss, X, Y, sw, alpha=self.alpha, l1=self.l1,
                               max_iter=self.max_iter, max_fun=self.max_fun,
                               tol=self.tol, callbacks=callbacks, history=history,
                               validation=val, fast_blas=fast_blas, threads=parts,
                               threads_now=_threads_now(parts))
        stopped_by_callback = result.status == 99  # scipy's code for StopIteration
        if result.status != 0 and not (stopped_by_callback or result.interrupted
                                       or result.diverged):
            warnings.warn(
                "lbfgs failed to converge after %d iteration(s) (status=%d):\n%s\n"
                "Increase the number of iterations to improve the convergence "
                "(max_iter=%d)." % (result.nit, result.status, result.message,
                                    self.max_iter),
                ConvergenceWarning,
            )
        self._publish_lbfgs(network, result, history)
        return "diverged" if result.diverged else "done"

    def _publish_lbfgs(self, network, result, history):
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)
        if history.validation_scores is not None:
            self.validation_scores_ = history.validation_scores
            self.validation_loss_curve_ = history.validation_losses
        self._publish(network)

    def _split_validation(self, X, Y, sw, rng):
        # As scikit-learn: stratify on the encoded targets when there is one
        # output column (binary classification), so the split is the same.
        stratify = Y.astype(bool) if self._stratify_split() else None
        self._check_validation_size(X.shape[0], stratify)
        arrays = [X, Y] + ([sw] if sw is not None else [])
        parts = train_test_split(*arrays, random_state=rng,
                                 test_size=self.validation_fraction,
                                 stratify=stratify)
        X_tr, X_va, Y_tr, Y_va = parts[:4]
        sw_tr, sw_va = (parts[4], parts[5]) if sw is not None else (None, None)
        if X_va.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        Y_va = Y_va.astype(X.dtype, copy=False)
        val = Validation(X_va, Y_va, sw_va, self._validation_scorer(Y_va, sw_va))
        return X_tr, Y_tr, sw_tr, val

    def _check_validation_size(self, n_samples, stratify):
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        need = 2 if stratify is None else max(2, len(np.unique(stratify, axis=0)))
        if n_val < need:
            raise ValueError(
                f"The validation set is too small: validation_fraction="
                f"{self.validation_fraction} of {n_samples} samples gives {n_val}, "
                f"need at least {need}. Increase 'validation_fraction' or the size "
                "of your dataset.")

    def _user_validation(self, X_val, y_val, sw_val, dtype):
        if X_val is None or y_val is None:
            raise ValueError("Pass both X_val and y_val, or neither.")
        try:
            X_val, y_val = self._validate_fit_data(X_val, y_val, reset=False)
        except ValueError as exc:  # the checks speak of X and y: name the validation set
            msg = str(exc)
            msg = "X_val" + msg[1:] if msg.startswith("X has ") else f"X_val, y_val: {msg}"
            raise ValueError(msg) from None
        if self.early_stopping and self.solver in STOCHASTIC_SOLVERS:
            self._check_scorable_validation(X_val, y_val)
        X_val = X_val.astype(dtype, copy=False)
        Y_val = self._encode_validation_targets(y_val).astype(dtype, copy=False)
        if sw_val is not None:
            sw_val = _check_sample_weight_public(sw_val, X_val, dtype)
        if sp.issparse(X_val):
            X_val = X_val.tocsr()
        return Validation(X_val, Y_val, sw_val, self._validation_scorer(Y_val, sw_val))

    def _check_scorable_validation(self, X_val, y_val):
        """Refuse, before training, a validation set early stopping cannot score."""
        if X_val.shape[0] < 2:
            raise ValueError(
                f"The validation set X_val has {X_val.shape[0]} sample; early "
                "stopping needs at least 2 to score the model on. Pass a larger "
                "validation set.")

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                          "It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _schedule(self):
        name = self.learning_rate
        if self.solver == "adam" and name != "exponential":
            name = "constant"  # as scikit-learn: adam ignores the sgd schedules
        lr = getattr(self, "_learning_rate", None)
        return Schedule(name, self.learning_rate_init, self.power_t,
                        self.decay_rate, lr=lr)

    def _train_stochastic(self, network, loss, X, Y, sw, val, rng, incremental, task):
        batch_size = self._batch_size(X.shape[0])
        parts = _split_parts(network, X, batch_size, gathered=self.shuffle)
        blas_threads, fast_blas = _blas_plan(
            parts > 1 or self._largest_product_flops(X, batch_size) < SMALL_PRODUCT_FLOPS)
        optimizer = make_optimizer(
            self.solver, network.params.size, network.dtype,
            momentum=self.momentum, nesterov=self.nesterovs_momentum,
            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        state = getattr(self, "_optimizer_state", None)
        if state is not None and set(state) != set(optimizer.state()):
            state = None  # the solver changed since: its optimizer starts afresh
        if incremental and state is not None:
            optimizer.set_state(state)
        elif self.learning_rate != "exponential":
            # as scikit-learn: a warm start begins a new optimizer and rate; the
            # exponential decay goes on, as invscaling does through ``t_``
            self.__dict__.pop("_learning_rate", None)
        schedule = self._schedule()
        history = self._history(val)
        stopping = StoppingRule(
            self.tol, self.n_iter_no_change, on_validation=self.early_stopping,
            best_loss=getattr(self, "best_loss_", None),
            best_score=getattr(self, "best_validation_score_", None),
            count=getattr(self, "_no_improvement_count", 0))
        callbacks = self._epoch_callbacks(network, task)
        reporter = make_reporter(self.verbose, 1 if incremental else self.max_iter)
        if reporter is not None:
            callbacks = (reporter,) + callbacks
        config = TrainConfig(
            callbacks=callbacks,
            max_iter=self.max_iter, batch_size=batch_size, fast_blas=fast_blas,
            threads=parts, threads_now=_threads_now(parts),
            shuffle=self.shuffle, alpha=self.alpha, l1=self.l1,
            clip_norm=self.clip_norm, verbose=self.verbose, one_epoch=incremental,
            restore_best=self.early_stopping, augment=self._training_augment(),
            lr_scale=self._lr_scale(network))
        dropout_rng = np.random.default_rng(rng.randint(2**31)) \
            if network.uses_rng or config.augment is not None else None
        try:
            with blas_threads():
                status = fit_stochastic(network, loss, optimizer, schedule, stopping,
                                        X, Y, sw, config=config, history=history,
                                        rng=rng, dropout_rng=dropout_rng,
                                        validation=val)
        finally:
            if reporter is not None:
                reporter.close()
        self._publish_stochastic(network, optimizer, schedule, stopping, history)
        if status == "diverged_kept_best":
            warnings.warn(
                "Training diverged at epoch %d (a non-finite loss); the weights of "
                "the best validation epoch are kept. Try scaling the data or "
                "lowering learning_rate_init." % self.n_iter_, ConvergenceWarning)
        if status == "max_iter":
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                "optimization hasn't converged yet." % self.max_iter,
                ConvergenceWarning)
        if (config.restore_best and val is not None and history.n_iter
                and status != "diverged" and stopping.best_score == -np.inf):
            warnings.warn(
                "Early stopping scored no epoch above -inf: the predictions on the "
                "validation data, or their score, were not finite (NaN or an overflow) "
                "in every epoch, so the fit keeps the weights it started from. Scale "
                "the validation data as the training data.", ConvergenceWarning)
        return status

    def _lr_scale(self, network):
        if not self._n_transferred or self.freeze_transferred:
            return None
        return transfer_lr_scale(network, self._n_transferred, self.transfer_lr_factor)

    def _history(self, val):
        scores = getattr(self, "validation_scores_", None)
        losses = getattr(self, "validation_loss_curve_", None)
        if val is not None and scores is None:
            scores, losses = [], []
        return History(loss_curve=list(getattr(self, "loss_curve_", [])),
                       validation_scores=None if scores is None else list(scores),
                       validation_losses=None if losses is None else list(losses),
                       t=self.t_)

    def _publish_stochastic(self, network, optimizer, schedule, stopping, history):
        self.loss_curve_ = history.loss_curve
        self.validation_scores_ = history.validation_scores
        self.validation_loss_curve_ = history.validation_losses
        self.n_iter_ = history.n_iter
        self.t_ = history.t
        if history.n_iter:
            self.loss_ = history.loss_curve[-1]
        if self.early_stopping:
            self.best_validation_score_ = stopping.best_score
        else:
            self.best_loss_ = stopping.best_loss
        self._no_improvement_count = stopping.count
        self._optimizer_state = optimizer.state()
        self._learning_rate = schedule.lr
        self._publish(network)

    def _publish(self, network):
        self.coefs_ = network.coefs
        self.intercepts_ = network.intercepts

    # ------------------------------------------------------------------ #
    # prediction                                                           #
    # ------------------------------------------------------------------ #
    def _forward(self, X, output_activation=True):
        """The network's output for validated ``X`` (allocates per call).

        With ``output_activation=False``, the output layer's pre-activation.
        """
        n_hidden = len(self.coefs_) - 1
        out = self.out_activation_ if output_activation else "identity"
        names = self._hidden_activation_names(n_hidden) + [out]
        acts = [self._activation(name) for name in names]
        return finite_output(
            lambda: feed_forward(X, self.coefs_, self.intercepts_, acts), X)

    def _validated_forward(self, X, output_activation=True):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"],
                          dtype=(np.float64, np.float32), reset=False)
        return self._forward(X, output_activation)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

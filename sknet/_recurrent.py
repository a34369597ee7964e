"""RecurrentClassifier and RecurrentRegressor: sequences in, one label or value out.

Both estimators take the MLPs' fit path (``sknet._base``) with a recurrent
network (:class:`sknet._core.recurrent.RecurrentNetwork`) in place of the
dense stack, and the MLPs' target handling (:class:`~sknet._mlp.ClassifierHead`,
:class:`~sknet._mlp.RegressorHead`). What is theirs is the input: sequences,
read here into one float array ``(n_samples, n_steps, n_features)`` whose
trailing steps are NaN where a sequence is shorter than the longest.
"""

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from ._base import (
    _FLOAT64_COPIES,
    _PARAMETER_COPIES,
    BaseNetworkEstimator,
    _blas_plan,
    dropout_kinds,
    finite_output,
    hidden_layer_list,
)
from ._core import get_activation, get_loss
from ._core.recurrent import CELLS as _CELLS
from ._core.recurrent import RecurrentNetwork
from ._docs import SHARED_ATTRIBUTES, SHARED_PARAMETERS, entries
from ._mlp import ClassifierHead, RegressorHead, _check_stochastic_solver
from ._validation import check_bool, check_option, check_real

__all__ = ["RecurrentClassifier", "RecurrentRegressor", "as_sequences"]

CELLS = tuple(_CELLS)


# ---------------------------------------------------------------------- #
# sequences                                                                #
# ---------------------------------------------------------------------- #
def _ragged(X):
    """The sequences of ``X`` as a list of arrays when their shapes differ, else None."""
    if not isinstance(X, (list, tuple)) or not X:
        return None
    seqs = [np.asarray(s) for s in X]
    if any(s.ndim == 0 for s in seqs) or len({s.shape for s in seqs}) == 1:
        return None  # a regular array: numpy reads it whole
    return seqs


def _pad(seqs):
    """Sequences of unequal length as one NaN-padded ``(n, max_steps, n_features)`` array."""
    seqs = [s.reshape(-1, 1) if s.ndim == 1 else s for s in seqs]
    if any(s.ndim != 2 for s in seqs):
        raise ValueError("Each sequence must be a 2-D array (n_timesteps, n_features) or "
                         "a 1-D array (n_timesteps,) of a univariate sequence.")
    widths = {s.shape[1] for s in seqs}
    if len(widths) > 1:
        raise ValueError(f"All sequences must have the same number of features; got "
                         f"{sorted(widths)}.")
    empty = [i for i, s in enumerate(seqs) if s.shape[0] == 0]
    if empty:
        raise ValueError(f"Sequence {empty[0]} is empty: every sequence needs at least "
                         "one time step.")
    dtype = np.result_type(np.float64 if all(s.dtype != np.float32 for s in seqs)
                           else np.float32)
    out = np.full((len(seqs), max(s.shape[0] for s in seqs), widths.pop()), np.nan, dtype)
    for i, s in enumerate(seqs):
        out[i, :s.shape[0]] = check_array(s, dtype=(np.float64, np.float32),
                                          input_name=f"sequence {i}")
    return out


def _check_padding(X):
    """Refuse NaN anywhere but whole trailing steps; drop the steps every sequence pads."""
    if np.isinf(X).any():
        raise ValueError("Input X contains infinity or a value too large for "
                         f"{X.dtype!r}.")
    nan = np.isnan(X)
    if not nan.any():
        return X
    step = nan.any(axis=2)
    if np.any(step != nan.all(axis=2)):
        raise ValueError("Input X contains NaN in some features of a time step but not "
                         "all: NaN may only pad whole steps at the end of a sequence.")
    if np.any(step[:, :-1] & ~step[:, 1:]):
        raise ValueError("Input X contains NaN before a real time step: NaN may only pad "
                         "whole steps at the end of a sequence.")
    if step[:, 0].any():
        raise ValueError(f"Sequence {int(np.argmax(step[:, 0]))} is empty (all NaN): every "
                         "sequence needs at least one time step.")
    return X[:, :int(np.max(np.sum(~step, axis=1)))]


def as_sequences(X):
    """Read sequences into one NaN-padded array ``(n_samples, n_steps, n_features)``.

    Parameters
    ----------
    X : array-like or list of array-like
        A 3-D array ``(n_samples, n_timesteps, n_features)``, possibly padded
        at the end with NaN; a 2-D array ``(n_samples, n_timesteps)`` of
        univariate sequences of equal length (no NaN: in a 2-D array it would
        be a missing value, as everywhere in scikit-learn); or a list (or a
        1-D object array, or a pandas Series) of 2-D arrays
        ``(n_timesteps_i, n_features)`` (or 1-D arrays) of unequal lengths.

    Returns
    -------
    X : ndarray of shape (n_samples, n_steps, n_features)
        float64, or float32 when the input is float32. ``n_steps`` is the
        longest sequence's length.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet import as_sequences
    >>> as_sequences([np.ones((2, 1)), np.ones((3, 1))])[:, :, 0]
    array([[ 1.,  1., nan],
           [ 1.,  1.,  1.]])
    """
    if sp.issparse(X):
        raise TypeError("Sequences cannot be sparse: pass a dense 2-D or 3-D array "
                        "or a list of 2-D arrays.")
    if isinstance(X, Iterator):
        raise TypeError(f"Sequences must be an array or a list of arrays, not an iterator "
                        f"({type(X).__name__}): pass list(X).")
    if getattr(getattr(X, "dtype", None), "kind", None) == "O" and getattr(X, "ndim", 0) == 1:
        X = list(X)  # an object array (or Series) holding one sequence per sample
    seqs = _ragged(X)
    if seqs is not None:
        X = _pad(seqs)
    X = check_array(X, dtype=(np.float64, np.float32), allow_nd=True,
                    ensure_all_finite=False, input_name="X")
    if X.ndim == 2:  # columns are time steps, and NaN would be a missing value
        X = check_array(X, dtype=None, input_name="X")[:, :, None]
    if X.ndim != 3:
        raise ValueError(f"Sequences must be a 2-D or 3-D array or a list of 2-D arrays; "
                         f"got an array of {X.ndim} dimensions.")
    if X.shape[0] and not X.shape[1]:
        raise ValueError(f"X has 0 time steps (shape {X.shape}): every sequence needs at "
                         "least one time step.")
    return _check_padding(X)


def estimate_recurrent_fit_bytes(n_features, hidden, n_outputs, cell, bidirectional,
                                 n_steps, batch_size, dtype, solver, early_stopping=False):
    """Bytes a recurrent fit allocates: parameter copies, and per-step buffers.

    Each layer and direction keeps, per sequence and time step, its gates'
    input projections, their activations and gradients (``3 * gates * H``)
    and its states and their gradients (``4 * H``); the batch itself is
    copied once. See :func:`sknet._base.estimate_fit_bytes` for the
    parameter copies each solver holds.
    """
    gates, dirs = _CELLS[cell].n_gates, 2 if bidirectional else 1
    widths = [n_features] + [h * dirs for h in hidden]
    n_params = sum(dirs * gates * h * (n_in + h + 2) for n_in, h in zip(widths, hidden))
    n_params += (widths[-1] + 1) * n_outputs
    per_step = n_features + sum(dirs * (3 * gates * h + 4 * h) for h in hidden)
    wide = _FLOAT64_COPIES[solver]  # scipy's L-BFGS-B vectors, float64 whatever dtype is
    copies = _PARAMETER_COPIES[solver] - wide + bool(early_stopping)
    rows = batch_size * n_steps * per_step + batch_size * 2 * (widths[-1] + n_outputs)
    return np.dtype(dtype).itemsize * (copies * n_params + rows) + 8 * wide * n_params


# ---------------------------------------------------------------------- #
# docs                                                                     #
# ---------------------------------------------------------------------- #
_OWN_PARAMETERS = """\
    hidden_layer_sizes : array-like of shape (n_recurrent_layers,), default=(100,)
        Width of each recurrent layer (per direction), from the input up.

    cell : {'lstm', 'gru', 'rnn'}, default='lstm'
        The recurrent cell: LSTM (input, forget, cell and output gates), GRU
        in PyTorch's formulation (the reset gate multiplies ``W_hn h + b_hn``)
        or the simple (Elman) RNN.

    activation : str or list of str, default='tanh'
        The simple RNN's nonlinearity, one for all layers or one per layer:
        any elementwise activation ('tanh', 'relu', 'logistic', ..., or one
        registered with :func:`sknet.register_activation`). LSTM and GRU
        cells have their own (logistic gates, tanh) and take only 'tanh'.

    bidirectional : bool, default=False
        Run each layer over the sequence both ways and join the two states;
        the backward direction reads each sequence from its last real step.

    forget_bias : float or None, default=1.0
        Initial bias of the LSTM's forget gate (in ``bias_ih``; ``bias_hh``'s
        forget block starts at 0). 1 lets gradients flow through long
        sequences from the start (Jozefowicz et al., 2015); None keeps the
        initializer's draw. Ignored by other cells.
"""

_CHANGED_PARAMETERS = """\
    learning_rate_init : float, default=0.01
        The initial learning rate ('sgd' and 'adam'). Ten times the MLPs':
        a recurrent network shares its weights across time steps, and with
        Adam it trains in a fraction of the epochs at this rate (on the
        digits read as 8 steps, about 55 epochs against 200).

    dropout : float or list of float, default=0.0
        Dropout rate after each recurrent layer, one for all or one per
        layer: on the whole output sequence between layers, on the sequence's
        final state before the output layer; each in [0, 1). Inverted dropout
        (alpha dropout after a 'selu' RNN layer), active during training
        only. Needs a stochastic solver.

    weight_init : str, default='sklearn'
        'sklearn' draws the recurrent layers as PyTorch does,
        ``U(-1/sqrt(H), 1/sqrt(H))`` for every weight and bias, and the
        output layer as scikit-learn's MLP. Any other name
        ('glorot_uniform', 'he_normal', ...; 'auto' picks by activation)
        draws every gate's input and recurrent matrix with that scheme and
        zero biases.

    transfer_from : estimator, default=None
        A fitted sknet ``RecurrentClassifier`` or ``RecurrentRegressor``
        whose first recurrent layers start this network (same cell, widths
        and directions). Wrap it in :class:`sklearn.frozen.FrozenEstimator`
        to keep it through ``clone`` and ``GridSearchCV``.

    n_transfer_layers : int, default=None
        How many recurrent layers to copy; None copies all of them. The
        output layer is never copied.
"""

_TRAINING_PARAMETERS = (
    "solver", "alpha", "batch_size", "learning_rate", "learning_rate_init",
    "power_t", "max_iter", "shuffle", "random_state", "tol", "verbose",
    "warm_start", "momentum", "nesterovs_momentum", "early_stopping",
    "validation_fraction", "beta_1", "beta_2", "epsilon", "n_iter_no_change",
    "max_fun", "dropout", "l1", "weight_init", "decay_rate", "clip_norm",
    "leaky_relu_slope", "elu_alpha", "transfer_from", "n_transfer_layers",
    "freeze_transferred", "transfer_lr_factor", "callbacks",
)

_OWN_ATTRIBUTES = """\
    recurrent_weights_ : list of dict
        One dict per recurrent layer, named and shaped as PyTorch's
        ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` state dict without the layer
        suffix: ``weight_ih`` (gates * H, n_inputs), ``weight_hh``
        (gates * H, H), ``bias_ih``, ``bias_hh``, and the same with
        ``_reverse`` when bidirectional. Gates are stacked in PyTorch's order
        (LSTM i, f, g, o; GRU r, z, n). These are the model, with ``coefs_``
        and ``intercepts_``.

    coefs_ : list of ndarray of shape (H * n_directions, n_outputs)
        The output layer's weight matrix (one entry).

    intercepts_ : list of ndarray of shape (n_outputs,)
        The output layer's bias.

    n_features_in_ : int
        Number of features per time step; for 2-D input (univariate
        sequences), the number of time steps, as scikit-learn counts columns.

    n_step_features_ : int
        Number of features per time step.

    n_layers_ : int
        Number of layers, input and output included.
"""


def _parameter_docs():
    shared = {**entries(SHARED_PARAMETERS), **entries(_CHANGED_PARAMETERS)}
    return (_OWN_PARAMETERS + "\n"
            + "\n\n".join(shared[name] for name in _TRAINING_PARAMETERS) + "\n")


def _attribute_docs():
    merged = {**entries(SHARED_ATTRIBUTES), **entries(_OWN_ATTRIBUTES)}
    return "\n\n".join(merged.values()) + "\n"




# ---------------------------------------------------------------------- #
# the shared base                                                          #
# ---------------------------------------------------------------------- #
class _RecurrentBase(BaseNetworkEstimator):
    """Sequence input, the recurrent network and its fitted attributes."""

    # -- parameters ----------------------------------------------------- #
    def _check_params(self):
        hidden = super()._check_params()
        check_option("cell", self.cell, CELLS)
        check_bool("bidirectional", self.bidirectional)
        check_real("forget_bias", self.forget_bias, allow_none=True)
        names = self._hidden_activation_names(len(hidden))
        if self.cell != "rnn" and any(name != "tanh" for name in names):
            raise ValueError(
                f"activation sets the simple RNN's nonlinearity; cell={self.cell!r} has "
                f"its own gates and takes only activation='tanh', got {self.activation!r}.")
        for name in names:
            if not get_activation(name).elementwise:
                raise ValueError(f"activation {name!r} is not elementwise and cannot be "
                                 "a recurrent layer's nonlinearity.")
        return hidden

    def _training_augment(self):
        return None

    def _n_transferable_layers(self):
        return len(self.recurrent_weights_)

    def _transferable_layer(self, i):
        return tuple(self.recurrent_weights_[i].values())

    # -- data ----------------------------------------------------------- #
    def _reads_columns(self, X, reset):
        """Whether ``X`` is a 2-D table whose columns are time steps.

        Such input goes through scikit-learn's own validation (feature names,
        the number of columns); so does every later input of a model fitted on it.
        """
        if _ragged(X) is not None or sp.issparse(X):
            return False
        two_d = np.ndim(X if hasattr(X, "shape") else np.asarray(X, dtype=object)) == 2
        return two_d and (reset or getattr(self, "_fitted_on_columns", False))

    def _sequences(self, X, reset, y="no_validation"):
        """Validated NaN-padded sequences (and ``y``); sets the input attributes on ``reset``."""
        columns, with_y = self._reads_columns(X, reset), not isinstance(y, str)
        y_params = dict(multi_output=True, y_numeric=isinstance(self, RegressorMixin))
        if columns:
            out = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=reset,
                                **(y_params if with_y else {}))
            X, y = out if with_y else (out, y)
        elif with_y:
            y = validate_data(self, X="no_validation", y=y, reset=reset, **y_params)
        X = as_sequences(X)
        if reset:
            self._fitted_on_columns = columns
            self.n_step_features_ = X.shape[2]
            if not columns:
                self.n_features_in_ = X.shape[2]
                self.__dict__.pop("feature_names_in_", None)
        elif X.shape[2] != self.n_step_features_:
            raise ValueError(
                f"X has {X.shape[2]} features per time step, but {type(self).__name__} "
                f"is expecting {self.n_step_features_} features as input.")
        return X, (y if with_y else None)

    def _validate_fit_data(self, X, y, reset):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                             "target y is None.")
        X, y = self._sequences(X, reset, y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                             f"[{X.shape[0]}, {y.shape[0]}]")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    # -- the network ---------------------------------------------------- #
    def _make_network(self, hidden, n_features, n_outputs, dtype, out_name, cell=None,
                      bidirectional=None):
        """The network of this layout (``cell`` and ``bidirectional``: the parameters'
        unless given)."""
        names = self._hidden_activation_names(len(hidden))
        return RecurrentNetwork(
            n_features, hidden, n_outputs, cell=self.cell if cell is None else cell,
            output_activation=get_activation(out_name),
            bidirectional=self.bidirectional if bidirectional is None else bidirectional,
            activation=[self._activation(n) for n in names],
            dropout=self._dropout_list(len(hidden)), dropout_kind=dropout_kinds(names),
            dtype=dtype)

    def _build_network(self, hidden, n_features, n_outputs, dtype, first, rng):
        out_name, loss_name = self._output_setup(n_outputs)
        network = self._make_network(hidden, n_features, n_outputs, dtype, out_name)
        if first:
            network.initialize(self.weight_init, rng, forget_bias=self.forget_bias)
            self._reset_training_state(n_outputs, out_name)
        else:
            self._check_warm_layout(self._fitted_layout(),
                                    {"hidden_layer_sizes": tuple(hidden), "cell": self.cell,
                                     "bidirectional": bool(self.bidirectional)})
            network.set_weights(self.recurrent_weights_, self.coefs_, self.intercepts_)
        self._n_transferred = self._setup_transfer(network, first)
        self._loss_name = loss_name
        return network

    def _fitted_layout(self):
        """The layer sizes, cell and direction the fitted weights have."""
        hidden = tuple(int(W["weight_hh"].shape[1]) for W in self.recurrent_weights_)
        gates = self.recurrent_weights_[0]["weight_hh"].shape[0] // hidden[0]
        cell = next(name for name, c in _CELLS.items() if c.n_gates == gates)
        return {"hidden_layer_sizes": hidden, "cell": cell,
                "bidirectional": "weight_hh_reverse" in self.recurrent_weights_[0]}

    def _fit_bytes(self, hidden, X, n_outputs, batch):
        n_steps, n_features = X.shape[1:]
        return ([n_features, *hidden, n_outputs],
                estimate_recurrent_fit_bytes(n_features, hidden, n_outputs, self.cell,
                                             self.bidirectional, n_steps, batch, X.dtype,
                                             self.solver, self.early_stopping))

    def _largest_product_flops(self, X, batch_size):
        # the input projection of a whole batch, or one step's recurrent product
        gates, dirs = _CELLS[self.cell].n_gates, 2 if self.bidirectional else 1
        hidden = hidden_layer_list(self.hidden_layer_sizes)
        widths = [X.shape[2]] + [h * dirs for h in hidden]
        return max(2 * batch_size * gates * h * max(X.shape[1] * n_in, h)
                   for n_in, h in zip(widths, hidden))

    def _publish(self, network):
        self.recurrent_weights_, self.coefs_, self.intercepts_ = network.weights()

    # -- prediction ----------------------------------------------------- #
    def _fitted_network(self, out):
        """A network holding a copy of the fitted weights, with output activation ``out``
        (the layout the weights have, whatever the parameters say now)."""
        layout = self._fitted_layout()
        network = self._make_network(list(layout["hidden_layer_sizes"]), self.n_step_features_,
                                     self.n_outputs_, self.coefs_[0].dtype, out,
                                     layout["cell"], layout["bidirectional"])
        return network.set_weights(self.recurrent_weights_, self.coefs_, self.intercepts_)

    def _forward(self, X, output_activation=True):
        network = self._fitted_network(self.out_activation_ if output_activation else "identity")
        # one product per time step, each small: one BLAS thread, as in fit
        blas_threads, _ = _blas_plan(single=True)
        with blas_threads():
            return finite_output(
                lambda: network.predict(X.astype(network.dtype, copy=False)), X)

    def hidden_state_gradient_norms(self, X, y):
        """Norm of the loss gradient with respect to the first layer's state, per step.

        The lecture's vanishing gradients, measured: for each time step
        ``t``, the mean over sequences of ``||dL_i / dh_t||``, where ``L_i``
        is sequence ``i``'s loss (no penalty, no dropout) and ``h_t`` the
        first recurrent layer's state (its forward direction; for the LSTM
        the hidden state, not the cell). Through a simple RNN it shrinks
        geometrically towards the first steps; LSTM and GRU carry it back.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or \
(n_samples, n_timesteps)
            Sequences of equal length.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.

        Returns
        -------
        norms : ndarray of shape (n_timesteps,)
        """
        check_is_fitted(self)
        X, y = self._sequences(X, reset=False, y=y)
        if np.isnan(X).any():
            raise ValueError("hidden_state_gradient_norms needs sequences of equal length.")
        Y = self._encode_validation_targets(y).astype(X.dtype, copy=False)
        network = self._fitted_network(out=self.out_activation_)
        return network.state_gradient_norms(X.astype(network.dtype, copy=False), Y,
                                            get_loss(self._loss_name))

    def _validated_forward(self, X, output_activation=True):
        check_is_fitted(self)
        return self._forward(self._sequences(X, reset=False)[0], output_activation)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.three_d_array = True
        return tags


class RecurrentClassifier(ClassifierHead, ClassifierMixin, _RecurrentBase):
    __doc__ = """Recurrent network classifier: one label per sequence.

    Stacked LSTM, GRU or simple RNN layers read each sequence; the last
    layer's state at the sequence's last real step (and, when bidirectional,
    the backward direction's state at its first) feeds a softmax (or
    logistic) output layer. Sequences may have unequal lengths. Training is
    the MLPs' (same solvers, schedules, early stopping, warm starts,
    callbacks), through backpropagation in time.

    Parameters
    ----------
{parameters}
    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.

{attributes}
    See Also
    --------
    RecurrentRegressor : One value per sequence.
    MLPClassifier : The same estimator for fixed-length feature vectors.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknet import RecurrentClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16  # 8 time steps of 8 pixels
    >>> clf = RecurrentClassifier(cell="gru", hidden_layer_sizes=(32,), max_iter=20,
    ...                           random_state=0).fit(X[:500], y[:500])
    >>> clf.predict(X[:3]).shape
    (3,)
    """.format(parameters=_parameter_docs(), attributes=_attribute_docs())

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        cell="lstm",
        activation="tanh",
        *,
        bidirectional=False,
        forget_bias=1.0,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.01,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        l1=0.0,
        weight_init="sklearn",
        decay_rate=0.95,
        clip_norm=None,
        leaky_relu_slope=0.01,
        elu_alpha=1.0,
        transfer_from=None,
        n_transfer_layers=None,
        freeze_transferred=False,
        transfer_lr_factor=1.0,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.cell = cell
        self.activation = activation
        self.bidirectional = bidirectional
        self.forget_bias = forget_bias
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.l1 = l1
        self.weight_init = weight_init
        self.decay_rate = decay_rate
        self.clip_norm = clip_norm
        self.leaky_relu_slope = leaky_relu_slope
        self.elu_alpha = elu_alpha
        self.transfer_from = transfer_from
        self.n_transfer_layers = n_transfer_layers
        self.freeze_transferred = freeze_transferred
        self.transfer_lr_factor = transfer_lr_factor
        self.callbacks = callbacks

    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to sequences X and their labels y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or (n_samples, n_timesteps), or list of array-like
            The sequences: a 3-D array (padded at the end with NaN where
            sequences are shorter), a 2-D array of univariate sequences, or a
            list of 2-D arrays ``(n_timesteps_i, n_features)`` of unequal
            lengths.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            One label per sequence (or a label indicator matrix, multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Sequence weights.
        X_val, y_val : default=None
            A validation set of your own, in the forms ``X`` and ``y`` take.
            With ``early_stopping=True`` it replaces the internal split;
            otherwise it is only monitored.
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Weights of the validation sequences.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, X_val=X_val, y_val=y_val,
                         sample_weight_val=sample_weight_val)

    @available_if(_check_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given sequences.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or (n_samples, n_timesteps), or list of array-like
            The sequences: a 3-D array (padded at the end with NaN where
            sequences are shorter), a 2-D array of univariate sequences, or a
            list of 2-D arrays ``(n_timesteps_i, n_features)`` of unequal
            lengths.
        y : array-like of shape (n_samples,)
            One label per sequence.
        sample_weight : array-like of shape (n_samples,), default=None
            Sequence weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)


class RecurrentRegressor(RegressorHead, RegressorMixin, _RecurrentBase):
    __doc__ = """Recurrent network regressor: one value (or vector) per sequence.

    As :class:`RecurrentClassifier`, with a linear output layer trained on
    half the squared error (or an exponential one on the Poisson loss):
    forecasting the next value of a series from a window of its past, or
    any sequence-to-value regression.

    Parameters
    ----------
{parameters}
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        The training loss; 'poisson' pairs with an exponential output.

    Attributes
    ----------
{attributes}
    See Also
    --------
    RecurrentClassifier : One label per sequence.
    MLPRegressor : The same estimator for fixed-length feature vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet import RecurrentRegressor
    >>> t = np.linspace(0, 40, 2000)
    >>> windows = np.lib.stride_tricks.sliding_window_view(np.sin(t), 21)
    >>> X, y = windows[:, :-1], windows[:, -1]  # 20 past values -> the next
    >>> reg = RecurrentRegressor(cell="gru", hidden_layer_sizes=(16,), max_iter=30,
    ...                          random_state=0).fit(X, y)
    >>> bool(reg.score(X, y) > 0.9)
    True
    """.format(parameters=_parameter_docs(), attributes=_attribute_docs())

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        cell="lstm",
        activation="tanh",
        *,
        bidirectional=False,
        forget_bias=1.0,
        loss="squared_error",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.01,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        l1=0.0,
        weight_init="sklearn",
        decay_rate=0.95,
        clip_norm=None,
        leaky_relu_slope=0.01,
        elu_alpha=1.0,
        transfer_from=None,
        n_transfer_layers=None,
        freeze_transferred=False,
        transfer_lr_factor=1.0,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.cell = cell
        self.activation = activation
        self.bidirectional = bidirectional
        self.forget_bias = forget_bias
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.l1 = l1
        self.weight_init = weight_init
        self.decay_rate = decay_rate
        self.clip_norm = clip_norm
        self.leaky_relu_slope = leaky_relu_slope
        self.elu_alpha = elu_alpha
        self.transfer_from = transfer_from
        self.n_transfer_layers = n_transfer_layers
        self.freeze_transferred = freeze_transferred
        self.transfer_lr_factor = transfer_lr_factor
        self.callbacks = callbacks

    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to sequences X and their targets y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or (n_samples, n_timesteps), or list of array-like
            The sequences: a 3-D array (padded at the end with NaN where
            sequences are shorter), a 2-D array of univariate sequences, or a
            list of 2-D arrays ``(n_timesteps_i, n_features)`` of unequal
            lengths.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            One value (or one row of values) per sequence.
        sample_weight : array-like of shape (n_samples,), default=None
            Sequence weights.
        X_val, y_val : default=None
            A validation set of your own, in the forms ``X`` and ``y`` take.
            With ``early_stopping=True`` it replaces the internal split;
            otherwise it is only monitored.
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Weights of the validation sequences.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, X_val=X_val, y_val=y_val,
                         sample_weight_val=sample_weight_val)

    @available_if(_check_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given sequences.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or (n_samples, n_timesteps), or list of array-like
            The sequences: a 3-D array (padded at the end with NaN where
            sequences are shorter), a 2-D array of univariate sequences, or a
            list of 2-D arrays ``(n_timesteps_i, n_features)`` of unequal
            lengths.
        y : array-like of shape (n_samples,)
            One value per sequence.
        sample_weight : array-like of shape (n_samples,), default=None
            Sequence weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

"""AutoencoderTransformer: a network trained to reproduce its input."""


import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._base import (
    STOCHASTIC_SOLVERS,
    BaseNetworkEstimator,
    dropout_kinds,
    finite_output,
    hidden_layer_list,
)
from ._core import Network, feed_forward, get_activation
from ._core.tied import TiedNetwork
from ._docs import SHARED_ATTRIBUTES, SHARED_PARAMETERS, entries
from ._metrics import row_mean_squared_error, sum_of_squared_errors
from ._validation import check_bool, check_int, check_option, check_real
from .augment import GaussianNoise

__all__ = ["AutoencoderTransformer"]

_MATCHING_LOSS = {"identity": "squared_error", "logistic": "binary_log_loss"}


_OWN_PARAMETERS = """\
    n_components : int, default=2
        Width of the bottleneck: the number of features ``transform`` returns.

    hidden_layer_sizes : array-like of shape (n_encoder_hidden,), default=(128,)
        Widths of the encoder's hidden layers, from the input towards the
        bottleneck. The decoder mirrors them: ``(128,)`` with
        ``n_components=16`` on 64 features gives the layers
        ``64 -> 128 -> 16 -> 128 -> 64``.

    activation : str or list of str, default='elu'
        Activation of the encoder's hidden layers and of the bottleneck: one
        name for all of them, or one per encoder layer (the hidden layers,
        then the bottleneck), e.g. ``['relu', 'identity']`` for a linear code.
        The decoder's hidden layers mirror the encoder's. Built in:
        'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', 'selu'.

    out_activation : {'auto', 'identity', 'logistic'}, default='auto'
        Activation of the reconstruction. 'logistic' suits data in [0, 1]
        (pixel intensities); 'auto' picks 'logistic' when the training data
        of the first fit lies in [0, 1] and 'identity' otherwise. Warm starts
        and ``partial_fit`` keep the fitted ``out_activation_`` and loss.

    loss : {'auto', 'squared_error', 'binary_log_loss'}, default='auto'
        The training loss, summed over features and averaged over samples.
        'auto' matches the output activation: half squared error for
        'identity', binary cross-entropy for 'logistic' (which needs data in
        [0, 1]). ``score`` is the mean squared error whatever the loss.

    tied_weights : bool, default=True
        Let the decoder reuse the encoder's weight matrices: decoder layer
        ``j`` uses the transpose of the matrix of encoder layer
        ``n_encoder_layers - 1 - j`` and has a bias of its own. This halves the
        weights and regularizes the codes. ``coefs_`` then holds the
        encoder's matrices only (see Notes), and ``intercepts_`` every
        layer's bias. False gives the decoder matrices of its own.

    noise : float, default=0.0
        Standard deviation of Gaussian noise added to each training
        mini-batch (a denoising autoencoder), drawn afresh from
        ``random_state`` every time. The clean input stays the target; the
        noise never touches validation data, ``transform`` or ``score``.
        Needs a stochastic solver; 0 switches it off.
"""

_CHANGED_PARAMETERS = """\
    batch_size : int or 'auto', default='auto'
        Size of the mini-batches; 'auto' means ``min(64, n_samples)`` (the
        MLPs use 200: an autoencoder learns more from more, smaller steps).

    learning_rate_init : float, default=0.01
        The initial learning rate ('sgd' and 'adam').

    tol : float, default=1e-2
        Tolerance of the stopping rule: an epoch whose training loss (or,
        with early stopping, validation score: the negative mean squared
        error) does not improve by ``tol`` counts as no improvement. The
        training loss is summed over features, so it grows with their number.

    early_stopping : bool, default=False
        Stop when the validation score (negative mean squared reconstruction
        error) stops improving and restore the weights of the best epoch. The
        validation set is a random ``validation_fraction`` of the training
        data, or the ``X_val`` passed to ``fit``. Set ``tol`` to the scale
        of that score (e.g. 1e-5 for data in [0, 1]).

    n_iter_no_change : int, default=5
        Number of epochs without ``tol`` improvement before stopping.

    dropout : float or list of float, default=0.0
        Dropout rate of the hidden layers: one for all, or one per encoder
        layer (hidden layers, then the bottleneck), mirrored in the decoder;
        each in [0, 1). Inverted dropout, active during training only. Needs
        a stochastic solver.

    weight_init : str, default='auto'
        'auto' picks by activation (Glorot for logistic/tanh/identity, He for
        the relu family and elu, LeCun for selu); 'sklearn' draws as
        scikit-learn's MLP; or name one of 'glorot_uniform', 'glorot_normal',
        'he_uniform', 'he_normal', 'lecun_uniform', 'lecun_normal'.
"""


def _parameter_docs():
    """The Parameters section: own entries, then the MLP's in signature order."""
    shared = {**entries(SHARED_PARAMETERS), **entries(_CHANGED_PARAMETERS)}
    return (_OWN_PARAMETERS + "\n"
            + "\n\n".join(shared[name] for name in _TRAINING_PARAMETERS) + "\n")


_OWN_ATTRIBUTES = """\
    coefs_ : list of ndarray of shape (n_fan_in, n_fan_out)
        Weight matrix of each layer, encoder first; with ``tied_weights``
        the encoder's only (the decoder uses their transposes). These are the
        model: editing them changes ``transform``, ``inverse_transform`` and
        warm starts.

    intercepts_ : list of ndarray of shape (n_fan_out,)
        Bias vector of each layer, decoder included.

    n_layers_ : int
        Number of layers, input and output included:
        ``2 * len(hidden_layer_sizes) + 3``.

    n_outputs_ : int
        Number of outputs: ``n_features_in_``.

    out_activation_ : str
        Name of the output activation, 'identity' or 'logistic'.
"""


def _attribute_docs():
    """The MLP's attribute entries with the autoencoder's own where they differ."""
    merged = {**entries(SHARED_ATTRIBUTES), **entries(_OWN_ATTRIBUTES)}
    return "\n\n".join(merged.values()) + "\n"


_TRAINING_PARAMETERS = (
    "solver", "alpha", "batch_size", "learning_rate", "learning_rate_init",
    "power_t", "max_iter", "shuffle", "random_state", "tol", "verbose",
    "warm_start", "momentum", "nesterovs_momentum", "early_stopping",
    "validation_fraction", "beta_1", "beta_2", "epsilon", "n_iter_no_change",
    "max_fun", "dropout", "l1", "weight_init", "decay_rate", "clip_norm",
    "leaky_relu_slope", "elu_alpha", "callbacks",
)


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                             BaseNetworkEstimator):
    __doc__ = """Autoencoder: a network trained to reproduce its input.

    A feed-forward network maps the input through a bottleneck of
    ``n_components`` units and back to the input's width, and is trained to
    predict its own input. ``transform`` returns the bottleneck code (a
    non-linear dimensionality reduction, or features for a downstream
    estimator), ``inverse_transform`` decodes a code back to the input space,
    and ``score`` is the negative mean squared reconstruction error. It is
    trained by the same core and fit path as :class:`MLPRegressor`, with the
    same training parameters.

    Parameters
    ----------
{parameters}
    Attributes
    ----------
{attributes}
    See Also
    --------
    sklearn.decomposition.PCA : The linear counterpart.
    MLPRegressor : The same network trained on targets of your own.

    Notes
    -----
    The layers are ``n_features -> hidden_layer_sizes -> n_components ->
    reversed(hidden_layer_sizes) -> n_features``: ``L = 2 * (len(
    hidden_layer_sizes) + 1)`` weight layers, of which the first ``L / 2``
    are the encoder. ``intercepts_`` holds the ``L`` biases. Without tied
    weights ``coefs_`` holds the ``L`` matrices and layer ``i`` computes
    ``f_i(a @ coefs_[i] + intercepts_[i])``. With tied weights (the default)
    ``coefs_`` holds the ``L / 2`` encoder matrices only, and decoder layer
    ``i >= L / 2`` computes ``f_i(a @ coefs_[L - 1 - i].T + intercepts_[i])``;
    the gradient of a shared matrix is the sum of its encoder part and its
    (transposed) decoder part, and the L1/L2 penalty counts it once. Either
    way ``coefs_[:L // 2]`` and ``intercepts_[:L // 2]`` are the encoder,
    which an MLP can start from.

    The defaults (tied weights, elu, a logistic output with binary
    cross-entropy for data in [0, 1], Adam at 0.01 on batches of 64) train on
    the 8x8 digits in a few seconds; with 16 components the held-out
    reconstruction error is about two thirds of PCA's, and the codes feed a
    logistic regression to about 96 % test accuracy.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknet import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X[:500] / 16.0
    >>> ae = AutoencoderTransformer(n_components=8, random_state=0)
    >>> Z = ae.fit_transform(X)
    >>> Z.shape
    (500, 8)
    >>> ae.inverse_transform(Z).shape
    (500, 64)
    >>> from sklearn.decomposition import PCA
    >>> pca = PCA(n_components=8).fit(X)
    >>> pca_error = ((X - pca.inverse_transform(pca.transform(X))) ** 2).mean()
    >>> bool(-ae.score(X) < pca_error)  # score: -mean squared error
    True
    >>> ae.get_feature_names_out()[:2]
    array(['autoencodertransformer0', 'autoencodertransformer1'], dtype=object)
    """.format(parameters=_parameter_docs(), attributes=_attribute_docs())

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(128,),
        activation="elu",
        out_activation="auto",
        loss="auto",
        tied_weights=True,
        noise=0.0,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.01,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-2,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=5,
        max_fun=15000,
        dropout=0.0,
        l1=0.0,
        weight_init="auto",
        decay_rate=0.95,
        clip_norm=None,
        leaky_relu_slope=0.01,
        elu_alpha=1.0,
        callbacks=None,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.out_activation = out_activation
        self.loss = loss
        self.tied_weights = tied_weights
        self.noise = noise
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
        self.callbacks = callbacks

    # -- parameters ----------------------------------------------------- #
    def _check_params(self):
        check_int("n_components", self.n_components, 1)
        check_option("out_activation", self.out_activation,
                     ("auto", "identity", "logistic"))
        check_option("loss", self.loss, ("auto", "squared_error", "binary_log_loss"))
        if self.loss == "binary_log_loss" and self.out_activation == "identity":
            raise ValueError("loss='binary_log_loss' needs out_activation='logistic' "
                             "(or 'auto'); got out_activation='identity'.")
        check_bool("tied_weights", self.tied_weights)
        check_real("noise", self.noise, 0, None, "left")
        self._check_layer_lists()
        hidden = super()._check_params()
        if self.noise > 0 and self.solver not in STOCHASTIC_SOLVERS:
            raise ValueError("noise needs a stochastic solver ('sgd' or 'adam'); it "
                             "cannot be used with solver='lbfgs'. Set noise=0.")
        return hidden

    def _check_layer_lists(self):
        n = len(hidden_layer_list(self.hidden_layer_sizes)) + 1
        for name in ("activation", "dropout"):
            value = getattr(self, name)
            if not isinstance(value, str) and hasattr(value, "__len__") \
                    and len(value) != n:
                raise ValueError(
                    f"The {name!r} parameter has {len(value)} entries; give one "
                    f"value, or one per encoder layer: {n} (the {n - 1} hidden "
                    "layers of hidden_layer_sizes, then the bottleneck).")

    def _n_transferable_layers(self):
        return len(self.intercepts_) // 2  # the encoder: input to bottleneck

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(64, n_samples)
        return super()._batch_size(n_samples)

    def _n_configurable_layers(self, hidden):
        return len(hidden) + 1  # the encoder's hidden layers and the bottleneck

    def _training_augment(self):
        if not self.noise:
            return None
        return GaussianNoise(self.noise)

    # -- hooks of the fit path ------------------------------------------ #
    def _validate_fit_data(self, X, y, reset):
        X = validate_data(self, X, accept_sparse=["csr", "csc"],
                          dtype=(np.float64, np.float32), reset=reset)
        return X, X

    def _encode_targets(self, y, first_pass, incremental, classes):
        Y = y.toarray() if sp.issparse(y) else np.asarray(y)
        if first_pass:
            out = self.out_activation
            if out == "auto":
                out = "logistic" if _in_unit_interval(Y) else "identity"
            self.out_activation_ = out
            self._loss_name = _MATCHING_LOSS[out] if self.loss == "auto" else self.loss
        return self._check_data_range(Y, "X")

    def _encode_validation_targets(self, y):
        Y = y.toarray() if sp.issparse(y) else np.asarray(y)
        return self._check_data_range(Y, "X_val")

    def _check_data_range(self, Y, name):
        if self._loss_name == "binary_log_loss" and not _in_unit_interval(Y):
            raise ValueError(
                f"The binary_log_loss loss needs data in [0, 1], but {name} has values "
                f"in [{Y.min():g}, {Y.max():g}]. Scale the data, or refit with "
                "out_activation='identity'.")
        return Y

    def _output_setup(self, n_outputs):
        return self.out_activation_, self._loss_name

    def _stratify_split(self):
        return False

    def _validation_scorer(self, Y_val, sample_weight):
        def score(P):
            return -row_mean_squared_error(Y_val, P, sample_weight)

        return score

    # -- the network ---------------------------------------------------- #
    def _layer_plan(self, n_hidden):
        """Hidden activation names and dropout rates of the whole network."""
        names = self._hidden_activation_names(n_hidden + 1)
        rates = self._dropout_list(n_hidden + 1)
        return names + names[:n_hidden][::-1], rates + rates[:n_hidden][::-1]

    def _planned_units(self, hidden, n_features, n_outputs):
        return [n_features, *hidden, self.n_components, *hidden[::-1], n_features]

    def _build_network(self, hidden, n_features, n_outputs, dtype, first, rng):
        out_name, loss_name = self._output_setup(n_outputs)
        units = [n_features, *hidden, self.n_components, *hidden[::-1], n_features]
        names, rates = self._layer_plan(len(hidden))
        acts = [self._activation(a) for a in names] + [get_activation(out_name)]
        kind = TiedNetwork if self.tied_weights else Network
        network = kind(units, acts, dtype=dtype, dropout=rates,
                       dropout_kind=dropout_kinds(names))
        if first:
            network.initialize(self.weight_init, rng, names + [out_name])
            self._reset_training_state(n_outputs, out_name)
        else:
            self._check_warm_layout(network)
            network.set_weights(self.coefs_, self.intercepts_)
        self._n_transferred = self._setup_transfer(network, first)
        self._loss_name = loss_name
        return network

    def _check_warm_layout(self, network):
        n_coefs = network.n_layers // 2 if self.tied_weights else network.n_layers
        shapes = [W.shape for W in network.coefs[:n_coefs]]
        fitted = [np.shape(W) for W in self.coefs_]
        if shapes != fitted:
            raise ValueError(
                "warm_start and partial_fit continue the fitted network, whose "
                f"weight shapes are {fitted}; the current parameters "
                "(n_components, hidden_layer_sizes, tied_weights) give "
                f"{shapes}. Set them back or fit from scratch.")

    def _reset_training_state(self, n_outputs, out_name):
        super()._reset_training_state(n_outputs, out_name)
        self.n_layers_ = 2 * len(hidden_layer_list(self.hidden_layer_sizes)) + 3
        self._n_features_out = self.n_components

    def _publish(self, network):
        n_coefs = network.n_layers // 2 if self.tied_weights else network.n_layers
        self.coefs_ = network.coefs[:n_coefs]
        self.intercepts_ = network.intercepts

    # -- prediction ----------------------------------------------------- #
    def _layers(self):
        """Weights, biases and activations of every layer, from the fitted attributes."""
        L = len(self.intercepts_)
        coefs = list(self.coefs_)
        if len(coefs) < L:  # tied: the decoder uses the encoder's transposes
            coefs += [W.T for W in coefs[::-1]]
        names, _ = self._layer_plan(L // 2 - 1)
        acts = [self._activation(a) for a in names + [self.out_activation_]]
        return coefs, list(self.intercepts_), acts

    def _run(self, X, part):
        """Feed ``X`` through the encoder, the decoder or both (a slice of layers)."""
        coefs, intercepts, acts = self._layers()
        return finite_output(
            lambda: feed_forward(X, coefs[part], intercepts[part], acts[part]), X)

    def transform(self, X):
        """Encode ``X``: the bottleneck activations.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The code of each sample.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"],
                          dtype=(np.float64, np.float32), reset=False)
        return self._run(X, slice(None, len(self.intercepts_) // 2))

    def inverse_transform(self, X):
        """Decode codes back to the input space: the reconstruction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as ``transform`` returns them.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`)
            The decoder's output.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=(np.float64, np.float32))
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects "
                f"codes of the {self._n_features_out} bottleneck units.")
        return self._run(Z, slice(len(self.intercepts_) // 2, None))

    def fit(self, X, y=None, X_val=None):
        """Train the autoencoder to reconstruct ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training data.
        y : None
            Ignored.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), \
default=None
            A validation set of your own. With ``early_stopping=True`` it
            replaces the internal split; otherwise it is only monitored
            (``validation_scores_`` and ``validation_loss_curve_``).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, None, X_val=X_val, y_val=X_val)

    def partial_fit(self, X, y=None):
        """Update the autoencoder with a single pass over ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, None, incremental=True)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error (higher is better).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to reconstruct.
        y : None
            Ignored.

        Returns
        -------
        score : float
            ``-mean((X - inverse_transform(transform(X))) ** 2)``, computed
            in float64 block of rows by block (the memory it needs does not
            grow with the number of rows); ``-inf`` when the error exceeds
            the largest float.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"],
                          dtype=(np.float64, np.float32), reset=False)
        if sp.issparse(X):
            X = X.tocsr()
        n_samples, n_features = X.shape
        widest = max(n_features, *(len(b) for b in self.intercepts_))
        block = max(1, _SCORE_BLOCK_BYTES // (8 * widest))
        total = 0.0
        for start in range(0, n_samples, block):
            X_block = X[start:start + block]
            R = self._run(X_block, slice(None))
            X_block = X_block.toarray() if sp.issparse(X_block) else X_block
            total += sum_of_squared_errors(X_block, R)
        return -total / (n_samples * n_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# Rows per block in ``score``: a block's reconstruction and error stay within
# a few MB whatever the number of rows.
_SCORE_BLOCK_BYTES = 4 * 2 ** 20


def _in_unit_interval(Y):
    return Y.size == 0 or (Y.min() >= 0 and Y.max() <= 1)

"""MLPClassifier and MLPRegressor: scikit-learn's MLPs on sknet's core."""

import numpy as np
from scipy.special import log_softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._base import BaseNetworkEstimator
from ._core.losses import with_data_scale
from ._docs import SHARED_ATTRIBUTES, SHARED_PARAMETERS
from ._metrics import r2_score_without_overflow
from ._validation import check_option

__all__ = ["MLPClassifier", "MLPRegressor", "ClassifierHead", "RegressorHead"]


def _check_stochastic_solver(estimator):
    """``partial_fit`` exists only for the stochastic solvers (as in scikit-learn)."""
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(
            "partial_fit is only available for stochastic optimizers. "
            f"{estimator.solver} is not stochastic.")
    return True


class ClassifierHead:
    """What a network classifier adds to the fit path: labels in, labels out.

    Target encoding (one-hot, or 0/1 columns for binary and multilabel
    targets), the output layer and loss that go with it, the validation
    score, and the prediction methods; shared by every sknet classifier
    whose network ends in softmax or logistic units.
    """

    def _encode_targets(self, y, first_pass, incremental, classes):
        if incremental and not hasattr(self, "classes_"):
            self._label_binarizer = self._partial_fit_binarizer(y, classes)
            self.classes_ = self._label_binarizer.classes_
            self._check_known_classes(y, incremental, None)
        elif first_pass:
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            self._check_known_classes(y, incremental, classes)
        return self._one_hot(y)

    def _one_hot(self, y):
        """``LabelBinarizer.transform(y)`` as uint8; direct for labels in a vector.

        Every label of ``y`` is known to be in ``classes_`` by now. A single
        class is one column of zeros, as ``LabelBinarizer`` gives: the model
        learns that class (the only one ``predict`` can return).
        """
        if y.ndim != 1 or len(self.classes_) == 1:  # multilabel rows, or one class
            return self._label_binarizer.transform(y).astype(np.uint8)
        codes = np.searchsorted(self.classes_, y)
        if len(self.classes_) == 2:
            return (codes == 1).astype(np.uint8).reshape(-1, 1)
        Y = np.zeros((y.shape[0], len(self.classes_)), dtype=np.uint8)
        Y[np.arange(y.shape[0]), codes] = 1
        return Y

    def _partial_fit_binarizer(self, y, classes):
        if classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if type_of_target(y).startswith("multilabel"):
            return LabelBinarizer().fit(y)
        return LabelBinarizer().fit(classes)

    def _check_known_classes(self, y, incremental, classes):
        if classes is not None and incremental and not np.array_equal(
                np.unique(classes), np.unique(self.classes_)):
            raise ValueError(
                f"`classes={classes}` is not the same as on the first call to "
                f"partial_fit, was: {self.classes_}")
        labels = unique_labels(y)
        if self.warm_start and not incremental:
            if set(labels) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as "
                    f"in the previous call to fit. Previously got {self.classes_}, "
                    f"`y` has {labels}")
        elif len(np.setdiff1d(labels, self.classes_, assume_unique=True)):
            raise ValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` has "
                f"{self.classes_}. 'y' has {labels}.")

    def _check_scorable_validation(self, X_val, y_val):
        super()._check_scorable_validation(X_val, y_val)
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return
        labels = unique_labels(y_val)
        if len(labels) < 2 <= len(self.classes_):
            raise ValueError(
                f"y_val holds only one class ({labels.tolist()[0]!r}) of the {len(self.classes_)} "
                "the model learns: early stopping cannot tell a better model from a "
                "worse one on it. Pass a validation set with samples of several "
                "classes.")

    def _encode_validation_targets(self, y):
        labels = unique_labels(y)
        if len(np.setdiff1d(labels, self.classes_)):
            raise ValueError(
                f"y_val has classes not seen in y: {np.setdiff1d(labels, self.classes_)}."
            )
        return self._label_binarizer.transform(y)

    def _output_setup(self, n_outputs):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "log_loss"
        return "logistic", "binary_log_loss"

    def _stratify_split(self):
        return self.n_outputs_ == 1

    def _validation_scorer(self, Y_val, sample_weight):
        y_true = self._decode(Y_val)

        def score(P):
            return accuracy_score(y_true, self._decode(P), sample_weight=sample_weight)

        return score

    def _decode(self, P):
        if P.shape[1] == 1:
            P = P.ravel()
        return self._label_binarizer.inverse_transform(P)

    def predict(self, X):
        """Predict the classes of ``X``.

        Parameters
        ----------
        X : array-like or sparse matrix
            The input data, in a form ``fit`` accepts.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        return self._decode(self._validated_forward(X))

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : array-like or sparse matrix
            The input data, in a form ``fit`` accepts.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, in the order of ``classes_``.
        """
        P = self._validated_forward(X)
        if P.shape[1] == 1:
            P = P.ravel()
            return np.vstack([1 - P, P]).T
        return P

    def predict_log_proba(self, X):
        """Log of the probability estimates.

        Parameters
        ----------
        X : array-like or sparse matrix
            The input data, in a form ``fit`` accepts.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``, ``-inf`` where a probability is 0.
            For multi-class and binary targets it is computed from the
            output layer's input (a log-softmax, or ``log(expit)``), which
            keeps the logarithm of probabilities too small for floating point.
        """
        check_is_fitted(self)
        if self.out_activation_ == "logistic" and self.n_outputs_ > 1:
            # multilabel: the log of predict_proba's own numbers, so that the
            # two agree everywhere (an expit that rounds to 1 or to 0 included)
            P = self._validated_forward(X)
            log_p = np.full_like(P, -np.inf)
            return np.log(P, out=log_p, where=P > 0)
        Z = self._validated_forward(X, output_activation=False)
        if self.out_activation_ == "softmax":
            return log_softmax(Z, axis=1)
        log_p = -np.logaddexp(0, -Z)  # log(expit(Z)), never log(0)
        if Z.shape[1] == 1:
            return np.hstack([-np.logaddexp(0, Z), log_p])  # log(1 - p), log(p)
        return log_p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags



class MLPClassifier(ClassifierHead, ClassifierMixin, BaseNetworkEstimator):
    __doc__ = """Multi-layer perceptron classifier.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`:
    the same parameters, defaults, fitted attributes and warnings, trained by
    sknet's own backpropagation core. New parameters (per-layer activations,
    dropout, L1, weight initialization, an exponential learning-rate decay,
    gradient clipping) default to scikit-learn's behaviour.

    The output layer is a softmax for multi-class targets and logistic units
    for binary and multilabel targets, trained with the matching
    cross-entropy.

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
    MLPRegressor : Multi-layer perceptron regressor.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknet import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=1000,
    ...                     random_state=0).fit(X, y)
    >>> clf.predict(X[:2])
    array([0, 0])
    """.format(parameters=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
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
        augment=None,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
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
        self.augment = augment
        self.callbacks = callbacks

    # -- hooks ---------------------------------------------------------- #
    def _validate_fit_data(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             multi_output=True, dtype=(np.float64, np.float32),
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    # -- public API ----------------------------------------------------- #
    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels, or a label indicator matrix for
            multilabel classification).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_val, y_val : array-like, default=None
            A validation set of your own. With ``early_stopping=True`` it
            replaces the internal split; otherwise it is only monitored
            (``validation_scores_`` and ``validation_loss_curve_``, after
            every epoch, or every iteration of ``solver='lbfgs'``). Early
            stopping needs at least 2 samples, and for a classifier of
            several classes, more than one class.
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Weights of the validation samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, X_val=X_val, y_val=y_val,
                         sample_weight_val=sample_weight_val)

    @available_if(_check_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

class RegressorHead:
    """What a network regressor adds to the fit path: numeric targets, an
    identity (or, for the Poisson loss, exponential) output, the R^2 score.
    """

    def _encode_targets(self, y, first_pass, incremental, classes):
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if self.loss == "poisson" and np.any(Y < 0):
            raise ValueError("loss='poisson' needs non-negative targets y.")
        if not first_pass and Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} outputs but the model was fitted with "
                f"{self.n_outputs_}.")
        return Y

    def _encode_validation_targets(self, y):
        return self._encode_targets(y, True, False, None)

    def _output_setup(self, n_outputs):
        if self.loss == "poisson":
            return "exp", "poisson"
        return "identity", "squared_error"

    def _reported_loss(self, loss, n_outputs):
        # As scikit-learn: the squared error's mean over the outputs (1 / k of
        # the objective whose gradient is followed) is the loss reported, the
        # one tol is measured on, and the value L-BFGS is handed.
        if loss.name == "squared_error" and n_outputs > 1:
            return with_data_scale(loss, 1.0 / n_outputs)
        return loss

    def _check_params(self):
        check_option("loss", self.loss, ("squared_error", "poisson"))
        return super()._check_params()

    def _stratify_split(self):
        return False

    def _validation_scorer(self, Y_val, sample_weight):
        y_true = Y_val.ravel() if Y_val.shape[1] == 1 else Y_val

        def score(P):
            return r2_score_without_overflow(
                y_true, P.ravel() if P.shape[1] == 1 else P, sample_weight)

        return score

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination :math:`R^2` of the prediction.

        Parameters
        ----------
        X : array-like or sparse matrix
            The input data, in a form ``fit`` accepts.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values for ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            scikit-learn's ``r2_score(y, self.predict(X))``, also for values
            too large to square in float64 (then often ``-inf``).
        """
        return r2_score_without_overflow(y, self.predict(X), sample_weight)

    def predict(self, X):
        """Predict the target values of ``X``.

        Parameters
        ----------
        X : array-like or sparse matrix
            The input data, in a form ``fit`` accepts.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        P = self._validated_forward(X)
        return P.ravel() if P.shape[1] == 1 else P


class MLPRegressor(RegressorHead, RegressorMixin, BaseNetworkEstimator):
    __doc__ = """Multi-layer perceptron regressor.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`
    (see :class:`MLPClassifier` for what sknet adds). The output layer is
    linear for ``loss="squared_error"`` and exponential for
    ``loss="poisson"``.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        Half squared error, or half Poisson deviance with an exp output.
{parameters}
    Attributes
    ----------
{attributes}
    See Also
    --------
    MLPClassifier : Multi-layer perceptron classifier.

    Notes
    -----
    With several outputs, the squared-error loss reported (``loss_``,
    ``loss_curve_``, ``best_loss_``, ``validation_loss_curve_``), the one
    ``tol`` is measured on and the value L-BFGS is handed are scikit-learn's:
    ``0.5 * mean_ij (P_ij - Y_ij)^2`` (plus the L2 term), the mean over the
    ``k`` outputs. The gradient followed is, as in scikit-learn, that of the
    sum over the outputs, ``k`` times the reported value's.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sknet import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, random_state=0)
    >>> reg = MLPRegressor(solver="lbfgs", random_state=0).fit(X, y)
    >>> round(reg.score(X, y), 2) > 0.9
    True
    """.format(parameters=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
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
        augment=None,
        callbacks=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
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
        self.augment = augment
        self.callbacks = callbacks

    # -- hooks ---------------------------------------------------------- #
    def _validate_fit_data(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    # -- public API ----------------------------------------------------- #
    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_val, y_val : array-like, default=None
            A validation set of your own. With ``early_stopping=True`` it
            replaces the internal split; otherwise it is only monitored.
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Weights of the validation samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, X_val=X_val, y_val=y_val,
                         sample_weight_val=sample_weight_val)

    @available_if(_check_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

"""PerceptronClassifier: the lecture's perceptron rule, a drop-in for scikit-learn's."""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _base
from ._base import (
    VersionStamped,
    _check_sample_weight_public,
    finite_output,
    restore_on_error,
    sklearn_config_kept,
)
from ._core import Network, get_activation
from ._core.perceptron import (
    PerceptronConfig,
    fit_perceptron,
    needs_canonical_rows,
    perceptron_fit_bytes,
    perceptron_scores,
)
from ._validation import (
    InvalidParameterError,
    check_bool,
    check_int,
    check_option,
    check_random_state_param,
    check_real,
    check_verbose,
)

__all__ = ["PerceptronClassifier", "Perceptron"]

MAX_INT = np.iinfo(np.int32).max
RANDOM_INIT_SCALE = 0.01


class PerceptronClassifier(VersionStamped, ClassifierMixin, BaseEstimator):
    """Linear perceptron classifier: threshold units trained by the perceptron rule.

    A drop-in replacement for :class:`sklearn.linear_model.Perceptron`: the
    same parameters, defaults, fitted attributes, warnings and, with the same
    data, order and parameters, the same weights. Each class is an output
    unit of one dense layer of sknet's core network, with a threshold
    (``"step"``) output, trained by the lecture's rule
    ``w <- w + eta0 * (y - y_hat) * x`` on its one-vs-rest target, one sample
    at a time. Also importable as ``Perceptron``.

    Parameters
    ----------
    penalty : {'l2', 'l1', 'elasticnet'}, default=None
        The penalty (regularization term) to be used.

    alpha : float, default=0.0001
        Constant that multiplies the penalty, if any.

    l1_ratio : float, default=0.15
        The elastic-net mixing parameter, with ``0 <= l1_ratio <= 1``
        (0 is L2, 1 is L1). Only used with ``penalty='elasticnet'``.

    fit_intercept : bool, default=True
        Whether to learn an intercept (the unit's threshold). If False, the
        intercept stays at its initial value (0 unless ``intercept_init``).

    max_iter : int, default=1000
        The maximum number of passes over the training data (epochs) of
        :meth:`fit`; :meth:`partial_fit` makes one pass.

    tol : float or None, default=1e-3
        The tolerance rule: training stops after ``n_iter_no_change``
        epochs in a row whose training objective is above the best one minus
        ``tol`` (or whose validation accuracy is below the best plus ``tol``
        with ``early_stopping``). None disables it.

    shuffle : bool, default=True
        Whether to shuffle the training data at each epoch (with
        scikit-learn's own shuffling, so seeds give the same orders).

    verbose : int, default=0
        The verbosity level.

    eta0 : float, default=1.0
        The learning rate: the constant by which the updates are multiplied.

    n_jobs : int, default=None
        Number of threads training the one-vs-rest units of a multi-class
        problem at once (the epochs run without the GIL). ``None`` means 1
        unless in a :obj:`joblib.parallel_backend` context; ``-1`` means all
        processors. Ctrl-C stops every thread at its current epoch.

    random_state : int, RandomState instance or None, default=0
        Seeds the shuffling, the validation split and ``weight_init='random'``.

    early_stopping : bool, default=False
        Set a stratified ``validation_fraction`` of the training data aside
        and stop each unit when its accuracy there has not improved by
        ``tol`` for ``n_iter_no_change`` epochs.

    validation_fraction : float, default=0.1
        The share of the training data set aside for early stopping.

    n_iter_no_change : int, default=5
        Number of epochs with no improvement to wait before stopping.

    class_weight : dict, {class_label: weight} or "balanced", default=None
        Weights of the classes (multiplying the sample weights); "balanced"
        uses ``n_samples / (n_classes * np.bincount(y))``.

    warm_start : bool, default=False
        Start the next :meth:`fit` from the current solution.

    stop_on_no_mistakes : bool, default=True
        The lecture's rule "repeat until no errors are made": a unit whose
        epoch makes no update stops at once. Without a penalty its weights
        cannot change after such an epoch, so only ``n_iter_`` and ``t_``
        differ from scikit-learn (which goes on until ``tol`` or
        ``max_iter``). With a penalty the weights keep shrinking even without
        mistakes, so the rule is not applied.

    weight_init : {'zeros', 'random'}, default='zeros'
        Start from zero weights (scikit-learn) or, as in the lecture, from
        small random weights and intercepts, uniform in ``[-0.01, 0.01]``.
        ``coef_init``, ``intercept_init`` and ``warm_start`` take precedence.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    coef_ : ndarray of shape (1, n_features) if n_classes == 2 else \
(n_classes, n_features)
        Weights of the units (a sparse matrix after :meth:`sparsify`).

    intercept_ : ndarray of shape (1,) if n_classes == 2 else (n_classes,)
        The units' intercepts (minus their thresholds).

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    n_iter_ : int
        Number of epochs of the last call; for multi-class, the largest over
        the units.

    t_ : float
        Number of samples seen by the rule: ``n_iter_ * n_samples + 1`` after
        :meth:`fit`, growing by ``n_samples`` with each :meth:`partial_fit`.

    See Also
    --------
    sklearn.linear_model.Perceptron : scikit-learn's perceptron, which this
        estimator reproduces.
    MLPClassifier : A network with hidden layers, for problems (such as XOR)
        that no single line separates.

    Notes
    -----
    For a sample ``x`` with one-vs-rest target ``t`` in {-1, +1} and sample
    weight ``s`` (times its class weight), a unit with score
    ``z = w . x + b`` makes a mistake when ``t z <= 0`` and then moves by
    ``w += eta0 * t * s * x`` and ``b += eta0 * t * s``. With 0/1 targets and
    the threshold output ``y_hat = [z > 0]`` this is the lecture's
    ``w += eta0 (y - y_hat) x``; a score of exactly 0 counts as a mistake for
    both targets, so training from zero weights moves at the first sample.
    It is the subgradient step of the perceptron criterion ``max(0, -t z)``.
    As in scikit-learn, the intercept of a fit on sparse input moves by 0.01
    of that step, an L2 penalty shrinks ``w`` by
    ``1 - eta0 * alpha * (1 - l1_ratio)`` at every sample, and an L1 penalty
    is applied by cumulative truncated gradient. ``predict`` takes the class
    of the largest score (for two classes: ``z > 0``).

    The rule is sequential: each epoch of each unit is one compiled loop over
    the samples that releases the GIL, so with ``n_jobs`` the one-vs-rest
    units train in parallel threads.

    Differences from scikit-learn: ``stop_on_no_mistakes`` (above) may end
    training earlier, changing only ``n_iter_`` and ``t_``; a call that
    fails leaves the estimator as it was; a score that overflows raises the
    overflow error (scikit-learn checks only the weights); a fit that needs
    more memory than is available is refused with a MemoryError before it
    allocates; Ctrl-C during fit keeps each unit's weights of its last
    completed epoch and warns (with ``n_jobs``, too).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknet import Perceptron
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = Perceptron(tol=1e-3, random_state=0).fit(X, y)
    >>> round(clf.score(X, y), 3)
    0.939
    """

    def __init__(
        self,
        *,
        penalty=None,
        alpha=0.0001,
        l1_ratio=0.15,
        fit_intercept=True,
        max_iter=1000,
        tol=1e-3,
        shuffle=True,
        verbose=0,
        eta0=1.0,
        n_jobs=None,
        random_state=0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight=None,
        warm_start=False,
        stop_on_no_mistakes=True,
        weight_init="zeros",
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.eta0 = eta0
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.stop_on_no_mistakes = stop_on_no_mistakes
        self.weight_init = weight_init

    # ------------------------------------------------------------------ #
    # parameters                                                           #
    # ------------------------------------------------------------------ #
    def _check_params(self):
        if self.penalty is not None:
            check_option("penalty", self.penalty, ("l2", "l1", "elasticnet"))
        check_real("alpha", self.alpha, 0, None, "left")
        check_real("l1_ratio", self.l1_ratio, 0, 1, "both")
        check_bool("fit_intercept", self.fit_intercept)
        check_int("max_iter", self.max_iter, 1)
        check_real("tol", self.tol, 0, None, "left", allow_none=True)
        check_bool("shuffle", self.shuffle)
        check_verbose("verbose", self.verbose)
        check_real("eta0", self.eta0, 0, None, "neither")
        if self.n_jobs is not None:
            check_int("n_jobs", self.n_jobs)
        check_bool("early_stopping", self.early_stopping)
        check_real("validation_fraction", self.validation_fraction, 0, 1, "neither")
        check_int("n_iter_no_change", self.n_iter_no_change, 1)
        cw = self.class_weight
        if not (cw is None or isinstance(cw, dict) or
                (isinstance(cw, str) and cw == "balanced")):
            raise InvalidParameterError(
                "The 'class_weight' parameter must be None, 'balanced' or a dict "
                f"{{class_label: weight}}; got {cw!r}.")
        check_bool("warm_start", self.warm_start)
        check_bool("stop_on_no_mistakes", self.stop_on_no_mistakes)
        check_option("weight_init", self.weight_init, ("zeros", "random"))
        check_random_state_param("random_state", self.random_state)

    def _config(self, incremental):
        return PerceptronConfig(
            eta0=float(self.eta0), penalty=self.penalty, alpha=float(self.alpha),
            l1_ratio=float(self.l1_ratio), fit_intercept=bool(self.fit_intercept),
            max_iter=1 if incremental else int(self.max_iter),
            tol=None if self.tol is None else float(self.tol),
            n_iter_no_change=int(self.n_iter_no_change), shuffle=bool(self.shuffle),
            # partial_fit refuses early stopping on its first call only; set
            # later, it holds the split out of the pass, as scikit-learn's does
            early_stopping=bool(self.early_stopping),
            stop_on_no_mistakes=bool(self.stop_on_no_mistakes) and not incremental,
            verbose=int(self.verbose))

    # ------------------------------------------------------------------ #
    # data                                                                 #
    # ------------------------------------------------------------------ #
    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse="csr",
                             dtype=[np.float64, np.float32], order="C",
                             accept_large_sparse=False, reset=reset)
        check_classification_targets(y)
        if sp.issparse(X) and needs_canonical_rows(self.penalty) \
                and not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        return X, y

    def _set_classes(self, y, classes, incremental):
        if not incremental:  # scikit-learn's labels: strings held as objects become str_
            self.classes_ = unique_labels(np.unique(y))
        elif not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = unique_labels(classes)
        elif classes is not None and not np.array_equal(self.classes_,
                                                         unique_labels(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on the last call to "
                f"partial_fit, was: {self.classes_!r}")
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels {unknown} that are not in classes {self.classes_}.")
        if self.classes_.size < 2:
            raise ValueError("The number of classes has to be greater than one; got "
                             f"{self.classes_.size} class")

    def _targets(self, y):
        """+1/-1 targets (int8), one column per unit (one unit for two classes)."""
        positive = (y == self.classes_[1])[:, None] if self.classes_.size == 2 \
            else y[:, None] == self.classes_[None, :]
        return np.where(positive, np.int8(1), np.int8(-1))

    # ------------------------------------------------------------------ #
    # the network                                                          #
    # ------------------------------------------------------------------ #
    def _build_network(self, n_features, n_units, dtype, coef_init, intercept_init,
                       reuse):
        network = Network([n_features, n_units], [get_activation("step")], dtype=dtype)
        W, b = network.coefs[0], network.intercepts[0]
        names = ["coef_init", "intercept_init"]
        if coef_init is None and reuse:
            coef_init, names[0] = self.coef_, "coef_ (the previous solution)"
        if intercept_init is None and reuse:
            intercept_init, names[1] = self.intercept_, "intercept_ (the previous solution)"
        if self.weight_init == "random" and (coef_init is None or intercept_init is None):
            rng = check_random_state(self.random_state)
            init = rng.uniform(-RANDOM_INIT_SCALE, RANDOM_INIT_SCALE, (n_units, n_features + 1))
            W[...] = init[:, :-1].T
            b[...] = init[:, -1] if self.fit_intercept else 0.0
        if coef_init is not None:
            W[...] = _shaped(coef_init, (n_units, n_features), names[0]).T
        if intercept_init is not None:
            b[...] = _shaped(intercept_init, (n_units,), names[1])
        return network

    def _seeds_and_split(self, y, sample_weight, n_units):
        """Shuffle seeds and the validation mask, drawn as scikit-learn draws them."""
        if n_units == 1:
            rng = check_random_state(self.random_state)
            rng.randint(1, MAX_INT)  # scikit-learn's dataset seed, unused here
            mask = self._validation_mask(y, sample_weight)
            return [rng.randint(MAX_INT)], mask
        mask = self._validation_mask(y, sample_weight)
        seeds = []
        for seed in check_random_state(self.random_state).randint(MAX_INT, size=n_units):
            rng = np.random.RandomState(seed)
            rng.randint(1, MAX_INT)
            seeds.append(rng.randint(MAX_INT))
        return seeds, mask

    def _validation_mask(self, y, sample_weight):
        if not self.early_stopping:
            return None
        n = y.shape[0]
        cv = StratifiedShuffleSplit(test_size=self.validation_fraction,
                                    random_state=self.random_state)
        idx_train, idx_val = next(cv.split(np.zeros((n, 1)), y))
        if idx_train.size == 0 or idx_val.size == 0:
            raise ValueError(
                f"Splitting {n} samples into a train set and a validation set with "
                f"validation_fraction={self.validation_fraction!r} led to an empty set "
                f"({idx_train.size} and {idx_val.size} samples). Please either change "
                "validation_fraction, increase number of samples, or disable "
                "early_stopping.")
        if sample_weight is not None and not np.any(sample_weight[idx_val] > 0):
            raise ValueError("The sample weights for validation set are all zero, "
                             "consider using a different random state.")
        mask = np.zeros(n, dtype=bool)
        mask[idx_val] = True
        return mask

    def _n_threads(self, n_units):
        """Threads training the units at once (joblib's reading of ``n_jobs``)."""
        if n_units == 1:
            return 1
        from joblib import effective_n_jobs

        return max(1, min(int(effective_n_jobs(self.n_jobs)), n_units))

    # ------------------------------------------------------------------ #
    # the fit path                                                         #
    # ------------------------------------------------------------------ #
    def _fit(self, X, y, *, sample_weight, coef_init=None, intercept_init=None,
             classes=None, incremental=False):
        # counters too: never half-set (Ctrl-C); nor scikit-learn's configuration
        with restore_on_error(self), sklearn_config_kept():
            results, n_samples = self._fit_units(X, y, sample_weight, coef_init,
                                                 intercept_init, classes, incremental)
            self._after_fit(results, n_samples, incremental)
        return self

    def _fit_units(self, X, y, sample_weight, coef_init, intercept_init, classes,
                   incremental):
        """Validate everything, then train; returns the units' results."""
        self._check_params()
        first = not (incremental and hasattr(self, "classes_"))
        if incremental and first:
            self._check_first_partial_fit()
        reuse = hasattr(self, "coef_") and (incremental or self.warm_start)
        X, y = self._validate_xy(X, y, reset=first)
        if not first:
            X = X.astype(self.coef_.dtype, copy=False)
        self._set_classes(y, classes, incremental)
        sw = None if sample_weight is None else \
            _check_sample_weight_public(sample_weight, X, np.float64)
        cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        self._check_memory(X, 1 if self.classes_.size == 2 else self.classes_.size, sw)
        Y = self._targets(y)
        n_units = Y.shape[1]
        network = self._build_network(X.shape[1], n_units, X.dtype, coef_init,
                                      intercept_init, reuse)
        class_weights = np.array([[cw[0], cw[1]]]) if n_units == 1 else \
            np.column_stack([np.ones(n_units), cw])
        seeds, mask = self._seeds_and_split(y, sw, n_units)
        results = fit_perceptron(network, X, Y, sw, self._config(incremental),
                                 seeds=seeds, class_weights=class_weights,
                                 validation_mask=mask, n_threads=self._n_threads(n_units))
        self.coef_ = np.ascontiguousarray(network.coefs[0].T)
        self.intercept_ = network.intercepts[0].copy()
        return results, X.shape[0]

    def _check_memory(self, X, n_units, sample_weight):
        """Refuse, before allocating, a fit that cannot fit in memory."""
        n_samples, n_features = X.shape
        n_val = 0
        if self.early_stopping and not sp.issparse(X):
            n_val = int(np.ceil(self.validation_fraction * n_samples))
        need = n_samples * n_units + perceptron_fit_bytes(  # + the int8 targets
            n_samples, n_features, n_units, X.dtype, n_threads=self._n_threads(n_units),
            penalty=self.penalty, sample_weight=sample_weight is not None,
            n_validation=n_val)
        available = _base.available_memory_bytes()
        if available is not None and need > available:
            raise MemoryError(
                f"Training this perceptron needs about {need / 2**30:.1f} GiB "
                f"({n_units} units of {n_features} weights, {n_samples} samples, "
                f"{np.dtype(X.dtype).name}), but only {available / 2**30:.1f} GiB of "
                "memory is available. Use float32 data, fewer features or classes, "
                "or a smaller n_jobs.")

    def _check_first_partial_fit(self):
        if self.early_stopping:
            raise ValueError("early_stopping should be False with partial_fit")
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit. In order "
                "to use 'balanced' weights, use compute_class_weight('balanced', "
                "classes=classes, y=y). In place of y you can use a large enough "
                "sample of the full training set target to properly estimate the "
                "class frequency distributions. Pass the resulting weights as the "
                "class_weight parameter.")

    def _after_fit(self, results, n_samples, incremental):
        """Publish ``n_iter_`` and ``t_``; warn as scikit-learn does."""
        self.n_iter_ = max(r.n_iter for r in results)
        self.t_ = (getattr(self, "t_", 1.0) if incremental else 1.0) + \
            float(self.n_iter_ * n_samples)
        if any(r.status == "interrupted" for r in results):
            warnings.warn("Training interrupted by user.", stacklevel=4)
            return
        if incremental or self.tol is None or self.n_iter_ != self.max_iter:
            return
        if any(r.status != "no_mistakes" for r in results if r.n_iter == self.max_iter):
            warnings.warn(
                "Maximum number of iteration reached before convergence. Consider "
                "increasing max_iter to improve the fit.", ConvergenceWarning, stacklevel=4)

    # ------------------------------------------------------------------ #
    # public API                                                           #
    # ------------------------------------------------------------------ #
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the units by the perceptron rule.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        coef_init : ndarray of shape (n_classes, n_features), default=None
            The initial weights (``(1, n_features)`` or ``(n_features,)`` for
            two classes).
        intercept_init : ndarray of shape (n_classes,), default=None
            The initial intercepts.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, multiplied by the class weights.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, coef_init=coef_init,
                         intercept_init=intercept_init)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Make one pass of the perceptron rule over the given samples.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A part of the training data.
        y : array-like of shape (n_samples,)
            Its target values.
        classes : ndarray of shape (n_classes,), default=None
            All the classes across the calls; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, multiplied by the class weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, classes=classes,
                         incremental=True)

    def decision_function(self, X):
        """The units' scores ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the score of ``classes_[1]`` (positive means
            that class); otherwise one score per class.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32],
                          reset=False)
        scores = finite_output(
            lambda: perceptron_scores(X, self.coef_, self.intercept_), X)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Predict the class of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The class of the largest score (for two classes: ``classes_[1]``
            where the score is positive).
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]

    def densify(self):
        """Store ``coef_`` as a dense array again (the default format).

        Returns
        -------
        self : object
            The estimator.
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before densifying.")
        if sp.issparse(self.coef_):
            self.coef_ = self.coef_.toarray()
        return self

    def sparsify(self):
        """Store ``coef_`` as a scipy.sparse CSR matrix.

        Worth it when most weights are zero (as an L1 penalty makes them):
        it saves memory and speeds up ``decision_function``.

        Returns
        -------
        self : object
            The estimator.
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before sparsifying.")
        self.coef_ = sp.csr_matrix(self.coef_)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _shaped(value, shape, name):
    """``value`` as a dense array of ``shape`` (or ``(n_features,)`` for one unit)."""
    arr = value.toarray() if sp.issparse(value) else np.asarray(value, dtype=np.float64)
    if shape[0] == 1 and arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    if arr.shape != shape:
        raise ValueError(f"Provided {name} does not match dataset: it has shape "
                         f"{np.shape(value)}, expected {shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Provided {name} contains NaN or infinity.")
    return arr


Perceptron = PerceptronClassifier

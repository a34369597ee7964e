"""Docstring fragments shared by the network estimators."""

import re

SHARED_PARAMETERS = """\
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : str or list of str, default='relu'
        Activation of the hidden layers: one name for all of them, or one per
        hidden layer. Built in: 'identity', 'logistic', 'tanh', 'relu',
        'leaky_relu', 'elu', 'selu'; more can be added with
        :func:`sknet.register_activation`.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The weight optimizer.

    alpha : float, default=0.0001
        Strength of the L2 penalty, scaled as in scikit-learn:
        ``0.5 * alpha * ||W||^2 / n_samples`` (sum of sample weights).

    batch_size : int or 'auto', default='auto'
        Size of the mini-batches; 'auto' means ``min(200, n_samples)``.

    learning_rate : {'constant', 'invscaling', 'adaptive', 'exponential'}, \
default='constant'
        Learning-rate schedule. 'invscaling' and 'adaptive' apply to
        ``solver='sgd'`` only, as in scikit-learn; 'exponential' multiplies
        the rate by ``decay_rate`` after every epoch, for 'sgd' and 'adam',
        and goes on decaying across ``partial_fit`` calls and warm starts.

    learning_rate_init : float, default=0.001
        The initial learning rate ('sgd' and 'adam').

    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.

    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).

    shuffle : bool, default=True
        Whether to shuffle the samples in each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, shuffling, the validation split and
        dropout masks. With the same seed, sknet draws the initial weights,
        the shuffles and the split exactly as scikit-learn does.

    tol : float, default=1e-4
        Tolerance of the stopping rule.

    verbose : bool or int, default=False
        1 prints scikit-learn's per-epoch lines ("Iteration N, loss = ...",
        and "Validation score: ..." when there is a validation set) with the
        epoch's seconds and the validation loss appended; 2 shows a progress
        bar instead when tqdm is installed and the output is a terminal.

    warm_start : bool, default=False
        Reuse the previous solution to initialize the next fit.

    momentum : float, default=0.9
        Momentum of the 'sgd' updates.

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum ('sgd' with momentum > 0).

    early_stopping : bool, default=False
        Stop when the validation score stops improving and restore the
        weights of the best validation epoch. The validation set is a
        ``validation_fraction`` of the training data, split as scikit-learn
        splits it (stratified for single-output classification), or the
        ``X_val, y_val`` passed to ``fit``.

    validation_fraction : float, default=0.1
        Share of the training data set aside for early stopping.

    beta_1 : float, default=0.9
        Decay rate of Adam's first-moment estimate.

    beta_2 : float, default=0.999
        Decay rate of Adam's second-moment estimate.

    epsilon : float, default=1e-8
        Numerical stability term of Adam.

    n_iter_no_change : int, default=10
        Number of epochs without ``tol`` improvement before stopping.

    max_fun : int, default=15000
        Maximum number of loss evaluations ('lbfgs' only).

    dropout : float or list of float, default=0.0
        Dropout rate of the hidden layers: one for all, or one per hidden
        layer, each in [0, 1). Inverted dropout, active during training only;
        on a 'selu' layer it is alpha dropout. Needs a stochastic solver.

    l1 : float, default=0.0
        Strength of the L1 penalty on the weights, scaled like ``alpha``:
        ``l1 * |W|_1 / n_samples``. Non-negative.

    weight_init : str, default='sklearn'
        'sklearn' draws exactly scikit-learn's initial weights. 'auto' picks
        by activation (Glorot for logistic/tanh, He for the relu family,
        LeCun for selu); or name one of 'glorot_uniform', 'glorot_normal',
        'he_uniform', 'he_normal', 'lecun_uniform', 'lecun_normal'.

    decay_rate : float, default=0.95
        Per-epoch factor of ``learning_rate='exponential'``, in (0, 1].

    clip_norm : float, default=None
        Rescale each mini-batch gradient whose L2 norm exceeds this value
        (positive). Needs a stochastic solver.

    leaky_relu_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs. Positive.

    elu_alpha : float, default=1.0
        The alpha of 'elu'. Positive.

    transfer_from : estimator, default=None
        A fitted sknet ``MLPClassifier``, ``MLPRegressor`` or
        ``AutoencoderTransformer`` (its encoder), or scikit-learn's fitted
        ``MLPClassifier`` or ``MLPRegressor``, whose first layers start
        this network. Wrap it in :class:`sklearn.frozen.FrozenEstimator` to
        keep it through ``clone`` and ``GridSearchCV``. Layers are copied at
        the start of a fresh fit; ``warm_start`` and ``partial_fit`` continue
        from the current weights and do not copy again. The source is never
        modified.

    n_transfer_layers : int, default=None
        How many hidden layers to copy; None copies all of the source's
        transferable layers. The output layer is never copied.

    freeze_transferred : bool, default=False
        Keep the copied layers fixed (frozen) instead of fine-tuning them.
        Frozen layers stay bit-identical through fit, partial_fit and
        warm_start; gradients still flow through them. Independent of
        ``dropout``.

    transfer_lr_factor : float, default=1.0
        Multiplies the step of fine-tuned copied layers (e.g. 0.1 to move
        them ten times less than the new layers).

    augment : callable, default=None
        ``augment(X_batch, rng) -> X_batch`` applied to every training
        mini-batch with a fresh draw from the estimator's random state
        (see :mod:`sknet.augment`). Validation and prediction data are never
        augmented. Needs a stochastic solver.

    callbacks : callable or list of callables, default=None
        Each is called as ``callback(estimator, history)`` after every epoch
        (after every iteration with ``solver='lbfgs'``); a truthy return
        value stops training (a normal return, no warning). ``history`` has
        ``loss_curve``, ``validation_scores``, ``validation_losses``,
        ``epoch_seconds``, ``n_iter`` (epochs of this call) and ``t``
        (samples seen); ``estimator.coefs_`` hold the current weights.
"""

SHARED_ATTRIBUTES = """\
    loss_ : float
        The loss at the end of training.

    best_loss_ : float or None
        The minimum training loss reached (None with early stopping).

    loss_curve_ : list of float
        The training loss at the end of each epoch (stochastic solvers).

    validation_scores_ : list of float or None
        The validation score of each epoch (each iteration of ``solver='lbfgs'``),
        when there is a validation set.

    validation_loss_curve_ : list of float or None
        The validation loss of each epoch (each iteration of ``solver='lbfgs'``),
        when there is a validation set.

    best_validation_score_ : float or None
        The best validation score (early stopping only).

    t_ : int
        Number of training samples seen by the solver.

    coefs_ : list of ndarray of shape (n_fan_in, n_fan_out)
        Weight matrix of each layer. These are the model: editing them
        changes predictions, and warm starts continue from them.

    intercepts_ : list of ndarray of shape (n_fan_out,)
        Bias vector of each layer.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    n_iter_ : int
        Number of epochs (iterations for lbfgs) the solver ran in the last
        call.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation.
"""


def entries(section):
    """{name: entry} of a numpydoc section (entries start ``    name : ``)."""
    blocks = re.split(r"\n(?=    \w+ : )", "\n" + section)
    return {b.split(" : ")[0].strip(): b.strip("\n") for b in blocks if b.strip()}

"""Structure checks of the models that :func:`sknet.io.load` returns.

A skops file holds data only, but the data can still be wrong: an array of
the wrong shape, a missing layer or a NaN weight loads without complaint and
only fails (or silently predicts garbage) later. :func:`check_loaded` finds
every sknet estimator in a loaded object (alone, or inside a Pipeline or any
other scikit-learn estimator) and checks, before the model is handed to the
user, that its fitted state is what a fit of sknet leaves:

* every weight array is a numpy array of float32 or float64 (one dtype per
  model), of the right number of dimensions, with all values finite;
* the layers chain (``coefs_[i].shape[1] == coefs_[i + 1].shape[0]``, the
  biases match), the first layer reads ``n_features_in_`` features and the
  last one writes ``n_outputs_`` values; the autoencoder's tied or untied
  layout mirrors its encoder; the recurrent layers' arrays have PyTorch's
  shapes for the estimator's cell and directions;
* ``classes_`` matches the output width (one unit for two classes, one per
  class or label otherwise) and the label binarizer that decodes it;
* the perceptron's ``coef_`` (dense, or the CSR matrix of ``sparsify``, whose
  index arrays are checked by scipy's own ``check_format``) fits
  ``classes_``, ``intercept_`` and ``n_features_in_``;
* counters are non-negative integers, loss curves lists of real numbers, the
  optimizer's state one finite value per weight (Adam's second moment may
  hold ``+inf``, where a squared gradient overflowed in the fit), and the
  estimator's parameters pass its own parameter checks.

Every failure is a :class:`ValueError` that names the estimator and the
attribute.
"""

import math
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.preprocessing import LabelBinarizer

from ._autoencoder import AutoencoderTransformer
from ._core.losses import LOSSES
from ._core.recurrent import CELLS
from ._mlp import ClassifierHead, MLPClassifier, MLPRegressor, RegressorHead
from ._perceptron import PerceptronClassifier
from ._recurrent import _RecurrentBase

__all__ = ["check_loaded"]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

# y_type_ of the label binarizer -> the output activation it goes with
_CLASSIFIER_OUTPUTS = {
    "binary": "logistic",
    "multiclass": "softmax",
    "multilabel-indicator": "logistic",
}

# output activation of a regressor -> the loss trained with it
_REGRESSOR_OUTPUTS = {"identity": "squared_error", "exp": "poisson"}

# output activation of an autoencoder -> the losses it may be trained with
_AUTOENCODER_OUTPUTS = {"identity": {"squared_error"},
                        "logistic": {"squared_error", "binary_log_loss"}}

_MISSING = object()


# --------------------------------------------------------------------------- #
# finding the estimators                                                       #
# --------------------------------------------------------------------------- #
def check_loaded(obj):
    """Check every sknet estimator in a loaded object.

    Parameters
    ----------
    obj : object
        What skops loaded: an estimator, a Pipeline, or any scikit-learn
        object holding sknet estimators (in its attributes, lists, tuples
        or dicts).

    Raises
    ------
    ValueError
        When an estimator's fitted state or parameters are not what sknet
        would have written; the message names the attribute.
    """
    for estimator in _sknet_estimators(obj):
        _check_estimator(estimator)


def _sknet_estimators(obj):
    """The sknet estimators in ``obj``, found without recursion."""
    found, stack, seen = [], [obj], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, np.ndarray) and item.dtype == object:
            stack.extend(item.flat)
        elif isinstance(item, BaseEstimator):
            if _checker(item) is not None:
                found.append(item)
            stack.extend(vars(item).values())
    return found


def _checker(estimator):
    """The function checking the fitted state of ``estimator``, or None."""
    if isinstance(estimator, _RecurrentBase):
        return _check_recurrent
    if isinstance(estimator, AutoencoderTransformer):
        return _check_autoencoder
    if isinstance(estimator, (MLPClassifier, MLPRegressor)):
        return _check_mlp
    if isinstance(estimator, PerceptronClassifier):
        return _check_perceptron
    return None


def _check_estimator(estimator):
    _check_params_present(estimator)
    if not _is_fitted(estimator):
        return
    _check_params_valid(estimator)
    _check_features_in(estimator)
    _checker(estimator)(estimator)


def _is_fitted(estimator):
    """scikit-learn's rule: a public attribute ending in ``_`` is set."""
    return any(k.endswith("_") and not k.startswith("__") for k in vars(estimator))


# --------------------------------------------------------------------------- #
# errors and small checks                                                      #
# --------------------------------------------------------------------------- #
def _fail(estimator, attr, problem):
    raise ValueError(
        f"{type(estimator).__name__}.{attr} {problem}: the file is damaged or was "
        "tampered with, and sknet.io.load refuses it.")


def _get(estimator, attr):
    """``estimator.attr``, or a ValueError when the file does not set it."""
    state = vars(estimator)
    if attr not in state:
        _fail(estimator, attr, "is missing")
    return state[attr]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _int(estimator, attr, low=0, value=_MISSING):
    """``estimator.attr`` (or ``value``, named ``attr``) as an int >= ``low``."""
    value = _get(estimator, attr) if value is _MISSING else value
    if not _is_int(value) or value < low:
        _fail(estimator, attr, f"must be an integer >= {low}, got {value!r}")
    return int(value)


def _expect(estimator, attr, expected, why):
    """``estimator.attr`` must be the integer ``expected``."""
    value = _get(estimator, attr)
    if not _is_int(value) or value != expected:
        _fail(estimator, attr, f"is {value!r}, but {why} gives {expected}")


def _choice(estimator, attr, options):
    value = _get(estimator, attr)
    if not isinstance(value, str) or value not in options:
        _fail(estimator, attr, f"must be one of {sorted(options)}, got {value!r}")
    return value


def _float_array(estimator, attr, value, ndim, dtype=None):
    """``value`` must be a finite float32/float64 ndarray of ``ndim`` dimensions."""
    if type(value) is not np.ndarray:
        _fail(estimator, attr, f"must be a numpy array, got {type(value).__name__}")
    if value.ndim != ndim or min(value.shape, default=1) < 1:
        _fail(estimator, attr, f"must be a non-empty {ndim}-D array, got shape "
                               f"{value.shape}")
    _float_values(estimator, attr, value, dtype)
    return value


def _float_values(estimator, attr, values, dtype):
    """``values`` (an array, or a sparse matrix's data) are finite floats of ``dtype``."""
    if values.dtype not in FLOAT_DTYPES:
        _fail(estimator, attr, f"must hold float32 or float64 values, got {values.dtype}")
    if dtype is not None and values.dtype != dtype:
        _fail(estimator, attr, f"has dtype {values.dtype}, but the model's other "
                               f"weights are {dtype}")
    if not np.isfinite(values).all():
        _fail(estimator, attr, "holds NaN or infinite values")


def _array_list(estimator, attr, length=None):
    value = _get(estimator, attr)
    if not isinstance(value, list) or not value:
        _fail(estimator, attr, f"must be a non-empty list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        _fail(estimator, attr, f"has {len(value)} entries, expected {length}")
    return value


def _shape(estimator, attr, array, shape, why):
    if array.shape != tuple(shape):
        _fail(estimator, attr, f"has shape {array.shape}, expected {tuple(shape)} "
                               f"({why})")


# --------------------------------------------------------------------------- #
# what every estimator shares                                                  #
# --------------------------------------------------------------------------- #
def _check_params_present(estimator):
    state = vars(estimator)
    for name in type(estimator)._get_param_names():
        if name not in state:
            _fail(estimator, name, "(a parameter) is missing")


def _check_params_valid(estimator):
    """The estimator's own parameter checks, any failure as a ValueError."""
    try:
        estimator._check_params()
    except Exception as exc:  # a wrong type is a TypeError there
        raise ValueError(
            f"{type(estimator).__name__} in the file has an invalid parameter: {exc} "
            "The file is damaged or was tampered with, and sknet.io.load refuses "
            "it.") from exc


def _check_features_in(estimator):
    n_features = _int(estimator, "n_features_in_", low=1)
    names = vars(estimator).get("feature_names_in_")
    if names is None:
        return
    if type(names) is not np.ndarray or names.shape != (n_features,) \
            or not all(isinstance(name, str) for name in names):
        _fail(estimator, "feature_names_in_",
              f"must be an array of {n_features} strings (n_features_in_)")


def _check_labels(estimator, n_labels):
    """``classes_``: a 1-D array of distinct labels (numbers or strings).

    ``n_labels(n)`` says whether ``n`` classes fit the output layer.
    """
    classes = _get(estimator, "classes_")
    if type(classes) is not np.ndarray or classes.ndim != 1:
        _fail(estimator, "classes_", "must be a 1-D numpy array")
    if classes.dtype.kind not in "biufUSO" or (classes.dtype.kind == "O" and not all(
            isinstance(c, (str, numbers.Number)) for c in classes)):
        _fail(estimator, "classes_", f"must hold numbers or strings, got {classes.dtype}")
    if not n_labels(classes.size):
        _fail(estimator, "classes_", f"has {classes.size} classes, which does not "
                                     "match the output layer")
    try:
        distinct = np.unique(classes).size == classes.size
    except TypeError:  # an object array of mixed types
        distinct = False
    if not distinct:
        _fail(estimator, "classes_", "must hold distinct, comparable labels")
    return classes


def _real_list(estimator, attr):
    """``estimator.attr``, when set and not None, is a list of real numbers."""
    value = vars(estimator).get(attr)
    if value is not None and not (isinstance(value, list)
                                  and all(_is_real(v) for v in value)):
        _fail(estimator, attr, "must be a list of real numbers")


def _optional_real(estimator, attr):
    value = vars(estimator).get(attr)
    if value is not None and not _is_real(value):
        _fail(estimator, attr, f"must be a real number, got {type(value).__name__}")


# --------------------------------------------------------------------------- #
# the networks                                                                 #
# --------------------------------------------------------------------------- #
def _dense_layers(estimator, n_coefs=None, n_intercepts=None):
    """``coefs_`` (2-D) and ``intercepts_`` (1-D): checked lists, and their dtype."""
    coefs = _array_list(estimator, "coefs_", n_coefs)
    intercepts = _array_list(estimator, "intercepts_", n_intercepts)
    dtype = _float_array(estimator, "coefs_[0]", coefs[0], 2).dtype
    for i, W in enumerate(coefs):
        _float_array(estimator, f"coefs_[{i}]", W, 2, dtype)
    for i, b in enumerate(intercepts):
        _float_array(estimator, f"intercepts_[{i}]", b, 1, dtype)
    return coefs, intercepts, dtype


def _check_chain(estimator, coefs, intercepts):
    """Layer ``i`` reads what layer ``i - 1`` writes; its bias is as wide."""
    for i, W in enumerate(coefs):
        if i and W.shape[0] != coefs[i - 1].shape[1]:
            _fail(estimator, f"coefs_[{i}]",
                  f"has shape {W.shape}, but coefs_[{i - 1}] {coefs[i - 1].shape} "
                  f"writes {coefs[i - 1].shape[1]} values")
        _shape(estimator, f"intercepts_[{i}]", intercepts[i], (W.shape[1],),
               f"the width of coefs_[{i}]")


def _check_hidden_activations(estimator, n_hidden):
    """A list of activations names one per hidden layer of the fitted network."""
    activation = estimator.activation
    if isinstance(activation, str):
        return
    n_given = len(activation) if hasattr(activation, "__len__") else None
    if n_given != n_hidden:
        _fail(estimator, "activation", f"has {n_given} entries, but the fitted "
                                       f"network has {n_hidden} hidden layers")


def _n_params(*arrays):
    return sum(int(a.size) for a in arrays)


def _check_training_state(estimator, n_params):
    """Counters, curves, and the optimizer's state (``n_params`` values)."""
    for attr in ("n_iter_", "t_"):
        _int(estimator, attr)
    for attr in ("_no_improvement_count", "_n_transferred"):
        if attr in vars(estimator):
            _int(estimator, attr)
    for attr in ("loss_curve_", "validation_scores_", "validation_loss_curve_"):
        _real_list(estimator, attr)
    for attr in ("loss_", "best_loss_", "best_validation_score_", "_learning_rate"):
        _optional_real(estimator, attr)
    _choice(estimator, "_loss_name", LOSSES)
    _check_optimizer_state(estimator, n_params)


def _check_optimizer_state(estimator, n_params):
    state = vars(estimator).get("_optimizer_state")
    if state is None:
        return
    attr = "_optimizer_state"
    if not isinstance(state, dict) or set(state) not in ({"t", "m", "v"}, {"velocity"}):
        _fail(estimator, attr, "must be a dict with the keys t, m and v (adam) or "
                               "velocity (sgd)")
    if "t" in state:
        _int(estimator, f"{attr}['t']", value=state["t"])
    for key in sorted(set(state) - {"t"}):
        name = f"{attr}[{key!r}]"
        if key == "v":
            array = _second_moment(estimator, name, state[key])
        else:
            array = _float_array(estimator, name, state[key], 1)
        _shape(estimator, name, array, (n_params,), "one value per weight of the network")


def _second_moment(estimator, attr, value):
    """Adam's second moment: non-negative floats, ``+inf`` included.

    A squared gradient beyond the dtype's range makes it infinite (in
    scikit-learn's Adam too), and Adam then leaves that weight where it is;
    the fit goes on, so a saved model may hold it.
    """
    if type(value) is not np.ndarray or value.dtype not in FLOAT_DTYPES:
        return _float_array(estimator, attr, value, 1)  # refused with its message
    _float_array(estimator, attr, np.where(value == np.inf, 0, value), 1)
    if (value < 0).any():
        _fail(estimator, attr, "holds negative values (a second moment is a mean of "
                               "squares)")
    return value


def _check_network_outputs(estimator, n_outputs):
    """``n_outputs_``, the output activation and the head (classes or values)."""
    _expect(estimator, "n_outputs_", n_outputs, "the output layer")
    if isinstance(estimator, ClassifierHead):
        _check_classifier_head(estimator, n_outputs)
    elif isinstance(estimator, RegressorHead):
        out = _choice(estimator, "out_activation_", _REGRESSOR_OUTPUTS)
        if _get(estimator, "_loss_name") != _REGRESSOR_OUTPUTS[out]:
            _fail(estimator, "_loss_name", f"must be {_REGRESSOR_OUTPUTS[out]!r} "
                                           f"with out_activation_={out!r}")


def _check_classifier_head(estimator, n_outputs):
    binarizer = _get(estimator, "_label_binarizer")
    attr = "_label_binarizer"
    if type(binarizer) is not LabelBinarizer:
        _fail(estimator, attr, "must be a LabelBinarizer")
    state = vars(binarizer)
    y_type = state.get("y_type_")
    if not isinstance(y_type, str) or y_type not in _CLASSIFIER_OUTPUTS:
        _fail(estimator, f"{attr}.y_type_", f"must be one of "
                                            f"{sorted(_CLASSIFIER_OUTPUTS)}, got {y_type!r}")
    neg, pos = state.get("neg_label"), state.get("pos_label")
    if not (_is_int(neg) and neg == 0 and _is_int(pos) and pos == 1) \
            or state.get("sparse_output") is not False \
            or type(state.get("sparse_input_")) is not bool:
        _fail(estimator, attr, "does not encode labels as sknet does (0/1, dense)")
    if y_type == "binary":
        classes = _check_labels(estimator, lambda n: n in (1, 2) and n_outputs == 1)
    else:
        classes = _check_labels(estimator, lambda n: n == n_outputs and n >= 2)
    labels = state.get("classes_")
    if type(labels) is not np.ndarray or labels.shape != classes.shape \
            or not np.array_equal(labels, classes):
        _fail(estimator, f"{attr}.classes_", "must equal classes_")
    out = _choice(estimator, "out_activation_", {_CLASSIFIER_OUTPUTS[y_type]})
    _choice(estimator, "_loss_name",
            {"log_loss" if out == "softmax" else "binary_log_loss"})


def _check_mlp(estimator):
    coefs, intercepts, _ = _dense_layers(estimator)
    _array_list(estimator, "intercepts_", len(coefs))
    _check_chain(estimator, coefs, intercepts)
    _expect(estimator, "n_features_in_", coefs[0].shape[0], "coefs_[0]'s shape")
    _expect(estimator, "n_layers_", len(coefs) + 1, "the number of layers in coefs_")
    _check_hidden_activations(estimator, len(coefs) - 1)
    _check_network_outputs(estimator, coefs[-1].shape[1])
    _check_training_state(estimator, _n_params(*coefs, *intercepts))


def _check_autoencoder(estimator):
    intercepts = _array_list(estimator, "intercepts_")
    coefs = _array_list(estimator, "coefs_")
    n_layers, half = len(intercepts), len(intercepts) // 2
    if n_layers % 2 or len(coefs) not in (half, n_layers):
        _fail(estimator, "coefs_", f"has {len(coefs)} matrices and intercepts_ "
                                   f"{n_layers} biases; an autoencoder has an even number "
                                   "L of biases and L (untied) or L / 2 (tied) matrices")
    coefs, intercepts, _ = _dense_layers(estimator)
    _check_chain(estimator, coefs[:half], intercepts[:half])
    widths = [coefs[0].shape[0]] + [W.shape[1] for W in coefs[:half]]
    units = widths + widths[-2::-1]  # the decoder mirrors the encoder
    for i in range(half, n_layers):
        if len(coefs) == n_layers:  # untied; tied layers are encoder transposes
            _shape(estimator, f"coefs_[{i}]", coefs[i], units[i:i + 2],
                   "the decoder mirrors the encoder")
        _shape(estimator, f"intercepts_[{i}]", intercepts[i], units[i + 1:i + 2],
               "the decoder mirrors the encoder")
    _expect(estimator, "n_features_in_", widths[0], "coefs_[0]'s shape")
    _expect(estimator, "_n_features_out", widths[-1], "the bottleneck's width")
    _expect(estimator, "n_outputs_", widths[0], "the input's width")
    _expect(estimator, "n_layers_", n_layers + 1, "the number of biases")
    _check_hidden_activations(estimator, half)
    out = _choice(estimator, "out_activation_", _AUTOENCODER_OUTPUTS)
    _choice(estimator, "_loss_name", _AUTOENCODER_OUTPUTS[out])
    _check_training_state(estimator, _n_params(*coefs, *intercepts))


def _check_recurrent(estimator):
    layers = _array_list(estimator, "recurrent_weights_")
    coefs, intercepts, dtype = _dense_layers(estimator, 1, 1)
    n_in = _check_step_features(estimator)
    arrays = []
    for k, layer in enumerate(layers):
        n_in = _check_recurrent_layer(estimator, k, layer, n_in, dtype)
        arrays += list(layer.values())
    _shape(estimator, "coefs_[0]", coefs[0], (n_in, coefs[0].shape[1]),
           "the last recurrent layer's output width")
    _check_chain(estimator, coefs, intercepts)
    _expect(estimator, "n_layers_", len(layers) + 2, "the number of recurrent layers")
    _check_hidden_activations(estimator, len(layers))
    _check_network_outputs(estimator, coefs[0].shape[1])
    _check_training_state(estimator, _n_params(*arrays, *coefs, *intercepts))


def _check_step_features(estimator):
    """``n_step_features_``, consistent with ``n_features_in_``; returns it."""
    n_step = _int(estimator, "n_step_features_", low=1)
    columns = _get(estimator, "_fitted_on_columns")
    if type(columns) is not bool:
        _fail(estimator, "_fitted_on_columns", "must be a bool")
    if columns and n_step != 1:
        _fail(estimator, "n_step_features_", "must be 1 for a model fitted on 2-D "
                                             "input (univariate sequences)")
    if not columns:
        _expect(estimator, "n_features_in_", n_step, "n_step_features_")
    return n_step


def _check_recurrent_layer(estimator, k, layer, n_in, dtype):
    """Recurrent layer ``k`` reading ``n_in`` features; returns its output width."""
    attr = f"recurrent_weights_[{k}]"
    directions = 2 if estimator.bidirectional else 1
    names = [n + ("_reverse" if d else "") for d in range(directions) for n in _WEIGHT_NAMES]
    if not isinstance(layer, dict) or set(layer) != set(names):
        _fail(estimator, attr, f"must be a dict with the arrays {sorted(names)}")
    hh = _float_array(estimator, f"{attr}['weight_hh']", layer["weight_hh"], 2, dtype)
    hidden = hh.shape[1]
    rows = CELLS[estimator.cell].n_gates * hidden
    shapes = {"weight_ih": (rows, n_in), "weight_hh": (rows, hidden),
              "bias_ih": (rows,), "bias_hh": (rows,)}
    for name in names:
        shape = shapes[name.removesuffix("_reverse")]
        array = _float_array(estimator, f"{attr}[{name!r}]", layer[name], len(shape),
                             dtype)
        _shape(estimator, f"{attr}[{name!r}]", array, shape,
               f"cell={estimator.cell!r} with {hidden} units reading {n_in} features")
    return hidden * directions


# --------------------------------------------------------------------------- #
# the perceptron                                                               #
# --------------------------------------------------------------------------- #
def _check_perceptron(estimator):
    classes = _check_labels(estimator, lambda n: n >= 2)
    n_units = 1 if classes.size == 2 else classes.size
    n_features = _get(estimator, "n_features_in_")
    coef = _get(estimator, "coef_")
    if sp.issparse(coef):
        _check_csr(estimator, "coef_", coef)
    else:
        _float_array(estimator, "coef_", coef, 2)
    _shape(estimator, "coef_", coef, (n_units, n_features),
           f"{n_units} unit(s) for {classes.size} classes, n_features_in_ inputs")
    intercept = _float_array(estimator, "intercept_", _get(estimator, "intercept_"), 1,
                             coef.dtype)
    _shape(estimator, "intercept_", intercept, (n_units,), "one per unit")
    _int(estimator, "n_iter_")
    t = _get(estimator, "t_")  # a float, as scikit-learn's Perceptron has it
    if not _is_real(t) or t < 0 or not (_is_int(t) or math.isfinite(t)):
        _fail(estimator, "t_", f"must be a non-negative number, got {t!r}")


def _check_csr(estimator, attr, matrix):
    """A canonical CSR matrix of finite floats, its index arrays checked by scipy."""
    if type(matrix) is not sp.csr_matrix:
        _fail(estimator, attr, f"must be a dense array or a csr_matrix, got "
                               f"{type(matrix).__name__}")
    try:
        matrix.check_format(full_check=True)
    except Exception as exc:  # scipy raises ValueError, and more on odd input
        _fail(estimator, attr, f"is not a valid CSR matrix ({exc})")
    if not matrix.has_sorted_indices or not matrix.has_canonical_format:
        _fail(estimator, attr, "must have sorted column indices without duplicates")
    _float_values(estimator, f"{attr}.data", matrix.data, None)

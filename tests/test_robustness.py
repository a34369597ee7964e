"""Robustness: bad input, numerical trouble, interruption, threads, memory.

Every estimator in ``ESTIMATORS`` (fast parameters) goes through every test.
A new estimator joins by being appended to that list.

Input fuzzing draws inputs with hypothesis: shapes (0 rows, 1 row, 1 feature,
more features than rows), dtypes (bool, integers, float16/32/64, object,
complex, numeric strings), NaN and infinities, scipy.sparse matrices, pandas
frames with odd or mixed column names, targets of the wrong length, string
labels, a single class, and the wrong number of features at predict time.
Each drawn case records its *defects* (what is wrong with it). A call on a
case without defects must work and return well-formed output; a call on a
case with defects may only raise a ValueError or TypeError whose message
names one of them. No call may emit a RuntimeWarning, and a call that raises,
or one that only reads (predict, transform, score, ...), must leave the
estimator exactly as it was.
"""

import copy
import inspect
import os
import re
import signal
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import get_tags

from sknet import MLPClassifier, MLPRegressor
from sknet._autoencoder import AutoencoderTransformer
from sknet._perceptron import PerceptronClassifier
from sknet._recurrent import RecurrentClassifier, RecurrentRegressor

# --------------------------------------------------------------------------- #
# the estimators, with parameters that make a fit take milliseconds            #
# --------------------------------------------------------------------------- #
ESTIMATORS = [
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0),
    MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0),
    AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,), max_iter=3,
                           random_state=0),
    PerceptronClassifier(max_iter=5, random_state=0),
    # a 2-D X is read as univariate sequences, one time step per column
    RecurrentClassifier(hidden_layer_sizes=(4,), cell="gru", max_iter=3, random_state=0),
    RecurrentRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0),
]

READ_ONLY_METHODS = ("predict", "predict_proba", "predict_log_proba",
                     "decision_function", "transform", "inverse_transform", "score")
FIT_METHODS = ("fit", "partial_fit", "fit_transform")

N_FEATURES = 3  # the reference models are fitted on 3 features
CLASSES = np.array([0, 1, 2])
NAMES = ["a", "b", "c"]


def _est_id(est):
    return type(est).__name__


def _kind(est):
    if is_classifier(est):
        return "classifier"
    if is_regressor(est):
        return "regressor"
    return "transformer"


def _weights(model):
    """The fitted weights and biases of a network or of a perceptron."""
    if hasattr(model, "coefs_"):
        return list(model.coefs_) + list(model.intercepts_)
    return [model.coef_, model.intercept_]


def _methods(est):
    return [m for m in FIT_METHODS + READ_ONLY_METHODS if hasattr(est, m)]


# --------------------------------------------------------------------------- #
# what a rejection must say, per defect                                        #
# --------------------------------------------------------------------------- #
# "hard" defects must be rejected; "soft" ones may work or be rejected.
HARD = {
    "nan": r"NaN",
    "inf": r"infinity",
    "complex": r"[Cc]omplex",
    "zero_rows": r"0 sample",
    "zero_features": r"0 feature",
    "n_features": r"\d+ features",
    "empty_list": r"2D array",
    # scikit-learn's check_array on a DataFrame without columns (upstream wording)
    "frame_no_columns": r"0 feature|at least one array or dtype is required",
    "mixed_names": r"feature names|string names",
    "names_mismatch": r"feature names",
    "string_in_X": r"convert|string",
    "y_length": r"inconsistent numbers of samples|0 sample",
    "y_none": r"requires y",
    "y_nan": r"NaN",
    "y_inf": r"infinity",
    "y_continuous": r"Unknown label type|continuous",
    "y_mixed": r"Mix of label input types|not supported between instances",
    "y_string": r"convert|numeric",
    "y_unseen": r"class",
    "y_outputs": r"output",
    "sw_length": r"sample_weight",
    "sw_negative": r"[Nn]egative",
    "sw_zero": r"zero",
    "sw_nan": r"NaN",
    "sparse_input": r"[Ss]parse",  # estimators whose tags refuse sparse input
}
SOFT = {
    "single_class": r"class",
    # values around 1e6 may make training diverge: scikit-learn's error then
    "large_values": r"^Solver produced non-finite parameter weights",
    "score_labels": r"Mix of label input types|not supported between instances|type",
    "score_outputs": r"output",
    "sparse_codes": r"[Ss]parse",  # inverse_transform may want dense codes
    "multilabel_unsupported": r"1d array|multilabel|multi-label",
}


@dataclass
class Case:
    """One drawn call: the method, its arguments and what is wrong with them."""

    method: str
    fitted_on: str  # "array", "frame" or "nothing" (a fresh clone)
    X: object
    y: object = None
    sample_weight: object = None
    classes: object = None
    defects: set = field(default_factory=set)

    def hard_defects(self):
        return {d for d in self.defects if d in HARD}


# --------------------------------------------------------------------------- #
# drawing X                                                                    #
# --------------------------------------------------------------------------- #
DENSE_DTYPES = ["float64", "float64", "float64", "float32", "float32", "float16",
                "int64", "int8", "uint8", "bool", "object", "numeric_str",
                "complex128", "object_with_word"]
SPARSE_DTYPES = ["float64", "float64", "float32", "int64", "bool", "complex128"]
CONTAINERS = ["ndarray", "ndarray_F", "list", "csr", "csc", "coo", "csr_array",
              "frame", "frame_odd_names", "frame_mixed_names", "frame_nullable"]
ODD_NAMES = ["", " ", "a b", "ñ", "x" * 60, "0", "1.5", "None", "__dict__",
             "coefs_", "\n", "日本", "a"]


def _cast(values, dtype):
    """``values`` (float64, finite) as ``dtype``, with no out-of-range cast."""
    if dtype in ("int64", "int8", "uint8"):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), max(info.min, -1e18), min(info.max, 1e18)).astype(dtype)
    if dtype == "bool":
        return values > 0
    if dtype in ("float16", "float32"):
        limit = np.finfo(dtype).max / 2
        return np.clip(values, -limit, limit).astype(dtype)
    if dtype == "complex128":
        return values + 1j
    if dtype == "object":
        return values.astype(object)
    if dtype == "numeric_str":
        return values.astype(str)
    if dtype == "object_with_word":
        out = values.astype(object)
        if out.size:
            out.flat[0] = "word"
        return out
    return values.astype(dtype)


def _inject(values, special, position, defects):
    """Put NaN or an infinity at ``position`` of a float array."""
    if special is None or values.size == 0 or values.dtype.kind not in "fcO":
        return values
    values = values.copy()
    values.flat[position % values.size] = {"nan": np.nan, "inf": np.inf,
                                           "-inf": -np.inf}[special]
    defects.add("nan" if special == "nan" else "inf")
    return values


@st.composite
def matrices(draw, n_features, scale, dtypes=DENSE_DTYPES):
    """(X, defects) for one call; ``n_features`` is what the model expects."""
    n_rows = draw(st.sampled_from([0, 1, 2, 3, 3, 5, 5, 9, 9, 9]))
    n_cols = draw(n_features)
    container = draw(st.sampled_from(CONTAINERS))
    sparse = container in ("csr", "csc", "coo", "csr_array")
    dtype = draw(st.sampled_from(SPARSE_DTYPES if sparse else dtypes))
    values = draw(hnp.arrays(np.float64, (n_rows, n_cols),
                             elements=st.floats(-1, 1, allow_subnormal=False)))
    values = _cast(values * scale, dtype)
    defects = set()
    special = draw(st.sampled_from([None] * 12 + ["nan", "inf", "-inf"]))
    values = _inject(values, special, draw(st.integers(0, 99)), defects)
    defects |= _dtype_defects(dtype, values)
    return _contain(values, container, defects), defects


def _dtype_defects(dtype, values):
    if dtype == "complex128":
        return {"complex"}
    if dtype == "object_with_word" and values.size:
        return {"string_in_X"}
    if dtype == "numeric_str" and values.size and not np.all(
            np.isfinite(values.astype(float))):
        return {"string_in_X"}  # "nan" / "inf" as text
    return set()


def _contain(values, container, defects):
    if container == "ndarray":
        return values
    if container == "ndarray_F":
        return np.asfortranarray(values)
    if container == "list":
        return values.tolist()
    if container in ("csr", "csc", "coo"):
        return getattr(sp, f"{container}_matrix")(values)
    if container == "csr_array":
        return sp.csr_array(values)
    return _frame(values, container, defects)


def _frame(values, container, defects):
    n_cols = values.shape[1]
    if container == "frame":
        columns = NAMES[:n_cols] + [f"f{i}" for i in range(3, n_cols)]
    elif container == "frame_odd_names":
        columns = ODD_NAMES[-n_cols:] if n_cols else []
    elif container == "frame_mixed_names":
        columns = ["a", *range(1, n_cols)]
        if n_cols > 1:
            defects.add("mixed_names")
    else:  # nullable extension dtypes, with pd.NA for NaN
        return _nullable_frame(values)
    return pd.DataFrame(values, columns=columns[:n_cols])


def _nullable_frame(values):
    kind = values.dtype.kind
    dtype = {"b": "boolean", "i": "Int64", "u": "Int64", "f": "Float64"}.get(kind)
    frame = pd.DataFrame(values)
    if dtype is None or frame.shape[1] == 0:
        return frame
    return frame.astype(dtype)


# --------------------------------------------------------------------------- #
# drawing y, sample_weight and whole cases                                     #
# --------------------------------------------------------------------------- #
CLASSIFIER_LABELS = {
    "fit": ["int", "int", "int", "str", "str", "float_int", "bool", "single",
            "multilabel", "column", "continuous", "mixed", "nan", "none"],
    "partial_fit": ["int", "int", "int", "int", "unseen", "str", "continuous", "nan",
                    "none"],
    "score": ["int", "int", "str"],
}
REGRESSOR_TARGETS = {
    "fit": ["float", "float", "float", "int", "bool", "column", "multi", "str", "nan",
            "inf", "none", "complex"],
    "partial_fit": ["float", "float", "float", "int", "column", "multi", "str", "nan",
                    "inf", "none"],
    "score": ["float", "float", "multi"],
}


def _labels(kind, n, rng):
    """Classifier targets of ``kind`` for ``n`` samples, and their defects."""
    if kind == "int":
        return rng.integers(0, 3, n), set()
    if kind == "unseen":
        return np.full(n, 3), {"y_unseen"}
    if kind == "str":
        return rng.choice(np.array(["cat", "dog", "ß"]), n), set()
    if kind == "float_int":
        return rng.integers(0, 3, n).astype(float), set()
    if kind == "bool":
        return rng.integers(0, 2, n).astype(bool), set()
    if kind == "continuous":
        return rng.integers(0, 3, n) + 0.5, {"y_continuous"}
    if kind == "mixed":
        y = np.array(["a", 1] * n, dtype=object)[:n]
        return y, {"y_mixed"} if n > 1 else set()
    if kind == "single":
        return np.full(n, 1), set()
    if kind == "multilabel":
        return rng.integers(0, 2, (n, 2)), set()
    if kind == "column":
        return rng.integers(0, 3, (n, 1)), set()
    y = rng.integers(0, 3, n).astype(float)  # "nan"
    y[:1] = np.nan
    return y, {"y_nan"} if n else set()


def _regression_targets(kind, n, rng):
    """Regressor targets of ``kind`` for ``n`` samples, and their defects."""
    y = rng.normal(size=n)
    if kind == "int":
        return rng.integers(-5, 5, n), set()
    if kind == "bool":
        return y > 0, set()
    if kind == "column":
        return y[:, None], set()
    if kind == "multi":
        return rng.normal(size=(n, 2)), set()
    if kind == "str":
        return np.array(["cat"] * n), {"y_string"} if n else set()
    if kind == "complex":
        return y + 1j, {"complex"}
    if kind in ("nan", "inf"):
        y[:1] = np.nan if kind == "nan" else np.inf
        return y, {f"y_{kind}"} if n else set()
    return y, set()  # "float"


@st.composite
def targets(draw, est, method, fitted_on, n):
    """(y, defects, classes) for a supervised call on ``n`` samples."""
    kind = _kind(est)
    if kind == "transformer":
        return None, set(), None
    role = "fit" if method == "fit" else method
    table = CLASSIFIER_LABELS if kind == "classifier" else REGRESSOR_TARGETS
    choices = table[role]
    target = draw(st.sampled_from(choices))
    if target == "none":
        return None, {"y_none"}, None
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    make = _labels if kind == "classifier" else _regression_targets
    y, defects = make(target, n, rng)
    defects |= _target_context(est, method, fitted_on, target, y)
    if draw(st.sampled_from([False] * 9 + [True])):  # a sample too many or too few
        y = _change_length(y, shorter=draw(st.booleans()))
        defects.add("y_length")
    classes = CLASSES if kind == "classifier" and method == "partial_fit" \
        and fitted_on == "nothing" else None
    return y, defects, classes


def _change_length(y, shorter):
    if shorter and len(y):
        return y[:-1]
    extra = y[:1] if len(y) else np.zeros((1,) + y.shape[1:], dtype=y.dtype)
    return np.concatenate([y, extra])


def _target_context(est, method, fitted_on, target, y):
    """Defects that depend on the model a target meets."""
    if _kind(est) == "classifier":
        if method == "fit" and target not in ("multilabel", "continuous") and \
                len(np.unique(np.asarray(y, dtype=str))) == 1:
            return {"single_class"}
        if target == "multilabel" and not get_tags(est).classifier_tags.multi_label:
            return {"multilabel_unsupported"}
        if method == "partial_fit" and target == "str":
            return {"y_unseen"}
        if method == "score" and target == "str":
            return {"score_labels"}
        return set()
    if target == "multi" and method == "partial_fit" and fitted_on != "nothing":
        return {"y_outputs"}
    if target == "multi" and method == "score":
        return {"score_outputs"}
    return set()


SAMPLE_WEIGHTS = [None] * 8 + ["ones", "length", "negative", "zeros", "nan"]


@st.composite
def sample_weights(draw, est, method, n):
    """(sample_weight, defects) when ``method`` takes sample weights."""
    if "sample_weight" not in inspect.signature(getattr(est, method)).parameters:
        return None, set()
    kind = draw(st.sampled_from(SAMPLE_WEIGHTS))
    if kind is None or (n == 0 and kind != "length"):
        return None, set()
    weights = np.ones(n)
    if kind == "length":
        return np.ones(n + 1), {"sw_length"}
    if kind == "negative":
        weights[0] = -1.0
    elif kind == "zeros":
        weights[:] = 0.0
    elif kind == "nan":
        weights[0] = np.nan
    names = {"negative": "sw_negative", "zeros": "sw_zero", "nan": "sw_nan"}
    return weights, {names[kind]} if kind in names else set()


def _n_rows(X):
    return len(X) if isinstance(X, list) else X.shape[0]


def _n_cols(X):
    if isinstance(X, list):
        return len(X[0]) if X else 0
    return X.shape[1]


def _shape_defects(X, method, fitted_on, expected):
    """Defects of X's shape and column names against the fitted model."""
    defects = set()
    if isinstance(X, list) and not X:
        defects.add("empty_list")
    if _n_rows(X) == 0:
        defects.add("zero_rows")
    if _n_cols(X) == 0:
        defects.add("zero_features")
        if isinstance(X, pd.DataFrame):
            defects.add("frame_no_columns")
    checked = fitted_on != "nothing" and method not in ("fit", "fit_transform")
    if checked and _n_cols(X) != expected:
        defects.add("n_features")
    if checked and fitted_on == "frame" and isinstance(X, pd.DataFrame) and \
            all(isinstance(c, str) for c in X.columns) and \
            list(X.columns) != NAMES:
        defects.add("names_mismatch")
    return defects


def _expected_features(est, method):
    return est.n_components if method == "inverse_transform" else N_FEATURES


@st.composite
def cases(draw, est, scales):
    """One call on ``est``: a method, a model to call it on, and inputs."""
    method = draw(st.sampled_from(_methods(est)))
    models = ["nothing", "array", "frame"] if method in FIT_METHODS else ["array", "frame"]
    fitted_on = draw(st.sampled_from(models))
    expected = _expected_features(est, method)
    widths = [0, 1, 2, 2, 3, 3, 6, 6] if fitted_on == "nothing" or method in ("fit", "fit_transform") \
        else [expected] * 8 + [0, 1, 6]
    scale = draw(st.sampled_from(scales))
    X, defects = draw(matrices(st.sampled_from(widths), scale, DENSE_DTYPES))
    if scale >= 1e6 and method in FIT_METHODS:
        defects.add("large_values")
    defects |= _shape_defects(X, method, fitted_on, expected)
    if method == "inverse_transform":  # codes carry no feature names
        defects -= {"mixed_names", "names_mismatch"}
        if sp.issparse(X):
            defects.add("sparse_codes")
    elif sp.issparse(X) and not get_tags(est).input_tags.sparse:
        defects.add("sparse_input")
    case = Case(method, fitted_on, X, defects=defects)
    if method in ("fit", "partial_fit", "score"):
        case.y, y_defects, case.classes = draw(targets(est, method, fitted_on, _n_rows(X)))
        case.defects |= y_defects
    if method in ("fit", "partial_fit"):
        case.sample_weight, sw_defects = draw(sample_weights(est, method, _n_rows(X)))
        case.defects |= sw_defects
    return case


# --------------------------------------------------------------------------- #
# reference models, state fingerprints, running a case                         #
# --------------------------------------------------------------------------- #
_REFERENCES = {}


def _training_data(est, n=30, frame=False):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, N_FEATURES))
    kind = _kind(est)
    y = {"classifier": CLASSES[np.arange(n) % 3], "regressor": X @ [1.0, 2.0, 3.0],
         "transformer": None}[kind]
    return (pd.DataFrame(X, columns=NAMES) if frame else X), y


def _quiet_fit(est, X, y):
    """Fit, ignoring the convergence warnings of a few epochs (not RuntimeWarning)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        return est.fit(X, y)


def _reference(est, fitted_on):
    """A fitted copy of ``est`` (on arrays or on a frame with column names)."""
    if fitted_on == "nothing":
        return clone(est)
    key = (id(est), fitted_on)
    if key not in _REFERENCES:
        X, y = _training_data(est, frame=fitted_on == "frame")
        _REFERENCES[key] = _quiet_fit(clone(est), X, y)
    return copy.deepcopy(_REFERENCES[key])


def fingerprint(obj):
    """A deep, comparable snapshot of an object's state (arrays by bytes)."""
    if isinstance(obj, np.ndarray):
        data = repr(obj.tolist()) if obj.dtype == object else obj.tobytes()
        return ("ndarray", obj.dtype.str, obj.shape, data)
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(fingerprint(v) for v in obj))
    if isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: repr(kv[0]))
        return ("dict", tuple((repr(k), fingerprint(v)) for k, v in items))
    if isinstance(obj, (float, np.floating)):
        return (type(obj).__name__, repr(obj))
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return (type(obj).__qualname__, fingerprint(vars(obj)))
    return (type(obj).__name__, repr(obj))


def _changed_keys(before, after):
    b, a = dict(before[1][1]), dict(after[1][1])
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


class Hang(BaseException):
    """A call ran past the watchdog's limit."""


HAS_TIMER = hasattr(signal, "setitimer")


@contextmanager
def watchdog(seconds):
    """Raise ``Hang`` in the main thread if the block runs past ``seconds``."""
    if not HAS_TIMER:  # no SIGALRM on this platform
        yield
        return

    def handler(signum, frame):
        raise Hang(f"the call ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _invoke(model, case):
    method = getattr(model, case.method)
    kwargs = {}
    if case.sample_weight is not None:
        kwargs["sample_weight"] = case.sample_weight
    if case.classes is not None:
        kwargs["classes"] = case.classes
    if case.y is None and (case.method not in ("fit", "partial_fit", "score")
                           or _kind(model) == "transformer"):
        return method(case.X, **kwargs)
    return method(case.X, case.y, **kwargs)


def run_case(est, case):
    """Call ``case`` on a model; returns (model, result, error, warnings, before)."""
    model = _reference(est, case.fitted_on)
    before = fingerprint(model)
    result = error = None
    with warnings.catch_warnings(record=True) as caught, watchdog(60):
        warnings.simplefilter("always")
        try:
            result = _invoke(model, case)
        except Exception as exc:  # judged by check_case
            error = exc
    return model, result, error, caught, before


# --------------------------------------------------------------------------- #
# judging a case                                                               #
# --------------------------------------------------------------------------- #
def _no_runtime_warning(caught):
    found = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
             for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not found, f"RuntimeWarning escaped: {found}"


def check_case(case, model, result, error, caught, before):
    """The contract: works on valid input, rejects bad input clearly, no side effects."""
    _no_runtime_warning(caught)
    if error is not None:
        assert isinstance(error, (ValueError, TypeError)), (
            f"{type(error).__name__} raised: {error}")
        patterns = [HARD.get(d) or SOFT[d] for d in case.defects]
        assert patterns, f"valid input rejected: {type(error).__name__}: {error}"
        assert any(re.search(p, str(error)) for p in patterns), (
            f"the message names none of {sorted(case.defects)}: {error}")
        after = fingerprint(model)
        assert after == before, f"a rejected call changed {_changed_keys(before, after)}"
        return
    assert not case.hard_defects(), f"accepted input with {sorted(case.hard_defects())}"
    if case.method in READ_ONLY_METHODS:
        after = fingerprint(model)
        assert after == before, f"{case.method} changed {_changed_keys(before, after)}"
        _check_output(model, case.method, result, _n_rows(case.X))
    else:
        _check_fitted(model, case)


def _check_output(model, method, result, n):
    if method == "score":
        assert isinstance(result, float)
        assert np.isfinite(result) or (n < 2 and _kind(model) == "regressor")
        return
    result = np.asarray(result)
    assert result.shape[0] == n
    if method == "predict" and _kind(model) == "classifier":
        assert np.isin(result, model.classes_).all()
    elif method == "predict_proba":
        assert result.shape == (n, len(model.classes_))
        assert np.all((result >= 0) & (result <= 1))
        np.testing.assert_allclose(result.sum(axis=1), 1.0, rtol=1e-6)
    elif method == "predict_log_proba":
        assert not np.isnan(result).any() and np.all(result <= 0)
    else:
        assert np.isfinite(result).all()
    if method in ("transform", "inverse_transform"):
        width = model.n_components if method == "transform" else model.n_features_in_
        assert result.shape == (n, width)


def _check_fitted(model, case):
    assert model.n_features_in_ == _n_cols(case.X)
    assert all(np.isfinite(W).all() for W in _weights(model))
    read = "predict" if hasattr(model, "predict") else "transform"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = getattr(model, read)(case.X)
    _no_runtime_warning(caught)
    assert np.asarray(out).shape[0] == _n_rows(case.X)


# --------------------------------------------------------------------------- #
# the fuzz tests                                                               #
# --------------------------------------------------------------------------- #
SCALES = [1.0, 1.0, 100.0, 1e6]
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
FAST = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=_HEALTH)
THOROUGH = settings(max_examples=1000, deadline=None, suppress_health_check=_HEALTH)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
@FAST
@given(data=st.data())
def test_fuzzed_inputs_work_or_are_rejected_clearly(est, data):
    case = data.draw(cases(est, SCALES), label="case")
    outcome = run_case(est, case)
    event(f"{case.method}: {'works' if outcome[2] is None else 'rejected'}")
    check_case(case, *outcome)


@pytest.mark.slow
@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
@THOROUGH
@given(data=st.data())
def test_fuzzed_inputs_thorough(est, data):
    case = data.draw(cases(est, SCALES), label="case")
    outcome = run_case(est, case)
    event(f"{case.method}: {'works' if outcome[2] is None else 'rejected'}")
    check_case(case, *outcome)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
def test_rejected_refit_keeps_the_fitted_model(est):
    # One deterministic case of the fuzzed contract: a fit that fails on NaN
    # leaves every attribute of the previous fit untouched.
    model = _reference(est, "array")
    before = fingerprint(model)
    X, y = _training_data(est)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X, y) if y is not None else model.fit(X)
    assert fingerprint(model) == before


def _fitted_state(model):
    """Everything a fit may change: the attributes that are not parameters."""
    params = model.get_params(deep=False)
    return fingerprint({k: v for k, v in vars(model).items() if k not in params})


@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
def test_refit_that_diverges_keeps_the_fitted_model(est):
    # Weights, counters and curves of the previous fit, not the new fit's
    # initial weights: the step and inputs make the first epoch overflow.
    model = _reference(est, "array")
    X, y = _training_data(est, n=60)
    if isinstance(est, PerceptronClassifier):
        model.set_params(eta0=1e300)
        X = X * 1e10
    else:
        model.set_params(solver="sgd", learning_rate_init=1e200, max_iter=20)
        X = X * 1e150
    before = _fitted_state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflow
        with pytest.raises(ValueError, match="non-finite|overflow"):
            model.fit(X, y) if y is not None else model.fit(X)
    assert _fitted_state(model) == before


def test_first_partial_fit_rejects_labels_outside_classes():
    # scikit-learn's MLPClassifier raises "`y` has classes not in `self.classes_`".
    X, _ = _training_data(ESTIMATORS[0], n=6)
    model = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    with pytest.raises(ValueError, match="class"):
        model.partial_fit(X, [0, 1, 2, 3, 3, 3], classes=[0, 1, 2])
    assert not hasattr(model, "coefs_")


def test_perceptron_predicts_on_the_numeric_strings_it_was_fitted_on():
    X = np.array([["0.5", "1"], ["-1", "2"], ["3", "-0.5"], ["-2", "-1"]])
    model = PerceptronClassifier(max_iter=5).fit(X, [0, 1, 0, 1])
    np.testing.assert_array_equal(model.predict(X), model.predict(X.astype(float)))


# --------------------------------------------------------------------------- #
# numerical trouble                                                            #
# --------------------------------------------------------------------------- #
NON_FINITE = r"^Solver produced non-finite parameter weights"


def _diverging_cases():
    """(estimator, X, y) whose training blows up, from three different causes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ np.arange(1.0, 6.0)
    sgd = dict(solver="sgd", max_iter=30, random_state=0)
    return [
        pytest.param(MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=10.0, **sgd), X, y,
                     id="huge-learning-rate"),
        pytest.param(MLPRegressor(hidden_layer_sizes=(16,), **sgd), X * 1e6, y * 1e6, id="unscaled-1e6"),
        pytest.param(MLPRegressor(hidden_layer_sizes=(64,) * 8, activation="identity",
                                  learning_rate_init=0.1, **sgd), X * 10, y * 10,
                     id="exploding-gradients"),
        # a finite gradient times the rate overflows: the velocity itself is infinite
        pytest.param(MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=1e200, **sgd),
                     X * 1e100, y, id="infinite-velocity"),
    ]


def _fit_recording(model, X, y):
    """Fit; returns (error or None, recorded warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
        except ValueError as exc:
            return exc, caught
    return None, caught


@pytest.mark.parametrize("est, X, y", _diverging_cases())
def test_divergence_raises_scikit_learn_error_and_keeps_last_finite_weights(est, X, y):
    model = clone(est)
    error, _ = _fit_recording(model, X, y)
    assert error is not None and re.search(NON_FINITE, str(error))
    for advice in ("scal", "learning_rate_init", "clip_norm"):
        assert advice in str(error)
    assert all(np.isfinite(W).all() for W in model.coefs_ + model.intercepts_)
    # the optimizer's non-finite moments are forgotten, not carried into a warm start
    assert all(np.isfinite(v).all() for v in model._optimizer_state.values())
    assert len(model.loss_curve_) == model.n_iter_ < est.max_iter
    if model.n_iter_:  # the weights of the last epoch that completed
        reference = clone(est).set_params(max_iter=model.n_iter_)
        _fit_recording(reference, X, y)
        for W, W_ref in zip(model.coefs_, reference.coefs_, strict=True):
            np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("X_val_scale", ["overflowing predictions", "overflowing score"])
def test_validation_data_that_overflow_score_nan_and_keep_the_starting_weights(X_val_scale):
    # Validation rows near float64's largest value: the network's output on
    # them is not finite (scikit-learn's _score gives NaN there), or finite
    # but beyond squaring (an R^2 of -inf). No epoch scores above -inf, so none
    # is "best": the fit warns and keeps the weights it started from.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ np.arange(1.0, 6.0)
    if X_val_scale == "overflowing predictions":
        X_val, expected = np.full((50, 5), 1.7e308), np.nan
    else:
        X_val, expected = X[:50] * 1e307, -np.inf
    model = MLPRegressor(hidden_layer_sizes=(16,), max_iter=1, warm_start=True,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    start = [W.copy() for W in model.coefs_ + model.intercepts_]
    model.set_params(early_stopping=True, max_iter=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y, X_val=X_val, y_val=y[:50])
    _no_runtime_warning(caught)
    assert any("scored no epoch above -inf" in str(w.message)
               and w.category is ConvergenceWarning for w in caught)
    np.testing.assert_array_equal(model.validation_scores_, [expected] * 4)
    assert model.n_iter_ == 4 and model.best_validation_score_ == -np.inf
    for W, W_start in zip(model.coefs_ + model.intercepts_, start, strict=True):
        np.testing.assert_array_equal(W, W_start)


def test_a_finite_validation_score_gives_no_overflow_warning():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, early_stopping=True,
                     random_state=0).fit(X, X[:, 0])
    assert not [w for w in caught if "scored no epoch" in str(w.message)]


@pytest.mark.parametrize("est, X, y", _diverging_cases())
def test_divergence_lets_no_runtime_warning_escape(est, X, y):
    _, caught = _fit_recording(clone(est), X, y)
    _no_runtime_warning(caught)


@pytest.mark.parametrize("est", [MLPClassifier(hidden_layer_sizes=(16,), max_iter=30,
                                               random_state=0),
                                 MLPRegressor(hidden_layer_sizes=(16,), max_iter=30,
                                              random_state=0)],
                         ids=_est_id)
def test_unscaled_data_trains_with_adam_without_warnings(est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * 1e6 + 3e6
    y = (X[:, 0] > 3e6).astype(int) if is_classifier(est) else X @ np.ones(5)
    error, caught = _fit_recording(est, X, y)
    _no_runtime_warning(caught)
    assert error is None or re.search(NON_FINITE, str(error))
    assert all(np.isfinite(W).all() for W in est.coefs_)
    for method in ("predict", "predict_proba"):
        if hasattr(est, method):
            assert np.isfinite(getattr(est, method)(X)).all()


def test_clip_norm_tames_exploding_gradients():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * 10
    y = X @ np.arange(1.0, 6.0)
    params = dict(hidden_layer_sizes=(64,) * 8, activation="identity", solver="sgd",
                  learning_rate_init=0.1, max_iter=30, random_state=0)
    error, _ = _fit_recording(MLPRegressor(**params), X, y)
    assert error is not None  # without clipping this network blows up
    model = MLPRegressor(clip_norm=1.0, **params)
    error, caught = _fit_recording(model, X, y)
    assert error is None
    _no_runtime_warning(caught)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_poisson_loss_on_unscaled_data_lets_no_runtime_warning_escape():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)) * 1e3
    y = np.abs(X @ np.arange(1.0, 5.0))
    model = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), solver="lbfgs",
                         max_iter=5, random_state=0)
    error, caught = _fit_recording(model, X, y)
    _no_runtime_warning(caught)
    assert error is None or re.search(NON_FINITE, str(error))


@pytest.mark.parametrize("rows", ["dense", "sparse"])
def test_lbfgs_on_inputs_that_overflow_raises_the_non_finite_error(rows):
    # Dense rows go through the compiled loss, whose loss comes back infinite;
    # CSR rows through numpy, whose overflow raises inside the loss: each is a
    # non-finite loss to L-BFGS, and the fit ends with scikit-learn's error
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * 1e200
    y = X[:, 0] * 1e-200
    model = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=20,
                         random_state=0)
    error, caught = _fit_recording(model, sp.csr_matrix(X) if rows == "sparse" else X, y)
    _no_runtime_warning(caught)
    assert error is not None and re.search(NON_FINITE, str(error))
    assert all(np.isfinite(W).all() for W in model.coefs_ + model.intercepts_)


def test_predict_log_proba_of_saturated_probabilities_warns_nothing():
    model = _reference(ESTIMATORS[0], "array")
    X = np.array([[1e6, -1e6, 1e6], [-1e6, 1e6, -1e6]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_proba = model.predict_log_proba(X)
    _no_runtime_warning(caught)
    assert not np.isnan(log_proba).any() and np.all(log_proba <= 0)
    np.testing.assert_allclose(np.exp(log_proba), model.predict_proba(X), atol=1e-12)


# --------------------------------------------------------------------------- #
# interruption (Ctrl-C during fit)                                             #
# --------------------------------------------------------------------------- #
EPOCH_LINE = re.compile(r"^(?:Iteration|-- Epoch) \d+", re.MULTILINE)


def _in_gc_callback(frame):
    """Whether ``frame`` runs inside a ``gc.callbacks`` function (hypothesis
    registers one), where Python prints and drops a KeyboardInterrupt."""
    import gc

    codes = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


@contextmanager
def ctrl_c_after_epochs(n_epochs, log):
    """A timer signal that raises KeyboardInterrupt once ``n_epochs`` are done.

    A SIGALRM arrives every 2 ms; once the verbose ``log`` shows ``n_epochs``
    finished epochs, the handler raises KeyboardInterrupt wherever fit is, as
    Ctrl-C would.
    """
    fired = []

    def handler(signum, frame):
        if fired or len(EPOCH_LINE.findall(log.getvalue())) < n_epochs:
            return
        if _in_gc_callback(frame):  # Python ignores exceptions there: next tick
            return
        fired.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
    try:
        yield fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _interruptible(est, early_stopping):
    """``est`` set to train for long, in many mini-batches, printing each epoch."""
    wanted = dict(max_iter=3000, tol=0.0, n_iter_no_change=10**6, batch_size=16,
                  verbose=True, shuffle=True, early_stopping=early_stopping)
    params = est.get_params()
    return clone(est).set_params(**{k: v for k, v in wanted.items() if k in params})


def _fit_catching_escape(model, X, y):
    """Fit; a KeyboardInterrupt escaping fit fails the test (not the session)."""
    try:
        return model.fit(X, y) if y is not None else model.fit(X)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped fit", pytrace=True)


def _interrupted_fit(model, X, y):
    import io
    from contextlib import redirect_stdout

    log = io.StringIO()
    errors = np.geterr()
    with warnings.catch_warnings(record=True) as caught, redirect_stdout(log), \
            ctrl_c_after_epochs(3, log) as fired:
        warnings.simplefilter("always")
        returned = _fit_catching_escape(model, X, y)
    assert fired, "the timer never interrupted the fit"
    assert np.geterr() == errors  # however the interrupt fell (see the test below)
    return returned, caught, log.getvalue()


@pytest.mark.parametrize("solver", ["adam", "lbfgs", "perceptron"])
def test_ctrl_c_inside_the_loops_overflow_check_leaves_numpys_error_state(
        monkeypatch, solver):
    # A Ctrl-C landing inside np.errstate's entry or exit leaves its state in
    # force (the MLPs' "raise", the perceptron's validation score's
    # "ignore"); fit swallows the interrupt, so it must put the state back.
    import scipy.optimize

    import sknet._core.perceptron as perceptron
    import sknet._core.trainer as trainer

    def interrupted(*args, **kwargs):
        np.seterr(over="raise", invalid="raise", divide="raise", under="raise")
        raise KeyboardInterrupt

    # (the interrupt comes from the call that holds the errstate block)
    if solver == "lbfgs":
        monkeypatch.setattr(scipy.optimize, "minimize", interrupted)
    elif solver == "adam":
        monkeypatch.setattr(trainer, "_epoch", interrupted)
    else:
        monkeypatch.setattr(perceptron, "_validation_score", interrupted)
    errors = np.geterr()
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    model = PerceptronClassifier(early_stopping=True, max_iter=5) \
        if solver == "perceptron" else \
        MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=5)
    try:
        with pytest.warns(UserWarning, match="interrupted"):
            model.fit(X, y)
        assert np.geterr() == errors
    finally:
        np.seterr(**errors)


@pytest.mark.parametrize("solver", ["adam", "lbfgs", "perceptron"])
def test_ctrl_c_inside_a_scikit_learn_config_context_leaves_its_configuration(
        monkeypatch, solver):
    # A Ctrl-C landing inside one of scikit-learn's config_context blocks (each
    # epoch's validation score opens one), after its set_config and before its
    # try, leaves that block's settings in force; fit swallows the interrupt,
    # so it must put scikit-learn's configuration back.
    import scipy.optimize
    import sklearn

    import sknet._core.perceptron as perceptron
    import sknet._core.trainer as trainer

    def interrupted(*args, **kwargs):
        sklearn.set_config(skip_parameter_validation=True, assume_finite=True)
        raise KeyboardInterrupt

    if solver == "lbfgs":
        monkeypatch.setattr(scipy.optimize, "minimize", interrupted)
    elif solver == "adam":
        monkeypatch.setattr(trainer, "_epoch", interrupted)
    else:
        monkeypatch.setattr(perceptron, "_epoch", interrupted)
    before = sklearn.get_config()
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    model = PerceptronClassifier(max_iter=5) if solver == "perceptron" else \
        MLPClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=5)
    try:
        with pytest.warns(UserWarning, match="interrupted"):
            model.fit(X, y)
        assert sklearn.get_config() == before
    finally:
        sklearn.set_config(**before)


@pytest.mark.skipif(not HAS_TIMER, reason="needs signal.setitimer")
@pytest.mark.parametrize("early_stopping", [False, True], ids=["plain", "early-stopping"])
@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
def test_ctrl_c_during_fit_warns_returns_and_keeps_a_whole_epoch(est, early_stopping):
    if early_stopping and "early_stopping" not in est.get_params():
        pytest.skip(f"{type(est).__name__} has no early stopping")
    X, y = _training_data(est, n=1500)
    if y is not None and is_classifier(est):
        y = y % 2  # two classes: one output unit, trained epoch by epoch
    model = _interruptible(est, early_stopping)
    returned, caught, log = _interrupted_fit(model, X, y)
    assert returned is model
    messages = [str(w.message) for w in caught]
    assert any("interrupted" in m.lower() for m in messages), messages
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert not re.search("did not improve|Convergence after", log)  # no early stop
    # the third epoch's line prints before its other callbacks run: a Ctrl-C
    # there undoes that epoch
    assert 2 <= model.n_iter_ < model.max_iter
    _assert_history_consistent(model)
    read = "predict" if hasattr(model, "predict") else "transform"
    assert np.isfinite(getattr(model, read)(X[:10])).all()
    _assert_same_as_fit_stopped_after(model, X, y)


LBFGS_ESTIMATORS = [e for e in ESTIMATORS if "solver" in e.get_params()]


@pytest.mark.skipif(not HAS_TIMER, reason="needs signal.setitimer")
@pytest.mark.parametrize("est", LBFGS_ESTIMATORS, ids=_est_id)
def test_ctrl_c_during_lbfgs_warns_returns_and_keeps_a_whole_iteration(est):
    X, y = _training_data(est, n=1500)
    if y is not None and is_classifier(est):
        y = y % 2
    model = _interruptible(est, early_stopping=False).set_params(
        solver="lbfgs", max_fun=10**6)
    returned, caught, _ = _interrupted_fit(model, X, y)
    assert returned is model
    messages = [str(w.message) for w in caught]
    assert any("interrupted" in m.lower() for m in messages), messages
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    # the third iteration is printed before its other callbacks run: a Ctrl-C
    # there undoes it
    assert 2 <= model.n_iter_ < model.max_iter
    assert np.isfinite(model.loss_)
    _assert_same_as_fit_stopped_after(model, X, y)


def _interrupted_while_recording(cls, method):
    """``cls`` with a Ctrl-C arriving while ``method`` records the fit's results."""

    def interrupted(self, *args, **kwargs):
        self.n_iter_ = -1  # half-way: one counter set, the rest not yet
        raise KeyboardInterrupt

    return type(cls.__name__, (cls,), {method: interrupted})


@pytest.mark.parametrize("est, method", [
    (ESTIMATORS[0], "_publish_stochastic"),
    (clone(ESTIMATORS[0]).set_params(solver="lbfgs"), "_publish_lbfgs"),
    (ESTIMATORS[2], "_publish_stochastic"),
    (ESTIMATORS[3], "_after_fit"),
    (ESTIMATORS[5], "_publish_stochastic"),
], ids=["MLPClassifier", "MLPClassifier-lbfgs", "AutoencoderTransformer",
        "PerceptronClassifier", "RecurrentRegressor"])
def test_ctrl_c_while_recording_the_results_leaves_no_half_set_attribute(est, method):
    fitted = _reference(est, "array")
    model = _interrupted_while_recording(type(est), method)(**est.get_params())
    vars(model).update(copy.deepcopy(vars(fitted)))
    before = fingerprint(vars(model))
    X, y = _training_data(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y) if y is not None else model.fit(X)
    assert fingerprint(vars(model)) == before


def _assert_history_consistent(model):
    if hasattr(model, "loss_curve_"):
        assert len(model.loss_curve_) == model.n_iter_
    if getattr(model, "validation_scores_", None) is not None:
        assert len(model.validation_scores_) == model.n_iter_
    if getattr(model, "best_validation_score_", None) is not None:
        assert model.best_validation_score_ == max(model.validation_scores_)


def _assert_same_as_fit_stopped_after(model, X, y):
    """The model equals a fresh fit of ``n_iter_`` epochs: no half-applied epoch."""
    fresh = clone(model).set_params(max_iter=model.n_iter_, verbose=False)
    _quiet_fit(fresh, X, y)
    assert fresh.n_iter_ == model.n_iter_
    if hasattr(model, "loss_curve_"):
        np.testing.assert_allclose(model.loss_curve_, fresh.loss_curve_, rtol=1e-10)
    for W, W_fresh in zip(_weights(model), _weights(fresh), strict=True):
        np.testing.assert_allclose(W, W_fresh, rtol=1e-10, atol=1e-12)


class CtrlCOnPrint:
    """A stdout whose ``n``-th printed line is interrupted by Ctrl-C."""

    def __init__(self, n):
        self.n, self.lines = n, []

    def write(self, text):
        if text.strip():
            self.lines.append(text)
            if len(self.lines) == self.n:
                raise KeyboardInterrupt
        return len(text)

    def flush(self):
        pass


@pytest.mark.parametrize("est", [pytest.param(e, id=_est_id(e)) for e in ESTIMATORS])
def test_ctrl_c_while_printing_progress_keeps_a_whole_epoch(est):
    from contextlib import redirect_stdout

    X, y = _training_data(est, n=300)
    if y is not None and is_classifier(est):
        y = y % 2
    model = _interruptible(est, early_stopping=False)
    with pytest.warns(UserWarning, match="interrupted"), \
            redirect_stdout(CtrlCOnPrint(3)):  # the third epoch's report
        _fit_catching_escape(model, X, y)
    assert 1 <= model.n_iter_ <= 3
    _assert_history_consistent(model)
    _assert_same_as_fit_stopped_after(model, X, y)


def test_ctrl_c_during_validation_keeps_history_consistent():
    class InterruptedWhileScoring(MLPClassifier):
        """Ctrl-C arrives while the 4th epoch is being scored on validation data."""

        def _validation_scorer(self, Y_val, sample_weight):
            score, calls = super()._validation_scorer(Y_val, sample_weight), []

            def interrupted(P):
                calls.append(None)
                if len(calls) == 4:
                    raise KeyboardInterrupt
                return score(P)

            return interrupted

    X, y = _training_data(ESTIMATORS[0], n=300)
    model = InterruptedWhileScoring(hidden_layer_sizes=(5,), max_iter=50,
                                    early_stopping=True, n_iter_no_change=100,
                                    random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        model.fit(X, y)
    assert model.n_iter_ == len(model.loss_curve_) == len(model.validation_scores_) == 3
    assert model.t_ == 3 * (X.shape[0] - 30)  # 30 samples held out for validation


def test_ctrl_c_between_two_epochs_keeps_the_finished_ones(monkeypatch):
    from sknet._core import trainer

    calls, snapshot = [], trainer._snapshot

    def interrupted_snapshot(*args):  # Ctrl-C while epoch 3's snapshot is taken
        calls.append(None)
        saved = snapshot(*args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return saved

    monkeypatch.setattr(trainer, "_snapshot", interrupted_snapshot)
    X, y = _training_data(ESTIMATORS[1], n=200)
    model = MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        _fit_catching_escape(model, X, y)
    monkeypatch.setattr(trainer, "_snapshot", snapshot)
    assert model.n_iter_ == 2
    _assert_history_consistent(model)
    _assert_same_as_fit_stopped_after(model, X, y)


@pytest.mark.skipif(not HAS_TIMER, reason="needs signal.setitimer")
def test_ctrl_c_with_threads_warns_returns_and_stops_every_thread():
    """PerceptronClassifier(n_jobs=2): Ctrl-C reaches the main thread while it
    waits for the units' threads. fit warns and returns, every unit holds the
    weights of a whole number of its epochs, and no thread trains on."""
    import io
    from contextlib import redirect_stdout

    # three classes: three units; epochs of a few ms, so that Ctrl-C arrives
    # while the main thread waits and stops epochs part-way
    X, y = _training_data(ESTIMATORS[3], n=100_000)
    model = _interruptible(PerceptronClassifier(n_jobs=2, random_state=0),
                           early_stopping=False)
    log = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, redirect_stdout(log), \
            ctrl_c_after_epochs(12, log) as fired:
        warnings.simplefilter("always")
        returned = _fit_catching_escape(model, X, y)
    assert fired, "the timer never interrupted the fit"
    assert returned is model
    assert any("interrupted" in str(w.message).lower() for w in caught)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert not [t for t in threading.enumerate() if t.name.startswith("sknet-perceptron")]
    assert 1 <= model.n_iter_ < model.max_iter
    # the units train independently: unit k equals unit k of a fresh fit of
    # some number of epochs (0: not started)
    unmatched = {k for k in range(3) if model.coef_[k].any() or model.intercept_[k]}
    for n_epochs in range(1, model.n_iter_ + 1):
        fresh = _quiet_fit(clone(model).set_params(max_iter=n_epochs, verbose=False,
                                                   n_jobs=None), X, y)
        unmatched -= {k for k in unmatched
                      if np.array_equal(model.coef_[k], fresh.coef_[k])
                      and model.intercept_[k] == fresh.intercept_[k]}
        if not unmatched:
            break
    assert not unmatched


# --------------------------------------------------------------------------- #
# concurrency                                                                  #
# --------------------------------------------------------------------------- #
CONCURRENT_METHODS = ("predict", "predict_proba", "predict_log_proba",
                      "decision_function", "transform", "inverse_transform")


def _read_all(model, inputs):
    out = {}
    for method in CONCURRENT_METHODS:
        if hasattr(model, method):
            X = inputs["codes"] if method == "inverse_transform" else inputs["X"]
            out[method] = getattr(model, method)(X)
    return out


@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
def test_eight_threads_reading_one_model_get_the_sequential_results(est):
    model = _reference(est, "array")
    rng = np.random.default_rng(1)
    inputs = []
    for _ in range(8):
        X = rng.normal(size=(300, N_FEATURES))
        codes = model.transform(X) if hasattr(model, "inverse_transform") else None
        inputs.append({"X": X, "codes": codes})
    expected = [_read_all(model, chunk) for chunk in inputs]
    before = fingerprint(model)
    start = threading.Barrier(8)

    def work(i):
        start.wait()
        return [_read_all(model, inputs[i]) for _ in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    for i, rounds in enumerate(results):
        for got in rounds:
            assert got.keys() == expected[i].keys()
            for method, value in got.items():
                np.testing.assert_array_equal(value, expected[i][method], err_msg=method)
    assert fingerprint(model) == before


# --------------------------------------------------------------------------- #
# memory guard rail                                                            #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("est", [e for e in ESTIMATORS
                                 if "hidden_layer_sizes" in e.get_params()], ids=_est_id)
def test_network_too_big_for_memory_is_refused_before_allocating(est):
    import tracemalloc

    X, y = _training_data(est)
    model = clone(est).set_params(hidden_layer_sizes=(10**6, 10**6))
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match=r"hidden_layer_sizes.*(GiB|TiB)"):
            model.fit(X, y) if y is not None else model.fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    assert not hasattr(model, "coefs_")


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="Linux's /proc/meminfo")
def test_available_memory_is_the_kernels_estimate_in_bytes():
    from sknet._base import available_memory_bytes

    with open("/proc/meminfo") as meminfo:
        kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
    # the two reads are moments apart: other processes may allocate in between
    assert abs(available_memory_bytes() - 1024 * kib) <= 0.1 * 1024 * kib
    assert available_memory_bytes() <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_memory_guard_compares_with_available_memory(monkeypatch):
    import sknet._base

    X, y = _training_data(ESTIMATORS[1])
    model = MLPRegressor(hidden_layer_sizes=(512, 512), max_iter=1, random_state=0)
    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: 2**20,
                        raising=False)  # 1 MiB left: the 2 MiB of weights do not fit
    with pytest.raises(MemoryError, match="hidden_layer_sizes"):
        model.fit(X, y)
    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: 2**30)
    _quiet_fit(model, X, y)  # 1 GiB is plenty
    assert model.n_iter_ == 1


def test_memory_estimate_counts_weights_gradients_optimizer_and_batch():
    from sknet._base import estimate_fit_bytes

    units, batch = [10, 20, 3], 50
    n_params = 10 * 20 + 20 + 20 * 3 + 3  # 283 weights and biases
    # float64 at least: params + gradient + Adam's two moments, and the
    # activations and deltas of one batch in every layer.
    floor = 8 * (4 * n_params + 2 * batch * (20 + 3))
    adam = estimate_fit_bytes(units, batch, np.float64, "adam")
    assert floor <= adam <= 4 * floor
    assert estimate_fit_bytes(units, batch, np.float32, "adam") == adam // 2
    assert estimate_fit_bytes(units, batch, np.float64, "sgd") < adam
    assert estimate_fit_bytes(units, 2 * batch, np.float64, "adam") > adam


def test_memory_estimate_counts_lbfgs_history_in_float64_for_float32_data():
    from sknet._base import estimate_fit_bytes

    units = [10, 20, 3]
    n_params = 10 * 20 + 20 + 20 * 3 + 3
    # scipy's L-BFGS-B keeps 10 pairs of float64 vectors whatever the data's dtype,
    # and the network holds its parameters and gradient in float32.
    floor = 8 * 2 * 10 * n_params + 4 * 2 * n_params
    assert estimate_fit_bytes(units, 30, np.float32, "lbfgs") >= floor
    f64 = estimate_fit_bytes(units, 30, np.float64, "lbfgs")
    assert estimate_fit_bytes(units, 30, np.float32, "lbfgs") > 0.8 * f64
    # the recurrent estimate too: a GRU layer of 8 units (3 gates) on 4 features, and the output
    from sknet._recurrent import estimate_recurrent_fit_bytes

    n_params = 3 * 8 * (4 + 8 + 2) + (8 + 1) * 3
    recurrent = estimate_recurrent_fit_bytes(4, [8], 3, "gru", False, 5, 30, np.float32,
                                             "lbfgs")
    assert recurrent >= 8 * 2 * 10 * n_params + 4 * 2 * n_params


@pytest.mark.parametrize("est, batch_size, rows", [
    (AutoencoderTransformer(n_components=2, hidden_layer_sizes=(4,)), "auto", 64),
    (MLPRegressor(hidden_layer_sizes=(4,)), "auto", 200),
    (MLPRegressor(hidden_layer_sizes=(4,)), 32, 32),
    (MLPRegressor(hidden_layer_sizes=(4,)), 10**6, 300),
], ids=["autoencoder-auto", "mlp-auto", "mlp-32", "mlp-clipped"])
def test_memory_guard_uses_the_estimators_own_batch_size(monkeypatch, est, batch_size, rows):
    import sknet._base

    X = np.random.default_rng(0).normal(size=(300, 3))
    y = None if isinstance(est, AutoencoderTransformer) else X[:, 0]
    seen = []

    def estimate(units, batch, *args, **kwargs):
        seen.append(batch)
        return 2**40

    monkeypatch.setattr(sknet._base, "estimate_fit_bytes", estimate)
    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: 2**30)
    model = clone(est).set_params(batch_size=batch_size)
    with pytest.raises(MemoryError, match=f"batches of {rows} rows"):
        model.fit(X, y) if y is not None else model.fit(X)
    assert seen == [rows]


# --------------------------------------------------------------------------- #
# values near the largest float: no RuntimeWarning, and no silent answer       #
# --------------------------------------------------------------------------- #
def _near_the_largest_float(n_features, sign=1.0, n_rows=3):
    # One sign per array: scikit-learn's finiteness check sums X, and a sum
    # that overflows both ways warns there (inf - inf), before sknet runs.
    return np.full((n_rows, n_features), sign * 1e308)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
def test_reading_values_near_the_largest_float_answers_or_says_it_overflows(est):
    model = _reference(est, "array")
    for method in READ_ONLY_METHODS:
        if not hasattr(model, method):
            continue
        width = _expected_features(est, method)
        for sign in (1.0, -1.0):
            X = _near_the_largest_float(width, sign)
            y = None if method != "score" or _kind(est) == "transformer" else \
                model.predict(np.zeros((3, width)))
            before = fingerprint(model)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                try:
                    result = getattr(model, method)(X) if y is None else \
                        getattr(model, method)(X, y)
                except ValueError as exc:
                    assert re.search(r"overflows.*1e\+308", str(exc)), exc
                else:
                    assert np.all(np.isfinite(result)) or method == "score", (method, result)
            assert fingerprint(model) == before


def test_a_classifier_does_not_answer_class_0_for_an_overflowing_input():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 20))
    y = (X[:, 0] > 0).astype(int)
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(30,), max_iter=5, random_state=0),
                       X, y)
    X_huge = _near_the_largest_float(20, -1.0)  # the hidden sums give inf - inf: NaN
    for method in ("predict", "predict_proba", "predict_log_proba"):
        with pytest.raises(ValueError, match=r"output overflows .* values up to 1e\+308"):
            getattr(model, method)(X_huge)
    np.testing.assert_array_equal(model.predict(X), model.predict(X))  # still predicts


def _takes_X_val(est):
    return "X_val" in inspect.signature(est.fit).parameters


@pytest.mark.parametrize("est", [e for e in ESTIMATORS if _takes_X_val(e)], ids=_est_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_validation_scores_of_a_huge_X_val_are_not_a_runtime_warning(est, dtype):
    X, y = _training_data(est)
    X = X.astype(dtype)
    big = 1e300 if dtype == np.float64 else 1e37
    model = clone(est).set_params(early_stopping=True, max_iter=3)
    kwargs = {"X_val": X * dtype(big)} if y is None else {"X_val": X * dtype(big), "y_val": y}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        model.fit(X, y, **kwargs) if y is not None else model.fit(X, **kwargs)
    scores = np.asarray(model.validation_scores_)
    assert len(scores) == model.n_iter_
    if _kind(est) == "classifier":
        assert np.all((scores >= 0) & (scores <= 1))
    else:  # no NaN: a score, or -inf for an error beyond the largest float
        assert not np.isnan(scores).any() and np.all(scores <= 1)


@pytest.mark.parametrize("est", [e for e in ESTIMATORS if _takes_X_val(e)
                                 and _kind(e) != "classifier"], ids=_est_id)
def test_float32_early_stopping_on_targets_near_float32_max_warns_nothing(est):
    X, y = _training_data(est)
    X = X.astype(np.float32)
    if y is None:
        kwargs = {"X_val": X * np.float32(1e30)}
    else:
        kwargs = {"X_val": X, "y_val": (y * 1e30).astype(np.float32)}
    model = clone(est).set_params(early_stopping=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        model.fit(X, y, **kwargs) if y is not None else model.fit(X, **kwargs)
    scores = np.asarray(model.validation_scores_)
    assert np.all(np.isfinite(scores)) and np.all(scores < 1)


@pytest.mark.parametrize("dtype, big", [(np.float64, 1e300), (np.float32, 1e30)])
def test_autoencoder_score_of_huge_values_is_minus_inf_or_huge_not_a_warning(dtype, big):
    X, _ = _training_data(ESTIMATORS[2])
    model = _quiet_fit(clone(ESTIMATORS[2]), X.astype(dtype), None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        score = model.score((X * big).astype(dtype))
    assert isinstance(score, float)
    assert score < -big  # the reconstruction cannot follow: the error is of order big ** 2


def test_autoencoder_score_works_in_blocks_of_rows(monkeypatch):
    import sknet._autoencoder

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 6))
    model = _quiet_fit(AutoencoderTransformer(n_components=2, hidden_layer_sizes=(5,),
                                              max_iter=2, random_state=0), X[:200], None)
    expected = -np.mean((X - model.inverse_transform(model.transform(X))) ** 2)
    # blocks of 1000 rows of the widest layer (6 features) in float64
    monkeypatch.setattr(sknet._autoencoder, "_SCORE_BLOCK_BYTES", 1000 * 6 * 8)
    rows = []
    run = model._run

    def spy(X_part, part):
        rows.append(X_part.shape[0])
        return run(X_part, part)

    model._run = spy
    score = model.score(X)
    del model._run
    assert rows == [1000] * 5
    np.testing.assert_allclose(score, expected, rtol=1e-12)


@pytest.mark.parametrize("est", [e for e in ESTIMATORS if _takes_X_val(e)], ids=_est_id)
def test_X_val_with_the_wrong_number_of_features_names_X_val(est):
    X, y = _training_data(est)
    model = clone(est)
    kwargs = {"X_val": X[:, :2]} if y is None else {"X_val": X[:, :2], "y_val": y}
    with pytest.raises(ValueError, match=r"^X_val has 2 features"):
        model.fit(X, y, **kwargs) if y is not None else model.fit(X, **kwargs)
    assert not hasattr(model, "coefs_")


# --------------------------------------------------------------------------- #
# two properties over every estimator and its parameters: a rejected or       #
# failed call on a fitted model changes no fitted attribute, and no call on   #
# accepted input (parameters included) emits a RuntimeWarning                 #
# --------------------------------------------------------------------------- #
class Boom(Exception):
    """An error raised by a user's callback or augmenter."""


def _raise_at(call):
    calls = []

    def hook(*args):
        calls.append(1)
        if len(calls) == call:
            raise Boom(f"failed at call {call}")
        return args[0] if len(args) == 2 else False  # augment(X, rng) / callback

    return hook


def _nan_augmenter(X_batch, rng):
    return X_batch * np.nan


# Values that are wrong for most parameters (none makes a fit run long).
ODD_PARAMETER_VALUES = [-1, 0, -0.5, 0.5, 1.5, 7, 1e308, np.nan, np.inf, "", "x", None,
                        [], [0, 1], True]
# Parameters whose odd values a fit never reads, or that take any object.
UNREAD_PARAMETERS = {"random_state", "verbose", "warm_start", "n_jobs"}


@st.composite
def failing_calls(draw, est):
    """(parameters to set, method) on a fitted model: calls that may fail mid-way."""
    params = est.get_params(deep=False)
    kinds = ["parameter", "parameter"] + [k for k, name in (
        ("callback", "callbacks"), ("augment", "augment"),
        ("diverge", "learning_rate_init")) if name in params]
    kind = draw(st.sampled_from(kinds))
    if kind == "parameter":
        name = draw(st.sampled_from(sorted(set(params) - UNREAD_PARAMETERS)))
        changes = {name: draw(st.sampled_from(ODD_PARAMETER_VALUES))}
    elif kind == "callback":
        changes = {"callbacks": [_raise_at(draw(st.integers(1, 3)))]}
    elif kind == "augment":
        changes = {"augment": draw(st.sampled_from(
            [_raise_at(1), _raise_at(2), _nan_augmenter]))}
        if params.get("solver") == "lbfgs":
            changes["solver"] = "adam"
    else:
        changes = {"solver": "sgd", "learning_rate_init": 1e300, "max_iter": 5}
    if "warm_start" in params:
        changes["warm_start"] = draw(st.booleans())
    methods = [m for m in ("fit", "partial_fit") if hasattr(est, m)]
    return changes, draw(st.sampled_from(methods))


def _call_fit(model, method, X, y):
    kwargs = {"classes": CLASSES} if method == "partial_fit" and _kind(model) == "classifier" \
        else {}
    fit = getattr(model, method)
    return fit(X, **kwargs) if y is None else fit(X, y, **kwargs)


def check_failed_call_changes_nothing(est, changes, method):
    model = _reference(est, "array")
    before = _fitted_state(model)
    X, y = _training_data(est)
    model.set_params(**changes)
    with warnings.catch_warnings(record=True) as caught, watchdog(60):
        warnings.simplefilter("always")
        try:
            _call_fit(model, method, X, y)
        except (ValueError, TypeError, MemoryError, AttributeError, Boom) as exc:
            # AttributeError: scikit-learn's partial_fit is absent for solver='lbfgs'
            assert not isinstance(exc, AttributeError) or not hasattr(model, method), exc
            event(f"{method} failed: {type(exc).__name__}")
            after = _fitted_state(model)
            assert after == before, (f"a failed {method} with {changes} changed "
                                     f"{_changed_keys(before, after)}: {exc}")
        else:
            event(f"{method} worked")
    _no_runtime_warning(caught)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
@settings(FAST, max_examples=25)
@given(data=st.data())
def test_a_failed_call_on_a_fitted_model_changes_no_fitted_attribute(est, data):
    changes, method = data.draw(failing_calls(est), label="call")
    check_failed_call_changes_nothing(est, changes, method)


@pytest.mark.slow
@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
@settings(THOROUGH, max_examples=300)
@given(data=st.data())
def test_a_failed_call_on_a_fitted_model_changes_no_fitted_attribute_thorough(est, data):
    changes, method = data.draw(failing_calls(est), label="call")
    check_failed_call_changes_nothing(est, changes, method)


# Accepted parameter values at the edges of their ranges.
EDGE_PARAMETERS = {
    "alpha": [0.0, 1e-300, 1e4], "l1": [0.0, 1e-300, 10.0],
    "learning_rate_init": [1e-300, 1e-8, 1.0], "clip_norm": [None, 1e-300, 1e300],
    "dropout": [0.0, 0.9], "momentum": [0.0, 1.0], "beta_1": [0.0, 0.999999],
    "beta_2": [0.0, 0.999999], "epsilon": [1e-300, 1e10], "tol": [0.0, 1e300],
    "power_t": [0.0, 10.0], "decay_rate": [1e-300, 1.0], "eta0": [1e-300, 1e300],
    "validation_fraction": [0.2, 0.5], "leaky_relu_slope": [1e-300, 1e3],
    "elu_alpha": [1e-300, 1e3], "noise": [0.0, 1e300],
}
# Magnitudes of accepted inputs, from the smallest normal float to the largest
# (the largest drawn most often: it makes the network's sums overflow).
EDGE_SCALES = [1e-308, 1e-150, 1.0, 1e150, 1e300, 1e308, 1.7e308, 1.7e308]


@st.composite
def accepted_calls(draw, est):
    """(parameters, training scale, method, reading scale): accepted input throughout."""
    params = est.get_params(deep=False)
    names = sorted(set(EDGE_PARAMETERS) & set(params))
    chosen = draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) if names else []
    changes = {n: draw(st.sampled_from(EDGE_PARAMETERS[n])) for n in chosen}
    if "early_stopping" in params:
        changes["early_stopping"] = draw(st.booleans())
    if "solver" in params:
        changes["solver"] = draw(st.sampled_from(["adam", "sgd", "lbfgs"]))
    method = draw(st.sampled_from(_methods(est)[len(FIT_METHODS) - 3:] or ["predict"]))
    fit_scale = draw(st.sampled_from(EDGE_SCALES[:3] + [1e3]))
    read_scale = draw(st.sampled_from(EDGE_SCALES))
    negative = draw(st.booleans())
    return changes, fit_scale, method, read_scale, negative


def check_accepted_input_warns_nothing(est, changes, fit_scale, method, read_scale, negative):
    X, y = _training_data(est)
    model = clone(est).set_params(**changes)
    with warnings.catch_warnings(record=True) as caught, watchdog(60):
        warnings.simplefilter("always")
        try:
            _call_fit(model, "fit", X * fit_scale, y)
        except (ValueError, TypeError) as exc:  # divergence, or a split too small
            event(f"fit refused: {str(exc)[:40]}")
            _no_runtime_warning(caught)
            return
        X_read = np.full((4, N_FEATURES), -read_scale if negative else read_scale)
        # a row of mixed signs, small enough that scikit-learn's finiteness check
        # (a sum over X) cannot overflow both ways
        X_read[1] = np.clip(X[1] * read_scale, -1e300, 1e300)
        if method in FIT_METHODS:
            method = "predict" if hasattr(model, "predict") else "transform"
        if method == "inverse_transform":
            X_read = X_read[:, :model.n_components]
        args = (X_read, model.predict(X[:4])) if method == "score" and y is not None \
            else (X_read,)
        try:
            getattr(model, method)(*args)
            event(f"{method} answered")
        except ValueError as exc:
            assert "overflows" in str(exc), exc
            event(f"{method} overflowed")
    _no_runtime_warning(caught)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
@settings(FAST, max_examples=25)
@given(data=st.data())
def test_no_call_on_accepted_input_emits_a_runtime_warning(est, data):
    check_accepted_input_warns_nothing(est, *data.draw(accepted_calls(est), label="call"))


@pytest.mark.slow
@pytest.mark.parametrize("est", ESTIMATORS, ids=_est_id)
@settings(THOROUGH, max_examples=300)
@given(data=st.data())
def test_no_call_on_accepted_input_emits_a_runtime_warning_thorough(est, data):
    check_accepted_input_warns_nothing(est, *data.draw(accepted_calls(est), label="call"))


@pytest.mark.parametrize("est", [e for e in ESTIMATORS if "solver" in e.get_params()
                                 and hasattr(e, "partial_fit")], ids=_est_id)
def test_partial_fit_after_changing_the_solver_starts_its_optimizer_afresh(est):
    # fitted with adam; SGD's momentum starts from zero, as in a fresh SGD run
    model = _reference(est, "array")
    X, y = _training_data(est)
    fresh = copy.deepcopy(model)
    del fresh._optimizer_state
    for m in (model, fresh):
        assert _call_fit(m.set_params(solver="sgd"), "partial_fit", X, y) is m
    for a, b in zip(_weights(model), _weights(fresh), strict=True):
        np.testing.assert_array_equal(a, b)

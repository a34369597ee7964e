"""Persistence: pickle, joblib, and the safe skops format of ``sknet.io``.

``MODELS`` lists fitted models of every estimator in several configurations;
a new estimator joins by being appended there.
"""

import copy
import functools
import io
import json
import pickle
import sys
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import scipy.sparse
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from skops.io.exceptions import UntrustedTypesFoundException

import sknet
from sknet import MLPClassifier, MLPRegressor
from sknet._autoencoder import AutoencoderTransformer
from sknet._perceptron import PerceptronClassifier
from sknet._recurrent import RecurrentClassifier, RecurrentRegressor
from sknet.augment import Compose, GaussianNoise
from sknet.io import dump, load, trusted_types

# --------------------------------------------------------------------------- #
# fitted models                                                                #
# --------------------------------------------------------------------------- #
FAST = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)

# (id, estimator, data, how to fit): "fit" or "partial_fit"
MODELS = [
    ("MLPClassifier-adam", MLPClassifier(**FAST), "classes", "fit"),
    ("MLPClassifier-lbfgs-strings", MLPClassifier(solver="lbfgs", **FAST), "strings",
     "fit"),
    ("MLPClassifier-sgd-early-stopping-multilabel",
     MLPClassifier(solver="sgd", early_stopping=True, **FAST), "multilabel", "fit"),
    ("MLPClassifier-partial_fit-float32-dropout",
     MLPClassifier(dropout=0.2, activation=["tanh"], **FAST), "classes32",
     "partial_fit"),
    ("MLPRegressor-adam-two-outputs", MLPRegressor(**FAST), "two_outputs", "fit"),
    ("MLPRegressor-poisson-partial_fit",
     MLPRegressor(loss="poisson", solver="sgd", **FAST), "counts", "partial_fit"),
    ("AutoencoderTransformer", AutoencoderTransformer(n_components=2, **FAST),
     "unsupervised", "fit"),
    ("AutoencoderTransformer-tied-early-stopping",
     AutoencoderTransformer(n_components=2, tied_weights=True, early_stopping=True,
                            **FAST), "unsupervised", "fit"),
    # no hidden layer (two biases) and two of them (six): the odd-layout check
    # of a loaded file must let every even depth through
    ("AutoencoderTransformer-shallow",
     AutoencoderTransformer(n_components=2, hidden_layer_sizes=(), max_iter=5, random_state=0),
     "unsupervised", "fit"),
    ("AutoencoderTransformer-deep-untied",
     AutoencoderTransformer(n_components=2, hidden_layer_sizes=(5, 3), tied_weights=False,
                            max_iter=5, random_state=0), "unsupervised", "fit"),
    ("MLPClassifier-augmented",
     MLPClassifier(augment=Compose([GaussianNoise(std=0.05)]), **FAST), "classes",
     "fit"),
    ("PerceptronClassifier", PerceptronClassifier(max_iter=5), "strings", "fit"),
    ("PerceptronClassifier-partial_fit-l1",
     PerceptronClassifier(penalty="l1", max_iter=5), "classes", "partial_fit"),
    ("PerceptronClassifier-sparsified",
     PerceptronClassifier(penalty="l1", alpha=0.05, max_iter=5), "classes", "sparsify"),
    # a 2-D X is read as univariate sequences (4 time steps)
    ("RecurrentClassifier-gru-bidirectional",
     RecurrentClassifier(cell="gru", bidirectional=True, hidden_layer_sizes=(3,), max_iter=2,
                         random_state=0), "classes", "fit"),
    ("RecurrentRegressor-lstm-early-stopping",
     RecurrentRegressor(hidden_layer_sizes=(3, 2), early_stopping=True, max_iter=3,
                        random_state=0), "two_outputs", "fit"),
]

READ_METHODS = ("predict", "predict_proba", "predict_log_proba",
                "decision_function", "transform", "inverse_transform")


def _data(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    if kind in ("classes", "classes32"):
        y = np.arange(60) % 3
        return (X.astype(np.float32) if kind == "classes32" else X), y
    if kind == "strings":
        return X, np.array(["spam", "eggs", "ham"])[np.arange(60) % 3]
    if kind == "multilabel":
        return X, np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    if kind == "two_outputs":
        return X, X[:, :2] @ [[1.0, 2.0], [3.0, 4.0]]
    if kind == "counts":
        return X, rng.poisson(2.0, size=60).astype(float)
    return X, None


def _fit(est, kind, how):
    X, y = _data(kind)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        if how == "partial_fit":
            extra = {"classes": np.unique(y)} if kind.startswith("classes") else {}
            for _ in range(3):
                est.partial_fit(X, y, **extra)
            return est, X
        if how == "sparsify":
            return est.fit(X, y).sparsify(), X
        return (est.fit(X, y) if y is not None else est.fit(X)), X


@pytest.fixture(params=MODELS, ids=[m[0] for m in MODELS])
def fitted(request):
    """(model, X): a freshly fitted model and data to predict on."""
    from sklearn.base import clone

    _, est, kind, how = request.param
    return _fit(clone(est), kind, how)


def _outputs(model, X):
    out = {}
    for method in READ_METHODS:
        if hasattr(model, method):
            arg = model.transform(X) if method == "inverse_transform" else X
            out[method] = getattr(model, method)(arg)
    return out


def _assert_same_outputs(a, b, X):
    expected, got = _outputs(a, X), _outputs(b, X)
    assert expected.keys() == got.keys() and expected
    for method in expected:
        np.testing.assert_array_equal(got[method], expected[method], err_msg=method)


def _params(model):
    return repr(sorted(model.get_params(deep=True).items()))


def _no_warnings(call, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(*args, **kwargs)
    assert not caught, [str(w.message) for w in caught]
    return result


# --------------------------------------------------------------------------- #
# pickle and joblib                                                            #
# --------------------------------------------------------------------------- #
def test_pickle_round_trip_predicts_identically(fitted):
    model, X = fitted
    copy = _no_warnings(pickle.loads, pickle.dumps(model))
    _assert_same_outputs(model, copy, X)
    assert _params(copy) == _params(model)


def test_joblib_round_trip_predicts_identically(fitted, tmp_path):
    model, X = fitted
    joblib.dump(model, tmp_path / "model.joblib")
    copy = _no_warnings(joblib.load, tmp_path / "model.joblib")
    _assert_same_outputs(model, copy, X)


def test_pickled_model_keeps_training_where_it_stopped():
    model = MLPClassifier(warm_start=True, **FAST)
    _fit(model, "classes", "fit")
    copy = pickle.loads(pickle.dumps(model))
    for m in (model, copy):
        _fit(m, "classes", "fit")
    for W, W_copy in zip(model.coefs_, copy.coefs_, strict=True):
        np.testing.assert_array_equal(W, W_copy)
    # as scikit-learn: n_iter_ counts this fit's epochs, loss_curve_ all of them
    assert copy.n_iter_ == model.n_iter_ == 5
    assert copy.loss_curve_ == model.loss_curve_ and len(model.loss_curve_) == 10


# --------------------------------------------------------------------------- #
# what sknet stores on a fitted estimator                                      #
# --------------------------------------------------------------------------- #
PLAIN = (str, bool, int, float, type(None), np.generic)


def _non_plain(value, path):
    """Paths of everything in ``value`` that is not plain data."""
    if isinstance(value, PLAIN):
        return []
    if isinstance(value, np.ndarray):
        ok = value.dtype != object or all(isinstance(v, PLAIN) for v in value.flat)
        return [] if ok else [f"{path} (object array)"]
    if isinstance(value, scipy.sparse.csr_matrix):  # a sparsified coef_, as scikit-learn's
        return [p for a in ("data", "indices", "indptr")
                for p in _non_plain(getattr(value, a), f"{path}.{a}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _non_plain(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        bad = [f"{path} (key {k!r})" for k in value if not isinstance(k, str)]
        return bad + [p for k, v in value.items() for p in _non_plain(v, f"{path}[{k!r}]")]
    if isinstance(value, BaseEstimator) and type(value).__module__.startswith("sklearn."):
        return _non_plain(vars(value), f"{path}<{type(value).__name__}>")
    return [f"{path}: {type(value).__module__}.{type(value).__qualname__}"]


def test_fitted_state_is_plain_data(fitted):
    # Arrays, lists, dicts, numbers and strings only (and scikit-learn's own
    # objects, made of the same): no function, no core object, no RNG.
    model, _ = fitted
    params = model.get_params(deep=False)
    state = {k: v for k, v in vars(model).items() if k not in params}
    assert state
    assert _non_plain(state, type(model).__name__) == []


def test_state_walk_flags_functions_and_helper_objects():
    model, _ = _fit(MLPRegressor(**FAST), "two_outputs", "fit")
    model._helper = lambda z: z
    model._rng = np.random.default_rng(0)
    found = _non_plain(vars(model), "model")
    assert any("_helper" in p and "function" in p for p in found)
    assert any("_rng" in p and "Generator" in p for p in found)


def test_skops_finds_nothing_untrusted_but_sknet_classes(fitted):
    # Everything else the fitted state holds (LabelBinarizer, arrays, dicts)
    # is trusted by skops already.
    model, _ = fitted
    untrusted = set(sio.get_untrusted_types(data=sio.dumps(model)))
    assert f"{type(model).__module__}.{type(model).__name__}" in untrusted
    assert untrusted <= set(trusted_types())


# --------------------------------------------------------------------------- #
# sknet.io                                                                     #
# --------------------------------------------------------------------------- #
def _sknet_classes():
    """Every estimator class sknet defines, and the classes of public modules."""
    import importlib
    import importlib.util
    import pkgutil

    found = set()
    for info in pkgutil.iter_modules(sknet.__path__):
        if info.name in ("_core", "__main__"):
            continue
        if info.name == "onnx" and importlib.util.find_spec("skl2onnx") is None:
            continue  # sknet.onnx needs the onnx extra to import
        module = importlib.import_module(f"sknet.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            public = not info.name.startswith("_")
            if isinstance(obj, type) and not issubclass(obj, BaseException) and \
                    (public or issubclass(obj, BaseEstimator)):
                found.add(f"{obj.__module__}.{obj.__name__}")
    return found


def test_trusted_types_cover_every_sknet_class():
    names = trusted_types()
    assert names == sorted(set(names))
    assert {"sknet._mlp.MLPClassifier", "sknet._mlp.MLPRegressor"} <= set(names)
    assert _sknet_classes() <= set(names)


def test_io_round_trip_loads_without_listing_types(fitted, tmp_path):
    model, X = fitted
    dump(model, tmp_path / "model.skops")
    copy = _no_warnings(load, tmp_path / "model.skops")
    assert type(copy) is type(model)
    _assert_same_outputs(model, copy, X)
    assert _params(copy) == _params(model)


def test_a_model_whose_adam_second_moment_overflowed_saves_and_loads(tmp_path):
    # Gradients near 1e200 square beyond float64: Adam's second moment holds
    # +inf (scikit-learn's too), its step there is 0, and the fit goes on. The
    # saved model loads, and keeps training as the model it was saved from.
    from sklearn.neural_network import MLPRegressor as SklearnMLPRegressor

    X, y = _data("two_outputs")
    X, y = X * 1e100, y * 1e100
    params = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow and max_iter warnings
        model = MLPRegressor(**params).fit(X, y)
        reference = SklearnMLPRegressor(**params).fit(X, y)
    v = model._optimizer_state["v"]
    # sknet's parameters lie layer by layer: weights, then bias
    vs, n = reference._optimizer.vs, len(reference.coefs_)
    expected = np.concatenate([vs[k].ravel() for i in range(n) for k in (i, n + i)])
    assert np.isposinf(v).any() and np.isposinf(expected).any()
    np.testing.assert_array_equal(np.isposinf(v), np.isposinf(expected))
    dump(model, tmp_path / "model.skops")
    copy = _no_warnings(load, tmp_path / "model.skops")
    np.testing.assert_array_equal(copy._optimizer_state["v"], v)
    for m in (model, copy):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            m.partial_fit(X, y)
    np.testing.assert_array_equal(copy.predict(X), model.predict(X))


def test_io_round_trip_of_a_pipeline_through_file_objects():
    X, y = _data("strings")
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**FAST))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        pipe.fit(X * 1000 + 5, y)
    buffer = io.BytesIO()
    dump(pipe, buffer)
    buffer.seek(0)
    copy = load(buffer)
    np.testing.assert_array_equal(copy.predict_proba(X), pipe.predict_proba(X))
    np.testing.assert_array_equal(copy.predict(X), pipe.predict(X))
    assert copy[0].mean_.tolist() == pipe[0].mean_.tolist()


class Tripwire(TransformerMixin, BaseEstimator):
    """A transformer of the user's own; records when an instance is rebuilt."""

    rebuilt = []

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return X

    def __setstate__(self, state):
        Tripwire.rebuilt.append(state)
        super().__setstate__(state)


TRIPWIRE = f"{Tripwire.__module__}.Tripwire"


def _tripwire_pipeline():
    X, y = _data("classes")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        return make_pipeline(Tripwire(), MLPClassifier(**FAST)).fit(X, y), X


def test_untrusted_type_is_refused_by_name_and_never_built(tmp_path):
    pipe, _ = _tripwire_pipeline()
    dump(pipe, tmp_path / "pipe.skops")
    Tripwire.rebuilt.clear()
    with pytest.raises(UntrustedTypesFoundException, match=TRIPWIRE) as info:
        load(tmp_path / "pipe.skops")
    assert isinstance(info.value, TypeError)
    assert "trusted=" in str(info.value)
    assert "sknet" not in str(info.value).split("trusted=")[0].split(TRIPWIRE)[0]
    assert Tripwire.rebuilt == []


@pytest.mark.parametrize("how", ["name", "type"])
def test_trusted_accepts_the_users_own_type(tmp_path, how):
    pipe, X = _tripwire_pipeline()
    dump(pipe, tmp_path / "pipe.skops")
    Tripwire.rebuilt.clear()
    copy = load(tmp_path / "pipe.skops", trusted=[TRIPWIRE if how == "name" else Tripwire])
    assert len(Tripwire.rebuilt) == 1
    np.testing.assert_array_equal(copy.predict(X), pipe.predict(X))


def test_a_function_in_the_file_is_refused_until_named():
    X, y = _data("two_outputs")
    pipe = make_pipeline(FunctionTransformer(np.nan_to_num), MLPRegressor(**FAST))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        pipe.fit(X, y)
    buffer = io.BytesIO()
    dump(pipe, buffer)
    with pytest.raises(TypeError, match=r"numpy\.nan_to_num"):
        load(io.BytesIO(buffer.getvalue()))
    copy = load(io.BytesIO(buffer.getvalue()), trusted="numpy.nan_to_num")
    np.testing.assert_array_equal(copy.predict(X), pipe.predict(X))


def jitter(X_batch, rng):
    """An augment function of the user's own."""
    return X_batch + rng.normal(0.0, 0.01, size=X_batch.shape)


@pytest.mark.parametrize("how", ["name", "function"])
def test_a_users_augment_function_is_trusted_by_name_or_itself(how):
    X, y = _data("classes")
    model = MLPClassifier(augment=jitter, **FAST)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        model.fit(X, y)
    buffer = io.BytesIO()
    dump(model, buffer)
    name = f"{jitter.__module__}.jitter"
    with pytest.raises(TypeError, match=name.replace(".", r"\.")):
        load(io.BytesIO(buffer.getvalue()))
    copy = load(io.BytesIO(buffer.getvalue()), trusted=[name if how == "name" else jitter])
    assert copy.augment is jitter
    np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))


def test_loading_a_refused_file_imports_nothing_it_names(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    (tmp_path / "sknet_io_tripwire_module.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('code ran')\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "class Scaler(StandardScaler):\n"
        "    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import sknet_io_tripwire_module as module

    X, y = _data("classes")
    pipe = make_pipeline(module.Scaler(), MLPClassifier(**FAST))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        pipe.fit(X, y)
    dump(pipe, tmp_path / "pipe.skops")
    monkeypatch.delitem(sys.modules, "sknet_io_tripwire_module")
    marker.unlink()
    with pytest.raises(TypeError, match="sknet_io_tripwire_module.Scaler"):
        load(tmp_path / "pipe.skops")
    assert not marker.exists() and "sknet_io_tripwire_module" not in sys.modules


@pytest.mark.parametrize("content", [b"", b"not a zip file", pickle.dumps([1, 2])],
                         ids=["empty", "text", "pickle"])
def test_load_refuses_what_is_not_a_skops_file(tmp_path, content):
    path = tmp_path / "model.skops"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a skops file"):
        load(path)


@pytest.mark.parametrize("trusted", [True, 3, [3], [functools.partial(len)], [sys]],
                         ids=["True", "3", "[3]", "a-nameless-callable", "a-module"])
def test_load_rejects_a_malformed_trusted_argument(tmp_path, trusted):
    model, _ = _fit(MLPRegressor(**FAST), "two_outputs", "fit")
    dump(model, tmp_path / "model.skops")
    with pytest.raises(TypeError, match="trusted"):
        load(tmp_path / "model.skops", trusted=trusted)


def test_without_skops_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    model = MLPRegressor(**FAST)
    with pytest.raises(ImportError, match=r"`pip install skops`"):
        dump(model, tmp_path / "model.skops")
    with pytest.raises(ImportError, match=r"`pip install skops`"):
        load(tmp_path / "model.skops")


# --------------------------------------------------------------------------- #
# version stamp                                                                #
# --------------------------------------------------------------------------- #
def _restamp(data, version):
    """The skops ``data`` with the estimator's ``_sknet_version`` replaced."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    attrs = schema["content"]["content"]
    attrs["_sknet_version"]["content"] = json.dumps(version)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = json.dumps(schema) if name == "schema.json" else source.read(name)
            target.writestr(name, content)
    return out.getvalue()


def test_state_carries_the_sknet_version():
    model, _ = _fit(MLPRegressor(**FAST), "two_outputs", "fit")
    assert model.__getstate__()["_sknet_version"] == sknet.__version__
    assert "_sknet_version" not in vars(pickle.loads(pickle.dumps(model)))


def test_pickle_from_another_sknet_version_warns():
    model, X = _fit(MLPClassifier(**FAST), "classes", "fit")
    state = model.__getstate__()
    state["_sknet_version"] = "0.0.1"
    copy = MLPClassifier.__new__(MLPClassifier)
    with pytest.warns(UserWarning, match=r"sknet 0\.0\.1.*" + sknet.__version__):
        copy.__setstate__(state)
    np.testing.assert_array_equal(copy.predict(X), model.predict(X))


def test_skops_file_from_another_sknet_version_warns():
    model, X = _fit(MLPRegressor(**FAST), "two_outputs", "fit")
    buffer = io.BytesIO()
    dump(model, buffer)
    old = io.BytesIO(_restamp(buffer.getvalue(), "0.0.1"))
    with pytest.warns(UserWarning, match=r"sknet 0\.0\.1"):
        copy = load(old)
    np.testing.assert_array_equal(copy.predict(X), model.predict(X))


@pytest.mark.parametrize("make", [
    lambda: sknet.PerceptronClassifier(max_iter=5, random_state=0),
    lambda: sknet.AutoencoderTransformer(n_components=2, **FAST),
    lambda: sknet.RecurrentClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0),
], ids=["perceptron", "autoencoder", "recurrent"])
def test_every_estimator_carries_the_sknet_version(make):
    X = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 2
    model = make()
    model.fit(X, y)
    state = model.__getstate__()
    assert state["_sknet_version"] == sknet.__version__
    assert "_sknet_version" not in vars(model)  # the live estimator is left alone
    state["_sknet_version"] = "0.0.1"
    copy = type(model).__new__(type(model))
    with pytest.warns(UserWarning, match=r"sknet 0\.0\.1"):
        copy.__setstate__(state)


# --------------------------------------------------------------------------- #
# saving leaves the live estimator alone                                       #
# --------------------------------------------------------------------------- #
def _describe(value, depth=0):
    """What ``value`` holds, down to the bytes of its arrays (objects: their attributes)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.flags.writeable,
                value.flags.c_contiguous, value.tobytes())
    if scipy.sparse.issparse(value):
        return ("sparse", value.format, value.shape,
                *(_describe(getattr(value, a), depth + 1)
                  for a in ("data", "indices", "indptr") if hasattr(value, a)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [(id(v), _describe(v, depth + 1)) for v in value])
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), id(v), _describe(v, depth + 1))
                               for k, v in value.items()))
    if hasattr(value, "__dict__") and depth < 4 and not callable(value):
        return (type(value).__name__, _describe(dict(vars(value)), depth + 1))
    return repr(value)


def _live_state(model):
    """Every attribute of ``model``: which object it is and what that object holds."""
    return {k: (id(v), _describe(v)) for k, v in vars(model).items()}


SAVERS = {
    "pickle.dumps": pickle.dumps,
    "copy.deepcopy": copy.deepcopy,
    "sknet.io.dump": lambda model: dump(model, io.BytesIO()),
    "joblib.dump": lambda model: joblib.dump(model, io.BytesIO()),
}


@pytest.mark.parametrize("save", sorted(SAVERS))
def test_saving_or_copying_leaves_the_live_estimator_unchanged(fitted, save):
    model, X = fitted
    before_outputs = _outputs(model, X)
    before = _live_state(model)
    SAVERS[save](model)
    after = _live_state(model)
    changed = sorted(k for k in before.keys() | after.keys()
                     if before.get(k) != after.get(k))
    assert not changed, f"{save} changed {changed}"
    for method, expected in before_outputs.items():
        np.testing.assert_array_equal(_outputs(model, X)[method], expected, err_msg=method)


ESTIMATOR_CLASSES = sorted({obj for obj in vars(sknet).values()
                            if isinstance(obj, type) and issubclass(obj, BaseEstimator)},
                           key=lambda cls: cls.__name__)  # Perceptron is an alias


def test_the_list_of_estimator_classes_is_complete():
    names = {cls.__name__ for cls in ESTIMATOR_CLASSES}
    assert names >= {"MLPClassifier", "MLPRegressor", "AutoencoderTransformer",
                     "PerceptronClassifier", "RecurrentClassifier", "RecurrentRegressor"}


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_every_estimator_class_stamps_the_version_and_checks_it_on_load(cls):
    model = cls()
    state = model.__getstate__()
    assert state["_sknet_version"] == sknet.__version__
    assert "_sknet_version" not in vars(model)
    restored = pickle.loads(pickle.dumps(model))
    assert "_sknet_version" not in vars(restored)
    state["_sknet_version"] = "0.0.1"
    copy_ = cls.__new__(cls)
    with pytest.warns(UserWarning, match=r"sknet 0\.0\.1"):
        copy_.__setstate__(state)


def test_every_fitted_model_carries_the_version_stamp(fitted):
    model, _ = fitted
    assert model.__getstate__()["_sknet_version"] == sknet.__version__

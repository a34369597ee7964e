"""``sknet.io.load`` on damaged and tampered files: a ValueError, never a crash.

Hand-made files edit one thing of a saved model (a member array of the skops
zip, or a value of its ``schema.json``) and expect a ValueError naming it.
The fuzz mutates saved models at random, in a subprocess (a crash of the
interpreter fails the test instead of killing pytest): every load either
returns a model that predicts finite outputs of the right shape, or raises
ValueError (or skops' error for untrusted types). Run this file as a script,
``python tests/test_io_safety.py N SEED``, to run N mutations in this process.
"""

import copy
import io
import json
import os
import re
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import skops.io as sio
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skops.io.exceptions import UntrustedTypesFoundException

import sknet.io
from sknet import (
    AutoencoderTransformer,
    MLPClassifier,
    MLPRegressor,
    PerceptronClassifier,
    RecurrentClassifier,
    RecurrentRegressor,
)
from sknet.io import dump, load, trusted_types

FAST = dict(max_iter=3, random_state=0)


# --------------------------------------------------------------------------- #
# models and files                                                             #
# --------------------------------------------------------------------------- #
def _data(n=40, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    return X, np.arange(n) % 3


def _sequences(n=24, steps=5, n_features=3):
    return np.random.default_rng(1).normal(size=(n, steps, n_features))


def _fit(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make()


def _models():
    """(name, fitted model, X to predict on): every kind of fitted state."""
    X, y = _data()
    S = _sequences()
    labels = np.array(["spam", "eggs"])[y % 2]
    multilabel = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    return [
        ("mlp-multiclass", _fit(lambda: MLPClassifier(hidden_layer_sizes=(5, 3), **FAST).fit(X, y)), X),
        ("mlp-binary-strings-sgd-early-stopping", _fit(lambda: MLPClassifier(
            hidden_layer_sizes=(4,), solver="sgd", early_stopping=True, **FAST).fit(X, labels)), X),
        ("mlp-multilabel-lbfgs", _fit(lambda: MLPClassifier(
            hidden_layer_sizes=(4,), solver="lbfgs", **FAST).fit(X, multilabel)), X),
        ("mlp-regressor-float32", _fit(lambda: MLPRegressor(hidden_layer_sizes=(4,), **FAST).fit(
            X.astype(np.float32), X[:, :2])), X.astype(np.float32)),
        ("autoencoder-tied", _fit(lambda: AutoencoderTransformer(
            2, hidden_layer_sizes=(3,), **FAST).fit(X)), X),
        ("autoencoder-untied", _fit(lambda: AutoencoderTransformer(
            2, hidden_layer_sizes=(3,), tied_weights=False, **FAST).fit(X)), X),
        ("perceptron-sparse", _fit(lambda: PerceptronClassifier(max_iter=3).fit(
            X, y).sparsify()), X),
        ("perceptron-binary", _fit(lambda: PerceptronClassifier(max_iter=3).fit(
            X, y % 2)), X),
        ("recurrent-lstm-bidirectional", _fit(lambda: RecurrentClassifier(
            hidden_layer_sizes=(3, 2), cell="lstm", bidirectional=True, **FAST).fit(S, y[:24])), S),
        ("recurrent-gru-regressor", _fit(lambda: RecurrentRegressor(
            hidden_layer_sizes=(3,), cell="gru", **FAST).fit(S, S[:, 0, :2])), S),
    ]


MODELS = {name: (model, X) for name, model, X in _models()}
SKNET_ESTIMATORS = (AutoencoderTransformer, MLPClassifier, MLPRegressor, PerceptronClassifier,
                    RecurrentClassifier, RecurrentRegressor)
X_PIPE, Y_PIPE = _data()
PIPELINE = _fit(lambda: make_pipeline(
    StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), **FAST)).fit(X_PIPE, Y_PIPE))

READ_METHODS = ("predict", "predict_proba", "decision_function", "transform",
                "inverse_transform")


def _outputs(model, X):
    """What every prediction method of ``model`` returns for ``X``."""
    out = {}
    for method in READ_METHODS:
        if hasattr(model, method):
            arg = model.transform(X) if method == "inverse_transform" else X
            out[method] = np.asarray(getattr(model, method)(arg))
    return out


class SkopsFile:
    """A skops file taken apart: its schema (a dict) and its other members."""

    def __init__(self, data):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            self.members = {name: archive.read(name) for name in archive.namelist()}
        self.schema = json.loads(self.members.pop("schema.json"))

    @classmethod
    def of(cls, name):
        return cls(sio.dumps(MODELS[name][0]))

    @property
    def attrs(self):
        """The nodes of the saved estimator's attributes."""
        return self.schema["content"]["content"]

    def node(self, *path):
        """The node at ``path`` below ``attrs``: keys, list indices, or attributes."""
        node = self._resolved(self.attrs[path[0]])
        for key in path[1:]:
            if node["__loader__"] == "ObjectNode":  # an object: its dict of attributes
                node = node["content"]
            node = self._resolved(node["content"][key])
        return node

    def _resolved(self, node):
        """The node a CachedNode stands for (skops writes a shared object once)."""
        if node.get("__loader__") != "CachedNode":
            return node
        found = [n for n in _dicts(self.schema) if n.get("__id__") == node["__id__"]
                 and n.get("__loader__") != "CachedNode"]
        return found[0]

    def array(self, *path):
        return np.load(io.BytesIO(self.members[self.node(*path)["file"]]))

    def set_array(self, path, array):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        self.members[self.node(*path)["file"]] = buffer.getvalue()

    def set_json(self, path, value):
        """Replace the node at ``path`` by a plain value (a JsonNode, as skops writes)."""
        new = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
               "content": json.dumps(value), "is_json": True}
        if len(path) == 1:
            self.attrs[path[0]] = new
            return
        parent = self.node(*path[:-1])
        if parent["__loader__"] == "ObjectNode":
            parent = parent["content"]
        parent["content"][path[-1]] = new

    def to_bytes(self, schema_text=None):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("schema.json", schema_text or json.dumps(self.schema))
            for name, content in self.members.items():
                archive.writestr(name, content)
        return out.getvalue()

    def load(self):
        return load(io.BytesIO(self.to_bytes()))


def _dicts(tree):
    """Every dict in a JSON tree, walked without recursion."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _json_node(value, node_id):
    """A plain value's node, with an id of its own (not shared with another node)."""
    return {"__class__": type(value).__name__, "__module__": "builtins",
            "__loader__": "JsonNode", "content": json.dumps(value), "is_json": True,
            "__id__": node_id}


def _refused(file, match):
    with pytest.raises(ValueError, match=match) as info:
        file.load()
    return info.value


# One value of the file changed, and the message that names it. The
# estimator's parameters still pass their own checks: only the checks of the
# fitted state can refuse these.
TAMPERED = [
    # the layer counts
    ("mlp-multiclass", ("n_layers_",), 3,
     r"MLPClassifier\.n_layers_ is 3, but the number of layers in coefs_ gives 4"),
    ("autoencoder-untied", ("n_layers_",), 4,  # 4 biases: 5 layers of units
     r"AutoencoderTransformer\.n_layers_ is 4, but the number of biases gives 5"),
    ("recurrent-lstm-bidirectional", ("n_layers_",), 3,  # 2 recurrent layers
     r"RecurrentClassifier\.n_layers_ is 3, but the number of recurrent layers gives 4"),
    # the widths, and the recurrent input's form
    ("autoencoder-untied", ("n_features_in_",), 5,
     r"AutoencoderTransformer\.n_features_in_ is 5, but coefs_\[0\]'s shape gives 4"),
    ("autoencoder-tied", ("n_outputs_",), 2,
     r"AutoencoderTransformer\.n_outputs_ is 2, but the input's width gives 4"),
    ("recurrent-gru-regressor", ("n_features_in_",), 4,
     r"RecurrentRegressor\.n_features_in_ is 4, but n_step_features_ gives 3"),
    ("recurrent-lstm-bidirectional", ("n_outputs_",), 4,
     r"RecurrentClassifier\.n_outputs_ is 4, but the output layer gives 3"),
    ("recurrent-gru-regressor", ("_fitted_on_columns",), 0,
     r"RecurrentRegressor\._fitted_on_columns must be a bool"),
    # each estimator's loss against its output
    ("mlp-regressor-float32", ("_loss_name",), "poisson",  # identity output
     r"MLPRegressor\._loss_name must be 'squared_error' with out_activation_='identity'"),
    ("mlp-multiclass", ("_loss_name",), "binary_log_loss",
     r"MLPClassifier\._loss_name must be one of \['log_loss'\]"),
    ("mlp-binary-strings-sgd-early-stopping", ("_loss_name",), "log_loss",
     r"MLPClassifier\._loss_name must be one of \['binary_log_loss'\]"),
    ("autoencoder-tied", ("_loss_name",), "binary_log_loss",  # identity output
     r"AutoencoderTransformer\._loss_name must be one of \['squared_error'\]"),
    # the training state, of every kind of network and of the perceptron
    *[("mlp-multiclass", (attr,), value, rf"MLPClassifier\.{attr} must be an integer >= 0")
      for attr, value in [("n_iter_", -1), ("t_", 2.5), ("n_iter_", True), ("t_", "300"),
                          ("_no_improvement_count", -2)]],
    ("mlp-regressor-float32", ("n_iter_",), -1, r"MLPRegressor\.n_iter_ must be an integer >= 0"),
    ("autoencoder-untied", ("n_iter_",), -1,
     r"AutoencoderTransformer\.n_iter_ must be an integer >= 0"),
    ("recurrent-gru-regressor", ("n_iter_",), -1,
     r"RecurrentRegressor\.n_iter_ must be an integer >= 0"),
    ("perceptron-binary", ("n_iter_",), -1,
     r"PerceptronClassifier\.n_iter_ must be an integer >= 0"),
    ("mlp-multiclass", ("loss_",), "low", r"MLPClassifier\.loss_ must be a real number, got str"),
    ("mlp-multiclass", ("_optimizer_state", "t"), -3,
     r"MLPClassifier\._optimizer_state\['t'\] must be an integer >= 0"),
    ("mlp-multiclass", ("_label_binarizer",), {"classes_": [0, 1, 2]},
     r"MLPClassifier\._label_binarizer must be a LabelBinarizer"),
]


@pytest.mark.parametrize("name, path, value, message", TAMPERED,
                         ids=[f"{name}-{'.'.join(map(str, path))}"
                              for name, path, _, _ in TAMPERED])
def test_a_tampered_value_is_refused_by_name(name, path, value, message):
    file = SkopsFile.of(name)
    file.set_json(path, value)
    _refused(file, message)


# --------------------------------------------------------------------------- #
# the sparsified perceptron                                                    #
# --------------------------------------------------------------------------- #
def test_a_sparsified_perceptron_loads_without_listing_a_type():
    model, X = MODELS["perceptron-sparse"]
    buffer = io.BytesIO()
    dump(model, buffer)
    copy_ = load(io.BytesIO(buffer.getvalue()))
    assert type(copy_.coef_) is sp.csr_matrix
    np.testing.assert_array_equal(copy_.decision_function(X), model.decision_function(X))
    np.testing.assert_array_equal(copy_.predict(X), model.predict(X))


def test_only_the_csr_matrix_is_trusted_among_scipy_types():
    scipy_types = [name for name in trusted_types() if name.startswith("scipy.")]
    assert scipy_types == [f"{sp.csr_matrix.__module__}.csr_matrix"]


def test_other_sparse_types_stay_untrusted():
    X, y = _data()
    model = _fit(lambda: PerceptronClassifier(max_iter=3).fit(X, y))
    model.coef_ = sp.csc_matrix(model.coef_)
    with pytest.raises(UntrustedTypesFoundException, match="csc_matrix"):
        load(io.BytesIO(sio.dumps(model)))


# --------------------------------------------------------------------------- #
# hand-made tampered files                                                     #
# --------------------------------------------------------------------------- #
def test_a_weight_matrix_of_the_wrong_shape_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_array(("coefs_", 1), np.zeros((6, 3)))
    _refused(file, r"MLPClassifier\.coefs_\[1\] has shape \(6, 3\)")


@pytest.mark.parametrize("shape", [(1, 5), (0,)])
def test_a_bias_must_be_a_non_empty_vector(shape):
    file = SkopsFile.of("mlp-multiclass")
    file.set_array(("intercepts_", 0), np.zeros(shape))
    _refused(file, rf"intercepts_\[0\] must be a non-empty 1-D array, got shape "
                   rf"{re.escape(str(shape))}")


def test_a_missing_layer_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    for attr in ("coefs_", "intercepts_"):
        del file.attrs[attr]["content"][1]
    _refused(file, r"coefs_\[1\] has shape \(3, 3\), but coefs_\[0\] \(4, 5\)")


def test_a_missing_bias_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    del file.attrs["intercepts_"]["content"][2]
    _refused(file, r"intercepts_ has 2 entries, expected 3")


def test_a_missing_fitted_attribute_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    del file.attrs["coefs_"]
    _refused(file, r"MLPClassifier\.coefs_ is missing")


@pytest.mark.parametrize("name, path, value, attr", [
    ("mlp-multiclass", ("coefs_", 0), np.nan, "MLPClassifier.coefs_[0]"),
    ("mlp-multiclass", ("coefs_", 2), np.inf, "MLPClassifier.coefs_[2]"),
    ("autoencoder-untied", ("coefs_", 3), np.nan, "AutoencoderTransformer.coefs_[3]"),  # decoder
    ("perceptron-binary", ("coef_",), np.nan, "PerceptronClassifier.coef_"),
], ids=["first-layer", "deeper-layer", "decoder", "dense-perceptron"])
def test_non_finite_weights_are_refused_in_every_array(name, path, value, attr):
    file = SkopsFile.of(name)
    W = file.array(*path)
    W[0, 1] = value
    file.set_array(path, W)
    _refused(file, re.escape(attr) + " holds NaN or infinite values")


def test_a_weight_that_is_not_an_array_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("coefs_", 1), [[0.0] * 3] * 5)
    _refused(file, r"MLPClassifier\.coefs_\[1\] must be a numpy array, got list")


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex128, "<U3"])
def test_weights_of_another_dtype_are_refused(dtype):
    file = SkopsFile.of("mlp-multiclass")
    file.set_array(("intercepts_", 0), file.array("intercepts_", 0).astype(dtype))
    _refused(file, r"intercepts_\[0\] must hold float32 or float64 values")


def test_weights_of_mixed_dtypes_are_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_array(("intercepts_", 1), file.array("intercepts_", 1).astype(np.float32))
    _refused(file, r"intercepts_\[1\] has dtype float32, but the model's other weights")


def test_a_wrong_number_of_features_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("n_features_in_",), 7)
    _refused(file, r"n_features_in_ is 7, but coefs_\[0\]'s shape gives 4")


@pytest.mark.parametrize("name, cls", [("mlp-multiclass", "MLPClassifier"),
                                       ("recurrent-lstm-bidirectional", "RecurrentClassifier")])
def test_classes_that_do_not_match_the_output_layer_are_refused(name, cls):
    file = SkopsFile.of(name)
    file.set_array(("_label_binarizer", "classes_"), np.arange(4))
    _refused(file, rf"{cls}\.classes_ has 4 classes")


def test_a_binarizer_that_disagrees_with_classes_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("_label_binarizer", "y_type_"), "binary")
    _refused(file, r"classes_ has 3 classes")


@pytest.mark.parametrize("key, value", [("neg_label", -1), ("pos_label", 2),
                                        ("sparse_output", True)])
def test_a_binarizer_that_encodes_labels_otherwise_is_refused(key, value):
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("_label_binarizer", key), value)
    _refused(file, r"_label_binarizer does not encode labels as sknet does")


def test_a_wrong_output_activation_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("out_activation_",), "identity")
    _refused(file, r"out_activation_ must be one of \['softmax'\]")


# three activations, for three hidden layers (the autoencoder's bottleneck is
# the last of its encoder's), where the fitted networks have two
@pytest.mark.parametrize("name, sizes", [("mlp-multiclass", [3, 3, 3]),
                                         ("autoencoder-tied", [3, 3])])
def test_a_list_of_activations_must_name_each_hidden_layer(name, sizes):
    # hidden_layer_sizes changed with set_params after the fit: the parameters
    # agree with each other, but not with the fitted network
    n_hidden = 2
    file = SkopsFile.of(name)
    file.set_json(("hidden_layer_sizes",), sizes)
    file.set_json(("activation",), ["relu"] * (n_hidden + 1))
    _refused(file, rf"\.activation has {n_hidden + 1} entries, but the fitted network has "
                   rf"{n_hidden} hidden layers")


@pytest.mark.parametrize("value", [[], "abc"])
def test_the_layers_must_be_a_non_empty_list(value):
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("coefs_",), value)
    _refused(file, rf"MLPClassifier\.coefs_ must be a non-empty list, got {type(value).__name__}")


@pytest.mark.parametrize("value", [{"t": 1, "m": [0.0]}, ["t", "m", "v"]],
                         ids=["a-dict-without-v", "a-list-of-the-keys"])
def test_an_optimizer_state_must_be_a_dict_of_its_keys(value):
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("_optimizer_state",), value)
    _refused(file, r"_optimizer_state must be a dict with the keys t, m and v \(adam\)")


def test_a_binarizer_with_other_classes_of_the_same_shape_is_refused():
    # classes_ and the binarizer's classes_ are one array in the file: give
    # the estimator's a node and a member of its own
    file = SkopsFile.of("mlp-multiclass")
    node = copy.deepcopy(file.node("_label_binarizer", "classes_"))
    node.update(file="own_classes.npy", __id__=None)
    file.attrs["classes_"] = node
    file.members["own_classes.npy"] = _npy(np.array([0, 1, 5]))
    _refused(file, r"MLPClassifier\._label_binarizer\.classes_ must equal classes_")


def test_a_binarizer_whose_classes_are_a_list_is_refused():
    file = SkopsFile.of("mlp-binary-strings-sgd-early-stopping")
    file.set_json(("_label_binarizer", "classes_"), ["eggs", "spam"])
    _refused(file, r"_label_binarizer\.classes_ must equal classes_")


def test_n_outputs_must_be_the_output_layers_width():
    X, y = _data()
    model = _fit(lambda: MLPClassifier(hidden_layer_sizes=(5, 4), **FAST).fit(X, y % 3))
    file = SkopsFile(sio.dumps(model))
    file.set_json(("n_outputs_",), 4)  # the last hidden layer's width
    _refused(file, r"MLPClassifier\.n_outputs_ is 4, but the output layer gives 3")


@pytest.mark.parametrize("value", ["continuous", ["binary"], 3])
def test_a_binarizer_of_another_target_type_is_refused(value):
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("_label_binarizer", "y_type_"), value)
    _refused(file, r"_label_binarizer\.y_type_ must be one of \['binary', 'multiclass', "
                   r"'multilabel-indicator'\]")


def test_a_binary_binarizer_with_three_classes_is_refused():
    file = SkopsFile.of("mlp-binary-strings-sgd-early-stopping")
    file.set_array(("_label_binarizer", "classes_"), np.array(["eggs", "ham", "spam"]))
    _refused(file, r"MLPClassifier\.classes_ has 3 classes, which does not match")


def _named_columns_file():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    model = _fit(lambda: MLPClassifier(hidden_layer_sizes=(3,), **FAST).fit(
        pd.DataFrame(X, columns=list("abcd")), y))
    return SkopsFile(sio.dumps(model))


def test_feature_names_of_the_wrong_length_or_type_are_refused():
    match = r"feature_names_in_ must be an array of 4 strings \(n_features_in_\)"
    file = _named_columns_file()
    node = file.attrs["feature_names_in_"]
    del node["content"][3]
    # a shape node of its own: the 4 it holds is shared with n_features_in_
    node["shape"]["content"][0] = _json_node(3, 1)
    _refused(file, match)
    file = _named_columns_file()
    file.attrs["feature_names_in_"]["content"][2]["content"] = "5"  # a number
    _refused(file, match)
    file = _named_columns_file()
    file.set_json(("feature_names_in_",), list("abcd"))  # a list, not an array
    _refused(file, match)
    assert _named_columns_file().load().feature_names_in_.tolist() == list("abcd")


def test_a_loss_curve_must_hold_numbers():
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("loss_curve_",), [0.5, "0.4"])
    _refused(file, r"loss_curve_ must be a list of real numbers")


def test_an_optimizer_state_of_the_wrong_size_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_array(("_optimizer_state", "m"), np.zeros(3))
    _refused(file, r"_optimizer_state\['m'\] has shape \(3,\)")


@pytest.mark.parametrize("key, value, match", [
    ("v", np.nan, r"_optimizer_state\['v'\] holds NaN or infinite values"),
    ("v", -np.inf, r"_optimizer_state\['v'\] holds NaN or infinite values"),
    ("v", -1.0, r"_optimizer_state\['v'\] holds negative values"),
    ("m", np.inf, r"_optimizer_state\['m'\] holds NaN or infinite values"),
])
def test_an_adam_state_out_of_its_range_is_refused(key, value, match):
    # +inf is the one non-finite value Adam's second moment may hold (a
    # squared gradient beyond the dtype's range); see test_persistence.py
    file = SkopsFile.of("mlp-multiclass")
    state = file.load()._optimizer_state
    array = state[key].copy()
    array[1] = value
    file.set_array(("_optimizer_state", key), array)
    _refused(file, match)
    array[1] = np.inf if key == "v" else 0.0
    file.set_array(("_optimizer_state", key), array)
    file.load()


def test_an_invalid_parameter_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("activation",), "no_such_function")
    _refused(file, r"invalid parameter.*no_such_function")


def test_a_parameter_of_the_wrong_type_is_a_value_error():
    file = SkopsFile.of("mlp-multiclass")
    file.set_json(("alpha",), [1, 2])
    _refused(file, r"invalid parameter.*alpha")


def test_a_missing_parameter_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    del file.attrs["alpha"]
    _refused(file, r"MLPClassifier\.alpha \(a parameter\) is missing")


def test_a_tampered_model_inside_a_pipeline_is_refused():
    file = SkopsFile(sio.dumps(PIPELINE))
    steps = file.attrs["steps"]["content"]
    mlp = steps[1]["content"][1]["content"]["content"]
    node = file._resolved(mlp["intercepts_"]["content"][0])
    file.members[node["file"]] = _npy(np.zeros(9))
    _refused(file, r"MLPClassifier\.intercepts_\[0\] has shape \(9,\)")


def test_a_tampered_model_inside_an_object_array_is_refused():
    # as a search's cv_results_ holds estimator-valued parameters
    models = np.empty(1, dtype=object)
    models[0] = MODELS["mlp-multiclass"][0]
    file = SkopsFile(sio.dumps({"models": models}))
    mlp = file.schema["content"]["models"]["content"][0]["content"]["content"]
    node = file._resolved(mlp["intercepts_"]["content"][0])
    file.members[node["file"]] = _npy(np.zeros(9))
    _refused(file, r"MLPClassifier\.intercepts_\[0\] has shape \(9,\)")


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# the autoencoder ------------------------------------------------------------ #
def test_an_autoencoder_decoder_bias_of_the_wrong_width_is_refused():
    file = SkopsFile.of("autoencoder-tied")
    file.set_array(("intercepts_", 2), np.zeros(4))
    _refused(file, r"AutoencoderTransformer\.intercepts_\[2\] has shape \(4,\), "
                   r"expected \(3,\) \(the decoder mirrors the encoder\)")


def test_an_autoencoder_with_an_odd_layout_is_refused():
    file = SkopsFile.of("autoencoder-tied")
    del file.attrs["intercepts_"]["content"][3]
    _refused(file, r"AutoencoderTransformer\.coefs_ has 2 matrices and intercepts_ 3")


def test_an_autoencoder_with_an_odd_number_of_layers_is_refused():
    file = SkopsFile.of("autoencoder-untied")  # 4 matrices and biases, less one of each
    del file.attrs["intercepts_"]["content"][3]
    del file.attrs["coefs_"]["content"][3]
    _refused(file, r"AutoencoderTransformer\.coefs_ has 3 matrices and intercepts_ 3")


def test_an_untied_decoder_that_does_not_mirror_the_encoder_is_refused():
    file = SkopsFile.of("autoencoder-untied")
    file.set_array(("coefs_", 3), np.zeros((3, 5)))
    _refused(file, r"coefs_\[3\] has shape \(3, 5\), expected \(3, 4\)")


def test_an_autoencoder_encoder_that_does_not_chain_is_refused():
    file = SkopsFile.of("autoencoder-tied")  # 4 -> 3 -> 2, tied
    file.set_array(("coefs_", 1), np.zeros((5, 2)))
    _refused(file, r"coefs_\[1\] has shape \(5, 2\), but coefs_\[0\] \(4, 3\) writes 3 values")


def test_a_wrong_bottleneck_width_is_refused():
    file = SkopsFile.of("autoencoder-tied")
    file.set_json(("_n_features_out",), 3)
    _refused(file, r"_n_features_out is 3, but the bottleneck's width gives 2")


# the recurrent networks ----------------------------------------------------- #
def test_a_recurrent_weight_of_the_wrong_shape_is_refused():
    file = SkopsFile.of("recurrent-lstm-bidirectional")
    file.set_array(("recurrent_weights_", 1, "weight_ih_reverse"), np.zeros((8, 3)))
    _refused(file, r"recurrent_weights_\[1\]\['weight_ih_reverse'\] has shape \(8, 3\), "
                   r"expected \(8, 6\)")


def test_a_missing_reverse_direction_is_refused():
    file = SkopsFile.of("recurrent-lstm-bidirectional")
    del file.node("recurrent_weights_", 0)["content"]["bias_hh_reverse"]
    _refused(file, r"recurrent_weights_\[0\] must be a dict with the arrays")


def test_a_cell_that_does_not_match_the_weights_is_refused():
    file = SkopsFile.of("recurrent-gru-regressor")
    file.set_json(("cell",), "lstm")
    _refused(file, r"recurrent_weights_\[0\]\['weight_ih'\] has shape \(9, 3\), "
                   r"expected \(12, 3\)")


def test_step_features_must_match_the_first_layer():
    file = SkopsFile.of("recurrent-gru-regressor")
    file.set_json(("n_step_features_",), 4)
    file.set_json(("n_features_in_",), 4)
    _refused(file, r"weight_ih'\] has shape \(9, 3\), expected \(9, 4\)")


def test_a_recurrent_output_layer_of_the_wrong_width_is_refused():
    file = SkopsFile.of("recurrent-lstm-bidirectional")  # reads 2 * 2 features
    file.set_array(("coefs_", 0), np.zeros((2, 3)))
    _refused(file, r"RecurrentClassifier\.coefs_\[0\] has shape \(2, 3\), expected \(4, 3\) "
                   r"\(the last recurrent layer's output width\)")
    file = SkopsFile.of("recurrent-gru-regressor")
    file.set_array(("intercepts_", 0), np.zeros(3))
    _refused(file, r"RecurrentRegressor\.intercepts_\[0\] has shape \(3,\), expected \(2,\)")


def test_a_list_of_activations_must_name_each_recurrent_layer():
    S = _sequences()
    model = _fit(lambda: RecurrentRegressor(hidden_layer_sizes=(3,), cell="rnn",
                                            **FAST).fit(S, S[:, 0, 0]))
    file = SkopsFile(sio.dumps(model))
    file.set_json(("hidden_layer_sizes",), [3, 3])  # set_params after the fit
    file.set_json(("activation",), ["tanh", "relu"])
    _refused(file, r"RecurrentRegressor\.activation has 2 entries, but the fitted network "
                   r"has 1 hidden layers")


def test_a_univariate_recurrent_model_must_read_one_feature_per_step():
    S = _sequences()[:, :, 0]  # (n_samples, n_steps): univariate sequences
    model = _fit(lambda: RecurrentRegressor(hidden_layer_sizes=(3,), **FAST).fit(S, S[:, 0]))
    file = SkopsFile(sio.dumps(model))
    file.set_json(("n_step_features_",), 2)
    _refused(file, r"RecurrentRegressor\.n_step_features_ must be 1 for a model fitted on 2-D")


# the perceptron ------------------------------------------------------------- #
def _set_npz(file, attr, **changes):
    """Rewrite the ``.npz`` of a sparse attribute with some of its arrays changed."""
    name = file.node(attr)["file"]
    with np.load(io.BytesIO(file.members[name])) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays.update(changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    file.members[name] = buffer.getvalue()


def _edit_csr(edit, attr="coef_"):
    """The sparse perceptron's file, ``edit(matrix)`` applied to its CSR arrays."""
    file = SkopsFile.of("perceptron-sparse")
    matrix = MODELS["perceptron-sparse"][0].coef_.copy()
    edit(matrix)
    _set_npz(file, attr, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr)
    return file


def test_csr_indices_out_of_range_are_refused():
    def edit(matrix):
        matrix.indices[-1] = 99

    _refused(_edit_csr(edit), r"PerceptronClassifier\.coef_ is not a valid CSR matrix "
                              r"\(.*< 4\)")


def test_csr_indices_out_of_order_are_refused():
    def edit(matrix):
        matrix.indices[:4] = matrix.indices[:4][::-1].copy()

    _refused(_edit_csr(edit), r"coef_ must have sorted column indices")


def test_csr_duplicate_indices_are_refused():
    def edit(matrix):  # sorted, but a row's first column given twice
        row = np.flatnonzero(np.diff(matrix.indptr) >= 2)[0]
        start = matrix.indptr[row]
        matrix.indices[start + 1] = matrix.indices[start]

    _refused(_edit_csr(edit), r"coef_ must have sorted column indices without duplicates")


def test_csr_row_pointers_that_decrease_are_refused():
    def edit(matrix):
        matrix.indptr[1:3] = matrix.indptr[1:3][::-1].copy()

    _refused(_edit_csr(edit), r"coef_ is not a valid CSR matrix")


def test_csr_nan_data_is_refused():
    def edit(matrix):
        matrix.data[0] = np.nan

    _refused(_edit_csr(edit), r"coef_\.data holds NaN")


def test_another_sparse_format_behind_the_csr_name_is_refused():
    file = SkopsFile.of("perceptron-sparse")
    dense = MODELS["perceptron-sparse"][0].coef_.toarray()
    coo = sp.coo_matrix(dense)
    _set_npz(file, "coef_", format=np.array("coo"), row=coo.row, col=coo.col,
             data=coo.data)
    _refused(file, r"coef_ must be a dense array or a csr_matrix, got coo_matrix")


def test_a_perceptron_coef_that_does_not_fit_the_classes_is_refused():
    file = SkopsFile.of("perceptron-binary")
    file.set_array(("coef_",), np.zeros((2, 4)))
    _refused(file, r"coef_ has shape \(2, 4\), expected \(1, 4\)")


def test_a_perceptron_with_one_class_is_refused():
    file = SkopsFile.of("perceptron-binary")
    file.set_array(("classes_",), np.array([0]))
    _refused(file, r"PerceptronClassifier\.classes_ has 1 classes")


@pytest.mark.parametrize("value", [-1.0, "5", float("inf")])
def test_a_perceptron_t_must_be_a_non_negative_number(value):
    file = SkopsFile.of("perceptron-binary")
    file.set_json(("t_",), value)
    _refused(file, r"PerceptronClassifier\.t_ must be a non-negative number")


def test_a_perceptron_intercept_of_the_wrong_width_is_refused():
    file = SkopsFile.of("perceptron-binary")
    file.set_array(("intercept_",), np.zeros(2))
    _refused(file, r"PerceptronClassifier\.intercept_ has shape \(2,\), expected \(1,\)")


def test_a_sparse_member_that_is_not_a_zip_is_damaged():
    file = SkopsFile.of("perceptron-sparse")
    file.members[file.node("coef_")["file"]] = b"not a zip"
    _refused(file, r"damaged or was tampered with")


def test_a_perceptron_t_of_zero_loads():
    # "non-negative": 0 is the bound, and a file may hold it
    file = SkopsFile.of("perceptron-binary")
    file.set_json(("t_",), 0.0)
    assert file.load().t_ == 0.0


def test_perceptron_classes_must_be_distinct_comparable_numbers_or_strings():
    file = SkopsFile.of("perceptron-binary")
    file.set_array(("classes_",), np.array([[0, 1]]))
    _refused(file, r"PerceptronClassifier\.classes_ must be a 1-D numpy array")
    file.set_json(("classes_",), [0, 1])
    _refused(file, r"PerceptronClassifier\.classes_ must be a 1-D numpy array")
    file = SkopsFile.of("perceptron-binary")
    file.set_array(("classes_",), np.array([1 + 0j, 2 + 0j]))
    _refused(file, r"PerceptronClassifier\.classes_ must hold numbers or strings, "
                   r"got complex128")
    file = SkopsFile.of("perceptron-binary")
    file.set_array(("classes_",), np.array([1, 1]))
    _refused(file, r"PerceptronClassifier\.classes_ must hold distinct, comparable labels")
    file = SkopsFile.of("perceptron-binary")  # an object array of 1 and "a": no order
    file.attrs["classes_"] = {
        "__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode",
        "type": "json", "content": [_json_node(1, 1), _json_node("a", 2)],
        "shape": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                  "content": [_json_node(2, 3)], "__id__": 4},
        "__id__": 5}
    _refused(file, r"PerceptronClassifier\.classes_ must hold distinct, comparable labels")
    file.attrs["classes_"]["content"][0] = _json_node(None, 1)  # None and "a"
    _refused(file, r"PerceptronClassifier\.classes_ must hold numbers or strings, got object")


def test_a_perceptron_intercept_with_nan_is_refused():
    file = SkopsFile.of("perceptron-binary")
    file.set_array(("intercept_",), np.array([np.nan]))
    _refused(file, r"intercept_ holds NaN")


# malformed schemas and archives --------------------------------------------- #
def test_a_deeply_nested_schema_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(file.schema).replace('"content": "5"', f'"content": {deep}', 1)
    with pytest.raises(ValueError, match="nests too deeply"):
        load(io.BytesIO(file.to_bytes(text)))


def test_a_nested_but_readable_schema_is_refused_before_skops_reads_it():
    file = SkopsFile.of("mlp-multiclass")
    node = {"__class__": "int", "__module__": "builtins", "__loader__": "JsonNode",
            "content": "1", "is_json": True}
    for _ in range(300):
        node = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                "content": [node]}
    file.attrs["n_iter_"] = node
    with pytest.raises(ValueError, match=r"nests more than 200 levels"):
        file.load()


def test_the_depth_limit_counts_the_root_as_level_one():
    def nested(levels):  # lists around a node naming a file: with its string, ``levels``
        node = {"file": "deepest.npy"}
        for _ in range(levels - 2):
            node = [node]
        return node

    limit = sknet.io.MAX_SCHEMA_DEPTH
    assert sknet.io._members_read(nested(limit), "f.skops") == ["deepest.npy"]
    with pytest.raises(ValueError, match=rf"nests more than {limit} levels"):
        sknet.io._members_read(nested(limit + 1), "f.skops")


@pytest.mark.parametrize("key", ["__loader__", "__class__", "content", "protocol"])
def test_a_schema_missing_a_key_is_a_value_error(key):
    file = SkopsFile.of("mlp-multiclass")
    if key == "protocol":
        del file.schema["protocol"]
    else:
        del file.attrs["coefs_"][key]
    with pytest.raises(ValueError, match="damaged or was tampered with"):
        file.load()


def test_an_unknown_loader_is_a_value_error():
    file = SkopsFile.of("mlp-multiclass")
    file.attrs["coefs_"]["__loader__"] = "NoSuchNode"
    with pytest.raises(ValueError, match="damaged or was tampered with"):
        file.load()


def test_a_schema_that_is_not_json_is_a_value_error():
    file = SkopsFile.of("mlp-multiclass")
    with pytest.raises(ValueError, match="damaged or was tampered with"):
        load(io.BytesIO(file.to_bytes("{not json")))


def test_a_missing_array_member_is_a_value_error():
    file = SkopsFile.of("mlp-multiclass")
    del file.members[file.node("coefs_", 0)["file"]]
    with pytest.raises(ValueError, match="damaged or was tampered with"):
        file.load()


def test_an_object_array_is_a_value_error():
    file = SkopsFile.of("mlp-multiclass")
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    file.members[file.node("coefs_", 0)["file"]] = buffer.getvalue()
    with pytest.raises(ValueError, match="damaged or was tampered with"):
        file.load()


def test_a_truncated_file_is_a_value_error():
    data = sio.dumps(MODELS["mlp-multiclass"][0])
    for end in (10, len(data) // 2, len(data) - 10):
        with pytest.raises(ValueError, match="not a skops file|damaged"):
            load(io.BytesIO(data[:end]))


def test_a_state_that_trips_the_checks_themselves_is_a_value_error(monkeypatch):
    def odd(model):
        raise TypeError("an odd state")

    monkeypatch.setattr(sknet.io, "check_loaded", odd)
    with pytest.raises(ValueError, match=r"damaged or was tampered with.*TypeError: an odd"):
        load(io.BytesIO(sio.dumps(MODELS["mlp-multiclass"][0])))


def test_a_file_opened_as_text_is_a_type_error():
    with pytest.raises(TypeError, match=r"binary mode \('rb'\); got a file that returns str"):
        load(io.StringIO("PK"))


def test_an_empty_file_is_not_a_skops_file():
    with pytest.raises(ValueError, match="not a skops file.*: it is empty"):
        load(io.BytesIO(b""))


def test_a_zip_without_a_schema_is_not_a_skops_file():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("model.npy", b"x")
    with pytest.raises(ValueError, match="not a skops file.*no schema.json"):
        load(io.BytesIO(out.getvalue()))


def test_a_file_that_unpacks_beyond_memory_is_refused(monkeypatch):
    # a member that every node reads again (or a zip bomb) is counted each time
    file = SkopsFile.of("mlp-multiclass")
    member = file.node("coefs_", 0)["file"]
    file.members[member] = b"\0" * 100_000
    for node in file.attrs["intercepts_"]["content"]:
        node.update(file=member, __id__=None)
    monkeypatch.setattr(sknet.io, "available_memory_bytes", lambda: 500_000)
    with pytest.raises(ValueError, match=r"would unpack about .* GiB"):
        file.load()


def test_a_sparse_member_that_unpacks_beyond_memory_is_refused(monkeypatch):
    # the .npz member of a sparse matrix is a zip of its own: what its arrays
    # unpack to counts too, not only its own size in the file
    file = SkopsFile.of("perceptron-sparse")
    member = file.node("coef_")["file"]
    inner = io.BytesIO()
    np.savez_compressed(inner, data=np.zeros(500_000))  # 4 MB in a few kB
    file.members[member] = inner.getvalue()
    outer = 2 * sum(len(content) for content in file.members.values())
    assert outer < 1_000_000 < 2 * 4_000_000
    monkeypatch.setattr(sknet.io, "available_memory_bytes", lambda: 1_000_000)
    with pytest.raises(ValueError, match=r"would unpack about .* GiB"):
        file.load()


def test_untrusted_types_are_still_refused_by_name():
    file = SkopsFile.of("mlp-multiclass")
    file.attrs["coefs_"].update(__module__="os", __class__="system")
    with pytest.raises(UntrustedTypesFoundException, match=r"os\.system"):
        file.load()


def test_a_class_swapped_for_another_trusted_one_is_refused():
    file = SkopsFile.of("mlp-multiclass")
    file.schema.update(__class__="MLPRegressor")
    _refused(file, r"MLPRegressor\.loss \(a parameter\) is missing")


def test_a_one_class_classifier_and_a_one_feature_model_load():
    # the smallest shapes a fit gives: one class (one logistic unit, as
    # scikit-learn's), one input feature
    X, y = _data()
    one_class = _fit(lambda: MLPClassifier(hidden_layer_sizes=(3,), **FAST).fit(X, 0 * y))
    one_feature = _fit(lambda: MLPRegressor(hidden_layer_sizes=(3,), **FAST).fit(X[:, :1], y))
    for model, X_in in ((one_class, X), (one_feature, X[:, :1])):
        copy = SkopsFile(sio.dumps(model)).load()
        for method, expected in _outputs(model, X_in).items():
            np.testing.assert_array_equal(getattr(copy, method)(X_in), expected)


def test_an_unfitted_estimator_loads():
    model = MLPClassifier(hidden_layer_sizes=(3,))
    copy_ = load(io.BytesIO(sio.dumps(model)))
    assert copy_.get_params() == model.get_params()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_fuzzed_model_round_trips(name):
    model, X = MODELS[name]
    copy_ = load(io.BytesIO(sio.dumps(model)))
    expected, got = _outputs(model, X), _outputs(copy_, X)
    assert expected.keys() == got.keys() and expected
    for method in expected:
        np.testing.assert_array_equal(got[method], expected[method], err_msg=method)


# --------------------------------------------------------------------------- #
# the fuzz                                                                     #
# --------------------------------------------------------------------------- #
WEIRD_VALUES = [None, True, False, -1, 0, 3, 2**70, 1e308, -1e308, 0.5, "", "x",
                "softmax", [], {}, [1, 2], [[1.0]], {"a": 1}]

WEIRD_JSON = ["-1", "0", "1", "2.5", "1e308", "1e999", "NaN", "-Infinity", '"abc"',
              '"relu"', "[]", "{}", "null", "true", "[1, [2, [3]]]", "[0.1, 0.2]",
              "99999999999999999999999", '"' + "a" * 1000 + '"',
              "[" * 100_000 + "]" * 100_000]

TRUSTED_NODES = [
    ("sknet._mlp", "MLPClassifier"), ("sknet._mlp", "MLPRegressor"),
    ("sknet._perceptron", "PerceptronClassifier"),
    ("sknet._autoencoder", "AutoencoderTransformer"),
    ("sknet._recurrent", "RecurrentClassifier"), ("sknet._recurrent", "RecurrentRegressor"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"),
    ("builtins", "int"), ("builtins", "str"), ("numpy", "ndarray"), ("numpy", "float64"),
    ("numpy", "int64"), ("sklearn.preprocessing._label", "LabelBinarizer"),
    ("scipy.sparse._csr", "csr_matrix"), ("numpy", "add"),
]

LOADERS = ["ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode",
           "SparseMatrixNode", "CachedNode", "TypeNode", "FunctionNode", "SetNode"]


def _unzip(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(members):
    """A zip of ``members``, the same bytes for the same members (no timestamps)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name), content)
    return out.getvalue()


def _canonical(data):
    """A skops file with its object ids (memory addresses) renumbered 1, 2, ...

    skops names nodes and members by the ids of the saved objects, which
    differ from process to process: renumbered in the order the schema
    lists them, the same seed gives the same mutations, so that a failure
    can be replayed.
    """
    members = _unzip(data)
    text = members.pop("schema.json").decode()
    ids = [str(d["__id__"]) for d in _dicts(json.loads(text)) if "__id__" in d]
    new = {old: str(i) for i, old in enumerate(dict.fromkeys(ids), start=1)}
    text = re.sub(r"\b\d+\b", lambda m: new.get(m.group(), m.group()), text)
    renamed = {re.sub(r"^\d+", lambda m: new.get(m.group(), m.group()), name): content
               for name, content in members.items()}
    return _zip({"schema.json": text.encode(), **dict(sorted(renamed.items()))})


def _flip(content, rng):
    content = bytearray(content)
    for _ in range(rng.integers(1, 4)):
        if content:
            content[rng.integers(len(content))] ^= int(rng.integers(1, 256))
    return bytes(content)


def _slots(schema):
    """Every (container, key) of the schema's JSON tree."""
    return [(d, k) for d in _dicts(schema) for k in d] + [
        (lst, i) for lst in _lists(schema) for i in range(len(lst))]


def _lists(tree):
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            yield item
        if isinstance(item, (dict, list)):
            stack.extend(item.values() if isinstance(item, dict) else item)


def _pick(items, rng):
    return items[rng.integers(len(items))] if items else None


def _arrays_of(members):
    return sorted(name for name in members if name.endswith(".npy"))


# each mutation: (members of the zip, schema, rng) -> the bytes of the new file
def _mutate_flip_member(members, schema, rng):
    name = "schema.json" if rng.random() < 0.3 else _pick(sorted(members), rng)
    members[name] = _flip(members[name], rng)
    return _zip(members)


def _mutate_flip_raw(members, schema, rng):
    return _flip(_zip(members), rng)


def _mutate_truncate(members, schema, rng):
    data = _zip(members)
    return data[:rng.integers(len(data))]


def _mutate_json_value(members, schema, rng):
    container, key = _pick(_slots(schema), rng)
    container[key] = copy.deepcopy(_pick(WEIRD_VALUES, rng))
    return _with_schema(members, schema)


def _mutate_json_delete(members, schema, rng):
    container, key = _pick(_slots(schema), rng)
    del container[key]
    return _with_schema(members, schema)


def _mutate_json_content(members, schema, rng):
    nodes = [d for d in _dicts(schema) if d.get("is_json")]
    node = _pick(nodes, rng)
    node["content"] = _pick(WEIRD_JSON, rng)
    node.pop("__id__", None)
    return _with_schema(members, schema)


def _mutate_json_nest(members, schema, rng):
    container, key = _pick(_slots(schema), rng)
    depth = int(_pick([5, 60, 150, 400, 5000, 200_000], rng))
    inner = json.dumps(container[key])
    container[key] = "@@NEST@@"
    opening, closing = ("[", "]") if rng.random() < 0.5 else ('{"a": ', "}")
    text = json.dumps(schema).replace('"@@NEST@@"', opening * depth + inner + closing * depth)
    return _with_schema(members, text)


def _mutate_json_retype(members, schema, rng):
    node = _pick([d for d in _dicts(schema) if "__class__" in d], rng)
    if rng.random() < 0.5:
        node["__module__"], node["__class__"] = _pick(TRUSTED_NODES, rng)
    else:
        node["__loader__"] = _pick(LOADERS, rng)
    return _with_schema(members, schema)


def _mutate_json_swap(members, schema, rng):
    slots = _slots(schema)
    (c1, k1), (c2, k2) = _pick(slots, rng), _pick(slots, rng)
    c1[k1], c2[k2] = copy.deepcopy(c2[k2]), copy.deepcopy(c1[k1])
    return _with_schema(members, schema)


def _resized(array, rng):
    choice = rng.integers(7)
    if choice == 0 and array.ndim:
        return np.delete(array, -1, axis=int(rng.integers(array.ndim)))
    if choice == 1 and array.ndim:
        return np.concatenate([array, array[:1]], axis=0)
    if choice == 2:
        return array.ravel()
    if choice == 3:
        return array.T
    if choice == 4:
        return array.reshape((1,) + array.shape)
    if choice == 5:
        return array[:0]
    return np.asarray(array.ravel()[0] if array.size else 0)


def _revalued(array, rng):
    choice = rng.integers(3)
    if choice == 0 and array.size and array.dtype.kind in "fc":
        array = array.copy()
        array.flat[rng.integers(array.size)] = _pick([np.nan, np.inf, -np.inf, 1e300, 0.0],
                                                     rng)
        return array
    if choice == 1:
        dtype = _pick(["float16", "float32", "float64", "int64", "uint8", "bool",
                       "complex128", "<U5", "datetime64[s]"], rng)
        try:
            return array.astype(dtype)
        except (TypeError, ValueError):
            return array
    return np.full(array.shape, _pick([-1, 10**6, 2**40], rng))


def _mutate_array(members, schema, rng):
    name = _pick(_arrays_of(members), rng)
    array = np.load(io.BytesIO(members[name]))
    array = _resized(array, rng) if rng.random() < 0.5 else _revalued(array, rng)
    members[name] = _npy(array)
    return _zip(members)


def _mutate_npz(members, schema, rng):
    names = sorted(name for name in members if name.endswith(".npz"))
    if not names:
        return _mutate_array(members, schema, rng)
    name = _pick(names, rng)
    with np.load(io.BytesIO(members[name])) as npz:
        arrays = {key: npz[key] for key in npz.files}
    key = _pick(sorted(arrays), rng)
    if key == "format":
        arrays[key] = np.array(_pick(["coo", "csc", "dia", "bsr", "bogus", ""], rng))
    elif rng.random() < 0.3:
        del arrays[key]
    elif key in ("indices", "indptr") and arrays[key].size:
        bad = arrays[key].astype(np.int64)
        bad.flat[rng.integers(bad.size)] += _pick([-1, 1, 7, -(2**31), 2**40], rng)
        arrays[key] = bad
    else:
        arrays[key] = _resized(arrays[key], rng) if rng.random() < 0.5 \
            else _revalued(arrays[key], rng)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    members[name] = buffer.getvalue()
    return _zip(members)


def _mutate_members(members, schema, rng):
    names = sorted(members)
    a, b = _pick(names, rng), _pick(names, rng)
    if rng.random() < 0.5:
        members[a], members[b] = members[b], members[a]
    else:
        del members[a]
    return _zip(members)


def _with_schema(members, schema):
    members["schema.json"] = schema if isinstance(schema, str) else json.dumps(schema)
    return _zip(members)


MUTATIONS = {
    "flip_member": _mutate_flip_member, "flip_raw": _mutate_flip_raw,
    "truncate": _mutate_truncate, "json_value": _mutate_json_value,
    "json_delete": _mutate_json_delete, "json_content": _mutate_json_content,
    "json_nest": _mutate_json_nest, "json_retype": _mutate_json_retype,
    "json_swap": _mutate_json_swap, "array": _mutate_array, "npz": _mutate_npz,
    "members": _mutate_members,
}


def _mutant(data, kind, rng):
    members = _unzip(data)
    schema = json.loads(members["schema.json"])
    return MUTATIONS[kind](members, schema, rng)


def _beyond_any_fit(model):
    """Whether all weights are finite but some (or a scale) beyond what a fit makes.

    Weights above the square root of their dtype's largest value, or an elu
    alpha or leaky relu slope as large (valid parameters), can overflow with
    ordinary inputs: the prediction may then be infinite, no fault of the loader.
    """
    arrays = [getattr(model, attr, None) for attr in ("coef_", "intercept_")]
    arrays += getattr(model, "coefs_", []) + getattr(model, "intercepts_", [])
    for layer in getattr(model, "recurrent_weights_", []):
        arrays += list(layer.values())
    arrays = [a.data if sp.issparse(a) else a for a in arrays if a is not None]
    if not all(np.isfinite(a).all() for a in arrays):
        return False
    limit = np.sqrt(np.finfo(arrays[0].dtype).max)
    scales = [getattr(model, p, 1.0) for p in ("elu_alpha", "leaky_relu_slope")]
    return any(np.abs(a).max(initial=0) >= limit for a in arrays) \
        or any(abs(float(scale)) >= limit for scale in scales)


def _check_mutant(loaded, original, X):
    """None if ``loaded`` predicts as a model should, else what is wrong.

    A model of the saved class must give outputs of the saved model's shapes;
    one of another sknet class (a retyped file that passed the checks), at
    least one output per sample. Weights beyond any fit may overflow on ordinary
    inputs (or on the codes ``transform`` gives for ``inverse_transform``): the
    model's clear overflow error is then a right answer.
    """
    try:
        got = _outputs(loaded, X)
    except ValueError as exc:
        if "overflows" in str(exc) and _beyond_any_fit(loaded):
            return None
        raise
    if type(loaded) is type(original):
        expected = {m: out.shape for m, out in _outputs(original, X).items()}
    else:
        expected = {m: (len(X),) + out.shape[1:] for m, out in got.items()}
    if got.keys() != expected.keys() or not got:
        return f"methods {sorted(got)} instead of {sorted(expected)}"
    for method, out in got.items():
        if out.shape != expected[method]:
            return f"{method} has shape {out.shape}, expected {expected[method]}"
        if out.dtype.kind in "fc" and not np.isfinite(out).all() \
                and not _beyond_any_fit(loaded):
            return f"{method} gives non-finite values"
    return None


def fuzz(n_mutations, seed):
    """Load ``n_mutations`` mutated files; returns the counts of each outcome.

    A mutation whose load (or whose loaded model) breaks the rule is listed in
    ``failures``. Each mutation is written to stderr before it is tried, so
    that a crash of the interpreter names it.
    """
    rng = np.random.default_rng(seed)
    saved = {name: _canonical(sio.dumps(model)) for name, (model, _) in MODELS.items()}
    names, kinds = sorted(saved), sorted(MUTATIONS)
    counts = {"loaded": 0, "refused": 0, "untrusted": 0, "other_object": 0}
    failures = []
    for i in range(n_mutations):
        name, kind = _pick(names, rng), _pick(kinds, rng)
        print(f"mutation {i}: {kind} of {name}", file=sys.stderr, flush=True)
        data = _mutant(saved[name], kind, rng)
        outcome = _try_load(data, *MODELS[name])
        if outcome in counts:
            counts[outcome] += 1
        else:
            failures.append(f"mutation {i} ({kind} of {name}): {outcome}")
    return {"tried": n_mutations, **counts, "failures": failures}


def _try_load(data, original, X):
    """'loaded', 'refused', 'untrusted', or what went wrong."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loaded = load(io.BytesIO(data))
        except UntrustedTypesFoundException:
            return "untrusted"
        except ValueError:
            return "refused"
        except BaseException as exc:  # noqa: BLE001 - any other error is the bug
            return f"load raised {type(exc).__name__}: {exc}"[:500]
        if type(loaded) is not type(original) and not isinstance(loaded, SKNET_ESTIMATORS):
            # the file now holds another kind of object (a class, a list, one
            # of scikit-learn's estimators): load returns what the file holds,
            # and checks sknet's estimators only
            return "other_object"
        try:
            problem = _check_mutant(loaded, original, X)
        except BaseException as exc:  # noqa: BLE001
            return f"the loaded model raised {type(exc).__name__}: {exc}"[:500]
    return problem or "loaded"


def _run_fuzz(n_mutations, seed, timeout):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, str(n_mutations), str(seed)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, (
        f"the fuzz process ended with {proc.returncode}\n{proc.stdout[-4000:]}\n"
        f"{proc.stderr[-4000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["failures"] == []
    assert summary["tried"] == n_mutations
    return summary


def test_fuzz_quick():
    summary = _run_fuzz(30, seed=1, timeout=300)
    assert summary["refused"] > 0


@pytest.mark.slow
def test_fuzz_many_mutations():
    summary = _run_fuzz(2000, seed=2, timeout=1200)
    assert summary["refused"] > 500 and summary["loaded"] > 100


if __name__ == "__main__":
    result = fuzz(int(sys.argv[1]), int(sys.argv[2]))
    print(json.dumps(result))

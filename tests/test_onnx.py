"""ONNX export (``sknet.onnx``): onnxruntime predicts what sknet predicts.

Every exported graph runs in onnxruntime on the digits and is compared with
sknet's own ``predict_proba``, ``predict``, ``decision_function`` or
``transform``: to 1e-5 for float32 models in float graphs, to 1e-10 for
float64 models in double graphs (the same sums in the same type; only the
order of the additions differs). Recurrent models agree to 1e-5 in both:
onnxruntime runs their recurrent layers in float.

Needs the onnx extra (skl2onnx, onnx, onnxruntime): without it the module is
skipped. Marked ``onnx``: ``python -m pytest -m onnx`` runs these alone.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknet import (
    AutoencoderTransformer,
    MLPClassifier,
    MLPRegressor,
    PerceptronClassifier,
    RecurrentClassifier,
    RecurrentRegressor,
    register_activation,
)

pytestmark = [
    pytest.mark.onnx,
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

ort = pytest.importorskip("onnxruntime", reason="needs the onnx extra")
skl2onnx = pytest.importorskip("skl2onnx", reason="needs the onnx extra")
import sknet.onnx  # noqa: E402  (registers the converters)

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-10}
# softmax and exp are output-only (hidden layers refuse them): they export as
# the multi-class classifier's output and the Poisson regressor's.
HIDDEN_ACTIVATIONS = ["relu", "leaky_relu", "elu", "selu", "tanh", "logistic",
                      "identity"]
# Non-default parameters, so that an export that ignored them would differ.
PARAMS = dict(leaky_relu_slope=0.2, elu_alpha=0.5)
FAST = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _data(digits, dtype):
    X, y = digits
    return X.astype(dtype), y


def _run(onx, X):
    session = ort.InferenceSession(onx.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})


def _export(model, X, **options):
    """``skl2onnx.to_onnx`` itself: importing sknet.onnx is the only extra step."""
    return skl2onnx.to_onnx(model, X[:1], options={"zipmap": False, **options})


def _close(actual, expected, dtype):
    assert actual.dtype == dtype
    assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype])


# --------------------------------------------------------------------------- #
# MLPClassifier                                                                #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_every_hidden_activation_exports_probabilities_and_labels(digits, activation,
                                                                  dtype):
    X, y = _data(digits, dtype)
    clf = MLPClassifier(activation=activation, **PARAMS, **FAST).fit(X, y)
    labels, proba = _run(_export(clf, X), X)
    _close(proba, clf.predict_proba(X), dtype)
    assert_array_equal(labels, clf.predict(X))


def _binary(X, y):
    clf = MLPClassifier(hidden_layer_sizes=(16, 12, 8), activation=["selu", "leaky_relu", "elu"],
                        max_iter=5, random_state=0, **PARAMS)
    return clf.fit(X, y % 2)


def _multilabel(X, y):
    Y = np.stack([y % 2, y > 4, y == 3], axis=1).astype(int)
    return MLPClassifier(activation=["tanh"], **FAST).fit(X, Y)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("fit", [_binary, _multilabel], ids=["binary", "multilabel"])
def test_logistic_outputs_export_probabilities_and_labels(digits, fit, dtype):
    X, y = _data(digits, dtype)
    clf = fit(X, y)
    labels, proba = _run(_export(clf, X), X)
    _close(proba, clf.predict_proba(X), dtype)
    assert_array_equal(labels, clf.predict(X))  # a 0/1 matrix for multilabel


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_a_two_label_multilabel_classifier_exports_a_0_1_matrix(digits, dtype):
    # two logistic outputs: two labels, not a binary classifier's two columns
    X, y = _data(digits, dtype)
    clf = MLPClassifier(activation=["tanh"], **FAST).fit(X, np.stack([y % 2, y > 4], axis=1))
    labels, proba = _run(_export(clf, X), X)
    _close(proba, clf.predict_proba(X), dtype)
    assert labels.shape == (X.shape[0], 2)
    assert_array_equal(labels, clf.predict(X))


@pytest.mark.parametrize("fit", [_binary, _multilabel], ids=["binary", "multilabel"])
def test_zipmap_gives_one_dict_of_probabilities_per_row(digits, fit):
    X, y = _data(digits, np.float32)
    clf = fit(X, y)
    labels, dicts = _run(skl2onnx.to_onnx(clf, X[:1]), X[:20])
    expected = clf.predict_proba(X[:20])
    assert [sorted(d) for d in dicts] == [list(range(expected.shape[1]))] * 20
    got = np.array([[d[k] for k in sorted(d)] for d in dicts])
    assert_allclose(got, expected, atol=1e-5)
    assert_array_equal(labels, clf.predict(X[:20]))


def test_string_labels_and_nocl(digits):
    X, y = _data(digits, np.float32)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])[y]
    clf = MLPClassifier(**FAST).fit(X, names)
    labels, _ = _run(_export(clf, X), X)
    assert_array_equal(labels, clf.predict(X))
    indices, _ = _run(_export(clf, X, nocl=True), X)
    assert_array_equal(clf.classes_[indices], clf.predict(X))


@pytest.mark.parametrize("estimator", [MLPClassifier, PerceptronClassifier])
def test_output_class_labels_adds_the_classes_as_scikit_learns_export_does(digits,
                                                                           estimator):
    from sklearn.linear_model import Perceptron
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X, y = _data(digits, np.float32)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])[y]
    params = FAST if estimator is MLPClassifier else dict(max_iter=5, random_state=0)
    peer = SkMLPClassifier if estimator is MLPClassifier else Perceptron
    for labels in (y, names):
        clf, ref = estimator(**params).fit(X, labels), peer(**params).fit(X, labels)
        for flag in (False, True):
            got = _run(_export(clf, X, output_class_labels=flag), X[:5])
            want = _run(_export(ref, X, output_class_labels=flag), X[:5])
            assert len(got) == len(want) == 2 + flag
            assert_array_equal(got[0], clf.predict(X[:5]))
            if flag:  # the third output: the classes, typed as scikit-learn's export types them
                assert_array_equal(got[2], clf.classes_)
                assert got[2].dtype == want[2].dtype


def test_double_graph_with_zipmap_is_refused_with_the_fix(digits):
    X, y = _data(digits, np.float64)
    clf = MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"zipmap.*False"):
        skl2onnx.to_onnx(clf, X[:1])


def test_float64_model_exports_as_float_within_float_precision(digits):
    X, y = _data(digits, np.float64)
    clf = MLPClassifier(activation="elu", **FAST).fit(X, y)
    X32 = X.astype(np.float32)
    labels, proba = _run(_export(clf, X32), X32)
    assert proba.dtype == np.float32
    assert_allclose(proba, clf.predict_proba(X), atol=1e-5)
    assert np.mean(labels == clf.predict(X)) > 0.99


# --------------------------------------------------------------------------- #
# MLPRegressor                                                                 #
# --------------------------------------------------------------------------- #
def _single_output(X, y):
    return MLPRegressor(**FAST).fit(X, y / 9.0)


def _two_outputs(X, y):
    Y = np.stack([y / 9.0, (y % 3) - 1.0], axis=1)
    return MLPRegressor(activation=["elu"], **PARAMS, **FAST).fit(X, Y)


def _poisson(X, y):
    return MLPRegressor(loss="poisson", activation="tanh", **FAST).fit(X, y)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("fit", [_single_output, _two_outputs, _poisson],
                         ids=["single-output", "multi-output", "poisson-exp-output"])
def test_regressor_exports_predict(digits, fit, dtype):
    X, y = _data(digits, dtype)
    reg = fit(X, y)
    (pred,) = _run(skl2onnx.to_onnx(reg, X[:1]), X)
    expected = reg.predict(X)
    assert pred.shape == (X.shape[0], reg.n_outputs_)
    _close(pred, expected.reshape(pred.shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_exp_output_saturates_where_sknets_does(digits, dtype):
    # The output layer's weights zeroed: every row's pre-activation is the
    # intercept, set around the point where the exponential saturates (one
    # below the log of the dtype's largest value), so a graph that clipped
    # elsewhere, or not at all, would disagree or overflow.
    X, y = _data(digits, dtype)
    reg = _poisson(X, y)
    reg.coefs_[-1][:] = 0
    overflow = float(np.log(np.finfo(dtype).max))
    for z in (overflow - 1.5, overflow - 1.1, overflow - 0.9, overflow + 5.0):
        reg.intercepts_[-1][:] = z
        (pred,) = _run(skl2onnx.to_onnx(reg, X[:1]), X[:3])
        expected = reg.predict(X[:3])
        assert np.all(np.isfinite(expected))
        _close(pred, expected.reshape(pred.shape), dtype)


# --------------------------------------------------------------------------- #
# PerceptronClassifier                                                         #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_classes", [2, 10])
def test_perceptron_exports_labels_and_decision_scores(digits, n_classes, dtype):
    X, y = _data(digits, dtype)
    perceptron = PerceptronClassifier(random_state=0).fit(X, y % n_classes)
    labels, scores = _run(_export(perceptron, X), X)
    expected = perceptron.decision_function(X)
    if n_classes == 2:  # as skl2onnx exports scikit-learn's Perceptron: [-s, s]
        expected = np.stack([-expected, expected], axis=1)
    _close(scores, expected, dtype)
    assert_array_equal(labels, perceptron.predict(X))


@pytest.mark.parametrize("n_classes", [2, 10])
def test_perceptron_takes_raw_scores_as_scikit_learns_export_does(digits, n_classes):
    from sklearn.linear_model import Perceptron

    X, y = _data(digits, np.float32)
    perceptron = PerceptronClassifier(random_state=0).fit(X, y % n_classes)
    reference = Perceptron(random_state=0).fit(X, y % n_classes)  # the same weights
    for raw_scores in (False, True):
        labels, scores = _run(_export(perceptron, X, raw_scores=raw_scores), X)
        want_labels, want_scores = _run(_export(reference, X, raw_scores=raw_scores), X)
        assert_array_equal(labels, want_labels)
        _close(scores, want_scores, np.float32)


def test_sparsified_perceptron_exports_the_same_graph(digits):
    X, y = _data(digits, np.float32)
    perceptron = PerceptronClassifier(random_state=0).fit(X, y)
    dense_labels, dense_scores = _run(_export(perceptron, X), X)
    perceptron.sparsify()
    labels, scores = _run(_export(perceptron, X), X)
    assert_array_equal(scores, dense_scores)
    assert_array_equal(labels, dense_labels)


# --------------------------------------------------------------------------- #
# AutoencoderTransformer                                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("tied_weights", [True, False], ids=["tied", "untied"])
def test_autoencoder_exports_transform_and_inverse_transform(digits, tied_weights, dtype):
    X, _ = _data(digits, dtype)
    ae = AutoencoderTransformer(4, hidden_layer_sizes=(16, 8),
                                activation=["relu", "leaky_relu", "elu"],
                                tied_weights=tied_weights, max_iter=5, random_state=0,
                                **PARAMS).fit(X)
    (codes,) = _run(skl2onnx.to_onnx(ae, X[:1]), X)
    _close(codes, ae.transform(X), dtype)
    Z = ae.transform(X)
    onx = skl2onnx.to_onnx(ae, Z[:1], options={id(ae): {"inverse_transform": True}})
    (reconstruction,) = _run(onx, Z)
    _close(reconstruction, ae.inverse_transform(Z), dtype)


def test_autoencoder_inverse_export_refuses_data_of_the_wrong_width(digits):
    X, _ = _data(digits, np.float32)
    ae = AutoencoderTransformer(4, max_iter=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"takes 4 columns.*transform\(X\[:1\]\)"):
        skl2onnx.to_onnx(ae, X[:1],
                         options={AutoencoderTransformer: {"inverse_transform": True}})


# --------------------------------------------------------------------------- #
# pipelines and the convenience function                                       #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("convert", [skl2onnx.to_onnx, sknet.onnx.to_onnx],
                         ids=["skl2onnx.to_onnx", "sknet.onnx.to_onnx"])
def test_pipeline_scaler_autoencoder_classifier(digits, convert, dtype):
    X, y = _data(digits, dtype)
    pipe = make_pipeline(
        StandardScaler(),
        AutoencoderTransformer(8, activation="selu", max_iter=5, random_state=0),
        MLPClassifier(activation="elu", **PARAMS, **FAST),
    ).fit(X, y)
    labels, proba = _run(convert(pipe, X[:1], options={"zipmap": False}), X)
    _close(proba, pipe.predict_proba(X), dtype)
    assert_array_equal(labels, pipe.predict(X))


def test_to_onnx_takes_whole_sparse_or_integer_data(digits):
    X, y = digits
    X_int = (X * 16).astype(np.int64)
    clf = MLPClassifier(**FAST).fit(X_int, y)  # sknet computes in float64
    onx = sknet.onnx.to_onnx(clf, X_int, options={"zipmap": False})
    labels, proba = _run(onx, X_int.astype(np.float64))
    _close(proba, clf.predict_proba(X_int), np.float64)
    onx = sknet.onnx.to_onnx(clf, sp.csr_matrix(X_int[:5]), options={"zipmap": False})
    assert onx.graph.input[0].type.tensor_type.shape.dim[1].dim_value == X.shape[1]
    # a list of rows, as fit takes it: a 2-D table for a feed-forward model
    onx = sknet.onnx.to_onnx(clf, X_int[:5].tolist(), options={"zipmap": False})
    assert [d.dim_value for d in onx.graph.input[0].type.tensor_type.shape.dim] == [
        0, X.shape[1]]
    _close(_run(onx, X_int.astype(np.float64))[1], clf.predict_proba(X_int), np.float64)


def _declared(onx):
    """Each graph output's name, element type and shape, as the ONNX file declares them."""
    return [(o.name, o.type.tensor_type.elem_type,
             [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim])
            for o in onx.graph.output]


@pytest.mark.parametrize("strings", [False, True], ids=["int-labels", "string-labels"])
def test_classifier_outputs_are_declared_as_scikit_learns_export_declares_them(digits,
                                                                              strings):
    # A runtime without Python reads the outputs' types from the file: labels
    # (int64 or string, one per row) and an (n, n_classes) probability matrix.
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X, y = _data(digits, np.float32)
    labels = np.array(list("abcdefghij"))[y] if strings else y
    ours = _declared(_export(MLPClassifier(**FAST).fit(X, labels), X))
    theirs = _declared(_export(SkMLPClassifier(**FAST).fit(X, labels), X))
    assert ours == theirs
    assert [shape for _, _, shape in ours] == [[""], ["", 10]]


def test_multilabel_and_regressor_outputs_declare_their_widths(digits):
    X, y = _data(digits, np.float32)
    Y = np.column_stack([y % 2, y > 4])
    (label, proba) = _declared(_export(MLPClassifier(**FAST).fit(X, Y), X))
    assert label[2] == ["", 2] and proba[2] == ["", 2]  # a 0/1 matrix of 2 labels
    (pred,) = _declared(skl2onnx.to_onnx(MLPRegressor(**FAST).fit(X, X[:, :3]), X[:1]))
    assert pred[2] == ["", 3]


@pytest.mark.parametrize("inverse", [False, True], ids=["transform", "inverse_transform"])
def test_autoencoder_output_is_declared_with_its_width(digits, inverse):
    from sklearn.decomposition import PCA

    X, _ = _data(digits, np.float32)
    ae = AutoencoderTransformer(3, max_iter=2, random_state=0).fit(X)
    data = ae.transform(X[:1]) if inverse else X[:1]
    (out,) = _declared(skl2onnx.to_onnx(ae, data,
                                        options={id(ae): {"inverse_transform": inverse}}))
    assert out[2] == ["", 64 if inverse else 3]
    if not inverse:  # as scikit-learn's export declares a PCA's components
        assert [out] == _declared(skl2onnx.to_onnx(PCA(3).fit(X), X[:1]))


def test_an_input_of_another_tensor_type_is_refused(digits):
    from skl2onnx.common.data_types import Int64TensorType

    X, y = _data(digits, np.float32)
    clf = MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(TypeError, match=r"MLPClassifier takes a float or double tensor; "
                                        r"got Int64TensorType"):
        skl2onnx.convert_sklearn(clf, initial_types=[("X", Int64TensorType([None, 64]))],
                                 options={"zipmap": False})


def test_to_onnx_refuses_an_unfitted_model(digits):
    X, _ = digits
    with pytest.raises(NotFittedError):
        sknet.onnx.to_onnx(MLPClassifier(), X)


@pytest.mark.parametrize("estimator", [MLPRegressor(), AutoencoderTransformer(2),
                                       RecurrentRegressor()],
                         ids=lambda e: type(e).__name__)
def test_skl2onnx_refuses_an_unfitted_model(digits, estimator):
    # the classifiers stop earlier, in skl2onnx's own classifier parser, as
    # scikit-learn's do
    X = digits[0].astype(np.float32)
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(estimator, X[:1])


def test_a_graph_of_two_inputs_is_refused(digits):
    from skl2onnx.common.data_types import FloatTensorType

    X, y = _data(digits, np.float32)
    clf = MLPClassifier(**FAST).fit(X, y)
    inputs = [(name, FloatTensorType([None, 64])) for name in ("X", "Z")]
    with pytest.raises(RuntimeError, match="MLPClassifier takes one input, got 2"):
        skl2onnx.convert_sklearn(clf, initial_types=inputs, options={"zipmap": False})


def test_float_labels_of_whole_numbers_export_as_integers(digits):
    X, y = _data(digits, np.float32)
    clf = MLPClassifier(**FAST).fit(X, y.astype(np.float64))
    labels, _ = _run(_export(clf, X), X)
    assert labels.dtype == np.int64
    assert_array_equal(labels, clf.predict(X))


# --------------------------------------------------------------------------- #
# custom activations                                                           #
# --------------------------------------------------------------------------- #
@pytest.fixture
def onnx_activations(monkeypatch, activation_registry):
    """Registrations of a test, in a registry of their own."""
    monkeypatch.setattr(sknet.onnx, "_ONNX_ACTIVATIONS", {})
    return activation_registry


def _register_softsign(names, name):
    names.append(name)
    register_activation(name, lambda z: z / (1 + np.abs(z)),
                        lambda z, g: g / (1 + np.abs(z)) ** 2, derivative_of="input")


def test_custom_activation_without_onnx_form_is_refused_by_name(digits, onnx_activations):
    _register_softsign(onnx_activations, "softsign_test")
    X, y = _data(digits, np.float32)
    clf = MLPClassifier(activation=["softsign_test"], **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"'softsign_test'.*register_onnx_activation"):
        _export(clf, X)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_custom_activation_exports_through_its_registered_builder(digits, onnx_activations,
                                                                 dtype):
    _register_softsign(onnx_activations, "softsign_test")
    sknet.onnx.register_onnx_activation(
        "softsign_test",  # written with constants and elementwise operators
        lambda graph, x: graph.node("Div", x, graph.node("Add", graph.node("Abs", x), 1.0)))
    X, y = _data(digits, dtype)
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), activation=["softsign_test", "relu"],
                        max_iter=5, random_state=0).fit(X, y)
    labels, proba = _run(_export(clf, X), X)
    _close(proba, clf.predict_proba(X), dtype)
    assert_array_equal(labels, clf.predict(X))


def test_a_builtin_name_registered_anew_does_not_export_as_the_builtin(digits, monkeypatch,
                                                                        onnx_activations):
    from sknet._core.activations import ACTIVATIONS

    monkeypatch.setitem(ACTIVATIONS, "relu", ACTIVATIONS["relu"])  # the built-in, put back
    register_activation("relu", lambda z: z / (1 + np.abs(z)),
                        lambda z, g: g / (1 + np.abs(z)) ** 2, derivative_of="input",
                        overwrite=True)
    X, y = _data(digits, np.float32)
    clf = MLPClassifier(activation="relu", **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"'relu'.*register_onnx_activation"):
        _export(clf, X)


def test_builder_must_return_a_tensor_name(digits, onnx_activations):
    _register_softsign(onnx_activations, "softsign_test")
    sknet.onnx.register_onnx_activation("softsign_test", lambda graph, x: None)
    X, y = _data(digits, np.float32)
    clf = MLPClassifier(activation="softsign_test", **FAST).fit(X, y)
    with pytest.raises(TypeError, match="softsign_test.*name of its output"):
        _export(clf, X)


def test_register_onnx_activation_refuses_to_replace_without_overwrite(onnx_activations):
    def builder(graph, x):
        return graph.node("Softsign", x)

    sknet.onnx.register_onnx_activation("softsign_test", builder)
    for name in ("softsign_test", "relu"):
        with pytest.raises(ValueError, match="overwrite=True"):
            sknet.onnx.register_onnx_activation(name, builder)
    assert sknet.onnx.register_onnx_activation("softsign_test", builder,
                                               overwrite=True) is builder
    with pytest.raises(TypeError, match="callable"):
        sknet.onnx.register_onnx_activation("softsign_test", "Softsign", overwrite=True)
    for name in ("", 3):
        with pytest.raises(ValueError, match="non-empty string"):
            sknet.onnx.register_onnx_activation(name, builder)


# --------------------------------------------------------------------------- #
# RecurrentClassifier and RecurrentRegressor                                   #
# --------------------------------------------------------------------------- #
# onnxruntime runs its RNN, LSTM and GRU operators in float only, so a double
# graph computes its recurrent layers in float: float64 models agree to 1e-5 too.
RECURRENT_TOL = 1e-5
CELLS = ["rnn", "lstm", "gru"]
STACKS = [(6,), (6, 4)]
TINY = dict(max_iter=3, random_state=0)


def _sequences(dtype, n=40, n_steps=6, n_features=3, seed=0):
    """Equal-length sequences, the same NaN-padded to unequal lengths, targets."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_steps, n_features))
    padded = X.copy()
    lengths = rng.integers(1, n_steps + 1, size=n)
    for i, length in enumerate(lengths):
        padded[i, length:] = np.nan
    y = np.digitize(X[:, :, 0].sum(axis=1), [-1.0, 1.0])  # three classes
    return X.astype(dtype), padded.astype(dtype), y


def _recurrent_close(actual, expected, dtype):
    assert actual.dtype == dtype
    assert_allclose(actual, expected, rtol=RECURRENT_TOL, atol=RECURRENT_TOL)


def _check_classifier(clf, onx, *datasets):
    dtype = datasets[0].dtype
    for X in datasets:
        labels, proba = _run(onx, X)
        _recurrent_close(proba, clf.predict_proba(X), dtype)
        assert_array_equal(labels, clf.predict(X))


def _check_regressor(reg, onx, *datasets):
    for X in datasets:
        (pred,) = _run(onx, X)
        assert pred.shape == (X.shape[0], reg.n_outputs_)
        _recurrent_close(pred, reg.predict(X).reshape(pred.shape), X.dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("hidden", STACKS, ids=["1-layer", "2-layers"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_classifier_exports_every_cell(cell, hidden, bidirectional, dtype):
    X, padded, y = _sequences(dtype)
    clf = RecurrentClassifier(hidden, cell=cell, bidirectional=bidirectional,
                              **TINY).fit(padded, y)
    _check_classifier(clf, _export(clf, X), X, padded)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("hidden", STACKS, ids=["1-layer", "2-layers"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_regressor_exports_every_cell(cell, hidden, bidirectional, dtype):
    X, padded, y = _sequences(dtype)
    Y = np.stack([y / 2.0, X[:, -1, 1]], axis=1)
    reg = RecurrentRegressor(hidden, cell=cell, bidirectional=bidirectional,
                             **TINY).fit(padded, Y)
    _check_regressor(reg, skl2onnx.to_onnx(reg, X[:1]), X, padded)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_binary_classifier_exports_one_logistic_unit(cell, dtype):
    X, padded, y = _sequences(dtype)
    clf = RecurrentClassifier((6, 4), cell=cell, bidirectional=True,
                              **TINY).fit(X, y == 1)
    assert clf.coefs_[0].shape[1] == 1
    _check_classifier(clf, _export(clf, X), X, padded)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_model_fitted_on_univariate_2d_input(cell, dtype):
    X, padded, y = _sequences(dtype, n_features=1)
    X2, padded2 = X[:, :, 0], padded[:, :, 0]
    reg = RecurrentRegressor((6,), cell=cell, bidirectional=True, **TINY).fit(X2, y / 2.0)
    assert reg.n_features_in_ == X2.shape[1]
    onx = skl2onnx.to_onnx(reg, X2[:1])
    assert len(onx.graph.input[0].type.tensor_type.shape.dim) == 2
    (pred,) = _run(onx, X2)
    _recurrent_close(pred[:, 0], reg.predict(X2), dtype)
    # NaN-padded rows run in the graph as the same sequences do in sknet
    (pred,) = _run(onx, padded2)
    _recurrent_close(pred[:, 0], reg.predict(padded), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("activation", [["relu", "leaky_relu"], ["logistic", "identity"],
                                        ["elu", "tanh"]], ids="-".join)
def test_simple_rnn_activations_export(activation, dtype):
    X, padded, y = _sequences(dtype)
    clf = RecurrentClassifier((6, 4), cell="rnn", activation=activation, bidirectional=True,
                              **PARAMS, **TINY).fit(padded, y)
    _check_classifier(clf, _export(clf, X), X, padded)


@pytest.mark.parametrize("activation", ["selu"])  # exp: refused at fit, output-only
def test_simple_rnn_activation_without_onnx_counterpart_is_refused(activation):
    X, _, y = _sequences(np.float32)
    clf = RecurrentClassifier((4, 4), cell="rnn", activation=["tanh", activation],
                              learning_rate_init=1e-4, **TINY).fit(X * 0.1, y)
    with pytest.raises(ValueError, match=rf"activation '{activation}'.*RNN operator"):
        _export(clf, X)


def test_simple_rnn_custom_activation_is_refused_even_with_an_onnx_form(onnx_activations):
    _register_softsign(onnx_activations, "softsign_test")
    sknet.onnx.register_onnx_activation(
        "softsign_test", lambda graph, x: graph.node("Softsign", x))
    X, _, y = _sequences(np.float32)
    clf = RecurrentClassifier((4,), cell="rnn", activation="softsign_test", **TINY).fit(X, y)
    with pytest.raises(ValueError, match="'softsign_test'.*cannot go inside"):
        _export(clf, X)


def test_recurrent_export_takes_sequences_of_any_length():
    X, padded, y = _sequences(np.float32, n_steps=6)
    clf = RecurrentClassifier((6,), cell="lstm", bidirectional=True, **TINY).fit(X, y)
    onx = _export(clf, X)
    assert [d.dim_value for d in onx.graph.input[0].type.tensor_type.shape.dim] == [0, 0, 3]
    longer, _, _ = _sequences(np.float32, n_steps=9, seed=1)
    short = padded.copy()
    short[:, 3:] = np.nan  # every sequence is padded at the last steps
    _check_classifier(clf, onx, longer, X[:, :2], short, X[:1])


@pytest.mark.parametrize("opset", [12, 13])
def test_recurrent_export_at_the_opsets_either_side_of_reduce_sums_change(opset):
    # ReduceSum took its axes as an attribute up to opset 12, as an input from 13
    X, padded, y = _sequences(np.float32)
    clf = RecurrentClassifier((6,), cell="gru", **TINY).fit(padded, y)
    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False}, target_opset=opset)
    assert max(o.version for o in onx.opset_import if o.domain in ("", "ai.onnx")) == opset
    _check_classifier(clf, onx, padded)


def test_recurrent_zipmap_string_labels_and_nocl():
    X, padded, y = _sequences(np.float32)
    names = np.array(["down", "flat", "up"])[y]
    clf = RecurrentClassifier((6,), cell="gru", **TINY).fit(padded, names)
    labels, dicts = _run(skl2onnx.to_onnx(clf, X[:1]), padded)
    assert_array_equal(labels, clf.predict(padded))
    got = np.array([[d[k] for k in clf.classes_] for d in dicts])
    assert_allclose(got, clf.predict_proba(padded), atol=RECURRENT_TOL)
    indices, _ = _run(_export(clf, X, nocl=True), padded)
    assert_array_equal(clf.classes_[indices], clf.predict(padded))


def test_recurrent_multilabel_classifier():
    X, padded, y = _sequences(np.float32)
    Y = np.stack([y == 0, y == 2, X[:, 0, 1] > 0], axis=1).astype(int)
    clf = RecurrentClassifier((6,), cell="lstm", **TINY).fit(padded, Y)
    _check_classifier(clf, _export(clf, X), X, padded)  # labels: a 0/1 matrix


def test_recurrent_outputs_declare_their_widths():
    X, padded, y = _sequences(np.float32)
    clf = RecurrentClassifier((4,), cell="gru", **TINY).fit(X, y)
    assert [shape for _, _, shape in _declared(_export(clf, X))] == [[""], ["", 3]]
    reg = RecurrentRegressor((4,), cell="gru", **TINY).fit(X, X[:, 0, :2])
    (pred,) = _declared(skl2onnx.to_onnx(reg, X[:1]))
    assert pred[2] == ["", 2]


def test_recurrent_input_of_the_wrong_width_is_refused():
    X, _, y = _sequences(np.float32)
    clf = RecurrentClassifier((4,), cell="gru", **TINY).fit(X, y)
    with pytest.raises(ValueError, match=r"3 feature\(s\) per step"):
        _export(clf, X[:, :, :2])
    with pytest.raises(ValueError, match=r"3 feature\(s\) per step") as info:
        _export(clf, X[:, :, 0])
    assert "or (n_samples, n_steps)" not in str(info.value)  # 2-D input: one feature only
    univariate = RecurrentClassifier((4,), cell="gru", **TINY).fit(X[:, :, :1], y)
    with pytest.raises(ValueError, match=r"1 feature\(s\) per step: its exported input is "
                                         r"\(n_samples, n_steps, 1\) or \(n_samples, n_steps\)"):
        _export(univariate, X[:, :, :2])


def test_to_onnx_takes_a_list_of_sequences_of_unequal_lengths():
    X, padded, y = _sequences(np.float64)
    ragged = [x[~np.isnan(x[:, 0])] for x in padded]
    reg = RecurrentRegressor((6,), cell="lstm", **TINY).fit(ragged, y / 2.0)
    (pred,) = _run(sknet.onnx.to_onnx(reg, ragged), padded)
    _recurrent_close(pred[:, 0], reg.predict(ragged), np.float64)

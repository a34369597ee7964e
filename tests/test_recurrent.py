"""RecurrentClassifier and RecurrentRegressor: sequences in the scikit-learn API.

The cells' arithmetic is checked in tests/core/test_recurrent_core.py (finite
differences, PyTorch); here: the input forms, the errors, the MLP features
the estimators share, and what they learn.
"""

import copy
import pickle
import re
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import sknet.io
from sknet import RecurrentClassifier, RecurrentRegressor, as_sequences
from sknet._recurrent import estimate_recurrent_fit_bytes

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _digits(n=600):
    X, y = load_digits(return_X_y=True)
    return X[:n].reshape(-1, 8, 8) / 16, y[:n]


def _ragged(n=60, seed=0):
    """Sequences of 3 to 12 steps of 2 features; the label: is the sum of the first feature > 0."""
    rng = np.random.default_rng(seed)
    seqs = [rng.normal(size=(int(rng.integers(3, 13)), 2)) for _ in range(n)]
    y = np.array([int(s[:, 0].sum() > 0) for s in seqs])
    return seqs, y


def _padded(seqs, n_steps):
    out = np.full((len(seqs), n_steps, seqs[0].shape[1]), np.nan)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def _small(cls=RecurrentClassifier, **params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    return cls(**{**defaults, **params})


# --------------------------------------------------------------------------- #
# input forms                                                                  #
# --------------------------------------------------------------------------- #
def test_a_list_of_sequences_and_its_nan_padded_array_are_the_same_data():
    seqs, y = _ragged()
    seqs[5] = seqs[5][:1]  # a sequence of one step: every later step padded
    from_list = _small(cell="lstm").fit(seqs, y)
    from_array = _small(cell="lstm").fit(_padded(seqs, 40), y)
    for a, b in zip(from_list.coefs_ + from_list.intercepts_,
                    from_array.coefs_ + from_array.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for padding in (12, 40, 100):
        np.testing.assert_allclose(from_list.predict_proba(_padded(seqs, padding)),
                                   from_list.predict_proba(seqs), rtol=1e-12)


def test_a_sequence_alone_is_predicted_as_in_a_padded_batch():
    seqs, y = _ragged()
    clf = _small(cell="gru", bidirectional=True).fit(seqs, y)
    batch = clf.predict_proba(seqs)
    for i in (0, 7, 31):
        np.testing.assert_allclose(clf.predict_proba([seqs[i]]), batch[i:i + 1], rtol=1e-12)


def test_a_2d_array_is_read_as_univariate_sequences():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 6))
    y = (X.sum(axis=1) > 0).astype(int)
    clf = _small().fit(X, y)
    assert clf.n_features_in_ == 6 and clf.n_step_features_ == 1
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X[:, :, None]))
    np.testing.assert_array_equal(clf.predict_proba(X),
                                  clf.predict_proba([row[:, None] for row in X]))
    with pytest.raises(ValueError, match="5 features"):  # a table keeps its columns
        clf.predict(X[:, :5])


def test_3d_input_accepts_any_length_at_predict_time():
    X, y = _digits(200)
    clf = _small().fit(X, y)
    assert clf.n_features_in_ == 8 and clf.n_step_features_ == 8
    assert clf.predict(X[:, :5]).shape == (200,)
    with pytest.raises(ValueError, match="7 features per time step"):
        clf.predict(X[:, :, :7])


def test_as_sequences_pads_a_ragged_list_with_nan():
    X = as_sequences([np.arange(2.0), np.arange(3.0)])
    np.testing.assert_array_equal(X[:, :, 0], [[0, 1, np.nan], [0, 1, 2]])
    assert as_sequences(np.ones((2, 3, 4), dtype=np.float32)).dtype == np.float32
    # steps that every sequence pads are dropped
    assert as_sequences(_padded([np.ones((2, 1)), np.ones((3, 1))], 50)).shape == (2, 3, 1)


@pytest.mark.parametrize("X, message", [
    (np.array([[[1.0], [np.nan], [2.0]]]), "NaN before a real time step"),
    (np.array([[[np.nan], [1.0]]]), "NaN before a real time step"),
    (np.array([[[1.0, np.nan], [np.nan, np.nan]]]), "some features of a time step"),
    (np.array([[[np.nan], [np.nan]], [[1.0], [2.0]]]), "Sequence 0 is empty"),
    ([np.ones((2, 1)), np.ones((0, 1))], "Sequence 1 is empty"),
    ([np.ones((2, 1)), np.ones((3, 2))], "same number of features"),
    (np.array([[[1.0], [np.inf]]]), "infinity"),
    (np.array([[1.0, np.nan]]), "NaN"),  # in a 2-D table NaN is a missing value
    (np.ones((2, 2, 2, 2)), "2-D or 3-D"),
    (np.ones((2, 0, 1)), "0 time steps"),
])
def test_malformed_sequences_are_refused_clearly(X, message):
    with pytest.raises(ValueError, match=message):
        as_sequences(X)
    y = np.arange(len(X)) % 2
    model = _small()
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
    assert not hasattr(model, "coefs_")


@pytest.mark.parametrize("ragged", [True, False], ids=["ragged", "equal"])
def test_an_object_array_or_series_of_sequences_is_read_as_a_list(ragged):
    seqs, y = _ragged()
    if not ragged:
        seqs = [s[:3] for s in seqs]
    held = np.empty(len(seqs), dtype=object)
    held[:] = seqs
    np.testing.assert_array_equal(as_sequences(held), as_sequences(seqs))
    clf = _small(max_iter=2).fit(held, y)
    np.testing.assert_array_equal(clf.predict_proba(pd.Series(held)), clf.predict_proba(seqs))


def test_an_iterator_of_sequences_is_refused_clearly():
    seqs, y = _ragged()
    with pytest.raises(TypeError, match=r"not an iterator \(generator\): pass list\(X\)"):
        _small().fit((s for s in seqs), y)


def test_sparse_input_is_refused():
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="sparse"):
        _small().fit(sp.csr_matrix(np.ones((4, 3))), [0, 1, 0, 1])


@pytest.mark.parametrize("params, message", [
    (dict(cell="cnn"), "cell"),
    (dict(cell="lstm", activation="relu"), "takes only activation='tanh'"),
    (dict(cell="rnn", activation="softmax"), "output activation"),
    (dict(cell="rnn", activation="swish_unknown"), "activation"),
    (dict(bidirectional="yes"), "bidirectional"),
    (dict(forget_bias="one"), "forget_bias"),
])
def test_bad_parameters_are_named(params, message):
    X, y = _digits(50)
    with pytest.raises((ValueError, TypeError), match=message):
        _small(**params).fit(X, y)


# --------------------------------------------------------------------------- #
# what the MLPs promise                                                        #
# --------------------------------------------------------------------------- #
def test_pipeline_and_grid_search_over_cells():
    X, y = _digits(300)
    flatten = FunctionTransformer(lambda X: X.reshape(len(X), -1))  # a table of 64 steps
    pipe = make_pipeline(flatten, _small(max_iter=3))
    search = GridSearchCV(pipe, {"recurrentclassifier__cell": ["rnn", "gru"]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["recurrentclassifier__cell"] in ("rnn", "gru")
    direct = GridSearchCV(_small(max_iter=3), {"bidirectional": [False, True]}, cv=2).fit(X, y)
    assert direct.predict(X).shape == (300,)


def test_clone_pickle_and_sknet_io_keep_the_model(tmp_path):
    pytest.importorskip("skops")
    seqs, y = _ragged()
    clf = _small(cell="lstm", hidden_layer_sizes=(4, 3), bidirectional=True).fit(seqs, y)
    expected = clf.predict_proba(seqs)
    assert clone(clf).get_params() == clf.get_params()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(seqs), expected)
    sknet.io.dump(clf, tmp_path / "model.skops")
    loaded = sknet.io.load(tmp_path / "model.skops")
    np.testing.assert_array_equal(loaded.predict_proba(seqs), expected)


def test_recurrent_weights_are_the_model():
    X, y = _digits(100)
    clf = _small().fit(X, y)
    before = clf.predict_proba(X)
    clf.recurrent_weights_[0]["weight_hh"][...] = 0
    assert not np.allclose(clf.predict_proba(X), before)


def test_threads_predicting_on_one_model_get_the_sequential_answers():
    seqs, y = _ragged(80)
    clf = _small(cell="gru").fit(seqs, y)
    expected = clf.predict_proba(seqs)
    results, start = [None] * 6, threading.Barrier(6)

    def work(i):
        start.wait()
        results[i] = [clf.predict_proba(seqs) for _ in range(5)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rounds in results:
        for got in rounds:
            np.testing.assert_array_equal(got, expected)


def test_float32_trains_and_predicts_in_float32():
    X, y = _digits(100)
    clf = _small().fit(X.astype(np.float32), y)
    assert all(W.dtype == np.float32 for d in clf.recurrent_weights_ for W in d.values())
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batches_gathered_as_they_load_train_as_batches_gathered_first(monkeypatch, dtype):
    """The loop hands the network the whole X and each batch's indices; the same fit
    with the batches' rows gathered by the loop itself gives the same model."""
    from sknet._core.recurrent import RecurrentNetwork

    seqs, y = _ragged(90)
    X = _padded(seqs, 12).astype(dtype)
    sw = np.random.default_rng(3).uniform(0.5, 2, len(y))
    seen = []
    original = RecurrentNetwork.loss_and_gradient

    def spy(self, X, *args, rows=None, **kwargs):
        seen.append(None if rows is None else (X.shape[0], len(rows)))
        return original(self, X, *args, rows=rows, **kwargs)

    def fit():
        seen.clear()
        params = dict(hidden_layer_sizes=(6,), cell="lstm", batch_size=16, max_iter=3)
        return _small(**params).fit(X, y, sample_weight=sw)

    monkeypatch.setattr(RecurrentNetwork, "loss_and_gradient", spy)
    gathered_as_loaded = fit()
    assert seen and seen[0] == (90, 16) and seen[-1] == (90, 90 % 16)
    monkeypatch.setattr(RecurrentNetwork, "takes_rows", False)
    gathered_first = fit()
    assert seen and set(seen) == {None}
    assert gathered_as_loaded.loss_curve_ == gathered_first.loss_curve_
    for a, b in zip(gathered_as_loaded.coefs_ + gathered_as_loaded.intercepts_,
                    gathered_first.coefs_ + gathered_first.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_warm_start_and_partial_fit_continue_the_fitted_network():
    X, y = _digits(200)
    warm = _small(max_iter=2, warm_start=True, learning_rate_init=0.01).fit(X, y)
    first = list(warm.loss_curve_)
    warm.fit(X, y)
    cold = _small(max_iter=2, learning_rate_init=0.01).fit(X, y)
    assert cold.loss_curve_ == first  # a fresh fit starts over
    assert warm.loss_curve_[:2] == first and len(warm.loss_curve_) == 4
    assert warm.loss_curve_[2] < first[1]  # the second fit starts where the first ended
    inc = _small(max_iter=4)
    for _ in range(3):
        inc.partial_fit(X, y, classes=np.arange(10))
    assert inc.n_iter_ == 1 and inc.t_ == 3 * len(X)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("change", [{"hidden_layer_sizes": (9,)}, {"hidden_layer_sizes": (8, 4)},
                                    {"cell": "other"}, {"bidirectional": True}],
                         ids=["width", "depth", "cell", "direction"])
def test_a_changed_layout_is_refused_where_training_continues(cell, change):
    X, y = _digits(100)
    model = _small(cell=cell, max_iter=1, warm_start=True).fit(X, y)
    before = copy.deepcopy(model.recurrent_weights_), model.t_
    if change.get("cell") == "other":
        change = {"cell": "gru" if cell != "gru" else "lstm"}
    model.set_params(**change)
    fitted = f"hidden_layer_sizes=(8,), cell='{cell}', bidirectional=False"
    for call in (model.fit, lambda X, y: model.partial_fit(X, y, classes=np.arange(10))):
        with pytest.raises(ValueError, match=re.escape(f"fitted network ({fitted}), but")):
            call(X, y)
    assert model.t_ == before[1]
    for W, W0 in zip(model.recurrent_weights_, before[0], strict=True):
        for name in W0:
            np.testing.assert_array_equal(W[name], W0[name])


@pytest.mark.parametrize("change", [{"hidden_layer_sizes": (9,)}, {"cell": "gru"},
                                    {"bidirectional": True}], ids=["width", "cell", "direction"])
def test_predictions_follow_the_fitted_layout_not_changed_parameters(change):
    X, y = _digits(100)
    model = _small(cell="lstm", max_iter=1).fit(X, y)
    before = model.predict_proba(X)
    np.testing.assert_array_equal(model.set_params(**change).predict_proba(X), before)


def test_early_stopping_on_a_validation_set_of_ones_own_restores_the_best_epoch():
    X, y = _digits(400)
    clf = _small(max_iter=30, early_stopping=True, n_iter_no_change=3,
                 learning_rate_init=0.05)
    clf.fit(X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    best = int(np.argmax(clf.validation_scores_))
    assert clf.best_validation_score_ == clf.validation_scores_[best]
    assert clf.score(X[300:], y[300:]) == pytest.approx(clf.best_validation_score_)


def test_transfer_copies_recurrent_layers_and_freezing_keeps_them():
    X, y = _digits(200)
    source = _small(hidden_layer_sizes=(8, 6), max_iter=3).fit(X, y)
    target = _small(hidden_layer_sizes=(8, 5), transfer_from=FrozenEstimator(source),
                    n_transfer_layers=1, freeze_transferred=True, max_iter=3)
    target.fit(X, y % 2)
    for name, W in source.recurrent_weights_[0].items():
        np.testing.assert_array_equal(target.recurrent_weights_[0][name], W)
    with pytest.raises(ValueError, match="Cannot copy layer 0"):
        _small(cell="gru", hidden_layer_sizes=(8, 6),
               transfer_from=FrozenEstimator(source)).fit(X, y)


def test_dropout_between_layers_changes_training_not_prediction():
    X, y = _digits(200)
    plain = _small(hidden_layer_sizes=(8, 8)).fit(X, y)
    dropped = _small(hidden_layer_sizes=(8, 8), dropout=[0.3, 0.2]).fit(X, y)
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))


def test_lbfgs_trains_a_recurrent_network():
    X, y = _digits(150)
    clf = _small(solver="lbfgs", max_iter=30).fit(X, y)
    assert clf.n_iter_ >= 1 and clf.score(X, y) > 0.5


def test_memory_guard_counts_time_steps(monkeypatch):
    short = estimate_recurrent_fit_bytes(8, [64], 10, "lstm", False, 10, 200, np.float64, "adam")
    long = estimate_recurrent_fit_bytes(8, [64], 10, "lstm", False, 1000, 200, np.float64, "adam")
    # the per-step buffers of a batch grow with the steps: over 1 MB per 10 steps here
    assert long - short > 99 * 200 * 4 * 64 * 8
    import sknet._base

    monkeypatch.setattr(sknet._base, "available_memory_bytes", lambda: short * 2)
    X = np.zeros((300, 1000, 8))
    with pytest.raises(MemoryError, match="hidden_layer_sizes"):
        RecurrentClassifier(hidden_layer_sizes=(64,)).fit(X, np.arange(300) % 10)


# --------------------------------------------------------------------------- #
# what they learn                                                              #
# --------------------------------------------------------------------------- #
def test_classifies_sequences_of_unequal_length():
    seqs, y = _ragged(400)
    tr, te = slice(0, 300), slice(300, 400)
    clf = RecurrentClassifier(hidden_layer_sizes=(16,), cell="gru", max_iter=60,
                              learning_rate_init=0.01, random_state=0)
    clf.fit(seqs[tr], y[tr])
    assert clf.score(seqs[te], y[te]) > 0.9


def test_forecasts_a_sine_wave():
    t = np.linspace(0, 60, 3000)
    windows = np.lib.stride_tricks.sliding_window_view(np.sin(t) + 0.5 * np.sin(0.3 * t), 21)
    X, y = windows[:, :-1], windows[:, -1]
    reg = RecurrentRegressor(hidden_layer_sizes=(16,), cell="lstm", max_iter=40,
                             learning_rate_init=0.01, random_state=0)
    reg.fit(X[:2000], y[:2000])
    assert reg.score(X[2000:], y[2000:]) > 0.98


def _adding_problem(n, T, rng):
    """Two marked numbers among ``T`` uniform ones; the target is their sum."""
    values = rng.uniform(size=(n, T))
    marks = np.zeros((n, T))
    first = rng.integers(0, T // 2, n)
    second = rng.integers(T // 2, T, n)
    marks[np.arange(n), first] = marks[np.arange(n), second] = 1
    return np.stack([values, marks], axis=2), values[np.arange(n), first] + values[
        np.arange(n), second]


@pytest.mark.slow
def test_lstm_and_gru_solve_the_adding_problem_at_50_steps():
    results = {}
    for cell in ("lstm", "gru", "rnn"):
        mses = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            X, y = _adding_problem(6000, 50, rng)
            reg = RecurrentRegressor(hidden_layer_sizes=(32,), cell=cell, max_iter=60,
                                     learning_rate_init=0.01, batch_size=64,
                                     random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                reg.fit(X[:5000], y[:5000])
            mses.append(float(np.mean((reg.predict(X[5000:]) - y[5000:]) ** 2)))
        results[cell] = np.mean(mses)
    print("adding problem, T=50, test MSE (predicting 1 gives 0.167):", results)
    assert results["lstm"] < 0.05 and results["gru"] < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_defaults_on_digits_read_as_eight_steps_of_eight_pixels(cell):
    import time

    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 8, 8) / 16
    scores, seconds = [], []
    for seed in range(5):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = RecurrentClassifier(cell=cell, random_state=seed).fit(X_tr, y_tr)
        seconds.append(time.perf_counter() - start)
        scores.append(clf.score(X_te, y_te))
    print(f"{cell}: accuracy {np.mean(scores):.4f} {np.round(scores, 4)}, "
          f"fit seconds {np.round(seconds, 1)}")
    assert np.mean(scores) >= 0.95


def test_prediction_runs_its_small_per_step_products_on_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from sknet._core.recurrent import RecurrentNetwork

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4, 2)), rng.integers(0, 2, 20)
    model = RecurrentClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(X, y)
    seen = []
    predict = RecurrentNetwork.predict

    def recording(self, *args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return predict(self, *args, **kwargs)

    monkeypatch.setattr(RecurrentNetwork, "predict", recording)
    with threadpool_limits(limits=2, user_api="blas"):  # the suite runs with one
        model.predict(X)
        after = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
    assert seen and set(seen) == {1}
    assert after == {2}


def test_multi_output_regressor_reports_the_squared_errors_mean_over_outputs():
    """As MLPRegressor (and scikit-learn's): the loss of k targets is half the mean of
    the squared error over them; a step too small to move the weights shows the
    loss of the model as fitted."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 6, 3)), rng.normal(size=(40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = RecurrentRegressor(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0,
                                 learning_rate_init=1e-12, max_iter=1, batch_size=40,
                                 shuffle=False, alpha=0.0, random_state=0).fit(X, Y)
    assert reg.loss_curve_[0] == pytest.approx(0.5 * np.mean((reg.predict(X) - Y) ** 2),
                                               rel=1e-9)


# --------------------------------------------------------------------------- #
# inputs, tags and the gradient norms' checks                                  #
# --------------------------------------------------------------------------- #
def test_a_sequence_of_three_dimensions_is_refused_by_name():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(3, 2)), rng.normal(size=(4, 2, 1))]
    with pytest.raises(ValueError, match=r"Each sequence must be a 2-D array \(n_timesteps"):
        RecurrentClassifier(max_iter=1).fit(seqs, [0, 1])


def test_the_estimators_declare_three_dimensional_input():
    from sklearn.utils import get_tags

    for est in (RecurrentClassifier(), RecurrentRegressor()):
        tags = get_tags(est).input_tags
        assert tags.three_d_array and not tags.sparse


def test_a_refit_on_sequences_forgets_the_column_names_of_a_data_frame():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(8, 4)), columns=list("abcd"))
    y = [0, 1] * 4
    model = RecurrentClassifier(max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(frame, y)
        assert list(model.feature_names_in_) == list("abcd")
        model.fit(rng.normal(size=(8, 4, 2)), y)
    assert not hasattr(model, "feature_names_in_") and model.n_features_in_ == 2


def test_hidden_state_gradient_norms_checks_its_inputs():
    from sklearn.exceptions import NotFittedError

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 5, 3)), rng.normal(size=12)
    with pytest.raises(NotFittedError):
        RecurrentRegressor().hidden_state_gradient_norms(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = RecurrentRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    norms = model.hidden_state_gradient_norms(X, y)
    assert norms.shape == (5,) and np.all(np.isfinite(norms)) and np.all(norms > 0)
    with pytest.raises(ValueError, match="X has 2 features per time step, but .* expecting 3"):
        model.hidden_state_gradient_norms(X[:, :, :2], y)
    with pytest.raises(ValueError, match="needs sequences of equal length"):
        model.hidden_state_gradient_norms([X[0], X[1, :3]], y[:2])

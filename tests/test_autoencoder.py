"""AutoencoderTransformer: quality on the digits, the scikit-learn contract, tied
weights, denoising, dtypes, pandas output and bad input."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks as ec
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sknet._autoencoder import AutoencoderTransformer
from sknet._core import Network, get_activation, get_loss
from sknet._core.tied import TiedNetwork

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SEEDS = (0, 1, 2)
FAST = dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0)


# --------------------------------------------------------------------------- #
# data and shared fits                                                         #
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """These networks are small: on a busy machine a multi-threaded BLAS spends
    far longer synchronizing its threads than computing, so use one."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def digits():
    """load_digits scaled to [0, 1], split as the quality pins ask."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def default_fits(digits):
    """{n_components: [fitted at the defaults, one per seed]} for 16 and 2."""
    X_train = digits[0]
    return {k: [AutoencoderTransformer(n_components=k, random_state=s).fit(X_train)
                for s in SEEDS]
            for k in (16, 2)}


def _small_data(n=60, d=6, seed=0):
    return np.random.default_rng(seed).random((n, d))


def _pca_error(k, X_train, X_test):
    pca = PCA(n_components=k).fit(X_train)
    return np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2)


def _reference_forward(ae, X):
    """The network's output from coefs_/intercepts_ with plain numpy formulas."""
    f = {"relu": lambda z: np.maximum(z, 0), "identity": lambda z: z,
         "tanh": np.tanh, "logistic": expit,
         "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))}
    n_layers = len(ae.intercepts_)
    coefs = list(ae.coefs_)
    if len(coefs) < n_layers:
        coefs += [W.T for W in coefs[::-1]]
    enc = ae.activation if not isinstance(ae.activation, str) else \
        [ae.activation] * (n_layers // 2)
    names = list(enc) + list(enc[:-1])[::-1] + [ae.out_activation_]
    codes, a = None, X
    for i, (W, b, name) in enumerate(zip(coefs, ae.intercepts_, names, strict=True)):
        a = f[name](a @ W + b)
        if i == n_layers // 2 - 1:
            codes = a
    return codes, a


# --------------------------------------------------------------------------- #
# quality pins (defaults; only n_components and random_state set)             #
# --------------------------------------------------------------------------- #
def test_codes_feed_logistic_regression_to_95_percent(digits, default_fits):
    X_train, X_test, y_train, y_test = digits
    scores = []
    for ae in default_fits[16]:
        pipe = Pipeline([("ae", FrozenEstimator(ae)), ("clf", LogisticRegression())])
        scores.append(pipe.fit(X_train, y_train).score(X_test, y_test))
    assert np.mean(scores) >= 0.95


@pytest.mark.parametrize("k", [16, 2])
def test_held_out_reconstruction_beats_pca(digits, default_fits, k):
    X_train, X_test = digits[0], digits[1]
    errors = [-ae.score(X_test) for ae in default_fits[k]]
    assert np.mean(errors) < _pca_error(k, X_train, X_test)


def test_score_is_negative_mean_squared_reconstruction_error(digits, default_fits):
    X_test = digits[1]
    ae = default_fits[16][0]
    R = ae.inverse_transform(ae.transform(X_test))
    assert ae.score(X_test) == pytest.approx(-np.mean((X_test - R) ** 2), rel=1e-10)


def test_defaults_fit_digits_as_a_logistic_output(default_fits):
    ae = default_fits[2][0]
    assert ae.out_activation_ == "logistic"
    assert ae.n_layers_ == 5
    # Tied weights: the encoder's matrices; the decoder uses their transposes.
    assert [W.shape for W in ae.coefs_] == [(64, 128), (128, 2)]
    assert [b.shape for b in ae.intercepts_] == [(128,), (2,), (128,), (64,)]


def test_grid_search_over_n_components_in_a_pipeline(digits):
    X_train, _, y_train, _ = digits
    pipe = Pipeline([
        ("ae", AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=20,
                                      random_state=0)),
        ("clf", LogisticRegression(max_iter=300)),
    ])
    search = GridSearchCV(pipe, {"ae__n_components": [1, 12]}, cv=2)
    search.fit(X_train[:600], y_train[:600])
    assert search.best_params_ == {"ae__n_components": 12}
    assert search.best_estimator_.named_steps["ae"].transform(X_train[:3]).shape == (3, 12)


def test_grid_search_on_reconstruction_score_prefers_wider_code(digits):
    X_train = digits[0][:500]
    search = GridSearchCV(AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=20,
                                                 random_state=0),
                          {"n_components": [1, 12]}, cv=2).fit(X_train)
    assert search.best_params_ == {"n_components": 12}
    assert np.all(search.cv_results_["mean_test_score"] < 0)


# --------------------------------------------------------------------------- #
# the network it computes                                                      #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("activation, hidden", [
    ("tanh", (5,)),
    (["relu", "identity"], (5,)),
    (["elu", "tanh", "relu"], (5, 4)),
])
def test_transform_and_inverse_match_numpy_forward(tied, activation, hidden):
    X = _small_data()
    ae = AutoencoderTransformer(3, activation=activation, tied_weights=tied,
                                **{**FAST, "hidden_layer_sizes": hidden}).fit(X)
    codes, recon = _reference_forward(ae, X)
    np.testing.assert_allclose(ae.transform(X), codes, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ae.inverse_transform(ae.transform(X)), recon,
                               rtol=1e-10, atol=1e-12)


def test_encoder_is_the_first_layers_for_transfer():
    ae = AutoencoderTransformer(4, **{**FAST, "hidden_layer_sizes": (7, 5)})
    ae.fit(_small_data(d=9))
    assert [W.shape for W in ae.coefs_[:3]] == [(9, 7), (7, 5), (5, 4)]
    assert ae._n_transferable_layers() == 3
    assert ae.n_layers_ == 7


def test_tied_weights_store_encoder_matrices_only():
    ae = AutoencoderTransformer(3, tied_weights=True, **{**FAST, "hidden_layer_sizes": (5,)})
    ae.fit(_small_data())
    assert [W.shape for W in ae.coefs_] == [(6, 5), (5, 3)]
    assert [b.shape for b in ae.intercepts_] == [(5,), (3,), (5,), (6,)]
    assert ae._n_transferable_layers() == 2


def test_editing_coefs_changes_the_model():
    X = _small_data()
    ae = AutoencoderTransformer(3, tied_weights=True, **FAST).fit(X)
    before = ae.inverse_transform(ae.transform(X))
    ae.coefs_[0][...] = 0.0
    after = ae.inverse_transform(ae.transform(X))
    # With the first encoder matrix zero, every sample has the same code,
    # hence the same reconstruction; the decoder's last layer (its transpose)
    # is zero too, so the output is logistic(last bias) for every sample.
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, np.tile(expit(ae.intercepts_[-1]), (len(X), 1)))


# --------------------------------------------------------------------------- #
# tied weights: the network and its gradient                                   #
# --------------------------------------------------------------------------- #
def _tied_pair(units, names, seed=0):
    rng = np.random.default_rng(seed)
    acts = [get_activation(n) for n in names]
    tied = TiedNetwork(units, acts).initialize("glorot_uniform", rng)
    for b in tied.intercepts:
        b[...] = rng.normal(scale=0.3, size=b.shape)
    untied = Network(units, acts)
    untied.set_weights(tied.coefs, tied.intercepts)
    return tied, untied


def _numeric_gradient(network, X, Y, loss, sw, alpha, l1, eps=1e-6):
    num = np.zeros_like(network.params)
    for j in range(network.params.size):
        old = network.params[j]
        network.params[j] = old + eps
        plus = network.loss_and_gradient(X, Y, loss, sw, alpha, l1)[0]
        network.params[j] = old - eps
        minus = network.loss_and_gradient(X, Y, loss, sw, alpha, l1)[0]
        network.params[j] = old
        num[j] = (plus - minus) / (2 * eps)
    return num


@pytest.mark.parametrize("units, names, loss_name", [
    ([5, 4, 3, 4, 5], ["tanh", "elu", "tanh", "logistic"], "binary_log_loss"),
    ([6, 2, 6], ["identity", "identity"], "squared_error"),
    ([5, 4, 3, 2, 3, 4, 5], ["tanh", "logistic", "tanh", "logistic", "tanh", "identity"],
     "squared_error"),
])
@pytest.mark.parametrize("alpha, l1", [(0.0, 0.0), (0.3, 0.2)])
def test_tied_gradient_matches_finite_differences(units, names, loss_name, alpha, l1):
    tied, _ = _tied_pair(units, names)
    rng = np.random.default_rng(1)
    X = rng.random((7, units[0]))
    Y = rng.random((7, units[0]))
    sw = rng.random(7) + 0.1
    loss = get_loss(loss_name)
    _, grad, _ = tied.loss_and_gradient(X, Y, loss, sw, alpha, l1)
    num = _numeric_gradient(tied, X, Y, loss, sw, alpha, l1)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7)


def test_tied_network_equals_untied_network_with_transposed_decoder():
    units, names = [5, 4, 3, 4, 5], ["tanh", "elu", "relu", "logistic"]
    tied, untied = _tied_pair(units, names)
    rng = np.random.default_rng(2)
    X, Y = rng.random((9, 5)), rng.random((9, 5))
    loss = get_loss("squared_error")
    v_tied, g_tied, _ = tied.loss_and_gradient(X, Y, loss)
    g_tied = g_tied.copy()
    v_untied, g_untied, _ = untied.loss_and_gradient(X, Y, loss)
    assert v_tied == pytest.approx(v_untied, rel=1e-12)
    gt_coefs, gt_bias = tied.views(g_tied)
    gu_coefs, gu_bias = untied.views(g_untied)
    # A shared matrix's gradient is its encoder part plus the decoder part transposed.
    np.testing.assert_allclose(gt_coefs[0], gu_coefs[0] + gu_coefs[3].T, rtol=1e-12)
    np.testing.assert_allclose(gt_coefs[1], gu_coefs[1] + gu_coefs[2].T, rtol=1e-12)
    for a, b in zip(gt_bias, gu_bias, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_tied_decoder_weights_are_views_of_the_encoder():
    tied, _ = _tied_pair([5, 4, 3, 4, 5], ["tanh"] * 3 + ["identity"])
    assert tied.params.size == 5 * 4 + 4 + 4 * 3 + 3 + 4 + 5
    assert np.shares_memory(tied.coefs[3], tied.coefs[0])
    np.testing.assert_array_equal(tied.coefs[2], tied.coefs[1].T)
    tied.coefs[0][1, 2] = 7.0
    assert tied.coefs[3][2, 1] == 7.0


def test_tied_frozen_encoder_layer_gets_no_gradient_but_passes_it_on():
    tied, _ = _tied_pair([5, 4, 3, 4, 5], ["tanh", "tanh", "tanh", "identity"])
    tied.n_frozen = 1
    rng = np.random.default_rng(3)
    X, Y = rng.random((6, 5)), rng.random((6, 5))
    loss = get_loss("squared_error")
    grad = np.full_like(tied.params, np.nan)
    tied.loss_and_gradient(X, Y, loss, alpha=0.1, grad=grad)
    off = tied.trainable_offset
    assert off == 5 * 4 + 4
    num = _numeric_gradient(tied, X, Y, loss, None, 0.1, 0.0)
    np.testing.assert_allclose(grad[off:], num[off:], rtol=1e-5, atol=1e-7)


def test_tied_network_rejects_unmirrored_units():
    acts = [get_activation("tanh")] * 2
    with pytest.raises(ValueError, match="mirrored"):
        TiedNetwork([5, 3, 4], acts)


def test_tied_network_set_weights_takes_the_encoders_matrices_and_every_bias():
    net = TiedNetwork([4, 3, 4], [get_activation("tanh")] * 2)
    W, b1, b2 = np.ones((4, 3)), np.full(3, 2.0), np.full(4, 3.0)
    net.set_weights([W], [b1, b2])
    np.testing.assert_array_equal(net.coefs[1], W.T)  # the decoder shares it
    np.testing.assert_array_equal(net.intercepts[1], b2)
    for coefs, intercepts in (([W, W.T], [b1, b2]), ([W], [b1]), ([], [b1, b2])):
        with pytest.raises(ValueError, match="expects 1 weight matrices .* and 2 bias"):
            net.set_weights(coefs, intercepts)


# --------------------------------------------------------------------------- #
# denoising                                                                    #
# --------------------------------------------------------------------------- #
class _SpyAutoencoder(AutoencoderTransformer):
    """Records each training batch before and after the noise."""

    def _training_augment(self):
        augment = super()._training_augment()
        self.seen_ = []

        def spy(X_batch, rng):
            noisy = augment(X_batch, rng)
            self.seen_.append((np.array(X_batch, copy=True), noisy))
            return noisy

        return spy


def test_noise_is_added_to_training_batches_only():
    X = _small_data(n=200, d=8)
    X_copy = X.copy()
    ae = _SpyAutoencoder(3, noise=0.3, batch_size=50, early_stopping=True,
                         validation_fraction=0.2, n_iter_no_change=100,
                         **{**FAST, "max_iter": 4}).fit(X)
    np.testing.assert_array_equal(X, X_copy)  # never in place
    clean = np.concatenate([b for b, _ in ae.seen_])
    noise = np.concatenate([n - b for b, n in ae.seen_])
    # 4 epochs over the 160 training rows; the 40 validation rows never pass.
    assert clean.shape == (4 * 160, 8)
    assert len(np.unique(clean[:160], axis=0)) == 160
    train_rows = {r.tobytes() for r in clean}
    assert sum(r.tobytes() in train_rows for r in X) == 160
    assert abs(noise.std() - 0.3) < 0.02 and abs(noise.mean()) < 0.02
    # Fresh noise every time: the same row is corrupted differently per epoch.
    first, second = ae.seen_[0], ae.seen_[4]
    i, j = np.nonzero((first[0][:, None] == second[0][None]).all(axis=2))
    assert len(i) and not np.allclose(first[1][i] - first[0][i], second[1][j] - second[0][j])


def test_auto_batch_size_is_64():
    ae = _SpyAutoencoder(3, noise=0.1, **{**FAST, "max_iter": 1}).fit(_small_data(n=100))
    assert [len(b) for b, _ in ae.seen_] == [64, 36]


def test_validation_and_score_see_clean_data():
    X = _small_data(n=200, d=8)
    X_val = _small_data(n=50, d=8, seed=1)
    ae = AutoencoderTransformer(3, noise=0.5, early_stopping=True, **FAST).fit(X, X_val=X_val)
    # Early stopping restores the best epoch: its validation score is the
    # noise-free score of the returned model.
    assert ae.best_validation_score_ == pytest.approx(ae.score(X_val), rel=1e-10)
    # transform is the noise-free encoder: elu layers of the fitted weights, by hand
    H = X
    for W, b in zip(ae.coefs_, ae.intercepts_[:len(ae.coefs_)], strict=True):
        Z = H @ W + b
        H = np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0)))
    assert H.shape == (len(X), 3)
    np.testing.assert_allclose(ae.transform(X), H, rtol=1e-12, atol=1e-14)


def test_noise_changes_training():
    X = _small_data()
    clean = AutoencoderTransformer(3, noise=0.0, **FAST).fit(X)
    noisy = AutoencoderTransformer(3, noise=0.3, **FAST).fit(X)
    assert not np.allclose(clean.coefs_[0], noisy.coefs_[0])


# --------------------------------------------------------------------------- #
# dtypes, sparse, pandas, persistence                                          #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tied", [False, True])
def test_dtype_is_preserved(dtype, tied):
    X = _small_data().astype(dtype)
    ae = AutoencoderTransformer(3, tied_weights=tied, **FAST).fit(X)
    assert all(W.dtype == dtype for W in ae.coefs_ + ae.intercepts_)
    Z = ae.transform(X)
    assert Z.dtype == dtype
    assert ae.inverse_transform(Z).dtype == dtype
    assert ae.fit_transform(X).dtype == dtype


def test_sparse_input_matches_dense():
    X = _small_data()
    X[X < 0.5] = 0.0
    dense = AutoencoderTransformer(3, **FAST).fit(X)
    sparse = AutoencoderTransformer(3, **FAST).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.transform(sp.csr_matrix(X)), dense.transform(X),
                               rtol=1e-6, atol=1e-8)
    assert sparse.score(sp.csc_matrix(X)) == pytest.approx(dense.score(X), rel=1e-6)


def test_set_output_pandas_and_feature_names():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_small_data(), columns=[f"pixel{i}" for i in range(6)])
    ae = AutoencoderTransformer(3, **FAST).set_output(transform="pandas")
    Z = ae.fit_transform(X)
    expected = ["autoencodertransformer0", "autoencodertransformer1",
                "autoencodertransformer2"]
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == expected
    assert list(ae.get_feature_names_out()) == expected
    assert list(ae.feature_names_in_) == list(X.columns)
    np.testing.assert_allclose(Z.to_numpy(), ae.set_output(transform="default")
                               .transform(X))
    assert ae.inverse_transform(Z).shape == (60, 6)


def test_pickle_round_trip():
    X = _small_data()
    ae = AutoencoderTransformer(3, tied_weights=True, **FAST).fit(X)
    again = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(again.transform(X), ae.transform(X))


# --------------------------------------------------------------------------- #
# training API                                                                 #
# --------------------------------------------------------------------------- #
def test_output_follows_the_data_range():
    X = _small_data()
    assert AutoencoderTransformer(2, **FAST).fit(X).out_activation_ == "logistic"
    assert AutoencoderTransformer(2, **FAST).fit(X - 0.5).out_activation_ == "identity"
    ae = AutoencoderTransformer(2, out_activation="identity", **FAST).fit(X)
    assert ae.out_activation_ == "identity"
    # the training data decide, not a validation set in [0, 1]
    ae = AutoencoderTransformer(2, early_stopping=True, **FAST).fit(X - 0.5, X_val=X[:20])
    assert ae.out_activation_ == "identity"


@pytest.mark.parametrize("out_activation, loss", [
    ("logistic", "auto"), ("identity", "auto"), ("logistic", "squared_error")])
def test_loss_matches_the_output_unless_given(out_activation, loss):
    # lbfgs reports the loss at its solution; with alpha=0 it is the data
    # loss of the reconstruction, computed here from its definition.
    X = _small_data()
    ae = AutoencoderTransformer(2, out_activation=out_activation, loss=loss,
                                solver="lbfgs", noise=0.0, alpha=0.0,
                                **{**FAST, "max_iter": 5}).fit(X)
    R = ae.inverse_transform(ae.transform(X))
    if out_activation == "logistic" and loss == "auto":
        expected = -np.mean(np.sum(X * np.log(R) + (1 - X) * np.log(1 - R), axis=1))
    else:
        expected = 0.5 * np.mean(np.sum((X - R) ** 2, axis=1))
    assert ae.loss_ == pytest.approx(expected, rel=1e-8)


def test_partial_fit_improves_reconstruction_step_by_step():
    X = _small_data(n=200, d=8)
    ae = AutoencoderTransformer(3, hidden_layer_sizes=(16,), random_state=0)
    scores = []
    for _ in range(30):
        ae.partial_fit(X)
        scores.append(ae.score(X))
    assert ae.n_iter_ == 1 and ae.t_ == 30 * 200
    assert scores[-1] > scores[0]


def test_warm_start_continues_from_the_fitted_weights():
    X = _small_data(n=200, d=8)
    ae = AutoencoderTransformer(3, warm_start=True, tol=0.0, **FAST).fit(X)
    curve = list(ae.loss_curve_)
    assert len(curve) == FAST["max_iter"]
    ae.fit(X)
    assert ae.loss_curve_[:len(curve)] == curve
    assert len(ae.loss_curve_) == 2 * len(curve)
    # The second fit starts where the first ended, not from a fresh draw.
    fresh = AutoencoderTransformer(3, tol=0.0, **FAST).fit(X)
    assert ae.loss_curve_[len(curve)] < fresh.loss_curve_[0]


def test_lbfgs_solver_fits():
    X = _small_data()
    ae = AutoencoderTransformer(3, solver="lbfgs", noise=0.0, **{**FAST, "max_iter": 50})
    ae.fit(X)
    # Mean prediction is the best constant reconstruction: lbfgs must beat it.
    assert -ae.score(X) < np.mean((X - X.mean(axis=0)) ** 2)


def test_fit_ignores_y_and_returns_self():
    X = _small_data()
    ae = AutoencoderTransformer(2, **FAST)
    assert ae.fit(X, np.arange(60)) is ae
    assert AutoencoderTransformer(2, **FAST).fit(X).transform(X).tolist() == \
        ae.transform(X).tolist()


# --------------------------------------------------------------------------- #
# bad input                                                                    #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("params, error, match", [
    ({"n_components": 0}, ValueError, "n_components"),
    ({"n_components": 2.5}, TypeError, "n_components"),
    ({"out_activation": "logistc"}, ValueError, "Did you mean 'logistic'"),
    ({"loss": "log_loss"}, ValueError, "'loss' parameter"),
    ({"loss": "binary_log_loss", "out_activation": "identity"}, ValueError,
     "out_activation='logistic'"),
    ({"noise": -0.1}, ValueError, "'noise'"),
    ({"noise": 0.1, "solver": "lbfgs"}, ValueError, "stochastic solver"),
    ({"tied_weights": "yes"}, TypeError, "tied_weights"),
    ({"activation": ["relu", "relu", "relu"]}, ValueError, "activation"),
    ({"dropout": [0.1]}, ValueError, "dropout"),
])
def test_bad_parameters_raise_clear_errors(params, error, match):
    with pytest.raises(error, match=match):
        AutoencoderTransformer(**{**FAST, **params}).fit(_small_data())


def test_binary_log_loss_needs_unit_interval_data():
    with pytest.raises(ValueError, match=r"\[0, 1\], but X has"):
        AutoencoderTransformer(2, loss="binary_log_loss", **FAST).fit(_small_data() * 2)
    fitted = AutoencoderTransformer(2, **FAST).fit(_small_data() - 0.5)  # identity output
    before = pickle.dumps(fitted)
    with pytest.raises(ValueError, match=r"\[0, 1\], but X_val has"):
        fitted.set_params(early_stopping=True).fit(_small_data(), X_val=_small_data() * 2)
    assert pickle.dumps(fitted.set_params(early_stopping=False)) == before


def test_bad_input_at_transform_time():
    X = _small_data()
    ae = AutoencoderTransformer(3, **FAST).fit(X)
    with pytest.raises(ValueError, match="features"):
        ae.transform(X[:, :4])
    with pytest.raises(ValueError, match="bottleneck"):
        ae.inverse_transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        ae.transform(np.full((2, 6), np.nan))


def test_rejected_warm_start_leaves_the_model_unchanged():
    X = _small_data()
    ae = AutoencoderTransformer(3, warm_start=True, **FAST).fit(X)
    before = ae.transform(X)
    ae.set_params(n_components=4)
    with pytest.raises(ValueError, match="n_components"):
        ae.fit(X)
    np.testing.assert_array_equal(ae.transform(X), before)
    ae.set_params(n_components=3, tied_weights=False)
    with pytest.raises(ValueError, match="tied_weights"):
        ae.fit(X)


def test_partial_fit_rejects_bce_data_out_of_range_and_keeps_state():
    X = _small_data()
    ae = AutoencoderTransformer(3, **FAST).partial_fit(X)
    coefs = [W.copy() for W in ae.coefs_]
    with pytest.raises(ValueError, match="out_activation='identity'"):
        ae.partial_fit(X + 1.0)
    for W, W0 in zip(ae.coefs_, coefs, strict=True):
        np.testing.assert_array_equal(W, W0)


@pytest.mark.parametrize("name, good", [("activation", ["relu", "tanh", "elu"]),
                                        ("dropout", [0.1, 0.0, 0.2])])
def test_per_layer_lists_give_one_value_per_encoder_layer(name, good):
    # two hidden layers and the bottleneck: three encoder layers, which the
    # decoder mirrors; two values or four are refused before any fit
    X = _small_data()
    params = dict(FAST, hidden_layer_sizes=(8, 4), max_iter=2)
    for bad in (good[:2], good + good[:1]):
        ae = AutoencoderTransformer(2, **params, **{name: bad})
        with pytest.raises(ValueError, match=(
                rf"The '{name}' parameter has {len(bad)} entries; give one value, or "
                r"one per encoder layer: 3 \(the 2 hidden layers")):
            ae.fit(X)
        assert not hasattr(ae, "coefs_")
    ae = AutoencoderTransformer(2, **params, **{name: good}).fit(X)
    assert len(ae.intercepts_) == 6  # three encoder layers, three decoder layers


def test_unfitted_transform_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AutoencoderTransformer().transform(_small_data())


# --------------------------------------------------------------------------- #
# scikit-learn's estimator checks                                              #
# --------------------------------------------------------------------------- #
CHECKED = [AutoencoderTransformer(max_iter=20, random_state=0),
           AutoencoderTransformer(tied_weights=False, noise=0.1, max_iter=20, random_state=0)]


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: {})
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("check", [
    ec.check_set_output_transform,
    ec.check_transformer_get_feature_names_out,
    ec.check_dataframe_column_names_consistency,
    ec.check_set_output_transform_pandas,
    ec.check_transformer_get_feature_names_out_pandas,
    ec.check_get_feature_names_out_error,
], ids=lambda c: c.__name__)
def test_output_and_feature_name_checks(check):
    pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        check("AutoencoderTransformer", AutoencoderTransformer(max_iter=20, random_state=0))


@pytest.mark.parametrize("noise", [np.inf, -np.inf, np.nan, -0.1, "0.1"])
def test_bad_noise_is_refused_naming_the_parameter(noise):
    ae = AutoencoderTransformer(n_components=2, max_iter=2, noise=noise)
    with pytest.raises(ValueError, match="'noise' parameter"):
        ae.fit(_small_data(n=20))
    assert not hasattr(ae, "coefs_")

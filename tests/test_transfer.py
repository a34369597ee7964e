"""Transfer learning: copy the first layers of a fitted network, frozen or fine-tuned."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

from sknet import MLPClassifier, MLPRegressor

X, Y = load_digits(return_X_y=True)
X = X[:400] / 16.0
Y = Y[:400]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def source():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier((32, 16), max_iter=20, random_state=0).fit(X, Y % 2)


def _target(source, **params):
    defaults = dict(hidden_layer_sizes=(32, 16, 8), max_iter=5, random_state=1,
                    transfer_from=source)
    return MLPClassifier(**{**defaults, **params})


def test_fresh_fit_starts_from_the_source_layers(source):
    # With a zero step factor the copied layers keep exactly the source's values.
    clf = _target(source, transfer_lr_factor=0.0).fit(X, Y)
    for i in range(2):
        np.testing.assert_array_equal(clf.coefs_[i], source.coefs_[i])
        np.testing.assert_array_equal(clf.intercepts_[i], source.intercepts_[i])
    assert clf.coefs_[2].shape == (16, 8)  # the third hidden layer is new


def test_frozen_layers_stay_bit_identical_through_fit_partial_fit_and_warm_start(source):
    clf = _target(source, freeze_transferred=True, dropout=0.3).fit(X, Y)
    frozen = [a.copy() for a in clf.coefs_[:2] + clf.intercepts_[:2]]
    trained = clf.coefs_[2].copy()
    clf.partial_fit(X, Y)
    clf.set_params(warm_start=True).fit(X, Y)
    for a, b in zip(frozen, clf.coefs_[:2] + clf.intercepts_[:2]):
        assert a.tobytes() == b.tobytes()
    assert not np.array_equal(trained, clf.coefs_[2])  # layers above still learn


def test_layers_above_a_frozen_layer_keep_learning(source):
    clf = _target(source, freeze_transferred=True, n_transfer_layers=1).fit(X, Y)
    assert clf.coefs_[0].tobytes() == source.coefs_[0].tobytes()
    one_epoch = _target(source, freeze_transferred=True, n_transfer_layers=1,
                        max_iter=1).fit(X, Y)
    assert not np.allclose(clf.coefs_[1], one_epoch.coefs_[1])
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


@pytest.mark.parametrize("n, factor", [(1, 0.5), (2, 0.5), (2, 2.0)])
def test_fine_tuned_layers_move_and_the_factor_scales_their_steps(source, n, factor):
    # With SGD and no momentum the step is exactly lr * factor * gradient, so
    # the factor scales the first step of every copied parameter, and of no
    # other.
    params = dict(solver="sgd", momentum=0.0, max_iter=1, batch_size=len(X),
                  shuffle=False, learning_rate_init=0.1, n_transfer_layers=n)
    full = _target(source, **params).partial_fit(X, Y, classes=np.unique(Y))
    scaled = _target(source, transfer_lr_factor=factor, **params).partial_fit(
        X, Y, classes=np.unique(Y))
    for i in range(n):
        step_full = full.coefs_[i] - source.coefs_[i]
        step_scaled = scaled.coefs_[i] - source.coefs_[i]
        assert np.abs(step_full).max() > 0
        np.testing.assert_allclose(step_scaled, factor * step_full, rtol=1e-10, atol=1e-15)
    for i in range(n, 3):  # new layers: factor 1
        np.testing.assert_allclose(scaled.coefs_[i], full.coefs_[i], rtol=1e-10)


def test_source_is_never_modified(source):
    before = pickle.dumps(source)
    _target(source).fit(X, Y)
    _target(source, freeze_transferred=True).fit(X, Y)
    assert pickle.dumps(source) == before


def test_warm_start_and_partial_fit_do_not_copy_again(source):
    clf = _target(source, transfer_lr_factor=0.0).fit(X, Y)
    clf.coefs_[0][...] = 0.0  # the model is ours now: edit it
    clf.partial_fit(X, Y)
    clf.set_params(warm_start=True).fit(X, Y)
    assert np.all(clf.coefs_[0] == 0.0)


def test_an_autoencoder_style_regressor_source_works():
    reg = MLPRegressor(hidden_layer_sizes=(20,), max_iter=10, random_state=0).fit(X, X)
    clf = MLPClassifier((20, 10), max_iter=3, random_state=0, transfer_from=reg,
                        freeze_transferred=True).fit(X, Y)
    assert clf.coefs_[0].tobytes() == reg.coefs_[0].tobytes()


def test_mismatched_shapes_name_both_shapes(source):
    with pytest.raises(ValueError, match=r"\(64, 32\).*\(64, 20\)"):
        _target(source, hidden_layer_sizes=(20, 16, 8)).fit(X, Y)


def test_too_many_layers_are_refused(source):
    with pytest.raises(ValueError, match="n_transfer_layers=3 but the source has only 2"):
        _target(source, n_transfer_layers=3).fit(X, Y)
    with pytest.raises(ValueError, match=r"only 1 hidden layer \(the output"):
        _target(source, hidden_layer_sizes=(32,)).fit(X, Y)


def test_an_unfitted_source_says_to_wrap_it_in_frozen_estimator(source):
    clf = clone(_target(source))  # clone replaces the source by an unfitted copy
    with pytest.raises(ValueError, match="FrozenEstimator"):
        clf.fit(X, Y)
    assert not hasattr(clf, "coefs_")


def test_a_wrong_source_type_is_refused():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="transfer_from"):
        MLPClassifier(transfer_from="model.pkl").fit(X, Y)
    with pytest.raises(TypeError, match="got sklearn.linear_model.*LogisticRegression"):
        MLPClassifier(transfer_from=LogisticRegression().fit(X, Y)).fit(X, Y)


def test_frozen_estimator_source_survives_clone_and_grid_search(source):
    base = _target(FrozenEstimator(source), freeze_transferred=True, max_iter=3)
    grid = GridSearchCV(base, {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, Y)
    best = grid.best_estimator_
    assert best.coefs_[0].tobytes() == source.coefs_[0].tobytes()


@pytest.mark.parametrize("frozen", [False, True], ids=["fitted", "frozen-estimator"])
def test_scikit_learns_fitted_mlp_is_a_source(frozen):
    """A network trained with scikit-learn starts an sknet one: its hidden
    layers are copied (never its output layer) and frozen ones stay its own,
    through clone and a grid search when it is wrapped in FrozenEstimator."""
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    theirs = SkMLPClassifier((32, 16), max_iter=20, random_state=0).fit(X, Y % 2)
    source = FrozenEstimator(theirs) if frozen else theirs
    target = _target(source, freeze_transferred=True, max_iter=3)
    if frozen:
        target = GridSearchCV(target, {"alpha": [1e-4, 1e-2]}, cv=2).fit(X, Y).best_estimator_
    else:
        target.fit(X, Y)
    for i in range(2):
        assert target.coefs_[i].tobytes() == theirs.coefs_[i].tobytes()
        assert target.intercepts_[i].tobytes() == theirs.intercepts_[i].tobytes()
    assert target.coefs_[2].shape == (16, 8)
    with pytest.raises(ValueError, match="only 2 transferable hidden layers"):
        _target(source, n_transfer_layers=3).fit(X, Y)


def test_transfer_from_an_autoencoder_uses_its_encoder():
    from sknet._autoencoder import AutoencoderTransformer

    ae = AutoencoderTransformer(hidden_layer_sizes=(24,), n_components=8, max_iter=5,
                                random_state=0).fit(X)
    clf = MLPClassifier((24, 8), max_iter=3, random_state=0, transfer_from=ae,
                        freeze_transferred=True).fit(X, Y)
    assert clf.coefs_[0].tobytes() == ae.coefs_[0].tobytes()
    assert clf.coefs_[1].tobytes() == ae.coefs_[1].tobytes()


def test_invalid_transfer_params_are_rejected(source):
    with pytest.raises(ValueError, match="n_transfer_layers"):
        _target(source, n_transfer_layers=0).fit(X, Y)
    with pytest.raises(ValueError, match="transfer_lr_factor"):
        _target(source, transfer_lr_factor=-1.0).fit(X, Y)


@pytest.mark.slow
def test_autoencoder_pretraining_helps_with_few_labels():
    """10 % of the training labels; the encoder pretrained on all training digits."""
    from sklearn.model_selection import train_test_split

    from sknet import AutoencoderTransformer

    X_all, y_all = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X_all / 16.0, y_all, test_size=0.25,
                                              random_state=0)
    scores = {"scratch": [], "fine-tuned": [], "frozen": []}
    for seed in range(5):
        ae = AutoencoderTransformer(n_components=32, random_state=seed).fit(X_tr)
        few = np.random.RandomState(seed).choice(len(X_tr), len(X_tr) // 10, replace=False)
        for name, params in (("scratch", {}),
                             ("fine-tuned", dict(transfer_from=ae)),
                             ("frozen", dict(transfer_from=ae, freeze_transferred=True,
                                             n_transfer_layers=1))):
            clf = MLPClassifier((128, 32), max_iter=300, random_state=seed, **params)
            scores[name].append(clf.fit(X_tr[few], y_tr[few]).score(X_te, y_te))
    means = {k: np.mean(v) for k, v in scores.items()}
    assert means["fine-tuned"] > means["scratch"]
    assert means["frozen"] > 0.85  # a frozen first layer still carries the task


def test_the_loss_does_not_count_the_penalty_of_frozen_layers(source):
    # Frozen, or trainable with a zero step factor: the copied layers keep the
    # source's values and every other parameter follows the same steps; only
    # the reported loss differs, by the L2 penalty of the copied layers when
    # they are trainable. One full batch per epoch: the penalty is
    # alpha / 2 * sum(W ** 2) / n_samples.
    params = dict(solver="sgd", momentum=0.0, batch_size=len(X), shuffle=False,
                  alpha=0.5, max_iter=3, learning_rate_init=0.01)
    frozen = _target(source, freeze_transferred=True, **params).fit(X, Y)
    trainable = _target(source, transfer_lr_factor=0.0, **params).fit(X, Y)
    for a, b in zip(frozen.coefs_, trainable.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    penalty = 0.5 * 0.5 * sum(np.sum(W ** 2) for W in source.coefs_[:2]) / len(X)
    assert penalty > 0.01 * trainable.loss_curve_[0]  # large enough to be seen
    np.testing.assert_allclose(np.subtract(trainable.loss_curve_, frozen.loss_curve_),
                               penalty, rtol=1e-9)


def test_a_transfer_error_from_defaults_says_which_default(source):
    # n_transfer_layers left at None copies both of the source's layers
    with pytest.raises(ValueError, match=r"n_transfer_layers=None \(the default\) copies "
                                         r"every transferable hidden layer of the source \(2\)"):
        MLPClassifier(hidden_layer_sizes=(32,), transfer_from=source).fit(X, Y)
    # hidden_layer_sizes left at (100,): the first layer cannot take the source's 32 units
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=\(100,\) \(the default\)"):
        MLPClassifier(n_transfer_layers=1, transfer_from=source).fit(X, Y)


def test_a_transfer_error_names_the_value_the_user_set(source):
    with pytest.raises(ValueError,
                       match=r"hidden_layer_sizes=\(20, 16, 8\) \(n_transfer_layers=2\)") as info:
        _target(source, hidden_layer_sizes=(20, 16, 8), n_transfer_layers=2).fit(X, Y)
    assert "(the default)" not in str(info.value)
    assert "n_transfer_layers=2" in str(info.value)
    with pytest.raises(ValueError, match=r"^n_transfer_layers=3 but the source has only 2"):
        _target(source, n_transfer_layers=3).fit(X, Y)

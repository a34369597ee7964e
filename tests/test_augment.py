"""Data augmentation: fresh draws on training batches only."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from sknet import MLPClassifier, MLPRegressor
from sknet.augment import BrightnessContrast, Compose, GaussianNoise, RandomAffine

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS = X_DIGITS / 16.0
X, Y = X_DIGITS[:300], Y_DIGITS[:300]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


class Recorder:
    """An augmenter that records every batch it sees and adds a constant."""

    def __init__(self):
        self.batches = []

    def __call__(self, X_batch, rng):
        self.batches.append(X_batch.copy())
        return X_batch + 0.01


def add_noise(X_batch, rng):
    """A module-level augment function: it pickles."""
    return X_batch + rng.normal(0, 0.05, X_batch.shape)


def test_every_training_batch_and_nothing_else_is_augmented():
    rec = Recorder()
    clf = MLPClassifier((10,), max_iter=3, batch_size=64, early_stopping=True,
                        validation_fraction=0.2, random_state=0, augment=rec,
                        n_iter_no_change=100).fit(X, Y)
    n_train = len(X) - int(np.ceil(0.2 * len(X)))
    assert sum(len(b) for b in rec.batches) == clf.n_iter_ * n_train
    seen = len(rec.batches)
    clf.predict(X)
    clf.score(X, Y)
    assert len(rec.batches) == seen  # prediction never augments


def test_user_validation_data_is_never_augmented():
    rec = Recorder()
    X_val = np.full((20, X.shape[1]), 7.0)  # a value no training row has
    MLPClassifier((10,), max_iter=2, random_state=0, augment=rec).fit(
        X, Y, X_val=X_val, y_val=Y[:20])
    assert not any(np.any(b == 7.0) for b in rec.batches)


def test_each_call_draws_afresh_and_a_seed_makes_it_reproducible():
    aug = GaussianNoise(std=0.1)
    rng = np.random.default_rng(0)
    a, b = aug(X[:5], rng), aug(X[:5], rng)
    assert not np.allclose(a, b)
    fit = [MLPClassifier((10,), max_iter=3, random_state=3, augment=aug).fit(X, Y)
           for _ in range(2)]
    np.testing.assert_array_equal(fit[0].coefs_[0], fit[1].coefs_[0])
    plain = MLPClassifier((10,), max_iter=3, random_state=3).fit(X, Y)
    assert not np.allclose(plain.coefs_[0], fit[0].coefs_[0])


def test_augment_never_writes_into_the_training_data():
    def in_place(X_batch, rng):
        X_batch += 1.0
        return X_batch

    X_copy = X.copy()
    MLPClassifier((10,), max_iter=2, shuffle=False, augment=in_place).fit(X_copy, Y)
    np.testing.assert_array_equal(X_copy, X)


def test_augment_must_keep_the_batch_shape():
    with pytest.raises(ValueError, match="keep the shape"):
        MLPClassifier((10,), max_iter=1, augment=lambda Xb, rng: Xb[:, :5]).fit(X, Y)


def test_lbfgs_refuses_augment():
    with pytest.raises(ValueError, match="augment.*lbfgs"):
        MLPClassifier(solver="lbfgs", augment=GaussianNoise()).fit(X, Y)
    with pytest.raises(TypeError, match="augment"):
        MLPClassifier(augment="shift").fit(X, Y)


def test_augmenters_clone_pickle_and_grid_search():
    aug = Compose([RandomAffine((8, 8), max_shift=1, max_rotation=5),
                   BrightnessContrast(0.05, 0.05, clip=(0, 1))])
    clf = MLPClassifier((10,), max_iter=2, random_state=0, augment=aug)
    cloned = clone(clf)
    assert cloned.augment is not aug and cloned.augment.get_params()["steps"][0].max_shift == 1
    grid = GridSearchCV(clf, {"augment__steps": [aug.steps[:1], aug.steps]}, cv=2).fit(X, Y)
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(restored.predict(X), grid.best_estimator_.predict(X))
    fn = pickle.loads(pickle.dumps(MLPRegressor(augment=add_noise)))
    assert fn.augment is add_noise


def test_random_affine_identity_and_whole_pixel_shifts():
    img = np.zeros((1, 64))
    img[0, 3 * 8 + 3] = 1.0
    same = RandomAffine((8, 8), max_shift=0, max_rotation=0)(img, np.random.default_rng(0))
    np.testing.assert_array_equal(same, img)
    rng = np.random.default_rng(1)
    shifted = RandomAffine((8, 8), max_shift=(0, 1), max_rotation=0, order=0,
                           integer_shifts=True)(np.repeat(img, 50, axis=0), rng)
    cols = np.argwhere(shifted.reshape(50, 8, 8) == 1.0)[:, 2]
    assert set(cols) == {2, 3, 4}  # one pixel left, none, or right; rows untouched
    assert np.all(shifted.sum(axis=1) == 1.0)


def test_random_affine_rotation_turns_a_bar():
    bar = np.zeros((9, 9))
    bar[4, :] = 1.0  # a horizontal bar through the centre
    aug = RandomAffine((9, 9), max_shift=0, max_rotation=90, order=1)
    out = aug(np.repeat(bar.reshape(1, 81), 200, axis=0), np.random.default_rng(0))
    # The centre pixel lies on the rotation axis: every rotation keeps it.
    np.testing.assert_allclose(out.reshape(200, 9, 9)[:, 4, 4], 1.0)
    # Some draws turn the bar close to vertical: the centre column lights up.
    assert out.reshape(200, 9, 9)[:, 0, 4].max() > 0.5


def test_image_shape_must_match_the_features():
    with pytest.raises(ValueError, match="image_shape"):
        RandomAffine((8, 7))(X[:2], np.random.default_rng(0))


def test_noise_and_brightness_statistics():
    rng = np.random.default_rng(0)
    Z = np.zeros((2000, 10))
    noisy = GaussianNoise(std=0.3)(Z, rng)
    assert abs(noisy.std() - 0.3) < 0.01 and abs(noisy.mean()) < 0.01
    flat = np.full((2000, 10), 0.5)
    bc = BrightnessContrast(brightness=0.2, contrast=0.0)(flat, rng)
    offsets = bc[:, 0] - 0.5
    assert np.all(np.abs(offsets) <= 0.2) and offsets.std() > 0.2 / np.sqrt(3) * 0.9


@pytest.mark.slow
def test_shifts_and_rotations_raise_accuracy_on_few_digits():
    """300 training digits; the same model with and without augmentation, 5 seeds."""
    X_tr, X_te, y_tr, y_te = train_test_split(X_DIGITS, Y_DIGITS, test_size=0.25,
                                              random_state=0)
    aug = RandomAffine((8, 8), max_shift=0.5, max_rotation=10)
    scores = {"plain": [], "augmented": []}
    for seed in range(5):
        idx = np.random.RandomState(seed).choice(len(X_tr), 300, replace=False)
        for name, augment in (("plain", None), ("augmented", aug)):
            clf = MLPClassifier(max_iter=300, n_iter_no_change=50, random_state=seed,
                                augment=augment).fit(X_tr[idx], y_tr[idx])
            scores[name].append(clf.score(X_te, y_te))
    assert np.mean(scores["augmented"]) > np.mean(scores["plain"]) + 0.003

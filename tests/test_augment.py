"""Data augmentation: fresh draws on training batches only."""

import functools
import inspect
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
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


def test_random_affine_zooms_and_shifts_a_ramp_as_the_formulas_say():
    # On a ramp I(r, c) = r bilinear interpolation is exact, so an output
    # pixel's value is the row it was read from: (r - 4) / z + 4 - s for a
    # zoom z about the centre and a shift s along the rows.
    ramp = np.repeat(np.arange(9.0), 9).reshape(1, 81)
    zoomed = RandomAffine((9, 9), max_shift=0, max_rotation=0, zoom_range=(2.0, 2.0))(
        ramp, np.random.default_rng(0)).reshape(9, 9)
    np.testing.assert_allclose(zoomed, np.repeat((np.arange(9.0) - 4) / 2 + 4, 9).reshape(9, 9),
                               atol=1e-12)
    moved = RandomAffine((9, 9), max_shift=(2.0, 0.0), max_rotation=0)(
        np.repeat(ramp, 400, axis=0), np.random.default_rng(1)).reshape(400, 9, 9)
    shifts = 4.0 - moved[:, 4, 4]
    np.testing.assert_allclose(moved[:, 3, 4], 3.0 - shifts, atol=1e-12)  # a whole shift
    assert np.all(np.abs(shifts) <= 2.0)
    assert shifts.min() < -1.5 and shifts.max() > 1.5 and abs(shifts.mean()) < 0.25


def test_random_affine_draws_zooms_across_its_range():
    # On a column ramp, the pixel one row below the centre reads row 4 + 1 / z.
    ramp = np.repeat(np.arange(9.0), 9).reshape(1, 81)
    out = RandomAffine((9, 9), max_shift=0, max_rotation=0, zoom_range=(0.8, 2.0))(
        np.repeat(ramp, 300, axis=0), np.random.default_rng(0)).reshape(300, 9, 9)
    zooms = 1.0 / (out[:, 5, 4] - 4.0)
    assert np.all((zooms >= 0.8 - 1e-9) & (zooms <= 2.0 + 1e-9))
    assert zooms.min() < 0.9 and zooms.max() > 1.9


def test_an_image_shape_set_after_construction_is_checked_at_the_call():
    aug = RandomAffine((8, 8))
    aug.image_shape = (64,)
    with pytest.raises(ValueError, match=r"image_shape must be \(height, width\); got \(64,\)"):
        aug(X[:2], np.random.default_rng(0))


def test_random_affine_rotation_is_a_rotation():
    # Row and column ramps, with the same draws (same seed): their outputs
    # are the rows and columns each pixel is read from, so the two fitted
    # planes give the map's matrix, which must be [[cos, sin], [-sin, cos]] / z:
    # a rotation and a zoom by z = 2, angles either way up to max_rotation.
    rows, cols = np.meshgrid(np.arange(9.0), np.arange(9.0), indexing="ij")
    centre = (np.abs(rows - 4) <= 2) & (np.abs(cols - 4) <= 2)  # stays inside
    design = np.column_stack([rows[centre] - 4, cols[centre] - 4, np.ones(centre.sum())])
    aug = RandomAffine((9, 9), max_shift=0, max_rotation=30, zoom_range=(2.0, 2.0))
    read = [aug(np.repeat(ramp.reshape(1, 81), 40, axis=0),
                np.random.default_rng(2)).reshape(40, 9, 9) for ramp in (rows, cols)]
    angles = []
    for i in range(40):
        (a, b, _), (c, d, _) = (np.linalg.lstsq(design, r[i][centre], rcond=None)[0]
                                for r in read)
        np.testing.assert_allclose([c, d], [-b, a], atol=1e-9)
        np.testing.assert_allclose(a * a + b * b, 0.25, atol=1e-9)
        angles.append(np.degrees(np.arctan2(b, a)))
    assert max(np.abs(angles)) <= 30 + 1e-9 and min(angles) < -10 and max(angles) > 10


def test_brightness_contrast_scales_rows_both_ways():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    out = BrightnessContrast(brightness=0.0, contrast=0.5)(X, np.random.default_rng(1))
    centred = X - X.mean(axis=1, keepdims=True)
    factors = (out - X.mean(axis=1, keepdims=True))[:, 0] / centred[:, 0]
    np.testing.assert_allclose(out - X.mean(axis=1, keepdims=True),
                               factors[:, None] * centred, atol=1e-12)
    assert factors.min() < 0.6 and factors.max() > 1.4
    assert np.all((factors >= 0.5 - 1e-12) & (factors <= 1.5 + 1e-12))


def test_random_affine_whole_pixel_shifts_keep_pixels_whole_and_others_blend():
    # Bilinear sampling of a one-pixel image: a whole shift moves the pixel,
    # a fractional one (the default) spreads it over its neighbours.
    img = np.zeros((200, 64))
    img[:, 3 * 8 + 3] = 1.0
    whole = RandomAffine((8, 8), max_shift=1, max_rotation=0, order=1,
                         integer_shifts=True)(img, np.random.default_rng(0))
    assert set(np.unique(whole)) == {0.0, 1.0}
    assert len({tuple(np.argwhere(r.reshape(8, 8) == 1.0)[0]) for r in whole}) == 9
    blended = RandomAffine((8, 8), max_shift=1, max_rotation=0, order=1)(
        img, np.random.default_rng(0))
    assert np.mean((blended > 0.01) & (blended < 0.99)) > 0.01
    np.testing.assert_allclose(blended.sum(axis=1), 1.0)  # inside the image: kept whole


def test_gaussian_noise_adds_to_the_batch():
    X_batch = X[:200]
    out = GaussianNoise(std=0.2)(X_batch, np.random.default_rng(0))
    noise = out - X_batch
    assert abs(noise.std() - 0.2) < 0.01 and abs(noise.mean()) < 0.01
    np.testing.assert_array_equal(GaussianNoise(std=0.0)(X_batch, np.random.default_rng(0)),
                                  X_batch)


@pytest.mark.parametrize("params, expected", [
    ({"fill": np.inf}, "'fill' parameter of RandomAffine must be a finite number; got inf."),
    ({"max_rotation": -10}, "must be a finite number >= 0; got -10."),
    ({"zoom_range": (0.0, 1.0)}, "must be a finite number > 0; got 0.0."),
])
def test_random_affine_errors_say_the_range_expected(params, expected):
    with pytest.raises(ValueError) as info:
        RandomAffine((8, 8), **params)
    assert str(info.value).endswith(expected)


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


# --------------------------------------------------------------------------- #
# invalid augmenter arguments: a ValueError naming the parameter, when made    #
# --------------------------------------------------------------------------- #
BAD_ARGUMENTS = [
    (GaussianNoise, {"std": np.nan}, "std"),
    (GaussianNoise, {"std": np.inf}, "std"),
    (GaussianNoise, {"std": -0.1}, "std"),
    (GaussianNoise, {"std": "0.1"}, "std"),
    (GaussianNoise, {"std": True}, "std"),
    (GaussianNoise, {"clip": (1.0, 0.0)}, "clip"),
    (GaussianNoise, {"clip": (0.0, np.nan)}, "clip"),
    (GaussianNoise, {"clip": 1.0}, "clip"),
    (GaussianNoise, {"clip": (0.0, 0.5, 1.0)}, "clip"),
    (BrightnessContrast, {"contrast": np.nan}, "contrast"),
    (BrightnessContrast, {"contrast": -0.1}, "contrast"),
    (BrightnessContrast, {"contrast": 1.5}, "contrast"),
    (BrightnessContrast, {"brightness": np.inf}, "brightness"),
    (BrightnessContrast, {"brightness": -0.2}, "brightness"),
    (BrightnessContrast, {"brightness": None}, "brightness"),
    (BrightnessContrast, {"clip": ("0", "1")}, "clip"),
    (BrightnessContrast, {"clip": (1, -1)}, "clip"),
    (RandomAffine, {"image_shape": (8, 8.0)}, "image_shape"),
    (RandomAffine, {"image_shape": (8, 0)}, "image_shape"),
    (RandomAffine, {"image_shape": (64,)}, "image_shape"),
    (RandomAffine, {"image_shape": 64}, "image_shape"),
    (RandomAffine, {"image_shape": "88"}, "image_shape"),
    (RandomAffine, {"max_shift": -1}, "max_shift"),
    (RandomAffine, {"max_shift": np.nan}, "max_shift"),
    (RandomAffine, {"max_shift": (1, np.inf)}, "max_shift"),
    (RandomAffine, {"max_shift": (1, 2, 3)}, "max_shift"),
    (RandomAffine, {"max_rotation": np.nan}, "max_rotation"),
    (RandomAffine, {"max_rotation": -10}, "max_rotation"),
    (RandomAffine, {"zoom_range": (1.1, 0.9)}, "zoom_range"),
    (RandomAffine, {"zoom_range": (0.0, 1.0)}, "zoom_range"),
    (RandomAffine, {"zoom_range": (0.9, np.inf)}, "zoom_range"),
    (RandomAffine, {"zoom_range": 1.1}, "zoom_range"),
    (RandomAffine, {"fill": np.nan}, "fill"),
    (RandomAffine, {"fill": np.inf}, "fill"),
    (RandomAffine, {"order": 3}, "order"),
    (RandomAffine, {"order": 1.0}, "order"),
    (RandomAffine, {"order": True}, "order"),
    (RandomAffine, {"integer_shifts": "yes"}, "integer_shifts"),
    (Compose, {"steps": GaussianNoise()}, "steps"),
    (Compose, {"steps": [GaussianNoise(), 3]}, r"steps\[1\]"),
    (Compose, {"steps": [lambda X_batch: X_batch]}, r"steps\[0\].*augment\(X_batch, rng\)"),
]


def _make(cls, **params):
    if cls is RandomAffine:
        params = {"image_shape": (8, 8), **params}
    if cls is Compose:
        return Compose(**params)
    return cls(**params)


@pytest.mark.parametrize("cls, params, name", BAD_ARGUMENTS,
                         ids=[f"{c.__name__}-{list(p)[0]}-{i}"
                              for i, (c, p, _) in enumerate(BAD_ARGUMENTS)])
def test_invalid_augmenter_arguments_fail_at_construction(cls, params, name):
    with pytest.raises(ValueError, match=name) as info:
        _make(cls, **params)
    assert isinstance(info.value, TypeError)  # scikit-learn's InvalidParameterError


@pytest.mark.parametrize("aug", [
    GaussianNoise(std=0.0, clip=(0, np.inf)),
    BrightnessContrast(brightness=0, contrast=1.0, clip=(-np.inf, 1)),
    RandomAffine((np.int64(8), 8), max_shift=(np.float32(0.5), 0), max_rotation=360,
                 zoom_range=(1, 1), fill=-1, order=0, integer_shifts=np.True_),
    Compose([]),
    Compose((GaussianNoise(), add_noise)),
], ids=["noise", "brightness", "affine", "empty", "tuple"])
def test_valid_edge_arguments_pass_and_clone_round_trips(aug):
    cloned = clone(aug)  # builds it anew from get_params: validation passes
    assert cloned is not aug and repr(cloned) == repr(aug)
    out = aug(X[:3], np.random.default_rng(0))
    assert out.shape == (3, 64)


def test_values_set_after_construction_are_checked_at_fit_start():
    clf = MLPClassifier((5,), max_iter=2, augment=BrightnessContrast())
    clf.set_params(augment__contrast=np.nan)  # set_params does not check
    with pytest.raises(ValueError, match="contrast"):
        clf.fit(X, Y)
    assert not hasattr(clf, "coefs_")
    noise = GaussianNoise()
    clf.set_params(augment=Compose([noise]))
    noise.std = -1.0  # nor does setting an attribute, even inside a Compose
    with pytest.raises(ValueError, match="std"):
        clf.fit(X, Y)
    clf.set_params(augment__steps=[_three_args])
    with pytest.raises(TypeError, match=r"steps\[0\].*augment\(X_batch, rng\)"):
        clf.fit(X, Y)
    assert not hasattr(clf, "coefs_")


# --------------------------------------------------------------------------- #
# sparse X                                                                     #
# --------------------------------------------------------------------------- #
SPARSE_AUGMENTERS = {
    "noise": GaussianNoise(std=0.1, clip=(0, 1)),
    "affine": RandomAffine((8, 8), max_shift=1, max_rotation=10, zoom_range=(0.9, 1.1)),
    "affine-whole-pixels": RandomAffine((8, 8), max_shift=(1, 2), order=0,
                                        integer_shifts=True),
    "brightness": BrightnessContrast(0.1, 0.2, clip=(0, 1)),
    "compose": Compose([RandomAffine((8, 8), max_shift=1), GaussianNoise(0.05)]),
}


def test_the_sparse_tests_cover_every_augmenter_of_the_module():
    import sknet.augment

    covered = {type(aug).__name__ for aug in SPARSE_AUGMENTERS.values()}
    assert covered == set(sknet.augment.__all__)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(SPARSE_AUGMENTERS))
def test_every_augmenter_gives_the_dense_result_on_a_csr_batch(name, dtype):
    aug = SPARSE_AUGMENTERS[name]
    batch = X[:20].astype(dtype)
    dense = aug(batch, np.random.default_rng(5))
    from_sparse = aug(sp.csr_matrix(batch), np.random.default_rng(5))
    assert not sp.issparse(from_sparse) and from_sparse.dtype == dtype
    np.testing.assert_array_equal(from_sparse, dense)
    assert not np.array_equal(dense, batch)  # it did change something


@pytest.mark.parametrize("name", list(SPARSE_AUGMENTERS))
def test_every_augmenter_trains_on_sparse_X_as_on_dense_X(name):
    aug = SPARSE_AUGMENTERS[name]
    params = dict(hidden_layer_sizes=(10,), max_iter=3, random_state=0, augment=aug)
    dense = MLPClassifier(**params).fit(X, Y)
    sparse = MLPClassifier(**params).fit(sp.csr_matrix(X), Y)
    np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.csc_matrix])
def test_a_user_augmenter_may_return_sparse_or_dense_batches(to_sparse):
    def identity(X_batch, rng):
        return X_batch

    def as_sparse(X_batch, rng):
        return to_sparse(X_batch)

    plain = MLPClassifier((10,), max_iter=3, random_state=0, augment=identity).fit(X, Y)
    for data, augment in ((sp.csr_matrix(X), identity), (sp.csr_matrix(X), as_sparse),
                          (X, as_sparse)):
        clf = MLPClassifier((10,), max_iter=3, random_state=0, augment=augment).fit(data, Y)
        np.testing.assert_allclose(clf.coefs_[0], plain.coefs_[0], rtol=1e-6, atol=1e-9)


def test_a_user_augmenter_may_return_array_likes_of_the_batchs_shape():
    # nested lists are read as numpy reads them, integers as the batch's floats
    Xi = np.rint(X * 4)
    params = dict(hidden_layer_sizes=(10,), max_iter=3, random_state=0)
    plain = MLPClassifier(**params, augment=lambda Xb, rng: Xb).fit(Xi, Y)
    for augment in (lambda Xb, rng: Xb.tolist(), lambda Xb, rng: Xb.astype(np.int64)):
        clf = MLPClassifier(**params, augment=augment).fit(Xi, Y)
        np.testing.assert_array_equal(clf.coefs_[0], plain.coefs_[0])


def test_a_user_augmenter_that_fails_on_sparse_batches_says_what_it_got():
    with pytest.raises(TypeError, match=r"augment\(X_batch, rng\).*sparse CSR matrix"):
        MLPClassifier((5,), max_iter=1, augment=np.add).fit(sp.csr_matrix(X), Y)


# --------------------------------------------------------------------------- #
# what a user augmenter returns                                                #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_an_augmenter_returning_non_finite_values_is_named(bad, sparse):
    def spoil(X_batch, rng):
        X_batch = X_batch.copy()
        values = X_batch.data if sp.issparse(X_batch) else X_batch.reshape(-1)
        values[0] = bad
        return X_batch

    data = sp.csr_matrix(X) if sparse else X
    with pytest.raises(ValueError, match="augment returned non-finite values"):
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, augment=spoil).fit(data, Y.astype(float))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_an_augmenter_returning_complex_values_is_an_error(sparse):
    def to_complex(X_batch, rng):
        return X_batch * (1 + 0j)

    data = sp.csr_matrix(X) if sparse else X
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        with pytest.raises(ValueError, match="complex"):
            MLPClassifier((5,), max_iter=1, augment=to_complex).fit(data, Y)


@pytest.mark.parametrize("returned, error, match", [
    (lambda Xb: None, TypeError, "returned None"),
    (lambda Xb: Xb.astype(str), TypeError, "dtype <U"),
    (lambda Xb: Xb.astype(object), TypeError, "dtype object"),
])
def test_an_augmenter_returning_no_numbers_is_an_error(returned, error, match):
    with pytest.raises(error, match=match):
        MLPClassifier((5,), max_iter=1, augment=lambda Xb, rng: returned(Xb)).fit(X, Y)


# --------------------------------------------------------------------------- #
# the augment function's signature                                             #
# --------------------------------------------------------------------------- #
def _three_args(X_batch, rng, scale):
    return X_batch * scale


def _keyword_only(X_batch, rng, *, scale):
    return X_batch * scale


@pytest.mark.parametrize("augment", [
    lambda X_batch: X_batch,
    _three_args,
    _keyword_only,
    lambda: None,
], ids=["one-arg", "three-args", "keyword-only", "no-args"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_wrong_signature_is_refused_at_fit_start(augment, method):
    clf = MLPClassifier((5,), max_iter=1, augment=augment)
    extra = {"classes": np.unique(Y)} if method == "partial_fit" else {}
    expected = r"must have the signature augment\(X_batch, rng\) -> X_batch"
    with pytest.raises(TypeError, match=expected):
        getattr(clf, method)(X, Y, **extra)
    assert not hasattr(clf, "coefs_")


def test_signatures_that_fit_are_accepted():
    def with_default(X_batch, rng, scale=1.0):
        return X_batch * scale

    class Flexible:
        def __call__(self, *args):
            return args[0]

    for augment in (with_default, Flexible(), functools.partial(_three_args, scale=1.0),
                    functools.partial(_keyword_only, scale=1.0)):
        MLPClassifier((5,), max_iter=1, augment=augment).fit(X, Y)


class _Unreadable:
    """A callable whose signature cannot be read, as some builtins."""

    __signature__ = "unreadable"

    def __init__(self, works):
        self.works = works

    def __call__(self, *args):
        if not self.works:
            raise TypeError("expected 3 arguments")
        return args[0]


def test_an_unreadable_signature_is_accepted_and_a_call_error_explained():
    with pytest.raises(TypeError):
        inspect.signature(_Unreadable(True))  # the premise: unreadable
    MLPClassifier((5,), max_iter=1, augment=_Unreadable(True)).fit(X, Y)
    with pytest.raises(TypeError, match=r"expected 3 arguments.*called as augment\(X_batch, "
                                        r"rng\) -> X_batch.*numpy array"):
        MLPClassifier((5,), max_iter=1, augment=_Unreadable(False)).fit(X, Y)


def test_an_augmenter_class_instead_of_an_instance_is_refused():
    with pytest.raises(TypeError, match=r"not a class: use GaussianNoise\(\.\.\.\)"):
        MLPClassifier((5,), max_iter=1, augment=GaussianNoise).fit(X, Y)


@pytest.mark.parametrize("make", [lambda clip: GaussianNoise(std=0.5, clip=clip),
                                  lambda clip: BrightnessContrast(0.5, 0.5, clip=clip)],
                         ids=["noise", "brightness"])
def test_clip_bounds_the_result_to_its_range(make):
    free = make(None)(X[:100], np.random.default_rng(0))
    clipped = make((0.0, 1.0))(X[:100], np.random.default_rng(0))
    assert free.min() < 0 and free.max() > 1  # the draws leave the range
    np.testing.assert_array_equal(clipped, np.clip(free, 0.0, 1.0))


def test_an_image_one_pixel_high_is_an_image():
    row = np.arange(16.0).reshape(2, 8)
    aug = RandomAffine((1, 8), max_shift=0, max_rotation=0)
    np.testing.assert_array_equal(aug(row, np.random.default_rng(0)), row)


def test_a_bounded_parameter_error_says_its_range():
    with pytest.raises(ValueError) as info:
        BrightnessContrast(contrast=1.5)
    assert str(info.value).endswith("must be a finite number in [0, 1]; got 1.5.")

"""Scores on values too large to square: the same numbers as scikit-learn's, or inf."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import r2_score

from sknet._metrics import r2_score_without_overflow, row_mean_squared_error

RNG = np.random.default_rng(0)
Y = RNG.uniform(-1, 1, size=(20, 3))
P = RNG.uniform(-1, 1, size=(20, 3))
W = RNG.uniform(0, 3, size=20)


@pytest.fixture(autouse=True)
def _runtime_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.parametrize("scale", [1.0, 1e150, 1e300, 1.7e308])
@pytest.mark.parametrize("weights", [None, W, W * 5e307], ids=["none", "w", "huge-w"])
@pytest.mark.parametrize("columns", [0, slice(None)], ids=["one-output", "three-outputs"])
def test_r2_is_scikit_learns_at_any_scale(scale, weights, columns):
    # R^2 does not change when targets and predictions are scaled alike
    expected = r2_score(Y[:, columns], P[:, columns],
                        sample_weight=None if weights is None else W)
    got = r2_score_without_overflow(Y[:, columns] * scale, P[:, columns] * scale, weights)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("y_true, y_pred, weights", [
    (Y[:3, 0], P[:3, 0], np.zeros(3)),  # no weight at all
    (Y[:3, 0] * 1e200, P[:2, 0] * 1e200, None),  # lengths differ, beyond the safe scale
    (np.array(["a", "b"]), np.array([1.0, 2.0]), None),  # not numbers
], ids=["zero-weights", "inconsistent-lengths", "strings"])
def test_r2_refuses_what_scikit_learn_refuses_with_its_error(y_true, y_pred, weights):
    # the error's type follows the release: scikit-learn 1.6 lets numpy's
    # ZeroDivisionError through for weights that sum to zero
    with pytest.raises((ValueError, ZeroDivisionError)) as expected:
        r2_score(y_true, y_pred, sample_weight=weights)
    with pytest.raises(type(expected.value)) as got:
        r2_score_without_overflow(y_true, y_pred, weights)
    assert str(got.value) == str(expected.value)


def test_r2_of_float32_values_is_scored_in_float64():
    # squares of 1e30 overflow float32; scikit-learn's r2_score squares in the input's type
    y32, p32 = (Y[:, 0] * 1e30).astype(np.float32), (P[:, 0] * 1e30).astype(np.float32)
    expected = r2_score(y32.astype(np.float64), p32.astype(np.float64))
    assert r2_score_without_overflow(y32, p32) == pytest.approx(expected, rel=1e-12)


def test_r2_of_a_prediction_beyond_the_largest_float_is_minus_inf():
    assert r2_score_without_overflow(Y[:, 0], P[:, 0] * 1e300) == -np.inf


def test_r2_keeps_scikit_learns_constant_target_conventions():
    constant = np.full(20, 1e300)
    assert r2_score_without_overflow(constant, constant) == 1.0
    assert r2_score_without_overflow(constant, P[:, 0] * 1e300) == 0.0
    # a constant whose mean rounds (0.1 * 20 / 20 is not 0.1) is constant still
    tenth = np.full(20, 0.1)
    assert np.mean(tenth) != 0.1
    assert r2_score_without_overflow(tenth, P[:, 0] * 1e300) == 0.0


@pytest.mark.parametrize("scale", [1.0, 1e150, 1e300])
@pytest.mark.parametrize("weights", [None, W, W * 5e307], ids=["none", "w", "huge-w"])
def test_row_mean_squared_error_matches_numpy_at_any_scale(scale, weights):
    w = None if weights is None else W
    expected = float(np.average(np.mean((Y - P) ** 2, axis=1), weights=w)) * scale * scale
    got = row_mean_squared_error(Y * scale, P * scale, weights)
    if np.isinf(expected):
        assert got == np.inf
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_row_mean_squared_error_beyond_the_largest_float_is_inf():
    assert row_mean_squared_error(Y * 1.7e308, -Y * 1.7e308) == np.inf

"""The loop's vector updates: BLAS and numpy versions agree and work in place."""

import numpy as np
import pytest

from sknet._core.blas import add_rows_for, axpy_for


@pytest.mark.parametrize("fast", [False, True], ids=["numpy", "blas"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpy_adds_a_multiple_in_place(dtype, fast):
    rng = np.random.default_rng(0)
    x, y0 = rng.normal(size=50).astype(dtype), rng.normal(size=50).astype(dtype)
    buffer = np.concatenate([y0, y0])  # y is a view into a larger array
    y = buffer[25:75]
    expected = y.astype(np.float64) + 0.3 * x.astype(np.float64)
    axpy_for(dtype, fast)(x, y, 0.3)
    np.testing.assert_allclose(buffer[25:75], expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("fast", [False, True], ids=["numpy", "blas"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_rows_adds_the_bias_to_each_row_of_a_buffer_slice(dtype, fast):
    rng = np.random.default_rng(1)
    buffer = rng.normal(size=(8, 5)).astype(dtype)  # a workspace buffer of 8 rows
    before = buffer.copy()
    b = rng.normal(size=5).astype(dtype)
    z = buffer[:6]  # a short last batch
    add_rows_for(dtype, fast)(z, b, np.ones(8, dtype)[:6])
    np.testing.assert_array_equal(buffer[:6], before[:6] + b)  # exact: b is added once
    np.testing.assert_array_equal(buffer[6:], before[6:])

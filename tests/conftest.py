"""Shared fixtures for sknet's tests."""

import pytest

from sknet._core import ACTIVATIONS


@pytest.fixture
def activation_registry():
    """A list to append the names a test registers; they are removed afterwards."""
    names = []
    yield names
    for name in names:
        ACTIVATIONS.pop(name, None)


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """One BLAS thread: the suite's small matrices gain nothing from more, and
    on a busy machine competing BLAS threads slow a fit down many times."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield

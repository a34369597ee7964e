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

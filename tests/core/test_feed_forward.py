"""Prediction block by block gives the whole-array forward pass."""

import numpy as np
import pytest
import scipy.sparse as sp

from sknet._core import network
from sknet._core.activations import get_activation


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_blocks_of_rows_give_the_whole_forward_pass(monkeypatch, sparse):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 6))
    X[X < 0.5] = 0
    coefs = [rng.normal(size=(6, 9)), rng.normal(size=(9, 4))]
    intercepts = [rng.normal(size=9), rng.normal(size=4)]
    acts = [get_activation("relu"), get_activation("softmax")]
    # the definition, computed directly on all rows
    H = np.maximum(X @ coefs[0] + intercepts[0], 0)
    Z = H @ coefs[1] + intercepts[1]
    expected = np.exp(Z - Z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    monkeypatch.setattr(network, "_BLOCK_BYTES", 8 * 9 * 300)  # blocks of 300 rows
    rows, block = [], network._feed_forward_block
    monkeypatch.setattr(network, "_feed_forward_block",
                        lambda X, *args: rows.append(X.shape[0]) or block(X, *args))
    P = network.feed_forward(sp.csr_matrix(X) if sparse else X, coefs, intercepts, acts)
    assert rows == [300, 300, 300, 100]  # no more than a block's activations at once
    assert P.shape == (1000, 4) and P.flags.c_contiguous
    np.testing.assert_allclose(P, expected, rtol=1e-12, atol=1e-15)


def test_a_prediction_holds_its_output_and_about_4_mb_whatever_the_rows():
    """512 float64 units a row: all 40,000 rows' activations at once would take 160 MB."""
    import tracemalloc

    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(20, 512)) * 0.1, rng.normal(size=(512, 10)) * 0.1]
    intercepts = [np.zeros(512), np.zeros(10)]
    acts = [get_activation("relu"), get_activation("softmax")]
    for n in (20000, 40000):
        X = rng.normal(size=(n, 20))
        tracemalloc.start()
        try:
            P = network.feed_forward(X, coefs, intercepts, acts)
            beyond_output = (tracemalloc.get_traced_memory()[1] - P.nbytes) / 2 ** 20
        finally:
            tracemalloc.stop()
        assert beyond_output < 6, (n, beyond_output)

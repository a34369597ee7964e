"""Work buffers start on a cache line, so that row blocks split between threads
write lines of their own."""

import numpy as np
import pytest

from sknet._core.buffers import CACHE_LINE, empty_aligned
from sknet._core.recurrent import RecurrentNetwork


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, bool])
@pytest.mark.parametrize("shape", [(0,), 7, (3, 5), (50, 64, 256), (2, 0, 3)])
def test_an_aligned_buffer_is_a_plain_array_starting_on_a_line(shape, dtype):
    a = empty_aligned(shape, dtype)
    expected = (shape,) if isinstance(shape, int) else shape
    assert a.shape == expected and a.dtype == np.dtype(dtype)
    assert a.flags.c_contiguous and a.flags.writeable
    if a.size:  # (an empty array's address means nothing)
        assert a.ctypes.data % CACHE_LINE == 0
        a[...] = 1  # the whole of it is there to write
        assert a.all()


def test_many_buffers_in_a_row_all_start_on_a_line():
    # numpy alone starts most of these 16 or 48 bytes into a line
    offsets = {empty_aligned(n, np.float32).ctypes.data % CACHE_LINE for n in range(1, 200)}
    assert offsets == {0}


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_recurrent_batch_gives_each_block_of_rows_lines_of_its_own(bidirectional):
    net = RecurrentNetwork(3, [64, 64], 2, cell="lstm", bidirectional=bidirectional,
                           dtype=np.float32).initialize("sklearn", np.random.RandomState(0))
    tr = net.workspace(64).trace(64, 10)
    arrays = [tr.x, tr.feat, tr.P, tr.delta, tr.dfeat]
    for lt in tr.layers:
        arrays += [a for a in (lt.out, lt.dout, lt.dc, *lt.dh) if a is not None]
        for d in lt.dirs:
            arrays += [a for a in vars(d).values() if isinstance(a, np.ndarray)]
    assert len(arrays) > 20
    # each starts on a line, and so does every block of 32 of its rows
    assert [a.shape for a in arrays if a.ctypes.data % CACHE_LINE] == []

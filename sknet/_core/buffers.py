"""Work buffers that the threads of a split step write side by side.

A step split between threads gives each thread a block of a buffer's rows.
Where the buffer starts mid cache line, as numpy's allocations do (16 bytes
is all they promise), the line at each boundary between two blocks holds
rows of both, and the two cores take it from each other at every write: in
an LSTM's time loop, every step. :func:`empty_aligned` starts a buffer on a
``CACHE_LINE`` boundary, so that a boundary between blocks falls between
lines wherever a block's rows fill whole ``CACHE_LINE`` units (32 rows of
any width, for instance).
"""

import numpy as np

__all__ = ["CACHE_LINE", "empty_aligned"]

#: The alignment, in bytes: a cache line on Apple's ARM cores, two on x86-64
#: (whose processors also fetch a line's neighbour in the same 128 bytes).
CACHE_LINE = 128


def empty_aligned(shape, dtype):
    """An uninitialized array of ``shape`` whose data starts on a ``CACHE_LINE`` boundary.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet._core.buffers import empty_aligned, CACHE_LINE
    >>> a = empty_aligned((3, 5), np.float32)
    >>> a.shape, a.dtype, a.ctypes.data % CACHE_LINE, a.flags.c_contiguous
    ((3, 5), dtype('float32'), 0, True)
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + CACHE_LINE, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start:start + nbytes].view(dtype).reshape(shape)

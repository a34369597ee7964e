"""Data augmentation for training mini-batches.

An augmenter transforms a training mini-batch ``X_batch`` with a fresh random
draw each time it is called, ``augmenter(X_batch, rng) -> X_batch``, where
``rng`` is a :class:`numpy.random.Generator` seeded from the estimator's
``random_state``. Estimators apply it to training batches only: validation
and prediction data are never touched. It needs a stochastic solver.

The augmenters here are small estimators-like objects with plain parameters,
so ``clone``, ``GridSearchCV``, pickle and :mod:`sknet.io` work with them. A
function of your own ``f(X_batch, rng) -> X_batch`` works too: a function
defined at module level pickles, a ``lambda`` does not, and safe loading with
:func:`sknet.io.load` asks you to trust your function by name.

Images are given as flat rows (as in ``load_digits``) with ``image_shape``
telling how to fold each row into an image (height, width).
"""

import numpy as np
import scipy.sparse as sp
from scipy import ndimage
from sklearn.base import BaseEstimator

__all__ = ["GaussianNoise", "RandomAffine", "BrightnessContrast", "Compose"]


class GaussianNoise(BaseEstimator):
    """Add Gaussian noise with standard deviation ``std`` to every feature.

    Parameters
    ----------
    std : float, default=0.1
        Standard deviation of the noise.
    clip : tuple of (float, float) or None, default=None
        Clip the result to this range (e.g. ``(0, 1)`` for scaled pixels).

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.augment import GaussianNoise
    >>> X = np.zeros((2, 3))
    >>> GaussianNoise(std=0.5)(X, np.random.default_rng(0)).shape
    (2, 3)
    """

    def __init__(self, std=0.1, clip=None):
        self.std = std
        self.clip = clip

    def __call__(self, X, rng):
        X = X.toarray() if sp.issparse(X) else X
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        out = rng.standard_normal(X.shape, dtype=dtype)
        out *= self.std
        out += X
        return _clip(out, self.clip)


class RandomAffine(BaseEstimator):
    """Random shifts, rotations and zooms of images stored as flat rows.

    Each image gets its own draw: a shift of up to ``max_shift`` pixels along
    each axis, a rotation of up to ``max_rotation`` degrees either way, and a
    zoom factor in ``zoom_range``. The whole batch is resampled in one
    :func:`scipy.ndimage.map_coordinates` call (bilinear, zeros outside).

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)`` of each image; ``height * width`` must equal the
        number of features.
    max_shift : float or tuple of (float, float), default=1.0
        Largest shift in pixels, for both axes or as ``(rows, columns)``.
    max_rotation : float, default=10.0
        Largest rotation in degrees.
    zoom_range : tuple of (float, float), default=(1.0, 1.0)
        Range of the zoom factor (``(0.9, 1.1)`` zooms by up to 10 %).
    fill : float, default=0.0
        Value of pixels that come from outside the image.
    order : {0, 1}, default=1
        Interpolation: 0 takes the nearest pixel (no blur, best for small
        images such as 8x8 digits), 1 is bilinear.
    integer_shifts : bool, default=False
        Draw whole-pixel shifts (-max_shift..max_shift) instead of continuous
        ones.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.augment import RandomAffine
    >>> X = np.arange(2 * 64, dtype=float).reshape(2, 64)
    >>> RandomAffine((8, 8), max_shift=1)(X, np.random.default_rng(0)).shape
    (2, 64)
    """

    def __init__(self, image_shape, max_shift=1.0, max_rotation=10.0,
                 zoom_range=(1.0, 1.0), fill=0.0, order=1, integer_shifts=False):
        self.image_shape = image_shape
        self.order = order
        self.integer_shifts = integer_shifts
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.zoom_range = zoom_range
        self.fill = fill

    def __call__(self, X, rng):
        h, w = _check_image_shape(self.image_shape, X)
        n = X.shape[0]
        images = np.asarray(X, dtype=np.float64).reshape(n, h, w)
        coords = self._source_coordinates(n, h, w, rng)
        out = ndimage.map_coordinates(images, coords, order=self.order, mode="grid-constant",
                                      cval=self.fill)
        return out.reshape(n, h * w).astype(X.dtype, copy=False)

    def _source_coordinates(self, n, h, w, rng):
        """For each output pixel, where to read it in the source image."""
        angle = np.deg2rad(rng.uniform(-self.max_rotation, self.max_rotation, n))
        zoom = rng.uniform(self.zoom_range[0], self.zoom_range[1], n)
        limit = np.broadcast_to(np.asarray(self.max_shift, dtype=np.float64), (2,))
        if self.integer_shifts:
            k = limit.astype(int)[:, None]
            shift = np.floor(rng.uniform(-k, k + 1, (2, n))).astype(np.float64)
        else:
            shift = rng.uniform(-limit[:, None], limit[:, None], (2, n))
        rows, cols = np.meshgrid(np.arange(h) - (h - 1) / 2,
                                 np.arange(w) - (w - 1) / 2, indexing="ij")
        cos = (np.cos(angle) / zoom)[:, None, None]
        sin = (np.sin(angle) / zoom)[:, None, None]
        src_r = cos * rows + sin * cols + (h - 1) / 2 - shift[0][:, None, None]
        src_c = -sin * rows + cos * cols + (w - 1) / 2 - shift[1][:, None, None]
        sample = np.broadcast_to(np.arange(n)[:, None, None], src_r.shape)
        return np.stack([sample, src_r, src_c])


class BrightnessContrast(BaseEstimator):
    """Random brightness and contrast changes, one draw per sample.

    Each row ``x`` becomes ``c * (x - mean(x)) + mean(x) + b`` with a contrast
    factor ``c`` uniform in ``[1 - contrast, 1 + contrast]`` and a brightness
    offset ``b`` uniform in ``[-brightness, brightness]``.

    Parameters
    ----------
    brightness : float, default=0.1
        Largest brightness offset.
    contrast : float, default=0.1
        Largest relative contrast change.
    clip : tuple of (float, float) or None, default=None
        Clip the result to this range.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.augment import BrightnessContrast
    >>> X = np.ones((3, 4))
    >>> BrightnessContrast()(X, np.random.default_rng(0)).shape
    (3, 4)
    """

    def __init__(self, brightness=0.1, contrast=0.1, clip=None):
        self.brightness = brightness
        self.contrast = contrast
        self.clip = clip

    def __call__(self, X, rng):
        n = X.shape[0]
        c = rng.uniform(1 - self.contrast, 1 + self.contrast, (n, 1))
        b = rng.uniform(-self.brightness, self.brightness, (n, 1))
        mean = X.mean(axis=1, keepdims=True)
        out = (c * (X - mean) + mean + b).astype(X.dtype, copy=False)
        return _clip(out, self.clip)


class Compose(BaseEstimator):
    """Apply several augmenters one after the other.

    Parameters
    ----------
    steps : list of augmenters
        Each called as ``step(X_batch, rng)`` in order.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.augment import Compose, GaussianNoise
    >>> aug = Compose([GaussianNoise(0.1), GaussianNoise(0.1)])
    >>> aug(np.zeros((1, 2)), np.random.default_rng(0)).shape
    (1, 2)
    """

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, X, rng):
        for step in self.steps:
            X = step(X, rng)
        return X


def _clip(X, bounds):
    if bounds is None:
        return X
    return np.clip(X, bounds[0], bounds[1], out=X)


def _check_image_shape(image_shape, X):
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (height, width); got {image_shape!r}.")
    h, w = (int(v) for v in image_shape)
    if h * w != X.shape[1]:
        raise ValueError(
            f"image_shape={image_shape!r} holds {h * w} pixels but X has "
            f"{X.shape[1]} features."
        )
    return h, w

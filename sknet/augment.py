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

The augmenters check their parameters when they are made (a ValueError
naming the parameter), and again when a fit starts, which catches values set
later with ``set_params``. On sparse X they densify each batch (the result is
the dense one: noise, brightness and resampling touch the zeros too).
"""

import inspect
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy import ndimage
from sklearn.base import BaseEstimator

from ._validation import InvalidParameterError

# scikit-learn's parameter error, a ValueError and a TypeError at once.

__all__ = ["GaussianNoise", "RandomAffine", "BrightnessContrast", "Compose"]

#: What an augment function must look like; error messages quote it.
SIGNATURE = "augment(X_batch, rng) -> X_batch"


class _Augmenter(BaseEstimator):
    """An augmenter whose parameters ``_validate`` checks (at init and fit start)."""

    def _validate(self):
        raise NotImplementedError

    def _param_error(self, name, expected, value):
        return InvalidParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}; "
            f"got {value!r}.")

    def _check_real(self, name, value, low=0.0, high=np.inf, finite=True, open_low=False):
        """A real number in ``[low, high]`` (``(low, high]`` with ``open_low``),
        finite unless ``finite=False``."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise self._param_error(name, "a real number", value)
        too_low = value <= low if open_low else not value >= low  # NaN is too low
        if too_low or value > high or (finite and not np.isfinite(value)):
            expected = "a finite number" if finite else "a number (not NaN)"
            if high < np.inf:
                expected += f" in {'(' if open_low else '['}{low:g}, {high:g}]"
            elif low > -np.inf:
                expected += f" {'>' if open_low else '>='} {low:g}"
            raise self._param_error(name, expected, value)

    def _check_pair(self, name, value, ordered=True, **bounds):
        """Two numbers (see ``_check_real`` for ``bounds``); with ``ordered``, a
        range ``(low, high)`` with ``low <= high``."""
        what = "a pair (low, high)" if ordered else "a number or a pair of numbers"
        if not _is_pair(value):
            raise self._param_error(name, what, value)
        for v in value:
            self._check_real(name, v, **bounds)
        if ordered and value[0] > value[1]:
            raise self._param_error(name, "a pair (low, high) with low <= high", value)

    def _check_clip(self):
        if self.clip is not None:
            self._check_pair("clip", self.clip, low=-np.inf, finite=False)


class GaussianNoise(_Augmenter):
    """Add Gaussian noise with standard deviation ``std`` to every feature.

    Parameters
    ----------
    std : float, default=0.1
        Standard deviation of the noise, finite and >= 0.
    clip : tuple of (float, float) or None, default=None
        Clip the result to this range (e.g. ``(0, 1)`` for scaled pixels);
        ``low <= high``, either may be infinite.

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
        self._validate()

    def _validate(self):
        self._check_real("std", self.std)
        self._check_clip()

    def __call__(self, X, rng):
        X = _dense(X)
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        out = rng.standard_normal(X.shape, dtype=dtype)
        out *= self.std
        out += X
        return _clip(out, self.clip)


class RandomAffine(_Augmenter):
    """Random shifts, rotations and zooms of images stored as flat rows.

    Each image gets its own draw: a shift of up to ``max_shift`` pixels along
    each axis, a rotation of up to ``max_rotation`` degrees either way, and a
    zoom factor in ``zoom_range``. The whole batch is resampled in one
    :func:`scipy.ndimage.map_coordinates` call (bilinear, zeros outside).

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)`` of each image (positive); ``height * width`` must
        equal the number of features.
    max_shift : float or tuple of (float, float), default=1.0
        Largest shift in pixels (>= 0), for both axes or as ``(rows, columns)``.
    max_rotation : float, default=10.0
        Largest rotation in degrees (>= 0).
    zoom_range : tuple of (float, float), default=(1.0, 1.0)
        Range of the zoom factor, positive, ``low <= high`` (``(0.9, 1.1)``
        zooms by up to 10 %).
    fill : float, default=0.0
        Value of pixels that come from outside the image (finite).
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
        self._validate()

    def _validate(self):
        shape = self.image_shape
        if not _is_pair(shape) or not all(_is_int(v) and v > 0 for v in shape):
            raise self._param_error("image_shape", "(height, width), two positive integers",
                                    shape)
        if isinstance(self.max_shift, Real):
            self._check_real("max_shift", self.max_shift)
        else:
            self._check_pair("max_shift", self.max_shift, ordered=False)
        self._check_real("max_rotation", self.max_rotation)
        self._check_pair("zoom_range", self.zoom_range, low=0.0, open_low=True)
        self._check_real("fill", self.fill, low=-np.inf)
        if not _is_int(self.order) or self.order not in (0, 1):
            raise self._param_error("order", "0 or 1", self.order)
        if not isinstance(self.integer_shifts, (bool, np.bool_)):
            raise self._param_error("integer_shifts", "True or False", self.integer_shifts)

    def __call__(self, X, rng):
        h, w = _check_image_shape(self.image_shape, X)
        X = _dense(X)
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


class BrightnessContrast(_Augmenter):
    """Random brightness and contrast changes, one draw per sample.

    Each row ``x`` becomes ``c * (x - mean(x)) + mean(x) + b`` with a contrast
    factor ``c`` uniform in ``[1 - contrast, 1 + contrast]`` and a brightness
    offset ``b`` uniform in ``[-brightness, brightness]``.

    Parameters
    ----------
    brightness : float, default=0.1
        Largest brightness offset, finite and >= 0.
    contrast : float, default=0.1
        Largest relative contrast change, in [0, 1] (a factor below 0 would
        invert the sample).
    clip : tuple of (float, float) or None, default=None
        Clip the result to this range; ``low <= high``.

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
        self._validate()

    def _validate(self):
        self._check_real("brightness", self.brightness)
        self._check_real("contrast", self.contrast, high=1.0)
        self._check_clip()

    def __call__(self, X, rng):
        X = _dense(X)
        n = X.shape[0]
        c = rng.uniform(1 - self.contrast, 1 + self.contrast, (n, 1))
        b = rng.uniform(-self.brightness, self.brightness, (n, 1))
        mean = X.mean(axis=1, keepdims=True)
        out = (c * (X - mean) + mean + b).astype(X.dtype, copy=False)
        return _clip(out, self.clip)


class Compose(_Augmenter):
    """Apply several augmenters one after the other.

    Parameters
    ----------
    steps : list of augmenters
        Each called as ``step(X_batch, rng)`` in order: augmenters of this
        module or functions ``augment(X_batch, rng) -> X_batch``.

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
        self._validate()

    def _validate(self):
        if not isinstance(self.steps, (list, tuple)):
            raise self._param_error("steps", "a list of augmenters", self.steps)
        for i, step in enumerate(self.steps):
            _check_augment(step, f"steps[{i}] of Compose")

    def __call__(self, X, rng):
        for step in self.steps:
            X = step(X, rng)
        return X


def _check_augment(augment, name="augment"):
    """Check an augment function or augmenter, at construction or fit start.

    It must be callable as ``augment(X_batch, rng)`` (where its signature can
    be read: a builtin's is checked when it is called), and an augmenter of
    this module must hold valid parameters (``set_params`` does not check
    them, nor does loading a file). Errors are scikit-learn's
    ``InvalidParameterError``, a ValueError and a TypeError.
    """
    if isinstance(augment, type):
        raise InvalidParameterError(
            f"{name} must be an augmenter, not a class: use {augment.__name__}(...) "
            f"rather than {augment.__name__}.")
    if not callable(augment):
        raise InvalidParameterError(
            f"{name} must be a callable {SIGNATURE} (for example from sknet.augment); "
            f"got {augment!r}.")
    if isinstance(augment, _Augmenter):
        augment._validate()
    try:
        signature = inspect.signature(augment)
    except (TypeError, ValueError):  # no readable signature: checked when called
        return
    try:
        signature.bind(None, None)
    except TypeError as exc:
        raise InvalidParameterError(
            f"{name} must have the signature {SIGNATURE}: it is called with two "
            f"arguments, the batch and a numpy Generator, but {augment!r} takes "
            f"{signature} ({exc}).") from None


def _is_pair(value):
    try:
        return not isinstance(value, str) and len(value) == 2
    except TypeError:  # no length, or a 0-d array
        return False


def _is_int(value):
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _dense(X):
    """A sparse batch as a dense array (the built-in augmenters change zeros too)."""
    return X.toarray() if sp.issparse(X) else X


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

"""Safe persistence of sknet models with :mod:`skops.io`.

:mod:`pickle` and :mod:`joblib` can run arbitrary code while loading a file,
so they are only safe for files you made yourself. The skops format stores a
model as data (JSON and arrays in a zip file) and refuses, before building
anything, every type it was not told to trust.

This module knows sknet's own classes: a fitted sknet estimator, or a
:class:`~sklearn.pipeline.Pipeline` of sknet and scikit-learn parts, loads
without listing any type. Anything else in the file (a class of yours, a
function such as an augment function or a callback) is refused with its
name, and loads only once you pass that name in ``trusted``.

skops is an optional dependency: ``pip install skops`` (or, from a clone of
sknet, ``pip install -e ".[skops]"``).
"""

import os
import zipfile

from ._autoencoder import AutoencoderTransformer
from ._mlp import MLPClassifier, MLPRegressor
from ._perceptron import PerceptronClassifier
from ._recurrent import RecurrentClassifier, RecurrentRegressor
from .augment import BrightnessContrast, Compose, GaussianNoise, RandomAffine

__all__ = ["trusted_types", "dump", "load"]

#: sknet's own classes that a saved model may hold (estimators, augmenters).
#: Every public sknet class that can be part of a fitted model belongs here.
TRUSTED_CLASSES = (
    MLPClassifier,
    MLPRegressor,
    AutoencoderTransformer,
    PerceptronClassifier,
    RecurrentClassifier,
    RecurrentRegressor,
    GaussianNoise,
    RandomAffine,
    BrightnessContrast,
    Compose,
)

_INSTALL_HINT = (
    "sknet.io needs the optional dependency skops; install it with "
    "`pip install skops` (or, from a clone of sknet, `pip install -e \".[skops]\"`)."
)


def _skops_io():
    """Import :mod:`skops.io` on first use, with an install hint if absent."""
    try:
        import skops.io
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return skops.io


def _type_name(cls):
    """The fully qualified name skops uses for a class or function."""
    return f"{cls.__module__}.{cls.__name__}"


def trusted_types():
    """Fully qualified names of the sknet classes a saved model may hold.

    These are trusted by :func:`load` in addition to the types skops trusts
    by default (scikit-learn's estimators, numpy and scipy containers, and
    Python's builtin containers and scalars).

    Returns
    -------
    names : list of str
        Sorted names such as ``'sknet._mlp.MLPClassifier'``.

    Examples
    --------
    >>> from sknet.io import trusted_types
    >>> "sknet._mlp.MLPClassifier" in trusted_types()
    True
    """
    return sorted({_type_name(cls) for cls in TRUSTED_CLASSES})


def _user_trusted(trusted):
    """``trusted`` as a set of type names (strings or types accepted)."""
    if trusted is None:
        return set()
    if isinstance(trusted, (str, type)):
        trusted = [trusted]
    if isinstance(trusted, bool) or not hasattr(trusted, "__iter__"):
        raise TypeError(
            "trusted must be a list of type names (str) or types, as returned "
            f"by skops.io.get_untrusted_types; got {trusted!r}."
        )
    names = set()
    for item in trusted:
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, type) or (callable(item) and hasattr(item, "__name__")):
            names.add(_type_name(item))
        else:
            raise TypeError(
                f"trusted must hold type names (str) or types; got {item!r}."
            )
    return names


def _read_bytes(file):
    """The content of a path or of a binary file object."""
    if hasattr(file, "read"):
        data = file.read()
    else:
        with open(os.fspath(file), "rb") as handle:
            data = handle.read()
    if not isinstance(data, bytes):
        raise TypeError(
            "load needs a path or a file opened in binary mode ('rb'); got a "
            f"file that returns {type(data).__name__}."
        )
    return data


def _untrusted_in(sio, data, file):
    """Types in the skops ``data`` that skops does not trust by default."""
    if not data:
        raise ValueError(f"{file!r} is empty: it is not a skops file.")
    try:
        return set(sio.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(
            f"{file!r} is not a skops file (sknet.io.dump writes them)."
        ) from exc


def dump(model, file):
    """Save a model in the skops format.

    Parameters
    ----------
    model : object
        Typically a fitted sknet estimator or a Pipeline holding one.
    file : str, path-like or binary file object
        Where to write; a file object must be opened in ``"wb"`` mode.

    See Also
    --------
    load : Load the model back, refusing types that are not trusted.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from sknet import MLPRegressor
    >>> from sknet.io import dump, load
    >>> X = np.arange(20.0).reshape(10, 2) / 20
    >>> model = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs",
    ...                      random_state=0).fit(X, X.sum(axis=1))
    >>> buffer = io.BytesIO()
    >>> dump(model, buffer)
    >>> _ = buffer.seek(0)
    >>> np.array_equal(load(buffer).predict(X), model.predict(X))
    True
    """
    sio = _skops_io()
    sio.dump(model, file)


def load(file, trusted=None):
    """Load a model saved by :func:`dump`, refusing any type not trusted.

    The file is checked before anything is built: every type in it must be
    trusted by skops by default (scikit-learn, numpy, scipy, builtins), be
    one of sknet's own (:func:`trusted_types`), or be named in ``trusted``.
    Otherwise nothing is loaded and the offending types are named. Loading
    never imports or calls anything the file names but these types.

    Parameters
    ----------
    file : str, path-like or binary file object
        The file written by :func:`dump` (or by ``skops.io.dump``).
    trusted : list of str or type, default=None
        Further types (or functions) you trust, by fully qualified name as
        the error message or ``skops.io.get_untrusted_types`` gives it, for
        example a class of your own in a Pipeline or an augment function.
        Only list what you have reviewed.

    Returns
    -------
    model : object
        The loaded model.

    Raises
    ------
    skops.io.exceptions.UntrustedTypesFoundException
        (a :class:`TypeError`) when the file holds types that are not
        trusted; the message names them.
    ValueError
        When ``file`` is not a skops file.

    Examples
    --------
    A function in a Pipeline is code: it is refused until you name it.

    >>> import io
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from sknet import MLPRegressor
    >>> from sknet.io import dump, load
    >>> X = np.arange(20.0).reshape(10, 2) / 20
    >>> pipe = make_pipeline(FunctionTransformer(np.nan_to_num),
    ...                      MLPRegressor(hidden_layer_sizes=(4,),
    ...                                   solver="lbfgs", random_state=0))
    >>> buffer = io.BytesIO()
    >>> dump(pipe.fit(X, X.sum(axis=1)), buffer)
    >>> _ = buffer.seek(0)
    >>> load(buffer)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skops.io.exceptions.UntrustedTypesFoundException: Untrusted types found in the file: ['numpy.nan_to_num']...
    >>> _ = buffer.seek(0)
    >>> load(buffer, trusted=["numpy.nan_to_num"]).predict(X[:1]).shape
    (1,)
    """
    sio = _skops_io()
    from skops.io.exceptions import UntrustedTypesFoundException

    data = _read_bytes(file)
    found = _untrusted_in(sio, data, file)
    allowed = set(trusted_types()) | _user_trusted(trusted)
    refused = sorted(found - allowed)
    if refused:
        error = UntrustedTypesFoundException(refused)
        error.args = (
            f"{error.args[0]} sknet.io.load refuses them: nothing was loaded. "
            "If you made this file or trust its source, pass these names in "
            "`trusted=`.",
        )
        raise error
    return sio.loads(data, trusted=sorted(found & allowed))

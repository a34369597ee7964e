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

Before a loaded model is returned, the structure of every sknet estimator in
it is checked: a damaged or tampered file gives a ValueError that names what
is wrong, never a model that fails, crashes or predicts garbage later.

skops is an optional dependency: ``pip install skops`` (or, from a clone of
sknet, ``pip install -e ".[skops]"``).
"""

import io
import json
import os
import zipfile

import scipy.sparse as sp

from ._autoencoder import AutoencoderTransformer
from ._base import available_memory_bytes
from ._checks_io import check_loaded
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

#: Types that skops does not trust by default and a fitted sknet model holds:
#: the CSR matrix of ``PerceptronClassifier.sparsify()``. skops rebuilds it
#: from arrays with ``scipy.sparse.load_npz`` (no pickle), and the loaded
#: model's matrix is checked by scipy's own ``check_format``.
TRUSTED_DATA_TYPES = (sp.csr_matrix,)

#: How deeply the JSON of a skops file may nest. sknet's models, alone or in
#: a Pipeline, nest about 20 levels; skops reads the schema recursively, so a
#: much deeper one is refused before skops sees it.
MAX_SCHEMA_DEPTH = 200

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
    """Fully qualified names of the types a saved sknet model may hold.

    sknet's own classes, and the CSR matrix (``scipy.sparse.csr_matrix``)
    of a sparsified :class:`~sknet.PerceptronClassifier`. These are trusted
    by :func:`load` in addition to the types skops trusts by default
    (scikit-learn's estimators, numpy arrays, and Python's builtin
    containers and scalars).

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
    return sorted({_type_name(cls) for cls in TRUSTED_CLASSES + TRUSTED_DATA_TYPES})


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


def _not_skops(file, why):
    """The ValueError for a file that is not a skops file at all."""
    return ValueError(f"{file!r} is not a skops file (sknet.io.dump writes them): {why}")


def _damaged(file, why):
    """The ValueError for a skops file whose content cannot be loaded safely."""
    if isinstance(why, BaseException):
        why = f"{type(why).__name__}: {why}"
    return ValueError(f"{file!r} is damaged or was tampered with ({why}). Nothing "
                      "was loaded.")


def _check_unpacked_size(file, needed):
    """Refuse a file that would unpack to more than the memory available."""
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise _damaged(file, f"loading it would unpack about {needed / 2**30:.1f} GiB "
                             f"of data, but only {available / 2**30:.1f} GiB of memory "
                             "is available")


def _open_archive(data, file):
    """The zip archive in ``data``, its members' unpacked sizes and its schema."""
    if not data:
        raise _not_skops(file, "it is empty.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    except Exception as exc:  # BadZipFile, and struct or value errors on odd bytes
        raise _not_skops(file, "it is not a zip archive.") from exc
    if "schema.json" not in sizes:
        raise _not_skops(file, "it has no schema.json.")
    _check_unpacked_size(file, sum(sizes.values()))
    try:
        schema = json.loads(archive.read("schema.json"))
    except RecursionError as exc:
        raise _damaged(file, "its schema.json nests too deeply to be read") from exc
    except Exception as exc:  # invalid JSON or UTF-8, a damaged zip member
        raise _damaged(file, exc) from exc
    return archive, sizes, schema


def _members_read(schema, file):
    """The archive members the nodes of ``schema`` read, once per node.

    Walks without recursion, and refuses a schema nested more than
    :data:`MAX_SCHEMA_DEPTH` levels deep.
    """
    stack, files = [(schema, 1)], []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise _damaged(file, f"its schema.json nests more than {MAX_SCHEMA_DEPTH} "
                                 "levels deep")
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                files.append(node["file"])
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return files


def _npz_unpacked_size(archive, name):
    """Bytes the arrays of the ``.npz`` member ``name`` unpack to (0 if not a zip)."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive.read(name))) as npz:
            return sum(info.file_size for info in npz.infolist())
    except Exception:  # not a zip: skops refuses it when it reads it
        return 0


def _check_archive(data, file):
    """Check the zip, its schema and what loading it unpacks, before skops reads it.

    skops reads a member into memory each time a node names it, and builds
    an array from it; a sparse matrix's ``.npz`` member is compressed once
    more. The unpacked sizes the archive declares (zipfile enforces them)
    bound the memory loading takes: a file that would not fit is refused.
    """
    archive, sizes, schema = _open_archive(data, file)
    with archive:
        members = [name for name in _members_read(schema, file) if name in sizes]
        _check_unpacked_size(file, 2 * sum(sizes[name] for name in members))
        inner = {name: _npz_unpacked_size(archive, name)
                 for name in set(members) if name.endswith(".npz")}
    _check_unpacked_size(file, 2 * sum(sizes[name] + inner.get(name, 0)
                                       for name in members))


def _untrusted_in(sio, data, file):
    """Types in the skops ``data`` that skops does not trust by default."""
    _check_archive(data, file)
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return set(sio.get_untrusted_types(data=data))
    except UntrustedTypesFoundException:
        raise
    except Exception as exc:  # KeyError, TypeError, ... on a malformed schema
        raise _damaged(file, exc) from exc


def _build(sio, data, file, trusted):
    """The object skops builds from ``data``, trusting the types ``trusted``."""
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.loads(data, trusted=trusted)
    except UntrustedTypesFoundException:
        raise
    except Exception as exc:  # skops', numpy's or scipy's errors on bad content
        raise _damaged(file, exc) from exc


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
        When ``file`` is not a skops file, is damaged or was tampered with:
        a zip or schema that skops cannot read (or nested more than 200
        levels deep), more data than the memory available, or a model whose
        structure is not what sknet writes (array shapes and dtypes, layers
        that do not chain, ``classes_`` that do not match the output layer,
        NaN weights, an invalid sparse matrix, invalid parameters); the
        message names the attribute.

    Notes
    -----
    The checks make a loaded model safe to use, not right: a file can hold
    other, well-formed weights than the ones you saved. Load files whose
    source you trust.

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
    model = _build(sio, data, file, sorted(found & allowed))
    try:
        check_loaded(model)
    except ValueError:
        raise
    except Exception as exc:  # a state too odd for the checks themselves
        raise _damaged(file, exc) from exc
    return model

"""Small parameter checks whose messages name the parameter and the fix.

Every check raises :class:`InvalidParameterError`, the class scikit-learn
raises for a bad parameter: it is both a ValueError and a TypeError, so
``except ValueError``, ``except TypeError`` and ``except
InvalidParameterError`` all catch it.
"""

import difflib
from numbers import Integral, Real

import numpy as np

try:  # the class scikit-learn raises for a bad parameter: a ValueError and a TypeError
    from sklearn.utils._param_validation import InvalidParameterError
except ImportError:  # pragma: no cover - the module is private and may move
    class InvalidParameterError(ValueError, TypeError):
        """A parameter of the wrong type or value (scikit-learn's own, where it has one)."""

__all__ = ["check_option", "check_real", "check_int", "check_bool",
           "check_per_layer", "check_verbose", "check_random_state_param",
           "InvalidParameterError"]


def check_option(name, value, options):
    """Raise a ValueError naming ``name`` unless ``value`` is in ``options``."""
    if isinstance(value, str) and value in options:
        return value
    msg = f"The {name!r} parameter must be one of {sorted(options)}; got {value!r}."
    if isinstance(value, str):
        close = difflib.get_close_matches(value, list(options), n=1)
        if close:
            msg += f" Did you mean {close[0]!r}?"
    raise InvalidParameterError(msg)


def check_real(name, value, low=None, high=None, closed="both", allow_none=False,
               allow_inf=False):
    """A finite real number within bounds (as scikit-learn's ``Interval(Real, ...)``).

    ``allow_inf=True`` also accepts an infinity within the bounds.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidParameterError(
            f"The {name!r} parameter must be a real number; got {value!r}.")
    if not allow_inf and np.isinf(value):
        raise InvalidParameterError(
            f"The {name!r} parameter must be a finite number; got {value!r}.")
    left = closed in ("both", "left")
    right = closed in ("both", "right")
    too_low = low is not None and (value < low if left else value <= low)
    too_high = high is not None and (value > high if right else value >= high)
    if np.isnan(value) or too_low or too_high:
        bounds = "{}{}, {}{}".format("[" if left else "(",
                                      "-inf" if low is None else low,
                                      "inf" if high is None else high,
                                      "]" if right else ")")
        raise InvalidParameterError(
            f"The {name!r} parameter must be in the range {bounds}; got {value!r}."
        )
    return float(value)


def check_int(name, value, low=None, allow_none=False, allow_inf=False):
    """An integer >= ``low`` (optionally ``numpy.inf``)."""
    if value is None and allow_none:
        return None
    if allow_inf and value == np.inf:
        return value
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidParameterError(
            f"The {name!r} parameter must be an integer; got {value!r}.")
    if low is not None and value < low:
        raise InvalidParameterError(
            f"The {name!r} parameter must be >= {low}; got {value!r}.")
    return int(value)


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(
            f"The {name!r} parameter must be True or False; got {value!r}.")
    return bool(value)


def check_per_layer(name, value, n_layers, check_one):
    """A single value for every layer, or a sequence with one per layer."""
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return [check_one(name, value)] * n_layers
    values = list(value)
    if len(values) != n_layers:
        raise InvalidParameterError(
            f"The {name!r} parameter has {len(values)} entries but the network "
            f"has {n_layers} hidden layers; give one value or one per hidden layer."
        )
    return [check_one(f"{name}[{i}]", v) for i, v in enumerate(values)]


def check_verbose(name, value):
    """scikit-learn's ``verbose``: a bool or an integer >= 0."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return check_int(name, value, 0)


def check_random_state_param(name, value):
    """scikit-learn's ``random_state``: None, an int in [0, 2**32 - 1] or a RandomState."""
    if value is None or isinstance(value, np.random.RandomState):
        return value
    if isinstance(value, Integral) and not isinstance(value, bool) \
            and 0 <= value <= 2**32 - 1:
        return value
    raise InvalidParameterError(
        f"The {name!r} parameter must be None, an int in the range [0, 4294967295] "
        f"or a numpy.random.RandomState instance; got {value!r}.")

"""scikit-learn's estimator checks over every sknet estimator.

``ESTIMATORS`` holds one instance per estimator, with init parameters that keep
the checks fast; add new estimators there. ``EXPECTED_FAILED_CHECKS`` lists, per
estimator class name, each check that is expected to fail and why.
"""

import ast
import inspect
import re
import warnings

import numpy as np
import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import estimator_checks as ec
from sklearn.utils.estimator_checks import parametrize_with_checks

from sknet import (
    AutoencoderTransformer,
    MLPClassifier,
    MLPRegressor,
    PerceptronClassifier,
    RecurrentClassifier,
    RecurrentRegressor,
)
from sknet.augment import BrightnessContrast, GaussianNoise, RandomAffine

# scikit-learn's own test suite runs its MLPs with max_iter=100.
ESTIMATORS = [
    MLPClassifier(max_iter=100, random_state=0),
    MLPRegressor(max_iter=100, random_state=0),
    # 2-D input is read as univariate sequences: one time step per column
    RecurrentClassifier(hidden_layer_sizes=(16,), cell="gru", max_iter=100,
                        learning_rate_init=0.01, random_state=0),
    RecurrentRegressor(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01,
                       random_state=0),
]

# {class name: {check name: reason}}
EXPECTED_FAILED_CHECKS = {
    "MLPClassifier": {},
    "MLPRegressor": {},
    "RecurrentClassifier": {},
    "RecurrentRegressor": {},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


# xfail_strict (scikit-learn >= 1.8) makes an expected failure that passes an error.
_STRICT = ({"xfail_strict": True}
           if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters else {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks,
                         **_STRICT)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        check(estimator)


def _extra_checks(estimator):
    """The checks parametrize_with_checks does not run by itself."""
    checks = [ec.check_dataframe_column_names_consistency]
    if is_classifier(estimator):
        checks.append(ec.check_classifier_multioutput)
    if is_regressor(estimator):
        checks.append(ec.check_regressor_multioutput)
    if hasattr(estimator, "transform"):
        checks += [
            ec.check_set_output_transform,
            ec.check_set_output_transform_pandas,
            ec.check_global_output_transform_pandas,
            ec.check_set_output_transform_polars,
            ec.check_transformer_get_feature_names_out,
            ec.check_transformer_get_feature_names_out_pandas,
            ec.check_get_feature_names_out_error,
        ]
    return checks


EXTRA = [(est, check) for est in ESTIMATORS for check in _extra_checks(est)]


@pytest.mark.parametrize("estimator, check", EXTRA,
                         ids=[f"{type(e).__name__}-{c.__name__}" for e, c in EXTRA])
def test_feature_name_and_output_checks(estimator, check):
    pytest.importorskip("pandas")
    reason = _expected_failed_checks(estimator).get(check.__name__)
    if reason is not None:
        pytest.xfail(reason)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        check(type(estimator).__name__, estimator)


def _documented_defaults(cls):
    """``{parameter: default}`` as the class docstring's Parameters section states them."""
    section = cls.__doc__.split("Parameters\n    ----------\n")[1].split("\n    Attributes\n")[0]
    out = {}
    for name, text in re.findall(r"^    (\w+) : [^\n]*?default=(.+?)\s*$", section, re.M):
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name] = text  # a name such as None reads as a literal; anything else as text
    return out


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor, RecurrentClassifier,
                                 RecurrentRegressor, AutoencoderTransformer,
                                 PerceptronClassifier, GaussianNoise, BrightnessContrast,
                                 RandomAffine], ids=lambda c: c.__name__)
def test_every_parameter_documents_its_default(cls):
    documented = _documented_defaults(cls)
    for name, param in inspect.signature(cls).parameters.items():
        if param.default is inspect.Parameter.empty:  # required: RandomAffine's image_shape
            continue
        assert name in documented, f"{cls.__name__}: {name} has no 'default=' in its docstring"
        default = param.default
        assert documented[name] == default or documented[name] == repr(default), (
            f"{cls.__name__}.{name}: the docstring says default={documented[name]!r}, "
            f"the signature {default!r}")


def _documented_attributes(cls):
    """The names the class docstring's Attributes section lists."""
    section = cls.__doc__.split("\n    Attributes\n    ----------\n")[1]
    section = re.split(r"\n    [A-Z][a-z ]+\n    -+\n", section)[0]  # up to the next section
    return set(re.findall(r"^    (\w+) : ", section, re.M))


def _small_fit(cls):
    """A fit with early stopping, which sets the validation attributes too."""
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(int) if is_classifier(cls()) else X[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(max_iter=3, early_stopping=True)
        return model.fit(X) if cls is AutoencoderTransformer else model.fit(X, y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor, RecurrentClassifier,
                                 RecurrentRegressor, AutoencoderTransformer,
                                 PerceptronClassifier], ids=lambda c: c.__name__)
def test_every_fitted_attribute_is_documented(cls):
    model = _small_fit(cls)
    fitted = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
    undocumented = fitted - _documented_attributes(cls)
    assert fitted and not undocumented, sorted(undocumented)

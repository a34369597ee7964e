"""scikit-learn's estimator checks over every sknet estimator.

``ESTIMATORS`` holds one instance per estimator, with init parameters that keep
the checks fast; add new estimators there. ``EXPECTED_FAILED_CHECKS`` lists, per
estimator class name, each check that is expected to fail and why.
"""

import inspect
import warnings

import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import estimator_checks as ec
from sklearn.utils.estimator_checks import parametrize_with_checks

from sknet import MLPClassifier, MLPRegressor, RecurrentClassifier, RecurrentRegressor

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

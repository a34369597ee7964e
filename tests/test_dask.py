"""sknet beyond one machine: joblib's dask backend and dask-ml's Incremental.

Every test runs against a ``dask.distributed.LocalCluster`` of two worker
processes on the loopback interface, started once for the module. The worker
processes are started from the same interpreter, so they import the same
sknet. The tests are marked ``dask`` (and ``slow``, so the default run skips
them); run them with::

    python -m pytest -m dask tests/test_dask.py

The two tests that run the scripts of docs/scaling.rst take about half the
time; ``-k "not scaling_page"`` leaves them out.

dask, distributed and dask-ml are imported inside the fixtures, so the default
run (which deselects these tests) does not pay for importing them, and an
environment without them skips the tests.
"""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import sknet

pytestmark = [
    pytest.mark.dask,
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

N_BLOCKS = 10
BLOCK_ROWS = 40
SCALING_PAGE = Path(__file__).resolve().parents[1] / "docs" / "scaling.rst"


# --------------------------------------------------------------------------- #
# fixtures and data                                                            #
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def client():
    """A two-process LocalCluster on 127.0.0.1 and a Client made the default."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask")
    with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def incremental_cls():
    """dask-ml's Incremental wrapper (skips the tests where dask-ml is missing)."""
    return pytest.importorskip("dask_ml.wrappers").Incremental


def _classification(n_samples=150, n_classes=2):
    return make_classification(n_samples=n_samples, n_features=6, n_informative=4,
                               n_classes=n_classes, random_state=0)


def _regression(n_samples=150):
    X, y = make_regression(n_samples=n_samples, n_features=6, noise=5.0,
                           random_state=0)
    return X, y / np.std(y)


def _sknet_class(name):
    """A public sknet estimator class, or a skip while it is not exported yet."""
    cls = getattr(sknet, name, None)
    if cls is None:
        pytest.skip(f"sknet.{name} is not exported yet")
    return cls


def _search_case(name):
    """(estimator, grid, distributions, X, y) for one kind of sknet model."""
    mlp = dict(max_iter=30, random_state=0)
    if name == "MLPClassifier":
        return (sknet.MLPClassifier(**mlp),
                {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]},
                {"alpha": loguniform(1e-5, 1.0), "hidden_layer_sizes": [(4,), (8,)]},
                *_classification())
    if name == "MLPRegressor":
        return (sknet.MLPRegressor(**mlp),
                {"alpha": [1e-4, 1e-1], "learning_rate_init": [1e-3, 1e-2]},
                {"alpha": loguniform(1e-5, 1.0),
                 "learning_rate_init": loguniform(1e-4, 1e-1)},
                *_regression())
    if name == "Pipeline":
        return (make_pipeline(StandardScaler(),
                              sknet.MLPClassifier(hidden_layer_sizes=(6,), **mlp)),
                {"mlpclassifier__alpha": [1e-4, 1e-1],
                 "mlpclassifier__activation": ["relu", "tanh"]},
                {"mlpclassifier__alpha": loguniform(1e-5, 1.0),
                 "mlpclassifier__activation": ["relu", "tanh", "logistic"]},
                *_classification(n_classes=3))
    if name == "PerceptronClassifier":
        return (_sknet_class(name)(max_iter=20, random_state=0),
                {"eta0": [0.1, 1.0], "penalty": [None, "l2"]},
                {"eta0": loguniform(1e-2, 1.0), "penalty": [None, "l2"]},
                *_classification(n_classes=3))
    X, _ = _classification()
    return (_sknet_class(name)(hidden_layer_sizes=(8,), max_iter=20, random_state=0),
            {"n_components": [2, 3], "alpha": [1e-4, 1e-1]},
            {"n_components": [2, 3], "alpha": loguniform(1e-5, 1.0)},
            X, None)


SEARCH_CASES = ["MLPClassifier", "MLPRegressor", "Pipeline", "PerceptronClassifier",
                "AutoencoderTransformer"]


def _make_search(kind, estimator, grid, distributions, n_jobs):
    if kind == "grid":
        return GridSearchCV(estimator, grid, cv=3, n_jobs=n_jobs,
                            return_train_score=True)
    return RandomizedSearchCV(estimator, distributions, n_iter=4, cv=3,
                              n_jobs=n_jobs, random_state=0, return_train_score=True)


def _assert_same_search_results(expected, actual):
    """Every score, rank and candidate of two searches agree exactly."""
    assert actual.best_params_ == expected.best_params_
    assert actual.best_index_ == expected.best_index_
    assert actual.cv_results_["params"] == expected.cv_results_["params"]
    score_keys = [k for k in expected.cv_results_
                  if k.endswith("_score") and not k.endswith("_time")]
    assert "mean_test_score" in score_keys and "split2_train_score" in score_keys
    for key in score_keys:
        np.testing.assert_array_equal(actual.cv_results_[key],
                                      expected.cv_results_[key], err_msg=key)


# --------------------------------------------------------------------------- #
# GridSearchCV / RandomizedSearchCV through joblib's dask backend              #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", ["grid", "randomized"])
@pytest.mark.parametrize("case", SEARCH_CASES)
def test_search_on_cluster_matches_sequential_search(client, case, kind):
    """A search run on the cluster's workers scores every candidate exactly as
    the same search run in this process, one fit after another.

    The workers run the same code on the same folds; distributed starts them
    with one BLAS thread each, so the sequential reference is run with one BLAS
    thread too and the floating-point results agree bit for bit.
    """
    import joblib
    from distributed import get_task_stream

    estimator, grid, distributions, X, y = _search_case(case)
    with threadpool_limits(limits=1):
        expected = _make_search(kind, estimator, grid, distributions, 1).fit(X, y)
    backend = (joblib.parallel_backend("dask") if kind == "grid"
               else joblib.parallel_config(backend="dask"))
    with get_task_stream(client) as stream, backend:
        actual = _make_search(kind, estimator, grid, distributions, -1).fit(X, y)

    ran_on = {task["worker"] for task in stream.data
              if "_fit_and_score" in str(task["key"])}
    assert ran_on, "no fit ran on the dask workers"
    assert ran_on <= set(client.scheduler_info()["workers"])
    _assert_same_search_results(expected, actual)


# --------------------------------------------------------------------------- #
# dask-ml's Incremental: partial_fit block by block over a dask array          #
# --------------------------------------------------------------------------- #
def _blocks(X, y):
    """X and y as dask arrays of N_BLOCKS row blocks of BLOCK_ROWS rows each."""
    import dask.array as da

    X_dask = da.from_array(X, chunks=(BLOCK_ROWS, X.shape[1]))
    y_dask = da.from_array(y, chunks=BLOCK_ROWS)
    assert X_dask.numblocks == (N_BLOCKS, 1) and y_dask.numblocks == (N_BLOCKS,)
    return X_dask, y_dask


def _incremental_case(name):
    """(estimator, X, y, partial_fit keyword arguments) for one model."""
    n_samples = N_BLOCKS * BLOCK_ROWS
    if name == "MLPClassifier":
        X, y = _classification(n_samples, n_classes=3)
        return (sknet.MLPClassifier(hidden_layer_sizes=(8,), batch_size=16,
                                    random_state=0), X, y, {"classes": [0, 1, 2]})
    if name == "MLPRegressor":
        X, y = _regression(n_samples)
        return (sknet.MLPRegressor(hidden_layer_sizes=(8,), batch_size=16,
                                   random_state=0), X, y, {})
    X, y = _classification(n_samples, n_classes=3)
    return _sknet_class(name)(random_state=0), X, y, {"classes": [0, 1, 2]}


def _partial_fit_in_order(estimator, X, y, order, fit_params):
    """The reference: a fresh clone fed the blocks one by one in ``order``."""
    model = clone(estimator)
    for i in order:
        rows = slice(i * BLOCK_ROWS, (i + 1) * BLOCK_ROWS)
        model.partial_fit(X[rows], y[rows], **fit_params)
    return model


def _weights(model):
    if hasattr(model, "coefs_"):
        return list(model.coefs_) + list(model.intercepts_)
    return [model.coef_, model.intercept_]


def _assert_same_model(expected, actual, X):
    for w_expected, w_actual in zip(_weights(expected), _weights(actual), strict=True):
        np.testing.assert_array_equal(w_actual, w_expected)
    np.testing.assert_array_equal(actual.predict(X), expected.predict(X))


INCREMENTAL_CASES = ["MLPClassifier", "MLPRegressor", "PerceptronClassifier"]


@pytest.mark.parametrize("case", INCREMENTAL_CASES)
def test_incremental_in_block_order_equals_sequential_partial_fit(
        client, incremental_cls, case):
    """With ``shuffle_blocks=False`` Incremental calls ``partial_fit`` on blocks
    0, 1, ..., 9 in turn, on the cluster: the same model as doing it by hand."""
    from distributed import get_task_stream

    estimator, X, y, fit_params = _incremental_case(case)
    X_dask, y_dask = _blocks(X, y)
    with get_task_stream(client) as stream:
        wrapper = incremental_cls(estimator, shuffle_blocks=False).fit(
            X_dask, y_dask, **fit_params)
    assert any("fit-" in str(task["key"]) for task in stream.data)

    expected = _partial_fit_in_order(estimator, X, y, range(N_BLOCKS), fit_params)
    _assert_same_model(expected, wrapper.estimator_, X)
    np.testing.assert_array_equal(wrapper.predict(X_dask).compute(),
                                  expected.predict(X))
    if case.startswith("MLP"):
        # one epoch per call: every sample is seen once, one loss per block
        assert wrapper.estimator_.t_ == N_BLOCKS * BLOCK_ROWS
        assert len(wrapper.estimator_.loss_curve_) == N_BLOCKS


def test_incremental_shuffled_blocks_follow_random_state(client, incremental_cls):
    """With ``shuffle_blocks=True`` the block order is drawn from Incremental's
    ``random_state`` (a ``numpy.random.RandomState`` shuffle of the block
    indices): fixing it makes the fit reproducible, and the model is the one
    partial_fit gives on the blocks in that order."""
    estimator, X, y, fit_params = _incremental_case("MLPClassifier")
    X_dask, y_dask = _blocks(X, y)
    order = list(range(N_BLOCKS))
    np.random.RandomState(7).shuffle(order)
    assert order != sorted(order)

    def fit():
        wrapper = incremental_cls(estimator, shuffle_blocks=True, random_state=7)
        return wrapper.fit(X_dask, y_dask, **fit_params).estimator_

    first, second = fit(), fit()
    _assert_same_model(first, second, X)
    expected = _partial_fit_in_order(estimator, X, y, order, fit_params)
    _assert_same_model(expected, first, X)
    in_order = _partial_fit_in_order(estimator, X, y, range(N_BLOCKS), fit_params)
    assert not np.array_equal(in_order.coefs_[0], first.coefs_[0])


# --------------------------------------------------------------------------- #
# the scripts of docs/scaling.rst                                              #
# --------------------------------------------------------------------------- #
def _page_script(caption):
    """The code block of docs/scaling.rst captioned ``caption``, as a script."""
    if not SCALING_PAGE.exists():
        pytest.skip(f"{SCALING_PAGE} is not there (not a source checkout)")
    lines = SCALING_PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"   :caption: {caption}") + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith("   "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


def _run_page_script(caption, address, tmp_path):
    """Run the page's script as a file against the cluster at ``address``."""
    script = tmp_path / caption
    script.write_text(_page_script(caption), encoding="utf-8")
    assert 'if __name__ == "__main__":' in script.read_text(encoding="utf-8")
    result = subprocess.run([sys.executable, str(script), address], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_scaling_page_search_script_runs_on_cluster(client, tmp_path):
    """The page's search script, run as a file against a running cluster,
    finds a network that reads digits well (scikit-learn's own MLP on this
    split scores above 0.95)."""
    out = _run_page_script("search_on_dask.py", client.scheduler.address, tmp_path)
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert accuracy > 0.9, out


def test_scaling_page_incremental_script_runs_on_cluster(client, incremental_cls,
                                                         tmp_path):
    """The page's Incremental script makes three passes over 100,000 rows and
    learns the XOR target, which no linear model can (it would score ~0.5)."""
    out = _run_page_script("incremental_on_dask.py", client.scheduler.address,
                           tmp_path)
    assert "samples seen: 300000" in out, out
    accuracies = [float(a) for a in re.findall(r"test accuracy ([0-9.]+)", out)]
    assert len(accuracies) == 3 and accuracies[-1] > 0.95, out

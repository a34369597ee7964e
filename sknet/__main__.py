"""``python -m sknet``: train sknet's estimators on the digits, beside scikit-learn."""

import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

import sknet


def _timed_fit(estimator, X, y):
    """Seconds to fit, on one thread for every estimator alike.

    Every BLAS and OpenMP library is held to one thread (sknet's split steps
    included), so that no time is inflated by threads competing on a busy
    machine and none gains from the cores another does not use.
    """
    start = time.perf_counter()
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return time.perf_counter() - start


def _pixel_rows(X):
    """Each 8 x 8 digit as a sequence of its 8 rows of 8 pixels."""
    return X.reshape(len(X), 8, 8)


def _rows():
    """(name, estimator) pairs compared on the same split."""
    yield "scikit-learn MLPClassifier", SklearnMLPClassifier(random_state=0)
    yield "sknet MLPClassifier", sknet.MLPClassifier(random_state=0)
    yield ("sknet MLPClassifier (elu, dropout)",
           sknet.MLPClassifier(activation="elu", dropout=0.1, random_state=0))
    yield "sknet PerceptronClassifier", sknet.PerceptronClassifier(random_state=0)
    yield ("sknet AutoencoderTransformer(16) + LogisticRegression",
           make_pipeline(sknet.AutoencoderTransformer(n_components=16, random_state=0),
                         LogisticRegression(max_iter=1000)))
    yield ("sknet RecurrentClassifier (GRU, rows as 8 time steps)",
           make_pipeline(FunctionTransformer(_pixel_rows),
                         sknet.RecurrentClassifier(cell="gru", random_state=0)))


def main():
    """Print accuracy and fit time of each estimator on one digits split."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    split = train_test_split(X, y, test_size=0.25, random_state=0)
    X_train, X_test, y_train, y_test = split
    print(f"sknet {sknet.__version__} on load_digits "
          f"({len(X_train)} train / {len(X_test)} test images)\n")
    print("Every fit runs on one thread (BLAS and OpenMP), scikit-learn's too. Training the "
          "six models takes a few seconds; each row prints when its model is trained.\n",
          flush=True)
    print(f"{'estimator':<56}{'accuracy':>10}{'fit (s)':>10}", flush=True)
    for name, est in _rows():
        seconds = _timed_fit(est, X_train, y_train)
        print(f"{name:<56}{est.score(X_test, y_test):>10.4f}{seconds:>10.2f}", flush=True)


if __name__ == "__main__":
    main()

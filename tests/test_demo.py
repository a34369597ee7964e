"""``python -m sknet``: a fair comparison that says what it is doing."""

import subprocess
import sys

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from threadpoolctl import threadpool_info, threadpool_limits

import sknet.__main__ as demo


class _ThreadRecorder(ClassifierMixin, BaseEstimator):
    """Records the BLAS and OpenMP thread counts in force while it fits."""

    def fit(self, X, y):
        self.threads_ = [p["num_threads"] for p in threadpool_info()
                         if p["user_api"] in ("blas", "openmp")]
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_every_row_fits_on_one_thread_and_the_first_line_comes_first(
        monkeypatch, capsys):
    recorders = [_ThreadRecorder(), _ThreadRecorder()]
    monkeypatch.setattr(demo, "_rows", lambda: iter(
        [("scikit-learn stand-in", recorders[0]), ("sknet stand-in", recorders[1])]))
    with threadpool_limits(limits=2):  # the suite runs with one BLAS thread
        demo.main()
    out = capsys.readouterr().out
    for rec in recorders:
        assert rec.threads_ and set(rec.threads_) == {1}
    lines = out.splitlines()
    assert any("one thread (BLAS and OpenMP)" in line for line in lines)
    # the announcement precedes the table's first row
    first_row = next(i for i, line in enumerate(lines) if "stand-in" in line)
    assert any("one thread (BLAS and OpenMP)" in line for line in lines[:first_row])


def test_python_m_sknet_prints_the_six_rows_of_the_readme():
    # the README's first command, as a user runs it: the module's __main__ guard,
    # the table, and sknet's MLP at scikit-learn's accuracy on the same split
    out = subprocess.run([sys.executable, "-m", "sknet"], capture_output=True, text=True,
                         check=True, timeout=600).stdout
    rows = {line[:56].strip(): float(line[56:66]) for line in out.splitlines()
            if line[56:66].strip().replace(".", "", 1).isdigit()}
    assert list(rows) == [name for name, _ in demo._rows()]
    # the same weights to rounding: at most one of the 450 test images apart
    assert abs(rows["sknet MLPClassifier"] - rows["scikit-learn MLPClassifier"]) < 1 / 450 + 1e-4
    assert rows["sknet MLPClassifier"] > 0.95
    assert min(rows.values()) > 0.9

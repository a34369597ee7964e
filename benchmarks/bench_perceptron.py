"""Time sknet's Perceptron against scikit-learn's on the same work.

Both estimators get the same data, in the same order, with the same
parameters (scikit-learn's defaults: tol=1e-3, n_iter_no_change=5, shuffle
with random_state=0), so they make the same updates and end with the same
weights; the script checks that and prints the largest weight difference.
Both loops are compiled (scikit-learn's ``_plain_sgd`` and sknet's
``PerceptronUnit.epoch``), one sample at a time without the GIL. The repeats are interleaved (A B A B ...) because the machine's
speed drifts; printed per workload: the median fit time of each, the median
of the paired ratios sknet / scikit-learn (with its range), the epochs, and
the train and test accuracy.

Workloads
---------
separable     dense 60,000 x 784 (float64), labels of a random hyperplane with
              a little noise in the score: nearly separable (~97 % train accuracy)
noisy         the same features, much more noise in the score: far from
              separable (~68 %)
text          sparse CSR 60,000 x 50,000, ~60 Zipf-distributed terms a row,
              log counts, rows L2-normalised; labels of a random hyperplane
              with 2 % flipped
tenclass      dense 100,000 x 5, ten classes from ten random directions (one
              unit per class); also with n_jobs=2 for both (``tenclass-2jobs``)
digits        scikit-learn's load_digits (1,797 x 64, ten classes)

A last table times sknet alone: two perceptrons fitted at once in two
threads against one fitted alone (on ``noisy``'s features with fewer rows),
which shows the epochs releasing the GIL.

Run ``python benchmarks/bench_perceptron.py`` (about two minutes) or
``--quick`` for a smoke run on smaller sets.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    environment_lines,
    format_table,
    interleaved,
    linear_teacher,
    median,
    paired_ratio,
    text_like,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------- #
# data                                                                     #
# ---------------------------------------------------------------------- #
def hyperplane_dense(n, n_features, noise, seed=0):
    """Gaussian rows labelled by a random hyperplane, ``noise`` added to the score."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features))
    w = rng.standard_normal(n_features) / np.sqrt(n_features)
    y = (X @ w + noise * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y


def labelled_text(n, n_features, flip=0.02, seed=1):
    """Text-like CSR rows (float64) with labels from a linear teacher, ``flip`` flipped."""
    X = text_like(n, n_features, seed=seed).astype(np.float64)
    return X, linear_teacher(X, flip, seed=seed + 1)


def make_workloads(quick):
    n_train, n_test = (10_000, 2_000) if quick else (60_000, 10_000)
    n_features = 784
    out = {}
    for name, noise in (("separable", 0.05), ("noisy", 1.0)):
        X, y = hyperplane_dense(n_train + n_test, n_features, noise)
        out[name] = (X[:n_train], y[:n_train], X[n_train:], y[n_train:])
    X, y = labelled_text(n_train + n_test, 10_000 if quick else 50_000)
    out["text"] = (X[:n_train], y[:n_train], X[n_train:], y[n_train:])
    n_ten = 20_000 if quick else 100_000
    X, y = ten_classes(n_ten + n_test)
    out["tenclass"] = out["tenclass-2jobs"] = (X[:n_ten], y[:n_ten], X[n_ten:], y[n_ten:])
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    out["digits"] = (X, y, X, y)
    return out


def ten_classes(n, n_features=5, seed=2):
    """Gaussian rows, the class of the largest of ten random projections (plus noise)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features))
    scores = X @ rng.standard_normal((n_features, 10)) + 0.3 * rng.standard_normal((n, 10))
    return X, scores.argmax(axis=1)


# ---------------------------------------------------------------------- #
# runs                                                                     #
# ---------------------------------------------------------------------- #
def runner(make_estimator, data, fitted):
    X, y, X_test, y_test = data

    def run(_round):
        est = make_estimator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - start
        fitted.append(est)
        return {"seconds": seconds, "n_iter": est.n_iter_,
                "train": est.score(X, y), "test": est.score(X_test, y_test)}

    return run


def bench(name, data, repeats, params, verbose):
    from sklearn.linear_model import Perceptron as SkPerceptron

    from sknet._perceptron import Perceptron

    fitted = {"sknet": [], "scikit-learn": []}
    runners = {
        "sknet": runner(lambda: Perceptron(**params), data, fitted["sknet"]),
        "scikit-learn": runner(lambda: SkPerceptron(**params), data, fitted["scikit-learn"]),
    }
    progress = (lambda msg: print(f"  {name}: {msg}", flush=True)) if verbose else None
    results = interleaved(runners, repeats, progress=progress)
    ours, theirs = fitted["sknet"][-1], fitted["scikit-learn"][-1]
    diff = float(np.max(np.abs(ours.coef_ - theirs.coef_)))
    diff = max(diff, float(np.max(np.abs(ours.intercept_ - theirs.intercept_))))
    return results, diff


def table_rows(name, data, results, diff):
    X = data[0]
    kind = "CSR %.2f%% nnz" % (100.0 * X.nnz / np.prod(X.shape)) if sp.issparse(X) else "dense"
    ours = [r["seconds"] for r in results["sknet"]]
    theirs = [r["seconds"] for r in results["scikit-learn"]]
    ratio, lo, hi = paired_ratio(ours, theirs)
    rows = []
    for impl in ("sknet", "scikit-learn"):
        runs = results[impl]
        rows.append([
            name if impl == "sknet" else "",
            impl,
            f"{X.shape[0]}x{X.shape[1]} {kind}" if impl == "sknet" else "",
            "%.3f" % median([r["seconds"] for r in runs]),
            ("%.2f (%.2f-%.2f)" % (ratio, lo, hi)) if impl == "sknet" else "1",
            str(runs[-1]["n_iter"]),
            "%.4f" % runs[-1]["train"],
            "%.4f" % runs[-1]["test"],
            ("%.1e" % diff) if impl == "sknet" else "",
        ])
    return rows


def thread_rows(data, repeats):
    """sknet alone: one perceptron fitted, then two fitted at once in two threads."""
    import threading

    from sknet._perceptron import Perceptron

    X, y = data[0][:20_000], data[1][:20_000]
    params = dict(random_state=0, tol=None, max_iter=20, stop_on_no_mistakes=False)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Perceptron(**params).fit(X, y)

    def one(_round):
        start = time.perf_counter()
        fit()
        return {"seconds": time.perf_counter() - start}

    def two(_round):
        threads = [threading.Thread(target=fit) for _ in range(2)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"seconds": time.perf_counter() - start}

    results = interleaved({"one": one, "two": two}, repeats)
    ones = [r["seconds"] for r in results["one"]]
    twos = [r["seconds"] for r in results["two"]]
    ratio, lo, hi = paired_ratio(twos, ones)
    return [["1 fit, 1 thread", "%.3f" % median(ones), "1"],
            ["2 fits, 2 threads", "%.3f" % median(twos), "%.2f (%.2f-%.2f)" % (ratio, lo, hi)]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sets, 2 repeats")
    p.add_argument("--repeats", type=int, default=None, help="rounds (default 3, quick 2)")
    names = ["separable", "noisy", "text", "tenclass", "tenclass-2jobs", "digits"]
    p.add_argument("--workload", nargs="+", default=names, choices=names)
    p.add_argument("--no-threads", action="store_true", help="skip the two-thread table")
    p.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    p.add_argument("--verbose", action="store_true", help="print every run")
    args = p.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)

    import scipy
    import sklearn

    versions = {"numpy": np.__version__, "scipy": scipy.__version__,
                "scikit-learn": sklearn.__version__}
    for line in environment_lines(REPO_ROOT, versions):
        print(line)
    params = {"random_state": 0}
    print(f"parameters: scikit-learn's defaults, {params}; {repeats} interleaved rounds")
    start = time.perf_counter()
    workloads = make_workloads(args.quick)
    print("data built in %.1f s" % (time.perf_counter() - start))
    rows = []
    for name in args.workload:
        extra = {"n_jobs": 2} if name.endswith("2jobs") else {}
        results, diff = bench(name, workloads[name], repeats, {**params, **extra},
                              args.verbose)
        rows += table_rows(name, workloads[name], results, diff)
    header = ["workload", "impl", "data", "fit s (median)", "ratio to sklearn",
              "epochs", "train acc", "test acc", "max |w diff|"]
    print()
    print(format_table(header, rows, markdown=args.markdown))
    print("\nratio: median over rounds of sknet time / scikit-learn time in the same "
          "round (min-max)")
    if not args.no_threads:
        print()
        print(format_table(["sknet on noisy[:20000], 20 epochs", "fit s (median)",
                            "ratio to one"], thread_rows(workloads["noisy"], repeats),
                           markdown=args.markdown))
    print("total %.0f s" % (time.perf_counter() - start))


if __name__ == "__main__":
    main()

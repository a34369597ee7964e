"""Time onnxruntime on sknet's ONNX export against sknet and scikit-learn predicting.

One network, three ways to get its probabilities: sknet's ``predict_proba``,
scikit-learn's ``MLPClassifier.predict_proba`` on a network trained the same
way (same data, parameters and ``random_state``: the same weights, which the
script checks), and onnxruntime running ``sknet.onnx``'s export of sknet's
model. The network is the ``digits`` workload of ``bench_mlp.py``:
``load_digits`` / 16, a 75/25 stratified split, hidden ``(100,)``, relu,
Adam, 200 epochs.

Two workloads: one row (a served model answering one request) and 10,000
rows (the test rows repeated). A timed run is ``number`` calls in a row,
divided by ``number`` (one call of one row is tens of microseconds, below a
clock's useful resolution on a busy machine). The runs are interleaved,
round after round, in a rotating order; printed per workload: the median
time per call, the median over rounds of each time divided by sknet's in
the same round (with its range; above 1 means sknet is faster), and the
rows per second.

Needs the onnx extra (``pip install -e ".[onnx]"``). Run
``python benchmarks/bench_onnx.py`` (about a minute), ``--quick`` for a smoke
run, ``--threads 1`` to run every library on one thread.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    environment_lines,
    format_table,
    interleaved,
    median,
    paired_ratio,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # the sknet of this checkout
IMPLS = ("sknet", "scikit-learn", "onnxruntime")


# ---------------------------------------------------------------------- #
# models                                                                   #
# ---------------------------------------------------------------------- #
def fitted_models(dtype, epochs):
    """sknet's and scikit-learn's digits networks, and the digits test rows."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    from sknet import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.25, stratify=y,
                                                   random_state=0)
    params = dict(hidden_layer_sizes=(100,), max_iter=epochs, tol=0.0,
                  n_iter_no_change=epochs, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the epochs are fixed
        ours = MLPClassifier(**params).fit(X_train, y_train)
        theirs = SkMLPClassifier(**params).fit(X_train, y_train)
    return ours, theirs, X_test


def onnx_session(model, X, threads):
    import onnxruntime as ort

    from sknet.onnx import to_onnx

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    onx = to_onnx(model, X, options={"zipmap": False})
    return ort.InferenceSession(onx.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def predictors(ours, theirs, session):
    """name -> ``predict(X) -> probabilities``."""
    return {
        "sknet": ours.predict_proba,
        "scikit-learn": theirs.predict_proba,
        "onnxruntime": lambda X: session.run(["probabilities"], {"X": X})[0],
    }


# ---------------------------------------------------------------------- #
# runs                                                                     #
# ---------------------------------------------------------------------- #
def runner(predict, X, number):
    def run(_round):
        predict(X)  # warm: the first call after another library's may pay for caches
        start = time.perf_counter()
        for _ in range(number):
            predict(X)
        return {"seconds": (time.perf_counter() - start) / number}

    return run


def workloads(X_test, quick):
    n_many = 2_000 if quick else 10_000
    many = np.ascontiguousarray(np.resize(X_test, (n_many, X_test.shape[1])))
    one = np.ascontiguousarray(X_test[:1])
    # (name, rows, calls per timed run)
    return [("1 row", one, 200 if quick else 2_000), (f"{n_many:,} rows", many, 5 if quick else 20)]


def check(predict, ours, theirs, X):
    """Largest differences: onnxruntime vs sknet, scikit-learn vs sknet (probabilities)."""
    P = predict["sknet"](X)
    return (float(np.abs(predict["onnxruntime"](X) - P).max()),
            float(np.abs(predict["scikit-learn"](X) - P).max()),
            float(max(np.abs(a - b).max() for a, b in zip(ours.coefs_, theirs.coefs_))))


def table_rows(dtype, name, X, results):
    base = [r["seconds"] for r in results["sknet"]]
    rows = []
    for impl in IMPLS:
        times = [r["seconds"] for r in results[impl]]
        ratio, lo, hi = paired_ratio(times, base)
        t = median(times)
        rows.append([f"{name} ({np.dtype(dtype).name})" if impl == "sknet" else "", impl,
                     "%.1f" % (t * 1e6), "%.2f (%.2f-%.2f)" % (ratio, lo, hi),
                     "{:,.0f}".format(X.shape[0] / t)])
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="2,000 rows, fewer calls, 3 rounds, 20 epochs")
    p.add_argument("--repeats", type=int, default=None, help="rounds (default 7, quick 3)")
    p.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=0,
                   help="threads of every library (BLAS and onnxruntime); 0: their defaults")
    p.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    p.add_argument("--verbose", action="store_true", help="print every run")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)

    import onnx
    import onnxruntime
    import scipy
    import skl2onnx
    import sklearn
    from threadpoolctl import threadpool_limits

    versions = {"numpy": np.__version__, "scipy": scipy.__version__,
                "scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__,
                "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    for line in environment_lines(REPO_ROOT, versions):
        print(line)
    threads = args.threads or "library defaults"
    print(f"threads: {threads}; {repeats} interleaved rounds")
    start = time.perf_counter()
    rows, notes = [], []
    limits = threadpool_limits(args.threads, user_api="blas") if args.threads else None
    try:
        for dtype in [np.dtype(d).type for d in args.dtype]:
            ours, theirs, X_test = fitted_models(dtype, 20 if args.quick else 200)
            predict = predictors(ours, theirs, onnx_session(ours, X_test, args.threads))
            onnx_diff, sk_diff, w_diff = check(predict, ours, theirs, X_test)
            notes.append(f"{np.dtype(dtype).name}: largest |probability - sknet's| "
                         f"onnxruntime {onnx_diff:.1e}, scikit-learn {sk_diff:.1e} "
                         f"(weights differ by {w_diff:.1e})")
            for name, X, number in workloads(X_test, args.quick):
                runners = {impl: runner(predict[impl], X, number) for impl in IMPLS}
                progress = (lambda msg, n=name: print(f"  {n}: {msg}", flush=True)) \
                    if args.verbose else None
                results = interleaved(runners, repeats, pause=0.1, progress=progress)
                rows += table_rows(dtype, name, X, results)
    finally:
        if limits is not None:
            limits.restore_original_limits()
    header = ["workload", "impl", "us per call", "t/t(sknet)", "rows/s"]
    print()
    print(format_table(header, rows, markdown=args.markdown))
    print()
    for note in notes:
        print("note: " + note)
    print("t/t(sknet): median over rounds of the time divided by sknet's in the same round "
          "(min-max); above 1 means sknet is faster. Total %.0f s"
          % (time.perf_counter() - start))


if __name__ == "__main__":
    main()

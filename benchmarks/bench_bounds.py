"""How much of a training step is work that no implementation can skip.

For each workload and dtype three runs are interleaved, round by round:
scikit-learn's MLPClassifier, sknet's, and a bare loop that does only the
step's necessary work, with the same numpy and BLAS:

* gathering the batch's rows from X (shuffled order);
* the matrix products: the forward pass, the weight gradients and the deltas
  passed down (none below the first layer), with the BLAS threads sknet's fit
  uses for this network;
* Adam's square root and division over every parameter: the two element-wise
  operations that run on the processor's divider, at a fixed cost per element.

Everything else a step does (bias additions, activations and their
derivatives, softmax and the loss, the L2 term, the rest of Adam's passes over
the parameters, Python) is overhead that careful code can shrink but not
remove. Printed per workload: milliseconds per step of each run, the speed-ups
over scikit-learn of sknet and of the bare loop (the most any implementation
doing the same arithmetic could reach), and, for a speed-up target F, the
overhead per step sknet may have (scikit-learn / F - bare loop) next to the
overhead it has (sknet - bare loop), each taken per round and then the median
over rounds.

Run ``python benchmarks/bench_bounds.py`` (about three minutes), or
``--workload digits --dtype float64 --repeats 9``.
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from sknet._base import SMALL_PRODUCT_FLOPS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import environment_lines, format_table, interleaved, median, paired_ratio  # noqa: E402
from bench_mlp import (  # noqa: E402
    BY_NAME,
    REPO_ROOT,
    Datasets,
    Sizes,
    _quiet,
    mlp_params,
)

# workload -> (epochs per run, the speed-up target over scikit-learn, or None)
SETTINGS = {"mnist": (2, 1.5), "digits": (50, 2.5), "digits-b32": (10, 2.5),
            "mnist-b1024": (2, None)}


class BareStep:
    """The necessary work of one Adam mini-batch step, and nothing else."""

    def __init__(self, X, units, batch, dtype, seed=0):
        rng = np.random.default_rng(seed)
        self.X = X
        self.batch = batch
        self.W = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / (a + b))).astype(dtype)
                  for a, b in zip(units[:-1], units[1:])]
        self.acts = [np.empty((batch, u), dtype) for u in units[1:]]
        self.grads = [np.empty_like(W) for W in self.W]
        self.xb = np.empty((batch, units[0]), dtype)
        self._views = {}  # batch rows -> (xb, activations), cut once
        n_params = sum(W.size + W.shape[1] for W in self.W)
        self.m = rng.standard_normal(n_params).astype(dtype)
        self.v = rng.random(n_params).astype(dtype)
        self.out = np.empty(n_params, dtype)
        largest = max(2.0 * batch * a * b for a, b in zip(units[:-1], units[1:]))
        self.threads = 1 if largest < SMALL_PRODUCT_FLOPS else None

    def _rows(self, n):
        """The batch buffer and the activations cut to ``n`` rows."""
        if n not in self._views:
            self._views[n] = (self.xb[:n], [a[:n] for a in self.acts])
        return self._views[n]

    def epoch(self, order):
        X, W, grads = self.X, self.W, self.grads
        last = len(W) - 1
        for start in range(0, X.shape[0], self.batch):
            idx = order[start:start + self.batch]
            xb, acts = self._rows(idx.size)
            X.take(idx, axis=0, out=xb, mode="clip")
            inputs = [xb, *acts[:-1]]
            for a, w, z in zip(inputs, W, acts):
                np.matmul(a, w, out=z)
            delta = acts[last]
            for i in range(last, -1, -1):
                np.matmul(inputs[i].T, delta, out=grads[i])
                if i > 0:  # the delta below overwrites that layer's activations
                    delta = np.matmul(delta, W[i].T, out=acts[i - 1])
            np.sqrt(self.v, out=self.out)
            np.divide(self.m, self.out, out=self.out)

    def run(self, epochs, seed):
        order = np.random.default_rng(seed).permutation(self.X.shape[0])
        with threadpool_limits(self.threads):
            for _ in range(epochs):
                self.epoch(order)


def _timed(fn):
    start = time.perf_counter()
    fn()
    return {"seconds": time.perf_counter() - start}


def run_workload(name, dtype, datasets, repeats, log):
    from sklearn.neural_network import MLPClassifier as SkMLP

    from sknet import MLPClassifier
    w = BY_NAME[name]
    epochs, floor = SETTINGS[name]
    X, y, _, _ = datasets.get(w.data, dtype)
    batch = min(200 if w.batch == "auto" else w.batch, X.shape[0])
    units = [X.shape[1], *w.hidden, len(np.unique(y))]
    bare = BareStep(X, units, batch, dtype)
    steps = epochs * -(-X.shape[0] // batch)
    runners = {
        "scikit-learn": lambda r: _timed(lambda: _quiet(
            SkMLP(**mlp_params(w, r, epochs)).fit, X, y)),
        "sknet": lambda r: _timed(lambda: _quiet(
            MLPClassifier(**mlp_params(w, r, epochs)).fit, X, y)),
        "bare loop": lambda r: _timed(lambda: bare.run(epochs, r)),
    }
    for runner in runners.values():  # warm up: imports, BLAS threads, caches
        runner(0)
    res = interleaved(runners, repeats, progress=log)
    secs = {k: [r["seconds"] for r in v] for k, v in res.items()}
    ms = {k: 1e3 * median(v) / steps for k, v in secs.items()}
    sk_sknet = paired_ratio(secs["scikit-learn"], secs["sknet"])
    sk_bare = paired_ratio(secs["scikit-learn"], secs["bare loop"])
    row = [f"{name} {dtype}", f"{ms['scikit-learn']:.3f}", f"{ms['sknet']:.3f}",
           f"{ms['bare loop']:.3f}",
           f"{sk_sknet[0]:.2f} ({sk_sknet[1]:.2f}-{sk_sknet[2]:.2f})",
           f"{sk_bare[0]:.2f} ({sk_bare[1]:.2f}-{sk_bare[2]:.2f})"]
    # per round (runs that ran next to each other), then the median
    overhead = [a - b for a, b in zip(secs["sknet"], secs["bare loop"])]
    row += [f"{floor}x" if floor else "-"]
    if floor:
        allowed = [a / floor - b for a, b in zip(secs["scikit-learn"], secs["bare loop"])]
        row.append(f"{1e3 * median(allowed) / steps:.3f}")
    else:
        row.append("-")
    row.append(f"{1e3 * median(overhead) / steps:.3f}")
    return row


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", nargs="+", default=["mnist", "digits"],
                   choices=list(SETTINGS))
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"],
                   choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--verbose", action="store_true", help="print every run")
    return p.parse_args(argv)


def main(argv=None):
    import sklearn

    args = parse_args(argv)
    versions = {"numpy": np.__version__, "scikit-learn": sklearn.__version__}
    print("\n".join(environment_lines(REPO_ROOT, versions)), flush=True)
    log = (lambda msg: print(msg, flush=True)) if args.verbose else None
    datasets = Datasets(Sizes())
    rows = [run_workload(name, dtype, datasets, args.repeats, log)
            for dtype in args.dtype for name in args.workload]
    header = ["workload", "sklearn ms/step", "sknet ms/step", "bare ms/step",
              "sknet speed-up", "bare speed-up", "target", "overhead allowed ms",
              "sknet overhead ms"]
    print()
    print(format_table(header, rows, markdown=args.markdown))
    print("\nspeed-ups: scikit-learn's time over each, median (range) over the rounds; "
          "overheads: time per step beyond the bare loop's in the same round, median "
          "over the rounds.")


if __name__ == "__main__":
    main()

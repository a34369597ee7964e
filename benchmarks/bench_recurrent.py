"""Time sknet's recurrent classifier against PyTorch on the CPU, on the same work.

Both train the same network (one ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` layer,
then ``nn.Linear`` on the last step's state; sknet's ``RecurrentClassifier``
with ``cell=...``) with Adam (lr 1e-3, no weight decay), the same batch size,
the same number of epochs (nobody stops early) and shuffling, on the same
sequences: 64 per batch, 50 steps of 16 features. The repeats are interleaved
(A B, B A, ...) because the machine's speed drifts. Printed per cell and
width: the median fit time, the ratio PyTorch / sknet (paired per round;
above 1 means sknet is faster), the test accuracy of each, and the peak
memory of one fit (RSS growth in a fresh process; tracemalloc for sknet),
and how the two cores ran one thread's matrix products just before and after
the runs (``_common.core_speeds``: near 1 on two free cores).

    python benchmarks/bench_recurrent.py                 # every cell, H = 64 and 128
    python benchmarks/bench_recurrent.py --cell lstm --hidden 64 --repeats 7

To compare two revisions, run it once per checkout with that checkout first on
the path (its compiled kernels built in place); the header names the sknet
measured, and the paired ratios to PyTorch make the two runs comparable:

    git worktree add /tmp/sknet-before <commit>   # then build its kernels there
    PYTHONPATH=/tmp/sknet-before python benchmarks/bench_recurrent.py
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    core_speeds,
    core_speeds_line,
    environment_lines,
    format_table,
    interleaved,
    median,
    paired_ratio,
    peak_rss_bytes,
    tracemalloc_peak_bytes,
)

N_STEPS, N_FEATURES, N_CLASSES, BATCH, LR = 50, 16, 4, 64, 1e-3


def sequences(n, seed):
    """Noisy sequences whose class is set by a pattern at a random step.

    Each sequence carries one of ``N_CLASSES`` fixed 16-dimensional patterns,
    added at a random step among standard normal noise: the network must
    carry what it saw across the rest of the sequence.
    """
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(1234).normal(size=(N_CLASSES, N_FEATURES)) * 1.5
    X = rng.normal(size=(n, N_STEPS, N_FEATURES)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n)
    at = rng.integers(0, N_STEPS, n)
    X[np.arange(n), at] += patterns[y]
    return X, y


def fit_sknet(cell, hidden, X, y, epochs, seed):
    from sknet import RecurrentClassifier

    clf = RecurrentClassifier(hidden_layer_sizes=(hidden,), cell=cell, batch_size=BATCH,
                              learning_rate_init=LR, alpha=0.0, max_iter=epochs, tol=0.0,
                              n_iter_no_change=epochs, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    return lambda X_: clf.predict(X_)


def fit_torch(cell, hidden, X, y, epochs, seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](
        N_FEATURES, hidden, batch_first=True)
    head = nn.Linear(hidden, N_CLASSES)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=LR)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for start in range(0, len(Xt), BATCH):
            idx = order[start:start + BATCH]
            out, _ = rnn(Xt[idx])
            loss = loss_fn(head(out[:, -1]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    def predict(X_):
        with torch.no_grad():
            out, _ = rnn(torch.from_numpy(X_))
            return head(out[:, -1]).argmax(1).numpy()

    return predict


IMPLS = {"sknet": fit_sknet, "pytorch": fit_torch}


def run_one(impl, cell, hidden, data, epochs, seed):
    X, y, X_te, y_te = data
    start = time.perf_counter()
    predict = IMPLS[impl](cell, hidden, X, y, epochs, seed)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "score": float(np.mean(predict(X_te) == y_te))}


def memory_child(spec):
    """In a fresh process: the peak memory of one short fit."""
    impl, cell, hidden, n = spec["impl"], spec["cell"], spec["hidden"], spec["n"]
    X, y = sequences(n, 0)
    __import__("sknet" if impl == "sknet" else "torch")  # imports are not the fit's memory
    out = {"rss": peak_rss_bytes(lambda: IMPLS[impl](cell, hidden, X, y, 1, 0))}
    if impl == "sknet":
        out["tracemalloc"] = tracemalloc_peak_bytes(
            lambda: IMPLS[impl](cell, hidden, X, y, 1, 0))
    print(json.dumps(out))


def memory(impl, cell, hidden, n):
    spec = json.dumps(dict(impl=impl, cell=cell, hidden=hidden, n=n))
    proc = subprocess.run([sys.executable, __file__, "--_child", spec], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", nargs="+", default=["rnn", "lstm", "gru"])
    p.add_argument("--hidden", nargs="+", type=int, default=[64, 128])
    p.add_argument("--n", type=int, default=2048, help="training sequences")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both: torch.set_num_threads, and a BLAS and OpenMP "
                        "limit for sknet")
    p.add_argument("--no-memory", dest="memory", action="store_false")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        return memory_child(json.loads(args._child))
    import torch
    from threadpoolctl import threadpool_limits

    import sknet

    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)  # BLAS and OpenMP (sknet's split steps)
    measured = os.path.dirname(os.path.dirname(os.path.abspath(sknet.__file__)))
    print("\n".join(environment_lines(measured, {"torch": torch.__version__})))
    print(f"sknet from: {measured}")
    print(f"torch threads: {torch.get_num_threads()}; {args.n} training sequences of "
          f"{N_STEPS} steps x {N_FEATURES} features, batch {BATCH}, {args.epochs} epochs, "
          f"float32\n", flush=True)
    X, y = sequences(args.n, 0)
    X_te, y_te = sequences(1024, 1)
    data = (X, y, X_te, y_te)
    rows = []
    for cell in args.cell:
        for hidden in args.hidden:
            runners = {impl: partial(run_one, impl, cell, hidden, data, args.epochs)
                       for impl in IMPLS}
            cores = [core_speeds(np.float32)]
            runs = interleaved(runners, args.repeats)
            cores.append(core_speeds(np.float32))
            times = {k: [r["seconds"] for r in v] for k, v in runs.items()}
            ratio, low, high = paired_ratio(times["pytorch"], times["sknet"])
            mem = {impl: memory(impl, cell, hidden, args.n) if args.memory else {}
                   for impl in IMPLS}
            rows.append([
                cell, hidden,
                "%.2f" % median(times["sknet"]), "%.2f" % median(times["pytorch"]),
                "%.2fx [%.2f-%.2f]" % (ratio, low, high),
                "%.3f" % np.mean([r["score"] for r in runs["sknet"]]),
                "%.3f" % np.mean([r["score"] for r in runs["pytorch"]]),
                _mib(mem["sknet"].get("rss")), _mib(mem["sknet"].get("tracemalloc")),
                _mib(mem["pytorch"].get("rss")),
            ])
            print(f"{cell} H={hidden}: pytorch/sknet {ratio:.2f}x", flush=True)
            for when, speeds in zip(("before", "after"), cores):
                print(f"  cores {when} its runs: {core_speeds_line(speeds)}", flush=True)
    header = ["cell", "H", "sknet s", "torch s", "torch/sknet", "sknet acc", "torch acc",
              "sknet RSS MiB", "sknet traced MiB", "torch RSS MiB"]
    print()
    print(format_table(header, rows, args.markdown))


def _mib(v):
    return "-" if v is None else "%.1f" % (v / 2 ** 20)


if __name__ == "__main__":
    main()

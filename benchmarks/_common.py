"""Helpers shared by sknet's benchmark scripts.

Timing with interleaved repeats, the machine's peak GEMM speed, how fast its
cores run one thread each now, peak memory of one call, medians and paired
ratios, and plain or Markdown tables. Only numpy and the standard library are
needed (threadpoolctl is used for the header and the cores' check when it is
installed, as it is with scikit-learn).
"""

import gc
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

__all__ = [
    "environment_lines",
    "gemm_peak",
    "core_speeds",
    "core_speeds_line",
    "interleaved",
    "median",
    "paired_ratio",
    "peak_rss_bytes",
    "tracemalloc_peak_bytes",
    "format_table",
    "training_flops",
    "forward_flops",
]

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------------- #
# the machine                                                              #
# ---------------------------------------------------------------------- #
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision(path):
    try:
        rev = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "sknet"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "unknown") + (" + uncommitted changes under sknet/" if dirty else "")


def _blas_lines():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS threading unknown"]
    lines = []
    for info in threadpool_info():
        lines.append(
            "  {user_api:<6} {internal_api:<9} {version} threads={num_threads} "
            "arch={arch} ({lib})".format(
                arch=info.get("architecture", "-"), lib=os.path.basename(info["filepath"]),
                **{k: info.get(k) for k in ("user_api", "internal_api", "version",
                                             "num_threads")}))
    return lines


def environment_lines(repo_root, versions):
    """Header lines: machine, library versions, BLAS threading, BLAS variables.

    Parameters
    ----------
    repo_root : str
        The repository, for the git revision of the code measured.
    versions : dict
        Library name -> version string (or a reason it is absent).

    Returns
    -------
    list of str
    """
    load = ", ".join("%.2f" % v for v in os.getloadavg())
    lines = [
        f"machine : {_cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"load average {load}",
        f"python  : {platform.python_version()} ({sys.executable})",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"sknet   : git {_git_revision(repo_root)}",
        "env     : " + ", ".join(f"{k}={os.environ.get(k, '<unset>')}" for k in BLAS_ENV),
        "threads (threadpoolctl.threadpool_info):",
    ]
    return lines + _blas_lines()


def gemm_peak(dtype, n=2048, repeats=7):
    """Peak matrix-product speed of numpy in FLOP/s (best of ``repeats``).

    Multiplies two ``n x n`` matrices of ``dtype`` into a preallocated
    output; one untimed product warms the BLAS threads up first.

    Returns
    -------
    peak : float
        ``2 n^3 / fastest time``.
    typical : float
        ``2 n^3 / median time``.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=c)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - start)
    flops = 2.0 * n ** 3
    return flops / min(times), flops / statistics.median(times)


def core_speeds(dtype=np.float64, n=128, products=100, repeats=3):
    """Seconds of one thread's matrix products now, alone and on two threads at once.

    Each thread multiplies two ``n x n`` matrices ``products`` times with
    BLAS held to one thread (numpy lets go of the GIL while it multiplies).
    On two free cores, each of two threads at once takes about the time of
    one alone. Where the machine gives a core only part of its time (a
    virtual core sharing its physical core with other work), a thread takes
    longer: a step split between two threads then waits for the slower.

    Returns
    -------
    speeds : tuple ``(alone, together)`` or None
        ``alone``: one thread's seconds (median of ``repeats``); ``together``:
        the two threads' seconds when both run at once (each the median of
        ``repeats``). None where threadpoolctl is not installed.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)

    def products_seconds(out, slot, barrier=None):
        c = np.empty((n, n), dtype=dtype)
        if barrier is not None:
            barrier.wait()
        start = time.perf_counter()
        for _ in range(products):
            np.matmul(a, b, out=c)
        out[slot] = time.perf_counter() - start

    alone, together = [], []
    with threadpool_limits(1):
        products_seconds([0.0], 0)  # warm up
        for _ in range(repeats):
            one = [0.0]
            products_seconds(one, 0)
            alone.append(one[0])
            two = [0.0, 0.0]
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=products_seconds, args=(two, i, barrier))
                       for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            together.append(two)
    return (statistics.median(alone),
            tuple(statistics.median(t[i] for t in together) for i in range(2)))


def core_speeds_line(speeds):
    """``core_speeds``'s result in words: each thread's time at once over one's alone."""
    if speeds is None:
        return "not measured (threadpoolctl not installed)"
    alone, (first, second) = speeds
    return (f"one thread's products {1e3 * alone:.1f} ms alone; two threads' at once "
            f"{first / alone:.2f} and {second / alone:.2f} times that (1 on two free cores)")


def forward_flops(layer_units, n_samples):
    """FLOPs of one forward pass: ``2 n fan_in fan_out`` per layer."""
    pairs = zip(layer_units[:-1], layer_units[1:], strict=True)
    return float(sum(2.0 * n_samples * fi * fo for fi, fo in pairs))


def training_flops(layer_units, n_samples, epochs):
    """Matrix-product FLOPs of training, the GEMM work every implementation does.

    Per sample and layer: forward ``2 fi fo``, weight gradient ``2 fi fo``,
    the delta passed down ``2 fi fo`` -- except below the first layer, where
    no delta is needed. Element-wise work (activations, the optimizer) is not
    counted: the bound is what the matrix products alone would take.
    """
    fwd = forward_flops(layer_units, n_samples)
    first = 2.0 * n_samples * layer_units[0] * layer_units[1]
    return epochs * (3.0 * fwd - first)


# ---------------------------------------------------------------------- #
# timing                                                                   #
# ---------------------------------------------------------------------- #
def interleaved(runners, repeats, pause=0.25, progress=None):
    """Run every runner once per round, round after round (A B C, B C A, C A B, ...).

    The order rotates from round to round so that no implementation always
    runs right after the same other one (which may have left the caches, the
    allocator or spinning threads in a state that helps or hurts the next).

    Parameters
    ----------
    runners : dict
        name -> callable(repeat_index) returning a dict with at least
        ``"seconds"``.
    repeats : int
    pause : float
        Seconds of sleep before each run, so that threads another library
        left spinning go to sleep and do not steal the next run's cores.
    progress : callable(str) or None

    Returns
    -------
    dict : name -> list of the runner's dicts, in round order.
    """
    results = {name: [] for name in runners}
    names = list(runners)
    for r in range(repeats):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            run = runners[name]
            gc.collect()
            time.sleep(pause)
            out = run(r)
            results[name].append(out)
            if progress is not None:
                progress(f"round {r + 1}/{repeats} {name}: {out['seconds']:.3f} s")
    return results


def median(values):
    """Median of the finite values, or nan when there are none."""
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return statistics.median(vals) if vals else float("nan")


def paired_ratio(num, den):
    """Median over rounds of ``num[r] / den[r]``, with its min and max.

    Runs of one round ran next to each other, so their ratio is less exposed
    to the machine's drift than a ratio of medians.
    """
    ratios = [a / b for a, b in zip(num, den, strict=True) if b > 0]
    if not ratios:
        return float("nan"), float("nan"), float("nan")
    return statistics.median(ratios), min(ratios), max(ratios)


# ---------------------------------------------------------------------- #
# memory                                                                   #
# ---------------------------------------------------------------------- #
def _status_kib(field):
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    return int(match.group(1)) if match else None


def _reset_peak_rss():
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes(fn):
    """Growth of the resident set during ``fn()``: peak RSS minus RSS before.

    Counts every allocation the process touches (numpy, BLAS, PyTorch), not
    only Python's. The peak counter is reset just before the call on Linux;
    elsewhere ``ru_maxrss`` is used, which is only right in a fresh process
    whose earlier peak was lower. Best run in a process of its own, since
    memory freed earlier but kept by the C allocator is reused unseen.

    Returns
    -------
    growth : int or None
        Bytes; None where the platform cannot tell.
    """
    gc.collect()
    before = _status_kib("VmRSS") if os.path.exists("/proc/self/status") else None
    reset = before is not None and _reset_peak_rss()
    if not reset:
        before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    if reset:
        return 1024 * max(0, _status_kib("VmHWM") - before)
    after_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return scale * max(0, after_max - before_max) if before_max else None


def tracemalloc_peak_bytes(fn):
    """Peak of the memory ``tracemalloc`` sees during ``fn()``, above the start.

    numpy reports its data buffers to tracemalloc, so this is the exact peak
    of numpy arrays plus Python objects; allocations inside BLAS or PyTorch
    are not seen. tracemalloc slows Python down: never time a run with it.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - base)


# ---------------------------------------------------------------------- #
# tables                                                                   #
# ---------------------------------------------------------------------- #
def format_table(header, rows, markdown=False):
    """Render rows of strings as an aligned text table or a Markdown table."""
    if markdown:
        def cells(row):
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
        lines = [cells(header),
                 "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
        lines += [cells(row) for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join("{:<%d}" % w if i < 2 else "{:>%d}" % w for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ #
# synthetic data shared by the benchmarks                               #
# ------------------------------------------------------------------ #
def linear_teacher(X, flip, seed):
    """Binary labels from a random hyperplane through the data's centre, ``flip`` flipped."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(X.shape[1])
    s = np.asarray(X @ w).ravel()
    y = (s > np.median(s)).astype(np.int64)
    flips = rng.random(y.size) < flip
    y[flips] = 1 - y[flips]
    return y


def text_like(n, n_features, seed, nnz_per_row=60):
    """CSR rows of Zipf-distributed term counts, L2-normalised (tf-idf-like)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_features + 1)
    cols = rng.choice(n_features, size=n * nnz_per_row, p=p / p.sum())
    rows = np.repeat(np.arange(n), nnz_per_row)
    X = sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(n, n_features))
    X.sum_duplicates()
    X.data = np.log1p(X.data)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    return X.tocsr().astype(np.float32)

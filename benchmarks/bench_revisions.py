"""Compare two checkouts of sknet on bench_mlp.py's workloads, interleaved.

A change to the core is judged by its speed-up over scikit-learn before and
after, measured in the same session: this script runs ``bench_mlp.py`` (this
tree's copy, so both sides time the same work) once with this tree's sknet
and once with the other checkout's, round after round, alternating which goes
first, and prints for each workload and dtype the median over all runs of
scikit-learn's time over sknet's (paired within each run) for both sides, and
their quotient (after / before; below 1 means the change made sknet slower
relative to scikit-learn).

    git worktree add /tmp/sknet-before <commit>
    python benchmarks/bench_revisions.py /tmp/sknet-before --rounds 3 \\
        -- --workload digits digits-b32 --repeats 3

Everything after ``--`` goes to ``bench_mlp.py`` (``--impl``, ``--no-memory``
and ``--json`` are set here).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
THIS_TREE = os.path.dirname(HERE)


def run_once(tree, bench_args, path):
    """One bench_mlp.py run with ``tree``'s sknet first on the path; returns its JSON."""
    env = dict(os.environ, PYTHONPATH=tree)
    cmd = [sys.executable, os.path.join(HERE, "bench_mlp.py"), "--impl", "sknet",
           "scikit-learn", "--no-memory", "--json", path, *bench_args]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)["results"]


def ratios(results):
    """``(workload, dtype) -> [scikit-learn's time / sknet's]`` for each round of a run."""
    out = {}
    for res in results:
        sk = [r["seconds"] for r in res["runs"]["scikit-learn"]]
        ours = [r["seconds"] for r in res["runs"]["sknet"]]
        out[(res["workload"], res["dtype"])] = [a / b for a, b in zip(sk, ours)]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", help="path of the other checkout (the baseline)")
    p.add_argument("--rounds", type=int, default=3, help="alternations of the two trees")
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, bench_args = p.parse_args(argv[:cut]), argv[cut + 1:]  # the rest: bench_mlp.py's
    trees = {"before": os.path.abspath(args.before), "after": THIS_TREE}
    collected = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for side in order:
                path = os.path.join(tmp, f"{side}{r}.json")
                for key, vals in ratios(run_once(trees[side], bench_args, path)).items():
                    collected[side].setdefault(key, []).extend(vals)
                print(f"round {r + 1}/{args.rounds}: {side} done", flush=True)
    print(f"\n{'workload':<14}{'dtype':<9}{'before':>8}{'after':>8}{'after/before':>14}")
    for key in collected["after"]:
        before = statistics.median(collected["before"][key])
        after = statistics.median(collected["after"][key])
        print(f"{key[0]:<14}{key[1]:<9}{before:>7.2f}x{after:>7.2f}x{after / before:>14.3f}")


if __name__ == "__main__":
    main()

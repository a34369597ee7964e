"""Every gallery example runs to the end, as a user would run it.

Each ``examples/plot_*.py`` runs in its own Python process with matplotlib's
non-interactive Agg backend (``plt.show()`` then returns at once), from an
empty working directory. An example that fails, or that lets a warning
through (the examples silence the warnings they expect, and say why), fails
its test. BLAS runs on one thread: the examples' matrices are small, and on a
shared machine more threads only add contention.

An example that needs an optional extra (``NEEDS``) is skipped without it,
and carries the extra's marker, so that ``-m onnx`` runs the ONNX example.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))
TIMEOUT_S = 300  # a hang guard, not a speed test
# example -> (marker, the modules of the optional extra it needs)
NEEDS = {"plot_onnx_export": ("onnx", ("skl2onnx", "onnx", "onnxruntime"))}


def _params():
    params = []
    for path in EXAMPLES:
        marker, modules = NEEDS.get(path.stem, (None, ()))
        marks = [getattr(pytest.mark, marker)] if marker else []
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            marks.append(pytest.mark.skip(
                reason=f"needs the {marker} extra ({', '.join(missing)} not installed)"))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def _example_env():
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def test_examples_are_found():
    assert len(EXAMPLES) >= 8, EXAMPLES


@pytest.mark.parametrize("path", _params())
def test_example_runs_without_errors_or_warnings(path, tmp_path):
    pytest.importorskip("matplotlib", reason="the examples need matplotlib")
    result = subprocess.run([sys.executable, str(path)], cwd=tmp_path,
                            env=_example_env(), capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Warning" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.strip(), "an example prints what it found"

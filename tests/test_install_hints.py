"""Every install hint installs sknet's code, never the unrelated ``sknet`` on PyPI.

The distribution is named ``sknet-nn`` (``sknet`` on the package index is
someone else's project); the import name stays ``sknet``. Hints for optional
dependencies name the dependency itself (``pip install skops``) or an extra
of the clone (``pip install -e ".[skops]"``).
"""

import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# "pip install sknet", "pip install sknet[skops]", "pip install 'sknet[...]'"...
UNRELATED_SKNET = re.compile(r"pip\s+install\s+(?:-\S+\s+)*[\"']?sknet(?![\w-])")


def _text_files():
    patterns = ["README.md", "pyproject.toml", "sknet/**/*.py", "docs/**/*.rst",
                "docs/**/*.py", "examples/*.py", "examples/*.rst", "benchmarks/*.py",
                "benchmarks/*.md", ".ci/run"]
    files = {p for pattern in patterns for p in ROOT.glob(pattern)}
    return sorted(p for p in files if "_build" not in p.parts and "generated" not in p.parts)


def test_the_distribution_is_not_named_sknet():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    name = re.search(r'^name = "([^"]+)"', pyproject, re.MULTILINE).group(1)
    assert name == "sknet-nn"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`sknet-nn`" in readme and "import name" in readme


@pytest.mark.parametrize("path", _text_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_hint_installs_the_unrelated_sknet(path):
    text = path.read_text(encoding="utf-8")
    hits = [m.group(0) for m in UNRELATED_SKNET.finditer(text)]
    assert not hits, f"{path.name}: {hits}"


def test_sknet_onnx_without_skl2onnx_says_how_to_install_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "sknet.onnx", raising=False)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match=r"`pip install skl2onnx onnx onnxruntime`"):
        importlib.import_module("sknet.onnx")

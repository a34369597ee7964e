"""Collection rules for the whole repository, the doctests under sknet/ included.

``sknet.onnx`` needs the onnx extra (skl2onnx, onnx, onnxruntime) to import:
without it its doctests are not collected; with it they carry the ``onnx``
marker, so that ``python -m pytest -m onnx`` runs them with tests/test_onnx.py.
"""

import importlib.util
from pathlib import Path

import pytest

ONNX_MODULE = Path(__file__).resolve().parent / "sknet" / "onnx.py"

collect_ignore = []
if any(importlib.util.find_spec(name) is None for name in ("skl2onnx", "onnxruntime")):
    collect_ignore.append("sknet/onnx.py")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.path)).resolve() == ONNX_MODULE:
            item.add_marker(pytest.mark.onnx)

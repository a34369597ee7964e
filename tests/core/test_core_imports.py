"""sknet._core is numpy and scipy only: importing it must not import scikit-learn."""

import ast
import pathlib
import subprocess
import sys

import sknet

CORE = pathlib.Path(sknet.__file__).parent / "_core"


def test_importing_the_core_does_not_import_scikit_learn():
    code = (
        "import sys, importlib.util\n"
        f"sys.path.insert(0, {str(CORE.parent.parent)!r})\n"
        # load sknet._core without running sknet/__init__ (which imports the estimators)
        "import types\n"
        "pkg = types.ModuleType('sknet'); pkg.__path__ = "
        f"[{str(CORE.parent)!r}]; sys.modules['sknet'] = pkg\n"
        "import sknet._core\n"
        "bad = sorted(m for m in sys.modules if m == 'sklearn' or m.startswith('sklearn.'))\n"
        "print(len(sknet._core.__all__), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("[]")


def test_core_sources_import_only_numpy_scipy_and_the_standard_library():
    allowed = {"numpy", "scipy"} | set(sys.stdlib_module_names)
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{path.name} imports {root}"

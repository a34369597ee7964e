"""The documentation: its ``>>>`` snippets run, and the site builds with -W.

The build runs sphinx on a copy of ``docs/`` and ``examples/`` in a
temporary folder (sphinx-gallery writes the gallery next to the sources), with
warnings as errors, offline. It executes every example, so it takes about a
minute: it is marked ``docs`` and runs with ``python -m pytest -m docs``.
"""

import doctest
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES_WITH_SNIPPETS = sorted(
    p for p in DOCS.rglob("*.rst")
    if "_build" not in p.parts and ">>> " in p.read_text(encoding="utf-8")
)


def test_pages_with_snippets_are_found():
    assert len(PAGES_WITH_SNIPPETS) >= 3, PAGES_WITH_SNIPPETS


@pytest.mark.parametrize("page", PAGES_WITH_SNIPPETS,
                         ids=[str(p.relative_to(DOCS)) for p in PAGES_WITH_SNIPPETS])
def test_snippets_in_the_docs_give_the_output_they_show(page):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a snippet may train on purpose too briefly
        result = doctest.testfile(str(page), module_relative=False,
                                  optionflags=doctest.NORMALIZE_WHITESPACE,
                                  verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} snippet(s) of {page.name} failed"


@pytest.mark.docs
def test_docs_build_offline_with_warnings_as_errors(tmp_path):
    for module in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme",
                   "matplotlib"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    shutil.copytree(DOCS, tmp_path / "docs",
                    ignore=shutil.ignore_patterns("_build", "auto_examples",
                                                  "generated"))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("SKNET_DOCS_INTERSPHINX", None)
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(tmp_path / "docs"), str(out)],
        env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    gallery = out / "auto_examples"
    for example in sorted((ROOT / "examples").glob("plot_*.py")):
        assert (gallery / f"{example.stem}.html").is_file(), example.name
        assert list((out / "_images").glob(f"sphx_glr_{example.stem}_001.png")), \
            f"{example.name} drew no figure"
    for page in ("index", "getting_started", "differences", "changelog", "api",
                 "scaling", "user_guide/index", "generated/sknet.MLPClassifier"):
        assert (out / f"{page}.html").is_file(), page

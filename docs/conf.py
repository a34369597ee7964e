"""Sphinx configuration of sknet's documentation.

Build it with::

    python -m sphinx -W -b html docs docs/_build/html

The build works offline. Links into the documentation of numpy, scipy and
scikit-learn (intersphinx) need the network, so they are opt-in: set the
environment variable ``SKNET_DOCS_INTERSPHINX=1``.
"""

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # document the sknet next to docs/
sys.path.insert(0, str(HERE))  # _gallery_order

import sknet  # noqa: E402

project = "sknet"
author = "the sknet developers"
copyright = "the sknet developers, BSD 3-Clause License"
version = release = sknet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"  # `x` in docstrings is code, as in scikit-learn's

# -- API reference ---------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"inherited-members": True, "members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- intersphinx: opt-in, the default build reads nothing from the network --
intersphinx_mapping = {}
if os.environ.get("SKNET_DOCS_INTERSPHINX"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }

# -- the gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "_gallery_order.GuideOrder",
    "write_computation_times": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": "True",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "reference_url": {},
    "backreferences_dir": None,
    "show_memory": False,
}

# Examples silence the warnings they expect; a matplotlib backend warning
# under the non-interactive build backend is no news.
warnings.filterwarnings("ignore", category=UserWarning,
                        message="FigureCanvasAgg is non-interactive")

# -- HTML ------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sknet {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_end": ["theme-switcher"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_context = {"default_mode": "light"}


# -- links in docstrings inherited from scikit-learn ------------------------
def _unlink_inherited_sklearn_refs(app, env, node, contnode):
    """Show scikit-learn's own cross-references as plain text.

    Methods inherited from scikit-learn (``score``, ``set_output``,
    ``get_metadata_routing``, ...) keep their docstrings, which point to
    labels and glossary terms of scikit-learn's documentation. Without
    intersphinx they cannot resolve; their text is kept and only they are
    exempt: an unresolved reference in sknet's own text still fails the build.
    """
    source = node.source or ""
    if node.get("refdomain") == "std" and "docstring of sklearn." in source:
        return contnode
    return None


def setup(app):
    app.connect("missing-reference", _unlink_inherited_sklearn_refs)

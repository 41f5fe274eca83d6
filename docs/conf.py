"""Sphinx configuration of tinyntk's documentation site.

Build it (warnings are errors, so a broken tutorial or docstring fails the build)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Tutorials are MyST Markdown notebooks (``docs/tutorials/*.md``), executed by MyST-NB at
every build, so a page can never drift from the code.  The API reference is generated
from the NumPy-style docstrings by autodoc + napoleon.
"""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))   # the checkout's tinyntk, also without an install
import tinyntk  # noqa: E402

project = "tinyntk"
author = "the tinyntk developers"
copyright = "2026, " + author
release = tinyntk.__version__
version = release

extensions = [
    "myst_nb",                       # Markdown pages and executed MyST notebooks
    "sphinx.ext.autodoc",            # the API reference from the docstrings
    "sphinx.ext.napoleon",           # ... which are NumPy style
    "sphinx.ext.mathjax",            # .. math:: and $...$
    "sphinx.ext.viewcode",           # a [source] link next to every function
    "sphinx_copybutton",             # a copy button on every code block
    "sphinx_design",                 # {dropdown} hints in the exercises
    "sphinx-mathjax-offline",        # MathJax served with the site: math renders offline
]

# Pages: everything under docs/ but the build, the JSON/PNG outputs of tinyntk reproduce,
# and Jupyter's checkpoints.
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}

# MyST: $...$ math, ::: fences, {dropdown}; headings get anchors so pages can link them.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# MyST-NB: execute every notebook at every build (no cache: a build checks the code as it
# is now); a cell that raises fails the build; each tutorial has a 60 s budget per cell
# and the build reports each notebook's time.
nb_execution_mode = "force"
nb_execution_timeout = 120
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc: members in source order, with their signatures as written.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False

html_theme = "pydata_sphinx_theme"
html_title = f"tinyntk {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = ["_static"]
html_css_files = ["tinyntk.css"]
html_show_sourcelink = False

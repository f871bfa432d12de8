"""Sphinx configuration of minibert's book (`make book`).

The source folder is the repository itself, so the README and the notebooks are read where
they are, links between them resolve as they do on GitHub, and nothing is copied: the README is
the landing page, MyST-NB reads the jupytext percent notebooks and executes them, `api.md`
documents the public names from their docstrings. `_toc.yml` orders the pages.
"""
import hashlib
import importlib.metadata
from pathlib import Path

from minibert import provenance

ROOT = Path(__file__).resolve().parents[1]

project = "minibert"
release = version = importlib.metadata.version("minibert")

extensions = [
    "myst_nb",                 # Markdown and notebooks, executed through jupyter-cache
    "sphinx_external_toc",     # the table of contents in _toc.yml, the README left as it is
    "sphinx.ext.autodoc",      # the API reference from the docstrings
    "sphinx-mathjax-offline",  # MathJax 3 served from the book itself, not from a CDN
]
external_toc_path = "book/_toc.yml"
include_patterns = ["README.md", "notebooks/[0-9][0-9]_*.py", "docs/performance.md", "book/*.md"]

# The notebooks as they are: jupytext percent scripts.
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3


def sources_fingerprint():
    """A hash of minibert's source files: a notebook's outputs are reused only while both the
    notebook and the code it imports are unchanged."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "minibert").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# Executed once and cached: an unchanged notebook is not re-run. A cell that raises (or runs
# past the timeout) is a warning with its traceback, which fails the build: make book runs
# sphinx-build -W. (MyST-NB's nb_execution_raise_on_error would stop it at once, but as a
# crash of Sphinx asking for a bug report.) Only notebooks that succeeded are cached.
nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / "build" / "book-cache" / sources_fingerprint())
nb_execution_show_tb = True
nb_execution_timeout = 180          # per cell, seconds: the notebooks' budget in tests/test_notebooks.py

html_theme = "sphinx_book_theme"
html_title = f"minibert {release}"
html_favicon = "favicon.svg"                    # else the browser asks for a missing /favicon.ico
# ... which it still does on the root's redirect page (index.html, no icon link): one is there,
# a square of favicon.svg's colour
html_extra_path = ["extra"]
html_context = {"default_mode": "auto"}         # light or dark as the reader's system is
html_theme_options = {
    "footer_content_items": ["extra-footer"],
    "extra_footer": f"Built with {provenance.describe()}. Each notebook's first output names "
                    "the minibert and the machine that executed it.",
}

"""Sphinx configuration of minibert's book (`make book`).

The source folder is the repository itself, so the README and the notebooks are read where
they are, links between them resolve as they do on GitHub, and nothing is copied: the README is
the landing page, MyST-NB reads the jupytext percent notebooks and executes them, `api.md`
documents the public names from their docstrings. `_toc.yml` orders the pages.
"""
import hashlib
import importlib.metadata
from pathlib import Path

from minibert.lab import provenance

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
include_patterns = ["README.md", "notebooks/[0-9][0-9]_*.py", "docs/*.md", "book/*.md"]

# The notebooks as they are: jupytext percent scripts.
NOTEBOOK_FORMAT = "py:percent"
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": NOTEBOOK_FORMAT}]}
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


# Each notebook page offers its notebook as an .ipynb, written beside the page
# (notebooks/04_adapter_tuning.html -> notebooks/04_adapter_tuning.ipynb): a link under the
# page's title, and an entry in the theme's download menu. (The handlers import what they use:
# Sphinx drops the modules conf.py imports from its namespace once it has read it.)

def notebook_source(app, docname):
    """The jupytext source of a notebook page -> its path; None for any other page."""
    if docname not in app.env.all_docs:
        return None
    path = Path(app.env.doc2path(docname))
    return path if path.suffix in nb_custom_formats else None


def ipynb_name(docname):
    """The .ipynb's name, relative to its page (both in the page's folder)."""
    return Path(docname).name + ".ipynb"


def add_download_link(app, doctree, docname):
    """A visible "Download this notebook" line under a notebook page's title."""
    from docutils import nodes

    if app.builder.format != "html" or notebook_source(app, docname) is None:
        return
    name = ipynb_name(docname)
    line = nodes.paragraph("", "", nodes.Text("Download this notebook: "),
                           nodes.reference(name, name, refuri=name, classes=["download"]),
                           nodes.Text(" (open it with "), nodes.literal("", f"jupyter lab {name}"),
                           nodes.Text(")."), classes=["notebook-download"])
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, line)
    else:
        section.insert(1, line)          # after its title


def add_download_button(app, pagename, templatename, context, doctree):
    """The .ipynb first in the theme's download menu (after the theme made it: priority 502)."""
    if notebook_source(app, pagename) is None:
        return
    for button in context.get("header_buttons", []):
        if button.get("label") == "download-buttons":
            button["buttons"].insert(0, {"type": "link", "url": ipynb_name(pagename),
                                         "text": ".ipynb", "icon": "fas fa-code",
                                         "tooltip": "Download notebook file",
                                         "label": "download-notebook-button"})


def write_notebooks(app, exception):
    """Every notebook page's .ipynb into the HTML output: the jupytext source's cells, with the
    outputs of the book's run of it where the execution cache holds that run."""
    import jupytext
    import nbformat

    if exception is not None or app.builder.format != "html":
        return
    cache = None
    if app.env.mystnb_config.execution_mode == "cache":
        from jupyter_cache import get_cache
        cache = get_cache(app.env.mystnb_config.execution_cache_path)
    for docname in sorted(app.env.found_docs):
        source = notebook_source(app, docname)
        if source is None:
            continue
        notebook = jupytext.read(source, fmt=NOTEBOOK_FORMAT)
        if cache is not None:
            try:                          # matched as MyST-NB matches it: cells and kernel
                _, notebook = cache.merge_match_into_notebook(notebook)
            except KeyError:              # not run (yet): the cells alone
                pass
        nbformat.validate(notebook)
        target = Path(app.outdir) / (docname + ".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)


def setup(app):
    app.connect("doctree-resolved", add_download_link)
    app.connect("html-page-context", add_download_button, priority=502)
    app.connect("build-finished", write_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

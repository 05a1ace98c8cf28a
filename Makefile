# The two set-up commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-large install clean bench bench-smoke

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,jax]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tfcvr quickstart

# The main suite and the notebooks (nbmake runs each top to bottom; a failing
# cell fails the suite; their files go to notebooks/nb_output/) on the
# TensorFlow backend, in TEST_WORKERS processes, a file per process at a time
# so module fixtures are built once (the notebooks first: they are the
# longest files); alongside, the JAX-marked tests in a process of their own
# (the backend is fixed at import time; it fills the CPU the TF workers leave
# idle while they wait on subprocesses and servers), whose report is printed
# after the main one. Either failing fails `make test`. The `large` tests
# (several processes or every estimator each, minutes together) run in
# `make test-large`, which CI runs after `make test`.
TEST_WORKERS ?= 2
JAX_TEST_LOG := $(VENV)/jax-tests.log
test: $(STAMP)
	@KERAS_BACKEND=jax $(BIN)/python -m pytest -q -p no:cacheprovider -m "jax and not large" > $(JAX_TEST_LOG) 2>&1 & jax=$$!; \
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not jax and not large" --nbmake notebooks tests; tf=$$?; \
	wait $$jax; jax=$$?; \
	echo "--- the JAX-backend tests (run alongside):"; cat $(JAX_TEST_LOG); \
	test $$tf -eq 0 && test $$jax -eq 0

test-large: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "large and not jax" tests

bench: $(STAMP)
	$(BIN)/tfcvr bench train --model esmm

# The leaderboard grid at CI size: 3 estimators x 2 seeds x 2 biases.
bench-smoke: $(STAMP)
	$(BIN)/tfcvr bench --preset smoke --out bench_output/grid-smoke --no-progress

clean:
	rm -rf $(VENV) demo_output bench_output notebooks/nb_output

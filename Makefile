# The two commands: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# numba's on-disk cache and the generated tensor-product kernels live inside the checkout,
# so a second run (or a second process) pays no compile time.
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba
export MULTILINEAR_CACHE_DIR := $(CURDIR)/.cache/multilinear
# Two cores: numba's pool does the parallel work; BLAS inside it stays single-threaded.
export NUMBA_NUM_THREADS ?= 2

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned (a CPU build of 2.13.0 is on local disk), so e3nn does not pull another.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[torch,test,data,bench,dev]'
	touch $(STAMP)

install: $(STAMP)

FLIGHTS := data/flights_dest_carrier_day_hour.tns.gz

demo: $(STAMP)
	@mkdir -p .cache
	$(VENV)/bin/multilinear info $(FLIGHTS)
	$(VENV)/bin/multilinear cp $(FLIGHTS) --rank 25 --max-iter 50 --seed 0 --output .cache/flights_cp25.npz
	$(PY) examples/demo.py --factors .cache/flights_cp25.npz
	$(PY) examples/interaction_block.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples data
	$(VENV)/bin/ruff format --check src tests bench examples data

# Two pytest workers: on a fresh clone most of the time is numba compiling generated kernels, one core
# per compile, so two workers cut the wall time (cold: 827 s in one process, 661-778 s with two, 2 cores).
PYTEST_WORKERS ?= 2

test: lint
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal

# The quicker benchmarks (~10 minutes together); see docs/benchmarks.md for the others
# (bench_tp.py, bench_conv.py, bench_randomized_cp.py, bench_sampler.py: 10-60 minutes each here).
bench: $(STAMP)
	$(PY) bench/bench_cp.py
	$(PY) bench/bench_tns.py
	$(PY) bench/bench_tp_kernels.py

clean:
	rm -rf .cache .pytest_cache .ruff_cache

# Two commands do everything on a fresh machine:
#   make demo   set up (virtual environment, pinned dependencies) and run the built-in demo
#   make test   set up and run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	# torchtitan's own requirements pull in datasets, wandb and pandas and move fsspec: its
	# imports we test need only what requirements-dev.txt already pins
	$(PY) -m pip install --disable-pip-version-check -q --no-deps torchtitan==0.3.0
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/climbstream demo

test: $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) benchmarks/sampler.py --quick
	$(PY) benchmarks/solver.py --quick
	$(PY) benchmarks/loader.py --quick

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

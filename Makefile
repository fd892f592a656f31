# The two commands a newcomer runs: `make run` and `make test`. Each creates .venv if missing and
# (re)installs the package whenever pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n auto

.PHONY: run test clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[data,plot]'
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,data,plot]'
	@touch $@

run: $(VENV)/.installed-run
	$(PY) -m experiments.main --config=experiments/configs/mcr2.py --workdir=results/mcr2_mnist5k --config.resume=False

test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) results build *.egg-info

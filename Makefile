# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
EXT_STAMP := $(VENV)/.stamp-ext

.PHONY: run test check bench clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# An editable install does not rebuild the extension when the .pyx changes; this does.
$(EXT_STAMP): $(STAMP) accord/media/_forward.pyx
	$(PY) setup.py --quiet build_ext --inplace
	touch $(EXT_STAMP)

run: $(EXT_STAMP)
	mkdir -p data
	$(VENV)/bin/python -u -m accord

test: $(EXT_STAMP)
	$(VENV)/bin/pytest -q

check: $(EXT_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf build $(VENV) accord/media/*.c accord/media/*.so

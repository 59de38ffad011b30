# The two commands a new user runs: `make demo` and `make test`.
# Both build a virtualenv inside the checkout and install graphc into it.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo examples test conformance lint regen bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	# torch is a test oracle only; a local CPU wheel satisfies this pin.
	-$(PY) -m pip install -q torch==2.13.0
	touch $(STAMP)

# the main job: train the digits MLP, report, draw (see `graphc demo --help`)
demo: $(STAMP)
	$(VENV)/bin/graphc demo --out out/demo

# every example script, in full mode (drawings and plots into out/)
examples: $(STAMP)
	@for f in examples/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

# the ONNX backend test suite's node cases, on both backends (pass counts at the end)
conformance: $(STAMP)
	$(PY) -m pytest tests/onnx/conformance.py --tb=line
	$(PY) -m pytest tests/onnx/conformance.py --tb=line --backend llvm

lint: $(STAMP)
	$(PY) -m ruff check .

regen: $(STAMP)
	$(PY) -m graphc.ops.generate

bench: $(STAMP)
	$(PY) benchmarks/scaling.py

clean:
	rm -rf $(VENV) build *.egg-info

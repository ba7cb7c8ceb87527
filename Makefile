# `make demo` and `make test` set up .venv themselves (torch pinned to the local CPU build first; pip >= 25.1
# for the dev dependency group).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[diffusion,testing,ray]" --group dev
	$(BIN)/python -m pip install --quiet "kornia>=0.7"  # diffusers' FrequencyDecoupledGuidance (tests/test_guiders.py)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dfgraph check dfgraph_blocks.examples:counter_one dfgraph_blocks.examples:counter_two dfgraph_blocks.examples:guided_loop dfgraph_blocks.control_demo:auto_loop
	$(BIN)/python -m dfgraph_blocks.examples
	$(BIN)/dfgraph describe dfgraph_blocks.control_demo:auto_loop
	$(BIN)/python -m dfgraph_blocks.control_demo
	$(BIN)/dfgraph check dfgraph_blocks.diffusion.demo:tiny_text2img
	$(BIN)/python -m dfgraph_blocks.diffusion.demo --steps 20 --out out/text2img.png
	$(BIN)/dfgraph check dfgraph_blocks.diffusion.demo:tiny_sdxl_text2img
	$(BIN)/python -m dfgraph_blocks.diffusion.demo sdxl --steps 20 --out out/sdxl.png

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_quickstart_and_property_example_run() -> None:
    blocks = python_blocks()
    quickstart, generated = blocks[0], blocks[1]
    namespace: dict[str, Any] = {}
    exec(quickstart, namespace)  # asserts inside
    assert namespace["out"] == {"x": 11}
    assert generated.strip() == namespace["prog"].source.strip()  # the shown code is the real one
    example = next(b for b in blocks if "inputs_for" in b)
    exec(example, namespace)
    namespace["test_two_increments_per_step"]()  # runs the hypothesis test


def test_the_modular_diffusers_example_runs() -> None:
    """The README's "Running your Modular Diffusers blocks" example: dfgraph equals ModularPipeline."""
    pytest.importorskip("diffusers")
    [example] = [b for b in python_blocks() if "from_modular(pipe)" in b]
    exec(compile(example, "README.md", "exec"), {})

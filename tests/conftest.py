"""Hypothesis profiles: CI runs a fixed, reproducible set of examples (HYPOTHESIS_PROFILE=ci, set by
.ci/run); elsewhere each run draws new ones, so local runs keep searching for new counterexamples.

The core test subset: dfgraph's core never imports torch, so it is tested without torch (the no-torch CI
jobs on Python 3.12 and 3.13, .ci/core). A test module that imports one of HEAVY at its top needs the
`[diffusion]` extra; where that is absent the module is not collected (the header names each one). A
test in another module that needs torch calls pytest.importorskip itself."""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

HEAVY = ("torch", "diffusers", "transformers", "PIL")  # the [diffusion] extra
MISSING = tuple(name for name in HEAVY if importlib.util.find_spec(name) is None)
left_out: list[str] = []


def top_level_imports(path: Path) -> set[str]:
    """Every module a test file imports in its module body (not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def needs_missing(path: Path) -> str | None:
    """The first module of the missing extra that `path` imports at its top, if any."""
    for name in sorted(top_level_imports(path)):
        if name.split(".")[0] in MISSING:
            return name
        if name == "dfgraph_blocks.diffusion" or name.startswith("dfgraph_blocks.diffusion."):
            return name  # it imports torch, diffusers and PIL
    return None


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Leave out a test module that needs the `[diffusion]` extra when it is not installed."""
    if not MISSING or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    missing = needs_missing(collection_path)
    if missing is None:
        return None
    left_out.append(f"{collection_path.name} ({missing})")
    return True


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    """Name the modules left out, so the subset that ran is stated in every log."""
    if not left_out:
        return None
    return f"not installed: {', '.join(MISSING)}; left out: {', '.join(sorted(left_out))}"

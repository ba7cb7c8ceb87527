"""The typed public API, as mypy --strict sees user code: tests/typing/ok_usage.py must type-check (and
run), and every line of tests/typing/bad_usage.py marked `# E: code` must be exactly the errors mypy
reports."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")  # a dev tool: the test tools install it

HERE = Path(__file__).parent / "typing"
ROOT = Path(__file__).parent.parent
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def _mypy(path: Path) -> tuple[str, int]:
    """mypy --strict on one file, with the project's config and no cache writes shared with others."""
    out, err, status = api.run(
        ["--strict", "--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary", str(path)]
    )
    return out + err, status


def _errors(output: str) -> set[tuple[int, str]]:
    found = set()
    for line in output.splitlines():
        match = ERROR.match(line.strip())
        if match:
            found.add((int(match["line"]), match["code"]))
    return found


def test_user_code_type_checks_cleanly() -> None:
    output, status = _mypy(HERE / "ok_usage.py")
    assert status == 0, output
    assert _errors(output) == set()


def test_user_code_runs_as_typed() -> None:
    # the snippet's own asserts check the values its assert_type lines describe
    spec = importlib.util.spec_from_file_location("ok_usage", HERE / "ok_usage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.value == 6


def test_mistakes_are_type_errors_exactly_where_marked() -> None:
    path = HERE / "bad_usage.py"
    expected = {
        (number, marker.group(1))
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if (marker := re.search(r"# E: ([a-z-]+)$", text))
    }
    assert len(expected) >= 10
    output, status = _mypy(path)
    assert status == 1, output
    assert _errors(output) == expected, output

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


@pytest.fixture(scope="module")
def mypy_errors() -> tuple[dict[str, set[tuple[int, str]]], str]:
    """mypy --strict with the project's config, once over both snippet files: errors per file name."""
    files = [HERE / "ok_usage.py", HERE / "bad_usage.py"]
    out, err, _ = api.run(
        ["--strict", "--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary", *map(str, files)]
    )
    found: dict[str, set[tuple[int, str]]] = {f.name: set() for f in files}
    for line in (out + err).splitlines():
        match = ERROR.match(line.strip())
        assert match is not None or ": note:" in line, line  # nothing but errors and their notes
        if match is not None:
            found[Path(match["file"]).name].add((int(match["line"]), match["code"]))
    return found, out + err


def test_user_code_type_checks_cleanly(mypy_errors: tuple[dict[str, set[tuple[int, str]]], str]) -> None:
    errors, output = mypy_errors
    assert errors["ok_usage.py"] == set(), output


def test_user_code_runs_as_typed() -> None:
    # the snippet's own asserts check the values its assert_type lines describe
    spec = importlib.util.spec_from_file_location("ok_usage", HERE / "ok_usage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.value == 6


def test_mistakes_are_type_errors_exactly_where_marked(
    mypy_errors: tuple[dict[str, set[tuple[int, str]]], str],
) -> None:
    path = HERE / "bad_usage.py"
    expected = {
        (number, marker.group(1))
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if (marker := re.search(r"# E: ([a-z-]+)$", text))
    }
    assert len(expected) >= 10
    errors, output = mypy_errors
    assert errors["bad_usage.py"] == expected, output

"""The command line: `dfgraph check` and `dfgraph describe`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dfgraph.cli import main


def test_check_clean_graphs_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "blocks.examples:counter_one", "blocks.examples:counter_two"]) == 0
    out = capsys.readouterr().out
    assert "blocks.examples:counter_one: 0 errors, 0 warnings" in out
    assert "blocks.examples:counter_two: 0 errors, 0 warnings" in out


def test_check_reports_compiler_style_and_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "blocks.examples:counter_one", "blocks.examples:miswired"]) == 1
    out = capsys.readouterr().out
    assert "miswired/add_one.x: error[DF101]: " in out
    assert "miswired: error[DF003]: carry= names 'xx'" in out and "did you mean 'x'?" in out
    assert "  hint: " in out
    assert "blocks.examples:miswired: 3 errors, 0 warnings" in out


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected MODULE:ATTR"),
        ("no.such.module:x", "cannot import"),
        ("blocks.examples:nothing_here", "has no attribute"),
        ("blocks.examples:EXAMPLES", "not a block"),
    ],
)
def test_bad_targets_are_explained(target: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", target]) == 1
    assert message in capsys.readouterr().err


def test_describe_prints_ports_and_structure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "blocks.examples:guided_loop", "--source"]) == 0
    out = capsys.readouterr().out
    assert "inputs:  num_steps: int, value: float" in out
    assert "outputs: timesteps: Sequence[float], value: float" in out
    assert "denoise  Loop(over='timesteps', item='t', index='i')" in out
    assert "edge scale.scaled -> cond.scaled" in out
    assert "def __call__(self" in out  # --source shows the generated code


def test_describe_of_a_broken_graph_with_source_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "blocks.examples:miswired", "--source"]) == 1
    assert "not compiled" in capsys.readouterr().out


def test_console_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dfgraph", "check", "blocks.examples:miswired"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "error[DF101]" in done.stdout

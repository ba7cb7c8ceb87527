"""The command line: `dfgraph check` and `dfgraph describe`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


# -- controlling diagnostics: --select, --ignore, -W, --show-ignored, [tool.dfgraph] ------------------------

GRAPHS = """
import dfgraph as df

@df.block(outputs="x")
def make_int() -> int:
    return 1

@df.block(outputs="x")
def make_str() -> str:
    return "s"

@df.block(outputs="y")
def double(x: int) -> int:
    return x * 2

warned = df.Sequential(make_int, make_str, name="warned")  # DF201 only
mistyped = df.Sequential(make_str, double, name="mistyped")  # DF001 only
both = df.Sequential(make_int, make_str, double, name="both")  # DF201 and DF001
"""


@pytest.fixture
def graphs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module `cli_graphs` of small graphs, importable, in an empty folder that is the current one."""
    (tmp_path / "cli_graphs.py").write_text(GRAPHS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_check(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["check", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_ignore_and_show_ignored(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(["cli_graphs:mistyped"], capsys)[0] == 1
    status, out, _ = run_check(["cli_graphs:mistyped", "--ignore", "DF001"], capsys)
    assert status == 0 and "cli_graphs:mistyped: 0 errors, 0 warnings (1 ignored)" in out
    assert "DF001" not in out
    status, out, _ = run_check(["cli_graphs:mistyped", "--ignore", "DF0", "--show-ignored"], capsys)
    assert status == 0
    assert "mistyped/double.x: ignored error[DF001] (by --ignore DF001): 'x' is str" in out


def test_select_and_repeated_comma_separated_codes(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_check(["cli_graphs:both", "--select", "DF2"], capsys)
    assert status == 0 and "warning[DF201]" in out and "DF001" not in out
    status, out, _ = run_check(["cli_graphs:both", "--select", "DF001,DF201"], capsys)
    assert status == 1 and "error[DF001]" in out and "warning[DF201]" in out
    status, out, _ = run_check(["cli_graphs:both", "--ignore", "DF001", "--ignore", "DF201"], capsys)
    assert status == 0 and "cli_graphs:both: 0 errors, 0 warnings (2 ignored)" in out


def test_warnings_as_errors(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_check(["cli_graphs:warned"], capsys)
    assert status == 0 and "warned/make_int.x: warning[DF201]" in out
    for flag in ("-W", "--warnings-as-errors"):
        status, out, _ = run_check(["cli_graphs:warned", flag], capsys)
        assert status == 1 and "warned/make_int.x: error[DF201]" in out
        assert "cli_graphs:warned: 1 error, 0 warnings" in out


def test_defaults_come_from_the_nearest_tool_dfgraph_and_flags_win(
    graphs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (graphs / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.dfgraph]\nignore = ["DF001"]\nwarnings-as-errors = true\n'
    )
    deeper = graphs / "sub" / "deeper"
    deeper.mkdir(parents=True)
    (graphs / "sub" / "pyproject.toml").write_text('[project]\nname = "no dfgraph table here"\n')
    monkeypatch.chdir(deeper)
    status, out, _ = run_check(["cli_graphs:mistyped", "--show-ignored"], capsys)
    assert status == 0
    assert f"(by {graphs / 'pyproject.toml'} [tool.dfgraph] ignore DF001)" in out
    assert run_check(["cli_graphs:warned"], capsys)[0] == 1  # warnings-as-errors from the file
    assert run_check(["cli_graphs:warned", "--no-warnings-as-errors"], capsys)[0] == 0
    status, out, _ = run_check(["cli_graphs:mistyped", "--ignore", "DF201"], capsys)  # replaces the file's
    assert status == 1 and "error[DF001]" in out
    (graphs / "pyproject.toml").write_text('[tool.dfgraph]\nselect = ["DF2"]\nerrors = ["DF201"]\n')
    status, out, _ = run_check(["cli_graphs:both"], capsys)
    assert status == 1 and "error[DF201]" in out and "DF001" not in out


@pytest.mark.parametrize(
    ("config", "flags", "message"),
    [
        (None, ["--ignore", "DF999"], "--ignore: ignore=: unknown diagnostic code 'DF999'"),
        (None, ["--ignore", "DF004"], "DF004 cannot be ignored"),
        (None, ["--select", "XX1"], "--select: select=: unknown diagnostic code 'XX1'"),
        ('[tool.dfgraph]\nignores = ["DF001"]\n', [], "has no key 'ignores'; did you mean 'ignore'?"),
        ('[tool.dfgraph]\nignore = "DF001"\n', [], "ignore must be a list of codes"),
        ("[tool.dfgraph]\nwarnings-as-errors = 1\n", [], "warnings-as-errors must be true or false"),
        ('[tool.dfgraph]\nignore = ["DF01x"]\n', [], "unknown diagnostic code 'DF01x'"),
        ("[tool.dfgraph\n", [], "cannot read it"),
    ],
)
def test_usage_errors_exit_two(
    graphs: Path, capsys: pytest.CaptureFixture[str], config: str | None, flags: list[str], message: str
) -> None:
    if config is not None:
        (graphs / "pyproject.toml").write_text(config)
    status, out, err = run_check(["cli_graphs:mistyped", *flags], capsys)
    assert status == 2 and message in err and out == ""


def test_a_bad_option_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "blocks.examples:counter_one", "--no-such-flag"])
    assert exc.value.code == 2


def test_the_readme_configuration_is_read(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [table] = re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
    (graphs / "pyproject.toml").write_text(table)
    status, out, _ = run_check(["cli_graphs:both"], capsys)  # errors = ["DF201"] promotes the warning
    assert status == 1 and "both/make_int.x: error[DF201]" in out and "error[DF001]" in out

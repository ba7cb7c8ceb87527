"""The command line: `dfgraph check`, `describe` and `schedule`, their formats, exit codes and config."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sarif_schema
from hypothesis import given
from hypothesis import strategies as st

import dfgraph as df
from dfgraph import cli
from dfgraph.cli import main
from dfgraph.findings import Finding, github
from dfgraph_blocks import examples


def test_check_clean_graphs_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "dfgraph_blocks.examples:counter_one", "dfgraph_blocks.examples:counter_two"]) == 0
    out = capsys.readouterr().out
    assert "dfgraph_blocks.examples:counter_one: 0 errors, 0 warnings" in out
    assert "dfgraph_blocks.examples:counter_two: 0 errors, 0 warnings" in out


def test_check_reports_compiler_style_and_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "dfgraph_blocks.examples:counter_one", "dfgraph_blocks.examples:miswired"]) == 1
    out = capsys.readouterr().out
    assert "miswired/add_one.x: error[DF101]: " in out
    assert "miswired: error[DF003]: carry= names 'xx'" in out and "did you mean 'x'?" in out
    assert "  hint: " in out
    assert "dfgraph_blocks.examples:miswired: 3 errors, 0 warnings" in out


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected MODULE:ATTR"),
        ("no.such.module:x", "cannot import"),
        ("dfgraph_blocks.examples:nothing_here", "has no attribute"),
        ("dfgraph_blocks.examples:EXAMPLES", "not a block"),
    ],
)
@pytest.mark.parametrize("command", ["check", "describe", "schedule"])
def test_bad_targets_are_explained_and_exit_two(
    command: str, target: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if command == "check" and target == "no_colon":
        message = "cannot import 'no_colon'"  # check takes a MODULE too
    assert main([command, target]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_describe_prints_ports_and_structure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "dfgraph_blocks.examples:guided_loop", "--source"]) == 0
    out = capsys.readouterr().out
    assert "inputs:  num_steps: int, value: float" in out
    assert "outputs: timesteps: Sequence[float], value: float" in out
    assert "denoise  Loop(over='timesteps', item='t', index='i')" in out
    assert "edge scale.scaled -> cond.scaled" in out
    assert "def __call__(self" in out  # --source shows the generated code


def test_describe_of_a_broken_graph_with_source_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "dfgraph_blocks.examples:miswired", "--source"]) == 1
    assert "not compiled" in capsys.readouterr().out


def test_console_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dfgraph", "check", "dfgraph_blocks.examples:miswired"],
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


def make_mistyped(name: str) -> df.Sequential:
    return df.Sequential(make_str, double, name=name)
"""


@pytest.fixture
def graphs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module `cli_graphs` of small graphs, importable, in an empty folder that is the current one."""
    (tmp_path / "cli_graphs.py").write_text(GRAPHS)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("cli_graphs", "cli_located", "cli_empty", "graphs"):  # imported afresh from this folder
        monkeypatch.delitem(sys.modules, name, raising=False)
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
        main(["check", "dfgraph_blocks.examples:counter_one", "--no-such-flag"])
    assert exc.value.code == 2


def test_the_readme_configuration_is_read(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [table] = re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
    (graphs / "pyproject.toml").write_text(table)
    status, out, _ = run_check(["cli_graphs:both"], capsys)  # errors = ["DF201"] promotes the warning
    assert status == 1 and "both/make_int.x: error[DF201]" in out and "error[DF001]" in out


# -- every subcommand: --version, exit 0 clean / 1 findings / 2 usage ---------------------------------------


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"dfgraph {df.__version__}"


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["check", "dfgraph_blocks.examples:counter_two"], 0),
        (["check", "dfgraph_blocks.examples:miswired"], 1),
        (["describe", "dfgraph_blocks.examples:counter_two", "--source"], 0),
        (["describe", "dfgraph_blocks.examples:miswired", "--source"], 1),
        (["schedule", "dfgraph_blocks.examples:guided_loop"], 0),
        (["schedule", "dfgraph_blocks.examples:miswired"], 1),
        (["schedule", "dfgraph_blocks.examples:guided_loop", "--streams", "lots"], 2),
    ],
)
def test_exit_status_of_every_subcommand(
    args: list[str], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == status


@pytest.mark.parametrize("command", ["check", "describe", "schedule"])
def test_a_bad_option_exits_two_in_every_subcommand(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "dfgraph_blocks.examples:counter_one", "--no-such-flag"])
    assert exc.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_an_unloadable_target_wins_over_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "dfgraph_blocks.examples:miswired", "dfgraph_blocks.examples:nothing_here"]) == 2
    captured = capsys.readouterr()
    # the others are still checked
    assert "dfgraph_blocks.examples:miswired: 3 errors, 0 warnings" in captured.out
    assert "has no attribute" in captured.err


# -- file:line, formats, -q ---------------------------------------------------------------------------------

LOCATED = """
import dfgraph as df
from cli_graphs import make_int, make_mistyped, warned  # imported: not checked as this module's own


@df.block(outputs="x")  # make_str
def make_str() -> str:
    return "s"


@df.block(outputs="y")
class Double:  # Double
    def __call__(self, x: int) -> int:
        return x * 2


inner = df.Sequential(make_int, make_str, name="inner")  # inner
body = df.Graph(  # body
    {"first": inner, "double": Double()},
    edges=[("first.x", "double.x")],
    name="body",
)
looped = df.Loop(body, times="n", carry=("xs",), name="looped")  # looped
prog = df.compile(df.Sequential(make_int, name="compiled"))  # a Program: its block is checked by name
made = make_mistyped("made")  # built by a factory defined elsewhere: this module's own
"""


def line_of(source: str, marker: str) -> int:
    """The 1-based line of `source` that ends with the comment `# marker`."""
    [line] = [n for n, text in enumerate(source.splitlines(), 1) if text.endswith(f"# {marker}")]
    return line


@pytest.fixture
def located(graphs: Path) -> Path:
    """A module `cli_located` beside `cli_graphs`: a Loop over a Graph over a Sequential; a class block."""
    (graphs / "cli_located.py").write_text(LOCATED)
    return graphs


def test_text_findings_carry_the_file_and_line_of_their_block(
    located: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run_check(["cli_located:looped"], capsys)
    assert status == 1
    # DF003 names the loop itself: where the Loop was built
    assert f"cli_located.py:{line_of(LOCATED, 'looped')}: looped: error[DF003]: carry= names 'xs'" in out
    # DF001 at looped/body/double.x: the class block's definition
    assert f"cli_located.py:{line_of(LOCATED, 'Double') - 1}: looped/body/double.x: error[DF001]" in out
    # DF201 at looped/body/first/make_int.x: make_int was defined in cli_graphs, at its decorator
    graphs_line = GRAPHS.splitlines().index("def make_int() -> int:")  # 0-based index = decorator line
    assert f"cli_graphs.py:{graphs_line}: looped/body/first/make_int.x: warning[DF201]" in out


def test_locate_walks_loops_graphs_and_sequentials(located: Path) -> None:
    import cli_located  # type: ignore[import-not-found]

    from dfgraph.findings import locate

    file = str(located / "cli_located.py")
    looped = cli_located.looped
    assert locate(looped, "looped") == (file, line_of(LOCATED, "looped"))
    assert locate(looped, "looped (carried 'xs')") == (file, line_of(LOCATED, "looped"))
    assert locate(looped, "looped/body") == (file, line_of(LOCATED, "body"))
    assert locate(looped, "looped/body/first.x") == (file, line_of(LOCATED, "inner"))
    assert locate(looped, "looped/body/first/make_str.x") == (file, line_of(LOCATED, "make_str"))
    assert locate(looped, "looped/body/no_such_node.x") == (file, line_of(LOCATED, "body"))  # nearest known
    assert locate(looped, "something else") == (file, line_of(LOCATED, "looped"))  # the target itself


def test_json_format_is_one_object_per_finding(located: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_check(["cli_located:looped", "--format", "json", "--ignore", "DF201"], capsys)
    assert status == 1
    found = json.loads(out)  # nothing but the document on stdout
    keys = {"target", "code", "severity", "path", "message", "hint", "file", "line", "suppressed_by"}
    assert all(set(item) == keys for item in found)
    df001 = next(item for item in found if item["code"] == "DF001")
    assert df001["target"] == "cli_located:looped" and df001["severity"] == "error"
    assert df001["path"] == "looped/body/double.x" and "'x' is str" in df001["message"]
    assert df001["file"] == "cli_located.py" and df001["line"] == line_of(LOCATED, "Double") - 1
    assert df001["suppressed_by"] is None and "DF201" not in [item["code"] for item in found]
    status, out, _ = run_check(
        ["cli_located:looped", "--format", "json", "--ignore", "DF201", "--show-ignored"], capsys
    )
    [ignored] = [item for item in json.loads(out) if item["suppressed_by"] is not None]
    assert ignored["code"] == "DF201" and ignored["suppressed_by"] == "--ignore DF201"


def test_github_format_annotates_the_line(located: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_check(["cli_located:looped", "--format", "github"], capsys)
    assert status == 1
    line = line_of(LOCATED, "Double") - 1
    assert f"::error file=cli_located.py,line={line},title=DF001::looped/body/double.x: 'x' is str" in out
    assert "::warning file=cli_graphs.py," in out and "title=DF201::" in out
    assert "%0Ahint: " in out  # the hint on the annotation's second line
    assert all(text.startswith("::") or text.startswith("cli_located:looped: ") for text in out.splitlines())


def unescape(text: str) -> str:
    """What GitHub Actions reads back from a workflow command's escaped data."""
    return (
        text.replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


@given(message=st.text(), hint=st.text(), path=st.text(min_size=1), file=st.text(min_size=1))
def test_github_commands_are_one_line_and_round_trip(message: str, hint: str, path: str, file: str) -> None:
    d = df.Diagnostic("DF001", df.Severity.ERROR, path, message, hint)
    command = github(Finding("t:x", d, file, 3))
    assert "\n" not in command and "\r" not in command
    head, _, data = command.partition("::")[2].partition("::")
    assert unescape(data) == f"{path}: {message}" + (f"\nhint: {hint}" if hint else "")
    props = dict(p.split("=", 1) for p in head.removeprefix("error ").split(","))  # no raw ',' inside
    assert unescape(props["file"]) == file and props["line"] == "3" and props["title"] == "DF001"


def test_sarif_format_validates_and_maps_every_finding(
    located: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run_check(["cli_located:looped", "--format", "sarif", "--show-ignored", "-W"], capsys)
    assert status == 1
    log = json.loads(out)
    assert sarif_schema.errors(log, sarif_schema.SARIF_2_1_0) == []
    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(df.REGISTRY)
    assert run["tool"]["driver"]["version"] == df.__version__
    results = run["results"]
    df001 = next(r for r in results if r["ruleId"] == "DF001")
    assert rules[df001["ruleIndex"]]["id"] == "DF001" and df001["level"] == "error"
    [where] = df001["locations"]
    assert where["physicalLocation"]["artifactLocation"] == {
        "uri": "cli_located.py",
        "uriBaseId": "%SRCROOT%",
    }
    assert where["physicalLocation"]["region"] == {"startLine": line_of(LOCATED, "Double") - 1}
    assert where["logicalLocations"][0]["fullyQualifiedName"] == "looped/body/double.x"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == located.resolve().as_uri() + "/"
    df201 = next(r for r in results if r["ruleId"] == "DF201")
    assert df201["level"] == "error"  # -W promoted it
    assert run["invocations"][0]["exitCode"] == 1 and run["invocations"][0]["executionSuccessful"]


def test_sarif_lists_suppressions_and_the_schema_check_catches_mistakes(
    graphs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run_check(
        ["cli_graphs:mistyped", "--format", "sarif", "--ignore", "DF001", "--show-ignored"], capsys
    )
    log = json.loads(out)
    assert sarif_schema.errors(log, sarif_schema.SARIF_2_1_0) == []
    [result] = log["runs"][0]["results"]
    assert result["suppressions"] == [{"kind": "external", "justification": "--ignore DF001"}]
    # the structural check is not vacuous: each of these breaks the schema
    broken = json.loads(out)
    del broken["runs"][0]["tool"]["driver"]["name"]
    broken["runs"][0]["results"][0]["level"] = "fatal"
    broken["runs"][0]["results"][0]["suppressions"][0]["kind"] = "cli"
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    broken["runs"][0]["results"][0]["message"] = {}
    broken["runs"][0]["results"][0]["file"] = "x.py"
    problems = sarif_schema.errors(broken, sarif_schema.SARIF_2_1_0)
    assert len(problems) == 6, problems


def test_quiet_prints_only_the_findings(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_check(["cli_graphs:mistyped", "cli_graphs:warned", "-q"], capsys)
    assert status == 1 and "error[DF001]" in out and "warning[DF201]" in out
    assert "errors" not in out  # no summary lines
    status, out, _ = run_check(["dfgraph_blocks.examples:counter_one", "--quiet"], capsys)
    assert status == 0 and out == ""


# -- dfgraph check MODULE, [tool.dfgraph] targets and format, the pre-commit hook ----------------------------


def test_check_module_checks_what_it_defines(located: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_check(["cli_located"], capsys)
    assert status == 1
    summaries = [text.split(": ")[0] for text in out.splitlines() if text.endswith(("warnings", "warning"))]
    # inner and body are inside looped; make_str and Double too; make_int and warned are imported;
    # the Program's block was built here; made was built for this module by a factory elsewhere
    assert summaries == ["cli_located:looped", "cli_located:prog", "cli_located:made"]
    status, out, _ = run_check(["cli_graphs"], capsys)
    summaries = [text.split(": ")[0] for text in out.splitlines() if text.endswith(("warnings", "warning"))]
    assert summaries == ["cli_graphs:warned", "cli_graphs:mistyped", "cli_graphs:both"]


def test_check_module_without_blocks_exits_two(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (graphs / "cli_empty.py").write_text("import dfgraph as df\nfrom cli_graphs import both\nx = 1\n")
    status, out, err = run_check(["cli_empty"], capsys)
    assert status == 2 and "defines no blocks or graphs" in err and out == ""


def test_targets_and_format_come_from_the_config(
    located: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (located / "pyproject.toml").write_text(
        '[tool.dfgraph]\ntargets = ["cli_graphs:warned", "cli_graphs:mistyped"]\nformat = "json"\n'
    )
    status, out, _ = run_check([], capsys)
    assert status == 1
    assert {item["target"] for item in json.loads(out)} == {"cli_graphs:warned", "cli_graphs:mistyped"}
    status, out, _ = run_check(["cli_graphs:warned", "--format", "text"], capsys)  # arguments win
    assert status == 0 and "cli_graphs:warned: 0 errors, 1 warning" in out and "mistyped" not in out
    # from a subfolder, the targets are imported relative to the pyproject.toml
    (located / "sub").mkdir()
    monkeypatch.chdir(located / "sub")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(located)])
    sys.modules.pop("cli_graphs", None)
    status, out, _ = run_check([], capsys)
    assert status == 1 and len(json.loads(out)) == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[tool.dfgraph]\n", "no targets"),
        ('[tool.dfgraph]\ntargets = "cli_graphs"\n', "targets must be a list of targets"),
        ('[tool.dfgraph]\ntargets = ["cli_graphs"]\nformat = "xml"\n', "format must be one of text, json"),
    ],
)
def test_bad_targets_or_format_in_the_config_exit_two(
    graphs: Path, capsys: pytest.CaptureFixture[str], config: str, message: str
) -> None:
    (graphs / "pyproject.toml").write_text(config)
    status, out, err = run_check([], capsys)
    assert status == 2 and message in err and out == ""


def test_pre_commit_hook_runs_dfgraph_check(graphs: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / ".pre-commit-hooks.yaml").read_text()
    [hook] = [dict(line.strip(" -").split(": ", 1) for line in text.splitlines() if ": " in line)]
    assert hook["id"] == "dfgraph-check" and hook["entry"] == "dfgraph check"
    assert hook["language"] == "python" and hook["pass_filenames"] == "false"
    # what pre-commit runs: the entry, from the repository root, with the targets of [tool.dfgraph]
    (graphs / "pyproject.toml").write_text('[tool.dfgraph]\ntargets = ["cli_graphs:mistyped"]\n')
    entry = hook["entry"].split()
    assert entry[0] == "dfgraph"
    done = subprocess.run(
        [sys.executable, "-m", "dfgraph", *entry[1:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=graphs,
    )
    assert done.returncode == 1 and "cli_graphs.py:" in done.stdout and "error[DF001]" in done.stdout


# -- the README's "Command line" section, as written ---------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_command_line() -> str:
    text = README.read_text()
    return text[text.index("## Command line\n") : text.index("## Property testing your graphs")]


def test_the_readme_lists_every_subcommand() -> None:
    listing = re.findall(r"```\n(dfgraph --version.*?)```", readme_command_line(), flags=re.S)[0]
    subcommands = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(subcommands) == {"check", "describe", "schedule", "run"}
    for name in subcommands:
        assert re.search(rf"^dfgraph {name} ", listing, flags=re.M), name


def test_the_readme_console_session_is_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = readme_command_line()
    [module] = [
        b for b in re.findall(r"```python\n(.*?)```", section, flags=re.S) if b.startswith("# graphs.py")
    ]
    [session] = re.findall(r"```console\n(.*?)```", section, flags=re.S)
    (tmp_path / "graphs.py").write_text(module)
    commands = re.split(r"^\$ ", session, flags=re.M)[1:]
    assert len(commands) == 2
    for command in commands:
        line, _, expected = command.partition("\n")
        argv = line.split()
        assert argv[0] == "dfgraph"
        done = subprocess.run(
            [sys.executable, "-m", "dfgraph", *argv[1:]],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert done.returncode == 1 and done.stdout == expected, done.stderr


def test_the_readme_targets_key_is_read(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [table] = re.findall(r"```toml\n(.*?)```", readme_command_line(), flags=re.S)
    section = readme_command_line()
    [module] = [
        b for b in re.findall(r"```python\n(.*?)```", section, flags=re.S) if b.startswith("# graphs.py")
    ]
    (graphs / "graphs.py").write_text(module)
    (graphs / "pyproject.toml").write_text(table)
    status, out, _ = run_check([], capsys)  # targets = ["graphs"]
    assert status == 1 and "graphs.py:8: g/double.x: error[DF001]" in out and "graphs:g: 1 error" in out


def test_the_readme_pre_commit_snippet_names_the_hook() -> None:
    [snippet] = re.findall(r"```yaml\n(.*?)```", readme_command_line(), flags=re.S)
    hooks = (README.parent / ".pre-commit-hooks.yaml").read_text()
    [hook_id] = re.findall(r"- id: (\S+)", snippet)
    assert f"- id: {hook_id}\n" in hooks and "repos:" in snippet and "rev:" in snippet


def test_describe_and_schedule_compile_with_the_config_rules(
    graphs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "cli_graphs:mistyped"]) == 1  # DF001 stops compilation
    assert main(["describe", "cli_graphs:mistyped", "--source"]) == 1
    (graphs / "pyproject.toml").write_text('[tool.dfgraph]\nignore = ["DF001"]\n')
    capsys.readouterr()
    assert main(["schedule", "cli_graphs:mistyped"]) == 0
    assert main(["describe", "cli_graphs:mistyped", "--source"]) == 0
    assert "def __call__(self" in capsys.readouterr().out
    (graphs / "pyproject.toml").write_text('[tool.dfgraph]\nignore = ["DF004"]\n')
    for command in (["schedule", "cli_graphs:mistyped"], ["describe", "cli_graphs:mistyped"]):
        assert main(command) == 2
        captured = capsys.readouterr()
        assert f"dfgraph {command[0]}: error: " in captured.err and "DF004 cannot be ignored" in captured.err
        assert captured.out == ""


def test_describe_and_schedule_draw_pictures(capsys: pytest.CaptureFixture[str]) -> None:
    from dfgraph import render

    assert main(["describe", "dfgraph_blocks.examples:guided_loop", "--format", "dot"]) == 0
    assert capsys.readouterr().out == render.to_dot(examples.guided_loop)
    assert main(["describe", "dfgraph_blocks.examples:guided_loop", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out == render.to_mermaid(examples.guided_loop)
    assert main(["schedule", "dfgraph_blocks.examples:guided_loop", "--format", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sequenceDiagram") and "guided_loop/denoise" in out
    assert main(["schedule", "dfgraph_blocks.examples:guided_loop", "--format", "trace"]) == 0
    trace = json.loads(capsys.readouterr().out)
    names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "X"}
    assert any("cond" in n for n in names) and any("uncond" in n for n in names)
    # an unloadable target is a usage error in every format; a bad format is argparse's exit 2
    assert main(["describe", "nope:x", "--format", "dot"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["schedule", "dfgraph_blocks.examples:guided_loop", "--format", "svg"])
    assert exc.value.code == 2


def test_a_file_outside_the_current_directory_is_absolute(
    located: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = located / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    status, out, _ = run_check(["cli_graphs:mistyped", "--format", "sarif"], capsys)
    assert status == 1
    [result] = json.loads(out)["runs"][0]["results"]
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": (located / "cli_graphs.py").resolve().as_uri()}  # no base: absolute
    status, out, _ = run_check(["cli_graphs:mistyped"], capsys)
    assert status == 1 and out.startswith(f"{(located / 'cli_graphs.py').resolve()}:")


def test_a_miswired_graph_is_still_drawn(graphs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A picture helps most when the wiring is wrong: a graph with a cycle (DF004) is drawn, exit 0."""
    (graphs / "cli_cyclic.py").write_text(
        "import dfgraph as df\n\n"
        "@df.block(outputs='x')\ndef inc(x: int) -> int:\n    return x + 1\n\n"
        "cyclic = df.Graph({'a': inc, 'b': inc}, edges=[('a.x', 'b.x'), ('b.x', 'a.x')], name='cyclic')\n"
    )
    assert main(["describe", "cli_cyclic:cyclic", "--format", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart") and "a: inc" in out and "b: inc" in out
    assert main(["check", "cli_cyclic:cyclic", "-q"]) == 1 and "DF004" in capsys.readouterr().out

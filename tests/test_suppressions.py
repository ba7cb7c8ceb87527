"""Diagnostics users control: the code registry, ignore= / errors= / select=, block and port suppressions."""

from __future__ import annotations

import pickle
import re
import sys
import types
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dfgraph as df
import dfgraph_blocks as blocks
from dfgraph.cli import main as dfgraph_main
from dfgraph.diagnostics import REGISTRY, TYPE_CODES, fatal_codes, registry_table, select_codes
from dfgraph.testing.generators import Injected, Malformed, malformed_graphs, mistyped_graphs

ROOT = Path(__file__).resolve().parent.parent
IGNORABLE = sorted(c for c, info in REGISTRY.items() if not info.fatal)


# -- small graphs with one known finding -----------------------------------------------------------------


@df.block(outputs="x")
def make_str() -> str:
    return "text"


@df.block(outputs="y")
def double(x: int) -> int:
    return x * 2


@df.block(outputs="x")
def make_int() -> int:
    return 1


def mistyped() -> df.Sequential:
    """make_str.x (str) feeds double.x (int): one DF001 at mistyped/double.x."""
    return df.Sequential(make_str, double, name="mistyped")


def overwritten() -> df.Sequential:
    """make_int.x is overwritten by make_str.x before anyone reads it: one DF201 warning."""
    return df.Sequential(make_int, make_str, name="overwritten")


class HandWritten:
    """A protocol block with one hand-written input and output port; it passes the value through."""

    def __init__(self, name: str, x_in: df.Port, x_out: df.Port) -> None:
        self.name = name
        self.inputs = (x_in,)
        self.outputs = (x_out,)

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        return {self.outputs[0].name: inputs[self.inputs[0].name]}


# -- the registry ----------------------------------------------------------------------------------------


def test_the_readme_diagnostics_table_is_the_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    assert registry_table() in readme
    rows = re.findall(r"^\| (DF\d{3}) \|", readme, flags=re.MULTILINE)
    assert rows == list(REGISTRY)  # no other code row anywhere in the README


def test_every_code_emitted_is_registered_and_every_registered_code_is_emitted() -> None:
    # the modules as imported: the source tree, or the installed wheel when CI tests that
    packages = [Path(df.__file__).parent, Path(blocks.__file__).parent]
    sources = [*packages[0].rglob("*.py"), *packages[1].rglob("*.py")]
    emitted = {
        code
        for path in sources
        # the registry itself; dfgraph.testing only expects codes (its generators draw graphs that have them)
        if path.name != "diagnostics.py" and path.parent.name != "testing"
        for code in re.findall(r"[\"'](DF\d{3})[\"']", path.read_text())
    }
    assert emitted == set(REGISTRY)
    assert all(REGISTRY[c].meaning for c in REGISTRY)
    assert fatal_codes() == ["DF000", "DF003", "DF004", "DF005", "DF006"]
    assert set(REGISTRY) >= TYPE_CODES


# -- selecting codes ---------------------------------------------------------------------------------------


def test_codes_prefixes_and_iterables_select_registered_codes() -> None:
    assert select_codes("DF001") == {"DF001"}
    assert select_codes(["DF001", "df201"]) == {"DF001", "DF201"}
    assert select_codes("DF2") == {c for c in REGISTRY if c.startswith("DF2")}
    assert select_codes("DF0") == {"DF001", "DF002"}  # a prefix leaves the fatal codes out
    assert select_codes("DF0", "select") == {c for c in REGISTRY if c.startswith("DF0")}
    assert select_codes(None) == frozenset()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("DF010", "unknown diagnostic code 'DF010'; did you mean"),
        (["DF001", "DF999"], "unknown diagnostic code 'DF999'"),
        ("E501", "unknown diagnostic code 'E501'"),
        ([1], "takes diagnostic codes"),
        ("DF004", "DF004 cannot be ignored"),
        ("DF000", "DF000 cannot be ignored"),
    ],
)
def test_bad_codes_are_value_errors(spec: Any, message: str) -> None:
    for call in (lambda: df.check(mistyped(), ignore=spec), lambda: df.compile(mistyped(), ignore=spec)):
        with pytest.raises(ValueError, match=re.escape(message)):
            call()


@given(st.sets(st.sampled_from(IGNORABLE)))
def test_any_set_of_ignorable_codes_selects_itself(codes: set[str]) -> None:
    assert select_codes(sorted(codes)) == codes
    assert select_codes(sorted(codes), "errors") == codes


# -- check and compile -----------------------------------------------------------------------------------


def test_an_ignored_error_is_kept_in_report_ignored_and_compile_proceeds() -> None:
    report = df.check(mistyped(), ignore="DF001")
    assert report.ok and report.diagnostics == ()
    [ignored] = report.ignored
    assert (ignored.code, ignored.path, ignored.suppressed_by) == (
        "DF001",
        "mistyped/double.x",
        "ignore=DF001",
    )
    assert str(ignored).startswith("mistyped/double.x: ignored error[DF001] (by ignore=DF001): 'x' is str")
    assert report.summary() == "0 errors, 0 warnings (1 ignored)"
    with pytest.raises(df.WiringError):
        df.compile(mistyped())
    program = df.compile(mistyped(), ignore=["DF001"])
    assert program(output="y") == "texttext"  # the str passes the ignored edge unchecked
    assert program.report.ignored == report.ignored


def test_a_pickled_program_recompiles_with_its_suppressions() -> None:
    program = df.compile(mistyped(), ignore=(code for code in ["DF001"]), errors="DF2")
    back = pickle.loads(pickle.dumps(program))
    assert back(output="y") == "texttext"
    assert back.report.ignored == program.report.ignored


def test_errors_promotes_warnings_and_stops_compile() -> None:
    assert df.check(overwritten()).codes() == ["DF201"] and df.check(overwritten()).ok
    report = df.check(overwritten(), errors="DF2")
    assert [(d.code, d.severity) for d in report.diagnostics] == [("DF201", df.Severity.ERROR)]
    with pytest.raises(df.WiringError, match="DF201"):
        df.compile(overwritten(), errors=("DF201",))
    assert df.check(overwritten(), ignore="DF201", errors="DF201").diagnostics == ()  # ignore wins


def test_select_reports_only_the_selected_codes_and_always_the_fatal_ones() -> None:
    graph = df.Sequential(make_int, make_str, double, name="both")  # a DF201 and a DF001
    assert sorted(df.check(graph).codes()) == ["DF001", "DF201"]
    report = df.check(graph, select="DF2")
    assert report.codes() == ["DF201"]
    assert [(d.code, d.suppressed_by) for d in report.ignored] == [("DF001", "select= (not selected)")]
    broken = df.Graph({"a": make_int, "b": double}, [("nope.x", "b.x")], name="g")  # DF003
    assert "DF003" in df.check(broken, select="DF201").codes()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(mistyped_graphs(max_blocks=6))
def test_every_injected_type_error_can_be_ignored_and_then_compiles(injected: Injected) -> None:
    with pytest.raises(df.WiringError):
        df.compile(injected.block)
    report = df.check(injected.block, ignore=injected.code)
    assert report.ok and injected.code in [d.code for d in report.ignored]
    assert df.compile(injected.block, ignore=injected.code).report.ok


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(malformed_graphs())
def test_ignorable_structural_errors_compile_and_fatal_ones_cannot_be_ignored(
    bad: Malformed,
) -> None:
    try:
        blk = bad.build()
    except df.WiringError:
        return  # DF006 raised where the definition is written: nothing to ignore
    if REGISTRY[bad.code].fatal:
        with pytest.raises(ValueError, match=f"{bad.code} cannot be ignored"):
            df.check(blk, ignore=bad.code)
        assert bad.code in df.check(blk, ignore=IGNORABLE).codes()  # nothing else hides it
        return
    assert df.compile(blk, ignore=bad.code).report.ok


# -- suppressions carried by blocks and ports --------------------------------------------------------------


def test_a_block_suppresses_codes_at_its_ports_at_either_end_of_an_edge() -> None:
    @df.block(outputs="z", ignore=("DF001",))
    def tolerant(x: int) -> int:
        return x

    @df.block(outputs="x", ignore="DF001")
    def loose_str() -> str:
        return "s"

    for graph, where in [
        (df.Sequential(make_str, tolerant, name="g"), "ignore= of block g/tolerant"),
        (df.Sequential(loose_str, double, name="g"), "ignore= of block g/loose_str"),
    ]:
        report = df.check(graph)
        assert report.ok and [d.suppressed_by for d in report.ignored] == [where]
        df.compile(graph)
    # only findings located at the block: a DF001 between two other blocks is still reported
    report = df.check(df.Sequential(make_str, double, tolerant, name="g"))
    assert report.codes() == ["DF001"] and report.errors[0].path == "g/double.x"


def test_a_block_suppresses_codes_at_single_ports() -> None:
    @df.block(outputs="y", ignore={"x": "DF001"})
    def two(x: int, z: int) -> int:
        return x + z

    report = df.check(df.Sequential(make_str, df.Graph({"s": make_str}, name="zs"), two, name="g"))
    assert [(d.code, d.path) for d in report.ignored] == [("DF001", "g/two.x")]
    assert [d.suppressed_by for d in report.ignored] == ["ignore= of input g/two.x"]
    assert [p.ignore for p in two.inputs] == [("DF001",), ()]
    with pytest.raises(ValueError, match="ignore= names no port 'xx'; did you mean 'x'"):
        df.block(outputs="y", ignore={"xx": "DF001"})(lambda x: x)
    with pytest.raises(ValueError, match="unknown diagnostic code 'DF0001'"):
        df.block(outputs="y", ignore="DF0001")(lambda x: x)


def test_a_class_block_carries_its_suppressions() -> None:
    @df.block(outputs="y", ignore=["DF001"])
    class Tolerant:
        def __call__(self, x: int) -> int:
            return x

    assert df.check(df.Sequential(make_str, Tolerant(), name="g")).ok


def test_port_check_false_suppresses_type_findings_at_that_port_only() -> None:
    unchecked = HandWritten("h", df.Port("x", int, check=False), df.Port("x", int))
    report = df.check(df.Sequential(make_str, unchecked, name="g"))
    assert report.ok and [d.suppressed_by for d in report.ignored] == ["check=False of input g/h.x"]
    assert df.compile(df.Sequential(make_str, unchecked, name="g"))(output="x") == "text"
    # the same flag on the output named 'x' does not reach the input 'x'
    other_side = HandWritten("h", df.Port("x", int), df.Port("x", int, check=False))
    assert df.check(df.Sequential(make_str, other_side, name="g")).codes() == ["DF001"]
    # check=False is about types: an overwritten value (DF201) is still reported; ignore= names it
    quiet = HandWritten("h", df.Port("x", Any), df.Port("x", int, check=False))
    assert df.check(df.Sequential(quiet, make_int, name="g")).codes() == ["DF201"]
    named = HandWritten("h", df.Port("x", Any), df.Port("x", int, ignore=("DF201",)))
    report = df.check(df.Sequential(named, make_int, name="g"))
    assert report.ok and [d.suppressed_by for d in report.ignored] == ["ignore= of port g/h.x"]


def test_ports_validate_their_codes() -> None:
    assert df.Port("x", int, ignore="DF2").ignore == tuple(c for c in REGISTRY if c.startswith("DF2"))
    with pytest.raises(ValueError, match="did you mean 'DF001'"):
        df.Port("x", int, ignore=("DF0001",))
    with pytest.raises(ValueError, match="DF006 cannot be ignored"):
        df.Port("x", int, ignore=("DF006",))


def test_fatal_findings_are_never_suppressed_by_a_block() -> None:
    class Broken(HandWritten):
        __dfgraph_ignore__ = ("DF006",)  # a hand-written block may claim anything

    broken = Broken("b", df.Port("x", int), df.Port("x", int))
    broken.outputs = (df.Port("x", int), df.Port("x", int))  # one name twice: DF006
    assert "DF006" in df.check(df.Sequential(make_int, broken, name="g")).codes()


# -- diffusers' SDXL workflows: clean by documented suppressions, then compiled ------------------------


def _sdxl_ignore(blocks: Any) -> dict[str, tuple[str, ...]]:
    """The known findings of the SDXL classes as an explicit `ignore=` mapping, plus DF202 everywhere."""
    from dfgraph_blocks.modular_known import KNOWN_FINDINGS

    classes, stack = set(), [blocks]
    while stack:
        block = stack.pop()
        classes.add(type(block).__name__)
        stack.extend((getattr(block, "sub_blocks", None) or {}).values())
    ignore = {key: tuple(codes) for key, codes in KNOWN_FINDINGS.items() if key.partition(".")[0] in classes}
    return {"*": ("DF202",), **ignore}


def test_sdxl_workflows_are_clean_with_explicit_suppressions_and_compile(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("diffusers")
    from diffusers.modular_pipelines import StableDiffusionXLAutoBlocks

    from dfgraph_blocks.diffusers_compat import from_modular, from_modular_workflows

    sdxl = StableDiffusionXLAutoBlocks()
    ignore = _sdxl_ignore(sdxl)
    options: dict[str, Any] = {"name": "sdxl", "ignore": ignore, "known_findings": False}
    for workflow, graph in from_modular_workflows(sdxl, **options).items():
        report = df.check(graph)
        assert report.diagnostics == (), (workflow, str(report))
        assert {d.code for d in report.ignored} >= {"DF001", "DF202"}, workflow
        program = df.compile(graph)
        assert {p.name for p in program.outputs} >= {"images"}, workflow
    # without the suppressions the same workflow does not compile
    with pytest.raises(df.WiringError, match="DF001"):
        df.compile(from_modular(sdxl, workflow="text2image", known_findings=False))
    with pytest.raises(
        ValueError, match="no block of StableDiffusionXLAutoBlocks is a StableDiffusionXLLoopDenoiserr"
    ):
        from_modular(sdxl, ignore={"StableDiffusionXLLoopDenoiserr.t": "DF001"})
    with pytest.raises(ValueError, match="the converted StableDiffusionXLLoopDenoiser has no port 'tt'"):
        from_modular(sdxl, workflow="text2image", ignore={"StableDiffusionXLLoopDenoiser.tt": "DF001"})
    t2i = from_modular(sdxl, workflow="text2image", ignore="DF202", known_findings=False)  # every block
    assert set(df.check(t2i).codes()) == {"DF001"}
    # the command line agrees: clean, and --show-ignored says what suppressed each finding
    module = types.ModuleType("sdxl_clean")
    module.inpainting = from_modular(sdxl, workflow="inpainting", **options)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sdxl_clean", module)
    assert dfgraph_main(["check", "sdxl_clean:inpainting", "-W", "--show-ignored"]) == 0
    out = capsys.readouterr().out
    loop = "sdxl/denoise/denoise/inpaint_denoise"
    assert f"{loop}/denoiser.t: ignored error[DF001] (by ignore= of input {loop}/denoiser.t)" in out
    strength = "sdxl/denoise/before_denoise/inpaint/prepare_latents.strength"
    assert f"sdxl: ignored warning[DF206] (by ignore= of input {strength})" in out
    assert "sdxl_clean:inpainting: 0 errors, 0 warnings (" in out


def test_ignored_shape_and_dtype_errors_compile() -> None:
    torch = pytest.importorskip("torch")  # the [diffusion] extra; the core subset runs without it
    from jaxtyping import Float, Int
    from torch import Tensor

    @df.block(outputs="a")
    def make(n: int) -> Float[Tensor, "n 3"]:
        return torch.zeros(n, 3)

    @df.block(outputs="b")
    def wants_four(a: Float[Tensor, "n 4"]) -> Float[Tensor, "n 4"]:
        return a

    @df.block(outputs="b")
    def wants_int(a: Int[Tensor, "n 3"]) -> Int[Tensor, "n 3"]:
        return a

    shape = df.Sequential(make, wants_four, name="shape")
    dtype = df.Sequential(make, wants_int, name="dtype")
    assert df.check(shape).codes() == ["DF301"] and df.check(dtype).codes() == ["DF302"]
    assert df.compile(shape, ignore="DF301")(n=2, output="b").shape == (2, 3)
    assert df.compile(dtype, ignore="DF3")(n=2, output="b").dtype == torch.float32


def test_the_readme_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    [example] = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "ignore=" in b]
    exec(example, {})  # asserts inside


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


@df.block(outputs="p")
def reads_int(v: int) -> int:
    return v


@df.block(outputs="q")
def reads_str(v: str) -> str:
    return v


@df.block(outputs="i")
def writes_index(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("code", "graph", "inputs", "expected"),
    [
        ("DF002", lambda: df.Sequential(reads_int, reads_str, name="g"), {"v": 3}, {"p": 3, "q": 3}),
        ("DF102", lambda: df.Loop(add_one, times="n", carry=(), name="g"), {"n": 2, "x": 0}, {"x": 2}),
        (
            "DF103",
            lambda: df.Loop(df.Sequential(add_one, writes_index), times="n"),
            {"n": 1, "x": 0},
            {"x": 1},
        ),
    ],
)
def test_each_ignorable_structural_error_compiles_when_ignored(
    code: str, graph: Any, inputs: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert code in df.check(graph()).codes()
    with pytest.raises(df.WiringError, match=code):
        df.compile(graph())
    out = df.compile(graph(), ignore=code)(**inputs)
    assert {k: out[k] for k in expected} == expected


def test_an_input_finding_is_located_at_every_reader() -> None:
    lenient = HandWritten("h", df.Port("v", str, check=False), df.Port("x", int))
    report = df.check(df.Sequential(reads_int, lenient, name="g"))  # DF002: v read as int and as str
    assert report.ok and [(d.code, d.suppressed_by) for d in report.ignored] == [
        ("DF002", "check=False of input g/h.v")
    ]


def test_a_hand_written_block_may_carry_suppressions() -> None:
    class Lenient(HandWritten):
        __dfgraph_ignore__ = ("DF001",)

    report = df.check(df.Sequential(make_str, Lenient("h", df.Port("x", int), df.Port("y", int)), name="g"))
    assert report.ok and [d.suppressed_by for d in report.ignored] == ["ignore= of block g/h"]
    with pytest.raises(ValueError, match="DF004 cannot be ignored"):
        df.block(outputs="y", ignore=("DF004",))(lambda x: x)


def test_an_unchecked_port_is_not_checked_at_the_call_boundary_either() -> None:
    strict = df.compile(HandWritten("h", df.Port("x", int), df.Port("x", int)))
    with pytest.raises(df.InputError, match="input 'x' must be int"):
        strict(x="s")
    lenient = df.compile(HandWritten("h", df.Port("x", int, check=False), df.Port("x", int)))
    assert lenient(x="s", output="x") == "s"
    both = df.Sequential(reads_int, HandWritten("h", df.Port("v", str, check=False), df.Port("w", str)))
    with pytest.raises(df.InputError, match="input 'v' must be int"):
        df.compile(both)(v="s")  # the other reader still checks


def test_a_likely_misspelt_input_is_located_at_its_readers() -> None:
    @df.block(outputs="latents")
    def make_latents() -> int:
        return 1

    @df.block(outputs="y", ignore="DF207")
    def reads_latent(latent: int) -> int:
        return latent

    @df.block(outputs="z")
    def reads_latent_too(latent: int) -> int:
        return latent

    assert df.check(df.Sequential(make_latents, reads_latent_too, name="g")).codes() == ["DF207"]
    report = df.check(df.Sequential(make_latents, reads_latent, reads_latent_too, name="g"))
    assert report.ok and [(d.code, d.suppressed_by) for d in report.ignored] == [
        ("DF207", "ignore= of block g/reads_latent")
    ]


def test_a_block_explains_its_suppressions() -> None:
    """`__dfgraph_ignore_reasons__` appends the reason to `suppressed_by`, at a port and at the block."""

    @df.block(outputs="x", ignore={"x": "DF001"})
    def make() -> str:
        return "1"

    @df.block(outputs="y")
    def use(x: int) -> int:
        return x

    make.__dfgraph_ignore_reasons__ = {("x", "DF001"): "the value is parsed later"}  # type: ignore[attr-defined]
    [ignored] = df.check(df.Sequential(make, use, name="g")).ignored
    assert ignored.suppressed_by == "ignore= of output g/make.x: the value is parsed later"
    use.__dfgraph_ignore__ = ("DF001",)  # type: ignore[attr-defined]
    use.__dfgraph_ignore_reasons__ = {("", "DF001"): "accepts strings too"}  # type: ignore[attr-defined]
    make.__dfgraph_ignore_reasons__ = "not a mapping"  # type: ignore[attr-defined]  # explains nothing
    make.outputs = tuple(attrs.evolve(p, ignore=()) for p in make.outputs)  # type: ignore[attr-defined]
    [ignored] = df.check(df.Sequential(make, use, name="g")).ignored
    assert ignored.suppressed_by == "ignore= of block g/use: accepts strings too"

"""The IR: its printer (exact text, stability, deep nests), its verifier (each kind of corruption is caught
and named) and the pass list (the verifier after every pass under the debug switch)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import dfgraph as df
import dfgraph.passes as passes
from benchmarks.scaling import loop_nest, one_leaf_nest, sequential_nest, wide_graph
from dfgraph.check import Rules
from dfgraph.fuse import fuse
from dfgraph.ir import (
    CallOp,
    FusedOp,
    IRError,
    LoopOp,
    Lowered,
    Op,
    Region,
    Slot,
    Value,
    format_ir,
    verify,
)
from dfgraph_blocks import examples


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


@df.block(outputs="y")
def double(x: int) -> int:
    return 2 * x


@df.block(outputs="y", batch=("x",))
def denoise(x: float, t: float) -> float:
    return x * t


@df.block(outputs="z")
def combine(a: float, b: float) -> float:
    return a - b


@df.block(outputs="x")
def add_item(x: float, t: float) -> float:
    return x + t


def sequence() -> df.Sequential:
    return df.Sequential(add_one, double, name="seq")


def counter() -> df.Loop:
    return df.Loop(df.Sequential(add_one, add_one), times="num_steps")


def pair() -> df.Graph:
    return df.Graph(
        {"cond": denoise, "uncond": denoise, "mix": combine},
        edges=[("xc", "cond.x"), ("xu", "uncond.x"), ("cond.y", "mix.a"), ("uncond.y", "mix.b")],
        name="pair",
    )


def fused_pair() -> Lowered:
    lowered = df.lower(pair())
    assert fuse(lowered) == [("pair/cond", "pair/uncond")]
    return lowered


def over_loop() -> df.Loop:
    return df.Loop(add_item, over="ts", item="t", name="walk")


# -- the printer --------------------------------------------------------------------------------------------

SEQUENCE_TEXT = """\
graph seq
input %2:x: int
%3:x = call add_one(x=%2:x)  # seq/add_one
%5:y = call double(x=%3:x)  # seq/double
output x = %3:x
output y = %5:y"""

COUNTER_TEXT = """\
graph loop
input %2:num_steps: int
input %9:x: int
%10:x = loop times %2:num_steps, index %3:i  # loop
  %5:x = phi(%9:x, %8:x)
  %6:x = call add_one(x=%5:x)  # loop/add_one
  %8:x = call add_one(x=%6:x)  # loop/add_one_2
  out %10:x = %8:x if ran else %9:x
output x = %10:x"""

FUSED_TEXT = """\
graph pair
input %1:xc: float
input %3:t: float
input %5:xu: float
%4:y, %7:y = fused(pair/cond, pair/uncond) denoise(x=%1:xc, t=%3:t, x=%5:xu, t=%3:t)  # pair/cond+uncond
%9:z = call combine(a=%4:y, b=%7:y)  # pair/mix
output y = %7:y
output z = %9:z"""


def test_a_sequential_prints_one_call_a_line() -> None:
    assert str(df.lower(sequence())) == SEQUENCE_TEXT


def test_a_loop_prints_as_an_indented_region_with_its_phi_and_outputs() -> None:
    assert str(df.lower(counter())) == COUNTER_TEXT


def test_a_fused_pair_prints_as_one_call_naming_its_members() -> None:
    assert str(fused_pair()) == FUSED_TEXT


def test_an_over_loop_shows_its_item_and_a_non_carried_output() -> None:
    lines = str(df.lower(df.Loop(double, over="ts", item="t", name="walk"))).splitlines()
    assert re.fullmatch(r"%\d+:y = loop over %\d+:ts, index %\d+:i, item %\d+:t  # walk", lines[3])
    assert re.fullmatch(r"  out %\d+:y = %\d+:y if ran else unset", lines[-2])


def test_each_op_formats_as_its_own_line() -> None:
    lowered = df.lower(examples.guided_loop)
    lines = [line.strip() for line in str(lowered).splitlines()]
    for op in lowered.ops():
        assert lines.count(op.format()) == 1
        assert op.format().endswith(f"  # {op.path}")


def test_printing_is_stable() -> None:
    for build in (sequence, counter, pair, lambda: examples.guided_loop):
        assert str(df.lower(build())) == str(df.lower(build())) == format_ir(df.lower(build()))


def test_loops_nested_deep_print_indented_and_verify() -> None:
    lowered = df.lower(loop_nest(300))
    text = str(lowered)
    assert "\n" + "  " * 299 + "%" in text  # the innermost body, indented once per loop around it
    verify(lowered)


def test_sequentials_nested_20000_deep_print_without_recursion() -> None:
    lowered = df.lower(one_leaf_nest(20_000))
    lines = str(lowered).splitlines()
    assert lines[0] == "graph s19999" and lines[-1].startswith("output x = ")
    assert lines[2].endswith("  # s19999/s19998/" + "/".join(f"s{k}" for k in range(19_997, -1, -1)) + "/inc")
    verify(lowered)
    wide = df.lower(sequential_nest(1_000))  # one call a line: a block per level
    assert len(str(wide).splitlines()) == 1 + 1 + 1_000 + 1
    verify(wide)


# -- the verifier -------------------------------------------------------------------------------------------


def _calls(lowered: Lowered) -> list[CallOp]:
    return [op for op in lowered.ops() if isinstance(op, CallOp)]


def _loop(lowered: Lowered) -> LoopOp:
    return next(op for op in lowered.ops() if isinstance(op, LoopOp))


def _unlisted_reader(lowered: Lowered) -> None:
    first = _calls(lowered)[0]
    first.inputs[0].value.readers.remove((first, 0))


def _wrong_reader_entry(lowered: Lowered) -> None:
    first, second = _calls(lowered)[:2]
    first.outputs[0].readers.append((first, 0))  # first's slot 0 holds the loop's input, not its output
    assert second.inputs[0].value is first.outputs[0]


def _read_before_produced(lowered: Lowered) -> None:
    ops = lowered.root.ops
    ops[0], ops[1] = ops[1], ops[0]


def _pending(lowered: Lowered) -> None:
    _calls(lowered)[1].inputs[0].value.kind = "pending"


def _foreign_producer(lowered: Lowered) -> None:
    first, second = _calls(lowered)[:2]
    first.outputs[0].producer = second


def _region_mismatch(lowered: Lowered) -> None:
    _calls(lowered)[0].region = Region(None)


def _listed_twice(lowered: Lowered) -> None:
    lowered.root.ops.append(lowered.root.ops[0])


def _phi_read_outside(lowered: Lowered) -> None:
    # a new call after the loop reading the loop's phi: readers agree, but the phi is out of scope there
    loop = _loop(lowered)
    phi = loop.carried[0].phi
    reader = CallOp(1000, "loop/late", add_one, lowered.root, _calls(lowered)[0].spec)
    reader.inputs.append(Slot(_calls(lowered)[0].inputs[0].port, phi))
    phi.readers.append((reader, 0))
    lowered.root.ops.append(reader)


def _init_slot_not_read(lowered: Lowered) -> None:
    carried = _loop(lowered).carried[0]
    carried.init_slot = Slot(carried.init_slot.port, carried.init_slot.value)


def _carried_flag(lowered: Lowered) -> None:
    _loop(lowered).outs[0].carried = False


def _outs_mismatch(lowered: Lowered) -> None:
    _loop(lowered).outs.clear()


def _final_outside_body(lowered: Lowered) -> None:
    loop = _loop(lowered)
    loop.carried[0].final = loop.inputs[0].value


def _output_inside_loop(lowered: Lowered) -> None:
    lowered.outputs["x"] = _calls(lowered)[0].outputs[0]


def _input_kind(lowered: Lowered) -> None:
    lowered.inputs["num_steps"].kind = "op"


def _duplicate_id(lowered: Lowered) -> None:
    first, second = _calls(lowered)[:2]
    second.outputs[0].id = first.outputs[0].id


CORRUPTIONS: dict[str, tuple[Callable[[Lowered], None], str]] = {
    "unlisted reader": (_unlisted_reader, "which does not list it as a reader"),
    "wrong reader entry": (_wrong_reader_entry, "whose slot holds another value"),
    "pending placeholder": (_pending, "pending placeholder %6:x survives: loop/add_one_2.x reads it"),
    "foreign producer": (_foreign_producer, "%6:x is an output of 'loop/add_one' but its producer is"),
    "region mismatch": (_region_mismatch, "op 'loop/add_one' is listed in the region of loop"),
    "listed twice": (_listed_twice, "op 'loop' is listed twice"),
    "phi out of scope": (_phi_read_outside, "loop/late.x reads %5:x before it is produced, or outside"),
    "init slot": (_init_slot_not_read, "carried 'x' of loop 'loop': its initial value is not read"),
    "carried flag": (_carried_flag, "is marked carried=False, but its final value %8:x is a carried"),
    "loop outputs": (_outs_mismatch, "the loop outputs of 'loop' (none) differ from its outputs (%10:x)"),
    "final outside": (_final_outside_body, "its final value %2:num_steps is not produced in the loop body"),
    "output in a body": (_output_inside_loop, "output 'x' is %6:x, which the program does not produce"),
    "duplicate id": (_duplicate_id, "two values have id 6"),
    "input kind": (_input_kind, "input 'num_steps' is %2:num_steps of kind 'op', producer none"),
}


def test_the_examples_verify_clean() -> None:
    for blk in (counter(), sequence(), pair(), over_loop(), examples.counter_one, examples.counter_two):
        verify(df.lower(blk))
    verify(df.lower(examples.guided_loop))
    verify(fused_pair())


def test_a_graph_with_wiring_errors_still_lowers_to_a_sound_ir() -> None:
    lowered = df.lower(examples.miswired)
    assert lowered.diagnostics  # the structural errors are diagnostics, not a corrupt IR
    verify(lowered)


def test_the_diffusion_graphs_verify_clean_before_and_after_fusion() -> None:
    pytest.importorskip("torch")  # the diffusion graphs need the [diffusion] extra
    pytest.importorskip("PIL")
    from dfgraph_blocks.diffusion import img2img, text2img, tiny

    unet, vae = tiny.unet(), tiny.vae()
    for graph in (
        text2img(unet=unet, scheduler=tiny.scheduler("ddim")),
        text2img(unet=unet, scheduler=tiny.scheduler("euler"), vae=vae),
        img2img(unet=unet, scheduler=tiny.scheduler("ddim"), vae=vae),
    ):
        lowered = df.lower(graph)
        verify(lowered)
        fuse(lowered)
        verify(lowered)


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_the_verifier_names_each_corruption(kind: str) -> None:
    corrupt, expected = CORRUPTIONS[kind]
    lowered = df.lower(counter())
    verify(lowered)  # sound before
    corrupt(lowered)
    with pytest.raises(IRError) as info:
        verify(lowered)
    assert any(expected in problem for problem in info.value.problems), info.value.problems
    assert expected in str(info.value)


def test_an_ir_error_is_a_graph_error_listing_every_problem() -> None:
    lowered = df.lower(counter())
    _pending(lowered)
    _duplicate_id(lowered)
    with pytest.raises(df.GraphError) as info:
        df.verify(lowered)
    assert isinstance(info.value, df.IRError)
    problems = info.value.problems
    assert any("pending placeholder" in p for p in problems)
    assert any("two values have id" in p for p in problems)
    assert str(info.value).startswith(f"invalid IR: {len(problems)} problem(s)")


def test_fused_members_must_stay_detached() -> None:
    lowered = fused_pair()
    fused = next(op for op in lowered.ops() if isinstance(op, FusedOp))
    first, second = fused.members
    first.inputs[0].value.readers.append((first, 0))
    second.outputs[0].producer = second
    with pytest.raises(IRError) as info:
        verify(lowered)
    text = str(info.value)
    assert "lists reader 'pair/cond' (fused member of 'pair/cond+uncond')" in text
    assert "names producer 'pair/uncond' (fused member of 'pair/cond+uncond')" in text
    relisted = fused_pair()
    fused = next(op for op in relisted.ops() if isinstance(op, FusedOp))
    relisted.root.ops.append(fused.members[0])
    with pytest.raises(IRError, match=r"fused member 'pair/cond' of 'pair/cond\+uncond' is still listed"):
        verify(relisted)


def test_verifying_10000_blocks_is_one_linear_pass() -> None:
    lowered = df.lower(wide_graph(10_000))
    assert sum(1 for _ in lowered.ops()) >= 10_000
    verify(lowered)  # its speed is measured by the scaling benchmark; here: it holds, no recursion


# -- the pass list ------------------------------------------------------------------------------------------


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = passes.verified

    def record(name: str, lowered: Lowered) -> None:
        seen.append(name)
        real(name, lowered)

    monkeypatch.setattr(passes, "verified", record)
    return seen


def test_the_pass_list_is_in_one_place_in_order() -> None:
    assert passes.PASSES == ("lower", "check", "fuse", "schedule", "hooks", "codegen")


def test_the_hooks_pass_listens_only_when_asked() -> None:
    compiled = passes.compile_ir(pair(), rules=Rules())
    assert compiled.dispatcher is None and "_hooks" not in compiled.generated.source
    counted = df.Loop(pair(), times="n", progress=True, name="counted")
    with_bar = passes.compile_ir(counted, rules=Rules())
    assert with_bar.dispatcher is not None and with_bar.dispatcher.events  # the progress bar's loop events


def test_verify_true_runs_the_verifier_after_every_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")  # fused calls concatenate their batch with torch.cat
    seen = _recording(monkeypatch)
    compiled = passes.compile_ir(pair(), rules=Rules(), fuse=True, verify=True)
    # on the CPU the schedule waits for first use
    assert seen == ["lower", "check", "fuse", "hooks", "codegen"]
    assert compiled.fused == (("pair/cond", "pair/uncond"),)
    assert "def " in compiled.generated.source


def test_without_the_switch_nothing_is_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")  # fused calls concatenate their batch with torch.cat
    monkeypatch.delenv(passes.VERIFY_ENV, raising=False)
    seen = _recording(monkeypatch)
    assert df.compile(pair(), fuse=True).fused == (("pair/cond", "pair/uncond"),)
    assert seen == []


@pytest.mark.parametrize(("setting", "on"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_environment_switch(monkeypatch: pytest.MonkeyPatch, setting: str, on: bool) -> None:
    monkeypatch.setenv(passes.VERIFY_ENV, setting)
    assert passes.verifying() is on
    assert passes.verifying(verify=True) is True


def test_the_switch_names_the_pass_that_broke_the_ir(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")  # fused calls concatenate their batch with torch.cat

    def breaking_fuse(lowered: Lowered) -> list[tuple[str, str]]:
        pairs = fuse(lowered)
        value = lowered.inputs["t"]
        op: Op = value.readers[0][0]
        value.readers.append((op, 0))  # a reader entry for a slot that holds another value
        return pairs

    monkeypatch.setattr(passes, "fuse_calls", breaking_fuse)
    monkeypatch.setenv(passes.VERIFY_ENV, "1")
    with pytest.raises(IRError, match=r"invalid IR after pass 'fuse': 1 problem\(s\)") as info:
        df.compile(pair(), fuse=True)
    assert "%3:t lists reader entry ('pair/cond+uncond', 0), whose slot holds another value" in str(
        info.value
    )
    monkeypatch.delenv(passes.VERIFY_ENV)
    assert df.compile(pair(), fuse=True).fused == (("pair/cond", "pair/uncond"),)  # unchecked: compiles


def test_an_ir_error_while_lowering_is_not_turned_into_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str, lowered: Lowered) -> None:
        raise IRError(["broken on purpose"], f"after pass {name!r}")

    monkeypatch.setattr(passes, "verified", broken)
    with pytest.raises(IRError, match="after pass 'lower'"):
        passes.compile_ir(counter(), rules=Rules(), verify=True)


def test_the_schedule_pass_keeps_its_results_on_the_ops() -> None:
    from dfgraph.schedule import schedule_program

    @df.block(outputs="x", mutates=("rng",))
    def noisy(x: int) -> int:
        return x

    lowered = df.lower(df.Loop(df.Loop(df.Sequential(noisy, add_one), times="m", name="inner"), times="n"))
    schedule = schedule_program(lowered, None)
    outer, inner = (op for op in lowered.ops() if isinstance(op, LoopOp))
    assert outer.meta["schedule"] is schedule.bodies["loop"]
    assert inner.meta["schedule"] is schedule.bodies["loop/inner"]
    assert outer.meta["mutates"] == inner.meta["mutates"] == frozenset({"rng"})
    assert [op.meta["mutates"] for op in inner.body.ops] == [frozenset({"rng"}), frozenset()]


def test_describe_ir_prints_the_ir(capsys: pytest.CaptureFixture[str]) -> None:
    from dfgraph.cli import main

    assert main(["describe", "dfgraph_blocks.examples:counter_two", "--ir"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(str(df.lower(examples.counter_two)) + "\n")
    assert "\nIR:\ngraph counter_two\n" in out


def _values_of(lowered: Lowered) -> list[Value]:
    return [v for op in lowered.ops() for v in op.outputs]


def test_every_op_starts_with_empty_meta() -> None:
    lowered: Any = df.lower(counter())
    assert all(op.meta == {} for op in lowered.ops())
    assert len({id(op.meta) for op in lowered.ops()}) == len(list(lowered.ops()))
    assert _values_of(lowered)


def test_the_architecture_doc_shows_the_ir_as_printed() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text()
    assert "\n```\n" + str(df.lower(examples.counter_two)) + "\n```\n" in doc
    assert "(`compile_ir`)" in doc and all(name in doc for name in passes.PASSES)

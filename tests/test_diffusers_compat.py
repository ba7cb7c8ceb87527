"""dfgraph_blocks.diffusers_compat: Modular Diffusers blocks converted to dfgraph blocks, checked and run."""

from __future__ import annotations

import collections
import functools
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Literal

import pytest

pytest.importorskip("diffusers")

import torch
from diffusers.modular_pipelines import (
    AutoPipelineBlocks,
    ComponentSpec,
    ConditionalPipelineBlocks,
    InputParam,
    LoopSequentialPipelineBlocks,
    ModularPipelineBlocks,
    OutputParam,
    PipelineState,
    SequentialPipelineBlocks,
)

import dfgraph as df
from dfgraph.cli import main as dfgraph_main
from dfgraph.ir import LoopOp
from dfgraph.lowering import lower
from dfgraph_blocks.diffusers_compat import (
    BlockSelector,
    LoopSpec,
    ModularLeaf,
    from_modular,
    from_modular_workflows,
)

# -- small modular blocks, written the way diffusers' guide writes them ---------------------------------


def _run(block: Any, compute: Any, components: Any, state: Any) -> Any:
    block_state = block.get_block_state(state)
    compute(block_state)
    block.set_block_state(state, block_state)
    return components, state


class Scale(ModularPipelineBlocks):
    @property
    def expected_components(self) -> list[ComponentSpec]:
        return [ComponentSpec("scheduler")]

    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("x", type_hint=float, required=True, description="the value"),
            InputParam("factor", type_hint=float, default=2.0),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("scaled", type_hint=float, description="x * factor")]

    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "scaled", s.x * s.factor), components, state)


class Shift(ModularPipelineBlocks):
    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("scaled", type_hint=float, required=True),
            InputParam("offset", type_hint=float),  # optional, no default: diffusers passes None
            InputParam("mask", type_hint=torch.Tensor | None),  # admits None already
            InputParam("note"),  # untyped
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("out", type_hint=float), OutputParam("extra")]

    def __call__(self, components: Any, state: Any) -> Any:
        def compute(s: Any) -> None:
            s.out = s.scaled + (s.offset or 0.0)
            s.extra = s.note

        return _run(self, compute, components, state)


class MisspeltShift(Shift):
    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("scalled", type_hint=float, required=True)]  # should read "scaled"


class Step(ModularPipelineBlocks):
    """A loop sub-block: called with the loop's BlockState and the loop-step arguments."""

    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("x", type_hint=float, required=True)]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("x", type_hint=float)]

    def __call__(self, components: Any, block_state: Any, i: int, t: float) -> Any:
        block_state.x = block_state.x + t * components.rate
        return components, block_state


class StepLoop(LoopSequentialPipelineBlocks):
    block_classes = (Step,)
    block_names = ("step",)

    @property
    def description(self) -> str:
        return "x += t * rate for every t"

    @property
    def loop_inputs(self) -> list[InputParam]:
        return [InputParam("timesteps", type_hint=list[float], required=True)]

    def __call__(self, components: Any, state: Any) -> Any:
        block_state = self.get_block_state(state)
        for i, t in enumerate(block_state.timesteps):
            components, block_state = self.loop_step(components, block_state, i=i, t=t)
        self.set_block_state(state, block_state)
        return components, state


class Chunk(ModularPipelineBlocks):
    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("total", type_hint=int, required=True)]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("total", type_hint=int)]

    def __call__(self, components: Any, block_state: Any, k: int) -> Any:
        block_state.total = block_state.total + k
        return components, block_state


class ChunkLoop(LoopSequentialPipelineBlocks):
    block_classes = (Chunk,)
    block_names = ("chunk",)

    @property
    def description(self) -> str:
        return "a counted loop"

    @property
    def loop_inputs(self) -> list[InputParam]:
        return [InputParam("num_chunks", type_hint=int, required=True)]

    @property
    def loop_intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("chunks", type_hint=list[int])]

    def __call__(self, components: Any, state: Any) -> Any:
        block_state = self.get_block_state(state)
        for k in range(block_state.num_chunks):
            components, block_state = self.loop_step(components, block_state, k=k)
        self.set_block_state(state, block_state)
        return components, state


class OddLoop(StepLoop):
    def __call__(self, components: Any, state: Any) -> Any:
        block_state = self.get_block_state(state)
        for i, t in enumerate(block_state.timesteps[1:]):  # not a plain state name
            components, block_state = self.loop_step(components, block_state, i=i, t=t)
        self.set_block_state(state, block_state)
        return components, state


class Fields(ModularPipelineBlocks):
    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [
            OutputParam("a", type_hint=float, kwargs_type="extra_fields"),
            OutputParam("b", type_hint=float, kwargs_type="extra_fields"),
            OutputParam("c", type_hint=float),
        ]

    def __call__(self, components: Any, state: Any) -> Any:
        def compute(s: Any) -> None:
            s.a, s.b, s.c = 1.0, 2.0, 4.0

        return _run(self, compute, components, state)


class SumFields(ModularPipelineBlocks):
    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("a", type_hint=float), InputParam(kwargs_type="extra_fields")]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("total", type_hint=float)]

    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "total", sum(s.extra_fields.values())), components, state)


class Double(ModularPipelineBlocks):
    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("x", type_hint=float, required=True)]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("y", type_hint=float)]

    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "y", 2 * s.x), components, state)


class Negate(Double):
    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "y", -s.x), components, state)


class AutoY(AutoPipelineBlocks):
    block_classes = (Negate, Double)
    block_names = ("negate", "non-default")  # not an identifier: becomes non_default
    block_trigger_inputs = ("flip", None)


class OptionalY(AutoPipelineBlocks):
    block_classes = (Negate,)
    block_names = ("negate",)
    block_trigger_inputs = ("flip",)  # no default: skipped without the trigger


class Width(ModularPipelineBlocks):
    def __init__(self, default: Any = None) -> None:
        super().__init__()
        self.default = default

    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("width", type_hint=int, default=self.default)]

    def __call__(self, components: Any, state: Any) -> Any:
        return components, state


def seq(**blocks: Any) -> Any:
    return SequentialPipelineBlocks.from_blocks_dict(blocks)


def ports(block: Any) -> dict[str, tuple[Any, Any]]:
    return {p.name: (p.type, p.default) for p in block.inputs}


# -- ports ------------------------------------------------------------------------------------------------


def test_leaf_ports_come_from_input_and_output_params() -> None:
    leaf = from_modular(Shift())
    assert isinstance(leaf, ModularLeaf)
    assert leaf.name == "Shift"
    assert ports(leaf) == {
        "scaled": (float, df.REQUIRED),
        "offset": (float | None, None),  # widened: diffusers passes None when it is left out
        "mask": (torch.Tensor | None, None),  # already admits None
        "note": (Any, None),
    }
    assert {p.name: p.type for p in leaf.outputs} == {"out": float, "extra": Any}
    report = df.check(leaf)
    assert report.ok
    assert sorted((d.code, d.path) for d in report.warnings) == [
        ("DF202", "Shift.extra"),
        ("DF202", "Shift.note"),
    ]
    assert df.check(from_modular(Shift(), warn_untyped=False)).diagnostics == ()


def test_leaf_keeps_defaults_docs_and_components() -> None:
    leaf = from_modular(Scale(), name="scale")
    assert isinstance(leaf, ModularLeaf)
    assert leaf.name == "scale"
    assert [(p.name, p.type, p.default, p.doc) for p in leaf.inputs] == [
        ("x", float, df.REQUIRED, "the value"),
        ("factor", float, 2.0, ""),
    ]
    assert leaf.outputs == (df.Port("scaled", float, doc="x * factor"),)
    assert leaf.mutates == ("scheduler",)  # components are shared and mutated: keep such blocks in order


# -- composition ------------------------------------------------------------------------------------------


def test_sequential_wires_by_name_and_runs_like_diffusers() -> None:
    blocks = seq(scale=Scale(), shift=Shift())
    graph = from_modular(blocks, components={})
    assert isinstance(graph, df.Sequential)
    assert [(name, type(child.modular)) for name, child in graph.children] == [
        ("scale", Scale),
        ("shift", Shift),
    ]
    assert [p.name for p in graph.inputs] == ["x", "factor", "offset", "mask", "note"]  # not "scaled"
    assert [p.name for p in graph.outputs] == ["scaled", "out", "extra"]
    prog = df.compile(graph)
    assert prog(x=3.0, output="out") == 6.0
    assert prog(x=3.0, factor=3.0, offset=1.0, note="n") == {"scaled": 9.0, "out": 10.0, "extra": "n"}
    state = PipelineState()
    for key, value in {"x": 3.0, "factor": 3.0, "offset": 1.0}.items():
        state.set(key, value)
    _, state = blocks(types.SimpleNamespace(), state)
    assert state.get("out") == 10.0


def test_a_misspelt_input_is_found_before_anything_runs() -> None:
    blocks = seq(scale=Scale(), shift=MisspeltShift())
    report = df.check(from_modular(blocks, name="pipe"))
    [near_miss] = [d for d in report.diagnostics if d.code == "DF207"]
    assert near_miss.path == "pipe/shift.scalled"
    assert "did you mean 'scaled'" in near_miss.message
    prog = df.compile(from_modular(blocks, components={}))
    with pytest.raises(df.InputError, match="scalled"):  # before any block runs
        prog(x=1.0)
    # Modular Diffusers finds it only when the misspelt block runs.
    state = PipelineState()
    state.set("x", 1.0)
    with pytest.raises(ValueError, match="Required input 'scalled' is missing"):
        blocks(types.SimpleNamespace(), state)


def test_a_loop_block_becomes_a_loop_carrying_its_state() -> None:
    loop = from_modular(StepLoop(), components={"rate": 0.5})
    assert isinstance(loop, df.Loop)
    assert (loop.over, loop.item, loop.index) == ("timesteps", "t", "i")
    assert [name for name, _ in loop.body.children] == ["loop_inputs", "step"]
    step = dict(loop.body.children)["step"]
    assert ports(step) == {"x": (float, df.REQUIRED), "i": (int, df.REQUIRED), "t": (float, df.REQUIRED)}
    [loop_op] = [op for op in lower(loop).ops() if isinstance(op, LoopOp)]
    assert [c.name for c in loop_op.carried] == ["x"]
    assert df.check(loop).diagnostics == ()
    prog = df.compile(loop)
    assert prog(timesteps=[1.0, 2.0, 3.0], x=0.0, output="x") == 3.0
    assert prog(timesteps=[], x=7.0, output="x") == 7.0
    state = PipelineState()
    state.set("timesteps", [1.0, 2.0, 3.0])
    state.set("x", 0.0)
    _, state = StepLoop()(types.SimpleNamespace(rate=0.5), state)
    assert state.get("x") == 3.0


class Timesteps(ModularPipelineBlocks):
    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("timesteps", type_hint=list[str])]  # but Step annotates t: float


def test_loop_step_annotations_type_the_item() -> None:
    report = df.check(from_modular(seq(timesteps=Timesteps(), loop=StepLoop()), name="pipe"))
    assert [(d.code, d.path) for d in report.errors] == [
        ("DF001", "pipe/loop/loop_inputs.timesteps"),  # the loop's declared loop_inputs are checked too
        ("DF001", "pipe/loop/step.t"),
    ]
    assert "'t' is str" in report.errors[1].message


def test_counted_loops_are_read_from_the_source_and_odd_ones_need_a_spec() -> None:
    loop = from_modular(ChunkLoop())
    assert isinstance(loop, df.Loop)
    assert (loop.times, loop.index) == ("num_chunks", "k")
    head = dict(loop.body.children)["loop_inputs"]
    assert [p.name for p in head.inputs] == ["num_chunks"]
    assert [(p.name, p.type) for p in head.outputs] == [("chunks", list[int])]  # the wrapper's own
    assert df.check(loop).ok
    with pytest.raises(ValueError, match=r"OddLoop.*loops=\{'OddLoop': LoopSpec"):
        from_modular(OddLoop())
    odd = from_modular(OddLoop(), loops={"OddLoop": LoopSpec(over="timesteps")})
    assert isinstance(odd, df.Loop)
    assert odd.over == "timesteps"
    with pytest.raises(ValueError, match="exactly one"):
        LoopSpec()


def test_kwargs_type_inputs_read_the_fields_written_before() -> None:
    blocks = seq(fields=Fields(), total=SumFields())
    graph = from_modular(blocks, components={})
    assert isinstance(graph, df.Sequential)
    reader = dict(graph.children)["total"]
    assert ports(reader) == {"a": (float | None, None), "b": (float | None, None)}  # "a" once; not "c"
    assert df.compile(graph)(output="total") == 3.0
    _, state = blocks(types.SimpleNamespace(), PipelineState())
    assert state.get("total") == 3.0
    alone = from_modular(SumFields())  # nothing earlier: the kwargs input adds no port
    assert [p.name for p in alone.inputs] == ["a"]


def test_conditional_blocks_resolve_statically_like_get_execution_blocks() -> None:
    # trigger_inputs= (or workflow=) resolves at build time; {} is the default workflow
    default = from_modular(seq(auto=AutoY()), trigger_inputs={}, name="pipe", components={})
    assert isinstance(default, df.Sequential)
    [(name, branch)] = default.children
    assert name == "auto"
    assert [n for n, _ in branch.children] == ["non_default"]
    assert df.compile(default)(x=2.0, output="y") == 4.0
    flipped = from_modular(seq(auto=AutoY()), trigger_inputs={"flip": True}, components={})
    assert df.compile(flipped)(x=2.0, output="y") == -2.0
    skipped = from_modular(seq(first=Double(), maybe=OptionalY()), trigger_inputs={})
    assert isinstance(skipped, df.Sequential)
    assert [n for n, _ in skipped.children] == ["first"]
    with pytest.raises(ValueError, match="no block would run"):
        from_modular(OptionalY(), trigger_inputs={})


def test_a_later_reader_without_default_gets_the_pipeline_default() -> None:
    agreeing = from_modular(seq(a=Width(1024), b=Width()))
    assert [p.default for p in agreeing.inputs] == [1024]
    assert df.check(agreeing).ok and not df.check(agreeing).warnings
    # Two declared defaults disagree: diffusers silently uses the first one for both readers.
    report = df.check(from_modular(seq(a=Width(1024), b=Width(512))))
    assert report.codes() == ["DF206"]


# -- conditional blocks as df.Switch: diffusers' choice at run time -------------------------------------


class Encode(ModularPipelineBlocks):
    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("image", type_hint=float, required=True)]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("image_latents", type_hint=float)]

    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "image_latents", 10 * s.image), components, state)


class AutoEncode(AutoPipelineBlocks):  # no default: skipped without an image
    block_classes = (Encode,)
    block_names = ("encode",)
    block_trigger_inputs = ("image",)


class FromLatents(ModularPipelineBlocks):
    @property
    def inputs(self) -> list[InputParam]:
        return [
            InputParam("x", type_hint=float, required=True),
            InputParam("image_latents", type_hint=float, required=True),
        ]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("y", type_hint=float)]

    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "y", s.x + s.image_latents), components, state)


class AutoStart(AutoPipelineBlocks):  # triggered by an intermediate, as SDXL's img2img latents step
    block_classes = (FromLatents, Double)
    block_names = ("img2img", "text2img")
    block_trigger_inputs = ("image_latents", None)


class Halve(ModularPipelineBlocks):
    @property
    def inputs(self) -> list[InputParam]:
        # a trigger no block declares is dropped by ModularPipeline.__call__ ("Unexpected input")
        return [InputParam("y", type_hint=float, required=True), InputParam("mode", type_hint=str)]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("z", type_hint=float)]

    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "z", s.y / 2), components, state)


class Invert(Halve):
    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "z", -s.y), components, state)


class ByMode(ConditionalPipelineBlocks):
    """A rule on values, not only presence: an input and an intermediate, with a default block."""

    block_classes = (Halve, Invert)
    block_names = ("halve", "invert")
    block_trigger_inputs = ("mode", "y")
    default_block_name = "halve"

    def select_block(self, mode: Any = None, y: Any = None) -> str | None:
        if mode == "invert" or (mode is None and y is not None and y < 0):
            return "invert"
        return None


class FlipNegate(Negate):
    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("x", type_hint=float, required=True), InputParam("flip", type_hint=bool)]


class AutoFlip(AutoPipelineBlocks):  # as OptionalY, with the trigger declared as an input
    block_classes = (FlipNegate,)
    block_names = ("negate",)
    block_trigger_inputs = ("flip",)


def auto_pipeline() -> Any:
    return seq(encode=AutoEncode(), start=AutoStart(), mode=ByMode())


def test_conditional_blocks_become_switches_without_a_workflow() -> None:
    graph = from_modular(auto_pipeline(), name="pipe", components={})
    assert isinstance(graph, df.Sequential)
    encode, start, mode = (child for _, child in graph.children)
    assert isinstance(encode, df.Switch) and isinstance(start, df.Switch) and isinstance(mode, df.Switch)
    assert list(encode.cases) == ["encode", "skip"]  # no default block: diffusers skips it
    assert list(start.cases) == ["img2img", "text2img"]
    assert list(mode.cases) == ["halve", "invert"]
    assert isinstance(mode.selector, BlockSelector)
    assert [p.name for p in mode.selector.inputs] == ["mode", "y"]
    assert mode.selector.outputs[0].type == Literal["halve", "invert"]
    # the skip case sets image_latents to None, as diffusers' state.get gives a later trigger
    [unset] = [p for p in encode.cases["skip"].outputs]
    assert (unset.name, unset.type) == ("image_latents", type(None))
    # the img2img case runs only with image_latents given: it reads it as float, not float | None
    assert [n for n, _ in start.cases["img2img"].children] == ["given", "img2img"]
    report = df.check(graph)
    assert report.ok and not report.warnings, report
    assert {p.name: p.default for p in graph.inputs} == {"image": None, "x": df.REQUIRED, "mode": None}


AUTO = auto_pipeline()


@functools.cache
def auto_program() -> df.Program:
    return df.compile(from_modular(AUTO, components={}))


ABSENT = object()  # the input is not passed at all


@pytest.mark.parametrize("image", [ABSENT, None, 1.0, -1.0])
@pytest.mark.parametrize("mode", [ABSENT, None, "invert", "other"])
@pytest.mark.parametrize("x", [-3.0, 2.0])
def test_the_switches_choose_what_diffusers_runs(image: Any, mode: Any, x: float) -> None:
    inputs = {k: v for k, v in {"x": x, "image": image, "mode": mode}.items() if v is not ABSENT}
    ours = auto_program()(**inputs)
    theirs = AUTO.init_pipeline()(**inputs, output=["image_latents", "y", "z"])
    assert ours["y"] == theirs["y"] and ours["z"] == theirs["z"]
    assert ours["image_latents"] == theirs["image_latents"]  # None when the encoder was skipped
    # build-time resolution of the same trigger inputs runs the same blocks, except where the rule reads
    # a value get_execution_blocks cannot know (y < 0: it sees only that y is present)
    given_triggers = {k: v for k, v in inputs.items() if k != "x" and v is not None}
    resolved = from_modular(AUTO, trigger_inputs=given_triggers, components={})
    if "mode" in given_triggers or ours["y"] >= 0:
        names = {p.name for p in resolved.inputs}
        assert (
            df.compile(resolved)(**{k: v for k, v in inputs.items() if k in names}, output="z") == ours["z"]
        )


def test_a_trigger_no_block_declares_is_never_given_as_in_modular_pipeline() -> None:
    blocks = seq(first=Double(), maybe=OptionalY())  # `flip` is no block's InputParam
    program = df.compile(from_modular(blocks, components={}))
    assert [p.name for p in program.inputs] == ["x"]  # ModularPipeline.__call__ drops flip too
    assert program(x=3.0, output="y") == blocks.init_pipeline()(x=3.0, output="y") == 6.0


def test_a_skipped_block_passes_earlier_values_through() -> None:
    blocks = seq(first=Double(), maybe=AutoFlip())
    program = df.compile(from_modular(blocks, components={}))
    pipeline = blocks.init_pipeline()
    for flip in (None, True):
        assert program(x=3.0, flip=flip, output="y") == pipeline(x=3.0, flip=flip, output="y")
    assert program(x=3.0, output="y") == 6.0 and program(x=3.0, flip=True, output="y") == -3.0

    class Lost(AutoFlip):
        def select_block(self, **kwargs: Any) -> str | None:
            return "nowhere"

    with pytest.raises(df.BlockError, match="select_block returned 'nowhere'"):
        df.compile(from_modular(Lost(), components={}))(x=1.0, flip=True)


def test_specialize_resolves_the_switches_like_get_execution_blocks() -> None:
    specialize = getattr(df, "specialize", None)
    if specialize is None:  # df.specialize is h-api's (dfgraph/control.py); the lead merges it
        pytest.skip("df.specialize is not exported yet")
    blocks = seq(first=Double(), maybe=AutoFlip())
    graph = from_modular(blocks, components={})
    for flip in (None, True):
        flat = specialize(graph, flip=flip)
        triggers = {} if flip is None else {"flip": flip}
        expected = _diffusers_leaf_classes(blocks.get_execution_blocks(**triggers))
        assert _leaf_classes(flat) == expected
        assert df.compile(flat)(x=2.0, output="y") == blocks.init_pipeline()(x=2.0, flip=flip, output="y")


# -- running and errors ---------------------------------------------------------------------------------


def test_without_components_a_block_is_for_checking_only() -> None:
    prog = df.compile(from_modular(Scale()))
    with pytest.raises(df.BlockError) as info:
        prog(x=1.0)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "built for checking only" in str(info.value.__cause__)


def test_a_modular_pipeline_brings_its_blocks_and_components() -> None:
    pipeline = seq(scale=Scale(), shift=Shift()).init_pipeline()
    graph = from_modular(pipeline)
    assert df.compile(graph)(x=2.0, output="out") == pipeline(x=2.0, output="out") == 4.0


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(TypeError, match=r"ModularPipelineBlocks instance.*got int"):
        from_modular(3)
    with pytest.raises(TypeError, match=r"class Scale; call it: from_modular\(Scale\(\)\)"):
        from_modular(Scale)
    with pytest.raises(TypeError, match="pipe/bad: str is not a Modular Diffusers block"):
        from_modular(seq(bad="oops"), name="pipe")
    with pytest.raises(ValueError, match="workflow= or trigger_inputs="):
        from_modular(seq(scale=Scale()), workflow="x", trigger_inputs={})
    with pytest.raises(ValueError, match="has no workflow 'x'"):
        from_modular(seq(scale=Scale()), workflow="x")
    with pytest.raises(ValueError, match="defines no workflows"):
        from_modular_workflows(seq(scale=Scale()))


# -- diffusers' own pipelines ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdxl() -> Any:
    from diffusers.modular_pipelines import StableDiffusionXLAutoBlocks

    return StableDiffusionXLAutoBlocks()  # declares specs only: nothing is downloaded


def _leaf_classes(block: Any) -> list[type]:
    """The diffusers classes of the leaves of a converted block with no Switch left, in order."""
    assert not isinstance(block, df.Switch), f"{block.name} is still a Switch"
    if isinstance(block, ModularLeaf):
        return [type(block.modular)]
    if isinstance(block, df.Bound):
        return _leaf_classes(block.block)
    children = block.body.children if isinstance(block, df.Loop) else getattr(block, "children", ())
    return [cls for _, child in children for cls in _leaf_classes(child)]


def _diffusers_leaf_classes(blocks: Any) -> list[type]:
    found: list[type] = []
    for block in blocks.sub_blocks.values():
        is_loop = isinstance(block, LoopSequentialPipelineBlocks)
        found.extend(type(b) for b in block.sub_blocks.values()) if is_loop else found.append(type(block))
    return found


def test_sdxl_workflows_select_the_blocks_diffusers_selects(sdxl: Any) -> None:
    converted = from_modular_workflows(sdxl)
    assert len(converted) == 18
    for workflow, graph in converted.items():
        assert _leaf_classes(graph) == _diffusers_leaf_classes(sdxl.get_workflow(workflow)), workflow
    default = from_modular(sdxl, trigger_inputs={})
    assert _leaf_classes(default) == _diffusers_leaf_classes(sdxl.get_execution_blocks())


SDXL_CODES = {  # non-DF202 diagnostics of every workflow (docs/modular_findings.md explains them)
    "text2image": {"DF001": 3},
    "image2image": {"DF001": 3},
    "inpainting": {"DF001": 3, "DF206": 1},
    "controlnet_text2image": {"DF001": 4},
    "controlnet_image2image": {"DF001": 4},
    "controlnet_inpainting": {"DF001": 5, "DF206": 1},
    "controlnet_union_text2image": {"DF001": 5},
    "controlnet_union_image2image": {"DF001": 5},
    "controlnet_union_inpainting": {"DF001": 6, "DF206": 1},
    "ip_adapter_text2image": {"DF001": 5},
    "ip_adapter_image2image": {"DF001": 5},
    "ip_adapter_inpainting": {"DF001": 5, "DF206": 1},
    "ip_adapter_controlnet_text2image": {"DF001": 6},
    "ip_adapter_controlnet_image2image": {"DF001": 6},
    "ip_adapter_controlnet_inpainting": {"DF001": 7, "DF206": 1},
    "ip_adapter_controlnet_union_text2image": {"DF001": 7},
    "ip_adapter_controlnet_union_image2image": {"DF001": 7},
    "ip_adapter_controlnet_union_inpainting": {"DF001": 8, "DF206": 1},
}


def test_sdxl_workflows_check_with_the_known_findings(sdxl: Any) -> None:
    found, suppressed = {}, {}
    for workflow, graph in from_modular_workflows(sdxl, name="sdxl", known_findings=False).items():
        codes = collections.Counter(df.check(graph).codes())
        assert codes["DF202"] > 0  # many InputParams declare no type_hint
        del codes["DF202"]
        found[workflow] = dict(codes)
    assert found == SDXL_CODES
    for workflow, graph in from_modular_workflows(sdxl, name="sdxl").items():
        report = df.check(graph)  # the known findings are carried as suppressions, each with its reason
        assert report.ok, workflow
        assert {d.code for d in report.diagnostics} == {"DF202"}, workflow
        assert all(d.message.startswith("undeclared: ") for d in report.diagnostics), workflow
        codes = collections.Counter(d.code for d in report.ignored)
        del codes["DF202"]
        suppressed[workflow] = dict(codes)
        assert all(": real: " in d.suppressed_by or ": loose: " in d.suppressed_by for d in report.ignored)
    assert suppressed == SDXL_CODES


def test_sdxl_error_paths(sdxl: Any) -> None:
    def errors(workflow: str) -> set[tuple[str, str]]:
        report = df.check(from_modular(sdxl, workflow=workflow, name="sdxl", known_findings=False))
        return {(d.path, d.message.split("'")[1]) for d in report.errors}

    loop = "sdxl/denoise/denoise/denoise"
    assert errors("text2image") == {
        (f"{loop}/{b}.t", "t") for b in ("before_denoiser", "denoiser", "after_denoiser")
    }
    union = "sdxl/denoise/denoise/controlnet_denoise/inpaint_controlnet_denoise/denoiser"
    assert errors("ip_adapter_controlnet_union_inpainting") >= {
        ("sdxl/denoise/input.ip_adapter_embeds", "ip_adapter_embeds"),
        ("sdxl/denoise/input.negative_ip_adapter_embeds", "negative_ip_adapter_embeds"),
        ("sdxl/denoise/controlnet_input/controlnet_union.crops_coords", "crops_coords"),
        (f"{union}.controlnet_cond", "controlnet_cond"),
        (f"{union}.conditioning_scale", "conditioning_scale"),
    }
    [strength] = [
        d
        for d in df.check(from_modular(sdxl, workflow="inpainting", known_findings=False)).warnings
        if d.code == "DF206"
    ]
    assert "'strength'" in strength.message and "0.3" in strength.message and "0.9999" in strength.message


def test_sdxl_auto_blocks_check_as_one_graph_of_switches(sdxl: Any) -> None:
    """Every workflow in one graph: the known findings once each, plus the correlated-switch ones."""
    graph = from_modular(sdxl, name="sdxl", known_findings=False)
    assert [(n, type(c).__name__) for n, c in graph.children] == [
        ("text_encoder", "ModularLeaf"),
        ("ip_adapter", "Switch"),
        ("vae_encoder", "Switch"),
        ("denoise", "Sequential"),
        ("decode", "Switch"),
    ]
    report = df.check(graph)
    codes = collections.Counter(report.codes())
    del codes["DF202"]
    assert codes == {"DF001": 23, "DF206": 1}
    assert collections.Counter(d.path.rpartition(".")[2] for d in report.errors) == {
        "t": 12,  # loose, as in every workflow: 3 sub-blocks of each of the 4 denoising loops
        "crops_coords": 2,  # real
        "ip_adapter_embeds": 1,  # real
        "negative_ip_adapter_embeds": 1,  # real
        "controlnet_cond": 2,  # loose
        # correlated switches (docs/modular_findings.md): None only on paths diffusers never takes
        "image_latents": 1,
        "conditioning_scale": 2,
        "controlnet_keep": 2,
    }  # not guess_mode: a case that leaves it passes on the caller's bool (default False), as diffusers
    [latents] = [d for d in report.errors if d.path.endswith(".image_latents")]
    assert latents.path == "sdxl/denoise/before_denoise/inpaint/prepare_latents.image_latents"
    assert "Tensor | None (from sdxl/vae_encoder.image_latents)" in latents.message


def test_hunyuan_image2video_loses_its_image_embeddings() -> None:
    """A real diffusers bug found statically: the T2V latents step overwrites the SigLIP embeddings."""
    from diffusers.modular_pipelines import HunyuanVideo15AutoBlocks

    graph = from_modular(HunyuanVideo15AutoBlocks(), workflow="image2video", name="hv")
    dead = {d.path: d.message for d in df.check(graph).warnings if d.code == "DF201"}
    message = dead["hv/image_encoder/image_encoder.image_embeds"]
    assert "overwritten by hv/denoise/image2video/prepare_latents.image_embeds" in message  # the first writer


def test_the_command_line_checks_a_converted_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sdxl: Any
) -> None:
    (tmp_path / "sdxl_pipeline.py").write_text(
        textwrap.dedent(
            """
            from diffusers.modular_pipelines import StableDiffusionXLAutoBlocks
            from dfgraph_blocks.diffusers_compat import from_modular

            text2image = from_modular(
                StableDiffusionXLAutoBlocks(), workflow="text2image", name="sdxl", known_findings=False
            )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert dfgraph_main(["check", "sdxl_pipeline:text2image"]) == 1
    out = capsys.readouterr().out
    assert "sdxl/denoise/denoise/denoise/denoiser.t: error[DF001]" in out
    # 28 DF202s for untyped declarations, 5 for the loop's undeclared BlockState traffic
    assert "sdxl_pipeline:text2image: 3 errors, 33 warnings" in out
    loop = "sdxl/denoise/denoise/denoise"
    assert (
        f"{loop}/denoiser.scaled_latents: warning[DF202]: undeclared: StableDiffusionXLLoopDenoiser.__call__ "
        "reads block_state.scaled_latents without declaring it (written by before_denoiser)"
    ) in out
    assert "hint: declare it: an InputParam 'scaled_latents' of StableDiffusionXLLoopDenoiser" in out


def test_the_command_line_checks_a_shipped_set_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    """`dfgraph check diffusers:NAME[@WORKFLOW]`: no code to write; the known findings listed with reasons."""
    assert dfgraph_main(["check", "diffusers:StableDiffusionXLAutoBlocks@inpainting", "--show-ignored"]) == 0
    out = capsys.readouterr().out
    assert "diffusers:StableDiffusionXLAutoBlocks@inpainting: 0 errors, 5 warnings (" in out
    loop = "StableDiffusionXLAutoBlocks/denoise/denoise/inpaint_denoise"
    assert (
        f"{loop}/denoiser.t: ignored error[DF001] (by ignore= of input {loop}/denoiser.t: loose: the loop "
        "sub-block annotates `t: int` and receives a 0-d Tensor"
    ) in out
    assert "stable_diffusion_xl/denoise.py:" in out  # located at diffusers' own class
    assert "real: a dead default (0.9999)" in out
    # the whole set as one graph, a class given as such, and clear failures (exit status 2)
    assert dfgraph_main(["check", "diffusers.modular_pipelines:StableDiffusionXLAutoBlocks"]) == 0
    assert "StableDiffusionXLAutoBlocks: 0 errors, 20 warnings (129 ignored)" in capsys.readouterr().out
    assert dfgraph_main(["check", "diffusers:StableDiffusionXLAutoBlocks@nope"]) == 2
    assert "has no workflow 'nope'" in capsys.readouterr().err
    assert dfgraph_main(["check", "dfgraph_blocks.examples:counter_two@text2image"]) == 2
    assert "a @WORKFLOW suffix needs Modular Diffusers blocks" in capsys.readouterr().err
    assert dfgraph_main(["check", "diffusers:NoSuchBlocks"]) == 2
    assert dfgraph_main(["check", "diffusers:EchoBlocks"]) == 2  # its loop runs over a local variable
    assert (
        "cannot read how EchoDenoiseLoopStep iterates from its __call__; pass loops="
        in capsys.readouterr().err
    )


def test_known_findings_reach_only_diffusers_own_classes() -> None:
    """A user's block class named like a diffusers one gets no built-in suppression."""

    class StableDiffusionXLLoopDenoiser(ModularPipelineBlocks):  # a user's class, same name
        @property
        def inputs(self) -> list[InputParam]:
            return [InputParam("t", type_hint=int, required=True)]

        @property
        def intermediate_outputs(self) -> list[OutputParam]:
            return [OutputParam("t", type_hint=int)]

        def __call__(self, components: Any, state: Any) -> Any:
            return components, state

    leaf = from_modular(StableDiffusionXLLoopDenoiser())
    assert [p.ignore for p in leaf.inputs] == [()]
    assert not hasattr(leaf, "__dfgraph_ignore_reasons__")


class Misspelt(ModularPipelineBlocks):
    """Reads `scalled`, which nothing writes (a user's block with a typo)."""

    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("scalled", type_hint=float, required=True)]

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("out", type_hint=float)]

    def __call__(self, components: Any, state: Any) -> Any:
        return _run(self, lambda s: setattr(s, "out", s.scalled), components, state)


def test_the_command_line_converts_a_users_modular_blocks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An instance, a class and a ModularPipeline named by MODULE:ATTR are converted and checked."""
    module = types.ModuleType("my_modular_blocks")
    module.blocks = seq(scale=Scale(), shift=Shift())  # type: ignore[attr-defined]
    module.pipeline = module.blocks.init_pipeline()  # type: ignore[attr-defined]
    module.Misspelt = Misspelt  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_modular_blocks", module)
    assert dfgraph_main(["check", "my_modular_blocks:blocks", "my_modular_blocks:pipeline"]) == 0
    out = capsys.readouterr().out
    # a user's class keeps its findings: Shift declares `note` without a type_hint
    assert "SequentialPipelineBlocks/shift.note: warning[DF202]: input 'note' of Shift declares no" in out
    assert "my_modular_blocks:blocks: 0 errors, 2 warnings" in out
    assert "my_modular_blocks:pipeline: 0 errors, 2 warnings" in out
    assert dfgraph_main(["check", "my_modular_blocks:Misspelt"]) == 0  # one block: its input is the caller's
    assert "my_modular_blocks:Misspelt: 0 errors, 0 warnings" in capsys.readouterr().out
    module.typo = seq(scale=Scale(), misspelt=Misspelt())  # type: ignore[attr-defined]
    assert dfgraph_main(["check", "my_modular_blocks:typo", "--select", "DF207"]) == 0
    assert "did you mean 'scaled'" in capsys.readouterr().out

"""df.specialize, the trigger form df.first_given, and how prog.doc / `dfgraph describe` show switches.

specialize is a rewrite of the composite tree: its results are compared with hand-written Python (the
`if` a person would write), with the unspecialized program, and structurally (which Switches remain, the
paths of the surviving blocks, which inputs are bound).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph import cli
from dfgraph.control import FirstGiven
from dfgraph_blocks import control_demo as examples

README = Path(__file__).resolve().parent.parent / "README.md"


# -- blocks ---------------------------------------------------------------------------------------------


@df.block(outputs="x")
def start(x0: int) -> int:
    return x0


@df.block(outputs="x")
def add(x: int, step: int = 1) -> int:
    return x + step


@df.block(outputs="x")
def mul(x: int, factor: int) -> int:
    return x * factor


@df.block(outputs="x")
def minus(x: int) -> int:
    return x - 3


@df.block(outputs="x")
def absolute(x: int) -> int:
    return abs(x)


# Graph -> Loop -> Sequential body -> Switch on mode -> (case 'sub') Switch on sign
sign_switch = df.Switch({"minus": minus, "abs": absolute}, on="sign", name="sub")
step_switch = df.Switch({"add": add, "mul": mul, "sub": sign_switch}, on="mode", name="step")
loop = df.Loop(df.Sequential(step_switch, name="body"), times="n", name="loop")
nested = df.Graph({"start": start, "loop": loop}, edges=[("start.x", "loop.x")], outputs=["loop.x"], name="g")

MODES = ("add", "mul", "sub")
SIGNS = ("minus", "abs")


def reference(mode: str, sign: str, n: int, x0: int, factor: int, step: int) -> int:
    """The nested graph, written by hand."""
    x = x0
    for _ in range(n):
        if mode == "add":
            x = x + step
        elif mode == "mul":
            x = x * factor
        elif sign == "minus":
            x = x - 3
        else:
            x = abs(x)
    return x


def switches(blk: Any) -> Iterator[df.Switch]:
    """Every Switch in a composite tree (selectors and cases included)."""
    stack = [blk]
    while stack:
        current = stack.pop()
        if isinstance(current, df.Switch):
            yield current
            stack.extend(current.cases.values())
        elif isinstance(current, df.Sequential):
            stack.extend(child for _, child in current.children)
        elif isinstance(current, df.Loop):
            stack.append(current.body)
        elif isinstance(current, df.Graph):
            stack.extend(current.nodes.values())
        elif isinstance(current, df.Bound):
            stack.append(current.block)


def call_paths(blk: Any) -> list[str]:
    return [op.path for op in df.lower(blk).ops() if type(op).__name__ == "CallOp"]


# -- specialize: nested graphs ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    sign=st.sampled_from(SIGNS),
    n=st.integers(0, 4),
    x0=st.integers(-50, 50),
    factor=st.integers(-3, 3),
    step=st.integers(-5, 5),
)
def test_specialize_through_graph_loop_and_nested_switch_equals_the_hand_written_if(
    mode: str, sign: str, n: int, x0: int, factor: int, step: int
) -> None:
    flat = df.specialize(nested, mode=mode, sign=sign)
    assert list(switches(flat)) == []  # every Switch was decided
    prog = df.compile(flat)
    assert {p.name for p in prog.inputs}.isdisjoint({"mode", "sign"})  # consumed, not inputs any more
    given_inputs = {"n": n, "x0": x0, "factor": factor, "step": step}
    inputs = {k: v for k, v in given_inputs.items() if k in {p.name for p in prog.inputs}}
    assert prog(**inputs, output="x") == reference(mode, sign, n, x0, factor, step)


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    sign=st.sampled_from(SIGNS),
    n=st.integers(0, 4),
    x0=st.integers(-50, 50),
    factor=st.integers(-3, 3),
)
def test_specialized_and_unspecialized_programs_agree_for_every_key(
    mode: str, sign: str, n: int, x0: int, factor: int
) -> None:
    whole = df.compile(nested)
    flat = df.compile(df.specialize(nested, mode=mode, sign=sign))
    rest = {"n": n, "x0": x0, "factor": factor}
    expected = whole(mode=mode, sign=sign, **rest)
    assert flat(**{k: v for k, v in rest.items() if k in {p.name for p in flat.inputs}}) == expected
    assert expected == {"x": reference(mode, sign, n, x0, factor, 1)}


def test_only_the_switches_the_values_decide_are_resolved() -> None:
    by_mode = df.specialize(nested, mode="sub")  # the sign switch is now the loop body's only block
    assert [s.name for s in switches(by_mode)] == ["sub"]
    assert {p.name for p in by_mode.inputs} == {"x0", "n", "sign"}
    assert [s.name for s in switches(df.specialize(nested, mode="mul"))] == []  # 'sub' was not chosen
    by_sign = df.specialize(nested, sign="abs")  # the inner switch, inside the outer one's case
    assert [s.name for s in switches(by_sign)] == ["step"]
    step = next(switches(by_sign))
    assert step.cases["sub"] is absolute and step.cases["add"] is add


def test_the_chosen_case_takes_the_switchs_place_and_path() -> None:
    assert call_paths(nested) == [
        "g/start",
        "g/loop/step/add",
        "g/loop/step/mul",
        "g/loop/step/sub/minus",
        "g/loop/step/sub/abs",
    ]
    assert call_paths(df.specialize(nested, mode="add")) == ["g/start", "g/loop/step"]
    assert call_paths(df.specialize(nested, mode="sub", sign="abs")) == ["g/start", "g/loop/step"]
    # only the inner switch decided: its case takes the inner switch's path, the outer one stays
    assert call_paths(df.specialize(nested, sign="minus"))[-1] == "g/loop/step/sub"
    # a Switch as a loop body (not in a Sequential) keeps its path segment too
    bare = df.Loop(step_switch, times="n", name="bare")
    assert call_paths(bare)[0] == "bare/step/add"
    assert call_paths(df.specialize(bare, mode="mul")) == ["bare/step"]


def test_a_switch_at_the_root_becomes_its_case_under_the_switchs_name() -> None:
    leaf = df.specialize(step_switch, mode="mul")
    assert isinstance(leaf, df.Bound) and leaf.block is mul and leaf.name == "step"
    prog = df.compile(leaf)
    assert prog.name == "step" and prog(x=4, factor=3) == {"x": 12}
    seq_case = df.Switch({"two": df.Sequential(add, add, name="twice")}, on="mode", name="sw")
    flat = df.specialize(seq_case, mode="two")
    assert flat.name == "sw" and call_paths(flat) == ["sw/add", "sw/add_2"]
    assert df.compile(flat)(x=1) == {"x": 3}


def test_given_values_still_read_are_bound_and_the_input_is_unchanged() -> None:
    @df.block(outputs="y")
    def report(x: int, mode: str) -> str:
        return f"{mode}:{x}"

    seq = df.Sequential(step_switch, report, name="seq")
    before = str(df.lower(seq))
    flat = df.specialize(seq, mode="add", step=10)
    assert isinstance(flat, df.Bound) and dict(flat.values) == {"mode": "add", "step": 10}
    assert [p.name for p in flat.inputs] == ["x"]
    assert df.compile(flat)(x=1) == {"x": 11, "y": "add:11"}
    assert str(df.lower(seq)) == before and seq.children[0][1] is step_switch  # composites are immutable
    # a value nothing reads after the choice is not bound
    assert not isinstance(df.specialize(step_switch, mode="sub"), df.Bound)


def test_a_name_written_before_the_switch_is_not_the_given_value() -> None:
    @df.block(outputs="mode")
    def flip(mode: str) -> str:
        return "mul" if mode == "add" else "add"

    first = df.Switch({"add": add, "mul": mul}, on="mode", name="first")
    second = df.Switch({"add": add, "mul": mul}, on="mode", name="second")
    seq = df.Sequential(first, flip, second, name="seq")
    flat = df.specialize(seq, mode="add")
    assert [s.name for s in switches(flat)] == ["second"]  # it reads flip's output, not the given mode
    assert call_paths(flat) == ["seq/bound", "seq/first", "seq/flip", "seq/second/add", "seq/second/mul"]
    # in a loop, a name the body writes is carried: its value after the first iteration is not given
    carried = df.Loop(df.Sequential(first, flip, name="body"), times="n", name="loop")
    assert [s.name for s in switches(df.specialize(carried, mode="add"))] == ["first"]


def test_a_partly_specialized_program_runs_its_remaining_switches() -> None:
    @df.block(outputs="mode")
    def flip(mode: str) -> str:
        return "mul" if mode == "add" else "add"

    first = df.Switch({"add": add, "mul": mul}, on="mode", name="first")
    second = df.Switch({"add": add, "mul": mul}, on="mode", name="second")
    seq = df.Sequential(first, flip, second, name="seq")
    assert df.compile(df.specialize(seq, mode="add"))(x=2, factor=5) == {"x": 15, "mode": "mul"}
    assert df.compile(seq)(mode="add", x=2, factor=5) == {"x": 15, "mode": "mul"}  # (2 + 1) * 5
    by_mode = df.compile(df.specialize(nested, mode="sub"))
    assert by_mode(sign="abs", x0=-4, n=2) == {"x": 4}


def test_a_graph_edge_from_a_renamed_input_decides_the_switch() -> None:
    sw = df.Switch({"add": add, "mul": mul}, on="mode", name="sw")
    graph = df.Graph({"sw": sw}, edges=[("op", "sw.mode")], name="g")
    assert {p.name for p in graph.inputs} == {"op", "x", "step", "factor"}
    flat = df.specialize(graph, op="mul")
    assert list(switches(flat)) == [] and df.compile(flat)(x=3, factor=4) == {"x": 12}
    wired = df.Graph(
        {"pick": _const_mode, "sw": sw}, edges=[("pick.mode", "sw.mode")], outputs=["sw.x"], name="w"
    )
    with pytest.raises(df.InputError, match="unknown input 'mode'"):
        df.specialize(wired, mode="add")  # the switch reads the node's output: mode is not an input


@df.block(outputs="mode")
def _const_mode() -> str:
    return "add"


def test_cases_choose_by_switch_path_and_bind_nothing() -> None:
    flat = df.specialize(nested, {"g/loop/step": "sub", "g/loop/step/sub": "abs"})
    assert list(switches(flat)) == [] and not isinstance(flat, df.Bound)
    assert call_paths(flat) == ["g/start", "g/loop/step"]
    assert df.compile(flat)(x0=-7, n=2) == {"x": 7}
    # a trigger switch resolved to its trigger's case: the trigger stays an input (needed by the case)
    img2img = df.specialize(examples.auto_loop, {"auto_loop/prepare": "img2img"})
    prog = df.compile(img2img)
    assert {"image", "strength"} <= {p.name for p in prog.inputs} and "seed" not in {
        p.name for p in prog.inputs
    }
    run = {"num_steps": 3, "cond_weight": 0.9, "uncond_weight": 0.5}
    assert prog(image=4.0, **run, output="value") == pytest.approx(hand_written_auto_loop(image=4.0, **run))
    # cases and values together; the path of a switch inside an unchosen case is not an error
    assert list(switches(df.specialize(nested, {"g/loop/step/sub": "abs"}, mode="add"))) == []
    with pytest.raises(
        df.WiringError,
        match=r"no Switch at path 'g/loop/stpe'; did you mean 'g/loop/step' or .*; "
        r"the switches are at 'g/loop/step', ",
    ):
        df.specialize(nested, {"g/loop/stpe": "add"})
    with pytest.raises(df.WiringError, match=r"switch 'g/loop/step' has no case 'div' \(chosen by"):
        df.specialize(nested, {"g/loop/step": "div"})
    with pytest.raises(df.WiringError, match="map switch paths to keys"):
        df.specialize(nested, ["g/loop/step"])  # type: ignore[arg-type]


# -- specialize: random nestings ---------------------------------------------------------------------
# A tree of steps on one int `x`: leaves add or multiply, Sequentials chain, Graphs wrap one node, Loops
# repeat (times=n<i>), Switches choose on m<i>. `evaluate` is the same tree run by hand.


def adder(k: int) -> Any:
    @df.block(outputs="x", name=f"add{k}")
    def step(x: int) -> int:
        return x + k

    return step


def multiplier(k: int) -> Any:
    @df.block(outputs="x", name=f"mul{k}")
    def step(x: int) -> int:
        return x * k

    return step


def trees(depth: int) -> st.SearchStrategy[tuple[Any, ...]]:
    leaf = st.tuples(st.sampled_from(["add", "mul"]), st.integers(-3, 3))
    if depth == 0:
        return leaf
    child = trees(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.just("seq"), st.lists(child, min_size=1, max_size=3)),
        st.tuples(st.just("loop"), child, st.integers(0, 2)),
        st.tuples(st.just("graph"), child),
        st.tuples(st.just("switch"), st.dictionaries(st.sampled_from(["a", "b", "c"]), child, min_size=1)),
    )


class Built:
    """A random tree as a block, with the inputs it reads besides x and the keys its switches may take."""

    def __init__(self, tree: tuple[Any, ...]) -> None:
        self.counts: dict[str, int] = {}
        self.keys: dict[str, list[str]] = {}
        self.ids: dict[int, str] = {}
        self.block = self.build(tree)

    def build(self, tree: tuple[Any, ...]) -> Any:
        kind = tree[0]
        if kind in ("add", "mul"):
            return (adder if kind == "add" else multiplier)(tree[1])
        if kind == "seq":
            return df.Sequential({f"s{k}": self.build(t) for k, t in enumerate(tree[1])}, name="seq")
        if kind == "graph":
            return df.Graph({"node": self.build(tree[1])}, name="graph")
        name = f"{'n' if kind == 'loop' else 'm'}{len(self.counts) + len(self.keys)}"
        self.ids[id(tree)] = name
        if kind == "loop":
            self.counts[name] = tree[2]
            return df.Loop(self.build(tree[1]), times=name, name=f"loop_{name}")
        self.keys[name] = list(tree[1])
        return df.Switch({k: self.build(t) for k, t in tree[1].items()}, on=name, name=f"sw_{name}")

    def evaluate(self, tree: tuple[Any, ...], x: int, modes: dict[str, str]) -> int:
        kind = tree[0]
        if kind == "add":
            return x + tree[1]
        if kind == "mul":
            return x * tree[1]
        if kind == "seq":
            for t in tree[1]:
                x = self.evaluate(t, x, modes)
            return x
        if kind == "graph":
            return self.evaluate(tree[1], x, modes)
        name = self.ids[id(tree)]
        if kind == "loop":
            for _ in range(self.counts[name]):
                x = self.evaluate(tree[1], x, modes)
            return x
        return self.evaluate(tree[1][modes[name]], x, modes)

    def remaining(self, tree: tuple[Any, ...], given: dict[str, str]) -> set[str]:
        """The switches specialize must leave: those reached whose m<i> is not given."""
        kind = tree[0]
        if kind in ("add", "mul"):
            return set()
        if kind == "seq":
            return set().union(*(self.remaining(t, given) for t in tree[1]))
        if kind in ("loop", "graph"):
            return self.remaining(tree[1], given)
        name = self.ids[id(tree)]
        if name in given:
            return self.remaining(tree[1][given[name]], given)
        return {f"sw_{name}"}.union(*(self.remaining(t, given) for t in tree[1].values()))


def run_inputs(prog: df.Program, built: Built, x: int, modes: dict[str, str]) -> dict[str, Any]:
    every: dict[str, Any] = {"x": x, **built.counts, **modes}
    return {p.name: every[p.name] for p in prog.inputs}


@settings(max_examples=60, deadline=None)
@given(tree=trees(3), x=st.integers(-20, 20), data=st.data())
def test_specialize_random_nestings_equals_the_tree_run_by_hand(
    tree: tuple[Any, ...], x: int, data: Any
) -> None:
    built = Built(tree)
    modes = {name: data.draw(st.sampled_from(keys)) for name, keys in built.keys.items()}
    flat = df.specialize(built.block, **modes)
    assert list(switches(flat)) == []
    prog = df.compile(flat)
    assert prog(**run_inputs(prog, built, x, {}), output="x") == built.evaluate(tree, x, modes)
    # given some of the keys: exactly the switches whose key is not given and that are reached remain
    some = {name: key for name, key in modes.items() if data.draw(st.booleans())}
    partly = df.specialize(built.block, **some)
    # by key name: a chosen case that is itself a Switch takes the resolved Switch's name and path
    assert {f"sw_{s.on}" for s in switches(partly)} == built.remaining(tree, some)


@settings(max_examples=40, deadline=None)
@given(tree=trees(3), x=st.integers(-20, 20), data=st.data())
def test_random_nestings_specialized_or_not_run_the_same(tree: tuple[Any, ...], x: int, data: Any) -> None:
    built = Built(tree)
    modes = {name: data.draw(st.sampled_from(keys)) for name, keys in built.keys.items()}
    some = {name: key for name, key in modes.items() if data.draw(st.booleans())}
    whole = df.compile(built.block)
    partly = df.compile(df.specialize(built.block, **some))
    expected = built.evaluate(tree, x, modes)
    assert whole(**run_inputs(whole, built, x, modes), output="x") == expected
    assert partly(**run_inputs(partly, built, x, modes), output="x") == expected


# -- specialize: selectors ------------------------------------------------------------------------------


@df.block(outputs="key")
def by_sign(delta: int) -> str:
    return "add" if delta >= 0 else "mul"


@df.block(outputs="delta")
def negated(value: int) -> int:
    return -value


def test_a_selector_reading_only_given_values_is_called_to_decide() -> None:
    sw = df.Switch({"add": add, "mul": mul}, on=by_sign, name="sw")
    assert df.specialize(sw, delta=-1).block is mul
    assert df.specialize(sw, delta=2).block is add
    kept = df.specialize(sw, step=3)  # the selector reads delta, which is not given: undecided
    assert isinstance(kept, df.Bound) and isinstance(kept.block, df.Switch)
    pick = df.Graph(
        {"neg": negated, "sign": by_sign}, [("neg.delta", "sign.delta")], ["sign.key"], name="pick"
    )
    composite = df.Switch({"add": add, "mul": mul}, on=pick)
    assert df.specialize(composite, value=5).block is mul  # a composite selector runs as a program
    assert df.specialize(composite, value=-5).block is add


def test_an_unknown_key_is_a_definition_error_naming_the_switch_and_its_cases() -> None:
    with pytest.raises(df.WiringError) as caught:
        df.specialize(nested, mode="mull")
    [d] = caught.value.report.diagnostics
    assert d.code == "DF006" and d.path == "g/loop/step"
    assert "no case 'mull'" in d.message and "'add', 'mul', 'sub'" in d.message
    assert "did you mean 'mul'" in d.message
    with pytest.raises(df.WiringError, match="no case 3"):
        df.specialize(nested, mode=3)

    @df.block(outputs="key")
    def bad(delta: int) -> str:
        return "nope"

    with pytest.raises(df.WiringError, match=r"switch 'sw' has no case 'nope' \(selector 'bad'"):
        df.specialize(df.Switch({"add": add}, on=bad, name="sw"), delta=0)


def test_a_value_for_a_name_nothing_reads_is_an_unknown_input() -> None:
    with pytest.raises(df.InputError, match=r"unknown input 'mdoe'; did you mean 'mode'\?"):
        df.specialize(nested, mdoe="add")
    with pytest.raises(df.InputError, match=r"unknown input 'zzz'.*Inputs: "):
        df.specialize(nested, mode="add", zzz=1)


# -- the trigger form -----------------------------------------------------------------------------------


def md_rule(triggers: list[tuple[str, str]], default: str, given: dict[str, Any]) -> str:
    """AutoPipelineBlocks.select_block, then the default block (ConditionalPipelineBlocks.__call__)."""
    for key, trigger in triggers:
        if given.get(trigger) is not None:
            return key
    return default


trigger_names = st.sampled_from(["image", "mask_image", "control", "ip_image"])
trigger_lists = st.lists(
    st.tuples(st.sampled_from(["inpaint", "img2img", "controlnet", "ip"]), trigger_names),
    min_size=1,
    max_size=4,
    unique_by=lambda kt: kt[0],
)
given_values = st.dictionaries(trigger_names, st.one_of(st.none(), st.integers(), st.just("x")), max_size=4)


@settings(max_examples=200, deadline=None)
@given(triggers=trigger_lists, given_inputs=given_values)
def test_first_given_chooses_as_autopipelineblocks_does(
    triggers: list[tuple[str, str]], given_inputs: dict[str, Any]
) -> None:
    selector = df.first_given(dict(triggers), default="text2img")
    read = {p.name for p in selector.inputs}
    call = {k: v for k, v in given_inputs.items() if k in read}
    expected = md_rule(triggers, "text2img", given_inputs)
    assert selector(**call) == {"key": expected}
    # a program running the selector alone: the output is the key, the absent triggers default to None
    assert df.compile(df.Sequential(selector, name="s"))(**call, output="key") == expected
    # specialize decides from the values, also when only some triggers are given
    decided = selector.choose(given_inputs)
    if decided is not None:
        assert decided == expected
    assert selector.choose({t: None for _, t in triggers}) == "text2img"
    assert selector.choose({}) is None  # no trigger given: specialize leaves the switch


def test_first_given_against_diffusers_autopipelineblocks() -> None:
    modular = pytest.importorskip("diffusers.modular_pipelines")

    class Auto(modular.AutoPipelineBlocks):  # type: ignore[misc,name-defined]
        block_classes: ClassVar[list[type]] = [modular.ModularPipelineBlocks] * 3
        block_names: ClassVar[list[str]] = ["inpaint", "img2img", "text2img"]
        block_trigger_inputs: ClassVar[list[str | None]] = ["mask_image", "image", None]

    auto = Auto()
    selector = df.first_given({"inpaint": "mask_image", "img2img": "image"}, default="text2img")
    for mask in (None, 1):
        for image in (None, 2):
            md = auto.select_block(mask_image=mask, image=image) or auto.default_block_name
            assert selector(mask_image=mask, image=image)["key"] == md


def test_first_given_types_its_key_as_a_literal_so_the_checker_matches_cases() -> None:
    selector = df.first_given({"img2img": "image"}, default="text2img")
    [key] = selector.outputs
    assert df.describe_type(key.type) == "Literal['img2img', 'text2img']"
    assert [(p.name, p.default) for p in selector.inputs] == [("image", None)]
    missing_default = df.Switch({"img2img": add}, on=selector, name="sw")
    codes = [d.code for d in df.check(missing_default).diagnostics]
    assert "DF402" in codes  # the key 'text2img' has no case
    assert df.check(df.Switch({"img2img": add, "text2img": mul}, on=selector)).ok


def test_specialize_resolves_a_trigger_selector_from_the_triggers_up_to_the_first_given_one() -> None:
    @df.block(outputs="x")
    def inpaint(x: int, mask_image: int, image: int) -> int:
        return x + mask_image + image

    @df.block(outputs="x")
    def img2img(x: int, image: int) -> int:
        return x * image

    selector = df.first_given({"inpaint": "mask_image", "img2img": "image"}, default="text2img")
    auto = df.Switch({"inpaint": inpaint, "img2img": img2img, "text2img": add}, on=selector, name="auto")
    assert df.specialize(auto, mask_image=None, image=None).block is add
    as_img2img = df.specialize(auto, mask_image=None, image=3)
    assert as_img2img.block is img2img and dict(as_img2img.values) == {"image": 3}
    assert df.compile(as_img2img)(x=2) == {"x": 6}
    as_inpaint = df.specialize(auto, mask_image=1)  # the first trigger given: the rest do not matter
    assert as_inpaint.block is inpaint and [p.name for p in as_inpaint.inputs] == ["x", "image"]
    undecided = df.specialize(auto, image=3)  # mask_image may still be given: not decided
    assert isinstance(undecided.block, df.Switch)


def test_first_given_refuses_malformed_definitions() -> None:
    with pytest.raises(df.WiringError, match="non-empty mapping"):
        df.first_given({}, default="a")
    with pytest.raises(df.WiringError, match="a trigger input: name 'not a name' is not a Python identifier"):
        df.first_given({"a": "not a name"}, default="b")
    with pytest.raises(df.WiringError, match="default="):
        df.first_given({"a": "image"}, default="")


# -- pickling -------------------------------------------------------------------------------------------


def test_a_switch_and_a_specialized_block_pickle_as_their_definitions() -> None:
    auto = examples.prepare
    again = pickle.loads(pickle.dumps(auto))
    assert isinstance(again, df.Switch) and list(again.cases) == ["img2img", "text2img"]
    assert again.selector == auto.selector and isinstance(again.selector, FirstGiven)
    assert str(df.lower(again)) == str(df.lower(auto))
    flat = df.specialize(examples.auto_loop, image=4.0)
    flat_again = pickle.loads(pickle.dumps(flat))
    assert dict(flat_again.values) == {"image": 4.0}
    run = {"num_steps": 3, "cond_weight": 0.9, "uncond_weight": 0.5}
    assert df.compile(flat_again)(**run) == df.compile(flat)(**run)
    program = df.compile(flat)
    assert pickle.loads(pickle.dumps(program))(**run) == program(**run)


# -- the example of `make demo`, prog.doc and `dfgraph describe` ----------------------------------------


def hand_written_auto_loop(
    num_steps: int, cond_weight: float, uncond_weight: float, seed: int = 0, image: float | None = None
) -> float:
    value = image * 0.5 if image is not None else float(seed % 7) + 1.0
    for k in range(num_steps):
        t = float(num_steps - k)
        scaled = value / (1.0 + t)
        cond, uncond = scaled * cond_weight, scaled * uncond_weight
        value = value - 0.1 * (uncond + 2.0 * (cond - uncond))
    return value


def test_the_demo_example_specialized_equals_the_hand_written_loop() -> None:
    run = {"num_steps": 4, "cond_weight": 0.9, "uncond_weight": 0.5}
    text2img = df.compile(df.specialize(examples.auto_loop, image=None))
    assert "image" not in {p.name for p in text2img.inputs}
    assert text2img(seed=3, **run, output="value") == pytest.approx(hand_written_auto_loop(seed=3, **run))
    img2img = df.compile(df.specialize(examples.auto_loop, image=4.0))
    assert img2img(**run, output="value") == pytest.approx(hand_written_auto_loop(image=4.0, **run))


def test_the_demo_example_runs_as_one_program() -> None:
    run = {"num_steps": 4, "cond_weight": 0.9, "uncond_weight": 0.5}
    auto = df.compile(examples.auto_loop)
    assert auto(seed=3, **run, output="value") == pytest.approx(hand_written_auto_loop(seed=3, **run))
    assert auto(image=4.0, **run, output="value") == pytest.approx(hand_written_auto_loop(image=4.0, **run))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        examples.main()
    assert "specialize(auto_loop, image=None) inputs: seed: int, num_steps: int" in out.getvalue()


AUTO_SWITCHES = """Switches:
  auto_loop/prepare: on the first given of image (auto_loop/prepare/first_given)
    case 'img2img' (when image is not None)
    case 'text2img' (default: every trigger is None): needs seed"""


def test_prog_doc_shows_each_switch_its_cases_triggers_and_inputs() -> None:
    doc = df.compile(examples.auto_loop).doc
    assert doc.endswith(AUTO_SWITCHES)
    assert (
        "  seed: int (required when a case reading it is chosen)  [read by auto_loop/prepare/text2img.seed]"
        in doc
    )
    text = df.compile(df.Sequential(step_switch, name="seq")).doc.split("Switches:\n")[1]
    assert text.splitlines() == [
        "  seq/step: on 'mode'",
        "    case 'add'",
        "    case 'mul': needs factor",
        "    case 'sub': needs sign",
        "  seq/step/sub: on 'sign'",
        "    case 'minus'",
        "    case 'abs'",
    ]
    # in a loop body too (which inputs a case needs there is the lowering's WHEN_CHOSEN rule)
    lines = df.compile(nested).doc.split("Switches:\n")[1].splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "  g/loop/step",
        "    case 'add'",
        "    case 'mul'",
        "    case 'sub'",
        "  g/loop/step/sub",
        "    case 'minus'",
        "    case 'abs'",
    ]
    pick = df.Graph(
        {"neg": negated, "sign": by_sign}, [("neg.delta", "sign.delta")], ["sign.key"], name="pick"
    )
    sw = df.Switch({"add": add, "mul": mul}, on=pick, name="sw")
    assert "  sw: on selector sw/pick (reads value)" in df.compile(sw).doc
    assert "Switches:" not in df.compile(df.specialize(nested, mode="add")).doc


def test_describe_shows_the_switch_in_the_structure_and_its_cases() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(["describe", "dfgraph_blocks.control_demo:auto_loop"])
    text = out.getvalue()
    assert status == 0
    assert "      prepare  Switch(2 cases, on=selector 'first_given')" in text
    assert (
        "        first_given (selector)  (image: object | None) -> (key: Literal['img2img', 'text2img'])"
        in text
    )
    assert "        case 'text2img'  (seed: int) -> (value: float)" in text
    assert text.rstrip().endswith("\n".join("  " + line for line in AUTO_SWITCHES.splitlines()))


def test_check_finds_a_module_level_graph_with_a_switch_and_locates_findings_in_cases(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(["check", "dfgraph_blocks.control_demo"])
    # auto_loop is checked; prepare (a Switch nested in it) is checked as part of it, not alone
    assert status == 0 and out.getvalue() == "dfgraph_blocks.control_demo:auto_loop: 0 errors, 0 warnings\n"
    module = tmp_path / "switchy.py"
    module.write_text(
        "import dfgraph as df\n"
        "\n"
        "@df.block(outputs='y')\n"
        "def good(x: int) -> int:\n"
        "    return x\n"
        "\n"
        "@df.block(outputs='y')\n"
        "def bad(x: str) -> str:\n"
        "    return x\n"
        "\n"
        "@df.block(outputs='x')\n"
        "def make() -> int:\n"
        "    return 1\n"
        "\n"
        "sw = df.Sequential(make, df.Switch({'a': good, 'b': bad}, on='mode'), name='sw')\n"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out), _on_path(tmp_path):
        status = cli.main(["check", "switchy"])
    text = out.getvalue()
    assert status == 1
    assert "switchy.py:7: sw/switch/b.x: error[DF001]" in text  # at the case's def, not the Sequential


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    import sys

    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("switchy", None)


# -- the README's example -------------------------------------------------------------------------------


def readme_section() -> str:
    return README.read_text().split("\n## Control flow\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_control_flow_example_specializes() -> None:
    example = next(b for b in re.findall(r"```python\n(.*?)```", readme_section(), flags=re.S))
    namespace: dict[str, Any] = {}
    exec(example.split("prog = df.compile(pipe)")[0], namespace)  # the definitions
    text2img = df.compile(df.specialize(namespace["pipe"], mode="text2img"))
    assert [p.name for p in text2img.inputs] == ["seed", "num_steps"]
    assert text2img(seed=8, num_steps=2, output="latents") == 2.0  # 8 -> 4 -> 2 (until= not reached)
    img2img = df.compile(df.specialize(namespace["pipe"], {"pipe/prepare": "img2img"}))
    assert [p.name for p in img2img.inputs] == ["image", "strength", "num_steps"]
    assert img2img(image=8.0, num_steps=1, output="latents") == 2.0
    shown = re.search(r"```\n(Switches:.*?)```", readme_section(), flags=re.S)
    assert shown is not None
    assert df.compile(namespace["pipe"]).doc.endswith(shown.group(1).rstrip())  # the shown doc is real


def test_the_readme_control_flow_example_runs() -> None:
    example = next(b for b in re.findall(r"```python\n(.*?)```", readme_section(), flags=re.S))
    namespace: dict[str, Any] = {}
    exec(example, namespace)  # asserts inside
    assert isinstance(namespace["auto"], df.Switch) and "Switches:" in namespace["auto_pipe"].doc

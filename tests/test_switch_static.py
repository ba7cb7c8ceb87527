"""Control flow, statically: how a Switch, Loop(until=) and Bound lower to the IR, and what the checker says.

The run-time half (interpreter, generated code) is in test_switch_run.py; here: the IR shape (printer,
verifier), the interface a Switch derives (inputs, WHEN_CHOSEN, outputs and their joined types) and the
DF4xx codes, DF101 through cases, and the definition errors.
"""

from __future__ import annotations

import pickle
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph.compose import Bound, Switch
from dfgraph.ir import Case, SwitchOp, SwitchOut, case_chain, regions
from dfgraph.ports import REQUIRED, WHEN_CHOSEN


@df.block(outputs="y")
def double(x: int) -> int:
    return 2 * x


@df.block(outputs="y")
def negate(x: int) -> int:
    return -x


@df.block(outputs="y")
def halve(x: int) -> float:
    return x / 2


@df.block(outputs="z")
def only_b(x: int) -> float:
    return x / 2


@df.block(outputs="w")
def use_z(z: float) -> float:
    return z


@df.block(outputs="z")
def z_first(x: int) -> float:
    return float(x)


@df.block(outputs="x")
def inc(x: int) -> int:
    return x + 1


@df.block(outputs="x")
def to_float(x: int) -> float:
    return x + 0.5


@df.block(outputs="stop")
def stop_bool(x: int) -> bool:
    return x > 3


@df.block(outputs="stop")
def stop_int(x: int) -> int:
    return x


@df.block(outputs="mode")
def pick(x: int) -> str:
    return "a" if x > 0 else "b"


@df.block(outputs="mode")
def pick_literal(x: int) -> Literal["a", "c"]:
    return "a"


@df.block(outputs=("mode", "other"))
def pick_two(x: int) -> tuple[str, int]:
    return "a", 1


@df.block(outputs="y")
def needs_q(q: int, x: int) -> int:
    return q + x


def ports(block: Any) -> dict[str, Any]:
    return {p.name: p for p in block.inputs}


def codes(block: Any) -> list[str]:
    return [d.code for d in df.check(block).diagnostics]


def switch_op(lowered: Any) -> SwitchOp:
    return next(op for op in lowered.ops() if isinstance(op, SwitchOp))


# -- the IR ---------------------------------------------------------------------------------------------


def test_switch_lowers_to_one_op_with_a_region_per_case() -> None:
    sw = Switch({"a": double, "b": df.Sequential(negate, only_b)}, on="mode")
    lowered = df.lower(sw)
    df.verify(lowered)
    op = switch_op(lowered)
    assert [c.key for c in op.cases] == ["a", "b"]
    assert all(isinstance(c, Case) and c.body.owner is op and c.body.conditional for c in op.cases)
    assert regions(op) == [c.body for c in op.cases]
    assert op.inputs[0].value is lowered.inputs["mode"]
    assert [o.value.name for o in op.outs] == ["y", "z"]
    assert [v.name for v in op.outputs] == ["y", "z"]
    y, z = op.outs
    assert all(f is not None for f in y.finals) and not y.partial
    assert z.finals[0] is None and z.partial
    # case paths: the key names a leaf case; a Sequential case's children sit under the key
    assert [o.path for o in op.cases[0].body.ops] == ["switch/a"]
    assert [o.path for o in op.cases[1].body.ops] == ["switch/b/negate", "switch/b/only_b"]
    assert case_chain(op.cases[1].body.ops[0]) == ((op, 1),)
    assert case_chain(op) == ()
    # walk visits the switch, then each case's ops in case order
    assert [o.path for o in lowered.ops()] == ["switch", "switch/a", "switch/b/negate", "switch/b/only_b"]


def test_printed_ir_shows_cases_and_outputs() -> None:
    text = str(df.lower(Switch({"a": double, "b": df.Sequential(negate, only_b)}, on="mode")))
    lines = text.splitlines()
    assert lines[0] == "graph switch"
    assert any(line.startswith("%") and "= switch %" in line and line.endswith("# switch") for line in lines)
    assert "  case 'a':" in lines and "  case 'b':" in lines
    assert any(line.startswith("    ") and "call double(x=" in line for line in lines)
    assert any(line.strip().startswith("out ") and "(unset, " in line for line in lines)
    assert lines[-2:] == [line for line in lines if line.startswith("output ")]


def test_selector_is_a_call_just_before_the_switch() -> None:
    lowered = df.lower(Switch({"a": double, "b": negate}, on=pick))
    df.verify(lowered)
    top = lowered.root.ops
    assert [o.path for o in top] == ["switch/pick", "switch"]
    assert top[1].inputs[0].value is top[0].outputs[0]
    # the selector's output is the key, not an output of the switch
    assert set(lowered.outputs) == {"y"}


def test_captures_are_listed_once_on_the_switch() -> None:
    sw = Switch({"a": needs_q, "b": df.Sequential(double, needs_q)}, on="mode")
    lowered = df.lower(sw)
    df.verify(lowered)
    op = switch_op(lowered)
    captured = [s.value.name for s in op.inputs[1:]]
    assert sorted(captured) == ["q", "x"]  # once each, though both cases read both


def test_verifier_refuses_a_value_read_in_a_sibling_case() -> None:
    lowered = df.lower(Switch({"a": df.Sequential(double, use_z), "b": z_first}, on="mode"))
    op = switch_op(lowered)
    # rebind case a's reader of z... to a value made in case b: visible nowhere in case a
    reader = next(o for o in op.cases[0].body.ops if o.path.endswith("use_z"))
    made_in_b = op.cases[1].body.ops[0].outputs[0]
    old = reader.inputs[0].value
    old.readers.remove((reader, 0))
    reader.inputs[0].value = made_in_b
    made_in_b.readers.append((reader, 0))
    with pytest.raises(df.IRError, match="before it is produced, or outside its scope"):
        df.verify(lowered)


def test_verifier_refuses_a_final_from_another_case() -> None:
    lowered = df.lower(Switch({"a": double, "b": negate}, on="mode"))
    op = switch_op(lowered)
    out = op.outs[0]
    op.outs[0] = SwitchOut(out.value, (out.finals[1], out.finals[0]), None)
    with pytest.raises(df.IRError, match="is not produced in that case"):
        df.verify(lowered)


def test_until_value_is_the_body_output() -> None:
    loop = df.Loop(df.Sequential(inc, stop_bool), times="n", until="stop")
    lowered = df.lower(loop)
    df.verify(lowered)
    op = next(iter(lowered.root.ops))
    assert op.until_value is not None and op.until_value.producer.path == "loop/stop_bool"
    assert "until %" in op.format()


# -- the interface ----------------------------------------------------------------------------------------


def test_inputs_read_by_some_cases_are_needed_only_when_chosen() -> None:
    sw = Switch({"a": double, "b": needs_q}, on="mode")
    p = ports(sw)
    assert p["mode"].default is REQUIRED and p["mode"].type is str
    assert p["x"].default is REQUIRED  # every case reads x: always needed
    assert p["q"].default is WHEN_CHOSEN and not p["q"].required


def test_every_case_reading_an_input_through_nested_switches_makes_it_required() -> None:
    inner = Switch({"c": needs_q, "d": needs_q}, on="m2")
    outer = Switch({"a": inner, "b": needs_q}, on="mode")
    assert ports(outer)["q"].default is REQUIRED
    partly = Switch({"a": Switch({"c": needs_q, "d": double}, on="m2"), "b": needs_q}, on="mode")
    assert ports(partly)["q"].default is WHEN_CHOSEN
    assert ports(partly)["m2"].default is WHEN_CHOSEN  # the inner key: read only when case a runs


def test_a_name_passed_through_is_needed_by_the_cases_that_do_not_write_it() -> None:
    @df.block(outputs="q")
    def makes_q(x: int) -> int:
        return x

    # case b reads q (so q is an input); case c writes it, cases a and b pass it through: it is needed
    # unless c runs
    sw = Switch({"a": double, "b": needs_q, "c": makes_q}, on="mode")
    assert ports(sw)["q"].default is WHEN_CHOSEN
    op = switch_op(df.lower(sw))
    q = next(o for o in op.outs if o.value.name == "q")
    assert q.finals[:2] == (None, None) and q.init is not None
    # every case either reads q or passes it through: always needed
    sw = Switch({"a": double, "b": df.Sequential(needs_q, makes_q)}, on="mode")
    assert ports(sw)["q"].required


def test_a_default_of_the_readers_in_cases_is_kept() -> None:
    @df.block(outputs="y")
    def with_default(x: int, scale: float = 2.0) -> float:
        return x * scale

    sw = Switch({"a": with_default, "b": double}, on="mode")
    assert ports(sw)["scale"].default == 2.0


def test_outputs_are_joined_over_the_cases() -> None:
    sw = Switch({"a": double, "b": halve}, on="mode")
    out = {p.name: p for p in sw.outputs}
    assert df.is_assignable(int, out["y"].type) and df.is_assignable(float, out["y"].type)

    # a consumer must accept every case's type
    @df.block(outputs="r")
    def wants_int(y: int) -> int:
        return y

    assert "DF001" in codes(df.Sequential(sw, wants_int))
    assert codes(df.Sequential(Switch({"a": double, "b": negate}, on="mode"), wants_int)) == []


def test_a_name_some_cases_write_passes_the_earlier_value_through() -> None:
    seq = df.Sequential(z_first, Switch({"a": double, "b": df.Sequential(negate, only_b)}, on="mode"), use_z)
    assert codes(seq) == []
    lowered = df.lower(seq)
    df.verify(lowered)
    op = switch_op(lowered)
    z = next(o for o in op.outs if o.value.name == "z")
    assert z.init is not None and z.init.producer.path == "sequential/z_first"
    assert not z.partial


def test_reading_a_name_no_path_guarantees_is_df401_naming_the_cases() -> None:
    sw = Switch({"a": double, "b": df.Sequential(negate, only_b), "c": negate}, on="mode")
    report = df.check(df.Sequential(sw, use_z))
    [d] = report.diagnostics
    assert d.code == "DF401" and d.path == "sequential/use_z.z"
    assert "cases 'a', 'c' do not write it" in d.message
    # unread, the partial name is only an output that may be missing: no finding
    assert codes(sw) == []


def test_df101_names_the_case_that_changes_a_carried_type() -> None:
    loop = df.Loop(Switch({"a": inc, "b": to_float}, on="mode"), times="n")
    [d] = df.check(loop).diagnostics
    assert d.code == "DF101"
    assert "case 'b' of switch 'loop/switch'" in d.message and "loop/switch/b.x" in d.message
    nested = df.Loop(
        Switch({"a": inc, "b": Switch({"c": inc, "d": to_float}, on="m2")}, on="mode"), times="n"
    )
    [d] = df.check(nested).diagnostics
    assert d.code == "DF101" and "case 'd' of switch 'loop/switch/b'" in d.message
    assert codes(df.Loop(Switch({"a": inc, "b": df.Sequential(inc, inc)}, on="mode"), times="n")) == []


def test_literal_keys_must_match_the_cases() -> None:
    report = df.check(Switch({"a": double, "b": negate}, on=pick_literal))
    assert sorted(d.code for d in report.diagnostics) == ["DF402", "DF403"]
    df402 = next(d for d in report.diagnostics if d.code == "DF402")
    df403 = next(d for d in report.diagnostics if d.code == "DF403")
    assert "'c'" in df402.message and df402.severity is df.Severity.ERROR
    assert df403.path == "switch/b" and df403.severity is df.Severity.WARNING
    assert codes(Switch({"a": double, "c": negate}, on=pick_literal)) == []
    assert codes(Switch({"a": double, "b": negate}, on=pick)) == []  # a plain str: checked at run time


def test_a_non_str_key_is_df001() -> None:
    @df.block(outputs="mode")
    def pick_int(x: int) -> int:
        return x

    assert "DF001" in codes(Switch({"a": double}, on=pick_int))


def test_selector_needs_exactly_one_output() -> None:
    [d] = df.check(Switch({"a": double}, on=pick_two)).diagnostics
    assert d.code == "DF405" and d.path == "switch/pick_two"
    with pytest.raises(df.WiringError, match="DF405"):
        df.compile(Switch({"a": double}, on=pick_two))


def test_until_must_name_a_bool_body_output() -> None:
    assert codes(df.Loop(df.Sequential(inc, stop_bool), times="n", until="stop")) == []
    [d] = df.check(df.Loop(df.Sequential(inc, stop_int), times="n", until="stop")).diagnostics
    assert d.code == "DF404" and "not bool" in d.message
    [d] = df.check(df.Loop(df.Sequential(inc, stop_bool), times="n", until="stp")).diagnostics
    assert d.code == "DF404" and "did you mean 'stop'" in d.message


def test_new_codes_are_registered() -> None:
    for code in ("DF401", "DF402", "DF403", "DF404", "DF405"):
        assert code in df.REGISTRY
    assert df.REGISTRY["DF403"].severity is df.Severity.WARNING


def test_switch_nests_in_graphs_and_loops() -> None:
    sw = Switch({"a": inc, "b": df.Sequential(inc, inc)}, on="mode")
    graph = df.Graph({"first": inc, "loop": df.Loop(sw, times="n")}, edges=[("first.x", "loop.x")])
    assert codes(graph) == []
    lowered = df.lower(graph)
    df.verify(lowered)
    assert {p.name for p in graph.inputs} == {"x", "mode", "n"}


# -- definitions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cases", "on", "match"),
    [
        ({}, "mode", "non-empty mapping"),
        ([("a", double)], "mode", "non-empty mapping"),
        ({1: double}, "mode", "must be a str"),
        ({"": double}, "mode", "case key"),
        ({"a": 42}, "mode", "is not a block"),
        ({"a": double}, "not a name", "on= must be a name"),
        ({"a": double}, 42, "is not a block"),
    ],
)
def test_malformed_switches_are_df006(cases: Any, on: Any, match: str) -> None:
    with pytest.raises(df.WiringError, match=match) as info:
        Switch(cases, on=on)
    assert [d.code for d in info.value.report.diagnostics] == ["DF006"]


def test_switch_and_bound_are_immutable_and_pickle() -> None:
    sw = Switch({"a": double, "b": negate}, on="mode")
    with pytest.raises(AttributeError):
        sw.on = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        sw.cases["c"] = double
    again = pickle.loads(pickle.dumps(sw))
    assert list(again.cases) == ["a", "b"] and again.on == "mode"
    assert [p.name for p in again.inputs] == [p.name for p in sw.inputs]
    bound = Bound(sw, {"mode": "a"})
    assert [p.name for p in pickle.loads(pickle.dumps(bound)).inputs] == ["x"]


def test_bound_values_are_no_longer_inputs() -> None:
    sw = Switch({"a": double, "b": needs_q}, on="mode")
    bound = Bound(sw, {"mode": "a", "q": 3})
    assert [p.name for p in bound.inputs] == ["x"]
    lowered = df.lower(bound)
    df.verify(lowered)
    constants = lowered.root.ops[0]
    assert constants.path == "switch/bound"
    assert [v.name for v in constants.outputs] == ["mode", "q"]
    # bound to a Literal of the value: meets Literal ports
    assert constants.outputs[0].type == Literal["a"]
    assert codes(bound) == ["DF403"]  # binding the key leaves case b unreachable: said so


# -- properties -------------------------------------------------------------------------------------------

NAMES = ("p", "q", "r")


class _Writer:
    """A protocol block writing `name` (typed `typ`) from x."""

    def __init__(self, name: str, typ: type) -> None:
        self.name = f"write_{name}"
        self.inputs = (df.Port("x", int),)
        self.outputs = (df.Port(name, typ),)
        self.typ = typ

    def __call__(self, **kw: Any) -> dict[str, Any]:
        return {self.outputs[0].name: self.typ(kw["x"])}


class _Reader:
    """A protocol block reading one name (typed object, so any case type fits)."""

    def __init__(self, name: str) -> None:
        self.name = "reader"
        self.inputs = (df.Port(name, object),)
        self.outputs = (df.Port("seen", int),)

    def __call__(self, **kw: Any) -> dict[str, int]:
        return {"seen": 0}


@st.composite
def switch_cases(draw: st.DrawFn) -> tuple[list[dict[str, type]], set[str]]:
    """Per case, the names it writes and their types; and the names written before the switch."""
    n = draw(st.integers(1, 4))
    cases = [
        draw(st.dictionaries(st.sampled_from(NAMES), st.sampled_from([int, float, str]), max_size=3))
        for _ in range(n)
    ]
    before = draw(st.sets(st.sampled_from(NAMES)))
    return cases, before


@settings(max_examples=60, deadline=None)
@given(switch_cases(), st.sampled_from(NAMES))
def test_switch_outputs_follow_the_rules(drawn: tuple[list[dict[str, type]], set[str]], read: str) -> None:
    cases, before = drawn
    blocks = {
        f"k{i}": df.Sequential(*(_Writer(name, typ) for name, typ in writes.items()), name=f"case{i}")
        for i, writes in enumerate(cases)
    }
    prior = [_Writer(name, int) for name in sorted(before)]
    seq = df.Sequential(*prior, Switch(blocks, on="mode"), _Reader(read))
    lowered = df.lower(seq)
    df.verify(lowered)
    op = switch_op(lowered)
    written = [set(c) for c in cases]
    union = set().union(*written)
    assert {o.value.name for o in op.outs} == union
    for out in op.outs:
        name = out.value.name
        by_all = all(name in w for w in written)
        assert out.partial == (not by_all and name not in before)
        assert (out.init is not None) == (not by_all and name in before)
        for typ in {c[name] for c in cases if name in c}:
            assert df.is_assignable(typ, out.value.type)
    found = [d for d in df.check(seq).diagnostics if d.code == "DF401"]
    expect_df401 = read in union and not all(read in w for w in written) and read not in before
    assert bool(found) == expect_df401
    if found:
        missing = [f"'k{i}'" for i, w in enumerate(written) if read not in w]
        assert all(m in found[0].message for m in missing)


@st.composite
def mistyped_switch(draw: st.DrawFn) -> tuple[Any, str, str]:
    """A loop whose body is a switch (maybe nested in a case of another) carrying x: int, where exactly one
    case writes x as str. Returns the loop, the path of the mistyped block and the case key."""
    depth = draw(st.integers(1, 3))
    n = draw(st.integers(1, 4))
    bad = draw(st.integers(0, n - 1))
    keys = [f"k{i}" for i in range(n)]
    cases: dict[str, Any] = {}
    for i, key in enumerate(keys):
        cases[key] = _Carrier(str if i == bad else int)
    block: Any = Switch(cases, on="m0")
    path_of_bad = f"loop/switch/{keys[bad]}"
    for level in range(1, depth):
        others = {f"o{j}": _Carrier(int) for j in range(draw(st.integers(0, 2)))}
        block = Switch({"deep": block, **others}, on=f"m{level}", name="switch")
        path_of_bad = path_of_bad.replace("loop/switch/", "loop/switch/deep/", 1)
    return df.Loop(block, times="n"), path_of_bad, keys[bad]


class _Carrier:
    """A protocol block reading x: int and writing x typed `typ`."""

    def __init__(self, typ: type) -> None:
        self.name = "carrier"
        self.inputs = (df.Port("x", int),)
        self.outputs = (df.Port("x", typ),)

    def __call__(self, **kw: Any) -> dict[str, Any]:
        return {"x": kw["x"]}


@settings(max_examples=40, deadline=None)
@given(mistyped_switch())
def test_a_mistyped_case_is_always_df101_at_that_case(drawn: tuple[Any, str, str]) -> None:
    loop, path_of_bad, key = drawn
    report = df.check(loop)
    assert [d.code for d in report.diagnostics] == ["DF101"]
    [d] = report.diagnostics
    assert f"{path_of_bad}.x (case {key!r} of switch" in d.message


def test_a_trigger_input_shows_the_none_its_selector_accepts() -> None:
    @df.block(outputs="y")
    def from_image(image: float) -> float:
        return image

    sw = Switch(
        {"img2img": from_image, "text2img": double},
        on=df.first_given({"img2img": "image"}, default="text2img"),
    )
    image = ports(sw)["image"]
    # narrowed by the case (float), defaulting to None by the selector: both shown
    assert image.default is None and image.type == float | None
    prog = df.compile(sw)
    assert prog(image=None, x=2) == {"y": 4} and prog(image=3.0) == {"y": 3.0}
    with pytest.raises(df.InputError, match="must be float"):
        prog(image="x")

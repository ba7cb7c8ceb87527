"""Switches and until= at run time, in both engines: the generated code and the reference interpreter.

Every expectation here is written by hand from the semantics (README "Control flow", the interpreter's
docstring), never computed by dfgraph; each test also asserts that `prog.interpret` answers as `prog`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

import dfgraph as df
from dfgraph.codegen import MAX_NESTING, Unset
from dfgraph.compose import Switch
from dfgraph.ports import WHEN_CHOSEN


def outcome(fn: Callable[..., Any], /, **inputs: Any) -> tuple[Any, Exception | None]:
    """(result, None) or (None, the exception)."""
    try:
        return fn(**inputs), None
    except Exception as exc:
        return None, exc


def both(prog: df.Program, /, **inputs: Any) -> Any:
    """Run the generated code and the interpreter: the same result, or the same error (type, message,
    path and iterations); returns the result, or raises that error."""
    got, error = outcome(prog, **inputs)
    again, other = outcome(prog.interpret, **inputs)
    assert got == again, (got, again)
    assert repr(error) == repr(other), (error, other)
    if isinstance(error, df.BlockError):
        assert isinstance(other, df.BlockError)
        assert (error.path, error.iterations) == (other.path, other.iterations)
        assert repr(error.__cause__) == repr(other.__cause__)
    if error is not None:
        raise error
    return got


class Rec(df.Hook):
    """Records the block, loop and run events."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def run_start(self, program: str, inputs: Mapping[str, Any]) -> None:
        self.events.append(("run_start",))

    def block_start(self, path: str, inputs: Mapping[str, Any]) -> None:
        self.events.append(("block_start", path, dict(inputs)))

    def block_end(self, path: str, outputs: Mapping[str, Any]) -> None:
        self.events.append(("block_end", path, dict(outputs)))

    def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
        self.events.append(("iteration_end", path, index, dict(carried)))

    def loop_end(self, path: str) -> None:
        self.events.append(("loop_end", path))

    def run_end(self, program: str, outputs: Mapping[str, Any]) -> None:
        self.events.append(("run_end", dict(outputs)))

    def error(self, exc: Exception) -> None:
        self.events.append(("error", type(exc).__name__))


def hooked_both(blk: Any, /, **inputs: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    """Both engines with a recording hook: the same events in the same order; (result, events)."""
    compiled, interpreted = Rec(), Rec()
    prog = df.compile(blk, hooks=[compiled])
    got, error = outcome(prog, **inputs)
    again, other = outcome(df.compile(blk, hooks=[interpreted]).interpret, **inputs)
    assert (got, repr(error)) == (again, repr(other))
    assert compiled.events == interpreted.events
    if error is not None:
        raise error
    return got, compiled.events


# -- blocks ------------------------------------------------------------------------------------------


@df.block(outputs="x")
def inc(x: int) -> int:
    return x + 1


@df.block(outputs="x")
def dbl(x: int) -> int:
    return 2 * x


@df.block(outputs="x")
def neg(x: int) -> int:
    return -x


@df.block(outputs="y")
def half(x: int) -> int:
    return x // 2


@df.block(outputs="x")
def add_image(x: int, image: int) -> int:
    return x + image


@df.block(outputs="stop")
def over_limit(x: int, limit: int) -> bool:
    return x > limit


CALLS: list[str] = []


@df.block(outputs="mode")
def pick(flag: bool) -> str:
    CALLS.append("pick")
    return "inc" if flag else "dbl"


@df.block(outputs="mode")
def parity(x: int) -> str:
    return "inc" if x % 2 else "dbl"


@df.block(outputs="mode")
def named(x: int, names: list[str]) -> str:
    return names[x % len(names)]


# -- by name, by selector ----------------------------------------------------------------------------


def test_a_switch_by_name_runs_exactly_the_chosen_case() -> None:
    prog = df.compile(Switch({"inc": inc, "dbl": dbl, "neg": neg}, on="mode"))
    assert both(prog, mode="inc", x=5) == {"x": 6}
    assert both(prog, mode="dbl", x=5) == {"x": 10}
    assert both(prog, mode="neg", x=5) == {"x": -5}
    assert both(prog, mode="neg", x=5, output="x") == -5


def test_the_generated_code_is_an_if_elif_a_person_would_write() -> None:
    prog = df.compile(Switch({"inc": inc, "dbl": dbl}, on="mode", name="sw"))
    src = prog.source
    assert "if mode == 'inc':" in src
    assert "elif mode == 'dbl':" in src
    assert "        x_1 = inc(x)  # sw/inc" in src or "x = inc(x)  # sw/inc" in src
    assert "else:" in src
    assert "{'inc'" not in src and "dict(" not in src  # no per-call dict of cases


def test_a_selector_runs_once_first_and_its_key_chooses() -> None:
    CALLS.clear()
    prog = df.compile(df.Sequential(Switch({"inc": inc, "dbl": dbl}, on=pick, name="sw"), neg))
    assert both(prog, flag=True, x=3) == {"x": -4}
    assert CALLS == ["pick", "pick"]  # once per engine
    assert both(prog, flag=False, x=3) == {"x": -6}
    assert prog.source.count("pick(") == 1


def test_hooks_fire_for_the_selector_first_and_the_chosen_case_only() -> None:
    blk = df.Sequential(neg, Switch({"inc": inc, "dbl": dbl}, on=pick, name="sw"))
    result, events = hooked_both(blk, flag=False, x=3)
    assert result == {"x": -6}
    paths = [e[1] for e in events if e[0] == "block_start"]
    assert paths == ["sequential/sw/pick", "sequential/neg", "sequential/sw/dbl"]
    assert ("block_end", "sequential/sw/dbl", {"x": -6}) in events


# -- conditional inputs and errors before any block runs ---------------------------------------------


def test_an_input_only_a_case_reads_is_not_required() -> None:
    prog = df.compile(Switch({"plain": inc, "image": add_image}, on="mode", name="sw"))
    ports = {p.name: p for p in prog.inputs}
    assert ports["image"].default is WHEN_CHOSEN and not ports["image"].required
    assert both(prog, mode="plain", x=1) == {"x": 2}
    assert both(prog, mode="image", x=1, image=10) == {"x": 11}


def test_a_missing_input_the_chosen_case_needs_is_an_input_error_before_any_block() -> None:
    CALLS.clear()
    sw = Switch({"inc": inc, "dbl": add_image}, on=pick, name="sw")
    prog = df.compile(df.Sequential(neg, sw))
    with pytest.raises(df.InputError, match="missing input 'image', needed by case 'dbl' of switch "):
        both(prog, flag=False, x=1)
    assert CALLS == ["pick", "pick"]  # the selector ran, nothing else did (neg would come first)
    by_name = df.compile(df.Sequential(neg, Switch({"a": inc, "b": add_image}, on="mode", name="sw")))
    with pytest.raises(df.InputError) as info:
        both(by_name, mode="b", x=1)
    assert str(info.value) == (
        "sequential: missing input 'image', needed by case 'b' of switch 'sequential/sw', "
        "which input 'mode' chose"
    )


def test_an_unknown_key_from_the_inputs_is_an_input_error_listing_the_keys() -> None:
    prog = df.compile(Switch({"text2img": inc, "img2img": dbl}, on="mode", name="sw"))
    with pytest.raises(df.InputError) as info:
        both(prog, mode="img2im", x=1)
    assert str(info.value) == (
        "sw: input 'mode' chose a key no case has: switch 'sw' has no case 'img2im'; "
        "did you mean 'img2img'?; the cases are 'text2img', 'img2img'"
    )
    events: list[tuple[Any, ...]] = []
    with pytest.raises(df.InputError):
        _, events = hooked_both(Switch({"a": inc}, on="mode", name="sw"), mode="b", x=1)
    assert events == []


def test_an_unknown_key_computed_in_a_loop_is_a_block_error_with_the_iteration() -> None:
    body = df.Sequential(named, Switch({"inc": inc, "dbl": dbl}, on="mode", name="sw"))
    prog = df.compile(df.Loop(body, times="n", name="loop"))
    # 1: names[1] = 'dbl' -> 2: names[0] = 'inc' -> 3: 'dbl' -> 6
    assert both(prog, n=3, x=1, names=["inc", "dbl"]) == {"x": 6, "mode": "dbl"}
    with pytest.raises(df.BlockError) as info:
        both(prog, n=4, x=1, names=["dbl", "inc", "incc"])  # 1: 'inc' -> 2: 'incc' in iteration 1
    error = info.value
    assert error.path == "loop/sw"
    assert error.iterations == (("loop", 1),)
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == (
        "switch 'loop/sw' has no case 'incc'; did you mean 'inc'?; the cases are 'inc', 'dbl'"
    )


def test_a_conditional_input_read_under_a_computed_key_raises_when_read() -> None:
    body = df.Sequential(parity, Switch({"inc": add_image, "dbl": dbl}, on="mode", name="sw"))
    prog = df.compile(df.Loop(body, times="n", name="loop"))
    assert both(prog, n=2, x=2) == {"x": 8, "mode": "dbl"}  # 2 -> 4 -> 8: 'inc' never chosen
    with pytest.raises(df.InputError) as info:
        both(prog, n=2, x=1)
    assert str(info.value) == (
        "loop: input 'image' was not given (it is needed only when case 'inc' of switch 'loop/sw' is "
        "chosen); block 'loop/sw/inc' reads it"
    )


# -- outputs: final values, pass-through, partial ------------------------------------------------------


def test_a_name_some_cases_write_passes_through_the_others() -> None:
    prog = df.compile(df.Sequential(inc, Switch({"dbl": dbl, "keep": half}, on="mode", name="sw")))
    assert both(prog, mode="dbl", x=3) == {"x": 8}  # keep writes y only; x passes through
    assert both(prog, mode="keep", x=3) == {"x": 4, "y": 2}


def test_a_partial_output_has_no_value_when_the_chosen_case_does_not_write_it() -> None:
    prog = df.compile(Switch({"dbl": dbl, "half": half}, on="mode", name="sw"))
    assert both(prog, mode="half", x=6) == {"x": 6, "y": 3}
    assert both(prog, mode="dbl", x=6) == {"x": 12}
    with pytest.raises(df.InputError) as info:
        both(prog, mode="dbl", x=6, output="y")
    assert str(info.value) == (
        "sw: output 'y' has no value: switch 'sw' chose case 'dbl', which does not write 'y', so it has no "
        "value"
    )
    assert not any(isinstance(v, Unset) for v in both(prog, mode="dbl", x=6, output=["x"]).values())


# -- nesting -------------------------------------------------------------------------------------------


def test_nested_switches_choose_by_their_own_keys() -> None:
    inner = Switch({"inc": inc, "dbl": dbl}, on="inner", name="inn")
    outer = Switch({"nested": inner, "neg": neg}, on="outer", name="out")
    prog = df.compile(outer)
    ports = {p.name: p for p in prog.inputs}
    assert ports["inner"].default is WHEN_CHOSEN  # read only under case 'nested'
    assert both(prog, outer="nested", inner="inc", x=4) == {"x": 5}
    assert both(prog, outer="nested", inner="dbl", x=4) == {"x": 8}
    assert both(prog, outer="neg", x=4) == {"x": -4}
    assert both(prog, outer="neg", inner="whatever", x=4) == {"x": -4}  # never decided: not checked
    with pytest.raises(df.InputError, match="missing input 'inner', needed by case 'nested' of switch 'out'"):
        both(prog, outer="nested", x=4)
    with pytest.raises(df.InputError, match="input 'inner' chose a key no case has: switch 'out/nested'"):
        both(prog, outer="nested", inner="neg", x=4)


def test_a_switch_in_a_loop_carries_values_through_its_cases() -> None:
    body = df.Sequential(parity, Switch({"inc": inc, "dbl": half}, on="mode", name="sw"))
    prog = df.compile(df.Loop(body, times="n", name="loop"))
    # x odd: +1; x even: y = x // 2 and x passes through unchanged
    assert both(prog, n=3, x=3) == {"x": 4, "mode": "dbl", "y": 2}
    assert both(prog, n=1, x=3) == {"x": 4, "mode": "inc"}  # y: never written
    assert both(prog, n=0, x=3) == {"x": 3}
    _, events = hooked_both(df.Loop(body, times="n", name="loop"), n=2, x=1)
    assert [e for e in events if e[0] == "iteration_end"] == [
        ("iteration_end", "loop", 0, {"x": 2}),
        ("iteration_end", "loop", 1, {"x": 2}),
    ]


def test_a_switch_in_loops_around_zero_iterations() -> None:
    sw = Switch({"inc": inc, "dbl": dbl}, on="mode", name="sw")
    prog = df.compile(df.Loop(df.Loop(sw, times="m", name="inner"), times="n", name="outer"))
    assert both(prog, n=2, m=0, mode="dbl", x=3) == {"x": 3}
    assert both(prog, n=0, m=5, mode="dbl", x=3) == {"x": 3}
    assert both(prog, n=2, m=2, mode="dbl", x=3) == {"x": 48}
    with pytest.raises(df.InputError, match="no case 'tripple'"):
        both(prog, n=0, m=0, mode="tripple", x=3)  # decided by the inputs: refused even with no iteration


def test_a_switch_inside_fifteen_nested_loops_compiles_and_runs() -> None:
    blk: Any = df.Sequential(parity, Switch({"inc": inc, "dbl": dbl}, on="mode", name="sw"))
    for k in range(15):
        blk = df.Loop(blk, times="n", name=f"l{k}")
    prog = df.compile(blk)
    assert MAX_NESTING < 15
    assert "def _loop_" in prog.source or "def _switch_" in prog.source
    # one iteration per loop: parity(3) = 'inc' -> 4
    assert both(prog, n=1, x=3)["x"] == 4
    assert both(prog, n=2, x=1)["x"] > 1


def test_a_switch_helper_function_reports_the_path_and_every_iteration() -> None:
    blk: Any = df.Sequential(named, Switch({"inc": inc}, on="mode", name="sw"))
    for k in range(MAX_NESTING + 2):
        blk = df.Loop(blk, times="n", name=f"l{k}")
    prog = df.compile(blk)
    with pytest.raises(df.BlockError) as info:
        both(prog, n=2, x=0, names=["inc", "inc", "bad"])
    error = info.value
    assert error.path.endswith("/sw") and error.path.count("/") == MAX_NESTING + 2
    assert len(error.iterations) == MAX_NESTING + 2
    # innermost: 0 -inc-> 1 -inc-> 2; the next iteration of the loop around it reads names[2]
    assert [i for _, i in error.iterations] == [0] * MAX_NESTING + [1, 0]


# -- until= -------------------------------------------------------------------------------------------


def test_until_stops_after_the_iteration_that_wrote_true() -> None:
    prog = df.compile(df.Loop(df.Sequential(inc, over_limit), times="n", until="stop", name="loop"))
    assert both(prog, n=10, x=0, limit=3) == {"x": 4, "stop": True}  # 1, 2, 3, 4 > 3: four steps
    assert both(prog, n=2, x=0, limit=3) == {"x": 2, "stop": False}  # times= still bounds it
    assert both(prog, n=0, x=0, limit=3) == {"x": 0}  # zero iterations: stop has no value
    assert both(prog, n=10, x=7, limit=3) == {"x": 8, "stop": True}  # one step
    assert "# loop loop: times=n, carries x, until stop" in prog.source
    assert "        if stop: break" in prog.source  # after the body, inside the for


def test_until_fires_iteration_end_then_stops() -> None:
    loop = df.Loop(df.Sequential(inc, over_limit), times="n", until="stop", name="loop")
    _, events = hooked_both(loop, n=10, x=0, limit=1)
    ends = [e for e in events if e[0] in ("iteration_end", "loop_end")]
    assert ends == [
        ("iteration_end", "loop", 0, {"x": 1}),
        ("iteration_end", "loop", 1, {"x": 2}),
        ("loop_end", "loop"),
    ]


def test_until_over_items_and_with_a_switch_deciding_the_step() -> None:
    @df.block(outputs=("x", "stop"))
    def take(x: int, t: int) -> tuple[int, bool]:
        return x + t, t < 0

    prog = df.compile(df.Loop(take, over="ts", until="stop", name="loop"))
    assert both(prog, ts=[1, 2, -1, 5], x=0) == {"x": 2, "stop": True}
    assert both(prog, ts=[1, 2], x=0) == {"x": 3, "stop": False}
    body = df.Sequential(parity, Switch({"inc": inc, "dbl": dbl}, on="mode", name="sw"), over_limit)
    prog = df.compile(df.Loop(body, times="n", until="stop", name="loop"))
    # 1 -inc-> 2 -dbl-> 4 -dbl-> 8 > 5
    assert both(prog, n=100, x=1, limit=5) == {"x": 8, "mode": "dbl", "stop": True}


def test_a_failing_until_test_is_a_block_error_of_the_loop() -> None:
    class Ambiguous:
        def __bool__(self) -> bool:
            raise ValueError("ambiguous truth value")

    @df.block(outputs="stop")
    def odd(x: int) -> bool:
        return Ambiguous() if x == 2 else False  # type: ignore[return-value]

    prog = df.compile(df.Loop(df.Sequential(inc, odd), times="n", until="stop", name="loop"))
    with pytest.raises(df.BlockError) as info:
        both(prog, n=5, x=0)
    assert info.value.path == "loop" and info.value.iterations == (("loop", 1),)


# -- variables: a case writes the switch output in place; a name passes through without a copy ---------


def test_a_case_writes_the_output_in_place_and_a_name_passes_through_without_a_copy() -> None:
    prog = df.compile(df.Sequential(inc, Switch({"dbl": dbl, "keep": half}, on="mode", name="sw"), neg))
    src = prog.source
    assert "x_1 = dbl(x_1)  # s/sw/dbl" in src.replace("sequential/", "s/")
    keep = src[src.index("elif mode == 'keep':") : src.index("else:")]
    assert "= x_1" not in keep  # x passes through: no copy
    assert both(prog, mode="dbl", x=3) == {"x": -8}
    assert both(prog, mode="keep", x=3) == {"x": -4, "y": 2}


def test_a_value_read_again_after_the_switch_keeps_its_own_variable() -> None:
    sw = Switch({"dbl": dbl, "keep": half}, on="mode", name="sw")
    graph = df.Graph(
        {"first": inc, "sw": sw, "after": neg},
        [("first.x", "sw.x"), ("first.x", "after.x")],  # `after` reads x as it was before the switch
        outputs={"s": "sw.x", "a": "after.x"},
        name="g",
    )
    prog = df.compile(graph)
    assert both(prog, mode="dbl", x=3) == {"s": 8, "a": -4}
    assert both(prog, mode="keep", x=3) == {"s": 4, "a": -4}


def test_switches_nested_thirty_deep_compile_into_helpers_and_run() -> None:
    blk: Any = inc
    for k in range(30):
        blk = Switch({"go": blk, "stay": neg}, on=f"k{k}", name=f"s{k}")
    prog = df.compile(blk)
    assert "def _switch_" in prog.source
    keys = {f"k{k}": "go" for k in range(30)}
    assert both(prog, x=1, **keys) == {"x": 2}
    keys["k3"] = "stay"  # s3 is the fourth from the inside: negates x instead of going deeper
    assert both(prog, x=1, **keys) == {"x": -1}
    with pytest.raises(df.InputError, match="missing input 'k0', needed by case 'go' of switch"):
        both(prog, x=1, **{f"k{k}": "go" for k in range(1, 30)})


def test_an_iterator_over_a_loop_in_a_case_is_refused_only_when_a_loop_repeats_it() -> None:
    @df.block(outputs="x")
    def add(x: int, t: int) -> int:
        return x + t

    inner = Switch({"sum": df.Loop(add, over="ts", name="each"), "neg": neg}, on="mode", name="sw")
    once = df.compile(inner)
    assert both(once, mode="sum", x=0, ts=[1, 2]) == {"x": 3}
    assert once(mode="sum", x=0, ts=iter([1, 2])) == {"x": 3}  # the case runs once: an iterator is fine
    repeated = df.compile(df.Loop(inner, times="n", name="outer"))
    assert both(repeated, n=2, mode="sum", x=0, ts=[1, 2]) == {"x": 6}
    with pytest.raises(df.InputError, match="over= of loop 'outer/sw/sum' got an iterator, but loop 'outer'"):
        repeated(n=2, mode="sum", x=0, ts=iter([1, 2]))
    with pytest.raises(df.InputError, match="over= of loop 'outer/sw/sum' got an iterator, but loop 'outer'"):
        repeated.interpret(n=2, mode="sum", x=0, ts=iter([1, 2]))


def test_an_input_error_after_the_selector_reaches_the_hooks_alike_in_both_engines() -> None:
    compiled, interpreted = Rec(), Rec()
    blk = df.Sequential(neg, Switch({"inc": inc, "dbl": add_image}, on=pick, name="sw"))
    for hook, run in ((compiled, "__call__"), (interpreted, "interpret")):
        prog = df.compile(blk, hooks=[hook])
        with pytest.raises(df.InputError, match="missing input 'image', needed by case 'dbl'"):
            getattr(prog, run)(flag=False, x=1)
    assert (
        compiled.events
        == interpreted.events
        == [
            ("run_start",),
            ("block_start", "sequential/sw/pick", {"flag": False}),
            ("block_end", "sequential/sw/pick", {"mode": "dbl"}),
            ("error", "InputError"),
        ]
    )

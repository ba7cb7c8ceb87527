"""Compiled programs: calls, outputs, input errors before any block runs, block errors, threads, scale."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import dfgraph as df


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


@df.block(outputs="y")
def double(x: int) -> int:
    return 2 * x


COUNTER = df.Loop(df.Sequential(add_one, add_one), times="num_steps")


def test_the_contract_example() -> None:
    prog = df.compile(COUNTER)
    assert prog(num_steps=10, x=0, output="x") == 20
    out = prog(num_steps=3, x=5)
    assert out == {"x": 11}
    report = df.check(COUNTER)
    assert report.ok and report.errors == () and report.warnings == ()


def test_program_ports_doc_and_source() -> None:
    prog = df.compile(COUNTER)
    assert [(p.name, p.type) for p in prog.inputs] == [("num_steps", int), ("x", int)]
    assert [(p.name, p.type) for p in prog.outputs] == [("x", int)]
    assert "num_steps: int (required)" in prog.doc and "loop/add_one.x" in prog.doc
    assert "for i in _range(num_steps):" in prog.source
    assert "x = add_one(x_1)" in prog.source  # carried state stays in one local: no per-iteration copy
    compile(prog.source, "<check>", "exec")  # the source is plain Python


def test_output_selection() -> None:
    prog = df.compile(df.Sequential(add_one, double))
    assert prog(x=1) == {"x": 2, "y": 4}
    assert prog(x=1, output="y") == 4
    assert prog(x=1, output=["y", "x"]) == {"y": 4, "x": 2}
    with pytest.raises(df.InputError, match="no output 'z'"):
        prog(x=1, output="z")
    with pytest.raises(df.InputError, match="did you mean 'y'"):
        prog(x=1, output=["yy"])
    with pytest.raises(df.InputError, match="output="):
        prog(x=1, output=3)  # type: ignore[arg-type]


def test_input_errors_come_before_any_block_runs() -> None:
    calls: list[int] = []

    @df.block(outputs="a")
    def first(seed: int) -> int:
        calls.append(seed)
        return seed

    @df.block(outputs="b")
    def second(a: int, scale: float) -> float:
        return a * scale

    prog = df.compile(df.Sequential(first, second, name="p"))
    with pytest.raises(df.InputError, match=r"missing input 'scale' \(float\), read by p/second.scale"):
        prog(seed=1)
    with pytest.raises(df.InputError, match="unknown input 'seeds'; did you mean 'seed'"):
        prog(seeds=1, scale=1.0)
    with pytest.raises(
        df.InputError, match=r"input 'scale' must be float \(read by p/second.scale\), got str"
    ):
        prog(seed=1, scale="big")
    with pytest.raises(df.InputError, match="by keyword"):
        prog(1, 2.0)
    assert calls == []
    assert prog(seed=2, scale=1.5) == {"a": 2, "b": 3.0}
    assert prog(seed=2, scale=3) == {"a": 2, "b": 6}  # int is accepted for float, as in mypy


def test_block_error_names_path_and_iteration_and_program_stays_usable() -> None:
    @df.block(outputs="x")
    def fragile(x: int) -> int:
        if x == 7:
            raise ZeroDivisionError("seven")
        return x

    prog = df.compile(df.Loop(df.Sequential(add_one, fragile), times="n", name="loop"))
    with pytest.raises(df.BlockError) as info:
        prog(n=10, x=0)
    err = info.value
    assert err.path == "loop/fragile" and err.iteration == 6
    assert err.iterations == (("loop", 6),)
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert str(err) == "block 'loop/fragile' raised ZeroDivisionError: seven (iteration 6 of loop 'loop')"
    assert prog(n=3, x=0) == {"x": 3}  # still usable


def test_block_error_in_nested_loops_reports_every_iteration() -> None:
    @df.block(outputs="x")
    def fragile(x: int, i: int) -> int:
        if x == 5:
            raise ValueError("five")
        return x

    inner = df.Loop(df.Sequential(add_one, fragile), times="m", name="inner")
    outer = df.Loop(inner, times="n", name="outer")
    with pytest.raises(df.BlockError) as info:
        df.compile(outer)(n=3, m=2, x=0)
    assert info.value.path == "outer/inner/fragile"
    assert info.value.iterations == (("outer", 2), ("outer/inner", 0))


def test_bad_return_shape_is_a_block_error() -> None:
    @df.block(outputs=("a", "b"))
    def pair(v: int) -> tuple[int, int]:
        return (v,)  # type: ignore[return-value]

    with pytest.raises(df.BlockError, match="'pair' raised ValueError"):
        df.compile(pair)(v=1)


def test_zero_iterations() -> None:
    prog = df.compile(df.Loop(df.Sequential(add_one, double), times="n"))
    assert prog(n=0, x=4) == {"x": 4}  # carried: unchanged; y never written
    with pytest.raises(df.InputError, match="no value"):
        prog(n=0, x=4, output="y")
    assert prog(n=2, x=4) == {"x": 6, "y": 12}

    @df.block(outputs="z")
    def use_y(y: int) -> int:
        return y

    after = df.compile(df.Sequential(df.Loop(df.Sequential(add_one, double), times="n"), use_y))
    with pytest.raises(df.InputError, match="ran zero times"):
        after(n=0, x=1)
    assert after(n=1, x=1)["z"] == 4


def test_loop_over_items_with_index() -> None:
    @df.block(outputs="acc")
    def accumulate(acc: float, t: float, i: int) -> float:
        return acc + t * i

    prog = df.compile(df.Loop(accumulate, over="ts"))
    assert prog(ts=[1.0, 2.0, 3.0], acc=0.0) == {"acc": 8.0}
    assert prog(ts=[], acc=1.5) == {"acc": 1.5}
    renamed = df.compile(df.Loop(df.Sequential(accumulate_k()), over="ts", item="k", index="j"))
    assert renamed(ts=[2, 3], acc=0.0, output="acc") == 3.0


def accumulate_k() -> Any:
    @df.block(outputs="acc")
    def acc_k(acc: float, k: float, j: int) -> float:
        return acc + k * j

    return acc_k


def test_defaults_of_optional_inputs() -> None:
    @df.block(outputs="y")
    def scale(x: float, factor: float = 2.0) -> float:
        return x * factor

    prog = df.compile(scale)
    assert prog(x=1.0) == {"y": 2.0}
    assert prog(x=1.0, factor=3.0) == {"y": 3.0}
    assert not prog.inputs[1].required and prog.inputs[1].default == 2.0


def test_graph_fan_out_and_renamed_ports() -> None:
    @df.block(outputs="out")
    def combine(a: int, b: int) -> int:
        return 10 * a + b

    g = df.Graph(
        {"inc": add_one, "dbl": double, "mix": combine},
        edges=[("start", "inc.x"), ("inc.x", "dbl.x"), ("inc.x", "mix.a"), ("dbl.y", "mix.b")],
        outputs={"result": "mix.out"},
        name="g",
    )
    prog = df.compile(g)
    assert [p.name for p in prog.inputs] == ["start"]
    assert prog(start=1) == {"result": 24}
    # a Graph is a block: it nests in a Sequential and a Loop
    assert df.compile(df.Sequential(g, name="outer"))(start=2) == {"result": 36}


def test_composites_are_callable_blocks() -> None:
    seq = df.Sequential(add_one, double)
    assert seq(x=1) == {"x": 2, "y": 4}
    assert [p.name for p in seq.inputs] == ["x"] and [p.name for p in seq.outputs] == ["x", "y"]
    prog = df.compile(seq)
    nested = df.compile(df.Sequential({"inner": prog, "again": add_one}))  # a Program is a block too
    assert nested(x=1) == {"x": 3, "y": 4}


def test_concurrent_calls_are_independent() -> None:
    @df.block(outputs="x")
    def slow_add(x: int) -> int:
        time.sleep(0.0005)
        return x + 1

    prog = df.compile(df.Loop(slow_add, times="n"))
    results: dict[int, int] = {}

    def run(k: int) -> None:
        results[k] = prog(n=k, x=1000 * k, output="x")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {k: 1001 * k for k in range(8)}


def test_deeply_nested_loops_compile() -> None:
    body: Any = add_one
    for k in range(30):  # deeper than CPython's 20 nested blocks: split into helper functions
        body = df.Loop(body, times=f"n{k}", name=f"l{k}")
    prog = df.compile(body)
    counts = {f"n{k}": 1 for k in range(30)}
    counts["n0"] = 3
    assert prog(**counts, x=0) == {"x": 3}


def test_empty_sequential() -> None:
    prog = df.compile(df.Sequential())
    assert prog() == {} and prog.inputs == () and prog.outputs == ()


def test_ten_thousand_blocks_check_and_compile_quickly() -> None:
    seq = df.Sequential(*[add_one] * 10_000)
    report = df.check(seq)
    assert report.ok
    prog = df.compile(seq)
    assert prog(x=0, output="x") == 10_000


def test_non_identifier_port_names() -> None:
    class Adapter:
        name = "adapter"
        inputs = (df.Port("prompt-embeds", int),)
        outputs = (df.Port("out put", int),)

        def __call__(self, **kw: Any) -> dict[str, Any]:
            return {"out put": kw["prompt-embeds"] * 2}

    prog = df.compile(Adapter())
    assert prog(**{"prompt-embeds": 4}) == {"out put": 8}
    with pytest.raises(df.InputError, match="missing input 'prompt-embeds'"):
        prog()


def test_reserved_input_name() -> None:
    @df.block(outputs="y")
    def f(output: int) -> int:
        return output

    assert df.check(f).codes() == ["DF006"]


def test_inner_loop_carrying_a_value_the_outer_body_captures() -> None:
    # regression: the inner loop's initial value was left pointing at the outer body's placeholder
    @df.block(outputs="value")
    def halve(value: float) -> float:
        return value / 2

    @df.block(outputs="total")
    def add(value: float, total: float) -> float:
        return value + total

    inner = df.Loop(halve, times="m", name="inner")  # carries value, whose first value comes from outside
    outer = df.Loop(df.Sequential(inner, add), times="n", name="outer")
    prog = df.compile(outer)
    # value is carried by the outer loop too (read by inner before written): 8 -> 2 -> 0.5
    assert prog(n=2, m=2, value=8.0, total=0.0) == {"value": 0.5, "total": 2.5}
    graph_body = df.Graph({"inner": inner}, outputs={"halved": "inner.value"}, name="body")
    captured = df.compile(df.Loop(graph_body, times="n", name="outer"))  # value only read: a capture
    assert captured(n=3, m=2, value=8.0) == {"halved": 2.0}


def test_a_block_error_pickles_with_its_path_and_iterations() -> None:
    import pickle

    @df.block(outputs="x")
    def fails_at_two(x: int, i: int) -> int:
        if i == 2:
            raise ValueError("boom")
        return x

    prog = df.compile(df.Loop(fails_at_two, times="n"))
    with pytest.raises(df.BlockError) as info:
        prog(n=4, x=0)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is df.BlockError
    assert (again.path, again.iterations, str(again)) == (
        info.value.path,
        info.value.iterations,
        str(info.value),
    )
    assert again.iteration == 2 and "boom" in str(again)

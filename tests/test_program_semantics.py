"""Calls and Program semantics, one regression test per defect of issue 10 (items 5-7): output= read once,
iterators as an inner loop's over=, Graph default outputs, immutable and picklable programs and
composites, nested-program errors, the fast call path `prog.run`, and networkx imported lazily."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph.testing import CounterCase, counter_loops

# Module-level blocks: they pickle by reference, as the functions they decorate would.


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


@df.block(outputs="y")
def double(x: int) -> int:
    return 2 * x


@df.block(outputs="x")
def add_item(x: int, t: int) -> int:
    return x + t


@df.block(outputs="x")
def fail_at_three(x: int) -> int:
    if x >= 3:
        raise ValueError("x reached three")
    return x + 1


@df.block(outputs="x")
def times_ten(x: int) -> int:
    return 10 * x


def triple(x: int) -> int:
    """A plain module-level function, made a block at the call site below."""
    return 3 * x


COUNTER = df.Loop(df.Sequential(add_one, add_one), times="num_steps")
TWO_OUTPUTS = df.Sequential(add_one, double, name="pair")


class Name(str):
    """A user str subclass, as numpy.str_ is one."""


# -- output= ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [np.str_("x"), Name("x")], ids=["numpy.str_", "subclass"])
def test_output_accepts_any_str(name: str) -> None:
    prog = df.compile(COUNTER)
    assert prog(num_steps=2, x=0, output=name) == 4
    assert prog.run(num_steps=2, x=0, output=name) == 4
    out = prog(num_steps=2, x=0, output=[name])
    assert out == {"x": 4} and type(next(iter(out))) is str  # the keys are plain str


def test_output_generator_is_read_once() -> None:
    prog = df.compile(TWO_OUTPUTS)
    reads = []

    def names() -> Iterator[str]:
        for n in ("y", "x"):
            reads.append(n)
            yield n

    assert prog(x=1, output=names()) == {"y": 4, "x": 2}
    assert reads == ["y", "x"]  # not consumed by the check and then found empty
    assert prog(x=1, output=iter(["x"])) == {"x": 2}
    assert prog(x=1, output=(n for n in [np.str_("y")])) == {"y": 4}


def test_output_sized_iterables_and_duplicates() -> None:
    prog = df.compile(TWO_OUTPUTS)
    assert prog(x=1, output=("x", "y")) == {"x": 2, "y": 4}
    assert prog(x=1, output={"y"}) == {"y": 4}
    assert prog(x=1, output=["x", "x"]) == {"x": 2}
    assert prog(x=1, output=[]) == {}


@pytest.mark.parametrize("bad", [5, b"x", {"x": 1}, None.__class__])
def test_output_that_is_no_name_nor_names_is_an_input_error(bad: object) -> None:
    prog = df.compile(TWO_OUTPUTS)
    with pytest.raises(df.InputError, match="output= takes a name or a list of names"):
        prog(x=1, output=bad)


def test_an_unknown_name_in_a_generator_is_refused_before_any_block_runs() -> None:
    calls = []

    @df.block(outputs="x")
    def counted(x: int) -> int:
        calls.append(x)
        return x + 1

    prog = df.compile(df.Sequential(counted))
    with pytest.raises(df.InputError, match=r"no output 'xx'; did you mean 'x'\?"):
        prog(x=1, output=(n for n in ["x", "xx"]))
    with pytest.raises(df.InputError, match="no output 3"):
        prog(x=1, output=[3])
    assert calls == []


# -- over= iterators of inner loops ----------------------------------------------------------------------


NESTED_OVER = df.Loop(df.Loop(add_item, over="ts", name="inner"), times="n", name="outer")


def test_nested_over_takes_lists_every_outer_iteration() -> None:
    prog = df.compile(NESTED_OVER)
    assert prog(n=3, x=0, ts=[1, 2]) == {"x": 9}
    assert prog(n=3, x=0, ts=(1, 2)) == {"x": 9}
    assert prog(n=3, x=0, ts=range(1, 3)) == {"x": 9}


def test_an_iterator_input_to_an_inner_over_is_refused_before_any_block_runs() -> None:
    calls = []

    @df.block(outputs="x")
    def counted(x: int, t: int) -> int:
        calls.append(t)
        return x + t

    prog = df.compile(df.Loop(df.Loop(counted, over="ts", name="inner"), times="n", name="outer"))
    with pytest.raises(df.InputError, match=r"over= of loop 'outer/inner' got an iterator.*list or a tuple"):
        prog(n=3, x=0, ts=iter([1, 2]))
    with pytest.raises(df.InputError, match="got an iterator"):
        prog(n=0, x=0, ts=(t for t in [1, 2]))  # by rule, even when the outer loop would run once or less
    assert calls == []


def test_an_iterator_made_outside_the_outer_loop_is_refused_when_the_inner_loop_starts() -> None:
    @df.block(outputs="ts")
    def make(k: int) -> Iterator[int]:
        return iter(range(k))

    prog = df.compile(df.Sequential(make, df.Loop(df.Loop(add_item, over="ts", name="inner"), times="n")))
    with pytest.raises(df.InputError, match="over= of loop 'sequential/loop/inner' got an iterator"):
        prog(k=3, n=2, x=0)


def test_an_iterator_made_in_each_outer_iteration_is_fine() -> None:
    @df.block(outputs="ts")
    def make(k: int) -> Iterator[int]:
        return iter(range(k))

    body = df.Sequential(make, df.Loop(add_item, over="ts", name="inner"))
    prog = df.compile(df.Loop(body, times="n", name="outer"))
    assert prog(k=3, n=2, x=0, output="x") == 6


def test_a_top_level_over_takes_any_iterable() -> None:
    prog = df.compile(df.Loop(add_item, over="ts"))
    assert prog(x=0, ts=(t for t in [1, 2, 3])) == {"x": 6}
    assert prog(x=0, ts=iter([5])) == {"x": 5}


# -- Graph default outputs --------------------------------------------------------------------------------


def test_a_chain_that_rewrites_a_name_exports_the_last_writer() -> None:
    graph = df.Graph({"a": add_one, "b": times_ten}, edges=[("a.x", "b.x")])
    report = df.check(graph)
    assert report.ok and not report.warnings
    assert [p.name for p in graph.outputs] == ["x"]
    assert df.compile(graph)(x=1) == {"x": 20}


def test_the_last_writer_is_in_execution_order_not_declaration_order() -> None:
    graph = df.Graph({"b": times_ten, "a": add_one}, edges=[("a.x", "b.x")])
    assert df.compile(graph)(x=1) == {"x": 20}  # b runs after a, whatever the declaration order


def test_independent_writers_export_the_one_declared_last() -> None:
    graph = df.Graph({"a": add_one, "b": times_ten})
    assert df.compile(graph)(x=1) == {"x": 10}
    graph = df.Graph({"b": times_ten, "a": add_one})
    assert df.compile(graph)(x=1) == {"x": 2}
    chosen = df.Graph({"a": add_one, "b": times_ten}, outputs=["a.x"])
    assert df.compile(chosen)(x=1) == {"x": 2}


# -- immutability -------------------------------------------------------------------------------------------


def test_a_program_is_immutable() -> None:
    prog = df.compile(COUNTER)
    for name, value in [("inputs", ()), ("run", None), ("source", ""), ("fresh", 1), ("_schedule", None)]:
        with pytest.raises(AttributeError, match="immutable"):
            setattr(prog, name, value)
    with pytest.raises(AttributeError, match="immutable"):
        del prog.outputs
    assert [p.name for p in prog.inputs] == ["num_steps", "x"]
    assert prog.schedule is prog.schedule  # the lazily computed schedule is a cache, not an assignment


@pytest.mark.parametrize(
    "composite",
    [COUNTER, TWO_OUTPUTS, df.Graph({"a": add_one, "d": double}, edges=[("a.x", "d.x")])],
    ids=["Loop", "Sequential", "Graph"],
)
def test_composites_are_immutable(composite: Any) -> None:
    for name in ("name", "fresh", "_program"):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(composite, name, "z")
    with pytest.raises(AttributeError, match="immutable"):
        del composite.name
    assert composite(**{p.name: 1 for p in composite.inputs})  # still runs: caches are not assignments


def test_graph_nodes_are_read_only() -> None:
    graph = df.Graph({"a": add_one})
    with pytest.raises(TypeError, match="immutable"):
        graph.nodes["b"] = double
    with pytest.raises(TypeError, match="immutable"):
        graph.nodes.pop("a")
    assert list(graph.nodes) == ["a"]


# -- pickling and copying ---------------------------------------------------------------------------------


def test_module_level_blocks_pickle_by_reference() -> None:
    assert pickle.loads(pickle.dumps(add_one)) is add_one
    assert copy.deepcopy(add_one) is add_one


def test_a_block_that_is_not_its_module_global_pickles_by_value() -> None:
    renamed = df.block(outputs="z", name="renamed")(triple)  # the global `triple` is the function
    back = pickle.loads(pickle.dumps(renamed))
    assert back is not renamed and back.name == "renamed" and back.fn is triple and back(x=2) == 6
    assert df.compile(df.Sequential(back))(x=2) == {"z": 6}


@pytest.mark.parametrize("options", [{}, {"fuse": True, "streams": 2}])
def test_a_program_pickles_as_its_definition_and_recompiles(options: dict[str, Any]) -> None:
    prog = df.compile(COUNTER, **options)
    back = pickle.loads(pickle.dumps(prog))
    assert isinstance(back, df.Program) and back is not prog
    assert back(num_steps=3, x=1) == prog(num_steps=3, x=1) == {"x": 7}
    assert back.source == prog.source and back.inputs == prog.inputs and back.outputs == prog.outputs
    assert back.filename != prog.filename  # compiled again, not copied
    assert back.schedule.bodies.keys() == prog.schedule.bodies.keys()
    assert back.run(num_steps=1, x=0, output="x") == 2


def test_deepcopy_of_a_program_recompiles_a_copy_of_its_blocks() -> None:
    prog = df.compile(TWO_OUTPUTS)
    twin = copy.deepcopy(prog)
    assert twin is not prog and twin.block is not prog.block and twin(x=3) == prog(x=3) == {"x": 4, "y": 8}
    assert copy.copy(prog) is prog  # immutable: a shallow copy is the program itself


@pytest.mark.parametrize(
    "composite, inputs, expected",
    [
        (COUNTER, {"num_steps": 2, "x": 0}, {"x": 4}),
        (TWO_OUTPUTS, {"x": 1}, {"x": 2, "y": 4}),
        (df.Graph({"a": add_one, "d": double}, edges=[("a.x", "d.x")]), {"x": 1}, {"x": 2, "y": 4}),
        (df.Loop(add_item, over="ts", carry=("x",), name="over"), {"x": 0, "ts": [1, 2]}, {"x": 3}),
    ],
    ids=["Loop", "Sequential", "Graph", "Loop-over"],
)
def test_composites_pickle_and_deepcopy(composite: Any, inputs: dict[str, Any], expected: Any) -> None:
    assert composite(**inputs) == expected  # compiled and cached before pickling
    for twin in (pickle.loads(pickle.dumps(composite)), copy.deepcopy(composite)):
        assert type(twin) is type(composite) and twin is not composite
        assert twin.inputs == composite.inputs and twin.outputs == composite.outputs
        assert twin(**inputs) == expected
        with pytest.raises(AttributeError, match="immutable"):
            twin.name = "z"
    state = composite.__getstate__()
    assert "_program" not in state and "_interface" not in state  # caches are rebuilt, not pickled


def test_a_composite_holding_a_program_pickles() -> None:
    outer = df.Loop(df.compile(df.Sequential(add_one, add_one)), times="n", name="outer")
    back = pickle.loads(pickle.dumps(outer))
    assert back(n=3, x=0) == outer(n=3, x=0) == {"x": 6}


@settings(max_examples=40, deadline=None)
@given(counter_loops())
def test_deepcopied_programs_and_composites_compute_the_same(case: CounterCase) -> None:
    prog = df.compile(case.block)
    assert copy.deepcopy(prog)(**case.inputs, output="x") == case.expected
    assert df.compile(copy.deepcopy(case.block))(**case.inputs, output="x") == case.expected


def test_the_first_calls_of_a_composite_compile_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from dfgraph import program

    compiled = []
    real = program.compile_block

    def counting(block: Any, **options: Any) -> df.Program:
        compiled.append(block)
        return real(block, **options)

    monkeypatch.setattr(program, "compile_block", counting)
    loop = df.Loop(df.Sequential(add_one, add_one), times="num_steps")
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def call(k: int) -> None:
        barrier.wait()
        results.append(loop(num_steps=k, x=0)["x"])

    threads = [threading.Thread(target=call, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [2 * k for k in range(8)]
    assert compiled == [loop]
    locks = (type(threading.Lock()), type(threading.RLock()))
    assert not any(isinstance(v, locks) for v in vars(loop).values())  # no lock inside: it pickles


# -- nested programs ----------------------------------------------------------------------------------------


def test_a_nested_program_failure_is_one_block_error_with_the_full_path() -> None:
    inner = df.compile(df.Loop(fail_at_three, times="m", name="inner"))
    outer = df.compile(df.Loop(df.Graph({"p": inner}, name="g"), times="n", name="outer"))
    with pytest.raises(df.BlockError) as info:
        outer(n=3, m=2, x=0)
    error = info.value
    assert error.path == "outer/g/p/fail_at_three"
    assert error.iterations == (("outer", 1), ("outer/g/p", 1))
    assert error.iteration == 1
    assert str(error) == (
        "block 'outer/g/p/fail_at_three' raised ValueError: x reached three "
        "(iteration 1 of loop 'outer/g/p', iteration 1 of loop 'outer')"
    )
    assert type(error.__cause__) is ValueError and str(error.__cause__) == "x reached three"
    assert "BlockError" not in str(error)  # one message, not a message quoting another


def test_programs_nested_three_deep_merge_every_level() -> None:
    level1 = df.compile(df.Sequential(add_one, fail_at_three, name="l1"))
    level2 = df.compile(df.Loop(df.Sequential({"one": level1}, name="s2"), times="k", name="l2"))
    level3 = df.compile(df.Sequential({"two": level2}, name="l3"))
    with pytest.raises(df.BlockError) as info:
        level3(k=5, x=0)
    assert info.value.path == "l3/two/one/fail_at_three"
    assert info.value.iterations == (("l3/two", 1),)
    assert type(info.value.__cause__) is ValueError
    assert str(info.value).startswith("block 'l3/two/one/fail_at_three' raised ValueError")


def test_a_nested_single_block_program_names_its_node() -> None:
    inner = df.compile(fail_at_three)
    outer = df.compile(df.Sequential({"p": inner}, name="outer"))
    with pytest.raises(df.BlockError) as info:
        outer(x=5)
    assert info.value.path == "outer/p" and type(info.value.__cause__) is ValueError


# -- the fast call path -------------------------------------------------------------------------------------


def test_run_is_the_generated_function_bound_to_the_program() -> None:
    prog = df.compile(COUNTER)
    assert prog.run.__self__ is prog and prog.run.__func__ is type(prog).__call__
    assert prog.run(num_steps=3, x=1) == prog(num_steps=3, x=1) == {"x": 7}
    assert prog.run(num_steps=3, x=1, output="x") == 7


def test_run_keeps_every_call_check() -> None:
    prog = df.compile(COUNTER)
    with pytest.raises(df.InputError, match=r"unknown input 'num_step'; did you mean 'num_steps'\?"):
        prog.run(num_step=3, x=1)
    with pytest.raises(df.InputError, match="by keyword"):
        prog.run(3, x=1)
    with pytest.raises(df.InputError, match="missing input 'x'"):
        prog.run(num_steps=3)
    with pytest.raises(df.InputError, match="must be int"):
        prog.run(num_steps=3, x="1")
    with pytest.raises(df.InputError, match="no output 'y'"):
        prog.run(num_steps=3, x=1, output="y")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 6), st.integers(-5, 5), st.sampled_from([None, "x", ["x"]]))
def test_run_and_call_agree(steps: int, x: int, output: Any) -> None:
    prog = df.compile(COUNTER)
    assert prog.run(num_steps=steps, x=x, output=output) == prog(num_steps=steps, x=x, output=output)


def test_import_dfgraph_does_not_import_networkx_until_a_schedule_is_computed() -> None:
    code = (
        "import sys, dfgraph as df\n"
        "before = 'networkx' in sys.modules\n"
        "@df.block(outputs='x')\n"
        "def inc(x: int) -> int:\n"
        "    return x + 1\n"
        "prog = df.compile(df.Loop(df.Sequential(inc, inc), times='n'))\n"
        "compiled = 'networkx' in sys.modules\n"
        "prog.schedule\n"
        "print(before, compiled, 'networkx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]

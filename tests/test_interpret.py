"""The reference interpreter against the generated code, and both against a model of the semantics.

Random graphs (Sequentials, Graphs, nested loops that run zero, one or many times, names written by
several blocks, loops that write without reading, blocks that fail at random iterations) are compiled
AND interpreted on the same inputs: the outputs, the error types and messages, the paths, the iterations
and the causes must be identical. A third, independent evaluator written here (Python variables in a
dict, plus the lowering's rule for which names exist before a loop) checks that both compute the
documented semantics, not merely the same thing.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Sequence
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph.codegen import Unset
from dfgraph.interpret import Interpreter, run
from dfgraph.ports import REQUIRED, Port
from dfgraph.testing import inputs_for
from dfgraph.testing.generators import well_typed_graphs
from dfgraph.testing.graphs import function_block

DIFFERENTIAL = settings(deadline=None, max_examples=1500, suppress_health_check=list(HealthCheck))
TYPED = settings(DIFFERENTIAL, max_examples=300)

POOL = ("a", "b", "c", "d")
T = TypeVar("T")

# -- the random graphs ---------------------------------------------------------------------------------------


@attrs.define
class Leaf:
    name: str
    reads: list[str]
    writes: list[str]
    fails: bool  # raises ValueError on some inputs (so at some iterations, not others)
    mapping: bool  # a protocol block returning a mapping, instead of a @df.block function


@attrs.define
class Seq:
    name: str
    mapping: bool
    children: list[Spec]


@attrs.define
class Rep:
    name: str
    serial: int
    body: Spec
    over: bool

    @property
    def control(self) -> str:
        return f"ts{self.serial}" if self.over else f"n{self.serial}"


@attrs.define
class Net:
    name: str
    nodes: list[tuple[str, Spec]]
    edges: list[tuple[str, str]]
    outputs: list[str] | dict[str, str] | None


Spec = Leaf | Seq | Rep | Net


def _value(name: str, args: list[int]) -> int:
    """What a leaf computes: depends on its identity and on every input, in order."""
    seed = zlib.crc32(name.encode())
    return (seed + sum((j + 2) * v for j, v in enumerate(args))) % 9973


class _MappingBlock:
    """A hand-written protocol block: keyword inputs, a mapping of outputs."""

    def __init__(self, spec: Leaf) -> None:
        self.spec = spec
        self.name = spec.name
        self.inputs = tuple(Port(p, int) for p in spec.reads)
        self.outputs = tuple(Port(w, int) for w in spec.writes)

    def __call__(self, **kwargs: int) -> dict[str, int]:
        return _compute(self.spec, [kwargs[p] for p in self.spec.reads])


def _compute(spec: Leaf, args: list[int]) -> dict[str, int]:
    v = _value(spec.name, args)
    if spec.fails and v % 3 == 0:
        raise ValueError(f"{spec.name} refuses {v}")
    return {w: v + 100 * k for k, w in enumerate(spec.writes)}


def build(spec: Spec) -> Any:
    """The dfgraph definition of a spec."""
    if isinstance(spec, Leaf):
        if spec.mapping:
            return _MappingBlock(spec)
        leaf = spec

        def body(values: dict[str, Any]) -> Any:
            outs = list(_compute(leaf, [values[p] for p in leaf.reads]).values())
            return outs[0] if len(outs) == 1 else (tuple(outs) if outs else None)

        return function_block(
            spec.name, [(p, int, REQUIRED) for p in spec.reads], [(w, int) for w in spec.writes], body
        )
    if isinstance(spec, Seq):
        blocks = [build(c) for c in spec.children]
        if spec.mapping:
            return df.Sequential(
                {f"at_{c.name}": b for c, b in zip(spec.children, blocks, strict=True)}, name=spec.name
            )
        return df.Sequential(*blocks, name=spec.name)
    if isinstance(spec, Rep):
        s = spec.serial
        if spec.over:
            return df.Loop(build(spec.body), over=spec.control, item=f"t{s}", index=f"i{s}", name=spec.name)
        return df.Loop(build(spec.body), times=spec.control, index=f"i{s}", name=spec.name)
    return df.Graph({k: build(n) for k, n in spec.nodes}, spec.edges, spec.outputs, name=spec.name)


@functools.cache
def _upto(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n)


class _Gen:
    """Draws a spec; strategies are made once (making them per draw costs more than the tests)."""

    def __init__(self, draw: st.DrawFn, budget: int) -> None:
        self.draw = draw
        self.budget = budget
        self.counts: dict[str, int] = {}

    def number(self, low: int, high: int) -> int:
        return low + self.draw(_upto(high - low))

    def pick(self, options: Sequence[T]) -> T:
        return options[self.number(0, len(options) - 1)]

    def some(self, options: Sequence[T], most: int) -> list[T]:
        """Up to `most` distinct items of `options`."""
        left, chosen = list(options), []
        for _ in range(self.number(0, min(most, len(left)))):
            chosen.append(left.pop(self.number(0, len(left) - 1)))
        return chosen

    def fresh(self, prefix: str) -> str:
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return f"{prefix}{n}"

    def spec(self, fixed: tuple[str, ...], depth: int, kinds: tuple[str, ...] = ()) -> Spec:
        options = kinds or (("leaf", "leaf", "seq", "loop", "loop", "graph") if depth < 4 else ("leaf",))
        kind = self.pick(options) if self.budget > 1 else "leaf"
        if kind == "leaf":
            return self.leaf(fixed)
        if kind == "seq":
            return self.seq(fixed, depth)
        if kind == "loop":
            return self.loop(fixed, depth)
        return self.graph(fixed, depth)

    def leaf(self, fixed: tuple[str, ...]) -> Leaf:
        self.budget -= 1
        reads, writes = self.some(POOL + fixed, 3), self.some(POOL, 2)
        return Leaf(self.fresh("b"), reads, writes, self.number(0, 4) == 0, self.number(0, 5) == 0)

    def seq(self, fixed: tuple[str, ...], depth: int) -> Seq:
        spec = Seq(self.fresh("seq"), self.number(0, 1) == 1, [])
        for _ in range(self.number(1, 4)):
            if self.budget <= 0 and spec.children:
                break
            spec.children.append(self.spec(fixed, depth + 1))
        return spec

    def loop(self, fixed: tuple[str, ...], depth: int) -> Rep:
        serial = int(self.fresh("loop")[4:])
        over = self.number(0, 1) == 1
        inner = (*fixed, f"i{serial}", *((f"t{serial}",) if over else ()))
        return Rep(f"loop{serial}", serial, self.spec(inner, depth + 1), over)

    def graph(self, fixed: tuple[str, ...], depth: int) -> Net:
        spec = Net(self.fresh("net"), [], [], None)
        produced: list[tuple[str, str]] = []  # (node, output) of earlier nodes
        for k in range(self.number(1, 3)):
            key = f"node{k}"
            node = self.spec(fixed, depth + 1, ("leaf", "leaf", "seq", "loop"))
            if isinstance(node, Leaf):
                for port in node.reads:
                    how = self.pick(("unwired", "node", "rename"))
                    if how == "node" and produced:
                        src, out = self.pick(produced)
                        spec.edges.append((f"{src}.{out}", f"{key}.{port}"))
                    elif how == "rename":
                        spec.edges.append((self.pick(POOL), f"{key}.{port}"))
            spec.nodes.append((key, node))
            produced += [(key, w) for w in sorted(_writes(node))]
        names = [w for _, w in produced]
        if len(set(names)) < len(names) or self.number(0, 1):
            picked = list({w: (k, w) for k, w in self.some(produced, 3)}.values())  # one per name
            if self.number(0, 1):
                aliases = self.some(POOL, len(POOL))
                spec.outputs = {alias: f"{k}.{w}" for alias, (k, w) in zip(aliases, picked, strict=False)}
            else:
                spec.outputs = [f"{k}.{w}" for k, w in picked]
        return spec


def _writes(spec: Spec) -> set[str]:
    """The names a spec outputs (statically)."""
    if isinstance(spec, Leaf):
        return set(spec.writes)
    if isinstance(spec, Seq):
        return set().union(*(_writes(c) for c in spec.children))
    if isinstance(spec, Rep):
        return _writes(spec.body)
    if spec.outputs is None:
        names = [w for _, n in spec.nodes for w in _writes(n)]
        return {w for w in names if names.count(w) == 1}
    return set(spec.outputs) if isinstance(spec.outputs, dict) else {e.split(".")[1] for e in spec.outputs}


@st.composite
def random_graphs(draw: st.DrawFn, budget: int = 9) -> Spec:
    """A random composite of integer blocks: sequences, graphs, nested loops, shared names."""
    gen = _Gen(draw, budget)
    return gen.spec((), 0, ("seq", "seq", "loop", "graph"))


# -- the model: which names exist before each loop (the lowering's rule), then Python semantics --------------


class _Scope:
    """Which names a lowering scope binds: root (inputs read so far), seq (written), body (index, item and
    names read from outside, which become carried or captured), node (wired ports)."""

    def __init__(self, kind: str, parent: _Scope | None = None, bound: tuple[str, ...] = ()) -> None:
        self.kind, self.parent, self.bound = kind, parent, set(bound)
        self.free: list[str] = []

    def read(self, name: str) -> None:
        if name in self.bound:
            return
        if self.kind in ("root", "body"):
            self.bound.add(name)
            if self.kind == "body":
                self.free.append(name)
            return
        assert self.parent is not None
        self.parent.read(name)

    def peek(self, name: str) -> bool:
        if name in self.bound:
            return True
        if self.parent is None:
            return False
        found = self.parent.peek(name)
        if found and self.kind == "body":  # a body reads what is bound outside it
            self.read(name)
        return found


@attrs.define
class LoopFacts:
    carried: set[str]
    prior: dict[str, bool]  # non-carried output -> the name had a value before the loop
    written: list[str]


def _lower(node: Spec, scope: _Scope, found: dict[int, LoopFacts]) -> list[str]:
    """Lower a spec as dfgraph.ir does, tracking only the names each scope binds; the names it writes."""
    if isinstance(node, Leaf):
        for p in node.reads:
            scope.read(p)
        return list(node.writes)
    if isinstance(node, Seq):
        inner = _Scope("seq", scope)
        written: dict[str, None] = {}
        for child in node.children:
            for w in _lower(child, inner, found):
                inner.bound.add(w)
                written.pop(w, None)
                written[w] = None
        return list(written)
    if isinstance(node, Rep):
        scope.read(node.control)
        fixed = (f"i{node.serial}", *((f"t{node.serial}",) if node.over else ()))
        body = _Scope("body", scope, fixed)
        written_ = _lower(node.body, body, found)
        carried = {n for n in body.free if n in written_}
        for n in body.free:
            scope.read(n)
        prior = {}
        for n in written_:
            if n not in carried:
                prior[n] = scope.peek(n)
                if prior[n]:
                    scope.read(n)
        found[id(node)] = LoopFacts(carried, prior, written_)
        return written_
    produced: dict[str, list[str]] = {}
    outputs = set().union(*(_writes(child) for _, child in node.nodes))
    for key, child in node.nodes:  # a graph input that a node also outputs is bound before any node
        wired = {dst.split(".")[1] for _, dst in node.edges if dst.split(".")[0] == key}
        for name in sorted(_reads(child) & outputs - wired):
            scope.read(name)
    for key, child in node.nodes:
        wired = [dst.split(".")[1] for src, dst in node.edges if dst.split(".")[0] == key]
        for src, dst in node.edges:
            if dst.split(".")[0] == key and "." not in src:
                scope.read(src)
        produced[key] = _lower(child, _Scope("node", scope, tuple(wired)), found)
    return sorted(_writes(node))


def facts(spec: Spec) -> dict[int, LoopFacts]:
    """For each loop (by id), its carried names and which other outputs had a value before it."""
    found: dict[int, LoopFacts] = {}
    _lower(spec, _Scope("root"), found)
    return found


def _reads(spec: Spec) -> set[str]:
    """The names a spec reads from outside itself (its inputs)."""
    root = _Scope("root")
    _lower(spec, root, {})
    return root.bound


class NoValue:
    def __init__(self, loop: str, name: str) -> None:
        self.loop, self.name = loop, name


class ModelError(Exception):
    """What the model says goes wrong: ('block', path, iterations) or ('no value', loop, name, reader)."""


def evaluate(spec: Spec, inputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs of the root as the README describes them (values may be NoValue), or ModelError."""
    loop_facts = facts(spec)

    def run_(
        node: Spec, env: dict[str, Any], path: str, loops: tuple[tuple[str, int], ...]
    ) -> dict[str, Any]:
        if isinstance(node, Leaf):
            args = []
            for p in node.reads:
                v = env[p]
                if isinstance(v, NoValue):
                    raise ModelError(("no value", v.loop, v.name, path))
                args.append(v)
            try:
                return _compute(node, args)
            except ValueError:
                raise ModelError(("block", path, loops)) from None
        if isinstance(node, Seq):
            local, written = dict(env), {}
            for child in node.children:
                seg = f"at_{child.name}" if node.mapping else child.name
                out = run_(child, local, f"{path}/{seg}", loops)
                local.update(out)
                written.update(out)
            return written
        if isinstance(node, Rep):
            f = loop_facts[id(node)]
            body_path = path if isinstance(node.body, Seq) else f"{path}/{node.body.name}"
            local = dict(env)
            for n in f.written:
                if n not in f.carried:
                    local[n] = env[n] if f.prior[n] else NoValue(path, n)
            control = env[node.control]
            steps = enumerate(control) if node.over else ((i, None) for i in range(control))
            for i, t in steps:
                local[f"i{node.serial}"] = i
                if node.over:
                    local[f"t{node.serial}"] = t
                local.update(run_(node.body, local, body_path, (*loops, (path, i))))
            return {n: local[n] for n in f.written}
        produced: dict[str, dict[str, Any]] = {}
        for key, child in node.nodes:
            local = dict(env)
            for src, dst in node.edges:
                dnode, port = dst.split(".")
                if dnode == key:
                    snode, _, sport = src.partition(".")
                    local[port] = produced[snode][sport] if sport else env[snode]
            produced[key] = run_(child, local, f"{path}/{key}", loops)
        if node.outputs is None:
            names = [w for outs in produced.values() for w in outs]
            return {w: v for outs in produced.values() for w, v in outs.items() if names.count(w) == 1}
        pairs = (
            node.outputs.items()
            if isinstance(node.outputs, dict)
            else [(e.split(".")[1], e) for e in node.outputs]
        )
        return {alias: produced[e.split(".")[0]][e.split(".")[1]] for alias, e in pairs}

    return run_(spec, dict(inputs), spec.name, ())


# -- comparing outcomes --------------------------------------------------------------------------------------


def outcome(fn: Any, /, **kwargs: Any) -> tuple[Any, ...]:
    """A comparable record of a call: its result, or everything about its error and cause."""
    try:
        return ("ok", fn(**kwargs))
    except Exception as exc:
        cause = exc.__cause__
        return (
            type(exc),
            str(exc),
            getattr(exc, "path", None),
            getattr(exc, "iterations", None),
            type(cause),
            str(cause) if cause is not None else None,
        )


def _kind(got: tuple[Any, ...]) -> str:
    """The kind of an outcome, for hypothesis' statistics (--hypothesis-show-statistics)."""
    if got[0] == "ok":
        return "ok" + (" (empty)" if got[1] == {} else "")
    if got[0] is df.InputError:
        return "InputError: " + ("output without a value" if "output" in got[1] else "a read without a value")
    return got[0].__name__


def _no_sentinel(result: Any) -> None:
    values = result.values() if isinstance(result, dict) else [result]
    assert not any(isinstance(v, Unset) for v in values), result


def _check_against_model(got: tuple[Any, ...], spec: Spec, inputs: dict[str, Any], output: Any) -> None:
    try:
        outs = evaluate(spec, inputs)
    except ModelError as err:
        expected = err.args[0]
        if expected[0] == "block":
            assert got[0] is df.BlockError and (got[2], got[3]) == expected[1:], (got, expected)
            assert got[4] is ValueError
        else:
            _, loop, name, reader = expected
            assert got[0] is df.InputError, (got, expected)
            assert f"loop {loop!r} ran zero times, so {name!r}" in got[1] and f"block {reader!r}" in got[1], (
                got
            )
        return
    wanted = [output] if isinstance(output, str) else list(outs if output is None else output)
    missing = [n for n in wanted if isinstance(outs[n], NoValue)]
    if output is not None and missing:
        assert got[0] is df.InputError and f"output {missing[0]!r} has no value" in got[1], (got, missing)
        return
    assert got[0] == "ok", got
    defined = {n: v for n, v in outs.items() if not isinstance(v, NoValue)}
    if output is None:
        assert got[1] == defined
    elif isinstance(output, str):
        assert got[1] == defined[output]
    else:
        assert got[1] == {n: defined[n] for n in output}


_COUNTS = st.sampled_from([0, 0, 1, 1, 2, 3])  # zero, one and many iterations, zero often
_ITEMS = st.lists(st.integers(0, 50), max_size=3)
_VALUES = st.integers(0, 1000)


def _draw_inputs(draw: st.DrawFn, prog: df.Program) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for p in prog.inputs:
        if re.fullmatch(r"n\d+", p.name):
            inputs[p.name] = draw(_COUNTS)
        elif re.fullmatch(r"ts\d+", p.name):
            inputs[p.name] = draw(_ITEMS)
        else:
            inputs[p.name] = draw(_VALUES)
    return inputs


# -- the differential tests ----------------------------------------------------------------------------------


@DIFFERENTIAL
@given(random_graphs(), st.data())
def test_interpreter_and_generated_code_agree_on_random_graphs(spec: Spec, data: st.DataObject) -> None:
    """Same outputs, same errors (type, message, path, iterations, cause) — and both follow the model."""
    prog = df.compile(build(spec))
    note(prog.source)
    interpreter = Interpreter(prog)
    inputs = _draw_inputs(data.draw, prog)
    note(f"inputs: {inputs}")
    names = [p.name for p in prog.outputs]
    choices: list[Any] = [None]
    if names:
        choices.append(data.draw(st.sampled_from(names)))
        choices.append(data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)))
    for output in choices:
        compiled = outcome(prog, **inputs, output=output)
        interpreted = outcome(interpreter.run, **inputs, output=output)
        assert compiled == interpreted, (output, compiled, interpreted)
        event(_kind(compiled))
        if compiled[0] == "ok":
            _no_sentinel(compiled[1])
        _check_against_model(compiled, spec, inputs, output)


@TYPED
@given(well_typed_graphs(max_blocks=8), st.data())
def test_interpreter_and_generated_code_agree_on_typed_graphs_and_bad_calls(
    blk: Any, data: st.DataObject
) -> None:
    """Typed ports, defaults, renamed edges: drawn inputs, then a dropped, an extra and a mistyped one."""
    prog = df.compile(blk)
    interpreter = Interpreter(prog)
    inputs = data.draw(inputs_for(prog))
    calls = [inputs]
    if inputs:
        dropped = data.draw(st.sampled_from(sorted(inputs)))
        calls.append({k: v for k, v in inputs.items() if k != dropped})
        calls.append({**inputs, dropped: object()})
    calls.append({**inputs, "not_an_input": 1})
    for call in calls:
        compiled = outcome(prog, **call)
        assert compiled == outcome(interpreter.run, **call)
        assert compiled == outcome(prog.interpret, **call)
        if compiled[0] == "ok":
            _no_sentinel(compiled[1])


# -- the zero-iteration defects of issue 10, one test each ---------------------------------------------------


@df.block(outputs="a")
def first(x: int) -> int:
    return x + 1


@df.block(outputs="a")
def second(x: int) -> int:
    return x + 10


@df.block(outputs="a")
def make_a(x: int) -> int:
    return x * 3


@df.block(outputs="y")
def read_a(a: int) -> int:
    return a


def _both(prog: df.Program, **kwargs: Any) -> tuple[Any, ...]:
    compiled = outcome(prog, **kwargs)
    assert compiled == outcome(prog.interpret, **kwargs)
    return compiled


def test_regression_a_later_loop_writes_what_an_earlier_zero_iteration_loop_did_not() -> None:
    """Sequential(Loop(first, n0), Loop(second, n1)): n0=0, n1=1 gives the second loop's `a`."""
    prog = df.compile(df.Sequential(df.Loop(first, times="n0"), df.Loop(second, times="n1")))
    assert _both(prog, n0=0, n1=1, x=1) == ("ok", {"a": 11})
    assert _both(prog, n0=1, n1=0, x=1) == ("ok", {"a": 2})
    assert _both(prog, n0=0, n1=0, x=1) == ("ok", {})


def test_regression_an_inner_zero_iteration_loop_keeps_the_value_a_later_block_reads() -> None:
    """`a` made before the outer loop; the inner loop writing it runs zero times; read_a still reads 6."""
    inner = df.Loop(second, times="m", name="inner")
    prog = df.compile(df.Sequential(make_a, df.Loop(df.Sequential(inner, read_a), times="n", name="outer")))
    assert _both(prog, n=2, m=0, x=2) == ("ok", {"a": 6, "y": 6})
    assert _both(prog, n=2, m=1, x=2) == ("ok", {"a": 12, "y": 12})
    assert _both(prog, n=0, m=1, x=2) == ("ok", {"a": 6})


def test_regression_an_inner_zero_iteration_loop_keeps_a_value_made_in_the_body() -> None:
    """The value before the inner loop comes from the same outer body."""
    body = df.Sequential(make_a, df.Loop(second, times="m", name="inner"), read_a)
    prog = df.compile(df.Loop(body, times="n", name="outer"))
    assert _both(prog, n=1, m=0, x=2) == ("ok", {"a": 6, "y": 6})


def test_regression_no_sentinel_in_an_output_list() -> None:
    """p(n=0, output=["y"]) raises InputError naming the loop (it used to return {'y': UNSET})."""
    prog = df.compile(df.Loop(df.Sequential(first, read_a), times="n", name="loop"))
    got = _both(prog, n=0, x=1, output=["y"])
    assert got[0] is df.InputError
    assert (
        got[1]
        == "loop: output 'y' has no value: loop 'loop' ran zero times, so 'y' (not carried) has no value"
    )
    assert _both(prog, n=0, x=1, output=[]) == ("ok", {})
    assert _both(prog, n=1, x=1, output=["y", "a"]) == ("ok", {"y": 2, "a": 2})


def test_a_block_reading_a_name_without_a_value_names_the_name_the_loop_and_the_block() -> None:
    """The check happens where the block would run; the engines raise the same InputError."""
    prog = df.compile(df.Sequential(df.Loop(first, times="n", name="maker"), read_a, name="p"))
    got = _both(prog, n=0, x=1)
    assert got[0] is df.InputError and got[4] is type(None)
    assert (
        got[1]
        == "p: loop 'p/maker' ran zero times, so 'a' (not carried) has no value; block 'p/read_a' reads it"
    )
    assert _both(prog, n=2, x=1) == ("ok", {"a": 2, "y": 2})


def test_a_later_loop_that_runs_zero_times_does_not_read_a_missing_value() -> None:
    """Only a block that runs reads: a reader inside a loop that runs zero times raises nothing."""
    later = df.Loop(read_a, times="k", name="later")
    prog = df.compile(df.Sequential(df.Loop(first, times="n", name="maker"), later, name="p"))
    assert _both(prog, n=0, k=0, x=1) == ("ok", {})
    got = _both(prog, n=0, k=2, x=1)
    assert got[0] is df.InputError and "block 'p/later/read_a' reads it" in got[1]


def test_a_loop_count_without_a_value_is_an_input_error_naming_the_reading_loop() -> None:
    @df.block(outputs="k")
    def count(x: int) -> int:
        return x

    prog = df.compile(
        df.Sequential(df.Loop(count, times="n", name="maker"), df.Loop(read_a, times="k"), name="p")
    )
    got = _both(prog, n=0, x=1, a=3)
    assert got[0] is df.InputError
    assert (
        got[1]
        == "p: loop 'p/maker' ran zero times, so 'k' (not carried) has no value; loop 'p/loop' reads it"
    )


def test_a_zero_iteration_loop_inside_a_graph_keeps_the_value_before_it() -> None:
    graph = df.Graph({"l": df.Loop(second, times="n"), "r": read_a}, [("l.a", "r.a")], name="g")
    prog = df.compile(df.Sequential(make_a, graph, name="p"))
    assert _both(prog, n=0, x=2) == ("ok", {"a": 6, "y": 6})
    assert _both(prog, n=1, x=2) == ("ok", {"a": 12, "y": 12})


@pytest.mark.parametrize("loop_first", [True, False])
def test_a_zero_iteration_loop_node_keeps_the_graph_input_whatever_the_node_order(loop_first: bool) -> None:
    """Node `r` reads the graph input `a`; loop node `l` writes `a`: after zero iterations `l.a` is it."""
    nodes = {"l": df.Loop(second, times="n"), "r": read_a}
    graph = df.Graph(nodes if loop_first else dict(reversed(nodes.items())), [], name="g")
    prog = df.compile(graph)
    assert _both(prog, n=0, x=1, a=5) == ("ok", {"a": 5, "y": 5})
    assert _both(prog, n=1, x=1, a=5) == ("ok", {"a": 11, "y": 5})


# -- the interpreter as a debugging mode ---------------------------------------------------------------------


def test_block_errors_match_with_path_iterations_and_cause() -> None:
    @df.block(outputs="a")
    def fragile(a: int, i: int) -> int:
        if i == 2:
            raise KeyError(f"step {i}")
        return a + i

    prog = df.compile(df.Loop(df.Loop(fragile, times="m", name="inner"), times="n", name="outer"))
    got = _both(prog, n=3, m=3, a=0)
    assert got[:4] == (
        df.BlockError,
        "block 'outer/inner/fragile' raised KeyError: 'step 2' (iteration 2 of loop 'outer/inner', "
        "iteration 0 of loop 'outer')",
        "outer/inner/fragile",
        (("outer", 0), ("outer/inner", 2)),
    )
    assert got[4] is KeyError


def test_a_bad_loop_control_is_a_block_error_of_the_loop() -> None:
    @df.block(outputs="ts")
    def not_iterable(x: int) -> Any:
        return 5

    @df.block(outputs="x")
    def step(x: int, t: int) -> int:
        return x + t

    prog = df.compile(df.Sequential(not_iterable, df.Loop(step, over="ts", name="l"), name="p"))
    got = _both(prog, x=1)
    assert got[:4] == (df.BlockError, "block 'p/l' raised TypeError: 'int' object is not iterable", "p/l", ())


def test_a_wrong_tuple_length_fails_as_in_the_generated_code() -> None:
    @df.block(outputs=("a", "b"))
    def pair(x: int) -> tuple[int, int]:
        return (x,)  # type: ignore[return-value]

    got = _both(df.compile(pair), x=1)
    assert got[0] is df.BlockError and "not enough values to unpack (expected 2, got 1)" in got[1]


def test_fused_programs_interpret_the_unfused_definition() -> None:
    """fuse=True changes how the generated code runs, never what the interpreter computes."""
    from dfgraph_blocks.examples import guided_loop

    plain, fused = df.compile(guided_loop), df.compile(guided_loop, fuse=True)
    inputs = {p.name: 2 if p.name == "num_steps" else 0.5 for p in plain.inputs}
    assert fused.interpret(**inputs) == plain(**inputs) == plain.interpret(**inputs)


def test_cuda_programs_interpret_serially_without_touching_the_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """device="cuda" changes how the generated code runs; the interpreter never uses streams."""
    import dfgraph.cuda
    from dfgraph_blocks.examples import guided_loop

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the interpreter used the CUDA runtime ({name})")

    monkeypatch.setattr(dfgraph.cuda, "RUNTIME", Untouchable())
    streamed = df.compile(guided_loop, device="cuda")
    assert "_rt." in streamed.source
    inputs = {p.name: 2 if p.name == "num_steps" else 0.5 for p in streamed.inputs}
    assert streamed.interpret(**inputs) == df.compile(guided_loop)(**inputs)
    with pytest.raises(AssertionError, match="used the CUDA runtime"):
        streamed(**inputs)  # the generated code does use it


def test_run_and_subclassed_interpreters_trace_calls() -> None:
    """`run(prog, ...)` is Interpreter(prog).run; overriding call_op sees every block call in order."""

    class Tracing(Interpreter):
        def __init__(self, program: df.Program) -> None:
            super().__init__(program)
            self.calls: list[tuple[str, list[Any]]] = []

        def call_op(self, op: Any, args: list[Any]) -> list[Any]:
            self.calls.append((op.path, args))
            return super().call_op(op, args)

    prog = df.compile(df.Sequential(make_a, df.Loop(second, times="n"), read_a, name="p"))
    tracer = Tracing(prog)
    assert tracer.run(n=2, x=1) == run(prog, n=2, x=1) == prog(n=2, x=1) == {"a": 11, "y": 11}
    assert tracer.calls == [
        ("p/make_a", [1]),
        ("p/loop/second", [1]),
        ("p/loop/second", [1]),
        ("p/read_a", [11]),
    ]


@pytest.mark.parametrize("output", [None, "y", ["y"]])
def test_interpret_checks_inputs_before_running(output: Any) -> None:
    prog = df.compile(df.Sequential(make_a, read_a, name="p"))
    for call in ({}, {"x": "one"}, {"x": 1, "xx": 2}):
        got = _both(prog, **call, output=output)
        assert got[0] is df.InputError
    assert _both(prog, x=1, output="nope")[0] is df.InputError


def test_a_nested_program_failure_is_the_same_merged_block_error_in_both_engines() -> None:
    @df.block(outputs="x")
    def boom(x: int, i: int) -> int:
        if x > 3:
            raise ValueError("too big")
        return x + 1

    inner = df.compile(df.Loop(boom, times="n", name="inner"))
    outer = df.compile(df.Loop(df.Sequential(inner, name="s"), times="m", name="outer"))
    errors = []
    for engine in (outer, outer.interpret):
        with pytest.raises(df.BlockError) as info:
            engine(n=2, m=3, x=0)
        errors.append(info.value)
    compiled, interpreted = errors
    assert (
        str(compiled)
        == str(interpreted)
        == (
            "block 'outer/inner/boom' raised ValueError: too big "
            "(iteration 0 of loop 'outer/inner', iteration 2 of loop 'outer')"
        )
    )
    assert compiled.path == interpreted.path == "outer/inner/boom"
    assert compiled.iterations == interpreted.iterations == (("outer", 2), ("outer/inner", 0))
    assert type(compiled.__cause__) is type(interpreted.__cause__) is ValueError


def test_an_iterator_as_an_inner_over_is_refused_by_both_engines() -> None:
    @df.block(outputs="x")
    def counted(x: int, t: int) -> int:
        return x + t

    prog = df.compile(df.Loop(df.Loop(counted, over="ts", name="inner"), times="n", name="outer"))
    messages = []
    for engine in (prog, prog.interpret):
        with pytest.raises(df.InputError) as info:
            engine(n=3, x=0, ts=iter([1, 2]))
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "over= of loop 'outer/inner' got an iterator" in messages[0]
    assert prog.interpret(n=3, x=0, ts=[1, 2], output="x") == prog(n=3, x=0, ts=[1, 2], output="x") == 9


def test_an_inner_loop_output_renamed_onto_an_outer_carry_does_not_clobber_it() -> None:
    # found by the differential test: the outer loop carries `d`, whose next value is the inner loop's `b`
    # (renamed by the Graph); sharing one variable let the inner loop's zero-iteration value overwrite
    # `d` before the inner body read it
    @df.block
    def b0(a: int, b: int, c: int) -> None:
        return None

    @df.block(outputs=("a", "b"))
    def b1(d: int) -> tuple[int, int]:
        return d + 100, d + 1000

    net = df.Graph(
        {"node0": b0, "node1": df.Loop(b1, times="n1", name="loop1")},
        edges=[("a", "node0.c")],
        outputs={"a": "node1.a", "d": "node1.b"},
        name="net0",
    )
    prog = df.compile(df.Loop(net, over="ts0", name="loop0"))
    inputs = {"ts0": [0, 1], "a": 0, "b": 0, "n1": 1, "d": 1}
    assert prog(**inputs) == prog.interpret(**inputs) == {"a": 1101, "d": 2001}
    assert prog(**{**inputs, "n1": 0}) == prog.interpret(**{**inputs, "n1": 0}) == {"a": 0, "d": 0}

"""Checking and compiling at depth and size: deep nests of every composite compile and compute the right
value (no RecursionError), 10,000-node Graphs give the right result, and DF205 is decided from one
reachability pass per Graph, agreeing with a search per pair. No timings are asserted here: the growth
is measured by `python -m benchmarks --cases scaling`."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfgraph as df
from benchmarks.scaling import graph_nest  # the benchmark's depth shape, tested for correctness here

lowering = importlib.import_module("dfgraph.lowering")


@df.block(outputs="x")
def inc(x: int) -> int:
    """x + 1."""
    return x + 1


@df.block(outputs="x")
def boom(x: int) -> int:
    """Fails when x is 3."""
    if x == 3:
        raise ValueError("three")
    return x


def sequential_nest(depth: int, *, every_level: bool = False) -> Any:
    block: Any = df.Sequential(inc, name="s0")
    for k in range(1, depth):
        block = df.Sequential(block, inc, name=f"s{k}") if every_level else df.Sequential(block, name=f"s{k}")
    return block


def loop_nest(depth: int, *, own_counts: bool = False, innermost: Any = inc) -> Any:
    body: Any = innermost
    for k in range(depth):
        body = df.Loop(body, times=f"n{k}" if own_counts else "steps", name=f"loop{k}")
    return body


def chain(n: int, *, cut: int | None = None) -> Any:
    """n x -> x nodes, node k + 1 wired to node k, except the edge into node `cut` (left unwired)."""
    nodes = {f"n{k}": inc for k in range(n)}
    edges = [(f"n{k}.x", f"n{k + 1}.x") for k in range(n - 1) if k + 1 != cut]
    return df.Graph(nodes, edges, {"x": f"n{n - 1}.x"}, name="chain")


def _clean(block: Any) -> df.Program:
    report = df.check(block)
    assert report.ok and not report.warnings, str(report)
    return df.compile(block)


# -- deep nests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [5_000, 20_000])
def test_sequentials_nested_deep_check_compile_and_run(depth: int) -> None:
    nest = sequential_nest(depth)
    program = _clean(nest)
    assert program(x=4, output="x") == 5
    assert [p.name for p in nest.inputs] == ["x"] and [p.name for p in nest.outputs] == ["x"]
    assert repr(nest) == f"Sequential(s{depth - 2}, name='s{depth - 1}')"
    assert "x: int (required)" in program.doc and "s0/inc.x" in program.doc
    assert repr(program) == f"<Program s{depth - 1}(x: int) -> (x)>"


def test_a_block_on_every_level_of_a_2000_deep_nest() -> None:
    program = _clean(sequential_nest(2_000, every_level=True))
    assert program(x=0, output="x") == 2_000
    # comments name long paths cut in the middle, so the source stays linear in the depth
    longest = max(len(line) for line in program.source.splitlines())
    assert longest < 200 and "s1999/.../" in program.source
    with pytest.raises(df.InputError, match="x"):
        program(x="0")


@pytest.mark.parametrize("own_counts", [False, True], ids=["shared count", "own counts"])
def test_loops_nested_300_deep(own_counts: bool) -> None:
    nest = loop_nest(300, own_counts=own_counts)
    program = _clean(nest)
    counts = {f"n{k}": 1 for k in range(300)} if own_counts else {"steps": 1}
    assert program(x=10, output="x", **counts) == 11
    if own_counts:  # two steps of the outermost loop: the whole nest runs twice
        assert program(x=10, output="x", **{**counts, "n299": 2}) == 12
    else:
        assert program(x=10, output="x", steps=0) == 10
    assert len([p for p in nest.inputs if p.name != "x"]) == (300 if own_counts else 1)
    assert repr(nest) == "Loop('loop298', times='n299', name='loop299')".replace(
        "n299", "n299" if own_counts else "steps"
    )
    assert "x: int (required)" in program.doc


def test_loops_nested_1000_deep_split_into_helpers_and_map_failures() -> None:
    program = _clean(loop_nest(1_000, innermost=df.Sequential(inc, boom, name="body")))
    assert program(x=0, steps=1, output="x") == 1
    # Python caps statically nested blocks near 20: deep nests continue in helper functions
    assert program.source.count("\ndef _loop_") >= 1_000 // 20
    compile(program.source, "<check>", "exec")
    with pytest.raises(df.BlockError) as caught:
        program(x=2, steps=1)
    assert caught.value.path.endswith("loop0/boom")
    assert len(caught.value.iterations) == 1_000
    assert len(program.schedule.bodies) == 1_000  # the stream schedule of every body, on first use


def test_graphs_nested_deep() -> None:
    nest = graph_nest(150)
    program = _clean(nest)
    assert program(x=1, output="x") == 2
    assert [p.name for p in nest.inputs] == ["x"]
    assert repr(nest) == "Graph(inner, 0 edges, name='g149')"
    assert "g149/inner/inner" in program.doc


def test_composites_nested_deep_in_turn() -> None:
    block: Any = inc
    for k in range(300):  # Sequential in Loop in Graph in Sequential ...
        kind = k % 3
        if kind == 0:
            block = df.Sequential(block, inc, name=f"s{k}")
        elif kind == 1:
            block = df.Loop(block, times="steps", name=f"l{k}")
        else:
            block = df.Graph({"inner": block}, name=f"g{k}")
    program = _clean(block)
    assert program(x=0, steps=1, output="x") == 101
    assert program(x=0, steps=0, output="x") == 0  # the outermost Graph holds a loop run zero times


# -- 10,000-node Graphs ---------------------------------------------------------------------------------


def test_a_10000_node_chain_graph_computes_its_length() -> None:
    program = _clean(chain(10_000))
    assert program(x=5, output="x") == 10_005


def test_a_10000_node_wide_graph() -> None:
    nodes: dict[str, Any] = {"first": inc, **{f"n{k}": inc for k in range(9_999)}}
    edges = [("first.x", f"n{k}.x") for k in range(9_999)]
    graph = df.Graph(nodes, edges, {f"y{k}": f"n{k}.x" for k in range(9_999)}, name="wide")
    out = _clean(graph)(x=1)
    assert len(out) == 9_999 and set(out.values()) == {3}


def test_df205_fires_where_a_10000_node_chain_is_cut_and_nowhere_else() -> None:
    report = df.check(chain(10_000, cut=6_000))
    found = [(d.path, d.message) for d in report.diagnostics if d.code == "DF205"]
    # n6000 could read any of n0..n5999 (the first is named); n0 could read n6000..n9999, which no
    # longer depend on it. Every node downstream of a cut input depends on it: no warning there.
    assert [path for path, _ in found] == ["chain/n0.x", "chain/n6000.x"]
    assert "node 'n6000' outputs 'x'" in found[0][1] and "node 'n0' outputs 'x'" in found[1][1]
    assert report.ok


def test_df205_reachability_is_computed_once_per_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = lowering.descendants

    def counted(targets: dict[str, None], *args: Any) -> Any:
        calls.append(len(targets))
        return original(targets, *args)

    monkeypatch.setattr(lowering, "descendants", counted)
    df.check(df.Graph({"only": inc}, name="one"))
    assert calls == []  # no other node outputs the unwired input: nothing to decide
    df.check(chain(5_000))
    assert calls == [1]  # n0.x: every other producer depends on n0, decided in one pass
    calls.clear()
    df.check(chain(5_000, cut=2_500))
    assert calls == [2]  # one pass for both unwired inputs, not a search per (input, producer) pair
    calls.clear()
    df.check(df.Sequential(chain(100, cut=50), chain(100, cut=20), name="two"))
    assert calls == [2, 2]


# -- DF205 against a search per pair --------------------------------------------------------------------


class Node:
    """A block with given int ports, for random Graphs."""

    def __init__(self, name: str, ins: list[str], outs: list[str]) -> None:
        self.name = name
        self.inputs = tuple(df.Port(n, int) for n in ins)
        self.outputs = tuple(df.Port(n, int) for n in outs)

    def __call__(self, **inputs: int) -> dict[str, int]:
        return {p.name: 0 for p in self.outputs}


PORTS = ["a", "b", "c"]


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[dict[str, Node], list[tuple[str, str]]]:
    n = draw(st.integers(1, 9))
    nodes: dict[str, Node] = {}
    for k in range(n):
        ins = draw(st.lists(st.sampled_from(PORTS), unique=True, max_size=3))
        outs = draw(st.lists(st.sampled_from(PORTS), unique=True, min_size=1, max_size=3))
        nodes[f"n{k}"] = Node(f"n{k}", ins, outs)
    edges: list[tuple[str, str]] = []
    for k, (name, node) in enumerate(nodes.items()):
        for port in node.inputs:
            if k and draw(st.booleans()):
                # mostly from an earlier node; sometimes from a later one, which may close a cycle
                j = (
                    draw(st.integers(0, n - 1))
                    if draw(st.integers(0, 5)) == 0
                    else draw(st.integers(0, k - 1))
                )
                source = nodes[f"n{j}"]
                edges.append(
                    (f"n{j}.{draw(st.sampled_from([p.name for p in source.outputs]))}", f"{name}.{port.name}")
                )
    return nodes, edges


def _depends(deps: dict[str, set[str]], start: str, target: str) -> bool:
    seen, stack = {start}, [start]
    while stack:
        for dep in deps[stack.pop()]:
            if dep == target:
                return True
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return False


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_df205_agrees_with_a_search_per_pair(graph: tuple[dict[str, Node], list[tuple[str, str]]]) -> None:
    nodes, edges = graph
    deps: dict[str, set[str]] = {name: set() for name in nodes}
    wired: set[str] = set()
    for source, target in edges:
        deps[target.split(".")[0]].add(source.split(".")[0])
        wired.add(target)
    expected = {}
    for name, node in nodes.items():
        for port in node.inputs:
            if f"{name}.{port.name}" in wired:
                continue
            others = [
                other
                for other, block in nodes.items()
                if other != name
                and port.name in [p.name for p in block.outputs]
                and not _depends(deps, other, name)
            ]
            if others:
                expected[f"g/{name}.{port.name}"] = others[0]
    report = df.check(df.Graph(nodes, edges, name="g"))
    found = {d.path: d.message for d in report.diagnostics if d.code == "DF205"}
    assert set(found) == set(expected)
    for path, first in expected.items():
        assert f"though node {first!r} outputs" in found[path]

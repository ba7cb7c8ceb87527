"""Stream assignment: Nimble chains, caps, pinning, minimal waits, fork/join, errors, speed."""

from __future__ import annotations

import itertools
import random

import attrs
import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfgraph.schedule import BodySchedule, Schedule, _transitive_reduction, assign
from dfgraph.simulator import happens_before
from dfgraph.testing import dags as random_dags

CFG_NODES = ["scale", "cond", "uncond", "guide", "step"]
CFG_EDGES = [
    ("scale", "cond"),
    ("scale", "uncond"),
    ("cond", "guide"),
    ("uncond", "guide"),
    ("guide", "step"),
]

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dags(max_nodes: int = 14) -> st.SearchStrategy[tuple[list[str], list[tuple[str, str]]]]:
    """Blocks in topological order and random edges from earlier to later blocks."""
    return random_dags(max_nodes=max_nodes, prefix="loop/")


caps = st.sampled_from([None, 1, 2, 3, 4])


def closure(nodes: list[str], edges: list[tuple[str, str]]) -> set[tuple[str, str]]:
    graph = nx.DiGraph(edges)
    graph.add_nodes_from(nodes)
    return set(nx.transitive_closure_dag(graph).edges)


def without_wait(body: BodySchedule, wait: tuple[str, str]) -> BodySchedule:
    return attrs.evolve(body, waits=tuple(w for w in body.waits if w != wait))


# --- properties over random DAGs ---


@SETTINGS
@given(dags(), caps)
def test_every_block_has_one_stream_in_range_and_issue_order_is_topological(
    dag: tuple[list[str], list[tuple[str, str]]], cap: int | None
) -> None:
    nodes, edges = dag
    body = assign(nodes, edges, max_streams=cap)
    assert body.issue_order == body.nodes == tuple(nodes)
    assert dict(body.streams).keys() == set(nodes)
    assert all(0 <= body.stream_of(n) < body.n_streams for n in nodes)
    assert {body.stream_of(n) for n in nodes} == set(range(body.n_streams)) or not nodes
    if cap is not None:
        assert body.n_streams <= cap
    position = {n: i for i, n in enumerate(body.issue_order)}
    assert all(position[u] < position[v] for u, v in edges)
    assert set(body.edges) == set(edges)
    if nodes:
        assert body.stream_of(nodes[0]) == 0


@SETTINGS
@given(dags(), caps)
def test_every_edge_is_covered_by_waits_and_events(
    dag: tuple[list[str], list[tuple[str, str]]], cap: int | None
) -> None:
    nodes, edges = dag
    body = assign(nodes, edges, max_streams=cap)
    assert happens_before(body) >= closure(nodes, edges)
    # A wait is a cross-stream DAG edge whose producer records an event; an event is waited on.
    assert set(body.waits) <= {(v, u) for u, v in edges}
    assert all(body.stream_of(u) != body.stream_of(v) for v, u in body.waits)
    assert set(body.events) == {u for _, u in body.waits}
    assert len(set(body.events)) == len(body.events)
    assert body.side_streams == tuple(range(1, body.n_streams))
    assert [s for s, _ in body.joins] == list(body.side_streams)
    assert all(body.ops_on(s)[-1] == last for s, last in body.joins)


@SETTINGS
@given(dags())
def test_uncapped_happens_before_is_exactly_the_dag_order(
    dag: tuple[list[str], list[tuple[str, str]]],
) -> None:
    nodes, edges = dag
    body = assign(nodes, edges)
    # Equal: every edge enforced, and no false serialisation of independent blocks.
    assert happens_before(body) == closure(nodes, edges)
    # Streams are Nimble chains: a minimum path cover of the transitive reduction.
    reduced = nx.transitive_reduction(nx.DiGraph(edges)) if edges else nx.DiGraph()
    bipartite = nx.Graph()
    bipartite.add_nodes_from([("out", n) for n in nodes] + [("in", n) for n in nodes])
    bipartite.add_edges_from((("out", u), ("in", v)) for u, v in reduced.edges)
    matched = len(nx.bipartite.hopcroft_karp_matching(bipartite, [("out", n) for n in nodes])) // 2
    assert body.n_streams == max(1, len(nodes) - matched)


@SETTINGS
@given(dags(), caps)
def test_every_wait_is_necessary(dag: tuple[list[str], list[tuple[str, str]]], cap: int | None) -> None:
    nodes, edges = dag
    body = assign(nodes, edges, max_streams=cap)
    order = closure(nodes, edges)
    for wait in body.waits:
        assert not happens_before(without_wait(body, wait)) >= order, f"wait {wait} is redundant"


@SETTINGS
@given(dags())
def test_one_stream_needs_no_waits_and_no_events(dag: tuple[list[str], list[tuple[str, str]]]) -> None:
    nodes, edges = dag
    body = assign(nodes, edges, max_streams=1)
    assert body.n_streams == 1
    assert body.waits == body.events == body.joins == body.side_streams == ()
    assert set(body.streams.values()) <= {0}


@SETTINGS
@given(dags(), caps, st.data())
def test_pinned_blocks_are_on_the_main_stream(
    dag: tuple[list[str], list[tuple[str, str]]], cap: int | None, data: st.DataObject
) -> None:
    nodes, edges = dag
    pinned = data.draw(st.lists(st.sampled_from(nodes), max_size=4)) if nodes else []
    body = assign(nodes, edges, max_streams=cap, pinned=pinned)
    assert all(body.stream_of(p) == 0 for p in pinned)
    assert happens_before(body) >= closure(nodes, edges)
    order = closure(nodes, edges)
    assert all(not happens_before(without_wait(body, w)) >= order for w in body.waits)


@SETTINGS
@given(dags(max_nodes=30))
def test_transitive_reduction_matches_networkx(dag: tuple[list[str], list[tuple[str, str]]]) -> None:
    nodes, edges = dag
    index = {n: i for i, n in enumerate(nodes)}
    succ: list[list[int]] = [[] for _ in nodes]
    for u, v in sorted({(index[u], index[v]) for u, v in edges}):
        succ[u].append(v)
    ours = {(nodes[u], nodes[v]) for u, v in _transitive_reduction(len(nodes), succ)}
    theirs = set(nx.transitive_reduction(nx.DiGraph(edges)).edges) if edges else set()
    assert ours == theirs


# --- concrete cases ---


def test_cfg_denoising_step_uses_two_streams_with_two_waits() -> None:
    body = assign(CFG_NODES, CFG_EDGES)
    assert body.n_streams == 2
    spine = {"scale", "guide", "step"}
    assert all(body.stream_of(n) == 0 for n in spine)
    (branch,) = body.ops_on(1)
    other = ({"cond", "uncond"} - {branch}).pop()
    assert body.stream_of(other) == 0
    # The side branch waits for scale (the fork is recorded before scale runs), guide for the branch.
    assert set(body.waits) == {(branch, "scale"), ("guide", branch)}
    assert set(body.events) == {"scale", branch}
    assert body.side_streams == (1,)
    assert body.joins == ((1, branch),)
    assert body.waits_for("guide") == (branch,)
    assert body.records_event("scale") and not body.records_event("step")


def test_cfg_table_is_readable() -> None:
    text = str(assign(CFG_NODES, CFG_EDGES))
    lines = text.splitlines()
    assert lines[0].startswith("5 blocks on 2 streams; fork: stream 0 -> 1; join: 1 (after ")
    assert lines[1].split() == ["#", "stream", "block", "waits", "for", "records", "event"]
    assert len(lines) == 7
    assert lines[2].split() == ["0", "0", "scale", "yes"]
    assert lines[-1].split() == ["4", "0", "step", "no"]


def test_a_chain_is_one_stream() -> None:
    nodes = [f"b{i}" for i in range(6)]
    body = assign(nodes, list(itertools.pairwise(nodes)))
    assert body.n_streams == 1
    assert body.waits == body.events == ()
    assert "no fork/join" in str(body)


def test_redundant_edges_do_not_add_streams() -> None:
    body = assign(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")])
    assert body.n_streams == 1
    assert body.waits == ()


def test_empty_and_single_block_bodies() -> None:
    empty = assign([], [])
    assert empty.nodes == () and empty.n_streams == 1 and empty.waits == () and empty.joins == ()
    assert str(empty).startswith("0 blocks on 1 stream")
    single = assign(["only"], [], max_streams=3)
    assert single.stream_of("only") == 0 and single.n_streams == 1
    assert str(single).startswith("1 block on 1 stream")


def test_wide_fan_out_and_in() -> None:
    leaves = [f"leaf{i}" for i in range(100)]
    nodes = ["root", *leaves, "sink"]
    edges = [("root", x) for x in leaves] + [(x, "sink") for x in leaves]
    body = assign(nodes, edges)
    assert body.n_streams == 100  # root, one leaf and sink form the main chain
    assert len({body.stream_of(x) for x in leaves}) == 100
    assert len(body.waits) == 99 + 99
    capped = assign(nodes, edges, max_streams=4)
    assert capped.n_streams == 4
    assert sorted(len(capped.ops_on(s)) for s in range(4)) == [25, 25, 26, 26]  # balanced
    assert happens_before(capped) >= closure(nodes, edges)
    # Capped streams are sequential, so one wait per stream and direction suffices.
    assert len(capped.waits) == 3 + 3


def test_pinned_blocks_on_parallel_branches_share_the_main_stream() -> None:
    body = assign(CFG_NODES, CFG_EDGES, pinned=["cond", "uncond"])
    assert body.n_streams == 1
    assert body.waits == ()


@pytest.mark.parametrize("shape", ["chain", "fan", "random"])
def test_ten_thousand_blocks_schedule(shape: str) -> None:
    # how fast is benchmarks' business (no timed asserts here): at this size every edge is still ordered
    n = 10_000
    nodes = [f"body/b{i}" for i in range(n)]
    rng = random.Random(0)
    if shape == "chain":
        pairs = [(i, i + 1) for i in range(n - 1)]
    elif shape == "fan":
        pairs = [(0, i) for i in range(1, n - 1)] + [(i, n - 1) for i in range(1, n - 1)]
    else:
        pairs = [(max(0, i - rng.randint(1, 20)), i) for i in range(1, n) for _ in range(3)]
    edges = [(nodes[u], nodes[v]) for u, v in pairs]
    for cap in (None, 4):
        body = assign(nodes, edges, max_streams=cap)
        assert len(body.nodes) == n
        position = {path: k for k, path in enumerate(body.issue_order)}
        assert all(position[u] < position[v] for u, v in edges)


# --- errors ---


def test_bad_bodies_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="'a' is listed twice"):
        assign(["a", "b", "a"], [])
    with pytest.raises(
        ValueError, match=r"edge target 'gide' is not in the loop body; did you mean 'guide'\?"
    ):
        assign(CFG_NODES, [("scale", "gide")])
    with pytest.raises(ValueError, match="cycle: 'a' -> 'b' -> 'a'"):
        assign(["a", "b"], [("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="cycle: 'a' -> 'a'"):
        assign(["a"], [("a", "a")])
    with pytest.raises(ValueError, match="'b' -> 'a' goes backwards"):
        assign(["a", "b"], [("b", "a")])
    with pytest.raises(ValueError, match="max_streams must be at least 1"):
        assign(["a"], [], max_streams=0)
    with pytest.raises(ValueError, match="pinned block 'nois'"):
        assign(["noise", "a"], [], pinned=["nois"])


def test_unknown_block_names_a_suggestion() -> None:
    body = assign(CFG_NODES, CFG_EDGES)
    with pytest.raises(KeyError, match=r"'gidue'.*did you mean 'guide'"):
        body.stream_of("gidue")
    with pytest.raises(KeyError, match="no block 'zzz' in this loop body"):
        body.waits_for("zzz")


# --- several loops ---


def test_schedule_aggregates_loop_bodies() -> None:
    denoise = assign(
        [f"denoise/{n}" for n in CFG_NODES], [(f"denoise/{u}", f"denoise/{v}") for u, v in CFG_EDGES]
    )
    counter = assign(["count/inc", "count/log"], [("count/inc", "count/log")])
    program = Schedule({"denoise": denoise, "count": counter})
    assert list(program.bodies) == ["denoise", "count"]
    assert program.stream_of("count/log") == 0
    assert program.stream_of("denoise/guide") == 0
    assert program.waits == denoise.waits
    assert program.issue_order == denoise.nodes + counter.nodes
    text = str(program)
    assert "loop 'denoise': 5 blocks on 2 streams" in text
    assert "loop 'count': 2 blocks on 1 stream" in text
    with pytest.raises(KeyError, match="did you mean 'count/log'"):
        program.stream_of("count/lgo")
    with pytest.raises(ValueError, match="'count/inc' is scheduled in both loop"):
        Schedule({"a": counter, "b": counter})
    assert str(Schedule()) == "no loops: nothing to schedule"
    assert Schedule({"count": counter}) == Schedule({"count": counter})
    assert hash(Schedule({"count": counter})) == hash(Schedule({"count": counter}))


def test_body_schedule_lookups() -> None:
    body = assign(CFG_NODES, CFG_EDGES)
    assert "guide" in body and "nope" not in body
    assert body.streams["step"] == 0
    assert body == assign(CFG_NODES, CFG_EDGES)
    assert hash(body) == hash(assign(CFG_NODES, CFG_EDGES))

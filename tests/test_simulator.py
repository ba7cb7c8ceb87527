"""The stream simulator: random legal interleavings, vector-clock checks, values equal to serial runs."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

import attrs
import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfgraph.schedule import BodySchedule, assign
from dfgraph.simulator import SimulationError, happens_before, serial, simulate
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


def hashing_run(node: str, inputs: Mapping[str, Any]) -> str:
    """A deterministic block: the sha256 of its name and its inputs, in a canonical order."""
    canonical = repr((node, sorted(inputs.items())))
    return hashlib.sha256(canonical.encode()).hexdigest()


def dags(max_nodes: int = 12) -> st.SearchStrategy[tuple[list[str], list[tuple[str, str]]]]:
    """Blocks in topological order and random edges from earlier to later blocks."""
    return random_dags(max_nodes=max_nodes, prefix="")


@SETTINGS
@given(dags(), st.sampled_from([None, 1, 2, 3, 4]), st.integers(1, 4), st.randoms(use_true_random=False))
def test_random_interleavings_match_the_serial_run(
    dag: tuple[list[str], list[tuple[str, str]]], cap: int | None, iterations: int, rng: random.Random
) -> None:
    nodes, edges = dag
    pinned = nodes[-1:]  # an RNG block late in the body, away from the first block's chain
    body = assign(nodes, edges, max_streams=cap, pinned=pinned)
    expected = serial(body, iterations, hashing_run)
    for seed in range(3):
        # simulate raises SimulationError on any unordered edge, iteration overlap or deadlock.
        result = simulate(body, iterations, random.Random(rng.random() + seed), hashing_run)
        assert dict(result.values) == expected
    assert len(expected) == len(nodes) * iterations


@SETTINGS
@given(dags(), st.integers(2, 3))
def test_any_missing_wait_is_caught_by_the_clocks(
    dag: tuple[list[str], list[tuple[str, str]]], iterations: int
) -> None:
    nodes, edges = dag
    body = assign(nodes, edges)
    for wait in body.waits:
        broken = attrs.evolve(body, waits=tuple(w for w in body.waits if w != wait))
        with pytest.raises(SimulationError, match="is not ordered in iteration"):
            simulate(broken, iterations, random.Random(0))


@pytest.mark.parametrize("seed", range(20))
def test_larger_random_bodies(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(20, 80)
    nodes = [f"b{i}" for i in range(n)]
    edges = [(nodes[rng.randrange(v)], nodes[v]) for v in range(1, n) for _ in range(rng.randint(0, 3))]
    graph = nx.DiGraph(edges)
    graph.add_nodes_from(nodes)
    order = set(nx.transitive_closure_dag(graph).edges)
    for cap in (None, 2, 3):
        body = assign(nodes, edges, max_streams=cap, pinned=[nodes[n // 2]])
        assert happens_before(body) >= order
        for wait in body.waits:
            broken = attrs.evolve(body, waits=tuple(w for w in body.waits if w != wait))
            assert not happens_before(broken) >= order
        expected = serial(body, 3, hashing_run)
        assert dict(simulate(body, 3, rng, hashing_run).values) == expected
    assert happens_before(assign(nodes, edges)) == order


def test_cfg_step_runs_under_many_interleavings() -> None:
    body = assign(CFG_NODES, CFG_EDGES)
    expected = serial(body, 5, hashing_run, initial={"scale": "x0"})
    traces = set()
    for seed in range(50):
        result = simulate(body, 5, random.Random(seed), hashing_run, initial={"scale": "x0"})
        assert dict(result.values) == expected
        traces.add(result.trace)
    assert len(traces) > 10  # the interleavings really differ
    assert result.final().keys() == set(CFG_NODES)
    assert result.final()["step"] == expected["step", 4]


def test_trace_shows_fork_waits_and_join() -> None:
    body = assign(CFG_NODES, CFG_EDGES)
    (branch,) = body.ops_on(1)
    trace = simulate(body, 1, random.Random(0)).trace
    side = [what for s, what in trace if s == 1]
    assert side == [
        "wait fork @0",
        "wait for 'scale' @0",
        f"run {branch!r} @0",
        f"record event of {branch!r} @0",
        "record join 1 @0",
    ]
    main = [what for s, what in trace if s == 0]
    assert main[0] == "record fork @0"
    assert main[-1] == "join stream 1 @0"


def test_missing_wait_names_the_edge_and_iteration() -> None:
    body = assign(CFG_NODES, CFG_EDGES)
    (branch,) = body.ops_on(1)
    broken = attrs.evolve(body, waits=tuple(w for w in body.waits if w[0] == "guide"))
    with pytest.raises(SimulationError, match=f"edge 'scale' -> {branch!r} is not ordered in iteration 0"):
        simulate(broken, 3, random.Random(0))


def test_without_fork_and_join_iterations_overlap() -> None:
    # "log" on the side stream feeds nothing, so only the join orders it before the next iteration.
    body = assign(["a", "b", "log"], [("a", "b"), ("a", "log")])
    assert body.n_streams == 2
    simulate(body, 3, random.Random(0))
    with pytest.raises(SimulationError, match=r"iteration 1 of .* may start before iteration 0 ends"):
        simulate(body, 2, random.Random(0), fork_join=False)
    simulate(body, 1, random.Random(0), fork_join=False)  # one iteration needs no join


def test_deadlock_is_reported() -> None:
    # Hand-made and wrong: each stream waits for the other's op before running its own.
    body = BodySchedule(("a", "b"), (), (0, 1), 2, (("a", "b"), ("b", "a")), ("a", "b"))
    with pytest.raises(SimulationError, match=r"deadlock: no stream can run.*stream 0: wait for 'b' @0"):
        simulate(body, 1, random.Random(0))


def test_wait_without_event_is_rejected() -> None:
    body = attrs.evolve(assign(CFG_NODES, CFG_EDGES), events=())
    with pytest.raises(SimulationError, match="records no event"):
        simulate(body, 1, random.Random(0))


def test_happens_before_of_the_cfg_step() -> None:
    body = assign(CFG_NODES, CFG_EDGES)
    (branch,) = body.ops_on(1)
    other = ({"cond", "uncond"} - {branch}).pop()
    order = happens_before(body)
    assert ("scale", "step") in order and (branch, "step") in order
    assert (branch, other) not in order and (other, branch) not in order
    assert len(order) == 4 + 2 + 2 + 1  # scale before 4 blocks, each branch before 2, guide before step

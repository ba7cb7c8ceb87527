"""Switches through the passes after lowering: fusion inside each case, a switch as one unit of a loop
body's stream schedule (verified by a recording CUDA runtime), CUDA-graph capture segmented around
switches (verified by a runtime that fakes capture), the hooks pass and the verifier, and the pictures.

The torch-free parts (schedules, streams, pictures) run in the core subset; fusion and capture stack
tensors, so those tests import torch themselves."""

from __future__ import annotations

import contextlib
import inspect
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dfgraph as df
import dfgraph.cuda
from dfgraph import render
from dfgraph.codegen.capture import enclosing_loop, segments
from dfgraph.compose import Switch
from dfgraph.ir import FusedOp, LoopOp, SwitchOp, case_chain, verify
from dfgraph.passes import hooks_pass
from dfgraph.schedule import schedule_program
from dfgraph.simulator import simulate
from dfgraph.testing import dags

# -- a recording CUDA runtime: streams and events as vector clocks (no torch, no GPU) --------------------


class Event:
    def __init__(self) -> None:
        self.clock: dict[int, int] | None = None

    def record(self, stream: Stream) -> None:
        self.clock = dict(stream.rt.clocks[stream.sid])


class Stream:
    def __init__(self, rt: Recorder, sid: int) -> None:
        self.rt, self.sid = rt, sid
        rt.clocks[sid] = {}

    def wait_event(self, event: Event) -> None:
        assert event.clock is not None, "waited for an event never recorded"
        mine = self.rt.clocks[self.sid]
        for k, v in event.clock.items():
            mine[k] = max(mine.get(k, 0), v)


class Recorder:
    """A CUDA runtime whose blocks call launch(name): each launch keeps its stream and vector clock."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.clocks: dict[int, dict[int, int]] = {}
        self.current = Stream(self, 0)
        self.n_streams = 1
        self.launches: dict[str, list[tuple[int, dict[int, int]]]] = {}
        self.kept: list[tuple[Any, int]] = []

    def current_stream(self) -> Stream:
        return self.current

    def new_stream(self) -> Stream:
        self.n_streams += 1
        return Stream(self, self.n_streams - 1)

    def new_event(self) -> Event:
        return Event()

    @contextlib.contextmanager
    def on(self, stream: Stream) -> Iterator[None]:
        previous, self.current = self.current, stream
        try:
            yield
        finally:
            self.current = previous

    def keep(self, value: Any, stream: Stream) -> None:
        self.kept.append((value, stream.sid))

    def launch(self, name: str) -> None:
        sid = self.current.sid
        clock = self.clocks[sid]
        clock[sid] = clock.get(sid, 0) + 1
        self.launches.setdefault(name, []).append((sid, dict(clock)))

    def before(self, a: tuple[str, int], b: tuple[str, int]) -> bool:
        """Launch a (name, k-th launch) happens before launch b."""
        (sid_a, clock_a), (_, clock_b) = self.launches[a[0]][a[1]], self.launches[b[0]][b[1]]
        return clock_a[sid_a] <= clock_b.get(sid_a, 0)


REC: list[Recorder] = []  # the recorder the traced blocks report to (set per test)


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()
    REC[:] = [recorder]
    monkeypatch.setattr(dfgraph.cuda, "RUNTIME", recorder)
    yield recorder
    REC.clear()


def traced(name: str, params: list[str], body: Callable[..., float], out: str, **options: Any) -> Any:
    """A float block `name(params...) -> out` that reports its launch to the current recorder."""

    def run(*args: float) -> float:
        if REC:
            REC[0].launch(name)
        return body(*args)

    run.__name__ = name
    parameters = [
        inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=float) for p in params
    ]
    run.__signature__ = inspect.Signature(parameters, return_annotation=float)  # type: ignore[attr-defined]
    run.__annotations__ = {p: float for p in params} | {"return": float}
    return df.block(outputs=out, name=name, **options)(run)


# -- a loop body with a switch: pre -> switch(on the item) -> post, plus an independent side block --------


def guided_body(*, case_mutates: tuple[str, ...] = ()) -> df.Loop:
    pre = traced("pre", ["x"], lambda x: x + 1.0, "a")
    aside = traced("aside", ["x"], lambda x: x * 0.5, "b")
    cond = traced("cond", ["a", "b"], lambda a, b: a * 2.0 + b, "y", mutates=case_mutates)
    twice = traced("twice", ["y"], lambda y: y * 3.0, "y")
    plain = traced("plain", ["a"], lambda a: a - 3.0, "y")
    sw = Switch({"guided": df.Sequential(cond, twice, name="guided"), "plain": plain}, on="k", name="sw")
    post = traced("post", ["y", "x"], lambda y, x: y * 0.25 + x * 0.5, "x")
    body = df.Sequential(pre, aside, sw, post, name="body")
    return df.Loop(body, over="keys", item="k", name="loop")


KEYS = ["guided", "plain", "plain", "guided"]


def lowered_of(blk: Any) -> Any:
    lowered = df.lower(blk)
    verify(lowered)
    return lowered


def test_a_switch_is_one_unit_of_its_loop_body() -> None:
    lowered = lowered_of(guided_body())
    schedule = schedule_program(lowered, 4)
    body = schedule.bodies["loop"]
    assert body.nodes == ("loop/pre", "loop/aside", "loop/sw", "loop/post")  # the cases are not nodes
    # the switch unit reads what any case reads: a from pre (both cases), b from aside (one case only)
    assert set(body.edges) == {("loop/pre", "loop/sw"), ("loop/aside", "loop/sw"), ("loop/sw", "loop/post")}
    assert body.cases_of("loop/sw") == ("guided", "plain") and body.cases_of("loop/pre") == ()
    assert "loop/sw [switch: guided | plain]" in str(body)
    simulate(body, 3, random.Random(0))  # every edge and iteration boundary ordered


def test_mutates_inside_a_case_counts_for_the_unit() -> None:
    # aside and the switch share no data: only the resource both mutate orders them
    free = schedule_program(lowered_of(_independent_switch((), aside_mutates=("scheduler",))), 4)
    assert ("loop/body/aside", "loop/body/sw") not in free.bodies["loop"].edges
    lowered = lowered_of(_independent_switch(("scheduler",), aside_mutates=("scheduler",)))
    ordered = schedule_program(lowered, 4).bodies["loop"]
    assert ("loop/body/aside", "loop/body/sw") in ordered.edges
    simulate(ordered, 2, random.Random(1))
    switch = next(op for op in lowered.ops() if isinstance(op, SwitchOp))
    assert switch.meta["mutates"] == frozenset({"scheduler"})
    # a block nested deeper in a case (a Sequential case) counts too
    nested = lowered_of(guided_body(case_mutates=("scheduler",)))
    schedule_program(nested, 4)
    assert next(op for op in nested.ops() if isinstance(op, SwitchOp)).meta["mutates"] == {"scheduler"}


def test_a_case_that_draws_random_numbers_pins_the_unit_to_the_main_stream() -> None:
    # aside and the switch are independent; without the pin the switch could go to a side stream
    free = schedule_program(lowered_of(_independent_switch(())), 4).bodies["loop"]
    pinned = schedule_program(lowered_of(_independent_switch(("rng",))), 4).bodies["loop"]
    assert free.stream_of("loop/body/aside") == 0 and free.stream_of("loop/body/sw") == 1
    assert pinned.stream_of("loop/body/sw") == 0 and pinned.n_streams == 1


def _independent_switch(mutates: tuple[str, ...], aside_mutates: tuple[str, ...] = ()) -> df.Loop:
    aside = traced("aside", ["x"], lambda x: x * 0.5, "b", mutates=aside_mutates)
    first = traced("first", ["x"], lambda x: x + 1.0, "y", mutates=mutates)
    second = traced("second", ["x"], lambda x: x - 1.0, "y")
    sw = Switch({"one": first, "two": second}, on="k", name="sw")
    join = traced("join", ["b", "y"], lambda b, y: b + y, "x")
    body = df.Graph(
        {"aside": aside, "sw": sw, "join": join},
        edges=[("aside.b", "join.b"), ("sw.y", "join.y")],
        outputs={"x": "join.x"},
        name="body",
    )
    return df.Loop(body, over="keys", item="k", name="loop")


def test_loops_inside_cases_get_schedules_of_their_own() -> None:
    inner = df.Loop(traced("refine", ["y"], lambda y: y * 0.5, "y"), times="m", name="inner")
    start = traced("start", ["x"], lambda x: x + 1.0, "y")
    deep = df.Sequential(start, inner, name="deep")
    shallow = traced("shallow", ["x"], lambda x: x - 1.0, "y")
    sw = Switch({"deep": deep, "shallow": shallow}, on="k", name="sw")
    post = traced("post", ["y", "x"], lambda y, x: y + x, "x")
    loop = df.Loop(df.Sequential(sw, post, name="body"), over="keys", item="k", name="loop")
    schedule = schedule_program(lowered_of(loop), 4)
    assert set(schedule.bodies) == {"loop", "loop/sw/deep/inner"}
    assert schedule.bodies["loop"].nodes == ("loop/sw", "loop/post")


# -- the streams emitter, checked by the recording runtime -------------------------------------------------


def _case_launches(keys: list[str], chosen: str, names: list[str]) -> dict[int, list[tuple[str, int]]]:
    """Loop iteration -> the launches (name, k-th launch of that name) of the case run in it."""
    found: dict[int, list[tuple[str, int]]] = {}
    seen = 0
    for i, key in enumerate(keys):
        if key == chosen:
            found[i] = [(name, seen) for name in names]
            seen += 1
    return found


def test_streams_order_the_switch_unit_and_run_its_case_on_the_units_stream(rec: Recorder) -> None:
    inputs = {"keys": KEYS, "x": 1.0}
    serial = df.compile(guided_body())(**inputs)
    prog = df.compile(guided_body(), device="cuda")
    body = prog.schedule.bodies["loop"]
    assert body.n_streams == 2  # aside on a side stream: the switch waits for it
    rec.launches.clear()
    assert prog(**inputs) == serial == prog.interpret(**inputs)
    unit = body.stream_of("loop/sw")
    runs = _case_launches(KEYS, "guided", ["cond", "twice"]) | _case_launches(KEYS, "plain", ["plain"])
    for i, case in runs.items():
        first, last = case[0], case[-1]
        for name, k in case:  # the chosen case ran serially, on the unit's stream
            assert rec.launches[name][k][0] == unit
        assert rec.before(("pre", i), first) and rec.before(("aside", i), first)
        assert rec.before(last, ("post", i))
        if i:  # iteration i starts after iteration i - 1 joined
            assert rec.before(runs[i - 1][-1], ("pre", i))
    # the waits come before the if/elif, inside the unit's stream context when that is a side stream
    lines = [line.strip() for line in prog.source.splitlines()]
    branch = lines.index("if k == 'guided':")
    waits = [
        n
        for n, line in enumerate(lines)
        if ".wait_event(" in line and "_join" not in line and "fork" not in line
    ]
    assert any(n < branch for n in waits)


def test_a_switch_on_a_side_stream_records_its_event_after_the_branch(rec: Recorder) -> None:
    loop = _independent_switch(())
    inputs = {"keys": ["one", "two", "two"], "x": 2.0}
    serial = df.compile(loop)(**inputs)
    prog = df.compile(loop, device="cuda")
    body = prog.schedule.bodies["loop"]
    assert body.n_streams == 2 and body.stream_of("loop/body/sw") != 0 and body.records_event("loop/body/sw")
    rec.launches.clear()
    assert prog(**inputs) == serial
    side = body.stream_of("loop/body/sw")
    assert [sid for sid, _ in rec.launches["first"]] == [side]
    assert [sid for sid, _ in rec.launches["second"]] == [side, side]
    runs = _case_launches(inputs["keys"], "one", ["first"]) | _case_launches(
        inputs["keys"], "two", ["second"]
    )
    for i, case in runs.items():
        assert rec.before(case[0], ("join", i))
    lines = prog.source.splitlines()
    context = next(n for n, line in enumerate(lines) if "with _rt.on(" in line)
    record = next(
        n for n, line in enumerate(lines) if ".record(" in line and "_join" not in line and "fork" not in line
    )
    branch = next(n for n, line in enumerate(lines) if line.strip() == "if k == 'one':")
    indent = len(lines[context]) - len(lines[context].lstrip())
    assert context < branch < record
    assert len(lines[record]) - len(lines[record].lstrip()) == indent + 4  # after the else, same context


def test_a_streamed_loop_inside_a_case_forks_from_the_units_stream(rec: Recorder) -> None:
    half = traced("ia", ["y"], lambda y: y * 0.5, "p")
    more = traced("ib", ["y"], lambda y: y + 2.0, "q")
    both = traced("ic", ["p", "q"], lambda p, q: p + q, "y")
    inner = df.Loop(df.Sequential(half, more, both, name="step"), times="m", name="inner")
    deep = df.Sequential(traced("start", ["x"], lambda x: x + 1.0, "y"), inner, name="deep")
    sw = Switch(
        {"deep": deep, "shallow": traced("shallow", ["x"], lambda x: x - 1.0, "y")}, on="k", name="sw"
    )
    body = df.Graph(
        {"aside": traced("aside", ["x"], lambda x: x * 0.5, "b"), "sw": sw, "join": _join()},
        edges=[("aside.b", "join.b"), ("sw.y", "join.y")],
        outputs={"x": "join.x"},
        name="body",
    )
    loop = df.Loop(body, over="keys", item="k", name="loop")
    inputs = {"keys": ["deep", "shallow", "deep"], "m": 2, "x": 1.0}
    serial = df.compile(loop)(**inputs)
    prog = df.compile(loop, device="cuda")
    schedule = prog.schedule
    unit = schedule.bodies["loop"].stream_of("loop/body/sw")
    assert unit != 0 and schedule.bodies["loop/body/sw/deep/inner"].n_streams == 2
    rec.reset()
    assert prog(**inputs) == serial
    streams = {name: {sid for sid, _ in launches} for name, launches in rec.launches.items()}
    # the inner loop's main stream is the unit's stream; its side stream is one of its own
    assert streams["start"] == streams["ia"] == streams["ic"] == streams["shallow"] == {unit}
    assert len(streams["ib"]) == 1 and streams["ib"].isdisjoint({0, unit})
    for k in range(4):  # two deep iterations, two inner iterations each
        assert rec.before(("ib", k), ("ic", k)) and rec.before(("ia", k), ("ic", k))
    assert rec.before(("ic", 1), ("join", 0)) and rec.before(("ic", 3), ("join", 2))
    assert rec.before(("shallow", 0), ("join", 1))


def _join() -> Any:
    return traced("join", ["b", "y"], lambda b, y: b + y, "x")


def _switch_dag_loop(nodes: list[str], edges: list[tuple[str, str]], at: int) -> df.Loop:
    """A loop whose body is the DAG, node `at` a switch on the item: case a one block, case b two."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in dict.fromkeys(edges):
        preds[v].append(u)
    blocks: dict[str, Any] = {}
    graph_edges: list[tuple[str, str]] = []
    for k, name in enumerate(nodes):
        params = [f"p{j}" for j in range(len(preds[name]))]

        def formula(*args: float, k: int = k) -> float:
            return args[0] * 0.5 + k + sum(args[1:])

        if k == at:
            case_a = traced(f"{name}_a", ["x", *params], lambda *a, k=k: formula(*a) + 100.0, "out")
            b1 = traced(f"{name}_b1", ["x", *params], lambda *a, k=k: formula(*a) * 3.0, "mid")
            b2 = traced(f"{name}_b2", ["mid"], lambda mid: mid - 7.0, "out")
            blocks[name] = Switch({"a": case_a, "b": df.Sequential(b1, b2, name="b")}, on="key", name=name)
        else:
            blocks[name] = traced(name, ["x", *params], formula, "out")
        graph_edges += [(f"{u}.out", f"{name}.{p}") for u, p in zip(preds[name], params, strict=True)]
    blocks["fold"] = traced("fold", ["x", "total"], lambda x, total: x * 0.25 + total, "x")
    graph_edges.append((f"{nodes[-1]}.out", "fold.total"))
    body = df.Graph(blocks, edges=graph_edges, outputs={"x": "fold.x"}, name="body")
    return df.Loop(body, over="keys", item="key", name="loop")


@settings(max_examples=40, deadline=None)
@given(dags(max_nodes=7, prefix="n"), st.data(), st.sampled_from([None, 1, 2, 3]))
def test_random_switch_units_keep_every_edge_of_their_cases(
    dag: tuple[list[str], list[tuple[str, str]]], data: st.DataObject, streams: int | None
) -> None:
    nodes, edges = dag
    assume(nodes)
    at = data.draw(st.integers(0, len(nodes) - 1), label="switch node")
    lowered = lowered_of(_switch_dag_loop(nodes, edges, at))
    body = schedule_program(lowered, streams).bodies["loop"]
    path = {n: f"loop/body/{n}" for n in nodes}
    assert body.nodes == (*(path[n] for n in nodes), "loop/body/fold")  # the cases' blocks are not nodes
    assert body.cases_of(path[nodes[at]]) == ("a", "b")
    # every DAG edge, into or out of the switch (read by either case), is an edge of the schedule
    assert {(path[u], path[v]) for u, v in edges} | {(path[nodes[-1]], "loop/body/fold")} == set(body.edges)
    simulate(body, 2, random.Random(data.draw(st.integers(0, 99), label="seed")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dags(max_nodes=7, prefix="n"),
    st.data(),
    st.sampled_from(["auto", 1, 2, 3]),
    st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=4),
)
def test_random_bodies_with_a_switch_order_every_edge(
    rec: Recorder,
    dag: tuple[list[str], list[tuple[str, str]]],
    data: st.DataObject,
    streams: Any,
    keys: list[str],
) -> None:
    nodes, edges = dag
    assume(nodes)
    at = data.draw(st.integers(0, len(nodes) - 1), label="switch node")
    loop = _switch_dag_loop(nodes, edges, at)
    serial = df.compile(loop)(keys=keys, x=1.0)
    prog = df.compile(loop, device="cuda", streams=streams)
    rec.reset()  # hypothesis runs every example with the same fixture
    assert prog(keys=keys, x=1.0) == serial
    body = prog.schedule.bodies["loop"]
    switch = f"loop/body/{nodes[at]}"
    assert body.cases_of(switch) == ("a", "b")
    runs = _case_launches(keys, "a", [f"{nodes[at]}_a"]) | _case_launches(
        keys, "b", [f"{nodes[at]}_b1", f"{nodes[at]}_b2"]
    )
    short = {p: p.rsplit("/", 1)[-1] for p in body.nodes}

    def first(path: str, i: int) -> tuple[str, int]:
        return runs[i][0] if path == switch else (short[path], i)

    def last(path: str, i: int) -> tuple[str, int]:
        return runs[i][-1] if path == switch else (short[path], i)

    for i in range(len(keys)):
        for u, v in body.edges:
            assert rec.before(last(u, i), first(v, i)), (u, v, i)
        for name, k in runs[i]:
            assert rec.launches[name][k][0] == body.stream_of(switch)
        if i:
            for a in body.nodes:
                assert rec.before(last(a, i - 1), first(body.nodes[0], i))


# -- fusion inside cases -------------------------------------------------------------------------------------


def _fusion_blocks() -> tuple[Any, Any, Any]:
    torch = pytest.importorskip("torch")

    @df.block(outputs="noise", batch=("latents", "emb"))
    class Denoiser:
        def __init__(self) -> None:
            torch.manual_seed(0)
            self.layer = torch.nn.Linear(3, 3)

        def __call__(self, latents: Any, emb: Any, t: float) -> Any:
            with torch.no_grad():
                return self.layer(latents) * (1.0 + t) + emb

    @df.block(outputs="noise")
    def guide(cond: Any, uncond: Any, scale: float = 3.0) -> Any:
        return uncond + scale * (cond - uncond)

    @df.block(outputs="latents")
    def step(latents: Any, noise: Any) -> Any:
        return latents - 0.1 * noise

    return Denoiser(), guide, step


def _cfg_switch_loop() -> df.Loop:
    unet, guide, step = _fusion_blocks()
    guided = df.Graph(
        {"cond": unet, "uncond": unet, "guide": guide},
        edges=[
            ("prompt", "cond.emb"),
            ("negative", "uncond.emb"),
            ("cond.noise", "guide.cond"),
            ("uncond.noise", "guide.uncond"),
        ],
        outputs={"noise": "guide.noise"},
        name="guided",
    )
    plain = df.Graph(
        {"unet": unet}, edges=[("prompt", "unet.emb")], outputs={"noise": "unet.noise"}, name="plain"
    )
    sw = Switch({"guided": guided, "plain": plain}, on="mode", name="sw")
    return df.Loop(df.Sequential(sw, step, name="body"), over="timesteps", item="t", name="denoise")


def _fusion_inputs(mode: str) -> dict[str, Any]:
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(1)
    return {
        "mode": mode,
        "timesteps": [3.0, 2.0, 1.0],
        "latents": torch.randn(2, 3, generator=generator),
        "prompt": torch.randn(2, 3, generator=generator),
        "negative": torch.randn(2, 3, generator=generator),
    }


def test_two_calls_in_one_case_fuse_and_the_fused_program_equals_the_unfused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("DFGRAPH_VERIFY", "1")  # the verifier runs after the fuse pass too
    fused = df.compile(_cfg_switch_loop(), fuse=True)
    plain = df.compile(_cfg_switch_loop())
    assert fused.fused == (("denoise/sw/guided/cond", "denoise/sw/guided/uncond"),)
    assert "_cat((" in fused.source
    for mode in ("guided", "plain"):
        got, want = fused(**_fusion_inputs(mode)), plain(**_fusion_inputs(mode))
        assert torch.allclose(got["latents"], want["latents"], atol=1e-6), mode
        assert torch.allclose(got["latents"], plain.interpret(**_fusion_inputs(mode))["latents"], atol=1e-6)
    lowered = df.lower(_cfg_switch_loop())
    from dfgraph.fuse import fuse

    fuse(lowered)
    verify(lowered)
    (op,) = [op for op in lowered.ops() if isinstance(op, FusedOp)]
    ((switch, index),) = case_chain(op)
    assert switch.cases[index].key == "guided" and op.region is switch.cases[index].body


def test_calls_in_different_cases_or_across_the_switch_never_fuse() -> None:
    torch = pytest.importorskip("torch")
    unet, _, step = _fusion_blocks()
    one = df.Graph(
        {"unet": unet}, edges=[("prompt", "unet.emb")], outputs={"noise": "unet.noise"}, name="one"
    )
    two = df.Graph(
        {"unet": unet}, edges=[("negative", "unet.emb")], outputs={"noise": "unet.noise"}, name="two"
    )
    across = df.Sequential(Switch({"one": one, "two": two}, on="mode", name="sw"), step, name="body")
    assert df.compile(df.Loop(across, over="timesteps", item="t"), fuse=True).fused == ()
    # one call before the switch, one inside a case: the inner one may not run
    before = df.Graph(
        {"unet": unet, "keep": _rename("kept")},
        edges=[("negative", "unet.emb"), ("unet.noise", "keep.noise")],
        outputs={"kept": "keep.kept"},
        name="before",
    )
    inside = df.Sequential(before, Switch({"one": one, "two": two}, on="mode", name="sw"), step, name="body")
    prog = df.compile(df.Loop(inside, over="timesteps", item="t"), fuse=True)
    assert prog.fused == ()
    want = df.compile(df.Loop(inside, over="timesteps", item="t"))(**_fusion_inputs("two"))
    assert torch.allclose(prog(**_fusion_inputs("two"))["latents"], want["latents"])


def _rename(out: str) -> Any:
    @df.block(outputs=out)
    def keep(noise: Any) -> Any:
        return noise

    return keep


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["guided", "plain"]), min_size=0, max_size=4))
def test_fused_switches_in_loops_equal_unfused_for_any_key_sequence(
    monkeypatch: pytest.MonkeyPatch, modes: list[str]
) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("DFGRAPH_VERIFY", "1")
    # the key is the loop's item: every iteration may choose another case
    unet, guide, step = _fusion_blocks()
    guided = df.Graph(
        {"cond": unet, "uncond": unet, "guide": guide},
        edges=[
            ("prompt", "cond.emb"),
            ("negative", "uncond.emb"),
            ("cond.noise", "guide.cond"),
            ("uncond.noise", "guide.uncond"),
        ],
        outputs={"noise": "guide.noise"},
        name="guided",
    )
    plain = df.Graph(
        {"unet": unet}, edges=[("prompt", "unet.emb")], outputs={"noise": "unet.noise"}, name="plain"
    )
    body = df.Sequential(Switch({"guided": guided, "plain": plain}, on="mode", name="sw"), step, name="body")
    loop = df.Loop(body, over="modes", item="mode", name="denoise")
    inputs = _fusion_inputs("guided")
    del inputs["mode"], inputs["timesteps"]
    inputs |= {"modes": modes, "t": 0.5}
    fused, unfused = df.compile(loop, fuse=True), df.compile(loop)
    assert len(fused.fused) == 1
    assert torch.allclose(fused(**inputs)["latents"], unfused(**inputs)["latents"], atol=1e-6)


# -- capture: segments end before a switch and start after it; each case's own runs are segments ---------


class FakeGraph:
    def __init__(self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.outputs: tuple[Any, ...] = ()

    def replay(self) -> None:
        torch = pytest.importorskip("torch")
        for static, value in zip(self.outputs, self.fn(*self.args), strict=True):
            if isinstance(static, torch.Tensor):
                static.copy_(value)  # the graph's memory is written in place
            else:
                assert static == value, "a Python output changed between replays"


class FakeCapture:
    """The capture part of the CUDA runtime, on the CPU: a replay reruns the function on its static inputs."""

    def __init__(self) -> None:
        self.torch = pytest.importorskip("torch")
        self.captures = 0

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, self.torch.Tensor)

    def clone(self, tensor: Any) -> Any:
        return tensor.clone()

    def scalar(self, value: float) -> Any:
        return self.torch.tensor(value, dtype=self.torch.float64)

    def warm_up(self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]) -> tuple[Any, ...]:
        return fn(*args)

    def capture(
        self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]
    ) -> tuple[Any, tuple[Any, ...]]:
        self.captures += 1
        graph = FakeGraph(fn, args)
        graph.outputs = fn(*args)
        return graph, graph.outputs


@pytest.fixture
def fake_capture(monkeypatch: pytest.MonkeyPatch) -> FakeCapture:
    fake = FakeCapture()
    monkeypatch.setattr(dfgraph.cuda, "RUNTIME", fake)
    return fake


def _capture_loop(on: str) -> df.Loop:
    """on: 'selector' (a selector block), 'block' (a body block writes the name first), 'carried' (a body
    block writes it for the next iteration), 'input' (a graph input)."""
    torch = pytest.importorskip("torch")

    @df.block(outputs="scaled")
    def scale(latents: Any, t: float) -> Any:
        return latents / (1.0 + t)

    @df.block(outputs="noise")
    def strong(scaled: Any, weight: Any) -> Any:
        return torch.tanh(scaled @ weight)

    @df.block(outputs="noise")
    def boost(noise: Any) -> Any:
        return noise * 2.0

    @df.block(outputs="noise")
    def weak(scaled: Any) -> Any:
        return scaled * 0.5

    class Stepper:
        def __init__(self) -> None:
            self.count = 0

        def __call__(self, latents: Any, noise: Any) -> Any:
            self.count += 1
            return latents - noise / self.count

    @df.block(outputs="mode")
    def pick(t: float) -> str:
        return "strong" if t > 2.5 else "weak"

    step = df.block(outputs="latents", mutates=("scheduler",), name="step")(Stepper())
    cases = {"strong": df.Sequential(strong, boost, name="strong"), "weak": weak}
    sw = Switch(cases, on=pick if on == "selector" else "mode", name="sw")
    before, after = ([pick] if on == "block" else []), ([pick] if on == "carried" else [])
    body = df.Sequential(scale, *before, sw, step, *after, name="body")
    return df.Loop(body, over="timesteps", item="t", name="denoise")


def _capture_inputs() -> dict[str, Any]:
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    return {
        "timesteps": [5.0, 4.0, 3.0, 2.0, 1.0, 0.5],
        "latents": torch.randn(2, 3, generator=generator),
        "weight": torch.randn(3, 3, generator=generator),
    }


@pytest.mark.parametrize("on", ["selector", "block", "carried"])
def test_capture_segments_end_before_a_switch_and_each_case_is_captured_alone(
    fake_capture: FakeCapture, on: str
) -> None:
    torch = pytest.importorskip("torch")
    prog = df.compile(_capture_loop(on), device="cuda", capture=True)
    # the key's producer decides on the host: never replayed from a graph (it would keep its captured key)
    assert prog.captured == (
        ("denoise/scale",),
        ("denoise/sw/strong/strong", "denoise/sw/strong/boost"),
        ("denoise/sw/weak",),
    )
    given = {"mode": "weak"} if on == "carried" else {}  # the first step's mode; then pick's
    want = df.compile(_capture_loop(on))(**_capture_inputs(), **given, output="latents")
    got = prog(**_capture_inputs(), **given, output="latents")
    assert torch.allclose(got, want, atol=1e-12)
    # three steps per case: warm-up, capture, replay; scale six steps
    assert [segment.replays for segment in prog.segments] == [5, 2, 2]
    lines = [line.strip() for line in prog.source.splitlines()]
    branch = lines.index("if mode == 'strong':")
    code = [line for line in lines[:branch] if not line.startswith("#")]
    if on != "carried":
        assert code[-1].startswith("mode = pick(")  # eager, right before the branch
    assert sum(line.startswith("mode") and "= pick(t)" in line for line in lines) == 1  # eager, once
    assert lines[branch + 1] == "noise, = _segment_2_graph.run(_segment_2, (scaled, weight))"


def test_a_switch_on_an_input_captures_only_the_chosen_cases_segments(fake_capture: FakeCapture) -> None:
    torch = pytest.importorskip("torch")
    prog = df.compile(_capture_loop("input"), device="cuda", capture=True)
    reference = df.compile(_capture_loop("input"))
    for mode in ("weak", "strong"):
        got = prog(**_capture_inputs(), mode=mode, output="latents")
        assert torch.allclose(got, reference(**_capture_inputs(), mode=mode, output="latents"), atol=1e-12)
    assert [segment.replays for segment in prog.segments] == [11, 5, 5]  # 6 steps a call


def test_a_switch_outside_every_loop_runs_eagerly(fake_capture: FakeCapture) -> None:
    lowered = df.lower(Switch({"a": _rename("x"), "b": _rename("x")}, on="mode", name="top"))
    switch = next(op for op in lowered.ops() if isinstance(op, SwitchOp))
    assert all(enclosing_loop(case.body) is None for case in switch.cases)
    loop = df.lower(_capture_loop("selector"))
    (inner,) = [op for op in loop.ops() if isinstance(op, SwitchOp)]
    assert all(isinstance(enclosing_loop(case.body), LoopOp) for case in inner.cases)
    groups = segments(inner.region)
    assert [g if isinstance(g, list) else [g] for g in groups][1][0].path == "denoise/sw/pick"
    assert isinstance(groups[2], SwitchOp)  # the switch ends the run before it


def test_the_until_flag_is_computed_eagerly(fake_capture: FakeCapture) -> None:
    torch = pytest.importorskip("torch")

    @df.block(outputs="latents")
    def shrink(latents: Any) -> Any:
        return latents * 0.5

    @df.block(outputs="stop")
    def small(latents: Any) -> bool:
        return bool(latents.abs().max() < 0.1)

    loop = df.Loop(df.Sequential(shrink, small, name="body"), times="n", until="stop", name="loop")
    prog = df.compile(loop, device="cuda", capture=True)
    assert prog.captured == (("loop/shrink",),)
    latents = torch.ones(2, 2)
    got = prog(n=20, latents=latents, output="latents")
    assert torch.allclose(got, df.compile(loop)(n=20, latents=latents, output="latents"))
    assert float(got.max()) == 0.0625  # stopped after four halvings, though the flag was False when captured


# -- the hooks pass and the verifier -------------------------------------------------------------------------


def test_the_hooks_pass_finds_progress_loops_inside_cases() -> None:
    inner = df.Loop(traced("refine", ["x"], lambda x: x * 0.5, "x"), times="m", name="inner", progress=True)
    sw = Switch({"deep": inner, "flat": traced("flat", ["x"], lambda x: x + 1.0, "x")}, on="mode", name="sw")
    dispatcher = hooks_pass(df.lower(sw), ())
    assert dispatcher is not None
    (bar,) = dispatcher.hooks
    assert bar.loops == frozenset({"sw/deep"})
    assert {"loop_start", "iteration_end", "loop_end"} <= dispatcher.events


def test_dfgraph_verify_runs_after_every_pass_with_switches(
    monkeypatch: pytest.MonkeyPatch, rec: Recorder
) -> None:
    monkeypatch.setenv("DFGRAPH_VERIFY", "1")
    calls: list[str] = []
    import dfgraph.passes as passes

    real = passes.verified
    monkeypatch.setattr(passes, "verified", lambda name, lowered: (calls.append(name), real(name, lowered)))
    prog = df.compile(guided_body(), device="cuda")
    assert calls == ["lower", "check", "fuse", "schedule", "hooks", "codegen"]
    assert prog(keys=KEYS, x=1.0) == df.compile(guided_body())(keys=KEYS, x=1.0)


def test_hooks_see_only_the_chosen_cases_blocks() -> None:
    from dfgraph.hooks import Trace

    inner = df.Loop(traced("refine", ["x"], lambda x: x * 0.5, "x"), times="m", name="inner")
    sw = Switch({"deep": inner, "flat": traced("flat", ["x"], lambda x: x + 1.0, "x")}, on="k", name="sw")
    loop = df.Loop(sw, over="keys", item="k", name="loop")
    trace = Trace()
    prog = df.compile(loop, hooks=[trace])
    assert prog(keys=["flat", "deep", "flat"], m=2, x=1.0) == {"x": 1.5}
    names = [(e["cat"], e["name"]) for e in trace.events if e["cat"] in ("block", "loop")]
    assert names == [
        ("block", "loop/sw/flat"),
        ("block", "loop/sw/deep/refine"),
        ("block", "loop/sw/deep/refine"),
        ("loop", "loop/sw/deep"),
        ("block", "loop/sw/flat"),
        ("loop", "loop"),
    ]


# -- pictures ------------------------------------------------------------------------------------------------


def _picture_graph() -> df.Loop:
    return guided_body()


def test_dot_draws_a_switch_as_a_cluster_with_a_cluster_per_case() -> None:
    dot = render.to_dot(_picture_graph())
    assert 'label="switch sw"' in dot
    assert "label=\"case guided: k == 'guided'\"" in dot and "label=\"case plain: k == 'plain'\"" in dot
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=dot, text=True, capture_output=True, check=True)
    picture = render.graph_picture(_picture_graph())
    clusters = {c.path: c for c in picture.clusters}
    switch = clusters["loop/sw"]
    assert switch.kind == "switch"
    assert [c.label for c in picture.clusters if c.parent == switch.id] == [
        "case guided: k == 'guided'",
        "case plain: k == 'plain'",
    ]
    nodes = {n.path: n for n in picture.nodes}
    assert nodes["loop/sw"].kind == "switch" and nodes["loop/sw"].cluster == switch.id
    assert nodes["loop/sw/guided/cond"].cluster == clusters["loop/sw/guided"].id
    assert nodes["loop/sw/plain"].cluster == clusters["loop/sw/plain"].id
    # y reaches post from each case that writes it
    into_post = {e.src for e in picture.edges if e.dst == nodes["loop/post"].id}
    assert {nodes["loop/sw/guided/twice"].id, nodes["loop/sw/plain"].id} <= into_post


def test_a_selector_is_a_node_beside_the_switch_head() -> None:
    picture = render.graph_picture(_independent_selector())
    nodes = {n.path: n for n in picture.nodes}
    head, selector = nodes["sw"], nodes["sw/choose"]
    assert selector.kind == "block" and selector.cluster == head.cluster
    assert any(e.src == selector.id and e.dst == head.id for e in picture.edges)
    assert [c.label for c in picture.clusters if c.kind == "case"] == ["case one", "case two"]


def _independent_selector() -> Switch:
    @df.block(outputs="mode")
    def choose(x: float) -> str:
        return "one" if x > 0 else "two"

    one = traced("first", ["x"], lambda x: x + 1.0, "y")
    two = traced("second", ["x"], lambda x: x - 1.0, "y")
    return Switch({"one": one, "two": two}, on=choose, name="sw")


def test_nested_switches_and_bound_blocks_sit_in_their_cases() -> None:
    from dfgraph.compose import Bound

    inner = Switch(
        {"p": traced("p1", ["x"], lambda x: x, "y"), "q": traced("q1", ["x"], lambda x: -x, "y")},
        on="sub",
        name="inner",
    )
    bound = Bound(traced("t2", ["x", "z"], lambda x, z: x + z, "y"), {"z": 1.0})
    outer = Switch({"one": inner, "two": bound}, on="mode", name="outer")
    picture = render.graph_picture(outer)
    clusters = {c.path: c for c in picture.clusters}
    case_one = next(c for c in picture.clusters if c.label == "case one: mode == 'one'")
    assert case_one.parent == clusters["outer"].id
    assert clusters["outer/one"].kind == "switch" and clusters["outer/one"].parent == case_one.id
    assert [c.label for c in picture.clusters if c.parent == clusters["outer/one"].id] == [
        "case p: sub == 'p'",
        "case q: sub == 'q'",
    ]
    nodes = {n.path: n for n in picture.nodes}
    case_two = next(c.id for c in picture.clusters if c.label == "case two: mode == 'two'")
    assert nodes["outer/two/bound"].cluster == nodes["outer/two"].cluster == case_two
    # y leaves the outer switch from all three blocks that may write it
    (out,) = [n.id for n in picture.nodes if n.kind == "output"]
    assert {e.src for e in picture.edges if e.dst == out} == {
        nodes["outer/one/p"].id,
        nodes["outer/one/q"].id,
        nodes["outer/two"].id,
    }
    if shutil.which("dot"):
        subprocess.run(
            ["dot", "-Tsvg"], input=render.to_dot(outer), text=True, capture_output=True, check=True
        )


def test_mermaid_and_svg_show_every_case() -> None:
    chart = render.to_mermaid(_picture_graph())
    assert chart.count("subgraph ") == 4  # the loop, the switch, two cases
    assert "subgraph c2[\"case guided: k == 'guided'\"]" in chart
    assert "classDef switchbox" in chart
    opened = sum(line.strip().startswith("subgraph ") for line in chart.splitlines())
    closed = sum(line.strip() == "end" for line in chart.splitlines())
    assert opened == closed
    svg = render.graph_svg(_picture_graph())
    assert "case guided: k == &#x27;guided&#x27;" in svg and "switch on k" in svg
    lanes = render.schedule_mermaid(df.compile(_picture_graph()))
    assert "Note over S0: sw [switch: guided #124; plain]" in lanes  # '|' escaped for Mermaid
    trace = render.schedule_trace(df.compile(_picture_graph()))
    assert "sw [switch: guided | plain]" in trace


def test_describe_draws_graphs_with_switches(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "switchy.py").write_text(
        "import dfgraph as df\n"
        "from dfgraph.compose import Switch\n"
        "@df.block(outputs='y')\n"
        "def up(x: float) -> float:\n    return x + 1\n"
        "@df.block(outputs='y')\n"
        "def down(x: float) -> float:\n    return x - 1\n"
        "graph = Switch({'up': up, 'down': down}, on='mode', name='sw')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from dfgraph.cli import main

    assert main(["describe", "switchy:graph", "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert "label=\"case up: mode == 'up'\"" in dot and "label=\"case down: mode == 'down'\"" in dot
    assert main(["describe", "switchy:graph", "--format", "mermaid"]) == 0
    chart = capsys.readouterr().out
    assert chart.startswith("flowchart TB") and "case up: mode == " in chart

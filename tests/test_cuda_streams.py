"""Stream execution (device="cuda") verified without a GPU: a recording runtime keeps a vector clock per
stream, and every data edge of every iteration must be ordered by the events and waits the code emits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dfgraph as df
import dfgraph.cuda
from dfgraph.testing import dags


class FakeEvent:
    def __init__(self, rt: FakeRuntime) -> None:
        self.rt = rt
        self.clock: dict[int, int] | None = None

    def record(self, stream: FakeStream) -> None:
        self.clock = dict(self.rt.clocks[stream.sid])


class FakeStream:
    def __init__(self, rt: FakeRuntime, sid: int) -> None:
        self.rt, self.sid = rt, sid
        rt.clocks[sid] = {}

    def wait_event(self, event: FakeEvent) -> None:
        assert event.clock is not None, "waited for an event never recorded"
        mine = self.rt.clocks[self.sid]
        for k, v in event.clock.items():
            mine[k] = max(mine.get(k, 0), v)


class FakeRuntime:
    """Streams and events as vector clocks; blocks call launch() to say they ran on the current stream."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.clocks: dict[int, dict[int, int]] = {}
        self.main = FakeStream(self, 0)
        self.current = self.main
        self.n_streams = 1
        self.launches: dict[tuple[str, int], tuple[int, dict[int, int]]] = {}
        self.counts: dict[str, int] = {}
        self.kept: list[tuple[Any, int]] = []

    def current_stream(self) -> FakeStream:
        return self.current

    def new_stream(self) -> FakeStream:
        self.n_streams += 1
        return FakeStream(self, self.n_streams - 1)

    def new_event(self) -> FakeEvent:
        return FakeEvent(self)

    @contextlib.contextmanager
    def on(self, stream: FakeStream) -> Iterator[None]:
        previous, self.current = self.current, stream
        try:
            yield
        finally:
            self.current = previous

    def keep(self, value: Any, stream: FakeStream) -> None:
        self.kept.append((value, stream.sid))

    def launch(self, name: str) -> None:
        sid = self.current.sid
        clock = self.clocks[sid]
        clock[sid] = clock.get(sid, 0) + 1
        iteration = self.counts.get(name, 0)
        self.counts[name] = iteration + 1
        self.launches[(name, iteration)] = (sid, dict(clock))

    def before(self, a: tuple[str, int], b: tuple[str, int]) -> bool:
        (sid_a, clock_a), (_, clock_b) = self.launches[a], self.launches[b]
        return clock_a[sid_a] <= clock_b.get(sid_a, 0)


RT = FakeRuntime()


def traced(name: str, fn: Any, outputs: str) -> Any:
    def run(*args: Any, **kw: Any) -> Any:
        RT.launch(name)
        return fn(*args, **kw)

    run.__name__ = name
    run.__signature__ = __import__("inspect").signature(fn)  # type: ignore[attr-defined]
    run.__annotations__ = fn.__annotations__
    return df.block(outputs=outputs, name=name)(run)


def scale(value: float, t: float) -> float:
    return value / (1.0 + t)


def predict(scaled: float, weight: float) -> float:
    return scaled * weight


def guide(cond: float, uncond: float) -> float:
    return uncond + 2.0 * (cond - uncond)


def update(value: float, guided: float) -> float:
    return value - 0.1 * guided


def side(value: float) -> float:
    return value * 0.5


def guided_loop() -> df.Loop:
    body = df.Graph(
        {
            "scale": traced("scale", scale, "scaled"),
            "cond": traced("cond", predict, "prediction"),
            "uncond": traced("uncond", predict, "prediction"),
            "side": traced("side", side, "aside"),
            "guide": traced("guide", guide, "guided"),
            "update": traced("update", update, "value"),
        },
        edges=[
            ("scale.scaled", "cond.scaled"),
            ("scale.scaled", "uncond.scaled"),
            ("cond_weight", "cond.weight"),
            ("uncond_weight", "uncond.weight"),
            ("cond.prediction", "guide.cond"),
            ("uncond.prediction", "guide.uncond"),
            ("guide.guided", "update.guided"),
        ],
        outputs={"value": "update.value", "aside": "side.aside"},
        name="step",
    )
    return df.Loop(body, over="timesteps", name="loop")


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    RT.reset()
    monkeypatch.setattr(dfgraph.cuda, "RUNTIME", RT)
    return RT


INPUTS = {"timesteps": [5.0, 4.0, 3.0, 2.0], "value": 1.0, "cond_weight": 0.9, "uncond_weight": 0.5}


def test_streamed_loop_orders_every_edge_of_every_iteration(fake_cuda: FakeRuntime) -> None:
    serial = df.compile(guided_loop())(**INPUTS)
    prog = df.compile(guided_loop(), device="cuda")
    assert "with _rt.on(" in prog.source and ".wait_event(" in prog.source and ".record(" in prog.source
    fake_cuda.launches.clear()
    fake_cuda.counts.clear()
    assert prog(**INPUTS) == serial
    body = prog.schedule.bodies["loop"]
    assert body.n_streams == 3  # scale/cond/guide/update, uncond, side
    names = {p: p.rsplit("/", 1)[-1] for p in body.nodes}
    n = len(INPUTS["timesteps"])  # type: ignore[arg-type]
    for i in range(n):
        for u, v in body.edges:
            assert fake_cuda.before((names[u], i), (names[v], i)), (u, v, i)
        for p in body.nodes:  # ran on the stream the schedule gives it
            assert fake_cuda.launches[(names[p], i)][0] == body.stream_of(p)
        if i:  # iteration i starts only after iteration i - 1 has joined
            for a in body.nodes:
                for b in body.nodes:
                    assert fake_cuda.before((names[a], i - 1), (names[b], i)), (a, b, i)


def test_values_crossing_streams_are_kept_for_the_stream_that_reads_them(fake_cuda: FakeRuntime) -> None:
    prog = df.compile(guided_loop(), device="cuda")
    fake_cuda.reset()
    prog(**INPUTS)
    body = prog.schedule.bodies["loop"]
    n = len(INPUTS["timesteps"])  # type: ignore[arg-type]
    uncond_stream = body.stream_of("loop/step/uncond")
    # scale's output is read on uncond's stream, uncond's prediction by guide on stream 0 (once each per
    # iteration), and side's output leaves the loop from a side stream (once, after the loop)
    assert sorted(sid for _, sid in fake_cuda.kept) == sorted([uncond_stream] * n + [0] * n + [0])
    assert "_rt.keep(scaled, " in prog.source and "_rt.keep(prediction_1, " in prog.source


def test_one_stream_emits_no_synchronisation(fake_cuda: FakeRuntime) -> None:
    prog = df.compile(guided_loop(), device="cuda", streams=1)
    assert "_rt" not in prog.source
    assert prog(**INPUTS) == df.compile(guided_loop())(**INPUTS)


def test_carried_values_are_not_overwritten_before_the_join(fake_cuda: FakeRuntime) -> None:
    prog = df.compile(guided_loop(), device="cuda")
    lines = prog.source.splitlines()
    join = max(i for i, line in enumerate(lines) if ".wait_event(" in line and "_join" in line)
    copy = next(i for i, line in enumerate(lines) if line.strip().startswith("value = value_"))
    assert join < copy


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: device='cuda' compiles")
    with pytest.raises(df.GraphError, match=r"torch\.cuda\.is_available"):
        df.compile(guided_loop(), device="cuda")
    with pytest.raises(ValueError, match="device="):
        df.compile(guided_loop(), device="tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_cuda_streams_match_serial() -> None:
    @df.block(outputs="y")
    def mm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x @ w

    @df.block(outputs="x")
    def add(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (y + z) / 2

    body = df.Graph(
        {"a": mm, "b": mm, "c": add},
        edges=[("w1", "a.w"), ("w2", "b.w"), ("a.y", "c.y"), ("b.y", "c.z")],
        outputs=["c.x"],
    )
    loop = df.Loop(body, times="n")
    x = torch.randn(256, 256, device="cuda")
    w1, w2 = torch.randn(256, 256, device="cuda") / 16, torch.randn(256, 256, device="cuda") / 16
    expected = df.compile(loop)(n=20, x=x, w1=w1, w2=w2, output="x")
    got = df.compile(loop, device="cuda")(n=20, x=x, w1=w1, w2=w2, output="x")
    torch.cuda.synchronize()
    torch.testing.assert_close(got, expected)


def test_nested_loop_on_a_side_stream(fake_cuda: FakeRuntime) -> None:
    inner = df.Loop(traced("refine", side, "value"), times="m", name="inner")
    body = df.Graph(
        {"a": traced("a", side, "aside"), "inner": inner, "b": traced("b", guide, "guided")},
        edges=[("a.aside", "b.cond"), ("inner.value", "b.uncond")],
        outputs={"guided": "b.guided"},
        name="body",
    )
    loop = df.Loop(body, times="n", name="outer")
    values = {"n": 3, "m": 2, "value": 8.0}
    serial = df.compile(loop)(**values)
    prog = df.compile(loop, device="cuda")
    fake_cuda.reset()
    fake_cuda.main = fake_cuda.current = FakeStream(fake_cuda, 0)
    assert prog(**values) == serial
    assert fake_cuda.n_streams - 1 == prog.schedule.bodies["outer"].n_streams - 1  # made once per call
    assert fake_cuda.launches[("refine", 5)][0] != 0  # the inner loop ran on a side stream


def _dag_loop(nodes: list[str], edges: list[tuple[str, str]]) -> df.Loop:
    """A loop whose body is the DAG: node k sums its predecessors' outputs (and x) plus k."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in dict.fromkeys(edges):
        preds[v].append(u)
    blocks: dict[str, Any] = {}
    graph_edges: list[tuple[str, str]] = []
    for k, name in enumerate(nodes):
        params = [f"p{j}" for j in range(len(preds[name]))]
        source = f"def {name}(x: float{''.join(f', {p}: float' for p in params)}) -> float:\n"
        source += f"    return x * 0.5 + {k}{''.join(f' + {p}' for p in params)}\n"
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        blocks[name] = traced(name, namespace[name], "out")
        graph_edges += [(f"{u}.out", f"{name}.{p}") for u, p in zip(preds[name], params, strict=True)]
    last = nodes[-1]
    blocks["fold"] = _fold(last)
    graph_edges.append((f"{last}.out", "fold.total"))
    body = df.Graph(blocks, edges=graph_edges, outputs={"x": "fold.x"}, name="body")
    return df.Loop(body, times="n", name="loop")


def _fold(last: str) -> Any:
    def fold(x: float, total: float) -> float:
        return x * 0.25 + total

    return traced("fold", fold, "x")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dags(max_nodes=8, prefix="n"), st.sampled_from(["auto", 1, 2, 3]), st.integers(1, 3))
def test_random_bodies_order_every_edge(
    fake_cuda: FakeRuntime, dag: tuple[list[str], list[tuple[str, str]]], streams: Any, n: int
) -> None:
    nodes, edges = dag
    assume(nodes)
    loop = _dag_loop(nodes, edges)
    serial = df.compile(loop)(n=n, x=1.0)
    prog = df.compile(loop, device="cuda", streams=streams)
    fake_cuda.reset()
    assert prog(n=n, x=1.0) == serial
    body = prog.schedule.bodies["loop"]
    short = {p: p.rsplit("/", 1)[-1] for p in body.nodes}
    for i in range(n):
        for u, v in body.edges:
            assert fake_cuda.before((short[u], i), (short[v], i)), (u, v, i)
        for p in body.nodes:
            assert fake_cuda.launches[(short[p], i)][0] == body.stream_of(p)
        if i:
            for a in body.nodes:
                assert fake_cuda.before((short[a], i - 1), (short[body.nodes[0]], i))

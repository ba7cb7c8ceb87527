"""Stream schedules of compiled programs: one per loop body, from the IR's data and resource edges."""

from __future__ import annotations

import random
from typing import Any

import pytest

import dfgraph as df
from dfgraph.cli import main
from dfgraph.testing import happens_before, simulate
from dfgraph_blocks import examples

STEP = "guided_loop/denoise/step"


def test_guided_loop_runs_its_branches_on_two_streams() -> None:
    schedule = df.compile(examples.guided_loop).schedule
    assert list(schedule.bodies) == ["guided_loop/denoise"]
    assert schedule.stream_of(f"{STEP}/cond") != schedule.stream_of(f"{STEP}/uncond")
    assert schedule.stream_of(f"{STEP}/scale") == 0
    assert schedule.issue_order == tuple(
        f"{STEP}/{n}" for n in ("scale", "cond", "uncond", "guide", "update")
    )
    side = next(n for n in ("cond", "uncond") if schedule.stream_of(f"{STEP}/{n}") == 1)
    other = "uncond" if side == "cond" else "cond"
    assert set(schedule.waits) == {(f"{STEP}/{side}", f"{STEP}/scale"), (f"{STEP}/guide", f"{STEP}/{side}")}
    assert other  # the main-stream branch needs no wait
    text = str(schedule)
    assert "5 blocks on 2 streams" in text and "fork" in text and "join" in text


def test_one_stream_means_no_waits() -> None:
    schedule = df.compile(examples.guided_loop, streams=1).schedule
    assert schedule.waits == () and {schedule.stream_of(p) for p in schedule.issue_order} == {0}


def test_bad_streams_option() -> None:
    for bad in (0, -1, "many", 2.5, True):
        with pytest.raises(ValueError, match="streams="):
            df.compile(examples.counter_one, streams=bad)  # type: ignore[arg-type]


def test_programs_without_loops_have_an_empty_schedule() -> None:
    schedule = df.compile(examples.add_one).schedule
    assert schedule.bodies == {} and str(schedule) == "no loops: nothing to schedule"
    with pytest.raises(KeyError):
        schedule.stream_of("add_one")


def make(name: str, reads: tuple[str, ...], writes: str, mutates: tuple[str, ...] = ()) -> Any:
    def fn(**kw: float) -> float:
        return sum(kw.values()) + 1.0

    class Blk:
        def __init__(self) -> None:
            self.name = name
            self.inputs = tuple(df.Port(r, float) for r in reads)
            self.outputs = (df.Port(writes, float),)
            self.mutates = mutates

        def __call__(self, **kw: float) -> dict[str, float]:
            return {writes: fn(**kw)}

    return Blk()


def test_blocks_sharing_a_mutated_resource_keep_their_order() -> None:
    a = make("a", ("x",), "p", mutates=("scheduler",))
    b = make("b", ("x",), "q", mutates=("scheduler",))
    c = make("c", ("x",), "r")
    body = df.Sequential(a, b, c, make("join", ("p", "q", "r", "x"), "x"))
    schedule = df.compile(df.Loop(body, times="n", name="l"), streams=8).schedule
    # a and b are independent by data but share the scheduler: one stream, in order; c runs beside them
    assert schedule.stream_of("l/a") == schedule.stream_of("l/b")
    assert schedule.stream_of("l/c") != schedule.stream_of("l/a")
    assert ("l/a", "l/b") in happens_before(schedule.bodies["l"])


def test_random_number_blocks_stay_on_the_main_stream() -> None:
    noise1 = make("noise1", ("x",), "p", mutates=("rng",))
    noise2 = make("noise2", ("x",), "q", mutates=("rng",))
    other = make("other", ("x",), "r")
    body = df.Sequential(other, noise1, noise2, make("join", ("p", "q", "r", "x"), "x"))
    schedule = df.compile(df.Loop(body, times="n", name="l"), streams=8).schedule
    assert schedule.stream_of("l/noise1") == schedule.stream_of("l/noise2") == 0


def test_nested_loops_get_one_schedule_each_and_simulate_cleanly() -> None:
    inner = df.Loop(df.Sequential(make("u", ("y",), "y"), make("v", ("x",), "w")), times="m", name="inner")
    body = df.Sequential(make("s", ("x",), "y"), inner, make("t", ("y", "w", "x"), "x"))
    schedule = df.compile(df.Loop(body, times="n", name="outer")).schedule
    assert set(schedule.bodies) == {"outer", "outer/inner"}
    # the inner loop is one node of the outer body, ordered after s and before t
    outer = schedule.bodies["outer"]
    assert outer.issue_order == ("outer/s", "outer/inner", "outer/t")
    for body_schedule in schedule.bodies.values():
        for seed in range(5):
            simulate(body_schedule, iterations=3, rng=random.Random(seed))


def test_cli_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "dfgraph_blocks.examples:guided_loop"]) == 0
    assert "on 2 streams" in capsys.readouterr().out
    assert main(["schedule", "dfgraph_blocks.examples:guided_loop", "--streams", "1"]) == 0
    assert "on 1 stream" in capsys.readouterr().out
    assert main(["schedule", "dfgraph_blocks.examples:miswired"]) == 1
    assert main(["schedule", "dfgraph_blocks.examples:counter_one", "--streams", "zero"]) == 2

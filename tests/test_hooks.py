"""Hooks (dfgraph.hooks): the events a run fires, in order, in the generated code and the interpreter alike;
a program calls only the events some hook listens to, and without hooks its source has no hook call."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import dfgraph as df
import dfgraph.cuda
from dfgraph.hooks import EVENTS, ProgressBar, Trace, events_of, listens
from dfgraph.interpret import Interpreter
from dfgraph.testing import CounterCase, counter_loops


class Recorder(df.Hook):
    """Records every event as a tuple (values copied: a later iteration must not change an earlier one)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def run_start(self, program: str, inputs: Mapping[str, Any]) -> None:
        self.events.append(("run_start", program, dict(inputs)))

    def run_end(self, program: str, outputs: Mapping[str, Any]) -> None:
        self.events.append(("run_end", program, dict(outputs)))

    def block_start(self, path: str, inputs: Mapping[str, Any]) -> None:
        self.events.append(("block_start", path, dict(inputs)))

    def block_end(self, path: str, outputs: Mapping[str, Any]) -> None:
        self.events.append(("block_end", path, dict(outputs)))

    def loop_start(self, path: str, total: int | None) -> None:
        self.events.append(("loop_start", path, total))

    def iteration_start(self, path: str, index: int, item: Any) -> None:
        self.events.append(("iteration_start", path, index, item))

    def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
        self.events.append(("iteration_end", path, index, item, dict(carried)))

    def loop_end(self, path: str) -> None:
        self.events.append(("loop_end", path))

    def error(self, exc: Exception) -> None:
        self.events.append(("error", exc))


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


@df.block(outputs="x")
def add(x: int, t: int) -> int:
    return x + t


@df.block(outputs="x")
def fail_at_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def counter() -> df.Loop:
    return df.Loop(df.Sequential(add_one, add_one, name="body"), times="n", name="loop")


def test_a_program_without_hooks_has_no_hook_call_in_its_source() -> None:
    prog = df.compile(counter())
    assert "_hooks" not in prog.source and "hook" not in prog.source
    assert prog.hooks == ()
    # the counter loop is still the loop a person would write
    assert "for i in _range(n):\n            x_1 = add_one(x)" in prog.source
    assert prog(n=3, x=0) == {"x": 6}


def test_events_of_a_sequential_in_order() -> None:
    rec = Recorder()
    prog = df.compile(df.Sequential(add_one, add, name="seq"), hooks=[rec])
    assert prog(x=1, t=10) == {"x": 12}
    assert rec.events == [
        ("run_start", "seq", {"x": 1, "t": 10}),
        ("block_start", "seq/add_one", {"x": 1}),
        ("block_end", "seq/add_one", {"x": 2}),
        ("block_start", "seq/add", {"x": 2, "t": 10}),
        ("block_end", "seq/add", {"x": 12}),
        ("run_end", "seq", {"x": 12}),
    ]


def test_nested_loops_report_index_item_and_carried_values() -> None:
    inner = df.Loop(add, over="ts", item="t", name="inner")
    outer = df.Loop(df.Sequential(add_one, inner, name="body"), times="n", name="outer")
    rec = Recorder()
    prog = df.compile(outer, hooks=[rec])
    assert prog(n=2, ts=[10, 20], x=0) == {"x": 62}
    loops = [e for e in rec.events if e[0] in ("loop_start", "iteration_start", "iteration_end", "loop_end")]
    assert loops == [
        ("loop_start", "outer", 2),
        ("iteration_start", "outer", 0, None),
        ("loop_start", "outer/inner", 2),
        ("iteration_start", "outer/inner", 0, 10),
        ("iteration_end", "outer/inner", 0, 10, {"x": 11}),
        ("iteration_start", "outer/inner", 1, 20),
        ("iteration_end", "outer/inner", 1, 20, {"x": 31}),
        ("loop_end", "outer/inner"),
        ("iteration_end", "outer", 0, None, {"x": 31}),
        ("iteration_start", "outer", 1, None),
        ("loop_start", "outer/inner", 2),
        ("iteration_start", "outer/inner", 0, 10),
        ("iteration_end", "outer/inner", 0, 10, {"x": 42}),
        ("iteration_start", "outer/inner", 1, 20),
        ("iteration_end", "outer/inner", 1, 20, {"x": 62}),
        ("loop_end", "outer/inner"),
        ("iteration_end", "outer", 1, None, {"x": 62}),
        ("loop_end", "outer"),
    ]
    # the interpreter fires the same events in the same order
    compiled, again = list(rec.events), Recorder()
    assert Interpreter(df.compile(outer, hooks=[again])).run(n=2, ts=[10, 20], x=0) == {"x": 62}
    assert again.events == compiled


def test_the_interpreter_fires_the_same_events() -> None:
    inner = df.Loop(add, over="ts", item="t", name="inner")
    outer = df.Loop(df.Sequential(add_one, inner, name="body"), times="n", name="outer")
    compiled, interpreted = Recorder(), Recorder()
    prog = df.compile(outer, hooks=[compiled])
    prog(n=2, ts=(1, 2, 3), x=5)
    Interpreter(df.compile(outer, hooks=[interpreted])).run(n=2, ts=(1, 2, 3), x=5)
    assert compiled.events == interpreted.events
    assert len(compiled.events) > 20


def test_a_loop_over_an_iterator_has_no_total() -> None:
    rec = Recorder()
    prog = df.compile(df.Loop(add, over="ts", item="t", name="loop"), hooks=[rec])
    assert prog(ts=iter([1, 2]), x=0) == {"x": 3}
    assert ("loop_start", "loop", None) in rec.events


def test_zero_iterations_fire_loop_start_and_end_only() -> None:
    rec = Recorder()
    prog = df.compile(counter(), hooks=[rec])
    assert prog(n=0, x=7) == {"x": 7}
    assert rec.events == [
        ("run_start", "loop", {"n": 0, "x": 7}),
        ("loop_start", "loop", 0),
        ("loop_end", "loop"),
        ("run_end", "loop", {"x": 7}),
    ]


def test_an_error_event_gets_the_block_error_and_the_error_still_propagates() -> None:
    rec = Recorder()
    loop = df.Loop(df.Sequential(add_one, fail_at_three, name="body"), times="n", name="loop")
    prog = df.compile(loop, hooks=[rec])
    with pytest.raises(df.BlockError) as caught:
        prog(n=5, x=0)
    error = caught.value
    assert error.path == "loop/fail_at_three" and error.iterations == (("loop", 2),)
    assert rec.events[-1] == ("error", error)
    assert ("block_start", "loop/fail_at_three", {"x": 3}) in rec.events
    assert ("block_end", "loop/fail_at_three", {"x": 3}) not in rec.events
    assert not any(e[0] in ("loop_end", "run_end") for e in rec.events)
    # the interpreter reports the same error to its hooks
    again = Recorder()
    with pytest.raises(df.BlockError):
        Interpreter(prog.with_hooks(again)).run(n=5, x=0)
    assert again.events[-1][0] == "error" and again.events[-1][1].path == "loop/fail_at_three"


def test_bad_inputs_fire_no_event() -> None:
    rec = Recorder()
    prog = df.compile(counter(), hooks=[rec])
    with pytest.raises(df.InputError):
        prog(n="three", x=0)
    assert rec.events == []


def test_a_hook_listening_to_one_event_gets_only_that_and_the_source_has_only_its_calls() -> None:
    class Ends(df.Hook):
        def __init__(self) -> None:
            self.seen: list[tuple[str, int]] = []

        def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
            self.seen.append((path, index))

    hook = Ends()
    assert events_of([hook]) == {"iteration_end"}
    prog = df.compile(counter(), hooks=[hook])
    assert ".iteration_end(" in prog.source
    for other in set(EVENTS) - {"iteration_end"}:
        assert f".{other}(" not in prog.source, other
    prog(n=3, x=0)
    assert hook.seen == [("loop", 0), ("loop", 1), ("loop", 2)]


def test_duck_typed_hooks_work_too() -> None:
    class Starts:
        def __init__(self) -> None:
            self.paths: list[str] = []

        def block_start(self, path: str, inputs: Mapping[str, Any]) -> None:
            self.paths.append(path)

    hook = Starts()
    assert listens(hook, "block_start") and not listens(hook, "block_end")
    prog = df.compile(counter(), hooks=[hook])
    prog(n=1, x=0)
    assert hook.paths == ["loop/add_one", "loop/add_one_2"]


def test_with_hooks_shares_the_code_and_leaves_the_original_alone() -> None:
    rec = Recorder()
    prog = df.compile(counter(), hooks=[rec])
    other = Recorder()
    both = prog.with_hooks(other)
    assert type(both) is type(prog) and both.source == prog.source  # no recompiling: same events
    assert both.hooks == (rec, other)
    both(n=1, x=0)
    assert rec.events == other.events and other.events
    rec.events.clear()
    other.events.clear()
    prog(n=1, x=0)
    assert rec.events and other.events == []


def test_with_hooks_on_a_plain_program_compiles_a_variant_once() -> None:
    plain = df.compile(counter())
    first, second = Recorder(), Recorder()
    a, b = plain.with_hooks(first), plain.with_hooks(second)
    assert type(a) is type(b) and type(a) is not type(plain)  # one variant, cached
    assert "_hooks" not in plain.source and "_hooks.block_start" in a.source
    assert a(n=2, x=0) == plain(n=2, x=0) == {"x": 4}
    assert first.events and second.events == []
    assert plain.hooks == ()


def test_with_hooks_programs_pickle_with_their_hooks() -> None:
    prog = df.compile(counter()).with_hooks(Trace())
    loaded = pickle.loads(pickle.dumps(prog))
    assert loaded(n=2, x=0) == {"x": 4}
    (trace,) = loaded.hooks
    assert isinstance(trace, Trace) and [e["name"] for e in trace.events][-1] == "loop"


def test_hooks_on_several_threads_do_not_mix() -> None:
    prog = df.compile(df.Loop(add, over="ts", item="t", name="loop"))
    results: dict[int, list[tuple[Any, ...]]] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            rec = Recorder()
            mine = prog.with_hooks(rec)
            for _ in range(20):
                assert mine(ts=[k] * 5, x=0) == {"x": 5 * k}
            results[k] = rec.events
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for k, events in results.items():
        items = {e[3] for e in events if e[0] == "iteration_start"}
        assert items == {k}
        assert sum(e[0] == "run_start" for e in events) == 20


def test_one_trace_shared_by_threads_keeps_each_threads_spans() -> None:
    trace = Trace()
    prog = df.compile(counter(), hooks=[trace])

    alive = threading.Barrier(4)  # no thread ends before all ran: thread idents are reused

    def work() -> None:
        for _ in range(10):
            prog(n=3, x=0)
        alive.wait()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = trace.events
    assert len({e["tid"] for e in events}) == 4
    blocks = [e for e in events if e["cat"] == "block"]
    assert len(blocks) == 4 * 10 * 3 * 2
    assert {e["args"]["iterations"]["loop"] for e in blocks} == {0, 1, 2}


def test_trace_json_is_a_chrome_trace() -> None:
    trace = Trace()
    prog = df.compile(counter()).with_hooks(trace)
    prog(n=2, x=0)
    data = json.loads(trace.json())
    events = data["traceEvents"]
    assert {e["ph"] for e in events} == {"X"}
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert e["dur"] >= 0
        by_cat.setdefault(e["cat"], []).append(e)
    assert [e["name"] for e in by_cat["run"]] == ["loop"]
    assert [e["name"] for e in by_cat["loop"]] == ["loop"]
    assert [e["name"] for e in by_cat["iteration"]] == ["loop[0]", "loop[1]"]
    assert [(e["name"], e["args"]["iterations"]) for e in by_cat["block"]] == [
        ("loop/add_one", {"loop": 0}),
        ("loop/add_one_2", {"loop": 0}),
        ("loop/add_one", {"loop": 1}),
        ("loop/add_one_2", {"loop": 1}),
    ]
    run, block = by_cat["run"][0], by_cat["block"][0]  # spans nest: the run contains its blocks
    assert run["ts"] <= block["ts"] and block["ts"] + block["dur"] <= run["ts"] + run["dur"]


def test_trace_records_an_error_and_saves(tmp_path: Any) -> None:
    trace = Trace()
    loop = df.Loop(df.Sequential(add_one, fail_at_three, name="body"), times="n", name="loop")
    prog = df.compile(loop, hooks=[trace])
    with pytest.raises(df.BlockError):
        prog(n=5, x=0)
    (error,) = [e for e in trace.events if e["cat"] == "error"]
    assert error["ph"] == "i" and error["args"]["path"] == "loop/fail_at_three"
    prog(n=2, x=0)  # the spans the failure left open were closed: the next run nests as it should
    assert trace.events[-1]["cat"] == "run"
    target = tmp_path / "trace.json"
    trace.save(target)
    assert json.loads(target.read_text())["traceEvents"] == trace.events


def test_progress_true_runs_through_a_progress_bar_hook(capsys: pytest.CaptureFixture[str]) -> None:
    inner = df.Loop(add_one, times="m", progress=True, name="inner")
    outer = df.Loop(inner, times="n", progress=True, name="outer")
    prog = df.compile(outer)
    assert any(isinstance(h, ProgressBar) for h in prog.hooks)
    assert prog(n=3, m=4, x=0) == {"x": 12}
    err = capsys.readouterr().err
    assert "outer" in err and "3/3" in err and "outer/inner" in err
    # the outermost bar is kept, the nested ones cleared: its final state is the last line
    assert err.rstrip().splitlines()[-1].lstrip("\r").startswith("outer")


def test_with_progress_switches_the_bars_per_call_without_rebuilding(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flagged = df.compile(df.Loop(add_one, times="n", progress=True, name="steps"))
    quiet = flagged.with_progress(False)
    assert not any(isinstance(h, ProgressBar) for h in quiet.hooks)
    assert quiet.source == flagged.source  # the same compiled code, the bar's events unused
    assert quiet(n=5, x=0) == flagged(n=5, x=0) == {"x": 5}
    err = capsys.readouterr().err
    assert err.count("5/5") == 1  # only the flagged program drew a bar
    loud = quiet.with_progress()  # back on: the progress=True loop again
    (bar,) = [h for h in loud.hooks if isinstance(h, ProgressBar)]
    assert bar.loops == frozenset({"steps"})
    assert loud(n=4, x=0) == {"x": 4}
    assert "4/4" in capsys.readouterr().err
    # a program compiled without bars gets one for every loop, and progress=False at compile drops them
    plain = df.compile(df.Loop(add_one, times="n", name="plain"))
    assert plain.with_progress()(n=2, x=0) == {"x": 2}
    assert "plain" in capsys.readouterr().err
    silent = df.compile(df.Loop(add_one, times="n", progress=True, name="steps"), progress=False)
    assert silent.hooks == () and silent(n=3, x=0) == {"x": 3}
    assert capsys.readouterr().err == ""
    # hooks given before are kept when the bars change, and the choice survives pickling
    rec = Recorder()
    traced = flagged.with_hooks(rec).with_progress(False)
    assert rec in traced.hooks and not any(isinstance(h, ProgressBar) for h in traced.hooks)
    traced(n=1, x=0)
    assert any(e[0] == "block_start" for e in rec.events)
    again = pickle.loads(pickle.dumps(flagged.with_progress(False)))
    assert not any(isinstance(h, ProgressBar) for h in again.hooks)


def test_fused_calls_report_each_member() -> None:
    torch = pytest.importorskip("torch")
    from test_fuse import Denoiser, denoise_loop, inputs

    rec = Recorder()
    prog = df.compile(denoise_loop(Denoiser()), fuse=True, hooks=[rec])
    assert prog.fused
    prog(**inputs())
    starts = [e[1] for e in rec.events if e[0] == "block_start"]
    assert "denoise/step/cond" in starts and "denoise/step/uncond" in starts
    ends = [e for e in rec.events if e[0] == "block_end" and e[1] == "denoise/step/uncond"]
    assert ends and all(isinstance(e[2]["noise"], torch.Tensor) for e in ends)


def test_streamed_programs_fire_events_around_the_stream_code(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from test_cuda_streams import INPUTS, RT, guided_loop

    RT.reset()
    monkeypatch.setattr(dfgraph.cuda, "RUNTIME", RT)
    serial = df.compile(guided_loop())(**INPUTS)
    rec = Recorder()
    prog = df.compile(guided_loop(), device="cuda", hooks=[rec])
    assert "with _rt.on(" in prog.source and "_hooks.block_start(" in prog.source
    assert prog(**INPUTS) == serial
    n = len(INPUTS["timesteps"])  # type: ignore[arg-type]
    assert sum(e[0] == "iteration_end" for e in rec.events) == n
    assert sum(e[0] == "block_end" for e in rec.events) == n * len(prog.schedule.bodies["loop"].nodes)


def test_captured_segments_are_one_block_event_each() -> None:
    pytest.importorskip("torch")
    from test_capture import FakeCapture, Stepper, inputs, loop

    fake = FakeCapture()
    dfgraph.cuda.RUNTIME = fake  # type: ignore[assignment]
    try:
        rec = Recorder()
        prog = df.compile(loop(Stepper()), device="cuda", capture=True, hooks=[rec])
        prog(**inputs(steps=3))
    finally:
        dfgraph.cuda.RUNTIME = None
    starts = [e[1] for e in rec.events if e[0] == "block_start"]
    assert starts == ["denoise/scale + denoise/predict", "denoise/step"] * 3
    assert sum(e[0] == "iteration_end" for e in rec.events) == 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(counter_loops())
def test_iteration_events_count_as_the_interpreter_runs_them(case: CounterCase) -> None:
    class Count(df.Hook):
        def __init__(self) -> None:
            self.n = 0
            self.indices: list[tuple[str, int]] = []

        def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
            self.n += 1
            self.indices.append((path, index))

    compiled, interpreted = Count(), Count()
    prog = df.compile(case.block, hooks=[compiled])
    assert prog(**case.inputs, output="x") == case.expected
    assert Interpreter(df.compile(case.block, hooks=[interpreted])).run(**case.inputs, output="x") == (
        case.expected
    )
    assert compiled.indices == interpreted.indices
    assert compiled.n == interpreted.n


def test_the_readme_hooks_example_runs() -> None:
    from test_readme import python_blocks

    (example,) = [b for b in python_blocks() if "class Steps(df.Hook)" in b]
    namespace: dict[str, Any] = {}
    exec(example, namespace)  # asserts inside
    assert namespace["prog"].hooks == (namespace["steps"],)
    assert "_hooks.iteration_end(" in namespace["prog"].source


def test_the_hook_benchmark_runs_the_code_from_before_hooks() -> None:
    from benchmarks import overhead

    variants = overhead.hook_case(steps=7)  # raises if the no-hook source is not the one before hooks
    assert overhead.results_of(variants) == dict.fromkeys(variants, 14)


def test_loops_nested_past_one_function_pass_the_hooks_to_their_helpers() -> None:
    nest: Any = add_one
    for k in range(14):  # deeper than one function nests: the inner loops become helper functions
        nest = df.Loop(nest, times=f"n{k}", name=f"l{k}")
    compiled, interpreted = Recorder(), Recorder()
    prog = df.compile(nest, hooks=[compiled])
    assert "def _loop_" in prog.source
    counts = {f"n{k}": 1 + k % 2 for k in range(14)}
    assert prog(x=0, **counts) == {"x": 2**7}
    Interpreter(df.compile(nest, hooks=[interpreted])).run(x=0, **counts)
    assert compiled.events == interpreted.events
    assert sum(e[0] == "block_end" for e in compiled.events) == 2**7

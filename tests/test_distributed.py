"""dfgraph.distributed without Ray: map_calls in this process (workers=0, or Ray not installed), the checks
on the driver, errors per job, result files and `dfgraph run` (subprocesses). The Ray path:
test_distributed_ray.py."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph import distributed
from dfgraph.distributed import BatchError, WorkerError, iter_calls, map_calls
from dfgraph.testing import CounterCase, counter_loops
from dfgraph_blocks.examples import counter_two

CALLS: list[int] = []


@df.block(outputs="y")
def square(x: int) -> int:
    CALLS.append(x)
    if x == 13:
        raise ValueError("unlucky 13")
    return x * x


def build_square() -> Any:
    return square


def build_counter() -> Any:
    return df.compile(counter_two)


@pytest.fixture(autouse=True)
def _no_calls_yet() -> None:
    CALLS.clear()


# -- results ------------------------------------------------------------------------------------------------


def test_results_equal_serial_calls_in_job_order() -> None:
    jobs = [{"num_steps": n, "x": x} for n, x in [(3, 0), (0, 5), (10, -2), (1, 1)]]
    serial = [df.compile(counter_two)(**job, output="x") for job in jobs]
    assert map_calls(build_counter, jobs, workers=0, output="x", progress=False) == serial == [6, 5, 18, 3]
    everything = map_calls(build_counter, jobs, workers=0, progress=False)
    assert everything == [{"x": x} for x in serial]  # output=None: the mapping of every output
    assert map_calls(build_counter, [], workers=0, progress=False) == []


@settings(max_examples=25, deadline=None)
@given(counter_loops(max_depth=2), st.lists(st.integers(-1000, 1000), min_size=1, max_size=4))
def test_results_of_random_counter_loops_are_their_expected_values(
    case: CounterCase, shifts: list[int]
) -> None:
    jobs = [{**case.inputs, "x": case.inputs["x"] + s} for s in shifts]
    results = map_calls(lambda: case.block, jobs, workers=0, output="x", progress=False)
    assert results == [case.expected + s for s in shifts]


def test_build_may_be_a_module_attribute_string_and_return_a_program_or_a_block() -> None:
    jobs = [{"num_steps": 2, "x": 1}]
    assert map_calls("dfgraph_blocks.examples:counter_two", jobs, workers=0, output="x", progress=False) == [
        5
    ]
    assert map_calls(f"{__name__}:build_counter", jobs, workers=0, output="x", progress=False) == [5]
    assert map_calls(lambda: counter_two, jobs, workers=0, output="x", progress=False) == [5]
    program = distributed.load_build("dfgraph_blocks.examples:counter_two")
    assert isinstance(program, df.Program) and program(num_steps=1, x=0, output="x") == 2


def test_a_block_instead_of_a_build_function_is_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"zero-argument function .* build=lambda: graph"):
        map_calls(counter_two, [{"num_steps": 1, "x": 0}], workers=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="returned a int, not a block or program"):
        map_calls(lambda: 42, [{}], workers=0)
    with pytest.raises(ValueError, match="expected MODULE:ATTR"):
        map_calls("dfgraph_blocks.examples", [{}], workers=0)


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="errors= takes 'raise' or 'return'"):
        map_calls(build_square, [{"x": 1}], workers=0, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be >= 0"):
        map_calls(build_square, [{"x": 1}], workers=-1)
    assert CALLS == []


def test_a_built_program_pickles_as_its_definition_and_computes_the_same() -> None:
    program = distributed.load_build(build_counter)
    again = pickle.loads(pickle.dumps(program))
    assert again is not program and again(num_steps=4, x=1, output="x") == program(
        num_steps=4, x=1, output="x"
    )
    assert pickle.loads(pickle.dumps(build_counter)) is build_counter  # a module-level build: by reference


# -- errors --------------------------------------------------------------------------------------------------


def test_a_failing_job_keeps_the_others_and_one_summary_lists_every_failure() -> None:
    jobs = [{"x": 2}, {"x": 13}, {"x": 3}, {"x": "four"}]
    with pytest.raises(BatchError) as caught:
        map_calls(build_square, jobs, workers=0, output="y", progress=False)
    error = caught.value
    assert error.failed == (1, 3)
    assert error.results[0] == 4 and error.results[2] == 9
    failure = error.results[1]
    assert isinstance(failure, df.BlockError) and failure.path == "square"
    assert str(failure) == "job 1: block 'square' raised ValueError: unlucky 13"
    assert isinstance(failure.__cause__, ValueError)
    assert isinstance(error.results[3], df.InputError)
    assert str(error).splitlines() == [
        "2 of 4 jobs failed:",
        "  job 1: block 'square' raised ValueError: unlucky 13",
        "  job 3: square: input 'x' must be int (read by square.x), got str: 'four'",
    ]
    returned = map_calls(build_square, jobs, workers=0, output="y", progress=False, errors="return")
    assert returned[0] == 4 and returned[2] == 9
    assert [type(r) for r in returned[1::2]] == [df.BlockError, df.InputError]


def test_bad_jobs_are_rejected_before_any_job_runs_with_their_index() -> None:
    jobs: list[Any] = [
        {"x": 1},
        {"x": 2.5},
        {},
        {"x": 3, "z": 0},
        ["x", 4],
        {"x": 5, "output": "y"},
        {"x": 6},
    ]
    pairs = list(iter_calls(build_square, jobs, workers=0, output="y", progress=False))
    order = [k for k, _ in pairs]
    assert order == [1, 2, 3, 4, 5, 0, 6]  # rejected on the driver, before the good ones ran
    errors = {k: str(r) for k, r in pairs if isinstance(r, Exception)}
    assert all(isinstance(r, df.InputError) for _, r in pairs if isinstance(r, Exception))
    assert errors[1] == "job 1: square: input 'x' must be int (read by square.x), got float: 2.5"
    assert errors[2].startswith("job 2: square: missing input 'x' (int), read by square.x")
    assert errors[3].startswith("job 3: square: unknown input 'z'")
    assert errors[4] == "job 4: a job is a mapping of input names to values, got ['x', 4]"
    assert errors[5].startswith("job 5: square: unknown input 'output'")
    assert CALLS == [1, 6]  # never called for a rejected job


def test_iter_calls_numbers_the_jobs_as_told() -> None:
    pairs = list(
        iter_calls(
            build_square, [{"x": 3}, {"x": "no"}], numbers=[7, 9], workers=0, output="y", progress=False
        )
    )
    assert pairs[0][0] == 9 and str(pairs[0][1]).startswith("job 9: ")
    assert pairs[1] == (7, 9)
    with pytest.raises(ValueError, match="2 jobs but 1 numbers"):
        list(iter_calls(build_square, [{"x": 3}, {"x": 4}], numbers=[0], workers=0))


def test_without_ray_workers_run_in_this_process_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    assert distributed.ray_module() is None
    with pytest.warns(RuntimeWarning, match=r"Ray is not installed, so the 2 jobs run in this process"):
        results = map_calls(build_square, [{"x": 2}, {"x": 3}], workers=4, output="y", progress=False)
    assert results == [4, 9] and CALLS == [2, 3]


def test_the_progress_bar_counts_the_batch(capsys: pytest.CaptureFixture[str]) -> None:
    map_calls(build_square, [{"x": k} for k in range(3)], workers=0, output="y", progress=True)
    err = capsys.readouterr().err
    assert "square: 100%" in err and "3/3" in err
    map_calls(build_square, [{"x": 1}], workers=0, output="y", progress=False)
    assert capsys.readouterr().err == ""


def test_worker_and_batch_errors_are_graph_errors() -> None:
    assert issubclass(WorkerError, df.GraphError) and issubclass(BatchError, df.GraphError)


# -- result files ------------------------------------------------------------------------------------------


def test_plain_results_are_json_and_an_interrupted_write_is_not_a_result(tmp_path: Path) -> None:
    path = distributed.save_result(tmp_path, 3, {"x": 1, "names": ["a"]})
    assert path == tmp_path / "000003.json" and json.loads(path.read_text()) == {"x": 1, "names": ["a"]}
    assert json.loads(distributed.save_result(tmp_path, 4, 2.5).read_text()) == 2.5
    (tmp_path / ".000005.json.partial").write_text("{")
    (tmp_path / "notes.txt").write_text("")
    assert distributed.done_jobs(tmp_path) == {3, 4}
    assert distributed.done_jobs(tmp_path / "absent") == set()
    with pytest.raises(TypeError, match=r"job 6: cannot write 'x' \(object\)"):
        distributed.save_result(tmp_path, 6, {"x": object()})
    assert distributed.done_jobs(tmp_path) == {3, 4}


def test_tensors_are_safetensors_beside_plain_values_and_images_are_png(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors = pytest.importorskip("safetensors.torch")
    image_module = pytest.importorskip("PIL.Image")
    latents = torch.arange(6.0).reshape(2, 3)
    path = distributed.save_result(tmp_path, 0, {"latents": latents.t(), "image": latents[0], "steps": 4})
    assert path.name == "000000.safetensors"
    loaded = safetensors.load_file(path)
    assert torch.equal(loaded["latents"], latents.t()) and torch.equal(loaded["image"], latents[0])
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        assert json.loads(f.metadata()["steps"]) == 4
    alone = distributed.save_result(tmp_path, 1, latents, name="latents")
    assert torch.equal(safetensors.load_file(alone)["latents"], latents)
    picture = image_module.new("RGB", (4, 2), (255, 0, 0))
    png = distributed.save_result(tmp_path, 2, picture)
    assert png.name == "000002.png" and image_module.open(png).getpixel((3, 1)) == (255, 0, 0)


def test_tensors_go_to_torch_save_without_safetensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # `from safetensors.torch import` fails
    path = distributed.save_result(tmp_path, 0, {"latents": torch.ones(2), "steps": 4})
    assert path.name == "000000.pt"
    loaded = torch.load(path)
    assert torch.equal(loaded["latents"], torch.ones(2)) and loaded["steps"] == 4
    assert distributed.done_jobs(tmp_path) == {0}


# -- dfgraph run ---------------------------------------------------------------------------------------------

JOBS_MODULE = """
import dfgraph as df

@df.block(outputs="y")
def square(x: int, log: str = "") -> int:
    if log:
        with open(log, "a") as f:
            f.write(f"{x}\\n")
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x

def build():
    return square
"""


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m dfgraph run ...` in cwd (which holds the module of the jobs)."""
    return subprocess.run(
        [sys.executable, "-m", "dfgraph", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )


def write_jobs(path: Path, jobs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs), encoding="utf-8")
    return path


def test_run_writes_a_file_per_job_resumes_and_fails_for_a_failed_job(tmp_path: Path) -> None:
    (tmp_path / "jobsmod.py").write_text(textwrap.dedent(JOBS_MODULE))
    log = tmp_path / "calls.log"
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{"x": x, "log": str(log)} for x in (1, 2, -3, 4)])
    out = tmp_path / "out"
    done = run_cli(tmp_path, "jobsmod:build", "--jobs", str(jobs), "--out", str(out), "-q")
    assert done.returncode == 1, done.stderr
    assert "error: job 2: block 'square' raised ValueError: negative -3" in done.stderr
    assert "dfgraph run: 4 jobs: 3 written to" in done.stderr and "0 already there, 1 failed" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["000000.json", "000001.json", "000003.json"]
    assert [json.loads((out / f"00000{k}.json").read_text()) for k in (0, 1, 3)] == [
        {"y": y} for y in (1, 4, 16)
    ]
    # resume a half-written folder: a finished result is kept, an interrupted write is redone
    (out / "000001.json").unlink()
    (out / ".000001.json.partial").write_text("")
    (out / "000000.json").write_text("100\n")  # not recomputed: its file exists
    log.write_text("")
    fixed = write_jobs(tmp_path / "jobs.jsonl", [{"x": x, "log": str(log)} for x in (1, 2, 3, 4)])
    again = run_cli(tmp_path, "jobsmod:build", "--jobs", str(fixed), "--out", str(out), "-q")
    assert again.returncode == 0, again.stderr
    assert log.read_text().split() == ["2", "3"]  # only the jobs without a result ran
    assert [json.loads((out / f"00000{k}.json").read_text()) for k in range(4)] == [
        100,
        {"y": 4},
        {"y": 9},
        {"y": 16},
    ]
    assert "4 jobs: 2 written to" in again.stderr and "2 already there, 0 failed" in again.stderr


def test_run_with_output_and_bad_usage(tmp_path: Path) -> None:
    (tmp_path / "jobsmod.py").write_text(textwrap.dedent(JOBS_MODULE))
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{"x": 5}, {"x": "five"}])
    done = run_cli(tmp_path, "jobsmod:build", "--jobs", str(jobs), "--out", "o", "--output", "y", "-q")
    assert done.returncode == 1
    assert json.loads((tmp_path / "o" / "000000.json").read_text()) == 25  # one output: the bare value
    assert "error: job 1: square: input 'x' must be int" in done.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n{x: 2}\n')
    broken = run_cli(tmp_path, "jobsmod:build", "--jobs", str(bad), "--out", "o")
    assert broken.returncode == 2 and f"--jobs {bad}:2: not JSON" in broken.stderr
    missing = run_cli(tmp_path, "jobsmod:nothing", "--jobs", str(jobs), "--out", "o")
    assert missing.returncode == 2 and "jobsmod:nothing: error: AttributeError" in missing.stderr

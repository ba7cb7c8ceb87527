"""dfgraph.distributed on a local Ray of 2 CPUs (one `ray.init` for the module): results equal serial
calls, per-job errors, jobs rejected on the driver, a killed worker replaced and its job retried, and
`dfgraph run --workers 2` resuming a half-written folder. Needs the [ray] extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dfgraph as df
from dfgraph.distributed import WorkerError, map_calls
from dfgraph_blocks.examples import counter_two

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    # the builds below are shipped by reference: the workers import this module from its folder
    path = os.pathsep.join([str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield
    ray.shutdown()


@df.block(outputs="y")
def logged_square(x: int, log: str) -> int:
    """x * x, appending x to the file `log` (which process ran which job is visible from the driver)."""
    with open(log, "a") as f:
        f.write(f"{x}\n")
    if x == 13:
        raise ValueError("unlucky 13")
    return x * x


def build_square() -> Any:
    return logged_square


@df.block(outputs="y")
def crash(x: int, marker: str) -> int:
    """Kills its worker process: x == 3 on the first attempt only (keyed by the marker file), x < 0 always."""
    if x == 3 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    if x < 0:
        os._exit(1)
    return x * 10


def build_crash() -> Any:
    return crash


def build_on_the_driver_only() -> Any:
    """Builds where DFGRAPH_TEST_DRIVER is set: in the driver, not in workers started before it was."""
    if "DFGRAPH_TEST_DRIVER" not in os.environ:
        raise RuntimeError("no such device here")
    return logged_square


def build_tiny_text2img() -> Any:
    """Tiny text2img taking a seed: the generator and the prompt embeddings made from it in the graph."""
    import torch

    from dfgraph_blocks.diffusion import text2img, tiny

    @df.block(outputs=("generator", "prompt_embeds", "negative_prompt_embeds"))
    def seeded(seed: int) -> tuple[Any, Any, Any]:  # a generator and two embeddings
        prompt, negative = tiny.prompt_embeddings(seed)
        return torch.Generator().manual_seed(seed), prompt, negative

    graph = text2img(unet=tiny.unet(), scheduler=tiny.scheduler("dpm++"), vae=tiny.vae())
    return df.compile(df.Sequential(seeded, graph, name="seeded_text2img"), fuse=True)


def test_counter_results_equal_serial_calls_on_an_existing_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_init(*args: object, **kwargs: object) -> None:
        raise AssertionError("ray.init called although Ray is initialized")

    monkeypatch.setattr(ray, "init", no_init)  # the module's Ray is used as it is
    jobs = [{"num_steps": n, "x": x} for n, x in [(3, 0), (0, 5), (10, -2), (1, 1), (7, 7)]]
    serial = [df.compile(counter_two)(**job, output="x") for job in jobs]
    build = "dfgraph_blocks.examples:counter_two"
    assert map_calls(build, jobs, workers=2, output="x", progress=False) == serial


def test_failing_and_mistyped_jobs_on_ray(tmp_path: Path) -> None:
    log = str(tmp_path / "calls.log")
    jobs: list[dict[str, Any]] = [{"x": x, "log": log} for x in (2, 13, 3)]
    jobs.insert(1, {"x": "four", "log": log})
    results = map_calls(build_square, jobs, workers=2, output="y", progress=False, errors="return")
    assert results[0] == 4 and results[3] == 9
    mistyped = results[1]
    assert isinstance(mistyped, df.InputError)
    assert str(mistyped) == (
        "job 1: logged_square: input 'x' must be int (read by logged_square.x), got str: 'four'"
    )
    failed = results[2]
    assert isinstance(failed, df.BlockError) and failed.path == "logged_square"
    assert str(failed) == "job 2: block 'logged_square' raised ValueError: unlucky 13"
    assert isinstance(failed.__cause__, ValueError) and str(failed.__cause__) == "unlucky 13"
    shipped = sorted(int(x) for x in Path(log).read_text().split())
    assert shipped == [2, 3, 13]  # the mistyped job was rejected on the driver, never shipped


def test_a_killed_worker_is_replaced_and_its_job_retried(tmp_path: Path) -> None:
    marker = tmp_path / "crashed"
    jobs = [{"x": x, "marker": str(marker)} for x in range(6)]
    jobs.append({"x": -1, "marker": str(marker)})
    results = map_calls(build_crash, jobs, workers=2, output="y", progress=False, retries=1, errors="return")
    assert marker.exists()  # job 3 killed its first worker
    assert results[:6] == [0, 10, 20, 30, 40, 50]  # job 3 retried on a fresh worker, and the others kept
    dead = results[6]
    assert isinstance(dead, WorkerError)
    assert str(dead).startswith("job 6: its worker died on each of 2 attempts")


def test_workers_that_cannot_build_stop_the_batch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DFGRAPH_TEST_DRIVER", "1")  # the workers' environment is the one Ray started with
    with pytest.raises(
        WorkerError, match=r"a worker could not build the program: (?s:.*)no such device here"
    ):
        map_calls(
            build_on_the_driver_only, [{"x": 1, "log": str(tmp_path / "log")}], workers=1, progress=False
        )
    assert not (tmp_path / "log").exists()


def test_tiny_text2img_with_seeds_equals_serial_calls() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    jobs = [{"seed": s, "num_inference_steps": 2, "height": 64, "width": 64} for s in (0, 1, 2)]
    program = build_tiny_text2img()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers run torch (Ray sets OMP_NUM_THREADS=1): the same sums
    try:
        serial = [program(**job, output=["latents", "image"]) for job in jobs]
    finally:
        torch.set_num_threads(threads)
    results = map_calls(build_tiny_text2img, jobs, workers=2, output=["latents", "image"], progress=False)
    assert [sorted(r) for r in results] == [["image", "latents"]] * 3
    for got, want in zip(results, serial, strict=True):
        assert got["latents"].shape == (1, 4, 8, 8) and got["image"].shape == (1, 3, 64, 64)
        assert torch.equal(got["latents"], want["latents"]) and torch.equal(got["image"], want["image"])
    assert not torch.equal(results[0]["latents"], results[1]["latents"])  # the seeds differ


JOBS_MODULE = """
import dfgraph as df

@df.block(outputs="y")
def square(x: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"{x}\\n")
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x
"""


ARGS = ("--jobs", "jobs.jsonl", "--out", "out", "--workers", "2", "-q")


def test_run_on_workers_resumes_a_half_written_folder(tmp_path: Path) -> None:
    (tmp_path / "jobsmod.py").write_text(JOBS_MODULE)
    log = tmp_path / "calls.log"
    lines = [json.dumps({"x": x, "log": str(log)}) for x in (1, 2, 3, -4, 5)]
    (tmp_path / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "000000.json").write_text('{"y": 1}\n')  # finished before the interruption
    (out / "000002.json").write_text('{"y": 9}\n')
    (out / ".000001.json.partial").write_text('{"y"')  # interrupted while writing
    done = subprocess.run(
        [sys.executable, "-m", "dfgraph", "run", "jobsmod:square", *ARGS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    assert done.returncode == 1, done.stderr
    assert "error: job 3: block 'square' raised ValueError: negative -4" in done.stderr
    assert "5 jobs: 2 written to out, 2 already there, 1 failed" in done.stderr
    assert sorted(int(x) for x in log.read_text().split()) == [-4, 2, 5]  # only the jobs without a result
    results = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert results == {f"00000{k}.json": {"y": y} for k, y in [(0, 1), (1, 4), (2, 9), (4, 25)]}

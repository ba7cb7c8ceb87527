"""dfgraph.distributed.map_calls side by side with a serial loop (needs the [ray] and [diffusion] extras).

    python -m benchmarks.distributed [--jobs 32] [--steps 4] [--size 64] [--trivial-jobs 400]

1. Throughput of tiny text2img (one seed per job): a serial loop over one compiled program, map_calls in
   this process (workers=0), and map_calls on 1 and 2 Ray workers; the serial loop both with torch's
   default threads and on one thread, as each worker runs it.
2. The per-job overhead of the Ray path with a trivial program (x + 1) on one worker, beside a serial call.

Each batch reports its total, the time to its first result (for Ray: starting the workers, each of which
imports torch and diffusers, builds and compiles, then one job) and the rate after it (the steady state).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dfgraph as df
from dfgraph.distributed import iter_calls


def tiny_text2img() -> df.Program:
    """Tiny text2img taking a seed (the generator and the prompt embeddings are made from it)."""
    import torch

    from dfgraph_blocks.diffusion import text2img, tiny

    @df.block(outputs=("generator", "prompt_embeds", "negative_prompt_embeds"))
    def seeded(seed: int) -> tuple[Any, Any, Any]:  # a generator and two embeddings
        prompt, negative = tiny.prompt_embeddings(seed)
        return torch.Generator().manual_seed(seed), prompt, negative

    graph = text2img(unet=tiny.unet(), scheduler=tiny.scheduler("dpm++"), vae=tiny.vae())
    return df.compile(df.Sequential(seeded, graph, name="seeded_text2img"), fuse=True)


@df.block(outputs="x")
def add_one(x: int) -> int:
    """The trivial program: one block."""
    return x + 1


def trivial() -> Any:
    """The build of the trivial program."""
    return add_one


def timed(run: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    """Wall seconds of one call `run(*args, **kwargs)`."""
    start = time.perf_counter()
    run(*args, **kwargs)
    return time.perf_counter() - start


def batch(build: Callable[[], Any], jobs: list[dict[str, Any]], workers: int, output: str) -> Batch:
    """One iter_calls batch: total time, time to the first result, and the steady rate after it."""
    start = time.perf_counter()
    stamps = []
    for _, result in iter_calls(build, jobs, workers=workers, output=output, progress=False):
        assert not isinstance(result, Exception), result
        stamps.append(time.perf_counter())
    return Batch(stamps[-1] - start, stamps[0] - start, (len(stamps) - 1) / (stamps[-1] - stamps[0]))


@dataclass(frozen=True)
class Batch:
    """The times of one batch, in seconds, and its jobs per second after the first result."""

    total: float
    first: float
    steady: float


def main(argv: Sequence[str] | None = None) -> None:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("--jobs", type=int, default=32, help="text2img jobs (default 32)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per job (default 4)")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    parser.add_argument("--trivial-jobs", type=int, default=400, help="jobs of the trivial program")
    args = parser.parse_args(argv)

    import ray
    import torch

    # the builds by reference, as `benchmarks.distributed` (not `__main__`, which a worker cannot import)
    from benchmarks.distributed import tiny_text2img, trivial

    started = timed(ray.init, num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init(num_cpus=2): {started:.1f} s (not counted below)")
    size = {"num_inference_steps": args.steps, "height": args.size, "width": args.size}
    jobs = [{"seed": s, **size} for s in range(args.jobs)]
    program = tiny_text2img()
    threads = torch.get_num_threads()
    rows = []
    for n in (threads, 1):  # 1: as each Ray worker runs torch (Ray sets OMP_NUM_THREADS=1)
        torch.set_num_threads(n)
        seconds = timed(lambda: [program(**job, output="latents") for job in jobs])
        rows.append(
            (f"serial loop, torch on {n} thread(s)", Batch(seconds, seconds / len(jobs), len(jobs) / seconds))
        )
    rows.append(("map_calls, workers=0 (1 thread)", batch(tiny_text2img, jobs, 0, "latents")))
    torch.set_num_threads(threads)
    for workers in (1, 2):
        rows.append((f"map_calls, workers={workers} (Ray)", batch(tiny_text2img, jobs, workers, "latents")))
    print(f"\ntiny text2img, {args.jobs} jobs of {args.steps} steps at {args.size} px:")
    print(f"  {'':<36} {'total':>8} {'first result':>13} {'then jobs/s':>12}")
    for label, b in rows:
        print(f"  {label:<36} {b.total:7.2f}s {b.first:12.2f}s {b.steady:12.2f}")

    inputs = [{"x": k} for k in range(args.trivial_jobs)]
    one = df.compile(add_one)
    per_serial = timed(lambda: [one(**job, output="x") for job in inputs]) / len(inputs)
    ray_batch = batch(trivial, inputs, 1, "x")
    per_job = 1 / ray_batch.steady
    print(f"\ntrivial program (x + 1), {len(inputs)} jobs on one Ray worker: {per_job * 1e3:.2f} ms per job")
    print(f"  after the first result ({ray_batch.first:.2f} s); a serial call: {per_serial * 1e6:.1f} µs")
    ray.shutdown()


if __name__ == "__main__":
    main()

"""dfgraph.distributed.map_calls side by side with a serial loop (needs the [ray] and [diffusion] extras).

    python -m benchmarks.distributed [--jobs 32] [--steps 4] [--size 64] [--trivial-jobs 400]

1. Throughput of tiny text2img (one seed per job): a serial loop over one compiled program, map_calls in
   this process (workers=0), and map_calls on 1 and 2 Ray workers. The Ray times are whole calls: they
   include starting the workers, each of which imports torch and diffusers, builds and compiles once
   (the start-up alone is measured as a batch of one job per worker).
2. The per-job overhead of the Ray path with a trivial program (x + 1): one worker, two batch sizes, the
   difference divided by the difference in jobs (start-up cancels out), beside a serial call.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import dfgraph as df
from dfgraph.distributed import map_calls


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


def main(argv: Sequence[str] | None = None) -> None:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("--jobs", type=int, default=32, help="text2img jobs (default 32)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per job (default 4)")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    parser.add_argument("--trivial-jobs", type=int, default=400, help="jobs of the trivial program")
    args = parser.parse_args(argv)

    import ray

    # the builds by reference, as `benchmarks.distributed` (not `__main__`, which a worker cannot import)
    from benchmarks.distributed import tiny_text2img, trivial

    started = timed(ray.init, num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init(num_cpus=2): {started:.1f} s (not counted below)")
    size = {"num_inference_steps": args.steps, "height": args.size, "width": args.size}
    jobs = [{"seed": s, **size} for s in range(args.jobs)]
    quiet = {"output": "latents", "progress": False}
    program = tiny_text2img()
    serial = timed(lambda: [program(**job, output="latents") for job in jobs])
    rows = [("serial loop (one compiled program)", serial)]
    rows.append(
        ("map_calls, workers=0 (in process)", timed(map_calls, tiny_text2img, jobs, workers=0, **quiet))
    )
    for workers in (1, 2):
        startup = timed(map_calls, tiny_text2img, jobs[:workers], workers=workers, **quiet)
        total = timed(map_calls, tiny_text2img, jobs, workers=workers, **quiet)
        rows.append((f"map_calls, workers={workers} (Ray; start-up {startup:.1f} s)", total))
    print(f"\ntiny text2img, {args.jobs} jobs of {args.steps} steps at {args.size} px:")
    for label, seconds in rows:
        rate = args.jobs / seconds
        print(f"  {label:<48} {seconds:7.2f} s  {rate:6.2f} jobs/s  {serial / seconds:5.2f}x serial")

    small, large = args.trivial_jobs // 10, args.trivial_jobs
    inputs = [{"x": k} for k in range(large)]
    one = df.compile(add_one)
    per_serial = timed(lambda: [one(**job, output="x") for job in inputs]) / large
    t_small = timed(map_calls, trivial, inputs[:small], workers=1, output="x", progress=False)
    t_large = timed(map_calls, trivial, inputs, workers=1, output="x", progress=False)
    per_job = (t_large - t_small) / (large - small)
    print(f"\ntrivial program (x + 1), one worker: {per_job * 1e3:.2f} ms per job on Ray")
    print(f"  ({small} jobs {t_small:.2f} s, {large} jobs {t_large:.2f} s)")
    print(f"  a serial call of the same program: {per_serial * 1e6:.1f} µs")
    ray.shutdown()


if __name__ == "__main__":
    main()

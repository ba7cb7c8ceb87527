"""Run every benchmark case, print the tables and write RESULTS.md (`make bench`).

    python -m benchmarks [--quick] [--out PATH] [--cases 1,2,3,4,5,6,7,8 | scaling,...] [--max-blocks N]

1 loop overhead, 2 sequential overhead (benchmarks.overhead), 3 checker scaling (benchmarks.scaling),
4 tiny text2img end to end on the CPU (benchmarks.end_to_end), 5 the same on a GPU (benchmarks.gpu),
6 the cost of hooks: none, a no-op hook on one event, on every event (benchmarks.overhead), 7 tiny SDXL
from a prompt against StableDiffusionXLPipeline and Modular Diffusers at 1 and 2 torch threads, 8 diffusers'
StableDiffusionXLAutoBlocks run by ModularPipeline and by dfgraph (`from_modular`, unfused and fused).
A case that fails is reported as failed (with the error) and the others still run.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import end_to_end, gpu, overhead, scaling
from benchmarks.results import DEFAULT_RESULTS, CaseResult, render_results, write_results
from benchmarks.timing import commit, machine, quiet


@dataclass(frozen=True)
class Sizes:
    """The sizes of one run: full (the issue's) or quick (smoke)."""

    steps: int = 100_000
    calls: int = 10_000
    overhead_repeats: int = 15
    max_blocks: int = 100_000
    scaling_repeats: int = 5
    e2e_steps: int = 20
    e2e_repeats: int = 10
    gpu_steps: int = 20
    gpu_repeats: int = 10


FULL = Sizes()
QUICK = Sizes(1_000, 100, 3, 1_000, 2, 3, 2, 3, 2)

TITLES = {
    1: "Loop overhead",
    2: "Sequential overhead",
    3: "Checker scaling",
    4: "End to end (tiny text2img, CPU)",
    5: "GPU: streams, fusion, CUDA-graph capture",
    6: "Hook overhead",
    7: "End to end (tiny SDXL text2img, CPU)",
    8: "From Modular Diffusers (tiny SDXL text2img, CPU)",
}


CASE_NAMES = {
    "loop": 1,
    "sequential": 2,
    "scaling": 3,
    "end_to_end": 4,
    "gpu": 5,
    "hooks": 6,
    "sdxl": 7,
    "modular": 8,
}
"""`--cases` also takes these names: `python -m benchmarks --cases scaling` runs case 3."""


def cases(sizes: Sizes, budget: float = scaling.BUDGET) -> dict[int, Callable[[], CaseResult]]:
    """Each case number with the call that runs it at `sizes`."""
    return {
        1: lambda: overhead.loop_overhead(sizes.steps, sizes.overhead_repeats),
        2: lambda: overhead.sequential_overhead(20, sizes.calls, sizes.overhead_repeats),
        3: lambda: scaling.checker_scaling(sizes.max_blocks, sizes.scaling_repeats, budget),
        4: lambda: end_to_end.end_to_end(sizes.e2e_steps, sizes.e2e_repeats),
        5: lambda: gpu.gpu(sizes.gpu_steps, sizes.gpu_repeats),
        6: lambda: overhead.hook_overhead(sizes.steps, sizes.overhead_repeats),
        7: lambda: end_to_end.sdxl_end_to_end(sizes.e2e_steps, sizes.e2e_repeats),
        8: lambda: end_to_end.modular_end_to_end(sizes.e2e_steps, max(1, sizes.e2e_repeats * 3 // 5)),
    }


def run_case(number: int, run: Callable[[], CaseResult]) -> CaseResult:
    """Run one case; a failure becomes a result that says so (met: no) instead of stopping the run."""
    try:
        return run()
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip().replace("\n", " ")
        traceback.print_exc()
        return CaseResult(number, TITLES[number], "see the case", False, f"failed: {detail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen cases, print each as it finishes, write RESULTS.md; exit status 1 if one failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: checks that everything runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="where to write RESULTS.md")
    parser.add_argument("--cases", default="1,2,3,4,5,6,7,8", help="case numbers or names, comma-separated")
    parser.add_argument("--max-blocks", type=int, default=None, help="largest graph of case 3")
    parser.add_argument("--budget", type=float, default=scaling.BUDGET, help="case 3: seconds per run")
    args = parser.parse_args(argv)
    try:
        chosen = [CASE_NAMES.get(c.strip()) or int(c) for c in args.cases.split(",") if c.strip()]
    except ValueError:
        names = ", ".join(CASE_NAMES)
        parser.error(f"--cases takes numbers like 1,3,4 or names ({names}), got {args.cases!r}")
    unknown = [c for c in chosen if c not in TITLES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; the cases are {sorted(TITLES)}")
    quiet()
    sizes = QUICK if args.quick else FULL
    if args.max_blocks is not None:
        sizes = Sizes(**{**sizes.__dict__, "max_blocks": args.max_blocks})
    here = commit()
    print(f"dfgraph benchmarks ({'quick' if args.quick else 'full'}), commit {here}", flush=True)
    runners = cases(sizes, args.budget)
    results: list[CaseResult] = []
    for number in chosen:
        result = run_case(number, runners[number])
        results.append(result)
        print(f"\n{result.text(here)}", flush=True)
    given = " ".join(argv if argv is not None else sys.argv[1:])
    text = render_results(
        results,
        commit=here,
        machine=machine(),
        quick=args.quick,
        command=f"python -m benchmarks {given}".strip(),
        repeats_note=(
            "Times are wall-clock seconds: the median, fastest and slowest of the repeats, each variant "
            "warmed up first and the variants interleaved round by round (A B C, B C A, ...) so noise "
            "falls on all of them alike; ratios are of medians."
        ),
    )
    path = write_results(text, args.out)
    print(f"\nwrote {path}")
    return 1 if any(r.verdict.startswith("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Call overhead of compiled programs against the same calls written by hand, measured side by side.

    python -m benchmarks.overhead [--quick]

Prints, per case, median/min/max seconds of each variant and the ratio of medians to hand-written.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import dfgraph as df


def measure(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall times of `repeats` runs of fn (one warm-up run first)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def counter_case(steps: int) -> dict[str, Callable[[], Any]]:
    """The guide's two-block counter loop: dfgraph against the same two calls in a Python loop."""

    def inc(x: int) -> int:
        return x + 1

    block = df.block(outputs="x")(inc)
    prog = df.compile(df.Loop(df.Sequential(block, block), times="num_steps"))

    def hand() -> int:
        x = 0
        for _ in range(steps):
            x = inc(x)
            x = inc(x)
        return x

    return {"hand-written": hand, "dfgraph": lambda: prog(num_steps=steps, x=0, output="x")}


def sequence_case(blocks: int, calls: int) -> dict[str, Callable[[], Any]]:
    """`blocks` trivial blocks in a Sequential, the program called `calls` times."""
    namespace: dict[str, Any] = {}
    for k in range(blocks):
        exec(f"def b{k}(x: int) -> int:\n    return x + 1", namespace)
    fns = [namespace[f"b{k}"] for k in range(blocks)]
    prog = df.compile(df.Sequential(*[df.block(outputs="x")(f) for f in fns]))
    body = "".join(f"    x = b{k}(x)\n" for k in range(blocks))
    exec(f"def pipeline(x):\n{body}    return x\n", namespace)
    pipeline = namespace["pipeline"]
    run = prog.__call__  # a bound method: skips CPython's keyword-dict path for instance calls

    def hand() -> None:
        for _ in range(calls):
            pipeline(0)

    def compiled() -> None:
        for _ in range(calls):
            prog(x=0, output="x")

    def hoisted() -> None:
        for _ in range(calls):
            run(x=0, output="x")

    return {"hand-written": hand, "dfgraph": compiled, "dfgraph (run = prog.__call__)": hoisted}


def report(title: str, variants: dict[str, Callable[[], Any]], repeats: int) -> None:
    """Print one table: median, min, max and the ratio of medians to the hand-written variant."""
    results = {name: measure(fn, repeats) for name, fn in variants.items()}
    base = statistics.median(results["hand-written"])
    print(f"\n{title} ({repeats} runs each)")
    print(f"{'variant':32s} {'median s':>10s} {'min s':>10s} {'max s':>10s} {'ratio':>7s}")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:32s} {med:10.5f} {min(times):10.5f} {max(times):10.5f} {med / base:7.2f}")


def commit() -> str:
    """The commit measured (or 'unknown' outside a git checkout)."""
    try:
        git = ["git", "rev-parse", "--short", "HEAD"]
        done = subprocess.run(git, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def main() -> None:
    """Run both cases and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args()
    steps, calls, repeats = (1_000, 100, 3) if args.quick else (100_000, 10_000, 15)
    print(f"dfgraph overhead, commit {commit()}")
    report(f"counter loop: two x->x blocks, {steps} steps", counter_case(steps), repeats)
    report(f"sequence: 20 trivial blocks, {calls} calls", sequence_case(20, calls), repeats)


if __name__ == "__main__":
    main()

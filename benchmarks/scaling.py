"""Case 3: how checking and compiling grow with the graph, from 100 to 100,000 blocks.

    python -m benchmarks.scaling [--quick] [--max-blocks N] [--budget SECONDS]

Four shapes, each built so that a compiled program of n blocks returns n from x = 0 (checked):

- sequence: `df.Sequential` of n x -> x blocks;
- wide DAG: a `df.Graph`, one source fanning out to n/2 independent leaves, summed by a binary tree;
- wide loop body: the same Graph as the body of a `df.Loop` (so the stream scheduler works on it too);
- nested loops: three levels, an outer loop over loops of 10 inner loops of 10 blocks each.

For each size `df.check` and `df.compile` (which checks again, then generates and compiles the code)
are timed on freshly built graphs. The per-block time and the growth exponent between sizes
(log of the time ratio over log of the size ratio: 1 is linear, 2 quadratic) make linearity visible.
A size is skipped when the growth so far predicts one run would exceed the budget.
"""

from __future__ import annotations

import argparse
import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dfgraph as df
from benchmarks.results import CaseResult
from benchmarks.timing import Stats, Table, commit, ratio_text, seconds

SIZES = (100, 1_000, 10_000, 100_000)
"""The graph sizes (blocks) of the full run."""

NEAR_LINEAR = 1.2
"""The largest growth exponent of compile time over the last decade measured that counts as near linear."""

TEN_THOUSAND_LIMIT = 0.5
"""Seconds df.compile (check included) may take for 10,000 blocks: 'well under a second'."""

BUDGET = 30.0
"""Seconds one check + compile of the next size may be predicted to take before that size is skipped."""


@df.block(outputs="x")
def inc(x: int) -> int:
    """x + 1."""
    return x + 1


@df.block(outputs="h")
def source(x: int) -> int:
    """The wide DAG's source: x + 1, read by every leaf."""
    return x + 1


@df.block(outputs="y")
def leaf(h: int) -> int:
    """One of the wide DAG's independent leaves: h + 1."""
    return h + 1


@df.block(outputs="s")
def add(a: int, b: int) -> int:
    """A node of the wide DAG's summing tree."""
    return a + b


def sequence(n: int) -> Any:
    """`n` x -> x blocks in a df.Sequential."""
    return df.Sequential(*[inc] * n, name="sequence")


def wide_graph(n: int, *, output: str = "s") -> Any:
    """A Graph of 2 * (n // 2) blocks: a source, n // 2 leaves reading it, n // 2 - 1 adders summing them."""
    leaves = max(1, n // 2)
    nodes: dict[str, Any] = {"source": source}
    edges: list[tuple[str, str]] = []
    level: list[str] = []
    for k in range(leaves):
        nodes[f"leaf{k}"] = leaf
        edges.append(("source.h", f"leaf{k}.h"))
        level.append(f"leaf{k}.y")
    count = 0
    while len(level) > 1:
        following = []
        for j in range(0, len(level) - 1, 2):
            name = f"add{count}"
            count += 1
            nodes[name] = add
            edges += [(level[j], f"{name}.a"), (level[j + 1], f"{name}.b")]
            following.append(f"{name}.s")
        if len(level) % 2:
            following.append(level[-1])
        level = following
    return df.Graph(nodes, edges, {output: level[0]}, name="wide")


def wide_dag(n: int) -> Any:
    """The wide Graph at the top level; from x = 0 it returns s = 2 * (n // 2)."""
    return wide_graph(n)


def wide_loop_body(n: int) -> Any:
    """The wide Graph as a loop body carrying x (the sum); one iteration from x = 0 gives 2 * (n // 2)."""
    return df.Loop(wide_graph(n, output="x"), times="steps", name="loop")


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[k : k + size] for k in range(0, len(items), size)]


def nested_loops(n: int) -> Any:
    """n blocks in three levels of loops: outer loop > loops of 10 inner loops > inner loops of 10 blocks."""
    inner = [
        df.Loop(df.Sequential(*[inc] * len(chunk), name="body"), times="n_inner", name=f"inner{k}")
        for k, chunk in enumerate(_chunks(range(n), 10))
    ]
    middle = [
        df.Loop(df.Sequential(*group, name="body"), times="n_middle", name=f"middle{k}")
        for k, group in enumerate(_chunks(inner, 10))
    ]
    return df.Loop(df.Sequential(*middle, name="body"), times="n_outer", name="outer")


@dataclass(frozen=True)
class Shape:
    """A family of graphs: how to build one of n blocks, and the inputs and result that check it."""

    name: str
    build: Callable[[int], Any]
    inputs: Callable[[int], dict[str, int]]
    blocks: Callable[[int], int]
    """The number of blocks actually built for a requested size."""


SHAPES = (
    Shape("sequence", sequence, lambda n: {"x": 0}, lambda n: n),
    Shape("wide DAG", wide_dag, lambda n: {"x": 0}, lambda n: 2 * max(1, n // 2)),
    Shape("wide loop body", wide_loop_body, lambda n: {"x": 0, "steps": 1}, lambda n: 2 * max(1, n // 2)),
    Shape(
        "nested loops",
        nested_loops,
        lambda n: {"x": 0, "n_inner": 1, "n_middle": 1, "n_outer": 1},
        lambda n: n,
    ),
)
"""Every shape measured."""


def expected(shape: Shape, n: int) -> int:
    """What the compiled graph of `shape` at size n returns from its check inputs."""
    return 2 * max(1, n // 2) if shape.name.startswith("wide") else n


def run_once(shape: Shape, n: int, *, collect: bool = True) -> tuple[float, float, Any]:
    """Check then compile freshly built graphs of `shape` at size n: (check s, compile s, program).

    `collect` runs gc.collect() (untimed) before each, so no timing pays for earlier garbage."""
    graph = shape.build(n)
    if collect:
        gc.collect()
    start = time.perf_counter()
    report = df.check(graph)
    checked = time.perf_counter() - start
    if not report.ok or report.warnings:
        raise AssertionError(f"{shape.name} at {n} blocks does not check clean:\n{report}")
    graph = shape.build(n)  # a fresh graph: nothing the check derived is reused
    if collect:
        gc.collect()
    start = time.perf_counter()
    program = df.compile(graph)
    compiled = time.perf_counter() - start
    return checked, compiled, program


def verify(shape: Shape, n: int, program: Any) -> None:
    """Raise AssertionError unless the compiled program computes its known result."""
    got = program(**shape.inputs(n))
    value = next(iter(got.values())) if isinstance(got, dict) and len(got) == 1 else got
    if value != expected(shape, n):
        raise AssertionError(f"{shape.name} at {n} blocks returned {got!r}, expected {expected(shape, n)}")


def exponent(n0: int, t0: float, n1: int, t1: float) -> float:
    """The growth exponent between two sizes: log(t1 / t0) / log(n1 / n0)."""
    return math.log(t1 / t0) / math.log(n1 / n0)


@dataclass
class Measured:
    """Check and compile times of one shape at one size."""

    size: int
    blocks: int
    check: Stats
    compile: Stats


def measure_shapes(
    shapes: Sequence[Shape],
    sizes: Sequence[int],
    repeats: int,
    budget: float = BUDGET,
    *,
    collect: bool = True,
) -> tuple[dict[str, list[Measured]], dict[str, str]]:
    """Time every shape at every size (shapes interleaved per repeat); skipped sizes, with the reason."""
    done: dict[str, list[Measured]] = {s.name: [] for s in shapes}
    skipped: dict[str, str] = {}
    for n in sorted(sizes):
        active = [s for s in shapes if s.name not in skipped]
        for shape in list(active):
            history = done[shape.name]
            if history:
                last = history[-1]
                grow = max(1.0, exponent(*_points(history))) if len(history) > 1 else 1.0
                predicted = (last.check.median + last.compile.median) * (n / last.size) ** grow
                if predicted > budget:
                    skipped[shape.name] = (
                        f"{n:,} blocks and up not measured: one check + compile is predicted to take "
                        f"{predicted:.0f} s (growth exponent {grow:.2f} so far), over the {budget:.0f} s "
                        "budget (--budget)"
                    )
                    active.remove(shape)
        checks: dict[str, list[float]] = {s.name: [] for s in active}
        compiles: dict[str, list[float]] = {s.name: [] for s in active}
        rounds = min(repeats, 3) if n >= 100_000 else repeats
        for round_ in range(rounds):
            shift = round_ % len(active) if active else 0
            for shape in active[shift:] + active[:shift]:
                checked, compiled, program = run_once(shape, n, collect=collect)
                checks[shape.name].append(checked)
                compiles[shape.name].append(compiled)
                if round_ == 0:
                    verify(shape, n, program)
                del program
        for shape in active:
            done[shape.name].append(
                Measured(
                    n, shape.blocks(n), Stats(tuple(checks[shape.name])), Stats(tuple(compiles[shape.name]))
                )
            )
    return done, skipped


def _points(history: Sequence[Measured]) -> tuple[int, float, int, float]:
    a, b = history[-2], history[-1]
    return a.size, a.check.median + a.compile.median, b.size, b.check.median + b.compile.median


def shape_table(shape: Shape, rows: Sequence[Measured], skipped: str | None) -> Table:
    """One shape: check and compile median/min/max, per-block time, ratio to the first size, exponents."""
    columns = (
        "blocks",
        "check median s",
        "check min s",
        "check max s",
        "compile median s",
        "compile min s",
        "compile max s",
        "compile us/block",
        "ratio per block",
        "check exponent",
        "compile exponent",
    )
    out: list[tuple[str, ...]] = []
    base = rows[0].compile.median / rows[0].blocks if rows else 1.0
    for k, m in enumerate(rows):
        per_block = m.compile.median / m.blocks
        if k:
            p = rows[k - 1]
            check_exp = f"{exponent(p.blocks, p.check.median, m.blocks, m.check.median):.2f}"
            compile_exp = f"{exponent(p.blocks, p.compile.median, m.blocks, m.compile.median):.2f}"
        else:
            check_exp = compile_exp = "-"
        out.append(
            (
                f"{m.blocks:,}",
                seconds(m.check.median),
                seconds(m.check.min),
                seconds(m.check.max),
                seconds(m.compile.median),
                seconds(m.compile.min),
                seconds(m.compile.max),
                f"{per_block * 1e6:.1f}",
                ratio_text(per_block / base),
                check_exp,
                compile_exp,
            )
        )
    notes = [skipped] if skipped else []
    first = f"{rows[0].blocks:,}" if rows else "-"
    title = f"{shape.name}: df.check and df.compile (ratio: compile time per block, to {first} blocks)"
    return Table(title, columns, tuple(out), tuple(notes))


def checker_scaling(
    max_blocks: int = 100_000,
    repeats: int = 5,
    budget: float = BUDGET,
    sizes: Sequence[int] = SIZES,
    *,
    collect: bool = True,
) -> CaseResult:
    """Case 3: every shape at every size up to max_blocks; judged on linearity and on 10,000 blocks."""
    chosen = [n for n in sizes if n <= max_blocks]
    if not chosen:
        raise ValueError(f"--max-blocks {max_blocks} is below the smallest size {min(sizes)}")
    done, skipped = measure_shapes(SHAPES, chosen, repeats, budget, collect=collect)
    tables = [shape_table(s, done[s.name], skipped.get(s.name)) for s in SHAPES]
    growth: list[tuple[float, str, int, int]] = []
    at_10k: list[tuple[float, str]] = []
    for shape in SHAPES:
        rows = done[shape.name]
        if len(rows) >= 2:
            a, b = rows[-2], rows[-1]
            e = exponent(a.blocks, a.compile.median, b.blocks, b.compile.median)
            growth.append((e, shape.name, a.size, b.size))
        at_10k += [(m.compile.median, shape.name) for m in rows if m.size == 10_000]
    verdicts: list[bool] = []
    parts: list[str] = []
    if growth:
        e, name, small, large = max(growth)
        judged = small >= 1_000
        if judged:
            verdicts.append(e <= NEAR_LINEAR)
        how = "" if judged else " (not judged: fixed costs dominate below 1,000 blocks)"
        parts.append(f"largest compile growth exponent {e:.2f} ({name}, {small:,} to {large:,} blocks){how}")
    if at_10k:
        t, name = max(at_10k)
        verdicts.append(t <= TEN_THOUSAND_LIMIT)
        parts.append(f"10,000 blocks compile in at most {seconds(t)} s ({name})")
    else:
        parts.append("10,000 blocks not measured")
    if skipped:
        parts.append(f"not measured at every size (over the time budget): {', '.join(skipped)}")
    complete = bool(at_10k) and any(m.size >= 10_000 for m in done[SHAPES[0].name])
    met: bool | None
    if verdicts and not all(verdicts):
        met = False
    elif verdicts and complete:
        met = True
    else:
        met = None
    target = (
        f"near-linear growth (compile-time exponent <= {NEAR_LINEAR} from 1,000 blocks up) and "
        f"10,000 blocks checked and compiled in <= {TEN_THOUSAND_LIMIT} s"
    )
    notes = [
        "compile = df.compile, which checks the graph again and then generates and compiles the code: "
        "it is the check + compile a user pays; check = df.check alone",
        "each run builds a fresh graph (untimed) and runs gc.collect() first; every compiled program "
        "is called once and must return its known result",
        f"exponents are between consecutive sizes: 1.00 is linear, 2.00 quadratic; repeats: {repeats} "
        "(at most 3 at 100,000 blocks)",
    ]
    result = CaseResult(3, "Checker scaling", target, met, "; ".join(parts), tables, notes)
    result.unjudged = "not judged (10,000 blocks not measured)"
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Run case 3 and print its tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="up to 1,000 blocks, 2 repeats")
    parser.add_argument("--max-blocks", type=int, default=None, help="largest graph (default 100,000)")
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds per run before skipping")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    max_blocks = args.max_blocks or (1_000 if args.quick else 100_000)
    repeats = args.repeats or (2 if args.quick else 5)
    print(checker_scaling(max_blocks, repeats, args.budget).text(commit()))


if __name__ == "__main__":
    main()

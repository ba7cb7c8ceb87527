"""Case 3: how checking and compiling grow with the graph, from 1,000 to 100,000 blocks, on every shape.

    python -m benchmarks.scaling [--quick] [--max-blocks N] [--budget SECONDS]
    python -m benchmarks --cases scaling

Each shape is built so that its compiled program computes a known number from x = 0 (checked):

- sequence: a `df.Sequential` of n x -> x blocks;
- chain Graph: a `df.Graph` of n x -> x nodes, each wired to the previous by an explicit edge;
- wide Graph: a `df.Graph`, one source fanning out to n/2 independent leaves, summed by a binary tree;
- wide loop body: the wide Graph as the body of a `df.Loop`;
- nested loops: three levels, an outer loop over loops of 10 inner loops of 10 blocks each;
- deep loop nest: loops nested 300 deep, each carrying x, each body widened to n/300 blocks;
- deep Sequential nest: Sequentials nested 1,000 deep, each level widened to n/1,000 blocks.

For each size `df.check` alone and `df.compile` (which checks again, then generates and compiles the code:
the check + compile a user pays) are timed on freshly built graphs. Growth is judged by the exponent of a
least-squares fit of log(time) on log(blocks) over every size measured from 1,000 blocks up (1 is
linear, 2 quadratic), not by one pair of sizes. A second table grows nesting depth alone (one block per
level), where paths, which name every enclosing composite, make some cost per level grow with depth.
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

SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)
"""The graph sizes (blocks) of the full run."""

NEAR_LINEAR = 1.1
"""The largest fitted growth exponent of check + compile time (from 1,000 blocks up) that counts as linear."""

TEN_THOUSAND_LIMIT = 1.0
"""Seconds df.compile (check included) may take for 10,000 blocks of any shape."""

BUDGET = 30.0
"""Seconds one check + compile of the next size may be predicted to take before that size is skipped."""

LOOP_DEPTH = 300
"""How deep the deep loop nest is at every size (the issue's 300; its bodies widen with the size)."""

SEQUENTIAL_DEPTH = 1_000
"""How deep the deep Sequential nest is at every size (its levels widen with the size)."""

DEPTHS = (1_250, 2_500, 5_000, 10_000, 20_000)
"""Nesting depths of the depth table (one block per level), for Sequential nests; loops and Graphs
are measured at fractions of these (`DEPTH_SHAPES`)."""


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


def chain_graph(n: int) -> Any:
    """`n` x -> x nodes in a df.Graph, node k + 1 reading node k by an edge; returns x + n."""
    nodes = {f"n{k}": inc for k in range(n)}
    edges = [(f"n{k}.x", f"n{k + 1}.x") for k in range(n - 1)]
    return df.Graph(nodes, edges, {"x": f"n{n - 1}.x"}, name="chain")


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


def loop_nest(depth: int, width: int = 1) -> Any:
    """Loops nested `depth` deep, all run `steps` times and carry x; each body adds `width` blocks after
    the loop inside it. One step from x = 0 gives depth * width."""
    body: Any = df.Sequential(*[inc] * width, name="body")
    for k in range(depth):
        loop = df.Loop(body, times="steps", name=f"loop{k}")
        body = df.Sequential(loop, *[inc] * width, name="body") if k < depth - 1 else loop
    return body


def sequential_nest(depth: int, width: int = 1) -> Any:
    """Sequentials nested `depth` deep, each holding the next one in and `width` blocks: x + depth * width."""
    block: Any = df.Sequential(*[inc] * width, name="s0")
    for k in range(1, depth):
        block = df.Sequential(block, *[inc] * width, name=f"s{k}")
    return block


def one_leaf_nest(depth: int) -> Any:
    """Sequentials nested `depth` deep around one block; x + 1."""
    block: Any = df.Sequential(inc, name="s0")
    for k in range(1, depth):
        block = df.Sequential(block, name=f"s{k}")
    return block


def graph_nest(depth: int) -> Any:
    """Graphs nested `depth` deep, each with the one inside it as its only node; x + 1."""
    block: Any = inc
    for k in range(depth):
        block = df.Graph({"inner": block}, name=f"g{k}")
    return block


def deep_loop_nest(n: int) -> Any:
    """n blocks (rounded to a multiple of LOOP_DEPTH) in loops nested LOOP_DEPTH deep."""
    return loop_nest(LOOP_DEPTH, max(1, n // LOOP_DEPTH))


def deep_sequential_nest(n: int) -> Any:
    """n blocks (rounded to a multiple of SEQUENTIAL_DEPTH) in Sequentials nested SEQUENTIAL_DEPTH deep."""
    return sequential_nest(SEQUENTIAL_DEPTH, max(1, n // SEQUENTIAL_DEPTH))


@dataclass(frozen=True)
class Shape:
    """A family of graphs: how to build one of n blocks, and the inputs and result that check it."""

    name: str
    build: Callable[[int], Any]
    inputs: Callable[[int], dict[str, int]]
    blocks: Callable[[int], int]
    """The number of blocks actually built for a requested size."""
    result: Callable[[int], int]
    """What the compiled program returns from `inputs(n)`."""
    note: str = ""


def _wide(n: int) -> int:
    return 2 * max(1, n // 2)


def _identity(n: int) -> int:
    return n


def _x0(n: int) -> dict[str, int]:
    return {"x": 0}


SHAPES = (
    Shape("sequence", sequence, _x0, _identity, _identity),
    Shape("chain Graph", chain_graph, _x0, _identity, _identity),
    Shape("wide Graph", wide_dag, _x0, _wide, _wide),
    Shape("wide loop body", wide_loop_body, lambda n: {"x": 0, "steps": 1}, _wide, _wide),
    Shape(
        "nested loops",
        nested_loops,
        lambda n: {"x": 0, "n_inner": 1, "n_middle": 1, "n_outer": 1},
        _identity,
        _identity,
    ),
    Shape(
        "deep loop nest",
        deep_loop_nest,
        lambda n: {"x": 0, "steps": 1},
        lambda n: LOOP_DEPTH * max(1, n // LOOP_DEPTH),
        lambda n: LOOP_DEPTH * max(1, n // LOOP_DEPTH),
        f"{LOOP_DEPTH} loops deep at every size; the bodies widen",
    ),
    Shape(
        "deep Sequential nest",
        deep_sequential_nest,
        _x0,
        lambda n: SEQUENTIAL_DEPTH * max(1, n // SEQUENTIAL_DEPTH),
        lambda n: SEQUENTIAL_DEPTH * max(1, n // SEQUENTIAL_DEPTH),
        f"{SEQUENTIAL_DEPTH:,} Sequentials deep at every size; the levels widen",
    ),
)
"""Every shape measured by block count."""


def _loop_levels(n: int) -> int:
    return max(1, n // 20)


def _graph_levels(n: int) -> int:
    return max(1, n // 50)


DEPTH_SHAPES = (
    Shape(
        "Sequential nest depth",
        one_leaf_nest,
        _x0,
        _identity,
        lambda n: 1,
        "levels = size, one block in all (with a block on every level, the blocks' paths alone grow "
        "with the square of the depth: each names every enclosing Sequential)",
    ),
    Shape(
        "loop nest depth",
        lambda n: loop_nest(_loop_levels(n)),
        lambda n: {"x": 0, "steps": 1},
        _loop_levels,
        _loop_levels,
        "levels = size / 20 (62 to 1,000 loops deep at the full run's sizes)",
    ),
    Shape(
        "Graph nest depth",
        lambda n: graph_nest(_graph_levels(n)),
        _x0,
        _graph_levels,
        lambda n: 1,
        "levels = size / 50 (25 to 400 Graphs deep), one block in all: each Graph node's interface is "
        "derived by lowering it, so the work grows with the square of the depth",
    ),
)
"""Depth grown alone: `blocks` counts levels here, one block per level (a Graph nest: one in all)."""


def expected(shape: Shape, n: int) -> int:
    """What the compiled graph of `shape` at size n returns from its check inputs."""
    return shape.result(n)


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


def fitted_exponent(points: Sequence[tuple[int, float]]) -> float:
    """The slope of the least-squares line through (log size, log time): t ~ size ** slope."""
    if len(points) < 2:
        raise ValueError("fitting an exponent needs at least two sizes")
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("fitting an exponent needs at least two different sizes")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


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
                        f"{n:,} and up not measured: one check + compile is predicted to take "
                        f"{predicted:.0f} s (growth exponent {grow:.2f} so far), over the {budget:.0f} s "
                        "budget (--budget)"
                    )
                    active.remove(shape)
        checks: dict[str, list[float]] = {s.name: [] for s in active}
        compiles: dict[str, list[float]] = {s.name: [] for s in active}
        rounds = min(repeats, 3) if n >= 30_000 else repeats
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


def fits(rows: Sequence[Measured], smallest: int = 1_000) -> tuple[float, float] | None:
    """The fitted (check, compile) exponents over the rows of size `smallest` and up; None below two."""
    judged = [m for m in rows if m.size >= smallest]
    if len({m.blocks for m in judged}) < 2:
        return None
    return (
        fitted_exponent([(m.blocks, m.check.median) for m in judged]),
        fitted_exponent([(m.blocks, m.compile.median) for m in judged]),
    )


def shape_table(
    shape: Shape,
    rows: Sequence[Measured],
    skipped: str | None,
    *,
    unit: str = "blocks",
    smallest: int = 1_000,
) -> Table:
    """One shape: check and compile median/min/max, per-block time, ratio to the first size; the fit."""
    columns = (
        unit,
        "check median s",
        "check min s",
        "check max s",
        "compile median s",
        "compile min s",
        "compile max s",
        f"compile us/{unit.rstrip('s')}",
        "ratio per unit",
    )
    out: list[tuple[str, ...]] = []
    base = rows[0].compile.median / rows[0].blocks if rows else 1.0
    for m in rows:
        per_block = m.compile.median / m.blocks
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
            )
        )
    notes = [shape.note] if shape.note else []
    fitted = fits(rows, smallest)
    if fitted is not None:
        judged = [m for m in rows if m.size >= smallest]
        notes.append(
            f"fitted exponent (least squares over {len(judged)} sizes from {judged[0].blocks:,} {unit}): "
            f"check {fitted[0]:.2f}, check + compile {fitted[1]:.2f}"
        )
    if skipped:
        notes.append(skipped)
    first = f"{rows[0].blocks:,}" if rows else "-"
    title = f"{shape.name}: df.check and df.compile (ratio: compile time per {unit[:-1]}, to {first} {unit})"
    return Table(title, columns, tuple(out), tuple(notes))


def checker_scaling(
    max_blocks: int = 100_000,
    repeats: int = 5,
    budget: float = BUDGET,
    sizes: Sequence[int] = SIZES,
    *,
    collect: bool = True,
    depths: Sequence[int] = DEPTHS,
) -> CaseResult:
    """Case 3: every shape at every size up to max_blocks, judged on the fitted exponent and on 10,000
    blocks; then nesting depth alone (not judged)."""
    chosen = [n for n in sizes if n <= max_blocks]
    if not chosen:
        raise ValueError(f"--max-blocks {max_blocks} is below the smallest size {min(sizes)}")
    done, skipped = measure_shapes(SHAPES, chosen, repeats, budget, collect=collect)
    tables = [shape_table(s, done[s.name], skipped.get(s.name)) for s in SHAPES]
    deep_sizes = [d for d in depths if d <= max(max_blocks, min(depths))]
    deep, deep_skipped = measure_shapes(DEPTH_SHAPES, deep_sizes, max(1, min(repeats, 3)), budget)
    smallest = min(deep_sizes)
    tables += [
        shape_table(s, deep[s.name], deep_skipped.get(s.name), unit="levels", smallest=smallest)
        for s in DEPTH_SHAPES
    ]
    growth: list[tuple[float, str]] = []
    at_10k: list[tuple[float, str]] = []
    for shape in SHAPES:
        rows = done[shape.name]
        fitted = fits(rows)
        if fitted is not None:
            growth.append((fitted[1], shape.name))
        at_10k += [(m.compile.median, shape.name) for m in rows if m.size == 10_000]
    verdicts: list[bool] = []
    parts: list[str] = []
    if growth:
        e, name = max(growth)
        verdicts.append(e <= NEAR_LINEAR)
        parts.append(f"largest fitted check + compile exponent {e:.2f} ({name}, from 1,000 blocks up)")
    else:
        parts.append("no exponent fitted (fewer than two sizes from 1,000 blocks up)")
    if at_10k:
        t, name = max(at_10k)
        verdicts.append(t <= TEN_THOUSAND_LIMIT)
        parts.append(f"10,000 blocks checked and compiled in at most {seconds(t)} s ({name})")
    else:
        parts.append("10,000 blocks not measured")
    if skipped:
        parts.append(f"not measured at every size (over the time budget): {', '.join(skipped)}")
    complete = bool(at_10k) and bool(growth) and not skipped
    met: bool | None
    if verdicts and not all(verdicts):
        met = False
    elif verdicts and complete:
        met = True
    else:
        met = None
    target = (
        f"linear growth (fitted check + compile exponent <= {NEAR_LINEAR} from 1,000 to 100,000 blocks) "
        f"and 10,000 blocks of every shape checked and compiled in <= {TEN_THOUSAND_LIMIT} s"
    )
    notes = [
        "compile = df.compile, which checks the graph again and then generates and compiles the code: "
        "it is the check + compile a user pays; check = df.check alone",
        "each run builds a fresh graph (untimed) and runs gc.collect() first; every compiled program "
        "is called once and must return its known result",
        f"repeats: {repeats} (at most 3 from 30,000 blocks); the depth tables are not judged: a path "
        "names every enclosing composite, so a block's path at depth d is d segments long",
    ]
    result = CaseResult(3, "Checker scaling", target, met, "; ".join(parts), tables, notes)
    result.unjudged = "not judged (10,000 blocks or the fit not measured)"
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Run case 3 and print its tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="up to 3,000 blocks, 2 repeats")
    parser.add_argument("--max-blocks", type=int, default=None, help="largest graph (default 100,000)")
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds per run before skipping")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    max_blocks = args.max_blocks or (3_000 if args.quick else 100_000)
    repeats = args.repeats or (2 if args.quick else 5)
    print(checker_scaling(max_blocks, repeats, args.budget).text(commit()))


if __name__ == "__main__":
    main()

"""Every benchmark case runs at smoke size, its variants compute the same thing, and its tables and
RESULTS.md render the expected rows. No timing is asserted here: timings belong to `make bench`."""

from __future__ import annotations

from typing import Any

import pytest

import dfgraph as df
from benchmarks import overhead, scaling
from benchmarks.results import CaseResult
from benchmarks.timing import Stats, Table, markdown_text, measure, seconds, timing_table


@pytest.fixture(scope="module")
def scaling_case() -> CaseResult:
    # no time budget: on a loaded machine a size over the budget would be skipped and a row go missing
    return scaling.checker_scaling(
        max_blocks=1_000, repeats=1, sizes=(10, 100), collect=False, depths=(60, 120), budget=float("inf")
    )


# --- case 1 and 2: overhead ---


def test_the_checked_baseline_makes_the_generated_checks() -> None:
    namespace: dict[str, Any] = {"MISSING": object(), "OUTPUTS": frozenset({"x"}), "b0": lambda x: x + 1}
    exec(overhead.checked_source(1), namespace)
    checked = namespace["checked"]
    assert checked(x=0, output="x") == 1 and checked(x=0) == {"x": 1}
    for bad in ({"x": "0"}, {"x": 0, "output": "y"}, {"y": 0}, {}):
        with pytest.raises(TypeError):
            checked(**bad)


def test_import_time_is_measured_and_networkx_is_lazy() -> None:
    assert 0 < overhead.import_seconds("dfgraph", repeats=1) < 60
    assert overhead.imports_networkx() is False


def test_disagreeing_variants_are_caught() -> None:
    with pytest.raises(AssertionError, match="variants disagree"):
        overhead.check_agree({"a": lambda: 1, "b": lambda: 2}, 1)


# --- case 3: scaling ---


def _leaves(block: Any) -> int:
    count, stack = 0, [block]  # on a stack: the deep shapes nest 1,000 levels
    while stack:
        current = stack.pop()
        if isinstance(current, df.Sequential):
            stack.extend(child for _, child in current.children)
        elif isinstance(current, df.Loop):
            stack.append(current.body)
        elif isinstance(current, df.Graph):
            stack.extend(current.nodes.values())
        else:
            count += 1
    return count


@pytest.mark.parametrize("n", [2, 7, 20, 130])
@pytest.mark.parametrize("shape", scaling.SHAPES, ids=lambda s: s.name)
def test_scaling_shapes_build_n_blocks_and_compute_their_result(shape: scaling.Shape, n: int) -> None:
    graph = shape.build(n)
    assert _leaves(graph) == shape.blocks(n)
    checked, compiled, program = scaling.run_once(shape, n, collect=False)
    assert checked >= 0 and compiled >= 0
    scaling.verify(shape, n, program)
    assert scaling.expected(shape, n) == shape.blocks(n) or shape.name.startswith("wide")


def _depth(block: Any) -> int:
    levels = 0
    while isinstance(block, df.Sequential | df.Loop | df.Graph):
        levels += isinstance(block, df.Loop | df.Graph) or isinstance(block.children[0][1], df.Sequential)
        if isinstance(block, df.Loop):
            block = block.body
        elif isinstance(block, df.Graph):
            block = block.nodes["inner"]
        else:
            block = block.children[0][1]
    return levels


def test_deep_shapes_keep_their_depth_and_widen() -> None:
    assert _depth(scaling.deep_loop_nest(3_000)) == scaling.LOOP_DEPTH
    assert _leaves(scaling.deep_loop_nest(3_000)) == 3_000
    assert _depth(scaling.deep_sequential_nest(5_000)) == scaling.SEQUENTIAL_DEPTH - 1
    assert _leaves(scaling.deep_sequential_nest(5_000)) == 5_000


@pytest.mark.parametrize("n", [2, 60, 250])
@pytest.mark.parametrize("shape", scaling.DEPTH_SHAPES, ids=lambda s: s.name)
def test_depth_shapes_nest_their_levels_and_compute_their_result(shape: scaling.Shape, n: int) -> None:
    graph = shape.build(n)
    levels = shape.blocks(n)
    assert levels >= 1
    if shape.name.startswith("Graph"):
        assert _depth(graph) == levels and _leaves(graph) == 1
    elif shape.name.startswith("loop"):
        assert _depth(graph) == levels and _leaves(graph) == levels
    else:
        assert _depth(graph) == levels - 1 and _leaves(graph) == 1
    _, _, program = scaling.run_once(shape, n, collect=False)
    scaling.verify(shape, n, program)


def test_scaling_tables_have_a_row_per_size(scaling_case: CaseResult) -> None:
    names = [s.name for s in scaling.SHAPES + scaling.DEPTH_SHAPES]
    assert [t.title.split(":")[0] for t in scaling_case.tables] == names
    for table in scaling_case.tables[: len(scaling.SHAPES)]:
        assert len(table.rows) == 2 and table.rows[0][-1] == "1.00x"
        assert "compile us/block" in table.columns
        assert not any("fitted exponent" in n for n in table.notes)  # below 1,000 blocks: not fitted
    for table in scaling_case.tables[len(scaling.SHAPES) :]:
        assert len(table.rows) == 2 and "compile us/level" in table.columns
        assert sum("fitted exponent (least squares over 2 sizes from " in n for n in table.notes) == 1
    assert scaling_case.met is None and scaling_case.status.startswith("not judged")
    assert "10,000 blocks not measured" in scaling_case.verdict
    assert "no exponent fitted" in scaling_case.verdict


def test_scaling_judges_the_fit_and_ten_thousand_blocks() -> None:
    def rows(times: list[float]) -> list[scaling.Measured]:
        sizes = [1_000, 10_000, 100_000]
        return [
            scaling.Measured(n, n, Stats((t / 2,)), Stats((t,))) for n, t in zip(sizes, times, strict=True)
        ]

    linear = scaling.fits(rows([0.01, 0.1, 1.0]))
    quadratic = scaling.fits(rows([0.01, 1.0, 100.0]))
    assert linear is not None and linear[1] == pytest.approx(1.0)
    assert quadratic is not None and quadratic[1] == pytest.approx(2.0)
    assert scaling.fits(rows([0.01, 0.1, 1.0])[:1]) is None


def test_scaling_skips_sizes_over_the_budget() -> None:
    done, skipped = scaling.measure_shapes(
        scaling.SHAPES[:1], (10, 100), repeats=1, budget=0.0, collect=False
    )
    assert [m.size for m in done["sequence"]] == [10]
    assert "100 and up not measured" in skipped["sequence"]
    table = scaling.shape_table(scaling.SHAPES[0], done["sequence"], skipped["sequence"])
    assert "budget" in table.text()


def test_growth_exponent() -> None:
    assert scaling.exponent(100, 1.0, 1_000, 10.0) == pytest.approx(1.0)
    assert scaling.exponent(100, 1.0, 1_000, 100.0) == pytest.approx(2.0)


def test_fitted_exponent_uses_every_size() -> None:
    # 1 between the first two sizes, 2 between the last two: the fit lies between, unlike either pair
    points = [(1_000, 1.0), (10_000, 10.0), (100_000, 1_000.0)]
    assert scaling.fitted_exponent(points) == pytest.approx(1.5)
    assert scaling.fitted_exponent([(10, 3.0), (20, 6.0), (40, 12.0), (80, 24.0)]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two"):
        scaling.fitted_exponent([(10, 1.0)])
    with pytest.raises(ValueError, match="different"):
        scaling.fitted_exponent([(10, 1.0), (10, 2.0)])


# --- timing, tables, RESULTS.md, the runner ---


def test_measure_interleaves_and_counts() -> None:
    calls: list[str] = []
    stats = measure({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then rounds in rotated order
    assert all(len(s.times) == 3 for s in stats.values())


def test_timing_table_rows_and_rendering() -> None:
    stats = {"base": Stats((2.0, 1.0, 3.0)), "x_y": Stats((4.0, 4.0, 4.0))}
    table = timing_table("t", stats, "base", notes=["a note"])
    assert table.row("base")[1:] == ("2.000", "1.000", "3.000", "1.00x")
    assert table.row("x_y")[-1] == "2.00x"
    text = table.text()
    assert "median s" in text and "ratio to base" in text and "note: a note" in text
    markdown = table.markdown()
    assert "| x\\_y | 4.000 | 4.000 | 4.000 | 2.00x |" in markdown
    assert seconds(0.000123456) == "0.0001235" and seconds(12.5) == "12.50"
    assert markdown_text("`prog.__call__` and prog.__call__") == "`prog.__call__` and prog.\\_\\_call\\_\\_"
    with pytest.raises(ValueError, match="cells"):
        Table("bad", ("a", "b"), (("1",),))

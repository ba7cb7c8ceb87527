"""Every benchmark case runs at smoke size, its variants compute the same thing, and its tables and
RESULTS.md render the expected rows. No timing is asserted here: timings belong to `make bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import dfgraph as df
from benchmarks import __main__ as bench
from benchmarks import end_to_end, gpu, overhead, scaling
from benchmarks.results import CaseResult, render_results
from benchmarks.timing import Stats, Table, markdown_text, measure, seconds, timing_table


@pytest.fixture(scope="module")
def loop_case() -> CaseResult:
    return overhead.loop_overhead(steps=50, repeats=2)


@pytest.fixture(scope="module")
def sequence_case() -> CaseResult:
    return overhead.sequential_overhead(blocks=20, calls=3, repeats=2)


@pytest.fixture(scope="module")
def scaling_case() -> CaseResult:
    # no time budget: on a loaded machine a size over the budget would be skipped and a row go missing
    return scaling.checker_scaling(
        max_blocks=1_000, repeats=1, sizes=(10, 100), collect=False, depths=(60, 120), budget=float("inf")
    )


@pytest.fixture(scope="module")
def e2e_case() -> CaseResult:
    return end_to_end.end_to_end(steps=2, repeats=1)


# --- case 1 and 2: overhead ---


def test_counter_variants_agree() -> None:
    variants = overhead.counter_case(37)
    assert overhead.results_of(variants) == {
        overhead.HAND: 74,
        overhead.DFGRAPH: 74,
        overhead.MODULAR_LOOP: 74,
    }


def test_the_modular_counter_is_the_guides() -> None:
    assert overhead.modular_counter_pipeline(blocks=1)(num_steps=10, x=0, output="x") == 10
    assert overhead.modular_counter_pipeline()(num_steps=10, x=0, output="x") == 20


def test_sequence_variants_agree_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    variants = overhead.sequence_case(blocks=20, calls=3)
    assert set(overhead.results_of(variants).values()) == {20}
    assert set(variants) == {
        overhead.HAND,
        overhead.CHECKED,
        overhead.DFGRAPH,
        overhead.INSTANCE,
        overhead.MODULAR_SEQUENCE,
    }
    overhead.report("smoke", variants, repeats=2)
    out = capsys.readouterr().out
    assert "hand-written" in out and "dfgraph, prog(...) (instance call)" in out and "ratio" in out
    assert "hand-written with the same checks" in out


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


def test_overhead_cases_render_every_variant(loop_case: CaseResult, sequence_case: CaseResult) -> None:
    (loop_table,) = loop_case.tables
    assert [r[0] for r in loop_table.rows] == [overhead.HAND, overhead.DFGRAPH, overhead.MODULAR_LOOP]
    assert loop_table.row(overhead.HAND)[-1] == "1.00x"
    assert loop_case.met in (True, False) and loop_case.verdict.startswith("dfgraph ")
    assert "Modular Diffusers" in loop_case.verdict
    (sequence_table,) = sequence_case.tables
    assert [r[0] for r in sequence_table.rows] == [
        overhead.HAND,
        overhead.CHECKED,
        overhead.DFGRAPH,
        overhead.INSTANCE,
        overhead.MODULAR_SEQUENCE,
    ]
    assert "x = 20" in " ".join(sequence_case.notes)
    assert "`import dfgraph`" in sequence_case.verdict and "does not import networkx" in " ".join(
        sequence_case.notes
    )
    assert "same checks" in sequence_case.verdict and "`prog(...)`" in sequence_case.verdict
    text = sequence_case.text("abc1234")
    assert "commit abc1234" in text and "target: dfgraph within 1.2x of hand-written" in text


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


# --- case 4: end to end ---


def test_end_to_end_variants_give_the_pipelines_latents(e2e_case: CaseResult) -> None:
    (table,) = e2e_case.tables
    assert [r[0] for r in table.rows] == [
        end_to_end.PIPELINE,
        end_to_end.UNFUSED,
        end_to_end.FUSED,
        end_to_end.MODULAR,
    ]
    notes = "\n".join(e2e_case.notes)
    # Same batching, same numbers: fused = the pipeline's batch-2 call, unfused = the guider's two calls.
    assert f"{end_to_end.FUSED}: largest difference from StableDiffusionPipeline 0 (bitwise equal)" in notes
    assert f"{end_to_end.UNFUSED} and {end_to_end.MODULAR} give bitwise equal latents" in notes
    assert "StableDiffusionXLDenoiseStep" in notes
    assert e2e_case.met in (True, False) and e2e_case.verdict.startswith("fused ")


def test_end_to_end_compare_rejects_different_latents() -> None:
    variants = {
        end_to_end.PIPELINE: lambda: torch.zeros(1, 4, 2, 2),
        "off": lambda: torch.full((1, 4, 2, 2), 0.1),
    }
    with pytest.raises(AssertionError, match="off differs"):
        end_to_end.compare(variants)


# --- case 5: GPU ---


def test_gpu_variants_run_on_the_cpu_and_agree() -> None:
    tables, notes, verdict = gpu.gpu_case(None, steps=2, repeats=1, batches=(1, 2))
    assert len(tables) == 2 and "batch 1" in tables[0].title and "batch 2" in tables[1].title
    for table in tables:
        assert [r[0] for r in table.rows] == [gpu.SERIAL, gpu.STREAMS, gpu.FUSED]
    assert sum("largest difference from serial" in n for n in notes) == 4
    assert verdict.startswith("batch 1: serial 1.00x")


def test_a_failing_gpu_variant_is_dropped_and_noted() -> None:
    def broken() -> torch.Tensor:
        raise RuntimeError("no capture here")

    variants = {gpu.SERIAL: lambda: torch.zeros(2), gpu.CAPTURED: broken, gpu.FUSED: lambda: torch.zeros(2)}
    lines = gpu.agreement(variants)
    assert set(variants) == {gpu.SERIAL, gpu.FUSED}
    assert lines[0] == f"{gpu.CAPTURED}: failed, not timed: RuntimeError: no capture here"


def test_capture_variants_are_offered_on_cuda_only() -> None:
    assert gpu.CAPTURED not in gpu.variant_options(None)
    on_cuda = gpu.variant_options("cuda")
    assert gpu.CAPTURED in on_cuda and gpu.FUSED_CAPTURED in on_cuda
    assert all(options["device"] == "cuda" for options in on_cuda.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="measures on the GPU when there is one")
def test_gpu_case_says_it_was_not_measured_without_cuda() -> None:
    result = gpu.gpu()
    assert result.met is None and result.status == "not measured" and not result.tables
    assert "no CUDA device" in result.verdict


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


def test_results_markdown_has_every_case(
    loop_case: CaseResult, sequence_case: CaseResult, scaling_case: CaseResult, e2e_case: CaseResult
) -> None:
    cases = [
        loop_case,
        sequence_case,
        scaling_case,
        e2e_case,
        gpu.gpu(2, 1, (1,)),
        overhead.hook_overhead(200, 1),
    ]
    text = render_results(
        cases,
        commit="abc1234",
        machine={"CPUs": "2", "torch": "2.13.0"},
        quick=True,
        command="python -m benchmarks --quick",
        repeats_note="medians",
    )
    assert "- Commit: `abc1234`" in text and "- CPUs: 2" in text and "Mode: quick" in text
    for number, title in bench.TITLES.items():
        assert f"\n| {number} | {markdown_text(title)} | " in text
        assert f"\n## {number}. {markdown_text(title)}\n" in text
    assert (
        "| dfgraph, prog(...) (instance call) |" in text and "| hand-written with the same checks |" in text
    )
    assert "| StableDiffusionPipeline |" in text


def test_a_failing_case_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> CaseResult:
        raise RuntimeError("broken")

    result = bench.run_case(2, boom)
    assert result.met is False and result.verdict == "failed: RuntimeError: broken"
    assert "RuntimeError" in capsys.readouterr().err


def test_main_writes_results_where_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "RESULTS.md"
    assert bench.main(["--quick", "--cases", "1,5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "== 1. Loop overhead (commit " in printed and f"wrote {out}" in printed
    text = out.read_text()
    assert "## 1. Loop overhead" in text and "## 5. GPU" in text and "## 2." not in text
    assert "python -m benchmarks --quick --cases 1,5" in text
    with pytest.raises(SystemExit):
        bench.main(["--cases", "9", "--out", str(out)])


def test_cases_are_chosen_by_name_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "RESULTS.md"
    assert bench.main(["--quick", "--cases", "gpu", "--out", str(out)]) == 0
    assert "== 5. GPU" in capsys.readouterr().out and "## 1." not in out.read_text()
    assert bench.CASE_NAMES["scaling"] == 3
    with pytest.raises(SystemExit):
        bench.main(["--cases", "scalingg", "--out", str(out)])

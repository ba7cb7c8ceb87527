"""The benchmark cases that run torch at smoke size: end-to-end, GPU, the RESULTS.md of every case and
`python -m benchmarks` itself (split from test_benchmarks_smoke.py, so that module runs without torch).
No timing is asserted here: timings belong to `make bench`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks import __main__ as bench
from benchmarks import end_to_end, gpu, overhead, scaling
from benchmarks.results import CaseResult, render_results
from benchmarks.timing import markdown_text


@pytest.fixture(scope="module")
def loop_case() -> CaseResult:
    return overhead.loop_overhead(steps=50, repeats=2)


@pytest.fixture(scope="module")
def sequence_case() -> CaseResult:
    return overhead.sequential_overhead(blocks=20, calls=3, repeats=2)


# the scaling case's fixture, as in test_benchmarks_smoke.py: RESULTS.md renders every case
@pytest.fixture(scope="module")
def scaling_case() -> CaseResult:
    # no time budget: on a loaded machine a size over the budget would be skipped and a row go missing
    return scaling.checker_scaling(
        max_blocks=1_000, repeats=1, sizes=(10, 100), collect=False, depths=(60, 120), budget=float("inf")
    )


@pytest.fixture(scope="module")
def e2e_case() -> CaseResult:
    return end_to_end.end_to_end(steps=2, repeats=1)


# --- case 1 and 2: overhead (its variants import torch and diffusers when they run) ---


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


@pytest.fixture(scope="module")
def sdxl_case() -> CaseResult:
    return end_to_end.sdxl_end_to_end(steps=2, repeats=1, threads=(1, 2))


def test_sdxl_variants_give_the_pipelines_latents_at_each_thread_count(sdxl_case: CaseResult) -> None:
    assert sdxl_case.number == 7 and len(sdxl_case.tables) == 2
    notes = "\n".join(sdxl_case.notes)
    for threads in (1, 2):
        # the default program batches as the pipeline does; unfused calls as Modular Diffusers' guider does
        assert (
            f"{threads} thread(s): {end_to_end.FUSED}: largest difference from "
            f"{end_to_end.SDXL_PIPELINE} 0 (bitwise" in notes
        )
        assert (
            f"{threads} thread(s): {end_to_end.UNFUSED} and {end_to_end.SDXL_MODULAR} give bitwise equal"
            in notes
        )
    assert "1 thread(s): default" in sdxl_case.verdict and "2 thread(s): default" in sdxl_case.verdict


@pytest.fixture(scope="module")
def modular_case() -> CaseResult:
    return end_to_end.modular_end_to_end(steps=2, repeats=1, short=1, threads=(1, 2))


def test_modular_case_runs_the_three_paths_alike(modular_case: CaseResult) -> None:
    """ModularPipeline, from_modular unfused (bitwise equal) and fused (within TOLERANCE, half the calls)."""
    assert modular_case.number == 8 and len(modular_case.tables) == 2
    names = (end_to_end.MODULAR_PIPE, end_to_end.FROM_MODULAR, end_to_end.FROM_MODULAR_FUSED)
    notes = "\n".join(modular_case.notes)
    for threads, table in zip((1, 2), modular_case.tables, strict=True):
        assert f"{threads} torch thread(s)" in table.title
        assert [row[0] for row in table.rows] == list(names)
        assert "per step ms" in table.columns and "UNet calls" in table.columns
        calls = {row[0]: row[-1] for row in table.rows}
        assert calls == {names[0]: "4 x batch 1", names[1]: "4 x batch 1", names[2]: "2 x batch 2"}
        assert (
            f"{threads} thread(s): {end_to_end.FROM_MODULAR}: largest difference from "
            f"{end_to_end.MODULAR_PIPE} 0 (bitwise equal)" in notes
        )
        fused = notes.split(f"{threads} thread(s): {end_to_end.FROM_MODULAR_FUSED}: largest difference from ")
        assert float(fused[1].split()[1]) <= end_to_end.TOLERANCE  # compare() also raises beyond it
        assert f"{threads} thread(s): dfgraph's own overhead" in modular_case.verdict
    assert modular_case.met in (True, False)


def test_results_markdown_has_every_case(
    loop_case: CaseResult,
    sequence_case: CaseResult,
    scaling_case: CaseResult,
    e2e_case: CaseResult,
    sdxl_case: CaseResult,
    modular_case: CaseResult,
) -> None:
    cases = [
        loop_case,
        sequence_case,
        scaling_case,
        e2e_case,
        gpu.gpu(2, 1, (1,)),
        overhead.hook_overhead(200, 1),
        sdxl_case,
        modular_case,
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

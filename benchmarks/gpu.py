"""Case 5: the tiny text2img on a GPU: serial, CUDA streams, fused, and CUDA-graph capture, batch 1 and 4.

    python -m benchmarks.gpu [--quick]

Runs only where `torch.cuda.is_available()`; elsewhere it reports that nothing was measured. Each
variant compiles the same `dfgraph_blocks.diffusion.text2img` graph around the same UNet (on the GPU) with
different `df.compile` options, and must give the same latents (within GPU rounding) as the serial one:

- serial: `device="cuda", streams=1`; streams: `device="cuda", streams="auto"` (the cond and uncond UNet
  calls on two streams); fused: `fuse=True` (one batched UNet call);
- captured: `capture=True` (the capturable runs of each loop body replayed as CUDA graphs), alone and
  with `fuse=True`.

`gpu_case(device=None)` runs the same variants on the CPU (serially, no capture): the smoke test uses it
to keep this module working on machines without a GPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import torch

import dfgraph as df
from benchmarks.end_to_end import GUIDANCE, SCHEDULER, SEED, text2img_inputs
from benchmarks.results import CaseResult
from benchmarks.timing import Table, commit, measure, quiet, ratio_text, timing_table

BATCHES = (1, 4)
STEPS = 20
SIZE = 64
TOLERANCE = 1e-2
"""Largest difference allowed from the serial variant's latents (GPU kernels differ with the batch)."""

SERIAL = "serial (streams=1)"
STREAMS = "streams (streams='auto')"
FUSED = "fused (fuse=True)"
CAPTURED = "captured (capture=True)"
FUSED_CAPTURED = "fused + captured (fuse=True, capture=True)"

TARGET = "none: record serial vs streams vs fused vs CUDA-graph capture at batch 1 and 4, and the device"


def variant_options(device: str | None) -> dict[str, dict[str, Any]]:
    """The df.compile keyword arguments of each variant on `device` (capture only on CUDA)."""
    options: dict[str, dict[str, Any]] = {
        SERIAL: {"streams": 1, "fuse": False},
        STREAMS: {"streams": "auto", "fuse": False},
        FUSED: {"fuse": True},
    }
    if device == "cuda":
        options[CAPTURED] = {"capture": True, "fuse": False}
        options[FUSED_CAPTURED] = {"fuse": True, "capture": True}
    return {name: {"device": device, **kw} for name, kw in options.items()}


def gpu_variants(
    device: str | None, batch: int, steps: int = STEPS, *, size: int = SIZE, unet: Any | None = None
) -> dict[str, Callable[[], torch.Tensor]]:
    """One call per variant, each returning latents from the same seed, weights and embeddings."""
    from dfgraph_blocks.diffusion import text2img, tiny

    place = torch.device(device or "cpu")
    unet = (tiny.unet() if unet is None else unet).to(place)
    inputs = text2img_inputs(steps, size=size, batch=batch, device=place)
    variants: dict[str, Callable[[], torch.Tensor]] = {}
    for name, options in variant_options(device).items():
        program = df.compile(text2img(unet=unet, scheduler=tiny.scheduler(SCHEDULER)), **options)

        def run(program: df.Program = program) -> torch.Tensor:
            # A CPU generator: the same initial noise on every device (diffusers' randn_tensor moves it).
            latents: torch.Tensor = program(
                **inputs, generator=torch.Generator().manual_seed(SEED), output="latents"
            )
            return latents

        variants[name] = run
    return variants


def agreement(variants: dict[str, Callable[[], torch.Tensor]]) -> list[str]:
    """Run each variant once and compare it with serial (AssertionError past TOLERANCE); one line each.

    A variant other than serial that raises is dropped from `variants` and its error noted instead, so
    one failing option (e.g. capture on a new driver) does not cost the other measurements."""
    base = variants[SERIAL]()
    lines = []
    for name in [n for n in variants if n != SERIAL]:
        try:
            value = variants[name]()
        except Exception as exc:
            del variants[name]
            lines.append(f"{name}: failed, not timed: {type(exc).__name__}: {exc}")
            continue
        diff = float((value.float() - base.float()).abs().max())
        if value.shape != base.shape or not diff <= TOLERANCE:
            raise AssertionError(f"{name} differs from {SERIAL} by {diff:.3g} (tolerance {TOLERANCE})")
        lines.append(f"{name}: largest difference from serial {diff:.2g}")
    return lines


def gpu_case(
    device: str | None,
    steps: int = STEPS,
    repeats: int = 10,
    batches: Sequence[int] = BATCHES,
    *,
    size: int = SIZE,
) -> tuple[list[Table], list[str], str]:
    """Measure every variant at every batch on `device`: the tables, notes, and a verdict line."""
    sync: Callable[[], object] | None = torch.cuda.synchronize if device == "cuda" else None
    where = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (serial: no streams, no capture)"
    tables: list[Table] = []
    notes: list[str] = []
    parts: list[str] = []
    for batch in batches:
        variants = gpu_variants(device, batch, steps, size=size)
        notes += [f"batch {batch}: {line}" for line in agreement(variants)]
        stats = measure(variants, repeats, warmup=2, sync=sync)  # warm-up 2: capture warms, then captures
        title = (
            f"text2img on {where}: {steps} steps, guidance {GUIDANCE}, {size}x{size} px, batch {batch} "
            f"({repeats} runs each)"
        )
        tables.append(timing_table(title, stats, SERIAL))
        base = stats[SERIAL].median
        ratios = ", ".join(f"{n.split(' (')[0]} {ratio_text(s.median / base)}" for n, s in stats.items())
        parts.append(f"batch {batch}: {ratios} of serial")
    notes.append(f"device: {where}; each timed run ends with torch.cuda.synchronize() on CUDA")
    return tables, notes, "; ".join(parts)


def gpu(steps: int = STEPS, repeats: int = 10, batches: Sequence[int] = BATCHES) -> CaseResult:
    """Case 5 on CUDA when there is a GPU; otherwise a result that says it was not measured."""
    title = "GPU: streams, fusion, CUDA-graph capture"
    if not torch.cuda.is_available():
        verdict = "not measured: no CUDA device here (torch.cuda.is_available() is False)"
        return CaseResult(5, title, TARGET, None, verdict)
    tables, notes, verdict = gpu_case("cuda", steps, repeats, batches)
    return CaseResult(5, title, TARGET, None, verdict, tables, notes, unjudged="n/a (no target)")


def main(argv: Sequence[str] | None = None) -> None:
    """Run case 5 and print its tables (or that there is no GPU)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 steps, 2 repeats")
    args = parser.parse_args(argv)
    quiet()
    steps, repeats = (3, 2) if args.quick else (STEPS, 10)
    print(gpu(steps, repeats).text(commit()))


if __name__ == "__main__":
    main()

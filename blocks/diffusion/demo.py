"""The text-to-image demo (`make demo`): tiny random components, checked, scheduled, run, saved as a PNG.

    python -m dfgraph_blocks.diffusion.demo [--steps 20] [--size 128] [--scheduler dpm++]
    [--out out/text2img.png]
    dfgraph check dfgraph_blocks.diffusion.demo:tiny_text2img

Next to the PNG it writes pictures that need nothing but a browser: the graph (`text2img.graph.svg`) and
its loop's stream schedule (`text2img.schedule.svg`), plus the same as Mermaid (`.mmd`), Graphviz (`.dot`)
and a Chrome/Perfetto trace of a simulated run (`text2img.trace.json`).

The components are built from configs with random weights (nothing can be downloaded here), so the
picture is structured noise; the point is the pipeline: the same graph runs a real checkpoint's UNet.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import PIL.Image
import torch

import dfgraph as df
from dfgraph import render
from dfgraph_blocks.diffusion import text2img, tiny


def tiny_text2img(scheduler: str = "dpm++", *, progress: bool = False) -> df.Graph:
    """The text2img graph around tiny random components (a factory for `dfgraph check`)."""
    return text2img(unet=tiny.unet(), scheduler=tiny.scheduler(scheduler), vae=tiny.vae(), progress=progress)


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write the first image of a batch in [0, 1] as an 8-bit PNG (diffusers' numpy_to_pil rounding)."""
    pixels = (image[0].permute(1, 2, 0).float().numpy() * 255).round().astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(pixels).save(path)


def write_pictures(program: df.Program, out: Path) -> list[Path]:
    """Pictures of the program's graph and schedule next to `out` (out/text2img.png -> out/text2img.*)."""
    stem = out.with_suffix("")
    texts = {
        ".graph.svg": render.graph_svg(program),
        ".graph.mmd": render.to_mermaid(program),
        ".graph.dot": render.to_dot(program),
        ".schedule.svg": render.schedule_svg(program, iterations=2),
        ".schedule.mmd": render.schedule_mermaid(program),
        ".trace.json": render.schedule_trace(program, iterations=2),
    }
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in texts.items():
        path = stem.with_name(stem.name + suffix)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Build, check, schedule, run and save."""
    parser = argparse.ArgumentParser(
        prog="python -m dfgraph_blocks.diffusion.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--steps", type=int, default=20, help="denoising steps (default 20)")
    parser.add_argument(
        "--size", type=int, default=128, help="image height and width in pixels (default 128)"
    )
    parser.add_argument("--scheduler", choices=tiny.SCHEDULERS, default="dpm++")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/text2img.png"))
    args = parser.parse_args(argv)

    graph = tiny_text2img(args.scheduler, progress=True)
    print(f"== check {graph.name}: {df.check(graph)}")
    print("== schedule of the unfused loop body (with device='cuda' these streams run concurrently):")
    scheduled = df.compile(graph, streams="auto", fuse=False)
    print(scheduled.schedule)
    pictures = write_pictures(scheduled, args.out)
    print(f"== pictures of the graph and its schedule: {', '.join(str(p) for p in pictures)}")
    program = df.compile(graph)  # fused: the two guidance branches run as one batch-2 UNet call
    for first, second in program.fused:
        print(f"== fused: {first} + {second} run as one batched UNet call")
    prompt, negative = tiny.prompt_embeddings(args.seed)
    start = time.perf_counter()
    result = program(
        prompt_embeds=prompt,
        negative_prompt_embeds=negative,
        num_inference_steps=args.steps,
        guidance_scale=7.5,
        height=args.size,
        width=args.size,
        generator=torch.Generator().manual_seed(args.seed),
    )
    elapsed = time.perf_counter() - start
    save_png(result["image"], args.out)
    latents = tuple(result["latents"].shape)
    print(f"== {args.steps} steps in {elapsed:.2f} s; latents {latents}; wrote {args.out} ({args.size} px)")


if __name__ == "__main__":
    main()

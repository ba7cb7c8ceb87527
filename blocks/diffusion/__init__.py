"""Stable Diffusion's denoising core as dfgraph blocks on real diffusers components.

`text2img` and `img2img` build the graphs, `sd_auto` both in one (a Switch on whether `image` is
given); `sdxl_text2img` and `sdxl_img2img` are Stable Diffusion XL's (from prompts or embeddings);
`steps` holds the blocks, `prompts` the prompt encoders; `tiny` builds small random components for
tests, the demo and the benchmarks. Needs the `diffusers` extra.
"""

from dfgraph_blocks.diffusion.graphs import denoising_loop, denoising_step, img2img, sd_auto, text2img
from dfgraph_blocks.diffusion.sdxl import sdxl_img2img, sdxl_text2img

__all__ = [
    "denoising_loop",
    "denoising_step",
    "img2img",
    "sd_auto",
    "sdxl_img2img",
    "sdxl_text2img",
    "text2img",
]

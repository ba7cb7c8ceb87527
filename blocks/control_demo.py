"""Control flow in the example loop: a Switch picks how the state starts (img2img when an image is given,
else text2img), by Modular Diffusers' AutoPipelineBlocks rule; `df.specialize` gives each workflow alone.

Run `python -m dfgraph_blocks.control_demo` (part of `make demo`) to see the program's doc, run both
workflows through the one program, and compile the specialized text2img program.
"""

from __future__ import annotations

import dfgraph as df
from dfgraph_blocks.examples import guided_step, make_timesteps


@df.block(outputs="value")
def from_seed(seed: int) -> float:
    """text2img's start: a state drawn from a seed (stands in for random latents)."""
    return float(seed % 7) + 1.0


@df.block(outputs="value")
def from_image(image: float, strength: float = 0.5) -> float:
    """img2img's start: a given state, partly kept (stands in for encoding and noising an image)."""
    return image * strength


# The first case whose trigger input is not None, else the default: AutoPipelineBlocks as a Switch.
prepare = df.Switch(
    {"img2img": from_image, "text2img": from_seed},
    on=df.first_given({"img2img": "image"}, default="text2img"),
    name="prepare",
)
auto_loop = df.Sequential(
    prepare,
    make_timesteps,
    df.Loop(guided_step, over="timesteps", item="t", name="denoise"),
    name="auto_loop",
)


def main() -> None:
    """Show the program's doc (its switch included), run both workflows, and the specialized one."""
    auto = df.compile(auto_loop)
    print(f"== auto_loop: {df.check(auto_loop)}")
    print(auto.doc)
    weights = {"num_steps": 5, "cond_weight": 0.9, "uncond_weight": 0.5}
    print("auto_loop(seed=3, ...) ->", auto(seed=3, **weights, output="value"))
    print("auto_loop(image=4.0, ...) ->", auto(image=4.0, **weights, output="value"))
    text2img = df.compile(df.specialize(auto_loop, image=None))  # the Switch resolved: one workflow
    print("specialize(auto_loop, image=None) inputs:", df.ports_text(text2img.inputs))
    print("  (seed=3, ...) ->", text2img(seed=3, **weights, output="value"))


if __name__ == "__main__":
    main()

"""Example graphs: the counter loops of the Modular Diffusers loop guide, and a small guided-update graph.

Run `python -m dfgraph_blocks.examples` (or `make demo`) to check them, show their generated code and run
them.
"""

from __future__ import annotations

from collections.abc import Sequence

import dfgraph as df


@df.block(outputs="x")
def add_one(x: int) -> int:
    """The guide's loop block: x += 1."""
    return x + 1


# One block in the loop: x == 10 after 10 steps (the guide's `LoopWrapper` with "block1").
counter_one = df.Loop(df.Sequential({"block1": add_one}), times="num_steps", name="counter_one")

# Two blocks in the loop: x == 20 after 10 steps.
counter_two = df.Loop(
    df.Sequential({"block1": add_one, "block2": add_one}), times="num_steps", name="counter_two"
)


@df.block(outputs="scaled")
def scale(value: float, t: float) -> float:
    """Scale the state by the current step (stands in for scale_model_input)."""
    return value / (1.0 + t)


@df.block(outputs="prediction")
def predict(scaled: float, weight: float) -> float:
    """A 'denoiser' branch: one weighted prediction (stands in for the UNet)."""
    return scaled * weight


@df.block(outputs="guided")
def guide(cond: float, uncond: float, guidance_scale: float = 2.0) -> float:
    """Classifier-free guidance: uncond + s * (cond - uncond)."""
    return uncond + guidance_scale * (cond - uncond)


@df.block(outputs="value")
def update(value: float, guided: float, step_size: float = 0.1) -> float:
    """A 'scheduler step': move the state towards the guided prediction."""
    return value - step_size * guided


@df.block(outputs="timesteps")
def make_timesteps(num_steps: int) -> Sequence[float]:
    """Descending timesteps, like a scheduler's set_timesteps."""
    return [float(num_steps - k) for k in range(num_steps)]


# The loop body as an explicit Graph: two independent branches (fan-out) joined by guidance.
guided_step = df.Graph(
    nodes={"scale": scale, "cond": predict, "uncond": predict, "guide": guide, "update": update},
    edges=[
        ("scale.scaled", "cond.scaled"),
        ("scale.scaled", "uncond.scaled"),
        ("cond_weight", "cond.weight"),
        ("uncond_weight", "uncond.weight"),
        ("cond.prediction", "guide.cond"),
        ("uncond.prediction", "guide.uncond"),
        ("guide.guided", "update.guided"),
    ],
    outputs=["update.value"],
    name="step",
)

guided_loop = df.Sequential(
    make_timesteps, df.Loop(guided_step, over="timesteps", item="t", name="denoise"), name="guided_loop"
)


@df.block(outputs="x")
def halve(x: float) -> float:
    """Halve a float: fed an int counter below, it changes the carried type."""
    return x / 2


# Deliberately wrong, to show the checker: the carried x enters as int and leaves as float (DF101),
# and carry= names a misspelt variable (DF003 with a did-you-mean).
miswired = df.Loop(df.Sequential(add_one, halve), times="num_steps", carry=("xx",), name="miswired")

EXAMPLES = {"counter_one": counter_one, "counter_two": counter_two, "guided_loop": guided_loop}


def main() -> None:
    """Check, show and run every example; then show what the checker says about a miswired graph."""
    for name, graph in EXAMPLES.items():
        program = df.compile(graph)
        print(f"== {name}: {df.check(graph)}")
        print(program.source)
    print("counter_one(num_steps=10, x=0) ->", df.compile(counter_one)(num_steps=10, x=0, output="x"))
    print("counter_two(num_steps=10, x=0) ->", df.compile(counter_two)(num_steps=10, x=0, output="x"))
    result = df.compile(guided_loop)(num_steps=5, value=1.0, cond_weight=0.9, uncond_weight=0.5)
    print("guided_loop(num_steps=5, value=1.0, ...) ->", result["value"])
    print("\n== miswired (expected to fail the check):")
    print(df.check(miswired))


if __name__ == "__main__":
    main()

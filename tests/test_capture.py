"""CUDA-graph capture (capture=True) verified without a GPU, through a runtime that fakes capture.

The fake runtime "captures" a segment by keeping its function and the static inputs it was captured
on; a replay runs the function again on those same static inputs and writes the results into the
static outputs in place, as a real graph writes into its memory pool. So these tests prove the
plumbing: which blocks are captured, that each step's inputs reach the static buffers, that outputs are
copied out before the next replay overwrites them, when a new capture is needed, and that failures name
the block. They cannot prove that torch accepts a block for capture: the CUDA test at the end does,
where a GPU is lent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import Tensor

import dfgraph as df
import dfgraph.cuda
from dfgraph.capture import MAX_GRAPHS


class FakeGraph:
    def __init__(self, rt: FakeCapture, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]) -> None:
        self.rt, self.fn, self.args = rt, fn, args
        self.outputs: tuple[Any, ...] = ()

    def replay(self) -> None:
        self.rt.replays += 1
        self.rt.phase = "replay"
        fresh = self.fn(*self.args)  # reads only the static inputs, as the recorded kernels would
        self.rt.phase = "eager"
        for static, value in zip(self.outputs, fresh, strict=True):
            if isinstance(static, Tensor):
                static.copy_(value)  # the graph's memory pool is written in place
            else:
                assert static == value, "a Python output changed between replays"


class FakeCapture:
    """The capture part of the CUDA runtime, on the CPU."""

    def __init__(self) -> None:
        self.warmups = self.captures = self.replays = 0
        self.phase = "eager"
        self.scalars: list[Tensor] = []

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, Tensor)

    def clone(self, tensor: Tensor) -> Tensor:
        return tensor.clone()

    def scalar(self, value: float) -> Tensor:
        buffer = torch.tensor(value, dtype=torch.float64)
        self.scalars.append(buffer)
        return buffer

    def warm_up(self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]) -> tuple[Any, ...]:
        self.warmups += 1
        return fn(*args)

    def capture(
        self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]
    ) -> tuple[Any, tuple[Any, ...]]:
        self.captures += 1
        graph = FakeGraph(self, fn, args)
        self.phase = "capture"
        try:
            graph.outputs = fn(*args)
        finally:
            self.phase = "eager"
        return graph, graph.outputs


@pytest.fixture
def rt() -> Iterator[FakeCapture]:
    fake = FakeCapture()
    dfgraph.cuda.RUNTIME = fake  # type: ignore[assignment]
    try:
        yield fake
    finally:
        dfgraph.cuda.RUNTIME = None


@df.block(outputs="scaled")
def scale(latents: Tensor, t: float) -> Tensor:
    return latents / (1.0 + t)


@df.block(outputs="noise")
def predict(scaled: Tensor, weight: Tensor) -> Tensor:
    return torch.tanh(scaled @ weight)


class Stepper:
    """A scheduler-like block with Python-side state: it must run eagerly, never from a graph."""

    def __init__(self) -> None:
        self.step_index = 0

    def __call__(self, latents: Tensor, noise: Tensor) -> Tensor:
        self.step_index += 1
        return latents - noise / self.step_index


def body(stepper: Any) -> df.Sequential:
    step = df.block(outputs="latents", mutates=("scheduler",), name="step")(stepper)
    return df.Sequential(scale, predict, step, name="body")


def loop(stepper: Any) -> df.Loop:
    return df.Loop(body(stepper), over="timesteps", item="t", name="denoise")


def inputs(steps: int = 6, size: int = 3) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    return {
        "timesteps": [float(steps - k) for k in range(steps)],
        "latents": torch.randn(2, size, generator=generator),
        "weight": torch.randn(size, size, generator=generator),
    }


def test_capturable_runs_become_segments_and_results_match_eager(rt: FakeCapture) -> None:
    captured = df.compile(loop(Stepper()), device="cuda", capture=True)
    assert captured.captured == (("denoise/scale", "denoise/predict"),)  # step mutates: eager
    expected = df.compile(loop(Stepper()))(**inputs(), output="latents")
    assert torch.allclose(captured(**inputs(), output="latents"), expected, atol=1e-12)
    # one warm-up, one capture, then replays only; floats went through one static buffer
    assert (rt.warmups, rt.captures, rt.replays) == (1, 1, 5)  # the capture step replays too
    assert len(rt.scalars) == 1
    assert "_segment_1_graph.run(_segment_1, (latents, t, weight))" in captured.source


def test_a_second_call_replays_the_same_graph_with_new_inputs(rt: FakeCapture) -> None:
    program, reference = df.compile(loop(Stepper()), device="cuda", capture=True), df.compile(loop(Stepper()))
    program(**inputs())
    reference(**inputs())  # the stepper's state carries over to the next call, in both
    other = inputs()
    other["latents"] = other["latents"] * 3
    expected = reference(**other, output="latents")
    assert torch.allclose(program(**other, output="latents"), expected, atol=1e-12)
    assert (rt.warmups, rt.captures) == (1, 1)
    assert program.segments[0].replays == 5 + 6


def test_a_new_shape_is_captured_again(rt: FakeCapture) -> None:
    program, reference = df.compile(loop(Stepper()), device="cuda", capture=True), df.compile(loop(Stepper()))
    program(**inputs(size=3))
    reference(**inputs(size=3))
    wider = inputs(size=5)
    expected = reference(**wider, output="latents")
    assert torch.allclose(program(**wider, output="latents"), expected, atol=1e-12)
    assert (rt.warmups, rt.captures) == (2, 2)
    assert len(program.segments[0].graphs) == 2


@df.block(outputs="trace")
def remember(noise: Tensor) -> Tensor:
    return noise * 1


def test_outputs_are_copied_before_the_next_replay_overwrites_them(rt: FakeCapture) -> None:
    # 'trace' is a loop output (not carried): the last step's value must survive later replays
    graph = df.Loop(df.Sequential(scale, predict, remember, body(Stepper()).children[2][1]), over="timesteps")
    program = df.compile(graph, device="cuda", capture=True)
    reference = df.compile(
        df.Loop(df.Sequential(scale, predict, remember, body(Stepper()).children[2][1]), over="timesteps")
    )
    got, want = program(**inputs()), reference(**inputs())
    assert torch.allclose(got["trace"], want["trace"], atol=1e-12)
    kept = got["trace"].clone()
    program(**inputs(steps=4))  # replays write the graph's output buffers again
    assert torch.equal(got["trace"], kept)  # what the first call returned is not aliased to them


@df.block(outputs="scaled")
def indexed(latents: Tensor, i: int) -> Tensor:
    return latents * (i + 1)


def test_an_int_that_changes_every_step_is_refused_with_its_name(rt: FakeCapture) -> None:
    graph = df.Loop(df.Sequential(indexed, predict, body(Stepper()).children[2][1]), over="timesteps")
    program = df.compile(graph, device="cuda", capture=True)
    with pytest.raises(df.BlockError, match=r"'loop/indexed\.i' changes from step to step") as info:
        program(**inputs(steps=MAX_GRAPHS + 4))
    assert info.value.path == "loop/indexed + loop/predict"
    assert ("loop", MAX_GRAPHS) in info.value.iterations  # steps 0..3 each warmed up a new signature


@df.block(outputs="scaled")
def syncs(latents: Tensor, t: float) -> Tensor:
    if dfgraph.cuda.RUNTIME is not None and dfgraph.cuda.RUNTIME.phase == "capture":  # type: ignore[attr-defined]
        raise RuntimeError("operation not permitted when stream is capturing")
    return latents * 2


def test_a_block_that_fails_under_capture_is_named(rt: FakeCapture) -> None:
    graph = df.Loop(df.Sequential(syncs, predict, body(Stepper()).children[2][1]), over="timesteps")
    program = df.compile(graph, device="cuda", capture=True)
    with pytest.raises(df.BlockError, match="cannot be captured as a CUDA graph") as info:
        program(**inputs())
    assert info.value.path == "loop/syncs"
    assert ("loop", 1) in info.value.iterations  # step 0 warmed up, step 1 captured


def test_capture_needs_cuda() -> None:
    with pytest.raises(ValueError, match="needs device='cuda'"):
        df.compile(loop(Stepper()), capture=True)


def test_bodies_without_capturable_blocks_run_eagerly(rt: FakeCapture) -> None:
    graph = df.Loop(body(Stepper()).children[2][1], over="timesteps")
    program = df.compile(graph, device="cuda", capture=True)
    assert program.captured == ()
    generator = torch.Generator().manual_seed(1)
    result = program(timesteps=[1.0, 2.0], latents=torch.ones(2), noise=torch.randn(2, generator=generator))
    assert result["latents"].shape == (2,)
    assert rt.captures == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the device machine)")
def test_text2img_captured_on_a_gpu_matches_eager() -> None:
    from dfgraph_blocks.diffusion import text2img, tiny

    unet = tiny.unet().cuda()
    prompt, negative = (e.cuda() for e in tiny.prompt_embeddings())
    results = []
    for capture in (False, True):
        graph = text2img(unet=unet, scheduler=tiny.scheduler("ddim"))
        program = df.compile(graph, device="cuda", fuse=True, capture=capture)
        generator = torch.Generator("cuda").manual_seed(0)
        results.append(
            program(
                prompt_embeds=prompt,
                negative_prompt_embeds=negative,
                num_inference_steps=8,
                generator=generator,
                output="latents",
            )
        )
        if capture:
            assert program.captured == (
                ("text2img/denoise/cfg/step/cond+uncond", "text2img/denoise/cfg/step/guidance"),
                ("text2img/denoise/single/step/cond",),  # the guidance-off case's loop
            )
    assert torch.allclose(results[0], results[1], atol=1e-5)


@df.block(outputs="noise")
def guided(scaled: Tensor, weight: Tensor, guidance: float) -> Tensor:
    assert isinstance(guidance, float)  # a float from outside the loop stays a Python float under capture
    return scaled @ weight * (guidance if guidance > 1.0 else 1.0)


def test_floats_from_outside_the_loop_stay_python_values(rt: FakeCapture) -> None:
    stepper = body(Stepper()).children[2][1]
    graph = df.Loop(df.Sequential(scale, guided, stepper), over="timesteps", name="denoise")
    program = df.compile(graph, device="cuda", capture=True)
    reference = df.compile(
        df.Loop(df.Sequential(scale, guided, body(Stepper()).children[2][1]), over="timesteps")
    )
    got = program(**inputs(), guidance=7.5, output="latents")
    assert torch.allclose(got, reference(**inputs(), guidance=7.5, output="latents"), atol=1e-12)
    assert len(rt.scalars) == 1  # only t, the loop item, went through a device buffer
    program(**inputs(), guidance=3.0)  # another value of it: captured again (its own graph)
    assert rt.captures == 2


@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
def test_text2img_captures_the_unet_and_guidance(rt: FakeCapture, guidance_scale: float) -> None:
    from dfgraph_blocks.diffusion import text2img, tiny

    unet = tiny.unet()
    prompt, negative = tiny.prompt_embeddings()
    results = []
    for capture in (False, True):
        graph = text2img(unet=unet, scheduler=tiny.scheduler("dpm++"))
        program = df.compile(graph, device="cuda" if capture else None, fuse=True, capture=capture)
        results.append(
            program(
                prompt_embeds=prompt,
                negative_prompt_embeds=negative,
                guidance_scale=guidance_scale,
                num_inference_steps=5,
                generator=torch.Generator().manual_seed(0),
                output="latents",
            )
        )
    # scale_model_input and the scheduler step mutate the scheduler: they run eagerly around the graph
    # guidance on or off is a Switch between two loops: each loop body has its own captured segment
    assert program.captured == (
        ("text2img/denoise/cfg/step/cond+uncond", "text2img/denoise/cfg/step/guidance"),
        ("text2img/denoise/single/step/cond",),
    )
    assert torch.equal(results[0], results[1])
    assert (rt.warmups, rt.captures, rt.replays) == (1, 1, 4)

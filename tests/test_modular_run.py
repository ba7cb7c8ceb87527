"""Modular Diffusers block sets RUN under dfgraph: `df.compile(from_modular(...))` equals `ModularPipeline`.

Tiny random SDXL components (`tiny.sdxl_components()`, nothing from a model hub), diffusers' own
`StableDiffusionXLAutoBlocks`, the same inputs and seed on both sides: equal float32 latents and the same
number of UNet calls."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers")

import numpy as np
import PIL.Image
import torch
from diffusers.guiders import ClassifierFreeGuidance
from diffusers.modular_pipelines import (
    ComponentsManager,
    InputParam,
    LoopSequentialPipelineBlocks,
    ModularPipelineBlocks,
    OutputParam,
    PipelineState,
    StableDiffusionXLAutoBlocks,
)
from diffusers.modular_pipelines.stable_diffusion_xl.denoise import StableDiffusionXLDenoiseStep
from hypothesis import given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph_blocks.diffusers_compat import ModularLeaf, from_modular
from dfgraph_blocks.diffusion import tiny

ROOT = Path(__file__).resolve().parents[1]
STEPS = 4
SEED = 0

# -- a loop whose sub-blocks pass values through the BlockState without declaring them -------------------


class Scale(ModularPipelineBlocks):
    """Writes `scaled` without declaring it (as SDXL's before_denoiser writes scaled_latents)."""

    @property
    def inputs(self) -> list[InputParam]:
        return [InputParam("x", type_hint=float, required=True)]

    def __call__(self, components: Any, block_state: Any, i: int, t: float) -> Any:
        block_state.scaled = block_state.x * components.factor
        return components, block_state


class Update(ModularPipelineBlocks):
    """Reads `scaled` and `x` without declaring them (as SDXL's after_denoiser reads noise_pred, latents);
    `offset` is its own scratch value, written before it is read, so it stays local."""

    @property
    def intermediate_outputs(self) -> list[OutputParam]:
        return [OutputParam("x", type_hint=float)]

    def __call__(self, components: Any, block_state: Any, i: int, t: float) -> Any:
        block_state.offset = t - block_state.x
        block_state.x = block_state.scaled + block_state.offset
        return components, block_state


class HiddenLoop(LoopSequentialPipelineBlocks):
    block_classes = (Scale, Update)
    block_names = ("scale", "update")

    @property
    def description(self) -> str:
        return "x = factor * x + t - x for every t"

    @property
    def loop_inputs(self) -> list[InputParam]:
        return [InputParam("timesteps", type_hint=list[float], required=True)]

    def __call__(self, components: Any, state: Any) -> Any:
        block_state = self.get_block_state(state)
        for i, t in enumerate(block_state.timesteps):
            components, block_state = self.loop_step(components, block_state, i=i, t=t)
        self.set_block_state(state, block_state)
        return components, state


def undeclared(graph: Any) -> set[tuple[str, str]]:
    """(path, port) of every note about undeclared BlockState traffic."""
    return {
        (d.path.rsplit("/", 1)[-1], d.message.split("block_state.", 1)[1].split()[0])
        for d in (*df.check(graph).warnings, *df.check(graph).ignored)
        if "undeclared:" in d.message
    }


def test_undeclared_block_state_values_become_ports_with_a_note() -> None:
    loop = from_modular(HiddenLoop(), components={"factor": 3.0})
    body = dict(loop.body.children)
    scale, update = body["scale"], body["update"]
    assert isinstance(scale, ModularLeaf) and isinstance(update, ModularLeaf)
    assert [p.name for p in scale.outputs] == ["scaled"]
    assert {p.name for p in update.inputs} == {"scaled", "x", "i", "t"}  # not the local `offset`
    assert dict((p.name, p.type) for p in update.inputs)["x"] is float  # typed by the declared writer
    assert undeclared(loop) == {
        ("scale.scaled", "scaled"),
        ("update.scaled", "scaled"),
        ("update.x", "x"),
    }
    codes = {d.code for d in df.check(loop).warnings if "undeclared:" in d.message}
    assert codes == {"DF202"}
    message = next(d.message for d in df.check(loop).warnings if d.path.endswith("update.scaled"))
    assert "Update.__call__ reads block_state.scaled without declaring it (written by scale)" in message


@settings(max_examples=25, deadline=None)
@given(
    x=st.floats(-100, 100),
    factor=st.floats(-3, 3),
    timesteps=st.lists(st.floats(-10, 10), max_size=5),
)
def test_a_loop_with_undeclared_values_runs_like_diffusers(
    x: float, factor: float, timesteps: list[float]
) -> None:
    components = types.SimpleNamespace(factor=factor)
    ours = df.compile(from_modular(HiddenLoop(), components=components))(timesteps=timesteps, x=x, output="x")
    state = PipelineState()
    state.set("timesteps", timesteps)
    state.set("x", x)
    _, state = HiddenLoop()(components, state)
    assert ours == state.get("x")


def test_sdxl_loop_traffic_is_inferred_from_the_sub_blocks_source() -> None:
    """The values docs/modular_findings.md names: scaled_latents, noise_pred, and the read of latents."""
    assert undeclared(from_modular(StableDiffusionXLDenoiseStep())) == {
        ("before_denoiser.scaled_latents", "scaled_latents"),
        ("denoiser.scaled_latents", "scaled_latents"),
        ("denoiser.noise_pred", "noise_pred"),
        ("after_denoiser.noise_pred", "noise_pred"),
        ("after_denoiser.latents", "latents"),
    }


# -- SDXL: the shipped auto blocks, compiled, against ModularPipeline ------------------------------------


@pytest.fixture(scope="module")
def sdxl() -> dict[str, Any]:
    """Tiny SDXL components with diffusers' CFG guider, and a ModularPipeline holding them."""
    components = {**tiny.sdxl_components(), "guider": ClassifierFreeGuidance(guidance_scale=5.0)}
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(**components)
    pipe.set_progress_bar_config(disable=True)
    calls: list[int] = []
    components["unet"].register_forward_hook(lambda *_: calls.append(1))
    return {"components": components, "pipe": pipe, "calls": calls}


def images() -> dict[str, PIL.Image.Image]:
    rng = np.random.default_rng(SEED)
    image = PIL.Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = PIL.Image.fromarray((rng.random((64, 64)) > 0.5).astype(np.uint8) * 255)
    return {"image": image, "mask_image": mask}


def workflow_inputs(workflow: str) -> dict[str, Any]:
    inputs: dict[str, Any] = {"prompt": "a red cat", "negative_prompt": "blurry"}
    inputs |= {"num_inference_steps": STEPS, "height": 64, "width": 64}
    if workflow == "image2image":
        inputs |= {"image": images()["image"], "strength": 0.6}
    if workflow == "inpainting":
        inputs |= {**images(), "strength": 0.6}
    return inputs


def both(sdxl: dict[str, Any], program: Any, workflow: str) -> tuple[torch.Tensor, int, torch.Tensor, int]:
    """(our latents, our UNet calls, Modular Diffusers' latents, its UNet calls) for one workflow."""
    inputs, calls = workflow_inputs(workflow), sdxl["calls"]
    calls.clear()
    ours = program(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    our_calls = len(calls)
    calls.clear()
    theirs = sdxl["pipe"](**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    return ours, our_calls, theirs, len(calls)


def pipeline_of(blocks: Any, components: dict[str, Any]) -> Any:
    """The blocks' ModularPipeline holding `components`, its progress bar off."""
    pipe = blocks.init_pipeline()
    pipe.update_components(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def components_as(sdxl: dict[str, Any], form: str) -> Any:
    if form == "pipeline":
        return sdxl["pipe"]
    if form == "dict":
        return dict(sdxl["components"])
    manager = ComponentsManager()
    for name, component in sdxl["components"].items():
        manager.add(name, component)
    return manager


@pytest.mark.parametrize("form", ["pipeline", "dict", "manager"])
def test_sdxl_text2image_one_graph_equals_modular_pipeline(sdxl: dict[str, Any], form: str) -> None:
    graph = from_modular(StableDiffusionXLAutoBlocks(), components=components_as(sdxl, form))
    report = df.check(graph)
    # the known findings are suppressed, still listed; the loops' undeclared BlockState traffic is reported
    assert report.ok and all(d.message.startswith("undeclared: ") for d in report.diagnostics)
    assert {"DF001", "DF202", "DF206"} <= {d.code for d in report.ignored}
    ours, our_calls, theirs, their_calls = both(sdxl, df.compile(graph), "text2image")
    assert ours.dtype == theirs.dtype == torch.float32
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == 2 * STEPS  # CFG: two batch-1 UNet calls per step


def test_sdxl_image2image_one_graph_equals_modular_pipeline(sdxl: dict[str, Any]) -> None:
    graph = from_modular(StableDiffusionXLAutoBlocks(), components=sdxl["pipe"])
    ours, our_calls, theirs, their_calls = both(sdxl, df.compile(graph), "image2image")
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == 2 * round(STEPS * 0.6)  # strength cuts the steps


@pytest.mark.parametrize("workflow", ["text2image", "image2image"])
def test_a_resolved_sdxl_workflow_equals_modular_pipeline(sdxl: dict[str, Any], workflow: str) -> None:
    graph = from_modular(
        StableDiffusionXLAutoBlocks(),
        workflow=workflow,
        components=sdxl["pipe"],
    )
    ours, our_calls, theirs, their_calls = both(sdxl, df.compile(graph), workflow)
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls


def test_sdxl_inpainting_one_graph_equals_modular_pipeline(sdxl: dict[str, Any]) -> None:
    """Equal only because the inputs `prepare_latents` rebinds (image_latents, masked_image_latents) are
    outputs of the converted block: without them the latents differed by 2.4e-7."""
    graph = from_modular(StableDiffusionXLAutoBlocks(), components=sdxl["pipe"])
    prepare = dict(dict(dict(graph.children)["denoise"].children)["before_denoise"].cases["inpaint"].children)
    rebound = {p.name for p in prepare["prepare_latents"].outputs}
    assert {"image_latents", "masked_image_latents"} <= rebound
    ours, our_calls, theirs, their_calls = both(sdxl, df.compile(graph), "inpainting")
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == 2 * round(STEPS * 0.6)


def test_the_one_graph_compiles_because_the_known_findings_are_suppressed(sdxl: dict[str, Any]) -> None:
    reported = from_modular(StableDiffusionXLAutoBlocks(), components=sdxl["pipe"], known_findings=False)
    with pytest.raises(df.WiringError, match="DF001"):
        df.compile(reported)
    graph = from_modular(StableDiffusionXLAutoBlocks(), components=sdxl["pipe"])
    report = df.check(graph)
    assert report.ok and {d.code for d in report.diagnostics} == {"DF202"}  # the undeclared traffic
    assert {d.code for d in report.ignored} == {"DF001", "DF202", "DF206"}
    assert all(d.suppressed_by.startswith("ignore= of ") for d in report.ignored)


# Every guider of test_guiders but auto-guidance-dropout (its dropout draws from the global generator).
# Each side gets a fresh guider: diffusers' own ModularPipeline fails on its second call with a
# cfg-start-stop or auto-guidance guider (the text encoder reads the guider's step left by the last
# call, `num_conditions > 1`, and skips the negative embeddings a later step needs).
GUIDED = ["cfg-rescale-original", "cfg-start-stop", "cfg-scale-1", "cfg-zero-star", "apg", "apg-mix"]
GUIDED += ["pag", "slg", "seg", "tcfg", "auto-guidance"]


def fresh_pipe(sdxl: dict[str, Any], guider: Any) -> Any:
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(**{**sdxl["components"], "guider": guider})
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("name", GUIDED)
def test_sdxl_text2image_with_a_guider_equals_modular_pipeline(sdxl: dict[str, Any], name: str) -> None:
    from test_guiders import GUIDERS  # every diffusers guider that runs with the tiny UNet

    ours_pipe, theirs_pipe = fresh_pipe(sdxl, GUIDERS[name]()), fresh_pipe(sdxl, GUIDERS[name]())
    graph = from_modular(StableDiffusionXLAutoBlocks(), components=ours_pipe)
    ours, our_calls, theirs, their_calls = both(
        {**sdxl, "pipe": theirs_pipe}, df.compile(graph), "text2image"
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls >= STEPS


# -- ControlNet: the same auto blocks with a tiny ControlNetModel built from the tiny UNet ------------------


@pytest.fixture(scope="module")
def sdxl_controlnet(sdxl: dict[str, Any]) -> dict[str, Any]:
    """The SDXL components plus a ControlNet derived from their UNet, in a ModularPipeline."""
    from diffusers import ControlNetModel

    torch.manual_seed(SEED)
    controlnet = ControlNetModel.from_unet(sdxl["components"]["unet"])
    components = {**sdxl["components"], "controlnet": controlnet}
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(**components)
    pipe.set_progress_bar_config(disable=True)
    controlnet_calls: list[int] = []
    controlnet.register_forward_hook(lambda *_: controlnet_calls.append(1))
    return {**sdxl, "components": components, "pipe": pipe, "controlnet_calls": controlnet_calls}


@pytest.mark.parametrize("workflow", ["text2image", "image2image", "inpainting"])
def test_sdxl_controlnet_workflows_equal_modular_pipeline(
    sdxl_controlnet: dict[str, Any], workflow: str
) -> None:
    """`control_image` chooses the ControlNet cases of three Switches at run time, as diffusers chooses."""
    program = df.compile(from_modular(StableDiffusionXLAutoBlocks(), components=sdxl_controlnet["pipe"]))
    inputs = {**workflow_inputs(workflow), "control_image": images()["image"]}
    unet_calls, controlnet_calls = sdxl_controlnet["calls"], sdxl_controlnet["controlnet_calls"]
    results = []
    for run in (program, sdxl_controlnet["pipe"]):
        unet_calls.clear()
        controlnet_calls.clear()
        latents = run(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
        results.append((latents, len(unet_calls), len(controlnet_calls)))
    (ours, our_unet, our_controlnet), (theirs, their_unet, their_controlnet) = results
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    steps = STEPS if workflow == "text2image" else round(STEPS * 0.6)
    assert our_unet == their_unet == our_controlnet == their_controlnet == 2 * steps

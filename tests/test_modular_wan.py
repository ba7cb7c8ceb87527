"""Modular Diffusers' Wan block sets RUN under dfgraph: `df.compile(from_modular(...))` equals diffusers.

Wan is video: a WanTransformer3DModel over 5-D latents (batch, 16 channels, frames, height, width), flow
matching through a UniPCMultistepScheduler, a guider around the transformer, and a UMT5 text encoder.
Tiny random components (`tiny.wan_components()`, nothing from a model hub), diffusers' own `WanBlocks`,
`Wan22Blocks` (two transformers switched at a boundary timestep) and `WanImage2VideoAutoBlocks` (auto
blocks: a df.Switch per auto block), the same inputs and seed on both sides: equal float32 latents and
the same number of transformer calls.

ftfy, which Wan's text encoder step calls to clean a prompt, is not installed here; when it is missing a
stand-in that returns the text unchanged (what ftfy.fix_text does to these ASCII prompts) is put in its
place, for both sides alike. The flf2v workflow is not run: its last-frame resize needs torchvision."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("diffusers")

import numpy as np
import PIL.Image
import torch
import transformers
from diffusers.guiders import AdaptiveProjectedGuidance, ClassifierFreeGuidance
from diffusers.modular_pipelines import (
    Wan22Blocks,
    WanBlocks,
    WanImage2VideoAutoBlocks,
)
from diffusers.modular_pipelines.wan import encoders as wan_encoders
from diffusers.modular_pipelines.wan.denoise import WanDenoiseStep
from diffusers.modular_pipelines.wan.modular_blocks_wan import WanCoreDenoiseStep
from hypothesis import given, settings
from hypothesis import strategies as st
from test_modular_run import components_as, pipeline_of

import dfgraph as df
from dfgraph_blocks.diffusers_compat import ModularLeaf, from_modular
from dfgraph_blocks.diffusion import tiny

STEPS = 3
SEED = 0
VIDEO = {"height": 16, "width": 16, "num_frames": 5}  # latents (1, 16, 2, 2, 2)
PROMPTS = {"prompt": "a red cat", "negative_prompt": "blurry", "max_sequence_length": tiny.TOKENS}


# The image-to-video set's findings (docs/modular_findings.md, Wan; carried by from_modular): in every
# workflow the first-frame latents are declared `Tensor | None` and always set; in the one graph the auto
# image encoder's skip case (neither image nor last_image) leaves `image_embeds` None, where diffusers
# fails too.


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Speed only (both sides run alike): these tiny models run 10 to 20 times slower on two torch
    threads than on one when the two cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def ftfy_or_stand_in() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        if not hasattr(wan_encoders, "ftfy"):
            patch.setattr(
                wan_encoders, "ftfy", types.SimpleNamespace(fix_text=lambda text: text), raising=False
            )
        yield


class Calls:
    """Counts forward calls per transformer (hooks on the shared modules)."""

    def __init__(self, **models: Any) -> None:
        self.by: dict[str, int] = dict.fromkeys(models, 0)
        for name, model in models.items():
            model.register_forward_hook(lambda *_, name=name: self._add(name))

    def _add(self, name: str) -> None:
        self.by[name] += 1

    def take(self) -> dict[str, int]:
        taken, self.by = self.by, dict.fromkeys(self.by, 0)
        return taken


@pytest.fixture(scope="module")
def wan() -> dict[str, Any]:
    """Tiny Wan components with diffusers' CFG guider, and WanBlocks' ModularPipeline holding them."""
    components = {**tiny.wan_components(SEED), "guider": ClassifierFreeGuidance(guidance_scale=5.0)}
    calls = Calls(transformer=components["transformer"])
    return {"components": components, "pipe": pipeline_of(WanBlocks(), components), "calls": calls}


def both(
    program: Callable[..., Any], pipe: Any, calls: Calls, **inputs: Any
) -> tuple[torch.Tensor, dict[str, int], torch.Tensor, dict[str, int]]:
    """(our latents, our transformer calls, Modular Diffusers' latents, its calls) for the same inputs."""
    calls.take()
    ours = program(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    our_calls = calls.take()
    theirs = pipe(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    return ours, our_calls, theirs, calls.take()


def undeclared(graph: Any) -> set[tuple[str, str]]:
    """(block, port) of every note about undeclared BlockState traffic."""
    return {
        tuple(d.path.rsplit("/", 1)[-1].split(".", 1))
        for d in df.check(graph).warnings
        if "undeclared:" in d.message
    }


# -- how the Wan loop passes its values ------------------------------------------------------------------


def test_the_wan_loop_traffic_is_inferred_from_the_sub_blocks_source() -> None:
    """The denoiser reads `dtype`, which only before_denoiser declares; after_denoiser reads and writes
    `latents` (the carry) declaring neither; `latent_model_input` and `noise_pred` pass undeclared."""
    loop = from_modular(WanDenoiseStep())
    assert undeclared(loop) == {
        ("before_denoiser", "latent_model_input"),
        ("denoiser", "latent_model_input"),
        ("denoiser", "dtype"),
        ("denoiser", "noise_pred"),
        ("after_denoiser", "noise_pred"),
        ("after_denoiser", "latents"),
    }
    after = dict(loop.body.children)["after_denoiser"]
    assert isinstance(after, ModularLeaf)
    assert {p.name: p.type for p in after.outputs} == {"latents": Any}  # no writer declares it
    # In the whole set a read is typed by the value's declared writer before the loop (the input step).
    whole = dict(dict(dict(from_modular(WanBlocks()).children)["denoise"].children)["denoise"].body.children)
    assert dict((p.name, p.type) for p in whole["denoiser"].inputs)["dtype"] is torch.dtype
    assert dict((p.name, p.type) for p in dict(loop.body.children)["denoiser"].inputs)["dtype"] is Any


def test_set_timesteps_rebinds_what_the_loop_reads() -> None:
    """WanSetTimestepsStep declares no output: it rebinds its inputs `timesteps` and
    `num_inference_steps` (diffusers writes them back); without them as outputs the loop would read the
    caller's (absent) timesteps."""
    graph = from_modular(WanBlocks())
    step = dict(dict(graph.children)["denoise"].children)["set_timesteps"]
    assert {p.name for p in step.outputs} == {"timesteps", "num_inference_steps"}
    inputs = {p.name: p for p in df.compile(graph).inputs}
    assert inputs["timesteps"].default is None  # optional, as in diffusers
    assert df.check(graph).errors == ()


# -- WanBlocks (text to video) against ModularPipeline ---------------------------------------------------


@pytest.mark.parametrize("form", ["pipeline", "dict", "manager"])
def test_wan_text2video_equals_modular_pipeline(wan: dict[str, Any], form: str) -> None:
    graph = from_modular(WanBlocks(), components=components_as(wan, form))
    assert {d.code for d in df.check(graph).diagnostics} == {"DF202"}  # no finding to suppress
    ours, our_calls, theirs, their_calls = both(
        df.compile(graph), wan["pipe"], wan["calls"], **PROMPTS, **VIDEO, num_inference_steps=STEPS
    )
    assert ours.dtype == theirs.dtype == torch.float32
    assert ours.shape == (1, 16, 2, 2, 2)
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == {"transformer": 2 * STEPS}  # CFG: two batch-1 calls per step


def test_wan_core_denoise_from_prompt_embeddings_equals_modular_pipeline(wan: dict[str, Any]) -> None:
    """WanCoreDenoiseStep (no text encoder) fed the text encoder's embeddings: equal to its own
    ModularPipeline, and to the whole text-to-video run from the prompt."""
    full = df.compile(from_modular(WanBlocks(), components=wan["pipe"]))
    inputs = {**PROMPTS, **VIDEO, "num_inference_steps": STEPS}
    embeddings = full(**inputs, output=["prompt_embeds", "negative_prompt_embeds"])
    assert embeddings["prompt_embeds"].shape == (1, tiny.TOKENS, tiny.WAN_TEXT_DIM)
    assert not torch.equal(embeddings["prompt_embeds"], embeddings["negative_prompt_embeds"])
    core_graph = from_modular(WanCoreDenoiseStep(), components=dict(wan["components"]))
    core = df.compile(core_graph)
    core_pipe = pipeline_of(WanCoreDenoiseStep(), wan["components"])
    ours, our_calls, theirs, their_calls = both(
        core, core_pipe, wan["calls"], **embeddings, **VIDEO, num_inference_steps=STEPS
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == {"transformer": 2 * STEPS}
    whole = full(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    assert torch.equal(ours, whole)


def test_the_core_denoise_step_needs_its_suppression_as_diffusers_needs_negative_embeddings(
    wan: dict[str, Any],
) -> None:
    graph = from_modular(WanCoreDenoiseStep(), components=wan["pipe"], known_findings=False)
    with pytest.raises(df.WiringError, match=r"denoiser\.negative_prompt_embeds: error\[DF001\]"):
        df.compile(graph)
    pipe = pipeline_of(
        WanCoreDenoiseStep(), {**wan["components"], "guider": ClassifierFreeGuidance(guidance_scale=1.0)}
    )
    with pytest.raises(ValueError, match="Required input 'negative_prompt_embeds' is missing"):
        pipe(prompt_embeds=torch.zeros(1, tiny.TOKENS, tiny.WAN_TEXT_DIM), **VIDEO, num_inference_steps=1)


def test_guidance_off_with_embeddings_equals_modular_pipeline(wan: dict[str, Any]) -> None:
    """Guidance off (CFG scale 1): one transformer call a step. From the text prompt it cannot run on
    either side: diffusers' WanTextEncoderStep.encode_prompt returns `negative_prompt_embeds` unassigned
    when the guider needs no unconditional batch (UnboundLocalError), so the embeddings are fed in."""
    off = {**wan["components"], "guider": ClassifierFreeGuidance(guidance_scale=1.0)}
    inputs = {**PROMPTS, **VIDEO, "num_inference_steps": STEPS}
    with pytest.raises(UnboundLocalError):
        pipeline_of(WanBlocks(), off)(**inputs)
    with pytest.raises(df.BlockError) as raised:
        df.compile(from_modular(WanBlocks(), components=off))(**inputs)
    assert raised.value.path == "WanBlocks/text_encoder"
    assert isinstance(raised.value.__cause__, UnboundLocalError)
    generator = torch.Generator().manual_seed(SEED)
    embeddings = {
        "prompt_embeds": torch.randn(1, tiny.TOKENS, tiny.WAN_TEXT_DIM, generator=generator),
        "negative_prompt_embeds": torch.randn(1, tiny.TOKENS, tiny.WAN_TEXT_DIM, generator=generator),
    }
    core = df.compile(from_modular(WanCoreDenoiseStep(), components=off))
    ours, our_calls, theirs, their_calls = both(
        core,
        pipeline_of(WanCoreDenoiseStep(), off),
        wan["calls"],
        **embeddings,
        **VIDEO,
        num_inference_steps=STEPS,
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == {"transformer": STEPS}


GUIDERS: dict[str, Callable[[], Any]] = {
    "cfg-7": lambda: ClassifierFreeGuidance(guidance_scale=7.0),
    "apg": lambda: AdaptiveProjectedGuidance(
        guidance_scale=5.0, adaptive_projected_guidance_momentum=-0.5, adaptive_projected_guidance_rescale=3.0
    ),
}


@pytest.mark.parametrize("name", list(GUIDERS))
def test_wan_text2video_with_a_guider_equals_modular_pipeline(wan: dict[str, Any], name: str) -> None:
    """Each side gets a fresh guider (APG keeps a momentum across steps)."""
    ours_pipe = pipeline_of(WanBlocks(), {**wan["components"], "guider": GUIDERS[name]()})
    theirs_pipe = pipeline_of(WanBlocks(), {**wan["components"], "guider": GUIDERS[name]()})
    program = df.compile(from_modular(WanBlocks(), components=ours_pipe))
    ours, our_calls, theirs, their_calls = both(
        program, theirs_pipe, wan["calls"], **PROMPTS, **VIDEO, num_inference_steps=STEPS
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == {"transformer": 2 * STEPS}


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(0, 3))
def test_wan_equals_modular_pipeline_for_any_seed_and_steps(
    wan: dict[str, Any], seed: int, steps: int
) -> None:
    """At 0 steps diffusers' UniPC scheduler raises IndexError in set_timesteps (an empty schedule);
    dfgraph raises a BlockError naming that block, with diffusers' IndexError as the cause."""
    program = df.compile(from_modular(WanBlocks(), components=wan["pipe"]))
    inputs = {**PROMPTS, **VIDEO, "num_inference_steps": steps}
    if steps == 0:
        with pytest.raises(IndexError):
            wan["pipe"](**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
        with pytest.raises(df.BlockError) as raised:
            program(**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
        assert raised.value.path == "WanBlocks/denoise/set_timesteps"
        assert isinstance(raised.value.__cause__, IndexError)
        return
    wan["calls"].take()
    ours = program(**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
    our_calls = wan["calls"].take()
    theirs = wan["pipe"](**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
    assert torch.equal(ours, theirs)
    assert our_calls == wan["calls"].take() == {"transformer": 2 * steps}


# -- Wan 2.2: two transformers and two guiders, switched at a boundary timestep --------------------------


def test_wan22_text2video_equals_modular_pipeline(wan: dict[str, Any]) -> None:
    """boundary_ratio 0.875: timestep 999 runs `transformer` (guider scale 4), 857 and 600 run
    `transformer_2` (guider_2, scale 3)."""
    second = tiny.wan_transformer(SEED + 1)
    components = {
        **wan["components"],
        "transformer_2": second,
        "guider": ClassifierFreeGuidance(guidance_scale=4.0),
        "guider_2": ClassifierFreeGuidance(guidance_scale=3.0),
    }
    pipe = pipeline_of(Wan22Blocks(), components)
    calls = Calls(transformer=components["transformer"], transformer_2=second)
    graph = from_modular(Wan22Blocks(), components=pipe)
    assert {d.code for d in df.check(graph).diagnostics} == {"DF202"}
    ours, our_calls, theirs, their_calls = both(
        df.compile(graph), pipe, calls, **PROMPTS, **VIDEO, num_inference_steps=STEPS
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == {"transformer": 2, "transformer_2": 4}


# -- Wan 2.1 image to video: auto blocks as df.Switch ----------------------------------------------------


@pytest.fixture(scope="module")
def i2v(wan: dict[str, Any]) -> dict[str, Any]:
    """WanImage2VideoAutoBlocks' pipeline: a transformer reading 16 + 20 channels (latents, then mask and
    first-frame latents) and CLIP image embeddings, a tiny CLIPVisionModel and a 32-pixel processor."""
    torch.manual_seed(SEED)
    vision = transformers.CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    components = {
        **wan["components"],
        "transformer": tiny.wan_transformer(SEED, in_channels=36, image_dim=16),
        "image_encoder": transformers.CLIPVisionModel(vision).eval(),
        "image_processor": transformers.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
    }
    calls = Calls(transformer=components["transformer"])
    return {
        "components": components,
        "pipe": pipeline_of(WanImage2VideoAutoBlocks(), components),
        "calls": calls,
    }


def first_frame() -> PIL.Image.Image:
    rng = np.random.default_rng(SEED)
    return PIL.Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))


def test_wan_image2video_one_graph_equals_modular_pipeline(i2v: dict[str, Any]) -> None:
    graph = from_modular(WanImage2VideoAutoBlocks(), components=i2v["pipe"])
    switches = {n for n, child in graph.children if isinstance(child, df.Switch)}
    assert switches == {"image_encoder", "vae_encoder"}
    report = df.check(graph)
    assert report.errors == ()
    assert sorted(d.code for d in report.ignored if d.code != "DF202") == ["DF001", "DF001"]  # still listed
    ours, our_calls, theirs, their_calls = both(
        df.compile(graph),
        i2v["pipe"],
        i2v["calls"],
        **PROMPTS,
        **VIDEO,
        image=first_frame(),
        num_inference_steps=STEPS,
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == {"transformer": 2 * STEPS}


def test_the_image2video_one_graph_needs_the_switch_suppression(i2v: dict[str, Any]) -> None:
    ignore = {"WanImage2VideoLoopBeforeDenoiser.image_condition_latents": ("DF001",)}
    graph = from_modular(
        WanImage2VideoAutoBlocks(), components=i2v["pipe"], ignore=ignore, known_findings=False
    )
    with pytest.raises(df.WiringError, match=r"denoiser\.image_embeds: error\[DF001\]"):
        df.compile(graph)


def test_the_resolved_image2video_workflow_equals_modular_pipeline(i2v: dict[str, Any]) -> None:
    graph = from_modular(WanImage2VideoAutoBlocks(), workflow="image2video", components=i2v["pipe"])
    assert not any(isinstance(child, df.Switch) for _, child in graph.children)
    ours, our_calls, theirs, their_calls = both(
        df.compile(graph),
        i2v["pipe"],
        i2v["calls"],
        **PROMPTS,
        **VIDEO,
        image=first_frame(),
        num_inference_steps=STEPS,
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == {"transformer": 2 * STEPS}

"""Step callbacks, interrupts, legacy scheduler configs and default fusion, against diffusers' own pipelines.

A callback written for diffusers (`callback_on_step_end(pipe, i, t, callback_kwargs) -> dict`) runs
unchanged on dfgraph's text2img and img2img: same arguments, its returned tensors replace the loop's,
and setting `pipe._interrupt` stops the loop with the latents so far, as the pipeline does.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.callbacks import PipelineCallback

import dfgraph as df
from dfgraph_blocks.diffusion import img2img, steps, text2img, tiny

STEPS = 5


@pytest.fixture(scope="module")
def unet() -> Any:
    return tiny.unet()


def inputs(guidance_scale: float = 7.5) -> dict[str, Any]:
    prompt, negative = tiny.prompt_embeddings()
    return {
        "prompt_embeds": prompt,
        "negative_prompt_embeds": negative,
        "num_inference_steps": STEPS,
        "guidance_scale": guidance_scale,
        "height": 32,
        "width": 32,
    }


def both(
    unet: Any, callback: Any, guidance_scale: float = 7.5, theirs_callback: Any = None, **extra: Any
) -> tuple[Any, Any]:
    """(dfgraph's latents, StableDiffusionPipeline's) with the same callback (or `theirs_callback`)."""
    program = df.compile(text2img(unet=unet, scheduler=tiny.scheduler("euler_ancestral")))
    ours = program(
        **inputs(guidance_scale),
        generator=torch.Generator().manual_seed(0),
        callback_on_step_end=callback,
        **extra,
    )["latents"]
    pipe = tiny.pipeline(unet, tiny.scheduler("euler_ancestral"))
    theirs = pipe(
        **inputs(guidance_scale),
        generator=torch.Generator().manual_seed(0),
        callback_on_step_end=callback if theirs_callback is None else theirs_callback,
        output_type="latent",
        **extra,
    ).images
    return ours, theirs


class Calls:
    """A diffusers-style callback recording its arguments and scaling the latents at step 2."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.seen: list[tuple[int, float, tuple[str, ...], int, bool]] = []
        self.stop_at = stop_at

    def __call__(self, pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.seen.append((i, float(t), tuple(kwargs), pipe.num_timesteps, pipe.do_classifier_free_guidance))
        if i == 2:
            kwargs["latents"] = kwargs["latents"] * 0.5
        if i == self.stop_at:
            pipe._interrupt = True
        return kwargs


@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
def test_a_callback_scaling_latents_gives_the_pipeline_result(unet: Any, guidance_scale: float) -> None:
    ours_calls, theirs_calls = Calls(), Calls()
    ours, theirs = both(unet, ours_calls, guidance_scale, theirs_callback=theirs_calls)
    assert torch.equal(ours, theirs)  # fused by default: the pipeline's batch-2 UNet call
    assert ours_calls.seen == theirs_calls.seen  # same step indices, timesteps, tensors and attributes
    assert [s[0] for s in ours_calls.seen] == list(range(STEPS))
    plain, _ = both(unet, None, guidance_scale)
    assert not torch.equal(ours, plain)  # the callback did change the result


@pytest.mark.parametrize("stop_at", [0, 2, STEPS - 1])
def test_an_interrupt_returns_the_pipeline_latents_after_that_step(unet: Any, stop_at: int) -> None:
    calls = Calls(stop_at)
    ours, theirs = both(unet, calls, theirs_callback=Calls(stop_at))
    assert torch.equal(ours, theirs)
    assert [s[0] for s in calls.seen] == list(range(stop_at + 1))  # no step ran after the interrupt


def test_requested_tensors_are_passed_and_unknown_ones_refused(unet: Any) -> None:
    seen: dict[str, Any] = {}

    def look(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        seen.update(kwargs)
        return {}

    names = ["latents", "prompt_embeds", "negative_prompt_embeds"]
    both(unet, look, callback_on_step_end_tensor_inputs=names)
    assert set(seen) == set(names)
    prompt, negative = inputs()["prompt_embeds"], inputs()["negative_prompt_embeds"]
    assert torch.equal(seen["negative_prompt_embeds"], negative)
    assert torch.equal(seen["prompt_embeds"], torch.cat([negative, prompt]))  # as the pipeline holds it
    program = df.compile(text2img(unet=unet, scheduler=tiny.scheduler()))
    with pytest.raises(df.BlockError, match=r"callback_on_step_end_tensor_inputs.*\['bogus'\]"):
        program(**inputs(), callback_on_step_end=look, callback_on_step_end_tensor_inputs=["bogus"])

    def replace_negative(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"negative_prompt_embeds": kwargs["negative_prompt_embeds"] * 2.0}

    with pytest.raises(df.BlockError, match=r"new \['negative_prompt_embeds'\].*replace only \['latents'\]"):
        program(
            **inputs(),
            callback_on_step_end=replace_negative,
            callback_on_step_end_tensor_inputs=["negative_prompt_embeds"],
        )


def test_a_replaced_prompt_embedding_is_what_the_next_step_reads(unet: Any) -> None:
    def swap(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"prompt_embeds": kwargs["prompt_embeds"] * 2.0} if i == 1 else {}

    # without guidance the pipeline's prompt_embeds is the loop's own: a callback may replace it
    ours, theirs = both(unet, swap, 1.0, callback_on_step_end_tensor_inputs=["prompt_embeds"])
    assert torch.equal(ours, theirs)
    plain, _ = both(unet, None, 1.0)
    assert not torch.equal(ours, plain)


class HalveAt(PipelineCallback):  # type: ignore[misc]
    """diffusers' own callback base class: its tensor_inputs say what it reads."""

    tensor_inputs: ClassVar[list[str]] = ["latents"]

    def callback_fn(
        self, pipeline: Any, step_index: int, timestep: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if step_index == self.config.cutoff_step_index:
            kwargs["latents"] = kwargs["latents"] / 2
        return kwargs


def test_diffusers_pipeline_callback_objects_run_unchanged(unet: Any) -> None:
    ours, theirs = both(unet, HalveAt(cutoff_step_ratio=None, cutoff_step_index=1))
    assert torch.equal(ours, theirs)


def test_img2img_calls_back_and_interrupts_like_the_pipeline(unet: Any) -> None:
    vae = tiny.vae()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    program = df.compile(img2img(unet=unet, scheduler=tiny.scheduler("ddim"), vae=vae))
    prompt, negative = tiny.prompt_embeddings()
    common = {"prompt_embeds": prompt, "negative_prompt_embeds": negative, "image": image, "strength": 0.8}
    common["num_inference_steps"] = STEPS
    ours = program(**common, generator=torch.Generator().manual_seed(0), callback_on_step_end=Calls(2))
    pipe = tiny.pipeline(unet, tiny.scheduler("ddim"), vae, img2img=True)
    theirs = pipe(
        **common,
        generator=torch.Generator().manual_seed(0),
        callback_on_step_end=Calls(2),
        output_type="latent",
    ).images
    assert torch.equal(ours["latents"], theirs)


def legacy_ddim() -> Any:
    """A DDIM scheduler with diffusers' defaults: steps_offset 0 and clip_sample True (a legacy config)."""
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def test_legacy_scheduler_configs_are_normalized_as_the_pipeline_does(unet: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = text2img(unet=unet, scheduler=(ours_scheduler := legacy_ddim()))
    assert ours_scheduler.config.steps_offset == 1 and ours_scheduler.config.clip_sample is False
    messages = [str(w.message) for w in caught]
    assert any("`steps_offset` should be set to 1 instead of 0" in m for m in messages)
    assert any("`clip_sample` should be set to False" in m for m in messages)
    ours = df.compile(graph)(**inputs(), generator=torch.Generator().manual_seed(0), output="latents")
    pipe = tiny.pipeline(unet, legacy_ddim())
    theirs = pipe(**inputs(), generator=torch.Generator().manual_seed(0), output_type="latent").images
    assert torch.equal(ours, theirs)
    assert steps.normalize_scheduler(tiny.scheduler("ddim")).config.steps_offset == 1  # already current


def test_fusion_is_the_default_and_fuse_false_turns_it_off(unet: Any) -> None:
    graph = text2img(unet=unet, scheduler=tiny.scheduler())
    fused, unfused = df.compile(graph), df.compile(graph, fuse=False)
    assert fused.fused == (("text2img/denoise/cfg/step/cond", "text2img/denoise/cfg/step/uncond"),)
    assert unfused.fused == ()
    batches: list[int] = []
    handle = unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    try:
        fused(**inputs(), generator=torch.Generator().manual_seed(0))
        assert batches == [2] * STEPS
        batches.clear()
        unfused(**inputs(), generator=torch.Generator().manual_seed(0))
        assert batches == [1, 1] * STEPS
    finally:
        handle.remove()

"""The prompt blocks give the pipelines' own encode_prompt tensors, equal element for element."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph_blocks.diffusion import prompts, tiny


@pytest.fixture(scope="module")
def sdxl() -> dict[str, Any]:
    return tiny.sdxl_components()


@pytest.fixture(scope="module")
def sd() -> Any:
    """SD 1.x's pipeline with a text encoder and tokenizer (its encode_prompt is the reference)."""
    import diffusers

    pipe = diffusers.StableDiffusionPipeline(
        vae=tiny.vae(),
        text_encoder=tiny.text_encoder(),
        tokenizer=tiny.tokenizer(),
        unet=tiny.unet(),
        scheduler=tiny.scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe


def sdxl_pipe(parts: dict[str, Any], force_zeros: bool = True) -> Any:
    return tiny.sdxl_pipeline(
        parts["unet"],
        parts["scheduler"],
        parts["vae"],
        text_encoder=parts["text_encoder"],
        text_encoder_2=parts["text_encoder_2"],
        tokenizer=parts["tokenizer"],
        tokenizer_2=parts["tokenizer_2"],
        force_zeros_for_empty_prompt=force_zeros,
    )


def same(ours: torch.Tensor | None, theirs: torch.Tensor | None) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return ours.dtype == theirs.dtype and torch.equal(ours, theirs)


CASES = [
    {"prompt": "a cat"},
    {"prompt": ["a cat", "two dogs, running!"], "negative_prompt": "blurry"},
    {"prompt": ["a cat", "a dog"], "negative_prompt": ["ugly", "dark"], "num_images_per_prompt": 3},
    {"prompt": "a cat", "num_images_per_prompt": 2, "guidance_scale": 1.0},
    {"prompt": "a cat", "negative_prompt": "blurry", "guidance_scale": 1.0},
    {"prompt": "a very long prompt that the tokenizer has to cut at sixteen tokens"},
]


@pytest.mark.parametrize("case", CASES)
def test_encode_prompt_equals_the_pipeline(sd: Any, case: dict[str, Any]) -> None:
    block = prompts.encode_prompt(sd.text_encoder, sd.tokenizer)
    ours = block(**case)
    guidance = case.get("guidance_scale", 7.5)
    negative = case.get("negative_prompt")
    if isinstance(case["prompt"], list) and isinstance(negative, str):
        negative = [negative] * len(case["prompt"])  # SD 1.x's pipeline wants a list here; ours broadcasts
    theirs = sd.encode_prompt(
        case["prompt"], torch.device("cpu"), case.get("num_images_per_prompt", 1), guidance > 1, negative
    )
    assert same(ours[0], theirs[0]) and same(ours[1], theirs[1])
    batch = (1 if isinstance(case["prompt"], str) else len(case["prompt"])) * case.get(
        "num_images_per_prompt", 1
    )
    assert ours[0].shape == (batch, tiny.TOKENS, 32)
    assert (ours[1] is None) == (guidance <= 1)


SDXL_CASES = [
    *CASES,
    {"prompt": "a cat", "prompt_2": "a painting", "negative_prompt": "dark", "negative_prompt_2": "flat"},
    {"prompt": ["a cat", "a dog"], "negative_prompt_2": "flat"},  # zeroed: negative_prompt is None
]


@pytest.mark.parametrize("force_zeros", [True, False])
@pytest.mark.parametrize("case", SDXL_CASES)
def test_sdxl_encode_prompt_equals_the_pipeline(
    sdxl: dict[str, Any], case: dict[str, Any], force_zeros: bool
) -> None:
    pipe = sdxl_pipe(sdxl, force_zeros)
    block = prompts.sdxl_encode_prompt(
        sdxl["text_encoder"],
        sdxl["text_encoder_2"],
        sdxl["tokenizer"],
        sdxl["tokenizer_2"],
        force_zeros_for_empty_prompt=force_zeros,
    )
    ours = block(**case)
    inputs = dict(case)
    guidance = inputs.pop("guidance_scale", 5.0)
    theirs = pipe.encode_prompt(do_classifier_free_guidance=guidance > 1, **inputs)
    assert all(same(a, b) for a, b in zip(ours, theirs, strict=True))
    assert ours[0].shape[-1] == sdxl["unet"].config.cross_attention_dim
    assert ours[2].shape[-1] == sdxl["text_encoder_2"].config.projection_dim
    if guidance > 1 and force_zeros and case.get("negative_prompt") is None:
        assert ours[1] is not None and not ours[1].any()


words = st.lists(st.sampled_from(["a", "cat", "dog", "red", "on", "mat", "7", "!"]), min_size=0, max_size=20)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.lists(words.map(" ".join), min_size=1, max_size=3),
    negative=st.one_of(st.none(), words.map(" ".join)),
    images=st.integers(1, 2),
    guidance=st.sampled_from([1.0, 5.0]),
)
def test_any_prompt_batch_encodes_as_the_pipeline_does(
    sdxl: dict[str, Any], batch: list[str], negative: str | None, images: int, guidance: float
) -> None:
    pipe = sdxl_pipe(sdxl, force_zeros=False)
    block = prompts.sdxl_encode_prompt(
        sdxl["text_encoder"],
        sdxl["text_encoder_2"],
        sdxl["tokenizer"],
        sdxl["tokenizer_2"],
        force_zeros_for_empty_prompt=False,
    )
    ours = block(
        prompt=batch, negative_prompt=negative, num_images_per_prompt=images, guidance_scale=guidance
    )
    theirs = pipe.encode_prompt(
        batch,
        num_images_per_prompt=images,
        do_classifier_free_guidance=guidance > 1,
        negative_prompt=negative,
    )
    assert all(same(a, b) for a, b in zip(ours, theirs, strict=True))
    assert ours[0].shape[0] == len(batch) * images  # one row per image, prompts in order


def test_prompt_blocks_carry_the_encoder_widths(sdxl: dict[str, Any], sd: Any) -> None:
    block = prompts.sdxl_encode_prompt(
        sdxl["text_encoder"], sdxl["text_encoder_2"], sdxl["tokenizer"], sdxl["tokenizer_2"]
    )
    ports = {p.name: df.describe_type(p.type) for p in block.outputs}
    assert "64" in ports["prompt_embeds"] and "32" in ports["pooled_prompt_embeds"]
    assert [p.name for p in block.inputs if p.required] == ["prompt"]
    sd_block = prompts.encode_prompt(sd.text_encoder, sd.tokenizer)
    assert "32" in {p.name: df.describe_type(p.type) for p in sd_block.outputs}["prompt_embeds"]
    with pytest.raises(ValueError, match="negative_prompt has batch size 3"):
        block(prompt=["a", "b"], negative_prompt=["x", "y", "z"])

"""Prompt encoding as blocks: text to the embeddings the denoiser reads, as diffusers' pipelines encode it.

`encode_prompt(text_encoder, tokenizer)` is `StableDiffusionPipeline.encode_prompt` and
`sdxl_encode_prompt(text_encoder, text_encoder_2, tokenizer, tokenizer_2)` is
`StableDiffusionXLPipeline.encode_prompt` from text: the same tokenizer calls (padded to the tokenizer's
model_max_length, truncated with the same warning), the same hidden states (SD 1.x the last, SDXL the
penultimate of each encoder, concatenated; the pooled embedding from the second encoder), the same
negative prompts (SDXL zeroes them when none is given and force_zeros_for_empty_prompt, as its pipeline's
config does by default) and the same repetition for num_images_per_prompt. The tests hold them equal,
tensor for tensor, to the pipelines' own encode_prompt.

Not covered: clip_skip, LoRA scales and textual inversion (the pipelines' defaults are used: no skip,
no LoRA, no inversion tokens).

The output ports carry the encoders' widths (`Float[Tensor, "batch sequence 64"]` for SDXL's tiny
32 + 32), so a prompt encoder for another UNet is a static error where it meets the denoiser.
"""

import logging
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

import dfgraph as df

logger = logging.getLogger(__name__)

Prompt = str | list[str]
"""One prompt or one per image of the batch."""


def _token_ids(tokenizer: Any, prompt: list[str], max_length: int | None = None) -> Any:
    """The tokenizer's padded, truncated ids (and mask); warns about the truncated words as diffusers does."""
    length = tokenizer.model_max_length if max_length is None else max_length
    inputs = tokenizer(prompt, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
    if max_length is None:  # the pipelines check the prompts, not the negative prompts
        untruncated = tokenizer(prompt, padding="longest", return_tensors="pt").input_ids
        ids = inputs.input_ids
        if untruncated.shape[-1] >= ids.shape[-1] and not torch.equal(ids, untruncated):
            removed = tokenizer.batch_decode(untruncated[:, tokenizer.model_max_length - 1 : -1])
            logger.warning(
                "The following part of your input was truncated because CLIP can only handle sequences up "
                f"to {tokenizer.model_max_length} tokens: {removed}"
            )
    return inputs


def _repeat(embeds: Tensor, times: int) -> Tensor:
    """Each prompt's embeddings `times` times in a row (the pipelines' mps-friendly repeat and view)."""
    batch = embeds.shape[0]
    if embeds.ndim == 2:
        return embeds.repeat(1, times).view(batch * times, -1)
    sequence = embeds.shape[1]
    return embeds.repeat(1, times, 1).view(batch * times, sequence, -1)


def _negatives(prompt: list[str], negative_prompt: Prompt | None) -> list[str]:
    """The negative prompt as one string per prompt (empty when None), checked against the batch."""
    if negative_prompt is None:
        return [""] * len(prompt)
    negatives = [negative_prompt] * len(prompt) if isinstance(negative_prompt, str) else list(negative_prompt)
    if len(negatives) != len(prompt):
        raise ValueError(
            f"negative_prompt has batch size {len(negatives)}, but prompt has batch size {len(prompt)}; "
            "give one negative prompt, or one per prompt"
        )
    return negatives


def encode_prompt(text_encoder: Any, tokenizer: Any) -> Any:
    """Block: StableDiffusionPipeline.encode_prompt from text (prompt_embeds, and negative_prompt_embeds
    when guidance_scale > 1, else None)."""
    width = text_encoder.config.hidden_size
    masked = bool(getattr(text_encoder.config, "use_attention_mask", False))

    def encode(prompts: list[str], max_length: int | None = None) -> Tensor:
        inputs = _token_ids(tokenizer, prompts, max_length)
        mask = inputs.attention_mask.to(text_encoder.device) if masked else None
        with torch.no_grad():
            hidden: Tensor = text_encoder(inputs.input_ids.to(text_encoder.device), attention_mask=mask)[0]
        return hidden.to(dtype=text_encoder.dtype)

    @df.block(outputs=("prompt_embeds", "negative_prompt_embeds"))
    def encode_prompt(
        prompt: Prompt,
        negative_prompt: Prompt | None = None,
        num_images_per_prompt: int = 1,
        guidance_scale: float = 7.5,
    ) -> tuple[
        Float[Tensor, f"batch sequence {width}"],
        Float[Tensor, f"batch sequence {width}"] | None,
    ]:
        """The text encoder's last hidden states of the prompts (and of the negative prompts, "" when None),
        each repeated num_images_per_prompt times. One negative string serves a list of prompts (where
        the SD 1.x pipeline raises a TypeError)."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        embeds = encode(prompts)
        negative: Tensor | None = None
        if guidance_scale > 1:
            negative = _repeat(
                encode(_negatives(prompts, negative_prompt), embeds.shape[1]), num_images_per_prompt
            )
        return _repeat(embeds, num_images_per_prompt), negative

    return encode_prompt


def sdxl_encode_prompt(
    text_encoder: Any | None,
    text_encoder_2: Any,
    tokenizer: Any | None,
    tokenizer_2: Any,
    *,
    force_zeros_for_empty_prompt: bool = True,
) -> Any:
    """Block: StableDiffusionXLPipeline.encode_prompt from text: prompt_embeds (both encoders' penultimate
    hidden states side by side), pooled_prompt_embeds (the second encoder's projection), and their
    negatives when guidance_scale > 1 (zeros when no negative prompt is given and
    force_zeros_for_empty_prompt, the pipeline's config default), else None. text_encoder may be None
    (the refiner's layout: the second encoder alone)."""
    pairs = [(tokenizer, text_encoder), (tokenizer_2, text_encoder_2)] if text_encoder is not None else []
    if not pairs:
        pairs = [(tokenizer_2, text_encoder_2)]
    width = sum(encoder.config.hidden_size for _, encoder in pairs)
    pooled_width = text_encoder_2.config.projection_dim

    def encode(prompts: list[list[str]], max_length: int | None = None) -> tuple[Tensor, Tensor]:
        hidden, pooled = [], None
        for texts, (tok, encoder) in zip(prompts, pairs, strict=False):
            ids = _token_ids(tok, texts, max_length).input_ids
            with torch.no_grad():
                out = encoder(ids.to(encoder.device), output_hidden_states=True)
            if pooled is None and out[0].ndim == 2:  # the projection of the final encoder
                pooled = out[0]
            hidden.append(out.hidden_states[-2])
        if pooled is None:
            raise ValueError(
                "text_encoder_2 gave no pooled embedding: it must be a CLIPTextModelWithProjection"
            )
        return torch.concat(hidden, dim=-1), pooled

    @df.block(
        outputs=(
            "prompt_embeds",
            "negative_prompt_embeds",
            "pooled_prompt_embeds",
            "negative_pooled_prompt_embeds",
        )
    )
    def sdxl_encode_prompt(
        prompt: Prompt,
        prompt_2: Prompt | None = None,
        negative_prompt: Prompt | None = None,
        negative_prompt_2: Prompt | None = None,
        num_images_per_prompt: int = 1,
        guidance_scale: float = 5.0,
    ) -> tuple[
        Float[Tensor, f"batch sequence {width}"],
        Float[Tensor, f"batch sequence {width}"] | None,
        Float[Tensor, f"batch {pooled_width}"],
        Float[Tensor, f"batch {pooled_width}"] | None,
    ]:
        """prompt to the first encoder, prompt_2 (default: prompt) to the second; negatives likewise."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        second = prompt_2 or prompt
        prompts_2 = [second] if isinstance(second, str) else list(second)
        embeds, pooled = encode([prompts, prompts_2])
        negative: Tensor | None = None
        negative_pooled: Tensor | None = None
        if guidance_scale > 1 and negative_prompt is None and force_zeros_for_empty_prompt:
            negative, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        elif guidance_scale > 1:
            negatives = _negatives(prompts, negative_prompt or "")
            negatives_2 = _negatives(prompts, negative_prompt_2 or negative_prompt or "")
            negative, negative_pooled = encode([negatives, negatives_2], embeds.shape[1])
        dtype = text_encoder_2.dtype
        embeds = _repeat(embeds.to(dtype=dtype), num_images_per_prompt)
        pooled = _repeat(pooled, num_images_per_prompt)
        if negative is not None and negative_pooled is not None:
            negative = _repeat(negative.to(dtype=dtype), num_images_per_prompt)
            negative_pooled = _repeat(negative_pooled, num_images_per_prompt)
        return embeds, negative, pooled, negative_pooled

    return sdxl_encode_prompt

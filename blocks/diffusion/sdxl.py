"""Stable Diffusion XL text-to-image and image-to-image as dfgraph graphs, named like diffusers' pipelines.

`sdxl_text2img(unet=..., scheduler=...)` is `StableDiffusionXLPipeline.__call__` and `sdxl_img2img(...)` is
`StableDiffusionXLImg2ImgPipeline.__call__`: the same input names and defaults (guidance_scale 5.0, img2img
strength 0.3, aesthetic scores 6.0 and 2.5), and with the same components, inputs and seed the same
latents and image (the tests hold float64 to 1e-10 and float32 to bit equality where the UNet batch is the
pipeline's). With `text_encoder`, `text_encoder_2`, `tokenizer`, `tokenizer_2` the graph starts from
`prompt` (`prompt_2`, `negative_prompt`, `negative_prompt_2`, `num_images_per_prompt`); without them from
`prompt_embeds`, `negative_prompt_embeds`, `pooled_prompt_embeds`, `negative_pooled_prompt_embeds`.

What SDXL adds to SD 1.x's loop is the UNet's added conditioning: the pooled prompt embedding
(`text_embeds`) and six size numbers (`time_ids`: original size, crop corner, target size; img2img's
refiner layout swaps the target size for an aesthetic score). The denoiser block's ports carry both,
typed from the UNet's config, so an SD 1.x UNet here (or an SDXL UNet in `text2img`) fails while the graph
is built. Guidance on or off is a `df.Switch` as in `graphs.py`: the "cfg" case runs the unconditional
and conditional calls of ONE denoiser block (so `df.compile`'s fusion makes them one batch-2 UNet call, the
pipeline's `torch.cat([negative, positive])`), the "single" case one call; `guider=` replaces the two
branches by a diffusers guider block (`guiders.guided_denoiser`), which decides per step.

(No `from __future__ import annotations`: the port types are built from the components' configs when the
factories run, as in `steps`.)

Left out: ip_adapter inputs, cross_attention_kwargs, clip_skip, custom timesteps/sigmas, output types
other than latents and a [0, 1] image tensor, img2img's `latents` input and 4-channel (latent) images.
"""

import importlib
from typing import Any, Literal

import torch
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import randn_tensor
from jaxtyping import Float
from torch import Tensor

import dfgraph as df
from dfgraph import RNG
from dfgraph_blocks.diffusion import prompts, steps
from dfgraph_blocks.diffusion.steps import SCHEDULER, Generator, Noise

TIME_IDS = 6
"""SDXL's time ids: original (height, width), crop corner (top, left), target (height, width)."""

AESTHETIC_TIME_IDS = 5
"""The refiner's: original size, crop corner and an aesthetic score (requires_aesthetics_score)."""

Size = tuple[int, int] | None
"""A (height, width) in pixels; None means the generated image's own size."""

CALLBACK_TENSOR_INPUTS = ("latents", "prompt_embeds", "add_text_embeds", "add_time_ids")
"""diffusers' StableDiffusionXL(Img2Img)Pipeline._callback_tensor_inputs."""

FIELDS = {
    "prompt_embeds": ("prompt_embeds", "negative_prompt_embeds"),
    "text_embeds": ("add_text_embeds", "negative_pooled_prompt_embeds"),
    "time_ids": ("add_time_ids", "negative_add_time_ids"),
}
"""A guider's fields (C2) and the loop body's (conditional, unconditional) names that fill them. The body
reads the pooled prompt embedding as add_text_embeds, the pipeline's name in its loop (and a callback's)."""


def _valid_fraction(value: float | None) -> bool:
    """The pipelines' denoising_value_valid: a float strictly between 0 and 1."""
    return isinstance(value, float) and 0 < value < 1


def _cutoff(scheduler: Any, fraction: float) -> int:
    """The training timestep at `fraction` of the schedule (denoising_start / denoising_end)."""
    train = scheduler.config.num_train_timesteps
    cutoff: int = round(train - fraction * train)
    return cutoff


def set_timesteps(scheduler: Any, unet: Any) -> Any:
    """Block: the scheduler's timesteps for num_inference_steps, cut at denoising_end (the pipeline's)."""

    @df.block(outputs="timesteps", mutates=(SCHEDULER,))
    def set_timesteps(num_inference_steps: int = 50, denoising_end: float | None = None) -> Tensor:
        """retrieve_timesteps, the denoising_end cut, and set_begin_index(0), as the SDXL pipeline does."""
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        scheduler.set_timesteps(num_inference_steps, device=unet.device)
        timesteps: Tensor = scheduler.timesteps
        if denoising_end is not None and _valid_fraction(denoising_end):
            cutoff = _cutoff(scheduler, denoising_end)
            timesteps = timesteps[: len([t for t in timesteps if t >= cutoff])]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(0)
        return timesteps

    return set_timesteps


def strength_timesteps(scheduler: Any, unet: Any) -> Any:
    """Block: img2img's timesteps: the last `strength` of them, or those after denoising_start."""

    @df.block(outputs="timesteps", mutates=(SCHEDULER,))
    def strength_timesteps(
        num_inference_steps: int = 50,
        strength: float = 0.3,
        denoising_start: float | None = None,
        denoising_end: float | None = None,
    ) -> Tensor:
        """retrieve_timesteps, then the Img2Img pipeline's get_timesteps and denoising_end cut."""
        if not 0 <= strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        start = denoising_start if _valid_fraction(denoising_start) else None
        if start is not None and _valid_fraction(denoising_end) and start >= (denoising_end or 0):
            raise ValueError(f"denoising_start {start} must be below denoising_end {denoising_end}")
        scheduler.set_timesteps(num_inference_steps, device=unet.device)
        if start is None:
            init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
            t_start = max(num_inference_steps - init_timestep, 0) * scheduler.order
        else:  # strength is replaced by the timestep to start at
            count = int((scheduler.timesteps < _cutoff(scheduler, start)).sum().item())
            if scheduler.order == 2 and count % 2 == 0:
                count += 1  # end after a second-order step's second half
            t_start = len(scheduler.timesteps) - count
        timesteps: Tensor = scheduler.timesteps[t_start:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(t_start)
        if len(timesteps) == 0:
            raise ValueError(
                f"strength={strength} of {num_inference_steps} steps leaves no denoising step; "
                "raise strength or num_inference_steps"
            )
        if denoising_end is not None and _valid_fraction(denoising_end):
            cutoff = _cutoff(scheduler, denoising_end)
            timesteps = timesteps[: len([t for t in timesteps if t >= cutoff])]
        return timesteps

    return strength_timesteps


def _check_added_embedding(unet: Any, text_encoder_2: Any | None, ids: int) -> None:
    """The pipelines' _get_add_time_ids check, done while building: time ids plus pooled width must fill
    the UNet's added embedding."""
    if text_encoder_2 is None:
        return  # the pooled width is the denoiser port's type, checked statically where it is wired
    expected = unet.config.projection_class_embeddings_input_dim
    passed = unet.config.addition_time_embed_dim * ids + text_encoder_2.config.projection_dim
    if expected != passed:
        raise ValueError(
            f"the UNet expects an added time embedding of length {expected}, but {ids} time ids and "
            f"text_encoder_2's projection_dim give {passed}"
        )


def _ids(values: tuple[Any, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """One row of time ids, as torch.tensor([list], dtype) in the pipelines."""
    return torch.tensor([list(values)], dtype=dtype).to(device)


def add_time_ids(unet: Any, vae_scale: int) -> Any:
    """Block: text2img's time ids for the conditional and unconditional branches (_get_add_time_ids)."""
    pixels = unet.config.sample_size * vae_scale
    width_emb = unet.config.cross_attention_dim

    @df.block(outputs=("add_time_ids", "negative_add_time_ids"))
    def add_time_ids(
        prompt_embeds: Float[Tensor, f"batch sequence {width_emb}"],
        height: int = pixels,
        width: int = pixels,
        original_size: Size = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: Size = None,
        negative_original_size: Size = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: Size = None,
        guidance_scale: float = 5.0,
    ) -> tuple[Float[Tensor, f"batch {TIME_IDS}"], Float[Tensor, f"batch {TIME_IDS}"]]:
        """(original_size, crop corner, target_size) per image; the negative ones default to these."""
        batch, dtype = prompt_embeds.shape[0], prompt_embeds.dtype
        original, target = original_size or (height, width), target_size or (height, width)
        positive = _ids((*original, *crops_coords_top_left, *target), dtype, unet.device)
        negative = positive
        if negative_original_size is not None and negative_target_size is not None:
            negative = _ids(
                (*negative_original_size, *negative_crops_coords_top_left, *negative_target_size),
                dtype,
                unet.device,
            )
        if steps.guides(unet, guidance_scale):
            # the pipeline repeats the concatenated pair, so rows alternate negative, positive; the
            # unconditional half of its batch is the first `batch` rows of that
            both = torch.cat([negative, positive], dim=0).repeat(batch, 1)
            return both[batch:], both[:batch]
        return positive.repeat(batch, 1), negative.repeat(batch, 1)

    return add_time_ids


def img2img_add_time_ids(unet: Any, vae_scale: int, *, requires_aesthetics_score: bool = False) -> Any:
    """Block: img2img's time ids (_get_add_time_ids of the Img2Img pipeline), sized from the latents."""
    channels = unet.config.in_channels
    ids = AESTHETIC_TIME_IDS if requires_aesthetics_score else TIME_IDS

    @df.block(outputs=("add_time_ids", "negative_add_time_ids"))
    def img2img_add_time_ids(
        latents: Float[Tensor, f"batch {channels} latent_height latent_width"],
        original_size: Size = None,
        crops_coords_top_left: tuple[int, int] = (0, 0),
        target_size: Size = None,
        negative_original_size: Size = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: Size = None,
        aesthetic_score: float = 6.0,
        negative_aesthetic_score: float = 2.5,
    ) -> tuple[Float[Tensor, f"batch {ids}"], Float[Tensor, f"batch {ids}"]]:
        """Sizes (or, with requires_aesthetics_score, an aesthetic score in place of target_size)."""
        batch, dtype = latents.shape[0], latents.dtype
        size = (latents.shape[-2] * vae_scale, latents.shape[-1] * vae_scale)
        original, target = original_size or size, target_size or size
        negative_original = negative_original_size or original
        negative_target = negative_target_size or target
        positive: tuple[float, ...]
        negative: tuple[float, ...]
        if requires_aesthetics_score:
            positive = (*original, *crops_coords_top_left, aesthetic_score)
            negative = (*negative_original, *negative_crops_coords_top_left, negative_aesthetic_score)
        else:  # the pipeline pairs the negative sizes with the positive crop corner here
            positive = (*original, *crops_coords_top_left, *target)
            negative = (*negative_original, *crops_coords_top_left, *negative_target)
        rows = (_ids(positive, dtype, unet.device), _ids(negative, dtype, unet.device))
        return rows[0].repeat(batch, 1), rows[1].repeat(batch, 1)

    return img2img_add_time_ids


def _latents_stats(vae: Any, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor] | None:
    """The VAE's per-channel latents_mean and latents_std, where its config has both."""
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None
    channels = vae.config.latent_channels
    return (
        torch.tensor(mean).view(1, channels, 1, 1).to(device, dtype),
        torch.tensor(std).view(1, channels, 1, 1).to(device, dtype),
    )


def encode_image_latents(vae: Any, scheduler: Any, unet: Any) -> Any:
    """Block: img2img's start latents (the Img2Img pipeline's prepare_latents): the encoded image, noised
    to the first timestep unless denoising_start is given."""
    width_emb, channels = unet.config.cross_attention_dim, vae.config.latent_channels

    @df.block(outputs="latents", mutates=(SCHEDULER, RNG))
    def encode_image_latents(
        init_image: Float[Tensor, "image_batch 3 height width"],
        timesteps: Tensor,
        prompt_embeds: Float[Tensor, f"batch sequence {width_emb}"],
        generator: Generator = None,
        denoising_start: float | None = None,
    ) -> Float[Tensor, f"batch {channels} latent_height latent_width"]:
        """vae.encode (in float32 when the VAE's config forces an upcast, as the pipeline does), times
        scaling_factor (or normalised by latents_mean/std), repeated to the batch, plus noise."""
        batch, dtype, device = prompt_embeds.shape[0], prompt_embeds.dtype, unet.device
        image = init_image.to(device=device, dtype=dtype)
        upcast = bool(vae.config.force_upcast)
        if upcast:  # the pipeline moves the VAE itself to float32 and back
            image = image.float()
            vae.to(dtype=torch.float32)
        with torch.no_grad():
            if isinstance(generator, list):
                if len(generator) != batch:
                    raise ValueError(f"{len(generator)} generators for a batch of {batch}")
                if image.shape[0] < batch and batch % image.shape[0] == 0:
                    image = torch.cat([image] * (batch // image.shape[0]), dim=0)
                elif image.shape[0] < batch:
                    raise ValueError(f"cannot repeat {image.shape[0]} images to a batch of {batch}")
                parts = [vae.encode(image[i : i + 1]).latent_dist.sample(generator[i]) for i in range(batch)]
                init_latents = torch.cat(parts, dim=0)
            else:
                init_latents = vae.encode(image).latent_dist.sample(generator)
        if upcast:
            vae.to(dtype)
        init_latents = init_latents.to(dtype)
        stats = _latents_stats(vae, dtype, device)
        if stats is not None:
            init_latents = (init_latents - stats[0]) * vae.config.scaling_factor / stats[1]
        else:
            init_latents = vae.config.scaling_factor * init_latents
        if batch > init_latents.shape[0]:
            if batch % init_latents.shape[0]:
                raise ValueError(
                    f"cannot repeat {init_latents.shape[0]} images to a batch of {batch} prompts"
                )
            init_latents = torch.cat([init_latents] * (batch // init_latents.shape[0]), dim=0)
        if denoising_start is not None:
            return init_latents
        noise = randn_tensor(init_latents.shape, generator=generator, device=device, dtype=dtype)
        noised: Tensor = scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(batch))
        return noised

    return encode_image_latents


def vae_decode(vae: Any) -> Any:
    """Block: latents to an image tensor in [0, 1], as the SDXL pipelines decode (output_type="pt")."""
    channels, colours = vae.config.latent_channels, vae.config.out_channels

    @df.block(outputs="image")
    def vae_decode(
        latents: Float[Tensor, f"batch {channels} latent_height latent_width"],
    ) -> Float[Tensor, f"batch {colours} height width"]:
        """vae.decode(latents / scaling_factor) (or un-normalised by latents_mean/std); a float16 VAE that
        forces an upcast decodes in float32 (upcast_vae), then goes back to float16."""
        upcast = vae.dtype == torch.float16 and bool(vae.config.force_upcast)
        if upcast:
            vae.to(dtype=torch.float32)
            latents = latents.to(next(iter(vae.post_quant_conv.parameters())).dtype)
        stats = _latents_stats(vae, latents.dtype, latents.device)
        if stats is not None:
            latents = latents * stats[1] / vae.config.scaling_factor + stats[0]
        else:
            latents = latents / vae.config.scaling_factor
        with torch.no_grad():
            decoded = vae.decode(latents, return_dict=False)[0]
        if upcast:
            vae.to(dtype=torch.float16)
        image: Tensor = VaeImageProcessor.denormalize(decoded)
        return image

    return vae_decode


def guidance_selector(unet: Any) -> Any:
    """Selector block: "cfg" or "single" (do_classifier_free_guidance), with SDXL's default scale 5.0."""

    @df.block(outputs="guidance")
    def do_classifier_free_guidance(guidance_scale: float = 5.0) -> Literal["cfg", "single"]:
        """ "cfg" when guidance_scale > 1 (and the UNet has no guidance embedding), else "single"."""
        return "cfg" if steps.guides(unet, guidance_scale) else "single"

    return do_classifier_free_guidance


@df.block(outputs="noise_pred")
def classifier_free_guidance(
    noise_pred_text: Noise,
    noise_pred_uncond: Noise,
    guidance_scale: float = 5.0,
    guidance_rescale: float = 0.0,
) -> Noise:
    """steps.classifier_free_guidance (uncond + scale * (text - uncond), rescaled) at SDXL's default 5.0."""
    guided: Tensor = steps.classifier_free_guidance(
        noise_pred_text, noise_pred_uncond, guidance_scale, guidance_rescale
    )
    return guided


def require_negatives(unet: Any, time_ids: int = TIME_IDS) -> Any:
    """Block: the unconditional embeddings as the "cfg" branch reads them. A prompt encoder's are
    `T | None` (None when guidance is off); the guidance Switch runs this case only when they exist, which
    the types cannot see, so the body converts them here (a no-op that fails loudly on None)."""
    width_emb = unet.config.cross_attention_dim
    pooled = _pooled_width(unet, time_ids)

    @df.block(outputs=("negative_prompt_embeds", "negative_pooled_prompt_embeds"))
    def require_negatives(
        negative_prompt_embeds: Float[Tensor, f"batch sequence {width_emb}"] | None,
        negative_pooled_prompt_embeds: Float[Tensor, f"batch {pooled}"] | None,
    ) -> tuple[Float[Tensor, f"batch sequence {width_emb}"], Float[Tensor, f"batch {pooled}"]]:
        """The two tensors unchanged; a ValueError if the encoder gave None (guidance was off)."""
        if negative_prompt_embeds is None or negative_pooled_prompt_embeds is None:
            raise ValueError("guidance is on but the prompt encoder made no negative embeddings")
        return negative_prompt_embeds, negative_pooled_prompt_embeds

    return require_negatives


def _pooled_width(unet: Any, time_ids: int) -> int:
    """The pooled prompt embedding's width: what the time ids leave of the UNet's added embedding."""
    width: int = (
        unet.config.projection_class_embeddings_input_dim - time_ids * unet.config.addition_time_embed_dim
    )
    return width


def denoising_step(
    unet: Any,
    scheduler: Any,
    *,
    guidance: bool = True,
    guider: Any | None = None,
    time_ids: int = TIME_IDS,
    optional_negatives: bool = False,
) -> df.Graph:
    """The loop body: scale the latents, predict noise with SDXL's added conditioning (both branches and
    guide, the conditional one alone when `guidance=False`, or a diffusers guider), take a scheduler step.
    Last, `callback_on_step_end` (its `interrupt` output ends the loop). `optional_negatives`: the
    negative embeddings come from a prompt encoder, typed `T | None`.
    The body reads prompt_embeds, negative_prompt_embeds, add_text_embeds (the pooled prompt embedding),
    negative_pooled_prompt_embeds, add_time_ids and negative_add_time_ids."""
    nodes: dict[str, Any] = {"scale": steps.scale_model_input(scheduler, unet)}
    edges: list[tuple[str, str]] = []
    if guider is not None:
        guiders = importlib.import_module("dfgraph_blocks.diffusion.guiders")  # h-guide's (contract C2)
        nodes["guided"] = guiders.guided_denoiser(unet, guider, fields=FIELDS)
        edges += [("scale.latent_model_input", "guided.sample"), ("guided.noise_pred", "step.noise_pred")]
    else:
        denoiser = steps.denoiser(unet, added_time_ids=time_ids)  # one block object: the fusion pass needs it
        branches = {"cond": ("prompt_embeds", "add_text_embeds", "add_time_ids")}
        if guidance:  # the unconditional call first: the fused batch is the pipeline's [negative, positive]
            branches = {
                "uncond": (
                    "negative_prompt_embeds",
                    "negative_pooled_prompt_embeds",
                    "negative_add_time_ids",
                ),
                **branches,
            }
        if guidance and optional_negatives:
            nodes["negatives"] = require_negatives(unet, time_ids)
            branches["uncond"] = (
                "negatives.negative_prompt_embeds",
                "negatives.negative_pooled_prompt_embeds",
                "negative_add_time_ids",
            )
        for branch, (hidden, pooled, ids) in branches.items():
            nodes[branch] = denoiser
            edges += [
                ("scale.latent_model_input", f"{branch}.sample"),
                (hidden, f"{branch}.encoder_hidden_states"),
                (pooled, f"{branch}.text_embeds"),
                (ids, f"{branch}.time_ids"),
            ]
        if guidance:
            nodes["guidance"] = classifier_free_guidance
            edges += [
                ("cond.noise_pred", "guidance.noise_pred_text"),
                ("uncond.noise_pred", "guidance.noise_pred_uncond"),
                ("guidance.noise_pred", "step.noise_pred"),
            ]
        else:
            edges.append(("cond.noise_pred", "step.noise_pred"))
    nodes["step"] = steps.scheduler_step(scheduler, unet)
    guided = guidance or guider is not None
    tensors, read_only, paired = callback_tensors(unet, time_ids, guided=guided, optional=guider is not None)
    nodes["step_end"] = steps.step_end(
        tensors, read_only=read_only, paired=paired, guidance_scale=5.0, guided=guided, guider=guider
    )
    edges.append(("step.latents", "step_end.latents"))
    if "negatives" in nodes:  # the converted negatives, as the unconditional branch reads them
        edges += [(f"negatives.{p.name}", f"step_end.{p.name}") for p in nodes["negatives"].outputs]
    outputs = [f"step_end.{name}" for name in (*tensors, "interrupt")]
    return df.Graph(nodes=nodes, edges=edges, outputs=outputs, name="step")


def callback_tensors(
    unet: Any, time_ids: int = TIME_IDS, *, guided: bool, optional: bool = False
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """What a step callback may replace, what it may only read, and the pairs it reads concatenated:
    diffusers' SDXL _callback_tensor_inputs (latents, prompt_embeds, add_text_embeds, add_time_ids),
    typed as the loop has them. With guidance the pipeline holds each embedding as
    `torch.cat([negative, positive])`, which the callback reads but cannot hand back to two separate
    branches; without, it may replace them. `optional`: the negatives may be None (a guider's)."""
    channels, width = unet.config.in_channels, unet.config.cross_attention_dim
    types = {
        "latents": Float[Tensor, f"batch {channels} latent_height latent_width"],
        "prompt_embeds": Float[Tensor, f"batch sequence {width}"],
        "add_text_embeds": Float[Tensor, f"batch {_pooled_width(unet, time_ids)}"],
        "add_time_ids": Float[Tensor, f"batch {time_ids}"],
    }
    if not guided:
        return types, {}, {}
    negatives = {"prompt_embeds": "negative_prompt_embeds"} | {
        cond: uncond for _, (cond, uncond) in FIELDS.items() if cond != "prompt_embeds"
    }
    read_only = {name: types[name] for name in negatives}
    for cond, uncond in negatives.items():
        read_only[uncond] = types[cond] | None if optional else types[cond]
    return {"latents": types["latents"]}, read_only, negatives


def denoising_loop(
    unet: Any,
    scheduler: Any,
    *,
    guider: Any | None = None,
    progress: bool = False,
    time_ids: int = TIME_IDS,
    optional_negatives: bool = False,
) -> df.Switch | df.Loop:
    """The SDXL denoising loop over `timesteps`, carrying the latents (and the tensors a step callback may
    replace), ending early when a callback interrupts: a Switch between the guided ("cfg") and one-branch
    ("single") loops on guidance_scale, or one loop around a diffusers guider."""
    if guider is not None:
        body = denoising_step(unet, scheduler, guider=guider, time_ids=time_ids)
        return df.Loop(body, over="timesteps", item="t", until="interrupt", progress=progress, name="denoise")
    loops = {
        case: df.Loop(
            denoising_step(
                unet,
                scheduler,
                guidance=case == "cfg",
                time_ids=time_ids,
                optional_negatives=optional_negatives,
            ),
            over="timesteps",
            item="t",
            until="interrupt",
            progress=progress,
            name=case,
        )
        for case in ("cfg", "single")
    }
    return df.Switch(loops, on=guidance_selector(unet), name="denoise")


def _encoders(
    text_encoder: Any | None, text_encoder_2: Any | None, tokenizer: Any | None, tokenizer_2: Any | None
) -> bool:
    """Whether the graph starts from prompts: text_encoder_2 and tokenizer_2 given (the first pair too, or
    neither of it); none of the four means it starts from embeddings."""
    given = [x is not None for x in (text_encoder, text_encoder_2, tokenizer, tokenizer_2)]
    if not any(given):
        return False
    if text_encoder_2 is None or tokenizer_2 is None or (text_encoder is None) != (tokenizer is None):
        raise ValueError(
            "give text_encoder_2 and tokenizer_2 (and text_encoder with tokenizer, or neither) to start "
            "from prompts, or none of the four to start from prompt embeddings"
        )
    return True


def _assemble(
    nodes: dict[str, Any],
    edges: list[tuple[str, str]],
    *,
    unet: Any,
    scheduler: Any,
    vae: Any | None,
    guider: Any | None,
    encoders: tuple[Any, Any, Any, Any] | None,
    progress: bool,
    time_ids: int,
    name: str,
) -> df.Graph:
    """Prompt encoding (with encoders) first, then `nodes` (which make timesteps, latents and time ids), the
    loop and the decoder; the embeddings go where the loop and the preparation read them."""
    # no steps.normalize_scheduler here: unlike StableDiffusionPipeline, the SDXL pipelines leave a legacy
    # scheduler config (steps_offset 0, clip_sample True) as it is, and these graphs equal them (tested)
    names = (
        "prompt_embeds",
        "negative_prompt_embeds",
        "pooled_prompt_embeds",
        "negative_pooled_prompt_embeds",
    )
    loop_names = {name: name for name in names} | {"pooled_prompt_embeds": "add_text_embeds"}
    sources = {name: name for name in names}
    if encoders is not None:
        encode = prompts.sdxl_encode_prompt(*encoders, guider=guider)
        if guider is not None:  # the guider decides the negatives: guidance_scale is no input then
            encode = df.Bound(encode, {"guidance_scale": 1.0}, name="encode_prompt")
        nodes = {"encode_prompt": encode, **nodes}
        readers = [n for n, block in nodes.items() if "prompt_embeds" in {p.name for p in block.inputs}]
        edges = [*(("encode_prompt.prompt_embeds", f"{node}.prompt_embeds") for node in readers), *edges]
        sources = {name: f"encode_prompt.{name}" for name in names}
    edges += [(sources[name], f"denoise.{loop_names[name]}") for name in names]
    nodes["denoise"] = denoising_loop(
        unet,
        scheduler,
        guider=guider,
        progress=progress,
        time_ids=time_ids,
        optional_negatives=encoders is not None,
    )
    if guider is not None:  # the guider's start/stop fractions are of the steps that run
        nodes["guider_steps"] = steps.guider_steps(scheduler, fractions=True)
        timesteps = next(source for source, target in edges if target == "denoise.timesteps")
        edges += [
            (timesteps, "guider_steps.timesteps"),
            ("guider_steps.guider_steps", "denoise.num_inference_steps"),
        ]
    outputs = {"latents": "denoise.latents"}
    if vae is not None:
        nodes["decode"] = vae_decode(vae)
        edges.append(("denoise.latents", "decode.latents"))
        outputs["image"] = "decode.image"
    return df.Graph(nodes, edges, outputs, name=name)


def sdxl_text2img(
    *,
    unet: Any,
    scheduler: Any,
    vae: Any | None = None,
    guider: Any | None = None,
    text_encoder: Any | None = None,
    text_encoder_2: Any | None = None,
    tokenizer: Any | None = None,
    tokenizer_2: Any | None = None,
    progress: bool = False,
) -> df.Graph:
    """StableDiffusionXLPipeline: inputs prompt, prompt_2, negative_prompt, negative_prompt_2,
    num_images_per_prompt (with encoders) or prompt_embeds, negative_prompt_embeds, pooled_prompt_embeds,
    negative_pooled_prompt_embeds (without); num_inference_steps, denoising_end, guidance_scale,
    guidance_rescale, height, width, original_size, crops_coords_top_left, target_size and their negative_*,
    generator, latents, eta; outputs latents (and image, in [0, 1], with a VAE)."""
    encoders = _encoders(text_encoder, text_encoder_2, tokenizer, tokenizer_2)
    _check_added_embedding(unet, text_encoder_2, TIME_IDS)
    scale = steps.vae_scale_factor(vae)
    nodes: dict[str, Any] = {
        "set_timesteps": set_timesteps(scheduler, unet),
        "prepare_latents": steps.prepare_latents(scheduler, unet, scale),
        # with a guider, Modular Diffusers' layout: each branch's own row repeated (guidance_scale 1 gives it)
        "add_time_ids": add_time_ids(unet, scale)
        if guider is None
        else df.Bound(add_time_ids(unet, scale), {"guidance_scale": 1.0}, name="add_time_ids"),
    }
    edges = [
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("prepare_latents.latents", "denoise.latents"),
        ("add_time_ids.add_time_ids", "denoise.add_time_ids"),
        ("add_time_ids.negative_add_time_ids", "denoise.negative_add_time_ids"),
    ]
    return _assemble(
        nodes,
        edges,
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        guider=guider,
        encoders=(text_encoder, text_encoder_2, tokenizer, tokenizer_2) if encoders else None,
        progress=progress,
        time_ids=TIME_IDS,
        name="sdxl_text2img",
    )


def sdxl_img2img(
    *,
    unet: Any,
    scheduler: Any,
    vae: Any,
    guider: Any | None = None,
    text_encoder: Any | None = None,
    text_encoder_2: Any | None = None,
    tokenizer: Any | None = None,
    tokenizer_2: Any | None = None,
    requires_aesthetics_score: bool = False,
    progress: bool = False,
) -> df.Graph:
    """StableDiffusionXLImg2ImgPipeline: sdxl_text2img's inputs less height, width and latents, plus image,
    strength, denoising_start, aesthetic_score and negative_aesthetic_score (read when
    requires_aesthetics_score, the pipeline's config flag); outputs latents and image."""
    encoders = _encoders(text_encoder, text_encoder_2, tokenizer, tokenizer_2)
    ids = AESTHETIC_TIME_IDS if requires_aesthetics_score else TIME_IDS
    _check_added_embedding(unet, text_encoder_2, ids)
    scale = steps.vae_scale_factor(vae)
    nodes: dict[str, Any] = {
        "preprocess": steps.preprocess_image(scale),
        "set_timesteps": strength_timesteps(scheduler, unet),
        "encode": encode_image_latents(vae, scheduler, unet),
        "add_time_ids": img2img_add_time_ids(
            unet, scale, requires_aesthetics_score=requires_aesthetics_score
        ),
    }
    edges = [
        ("preprocess.init_image", "encode.init_image"),
        ("set_timesteps.timesteps", "encode.timesteps"),
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("encode.latents", "denoise.latents"),
        ("encode.latents", "add_time_ids.latents"),
        ("add_time_ids.add_time_ids", "denoise.add_time_ids"),
        ("add_time_ids.negative_add_time_ids", "denoise.negative_add_time_ids"),
    ]
    return _assemble(
        nodes,
        edges,
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        guider=guider,
        encoders=(text_encoder, text_encoder_2, tokenizer, tokenizer_2) if encoders else None,
        progress=progress,
        time_ids=ids,
        name="sdxl_img2img",
    )

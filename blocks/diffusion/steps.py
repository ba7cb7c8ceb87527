"""The denoising steps of diffusers' Stable Diffusion pipelines, one block each, around real components.

Each block is made by a factory from the component it runs, so its ports carry that component's own
sizes: a UNet with 4 latent channels and 32-wide cross-attention gives ports typed
`Float[Tensor, "batch 4 latent_height latent_width"]` and `Float[Tensor, "batch sequence 32"]`, and the
checker rejects a graph that feeds it 8 channels or 64-wide embeddings (DF301) before anything runs.
Named dims (`batch`, `latent_height`, ...) are bound once across the graph, so the batch of the prompt
embeddings and the batch of the latents must agree too.

Every block computes exactly what the pipeline's own code computes (same calls, same order, same
generator draws): `dfgraph_blocks.diffusion.text2img` and `img2img` are proven equal to the pipelines in
tests.
Stateful schedulers (step index, multistep history) are the shared resource `SCHEDULER`; blocks that
draw from the generator mutate `RNG`, so the stream scheduler keeps them in order on one stream.

(This module does not use `from __future__ import annotations`: the annotations are built from the
component's config when the factory runs, and must be evaluated then.)
"""

import inspect
from collections.abc import Mapping
from typing import Any, Literal

import PIL.Image
import torch
from diffusers.configuration_utils import FrozenDict
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.deprecation_utils import deprecate
from diffusers.utils.torch_utils import randn_tensor
from jaxtyping import Float
from torch import Tensor

import dfgraph as df
from dfgraph import RNG

SCHEDULER = "scheduler"
"""The resource of a scheduler's internal state: blocks that change it keep their order."""

Generator = torch.Generator | list[torch.Generator] | None
"""What diffusers accepts as `generator`: one, one per sample, or none (the global RNG)."""

Noise = Float[Tensor, "batch channels latent_height latent_width"]
"""A noise prediction whose channel count is fixed by the denoiser that made it."""

ImageInput = Tensor | PIL.Image.Image | list[PIL.Image.Image]
"""An init image: a tensor in [0, 1] (or [-1, 1]) shaped batch x 3 x height x width, or PIL images."""


def vae_scale_factor(vae: Any | None) -> int:
    """Pixels per latent: 2 ** (levels - 1) of the VAE, and 8 without one, as diffusers computes it."""
    return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8


def normalize_scheduler(scheduler: Any) -> Any:
    """The scheduler with a legacy config rewritten in place as StableDiffusionPipeline.__init__ does
    (`steps_offset` to 1, `clip_sample` to False), with diffusers' own deprecation warnings; returned."""
    config = scheduler.config
    if getattr(config, "steps_offset", 1) != 1:
        message = (
            f"The configuration file of this scheduler: {scheduler} is outdated. `steps_offset` should be set"
            f" to 1 instead of {config.steps_offset}. Please make sure to update the config accordingly as"
            " leaving `steps_offset` might led to incorrect results in future versions."
        )
        deprecate("steps_offset!=1", "1.0.0", message, standard_warn=False)
        scheduler._internal_dict = FrozenDict({**scheduler.config, "steps_offset": 1})  # type: ignore[no-untyped-call]
    if getattr(scheduler.config, "clip_sample", False) is True:
        message = (
            f"The configuration file of this scheduler: {scheduler} has not set the configuration"
            " `clip_sample`. `clip_sample` should be set to False in the configuration file. Please make sure"
            " to update the config accordingly as not setting `clip_sample` in the config might lead to"
            " incorrect results in future versions."
        )
        deprecate("clip_sample not set", "1.0.0", message, standard_warn=False)
        scheduler._internal_dict = FrozenDict({**scheduler.config, "clip_sample": False})  # type: ignore[no-untyped-call]
    return scheduler


def guides(unet: Any, guidance_scale: float) -> bool:
    """Whether classifier-free guidance runs (two branches): the pipeline's do_classifier_free_guidance."""
    return guidance_scale > 1 and unet.config.time_cond_proj_dim is None


def set_timesteps(scheduler: Any, unet: Any) -> Any:
    """Block: the scheduler's timesteps for num_inference_steps, on the denoiser's device."""

    @df.block(outputs="timesteps", mutates=(SCHEDULER,))
    def set_timesteps(num_inference_steps: int = 50) -> Tensor:
        """scheduler.set_timesteps(num_inference_steps), as diffusers' retrieve_timesteps calls it."""
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        scheduler.set_timesteps(num_inference_steps, device=unet.device)
        timesteps: Tensor = scheduler.timesteps
        return timesteps

    return set_timesteps


def strength_timesteps(scheduler: Any, unet: Any) -> Any:
    """Block: img2img's timesteps, the last `strength` of the schedule (get_timesteps of the pipeline)."""

    @df.block(outputs="timesteps", mutates=(SCHEDULER,))
    def strength_timesteps(num_inference_steps: int = 50, strength: float = 0.8) -> Tensor:
        """set_timesteps, skip the first (1 - strength) of them, tell the scheduler where it starts."""
        if not 0 <= strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {num_inference_steps}")
        scheduler.set_timesteps(num_inference_steps, device=unet.device)
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
        if init_timestep < 1:
            raise ValueError(
                f"strength={strength} of {num_inference_steps} steps leaves no denoising step; "
                "raise strength or num_inference_steps"
            )
        t_start = max(num_inference_steps - init_timestep, 0)
        timesteps: Tensor = scheduler.timesteps[t_start * scheduler.order :]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(t_start * scheduler.order)
        return timesteps

    return strength_timesteps


def prepare_latents(scheduler: Any, unet: Any, vae_scale: int) -> Any:
    """Block: the initial noise (or the given latents), scaled by the scheduler's init_noise_sigma."""
    channels, width_emb = unet.config.in_channels, unet.config.cross_attention_dim
    pixels = unet.config.sample_size * vae_scale

    @df.block(outputs="latents", mutates=(RNG,))
    def prepare_latents(
        prompt_embeds: Float[Tensor, f"batch sequence {width_emb}"],
        height: int = pixels,
        width: int = pixels,
        generator: Generator = None,
        latents: Float[Tensor, f"batch {channels} latent_height latent_width"] | None = None,
    ) -> Float[Tensor, f"batch {channels} latent_height latent_width"]:
        """randn_tensor(batch, channels, height / scale, width / scale) * init_noise_sigma."""
        if height % 8 or width % 8:
            raise ValueError(f"height and width must be divisible by 8, got {height} and {width}")
        if latents is None:
            shape = (prompt_embeds.shape[0], channels, height // vae_scale, width // vae_scale)
            if isinstance(generator, list) and len(generator) != shape[0]:
                raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
            latents = randn_tensor(shape, generator=generator, device=unet.device, dtype=prompt_embeds.dtype)
        else:
            latents = latents.to(unet.device)
        scaled: Tensor = latents * scheduler.init_noise_sigma
        return scaled

    return prepare_latents


def preprocess_image(vae_scale: int) -> Any:
    """Block: the init image as the VAE takes it (diffusers' VaeImageProcessor.preprocess)."""
    processor = VaeImageProcessor(vae_scale_factor=vae_scale)

    @df.block(outputs="init_image")
    def preprocess_image(image: ImageInput) -> Float[Tensor, "batch 3 height width"]:
        """Resize to a multiple of the scale factor and normalise to [-1, 1]."""
        processed: Tensor = processor.preprocess(image)
        return processed

    return preprocess_image


def encode_image_latents(vae: Any, scheduler: Any, unet: Any) -> Any:
    """Block: img2img's start latents: the encoded image, noised to the first timestep."""
    width_emb, channels = unet.config.cross_attention_dim, vae.config.latent_channels

    @df.block(outputs="latents", mutates=(SCHEDULER, RNG))
    def encode_image_latents(
        init_image: Float[Tensor, "image_batch 3 height width"],
        timesteps: Tensor,
        prompt_embeds: Float[Tensor, f"batch sequence {width_emb}"],
        generator: Generator = None,
    ) -> Float[Tensor, f"batch {channels} latent_height latent_width"]:
        """vae.encode(image) sampled with the generator, times scaling_factor, plus noise at timesteps[0]."""
        batch = prompt_embeds.shape[0]
        image = init_image.to(device=unet.device, dtype=prompt_embeds.dtype)
        with torch.no_grad():
            if isinstance(generator, list):
                if len(generator) != batch:
                    raise ValueError(f"{len(generator)} generators for a batch of {batch}")
                if image.shape[0] < batch and batch % image.shape[0] == 0:
                    image = torch.cat([image] * (batch // image.shape[0]), dim=0)
                parts = [vae.encode(image[i : i + 1]).latent_dist.sample(generator[i]) for i in range(batch)]
                init_latents = torch.cat(parts, dim=0)
            else:
                init_latents = vae.encode(image).latent_dist.sample(generator)
        init_latents = vae.config.scaling_factor * init_latents
        if batch % init_latents.shape[0]:
            raise ValueError(f"cannot repeat {init_latents.shape[0]} images to a batch of {batch} prompts")
        init_latents = torch.cat([init_latents] * (batch // init_latents.shape[0]), dim=0)
        noise = randn_tensor(init_latents.shape, generator=generator, device=unet.device, dtype=image.dtype)
        noised: Tensor = scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(batch))
        return noised

    return encode_image_latents


def guider_steps(scheduler: Any, *, fractions: bool = False) -> Any:
    """Block: the step count a diffusers guider is told (its start/stop fractions are of it), as Modular
    Diffusers computes it: the steps left to run (img2img's `strength` leaves fewer), per scheduler order;
    with `fractions` (SDXL's denoising_start / denoising_end cuts) the timesteps left, as Modular counts."""

    def count(timesteps: Tensor, cut: bool) -> int:
        order = int(getattr(scheduler, "order", 1))
        return len(timesteps) if cut else -(-len(timesteps) // order)

    if fractions:

        @df.block(outputs="guider_steps")
        def guider_steps_cut(
            timesteps: Tensor, denoising_start: float | None = None, denoising_end: float | None = None
        ) -> int:
            """The timesteps' step count; their number when a denoising fraction cut them."""
            cut = any(isinstance(f, float) and 0 < f < 1 for f in (denoising_start, denoising_end))
            return count(timesteps, cut)

        return guider_steps_cut

    @df.block(outputs="guider_steps")
    def guider_steps(timesteps: Tensor) -> int:
        """The timesteps' step count: ceil(len / scheduler.order)."""
        return count(timesteps, False)

    return guider_steps


def guidance_selector(unet: Any) -> Any:
    """Selector block: "cfg" (two denoiser branches) or "single", diffusers' do_classifier_free_guidance."""

    @df.block(outputs="guidance")
    def do_classifier_free_guidance(guidance_scale: float = 7.5) -> Literal["cfg", "single"]:
        """ "cfg" when guidance_scale > 1 (and the UNet has no guidance embedding), else "single"."""
        return "cfg" if guides(unet, guidance_scale) else "single"

    return do_classifier_free_guidance


@df.block(outputs="workflow")
def image_given(image: ImageInput | None = None) -> Literal["text2img", "img2img"]:
    """Selector block: "img2img" when an init image is given, else "text2img" (diffusers' trigger rule)."""
    return "text2img" if image is None else "img2img"


def scale_model_input(scheduler: Any, unet: Any) -> Any:
    """Block: scheduler.scale_model_input(latents, t), the denoiser's input at this step."""
    channels = unet.config.in_channels

    @df.block(outputs="latent_model_input", mutates=(SCHEDULER,))
    def scale_model_input(
        latents: Float[Tensor, f"batch {channels} latent_height latent_width"], t: Tensor
    ) -> Float[Tensor, f"batch {channels} latent_height latent_width"]:
        """The scheduler's input scaling (a no-op for DDIM, sigma scaling for Euler)."""
        scaled: Tensor = scheduler.scale_model_input(latents, t)
        return scaled

    return scale_model_input


def denoiser(unet: Any, *, added_time_ids: int | None = None) -> Any:
    """Block: one UNet2DConditionModel prediction; batchable, so two branches can fuse into one call.

    Its ports carry the conditioning the UNet's config requires: `added_time_ids=n` (SDXL: 6 size numbers,
    or 5 with an aesthetic score) adds SDXL's `text_embeds` and `time_ids` inputs, which a UNet with
    addition_embed_type="text_time" needs and any other UNet cannot take. A mismatch is a ValueError
    while the graph is built, naming the missing inputs and the graph to use."""
    config = unet.config
    channels_in, channels_out, width_emb = config.in_channels, config.out_channels, config.cross_attention_dim
    if config.time_cond_proj_dim is not None:
        raise ValueError("UNets with time_cond_proj_dim (LCM guidance embedding) are not supported yet")
    embed = getattr(config, "addition_embed_type", None)
    if embed == "text_time" and added_time_ids is None:
        raise ValueError(
            "this UNet has addition_embed_type='text_time' (Stable Diffusion XL): every call needs the added "
            "conditioning inputs text_embeds and time_ids, which this graph does not give; "
            "use sdxl_text2img or sdxl_img2img"
        )
    if embed != "text_time" and added_time_ids is not None:
        raise ValueError(
            f"this UNet has addition_embed_type={embed!r}, not 'text_time': it has no input for SDXL's added "
            "conditioning text_embeds and time_ids; use text2img or img2img (Stable Diffusion 1.x)"
        )
    if embed not in (None, "text_time") or getattr(config, "class_embed_type", None) is not None:
        needs = f"addition_embed_type={embed!r}" if embed is not None else "class_labels"
        raise ValueError(f"UNets that need {needs} are not supported yet")

    if added_time_ids is None:

        @df.block(outputs="noise_pred", batch=("sample", "encoder_hidden_states"))
        def denoiser(
            sample: Float[Tensor, f"batch {channels_in} latent_height latent_width"],
            t: Tensor,
            encoder_hidden_states: Float[Tensor, f"batch sequence {width_emb}"],
        ) -> Float[Tensor, f"batch {channels_out} latent_height latent_width"]:
            """unet(sample, t, encoder_hidden_states)."""
            with torch.no_grad():
                noise: Tensor = unet(
                    sample, t, encoder_hidden_states=encoder_hidden_states, return_dict=False
                )[0]
            return noise

        return denoiser

    ids = added_time_ids
    pooled = config.projection_class_embeddings_input_dim - ids * config.addition_time_embed_dim
    if pooled < 1:
        raise ValueError(
            f"{ids} time ids of {config.addition_time_embed_dim} features fill the UNet's whole added "
            f"embedding ({config.projection_class_embeddings_input_dim}): no room for text_embeds"
        )

    @df.block(outputs="noise_pred", batch=("sample", "encoder_hidden_states", "text_embeds", "time_ids"))
    def sdxl_denoiser(
        sample: Float[Tensor, f"batch {channels_in} latent_height latent_width"],
        t: Tensor,
        encoder_hidden_states: Float[Tensor, f"batch sequence {width_emb}"],
        text_embeds: Float[Tensor, f"batch {pooled}"],
        time_ids: Float[Tensor, f"batch {ids}"],
    ) -> Float[Tensor, f"batch {channels_out} latent_height latent_width"]:
        """unet(sample, t, encoder_hidden_states, added_cond_kwargs={text_embeds, time_ids})."""
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        with torch.no_grad():
            noise: Tensor = unet(
                sample,
                t,
                encoder_hidden_states=encoder_hidden_states,
                added_cond_kwargs=added,
                return_dict=False,
            )[0]
        return noise

    return sdxl_denoiser


@df.block(outputs="noise_pred")
def classifier_free_guidance(
    noise_pred_text: Noise | None,
    noise_pred_uncond: Noise | None,
    guidance_scale: float = 7.5,
    guidance_rescale: float = 0.0,
) -> Noise:
    """uncond + guidance_scale * (text - uncond), optionally rescaled (arXiv 2305.08891, section 3.4).

    The library's graphs run this block only in the "cfg" case of their guidance Switch; for hand-built
    graphs, a missing (None) unconditional prediction passes the text prediction through unchanged."""
    if noise_pred_text is None:
        raise ValueError("the conditional branch produced no prediction (its embeddings were None)")
    if noise_pred_uncond is None:
        return noise_pred_text
    guided = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
    if guidance_rescale > 0.0:
        dims = list(range(1, noise_pred_text.ndim))
        std_text = noise_pred_text.std(dim=dims, keepdim=True)
        std_cfg = guided.std(dim=dims, keepdim=True)
        rescaled = guided * (std_text / std_cfg)
        guided = guidance_rescale * rescaled + (1 - guidance_rescale) * guided
    return guided


def scheduler_step(scheduler: Any, unet: Any) -> Any:
    """Block: scheduler.step(noise_pred, t, latents), with eta and generator where it takes them."""
    channels = unet.config.in_channels
    accepted = inspect.signature(scheduler.step).parameters
    takes_eta, takes_generator = "eta" in accepted, "generator" in accepted
    mutates = (SCHEDULER, RNG) if takes_generator else (SCHEDULER,)

    @df.block(outputs="latents", mutates=mutates)
    def scheduler_step(
        noise_pred: Noise,
        t: Tensor,
        latents: Float[Tensor, f"batch {channels} latent_height latent_width"],
        generator: Generator = None,
        eta: float = 0.0,
    ) -> Float[Tensor, f"batch {channels} latent_height latent_width"]:
        """x_t -> x_t-1 (the pipeline's prepare_extra_step_kwargs decides which keywords go in)."""
        extra: dict[str, Any] = {}
        if takes_eta:
            extra["eta"] = eta
        if takes_generator:
            extra["generator"] = generator
        previous: Tensor = scheduler.step(noise_pred, t, latents, **extra, return_dict=False)[0]
        return previous

    return scheduler_step


def vae_decode(vae: Any) -> Any:
    """Block: latents to an image tensor in [0, 1] (the pipeline's output_type="pt")."""
    channels, colours = vae.config.latent_channels, vae.config.out_channels

    @df.block(outputs="image", mutates=(RNG,))
    def vae_decode(
        latents: Float[Tensor, f"batch {channels} latent_height latent_width"], generator: Generator = None
    ) -> Float[Tensor, f"batch {colours} height width"]:
        """vae.decode(latents / scaling_factor), denormalised from [-1, 1] to [0, 1]."""
        with torch.no_grad():
            decoded = vae.decode(latents / vae.config.scaling_factor, return_dict=False, generator=generator)[
                0
            ]
        image: Tensor = VaeImageProcessor.denormalize(decoded)
        return image

    return vae_decode


class StepContext:
    """What a step callback gets as its `pipe` argument: the pipeline attributes callbacks written for
    diffusers read (`num_timesteps`, `guidance_scale`, `do_classifier_free_guidance`, `interrupt`), and
    `_interrupt`, which a callback sets to stop the loop after this step."""

    def __init__(self, num_timesteps: int, guidance_scale: float | None, guided: bool) -> None:
        self._interrupt = False
        self._num_timesteps = num_timesteps
        self._guidance_scale = guidance_scale
        self._guided = guided

    @property
    def interrupt(self) -> bool:
        """True once a callback asked to stop."""
        return self._interrupt

    @property
    def num_timesteps(self) -> int:
        """The number of denoising steps of this call."""
        return self._num_timesteps

    @property
    def guidance_scale(self) -> float | None:
        """The call's guidance_scale."""
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Whether this loop runs the unconditional branch."""
        return self._guided


class StepEnd:
    """Block: diffusers' `callback_on_step_end` after each step (see `step_end`)."""

    mutates = ()

    def __init__(
        self,
        tensors: Mapping[str, Any],
        read_only: Mapping[str, Any],
        paired: Mapping[str, str],
        guidance_scale: float,
        guided: bool,
        guider: Any = None,
    ) -> None:
        if "latents" not in tensors:
            raise ValueError("step_end needs 'latents' among its tensors")
        self.name = "step_end"
        self.tensors = tuple(tensors)
        self.read_only = tuple(read_only)
        self.paired = dict(paired)
        self.guided = guided
        self.guider = guider  # its own scale is the call's guidance_scale: not an input then
        scale = () if guider is not None else (df.Port("guidance_scale", float, guidance_scale),)
        self.inputs = (
            df.Port("i", int),
            df.Port("t", Tensor),
            df.Port("timesteps", Tensor),
            *scale,
            *(df.Port(name, hint) for name, hint in {**tensors, **read_only}.items()),
            df.Port(
                "callback_on_step_end", Any, None, doc="diffusers' callback(pipe, i, t, tensors) -> dict"
            ),
            df.Port("callback_on_step_end_tensor_inputs", list[str] | None, None, doc="default ['latents']"),
        )
        self.outputs = (*(df.Port(name, hint) for name, hint in tensors.items()), df.Port("interrupt", bool))

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """Call the callback with the requested tensors; what it returns replaces them."""
        values = {name: inputs[name] for name in self.tensors}
        callback = inputs["callback_on_step_end"]
        if callback is None:
            return {**values, "interrupt": False}
        requested = getattr(callback, "tensor_inputs", None)  # diffusers' PipelineCallback objects
        if requested is None:
            requested = inputs["callback_on_step_end_tensor_inputs"] or ["latents"]
        readable = {**values, **{name: inputs[name] for name in self.read_only}}
        for name, negative in self.paired.items():  # the pipeline's torch.cat([negative, positive])
            readable[name] = torch.cat([inputs[negative], inputs[name]])
        unknown = [name for name in requested if name not in readable]
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has to be in {list(readable)}, but found {unknown}"
            )
        scale = (
            getattr(self.guider, "guidance_scale", None)
            if self.guider is not None
            else inputs["guidance_scale"]
        )
        pipe = StepContext(len(inputs["timesteps"]), scale, self.guided)
        returned = callback(pipe, inputs["i"], inputs["t"], {name: readable[name] for name in requested})
        if not isinstance(returned, Mapping):
            kind = type(returned).__name__
            raise TypeError(f"callback_on_step_end must return a dict of tensors, got {kind}")
        changed = [
            name for name in returned if name not in self.tensors and returned[name] is not readable.get(name)
        ]
        if changed:
            raise ValueError(
                f"callback_on_step_end returned a new {changed}: this loop lets a callback replace only "
                f"{list(self.tensors)} (the others can be read)"
            )
        return {
            **values,
            **{k: v for k, v in returned.items() if k in self.tensors},
            "interrupt": pipe.interrupt,
        }


def step_end(
    tensors: Mapping[str, Any],
    *,
    read_only: Mapping[str, Any] | None = None,
    paired: Mapping[str, str] | None = None,
    guidance_scale: float = 7.5,
    guided: bool = True,
    guider: Any = None,
) -> StepEnd:
    """Block: diffusers' `callback_on_step_end(pipe, i, t, callback_kwargs)` at the end of a loop step.

    `tensors` maps each name a callback may read and replace to its type; they are inputs and outputs, so
    a loop carries them and the next step reads what the callback returned. `read_only` (name -> type) it
    may read but not replace. `paired` maps a name to its negative: with guidance the pipeline holds
    `torch.cat([negative, positive])` under the positive's name, and the callback reads that. Output
    `interrupt` is True when the callback set `pipe._interrupt`: the graph's loop ends there
    (`until="interrupt"`), as the pipeline skips its remaining steps. With a diffusers `guider`,
    `pipe.guidance_scale` is the guider's, and the block reads no guidance_scale input."""
    return StepEnd(tensors, read_only or {}, paired or {}, guidance_scale, guided, guider)

"""Stable Diffusion text-to-image and image-to-image as dfgraph graphs, named like diffusers' pipelines.

`text2img(unet=..., scheduler=...)` is `StableDiffusionPipeline.__call__` from prompt embeddings on: its
inputs have the pipeline's names and meanings, and with the same components, inputs and generator seed
it gives the pipeline's latents (the tests hold it to 1e-5). Classifier-free guidance on or off is a
`df.Switch` decided once per call, as the pipeline's `do_classifier_free_guidance`: the "cfg" case is a
loop whose body runs the conditional and unconditional denoiser calls as two independent blocks (so
`df.compile(..., fuse=True)` batches them into one UNet call and `device="cuda"` can run them on two
streams); the "single" case is a loop with one denoiser call per step.

                           ┌ cfg:    scale ─► cond ─┬─► guidance ─► step ─► latents (carried)
    guidance_scale > 1 ? ──┤                  uncond┘
                           └ single: scale ─► cond ─────────────► step ─► latents (carried)

`sd_auto` is one graph for both workflows: a Switch on whether `image` is given picks text2img's or
img2img's preparation (timesteps and start latents); the denoising loop and the decoder are shared.
"""

from __future__ import annotations

import importlib
from typing import Any

from jaxtyping import Float
from torch import Tensor

import dfgraph as df
from dfgraph_blocks.diffusion import prompts, steps


def denoising_step(
    unet: Any, scheduler: Any, *, guidance: bool = True, guider: Any = None, optional_negatives: bool = False
) -> df.Graph:
    """The loop body: scale the latents, predict noise (both branches and guide, the conditional branch
    alone when `guidance=False`, or the branches a diffusers `guider` asks for), take a scheduler step,
    then call `callback_on_step_end` (its `interrupt` output ends the loop). `optional_negatives`: the
    negative embeddings come from a prompt encoder, typed `T | None` (None when guidance is off)."""
    negative = "negative_prompt_embeds"
    nodes: dict[str, Any] = {"scale": steps.scale_model_input(scheduler, unet)}
    edges = [("scale.latent_model_input", "predict.sample" if guider is not None else "cond.sample")]
    if guider is not None:
        guiders: Any = importlib.import_module("dfgraph_blocks.diffusion.guiders")  # h-guide's (contract C2)

        nodes["predict"] = guiders.guided_denoiser(unet, guider)
        edges.append(("predict.noise_pred", "step.noise_pred"))
    else:
        denoiser = steps.denoiser(unet)  # one block object for both branches: the fusion pass needs that
        nodes["cond"] = denoiser
        edges.append(("prompt_embeds", "cond.encoder_hidden_states"))
        if guidance and optional_negatives:
            nodes["negatives"] = require_negatives(unet)
            negative = "negatives.negative_prompt_embeds"
        if guidance:
            nodes.update(uncond=denoiser, guidance=steps.classifier_free_guidance)
            edges += [
                ("scale.latent_model_input", "uncond.sample"),
                (negative, "uncond.encoder_hidden_states"),
                ("cond.noise_pred", "guidance.noise_pred_text"),
                ("uncond.noise_pred", "guidance.noise_pred_uncond"),
                ("guidance.noise_pred", "step.noise_pred"),
            ]
        else:
            edges.append(("cond.noise_pred", "step.noise_pred"))
    nodes["step"] = steps.scheduler_step(scheduler, unet)
    guided = guidance or guider is not None
    tensors, read_only = callback_tensors(
        unet, guided=guided, optional=optional_negatives or guider is not None
    )
    paired = {"prompt_embeds": "negative_prompt_embeds"} if guided else {}
    nodes["step_end"] = steps.step_end(
        tensors, read_only=read_only, paired=paired, guided=guided, guider=guider
    )
    edges.append(("step.latents", "step_end.latents"))
    if negative != "negative_prompt_embeds":
        edges.append((negative, "step_end.negative_prompt_embeds"))
    outputs = [f"step_end.{name}" for name in (*tensors, "interrupt")]
    return df.Graph(nodes=nodes, edges=edges, outputs=outputs, name="step")


def require_negatives(unet: Any) -> Any:
    """Block: a prompt encoder's negative embeddings (`T | None`, None when guidance is off) as the "cfg"
    case reads them: the guidance Switch runs that case only when they exist, which types cannot see."""
    width = unet.config.cross_attention_dim

    @df.block(outputs="negative_prompt_embeds")
    def require_negatives(
        negative_prompt_embeds: Float[Tensor, f"batch sequence {width}"] | None,
    ) -> Float[Tensor, f"batch sequence {width}"]:
        """The tensor unchanged; a ValueError if the encoder gave None."""
        if negative_prompt_embeds is None:
            raise ValueError("guidance is on but the prompt encoder made no negative embeddings")
        return negative_prompt_embeds

    return require_negatives


def callback_tensors(
    unet: Any, *, guided: bool, optional: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tensors a step callback may replace and those it may only read (together the pipeline's
    _callback_tensor_inputs), typed as the loop has them. With guidance the pipeline's prompt_embeds is
    `torch.cat([negative, positive])`, which the callback reads but cannot hand back to separate branches."""
    channels, width = unet.config.in_channels, unet.config.cross_attention_dim
    embeds = Float[Tensor, f"batch sequence {width}"]
    latents = Float[Tensor, f"batch {channels} latent_height latent_width"]
    if guided:
        negative = embeds | None if optional else embeds
        return {"latents": latents}, {"prompt_embeds": embeds, "negative_prompt_embeds": negative}
    return {"latents": latents, "prompt_embeds": embeds}, {}


def denoising_loop(
    unet: Any, scheduler: Any, *, progress: bool = False, guider: Any = None, optional_negatives: bool = False
) -> df.Block:
    """The denoising loop, one `denoising_step` per timestep carrying the latents (and the tensors a step
    callback may replace), ending early when a callback interrupts. Without a guider: a Switch between the
    guided loop ("cfg", needs negative_prompt_embeds) and the one-branch loop ("single"), chosen by
    `guidance_scale` as diffusers' do_classifier_free_guidance. With a diffusers guider: one loop, the
    guider choosing its branches at each step."""

    def loop(name: str, guidance: bool) -> df.Loop:
        body = denoising_step(
            unet, scheduler, guidance=guidance, guider=guider, optional_negatives=optional_negatives
        )
        return df.Loop(body, over="timesteps", item="t", until="interrupt", progress=progress, name=name)

    if guider is not None:
        return loop("denoise", True)
    loops = {case: loop(case, case == "cfg") for case in ("cfg", "single")}
    return df.Switch(loops, on=steps.guidance_selector(unet), name="denoise")


def _pipeline(
    nodes: dict[str, Any],
    edges: list[tuple[str, str]],
    *,
    unet: Any,
    scheduler: Any,
    vae: Any | None,
    guider: Any,
    encoders: tuple[Any, Any] | None,
    progress: bool,
    name: str,
) -> df.Graph:
    """Prompt encoding (with encoders), then the nodes, the loop and the decoder when there is a VAE;
    outputs latents (and image). The embeddings go to every node that reads them."""
    if encoders is not None:
        encode = prompts.encode_prompt(*encoders, guider=guider)
        if guider is not None:  # the guider decides the negatives: guidance_scale is no input then
            encode = df.Bound(encode, {"guidance_scale": 1.0}, name="encode_prompt")
        nodes = {"encode_prompt": encode, **nodes}
    nodes["denoise"] = denoising_loop(
        unet, scheduler, progress=progress, guider=guider, optional_negatives=encoders is not None
    )
    if guider is not None:  # the guider's start/stop fractions are of the steps that run
        nodes["guider_steps"] = steps.guider_steps(scheduler)
        timesteps = next(source for source, target in edges if target == "denoise.timesteps")
        edges += [
            (timesteps, "guider_steps.timesteps"),
            ("guider_steps.guider_steps", "denoise.num_inference_steps"),
        ]
    if encoders is not None:
        for node, block in nodes.items():
            for port in ("prompt_embeds", "negative_prompt_embeds"):
                if node != "encode_prompt" and port in {p.name for p in block.inputs}:
                    edges.append((f"encode_prompt.{port}", f"{node}.{port}"))
    outputs = {"latents": "denoise.latents"}
    if vae is not None:
        nodes["decode"] = steps.vae_decode(vae)
        edges.append(("denoise.latents", "decode.latents"))
        outputs["image"] = "decode.image"
    return df.Graph(nodes, edges, outputs, name=name)


def _encoders(text_encoder: Any | None, tokenizer: Any | None) -> tuple[Any, Any] | None:
    """(text_encoder, tokenizer) when the graph starts from prompts; None when it starts from embeddings."""
    if (text_encoder is None) != (tokenizer is None):
        raise ValueError("give text_encoder and tokenizer together (to start from prompts), or neither")
    return None if text_encoder is None else (text_encoder, tokenizer)


def _text2img_prepare(unet: Any, scheduler: Any, vae: Any | None) -> df.Sequential:
    """text2img's timesteps and initial noise."""
    scale = steps.vae_scale_factor(vae)
    return df.Sequential(
        steps.set_timesteps(scheduler, unet), steps.prepare_latents(scheduler, unet, scale), name="prepare"
    )


def _img2img_prepare(unet: Any, scheduler: Any, vae: Any) -> df.Sequential:
    """img2img's timesteps (the last `strength` of them) and the noised image latents."""
    return df.Sequential(
        steps.preprocess_image(steps.vae_scale_factor(vae)),
        steps.strength_timesteps(scheduler, unet),
        steps.encode_image_latents(vae, scheduler, unet),
        name="prepare",
    )


def text2img(
    *,
    unet: Any,
    scheduler: Any,
    vae: Any | None = None,
    guider: Any = None,
    text_encoder: Any | None = None,
    tokenizer: Any | None = None,
    progress: bool = False,
) -> df.Graph:
    """StableDiffusionPipeline: inputs prompt, negative_prompt, num_images_per_prompt (with a text encoder
    and tokenizer) or prompt_embeds, negative_prompt_embeds (needed when guidance_scale > 1); then
    num_inference_steps, guidance_scale, guidance_rescale, height, width, generator, latents, eta,
    callback_on_step_end; outputs latents (and image, in [0, 1], when a VAE is given). `guider`: a
    diffusers guider (diffusers.guiders) in place of guidance_scale's classifier-free guidance."""
    steps.normalize_scheduler(scheduler)
    scale = steps.vae_scale_factor(vae)
    nodes: dict[str, Any] = {
        "set_timesteps": steps.set_timesteps(scheduler, unet),
        "prepare_latents": steps.prepare_latents(scheduler, unet, scale),
    }
    edges = [
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("prepare_latents.latents", "denoise.latents"),
    ]
    return _pipeline(
        nodes,
        edges,
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        guider=guider,
        encoders=_encoders(text_encoder, tokenizer),
        progress=progress,
        name="text2img",
    )


def img2img(
    *,
    unet: Any,
    scheduler: Any,
    vae: Any,
    guider: Any = None,
    text_encoder: Any | None = None,
    tokenizer: Any | None = None,
    progress: bool = False,
) -> df.Graph:
    """StableDiffusionImg2ImgPipeline: text2img's inputs less height, width and latents, plus image and
    strength; outputs latents and image."""
    steps.normalize_scheduler(scheduler)
    nodes: dict[str, Any] = {
        "preprocess": steps.preprocess_image(steps.vae_scale_factor(vae)),
        "set_timesteps": steps.strength_timesteps(scheduler, unet),
        "encode": steps.encode_image_latents(vae, scheduler, unet),
    }
    edges = [
        ("preprocess.init_image", "encode.init_image"),
        ("set_timesteps.timesteps", "encode.timesteps"),
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("encode.latents", "denoise.latents"),
    ]
    return _pipeline(
        nodes,
        edges,
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        guider=guider,
        encoders=_encoders(text_encoder, tokenizer),
        progress=progress,
        name="img2img",
    )


def sd_auto(
    *,
    unet: Any,
    scheduler: Any,
    vae: Any,
    guider: Any = None,
    text_encoder: Any | None = None,
    tokenizer: Any | None = None,
    progress: bool = False,
) -> df.Graph:
    """text2img and img2img in one graph: img2img when `image` is given, else text2img (diffusers'
    AutoPipelineBlocks rule). Inputs: the union of both (image, strength, height, width, latents are
    needed only by their workflow); outputs latents and image. `df.specialize(graph, image=None)` is the
    text2img workflow alone."""
    steps.normalize_scheduler(scheduler)
    prepare = df.Switch(
        {
            "text2img": _text2img_prepare(unet, scheduler, vae),
            "img2img": _img2img_prepare(unet, scheduler, vae),
        },
        on=steps.image_given,
        name="prepare",
    )
    edges = [("prepare.timesteps", "denoise.timesteps"), ("prepare.latents", "denoise.latents")]
    return _pipeline(
        {"prepare": prepare},
        edges,
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        guider=guider,
        encoders=_encoders(text_encoder, tokenizer),
        progress=progress,
        name="sd_auto",
    )

"""Stable Diffusion text-to-image and image-to-image as dfgraph graphs, named like diffusers' pipelines.

`text2img(unet=..., scheduler=...)` is `StableDiffusionPipeline.__call__` from prompt embeddings on: its
inputs have the pipeline's names and meanings, and with the same components, inputs and generator seed
it gives the pipeline's latents (the tests hold it to 1e-5). The loop body is an explicit Graph whose
conditional and unconditional denoiser calls are two independent blocks, so `df.compile(..., fuse=True)`
batches them into one UNet call and `device="cuda"` can run them on two streams.

    scale ──► cond ────┐
      │                ├──► guidance ──► step ──► latents (carried)
      └─────► uncond ──┘

With guidance_scale <= 1 the unconditional branch is switched off (its embeddings are None), so one
UNet call runs per step, as in the pipeline.
"""

from __future__ import annotations

from typing import Any

import dfgraph as df
from dfgraph_blocks.diffusion import steps


def denoising_step(unet: Any, scheduler: Any) -> df.Graph:
    """The loop body: scale the latents, predict noise for both branches, guide, take a scheduler step."""
    denoiser = steps.denoiser(unet)  # one block object for both branches: the fusion pass needs that
    return df.Graph(
        nodes={
            "scale": steps.scale_model_input(scheduler, unet),
            "cond": denoiser,
            "uncond": denoiser,
            "guidance": steps.classifier_free_guidance,
            "step": steps.scheduler_step(scheduler, unet),
        },
        edges=[
            ("scale.latent_model_input", "cond.sample"),
            ("scale.latent_model_input", "uncond.sample"),
            ("prompt_embeds", "cond.encoder_hidden_states"),
            ("uncond_embeds", "uncond.encoder_hidden_states"),
            ("cond.noise_pred", "guidance.noise_pred_text"),
            ("uncond.noise_pred", "guidance.noise_pred_uncond"),
            ("guidance.noise_pred", "step.noise_pred"),
        ],
        outputs=["step.latents"],
        name="step",
    )


def denoising_loop(unet: Any, scheduler: Any, *, progress: bool = False) -> df.Loop:
    """The denoising loop: one `denoising_step` per timestep, carrying the latents."""
    return df.Loop(
        denoising_step(unet, scheduler), over="timesteps", item="t", progress=progress, name="denoise"
    )


def _pipeline(nodes: dict[str, Any], edges: list[tuple[str, str]], vae: Any | None, name: str) -> df.Graph:
    """The nodes, then the loop, then the decoder when there is a VAE; outputs latents (and image)."""
    outputs = {"latents": "denoise.latents"}
    if vae is not None:
        nodes["decode"] = steps.vae_decode(vae)
        edges.append(("denoise.latents", "decode.latents"))
        outputs["image"] = "decode.image"
    return df.Graph(nodes, edges, outputs, name=name)


def text2img(*, unet: Any, scheduler: Any, vae: Any | None = None, progress: bool = False) -> df.Graph:
    """StableDiffusionPipeline from prompt embeddings: inputs prompt_embeds, negative_prompt_embeds,
    num_inference_steps, guidance_scale, guidance_rescale, height, width, generator, latents, eta; outputs
    latents (and image, in [0, 1], when a VAE is given)."""
    scale = steps.vae_scale_factor(vae)
    nodes: dict[str, Any] = {
        "set_timesteps": steps.set_timesteps(scheduler, unet),
        "prepare_latents": steps.prepare_latents(scheduler, unet, scale),
        "unconditional": steps.unconditional_embeddings(unet),
        "denoise": denoising_loop(unet, scheduler, progress=progress),
    }
    edges = [
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("prepare_latents.latents", "denoise.latents"),
        ("unconditional.uncond_embeds", "denoise.uncond_embeds"),
    ]
    return _pipeline(nodes, edges, vae, "text2img")


def img2img(*, unet: Any, scheduler: Any, vae: Any, progress: bool = False) -> df.Graph:
    """StableDiffusionImg2ImgPipeline from prompt embeddings: text2img's inputs less height, width and
    latents, plus image and strength; outputs latents and image."""
    nodes: dict[str, Any] = {
        "preprocess": steps.preprocess_image(steps.vae_scale_factor(vae)),
        "set_timesteps": steps.strength_timesteps(scheduler, unet),
        "encode": steps.encode_image_latents(vae, scheduler, unet),
        "unconditional": steps.unconditional_embeddings(unet),
        "denoise": denoising_loop(unet, scheduler, progress=progress),
    }
    edges = [
        ("preprocess.init_image", "encode.init_image"),
        ("set_timesteps.timesteps", "encode.timesteps"),
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("encode.latents", "denoise.latents"),
        ("unconditional.uncond_embeds", "denoise.uncond_embeds"),
    ]
    return _pipeline(nodes, edges, vae, "img2img")

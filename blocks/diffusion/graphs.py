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

from typing import Any

import dfgraph as df
from dfgraph_blocks.diffusion import steps


def denoising_step(unet: Any, scheduler: Any, *, guidance: bool = True) -> df.Graph:
    """The loop body: scale the latents, predict noise (both branches and guide, or the conditional branch
    alone when `guidance=False`), take a scheduler step."""
    denoiser = steps.denoiser(unet)  # one block object for both branches: the fusion pass needs that
    nodes: dict[str, Any] = {"scale": steps.scale_model_input(scheduler, unet), "cond": denoiser}
    edges = [
        ("scale.latent_model_input", "cond.sample"),
        ("prompt_embeds", "cond.encoder_hidden_states"),
    ]
    if guidance:
        nodes.update(uncond=denoiser, guidance=steps.classifier_free_guidance)
        edges += [
            ("scale.latent_model_input", "uncond.sample"),
            ("negative_prompt_embeds", "uncond.encoder_hidden_states"),
            ("cond.noise_pred", "guidance.noise_pred_text"),
            ("uncond.noise_pred", "guidance.noise_pred_uncond"),
            ("guidance.noise_pred", "step.noise_pred"),
        ]
    else:
        edges.append(("cond.noise_pred", "step.noise_pred"))
    nodes["step"] = steps.scheduler_step(scheduler, unet)
    return df.Graph(nodes=nodes, edges=edges, outputs=["step.latents"], name="step")


def denoising_loop(unet: Any, scheduler: Any, *, progress: bool = False) -> df.Switch:
    """The denoising loop, one `denoising_step` per timestep carrying the latents: a Switch between the
    guided loop ("cfg", needs negative_prompt_embeds) and the one-branch loop ("single"), chosen by
    `guidance_scale` as diffusers' do_classifier_free_guidance."""
    loops = {
        case: df.Loop(
            denoising_step(unet, scheduler, guidance=case == "cfg"),
            over="timesteps",
            item="t",
            progress=progress,
            name=case,
        )
        for case in ("cfg", "single")
    }
    return df.Switch(loops, on=steps.guidance_selector(unet), name="denoise")


def _pipeline(nodes: dict[str, Any], edges: list[tuple[str, str]], vae: Any | None, name: str) -> df.Graph:
    """The nodes, then the loop, then the decoder when there is a VAE; outputs latents (and image)."""
    outputs = {"latents": "denoise.latents"}
    if vae is not None:
        nodes["decode"] = steps.vae_decode(vae)
        edges.append(("denoise.latents", "decode.latents"))
        outputs["image"] = "decode.image"
    return df.Graph(nodes, edges, outputs, name=name)


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


def text2img(*, unet: Any, scheduler: Any, vae: Any | None = None, progress: bool = False) -> df.Graph:
    """StableDiffusionPipeline from prompt embeddings: inputs prompt_embeds, negative_prompt_embeds
    (needed when guidance_scale > 1), num_inference_steps, guidance_scale, guidance_rescale, height, width,
    generator, latents, eta; outputs latents (and image, in [0, 1], when a VAE is given)."""
    scale = steps.vae_scale_factor(vae)
    nodes: dict[str, Any] = {
        "set_timesteps": steps.set_timesteps(scheduler, unet),
        "prepare_latents": steps.prepare_latents(scheduler, unet, scale),
        "denoise": denoising_loop(unet, scheduler, progress=progress),
    }
    edges = [
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("prepare_latents.latents", "denoise.latents"),
    ]
    return _pipeline(nodes, edges, vae, "text2img")


def img2img(*, unet: Any, scheduler: Any, vae: Any, progress: bool = False) -> df.Graph:
    """StableDiffusionImg2ImgPipeline from prompt embeddings: text2img's inputs less height, width and
    latents, plus image and strength; outputs latents and image."""
    nodes: dict[str, Any] = {
        "preprocess": steps.preprocess_image(steps.vae_scale_factor(vae)),
        "set_timesteps": steps.strength_timesteps(scheduler, unet),
        "encode": steps.encode_image_latents(vae, scheduler, unet),
        "denoise": denoising_loop(unet, scheduler, progress=progress),
    }
    edges = [
        ("preprocess.init_image", "encode.init_image"),
        ("set_timesteps.timesteps", "encode.timesteps"),
        ("set_timesteps.timesteps", "denoise.timesteps"),
        ("encode.latents", "denoise.latents"),
    ]
    return _pipeline(nodes, edges, vae, "img2img")


def sd_auto(*, unet: Any, scheduler: Any, vae: Any, progress: bool = False) -> df.Graph:
    """text2img and img2img in one graph: img2img when `image` is given, else text2img (diffusers'
    AutoPipelineBlocks rule). Inputs: the union of both (image, strength, height, width, latents are
    needed only by their workflow); outputs latents and image. `df.specialize(graph, image=None)` is the
    text2img workflow alone."""
    prepare = df.Switch(
        {
            "text2img": _text2img_prepare(unet, scheduler, vae),
            "img2img": _img2img_prepare(unet, scheduler, vae),
        },
        on=steps.image_given,
        name="prepare",
    )
    nodes: dict[str, Any] = {
        "prepare": prepare,
        "denoise": denoising_loop(unet, scheduler, progress=progress),
    }
    edges = [("prepare.timesteps", "denoise.timesteps"), ("prepare.latents", "denoise.latents")]
    return _pipeline(nodes, edges, vae, "sd_auto")

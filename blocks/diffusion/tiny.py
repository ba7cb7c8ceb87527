"""Tiny, randomly initialised Stable Diffusion components built from configs (nothing is downloaded).

The shapes are those of Stable Diffusion (4 latent channels, a VAE that scales by 8, cross-attention
over prompt embeddings) at a size that runs 20 steps on a CPU in a second. Tests, the demo and the
benchmarks share them, so every comparison with diffusers runs the same weights.
"""

from __future__ import annotations

from typing import Any

import torch

SD_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,  # what the pipelines enforce (they rewrite an older config to it)
}
"""Stable Diffusion v1's noise schedule."""

SCHEDULERS = ("ddim", "euler", "euler_ancestral", "dpm++")
"""The scheduler kinds `scheduler()` builds."""


def unet(seed: int = 0, *, in_channels: int = 4, cross_attention_dim: int = 32, sample_size: int = 8) -> Any:
    """A two-level UNet2DConditionModel with cross-attention, about 0.3M parameters."""
    import diffusers

    torch.manual_seed(seed)
    model: Any = diffusers.UNet2DConditionModel(  # type: ignore[no-untyped-call]
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=in_channels,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    return model.eval()


def vae(seed: int = 0, *, latent_channels: int = 4) -> Any:
    """A four-level AutoencoderKL (scale factor 8) with 8 to 16 channels."""
    import diffusers

    torch.manual_seed(seed)
    model: Any = diffusers.AutoencoderKL(  # type: ignore[no-untyped-call]
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=64,
    )
    return model.eval()


def scheduler(kind: str = "ddim") -> Any:
    """A fresh scheduler of `kind` (one of SCHEDULERS) with Stable Diffusion's schedule."""
    import diffusers

    classes: dict[str, tuple[Any, dict[str, Any]]] = {
        "ddim": (diffusers.DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}),
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "euler_ancestral": (diffusers.EulerAncestralDiscreteScheduler, {}),
        "dpm++": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    }
    if kind not in classes:
        raise ValueError(f"unknown scheduler {kind!r}; choose one of {', '.join(SCHEDULERS)}")
    cls, extra = classes[kind]
    return cls(**SD_SCHEDULE, **extra)


def pipeline(unet: Any, scheduler: Any, vae: Any | None = None, *, img2img: bool = False) -> Any:
    """diffusers' own StableDiffusion(Img2Img)Pipeline around these components: no text encoder,
    tokenizer or safety checker (give it prompt embeddings), progress bar off; the reference dfgraph's
    graphs are compared with."""
    import diffusers

    cls: Any = diffusers.StableDiffusionImg2ImgPipeline if img2img else diffusers.StableDiffusionPipeline
    pipe = cls(
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def prompt_embeddings(
    seed: int = 0, *, batch: int = 1, sequence: int = 8, width: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (prompt_embeds, negative_prompt_embeds) standing in for a text encoder's output."""
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randn(batch, sequence, width, generator=generator)
    negative = torch.randn(batch, sequence, width, generator=generator)
    return prompt, negative

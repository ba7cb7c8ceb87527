"""Tiny, randomly initialised Stable Diffusion components built from configs (nothing is downloaded).

The shapes are those of Stable Diffusion (4 latent channels, a VAE that scales by 8, cross-attention
over prompt embeddings) at a size that runs 20 steps on a CPU in a second. Tests, the demo and the
benchmarks share them, so every comparison with diffusers runs the same weights. Stable Diffusion XL's
are here too: its UNet with text_time added conditioning, two CLIP text encoders (CLIPTextModel and
CLIPTextModelWithProjection, from configs) and CLIP tokenizers over a vocabulary written on the fly.
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


def vae(seed: int = 0, *, latent_channels: int = 4, **config: Any) -> Any:
    """A four-level AutoencoderKL (scale factor 8) with 8 to 16 channels; `config` overrides its config."""
    import diffusers

    torch.manual_seed(seed)
    model: Any = diffusers.AutoencoderKL(  # type: ignore[no-untyped-call]
        **{
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4,
            "block_out_channels": (8, 16, 16, 16),
            "layers_per_block": 1,
            "latent_channels": latent_channels,
            "norm_num_groups": 8,
            "sample_size": 64,
            **config,
        }
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


# -- prompt encoders and Stable Diffusion XL -----------------------------------------------------------------

TOKENS = 16
"""The tiny tokenizers' model_max_length: every prompt becomes this many tokens (CLIP's is 77)."""

SDXL_TIME_EMBED = 8
"""The tiny SDXL UNet's addition_time_embed_dim (SDXL's is 256): six size numbers, 8 features each."""


def tokenizer(*, model_max_length: int = TOKENS, pad_token: str = "<|endoftext|>") -> Any:
    """A CLIPTokenizer over a vocabulary written on the fly: lower-case letters, digits and punctuation,
    one token per character (no merges), plus CLIP's start, end and "!" tokens. Nothing is downloaded."""
    import string

    import transformers

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + ".,!?'-":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)  # a character that ends a word, as CLIP's BPE spells it
    made: Any = transformers.CLIPTokenizer(
        vocab=vocab, merges=[], model_max_length=model_max_length, pad_token=pad_token
    )
    return made


def _clip_config(hidden_size: int, projection_dim: int) -> Any:
    """A two-layer CLIPTextConfig over `tokenizer()`'s vocabulary (end token 1 pools, as CLIP's does)."""
    import transformers

    return transformers.CLIPTextConfig(
        vocab_size=len(tokenizer()),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,  # SDXL reads the penultimate hidden states
        num_attention_heads=4,
        max_position_embeddings=TOKENS,
        projection_dim=projection_dim,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def text_encoder(seed: int = 0, *, hidden_size: int = 32) -> Any:
    """A two-layer CLIPTextModel; hidden_size 32 matches `unet()`'s cross-attention (SD 1.x's encoder)."""
    import transformers

    torch.manual_seed(seed)
    model: Any = transformers.CLIPTextModel(_clip_config(hidden_size, hidden_size))
    return model.eval()


def text_encoder_2(seed: int = 1, *, hidden_size: int = 32, projection_dim: int = 32) -> Any:
    """A two-layer CLIPTextModelWithProjection: SDXL's second encoder, whose projection is the pooled
    prompt embedding (`text_embeds` of the UNet's added conditioning)."""
    import transformers

    torch.manual_seed(seed)
    model: Any = transformers.CLIPTextModelWithProjection(_clip_config(hidden_size, projection_dim))
    return model.eval()


def sdxl_unet(
    seed: int = 0,
    *,
    in_channels: int = 4,
    cross_attention_dim: int = 64,
    pooled_dim: int = 32,
    sample_size: int = 8,
) -> Any:
    """`unet()` with SDXL's added conditioning (addition_embed_type="text_time"): cross-attention over both
    encoders' hidden states side by side (32 + 32), and an embedding of the pooled prompt and six size
    numbers (original size, crop corner, target size)."""
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
        addition_embed_type="text_time",
        addition_time_embed_dim=SDXL_TIME_EMBED,
        projection_class_embeddings_input_dim=6 * SDXL_TIME_EMBED + pooled_dim,
    )
    return model.eval()


def sdxl_components(seed: int = 0, *, scheduler_kind: str = "euler") -> dict[str, Any]:
    """Every component StableDiffusionXLPipeline takes (and Modular Diffusers' SDXL blocks): unet, vae,
    text_encoder, text_encoder_2, tokenizer, tokenizer_2, scheduler; float32, random weights."""
    return {
        "unet": sdxl_unet(seed),
        "vae": vae(seed),
        "text_encoder": text_encoder(seed),
        "text_encoder_2": text_encoder_2(seed + 1),
        "tokenizer": tokenizer(),
        "tokenizer_2": tokenizer(pad_token="!"),  # SDXL's second tokenizer pads with "!"
        "scheduler": scheduler(scheduler_kind),
    }


def sdxl_pipeline(
    unet: Any,
    scheduler: Any,
    vae: Any | None = None,
    *,
    text_encoder: Any | None = None,
    text_encoder_2: Any | None = None,
    tokenizer: Any | None = None,
    tokenizer_2: Any | None = None,
    img2img: bool = False,
    force_zeros_for_empty_prompt: bool = True,
    requires_aesthetics_score: bool = False,
) -> Any:
    """diffusers' own StableDiffusionXL(Img2Img)Pipeline around these components (the encoders may be None:
    then give it prompt embeddings), no watermark, progress bar off; the reference for `sdxl_text2img`."""
    import diffusers

    extra: dict[str, Any] = {"requires_aesthetics_score": requires_aesthetics_score} if img2img else {}
    cls: Any = diffusers.StableDiffusionXLImg2ImgPipeline if img2img else diffusers.StableDiffusionXLPipeline
    pipe = cls(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
        add_watermarker=False,
        **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdxl_prompt_embeddings(
    seed: int = 0, *, batch: int = 1, sequence: int = TOKENS, width: int = 64, pooled: int = 32
) -> dict[str, torch.Tensor]:
    """Random prompt_embeds, negative_prompt_embeds, pooled_prompt_embeds, negative_pooled_prompt_embeds
    standing in for SDXL's two text encoders (widths of `sdxl_unet()`)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "prompt_embeds": torch.randn(batch, sequence, width, generator=generator),
        "negative_prompt_embeds": torch.randn(batch, sequence, width, generator=generator),
        "pooled_prompt_embeds": torch.randn(batch, pooled, generator=generator),
        "negative_pooled_prompt_embeds": torch.randn(batch, pooled, generator=generator),
    }


# -- Flux ----------------------------------------------------------------------------------------------------

FLUX_LATENT_CHANNELS = 16
"""Flux's latent channels (its VAE's); the transformer sees them packed 2x2, as 64 features per token."""

FLUX_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,  # the pipelines pass mu, computed from the image's sequence length
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}
"""FLUX.1-dev's FlowMatchEulerDiscreteScheduler config."""


def t5_tokenizer(*, model_max_length: int = TOKENS) -> Any:
    """A T5 tokenizer (Unigram) over a vocabulary written on the fly: T5's pad, end and unknown tokens, the
    word-start marker and one piece per character, with and without it; no sentinels, nothing downloaded."""
    import string

    import transformers

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    for char in string.ascii_lowercase + string.digits + ".,!?'-":
        pieces += [("\u2581" + char, -3.0), (char, -3.0)]  # a character that starts a word, and one inside
    made: Any = transformers.T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)
    return made


def t5_encoder(seed: int = 0, *, d_model: int = 32) -> Any:
    """A one-layer T5EncoderModel over `t5_tokenizer()`'s vocabulary; d_model is Flux's joint attention."""
    return _t5_family_encoder("T5", seed, d_model)


def _t5_family_encoder(kind: str, seed: int, d_model: int) -> Any:
    """A one-layer `{kind}EncoderModel` (T5 or UMT5) over `t5_tokenizer()`'s vocabulary, seeded."""
    import transformers

    torch.manual_seed(seed)
    config = getattr(transformers, f"{kind}Config")(
        vocab_size=len(t5_tokenizer()),
        d_model=d_model,
        d_kv=8,
        d_ff=2 * d_model,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    model: Any = getattr(transformers, f"{kind}EncoderModel")(config)
    return model.eval()


def flux_transformer(seed: int = 0, *, joint_attention_dim: int = 32, pooled_projection_dim: int = 32) -> Any:
    """A FluxTransformer2DModel with one double-stream and one single-stream block, two 16-wide heads and a
    guidance embedding (FLUX.1-dev's); it reads `FLUX_LATENT_CHANNELS` packed 2x2."""
    import diffusers

    torch.manual_seed(seed)
    model: Any = diffusers.FluxTransformer2DModel(  # type: ignore[no-untyped-call]
        patch_size=1,
        in_channels=4 * FLUX_LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=joint_attention_dim,
        pooled_projection_dim=pooled_projection_dim,
        guidance_embeds=True,
        axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim
    )
    return model.eval()


def flux_vae(seed: int = 0) -> Any:
    """`vae()` with Flux's 16 latent channels, shift and scaling factors and no quant convolutions."""
    return vae(
        seed,
        latent_channels=FLUX_LATENT_CHANNELS,
        sample_size=32,
        shift_factor=0.1159,
        scaling_factor=0.3611,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def flux_scheduler() -> Any:
    """A fresh FlowMatchEulerDiscreteScheduler with FLUX.1-dev's config (dynamic shifting)."""
    import diffusers

    made: Any = diffusers.FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULE)  # type: ignore[no-untyped-call]
    return made


def flux_components(seed: int = 0) -> dict[str, Any]:
    """Every component FluxPipeline takes (and Modular Diffusers' Flux blocks): transformer, vae,
    text_encoder (CLIP, pooled), text_encoder_2 (T5), tokenizer, tokenizer_2, scheduler; float32."""
    return {
        "transformer": flux_transformer(seed),
        "vae": flux_vae(seed),
        "text_encoder": text_encoder(seed),
        "text_encoder_2": t5_encoder(seed + 1),
        "tokenizer": tokenizer(),
        "tokenizer_2": t5_tokenizer(),
        "scheduler": flux_scheduler(),
    }


# -- Wan (text to video, image to video) ---------------------------------------------------------------------

WAN_TEXT_DIM = 32
"""The tiny UMT5 encoder's width, which is the tiny Wan transformer's text_dim."""


def umt5_encoder(seed: int = 0, *, d_model: int = WAN_TEXT_DIM) -> Any:
    """A one-layer UMT5EncoderModel over `t5_tokenizer()`'s vocabulary (Wan's text encoder)."""
    return _t5_family_encoder("UMT5", seed, d_model)


def wan_transformer(seed: int = 0, *, in_channels: int = 16, image_dim: int | None = None) -> Any:
    """A one-layer WanTransformer3DModel (2 heads of 8, patch 1x2x2) reading `umt5_encoder()`'s width;
    `image_dim` adds the image-embedding projection of Wan 2.1 image to video."""
    import diffusers

    torch.manual_seed(seed)
    model: Any = diffusers.WanTransformer3DModel(  # type: ignore[no-untyped-call]
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=in_channels,
        out_channels=16,
        text_dim=WAN_TEXT_DIM,
        freq_dim=16,
        ffn_dim=32,
        num_layers=1,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        image_dim=image_dim,
        added_kv_proj_dim=None if image_dim is None else 16,
        rope_max_seq_len=32,
    )
    return model.eval()


def wan_vae(seed: int = 0) -> Any:
    """An AutoencoderKLWan with 16 latent channels (Wan's), scale factors 8 (space) and 4 (time), base
    width 4."""
    import diffusers

    torch.manual_seed(seed)
    model: Any = diffusers.AutoencoderKLWan(  # type: ignore[no-untyped-call]
        base_dim=4,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    return model.eval()


def wan_components(seed: int = 0) -> dict[str, Any]:
    """What Modular Diffusers' WanBlocks take: transformer, vae, text_encoder, tokenizer and a
    UniPCMultistepScheduler with Wan's flow-matching schedule (shift 3); float32, random weights."""
    import diffusers

    scheduler: Any = diffusers.UniPCMultistepScheduler(  # type: ignore[no-untyped-call]
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    return {
        "transformer": wan_transformer(seed),
        "vae": wan_vae(seed),
        "text_encoder": umt5_encoder(seed),
        "tokenizer": t5_tokenizer(),
        "scheduler": scheduler,
    }

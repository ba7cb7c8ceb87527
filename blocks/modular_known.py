"""What dfgraph finds in diffusers' shipped modular blocks, judged, so `from_modular` can carry it.

Each entry says where a finding is located, which code, and the judgement (docs/modular_findings.md
explains each one): **real** (the declarations contradict the code), **loose** (a declaration is
missing, too narrow or too wide while the code copes) or **FP** (a false positive of dfgraph).
`from_modular` gives these as suppressions to the converted blocks of diffusers' own classes (never to a
user's class of the same name), with the judgement as the reason, so the shipped workflows compile while
`dfgraph check --show-ignored` still lists every one. `from_modular(..., known_findings=False)` shows
them as findings. A real bug that cannot stop compiling stays reported (HunyuanVideo 1.5's lost image
embeddings, a DF201 warning).

Keys are "Class.port" (a port of a diffusers block class) or "Class" (the whole block); a finding on an
edge is located at both of its ends, so the reader's port suppresses it wherever the value comes from
(through a Switch too).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["KNOWN_FINDINGS", "UNTYPED", "known_for"]

UNTYPED = "loose: diffusers declares this InputParam/OutputParam without a type_hint"

_T_INT = "loose: the loop sub-block annotates `t: int` and receives a 0-d Tensor (its callees accept it)"
_SWITCHES = (
    "FP of the one-graph form: read from a Switch that sets it exactly when this case's own trigger is set "
    "(correlated switches, which dfgraph does not relate)"
)
_IP_LISTS = "real: StableDiffusionXLIPAdapterStep declares Tensor outputs but builds lists"
_CROPS = "real: crops_coords is the 4-tuple (x1, y1, x2, y2); the declarations say less"
_ROPE_IDS = "real: prepare_rope_inputs declares list[int] but builds tensors"
_IMG_SHAPES = (
    "real: declared list[tuple[int, int]]; prepare_rope_inputs builds list[list[tuple[int, int, int]]]"
)
_IMAGES_TEMPLATE = (
    "real: the decode step declares the `images` template (list[PIL.Image]) but writes the VAE's tensor"
)
_RESIZED = "real: the resize step writes a list; this reader declares a single image"


def _each(classes: tuple[str, ...], port: str, code: str, why: str) -> dict[str, dict[str, str]]:
    return {f"{cls}.{port}": {code: why} for cls in classes}


_SDXL_LOOPS = (
    "StableDiffusionXLLoopBeforeDenoiser",
    "StableDiffusionXLLoopDenoiser",
    "StableDiffusionXLLoopAfterDenoiser",
    "StableDiffusionXLInpaintLoopBeforeDenoiser",
    "StableDiffusionXLInpaintLoopAfterDenoiser",
    "StableDiffusionXLControlNetLoopDenoiser",
)
_CONTROLNET = "StableDiffusionXLControlNetLoopDenoiser"

_TABLE: dict[str, dict[str, str]] = {
    # -- Stable Diffusion XL ------------------------------------------------------------------------
    **_each(_SDXL_LOOPS, "t", "DF001", _T_INT),
    "StableDiffusionXLIPAdapterStep.ip_adapter_embeds": {"DF001": _IP_LISTS},
    "StableDiffusionXLIPAdapterStep.negative_ip_adapter_embeds": {"DF001": _IP_LISTS},
    "StableDiffusionXLInputStep.ip_adapter_embeds": {"DF001": _IP_LISTS + " (seen at the reader)"},
    "StableDiffusionXLInputStep.negative_ip_adapter_embeds": {"DF001": _IP_LISTS + " (seen at the reader)"},
    "StableDiffusionXLInpaintVaeEncoderStep.crops_coords": {"DF001": _CROPS},
    "StableDiffusionXLControlNetInputStep.crops_coords": {"DF001": _CROPS},
    "StableDiffusionXLControlNetUnionInputStep.crops_coords": {"DF001": _CROPS},
    f"{_CONTROLNET}.controlnet_cond": {
        "DF001": "loose: declared Tensor; the union input step gives list[Tensor], which the denoiser handles"
    },
    f"{_CONTROLNET}.conditioning_scale": {
        "DF001": "loose: declared float here and list[float] by the input steps; the denoiser handles both"
    },
    f"{_CONTROLNET}.controlnet_keep": {"DF001": _SWITCHES},
    "StableDiffusionXLInpaintPrepareLatentsStep.image_latents": {"DF001": _SWITCHES},
    "StableDiffusionXLInpaintPrepareLatentsStep.strength": {
        "DF206": "real: a dead default (0.9999) that contradicts set_timesteps' 0.3, which the pipeline keeps"
    },
    # -- Flux ---------------------------------------------------------------------------------------
    **_each(("FluxLoopDenoiser", "FluxKontextLoopDenoiser"), "txt_ids", "DF001", _ROPE_IDS),
    **_each(("FluxLoopDenoiser", "FluxKontextLoopDenoiser"), "img_ids", "DF001", _ROPE_IDS),
    # -- Wan ----------------------------------------------------------------------------------------
    "WanImage2VideoLoopBeforeDenoiser.image_condition_latents": {
        "DF001": "loose: the producer declares Tensor | None but always sets a tensor"
    },
    "WanLoopDenoiser.image_embeds": {"DF001": _SWITCHES},
    "WanLoopDenoiser.negative_prompt_embeds": {
        "DF001": "real: the input step passes an absent value on as None; the denoiser requires it"
    },
    # -- QwenImage ----------------------------------------------------------------------------------
    **_each(("QwenImageLoopDenoiser", "QwenImageEditLoopDenoiser"), "img_shapes", "DF001", _IMG_SHAPES),
    **_each(
        (
            "QwenImageProcessImagesOutputStep",
            "QwenImageInpaintProcessImagesOutputStep",
            "AnimaProcessImagesOutputStep",
        ),
        "images",
        "DF001",
        _IMAGES_TEMPLATE,
    ),
    **_each(
        (
            "QwenImageEditTextEncoderStep",
            "QwenImageEditInpaintProcessImagesInputStep",
            "QwenImageLayeredGetImagePromptStep",
        ),
        "resized_image",
        "DF001",
        _RESIZED,
    ),
    "QwenImageEditPlusTextEncoderStep.resized_cond_image": {"DF001": _RESIZED},
    "QwenImageLoopBeforeDenoiserControlNet.t": {"DF001": _T_INT},
    "QwenImageEditPlusResizeStep.resized_image": {
        "DF201": "loose: the VAE encoder's resize recomputes it; the first value is never read"
    },
    # -- others -------------------------------------------------------------------------------------
    "Ideogram4TextEncoderStep.prompt": {
        "DF001": "loose: prompt_upsample writes a list of prompts; the encoder declares str and takes both"
    },
    "ZImageVaeDecoderStep.images": {
        "DF204": "real: list[PIL.Image.Image, list[Tensor], list[ndarray]] is no type (a union was meant)"
    },
    "HeliosPyramidChunkNoiseGenStep.pyramid_num_inference_steps_list": {
        "DF206": "real: dead defaults: [10, 10, 10] and [2, 2, 2] are declared for the same input"
    },
    **_each(
        ("HunyuanVideo15PrepareLatentsStep",),
        "cond_latents_concat",
        "DF201",
        "loose: the image-to-video step overwrites the text-to-video zero placeholder, as intended",
    ),
    **_each(
        ("HunyuanVideo15PrepareLatentsStep",),
        "mask_concat",
        "DF201",
        "loose: the image-to-video step overwrites the text-to-video zero placeholder, as intended",
    ),
}

KNOWN_FINDINGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {key: MappingProxyType(codes) for key, codes in _TABLE.items()}
)


def known_for(cls: type) -> dict[str, dict[str, str]]:
    """The known findings of a diffusers block class: port ("" for the block) -> code -> judgement.

    Empty for a class that is not diffusers' own, whatever its name."""
    if not cls.__module__.startswith("diffusers."):
        return {}
    found: dict[str, dict[str, str]] = {}
    head = cls.__name__
    for key, codes in KNOWN_FINDINGS.items():
        name, dot, port = key.partition(".")
        if name == head:
            found.setdefault(port if dot else "", {}).update(codes)
    return found

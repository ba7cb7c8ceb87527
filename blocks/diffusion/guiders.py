"""diffusers' guiders (`diffusers.guiders.*`) as one dfgraph block: `guided_denoiser(unet, guider)`.

The block runs the guider's own code, in the order Modular Diffusers' `StableDiffusionXLLoopDenoiser`
runs it, once per denoising step: `set_state(step=i, num_inference_steps, timestep=t)`, then
`prepare_inputs` (the guider decides how many model branches this step has and which embeddings each
reads), then per branch `prepare_models(unet)` (layer-skip or smoothed-energy hooks for PAG, SLG, SEG,
AutoGuidance), the UNet call, `cleanup_models(unet)`, and finally `guider(branches)[0]`, the guided
noise prediction. No guidance maths is re-derived here, so a guider whose number of branches changes by
step (start/stop ranges, PAG's perturbed range) and a stateful one (APG's momentum, reset by the guider
itself at step 0) behave as in Modular Diffusers.

Not every guider runs with a UNet. `LTX2Guidance` perturbs its extra passes through forward arguments of
the LTX-2 video transformer (`spatio_temporal_guidance_blocks`, `isolate_modalities`) that the calling
denoiser sets per pass, and reads 4-tuples of inputs (cond, uncond, stg, modality); a
`UNet2DConditionModel` has no such arguments, so `guided_denoiser` refuses it when the graph is built.
`MagnitudeAwareGuidance` takes `torch.norm` over dims 1-3 of the prediction, which torch 2.13 refuses
for a 4-D UNet prediction (it wants a matrix norm's 2 dims; Modular Diffusers fails the same way at
its first guided step): it is refused where this torch refuses that norm.

(No `from __future__ import annotations`: the port annotations are built from the UNet's config when the
factory runs, as in `steps`.)
"""

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

import dfgraph as df
from dfgraph import RNG

GUIDER = "guider"
"""The resource of a guider's internal state (step, branch count, momentum): its users keep their order."""

SD_FIELDS: dict[str, tuple[str, str]] = {"prompt_embeds": ("prompt_embeds", "negative_prompt_embeds")}
"""Stable Diffusion 1.x: the guider's field name -> (conditional port, unconditional port)."""

SDXL_FIELDS: dict[str, tuple[str, str]] = {
    "prompt_embeds": ("prompt_embeds", "negative_prompt_embeds"),
    "text_embeds": ("pooled_prompt_embeds", "negative_pooled_prompt_embeds"),
    "time_ids": ("add_time_ids", "negative_add_time_ids"),
}
"""Stable Diffusion XL, as Modular Diffusers' SDXL denoiser maps them (text_time added conditioning)."""

UNSUPPORTED: dict[str, str] = {
    "LTX2Guidance": (
        "its extra passes are set through forward arguments of the LTX-2 transformer "
        "(spatio_temporal_guidance_blocks, isolate_modalities), which a UNet2DConditionModel does not take, "
        "and its inputs are 4-tuples (cond, uncond, stg, modality)"
    ),
}
"""Guiders of diffusers 0.42 that cannot drive a UNet, by class name, with the reason."""

_FIXED_PORTS = ("sample", "t", "i", "num_inference_steps")


def _base_guidance() -> type:
    """diffusers' BaseGuidance (imported late: diffusers is an optional extra)."""
    from diffusers.guiders.guider_utils import BaseGuidance

    base: type = BaseGuidance
    return base


def check_guider(guider: object) -> None:
    """Raise ValueError unless `guider` is a diffusers guider that can drive a UNet."""
    base = _base_guidance()
    if not isinstance(guider, base):
        raise ValueError(
            f"guider must be a diffusers guider (an instance of diffusers.guiders.BaseGuidance, e.g. "
            f"ClassifierFreeGuidance(guidance_scale=7.5)), got {type(guider).__name__}"
        )
    for cls in type(guider).__mro__:
        if cls.__name__ in UNSUPPORTED and cls.__module__.startswith("diffusers."):
            raise ValueError(f"{cls.__name__} cannot run with a UNet: {UNSUPPORTED[cls.__name__]}")
        if cls.__name__ == "MagnitudeAwareGuidance" and not _norm_over_three_dims():
            raise ValueError(
                f"MagnitudeAwareGuidance cannot run with a UNet on torch {torch.__version__}: its "
                "mambo_guidance takes torch.norm over dims 1-3 of the 4-D UNet prediction, which this torch "
                "refuses (matrix_norm wants 2 dims); it runs on 3-D transformer latents"
            )


def _norm_over_three_dims() -> bool:
    """Whether torch.norm takes three dims here (MagnitudeAwareGuidance on 4-D latents needs it)."""
    try:
        torch.norm(torch.ones(1, 1, 1, 1), dim=[1, 2, 3], keepdim=True)
    except RuntimeError:
        return False
    return True


def uses_hooks(guider: Any) -> bool:
    """Whether the guider changes the model per branch (it overrides prepare_models or cleanup_models)."""
    base: Any = _base_guidance()
    kind = type(guider)
    return kind.prepare_models is not base.prepare_models or kind.cleanup_models is not base.cleanup_models


def needs_unconditional(guider: Any) -> bool:
    """Whether the prompt encoder must make negative embeddings: Modular Diffusers' own rule
    (`guider.num_conditions > 1`, read before the loop, from the guider's current state)."""
    check_guider(guider)
    conditions: int = guider.num_conditions
    return conditions > 1


def _field_types(unet: Any, field: str, time_ids: int | None) -> Any:
    """The port type of one guider field, from the UNet's config where it fixes the sizes (SDXL's pooled
    width is what `time_ids` size numbers leave of the added embedding; named dims when not given)."""
    config = unet.config
    if field == "prompt_embeds":
        return Float[Tensor, f"batch sequence {config.cross_attention_dim}"]
    if field == "text_embeds":
        if time_ids is None:
            return Float[Tensor, "batch pooled_width"]
        pooled = config.projection_class_embeddings_input_dim - time_ids * config.addition_time_embed_dim
        return Float[Tensor, f"batch {pooled}"]
    if field == "time_ids":
        return Float[Tensor, f"batch {time_ids if time_ids is not None else 'time_ids'}"]
    return Tensor


def _required_fields(unet: Any) -> tuple[str, ...]:
    """The fields this UNet cannot run without: embeddings, and SDXL's added conditioning."""
    if unet.config.addition_embed_type == "text_time":
        return ("prompt_embeds", "text_embeds", "time_ids")
    return ("prompt_embeds",)


def _check_fields(unet: Any, fields: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The fields as a dict, refused (ValueError) when malformed or missing what the UNet needs."""
    checked: dict[str, tuple[str, str]] = {}
    seen: set[str] = set(_FIXED_PORTS)
    for field, ports in fields.items():
        if not (isinstance(ports, tuple) and len(ports) == 2 and all(isinstance(p, str) for p in ports)):
            raise ValueError(f"fields[{field!r}] must be (cond port, uncond port), got {ports!r}")
        for port in ports:
            if port in seen or not port.isidentifier():
                raise ValueError(f"fields[{field!r}]: port name {port!r} is used twice or is not a name")
            seen.add(port)
        checked[field] = ports
    missing = [f for f in _required_fields(unet) if f not in checked]
    if missing:
        kind = "an SDXL (text_time) UNet" if len(_required_fields(unet)) > 1 else "the UNet"
        raise ValueError(
            f"{kind} needs the guider fields {', '.join(missing)}; "
            "pass fields=guiders.SDXL_FIELDS (or a mapping with those keys)"
        )
    return checked


def guided_denoiser(
    unet: Any,
    guider: Any,
    fields: Mapping[str, tuple[str, str]] | None = None,
    *,
    batch_branches: bool = False,
    added_time_ids: int | None = None,
) -> Any:
    """Block: one guided noise prediction, the guider's branches run through `unet` as Modular Diffusers does.

    `fields` maps the guider's field name to (cond port, uncond port); None is `SD_FIELDS`. The field
    "prompt_embeds" goes to the UNet's encoder_hidden_states, every other one into added_cond_kwargs.
    Inputs: `sample` (the scaled latents), `t`, `i` (the loop index), `num_inference_steps`, and the
    ports of `fields` (the unconditional ones may be None while the guider runs no branch reading them).
    Output: `noise_pred`. The default makes one UNet call per branch, as Modular Diffusers;
    `batch_branches=True` concatenates the branches into one call (equal within float rounding), and is
    refused for guiders with model hooks (PAG, SLG, SEG, AutoGuidance), whose branches run different models.
    `added_time_ids=n` (an SDXL UNet: 6, or 5 with an aesthetic score) types text_embeds and time_ids
    with their exact widths, as `steps.denoiser` does; without it they carry named dims.
    """
    check_guider(guider)
    config = unet.config
    if config.time_cond_proj_dim is not None:
        raise ValueError("UNets with time_cond_proj_dim (LCM guidance embedding) are not supported yet")
    embed = getattr(config, "addition_embed_type", None)
    if embed not in (None, "text_time") or getattr(config, "class_embed_type", None) is not None:
        needs = f"addition_embed_type={embed!r}" if embed is not None else "class_labels"
        raise ValueError(f"UNets that need {needs} are not supported yet")
    if added_time_ids is not None and embed != "text_time":
        raise ValueError(f"added_time_ids= is for an SDXL UNet (text_time); this one has {embed!r}")
    mapping = _check_fields(unet, SD_FIELDS if fields is None else fields)
    hooks = uses_hooks(guider)
    if batch_branches and hooks:
        raise ValueError(
            f"batch_branches=True needs a guider without model hooks; {type(guider).__name__} changes the "
            "UNet per branch (prepare_models), so its branches cannot share one call"
        )
    required = _required_fields(unet)
    channels_in, channels_out = config.in_channels, config.out_channels
    sample_type = Float[Tensor, f"batch {channels_in} latent_height latent_width"]
    noise_type = Float[Tensor, f"batch {channels_out} latent_height latent_width"]

    def run(**inputs: Any) -> Tensor:
        """Modular Diffusers' StableDiffusionXLLoopDenoiser.__call__ for one step."""
        sample, t, step = inputs["sample"], inputs["t"], inputs["i"]
        guider.enable()  # Modular's loop wrapper enables the guider for a UNet without guidance embedding
        guider.set_state(step=step, num_inference_steps=inputs["num_inference_steps"], timestep=t)
        guider_inputs = {field: (inputs[cond], inputs[uncond]) for field, (cond, uncond) in mapping.items()}
        branches = guider.prepare_inputs(guider_inputs)
        for branch in branches:
            for field in required:
                if getattr(branch, field) is None:
                    cond, uncond = mapping[field]
                    port = cond if inputs[cond] is None else uncond
                    raise ValueError(
                        f"{type(guider).__name__} runs the branch {getattr(branch, guider._identifier_key)} "
                        f"at step {step}, which reads {port}, but {port} is None"
                    )
        if batch_branches and len(branches) > 1 and _stackable(branches, mapping):
            return _batched(branches, sample, t)
        for branch in branches:
            guider.prepare_models(unet)
            try:
                branch.noise_pred = _unet_call(sample, t, {f: getattr(branch, f) for f in mapping})
            finally:  # a failed call must not leave the guider's hooks on the UNet
                guider.cleanup_models(unet)
        guided: Tensor = guider(branches)[0]
        return guided

    def _batched(branches: list[Any], sample: Tensor, t: Tensor) -> Tensor:
        """All branches in one UNet call: the guider's (no-op) model hooks still run once per branch."""
        for _ in branches:
            guider.prepare_models(unet)  # BaseGuidance's: counts the branch, as the unbatched path does
            guider.cleanup_models(unet)
        stacked = {f: torch.cat([getattr(b, f) for b in branches]) for f in mapping}
        noise = _unet_call(torch.cat([sample] * len(branches)), t, stacked)
        for branch, part in zip(branches, noise.chunk(len(branches)), strict=True):
            branch.noise_pred = part
        guided: Tensor = guider(branches)[0]
        return guided

    def _unet_call(sample: Tensor, t: Tensor, kwargs: dict[str, Any]) -> Tensor:
        """unet(...) with the keywords Modular Diffusers' SDXL denoiser passes."""
        hidden = kwargs.pop("prompt_embeds")
        with torch.no_grad():
            noise: Tensor = unet(
                sample,
                t,
                encoder_hidden_states=hidden,
                timestep_cond=None,
                cross_attention_kwargs=None,
                added_cond_kwargs=kwargs,
                return_dict=False,
            )[0]
        return noise

    annotations: dict[str, Any] = {"sample": sample_type, "t": Tensor, "i": int, "num_inference_steps": int}
    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in _FIXED_PORTS]
    for field, (cond, uncond) in mapping.items():
        port_type = _field_types(unet, field, added_time_ids)
        annotations[cond], annotations[uncond] = port_type, port_type | None
        params.append(inspect.Parameter(cond, inspect.Parameter.KEYWORD_ONLY))
        params.append(inspect.Parameter(uncond, inspect.Parameter.KEYWORD_ONLY, default=None))
    params = [p.replace(annotation=annotations[p.name]) for p in params]
    run.__signature__ = inspect.Signature(params, return_annotation=noise_type)  # type: ignore[attr-defined]
    run.__annotations__ = {**annotations, "return": noise_type}
    # hooks may draw from the global RNG (layer-skip dropout below 1)
    mutates = (GUIDER, RNG) if hooks else (GUIDER,)
    return df.block(outputs="noise_pred", name="guided_denoiser", mutates=mutates)(run)


def _stackable(branches: list[Any], mapping: Mapping[str, tuple[str, str]]) -> bool:
    """Whether every field is a tensor of one shape, dtype and device across the branches."""
    for field in mapping:
        values = [getattr(b, field) for b in branches]
        if not all(isinstance(v, Tensor) for v in values):
            return False
        first = values[0]
        if any(v.shape != first.shape or v.dtype != first.dtype or v.device != first.device for v in values):
            return False
    return True

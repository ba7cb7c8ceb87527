"""diffusers' guiders as dfgraph blocks (`guiders.guided_denoiser`) against Modular Diffusers' SDXL workflow.

Every guider of diffusers 0.42 that runs with a UNet is given, as the same object, to Modular Diffusers'
SDXL text2image core (`StableDiffusionXLCoreDenoiseStep`: input, set timesteps, prepare latents, added
conditioning, denoise loop; embeddings given, as its text encoder step would make them) and to
`sdxl_text2img(guider=G)`; from prompts, to `StableDiffusionXLAutoBlocks` (the whole SDXL workflow, text
encoders included) and `sdxl_text2img(guider=G, text_encoder=...)`. Both sides make the same UNet calls
in the same order on the same inputs, so the float32 latents are bitwise equal, and the number of UNet
calls per step is the same (counted with a forward pre-hook that reads the guider's step). The block
alone is also tested in a loop of `steps` blocks (scale -> guided_denoiser -> step per timestep), which
is how `batch_branches=True` and SD 1.x are run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import torch
from diffusers.guiders import (
    AdaptiveProjectedGuidance,
    AdaptiveProjectedMixGuidance,
    AutoGuidance,
    ClassifierFreeGuidance,
    ClassifierFreeZeroStarGuidance,
    LTX2Guidance,
    MagnitudeAwareGuidance,
    PerturbedAttentionGuidance,
    SkipLayerGuidance,
    SmoothedEnergyGuidance,
    TangentialClassifierFreeGuidance,
)
from diffusers.hooks import LayerSkipConfig
from diffusers.hooks.smoothed_energy_guidance_utils import SmoothedEnergyGuidanceConfig
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float
from torch import Tensor

import dfgraph as df
from dfgraph_blocks.diffusion import guiders, sdxl, steps, text2img, tiny

STEPS = 5
SIZE = 64
SEED = 0
MID = "mid_block.attentions.0.transformer_blocks"
"""The tiny UNet's one mid-block transformer stack (index 0 is its only block)."""
DOWN = "down_blocks.0.attentions.0.transformer_blocks"


def euler() -> Any:
    """Euler discrete, the scheduler Modular Diffusers' SDXL blocks expect."""
    return tiny.scheduler("euler")


def sdxl_embeddings() -> dict[str, torch.Tensor]:
    """tiny's random SDXL prompt embeddings (what the two text encoders would give)."""
    embeddings: dict[str, torch.Tensor] = tiny.sdxl_prompt_embeddings(SEED)
    return embeddings


def time_ids(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """original_size + crops_coords_top_left + target_size, as the pipelines build them at 64x64."""
    return torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]], dtype=dtype)


def modular(unet: Any, scheduler: Any, guider: Any) -> Any:
    """Modular Diffusers' SDXL text2image core (from embeddings) with `guider`."""
    from diffusers.modular_pipelines.stable_diffusion_xl.modular_blocks_stable_diffusion_xl import (
        StableDiffusionXLCoreDenoiseStep,
    )

    pipe = StableDiffusionXLCoreDenoiseStep().init_pipeline()
    pipe.update_components(unet=unet, scheduler=scheduler, guider=guider)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_modular(pipe: Any, steps_: int = STEPS) -> torch.Tensor:
    """The Modular pipeline's float32 latents from the fixed embeddings and seed."""
    latents: torch.Tensor = pipe(
        **sdxl_embeddings(),
        num_inference_steps=steps_,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator().manual_seed(SEED),
        output="latents",
    )
    return latents


def loop_graph(unet: Any, scheduler: Any, guider: Any, fields: Any = None, **options: Any) -> df.Graph:
    """set_timesteps, prepare_latents and a Loop of scale -> guided_denoiser -> scheduler step."""
    body = df.Graph(
        nodes={
            "scale": steps.scale_model_input(scheduler, unet),
            "guided": guiders.guided_denoiser(unet, guider, fields, **options),
            "step": steps.scheduler_step(scheduler, unet),
        },
        edges=[("scale.latent_model_input", "guided.sample"), ("guided.noise_pred", "step.noise_pred")],
        outputs=["step.latents"],
        name="step",
    )
    nodes: dict[str, Any] = {
        "set_timesteps": steps.set_timesteps(scheduler, unet),
        "prepare_latents": steps.prepare_latents(scheduler, unet, 8),
        "denoise": df.Loop(body, over="timesteps", item="t", name="denoise"),
    }
    edges = [("set_timesteps.timesteps", "denoise.timesteps"), ("prepare_latents.latents", "denoise.latents")]
    return df.Graph(nodes, edges, {"latents": "denoise.latents"}, name="guided")


def run_dfgraph(program: Any, steps_: int = STEPS) -> torch.Tensor:
    """The dfgraph loop's float32 latents from the same embeddings and seed."""
    latents: torch.Tensor = program(
        **sdxl_embeddings(),
        add_time_ids=time_ids(),
        negative_add_time_ids=time_ids(),
        num_inference_steps=steps_,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator().manual_seed(SEED),
        output="latents",
    )
    return latents


def sdxl_program(unet: Any, guider: Any) -> Any:
    """h-sdxl's sdxl_text2img(guider=G) from embeddings, compiled."""
    return df.compile(sdxl.sdxl_text2img(unet=unet, scheduler=euler(), guider=guider))


def run_sdxl(program: Any, steps_: int = STEPS) -> torch.Tensor:
    """sdxl_text2img's float32 latents from the same embeddings and seed (it makes the time ids)."""
    latents: torch.Tensor = program(
        **sdxl_embeddings(),
        num_inference_steps=steps_,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator().manual_seed(SEED),
        output="latents",
    )
    return latents


def calls_per_step(unet: Any, guider: Any, run: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """run()'s latents and the number of UNet calls at each step (the guider's step at each call)."""
    seen: Counter[int] = Counter()
    handle = unet.register_forward_pre_hook(lambda module, args: seen.update([guider._step]))
    try:
        torch.manual_seed(SEED)  # AutoGuidance's dropout draws from the global generator
        latents = run()
    finally:
        handle.remove()
    return latents, [seen[i] for i in range(max(seen) + 1)]


def layer_skip(fqn: str = MID, **kwargs: Any) -> LayerSkipConfig:
    """A layer-skip config on one transformer block of the tiny UNet."""
    return LayerSkipConfig(indices=[0], fqn=fqn, **kwargs)


GUIDERS: dict[str, Callable[[], Any]] = {
    "cfg": lambda: ClassifierFreeGuidance(guidance_scale=5.0),
    "cfg-rescale-original": lambda: ClassifierFreeGuidance(
        guidance_scale=5.0, guidance_rescale=0.7, use_original_formulation=True
    ),
    "cfg-start-stop": lambda: ClassifierFreeGuidance(guidance_scale=5.0, start=0.2, stop=0.8),
    "cfg-scale-1": lambda: ClassifierFreeGuidance(guidance_scale=1.0),
    "cfg-zero-star": lambda: ClassifierFreeZeroStarGuidance(guidance_scale=5.0, zero_init_steps=1),
    "apg": lambda: AdaptiveProjectedGuidance(
        guidance_scale=5.0, adaptive_projected_guidance_momentum=-0.5, adaptive_projected_guidance_rescale=3.0
    ),
    "apg-mix": lambda: AdaptiveProjectedMixGuidance(adaptive_projected_guidance_start_step=2),
    "pag": lambda: PerturbedAttentionGuidance(
        guidance_scale=5.0,
        perturbed_guidance_scale=2.0,
        perturbed_guidance_start=0.0,
        perturbed_guidance_stop=0.8,
        perturbed_guidance_config=layer_skip(skip_attention=False, skip_attention_scores=True, skip_ff=False),
    ),
    "slg": lambda: SkipLayerGuidance(
        guidance_scale=5.0,
        skip_layer_guidance_scale=2.0,
        skip_layer_guidance_start=0.0,
        skip_layer_guidance_stop=0.8,
        skip_layer_config=layer_skip(),
    ),
    "seg": lambda: SmoothedEnergyGuidance(
        guidance_scale=5.0,
        seg_guidance_scale=2.0,
        seg_guidance_start=0.2,
        seg_guidance_config=SmoothedEnergyGuidanceConfig(indices=[0], fqn=DOWN),
    ),
    "tcfg": lambda: TangentialClassifierFreeGuidance(guidance_scale=5.0),
    "auto-guidance": lambda: AutoGuidance(
        guidance_scale=5.0, auto_guidance_config=layer_skip(DOWN), stop=0.6
    ),
    "auto-guidance-dropout": lambda: AutoGuidance(
        guidance_scale=5.0, auto_guidance_config=layer_skip(DOWN, dropout=0.5)
    ),
}
"""Every guider of diffusers 0.42 that runs with a UNet (FDG below: it needs kornia), with settings that
make the number of branches change by step where the guider allows it."""


@pytest.fixture(scope="module")
def unet() -> Any:
    """One tiny SDXL UNet (branch sdxl-tiny's) shared by both sides of every comparison."""
    return tiny.sdxl_unet()


def compare_with_modular(
    unet: Any, guider: Any, **options: Any
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(dfgraph latents, Modular latents, calls per step), asserting the call counts agree. dfgraph runs
    sdxl_text2img(guider=G), or with `options` (batch_branches) the loop of steps blocks around
    guided_denoiser(..., **options)."""
    if options:
        program = df.compile(loop_graph(unet, euler(), guider, guiders.SDXL_FIELDS, **options))
        ours, our_calls = calls_per_step(unet, guider, lambda: run_dfgraph(program))
    else:
        text2img = sdxl_program(unet, guider)
        ours, our_calls = calls_per_step(unet, guider, lambda: run_sdxl(text2img))
    pipe = modular(unet, euler(), guider)
    theirs, their_calls = calls_per_step(unet, guider, lambda: run_modular(pipe))
    if not options.get("batch_branches"):
        assert our_calls == their_calls
    return ours, theirs, their_calls


@pytest.mark.parametrize("name", list(GUIDERS))
def test_every_guider_gives_modular_diffusers_latents(unet: Any, name: str) -> None:
    """Same guider object, same components, same seed: bitwise equal float32 latents and UNet calls."""
    guider = GUIDERS[name]()
    ours, theirs, calls = compare_with_modular(unet, guider)
    assert torch.equal(ours, theirs), f"{name}: differs by {(ours - theirs).abs().max().item()}"
    assert len(calls) == STEPS and all(n >= 1 for n in calls)
    assert not torch.equal(ours, torch.zeros_like(ours))


@pytest.mark.parametrize(
    ("name", "calls"),
    [
        ("cfg", [2, 2, 2, 2, 2]),
        ("cfg-start-stop", [1, 2, 2, 2, 1]),  # CFG runs for steps int(0.2 * 5) <= i < int(0.8 * 5)
        ("cfg-scale-1", [1, 1, 1, 1, 1]),
        ("pag", [2, 3, 3, 3, 2]),  # the perturbed branch runs for 0 < i < int(0.8 * 5)
        ("slg", [2, 3, 3, 3, 2]),
        ("seg", [2, 2, 3, 3, 3]),  # SEG's branch runs for int(0.2 * 5) < i < int(1.0 * 5)
        ("auto-guidance", [2, 2, 2, 1, 1]),
    ],
)
def test_the_number_of_unet_calls_changes_by_step_as_the_guider_says(
    unet: Any, name: str, calls: list[int]
) -> None:
    """Branch counts per step, measured on both sides (they agree, see compare_with_modular)."""
    _, _, measured = compare_with_modular(unet, GUIDERS[name]())
    assert measured == calls


@pytest.mark.parametrize("name", ["cfg", "pag"])
def test_from_prompts_equals_modular_diffusers_auto_blocks(name: str) -> None:
    """From prompts: sdxl_text2img(guider=G) with tiny text encoders vs StableDiffusionXLAutoBlocks'
    text2image workflow with the same components and G: bitwise equal latents, same calls per step."""
    from diffusers.modular_pipelines.stable_diffusion_xl.modular_blocks_stable_diffusion_xl import (
        StableDiffusionXLAutoBlocks,
    )

    components = tiny.sdxl_components()
    unet, guider = components["unet"], GUIDERS[name]()
    encoders = {k: components[k] for k in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")}
    inputs = {"prompt": "a red cat", "negative_prompt": "blurry", "num_inference_steps": STEPS}
    inputs |= {"height": SIZE, "width": SIZE}
    program = df.compile(sdxl.sdxl_text2img(unet=unet, scheduler=euler(), guider=guider, **encoders))
    ours, our_calls = calls_per_step(
        unet,
        guider,
        lambda: program(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents"),
    )
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(**components, guider=guider)
    pipe.set_progress_bar_config(disable=True)
    theirs, their_calls = calls_per_step(
        unet,
        guider,
        lambda: pipe(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents"),
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == ([2] * STEPS if name == "cfg" else [2, 3, 3, 3, 2])


@pytest.mark.parametrize("name", ["cfg-start-stop", "pag", "apg"])
def test_the_guided_denoiser_alone_gives_modular_diffusers_latents(unet: Any, name: str) -> None:
    """The block in a hand-built loop (no sdxl_text2img) also equals Modular, bit for bit."""
    guider = GUIDERS[name]()
    program = df.compile(loop_graph(unet, euler(), guider, guiders.SDXL_FIELDS))
    ours, our_calls = calls_per_step(unet, guider, lambda: run_dfgraph(program))
    pipe = modular(unet, euler(), guider)
    theirs, their_calls = calls_per_step(unet, guider, lambda: run_modular(pipe))
    assert torch.equal(ours, theirs), name
    assert our_calls == their_calls


@settings(max_examples=30, deadline=None)
@given(
    start=st.sampled_from([0.0, 0.2, 0.5]),
    stop=st.sampled_from([0.5, 0.8, 1.0]),
    steps_=st.integers(1, 12),
    data=st.data(),
)
def test_one_step_of_cfg_is_its_range_and_formula(
    unet: Any, start: float, stop: float, steps_: int, data: st.DataObject
) -> None:
    """For any CFG range and step, the block makes 2 UNet calls inside int(start*n) <= i < int(stop*n)
    and returns uncond + scale * (cond - uncond), else 1 call returning cond; batch_branches=True returns
    the same within float32 rounding with 1 call."""
    i = data.draw(st.integers(0, steps_ - 1))
    guider = ClassifierFreeGuidance(guidance_scale=4.0, start=start, stop=stop)
    embeds = sdxl_embeddings()
    sample = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(i))
    inputs = {**embeds, "add_time_ids": time_ids(), "negative_add_time_ids": time_ids()}
    inputs |= {"sample": sample, "t": torch.tensor(999 - 50 * i), "i": i, "num_inference_steps": steps_}

    def unet_alone(prefix: str) -> torch.Tensor:
        added = {"text_embeds": embeds[f"{prefix}pooled_prompt_embeds"], "time_ids": time_ids()}
        with torch.no_grad():
            noise: torch.Tensor = unet(
                sample,
                inputs["t"],
                encoder_hidden_states=embeds[f"{prefix}prompt_embeds"],
                added_cond_kwargs=added,
            )[0]
        return noise

    outputs = {}
    seen: list[int] = []  # the batch size of each UNet call
    for batched in (False, True):
        blk = guiders.guided_denoiser(unet, guider, guiders.SDXL_FIELDS, batch_branches=batched)
        seen.clear()
        handle = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
        try:
            outputs[batched] = blk(**inputs)
        finally:
            handle.remove()
        inside = int(start * steps_) <= i < int(stop * steps_)
        assert seen == ([2] if batched and inside else [1, 1] if inside else [1])
    cond = unet_alone("")
    expected = unet_alone("negative_") + 4.0 * (cond - unet_alone("negative_")) if inside else cond
    assert torch.allclose(outputs[False], expected, rtol=0, atol=1e-5)
    assert torch.allclose(outputs[True], outputs[False], rtol=0, atol=1e-5)


def test_hook_guiders_change_the_prediction(unet: Any) -> None:
    """PAG's and SLG's hooks really act: their latents differ from CFG's alone at the same scale."""
    cfg, _, _ = compare_with_modular(unet, ClassifierFreeGuidance(guidance_scale=5.0))
    for name in ("pag", "slg"):
        hooked, _, _ = compare_with_modular(unet, GUIDERS[name]())
        assert not torch.allclose(hooked, cfg, atol=1e-4), name


def test_seg_smoothing_never_attaches_in_diffusers_0_42(unet: Any) -> None:
    """Observed, not ours: SEG's prepare_models never counts its branches, so is_conditional stays False and
    its smoothing hook never attaches; its third branch repeats the conditional one and its latents are
    CFG's bit for bit (Modular Diffusers gives the same: see the equality test above)."""
    seg, _, _ = compare_with_modular(unet, GUIDERS["seg"]())
    cfg, _, _ = compare_with_modular(unet, ClassifierFreeGuidance(guidance_scale=5.0))
    assert torch.equal(seg, cfg)


def test_hooks_are_removed_after_each_step(unet: Any) -> None:
    """After a PAG run no guider hook is left on the UNet: a plain call gives the same as before."""
    sample, t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor(500)
    embeds = sdxl_embeddings()
    added = {"text_embeds": embeds["pooled_prompt_embeds"], "time_ids": time_ids()}
    assert embeds["prompt_embeds"].shape[-1] == unet.config.cross_attention_dim
    with torch.no_grad():
        before = unet(sample, t, encoder_hidden_states=embeds["prompt_embeds"], added_cond_kwargs=added)[0]
        compare_with_modular(unet, GUIDERS["pag"]())
        after = unet(sample, t, encoder_hidden_states=embeds["prompt_embeds"], added_cond_kwargs=added)[0]
    assert torch.equal(before, after)


@pytest.mark.parametrize("name", ["apg", "apg-mix"])
def test_apg_momentum_resets_between_calls(unet: Any, name: str) -> None:
    """APG keeps a momentum buffer across steps; the guider resets it at step 0, so two calls agree."""
    guider = GUIDERS[name]()
    program = df.compile(loop_graph(unet, euler(), guider, guiders.SDXL_FIELDS))
    first, second = run_dfgraph(program), run_dfgraph(program)
    assert torch.equal(first, second)
    assert guider.momentum_buffer is not None  # the state exists (and was reset, or the calls would differ)
    fresh = GUIDERS[name]()
    assert torch.equal(run_dfgraph(df.compile(loop_graph(unet, euler(), fresh, guiders.SDXL_FIELDS))), first)


def test_apg_momentum_matters(unet: Any) -> None:
    """Without momentum APG gives other latents: the reset test above tests real state."""
    with_momentum, _, _ = compare_with_modular(unet, GUIDERS["apg"]())
    without, _, _ = compare_with_modular(
        unet, AdaptiveProjectedGuidance(guidance_scale=5.0, adaptive_projected_guidance_rescale=3.0)
    )
    assert not torch.equal(with_momentum, without)


def test_frequency_decoupled_guidance_gives_modular_diffusers_latents(unet: Any) -> None:
    """FDG (needs the kornia package, which diffusers imports for its Laplacian pyramids)."""
    pytest.importorskip("kornia")
    from diffusers.guiders import FrequencyDecoupledGuidance

    guider = FrequencyDecoupledGuidance(guidance_scales=[5.0, 3.0])
    ours, theirs, calls = compare_with_modular(unet, guider)
    assert torch.equal(ours, theirs)
    assert calls == [2] * STEPS


@pytest.mark.parametrize("name", ["cfg", "cfg-start-stop", "apg", "tcfg", "cfg-zero-star"])
def test_batched_branches_equal_the_separate_calls_within_rounding(unet: Any, name: str) -> None:
    """batch_branches=True: one UNet call per step with all branches; the latents agree within 1e-5 of
    their largest magnitude (a batch-2 call rounds differently from two batch-1 calls in float32)."""
    guider = GUIDERS[name]()
    ours, theirs, calls = compare_with_modular(unet, guider, batch_branches=True)
    relative = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    assert relative < 1e-5, relative
    program = df.compile(loop_graph(unet, euler(), guider, guiders.SDXL_FIELDS, batch_branches=True))
    _, batched_calls = calls_per_step(unet, guider, lambda: run_dfgraph(program))
    assert batched_calls == [1] * STEPS
    assert sum(calls) > STEPS or name == "cfg-scale-1"


@pytest.mark.parametrize("name", ["pag", "slg", "seg", "auto-guidance"])
def test_batched_branches_are_refused_for_guiders_with_hooks(unet: Any, name: str) -> None:
    """Hooks change the UNet per branch, so the branches cannot share one call."""
    with pytest.raises(ValueError, match="model hooks"):
        guiders.guided_denoiser(unet, GUIDERS[name](), guiders.SDXL_FIELDS, batch_branches=True)


def test_a_non_guider_is_refused_when_the_graph_is_built(unet: Any) -> None:
    """Anything but a diffusers BaseGuidance is a ValueError naming what was given."""
    for wrong in (7.5, "cfg", steps.classifier_free_guidance):
        with pytest.raises(ValueError, match="diffusers guider"):
            guiders.guided_denoiser(unet, wrong, guiders.SDXL_FIELDS)


def test_ltx2_guidance_is_refused_with_the_reason(unet: Any) -> None:
    """LTX2Guidance drives transformer forward arguments a UNet does not have."""
    with pytest.raises(ValueError, match=r"LTX2Guidance cannot run with a UNet: .*forward arguments"):
        guiders.guided_denoiser(unet, LTX2Guidance(guidance_scale=3.0), guiders.SDXL_FIELDS)


def test_magnitude_aware_guidance_is_refused_where_modular_fails_too(unet: Any) -> None:
    """MagnitudeAware's torch.norm over 3 dims of a 4-D UNet prediction: refused at build time here, and
    Modular Diffusers raises at its first guided step (the limitation is diffusers' with this torch)."""
    with pytest.raises(ValueError, match="MagnitudeAwareGuidance cannot run with a UNet on torch"):
        guiders.guided_denoiser(unet, MagnitudeAwareGuidance(guidance_scale=5.0), guiders.SDXL_FIELDS)
    with pytest.raises(RuntimeError, match="matrix_norm"):
        run_modular(modular(unet, euler(), MagnitudeAwareGuidance(guidance_scale=5.0)))


def test_an_sdxl_unet_needs_the_added_conditioning_fields(unet: Any) -> None:
    """The SD 1.x fields on an SDXL UNet are refused when the block is built, naming what is missing."""
    with pytest.raises(ValueError, match="text_embeds, time_ids"):
        guiders.guided_denoiser(unet, ClassifierFreeGuidance())


def test_the_ports_are_typed_from_the_unet(unet: Any) -> None:
    """Port names from fields, types from the config: a 64-wide embedding is a static error (DF301)."""
    blk = guiders.guided_denoiser(unet, ClassifierFreeGuidance(), guiders.SDXL_FIELDS)
    names = [p.name for p in blk.inputs]
    assert names[:4] == ["sample", "t", "i", "num_inference_steps"]
    assert set(names[4:]) == {p for pair in guiders.SDXL_FIELDS.values() for p in pair}
    assert blk.mutates == (guiders.GUIDER,)
    hooked = guiders.guided_denoiser(unet, GUIDERS["pag"](), guiders.SDXL_FIELDS)
    assert set(hooked.mutates) == {guiders.GUIDER, df.RNG}
    exact = guiders.guided_denoiser(unet, ClassifierFreeGuidance(), guiders.SDXL_FIELDS, added_time_ids=6)
    types = {p.name: str(p.type) for p in exact.inputs}
    assert "batch 32" in types["pooled_prompt_embeds"] and "batch 6" in types["add_time_ids"]
    with pytest.raises(ValueError, match="added_time_ids= is for an SDXL UNet"):
        guiders.guided_denoiser(tiny.unet(), ClassifierFreeGuidance(), added_time_ids=6)
    graph = loop_graph(unet, euler(), ClassifierFreeGuidance(), guiders.SDXL_FIELDS)
    assert df.check(graph).ok

    @df.block(outputs="negative_prompt_embeds")
    def wide_negative(negative_prompt: str) -> Float[Tensor, "batch sequence 128"]:
        """128-wide negative embeddings, for a 64-wide UNet."""
        return torch.zeros(1, 8, 128)

    report = df.check(df.Sequential(wide_negative, graph, name="miswired"))
    assert {d.code for d in report.errors} == {"DF301"}
    assert all(d.path.endswith("guided.negative_prompt_embeds") for d in report.errors)


def test_a_missing_negative_embedding_is_a_clear_error(unet: Any) -> None:
    """CFG needs the unconditional branch; without negative embeddings the error names the port."""
    program = df.compile(
        loop_graph(unet, euler(), ClassifierFreeGuidance(guidance_scale=5.0), guiders.SDXL_FIELDS)
    )
    inputs = sdxl_embeddings()
    del inputs["negative_prompt_embeds"]
    with pytest.raises(Exception, match="negative_prompt_embeds, but negative_prompt_embeds is None"):
        program(
            **inputs,
            add_time_ids=time_ids(),
            negative_add_time_ids=time_ids(),
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(SEED),
        )


def test_guidance_scale_1_needs_no_negative_embeddings(unet: Any) -> None:
    """CFG at scale 1 runs the conditional branch alone, so the negative ports may stay None."""
    program = df.compile(
        loop_graph(unet, euler(), ClassifierFreeGuidance(guidance_scale=1.0), guiders.SDXL_FIELDS)
    )
    inputs = {k: v for k, v in sdxl_embeddings().items() if not k.startswith("negative")}
    latents = program(
        **inputs,
        add_time_ids=time_ids(),
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(SEED),
        output="latents",
    )
    assert latents.shape == (1, 4, 8, 8)


def test_needs_unconditional_is_modulars_rule() -> None:
    """needs_unconditional: num_conditions > 1 on the guider's current state (Modular's encoders' rule)."""
    assert guiders.needs_unconditional(ClassifierFreeGuidance(guidance_scale=5.0))
    assert not guiders.needs_unconditional(ClassifierFreeGuidance(guidance_scale=1.0))
    assert guiders.needs_unconditional(GUIDERS["pag"]())


@pytest.mark.parametrize("name", ["cfg-start-stop", "pag", "apg"])
def test_sd1_guided_denoiser_gives_modular_diffusers_latents(name: str) -> None:
    """SD 1.x UNet, no SD 1.x modular blocks in diffusers: Modular's SDXL set-timesteps, prepare-latents
    and denoise blocks on the SD UNet (as benchmarks/end_to_end.py runs them; their added_cond_kwargs are
    None, which this UNet ignores) against the loop around guided_denoiser(unet, G): bitwise equal."""
    from diffusers.modular_pipelines import SequentialPipelineBlocks
    from diffusers.modular_pipelines.stable_diffusion_xl import before_denoise, denoise

    unet, guider = tiny.unet(), GUIDERS[name]()
    prompt, negative = tiny.prompt_embeddings()
    program = df.compile(loop_graph(unet, euler(), guider))
    ours, our_calls = calls_per_step(
        unet,
        guider,
        lambda: program(
            prompt_embeds=prompt,
            negative_prompt_embeds=negative,
            num_inference_steps=STEPS,
            generator=torch.Generator().manual_seed(SEED),
            output="latents",
        ),
    )
    blocks = SequentialPipelineBlocks.from_blocks_dict(
        {
            "set_timesteps": before_denoise.StableDiffusionXLSetTimestepsStep(),
            "prepare_latents": before_denoise.StableDiffusionXLPrepareLatentsStep(),
            "denoise": denoise.StableDiffusionXLDenoiseStep(),
        }
    )
    pipe = blocks.init_pipeline()
    pipe.update_components(unet=unet, scheduler=euler(), guider=guider)
    pipe.set_progress_bar_config(disable=True)
    fields = {"prompt_embeds": prompt, "negative_prompt_embeds": negative}
    theirs, their_calls = calls_per_step(
        unet,
        guider,
        lambda: pipe(
            num_inference_steps=STEPS,
            batch_size=1,
            dtype=prompt.dtype,
            height=SIZE,
            width=SIZE,
            generator=torch.Generator().manual_seed(SEED),
            denoiser_input_fields=fields,
            output="latents",
        ),
    )
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls


@pytest.mark.parametrize("kind", ["ddim", "euler", "dpm++"])
def test_sd1_guided_denoiser_gives_the_pipeline_latents(kind: str) -> None:
    """SD 1.x: guided_denoiser(tiny.unet(), CFG 7.5) in a loop gives StableDiffusionPipeline's latents
    (float64, within 1e-10: the pipeline runs both branches in one batch-2 call)."""
    unet = tiny.unet().double()
    prompt, negative = (e.double() for e in tiny.prompt_embeddings())
    program = df.compile(loop_graph(unet, tiny.scheduler(kind), ClassifierFreeGuidance(guidance_scale=7.5)))
    ours = program(
        prompt_embeds=prompt,
        negative_prompt_embeds=negative,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(SEED),
        output="latents",
    )
    pipe = tiny.pipeline(unet, tiny.scheduler(kind))
    theirs = pipe(
        prompt_embeds=prompt,
        negative_prompt_embeds=negative,
        num_inference_steps=STEPS,
        guidance_scale=7.5,
        generator=torch.Generator().manual_seed(SEED),
        output_type="latent",
    ).images
    assert (ours - theirs).abs().max().item() < 1e-10
    assert not torch.equal(ours, torch.zeros_like(ours))


@pytest.mark.parametrize(
    "extra", [{"strength": 0.5}, {"strength": 0.5, "denoising_end": 0.9}, {"denoising_start": 0.4}], ids=str
)
def test_img2img_tells_the_guider_the_steps_that_run_as_modular_diffusers_does(
    extra: dict[str, float],
) -> None:
    """sdxl_img2img(guider=G) vs StableDiffusionXLAutoBlocks' image2image workflow: a guider's start fraction
    is of the steps left after strength (or the denoising cuts), so it switches at the same step."""
    from diffusers.modular_pipelines.stable_diffusion_xl.modular_blocks_stable_diffusion_xl import (
        StableDiffusionXLAutoBlocks,
    )

    components = tiny.sdxl_components()
    # start, not stop: Modular Diffusers' image2image fails when a later step runs one branch (0.42)
    unet, guider = components["unet"], ClassifierFreeGuidance(guidance_scale=5.0, start=0.5)
    encoders = {k: components[k] for k in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")}
    image = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    inputs = {
        "prompt": "a red cat",
        "negative_prompt": "blurry",
        "num_inference_steps": 6,
        "image": image,
        **extra,
    }
    graph = sdxl.sdxl_img2img(unet=unet, scheduler=euler(), vae=components["vae"], guider=guider, **encoders)
    program = df.compile(graph)
    ours, our_calls = calls_per_step(
        unet,
        guider,
        lambda: program(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents"),
    )
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(**components, guider=guider)
    pipe.set_progress_bar_config(disable=True)
    theirs, their_calls = calls_per_step(
        unet, guider, lambda: pipe(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    )
    assert our_calls == their_calls and 1 in our_calls and 2 in our_calls  # the start falls inside the run
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()


def test_with_a_guider_no_graph_reads_guidance_scale() -> None:
    """The guider's own scale is the call's: from embeddings or prompts, SD 1.x or SDXL, no graph with a
    guider has a guidance_scale input (one that did nothing would mislead)."""
    components = tiny.sdxl_components()
    encoders = {k: components[k] for k in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")}
    sd_encoders = {"text_encoder": tiny.text_encoder(), "tokenizer": tiny.tokenizer()}
    cfg = ClassifierFreeGuidance(guidance_scale=5.0)
    graphs = [
        sdxl.sdxl_text2img(unet=components["unet"], scheduler=euler(), guider=cfg),
        sdxl.sdxl_text2img(unet=components["unet"], scheduler=euler(), guider=cfg, **encoders),
        text2img(unet=tiny.unet(), scheduler=euler(), guider=cfg),
        text2img(unet=tiny.unet(), scheduler=euler(), guider=cfg, **sd_encoders),
    ]
    for graph in graphs:
        names = {p.name for p in graph.inputs}
        assert "guidance_scale" not in names and "num_inference_steps" in names, graph.name
        assert df.check(graph).ok
    assert "guidance_scale" in {p.name for p in text2img(unet=tiny.unet(), scheduler=euler()).inputs}


def test_negative_size_conditioning_with_a_batch_of_two_is_modular_diffusers() -> None:
    """With a guider, each branch's time ids are its own row repeated, as Modular Diffusers makes them
    (StableDiffusionXLPipeline interleaves them instead, which sdxl_text2img without a guider follows)."""
    from diffusers.modular_pipelines.stable_diffusion_xl.modular_blocks_stable_diffusion_xl import (
        StableDiffusionXLAutoBlocks,
    )

    components = tiny.sdxl_components()
    unet, guider = components["unet"], ClassifierFreeGuidance(guidance_scale=5.0)
    encoders = {k: components[k] for k in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")}
    inputs = {"prompt": ["a red cat", "a dog"], "negative_prompt": "blurry", "num_inference_steps": 3}
    inputs |= {
        "height": SIZE,
        "width": SIZE,
        "negative_original_size": (32, 32),
        "negative_target_size": (48, 48),
    }
    program = df.compile(sdxl.sdxl_text2img(unet=unet, scheduler=euler(), guider=guider, **encoders))
    ours = program(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(**components, guider=guider)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    assert ours.shape[0] == 2 and torch.equal(ours, theirs), (ours - theirs).abs().max().item()

"""`from_modular(..., batch_branches=True)`: the guider's branches of diffusers' own loop denoiser in ONE UNet
call, diffusers' code unchanged (`dfgraph_blocks.diffusers_batching`).

Tiny random SDXL components and `StableDiffusionXLAutoBlocks`' text2image workflow, as in
test_modular_run.py, against `ModularPipeline` with the same components, inputs and seed. Batched CFG
rounds differently from two batch-1 calls: measured largest difference 1.7e-4 at guidance 10 (latents up
to 59 in magnitude; 7.7e-5 at guidance 5), so the tolerance is TOLERANCE = 1e-3 absolute."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("diffusers")

import torch
from diffusers.guiders import ClassifierFreeGuidance
from diffusers.modular_pipelines import BlockState, StableDiffusionXLAutoBlocks
from hypothesis import given, settings
from hypothesis import strategies as st
from test_guiders import GUIDERS
from test_modular_run import SEED, STEPS, workflow_inputs

import dfgraph as df
from dfgraph_blocks.diffusers_batching import (
    BatchedModel,
    BatchingComponents,
    BranchBatchingGuider,
    batched_components,
)
from dfgraph_blocks.diffusers_compat import ModularLeaf, from_modular
from dfgraph_blocks.diffusion import tiny

TOLERANCE = 1e-3
"""Largest difference allowed between batched and per-branch float32 latents (measured: 1.7e-4)."""


@pytest.fixture(scope="module")
def parts() -> dict[str, Any]:
    """Tiny SDXL components and a record of the batch size of every UNet call."""
    components = tiny.sdxl_components()
    batches: list[int] = []
    components["unet"].register_forward_hook(lambda _, args, __: batches.append(int(args[0].shape[0])))
    return {"components": components, "batches": batches}


def pipeline(parts: dict[str, Any], guider: Any) -> Any:
    """A fresh ModularPipeline holding the components and `guider` (diffusers' guiders keep state)."""
    pipe = StableDiffusionXLAutoBlocks().init_pipeline()
    pipe.update_components(**parts["components"], guider=guider)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_both(
    parts: dict[str, Any], make_guider: Any, *, batch_branches: bool = True, seed: int = SEED
) -> tuple[torch.Tensor, list[int], torch.Tensor, list[int]]:
    """(our latents, our UNet batch sizes, ModularPipeline's latents, its batch sizes) for text2image,
    each side with its own fresh guider."""
    ours_pipe, theirs_pipe = pipeline(parts, make_guider()), pipeline(parts, make_guider())
    graph = from_modular(StableDiffusionXLAutoBlocks(), components=ours_pipe, batch_branches=batch_branches)
    program, inputs, batches = df.compile(graph), workflow_inputs("text2image"), parts["batches"]
    batches.clear()
    ours = program(**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
    our_batches = list(batches)
    batches.clear()
    theirs = theirs_pipe(**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
    return ours, our_batches, theirs, list(batches)


def cfg(scale: float = 5.0) -> Any:
    return lambda: ClassifierFreeGuidance(guidance_scale=scale)


def test_batched_cfg_is_close_with_half_the_unet_calls(parts: dict[str, Any]) -> None:
    ours, our_batches, theirs, their_batches = run_both(parts, cfg())
    assert their_batches == [1] * (2 * STEPS)  # diffusers: cond and uncond, one batch-1 call each
    assert our_batches == [2] * STEPS  # batched: one batch-2 call per step
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == torch.float32
    assert (ours - theirs).abs().max().item() <= TOLERANCE
    assert not torch.equal(ours, theirs)  # really another batching (else the tolerance proves nothing)


def test_a_hooked_guider_falls_back_to_diffusers_path(parts: dict[str, Any]) -> None:
    """PAG changes the UNet per branch (prepare_models): its branches cannot share one call."""
    ours, our_batches, theirs, their_batches = run_both(parts, GUIDERS["pag"])
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_batches == their_batches and set(our_batches) == {1}
    assert len(our_batches) > 2 * STEPS  # the perturbed branch ran too


def test_guidance_off_is_one_branch_and_bitwise_equal(parts: dict[str, Any]) -> None:
    ours, our_batches, theirs, their_batches = run_both(parts, cfg(1.0))
    assert torch.equal(ours, theirs)
    assert our_batches == their_batches == [1] * STEPS


@settings(max_examples=3, deadline=None)
@given(scale=st.floats(1.5, 10.0), seed=st.integers(0, 2**16))
def test_batched_cfg_is_close_for_any_scale_and_seed(parts: dict[str, Any], scale: float, seed: int) -> None:
    ours, our_batches, theirs, their_batches = run_both(parts, cfg(scale), seed=seed)
    assert (ours - theirs).abs().max().item() <= TOLERANCE
    assert len(our_batches) * 2 == len(their_batches) == 2 * STEPS


def test_a_batched_run_leaves_the_components_as_they_were(parts: dict[str, Any]) -> None:
    guider = ClassifierFreeGuidance(guidance_scale=5.0)
    pipe = pipeline(parts, guider)
    unet = parts["components"]["unet"]
    before = {name: getattr(pipe, name) for name in pipe.components}
    hooks = (dict(unet._forward_hooks), dict(unet._forward_pre_hooks))
    guider_attrs = set(vars(guider))
    graph = from_modular(StableDiffusionXLAutoBlocks(), components=pipe, batch_branches=True)
    parts["batches"].clear()
    df.compile(graph)(**workflow_inputs("text2image"), generator=torch.Generator().manual_seed(0))
    assert parts["batches"] == [2] * STEPS
    assert {name: getattr(pipe, name) for name in pipe.components} == before
    assert all(getattr(pipe, name) is value for name, value in before.items())
    assert pipe.guider is guider and type(pipe.guider) is ClassifierFreeGuidance
    assert (dict(unet._forward_hooks), dict(unet._forward_pre_hooks)) == hooks
    assert set(vars(guider)) == guider_attrs
    assert guider._count_prepared == 2  # the last step counted both branches, as diffusers does


def leaves(block: Any) -> list[ModularLeaf]:
    """Every ModularLeaf of a converted block, Switch cases and loop bodies included."""
    if isinstance(block, ModularLeaf):
        return [block]
    if isinstance(block, df.Loop):
        return leaves(block.body)
    if isinstance(block, df.Switch):
        return [leaf for case in block.cases.values() for leaf in leaves(case)]
    if isinstance(block, df.Sequential):
        return [leaf for child in dict(block.children).values() for leaf in leaves(child)]
    return []


@pytest.mark.parametrize("batch", [False, True])
def test_only_loop_sub_blocks_batch_and_only_when_asked(batch: bool) -> None:
    found = leaves(from_modular(StableDiffusionXLAutoBlocks(), batch_branches=batch))
    in_loops = [leaf for leaf in found if leaf.step_args is not None]
    assert in_loops and len(in_loops) < len(found)
    assert all(leaf.batch_branches == (batch and leaf.step_args is not None) for leaf in found)


# -- the wrapper and the model proxy on their own ------------------------------------------------------


class Recorder(torch.nn.Module):
    """Records the shapes of what it is called with; returns a noise prediction of the sample's batch."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def forward(self, sample: torch.Tensor, t: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor]:
        self.calls.append(shapes((sample, t, kwargs)))
        return (sample * 2.0,)


def shapes(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, dict):
        return {k: shapes(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(shapes(v) for v in value)
    return value


def denoise_like_diffusers(components: Any, fields: dict[str, Any], sample: torch.Tensor) -> torch.Tensor:
    """The shape of StableDiffusionXLLoopDenoiser.__call__'s branch loop."""
    components.guider.set_state(step=0, num_inference_steps=4, timestep=torch.tensor(10.0))
    branches = components.guider.prepare_inputs(fields)
    for branch in branches:
        components.guider.prepare_models(components.unet)
        branch.noise_pred = components.unet(
            sample,
            torch.tensor(10.0),
            encoder_hidden_states=branch.prompt_embeds,
            added_cond_kwargs={"time_ids": branch.time_ids, "extra": [sample, torch.zeros(3, 1)]},
        )[0]
        components.guider.cleanup_models(components.unet)
    guided: torch.Tensor = components.guider(branches)[0]
    return guided


def test_the_model_proxy_repeats_only_per_branch_tensors() -> None:
    unet, guider = Recorder(), ClassifierFreeGuidance(guidance_scale=3.0)
    view = batched_components(BlockState(unet=unet, guider=guider))
    assert isinstance(view, BatchingComponents)
    assert isinstance(view.unet, BatchedModel) and isinstance(view.guider, BranchBatchingGuider)
    fields = {
        "prompt_embeds": (torch.ones(1, 5, 4), torch.zeros(1, 5, 4)),
        "time_ids": (torch.ones(1, 6), torch.full((1, 6), 2.0)),
    }
    sample = torch.randn(1, 4, 8, 8)
    guided = denoise_like_diffusers(view, fields, sample)
    assert unet.calls == [
        (
            (2, 4, 8, 8),  # the sample: repeated
            (),  # the 0-d timestep: unchanged
            {
                "encoder_hidden_states": (2, 5, 4),  # a merged field: not repeated again
                "added_cond_kwargs": {"time_ids": (2, 6), "extra": [(2, 4, 8, 8), (3, 1)]},
            },
        )
    ]
    unet.calls.clear()
    expected = denoise_like_diffusers(BlockState(unet=unet, guider=guider), fields, sample)
    assert len(unet.calls) == 2 and torch.allclose(guided, expected)
    assert guider._count_prepared == 2


def test_unstackable_fields_run_one_call_per_branch() -> None:
    unet, guider = Recorder(), ClassifierFreeGuidance(guidance_scale=3.0)
    view = batched_components(BlockState(unet=unet, guider=guider))
    # the negative embeddings are shorter: they cannot be concatenated with the positive ones
    fields = {
        "prompt_embeds": (torch.ones(1, 5, 4), torch.zeros(1, 3, 4)),
        "time_ids": (torch.ones(1, 6), torch.ones(1, 6)),
    }
    denoise_like_diffusers(view, fields, torch.randn(1, 4, 8, 8))
    assert [call[0] for call in unet.calls] == [(1, 4, 8, 8)] * 2
    assert view.guider.merged is None


def test_a_per_branch_question_during_a_merged_step_is_refused() -> None:
    view = batched_components(BlockState(unet=Recorder(), guider=ClassifierFreeGuidance(guidance_scale=3.0)))
    view.guider.set_state(step=0, num_inference_steps=4, timestep=torch.tensor(1.0))
    view.guider.prepare_inputs({"prompt_embeds": (torch.ones(1, 2), torch.zeros(1, 2))})
    view.guider.prepare_models(view.unet)
    with pytest.raises(RuntimeError, match="is_conditional"):
        _ = view.guider.is_conditional


def test_a_guider_reading_the_block_state_is_merged_too() -> None:
    """Wan's denoiser hands the guider its BlockState (prepare_inputs_from_block_state)."""
    view = batched_components(BlockState(unet=Recorder(), guider=ClassifierFreeGuidance(guidance_scale=3.0)))
    state = BlockState(prompt_embeds=torch.ones(1, 2), negative_prompt_embeds=torch.zeros(1, 2))
    view.guider.set_state(step=0, num_inference_steps=4, timestep=torch.tensor(1.0))
    branches = view.guider.prepare_inputs_from_block_state(
        state, {"prompt_embeds": ("prompt_embeds", "negative_prompt_embeds")}
    )
    assert len(branches) == 1 and torch.equal(
        branches[0].prompt_embeds, torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    )
    assert view.guider.merged is not None and view.guider.merged.k == 2


def test_a_hooked_or_missing_guider_gets_the_real_components() -> None:
    hooked = BlockState(unet=Recorder(), guider=GUIDERS["pag"]())
    assert batched_components(hooked) is hooked
    bare = BlockState(unet=Recorder())
    assert batched_components(bare) is bare

"""Batch fusion: the conditional/unconditional pair of one batchable block becomes one batched call."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

import dfgraph as df


@df.block(outputs="noise", batch=("latents", "emb"))
class Denoiser:
    """A tiny stand-in for a UNet: one linear layer over the latents, shifted by the embedding."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.layer = torch.nn.Linear(4, 4)
        self.calls = 0

    def __call__(self, latents: Tensor, emb: Tensor, t: float) -> Tensor:
        self.calls += 1
        with torch.no_grad():
            return self.layer(latents) * (1.0 + t) + emb


@df.block(outputs="guided")
def guide(cond: Tensor, uncond: Tensor, guidance_scale: float = 7.5) -> Tensor:
    return uncond + guidance_scale * (cond - uncond)


@df.block(outputs="latents")
def step(latents: Tensor, guided: Tensor) -> Tensor:
    return latents - 0.1 * guided


def denoise_loop(unet: Any) -> df.Loop:
    body = df.Graph(
        {"cond": unet, "uncond": unet, "guide": guide, "step": step},
        edges=[
            ("prompt_embeds", "cond.emb"),
            ("negative_prompt_embeds", "uncond.emb"),
            ("cond.noise", "guide.cond"),
            ("uncond.noise", "guide.uncond"),
            ("guide.guided", "step.guided"),
        ],
        outputs=["step.latents"],
        name="step",
    )
    return df.Loop(body, over="timesteps", name="denoise")


def inputs() -> dict[str, Any]:
    torch.manual_seed(1)
    return {
        "latents": torch.randn(2, 4),
        "prompt_embeds": torch.randn(2, 4),
        "negative_prompt_embeds": torch.randn(2, 4),
        "timesteps": [0.9, 0.5, 0.1],
    }


def test_fused_program_matches_unfused_and_calls_the_model_once_per_step() -> None:
    unet = Denoiser()
    plain = df.compile(denoise_loop(unet), fuse=False)
    fused = df.compile(denoise_loop(unet), fuse=True)
    assert plain.fused == ()
    assert fused.fused == (("denoise/step/cond", "denoise/step/uncond"),)
    assert (
        "_cat((latents, latents))" in fused.source
        and "_cat((prompt_embeds, negative_prompt_embeds))" in fused.source
    )

    expected = plain(**inputs(), output="latents")
    unet.calls = 0
    got = fused(**inputs(), output="latents")
    assert unet.calls == 3  # one batched call per step instead of two
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_fused_call_is_one_node_of_the_schedule() -> None:
    schedule = df.compile(denoise_loop(Denoiser()), fuse=True).schedule
    assert schedule.issue_order == ("denoise/step/cond+uncond", "denoise/step/guide", "denoise/step/step")
    assert schedule.waits == ()


def test_errors_in_a_fused_call_name_both_members() -> None:
    prog = df.compile(denoise_loop(Denoiser()), fuse=True)
    bad = inputs()
    bad["negative_prompt_embeds"] = torch.randn(3, 5)  # cannot be stacked with the prompt embeddings
    with pytest.raises(df.BlockError) as info:
        prog(**bad)
    assert info.value.path == "denoise/step/cond+uncond" and info.value.iteration == 0


def test_calls_that_must_not_fuse() -> None:
    unet = Denoiser()

    @df.block(outputs="emb2")
    def shift(noise: Tensor) -> Tensor:
        return noise + 1

    # the second call depends on the first
    chained = df.Graph(
        {"a": unet, "s": shift, "b": unet},
        edges=[("emb", "a.emb"), ("a.noise", "s.noise"), ("s.emb2", "b.emb")],
        outputs={"out": "b.noise"},
    )
    assert df.compile(chained, fuse=True).fused == ()
    # a shared (non-batch) input differs
    different_t = df.Graph(
        {"a": unet, "b": unet},
        edges=[("t1", "a.t"), ("t2", "b.t"), ("e1", "a.emb"), ("e2", "b.emb")],
        outputs={"x": "a.noise", "y": "b.noise"},
    )
    assert df.compile(different_t, fuse=True).fused == ()
    # two different models
    two_models = df.Graph(
        {"a": unet, "b": Denoiser(seed=1)},
        edges=[("e1", "a.emb"), ("e2", "b.emb")],
        outputs={"x": "a.noise", "y": "b.noise"},
    )
    assert df.compile(two_models, fuse=True).fused == ()


def test_fusion_keeps_consumers_of_the_first_call_in_order() -> None:
    unet = Denoiser()

    @df.block(outputs="y")
    def use(noise: Tensor) -> Tensor:
        return noise * 2

    # a reads first, `use` consumes a's output before b is called; b feeds nothing in between
    g = df.Graph(
        {"a": unet, "u": use, "b": unet},
        edges=[("e1", "a.emb"), ("a.noise", "u.noise"), ("e2", "b.emb")],
        outputs={"y": "u.y", "z": "b.noise"},
    )
    values = {"latents": torch.randn(1, 4), "e1": torch.randn(1, 4), "e2": torch.randn(1, 4), "t": 0.5}
    fused = df.compile(g, fuse=True)
    assert fused.fused == (("graph/a", "graph/b"),)
    plain_out = df.compile(g)(**values)
    fused_out = fused(**values)
    for key in ("y", "z"):
        torch.testing.assert_close(fused_out[key], plain_out[key], rtol=0, atol=1e-6)


def test_batch_names_must_be_inputs() -> None:
    with pytest.raises(df.WiringError, match="batch= must be a tuple of input names"):

        @df.block(outputs="y", batch=("nope",))
        def f(x: Tensor) -> Tensor:
            return x

    with pytest.raises(df.WiringError, match="batch="):
        df.block(outputs="y", batch="x")(lambda x: x)  # type: ignore[arg-type]


@df.block(outputs="pred", batch=("sample", "emb"))
def optional_branch(sample: Tensor, emb: Tensor | None) -> Tensor | None:
    """A branch that is switched off (returns None) when its embedding is None."""
    return None if emb is None else sample * emb


@df.block(outputs="out")
def combine(a: Tensor | None, b: Tensor | None) -> Tensor:
    assert a is not None
    return a if b is None else a - b


def test_a_none_batch_input_runs_the_fused_pair_as_written() -> None:
    graph = df.Graph(
        {"c": optional_branch, "u": optional_branch, "g": combine},
        edges=[
            ("x", "c.sample"),
            ("x", "u.sample"),
            ("c.pred", "g.a"),
            ("u.pred", "g.b"),
            ("e1", "c.emb"),
            ("e2", "u.emb"),
        ],
    )
    fused, plain = df.compile(graph, fuse=True), df.compile(graph)
    assert fused.fused == (("graph/c", "graph/u"),)
    x = torch.tensor([[1.0, 2.0]])
    for e2 in (None, x * 3):
        expected = plain(x=x, e1=x * 2, e2=e2, output="out")
        assert torch.equal(fused(x=x, e1=x * 2, e2=e2, output="out"), expected)
    assert torch.equal(fused(x=x, e1=x * 2, e2=None, output="out"), x * x * 2)

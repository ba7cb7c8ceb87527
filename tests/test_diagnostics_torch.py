"""The checker's shape and dtype diagnostics on jaxtyping-annotated torch tensors (split from
test_diagnostics.py, so that module runs without torch)."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from test_diagnostics import only
from torch import Tensor

import dfgraph as df


def test_jaxtyping_shapes_and_dtypes() -> None:
    @df.block(outputs="latents")
    def prepare(batch: int) -> Float[Tensor, "b 4 h w"]:
        return torch.zeros(batch, 4, 8, 8)

    @df.block(outputs="noise")
    def unet(latents: Float[Tensor, "b 4 h w"], emb: Float[Tensor, "b 77 768"]) -> Float[Tensor, "b 4 h w"]:
        return latents

    @df.block(outputs="noise")
    def unet3(latents: Float[Tensor, "b 3 h w"]) -> Float[Tensor, "b 3 h w"]:
        return latents

    @df.block(outputs="ids")
    def as_ids(noise: Int[Tensor, "b c h w"]) -> Tensor:
        return noise.long()

    assert df.check(df.Sequential(prepare, unet)).ok
    d = only(df.check(df.Sequential(prepare, unet3, name="sd")), "DF301")
    assert d.path == "sd/unet3.latents" and "4" in d.message and "3" in d.message
    d = only(df.check(df.Sequential(prepare, unet, as_ids, name="sd")), "DF302")
    assert d.path == "sd/as_ids.noise"


def test_named_dims_bind_once_across_the_graph() -> None:
    @df.block(outputs="a")
    def make_a(n: int) -> Float[Tensor, "2 8"]:
        return torch.zeros(2, 8)

    @df.block(outputs="b")
    def make_b(n: int) -> Float[Tensor, "3 8"]:
        return torch.zeros(3, 8)

    @df.block(outputs="c")
    def join(a: Float[Tensor, "batch d"], b: Float[Tensor, "batch d"]) -> Float[Tensor, "batch d"]:
        return a

    d = only(df.check(df.Sequential(make_a, make_b, join, name="j")), "DF301")
    assert "batch" in d.message and "2" in d.message and "3" in d.message

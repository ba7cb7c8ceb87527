"""jaxtyping specs of torch tensors and the shape solver's concrete cases (split from test_shapes.py,
so that module runs without torch): array_spec, dtype_conflict, ShapeSolver."""

# Optional and Union are tested as spelled, and ruff reads jaxtyping dim strings as broken forward
# references, hence:
# ruff: noqa: F821, UP007, UP045

from __future__ import annotations

from typing import Annotated, Optional, Union

import numpy as np
import pytest
from jaxtyping import Float, Float32, Int, Shaped
from torch import Tensor

from dfgraph.shapes import ArraySpec, Fixed, Named, ShapeSolver, Skip, Variadic, array_spec, dtype_conflict


def spec(hint: object) -> ArraySpec:
    """array_spec, asserting there is one."""
    result = array_spec(hint)
    assert result is not None
    return result


def dims(text: str) -> ArraySpec:
    """A Float spec from a dim string."""
    return spec(Float[Tensor, text])


def test_array_spec_of_a_float_tensor() -> None:
    latents = spec(Float[Tensor, "b 4 h w"])
    assert latents.dims == (Named("b"), Fixed(4), Named("h"), Named("w"))
    assert latents.dtypes is not None and {"float16", "float32", "bfloat16"} <= latents.dtypes
    assert "int64" not in latents.dtypes
    assert latents.text == "Float[Tensor, 'b 4 h w']"
    assert latents.dim_text() == "b 4 h w"


def test_array_spec_dim_kinds() -> None:
    shaped = spec(Shaped[Tensor, "*batch #c _ h*2 ?t #4 _n"])
    assert shaped.dtypes is None  # Shaped: any dtype
    assert shaped.dims == (
        Variadic("batch"),
        Skip("#c"),  # broadcastable: may be 1
        Skip("_"),
        Skip("h*2"),
        Skip("?t"),
        Skip("#4"),
        Skip("_"),
    )
    assert spec(Float[Tensor, "... c"]).dims == (Variadic(None), Named("c"))
    assert spec(Float[Tensor, "*#b c"]).dims == (Variadic("b"), Named("c"))
    assert spec(Float[Tensor, "b=3"]).dims == (Fixed(3),)
    assert spec(Float[Tensor, ""]).dims == ()
    assert [str(d) for d in spec(Float[Tensor, "*batch 3 c"]).dims] == ["*batch", "3", "c"]
    assert str(Variadic()) == "..."


def test_array_spec_through_wrappers() -> None:
    inner = spec(Float[Tensor, "b c"])
    assert array_spec(Optional[Float[Tensor, "b c"]]) == inner
    assert array_spec(Float[Tensor, "b c"] | None) == inner
    assert array_spec(Annotated[Float[Tensor, "b c"], "doc"]) == inner
    assert array_spec(Annotated[Float[Tensor, "b c"], []]) == inner  # unhashable metadata
    assert array_spec(Union[int, Float[Tensor, "b c"]]) == inner
    assert array_spec(Union[Float[Tensor, "b"], Int[Tensor, "b"]]) is None  # two arrays
    for other in (int, Tensor, list[int], None, "Float[Tensor, 'b']", 3):
        assert array_spec(other) is None


def test_array_spec_is_shared_between_equal_annotations() -> None:
    assert array_spec(Float[Tensor, "b 4"]) is array_spec(Float[Tensor, "b 4"])
    assert spec(Float[np.ndarray, "b 4"]).text == "Float[ndarray, 'b 4']"


def test_dtype_conflict() -> None:
    floats, ints = dims("b"), spec(Int[Tensor, "b"])
    message = dtype_conflict(floats, ints)
    assert message is not None and "Float[Tensor, 'b']" in message and "Int[Tensor, 'b']" in message
    assert dtype_conflict(ints, floats) is not None
    assert dtype_conflict(floats, spec(Float32[Tensor, "b"])) is None  # the families intersect
    assert dtype_conflict(spec(Shaped[Tensor, "b"]), ints) is None
    assert dtype_conflict(ints, spec(Shaped[Tensor, "b"])) is None


def test_consistent_edges_bind_sizes() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("1 4 64 64"), "prepare", dims("b c h w"), "unet", "prepare.latents") == []
    assert [solver.size_of("unet", n) for n in "bchw"] == [1, 4, 64, 64]
    assert solver.size_of("unet", "z") is None and solver.size_of("other", "b") is None


def test_a_size_flows_through_a_block_to_a_conflict() -> None:
    solver = ShapeSolver()
    # prepare's 4 binds unet's c, and unet's output (same scope, same c) carries it on to the vae.
    assert solver.unify(dims("b 4 h w"), "prepare", dims("b c h w"), "unet", "prepare.latents") == []
    assert solver.unify(dims("b c h w"), "unet", dims("b 3 h w"), "vae", "vae.latents") == [
        "dim 1 of vae.latents is 3 but 'c' is 4 here (from prepare.latents)"
    ]


def test_a_second_producer_disagreeing_with_the_first() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("b 4 h w"), "prepare", dims("b c h w"), "unet", "prepare.latents") == []
    messages = solver.unify(dims("b 3 h w"), "encode", dims("b c h w"), "unet", "loop/unet.sample")
    assert messages == ["dim 'c' of loop/unet.sample is 4 (from prepare.latents) but 3 here"]


def test_named_producer_against_a_fixed_consumer() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("2 c"), "a", dims("n c"), "b", "a.x") == []
    assert solver.unify(dims("n c"), "b", dims("3 c"), "d", "d.y") == [
        "dim 0 of d.y is 3 but 'n' is 2 here (from a.x)"
    ]


def test_fixed_against_fixed() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("b 4"), "a", dims("b 4"), "c", "c.x") == []
    assert solver.unify(dims("b 4"), "a", dims("b 3"), "c", "c.y") == ["dim 1 of c.y is 3 but 4 here"]


def test_two_bound_classes_meeting() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("1"), "p", dims("b"), "s", "prepare.latents") == []
    assert solver.unify(dims("2"), "e", dims("b"), "t", "encode.prompt_embeds") == []
    assert solver.unify(dims("b"), "s", dims("b"), "t", "join.x") == [
        "named dim 'b' bound to 1 at prepare.latents and to 2 at encode.prompt_embeds"
    ]
    solver = ShapeSolver()
    solver.unify(dims("1"), "p", dims("b"), "s", "prepare.latents")
    solver.unify(dims("2"), "e", dims("n"), "t", "encode.prompt_embeds")
    assert solver.unify(dims("b"), "s", dims("n"), "t", "join.x") == [
        "named dims 'b' and 'n' bound to 1 at prepare.latents and to 2 at encode.prompt_embeds"
    ]


def test_scopes_keep_equal_letters_apart() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("1"), "p", dims("b"), "s", "s.x") == []
    assert solver.unify(dims("2"), "p", dims("b"), "t", "t.x") == []  # another call site: another b
    assert (solver.size_of("s", "b"), solver.size_of("t", "b")) == (1, 2)
    # Within one scope, every port's b is one variable.
    assert solver.unify(dims("3"), "p", dims("b"), "s", "s.y") == [
        "dim 'b' of s.y is 1 (from s.x) but 3 here"
    ]


def test_merging_free_classes_then_binding() -> None:
    solver = ShapeSolver()
    for k in range(5):  # a chain of free dims, all one class
        assert solver.unify(dims("x"), k, dims("x"), k + 1, f"e{k}") == []
    assert solver.unify(dims("7"), "src", dims("x"), 0, "src.x") == []
    assert solver.size_of(5, "x") == 7
    assert solver.unify(dims("x"), 5, dims("8"), "sink", "sink.x") == [
        "dim 0 of sink.x is 8 but 'x' is 7 here (from src.x)"
    ]


def test_each_conflict_is_reported_once() -> None:
    solver = ShapeSolver()
    solver.unify(dims("b 4"), "prepare", dims("b c"), "unet", "prepare.latents")
    assert solver.unify(dims("b 3"), "x", dims("b c"), "unet", "unet.a") != []
    # Downstream edges touching the poisoned class repeat nothing.
    assert solver.unify(dims("b 5"), "y", dims("b c"), "unet", "unet.b") == []
    assert solver.unify(dims("b c"), "unet", dims("b 6"), "z", "z.a") == []
    assert solver.unify(dims("b c"), "unet", dims("b k"), "w", "w.a") == []
    assert solver.unify(dims("b 9"), "v", dims("b k"), "w", "w.b") == []  # w's k joined the poisoned class
    # A merge of two bound classes poisons the result too.
    solver.unify(dims("1"), "p", dims("n"), "s", "s.x")
    solver.unify(dims("2"), "p", dims("n"), "t", "t.x")
    assert len(solver.unify(dims("n"), "s", dims("n"), "t", "join")) == 1
    assert solver.unify(dims("3"), "p", dims("n"), "s", "again") == []


@pytest.mark.parametrize(
    ("producer", "consumer", "message"),
    [
        ("b 4 h w", "b h w", "rank 4 (b 4 h w) vs rank 3 (b h w)"),
        ("b", "", "rank 1 (b) vs rank 0 ()"),
        ("*batch h w", "w", "rank >= 2 (*batch h w) vs rank 1 (w)"),
        ("c", "... h w", "rank 1 (c) vs rank >= 2 (... h w)"),
        ("b _ #c", "b h", "rank 3 (b _ #c) vs rank 2 (b h)"),
    ],
)
def test_rank_mismatch(producer: str, consumer: str, message: str) -> None:
    assert ShapeSolver().unify(dims(producer), "p", dims(consumer), "c", "c.x") == [message]


@pytest.mark.parametrize(
    ("producer", "consumer", "bound"),
    [
        ("2 3 5 7", "*batch c", {"c": 7}),
        ("2 3 5 7", "n ... c", {"n": 2, "c": 7}),
        ("2 3 5 7", "n m *rest", {"n": 2, "m": 3}),
        ("2 3", "n *rest m", {"n": 2, "m": 3}),
        ("2 ... 7", "n m c", {"n": 2, "c": 7, "m": None}),
        ("2 *a 7", "n *b c", {"n": 2, "c": 7}),
        ("2 3 *a", "*b c", {"c": None}),  # both open: nothing pins c
        ("#2 _ h*2", "n m k", {"n": None, "m": None, "k": None}),  # broadcastable, anonymous, symbolic
    ],
)
def test_variadic_and_unconstrained_alignment(
    producer: str, consumer: str, bound: dict[str, int | None]
) -> None:
    solver = ShapeSolver()
    assert solver.unify(dims(producer), "p", dims(consumer), "c", "c.x") == []
    assert {name: solver.size_of("c", name) for name in bound} == bound


def test_variadic_conflict_counts_positions_from_the_right() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("2 3 5 7"), "p", dims("*batch 6"), "c", "c.x") == [
        "dim 1 of c.x is 6 but 7 here"
    ]


def test_broadcastable_names_are_not_unified() -> None:
    solver = ShapeSolver()
    assert solver.unify(dims("1 4"), "p", dims("#b c"), "s", "s.x") == []
    assert solver.unify(dims("8 4"), "q", dims("#b c"), "s", "s.y") == []
    assert solver.size_of("s", "b") is None


def test_solver_binds_dims_along_a_ten_thousand_call_chain() -> None:
    # its speed is measured by benchmarks/scaling.py, not asserted here
    latents, unet = dims("b 4 h w"), dims("b c h w")
    solver = ShapeSolver()
    assert solver.unify(dims("1 4 64 64"), "source", unet, 0, "source") == []
    for k in range(10_000):  # a 10,000-call chain; b, h and w flow from end to end
        assert solver.unify(unet, k, latents if k % 2 else unet, k + 1, f"e{k}") == []
    assert solver.size_of(10_000, "h") == 64
    assert solver.unify(unet, 10_000, dims("b c 32 w"), "sink", "sink.x") == [
        "dim 2 of sink.x is 32 but 'h' is 64 here (from source)"
    ]

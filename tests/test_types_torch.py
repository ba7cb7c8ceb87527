"""The type rules on torch tensors and jaxtyping-annotated tensors (split from test_types.py, so that
module runs without torch): the same tables and properties, over the hints that need torch."""

# Typing forms are tested in every spelling (Optional, Union, List) and some string hints are
# deliberately unresolvable, hence:
# ruff: noqa: F821, UP045

from __future__ import annotations

import collections.abc as cabc
import inspect
import typing
from typing import Annotated, Any, Literal, Optional

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float, Int, Shaped
from test_types import Animal, Callable, Car, Dog, NoneType, Sealed, T, UserId, Weird, _compose
from torch import Tensor

from dfgraph.boundary import checker, plain_class
from dfgraph.types import describe, disjoint, is_array, is_assignable, item_type, narrow, normalize, union

LATENTS = Float[Tensor, "b 4 h w"]


def test_normalize_keeps_jaxtyping_arrays_and_unwraps_unhashable_annotated() -> None:
    assert normalize(LATENTS) == (LATENTS, None)
    assert normalize(Annotated[int, []]) == (int, None)  # metadata that cannot be hashed
    reason = normalize(Weird())[1]
    assert reason is not None and reason.startswith("unsupported annotation <Weird object>")


def test_is_array() -> None:
    assert is_array(LATENTS) and is_array(Shaped[np.ndarray, "n"])
    assert not is_array(Tensor) and not is_array(Float) and not is_array(list[int]) and not is_array(Weird())


def test_is_assignable_on_repeated_and_fresh_hints() -> None:
    # the cache must not change answers; its speed is measured by benchmarks/scaling.py, not asserted
    pairs = [(int, float), (list[int], cabc.Sequence[float]), (Optional[int], int | None | str)]
    # Each jaxtyping subscription is a new class, so these are 10,000 distinct hints.
    arrays = [(Float[Tensor, "b 4 h w"], Float[Tensor, "b c h w"]) for _ in range(10_000)]
    for _ in range(10_000):
        for producer, consumer in pairs:
            assert is_assignable(producer, consumer)
    for producer, consumer in arrays:
        assert is_assignable(producer, consumer)


def test_checker_of_jaxtyping_checks_dtype_and_fixed_dims() -> None:
    is_latents = checker(LATENTS)
    assert is_latents is not None
    assert is_latents(torch.zeros(2, 4, 8, 8))
    assert not is_latents(torch.zeros(2, 3, 8, 8))
    assert not is_latents(torch.zeros(2, 4, 8, 8, dtype=torch.int64))
    assert not is_latents([1.0])


BASES: list[object] = [int, bool, float, complex, str, bytes, NoneType, object, Any, Animal, Dog, Car, Sealed]


BASES += [Tensor, LATENTS, Int[Tensor, "b"], Float[np.ndarray, "b"], Literal[1], Literal["a"], T, UserId]


HINTS = st.recursive(st.sampled_from(BASES), _compose, max_leaves=4)
ODD = st.one_of(
    st.integers(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.sampled_from(BASES), max_size=2),
    st.builds(Weird),
    st.just(typing.Final),
    st.just(typing.Generic),
    st.just(Annotated[int, []]),
    st.just(inspect.Parameter.empty),
    st.just(torch.float16),
)
ANYTHING = st.one_of(HINTS, ODD)


@settings(max_examples=200, deadline=None)
@given(HINTS)
def test_is_assignable_is_reflexive(hint: object) -> None:
    assert is_assignable(hint, hint)


@settings(max_examples=200, deadline=None)
@given(st.lists(HINTS, max_size=5))
def test_narrow_result_fits_every_member(hints: list[object]) -> None:
    narrowed = narrow(hints)
    if narrowed is not None:
        assert all(is_assignable(narrowed, hint) for hint in hints)


@settings(max_examples=200, deadline=None)
@given(HINTS, HINTS)
def test_disjoint_is_symmetric_and_irreflexive(a: object, b: object) -> None:
    assert disjoint(a, b) == disjoint(b, a)
    assert not disjoint(a, a)
    if disjoint(a, b):
        assert narrow([a, b]) is None


@settings(max_examples=300, deadline=None)
@given(ANYTHING, ANYTHING)
def test_nothing_raises_on_odd_annotations(a: object, b: object) -> None:
    _, reason = normalize(a)
    assert reason is None or reason.startswith(("unresolved", "unsupported"))
    assert isinstance(is_assignable(a, b), bool)
    assert isinstance(disjoint(a, b), bool)
    narrow([a, b])
    union(a, b)
    item_type(a)
    plain_class(a)
    assert isinstance(describe(a), str)
    predicate = checker(a)
    if predicate is not None:
        assert isinstance(predicate(3), bool)


ASSIGNABLE = [
    # jaxtyping: only the array classes are compared here (dtype and shape are DF302/DF301)
    (LATENTS, Tensor),
    (Tensor, LATENTS),
    (Float[Tensor, "b"], Int[Tensor, "b"]),
    (Optional[LATENTS], Optional[Tensor]),
    (LATENTS, Optional[Float[Tensor, "x"]]),
]


@pytest.mark.parametrize(("producer", "consumer"), ASSIGNABLE)
def test_assignable(producer: object, consumer: object) -> None:
    assert is_assignable(producer, consumer)


NOT_ASSIGNABLE = [
    (Float[np.ndarray, "b"], Tensor),
    (Tensor, Float[np.ndarray, "b"]),
    (Optional[LATENTS], Tensor),
]


@pytest.mark.parametrize(("producer", "consumer"), NOT_ASSIGNABLE)
def test_not_assignable(producer: object, consumer: object) -> None:
    assert not is_assignable(producer, consumer)


DISJOINT = [
    (Tensor, int),
    (LATENTS, Float[np.ndarray, "b"]),
]


@pytest.mark.parametrize(("a", "b"), DISJOINT)
def test_disjoint(a: object, b: object) -> None:
    assert disjoint(a, b) and disjoint(b, a)


NOT_DISJOINT = [
    (LATENTS, Int[Tensor, "b"]),  # dtypes are DF302's business
]


@pytest.mark.parametrize(("a", "b"), NOT_DISJOINT)
def test_not_disjoint(a: object, b: object) -> None:
    assert not disjoint(a, b) and not disjoint(b, a)


MYPY_PAIRS = [
    (tuple[Tensor, ...], cabc.Sequence[Tensor], True, False),
    (Callable[[object], None], Callable[[Tensor], None], True, False),
]


@pytest.mark.parametrize(("producer", "consumer", "forward", "backward"), MYPY_PAIRS)
def test_agrees_with_mypy_on_the_issue_examples(
    producer: object, consumer: object, forward: bool, backward: bool
) -> None:
    assert is_assignable(producer, consumer) is forward
    assert is_assignable(consumer, producer) is backward


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (torch.float32, (Any, "unsupported annotation torch.float32")),
    ],
)
def test_normalize(hint: object, expected: tuple[object, str | None]) -> None:
    assert normalize(hint) == expected


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ([Tensor, LATENTS], LATENTS),  # equally assignable: keep the one that says more
    ],
)
def test_narrow(hints: list[object], expected: object) -> None:
    assert narrow(hints) == expected


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (LATENTS, LATENTS),
    ],
)
def test_plain_class(hint: object, expected: object) -> None:
    assert plain_class(hint) == expected


@pytest.mark.parametrize(
    ("hint", "text"),
    [
        (LATENTS, "Float[Tensor, 'b 4 h w']"),
        (Optional[LATENTS], "Float[Tensor, 'b 4 h w'] | None"),
        (Tensor, "Tensor"),
    ],
)
def test_describe(hint: object, text: str) -> None:
    assert describe(hint) == text


@pytest.mark.parametrize(
    ("hint", "item"),
    [
        (Tensor, Tensor),
        (LATENTS, Tensor),
    ],
)
def test_item_type(hint: object, item: object) -> None:
    assert item_type(hint) == item


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Tensor, LATENTS, Tensor),  # mutually assignable: the one that says less
    ],
)
def test_union(a: object, b: object, expected: object) -> None:
    assert union(a, b) == expected

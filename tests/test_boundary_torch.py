"""The run-time check at the call boundary on torch tensors (split from test_boundary.py, so that module
runs without torch): tensor kinds, the properties over values that include tensors, and how a tensor is
shown in an error."""

# Typing forms are tested in every spelling (Optional, Union, Tuple), hence:
# ruff: noqa: UP045

from __future__ import annotations

import collections.abc as cabc
import typing
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Sized
from typing import Annotated, Any, Literal, Optional, SupportsFloat

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float
from test_boundary import (
    KINDS as CORE_KINDS,
)
from test_boundary import (
    Animal,
    Closer,
    Dog,
    File,
    HasLen,
    IntBound,
    Movie,
    NumOrStr,
    Point,
    Rated,
    Score,
    UserId,
    Weird,
    _accepts,
    _input_error,
)
from torch import Tensor

import dfgraph as df
from dfgraph import types
from dfgraph.boundary import checker, show_value

LATENTS = Float[Tensor, "b 4 h w"]


KINDS: list[tuple[object, list[object], list[object]]] = [
    (Sequence[Tensor], [(torch.zeros(1),), [torch.zeros(1)]], [torch.zeros(1), [1]]),
    (
        LATENTS,
        [torch.zeros(2, 4, 8, 8)],
        [torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 8, 8, dtype=torch.int64)],
    ),
    (Tensor, [torch.zeros(1)], [np.zeros(1), 1.0]),
]


@pytest.mark.parametrize(
    ("hint", "good", "bad"), KINDS, ids=lambda x: types.describe(x) if not isinstance(x, list) else ""
)
def test_each_kind_accepts_its_values_and_rejects_wrong_ones(
    hint: object, good: list[object], bad: list[object]
) -> None:
    predicate = checker(hint)
    assert predicate is not None
    for value in good:
        assert predicate(value) is True, (hint, value)
    for value in bad:
        assert predicate(value) is False, (hint, value)


def test_predicates_never_raise() -> None:
    odd: list[object] = [Weird(), torch.zeros(2, 2), np.zeros((2, 2)), float("nan"), iter([1]), type, None]
    kinds = CORE_KINDS + KINDS  # every kind: the core module's and the tensor kinds here
    hints: list[object] = [hint for hint, _, _ in kinds] + [list[HasLen], dict[Closer, int], Hashable, "Fwd"]
    for hint in hints:
        predicate = checker(hint)
        for value in odd:
            assert predicate is None or isinstance(predicate(value), bool), (hint, value)


# -- the run-time check agrees with the static relation ---------------------------------------------------


def _callable_values() -> st.SearchStrategy[tuple[object, object]]:
    def ident(x: int) -> int:
        return x

    def takes_object(x: object) -> None:
        return None

    def const() -> int:
        return 1

    return st.sampled_from(
        [
            (ident, Callable[[int], int]),
            (takes_object, Callable[[object], None]),
            (const, Callable[[], int]),
            (abs, Callable[[int], int]),
        ]
    )


def _class_values() -> st.SearchStrategy[tuple[object, object]]:
    return st.sampled_from([int, bool, float, str, Animal, Dog, File, Point]).map(
        lambda cls: (cls, type[cls])
    )


def _tensor_values() -> st.SearchStrategy[tuple[object, object]]:
    return st.tuples(st.integers(1, 3), st.integers(1, 3)).map(
        lambda shape: (torch.zeros(*shape), Float[Tensor, f"{shape[0]} {shape[1]}"])
    )


# (value, P): a value together with a static type it has
VALUES: st.SearchStrategy[tuple[object, object]] = st.one_of(
    st.integers().map(lambda v: (v, int)),
    st.booleans().map(lambda v: (v, bool)),
    st.floats(allow_nan=False).map(lambda v: (v, float)),
    st.complex_numbers(allow_nan=False).map(lambda v: (v, complex)),
    st.text(max_size=5).map(lambda v: (v, str)),
    st.sampled_from(["a", "b", "c"]).map(lambda v: (v, Literal[v])),
    st.none().map(lambda v: (v, None)),
    st.tuples(st.integers(), st.text(max_size=3)).map(lambda v: (v, tuple[int, str])),
    st.tuples(st.integers(), st.integers()).map(lambda v: (v, tuple[int, int])),
    st.lists(st.integers(), max_size=4).map(lambda v: (tuple(v), tuple[int, ...])),
    st.lists(st.floats(allow_nan=False), max_size=4).map(lambda v: (tuple(v), tuple[float, ...])),
    st.just(((), tuple[()])),
    st.lists(st.integers(), max_size=4).map(lambda v: (v, list[int])),
    st.lists(st.booleans(), max_size=4).map(lambda v: (v, list[bool])),
    st.lists(st.text(max_size=3), max_size=4).map(lambda v: (v, list[str])),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3).map(lambda v: (v, dict[str, int])),
    st.builds(Point, st.integers(), st.integers()).map(lambda v: (v, Point)),
    st.builds(lambda t, y: {"title": t, "year": y}, st.text(max_size=3), st.integers()).map(
        lambda v: (v, Movie)
    ),
    st.builds(lambda t: {"title": t}, st.text(max_size=3)).map(lambda v: (v, Rated)),
    st.integers().map(lambda v: (UserId(v), UserId)),
    st.builds(Dog).map(lambda v: (v, Dog)),
    st.builds(Animal).map(lambda v: (v, Animal)),
    st.builds(File).map(lambda v: (v, File)),
    _callable_values(),
    _class_values(),
    _tensor_values(),
)


VOCABULARY: list[object] = [
    Any,
    object,
    int,
    bool,
    float,
    complex,
    str,
    None,
    Optional[int],
    int | str,
    Optional[float],
    Literal["a"],
    Literal["a", "b"],
    Literal[True, False],
    tuple[int, str],
    tuple[int, int],
    tuple[float, float],
    tuple[int, ...],
    tuple[float, ...],
    tuple[object, ...],
    tuple[()],
    list[int],
    list[float],
    list[object],
    dict[str, int],
    dict[str, float],
    Sequence[int],
    Sequence[float],
    Iterable[int],
    Iterable[object],
    Mapping[str, object],
    Mapping[str, int],
    Point,
    Movie,
    Rated,
    UserId,
    Score,
    Callable[[int], int],
    Callable[[int], float],
    Callable[..., object],
    Callable[[], int],
    Callable[[], float],
    type[int],
    type[float],
    type[object],
    type[Animal],
    type,
    Animal,
    Dog,
    Closer,
    HasLen,
    Sized,
    SupportsFloat,
    IntBound,
    NumOrStr,
    Annotated[int, "x"],
    Tensor,
    Float[Tensor, "a b"],
    Float[Tensor, "..."],
    # No fixed dims or other dtypes here: is_assignable compares array classes only, and shapes.py unifies
    # dims and dtypes across the graph (DF301/DF302); the run-time check of those is tested in KINDS.
]


def _tuple_length(hint: object) -> int | None:
    """n for tuple[X1, ..., Xn] (0 for tuple[()]) and NamedTuples, -1 for tuple[X, ...], else None."""
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        return len(hint._fields)
    if typing.get_origin(hint) is not tuple:
        return None
    args = typing.get_args(hint)
    return -1 if len(args) == 2 and args[1] is Ellipsis else len(args)


def _is_typeddict(hint: object) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__required_keys__")


def _mypy_also_accepts(static: object, hint: object) -> bool:
    """False on the pairs the present relation admits but mypy rejects (issue 9, item 1, fixed elsewhere).

    A run-time check must accept what the static relation admits only where that relation is right; these
    rules are mypy's, for the hints drawn here, and stay true once the relation conforms.
    """
    if _is_typeddict(hint):  # structural: every key of the target, same requiredness, same type
        if not _is_typeddict(static):
            return False
        s_hints, h_hints = typing.get_type_hints(static), typing.get_type_hints(hint)
        return all(
            key in s_hints
            and types.is_assignable(s_hints[key], h_hints[key])
            and types.is_assignable(h_hints[key], s_hints[key])
            and (key in static.__required_keys__) == (key in hint.__required_keys__)  # type: ignore[attr-defined]
            for key in h_hints
        )
    s_len, h_len = _tuple_length(static), _tuple_length(hint)
    if s_len is not None and h_len is not None and h_len >= 0 and s_len != h_len:
        return False  # tuple[()] takes neither tuple[int] nor tuple[int, ...]
    if typing.get_origin(hint) in (cabc.Iterable, cabc.Sequence) and typing.get_args(hint):
        return types.is_assignable(types.item_type(static), typing.get_args(hint)[0])  # a dict yields keys
    return True


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_run_time_check_accepts_every_value_the_static_relation_admits(drawn: tuple[object, object]) -> None:
    value, static = drawn
    for hint in VOCABULARY:
        if types.is_assignable(static, hint) and _mypy_also_accepts(static, hint):
            assert _accepts(hint, value), f"{types.describe(static)} -> {types.describe(hint)}: {value!r}"


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_each_value_passes_the_check_of_its_own_type(drawn: tuple[object, object]) -> None:
    value, static = drawn
    assert _accepts(static, value)


@df.block(outputs="mean")
def denoise(latents: LATENTS) -> float:
    return float(latents.mean())


def test_a_bad_tensor_shows_its_shape_and_dtype_not_its_data() -> None:
    prog = df.compile(denoise)
    assert prog(latents=torch.zeros(1, 4, 8, 8), output="mean") == 0.0
    text = _input_error(lambda: prog(latents=torch.zeros(1, 3, 8, 8)))
    assert text == (
        "denoise: input 'latents' must be Float[Tensor, 'b 4 h w'] (read by denoise.latents), "
        "got Tensor(shape=(1, 3, 8, 8), dtype=torch.float32)"
    )
    text = _input_error(lambda: prog(latents=torch.zeros(1, 4, 8, 8, dtype=torch.int64)))
    assert text.endswith("got Tensor(shape=(1, 4, 8, 8), dtype=torch.int64)")
    text = _input_error(lambda: prog(latents=[torch.zeros(1, 4, 8, 8)] * 50))
    assert "list: [Tensor(shape=(1, 4, 8, 8), dtype=torch.float32), " in text and "tensor(" not in text


# -- how a value is shown ---------------------------------------------------------------------------------


def test_show_value() -> None:
    assert show_value(torch.zeros(1, 4, 8, 8)) == "Tensor(shape=(1, 4, 8, 8), dtype=torch.float32)"
    assert show_value(np.zeros((2, 3), dtype=np.int32)) == "ndarray(shape=(2, 3), dtype=int32)"
    assert show_value(3) == "int: 3" and show_value("ab") == "str: 'ab'"
    assert show_value(int) == "type: <class 'int'>"
    long = show_value("x" * 10_000)
    assert long.startswith("str: 'xxx") and len(long) <= 120
    many = show_value(list(range(10_000)))
    assert many.startswith("list: [0, 1, 2, 3, ...]") and len(many) <= 120
    nested = show_value((torch.ones(2, 2), 1))
    assert nested == "tuple: (Tensor(shape=(2, 2), dtype=torch.float32), 1)"
    assert show_value(Weird()).startswith("Weird: <Weird instance at 0x")

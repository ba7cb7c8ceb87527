"""The run-time check at the call boundary agrees with the static relation, and bad values fail clearly."""

# Typing forms are tested in every spelling (Optional, Union, Tuple), hence:
# ruff: noqa: UP006, UP007, UP045

from __future__ import annotations

import collections.abc as cabc
import re
import typing
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Sized
from typing import (
    Annotated,
    Any,
    Literal,
    NamedTuple,
    NewType,
    NotRequired,
    Optional,
    Protocol,
    SupportsFloat,
    SupportsInt,
    TypedDict,
    TypeVar,
    Union,
    runtime_checkable,
)

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float, Int
from torch import Tensor

import dfgraph as df
from dfgraph import types
from dfgraph.boundary import ACCEPT, checker, plain_class, show_value

NoneType = type(None)
UserId = NewType("UserId", int)
Score = NewType("Score", float)
IntBound = TypeVar("IntBound", bound=int)
NumOrStr = TypeVar("NumOrStr", int, str)
T = TypeVar("T")
LATENTS = Float[Tensor, "b 4 h w"]


class Point(NamedTuple):
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


class Rated(TypedDict):
    title: str
    stars: NotRequired[float]


class Node(TypedDict):
    name: str
    child: Optional[Node]


class Animal:
    pass


class Dog(Animal):
    pass


@runtime_checkable
class Closer(Protocol):
    def close(self) -> None: ...


class HasLen(Protocol):  # not runtime-checkable: knowingly accepted at run time
    def __len__(self) -> int: ...


class File:
    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return 0


class Weird:
    """An object whose repr, equality, hash and attributes all fail."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)


def _accepts(hint: object, value: object) -> bool:
    predicate = checker(hint)
    return predicate is None or predicate(value)


# -- every kind accepts its values and rejects obviously wrong ones ---------------------------------------

KINDS: list[tuple[object, list[object], list[object]]] = [
    (int, [0, True, -5], ["1", 1.0, None]),
    (float, [1.0, 2, False], ["1.0", 1j, None]),
    (complex, [1j, 1.0, 1], ["1", None]),
    (Optional[int], [None, 3], ["3", 3.5]),
    (int | str, [1, "a"], [1.0, None, b"a"]),
    (Literal[1], [1], [True, 1.0, 2, "1"]),
    (Literal[True], [True], [1, False, "True"]),
    (Literal["a", "b"], ["a", "b"], ["c", b"a", None]),
    (Literal[True, False], [True, False], [0, 1, None]),
    (Literal[None], [None], [0, False]),
    (UserId, [UserId(3), 3, True], ["3", 3.0, None]),
    (Score, [1.5, 2], ["1.5"]),
    (Movie, [{"title": "x", "year": 1999}, {"title": "x", "year": 1999, "extra": 1}], []),
    (Rated, [{"title": "x"}, {"title": "x", "stars": 4}], [{"stars": 4.0}, {"title": "x", "stars": "4"}]),
    (
        Node,
        [{"name": "a", "child": None}, {"name": "a", "child": {"name": "b", "child": None}}],
        [{"name": 1}],
    ),
    (Closer, [File()], [open, 3]),
    (Callable[[int], int], [abs, lambda x: x, int, File], [3, "f", None]),
    (Callable[..., object], [print, Dog], [Dog()]),
    (cabc.Callable[[], None], [File().close], [3]),
    (type[int], [int, bool], [3, float, "int"]),
    (type[float], [float, int, bool], [1.0, str]),
    (type[Animal], [Animal, Dog], [Dog(), int]),
    (typing.Type[Union[int, str]], [int, str], [float]),
    (type[Any], [int, Dog], [3]),
    (type, [int, Dog], [3]),
    (tuple[int, str], [(1, "a"), Point(1, "a")], [(1,), (1, 2), [1, "a"], (1, "a", 2)]),
    (typing.Tuple[int, ...], [(), (1, 2, 3)], [[1], ("a",), 1]),
    (tuple[()], [()], [(1,), []]),
    (typing.Tuple[()], [()], [(1,)]),
    (typing.Tuple, [(), (1, "a")], [[1]]),
    (typing.Type, [int], [1]),
    (typing.Callable, [len], [1]),
    (typing.List, [[1, "a"]], [(1,)]),
    (tuple[float, Literal["x"]], [(1, "x"), (1.5, "x")], [(1, "y"), ("1", "x")]),
    (Point, [Point(1, 2)], [(1, 2), {"x": 1, "y": 2}]),
    (list[int], [[], [1, 2]], [["a"], (1,), 3]),
    (list[float], [[1, 2.5]], [["a"]]),
    (dict[str, int], [{}, {"a": 1}], [{"a": "b"}, [("a", 1)]]),
    (Mapping[str, object], [{"a": Dog()}, {"title": "x", "year": 1}], [[("a", 1)]]),
    (Sequence[Tensor], [(torch.zeros(1),), [torch.zeros(1)]], [torch.zeros(1), [1]]),
    (Iterable[int], [(1, 2), [1], range(3)], [3, ["a"]]),
    (Sized, [[], "", File()], [3]),
    (SupportsInt, [3, 2.5], ["3"]),
    (IntBound, [3, True], ["3"]),
    (NumOrStr, [3, "a"], [3.5]),
    (Annotated[int, "meta"], [3], ["3"]),
    (
        LATENTS,
        [torch.zeros(2, 4, 8, 8)],
        [torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 8, 8, dtype=torch.int64)],
    ),
    (Int[np.ndarray, "n 2"], [np.zeros((3, 2), dtype=np.int64)], [np.zeros((3, 3), dtype=np.int64), [1, 2]]),
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


def test_typeddict_is_checked_by_keys_and_field_types() -> None:
    is_movie = checker(Movie)
    assert is_movie is not None
    assert is_movie({"title": "Heat", "year": 1995})
    assert not is_movie({"title": "Heat"})  # a required key missing
    assert not is_movie({"title": "Heat", "year": "1995"})  # a field of the wrong type
    assert not is_movie([("title", "Heat"), ("year", 1995)])
    assert not is_movie(None)


def test_protocols_runtime_checkable_by_isinstance_others_knowingly_accepted() -> None:
    is_closer = checker(Closer)
    assert is_closer is not None and is_closer(File()) and not is_closer(3) and not is_closer(open)
    assert checker(HasLen) is ACCEPT  # Python refuses isinstance on it; the static checker matched it


def test_documented_leniencies() -> None:
    is_ints = checker(tuple[int, ...])
    assert is_ints is not None and is_ints((1, "a")) and not is_ints(("a", 1))  # the first item sampled
    has_lens = checker(list[HasLen])  # beartype cannot check a plain Protocol: undecided, accepted
    assert has_lens is not None and has_lens([3])
    pair = checker(tuple[int, HasLen])
    assert pair is not None and pair((1, 2)) and not pair(("1", 2))  # the Protocol item is not checked
    assert checker(Union[int, HasLen]) is ACCEPT
    is_iterable = checker(Iterable[int])
    numbers = (n for n in range(3))
    assert is_iterable is not None and is_iterable(numbers) and list(numbers) == [0, 1, 2]  # not consumed


def test_a_deprecated_typing_alias_warns_no_caller() -> None:
    prog = df.compile(df.block(outputs="n")(_count))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # beartype's deprecation warning would fail the call
        assert prog(items=[1, 2], output="n") == 2
        assert "input 'items' must be list[int]" in _input_error(lambda: prog(items=["a"]))


def test_anything_and_nothing_to_check() -> None:
    for hint in (Any, object, T, Optional[Any], Annotated[Any, "x"], Union[int, Any]):
        assert checker(hint) is None, hint


def test_predicates_never_raise() -> None:
    odd: list[object] = [Weird(), torch.zeros(2, 2), np.zeros((2, 2)), float("nan"), iter([1]), type, None]
    hints: list[object] = [hint for hint, _, _ in KINDS] + [list[HasLen], dict[Closer, int], Hashable, "Fwd"]
    for hint in hints:
        predicate = checker(hint)
        for value in odd:
            assert predicate is None or isinstance(predicate(value), bool), (hint, value)


def test_plain_classes_keep_the_isinstance_fast_path() -> None:
    assert plain_class(int) is int and plain_class(Optional[float]) == (float, int, NoneType)
    assert plain_class(Movie) is None  # isinstance raises on a TypedDict
    assert plain_class(Closer) is None and plain_class(UserId) is None and plain_class(Literal[1]) is None


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


def _count(items: typing.List[int]) -> int:
    return len(items)


# -- bad values at the call boundary: df.InputError, showing type and shape --------------------------------


@df.block(outputs="title")
def film(movie: Movie) -> str:
    return movie["title"]


@df.block(outputs="done")
def shut(resource: Closer) -> bool:
    resource.close()
    return True


@df.block(outputs="uid")
def lookup(user: UserId) -> int:
    return user + 1


@df.block(outputs="mode_name")
def choose(mode: Literal["fast", "slow"]) -> str:
    return mode


@df.block(outputs="result")
def apply(fn: Callable[[int], int], n: int) -> int:
    return fn(n)


@df.block(outputs="made")
def make(kind: type[Animal]) -> Animal:
    return kind()


@df.block(outputs="total")
def size(pair: tuple[int, int]) -> int:
    return pair[0] + pair[1]


@df.block(outputs="mean")
def denoise(latents: LATENTS) -> float:
    return float(latents.mean())


@df.block(outputs="n")
def measure(thing: HasLen) -> int:
    return len(thing)


def _input_error(call: Callable[[], object]) -> str:
    with pytest.raises(df.InputError) as info:
        call()
    assert type(info.value) is df.InputError
    return str(info.value)


CASES: list[tuple[object, dict[str, object], dict[str, object], str]] = [
    (
        film,
        {"movie": {"title": "Heat", "year": 1995}},
        {"movie": {"title": "Heat"}},
        r"input 'movie' must be Movie .*got dict: \{'title': 'Heat'\}",
    ),
    (shut, {"resource": File()}, {"resource": 3}, r"input 'resource' must be Closer .*got int: 3"),
    (lookup, {"user": UserId(4)}, {"user": "4"}, r"input 'user' must be UserId .*got str: '4'"),
    (
        choose,
        {"mode": "fast"},
        {"mode": "medium"},
        r"input 'mode' must be Literal\['fast', 'slow'\] .*got str: 'medium'",
    ),
    (
        apply,
        {"fn": abs, "n": -2},
        {"fn": 3, "n": 1},
        r"input 'fn' must be Callable\[\[int\], int\] .*got int: 3",
    ),
    (make, {"kind": Dog}, {"kind": int}, r"input 'kind' must be type\[Animal\] .*got type: <class 'int'>"),
    (
        size,
        {"pair": (1, 2)},
        {"pair": (1, 2, 3)},
        r"input 'pair' must be tuple\[int, int\] .*got tuple: \(1, 2, 3\)",
    ),
]


@pytest.mark.parametrize(("blk", "good", "bad", "message"), CASES, ids=lambda x: getattr(x, "name", ""))
def test_compiled_programs_check_every_kind_of_port(
    blk: object, good: dict[str, object], bad: dict[str, object], message: str
) -> None:
    prog = df.compile(blk)
    prog(**good)  # a good value runs
    text = _input_error(lambda: prog(**bad))
    assert re.search(message, text), text
    assert text.startswith(f"{prog.name}: ")


def test_bad_input_is_refused_before_any_block_runs() -> None:
    seen: list[int] = []

    @df.block(outputs="seen")
    def record(user: UserId) -> int:
        seen.append(user)
        return user

    prog = df.compile(df.Sequential(record, film, name="p"))
    text = _input_error(lambda: prog(user=UserId(1), movie={"year": 1}))
    assert "input 'movie' must be Movie (read by p/film.movie)" in text
    assert seen == []
    assert prog(user=UserId(1), movie={"title": "t", "year": 1}) == {"seen": 1, "title": "t"}


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


def test_a_knowingly_accepted_port_costs_nothing() -> None:
    prog = df.compile(measure)
    assert prog(thing=[1, 2], output="n") == 2
    assert "thing" not in prog.source.split("try:")[0].split("_check_output(output)")[1]


def test_plain_class_ports_compile_to_an_inline_isinstance() -> None:
    prog = df.compile(apply)
    assert "if not _isinstance(n, int): _bad_input(" in prog.source
    assert "if not is_fn(fn): _bad_input(" in prog.source
    assert "input 'n' must be int (read by apply.n), got str: '1'" in _input_error(
        lambda: prog(fn=abs, n="1")
    )


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

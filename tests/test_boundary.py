"""The run-time check at the call boundary: each kind accepts its values, and bad values fail clearly.

The properties against the static relation draw tensors among their values: test_boundary_torch.py."""

# Typing forms are tested in every spelling (Optional, Union, Tuple), hence:
# ruff: noqa: UP006, UP007, UP045

from __future__ import annotations

import collections.abc as cabc
import re
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping, Sized
from typing import (
    Annotated,
    Any,
    Literal,
    NamedTuple,
    NewType,
    NotRequired,
    Optional,
    Protocol,
    SupportsInt,
    TypedDict,
    TypeVar,
    Union,
    runtime_checkable,
)

import numpy as np
import pytest
from jaxtyping import Int

import dfgraph as df
from dfgraph import types
from dfgraph.boundary import ACCEPT, checker, plain_class

NoneType = type(None)
UserId = NewType("UserId", int)
Score = NewType("Score", float)
IntBound = TypeVar("IntBound", bound=int)
NumOrStr = TypeVar("NumOrStr", int, str)
T = TypeVar("T")


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
    (Iterable[int], [(1, 2), [1], range(3)], [3, ["a"]]),
    (Sized, [[], "", File()], [3]),
    (SupportsInt, [3, 2.5], ["3"]),
    (IntBound, [3, True], ["3"]),
    (NumOrStr, [3, "a"], [3.5]),
    (Annotated[int, "meta"], [3], ["3"]),
    (Int[np.ndarray, "n 2"], [np.zeros((3, 2), dtype=np.int64)], [np.zeros((3, 3), dtype=np.int64), [1, 2]]),
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


def test_plain_classes_keep_the_isinstance_fast_path() -> None:
    assert plain_class(int) is int and plain_class(Optional[float]) == (float, int, NoneType)
    assert plain_class(Movie) is None  # isinstance raises on a TypedDict
    assert plain_class(Closer) is None and plain_class(UserId) is None and plain_class(Literal[1]) is None


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

"""The type relation: normalize, is_assignable, narrow, disjoint, checker, describe, item_type, union."""

# Typing forms are tested in every spelling (Optional, Union, List) and some string hints are
# deliberately unresolvable, hence:
# ruff: noqa: UP006, UP007, UP045

from __future__ import annotations

import collections
import collections.abc as cabc
import enum
import inspect
import typing
from functools import partial
from operator import getitem
from typing import Annotated, Any, ForwardRef, Literal, NewType, Optional, Protocol, TypeVar, Union, final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfgraph.boundary import checker, plain_class
from dfgraph.types import (
    STRICT_INVARIANCE,
    _function_sig,
    decide,
    describe,
    disjoint,
    is_assignable,
    item_type,
    narrow,
    normalize,
    union,
)

NoneType = type(None)
T = TypeVar("T")
IntBound = TypeVar("IntBound", bound=int)
UserId = NewType("UserId", int)


class Animal:
    pass


class Dog(Animal):
    pass


class Car:
    pass


@final
class Sealed:
    pass


class HasLen(Protocol):
    def __len__(self) -> int: ...


class IntList(list[int]):
    pass


class Weird:
    """An object whose repr, hash and attributes all fail."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)

    def __hash__(self) -> int:
        raise RuntimeError("no hash")


# -- normalize -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (inspect.Parameter.empty, (Any, None)),
        (None, (NoneType, None)),
        (int, (int, None)),
        (Any, (Any, None)),
        (list[int], (list[int], None)),
        (Annotated[int, "meta"], (int, None)),
        (Annotated[Optional[int], "meta"], (Optional[int], None)),
        ("Latents", (Any, "unresolved forward reference 'Latents'")),
        (ForwardRef("Unet"), (Any, "unresolved forward reference 'Unet'")),
        (1, (Any, "unsupported annotation 1")),
        ([int], (Any, "unsupported annotation [<class 'int'>]")),
    ],
)
def test_normalize(hint: object, expected: tuple[object, str | None]) -> None:
    assert normalize(hint) == expected


# -- is_assignable ---------------------------------------------------------------------------------------

ASSIGNABLE = [
    (Any, int),
    (int, Any),
    (str, object),
    (Dog, Animal),
    (bool, int),
    # the numeric tower, as mypy has it
    (int, float),
    (bool, float),
    (int, complex),
    (float, complex),
    # unions: every producer member must fit, one consumer member suffices
    (int, Optional[int]),
    (None, Optional[int]),
    (NoneType, int | None),
    (int | str, str | int | None),
    (Optional[int], Optional[float]),
    (int | bool, float),
    # generics
    (list[int], cabc.Sequence[int]),
    (list[bool], list[int]),
    (list[int], list[float]),
    (list[int], list),
    (list, list[int]),  # a bare generic means list[Any]
    (typing.List[int], list[int]),
    (dict[str, int], cabc.Mapping[str, float]),
    (list[Any], list[str]),
    (tuple[int, int], tuple[float, ...]),
    (tuple[int, ...], tuple[int, ...]),
    (tuple[int, str], tuple[int, str]),
    (type[bool], type[int]),
    (IntList, list[int]),
    (typing.Callable[[int], int], typing.Callable[..., int]),
    (Literal[1], float),
    (Literal[1], Literal[1, 2]),
    (Literal["a", 2], str | int),
    (UserId, int),
    # TypeVars stand for their bound, or for Any
    (T, int),
    (int, T),
    (IntBound, float),
    # gradual: what cannot be decided is compatible
    ("Latents", int),
    (int, ForwardRef("Unet")),
    (Annotated[int, []], float),
    (list[int], HasLen),  # protocols are structural, runtime-checkable or not
    (list[int], list.__class_getitem__("Nope")),  # list["Nope"]: an unresolved argument
]

NOT_ASSIGNABLE = [
    (object, int),
    (Animal, Dog),
    (str, int),
    (float, int),
    (complex, float),
    (Optional[int], int),
    (int | str, int),
    (list[int], list[str]),
    (cabc.Sequence[int], list[int]),
    (list[int], dict[str, int]),
    (dict[str, int], cabc.Mapping[str, str]),
    (tuple[int, ...], tuple[int, int]),
    (tuple[int, str], tuple[int]),
    (tuple[str, ...], tuple[int, ...]),
    (IntList, list[str]),
    (typing.Callable[[], str], typing.Callable[[], int]),
    (Literal["a"], int),
    (Literal[3], Literal[1, 2]),
    (int, UserId),
    (IntBound, str),
    (Annotated[str, []], int),
    (int, HasLen),  # int has no __len__ (mypy agrees; this pair used to be accepted as undecidable)
]


@pytest.mark.parametrize(("producer", "consumer"), ASSIGNABLE)
def test_assignable(producer: object, consumer: object) -> None:
    assert is_assignable(producer, consumer)


@pytest.mark.parametrize(("producer", "consumer"), NOT_ASSIGNABLE)
def test_not_assignable(producer: object, consumer: object) -> None:
    assert not is_assignable(producer, consumer)


# -- narrow ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ([], Any),
        ([Any], Any),
        ([Any, int], int),
        ([int, Optional[int]], int),
        ([Optional[int], int], int),
        ([bool, int], bool),
        ([int, bool, object], bool),
        ([float, int], int),
        ([list, list[int]], list[int]),
        ([Animal, Dog, Optional[Animal]], Dog),
        (["Unresolved", str], str),
        ([int, str], None),
        ([Dog, Car], None),
        ([Optional[int], Optional[str]], None),  # None satisfies both, but no single hint is the answer
    ],
)
def test_narrow(hints: list[object], expected: object) -> None:
    assert narrow(hints) == expected


# -- disjoint --------------------------------------------------------------------------------------------

DISJOINT = [
    (int, str),
    (str, bytes),
    (list, dict),
    (bool, str),  # bool cannot be subclassed
    (NoneType, int),
    (Sealed, Animal),  # @final
    (Optional[int], str),
    (int | str, bytes | NoneType),
    (list[int], dict[str, int]),
]

NOT_DISJOINT = [
    (int, int),
    (Any, int),
    (object, int),
    (bool, int),
    (int, float),  # the numeric tower: 1 is both
    (int, complex),
    (Dog, Animal),
    (Animal, Car),  # class X(Animal, Car) can exist
    (Optional[int], Optional[str]),  # None is both
    (int | str, str | bytes),
    (list[int], list[str]),  # [] is both
    (cabc.Sequence, int),  # an ABC can register anything
    (HasLen, int),
    (Literal[1], str),
    (T, int),
    (UserId, str),
    (typing.Callable[[int], int], int),
    ("Unresolved", int),
]


@pytest.mark.parametrize(("a", "b"), DISJOINT)
def test_disjoint(a: object, b: object) -> None:
    assert disjoint(a, b) and disjoint(b, a)


@pytest.mark.parametrize(("a", "b"), NOT_DISJOINT)
def test_not_disjoint(a: object, b: object) -> None:
    assert not disjoint(a, b) and not disjoint(b, a)


def test_disjoint_runs_no_user_code_to_probe_classes() -> None:
    created: list[type] = []

    class Registered:
        def __init_subclass__(cls) -> None:
            created.append(cls)

    class Meta(type):
        def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> Meta:
            created.append(object)
            return super().__new__(mcs, name, bases, ns)

    class WithMeta(metaclass=Meta):
        pass

    created.clear()
    assert not disjoint(Registered, Animal)  # not provable without running the hook
    assert not disjoint(WithMeta, Animal)
    assert created == []


# -- checker and plain_class -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (int, int),
        (bool, bool),
        (float, (float, int)),
        (complex, (complex, float, int)),
        (Optional[int], (int, NoneType)),
        (Optional[float], (float, int, NoneType)),
        (Annotated[str, "x"], str),
        (Any, None),
        (object, None),
        (list[int], None),
        (Literal[1], None),
        (HasLen, None),
        (Optional[list[int]], None),
    ],
)
def test_plain_class(hint: object, expected: object) -> None:
    assert plain_class(hint) == expected


def test_checker() -> None:
    assert checker(Any) is None and checker(object) is None and checker(inspect.Parameter.empty) is None
    is_int, is_float, is_complex = checker(int), checker(float), checker(complex)
    assert is_int is not None and is_float is not None and is_complex is not None
    assert is_int(1) and is_int(True) and not is_int("1") and not is_int(1.0)
    assert is_float(1.0) and is_float(1) and not is_float("1.0")
    assert is_complex(1j) and is_complex(1.0) and is_complex(1) and not is_complex("1")
    is_opt = checker(Optional[int])
    assert is_opt is not None and is_opt(None) and is_opt(3) and not is_opt("3")
    is_list = checker(list[int])
    assert is_list is not None and is_list([1, 2]) and not is_list(["a"]) and not is_list(3)
    is_lit = checker(Literal["a", "b"])
    assert is_lit is not None and is_lit("a") and not is_lit("c")


def test_checker_passes_when_beartype_cannot_check() -> None:
    has_len = checker(HasLen)  # beartype raises on a protocol that is not runtime-checkable
    assert has_len is not None and has_len(3)


# -- describe, item_type, union --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "text"),
    [
        (int, "int"),
        (None, "None"),
        (NoneType, "None"),
        (Any, "Any"),
        (inspect.Parameter.empty, "Any"),
        (list[int], "list[int]"),
        (typing.List[int], "list[int]"),
        (typing.List, "list"),
        (Optional[int], "int | None"),
        (Union[int, str], "int | str"),
        (dict[str, list[int]], "dict[str, list[int]]"),
        (tuple[int, ...], "tuple[int, ...]"),
        (typing.Callable[[int, str], bool], "Callable[[int, str], bool]"),
        (cabc.Sequence[float], "Sequence[float]"),
        (Literal["a", 1], "Literal['a', 1]"),
        (type[int], "type[int]"),
        (Annotated[int, "meta"], "int"),
        (Dog, "Dog"),
        (T, "T"),
        (UserId, "UserId"),
        ("Latents", "Latents"),
        (ForwardRef("Unet"), "Unet"),
        (typing.Final, "Final"),
    ],
)
def test_describe(hint: object, text: str) -> None:
    assert describe(hint) == text


def test_describe_of_local_classes_and_broken_objects() -> None:
    class Local:
        pass

    assert describe(Local) == "Local"
    assert describe(Weird()) == "<Weird object>"


@pytest.mark.parametrize(
    ("hint", "item"),
    [
        (list[int], int),
        (cabc.Sequence[str], str),
        (cabc.Iterable[float], float),
        (cabc.Iterator[bytes], bytes),
        (set[int], int),
        (tuple[int, ...], int),
        (tuple[int, str], int | str),
        (tuple[int, bool], int),
        (dict[str, int], str),
        (cabc.Generator[int, None, None], int),
        (Optional[list[int]], int),
        (str, str),
        (bytes, int),
        (range, int),
        (list, Any),
        (int, Any),
        (Any, Any),
        ("Unresolved", Any),
        (Literal[1], Any),
    ],
)
def test_item_type(hint: object, item: object) -> None:
    assert item_type(hint) == item


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (int, int, int),
        (int, float, float),
        (float, int, float),
        (bool, int, int),
        (Dog, Animal, Animal),
        (int, Optional[int], Optional[int]),
        (int, str, int | str),
        (Any, int, Any),
        (int, Any, Any),
        (list[int], list, list),
    ],
)
def test_union(a: object, b: object, expected: object) -> None:
    assert union(a, b) == expected


# -- properties ------------------------------------------------------------------------------------------


def _compose(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Hints built from smaller hints: list[h], Optional[h], tuple[h, ...], Union[a, b], dict[a, b]..."""
    pairs = st.tuples(inner, inner)
    return st.one_of(
        *(inner.map(partial(getitem, generic)) for generic in (list, set, cabc.Sequence, Optional)),
        inner.map(lambda h: tuple.__class_getitem__((h, ...))),
        *(pairs.map(partial(getitem, generic)) for generic in (Union, dict, tuple)),
    )


def test_union_with_any_needs_no_runtime_check() -> None:
    hint = Union[int, Any]  # Any is a class in Python 3.11: isinstance(v, (int, Any)) would raise
    assert plain_class(hint) is None
    predicate = checker(hint)
    assert predicate is None or predicate("anything") is True


# -- the issue's examples against mypy (both directions; mypy's verdicts checked by hand) ------------------

U = TypeVar("U")
T_co = TypeVar("T_co", covariant=True)
IntOrStr = TypeVar("IntOrStr", int, str)


class Rev(typing.Generic[T, U]):
    pass


class RevSub(Rev[U, T], typing.Generic[T, U]):  # RevSub[A, B] is a Rev[B, A]
    pass


class Point(typing.NamedTuple):
    x: int
    y: int


class Movie(typing.TypedDict):
    title: str
    year: int


class MovieRated(typing.TypedDict):
    title: str
    year: int
    rating: float


class MovieMaybeYear(typing.TypedDict):
    title: str
    year: typing.NotRequired[int]


@typing.runtime_checkable
class Greeter(Protocol):
    def greet(self, name: str) -> str: ...


class English:
    def greet(self, name: str) -> str:
        return name


class Mute:
    def greet(self) -> str:  # the right name, the wrong signature
        return ""


class Counting:
    def greet(self, name: str) -> int:
        return 0


class HasX(Protocol):
    x: int


class WithX:
    x: int = 0


class WithBoolX:
    x: bool = False


class HasReadX(Protocol):
    @property
    def x(self) -> float: ...


class WithStrX:
    x: str = ""


class Getter(Protocol[T_co]):
    def get(self) -> T_co: ...


class IntGet:
    def get(self) -> int:
        return 0


class Made:
    def __init__(self, size: int) -> None:
        self.size = size


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Handler:
    def __call__(self, x: int) -> str:
        return ""


class Callback(Protocol):
    def __call__(self, x: int) -> object: ...


class Configurable(Protocol):
    def run(self, x: int, *, fast: bool = ...) -> None: ...


class KwRunner:
    def run(self, x: int, *, fast: bool = False, label: str = "") -> None: ...


class StrictRunner:
    def run(self, x: int, *, fast: bool, label: str) -> None: ...


Callable = cabc.Callable
AdminId = NewType("AdminId", UserId)

# (producer, consumer, mypy accepts producer -> consumer, mypy accepts consumer -> producer)
MYPY_PAIRS = [
    # the issue's false errors
    (tuple[int, int], cabc.Iterable[int], True, False),
    (Point, tuple[int, int], True, False),
    (Point, cabc.Sequence[int], True, False),
    (Movie, cabc.Mapping[str, object], True, False),
    (Callable[[], int], Callable[[], float], True, False),
    (Callable[..., int], Callable[[int], int], True, True),
    (UserId, float, True, False),
    (bool, Literal[True, False], True, True),
    (RevSub[int, str], Rev[str, int], True, False),
    # the issue's missed errors
    (Callable[[], Animal], Callable[[bytes], Animal], False, False),
    (Literal[1], Literal[True], False, False),
    (tuple[()], tuple[int], False, False),
    (typing.Tuple, tuple[int], True, True),  # a bare tuple is tuple[Any, ...], not tuple[()]
    (Mute, Greeter, False, False),
    (RevSub[int, str], Rev[int, str], False, False),
    # and around them
    (tuple[()], tuple[int, ...], True, False),
    (tuple[()], cabc.Sequence[str], True, False),
    (tuple[int, str], cabc.Sequence[int], False, False),
    (Point, tuple[int, ...], True, False),
    (Point, tuple[int], False, False),
    (Movie, dict[str, object], False, False),
    (Movie, cabc.Mapping[str, int], False, False),
    (MovieRated, Movie, True, False),
    (MovieMaybeYear, Movie, False, False),
    (English, Greeter, True, False),
    (Counting, Greeter, False, False),
    (WithX, HasX, True, False),
    (WithStrX, HasX, False, False),
    (IntGet, Getter[float], True, False),
    (IntGet, Getter[str], False, False),
    (type[Made], Callable[[int], Made], True, False),
    (type[Made], Callable[[], Made], True, False),  # type[X] may be a subclass: mypy checks no arguments
    (type[Made], Callable[[], Animal], False, False),
    (type[Dog], type[Animal], True, False),
    (AdminId, UserId, True, False),
    (UserId, Literal[1], False, False),
    (Color, Literal[Color.RED, Color.GREEN], True, True),
    (Literal[True], int, True, False),
    (IntOrStr, int | str, True, False),
    (int | str, IntOrStr, False, True),  # a constrained TypeVar binds to one constraint, not the union
    (bytes, cabc.Sequence[int], True, False),
    (str, cabc.Sequence[str], True, False),
    (collections.Counter[str], cabc.Mapping[str, int], True, False),
    (Handler, Callable[[int], str], True, False),  # a class with __call__ is a callable
    (Handler, Callable[[str], str], False, False),
    (Callable[[int], object], Callback, False, True),  # Callback may be called as cb(x=1): names matter
    (Callable[[int], object], Callable[[bool], object], True, False),
    (KwRunner, Configurable, True, False),
    (StrictRunner, Configurable, False, False),  # a required keyword the protocol never passes
]


@pytest.mark.parametrize(("producer", "consumer", "forward", "backward"), MYPY_PAIRS)
def test_agrees_with_mypy_on_the_issue_examples(
    producer: object, consumer: object, forward: bool, backward: bool
) -> None:
    assert is_assignable(producer, consumer) is forward
    assert is_assignable(consumer, producer) is backward


def test_invariant_parameters_are_read_covariantly_unless_strict() -> None:
    # The documented difference: list[bool] -> list[int] passes, though mypy rejects it.
    assert is_assignable(list[bool], list[int]) and is_assignable(dict[str, bool], dict[str, int])
    assert decide(list[bool], list[int], STRICT_INVARIANCE) is False
    assert decide(list[int], list[int], STRICT_INVARIANCE) is True
    assert decide(MovieRated, Movie, STRICT_INVARIANCE) is True
    # Settable protocol attributes are invariant to mypy; a read-only property is covariant.
    assert is_assignable(WithBoolX, HasX) and decide(WithBoolX, HasX, STRICT_INVARIANCE) is False
    assert decide(WithBoolX, HasReadX, STRICT_INVARIANCE) is True
    # Contravariant parameters are honoured in every mode.
    assert not is_assignable(Callable[[bool], None], Callable[[int], None])


def test_describe_the_empty_tuple() -> None:
    assert describe(tuple[()]) == "tuple[()]" and describe(typing.Tuple) == "tuple"


def test_undecidable_pairs_are_accepted_and_reported_as_undecided() -> None:
    assert decide("Latents", int) is None and is_assignable("Latents", int)
    assert decide(list[int], HasLen) is None  # a builtin's methods have no readable signature
    assert decide(int, HasLen) is False  # but a missing method is an error


def test_signatures_are_read_once() -> None:
    assert is_assignable(English, Greeter)
    before = _function_sig.cache_info().misses
    for _ in range(100):
        assert is_assignable(English, Greeter) and not is_assignable(Counting, Greeter)
    assert _function_sig.cache_info().misses == before


SIMPLE: list[object] = [
    int,
    bool,
    float,
    str,
    Animal,
    Dog,
    Point,
    Movie,
    MovieRated,
    English,
    Greeter,
    UserId,
]
SIMPLE += [Literal[1], Literal[True], tuple[()], IntGet, WithX, HasX]
RICH = st.recursive(
    st.sampled_from(SIMPLE),
    lambda inner: st.one_of(
        _compose(inner),
        inner.map(lambda h: Callable[[h], None]),
        st.tuples(inner, inner).map(lambda ab: Callable[[ab[0]], ab[1]]),
        inner.map(partial(getitem, Getter)),
    ),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None)
@given(RICH, RICH)
def test_strict_mode_only_rejects_more(a: object, b: object) -> None:
    lenient, strict = decide(a, b), decide(a, b, STRICT_INVARIANCE)
    assert lenient in (True, False, None) and strict in (True, False, None)
    if lenient is False:
        assert strict is False
    assert decide(a, a, STRICT_INVARIANCE) is not False
    assert is_assignable(a, Union[a, b]) and is_assignable(Union[a, b] if is_assignable(b, a) else a, a)


@settings(max_examples=200, deadline=None)
@given(RICH, RICH, RICH)
def test_assignability_is_transitive_on_decided_pairs(a: object, b: object, c: object) -> None:
    if decide(a, b) is True and decide(b, c) is True:
        assert is_assignable(a, c)

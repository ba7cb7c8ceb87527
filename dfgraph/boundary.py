"""The run-time check at the call boundary: one fast predicate per input annotation; how a bad value shows.

`checker(hint)` turns every annotation the static checker accepts into a predicate that accepts every value
whose static type is assignable to the hint (it may accept more, never less: a predicate that cannot decide
accepts). Plain classes get a bare isinstance, which the generated code inlines; other forms are compiled
once here, and beartype (with the numeric tower) checks what remains — generic containers, one item sampled.
"""

from __future__ import annotations

import collections.abc
import contextlib
import reprlib
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NoReturn, Protocol, TypeVar, Union, get_args, get_origin

from beartype import BeartypeConf
from beartype.door import is_bearable
from beartype.roar import BeartypeDecorHintPep585DeprecationWarning

from dfgraph import types
from dfgraph.errors import InputError
from dfgraph.types import cached, is_union

__all__ = ["ACCEPT", "checker", "plain_class", "show_value"]

_Predicate = Callable[[object], bool]
# Holding the special form as a value: mypy treats collections.abc.Callable as a type, not an object.
_CALLABLE: object = collections.abc.Callable
_NONE_TYPE = type(None)
# The numeric tower as mypy has it: a float port accepts an int, a list[float] port a list of ints.
_TOWER = BeartypeConf(is_pep484_tower=True)


def _norm(hint: object) -> object:
    """The hint the static checker uses (Annotated stripped, the unsupported as Any)."""
    return types.normalize(hint)[0]


def _typevar_bound(tv: TypeVar) -> object:
    """What an unbound TypeVar stands for: its bound, its constraints, or Any."""
    if tv.__bound__ is not None:
        return tv.__bound__
    if tv.__constraints__:
        return Union[tv.__constraints__]  # noqa: UP007  # built from a tuple at run time
    return Any


def ACCEPT(value: object) -> bool:  # noqa: N802  # a named constant predicate, compared by identity
    """The predicate of a hint that is knowingly accepted at run time (the generated code skips it)."""
    return True


def _tower(cls: type) -> tuple[type, ...]:
    """The classes a value of cls may be under the numeric tower."""
    if cls is float:
        return (float, int)
    if cls is complex:
        return (complex, float, int)
    return (cls,)


def _is_protocol(cls: type) -> bool:
    """True for typing.Protocol classes, whose isinstance either raises or is structural."""
    return bool(getattr(cls, "_is_protocol", False))


def _is_typeddict(hint: object) -> bool:
    """True for TypedDict classes (typing's or typing_extensions'), on which isinstance raises."""
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__required_keys__")


@cached
def plain_class(hint: object) -> type | tuple[type, ...] | None:
    """The class(es) for which isinstance alone is an exact check of the hint, else None (also for Any)."""
    try:
        hint = _norm(hint)
        if hint is Any or hint is object:
            return None
        if types.is_array(hint):
            return hint  # type: ignore[return-value]  # jaxtyping's isinstance checks dtype and fixed dims
        members = get_args(hint) if is_union(hint) else (hint,)
        classes: list[type] = []
        for member in map(_norm, members):
            if member is Any or member is object:
                return None  # the union accepts anything (and Any is a class in 3.11: no isinstance)
            if not isinstance(member, type) or types.is_array(member) or _is_protocol(member):
                return None
            if _is_typeddict(member):
                return None
            classes.extend(cls for cls in _tower(member) if cls not in classes)
        return classes[0] if len(classes) == 1 else tuple(classes)
    except Exception:
        return None


def _guarded(test: _Predicate) -> _Predicate:
    """The predicate, counting any exception it raises as passing (undecidable values are accepted)."""

    def check(value: object) -> bool:
        try:
            return bool(test(value))
        except Exception:
            return True

    return check


def _bearable(hint: object) -> _Predicate:
    """beartype's O(1) check (one item of a container sampled), numeric tower on."""
    with warnings.catch_warnings():
        # beartype warns once per hint, when it first builds the check, that typing.List & co. are
        # deprecated; built here at compile time, the program's calls stay silent.
        warnings.simplefilter("ignore", BeartypeDecorHintPep585DeprecationWarning)
        with contextlib.suppress(Exception):
            is_bearable(None, hint, conf=_TOWER)  # type: ignore[arg-type]
    return _guarded(lambda value: is_bearable(value, hint, conf=_TOWER))  # type: ignore[arg-type]


def _literal(values: tuple[object, ...]) -> _Predicate:
    """Equal to one of the values AND of its exact type: True is no Literal[1], 1.0 no Literal[1]."""
    classes = frozenset(type(v) for v in values)
    try:
        allowed = frozenset((type(v), v) for v in values)
    except TypeError:  # an unhashable literal (not valid PEP 586, but accepted by typing): compare in turn
        pairs = tuple((type(v), v) for v in values)
        return lambda value: any(type(value) is cls and value == v for cls, v in pairs)
    # Literal values are ints, strs, bytes, bools, None and enum members: a value of one of their exact
    # classes hashes, so one set lookup decides.
    return lambda value: type(value) in classes and (type(value), value) in allowed


_QUALIFIERS = frozenset({"Required", "NotRequired", "ReadOnly"})


def _qualifier(ann: object) -> str | None:
    """'Required', 'NotRequired' or 'ReadOnly' for a TypedDict field so qualified, else None."""
    name = getattr(get_origin(ann), "_name", None)
    return name if name in _QUALIFIERS else None


def _unqualified(ann: object) -> object:
    """A TypedDict field's type without Required/NotRequired/ReadOnly around it."""
    while _qualifier(ann) is not None:
        ann = get_args(ann)[0]
    return ann


def _typeddict(hint: type, seen: frozenset[int]) -> _Predicate:
    """A mapping with the required keys; each key present is checked against its field type."""
    seen = seen | {id(hint)}  # a recursive TypedDict checks its own type one level deep, then accepts
    required = set(getattr(hint, "__required_keys__", ()))
    try:
        fields = typing.get_type_hints(hint, include_extras=True)
    except Exception:  # an unresolvable forward reference in a field: check the keys alone
        fields = {}
    for key, ann in fields.items():
        # Under `from __future__ import annotations` Python cannot see NotRequired[...] in a string and
        # counts the key as required; the evaluated annotation says what mypy reads.
        qualifier = _qualifier(ann)
        if qualifier == "NotRequired":
            required.discard(key)
        elif qualifier == "Required":
            required.add(key)
    required_keys = frozenset(required)
    fields = {key: _unqualified(ann) for key, ann in fields.items()}
    plain = [(key, cls) for key, ann in fields.items() if (cls := plain_class(ann)) is not None]
    done = {key for key, _ in plain}
    other = [
        (key, t)
        for key, ann in fields.items()
        if key not in done and (t := _compile(ann, seen)) not in (None, ACCEPT)
    ]

    def check(value: object) -> bool:
        # A TypedDict value is a dict at run time; any other Mapping is accepted the same way.
        if type(value) is not dict and not isinstance(value, Mapping):
            return False
        if not value.keys() >= required_keys:
            return False
        for key, cls in plain:
            if key in value and not isinstance(value[key], cls):
                return False
        for key, test in other:  # noqa: SIM110  # a loop: no generator made per call
            if key in value and not test(value[key]):
                return False
        return True

    return check


_PROTOCOL_CACHE = 256


def _protocol(hint: type) -> _Predicate:
    """isinstance for a runtime-checkable Protocol; any other Protocol is knowingly accepted (ACCEPT)."""
    if not getattr(hint, "_is_runtime_protocol", False):
        return ACCEPT  # Python itself refuses isinstance here; the static checker already matched it
    # A protocol isinstance costs tens of microseconds; a class that provides the members is remembered
    # (issubclass depends on the class alone), so a port called with one class pays once.
    passing: set[type] = set()

    def check(value: object) -> bool:
        cls = type(value)
        if cls in passing:
            return True
        if not isinstance(value, hint):
            return False
        try:
            if len(passing) < _PROTOCOL_CACHE and issubclass(cls, hint):
                passing.add(cls)
        except TypeError:  # a protocol with data members has no issubclass: nothing is remembered
            pass
        return True

    return check


def _subclass_of(target: object) -> _Predicate | None:
    """The check of type[target]: a class that is a subclass (numeric tower included)."""
    target = _norm(target)
    if isinstance(target, TypeVar):
        target = _typevar_bound(target)
    if target is Any or target is object:
        return lambda value: isinstance(value, type)
    members = get_args(target) if is_union(target) else (target,)
    classes: list[type] = []
    for member in map(_norm, members):
        origin = member if isinstance(member, type) else get_origin(member)
        if member is Any or member is object or not isinstance(origin, type) or _is_protocol(origin):
            return lambda value: isinstance(value, type)  # the class itself is all that can be checked
        classes.extend(_tower(origin))
    bases = tuple(classes)
    return lambda value: isinstance(value, type) and issubclass(value, bases)


def _tuple(args: tuple[Any, ...], seen: frozenset[int]) -> _Predicate:
    """tuple[X, ...] (the first item sampled, as beartype does) or tuple[X, Y] (length and every item)."""
    if len(args) == 2 and args[1] is Ellipsis:
        item = _compile(args[0], seen)
        if item is None or item is ACCEPT:
            return lambda value: isinstance(value, tuple)
        return lambda value: isinstance(value, tuple) and (not value or item(value[0]))
    size = len(args)
    plain = [(k, cls) for k, arg in enumerate(args) if (cls := plain_class(arg)) is not None]
    done = {k for k, _ in plain}
    other = [
        (k, t)
        for k, arg in enumerate(args)
        if k not in done and (t := _compile(arg, seen)) not in (None, ACCEPT)
    ]

    def check(value: object) -> bool:
        if not isinstance(value, tuple) or len(value) != size:
            return False
        for k, cls in plain:  # most items are plain classes: isinstance without a call of ours
            if not isinstance(value[k], cls):
                return False
        for k, test in other:  # noqa: SIM110  # a loop: no generator made per call
            if not test(value[k]):
                return False
        return True

    return check


def _union(members: tuple[Any, ...], seen: frozenset[int]) -> _Predicate | None:
    """One member's check passes; None when a member accepts anything."""
    checks = []
    for member in members:
        check = _compile(member, seen)
        if check is None or check is ACCEPT:
            return check  # this member lets every value through, so the union does
        checks.append(check)
    return lambda value: any(test(value) for test in checks)


def _compile(hint: object, seen: frozenset[int] = frozenset()) -> _Predicate | None:
    """An unguarded predicate for the hint; None when every value passes, ACCEPT when knowingly accepted."""
    hint = _norm(hint)
    if hint is Any or hint is object:
        return None
    if isinstance(hint, TypeVar):
        return _compile(_typevar_bound(hint), seen)
    classes = plain_class(hint)
    if classes is not None:
        return lambda value: isinstance(value, classes)
    if is_union(hint):
        return _union(get_args(hint), seen)
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # NewType: a value is its base at run time
        return _compile(supertype, seen)
    if _is_typeddict(hint):
        return None if id(hint) in seen else _typeddict(hint, seen)  # type: ignore[arg-type]
    if isinstance(hint, type) and _is_protocol(hint):
        return _protocol(hint)
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return _literal(args)
    if origin is _CALLABLE:
        return callable
    if origin is type:
        return _subclass_of(args[0]) if args else (lambda value: isinstance(value, type))
    if origin is tuple:
        # typing.Tuple alone means tuple[Any, ...]; only tuple[()] has no arguments and a fixed length
        return (lambda value: isinstance(value, tuple)) if hint is typing.Tuple else _tuple(args, seen)  # noqa: UP006  # the alias itself
    return _bearable(hint)


@cached
def checker(hint: object) -> _Predicate | None:
    """A fast run-time predicate for the hint, or None when there is nothing to check; it never raises."""
    try:
        hint = _norm(hint)
        if hint is Any or hint is object:
            return None
        classes = plain_class(hint)
        if classes is not None:
            return lambda value: isinstance(value, classes)
        compiled = _compile(hint)
        return compiled if compiled is None or compiled is ACCEPT else _guarded(compiled)
    except Exception:  # an annotation we cannot compile is accepted, as the static checker does
        return ACCEPT


def _array_text(value: object) -> str | None:
    """Tensor(shape=(1, 4, 8, 8), dtype=torch.float32) for an array-like value, else None."""
    if isinstance(value, type):
        return None
    try:
        shape, dtype = value.shape, value.dtype  # type: ignore[attr-defined]
        return f"{type(value).__name__}(shape={tuple(shape)}, dtype={dtype})"
    except Exception:
        return None


class _ValueRepr(reprlib.Repr):
    """A bounded repr that shows arrays (also inside containers) by shape and dtype, never their data."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4

    def repr1(self, x: Any, level: int) -> str:
        """Arrays by their summary; everything else as reprlib does it."""
        text = _array_text(x)
        if text is not None:
            return text
        try:
            return super().repr1(x, level)
        except Exception:
            return f"<{type(x).__name__} object>"


_VALUE_REPR = _ValueRepr()
_MAX_SHOWN = 120


def show_value(value: object) -> str:
    """The value's type and a short view of it: shape and dtype for arrays, a truncated repr otherwise."""
    text = _array_text(value)
    if text is not None:
        return text
    shown = _VALUE_REPR.repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return f"{type(value).__name__}: {shown}"


class Described(Protocol):
    """A boundary check as an error message names it: the input, the hint it failed, who reads it."""

    @property
    def name(self) -> str:
        """The input's name."""

    @property
    def hint(self) -> Any:
        """The hint its value failed."""

    @property
    def readers(self) -> tuple[str, ...]:
        """The ports that read it ('path.port')."""


def bad_input_factory(name: str, checks: Sequence[Described]) -> Callable[[int, Any], NoReturn]:
    """The `_bad_input(k, value)` of a program (and its interpreter): raises boundary check k's InputError."""

    def _bad_input(k: int, value: Any) -> NoReturn:
        """Raise the InputError of a value that failed boundary check k: name, expected type, what came."""
        check = checks[k]
        readers = ", ".join(check.readers)
        raise InputError(
            f"{name}: input {check.name!r} must be {types.describe(check.hint)} (read by {readers}), "
            f"got {show_value(value)}"
        )

    return _bad_input

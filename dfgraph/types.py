"""The type relation of the checker: normalizing annotations, assignability, narrowing and disjointness.

Every function here is total: an annotation the checker does not understand degrades to ``Any`` (or to
"compatible"), never to an exception, because a false error is worse than a missed one in a gradual checker.
Results are cached by the hint objects; unhashable hints are computed without the cache.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ForwardRef, Literal, ParamSpec, TypeVar, Union, get_args, get_origin

from beartype.door import TypeHint, is_subhint

__all__ = [
    "describe",
    "disjoint",
    "is_array",
    "is_assignable",
    "item_type",
    "narrow",
    "normalize",
    "union",
]

_CACHE_SIZE = 1 << 16
_P = ParamSpec("_P")
_R = TypeVar("_R")
# Held as a plain object: mypy treats collections.abc.Callable as a special form, not a value.
_CALLABLE: object = collections.abc.Callable
_NONE_TYPE = type(None)
_UNION_ORIGINS: tuple[object, ...] = (Union, types.UnionType)
# CPython's Py_TPFLAGS_BASETYPE: a class without it (bool, NoneType) cannot be subclassed.
_TPFLAGS_BASETYPE = 1 << 10
# typing.Generic's subclass hook has no side effects, so probing generic classes is safe.
_GENERIC_HOOK = getattr(typing.Generic.__init_subclass__, "__func__", None)


def _cached(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Memoize fn by its (hint) arguments, computing directly when one of them is unhashable."""
    memo = typing.cast("Callable[_P, _R]", functools.lru_cache(maxsize=_CACHE_SIZE)(fn))

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return memo(*args, **kwargs)
        except Exception:  # an unhashable hint such as Annotated[int, []]; fn itself never raises
            return fn(*args, **kwargs)

    return wrapper


def _safe_repr(hint: object) -> str:
    """repr(hint), or a placeholder when its __repr__ is broken."""
    try:
        return repr(hint)
    except Exception:
        return f"<{type(hint).__name__} object>"


def is_array(hint: object) -> bool:
    """True for a jaxtyping array annotation such as Float[Tensor, 'b 4 h w']."""
    try:
        return isinstance(hint, type) and hasattr(hint, "dims") and hasattr(hint, "array_type")
    except Exception:  # a metaclass whose __getattr__ raises something other than AttributeError
        return False


def _is_union(hint: object) -> bool:
    """True for typing.Union / Optional and PEP 604 unions."""
    return get_origin(hint) in _UNION_ORIGINS


@_cached
def normalize(hint: object) -> tuple[object, str | None]:
    """Return the hint the checker uses, and why it degraded to Any (None when it did not)."""
    try:
        if hint is inspect.Parameter.empty or hint is Any:
            return Any, None
        if hint is None:
            return _NONE_TYPE, None
        if isinstance(hint, str):
            return Any, f"unresolved forward reference {hint!r}"
        if isinstance(hint, ForwardRef):
            return Any, f"unresolved forward reference {hint.__forward_arg__!r}"
        if get_origin(hint) is Annotated:
            return normalize(get_args(hint)[0])
        if is_array(hint):
            return hint, None
        TypeHint(hint)  # beartype rejects what is not a type hint
        return hint, None
    except Exception:
        return Any, f"unsupported annotation {_safe_repr(hint)}"


def _norm(hint: object) -> object:
    """The normalized hint alone."""
    return normalize(hint)[0]


def _typevar_bound(tv: TypeVar) -> object:
    """What a TypeVar stands for when nothing binds it: its bound, its constraints, or Any."""
    if tv.__bound__ is not None:
        return tv.__bound__
    if tv.__constraints__:
        return Union[tv.__constraints__]  # noqa: UP007  # built from a tuple at run time
    return Any


def _origin_args(hint: object) -> tuple[type | None, tuple[Any, ...]]:
    """The runtime class behind a hint and its type arguments: list[int] -> (list, (int,))."""
    if isinstance(hint, type):
        return hint, ()
    origin = get_origin(hint)
    if isinstance(origin, type):
        return origin, get_args(hint)
    return None, ()


def _class_assignable(producer: type, consumer: type) -> bool:
    """issubclass plus the PEP 484 numeric tower (int -> float -> complex), as mypy has it."""
    if issubclass(producer, consumer):
        return True
    if consumer is float:
        return issubclass(producer, int)
    if consumer is complex:
        return issubclass(producer, (int, float))
    return False


def _tuple_assignable(p_args: tuple[Any, ...], c_args: tuple[Any, ...]) -> bool:
    """tuple[...] against tuple[...], with tuple[X, ...] meaning any length of X."""
    p_var = len(p_args) == 2 and p_args[1] is Ellipsis
    c_var = len(c_args) == 2 and c_args[1] is Ellipsis
    if c_var:
        items = p_args[:1] if p_var else p_args
        return all(is_assignable(item, c_args[0]) for item in items)
    if p_var:
        return False  # a tuple of unknown length does not fit a fixed-length one
    return len(p_args) == len(c_args) and all(map(is_assignable, p_args, c_args))


_KNOWN_ITEMS: dict[type, type] = {str: str, bytes: int, bytearray: int, range: int}


def _generic_assignable(producer: object, consumer: object) -> bool | None:
    """Compare two class-backed hints by origin and arguments; None when beartype must decide."""
    p_origin, p_args = _origin_args(producer)
    c_origin, c_args = _origin_args(consumer)
    if p_origin is None or c_origin is None or c_origin is _CALLABLE:
        return None
    if not issubclass(p_origin, c_origin):
        return _class_assignable(p_origin, c_origin) if not (p_args or c_args) else False
    if not c_args:
        return True
    if not p_args:
        # str and bytes are collections of a known item type: str is no Sequence[int].
        item = next((t for cls, t in _KNOWN_ITEMS.items() if issubclass(p_origin, cls)), None)
        if item is not None and len(c_args) == 1:
            return is_assignable(item, c_args[0])
        # A bare generic (list, typing.List) means list[Any]; a class with generic bases has real
        # arguments hidden in __orig_bases__, which beartype knows how to read.
        return None if getattr(producer, "__orig_bases__", None) else True
    if c_origin is tuple:
        return _tuple_assignable(p_args, c_args) if p_origin is tuple else None
    if len(p_args) != len(c_args) or p_origin is _CALLABLE:
        return None
    # Covariant in every argument, as beartype's is_subhint is; this also carries the numeric tower.
    return all(map(is_assignable, p_args, c_args))


def _assignable(producer: object, consumer: object) -> bool:
    """The uncached relation behind is_assignable."""
    try:
        p, c = _norm(producer), _norm(consumer)
        if p is c or p is Any or c is Any or c is object:
            return True
        if _is_union(p):
            return all(is_assignable(member, c) for member in get_args(p))
        if get_origin(p) is Literal and len(get_args(p)) > 1:  # Literal['a', 2] is the union of its values
            return all(is_assignable(Literal[value], c) for value in get_args(p))
        if _is_union(c):
            return any(is_assignable(p, member) for member in get_args(c))
        if isinstance(p, TypeVar) or isinstance(c, TypeVar):
            p = _typevar_bound(p) if isinstance(p, TypeVar) else p
            c = _typevar_bound(c) if isinstance(c, TypeVar) else c
            return is_assignable(p, c)
        if is_array(p) or is_array(c):
            # Dtype and shape are shapes.py's business (DF302/DF301); here only the array classes meet.
            return is_assignable(getattr(p, "array_type", p), getattr(c, "array_type", c))
        if isinstance(p, type) and isinstance(c, type):
            return _class_assignable(p, c)
        if get_origin(p) is Literal and get_origin(c) is not Literal:
            return all(is_assignable(type(value), c) for value in get_args(p))
        verdict = _generic_assignable(p, c)
        if verdict is not None:
            return verdict
        return is_subhint(p, c)
    except Exception:
        return True  # gradual: a relation we cannot decide is never reported as an error


_assignable_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_assignable)


def is_assignable(producer: object, consumer: object) -> bool:
    """True when a value of the producer hint may feed a port of the consumer hint."""
    if producer is consumer:
        return True
    try:
        return _assignable_cached(producer, consumer)
    except Exception:  # an unhashable hint; _assignable itself never raises
        return _assignable(producer, consumer)


def _detail(hint: object) -> int:
    """How much a hint says beyond its class: Float[Tensor, 'b'] beats Tensor, list[int] beats list."""
    if is_array(hint):
        return 2
    return 1 if get_args(hint) else 0


def narrow(hints: Sequence[object]) -> object | None:
    """The tightest of the hints, assignable to all the others, or None when no single one is."""
    try:
        known = [h for h in map(_norm, hints) if h is not Any]
        if not known:
            return Any
        # One linear pass finds the only possible answer (the relation is transitive on the hints that
        # matter), then one more verifies it: O(n) instead of comparing all pairs.
        best = known[0]
        for hint in known[1:]:
            if is_assignable(hint, best) and (not is_assignable(best, hint) or _detail(hint) > _detail(best)):
                best = hint
        return best if all(is_assignable(best, hint) for hint in known) else None
    except Exception:
        return Any


def _is_plain_metaclass(cls: type) -> bool:
    """True when isinstance/issubclass on cls mean plain inheritance (no ABC registration, no protocols)."""
    meta = type(cls)
    return (
        meta.__instancecheck__ is type.__instancecheck__ and meta.__subclasscheck__ is type.__subclasscheck__
    )


def _is_final(cls: type) -> bool:
    """True when cls cannot have subclasses: a builtin like bool or NoneType, or a @typing.final class."""
    return not cls.__flags__ & _TPFLAGS_BASETYPE or getattr(cls, "__final__", False) is True


def _probe_is_safe(cls: type) -> bool:
    """True when creating a throwaway subclass of cls runs no Python code (no hooks, no custom metaclass)."""
    meta = type(cls)
    for name in ("__new__", "__init__", "__call__", "__prepare__"):
        attr = getattr(meta, name)
        if isinstance(getattr(attr, "__func__", attr), types.FunctionType):
            return False
    hook = getattr(cls.__init_subclass__, "__func__", None)
    return hook is None or hook is _GENERIC_HOOK


def _classes_disjoint(a: type, b: type) -> bool:
    """True when no class can inherit from both a and b."""
    if not (_is_plain_metaclass(a) and _is_plain_metaclass(b)):
        return False
    if _class_assignable(a, b) or _class_assignable(b, a):
        return False  # includes the numeric tower: 1 is both an int and a float
    if _is_final(a) or _is_final(b):
        return True
    meta_a, meta_b = type(a), type(b)
    if not (issubclass(meta_a, meta_b) or issubclass(meta_b, meta_a)):
        return False  # a metaclass conflict could be resolved by a third metaclass
    if not (_probe_is_safe(a) and _probe_is_safe(b)):
        return False
    try:
        type("_", (a, b), {})
    except TypeError:
        return True  # instance layout conflict (int and str) or no consistent MRO
    return False


@_cached
def disjoint(a: object, b: object) -> bool:
    """True when provably no value satisfies both hints (only then is DF002 reported)."""
    try:
        a, b = _norm(a), _norm(b)
        if a is b or a is Any or b is Any or a is object or b is object:
            return False
        if _is_union(a):
            return all(disjoint(member, b) for member in get_args(a))
        if _is_union(b):
            return all(disjoint(a, member) for member in get_args(b))
        a = getattr(a, "array_type", a) if is_array(a) else a
        b = getattr(b, "array_type", b) if is_array(b) else b
        a_origin, _ = _origin_args(a)
        b_origin, _ = _origin_args(b)
        if a_origin is None or b_origin is None:
            return False  # Literal, TypeVar, NewType, Callable forms...: not provable
        return _classes_disjoint(a_origin, b_origin)
    except Exception:
        return False


def _name(cls: object) -> str:
    """The short name of a class: qualname, or plain name for classes local to a function."""
    qualname = getattr(cls, "__qualname__", None)
    if isinstance(qualname, str) and "<locals>" not in qualname:
        return qualname
    name = getattr(cls, "__name__", None)
    return name if isinstance(name, str) else _safe_repr(cls).replace("typing.", "")


def _describe_arg(arg: object) -> str:
    """One argument of a generic: a hint, the ... of tuple[X, ...], or the [params] of a Callable."""
    if arg is Ellipsis:
        return "..."
    if isinstance(arg, list):
        return "[" + ", ".join(map(_describe_arg, arg)) + "]"
    return describe(arg)


@_cached
def describe(hint: object) -> str:
    """A short readable name: int, list[int], int | None, Float[Tensor, 'b 4 h w'], Any."""
    try:
        if hint is Any or hint is inspect.Parameter.empty:
            return "Any"
        if hint is None or hint is _NONE_TYPE:
            return "None"
        if isinstance(hint, str):
            return hint
        if isinstance(hint, ForwardRef):
            return hint.__forward_arg__
        if is_array(hint):
            return _name(hint)
        if _is_union(hint):
            return " | ".join(map(describe, get_args(hint)))
        origin, args = get_origin(hint), get_args(hint)
        if origin is Annotated:
            return describe(args[0])
        if origin is Literal:
            return f"Literal[{', '.join(map(repr, args))}]"
        if origin is not None:
            return f"{_name(origin)}[{', '.join(map(_describe_arg, args))}]" if args else _name(origin)
        if isinstance(hint, type | TypeVar) or hasattr(hint, "__supertype__"):  # classes, TypeVars, NewTypes
            return _name(hint)
        return _safe_repr(hint).replace("typing.", "")
    except Exception:
        return _safe_repr(hint)


def _tensor_item(cls: object) -> object:
    """torch.Tensor when cls is a tensor class (iterating a tensor yields tensors), else Any."""
    torch = sys.modules.get("torch")  # no tensor hint can exist unless torch is already imported
    tensor = getattr(torch, "Tensor", None)
    return tensor if isinstance(cls, type) and isinstance(tensor, type) and issubclass(cls, tensor) else Any


# Iterables whose element type is not written as an argument.
_BUILTIN_ITEMS: dict[type, type] = {str: str, bytes: int, bytearray: int, range: int}


@_cached
def item_type(iterable_hint: object) -> object:
    """The element type of an iterable hint (list[X], Sequence[X], Iterable[X], tuple[X, ...]), else Any."""
    try:
        hint = _norm(iterable_hint)
        if _is_union(hint):
            members = [item_type(member) for member in get_args(hint) if member is not _NONE_TYPE]
            return functools.reduce(union, members) if members else Any
        if is_array(hint):
            return _tensor_item(hint.array_type)  # type: ignore[attr-defined]
        origin, args = _origin_args(hint)
        if origin is None:
            return Any
        if origin in _BUILTIN_ITEMS:
            return _BUILTIN_ITEMS[origin]
        if not args or not issubclass(origin, collections.abc.Iterable):
            return _tensor_item(origin)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return functools.reduce(union, args)  # tuple[int, str] yields int | str
        return args[0]  # the key type for mappings, the yield type for generators
    except Exception:
        return Any


@_cached
def union(a: object, b: object) -> object:
    """a | b, simplified: equal -> a; one assignable to the other -> the wider; Any absorbs."""
    try:
        a, b = _norm(a), _norm(b)
        if a is Any or b is Any:
            return Any
        if a == b:
            return a
        a_fits, b_fits = is_assignable(a, b), is_assignable(b, a)
        if a_fits and b_fits:
            return b if _detail(b) < _detail(a) else a  # gradual equals: keep the one saying less
        if a_fits:
            return b
        if b_fits:
            return a
        return Union[a, b]  # noqa: UP007  # operands are runtime objects, not always classes
    except Exception:
        return Any

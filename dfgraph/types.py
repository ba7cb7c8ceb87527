"""The type relation of the checker: normalizing annotations, assignability, narrowing and disjointness.

Every function here is total: an annotation the checker does not understand degrades to ``Any`` (or to
"compatible"), never to an exception, because a false error is worse than a missed one in a gradual checker.
Results are cached by the hint objects; unhashable hints are computed without the cache.
"""

from __future__ import annotations

import collections
import collections.abc
import enum
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, ForwardRef, Literal, ParamSpec, TypeVar, Union, get_args, get_origin

from beartype.door import TypeHint

__all__ = [
    "cached",
    "is_union",
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


def cached(fn: Callable[_P, _R]) -> Callable[_P, _R]:
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


def is_union(hint: object) -> bool:
    """True for typing.Union / Optional and PEP 604 unions."""
    return get_origin(hint) in _UNION_ORIGINS


@cached
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


_EMPTY = object()
"""The arguments of tuple[()] are (_EMPTY,): Python writes them (), as for a bare tuple."""


def _origin_args(hint: object) -> tuple[type | None, tuple[Any, ...]]:
    """The runtime class behind a hint and its type arguments: list[int] -> (list, (int,))."""
    if isinstance(hint, type):
        return hint, ()
    origin = get_origin(hint)
    if isinstance(origin, type):
        args = get_args(hint)
        return origin, (_EMPTY,) if origin is tuple and not args and not _is_bare(hint) else args
    return None, ()


def _class_assignable(producer: type, consumer: type) -> bool:
    """issubclass plus the PEP 484 numeric tower (int -> float -> complex): the run-time view of classes."""
    if issubclass(producer, consumer):
        return True
    if consumer is float:
        return issubclass(producer, int)
    if consumer is complex:
        return issubclass(producer, (int, float))
    return False


# -- the static relation ---------------------------------------------------------------------------------
#
# A verdict is True, False, or None for "cannot be decided" (accepted: gradual typing). The mode is a bit
# set switching off deliberate differences from mypy; the conformance test uses it to tell a documented
# difference from a bug.

_Verdict = bool | None

STRICT_INVARIANCE = 1
"""Mode bit: compare invariant type parameters both ways, as mypy does (dfgraph reads them covariantly)."""

_NEVER: tuple[object, ...] = (typing.Never, typing.NoReturn)
_abc = collections.abc
# Variance of the builtin and collections.abc generics, as typeshed declares them.
_VARIANCE: dict[type, str] = {
    list: "=",
    dict: "==",
    set: "=",
    frozenset: "+",
    type: "+",
    collections.deque: "=",
    collections.defaultdict: "==",
    collections.OrderedDict: "==",
    collections.Counter: "=",
    collections.ChainMap: "==",
    _abc.Mapping: "=+",
    _abc.ItemsView: "++",
    _abc.MutableMapping: "==",
    _abc.MutableSequence: "=",
    _abc.MutableSet: "=",
    _abc.Generator: "+-+",
    _abc.Coroutine: "+-+",
    _abc.AsyncGenerator: "+-",
}
# Nominal bases of builtin generics that Python does not record: (base, how its arguments are built).
_Args = tuple[Any, ...]


def _first(args: _Args) -> _Args:
    """The first type argument, as the only argument of a base."""
    return args[:1]


# Subscripted with runtime objects: typed Any so that mypy reads them as values, not as type expressions.
_ANY_TUPLE: Any = tuple
_ANY_CALLABLE: Any = collections.abc.Callable


_BUILTIN_BASES: dict[type, tuple[tuple[type, Callable[[_Args], _Args]], ...]] = {
    list: ((_abc.MutableSequence, _first),),
    collections.deque: ((_abc.MutableSequence, _first),),
    _abc.MutableSequence: ((_abc.Sequence, _first),),
    _abc.Sequence: ((_abc.Reversible, _first), (_abc.Collection, _first)),
    _abc.Collection: ((_abc.Iterable, _first), (_abc.Container, _first)),
    _abc.Reversible: ((_abc.Iterable, _first),),
    _abc.Iterator: ((_abc.Iterable, _first),),
    _abc.Generator: ((_abc.Iterator, _first),),
    set: ((_abc.MutableSet, _first),),
    frozenset: ((_abc.Set, _first),),
    _abc.MutableSet: ((_abc.Set, _first),),
    _abc.Set: ((_abc.Collection, _first),),
    _abc.KeysView: ((_abc.Set, _first),),
    _abc.ValuesView: ((_abc.Collection, _first),),
    _abc.ItemsView: ((_abc.Set, lambda a: (_ANY_TUPLE[a[0], a[1]],)),),
    dict: ((_abc.MutableMapping, lambda a: a), (_abc.Reversible, _first)),
    collections.defaultdict: ((dict, lambda a: a),),
    collections.OrderedDict: ((dict, lambda a: a),),
    collections.Counter: ((dict, lambda a: (a[0], int)),),
    collections.ChainMap: ((_abc.MutableMapping, lambda a: a),),
    _abc.MutableMapping: ((_abc.Mapping, lambda a: a),),
    _abc.Mapping: ((_abc.Collection, _first),),
    str: ((_abc.Sequence, lambda _: (str,)),),
    bytes: ((_abc.Sequence, lambda _: (int,)),),
    bytearray: ((_abc.MutableSequence, lambda _: (int,)),),
    memoryview: ((_abc.Sequence, lambda _: (int,)),),
    range: ((_abc.Sequence, lambda _: (int,)),),
    _abc.AsyncIterator: ((_abc.AsyncIterable, _first),),
    _abc.AsyncGenerator: ((_abc.AsyncIterator, _first),),
    _abc.Coroutine: ((_abc.Awaitable, lambda a: a[2:3]),),
}
# collections.abc classes that typeshed declares as Protocols: a class matches them by its methods.
_ABC_PROTOCOLS: frozenset[type] = frozenset(
    {
        _abc.Hashable,
        _abc.Sized,
        _abc.Iterable,
        _abc.Iterator,
        _abc.Container,
        _abc.Collection,
        _abc.Reversible,
        _abc.Awaitable,
        _abc.AsyncIterable,
        _abc.AsyncIterator,
    }
)
_GENERIC_BASES: tuple[object, ...] = (typing.Generic, typing.Protocol, object)


def _all(verdicts: Iterable[_Verdict]) -> _Verdict:
    """Conjunction: False wins, then undecided."""
    result: _Verdict = True
    for verdict in verdicts:
        if verdict is False:
            return False
        if verdict is None:
            result = None
    return result


def _any(verdicts: Iterable[_Verdict]) -> _Verdict:
    """Disjunction: True wins, then undecided."""
    result: _Verdict = False
    for verdict in verdicts:
        if verdict is True:
            return True
        if verdict is None:
            result = None
    return result


# typing.List, typing.Tuple: bare aliases (typing.Tuple has no arguments, like tuple[()], yet is bare).
_SPECIAL_ALIAS: type = getattr(typing, "_SpecialGenericAlias", type)


def _is_bare(hint: object) -> bool:
    """True for a generic written without arguments (list, typing.List, typing.Tuple), not tuple[()]."""
    return isinstance(hint, type | _SPECIAL_ALIAS)


def _is_typeddict(cls: object) -> bool:
    return isinstance(cls, type) and typing.is_typeddict(cls)


def _is_namedtuple(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def _is_user_protocol(cls: object) -> bool:
    """A typing.Protocol class (generic or not) that is not one of collections.abc's."""
    return isinstance(cls, type) and bool(getattr(cls, "_is_protocol", False)) and cls is not typing.Protocol


def _is_newtype(hint: object) -> bool:
    return isinstance(hint, typing.NewType)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _hints_of(owner: object) -> dict[str, Any] | None:
    """typing.get_type_hints of a class or function, or None when its annotations do not resolve."""
    try:
        return typing.get_type_hints(owner)
    except Exception:
        return None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _params(cls: type) -> tuple[Any, ...]:
    """The type parameters of a class (empty for a non-generic one)."""
    params = getattr(cls, "__parameters__", ())
    if isinstance(params, tuple) and params:
        return params
    # class MyList(list[T]) is generic to a type checker, but Python records no __parameters__ for it.
    found: list[Any] = []
    for base in cls.__dict__.get("__orig_bases__", ()):
        for param in getattr(base, "__parameters__", ()):
            if param not in found:
                found.append(param)
    return tuple(found)


def _fill(cls: type, args: _Args) -> _Args:
    """The type arguments of cls, with a bare generic meaning Any for each parameter."""
    if args:
        return args
    if cls is tuple:
        return (Any, Ellipsis)
    count = len(_VARIANCE.get(cls, "")) or len(_params(cls)) or (1 if cls in _BUILTIN_BASES else 0)
    if cls in _BUILTIN_BASES and cls in (str, bytes, bytearray, memoryview, range):
        count = 0
    return (Any,) * count


def _subst(hint: object, mapping: dict[Any, Any]) -> object:
    """hint with the TypeVars of mapping replaced (list[T] with T=int -> list[int])."""
    if not mapping:
        return hint
    if isinstance(hint, TypeVar):
        return mapping.get(hint, hint)
    if isinstance(hint, list):
        return [_subst(arg, mapping) for arg in hint]
    args = get_args(hint)
    if not args or get_origin(hint) is Literal:
        return hint
    new = tuple(_subst(arg, mapping) for arg in args)
    if new == args:
        return hint
    origin = get_origin(hint)
    if is_union(hint):
        return Union[new]  # noqa: UP007
    if origin is _CALLABLE:
        return _ANY_CALLABLE[new[0], new[-1]]
    try:
        alias: Any = hint
        return alias[tuple(mapping.get(p, p) for p in alias.__parameters__)]
    except Exception:
        return types.GenericAlias(origin, new) if isinstance(origin, type) else hint


def _namedtuple_fields(cls: type) -> _Args | None:
    hints = _hints_of(cls)
    if hints is None:
        return None
    return tuple(hints.get(name, Any) for name in cls._fields)  # type: ignore[attr-defined]


def _bases(cls: type, args: _Args) -> list[tuple[type, _Args]]:
    """The nominal bases of cls[args] with their arguments, as a type checker sees them."""
    if cls in _BUILTIN_BASES:
        filled = _fill(cls, args)
        return [(base, make(filled)) for base, make in _BUILTIN_BASES[cls]]
    if _is_namedtuple(cls):
        fields = _namedtuple_fields(cls)
        return [(tuple, fields or (_EMPTY,) if fields is not None else (Any, Ellipsis))]
    if _is_typeddict(cls):
        return [(_abc.Mapping, (str, object))]
    mapping = dict(zip(_params(cls), _fill(cls, args), strict=False))
    result: list[tuple[type, _Args]] = []
    for base in cls.__dict__.get("__orig_bases__", cls.__bases__):
        if base in _GENERIC_BASES or get_origin(base) in _GENERIC_BASES:
            continue
        origin, base_args = _origin_args(base)
        if origin is None or origin in _GENERIC_BASES:
            continue
        result.append((origin, tuple(_subst(arg, mapping) for arg in base_args)))
    return result


_NOT_FOUND: _Args = (object(),)


def _upcast(cls: type, args: _Args, target: type, depth: int = 0) -> _Args:
    """The arguments of target as a nominal base of cls[args], or _NOT_FOUND."""
    if cls is target:
        return _fill(cls, args)
    if depth > 50:
        return _NOT_FOUND
    for base, base_args in _bases(cls, args):
        found = _upcast(base, base_args, target, depth + 1)
        if found is not _NOT_FOUND:
            return found
    return _NOT_FOUND


def _variance(cls: type) -> str:
    """One of + (covariant), - (contravariant), = (invariant) per type parameter of cls."""
    if cls in _VARIANCE:
        return _VARIANCE[cls]
    marks = []
    for param in _params(cls):
        if getattr(param, "__covariant__", False):
            marks.append("+")
        elif getattr(param, "__contravariant__", False):
            marks.append("-")
        else:
            marks.append("=" if isinstance(param, TypeVar) and cls.__module__ not in _ABC_MODULES else "+")
    return "".join(marks)


_ABC_MODULES = frozenset({"collections.abc", "_collections_abc", "typing", "builtins"})


def _argument(p_arg: object, c_arg: object, mark: str, mode: int) -> _Verdict:
    """Compare one type argument under its declared variance."""
    if p_arg is Ellipsis or c_arg is Ellipsis:
        return True if p_arg is c_arg else None
    if mark == "-":
        return decide(c_arg, p_arg, mode)
    if mark == "=" and mode & STRICT_INVARIANCE and not isinstance(c_arg, TypeVar):
        return _all((decide(p_arg, c_arg, mode), decide(c_arg, p_arg, mode)))
    return decide(p_arg, c_arg, mode)


def _tuple_items(args: _Args) -> tuple[tuple[Any, ...], bool]:
    """The item types of tuple[args] and whether the tuple is of any length."""
    if len(args) == 2 and args[1] is Ellipsis:
        return args[:1], True
    return (() if args == (_EMPTY,) else args), False


def _tuple_vs_tuple(p_args: _Args, c_args: _Args, mode: int) -> _Verdict:
    """tuple[...] against tuple[...]: lengths must match; tuple[X, ...] is of any length."""
    p_items, p_var = _tuple_items(p_args)
    c_items, c_var = _tuple_items(c_args)
    if c_var:
        return _all(decide(item, c_items[0], mode) for item in p_items)
    if p_var:
        return p_items[0] is Any  # tuple[Any, ...] is gradual in its length too
    if len(p_items) != len(c_items):
        return False
    return _all(decide(p, c, mode) for p, c in zip(p_items, c_items, strict=True))


def _nominal(p_cls: type, p_args: _Args, c_cls: type, c_args: _Args, mode: int) -> _Verdict:
    """cls[args] against a class-backed consumer, through the declared bases and the numeric tower."""
    if c_cls is tuple and (p_cls is tuple or _is_namedtuple(p_cls)):
        up = _upcast(p_cls, p_args, tuple)
        return _tuple_vs_tuple(up, _fill(tuple, c_args), mode)
    if p_cls is tuple or _is_namedtuple(p_cls):
        # A tuple is a Sequence of the join of its items: each item must fit the consumer's argument.
        items, _ = _tuple_items(_upcast(p_cls, p_args, tuple))
        item: object = Union[items] if items else typing.Never  # noqa: UP007
        return (
            _nominal(_abc.Sequence, (item,), c_cls, c_args, mode)
            if c_cls is not _abc.Sequence
            else (_all(decide(i, arg, mode) for i in items for arg in _fill(c_cls, c_args)))
        )
    up = _upcast(p_cls, p_args, c_cls)
    if up is _NOT_FOUND:
        if not c_args and _class_tower(p_cls, c_cls):
            return True
        if c_cls in _ABC_PROTOCOLS and _structural_abc(p_cls, c_cls):
            if not c_args or all(a is Any for a in c_args) or c_cls is _abc.Container:
                return True  # Container's __contains__ takes any object: its argument constrains nothing
            item = _iterated(p_cls, p_args, c_cls)
            return None if item is _NOT_FOUND else decide(item, c_args[0], mode)
        return False
    c_filled = _fill(c_cls, c_args)
    if not c_filled:
        return True
    marks = _variance(c_cls).ljust(len(c_filled), "+")
    return _all(_argument(p, c, m, mode) for p, c, m in zip(up, c_filled, marks, strict=False))


_ITERATING: dict[type, str] = {
    _abc.Iterable: "__iter__",
    _abc.Collection: "__iter__",
    _abc.Reversible: "__reversed__",
    _abc.Iterator: "__next__",
}


def _iterated(p_cls: type, p_args: _Args, c_cls: type) -> object:
    """The item type a class yields to an Iterable-like protocol, read from its __iter__; else _NOT_FOUND."""
    name = _ITERATING.get(c_cls)
    member = _member(p_cls, name) if name else None
    if member is None or member[0] != "method" or member[1] is None:
        return _NOT_FOUND
    ret = _subst(
        typing.cast("_Sig", member[1])[1], dict(zip(_params(p_cls), _fill(p_cls, p_args), strict=False))
    )
    if name == "__next__":
        return ret
    ret_cls, ret_args = _origin_args(ret)
    if ret_cls is None:
        return _NOT_FOUND
    found = _upcast(ret_cls, ret_args, _abc.Iterator)
    return found[0] if found is not _NOT_FOUND and found else _NOT_FOUND


def _class_tower(p_cls: type, c_cls: type) -> bool:
    """The PEP 484 promotions mypy applies: int -> float, int/float -> complex."""
    if c_cls is float:
        return int in p_cls.__mro__
    if c_cls is complex:
        return int in p_cls.__mro__ or float in p_cls.__mro__
    return False


def _structural_abc(p_cls: type, c_cls: type) -> bool:
    """A class matches a protocol-like collections.abc class by its methods (Sized: __len__)."""
    try:
        return issubclass(p_cls, c_cls)
    except Exception:
        return False


# Signatures: (params or None for "...", return); a param is (kind, name, type, has_default).
_Param = tuple[Any, str, Any, bool]
_Sig = tuple[tuple[_Param, ...] | None, Any]
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _callable_sig(hint: object) -> _Sig:
    """The signature of a Callable[[...], R] hint (bare Callable: ..., Any)."""
    args = get_args(hint)
    if not args:
        return None, Any
    if args[0] is Ellipsis:
        return None, args[-1]
    params, ret = args[:-1], args[-1]
    if len(params) == 1 and isinstance(params[0], list):
        params = tuple(params[0])
    if any(isinstance(p, ParamSpec) or get_origin(p) is typing.Concatenate for p in params):
        return None, ret
    return tuple((inspect.Parameter.POSITIONAL_ONLY, f"_{i}", p, False) for i, p in enumerate(params)), ret


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _function_sig(fn: object, drop_first: bool) -> _Sig | None:
    """The signature of a function with resolved annotations, or None when it cannot be read."""
    if not isinstance(inspect.unwrap(fn), types.FunctionType):  # type: ignore[arg-type]
        return None  # a builtin (str.__len__, type.__call__): its signature says nothing about types
    try:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
    except Exception:
        return None
    hints = _hints_of(fn) or {}
    if any(
        p.annotation is not inspect.Parameter.empty and p.name not in hints for p in sig.parameters.values()
    ):
        return None  # an annotation that does not resolve
    params = list(sig.parameters.values())[1 if drop_first else 0 :]
    return (
        tuple(
            (p.kind, p.name, hints.get(p.name, Any), p.default is not inspect.Parameter.empty) for p in params
        ),
        hints.get("return", Any),
    )


def _sig_sub(p: _Sig, c: _Sig, mode: int, names: bool = False) -> _Verdict:
    """A callable of signature p where signature c is expected: parameters contravariant, return covariant.

    With names, a parameter the consumer may pass by keyword must have the same name (mypy checks names
    for __call__, and ignores them for the other methods of a protocol).
    """
    p_params, p_ret = p
    c_params, c_ret = c
    ret = decide(p_ret, c_ret, mode)
    if p_params is None or c_params is None or ret is False:
        return ret
    kinds = inspect.Parameter
    c_pos = [q for q in c_params if q[0] in _POSITIONAL]
    p_pos = [q for q in p_params if q[0] in _POSITIONAL]
    c_star = next((q for q in c_params if q[0] is kinds.VAR_POSITIONAL), None)
    p_star = next((q for q in p_params if q[0] is kinds.VAR_POSITIONAL), None)
    c_kw = {q[1]: q for q in c_params if q[0] is kinds.KEYWORD_ONLY}
    c_kw.update({q[1]: q for q in c_pos if q[0] is kinds.POSITIONAL_OR_KEYWORD})
    c_stars = next((q for q in c_params if q[0] is kinds.VAR_KEYWORD), None)
    p_stars = next((q for q in p_params if q[0] is kinds.VAR_KEYWORD), None)
    checks: list[_Verdict] = [ret]
    for i, q in enumerate(c_pos):
        r = p_pos[i] if i < len(p_pos) else p_star
        if r is None or (q[3] and not r[3] and r is not p_star):
            return False
        if names and q[0] is kinds.POSITIONAL_OR_KEYWORD and r is not p_star and q[1] != r[1]:
            return False
        checks.append(decide(q[2], r[2], mode))
    for r in p_pos[len(c_pos) :]:
        if c_star is not None:
            checks.append(decide(c_star[2], r[2], mode))
        elif not r[3] and not (r[0] is kinds.POSITIONAL_OR_KEYWORD and r[1] in c_kw):
            return False
    if c_star is not None:
        if p_star is None:
            return False
        checks.append(decide(c_star[2], p_star[2], mode))
    p_named = {q[1]: q for q in p_params if q[0] in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
    for name, q in c_kw.items():
        if q[0] is kinds.POSITIONAL_OR_KEYWORD:
            continue  # compared by position above
        r = p_named.get(name, p_stars)
        if r is None or (q[3] and not r[3]):
            return False
        checks.append(decide(q[2], r[2], mode))
    if any(q[0] is kinds.KEYWORD_ONLY and not q[3] and q[1] not in c_kw for q in p_params):
        return False
    if c_stars is not None:
        if p_stars is None:
            return False
        checks.append(decide(c_stars[2], p_stars[2], mode))
    return _all(checks)


def _member(cls: type, name: str) -> tuple[str, object] | None:
    """How cls provides name: ('method', sig), ('property', type), ('attribute', type), or None."""
    for klass in cls.__mro__:
        if klass is object and name not in ("__hash__", "__eq__", "__ne__", "__str__", "__repr__"):
            break
        if name in klass.__dict__:
            value = klass.__dict__[name]
            if isinstance(value, property):
                sig = _function_sig(value.fget, True) if value.fget else None
                return "property", (sig[1] if sig else Any)
            if isinstance(value, staticmethod | classmethod):
                return "method", _function_sig(value.__func__, isinstance(value, classmethod))
            if callable(value) and not isinstance(value, type):
                return "method", _function_sig(value, True)
            hints = _hints_of(klass) or {}
            return "attribute", hints.get(name, type(value))
        annotations = inspect.get_annotations(klass)
        if name in annotations:
            return "attribute", (_hints_of(klass) or {}).get(name, Any)
    return None


def _protocol_members(proto: type) -> frozenset[str]:
    getter = getattr(typing, "_get_protocol_attrs", None)
    if getter is not None:
        return frozenset(getter(proto))
    return frozenset(getattr(proto, "__protocol_attrs__", ()))


def _structural(p_cls: type, p_args: _Args, c_cls: type, c_args: _Args, mode: int) -> _Verdict:
    """A class against a Protocol: every member present, methods by signature, attributes by type."""
    p_map = dict(zip(_params(p_cls), _fill(p_cls, p_args), strict=False))
    c_map = dict(zip(_params(c_cls), _fill(c_cls, c_args), strict=False))
    checks: list[_Verdict] = []
    for name in sorted(_protocol_members(c_cls)):
        want, have = _member(c_cls, name), _member(p_cls, name)
        if have is None:
            return False
        if want is None:
            checks.append(None)
            continue
        (w_kind, w_type), (h_kind, h_type) = want, have
        if w_kind == "method" or h_kind == "method":
            if w_kind != h_kind or w_type is None or h_type is None:
                checks.append(None if w_kind == h_kind else False if h_kind == "method" else None)
                continue
            sub = _sig_sub(_subst_sig(h_type, p_map), _subst_sig(w_type, c_map), mode, name == "__call__")
            checks.append(sub)
            continue
        if w_kind == "attribute" and h_kind == "property":
            return False  # a settable member cannot be read-only
        h_hint, w_hint = _subst(h_type, p_map), _subst(w_type, c_map)
        if w_kind == "attribute":
            checks.append(_argument(h_hint, w_hint, "=", mode))
        else:
            checks.append(decide(h_hint, w_hint, mode))
    return _all(checks)


def _subst_sig(sig: object, mapping: dict[Any, Any]) -> _Sig:
    params, ret = typing.cast("_Sig", sig)
    if not mapping:
        return params, ret
    new = None if params is None else tuple((k, n, _subst(t, mapping), d) for k, n, t, d in params)
    return new, _subst(ret, mapping)


def _call_sig(cls: type, args: _Args) -> _Sig | None:
    """The signature of calling an instance of cls[args], or None when it cannot be read."""
    member = _member(cls, "__call__")
    if member is None or member[0] != "method" or member[1] is None:
        return None
    return _subst_sig(member[1], dict(zip(_params(cls), _fill(cls, args), strict=False)))


def _constructor_sig(cls: object) -> _Sig | None:
    """The signature of calling the class cls (its __init__), returning an instance."""
    if not isinstance(cls, type) or _member(cls, "__new__") is not None:
        return None  # a custom __new__ (every builtin has one): not read
    init = _member(cls, "__init__")
    if init is None:
        return (), cls
    if init[0] != "method" or init[1] is None:
        return None
    return typing.cast("_Sig", init[1])[0], cls


def _literal_class(hint: object) -> object:
    """type[Literal[1]] means type[int] to mypy: the classes of a Literal's values."""
    if get_origin(hint) is not Literal:
        return hint
    return Union[tuple(type(value) for value in get_args(hint))]  # noqa: UP007


def _literal_values(hint: object) -> set[tuple[type, object]] | None:
    """The (type, value) pairs a Literal or a union of Literals admits, None for anything else."""
    members = get_args(hint) if is_union(hint) else (hint,)
    values: set[tuple[type, object]] = set()
    for member in members:
        if get_origin(member) is not Literal:
            return None
        values.update((type(v), v) for v in get_args(member))
    return values


def literal_values(hint: object) -> list[object] | None:
    """The values a Literal (or a union of Literals) admits, in order; None for any other type."""
    members = get_args(hint) if is_union(hint) else (hint,)
    values: list[object] = []
    for member in members:
        if get_origin(member) is not Literal:
            return None
        values.extend(v for v in get_args(member) if v not in values)
    return values


_LITERAL_OR_UNION: tuple[object, ...] = (Literal, *_UNION_ORIGINS)
_active: set[tuple[object, object, int]] = set()


def _decide(producer: object, consumer: object, mode: int) -> _Verdict:
    """The uncached relation behind decide."""
    try:
        (p, p_why), (c, c_why) = normalize(producer), normalize(consumer)
        if p_why is not None or c_why is not None:
            return None  # an annotation the checker cannot read
        if p is c or p is Any or c is Any or c is object or p in _NEVER or p == c:
            return True
        if isinstance(p, TypeVar):
            if p.__constraints__:  # checked under each constraint, as mypy does in a generic function
                return _all(decide(bound, c, mode) for bound in p.__constraints__)
            if p.__bound__ is not None:
                return decide(p.__bound__, c, mode)
            return True  # dfgraph does not solve type variables across blocks: an unbound one is Any
        if isinstance(c, TypeVar):  # the consumer is generic: its variable binds to the producer
            if c.__constraints__:  # to one constraint for the whole value: int | str fits no (int, str)
                return _any(decide(p, bound, mode) for bound in c.__constraints__)
            return True if c.__bound__ is None else decide(p, c.__bound__, mode)
        if is_union(p):
            return _all(decide(member, c, mode) for member in get_args(p))
        if get_origin(p) is Literal and len(get_args(p)) > 1:  # Literal['a', 2] is the union of its values
            return _all(decide(Literal[value], c, mode) for value in get_args(p))
        if is_array(p) or is_array(c):
            # Dtype and shape are shapes.py's business (DF302/DF301); here only the array classes meet.
            return decide(getattr(p, "array_type", p), getattr(c, "array_type", c), mode)
        c_values = _literal_values(c) if get_origin(c) in _LITERAL_OR_UNION else None
        if c_values is not None:
            if get_origin(p) is Literal:
                (value,) = get_args(p)
                return (type(value), value) in c_values
            if p is bool:  # bool is the union of its two literals
                return {(bool, True), (bool, False)} <= c_values
            if isinstance(p, type) and issubclass(p, enum.Enum):
                return {(p, m) for m in p} <= c_values
            return False
        if is_union(c):
            return _any(decide(p, member, mode) for member in get_args(c))
        if get_origin(p) is Literal:
            return decide(type(get_args(p)[0]), c, mode)
        if _is_newtype(c):
            while _is_newtype(p):  # a NewType fits itself and the NewTypes it was made from
                if p is c:
                    return True
                p = p.__supertype__  # type: ignore[attr-defined]
            return False
        if _is_newtype(p):
            return decide(p.__supertype__, c, mode)  # type: ignore[attr-defined]
        return _decide_classes(p, c, mode)
    except Exception:
        return None  # gradual: a relation we cannot decide is never reported as an error


def _decide_classes(p: object, c: object, mode: int) -> _Verdict:
    """The relation between class-backed hints, type[...] and Callable."""
    p_origin, c_origin = get_origin(p), get_origin(c)
    if p is type or p_origin is type:
        item = get_args(p)[0] if get_args(p) else Any
        if c is type or c_origin is type:
            return decide(item, _literal_class(get_args(c)[0]), mode) if get_args(c) else True
        c_cls = c if isinstance(c, type) else get_origin(c)
        if _is_user_protocol(c_cls) and c_cls is not None:
            if is_union(item) or item is Any or not isinstance(item, type):
                return None
            if _protocol_members(c_cls) != {"__call__"}:
                # The members of a class object are not compared, but a missing one is an error.
                return None if all(_member(item, name) for name in _protocol_members(c_cls)) else False
            made, call = _constructor_sig(item), _call_sig(c_cls, get_args(c))
            return None if made is None or call is None else _sig_sub(made, call, mode, names=True)
        if c_origin is _CALLABLE or c is _CALLABLE:
            # mypy does not hold a subclass's constructor to its base's, so type[X] takes any arguments.
            return decide(item, _callable_sig(c)[1], mode)
        p, p_origin = type, None
    if c is _CALLABLE or c_origin is _CALLABLE:
        c_sig = _callable_sig(c)
        if p is _CALLABLE or p_origin is _CALLABLE:
            return _sig_sub(_callable_sig(p), c_sig, mode)
        p_cls, p_args = _origin_args(p)
        if p_cls is None:
            return None
        if _is_user_protocol(p_cls) and "__call__" not in _protocol_members(p_cls):
            return False
        sig = _call_sig(p_cls, p_args)
        if sig is None:
            return None if _member(p_cls, "__call__") is not None else False
        return _sig_sub(sig, c_sig, mode)
    if p is _CALLABLE or p_origin is _CALLABLE:
        c_cls, c_args = _origin_args(c)
        if c_cls is not None and _is_user_protocol(c_cls):
            if _protocol_members(c_cls) != {"__call__"}:
                return False
            sig = _call_sig(c_cls, c_args)
            return None if sig is None else _sig_sub(_callable_sig(p), sig, mode, names=True)
        p = types.FunctionType  # what mypy falls back to for the other members of a callable
    p_cls, p_args = _origin_args(p)
    c_cls, c_args = _origin_args(c)
    if p_cls is None or c_cls is None:
        return None
    if _is_typeddict(c_cls):
        return _typeddict(p_cls, c_cls, mode) if _is_typeddict(p_cls) else False
    if _is_typeddict(p_cls):  # to everything else a TypedDict is a Mapping[str, object], not a dict
        return decide(_abc.Mapping[str, object], c, mode)
    if _is_user_protocol(c_cls) and c_cls not in p_cls.__mro__:
        key = (p, c, mode)
        if key in _active:
            return True  # a recursive protocol: assume the match being proven, as mypy does
        _active.add(key)
        try:
            return _structural(p_cls, p_args, c_cls, c_args, mode)
        finally:
            _active.discard(key)
    return _nominal(p_cls, p_args, c_cls, c_args, mode)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _required_keys(cls: type) -> frozenset[str]:
    """The required keys of a TypedDict, also when its NotRequired[...] annotations are strings."""
    required = set(getattr(cls, "__required_keys__", ()))
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:
        return frozenset(required)
    for key, hint in hints.items():
        origin = get_origin(hint)
        if origin is typing.NotRequired:
            required.discard(key)
        elif origin is typing.Required:
            required.add(key)
    return frozenset(required)


def _typeddict(p_cls: type, c_cls: type, mode: int) -> _Verdict:
    """TypedDict against TypedDict: every consumer key present, equally required, value types compatible."""
    p_hints, c_hints = _hints_of(p_cls), _hints_of(c_cls)
    if p_hints is None or c_hints is None:
        return None
    p_required, c_required = _required_keys(p_cls), _required_keys(c_cls)
    checks: list[_Verdict] = []
    for key, value in c_hints.items():
        if key not in p_hints or (key in p_required) != (key in c_required):
            return False
        checks.append(_argument(p_hints[key], value, "=", mode))  # keys are mutable: invariant in mypy
    return _all(checks)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _decide_cached(producer: object, consumer: object, mode: int) -> _Verdict:
    return _decide(producer, consumer, mode)


def decide(producer: object, consumer: object, mode: int = 0) -> bool | None:
    """True or False when dfgraph decides whether producer fits consumer, None when it cannot."""
    if producer is consumer:
        return True
    if is_array(producer) and is_array(consumer):  # fresh classes per subscription: skip the caches
        producer, consumer = producer.array_type, consumer.array_type  # type: ignore[attr-defined]
    try:
        return _decide_cached(producer, consumer, mode)
    except Exception:  # an unhashable hint; _decide itself never raises
        return _decide(producer, consumer, mode)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _is_assignable_cached(producer: object, consumer: object) -> bool:
    return decide(producer, consumer) is not False


def is_assignable(producer: object, consumer: object) -> bool:
    """True when a value of the producer hint may feed a port of the consumer hint."""
    if producer is consumer:
        return True
    try:  # the hot path of checking a large graph: one cache lookup
        return _is_assignable_cached(producer, consumer)
    except Exception:  # an unhashable hint; decide itself never raises
        return decide(producer, consumer) is not False


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


@cached
def disjoint(a: object, b: object) -> bool:
    """True when provably no value satisfies both hints (only then is DF002 reported)."""
    try:
        a, b = _norm(a), _norm(b)
        if a is b or a is Any or b is Any or a is object or b is object:
            return False
        if is_union(a):
            return all(disjoint(member, b) for member in get_args(a))
        if is_union(b):
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


def describe(hint: object) -> str:
    """A short readable name: int, list[int], int | None, Float[Tensor, 'b 4 h w'], Any."""
    try:
        args = get_args(hint)
    except Exception:
        args = ()
    # keyed by the arguments in order too: `X | None == None | X`, but each is written as it is given
    return _describe(hint, args)


@cached
def _describe(hint: object, ordered: tuple[object, ...]) -> str:
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
        if is_union(hint):
            return " | ".join(map(describe, get_args(hint)))
        origin, args = get_origin(hint), get_args(hint)
        if origin is Annotated:
            return describe(args[0])
        if origin is Literal:
            return f"Literal[{', '.join(map(repr, args))}]"
        if origin is tuple and not args and not _is_bare(hint):
            return "tuple[()]"
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


@cached
def item_type(iterable_hint: object) -> object:
    """The element type of an iterable hint (list[X], Sequence[X], Iterable[X], tuple[X, ...]), else Any."""
    try:
        hint = _norm(iterable_hint)
        if is_union(hint):
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


@cached
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

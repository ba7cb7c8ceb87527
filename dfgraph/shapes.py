"""Tensor shapes and dtypes from jaxtyping annotations, unified across the whole graph (DF301, DF302).

A named dim is a variable per call site (scope): ``h`` in the inputs and outputs of one block call is one
variable, so a size flows through blocks; edges unify the producer's dims with the consumer's. Variables
live in a union-find with path halving and union by size, so a whole graph unifies in near-linear time.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Hashable
from typing import Annotated, TypeAlias, Union, get_args, get_origin

import attrs

from dfgraph.types import is_array

__all__ = [
    "ArraySpec",
    "Dim",
    "Fixed",
    "Named",
    "ShapeSolver",
    "Skip",
    "Variadic",
    "array_spec",
    "dtype_conflict",
]


@attrs.frozen(cache_hash=True)  # dims key the alignment cache
class Named:
    """A named dim (``b``): one size per scope, shared by every port of that scope."""

    name: str

    def __str__(self) -> str:
        return self.name


@attrs.frozen(cache_hash=True)  # dims key the alignment cache
class Fixed:
    """A dim of known size (``4``)."""

    size: int

    def __str__(self) -> str:
        return str(self.size)


@attrs.frozen(cache_hash=True)  # dims key the alignment cache
class Skip:
    """A dim that is never constrained: anonymous ``_``, broadcastable ``#h``, symbolic ``h*2``."""

    text: str = "_"

    def __str__(self) -> str:
        return self.text


@attrs.frozen(cache_hash=True)  # dims key the alignment cache
class Variadic:
    """Any number of dims: ``*batch`` (name ``batch``) or ``...`` (no name); never constrained."""

    name: str | None = None

    def __str__(self) -> str:
        return "..." if self.name is None else f"*{self.name}"


Dim: TypeAlias = Named | Fixed | Skip | Variadic


@attrs.frozen
class ArraySpec:
    """The dtypes and dims of one array annotation."""

    dtypes: frozenset[str] | None  # None: any dtype (jaxtyping's Shaped)
    dims: tuple[Dim, ...]
    text: str  # for messages, e.g. "Float[Tensor, 'b 4 h w']"

    def dim_text(self) -> str:
        """The dims as written: 'b 4 h w'."""
        return " ".join(map(str, self.dims))


_CACHE_SIZE = 1 << 16
_SPECS: dict[tuple[str, object, tuple[str, ...] | None], ArraySpec] = {}


def _dim(dim: object) -> Dim:
    """Translate one of jaxtyping's private dim objects, by class name so that versions may differ."""
    kind = type(dim).__name__
    name = getattr(dim, "name", None)
    broadcastable = bool(getattr(dim, "broadcastable", False))
    prefix = "#" if broadcastable else ""
    if "Variadic" in kind:
        return Variadic(name if isinstance(name, str) else None)
    if kind == "_FixedDim":
        size = getattr(dim, "size", None)
        # '#4' may also be 1, so it constrains nothing.
        return Skip(f"#{size}") if broadcastable or not isinstance(size, int) else Fixed(size)
    if kind == "_NamedDim" and isinstance(name, str):
        if getattr(dim, "treepath", False):
            return Skip(f"?{name}")  # varies per pytree leaf
        return Skip(f"#{name}") if broadcastable else Named(name)
    if kind == "_SymbolicDim":
        return Skip(prefix + str(getattr(dim, "elem", "?")))
    return Skip("_")


def _array_spec(hint: object) -> ArraySpec | None:
    """The uncached body of array_spec."""
    try:
        origin = get_origin(hint)
        if origin is Annotated:
            return _array_spec(get_args(hint)[0])
        if origin in (Union, types.UnionType):
            specs = [spec for spec in map(_array_spec, get_args(hint)) if spec is not None]
            return specs[0] if len(specs) == 1 else None  # two arrays in one union: no single shape
        if not is_array(hint):
            return None
        # jaxtyping's Shaped stores an _AnyDtype object instead of a tuple of names.
        dtypes = getattr(hint, "dtypes", None)
        dtypes = tuple(map(str, dtypes)) if isinstance(dtypes, tuple | list) else None
        # Each subscription makes a new class, so the spec is shared by what the class is written as.
        key = (getattr(hint, "__name__", ""), getattr(hint, "dim_str", None), dtypes)
        spec = _SPECS.get(key)
        if spec is None:
            if len(_SPECS) >= _CACHE_SIZE:
                _SPECS.clear()
            dims = tuple(map(_dim, getattr(hint, "dims", ())))
            spec = _SPECS[key] = ArraySpec(None if dtypes is None else frozenset(dtypes), dims, key[0])
        return spec
    except Exception:
        return None


_array_spec_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_array_spec)


def array_spec(hint: object) -> ArraySpec | None:
    """The dims and dtypes of a jaxtyping annotation (also inside Optional/Union of one array), else None."""
    try:
        return _array_spec_cached(hint)
    except Exception:  # an unhashable hint; _array_spec itself never raises
        return _array_spec(hint)


def dtype_conflict(producer: ArraySpec, consumer: ArraySpec) -> str | None:
    """A message when the dtype families do not intersect, else None."""
    if producer.dtypes is None or consumer.dtypes is None or producer.dtypes & consumer.dtypes:
        return None
    return f"no dtype of {producer.text} is allowed by {consumer.text}"


def _split(dims: tuple[Dim, ...]) -> tuple[tuple[Dim, ...], tuple[Dim, ...], bool]:
    """The dims before the variadic one, the dims after it, and whether there is one."""
    for i, dim in enumerate(dims):
        if isinstance(dim, Variadic):
            return dims[:i], dims[i + 1 :], True
    return dims, (), False


def _rank_text(spec: ArraySpec) -> str:
    """'rank 4 (b 4 h w)', or 'rank >= 3 (*batch h w)' with a variadic dim."""
    head, tail, variadic = _split(spec.dims)
    rank = f">= {len(head) + len(tail)}" if variadic else str(len(spec.dims))
    return f"rank {rank} ({spec.dim_text()})"


# An aligned pair of dims that constrains: (producer dim, consumer dim, consumer position).
_Pair: TypeAlias = tuple[Named | Fixed, Named | Fixed, int]


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _align(producer: tuple[Dim, ...], consumer: tuple[Dim, ...]) -> tuple[_Pair, ...] | None:
    """(producer dim, consumer dim, consumer position) pairs that constrain; None when ranks cannot agree."""
    p_head, p_tail, p_var = _split(producer)
    c_head, c_tail, c_var = _split(consumer)
    if not p_var and not c_var:
        if len(producer) != len(consumer):
            return None
        pairs = list(zip(producer, consumer, range(len(consumer)), strict=True))
    elif (not c_var and len(consumer) < len(p_head) + len(p_tail)) or (
        not p_var and len(producer) < len(c_head) + len(c_tail)
    ):
        return None
    else:
        # Match from the left up to the first variadic dim, and from the right back to it; a side without
        # one reads the same dims from either end.  Whatever a variadic covers stays unconstrained.
        p_left, p_right = (p_head, p_tail) if p_var else (producer, producer)
        c_left, c_right = (c_head, c_tail) if c_var else (consumer, consumer)
        pairs = [(p_left[i], c_left[i], i) for i in range(min(len(p_left), len(c_left)))]
        right = range(1, min(len(p_right), len(c_right)) + 1)
        pairs += [(p_right[-j], c_right[-j], len(consumer) - j) for j in right]
    kept: list[_Pair] = []
    for p, c, at in pairs:
        if isinstance(p, Named | Fixed) and isinstance(c, Named | Fixed):
            kept.append((p, c, at))
    return tuple(kept)


class ShapeSolver:
    """Union-find over named dims, one variable per (scope, name); scopes are call sites."""

    __slots__ = ("_bound", "_ids", "_parent", "_poisoned", "_size")

    def __init__(self) -> None:
        self._ids: dict[tuple[Hashable, str], int] = {}
        self._parent: list[int] = []
        self._size: list[int] = []  # members per class, for union by size
        # Per root, kept sparse: the size a class is bound to and where that came from, and the classes
        # that already reported a conflict (they stay silent: downstream repeats are not new errors).
        self._bound: dict[int, tuple[int, str]] = {}
        self._poisoned: set[int] = set()

    def _var(self, scope: Hashable, name: str) -> int:
        """The root of the class of a named dim in a scope; a new variable on first use."""
        key = (scope, name)
        var = self._ids.get(key)
        if var is None:
            var = self._ids[key] = len(self._parent)
            self._parent.append(var)
            self._size.append(1)
            return var
        parent = self._parent
        while parent[var] != var:  # path halving
            parent[var] = parent[parent[var]]
            var = parent[var]
        return var

    def size_of(self, scope: Hashable, name: str) -> int | None:
        """The size a named dim of a scope is bound to, or None while it is free."""
        if (scope, name) not in self._ids:
            return None
        bound = self._bound.get(self._var(scope, name))
        return None if bound is None else bound[0]

    def _bind(self, root: int, size: int, where: str) -> tuple[int, str] | None:
        """Bind a class to a size; on a new disagreement, the earlier size and its origin."""
        bound = self._bound.get(root)
        if bound is None:
            self._bound[root] = (size, where)
            return None
        if bound[0] == size or root in self._poisoned:
            return None
        self._poisoned.add(root)
        return bound

    def _join(self, a: int, b: int) -> tuple[tuple[int, str], tuple[int, str]] | None:
        """Merge two classes, the smaller under the larger; on a new clash, both bindings."""
        if a == b:
            return None
        if self._size[a] < self._size[b]:
            a, b = b, a
        self._parent[b] = a
        self._size[a] += self._size[b]
        bound_a, bound_b = self._bound.get(a), self._bound.pop(b, None)
        poisoned = a in self._poisoned or b in self._poisoned
        self._poisoned.discard(b)
        if bound_a is None:
            if bound_b is not None:
                self._bound[a] = bound_b
        elif bound_b is not None and bound_a[0] != bound_b[0] and not poisoned:
            self._poisoned.add(a)
            return bound_a, bound_b
        if poisoned:
            self._poisoned.add(a)
        return None

    def unify(
        self,
        producer: ArraySpec,
        producer_scope: Hashable,
        consumer: ArraySpec,
        consumer_scope: Hashable,
        where: str,
    ) -> list[str]:
        """Constrain one edge; return a message for each new conflict (each conflict reported once)."""
        pairs = _align(producer.dims, consumer.dims)
        if pairs is None:
            return [f"{_rank_text(producer)} vs {_rank_text(consumer)}"]
        messages: list[str] = []
        for p_dim, c_dim, at in pairs:
            if isinstance(p_dim, Fixed):
                if isinstance(c_dim, Fixed):
                    if p_dim.size != c_dim.size:
                        messages.append(f"dim {at} of {where} is {c_dim.size} but {p_dim.size} here")
                elif clash := self._bind(self._var(consumer_scope, c_dim.name), p_dim.size, where):
                    size, origin = clash
                    messages.append(
                        f"dim {c_dim.name!r} of {where} is {size} (from {origin}) but {p_dim.size} here"
                    )
            elif isinstance(c_dim, Fixed):
                if clash := self._bind(self._var(producer_scope, p_dim.name), c_dim.size, where):
                    size, origin = clash
                    value = f"{p_dim.name!r} is {size} here (from {origin})"
                    messages.append(f"dim {at} of {where} is {c_dim.size} but {value}")
            elif both := self._join(
                self._var(producer_scope, p_dim.name), self._var(consumer_scope, c_dim.name)
            ):
                (size_a, origin_a), (size_b, origin_b) = both
                same = p_dim.name == c_dim.name
                dims = f"dim {p_dim.name!r}" if same else f"dims {p_dim.name!r} and {c_dim.name!r}"
                messages.append(f"named {dims} bound to {size_a} at {origin_a} and to {size_b} at {origin_b}")
        return messages

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


@attrs.frozen
class Named:
    """A named dim (``b``): one size per scope, shared by every port of that scope."""

    name: str

    def __str__(self) -> str:
        return self.name


@attrs.frozen
class Fixed:
    """A dim of known size (``4``)."""

    size: int

    def __str__(self) -> str:
        return str(self.size)


@attrs.frozen
class Skip:
    """A dim that is never constrained: anonymous ``_``, broadcastable ``#h``, symbolic ``h*2``."""

    text: str = "_"

    def __str__(self) -> str:
        return self.text


@attrs.frozen
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
        dtypes = getattr(hint, "dtypes", None)
        # jaxtyping's Shaped stores an _AnyDtype object instead of a tuple of names.
        names = frozenset(map(str, dtypes)) if isinstance(dtypes, tuple | list | frozenset) else None
        return ArraySpec(names, tuple(map(_dim, getattr(hint, "dims", ()))), getattr(hint, "__name__", ""))
    except Exception:
        return None


_array_spec_cached = functools.lru_cache(maxsize=1 << 16)(_array_spec)


def array_spec(hint: object) -> ArraySpec | None:
    """The dims and dtypes of a jaxtyping annotation (also inside Optional/Union of one array), else None."""
    try:
        return _array_spec_cached(hint)
    except TypeError:  # unhashable hint; _array_spec itself never raises
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


def _align(producer: tuple[Dim, ...], consumer: tuple[Dim, ...]) -> list[tuple[Dim, Dim, int]] | None:
    """(producer dim, consumer dim, consumer position) pairs that must agree; None when ranks cannot."""
    p_head, p_tail, p_var = _split(producer)
    c_head, c_tail, c_var = _split(consumer)
    if not p_var and not c_var:
        if len(producer) != len(consumer):
            return None
        return list(zip(producer, consumer, range(len(consumer)), strict=True))
    if (not c_var and len(consumer) < len(p_head) + len(p_tail)) or (
        not p_var and len(producer) < len(c_head) + len(c_tail)
    ):
        return None
    # Match from the left up to the first variadic dim, and from the right back to it; a side without
    # one reads the same dims from either end.  Whatever a variadic covers stays unconstrained.
    p_left, p_right = (p_head, p_tail) if p_var else (producer, producer)
    c_left, c_right = (c_head, c_tail) if c_var else (consumer, consumer)
    pairs = [(p_left[i], c_left[i], i) for i in range(min(len(p_left), len(c_left)))]
    right = range(1, min(len(p_right), len(c_right)) + 1)
    pairs += [(p_right[-j], c_right[-j], len(consumer) - j) for j in right]
    return pairs


class ShapeSolver:
    """Union-find over named dims, one variable per (scope, name); scopes are call sites."""

    __slots__ = ("_bound", "_ids", "_names", "_origin", "_parent", "_poisoned", "_rank")

    def __init__(self) -> None:
        self._ids: dict[tuple[Hashable, str], int] = {}
        self._parent: list[int] = []
        self._rank: list[int] = []  # class size, for union by size
        self._names: list[str] = []
        # Per root: the size the class is bound to, where that came from, and whether it already
        # reported a conflict (then it stays silent: downstream repeats are not new errors).
        self._bound: list[int | None] = []
        self._origin: list[str] = []
        self._poisoned: list[bool] = []

    def _var(self, scope: Hashable, name: str) -> int:
        """The variable of a named dim in a scope, created on first use."""
        key = (scope, name)
        var = self._ids.get(key)
        if var is None:
            var = self._ids[key] = len(self._parent)
            self._parent.append(var)
            self._rank.append(1)
            self._names.append(name)
            self._bound.append(None)
            self._origin.append("")
            self._poisoned.append(False)
        return var

    def _find(self, var: int) -> int:
        """The root of a variable's class, halving the path on the way."""
        parent = self._parent
        while parent[var] != var:
            parent[var] = parent[parent[var]]
            var = parent[var]
        return var

    def _merge(self, a: int, b: int) -> int:
        """Join two roots, the smaller under the larger; the new root keeps either binding."""
        if self._rank[a] < self._rank[b]:
            a, b = b, a
        self._parent[b] = a
        self._rank[a] += self._rank[b]
        if self._bound[a] is None:
            self._bound[a], self._origin[a] = self._bound[b], self._origin[b]
        return a

    def size_of(self, scope: Hashable, name: str) -> int | None:
        """The size a named dim of a scope is bound to, or None while it is free."""
        var = self._ids.get((scope, name))
        return None if var is None else self._bound[self._find(var)]

    def _bind(self, var: int, size: int, where: str) -> tuple[int, str] | None:
        """Bind a variable's class to a size; on a new disagreement, the earlier size and its origin."""
        root = self._find(var)
        bound = self._bound[root]
        if self._poisoned[root] or bound == size:
            return None
        if bound is None:
            self._bound[root], self._origin[root] = size, where
            return None
        self._poisoned[root] = True
        return bound, self._origin[root]

    def _join(self, a: int, b: int) -> str | None:
        """Merge the classes of two variables; a message when they were bound to different sizes."""
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return None
        size_a, size_b = self._bound[ra], self._bound[rb]
        poisoned = self._poisoned[ra] or self._poisoned[rb]
        clash = not poisoned and size_a is not None and size_b is not None and size_a != size_b
        origin_a, origin_b = self._origin[ra], self._origin[rb]
        root = self._merge(ra, rb)
        self._poisoned[root] = poisoned or clash
        if not clash:
            return None
        name_a, name_b = self._names[a], self._names[b]
        names = f"named dim {name_a!r}" if name_a == name_b else f"named dims {name_a!r} and {name_b!r}"
        return f"{names} bound to {size_a} at {origin_a} and to {size_b} at {origin_b}"

    def _check(
        self, p_dim: Dim, p_scope: Hashable, c_dim: Dim, c_scope: Hashable, *, at: int, where: str
    ) -> str | None:
        """Constrain one aligned pair of dims (the consumer's dim number at); a new conflict, or None."""
        if isinstance(p_dim, Fixed) and isinstance(c_dim, Fixed):
            if p_dim.size != c_dim.size:
                return f"dim {at} of {where} is {c_dim.size} but {p_dim.size} here"
        elif isinstance(p_dim, Named) and isinstance(c_dim, Named):
            return self._join(self._var(p_scope, p_dim.name), self._var(c_scope, c_dim.name))
        elif isinstance(c_dim, Named) and isinstance(p_dim, Fixed):
            clash = self._bind(self._var(c_scope, c_dim.name), p_dim.size, where)
            if clash is not None:
                bound, origin = clash
                return f"dim {c_dim.name!r} of {where} is {bound} (from {origin}) but {p_dim.size} here"
        elif isinstance(p_dim, Named) and isinstance(c_dim, Fixed):
            clash = self._bind(self._var(p_scope, p_dim.name), c_dim.size, where)
            if clash is not None:
                bound, origin = clash
                return (
                    f"dim {at} of {where} is {c_dim.size} but {p_dim.name!r} is {bound} here (from {origin})"
                )
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
        found = (self._check(p, producer_scope, c, consumer_scope, at=at, where=where) for p, c, at in pairs)
        return [message for message in found if message is not None]

"""Composites, blocks made of blocks: Sequential (by name), Loop (carries state), Graph (explicit edges),
Switch (runs one of its cases) and Bound (a block with some inputs fixed, what `df.specialize` makes).

This module is data and validation only: a composite's ports (derived by the lowering) and its compiled
program come from the layers above, which `import dfgraph` connects here (`connect`).
"""

from __future__ import annotations

import enum
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NoReturn, Protocol

from dfgraph.block import definition_error, name_problem, name_tuple, safe_repr
from dfgraph.ports import Port

Interface = tuple[tuple[Port, ...], tuple[Port, ...]]


class Runnable(Protocol):
    """What compiling a composite gives: something that runs it (a dfgraph Program)."""

    def run(self, /, **inputs: Any) -> Any:
        """Run with these inputs; a mapping of every output."""


class _Semantics:
    """Where composites find their meaning: this module is data; the layers above it plug in here.

    `import dfgraph` connects them (`connect`): the lowering derives a composite's ports, the compiler
    turns it into a program. Keeping them out of this module keeps the import graph a tree.
    """

    interface: Callable[[Any], Interface] | None = None
    compile: Callable[[Any], Runnable] | None = None


def connect(*, interface: Callable[[Any], Interface], compile: Callable[[Any], Runnable]) -> None:
    """Give composites their interface derivation and their compiler (done once, by `import dfgraph`)."""
    _Semantics.interface = interface
    _Semantics.compile = compile


def _unconnected() -> NoReturn:
    # unreachable through `import dfgraph`: importing any submodule runs the package's __init__ first
    raise RuntimeError("dfgraph.compose is not connected to the compiler: import dfgraph first")


def is_block(obj: object) -> bool:
    """True for anything usable as a block: a composite, or an object with name, inputs, outputs, a call."""
    if isinstance(obj, Composite):
        return True
    return all(_has(obj, a) for a in ("name", "inputs", "outputs")) and callable(obj)


def _has(obj: object, attribute: str) -> bool:
    try:
        return hasattr(obj, attribute)
    except Exception:  # it exists, but reading it fails: reported as DF006 where its ports are read
        return True


def _check_block(obj: object, where: str) -> None:
    if not is_block(obj):
        raise definition_error(
            where,
            f"{safe_repr(obj)} is not a block: a block has name, inputs and outputs and is callable",
            "decorate the function or class with @df.block, or build ports with df.Port",
        )


def _check_name(value: object, what: str, where: str) -> str:
    """`value` as a plain str when it is a name dfgraph binds (an NFKC-normal identifier), else DF006."""
    problem = name_problem(value, identifier=True)
    if problem is not None:
        raise definition_error(where, f"{what} must be a name (a Python identifier): {problem}")
    return str.__str__(value)  # a plain str, even from a str subclass


def block_name(blk: object, where: str) -> str:
    """The name of a block used as a path segment: a readable name (see `name_problem`), else DF006."""
    try:
        name = getattr(blk, "name", None)
    except Exception as exc:
        raise definition_error(
            where, f"the name of {safe_repr(blk)} cannot be read: {type(exc).__name__}"
        ) from None
    problem = name_problem(name)
    if problem is not None:
        raise definition_error(
            where,
            f"the block's name is not usable in a path: {problem}",
            "give the block a name, or name it in a mapping: Sequential({'step': block})",
        )
    return str.__str__(name)


# One lock for every composite's compile-on-first-call: an instance holds no lock, so composites pickle
# and deep-copy; re-entrant, in case a block compiles another composite while one is being compiled.
_compile_lock = threading.RLock()


class _Sealing(type):
    """Seals each composite once its constructor has run: later attribute assignment raises."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        object.__setattr__(obj, "_sealed", True)
        return obj


class Composite(metaclass=_Sealing):
    """Base of the composites: the interface (ports) is derived from the wiring, once, on first use.

    Immutable once built (assigning an attribute raises AttributeError); picklable and deep-copyable
    when its blocks are (the caches of the interface and the compiled program are not pickled).
    `defined_at` is the (file, line) where it was built, which diagnostics report.
    """

    name: str
    _CACHES = ("_interface", "_program")

    def __init__(self) -> None:
        self._interface: Interface | None = None
        self._program: Runnable | None = None
        # (file, line) of the code that built it, for diagnostics: the first frame outside this module
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_code.co_filename == __file__:
            frame = frame.f_back
        self.defined_at: tuple[str, int] = (frame.f_code.co_filename, frame.f_lineno)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_sealed" in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__} {self.name!r} is immutable: build a new one instead of "
                f"assigning {name!r}"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} {self.name!r} is immutable: cannot delete {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        """The definition, without the caches (they are rebuilt on first use)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHES}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the definition; the caches start empty."""
        self.__dict__.update(state)
        self.__dict__.update(dict.fromkeys(self._CACHES))

    def _ports(self) -> Interface:
        interface = self._interface
        if interface is None:
            derive = _Semantics.interface  # the lowering knows the semantics
            if derive is None:
                _unconnected()
            interface = derive(self)
            object.__setattr__(self, "_interface", interface)  # a cache, not part of the definition
        return interface

    @property
    def inputs(self) -> tuple[Port, ...]:
        """The unbound inputs of this composite."""
        return self._ports()[0]

    @property
    def outputs(self) -> tuple[Port, ...]:
        """The outputs of this composite."""
        return self._ports()[1]

    def __call__(self, **inputs: Any) -> Any:
        """Run the composite (compiled once, on first call); returns a mapping of every output."""
        program = self._program
        if program is None:
            with _compile_lock:  # compiled once even when the first calls race
                program = self._program
                if program is None:
                    compile_block = _Semantics.compile
                    if compile_block is None:
                        _unconnected()
                    program = compile_block(self)
                    object.__setattr__(self, "_program", program)
        return program.run(**inputs)


def _named_children(blocks: tuple[Any, ...], where: str) -> tuple[tuple[str, Any], ...]:
    if len(blocks) == 1 and isinstance(blocks[0], Mapping):
        items = [(_check_name(key, "a block name", where), child) for key, child in blocks[0].items()]
        for key, child in items:
            _check_block(child, f"{where}/{key}")
        return tuple(items)
    named: list[tuple[str, Any]] = []
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}  # per base name, so 100,000 copies of one block stay linear
    for index, child in enumerate(blocks):
        _check_block(child, f"{where}[{index}]")
        base = child.name if isinstance(child, Composite) else block_name(child, f"{where}[{index}]")
        unique, k = base, next_suffix.get(base, 2)
        while unique in taken:
            unique, k = f"{base}_{k}", k + 1
        next_suffix[base] = k
        taken.add(unique)
        named.append((unique, child))
    return tuple(named)


class Sequential(Composite):
    """Blocks in order; an input reads the latest earlier output of the same name, else is an input."""

    def __init__(self, *blocks: Any, name: str = "sequential") -> None:
        super().__init__()
        self.name = _check_name(name, "name=", "sequential")
        self.children: tuple[tuple[str, Any], ...] = _named_children(blocks, self.name)

    def __repr__(self) -> str:
        return f"Sequential({', '.join(n for n, _ in self.children)}, name={self.name!r})"


class Loop(Composite):
    """Runs `body` `times` times or once per item of `over`, carrying state (read-before-write names)."""

    def __init__(
        self,
        body: Any,
        *,
        times: str | None = None,
        over: str | None = None,
        item: str = "t",
        index: str = "i",
        carry: Iterable[str] | None = None,
        until: str | None = None,
        progress: bool = False,
        name: str = "loop",
    ) -> None:
        super().__init__()
        self.name = _check_name(name, "name=", "loop")
        _check_block(body, f"{self.name}/body")
        if not isinstance(body, Composite):
            block_name(body, f"{self.name}/body")  # the body's path segment
        if (times is None) == (over is None):
            raise definition_error(
                self.name,
                "a Loop needs exactly one of times= or over=",
                "times='num_steps' runs the body num_steps times; over='timesteps' once per item",
            )
        self.body = body
        self.times = None if times is None else _check_name(times, "times=", self.name)
        self.over = None if over is None else _check_name(over, "over=", self.name)
        self.item = _check_name(item, "item=", self.name)
        self.index = _check_name(index, "index=", self.name)
        if self.over is not None and self.item == self.index:
            raise definition_error(self.name, f"item= and index= are both {item!r}; they must differ")
        # a bare string is refused (as for mutates= and batch=): it is not silently one name or its letters
        self.carry = None if carry is None else name_tuple(carry, "carry=", self.name, identifier=True)
        # the body output (a bool) that ends the loop after the iteration that wrote True
        self.until = None if until is None else _check_name(until, "until=", self.name)
        self.progress = bool(progress)

    @property
    def control(self) -> str:
        """The name of the input that drives the loop (`times` or `over`)."""
        return self.times if self.times is not None else str(self.over)

    def __repr__(self) -> str:
        how = f"times={self.times!r}" if self.times is not None else f"over={self.over!r}"
        until = "" if self.until is None else f", until={self.until!r}"
        return f"Loop({getattr(self.body, 'name', self.body)!r}, {how}{until}, name={self.name!r})"


def _endpoint(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise definition_error(
            where, f"an edge end must be 'node.port' or an input name, got {safe_repr(value)}"
        )
    return str.__str__(value)


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes (`Graph.nodes`); pickles and deep-copies as a plain mapping."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a Graph's nodes are immutable: build a new Graph instead")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))


class Graph(Composite):
    """Named nodes and explicit edges ('node.port' → 'node.port'); unwired inputs are graph inputs.

    An edge source may also be a bare name: the graph input of that name (renaming it). `outputs`
    selects and names the graph's outputs: a list of 'node.port' (named by port) or a mapping
    name → 'node.port'; by default every node output is an output of the graph.
    """

    def __init__(
        self,
        nodes: Mapping[str, Any],
        edges: Iterable[tuple[str, str]] = (),
        outputs: Iterable[str] | Mapping[str, str] | None = None,
        *,
        name: str = "graph",
    ) -> None:
        super().__init__()
        self.name = _check_name(name, "name=", "graph")
        if not isinstance(nodes, Mapping):
            raise definition_error(
                self.name, f"nodes= must be a mapping name -> block, got {type(nodes).__name__}"
            )
        self.nodes: dict[str, Any] = FrozenDict(
            {_check_name(k, "a node name", self.name): n for k, n in nodes.items()}
        )
        for key, node in self.nodes.items():
            _check_block(node, f"{self.name}/{key}")
        checked: list[tuple[str, str]] = []
        if isinstance(edges, str | Mapping) or not isinstance(edges, Iterable):
            raise definition_error(
                self.name,
                f"edges= must be a list of (source, target) pairs, got {type(edges).__name__} "
                f"{safe_repr(edges)}",
                "write edges=[('a.x', 'b.x')], or leave edges= out for no edges",
            )
        for edge in edges:
            if not isinstance(edge, tuple | list) or len(edge) != 2:
                raise definition_error(
                    self.name, f"an edge is a pair (source, target), got {safe_repr(edge)}"
                )
            checked.append((_endpoint(edge[0], self.name), _endpoint(edge[1], self.name)))
        self.edges: tuple[tuple[str, str], ...] = tuple(checked)
        # (output name, 'node.port') pairs; a list keeps duplicates so the checker can report them.
        self.output_map: tuple[tuple[str, str], ...] | None
        if outputs is None:
            self.output_map = None
        elif isinstance(outputs, Mapping):
            self.output_map = tuple(
                (_check_name(k, "an output name", self.name), _endpoint(v, self.name))
                for k, v in outputs.items()
            )
        elif isinstance(outputs, str) or not isinstance(outputs, Iterable):
            raise definition_error(
                self.name,
                f"outputs= is a list or mapping of 'node.port', got {type(outputs).__name__} "
                f"{safe_repr(outputs)}",
            )
        else:
            ends = [_endpoint(v, self.name) for v in outputs]
            self.output_map = tuple((v.rsplit(".", 1)[-1], v) for v in ends)

    def __repr__(self) -> str:
        return f"Graph({', '.join(self.nodes)}, {len(self.edges)} edges, name={self.name!r})"


class Switch(Composite):
    """Runs exactly one of its cases, chosen at run time by a key (a str).

    `cases` maps each key to a block. `on` is either a name (a graph input or an earlier output, read
    like any input) or a selector block, read like any block, whose one output is the key. A name every
    case writes is an output (typed as the join of the cases' types); a name only some cases write is an
    output when it had a value before the Switch (the other cases pass that value through).
    """

    def __init__(self, cases: Mapping[str, Any], *, on: str | Any, name: str = "switch") -> None:
        super().__init__()
        self.name = _check_name(name, "name=", "switch")
        if not isinstance(cases, Mapping) or not cases:
            raise definition_error(
                self.name,
                f"cases= must be a non-empty mapping key -> block, got {safe_repr(cases)}",
                "write df.Switch({'text2img': t2i, 'img2img': i2i}, on='mode')",
            )
        checked: dict[str, Any] = {}
        for key, case in cases.items():
            if not isinstance(key, str):
                raise definition_error(self.name, f"a case key must be a str, got {safe_repr(key)}")
            problem = name_problem(key)
            if problem is not None:
                raise definition_error(self.name, f"case key {safe_repr(key)}: {problem}")
            _check_block(case, f"{self.name}/{key}")
            checked[str.__str__(key)] = case
        self.cases: dict[str, Any] = FrozenDict(checked)
        self.on: str | None = None
        self.selector: Any = None
        if isinstance(on, str):
            self.on = _check_name(on, "on=", self.name)
        else:
            _check_block(on, f"{self.name}/on")
            if not isinstance(on, Composite):
                block_name(on, f"{self.name}/on")
            self.selector = on

    @property
    def selector_name(self) -> str:
        """The path segment of the selector block ('' when `on` is a name)."""
        return "" if self.selector is None else str(getattr(self.selector, "name", "on"))

    def __repr__(self) -> str:
        on = repr(self.on) if self.on is not None else self.selector_name
        return f"Switch({', '.join(self.cases)}, on={on}, name={self.name!r})"


class Constants:
    """The leaf block a `Bound` lowers to first: no inputs; its outputs are the bound values."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.name = "bound"
        self.values = dict(values)
        self.inputs: tuple[Port, ...] = ()
        self.outputs = tuple(Port(k, _constant_type(v)) for k, v in self.values.items())

    def __call__(self) -> dict[str, Any]:
        """The bound values, by name."""
        return dict(self.values)


def _constant_type(value: object) -> Any:
    """A bound value's type: a Literal of it when it can be one (so it meets Literal ports)."""
    if value is None or isinstance(value, str | bytes | bool | int | enum.Enum):
        return Literal[value]
    return type(value)


class Bound(Composite):
    """`block` with the inputs named in `values` fixed to those values (they are no longer inputs).

    Transparent in paths: the block's own blocks keep their paths. `df.specialize` builds these."""

    def __init__(self, block: Any, values: Mapping[str, Any], *, name: str | None = None) -> None:
        super().__init__()
        _check_block(block, "bound")
        self.block = block
        self.name = _check_name(
            name if name is not None else getattr(block, "name", "bound"), "name=", "bound"
        )
        if not isinstance(values, Mapping):
            raise definition_error(
                self.name, f"values must be a mapping name -> value, got {safe_repr(values)}"
            )
        self.values: dict[str, Any] = FrozenDict(
            {_check_name(k, "a bound name", self.name): v for k, v in values.items()}
        )

    def __repr__(self) -> str:
        inner = getattr(self.block, "name", self.block)
        return f"Bound({inner!r}, {tuple(self.values)!r}, name={self.name!r})"

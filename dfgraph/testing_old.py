"""Hypothesis strategies for property-testing dfgraph graphs: inputs, counter loops, typed and broken graphs.

    from hypothesis import given, strategies as st
    from dfgraph.testing import inputs_for

    prog = df.compile(my_loop)

    @given(inputs_for(prog, num_steps=st.integers(0, 20)))
    def test_my_loop_runs(inputs):
        prog(**inputs)

The stream-schedule simulator is here too (`simulate`, `serial`, `happens_before`, `SimulationError`):
it runs a schedule under random legal interleavings of its streams and checks every edge with vector
clocks, so a schedule is proven correct without a GPU.

`counter_loops`, `well_typed_graphs`, `mistyped_graphs` and `malformed_graphs` generate whole graphs with
what the engine must say about them (the expected counter value, no error, one error at one path, some
error): each expectation is computed from the random structure itself, never by running dfgraph.
"""

from __future__ import annotations

import collections.abc
import contextlib
import functools
import inspect
import keyword
import random
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from beartype import BeartypeConf, BeartypeStrategy
from beartype.door import is_bearable
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from dfgraph import boundary, types
from dfgraph.block import Block, block
from dfgraph.compose import Graph, Loop, Sequential
from dfgraph.diagnostics import did_you_mean
from dfgraph.ir import LoopOp, consumers, lower
from dfgraph.ports import REQUIRED, Port
from dfgraph.program import Program
from dfgraph.simulator import SimulationError, SimulationResult, happens_before, serial, simulate

__all__ = [
    "MAX_LOOP_ITEMS",
    "MAX_LOOP_STEPS",
    "CounterCase",
    "Injected",
    "Malformed",
    "SimulationError",
    "SimulationResult",
    "counter_loops",
    "dags",
    "happens_before",
    "increment",
    "inputs_for",
    "malformed_graphs",
    "mistyped_graphs",
    "serial",
    "simulate",
    "well_typed_graphs",
]

MAX_LOOP_STEPS = 8  # inputs_for draws an external times= count from 0..MAX_LOOP_STEPS
MAX_LOOP_ITEMS = 4  # and an external over= iterable as a list of at most this many items

# What inputs_for draws for Any and object: st.from_type(object) draws every kind of object there is
# (os.environ among them), which makes failures unreadable.
_ANYTHING: SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)


# -- inputs_for --------------------------------------------------------------------------------------------


def inputs_for(
    target: Program | Block, /, **overrides: SearchStrategy[Any]
) -> SearchStrategy[dict[str, Any]]:
    """Draw input mappings that a program (or block) accepts, with a strategy per name in `overrides`."""
    blk = target.block if isinstance(target, Program) else target
    ports: tuple[Port, ...] = tuple(target.inputs)
    names = {p.name for p in ports}
    for name in overrides:
        if name not in names:
            raise InvalidArgument(
                f"inputs_for: {getattr(blk, 'name', blk)!r} has no input {name!r};"
                f"{did_you_mean(name, names)} its inputs are: {', '.join(sorted(names)) or '(none)'}"
            )
    readers, controls = _reader_hints(blk)
    fields: list[tuple[str, SearchStrategy[Any], bool]] = []
    for port in ports:
        if port.name in overrides:
            fields.append((port.name, overrides[port.name], False))
            continue
        strategy = _input_strategy(port, readers.get(port.name, [port.type]), controls.get(port.name))
        if strategy is None:  # not drawable, but optional: leave it out
            fields.append((port.name, st.just(port.default), True))
        else:
            fields.append((port.name, strategy, not port.required))

    @st.composite
    def draw_inputs(draw: st.DrawFn) -> dict[str, Any]:
        drawn: dict[str, Any] = {}
        for name, strategy, optional in fields:
            if optional and draw(st.booleans()):
                continue
            drawn[name] = draw(strategy)
        return drawn

    return draw_inputs()


@attrs.frozen
class _Control:
    """How an external input drives a loop: a count (times=) or an iterable (over=) of item_hint items."""

    kind: str
    item_hint: Any = Any


def _reader_hints(blk: object) -> tuple[dict[str, list[Any]], dict[str, _Control]]:
    """The port types reading each external input, and which inputs drive loops (empty when not lowerable)."""
    try:
        lowered = lower(blk)
    except Exception:
        return {}, {}
    readers = {
        name: [port.type for _, port in consumers(value)]
        for name, value in lowered.inputs.items()
        if value.readers
    }
    controls: dict[str, _Control] = {}
    for op in lowered.ops():
        if not isinstance(op, LoopOp) or op.inputs[0].value.kind != "input":
            continue
        control = op.inputs[0].value
        if op.loop.times is not None:
            controls[control.name] = _Control("times")
        elif op.item_value is not None:
            item_readers = [r.inputs[k].port.type for r, k in op.item_value.readers]
            item = types.narrow(item_readers) if item_readers else Any
            controls[control.name] = _Control("over", Any if item is None else item)
    return readers, controls


def _input_strategy(
    port: Port, reader_hints: list[Any], control: _Control | None
) -> SearchStrategy[Any] | None:
    """The values of one input: drawn from its port type, checked against every other reader's type."""
    base: SearchStrategy[Any] | None
    if control is not None and control.kind == "times" and types.is_assignable(int, port.type):
        base = st.integers(0, MAX_LOOP_STEPS)
    elif control is not None and control.kind == "over" and types.is_assignable(list[Any], port.type):
        item = _from_hint(control.item_hint)
        base = None if item is None else st.lists(item, max_size=MAX_LOOP_ITEMS)
    else:
        base = _from_hint(port.type)
    if base is None:
        if port.required:
            raise InvalidArgument(
                f"inputs_for: cannot draw input {port.name!r} of type {types.describe(port.type)}; "
                f"pass a strategy for it: inputs_for(..., {port.name}=...)"
            )
        return None
    # One input read with several types must satisfy all of them; the port shows only the narrowest.
    others = {id(h): h for h in reader_hints if h is not port.type and h != port.type}
    predicates = [p for p in map(_accepts, others.values()) if p is not None]
    if predicates:
        return base.filter(lambda value: all(p(value) for p in predicates))
    return base


_FULL_CHECK = BeartypeConf(strategy=BeartypeStrategy.On, is_pep484_tower=True)


def _accepts(hint: Any) -> Callable[[object], bool] | None:
    """A deterministic predicate for values of the hint (every item checked), None when anything goes."""
    hint = types.normalize(hint)[0]
    if hint is Any or hint is object:
        return None
    classes = boundary.plain_class(hint)
    if classes is not None:
        return lambda value: isinstance(value, classes)

    def check(value: object) -> bool:
        state = random.getstate()  # beartype draws from the global random even when checking every item
        try:
            return is_bearable(value, hint, conf=_FULL_CHECK)
        except Exception:
            return True
        finally:
            random.setstate(state)

    return check


def _from_hint(hint: Any) -> SearchStrategy[Any] | None:
    """st.from_type for a port type; Any and object draw plain values; None when it cannot be resolved."""
    hint = types.normalize(hint)[0]
    if hint is Any or hint is object:
        return _ANYTHING
    if types.is_array(hint) or any(map(types.is_array, typing.get_args(hint))):
        return None  # a shaped tensor type: from_type would draw tensors of the wrong shape
    try:
        strategy: SearchStrategy[Any] = st.from_type(hint)
        strategy.validate()
    except Exception:
        return None
    return strategy


# -- blocks made on the fly --------------------------------------------------------------------------------


def _function_block(
    name: str,
    inputs: Sequence[tuple[str, Any, Any]],
    outputs: Sequence[tuple[str, Any]],
    body: Callable[[dict[str, Any]], Any],
) -> Block:
    """A @df.block function named `name` with ports (name, type, default) -> (name, type), running `body`."""
    params: list[inspect.Parameter] = []
    keyword_only = False
    for port, hint, default in inputs:
        keyword_only = keyword_only or default is not REQUIRED  # required positionals come first
        params.append(
            inspect.Parameter(
                port,
                inspect.Parameter.KEYWORD_ONLY if keyword_only else inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=hint,
                default=inspect.Parameter.empty if default is REQUIRED else default,
            )
        )
    order = [port for port, _, _ in inputs]
    returns: Any
    out: str | tuple[str, ...] | None
    if len(outputs) == 1:
        returns, out = outputs[0][1], outputs[0][0]
    elif outputs:
        returns, out = tuple[tuple(h for _, h in outputs)], tuple(n for n, _ in outputs)  # type: ignore[misc]
    else:
        returns, out = None, None

    def fn(*args: Any, **kwargs: Any) -> Any:
        values = dict(zip(order, args, strict=False))
        values.update(kwargs)
        return body(values)

    fn.__name__ = fn.__qualname__ = name
    setattr(fn, "__signature__", inspect.Signature(params, return_annotation=returns))  # noqa: B010
    fn.__annotations__ = {port: hint for port, hint, _ in inputs} | {"return": returns}
    made: Any = block(outputs=out, name=name)(fn)
    return typing.cast(Block, made)


def _is_name(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def increment(k: int, name: str = "x") -> Block:
    """A block reading the int `name` and writing `name + k`; it is named add_<k> (sub_<-k> when k < 0)."""
    if not _is_name(name):
        raise InvalidArgument(f"increment: name must be an identifier, got {name!r}")
    block_name = f"add_{k}" if k >= 0 else f"sub_{-k}"
    return _function_block(block_name, [(name, int, REQUIRED)], [(name, int)], lambda v: v[name] + k)


# -- counter loops -----------------------------------------------------------------------------------------


@attrs.frozen
class CounterCase:
    """A nest of Sequentials, Loops and Graphs adding to `x`: the block, its inputs and the final `x`."""

    block: Block = attrs.field(repr=False)
    inputs: dict[str, int]
    expected: int
    structure: str


@attrs.frozen
class _Inc:
    k: int


@attrs.frozen
class _AddVar:
    """x += the value of a loop index or item."""

    name: str


@attrs.frozen
class _Seq:
    name: str | None  # None: the default name
    mapping: bool
    children: tuple[_Node, ...]


@attrs.frozen
class _Rep:
    """Loop(body, times=control), or over the list _items(control) made by a block just before it."""

    serial: int
    name: str | None
    body: _Node
    over: bool

    @property
    def control(self) -> str:
        return f"n{self.serial}"

    @property
    def index(self) -> str:
        return f"i{self.serial}"

    @property
    def item(self) -> str:
        return f"t{self.serial}"


@attrs.frozen
class _Chain:
    """A Graph of increments wired x -> x in a chain, its nodes declared in a shuffled order."""

    ks: tuple[int, ...]
    declared: tuple[int, ...]  # a permutation of range(len(ks))
    wire_input: bool  # an explicit edge from the graph input x into the first node


_Node = _Inc | _AddVar | _Seq | _Rep | _Chain


def _item(step: int) -> int:
    """The item of an over= counter loop at a step (not the step itself, so index and item differ)."""
    return 3 * step + 1


def _interpret(node: _Node, x: int, counts: Mapping[str, int], env: dict[str, int]) -> int:
    """Run the structure by hand: what `x` is after it (env holds the enclosing loops' index and item)."""
    if isinstance(node, _Inc):
        return x + node.k
    if isinstance(node, _AddVar):
        return x + env[node.name]
    if isinstance(node, _Chain):
        return x + sum(node.ks)
    if isinstance(node, _Seq):
        for child in node.children:
            x = _interpret(child, x, counts, env)
        return x
    for step in range(counts[node.control]):
        inner = {**env, node.index: step}
        if node.over:
            inner[node.item] = _item(step)
        x = _interpret(node.body, x, counts, inner)
    return x


def _show(node: _Node) -> str:
    if isinstance(node, _Inc):
        return f"inc({node.k})"
    if isinstance(node, _AddVar):
        return f"add({node.name})"
    if isinstance(node, _Chain):
        return f"Graph(chain {list(node.ks)}, declared {list(node.declared)})"
    if isinstance(node, _Seq):
        return f"Seq({', '.join(map(_show, node.children))})"
    how = f"over {node.control} items as {node.item}" if node.over else node.control
    return f"Loop[{how}, index {node.index}]({_show(node.body)})"


def _build_counter(node: _Node) -> Block:
    if isinstance(node, _Inc):
        return increment(node.k)
    if isinstance(node, _AddVar):
        name = node.name
        return _function_block(
            f"add_{name}",
            [("x", int, REQUIRED), (name, int, REQUIRED)],
            [("x", int)],
            lambda v: v["x"] + v[name],
        )
    if isinstance(node, _Chain):
        keys = [f"g{j}" for j in range(len(node.ks))]
        edges = [(f"{keys[j]}.x", f"{keys[j + 1]}.x") for j in range(len(keys) - 1)]
        if node.wire_input:
            edges.insert(0, ("x", f"{keys[0]}.x"))
        nodes = {keys[j]: increment(node.ks[j]) for j in node.declared}
        return Graph(nodes, edges, outputs=[f"{keys[-1]}.x"], name="chain")
    if isinstance(node, _Seq):
        blocks = [_build_counter(c) for c in node.children]
        name = node.name or "sequential"
        if node.mapping:
            return Sequential({f"s{i}": b for i, b in enumerate(blocks)}, name=name)
        return Sequential(*blocks, name=name)
    body = _build_counter(node.body)
    name = node.name or "loop"
    if not node.over:
        return Loop(body, times=node.control, index=node.index, name=name)
    items = f"ts{node.serial}"
    make = _function_block(
        f"range_{node.control}",
        [(node.control, int, REQUIRED)],
        [(items, list[int])],
        lambda v: [_item(s) for s in range(v[node.control])],
    )
    loop = Loop(body, over=items, item=node.item, index=node.index, name=name)
    return Sequential(make, loop, name=f"over_{node.control}")


def _reads_x(node: _Node) -> bool:
    if isinstance(node, _Inc | _AddVar | _Chain):
        return True
    if isinstance(node, _Seq):
        return any(map(_reads_x, node.children))
    return _reads_x(node.body)


def counter_loops(max_depth: int = 3, max_blocks: int = 4, max_steps: int = 6) -> SearchStrategy[CounterCase]:
    """Random nests of Sequentials, Loops (times= n0, n1, ... in 0..max_steps, or over= a list) and Graphs of
    blocks adding to x a constant or an enclosing loop's index or item, with the final x computed by hand."""
    if max_depth < 0 or max_blocks < 1 or max_steps < 0:
        raise InvalidArgument("counter_loops: needs max_depth >= 0, max_blocks >= 1, max_steps >= 0")

    @st.composite
    def cases(draw: st.DrawFn) -> CounterCase:
        loops: list[int] = []
        serial = iter(range(1 << 30))

        def node(depth: int, visible: tuple[str, ...]) -> _Node:
            kinds = ["inc", "inc", "var"] if visible else ["inc"]
            if depth < max_depth:
                kinds += ["seq", "loop", "loop", "graph"]
            kind = draw(st.sampled_from(kinds))
            if kind == "inc":
                return _Inc(draw(st.integers(-3, 5)))
            if kind == "var":
                return _AddVar(draw(st.sampled_from(visible)))
            if kind == "graph":
                ks = tuple(draw(st.lists(st.integers(-3, 5), min_size=1, max_size=max_blocks)))
                return _Chain(ks, tuple(draw(st.permutations(range(len(ks))))), draw(st.booleans()))
            named = draw(st.booleans())  # default names collide: Sequential dedups them
            if kind == "seq":
                size = draw(st.integers(0, max_blocks))
                children = tuple(node(depth + 1, visible) for _ in range(size))
                return _Seq(f"seq{next(serial)}" if named else None, draw(st.booleans()), children)
            j = len(loops)
            loops.append(j)
            over = draw(st.booleans())
            inner = (*visible, f"i{j}", *((f"t{j}",) if over else ()))
            body: _Node
            if draw(st.booleans()):  # the usual form: the body is a Sequential
                size = draw(st.integers(1, max_blocks))
                body = _Seq(None, draw(st.booleans()), tuple(node(depth + 1, inner) for _ in range(size)))
            else:
                body = node(depth + 1, inner)
            return _Rep(j, f"loop{next(serial)}" if named else None, body, over)

        root = node(0, ())
        if not _reads_x(root):  # x must be read, or it would not be an input of the block
            root = _Seq(None, False, (root, _Inc(draw(st.integers(-3, 5)))))
        counts = {f"n{j}": draw(st.integers(0, max_steps), label=f"n{j}") for j in loops}
        x = draw(st.integers(-100, 100), label="x")
        return CounterCase(
            _build_counter(root), {**counts, "x": x}, _interpret(root, x, counts, {}), _show(root)
        )

    return cases()


# -- well-typed and mistyped graphs ------------------------------------------------------------------------


@attrs.frozen
class Injected:
    """A graph with one injected type error, its code (DF001/DF101) and path `<composite>/<block>.<port>`."""

    block: Block = attrs.field(repr=False)
    code: str
    path: str
    structure: str = ""


@attrs.frozen
class _Ty:
    key: str
    hint: Any
    sample: Any  # what a generated block returns for an output of this type


_UNIVERSE: dict[str, _Ty] = {
    t.key: t
    for t in (
        _Ty("bool", bool, True),
        _Ty("int", int, 3),
        _Ty("float", float, 0.5),
        _Ty("str", str, "s"),
        _Ty("list[int]", list[int], [1, 2]),
        _Ty("Sequence[int]", collections.abc.Sequence[int], (1, 2)),
        _Ty("int | None", int | None, None),
        _Ty("object", object, "o"),
        _Ty("Any", Any, None),
    )
}
_KEYS = tuple(_UNIVERSE)
_REAL = tuple(k for k in _KEYS if k != "Any")
# The subtype relation of the universe, written out by hand (never asked of dfgraph): producer -> the
# consumers it may feed besides itself, object and Any.
_WIDER: dict[str, frozenset[str]] = {
    "bool": frozenset({"int", "float", "int | None"}),
    "int": frozenset({"float", "int | None"}),
    "list[int]": frozenset({"Sequence[int]"}),
}
_ITERABLE = frozenset({"list[int]", "Sequence[int]", "str"})  # what the control of an over= loop accepts


def _fits(producer: str, consumer: str) -> bool:
    """The hand-written relation: may a value of `producer` feed a port of `consumer`?"""
    if producer == "Any" or consumer in ("Any", "object") or producer == consumer:
        return True
    if consumer == "Iterable":  # the control port of an over= loop
        return producer in _ITERABLE
    return consumer in _WIDER.get(producer, frozenset())


def _common_subtype(consumers_: Sequence[str]) -> bool:
    """True when one real type may feed all these consumers (one external input read by all of them)."""
    return any(all(_fits(t, c) for c in consumers_) for t in _REAL)


@attrs.define
class _LeafS:
    name: str
    inputs: list[tuple[str, str, bool]]  # (port, type key, has a default)
    outputs: list[tuple[str, str]]


@attrs.define
class _SeqS:
    name: str
    mapping: bool
    children: list[_Spec]


@attrs.define
class _LoopS:
    name: str
    body: _Spec
    times: str | None
    over: str | None
    index: str
    item: str


@attrs.define
class _GraphS:
    name: str
    nodes: list[tuple[str, _LeafS]]
    edges: list[tuple[str, str]]
    outputs: list[str] | dict[str, str] | None


_Spec = _LeafS | _SeqS | _LoopS | _GraphS


def _segment(parent: _SeqS | None, name: str) -> str:
    """The path segment of a child named `name` (mapping Sequentials key their children)."""
    return f"at_{name}" if parent is not None and parent.mapping else name


def _build(spec: _Spec) -> Block:
    if isinstance(spec, _LeafS):
        samples = [_UNIVERSE[t].sample for _, t in spec.outputs]
        result = samples[0] if len(samples) == 1 else (tuple(samples) if samples else None)
        return _function_block(
            spec.name,
            [(p, _UNIVERSE[t].hint, _UNIVERSE[t].sample if d else REQUIRED) for p, t, d in spec.inputs],
            [(o, _UNIVERSE[t].hint) for o, t in spec.outputs],
            lambda _: result,
        )
    if isinstance(spec, _SeqS):
        blocks = [_build(c) for c in spec.children]
        if spec.mapping:
            return Sequential(
                {_segment(spec, c.name): b for c, b in zip(spec.children, blocks, strict=True)},
                name=spec.name,
            )
        return Sequential(*blocks, name=spec.name)
    if isinstance(spec, _LoopS):
        return Loop(
            _build(spec.body),
            times=spec.times,
            over=spec.over,
            item=spec.item,
            index=spec.index,
            name=spec.name,
        )
    return Graph({k: _build(n) for k, n in spec.nodes}, spec.edges, spec.outputs, name=spec.name)


def _render(spec: _Spec, indent: str = "") -> str:
    """The structure, one block per line, for failure reports."""
    if isinstance(spec, _LeafS):
        ins = ", ".join(f"{p}: {t}{' = ...' if d else ''}" for p, t, d in spec.inputs)
        outs = ", ".join(f"{o}: {t}" for o, t in spec.outputs)
        return f"{indent}{spec.name}({ins}) -> ({outs})"
    if isinstance(spec, _SeqS):
        lines = [f"{indent}Sequential {spec.name}{' (mapping)' if spec.mapping else ''}:"]
        lines += [_render(c, indent + "  ") for c in spec.children]
        return "\n".join(lines)
    if isinstance(spec, _LoopS):
        how = f"times={spec.times}" if spec.times else f"over={spec.over}, item={spec.item}"
        return f"{indent}Loop {spec.name} ({how}, index={spec.index}):\n{_render(spec.body, indent + '  ')}"
    lines = [f"{indent}Graph {spec.name} edges={spec.edges} outputs={spec.outputs}:"]
    lines += [_render(n, f"{indent}  {k}: ") for k, n in spec.nodes]
    return "\n".join(lines)


@attrs.define(eq=False)
class _External:
    """An external input of the generated graph: the types its readers declare."""

    readers: list[str] = attrs.Factory(list)


@attrs.define(eq=False)
class _Val:
    """A value as the generator models it: the types it may have, statically."""

    types: frozenset[str]
    external: _External | None = None
    leaf: bool = False  # written by one leaf output, typed by its annotation alone


@attrs.define(eq=False)
class _Scope:
    """A Sequential (or the root) or a loop body while generating: what is written, fixed and read early."""

    parent: _Scope | None
    body: bool = False
    written: dict[str, _Val] = attrs.Factory(dict)
    fixed: dict[str, _Val] = attrs.Factory(dict)  # a loop body's index and item
    early: dict[str, list[str]] = attrs.Factory(dict)  # body: read before written -> reader types
    forbidden: frozenset[str] = frozenset()  # names the body must not write (its loop's control)
    externals: dict[str, _Val] = attrs.Factory(dict)  # root only


@attrs.define
class _Site:
    """A consumer port reading one leaf output: where a DF001 may be injected."""

    leaf: _LeafS
    port: int
    producer: str
    path: str
    name: str
    through: list[_Scope]  # loop bodies the read passed (the value must not be carried by them)


_POOL = ("a", "b", "c", "d", "e")


class _TypedGen:
    """Draws a random well-typed composite tree, modelling every value's type by the hand-written relation."""

    def __init__(self, draw: st.DrawFn, max_blocks: int, *, root_seq: bool) -> None:
        self.draw = draw
        self.budget = max_blocks
        self.root_seq = root_seq
        self.counts: dict[str, int] = {}
        self.sites: list[_Site] = []
        self.loops: list[tuple[_LoopS, str]] = []  # (loop, its path)

    def fresh(self, prefix: str) -> str:
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return f"{prefix}{n}"

    # -- the value model -------------------------------------------------------------------------

    def lookup(self, scope: _Scope, name: str) -> tuple[_Val, list[_Scope]]:
        """The value a reader of `name` gets in `scope`, and the loop bodies it is read through."""
        through: list[_Scope] = []
        current = scope
        while True:
            if name in current.written:
                return current.written[name], through
            if current.body:
                if name in current.fixed:
                    return current.fixed[name], through
                through.append(current)
            if current.parent is None:
                value = current.externals.get(name)
                if value is None:
                    value = current.externals[name] = _Val(frozenset({"Any"}), _External())
                return value, through
            current = current.parent

    def peek(self, scope: _Scope, name: str) -> _Val | None:
        """The value `name` has in `scope`, if any, without making it an input."""
        current: _Scope | None = scope
        while current is not None:
            if name in current.written:
                return current.written[name]
            if name in current.fixed:
                return current.fixed[name]
            if current.parent is None:
                return current.externals.get(name)
            current = current.parent
        return None

    def consumer_types(self, value: _Val) -> list[str]:
        """The port types that may read `value`."""
        if value.external is not None:
            readers = value.external.readers
            return [c for c in _KEYS if _common_subtype([*readers, c])]
        return [c for c in _KEYS if all(_fits(p, c) for p in value.types)]

    def read(self, value: _Val, through: list[_Scope], name: str, typ: str) -> None:
        if value.external is not None:
            value.external.readers.append(typ)
        for body in through:
            body.early.setdefault(name, []).append(typ)

    def producer_types(self, scope: _Scope, name: str) -> list[str]:
        """The types a block in `scope` may write `name` with: each read-early reader must accept it."""
        bounds: list[str] = []
        current: _Scope | None = scope
        while current is not None:
            if name in current.forbidden:
                return []
            bounds += current.early.get(name, [])
            current = current.parent
        return [t for t in _KEYS if all(_fits(t, c) for c in bounds)]

    def readable(self, scope: _Scope) -> list[str]:
        names = list(_POOL)
        current: _Scope | None = scope
        while current is not None:
            names += [n for n in current.fixed if n not in names]
            current = current.parent
        return names

    # -- the tree --------------------------------------------------------------------------------

    def root(self) -> _Spec:
        scope = _Scope(None)
        kind = "seq" if self.root_seq else self.draw(st.sampled_from(["seq", "seq", "loop", "graph"]))
        if kind == "loop":
            return self.loop(scope, None, 1)
        if kind == "graph":
            return self.graph(scope, None)
        return self.seq(scope, None, 1, min_children=1)

    def child(self, scope: _Scope, parent: _SeqS | None, depth: int, path: str) -> _Spec:
        kinds = ["leaf", "leaf", "leaf"]
        if depth < 4 and self.budget >= 2:
            kinds += ["loop", "graph", "seq"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "loop":
            return self.loop(scope, parent, depth + 1, path)
        if kind == "graph":
            return self.graph(scope, parent, path)
        if kind == "seq":
            return self.seq(scope, parent, depth + 1, path)
        spec = self.leaf(scope, lambda name: f"{path}/{_segment(parent, name)}", self.unwired(scope))
        self.write_leaf(scope, spec)
        return spec

    def seq(
        self, scope: _Scope, parent: _SeqS | None, depth: int, at: str = "", *, min_children: int = 0
    ) -> _SeqS:
        spec = _SeqS(self.fresh("seq"), self.draw(st.booleans()), [])
        path = f"{at}/{_segment(parent, spec.name)}" if at else spec.name
        inner = _Scope(scope)
        self.children(inner, spec, depth, path, min_children)
        scope.written.update(inner.written)
        return spec

    def children(self, scope: _Scope, spec: _SeqS, depth: int, path: str, min_children: int) -> None:
        for _ in range(self.draw(st.integers(min_children, 4))):
            if self.budget <= 0:
                break
            spec.children.append(self.child(scope, spec, depth, path))

    def unwired(self, scope: _Scope) -> Callable[[str], tuple[str | None, _Val, list[_Scope]]]:
        def source(port: str) -> tuple[str | None, _Val, list[_Scope]]:
            value, through = self.lookup(scope, port)
            return None, value, through

        return source

    def leaf(
        self,
        scope: _Scope,
        path_of: Callable[[str], str],
        source: Callable[[str], tuple[str | None, _Val, list[_Scope]]],
    ) -> _LeafS:
        self.budget -= 1
        spec = _LeafS(self.fresh("b"), [], [])
        path = path_of(spec.name)
        ports = self.draw(st.lists(st.sampled_from(self.readable(scope)), unique=True, max_size=3))
        for port in ports:
            edge, value, through = source(port)
            typ = self.draw(st.sampled_from(self.consumer_types(value)))
            self.read(value, through, edge or port, typ)
            default = value.external is not None and self.draw(st.booleans())
            spec.inputs.append((port, typ, default))
            (producer,) = value.types if value.leaf else ("Any",)
            if producer != "Any":
                site = _Site(spec, len(spec.inputs) - 1, producer, f"{path}.{port}", edge or port, through)
                self.sites.append(site)
        outs = self.draw(st.lists(st.sampled_from(_POOL), unique=True, max_size=2))
        for out in outs:
            allowed = self.producer_types(scope, out)
            if allowed:
                spec.outputs.append((out, self.draw(st.sampled_from(allowed))))
        return spec

    def write_leaf(self, scope: _Scope, spec: _LeafS) -> None:
        for out, typ in spec.outputs:
            scope.written[out] = _Val(frozenset({typ}), leaf=True)

    def loop(self, scope: _Scope, parent: _SeqS | None, depth: int, at: str = "") -> _LoopS:
        n = self.fresh("loop")[4:]
        name = f"loop{n}"
        path = f"{at}/{_segment(parent, name)}" if at else name
        lists = [
            p
            for p in _POOL
            if (v := self.peek(scope, p)) is not None
            and v.external is None
            and v.types <= {"list[int]", "Sequence[int]"}
        ]
        over: str | None = None
        use_list: bool = bool(lists) and self.draw(st.booleans())
        if use_list:
            over = self.draw(st.sampled_from(lists))
        times = None if over is not None else f"n{n}"
        control = over or str(times)
        value, through = self.lookup(scope, control)
        self.read(value, through, control, "Iterable" if over else "int")
        spec = _LoopS(name, _LeafS("placeholder", [], []), times, over, f"i{n}", f"t{n}")
        body = _Scope(scope, body=True, forbidden=frozenset({control}))
        body.fixed[spec.index] = _Val(frozenset({"int"}))
        if over is not None:
            body.fixed[spec.item] = _Val(frozenset({"int"}))
        self.loops.append((spec, path))
        shape = self.draw(st.sampled_from(["seq", "seq", "leaf", "graph", "loop"]))
        if shape == "seq" or self.budget < 2:
            seq = _SeqS(self.fresh("seq"), self.draw(st.booleans()), [])
            self.children(body, seq, depth, path, 1)
            spec.body = seq
        elif shape == "leaf":
            spec.body = self.leaf(body, lambda child: f"{path}/{child}", self.unwired(body))
            self.write_leaf(body, spec.body)
        elif shape == "graph":
            spec.body = self.graph(body, None, path)
        else:
            spec.body = self.loop(body, None, depth + 1, path)
        for out, final in body.written.items():
            if out in body.early:  # carried: zero iterations give the initial value
                start, _ = self.lookup(scope, out)
                start_types = frozenset(body.early[out]) if start.external is not None else start.types
            else:
                seen = self.peek(scope, out)
                start_types = frozenset() if seen is None else seen.types
                if seen is not None and seen.external is not None:
                    start_types = frozenset({"Any"})
            scope.written[out] = _Val(final.types | start_types)
        return spec

    def graph(self, scope: _Scope, parent: _SeqS | None, at: str = "") -> _GraphS:
        spec = _GraphS(self.fresh("graph"), [], [], None)
        path = f"{at}/{_segment(parent, spec.name)}" if at else spec.name
        produced: list[tuple[str, str, str]] = []  # (node, port, type) of earlier nodes
        for k in range(self.draw(st.integers(1, 3))):
            if self.budget <= 0 and k:
                break
            key = f"node{k}"
            source = functools.partial(self.node_source, scope, spec, key, list(produced))
            leaf = self.leaf(scope, functools.partial(_fixed_path, f"{path}/{key}"), source)
            spec.nodes.append((key, leaf))
            produced += [(key, out, typ) for out, typ in leaf.outputs]
        names = [out for _, out, _ in produced]
        unique = [(k, out, typ) for k, out, typ in produced if names.count(out) == 1]
        # Every node reads the scope as it was before the graph, so a later node may have read early (in
        # a loop body) a name an earlier node writes: such an output is exported only if its type fits.
        fitting = [(k, out, typ) for k, out, typ in unique if typ in self.producer_types(scope, out)]
        pick: bool = bool(fitting) and self.draw(st.booleans())
        if pick:
            fitting = self.draw(st.lists(st.sampled_from(fitting), unique=True, min_size=1))
        # default outputs would also export a name several nodes write (from the last writer): name them
        if pick or len(fitting) < len(unique) or len(unique) < len(produced):
            spec.outputs = [f"{k}.{out}" for k, out, _ in fitting]
            if self.draw(st.booleans()):
                spec.outputs = {out: f"{k}.{out}" for k, out, _ in fitting}
        for _, out, typ in fitting:
            scope.written[out] = _Val(frozenset({typ}), leaf=True)
        return spec

    def node_source(
        self, scope: _Scope, spec: _GraphS, key: str, produced: list[tuple[str, str, str]], port: str
    ) -> tuple[str | None, _Val, list[_Scope]]:
        """Where a graph node's input comes from: unwired (the name outside), an earlier node, or a rename."""
        how = self.draw(st.sampled_from(["unwired", "node", "rename"]))
        if how == "node" and produced:
            node, out, typ = self.draw(st.sampled_from(produced))
            spec.edges.append((f"{node}.{out}", f"{key}.{port}"))
            return None, _Val(frozenset({typ}), leaf=True), []
        if how == "rename":
            name = self.draw(st.sampled_from(_POOL))
            spec.edges.append((name, f"{key}.{port}"))
            value, through = self.lookup(scope, name)
            return name, value, through
        value, through = self.lookup(scope, port)
        return None, value, through


def _fixed_path(path: str, _name: str) -> str:
    return path


def _typed_tree(draw: st.DrawFn, max_blocks: int, *, root_seq: bool) -> tuple[_Spec, _TypedGen]:
    gen = _TypedGen(draw, max_blocks, root_seq=root_seq)
    return gen.root(), gen


def _note(text: str) -> None:
    with contextlib.suppress(InvalidArgument):  # drawn outside a test (strategy.example())
        note(text)


def well_typed_graphs(max_blocks: int = 12) -> SearchStrategy[Block]:
    """Random Sequentials (with Loops and Graphs) of at most max_blocks typed blocks that check clean."""
    if max_blocks < 1:
        raise InvalidArgument("well_typed_graphs: max_blocks must be at least 1")

    @st.composite
    def graphs(draw: st.DrawFn) -> Block:
        spec, _ = _typed_tree(draw, max_blocks, root_seq=False)
        _note("well-typed graph:\n" + _render(spec))
        return _build(spec)

    return graphs()


def mistyped_graphs(max_blocks: int = 12) -> SearchStrategy[Injected]:
    """A well-typed graph with one injected type error (DF001 or DF101), its code and its path."""
    if max_blocks < 1:
        raise InvalidArgument("mistyped_graphs: max_blocks must be at least 1")

    @st.composite
    def injected(draw: st.DrawFn) -> Injected:
        spec, gen = _typed_tree(draw, max_blocks, root_seq=True)
        assert isinstance(spec, _SeqS)
        # A read may take a DF001 when the value is not carried by a loop body it is read through.
        sites = [s for s in gen.sites if all(s.name not in body.written for body in s.through)]
        kinds = [k for k, ok in (("DF001", sites), ("DF101", gen.loops)) if ok] or ["DF001 appended"]
        kind = draw(st.sampled_from(kinds))
        if kind == "DF001":
            site = draw(st.sampled_from(sites))
            bad = draw(st.sampled_from([t for t in _REAL if not _fits(site.producer, t)]))
            port, _, default = site.leaf.inputs[site.port]
            site.leaf.inputs[site.port] = (port, bad, default)
            code, path = "DF001", site.path
        elif kind == "DF101":
            loop, loop_path = draw(st.sampled_from(gen.loops))
            typ = draw(st.sampled_from([t for t in _REAL if t != "object"]))
            bad = draw(st.sampled_from([t for t in _REAL if not _fits(t, typ)]))
            reader = _LeafS("inj", [("z", typ, False)], [("z", bad)])
            if not isinstance(loop.body, _SeqS):  # wrapping keeps every path: a body Sequential adds none
                loop.body = _SeqS("wrap", False, [loop.body])
            loop.body.children.insert(draw(st.integers(0, len(loop.body.children))), reader)
            code, path = "DF101", f"{loop_path}/{_segment(loop.body, 'inj')}.z"
        else:  # nothing to inject into: append a producer and a consumer that disagree
            typ = draw(st.sampled_from([t for t in _REAL if t != "object"]))
            bad = draw(st.sampled_from([t for t in _REAL if not _fits(typ, t)]))
            spec.children += [_LeafS("inj_p", [], [("z", typ)]), _LeafS("inj", [("z", bad, False)], [])]
            code, path = "DF001", f"{spec.name}/{_segment(spec, 'inj')}.z"
        text = _render(spec)
        _note(f"mistyped graph (expect {code} at {path}):\n{text}")
        return Injected(_build(spec), code, path, text)

    return injected()


# -- malformed graphs --------------------------------------------------------------------------------------


@attrs.frozen
class Malformed:
    """A broken definition built lazily by `build()`: construction (DF006) or `df.check` reports `code`."""

    build: Callable[[], Any] = attrs.field(repr=False)
    code: str
    what: str


def _inc_graph(nodes: int) -> dict[str, Block]:
    return {f"n{k}": increment(1) for k in range(nodes)}


@st.composite
def _graph_edges(draw: st.DrawFn) -> Malformed:
    """A chain of increments on x with one edge naming an unknown node or port, or not 'node.port'."""
    k = draw(st.integers(1, 3))
    last = f"n{k - 1}"
    unknown = draw(st.sampled_from(["nope", "n9", "N0", "y"]))
    which = draw(st.sampled_from(["source_node", "target_node", "source_port", "target_port", "no_dot"]))
    edge = {
        "source_node": (f"{unknown}.x", "n0.x"),
        "target_node": ("n0.x", f"{unknown}.x"),
        "source_port": (f"n0.{unknown}", f"{last}.x"),
        "target_port": ("n0.x", f"{last}.{unknown}"),
        "no_dot": ("n0.x", draw(st.sampled_from(["n0", "x", "nope"]))),
    }[which]
    edges = draw(st.permutations([*((f"n{j}.x", f"n{j + 1}.x") for j in range(k - 1)), edge]))
    return Malformed(lambda: Graph(_inc_graph(k), edges, name="g"), "DF003", f"graph edge {edge!r} ({which})")


@st.composite
def _graph_definitions(draw: st.DrawFn) -> Malformed:
    """Graph arguments that are not a graph: edge ends, edge shapes, node names, outputs."""
    which = draw(st.sampled_from(["end", "pair", "node_name", "nodes", "outputs_str", "name"]))
    end: Any = draw(st.sampled_from([42, "", None, b"n0.x"]))
    triple: Any = ("n0.x", "n1.x", "n1.y")
    build: Callable[[], Any] = {
        "end": lambda: Graph(_inc_graph(2), [(end, "n1.x")]),
        "pair": lambda: Graph(_inc_graph(2), [triple]),
        "node_name": lambda: Graph({"not a name": increment(1)}),
        "nodes": lambda: Graph([increment(1)]),  # type: ignore[arg-type]
        "outputs_str": lambda: Graph(_inc_graph(1), outputs="n0.x"),
        "name": lambda: Graph(_inc_graph(1), name="1graph"),
    }[which]
    return Malformed(build, "DF006", f"Graph definition: {which}")


@st.composite
def _graph_outputs(draw: st.DrawFn) -> Malformed:
    """Graph outputs naming unknown ports, or one output name twice."""
    if draw(st.booleans()):
        bad = draw(st.sampled_from(["n0.y", "n5.x", "x"]))
        return Malformed(lambda: Graph(_inc_graph(2), outputs=["n1.x", bad]), "DF003", f"output {bad!r}")
    return Malformed(
        lambda: Graph(_inc_graph(2), outputs=["n0.x", "n1.x"]), "DF005", "output 'x' given twice"
    )


@st.composite
def _graph_cycles(draw: st.DrawFn) -> Malformed:
    """A cycle of 1..4 nodes through their x ports, optionally behind a chain of clean nodes."""
    k = draw(st.integers(1, 4))
    tail = draw(st.integers(0, 2))
    edges = [(f"n{j}.x", f"n{(j + 1) % k}.x") for j in range(k)]
    edges += [(f"n{k - 1 + j}.x", f"n{k + j}.x") for j in range(tail)]
    edges = draw(st.permutations(edges))
    return Malformed(lambda: Graph(_inc_graph(k + tail), edges), "DF004", f"cycle of {k} node(s)")


@st.composite
def _two_producers(draw: st.DrawFn) -> Malformed:
    """Two edges into one input."""
    first, second = draw(st.sampled_from([("a", "b"), ("n0.x", "a"), ("n0.x", "n1.x")]))
    edges = [(first, "n2.x"), (second, "n2.x")]
    return Malformed(lambda: Graph(_inc_graph(3), edges), "DF005", f"{first!r} and {second!r} both into n2.x")


_FORTY_TWO: Any = 42


class _NotABlock:
    name = "fake"
    inputs = ()

    def __repr__(self) -> str:
        return "<not a block>"


@st.composite
def _non_blocks(draw: st.DrawFn) -> Malformed:
    """A value that is not a block where a block belongs."""
    thing = draw(st.sampled_from([42, "add_one", None, 1.5, [1], _NotABlock(), lambda x: x]))
    where = draw(st.sampled_from(["sequential", "sequential_map", "loop_body", "graph_node", "check"]))
    build: Callable[[], Any] = {
        "sequential": lambda: Sequential(increment(1), thing),
        "sequential_map": lambda: Sequential({"a": thing}),
        "loop_body": lambda: Loop(thing, times="n"),
        "graph_node": lambda: Graph({"a": thing}),
        "check": lambda: thing,
    }[where]
    return Malformed(build, "DF006", f"{thing!r} as a block in {where}")


@st.composite
def _loop_arguments(draw: st.DrawFn) -> Malformed:
    """Loop arguments that do not define a loop."""
    body = increment(1)
    which = draw(
        st.sampled_from(["neither", "both", "times_int", "times_text", "item_is_index", "name", "carry"])
    )
    bad = draw(st.sampled_from(["not a name", "1n", "class", ""]))
    build: Callable[[], Any] = {
        "neither": lambda: Loop(body),
        "both": lambda: Loop(body, times="n", over="ts"),
        "times_int": lambda: Loop(body, times=3),  # type: ignore[arg-type]
        "times_text": lambda: Loop(body, times=bad),
        "item_is_index": lambda: Loop(body, over="ts", item="k", index="k"),
        "name": lambda: Loop(body, times="n", name=bad),
        "carry": lambda: Loop(body, times="n", carry=[42]),  # type: ignore[list-item]
    }[which]
    return Malformed(build, "DF006", f"Loop arguments: {which}")


@st.composite
def _carry_mismatch(draw: st.DrawFn) -> Malformed:
    """A declared carry= that differs from the inferred one."""
    which = draw(st.sampled_from(["unknown", "read_only", "omitted", "write_first"]))
    reads_y = _function_block(
        "read_y", [("y", int, REQUIRED), ("x", int, REQUIRED)], [("x", int)], lambda v: v["x"]
    )
    set_x = _function_block("set_x", [], [("x", int)], lambda _: 0)
    extra = draw(st.integers(0, 2))
    body: list[Block] = [increment(1) for _ in range(extra)]
    cases: dict[str, tuple[Callable[[], Any], str]] = {
        "unknown": (lambda: Loop(Sequential(reads_y, *body), times="n", carry=("x", "xx")), "DF003"),
        "read_only": (lambda: Loop(Sequential(reads_y, *body), times="n", carry=("x", "y")), "DF102"),
        "omitted": (lambda: Loop(Sequential(reads_y, *body), times="n", carry=()), "DF102"),
        "write_first": (lambda: Loop(Sequential(set_x, *body), times="n", carry=("x",)), "DF102"),
    }
    build, code = cases[which]
    return Malformed(build, code, f"carry= mismatch: {which}")


@st.composite
def _loop_writes(draw: st.DrawFn) -> Malformed:
    """A loop body writing the loop's index, item or control input."""
    which = draw(st.sampled_from(["index", "item", "control"]))
    index, item, control = "i", "t", "n" if which != "item" else "ts"
    target = {"index": index, "item": item, "control": control}[which]
    writer = _function_block(f"write_{target}", [("x", int, REQUIRED)], [(target, int)], lambda v: v["x"])
    blocks = draw(st.permutations([writer, increment(1)]))
    if which == "item":
        return Malformed(
            lambda: Loop(Sequential(*blocks), over=control, item=item, index=index),
            "DF103",
            "body writes the item",
        )
    return Malformed(
        lambda: Loop(Sequential(*blocks), times=control, index=index), "DF103", f"body writes the {which}"
    )


@st.composite
def _block_definitions(draw: st.DrawFn) -> Malformed:
    """@df.block on something that cannot be a block."""
    which = draw(
        st.sampled_from(
            ["star_args", "star_kwargs", "dup_outputs", "tuple_mismatch", "not_callable", "no_call"]
        )
    )

    def star_args() -> Any:
        def f(*xs: int) -> int:
            return 0

        return block(outputs="y")(f)

    def star_kwargs() -> Any:
        def f(x: int, **rest: int) -> int:
            return x

        return block(outputs="y")(f)

    def dup_outputs() -> Any:
        def f(x: int) -> tuple[int, int]:
            return x, x

        return block(outputs=("y", "y"))(f)

    def tuple_mismatch() -> Any:
        def f(x: int) -> int:
            return x

        return block(outputs=("y", "z"))(f)

    def no_call() -> Any:
        class NoCall:
            pass

        return block(NoCall)

    build: Callable[[], Any] = {
        "star_args": star_args,
        "star_kwargs": star_kwargs,
        "dup_outputs": dup_outputs,
        "tuple_mismatch": tuple_mismatch,
        "not_callable": lambda: block(_FORTY_TWO),
        "no_call": no_call,
    }[which]
    return Malformed(build, "DF006", f"@df.block: {which}")


@st.composite
def _input_conflicts(draw: st.DrawFn) -> Malformed:
    """One external input read with disjoint types (DF002), or an input named like output= (DF006)."""
    if draw(st.booleans()):
        a, b = draw(st.sampled_from([(int, str), (str, list[int]), (bytes, float), (list[int], int | None)]))
        first = _function_block("first", [("v", a, REQUIRED)], [], lambda _: None)
        second = _function_block("second", [("v", b, REQUIRED)], [], lambda _: None)
        return Malformed(lambda: Sequential(first, second), "DF002", f"input v read as {a} and {b}")
    reserved = _function_block("reserved", [("output", int, REQUIRED)], [("x", int)], lambda v: v["output"])
    return Malformed(lambda: Sequential(increment(1), reserved), "DF006", "input named 'output'")


@attrs.frozen
class _HandWritten:
    """A hand-written protocol block carrying whatever it is given as ports."""

    name: str
    inputs: Any
    outputs: Any

    def __call__(self, **inputs: Any) -> Any:
        """Return no outputs."""
        return {}


@st.composite
def _bad_ports(draw: st.DrawFn) -> Malformed:
    """A hand-written block whose ports are not ports, or name one port twice, bare or inside a composite."""
    which = draw(st.sampled_from(["strings", "none", "dup_inputs", "dup_outputs"]))
    x, y = Port("x", int), Port("y", int)
    inputs, outputs = {
        "strings": (("x",), ("y",)),
        "none": (None, (y,)),
        "dup_inputs": ((x, Port("x", str)), (y,)),
        "dup_outputs": ((x,), (y, Port("y", str))),
    }[which]
    where = draw(st.sampled_from(["bare", "sequential", "loop", "graph"]))

    def build() -> Any:
        raw = _HandWritten("raw", inputs, outputs)
        if where == "sequential":
            return Sequential(increment(1), raw)
        if where == "loop":
            return Loop(Sequential(raw, increment(1)), times="n")
        return Graph({"raw": raw, "inc": increment(1)}) if where == "graph" else raw

    return Malformed(build, "DF006", f"hand-written block with {which} ports ({where})")


def malformed_graphs() -> SearchStrategy[Malformed]:
    """Broken definitions and graphs; `build()` raises df.WiringError, or df.check reports `code`."""
    return st.one_of(
        _graph_edges(),
        _graph_definitions(),
        _graph_outputs(),
        _graph_cycles(),
        _two_producers(),
        _non_blocks(),
        _loop_arguments(),
        _carry_mismatch(),
        _loop_writes(),
        _block_definitions(),
        _input_conflicts(),
        _bad_ports(),
    )


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 12, prefix: str = "") -> tuple[list[str], list[tuple[str, str]]]:
    """A loop-body DAG for schedule tests: block paths in topological order, edges from earlier to later."""
    n = draw(st.integers(0, max_nodes))
    nodes = [f"{prefix}b{i}" for i in range(n)]
    if n < 2:
        return nodes, []
    pairs = draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n).map(
            lambda ps: [(min(p), max(p)) for p in ps if p[0] != p[1]]
        )
    )
    return nodes, [(nodes[u], nodes[v]) for u, v in pairs]

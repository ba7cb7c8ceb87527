"""dfgraph's own test generators and their oracles: well-typed, mistyped and malformed graphs.

Not part of the documented API (it changes with dfgraph's tests): each strategy draws a graph with what the
engine must say about it (no error, one error at one path, some error), the expectation computed from the
random structure itself, never by running dfgraph.
"""

from __future__ import annotations

import collections.abc
import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from dfgraph.block import Block, block
from dfgraph.compose import Graph, Loop, Sequential, Switch
from dfgraph.ports import REQUIRED, Port
from dfgraph.testing.graphs import function_block, increment

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
        return function_block(
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
            # an empty Sequential only after a sibling: every composite keeps at least one leaf
            empty_ok = parent is not None and bool(parent.children)
            return self.seq(scope, parent, depth + 1, path, min_children=0 if empty_ok else 1)
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
    reads_y = function_block(
        "read_y", [("y", int, REQUIRED), ("x", int, REQUIRED)], [("x", int)], lambda v: v["x"]
    )
    set_x = function_block("set_x", [], [("x", int)], lambda _: 0)
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
    writer = function_block(f"write_{target}", [("x", int, REQUIRED)], [(target, int)], lambda v: v["x"])
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
        first = function_block("first", [("v", a, REQUIRED)], [], lambda _: None)
        second = function_block("second", [("v", b, REQUIRED)], [], lambda _: None)
        return Malformed(lambda: Sequential(first, second), "DF002", f"input v read as {a} and {b}")
    reserved = function_block("reserved", [("output", int, REQUIRED)], [("x", int)], lambda v: v["output"])
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


# -- random programs with switches, loops and until= (run-time semantics) ----------------------------------

# The int names a switch program reads: `a` and `b` are only inputs, `u` and `v` are written by blocks; `k0`
# and `k1` are the str keys of switches by name, `n0` and `n1` the loop counts. `stop` is the bool of until=.
SWITCH_INPUTS = ("a", "b")
SWITCH_WORK = ("u", "v")
SWITCH_KEYS = ("k0", "k1")
SWITCH_COUNTS = ("n0", "n1")
CASE_KEYS = ("p", "q", "r")
UNKNOWN_KEY = "zz"
MODULUS = 97


@attrs.frozen
class SLeaf:
    """`dst = (src * mul + add) % MODULUS`; raises ValueError when `src % 13 == boom` (None: never)."""

    name: str
    src: str
    dst: str
    mul: int
    add: int
    boom: int | None


@attrs.frozen
class SUntil:
    """`stop = src % 3 == 0`: the last block of a loop body with until='stop'."""

    name: str
    src: str


@attrs.frozen
class SSelector:
    """A selector block: `sel = table[src % len(table)]` (a key no case has when the table holds one);
    raises ValueError when `src % 13 == boom`."""

    name: str
    src: str
    table: tuple[str, ...]
    boom: int | None


@attrs.frozen
class SSeq:
    """Blocks run in order (the root, a loop body or a case)."""

    name: str
    children: tuple[SSpec, ...]


@attrs.frozen
class SLoop:
    """`Loop(body, times=count, until='stop' when until)`."""

    name: str
    count: str
    body: SSeq
    until: bool


@attrs.frozen
class SSwitch:
    """`Switch({key: case}, on=on)`: `on` is a key name (an input) or a selector."""

    name: str
    cases: tuple[tuple[str, SSeq], ...]
    on: str | SSelector


SSpec = SLeaf | SUntil | SSeq | SLoop | SSwitch


@attrs.frozen
class SwitchProgram:
    """A random program with switches: its definition, its structure (for an independent oracle)."""

    block: Block = attrs.field(repr=False)
    spec: SSeq
    text: str


def _leaf_fn(mul: int, add: int, boom: int | None, src: str) -> Callable[[dict[str, Any]], Any]:
    def body(values: dict[str, Any]) -> int:
        value: int = values[src]
        if boom is not None and value % 13 == boom:
            raise ValueError(f"boom at {value}")
        return (value * mul + add) % MODULUS

    return body


def _selector_fn(table: tuple[str, ...], boom: int | None, src: str) -> Callable[[dict[str, Any]], Any]:
    def body(values: dict[str, Any]) -> str:
        value: int = values[src]
        if boom is not None and value % 13 == boom:
            raise ValueError(f"selector boom at {value}")
        return table[value % len(table)]

    return body


def build_switch_spec(spec: SSpec) -> Any:
    """The dfgraph block of a switch-program structure."""
    if isinstance(spec, SLeaf):
        return function_block(
            spec.name,
            [(spec.src, int, REQUIRED)],
            [(spec.dst, int)],
            _leaf_fn(spec.mul, spec.add, spec.boom, spec.src),
        )
    if isinstance(spec, SUntil):
        src = spec.src
        return function_block(spec.name, [(src, int, REQUIRED)], [("stop", bool)], lambda v: v[src] % 3 == 0)
    if isinstance(spec, SSeq):
        return Sequential(*(build_switch_spec(c) for c in spec.children), name=spec.name)
    if isinstance(spec, SLoop):
        return Loop(
            build_switch_spec(spec.body),
            times=spec.count,
            until="stop" if spec.until else None,
            name=spec.name,
        )
    on: Any = spec.on
    if isinstance(on, SSelector):
        on = function_block(
            on.name, [(on.src, int, REQUIRED)], [("sel", str)], _selector_fn(on.table, on.boom, on.src)
        )
    return Switch({key: build_switch_spec(case) for key, case in spec.cases}, on=on, name=spec.name)


def render_switch_spec(spec: SSpec, indent: str = "") -> str:
    """The structure, one block per line, for failure reports."""
    if isinstance(spec, SLeaf):
        boom = "" if spec.boom is None else f", boom {spec.boom}"
        return f"{indent}{spec.name}: {spec.dst} = ({spec.src} * {spec.mul} + {spec.add}) % {MODULUS}{boom}"
    if isinstance(spec, SUntil):
        return f"{indent}{spec.name}: stop = {spec.src} % 3 == 0"
    if isinstance(spec, SSeq):
        return "\n".join(
            [
                f"{indent}Sequential {spec.name}:",
                *(render_switch_spec(c, indent + "  ") for c in spec.children),
            ]
        )
    if isinstance(spec, SLoop):
        until = ", until=stop" if spec.until else ""
        body = render_switch_spec(spec.body, indent + "  ")
        return f"{indent}Loop {spec.name} (times={spec.count}{until}):\n{body}"
    on = spec.on if isinstance(spec.on, str) else f"{spec.on.name}({spec.on.src}) -> {spec.on.table}"
    lines = [f"{indent}Switch {spec.name} on {on}:"]
    for key, case in spec.cases:
        lines.append(f"{indent}  case {key!r}:")
        lines.append(render_switch_spec(case, indent + "    "))
    return "\n".join(lines)


class _SwitchGen:
    """Draws a well-formed switch program: a block reads only names that have a value (a loop's output
    may still have none at run time), and nothing reads or rewrites, inside a loop or case, a name that
    a switch left partial (DF401): such a name is written again only by a plain block beside it."""

    def __init__(self, draw: st.DrawFn, max_blocks: int) -> None:
        self.draw = draw
        self.budget = max_blocks
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def seq(
        self, readable: frozenset[str], blocked: frozenset[str], depth: int, name: str, until: bool = False
    ) -> tuple[SSeq, frozenset[str], frozenset[str]]:
        """A Sequential: `readable` names have a value here; `blocked` ones must not be written. Returns it,
        the names readable after it, and the names it leaves partial."""
        children: list[SSpec] = []
        partial: frozenset[str] = frozenset()
        for _ in range(self.draw(st.integers(1, 3))):
            kinds = ["leaf"]
            if depth < 3 and self.budget > 2:
                kinds += ["loop", "switch", "switch"]
            kind = self.draw(st.sampled_from(kinds))
            self.budget -= 1
            inner = blocked | partial
            child: SSpec
            if kind == "leaf":
                leaf = child = self.leaf(readable, blocked)
                readable, partial = readable | {leaf.dst}, partial - {leaf.dst}
            elif kind == "loop" and "stop" not in inner:
                child, readable, more = self.loop(readable, inner, depth)
                partial |= more
            elif kind == "loop":
                continue
            else:
                child, readable, more = self.switch(readable, inner, depth)
                partial |= more
            children.append(child)
        if until:
            children.append(SUntil(self.fresh("stop"), self.draw(st.sampled_from(sorted(readable)))))
            readable, partial = readable | {"stop"}, partial - {"stop"}
        if not children:
            leaf = self.leaf(readable, blocked)
            children.append(leaf)
            readable, partial = readable | {leaf.dst}, partial - {leaf.dst}
        return SSeq(name, tuple(children)), readable - partial, partial

    def boom(self) -> int | None:
        return self.draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 12)))

    def leaf(self, readable: frozenset[str], blocked: frozenset[str]) -> SLeaf:
        src = self.draw(st.sampled_from(sorted(readable)))
        free = [n for n in SWITCH_WORK if n not in blocked]
        dst = self.draw(st.sampled_from(free)) if free else self.fresh("t")
        mul, add = self.draw(st.integers(1, 5)), self.draw(st.integers(0, 9))
        return SLeaf(self.fresh("f"), src, dst, mul, add, self.boom())

    def loop(
        self, readable: frozenset[str], blocked: frozenset[str], depth: int
    ) -> tuple[SLoop, frozenset[str], frozenset[str]]:
        name = self.fresh("loop")
        until = self.draw(st.booleans())
        body, after, partial = self.seq(readable, blocked | {"stop"}, depth + 1, "body", until=until)
        return SLoop(name, self.draw(st.sampled_from(SWITCH_COUNTS)), body, until), after, partial

    def switch(
        self, readable: frozenset[str], blocked: frozenset[str], depth: int
    ) -> tuple[SSwitch, frozenset[str], frozenset[str]]:
        name = self.fresh("sw")
        keys = self.draw(st.lists(st.sampled_from(CASE_KEYS), min_size=1, max_size=3, unique=True))
        on: str | SSelector
        if self.draw(st.booleans()):
            on = self.draw(st.sampled_from(SWITCH_KEYS))
        else:
            table = self.draw(
                st.lists(st.sampled_from([*keys, *keys, UNKNOWN_KEY]), min_size=1, max_size=4).map(tuple)
            )
            on = SSelector(
                self.fresh("pick"), self.draw(st.sampled_from(sorted(readable))), table, self.boom()
            )
        cases = []
        defined: frozenset[str] | None = None
        partial: frozenset[str] = frozenset()
        for key in keys:
            case, after, more = self.seq(readable, blocked, depth + 1, f"case_{key}")
            cases.append((key, case))
            partial |= more
            defined = after if defined is None else defined & after
            partial |= after - readable
        assert defined is not None
        # a name only some cases write, with no value before, may have none after: never read again
        partial = partial - defined
        return SSwitch(name, tuple(cases), on), readable | defined, partial


def switch_programs(max_blocks: int = 10) -> SearchStrategy[SwitchProgram]:
    """Random programs of int blocks, Loops (times=, sometimes until=) and Switches (by name or by a
    selector, nested, in loops, with keys no case has), with their structure for an oracle."""

    @st.composite
    def programs(draw: st.DrawFn) -> SwitchProgram:
        gen = _SwitchGen(draw, max_blocks)
        spec, _, _ = gen.seq(frozenset(SWITCH_INPUTS), frozenset(), 0, "root")
        text = render_switch_spec(spec)
        _note(text)
        return SwitchProgram(build_switch_spec(spec), spec, text)

    return programs()

"""Lowering: a composite tree becomes the SSA IR of dfgraph.ir.

Lowering resolves names through scopes — a Sequential's latest writes, a loop body's own writes (a read
that misses becomes a placeholder, later a carried phi or a capture), a Graph node's edges — and records
the structural diagnostics (DF003-DF006, DF102, DF103, DF2xx) as it goes. Composites nested 20,000 deep
lower on an explicit stack (`run_nested`), never by Python recursion.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable
from types import GeneratorType
from typing import Any, Protocol

from dfgraph import types
from dfgraph.block import block_notes, call_spec, name_problem, safe_repr
from dfgraph.compose import Bound, Constants, Graph, Loop, Sequential, Switch
from dfgraph.diagnostics import Diagnostic, Severity, did_you_mean
from dfgraph.errors import exception_text
from dfgraph.ir import (
    CallOp,
    Carried,
    LoopOp,
    LoopOut,
    Lowered,
    Nested,
    Op,
    Region,
    Slot,
    SwitchOp,
    SwitchOut,
    Value,
    ValueKind,
    common_default,
    gc_paused,
    run_nested,
)
from dfgraph.ports import REQUIRED, WHEN_CHOSEN, Port

__all__ = [
    "Lowerer",
    "derive_node_interfaces",
    "descendants",
    "input_default",
    "input_ports",
    "interface",
    "lower",
    "output_ports",
    "resolve_captures",
    "root_path",
]


class Scope(Protocol):
    """Resolves names while lowering."""

    def read(self, name: str) -> Value:
        """The value a reader of `name` gets here (creating an input or placeholder if unbound)."""

    def peek(self, name: str) -> Value | None:
        """The value bound to `name` here, without creating anything."""


class _Path:
    """A block path not spelled out yet: Sequentials nested 20,000 deep would otherwise hold 20,000
    strings of up to 20,000 segments while they lower (the square of the depth in memory)."""

    __slots__ = ("name", "parent")

    def __init__(self, parent: str | _Path, name: str) -> None:
        self.parent, self.name = parent, name

    def __str__(self) -> str:
        names: list[str] = []
        node: str | _Path = self
        while isinstance(node, _Path):
            names.append(node.name)
            node = node.parent
        names.append(node)
        return "/".join(reversed(names))


class _RootScope:
    def __init__(self, lowerer: Lowerer) -> None:
        self.lowerer = lowerer
        self.inputs: dict[str, Value] = {}

    def read(self, name: str) -> Value:
        value = self.inputs.get(name)
        if value is None:
            value = self.inputs[name] = self.lowerer.value(name, Any, "input", None, f"input {name!r}")
        return value

    def peek(self, name: str) -> Value | None:
        return self.inputs.get(name)


class _SeqScope:
    def __init__(self, lowerer: Lowerer, parent: Scope) -> None:
        self.lowerer = lowerer
        self.parent = parent
        self.written: dict[str, Value] = {}
        self.bound = self.written
        self.first: dict[str, str] = {}  # name -> where this sequence first wrote it

    def read(self, name: str) -> Value:
        value, outer = _resolve(self, name)
        return value if value is not None else outer.read(name)

    def peek(self, name: str) -> Value | None:
        value, outer = _resolve(self, name)
        return value if value is not None else outer.peek(name)

    def write(self, name: str, value: Value) -> None:
        old = self.written.get(name)
        if old is not None and old.kind == "op" and not old.readers:
            by = self.lowerer.first_write.get(value.id, value.where)  # inside a nested Sequential: its first
            self.lowerer.warn(
                "DF201",
                old.where,
                f"{name!r} is overwritten by {by} before anyone reads it",
                "remove the earlier block, or rename one of the outputs",
            )
        self.written[name] = value
        self.first.setdefault(name, self.lowerer.first_write.get(value.id, value.where))


class _BodyScope:
    """A loop body: names it does not define become placeholders, resolved after the body is lowered."""

    def __init__(self, lowerer: Lowerer, fixed: dict[str, Value], parent: Scope) -> None:
        self.lowerer = lowerer
        self.fixed = fixed  # index and item
        self.free: dict[str, Value] = {}
        self.parent = parent

    def read(self, name: str) -> Value:
        value = self.fixed.get(name) or self.free.get(name)
        if value is None:
            value = self.free[name] = self.lowerer.value(name, Any, "pending", None, f"loop input {name!r}")
        return value

    def peek(self, name: str) -> Value | None:
        # a name the body already read is bound (to a placeholder that becomes a phi or a capture); a name
        # bound outside is what the previous iteration left (or the value before the loop), so the body
        # reads it: a zero-iteration inner loop then keeps it, carried by this loop when the body writes it
        value = self.fixed.get(name) or self.free.get(name)
        if value is None and self.parent.peek(name) is not None:
            value = self.read(name)
        return value


class _NodeScope:
    def __init__(self, parent: Scope, wired: dict[str, Value]) -> None:
        self.parent = parent
        self.wired = wired
        self.bound = wired

    def read(self, name: str) -> Value:
        value, outer = _resolve(self, name)
        return value if value is not None else outer.read(name)

    def peek(self, name: str) -> Value | None:
        value, outer = _resolve(self, name)
        return value if value is not None else outer.peek(name)


def _resolve(scope: Scope, name: str) -> tuple[Value | None, Scope]:
    """Follow Sequential and Graph-node scopes outward in a loop (nesting 20,000 deep needs no
    recursion): the value bound to `name`, or None and the loop-body or root scope that decides."""
    while isinstance(scope, _SeqScope | _NodeScope):
        value = scope.bound.get(name)
        if value is not None:
            return value, scope
        scope = scope.parent
    return None, scope


class Lowerer:
    """Lowers one composite tree; collects structural diagnostics instead of raising."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        self._ids = 0
        self._noted: set[int] = set()
        self._ports: dict[int, tuple[Any, tuple[Port, ...], tuple[Port, ...]]] = {}
        # a nested Sequential's final value of a name -> where that Sequential first wrote the name
        self.first_write: dict[int, str] = {}
        # (loop op id, input index) -> the body placeholder that input captures; resolved at the end
        self.captures: dict[tuple[int, int], Value] = {}

    def value(self, name: str, typ: Any, kind: ValueKind, producer: Op | None, where: str) -> Value:
        """A new value with a fresh id."""
        self._ids += 1
        return Value(self._ids, name, typ, kind, producer, where)

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def error(self, code: str, path: str, message: str, hint: str = "") -> None:
        """Record an error."""
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, path, message, hint))

    def warn(self, code: str, path: str, message: str, hint: str = "") -> None:
        """Record a warning."""
        self.diagnostics.append(Diagnostic(code, Severity.WARNING, path, message, hint))

    def read(self, scope: Scope, name: str, op: Op, port: Port) -> Value:
        """Bind `op`'s next input slot to what `name` resolves to in `scope`."""
        value = scope.read(name)
        op.inputs.append(Slot(port, value))
        value.readers.append((op, len(op.inputs) - 1))
        return value

    def lower(self, blk: Any, scope: Scope, path: str, region: Region) -> dict[str, Value]:
        """Emit the ops of `blk` into `region`; return its outputs by name."""
        step = self._child(blk, scope, path, region)
        return run_nested(step) if isinstance(step, GeneratorType) else step

    def _child(self, blk: Any, scope: Scope, path: str | _Path, region: Region) -> Any:
        """What a composite yields for a child: a leaf's outputs at once, a composite's lowering step
        (a composite's children are yielded to run_nested, never lowered by a recursive call)."""
        if isinstance(blk, Sequential):
            return self._sequential(blk, scope, path, region)
        path = str(path)
        if isinstance(blk, Loop):
            return self._loop(blk, scope, path, region)
        if isinstance(blk, Graph):
            return self._graph(blk, scope, path, region)
        if isinstance(blk, Switch):
            return self._switch(blk, scope, path, region)
        if isinstance(blk, Bound):
            return self._bound(blk, scope, path, region)
        return self._call(blk, scope, path, region)

    # -- leaves ---------------------------------------------------------------------------------------

    def _leaf_ports(self, blk: Any, path: str) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
        """The block's ports with checkable types (normalized once per block object)."""
        cached = self._ports.get(id(blk))
        if cached is not None:
            return cached[1], cached[2]
        ins = tuple(self._normalized(blk, p, path, "input") for p in self._valid_ports(blk, path, "inputs"))
        outs = tuple(
            self._normalized(blk, p, path, "output") for p in self._valid_ports(blk, path, "outputs")
        )
        self._ports[id(blk)] = (blk, ins, outs)  # holding blk keeps id() unique while cached
        if id(blk) not in self._noted:
            self._noted.add(id(blk))
            self._check_mutates(blk, path)
            for note in block_notes(blk):
                self.warn(
                    note.code,
                    f"{path}.{note.port}",
                    note.message,
                    note.hint or _NOTE_HINTS.get(note.code, ""),
                )
        return ins, outs

    def _check_mutates(self, blk: Any, path: str) -> None:
        """`mutates` is a tuple of resource names; a bare string would be read as its letters (DF006)."""
        try:
            resources = getattr(blk, "mutates", ())
        except Exception as exc:
            self.error("DF006", path, f"the mutates of {path!r} cannot be read: {_failure(exc)}")
            return
        if isinstance(resources, str) or not isinstance(resources, tuple | list | set | frozenset):
            self.error(
                "DF006",
                path,
                f"mutates of {path!r} must be a tuple of resource names, got {safe_repr(resources)}",
                f"write mutates=({resources!r},) for one resource"
                if isinstance(resources, str)
                else "write mutates=('rng',)",
            )

    def _valid_ports(self, blk: Any, path: str, side: str) -> list[Port]:
        """The block's ports on one side; anything that is not a uniquely named Port is reported (DF006),
        and so is a side that cannot be read at all (a property that raises)."""
        try:
            raw = getattr(blk, side, ())
            items = list(raw) if isinstance(raw, tuple | list) else None
        except Exception as exc:
            self.error(
                "DF006",
                path,
                f"the {side} of {path!r} cannot be read: {_failure(exc)}",
                f"make {side} a tuple of df.Port that can be read without raising",
            )
            return []
        if items is None:
            self.error(
                "DF006", path, f"{side} of {path!r} must be a tuple of df.Port, got {type(raw).__name__}"
            )
            return []
        ports: list[Port] = []
        for port in items:
            if not isinstance(port, Port) or not isinstance(port.name, str):
                self.error(
                    "DF006",
                    path,
                    f"{side} of {path!r} holds {safe_repr(port)}, which is not a df.Port",
                    "build ports with df.Port(name, type, default, doc)",
                )
            elif (problem := name_problem(port.name)) is not None:
                self.error(
                    "DF006",
                    path,
                    f"{side} of {path!r}: {problem}",
                    "name ports with printable strings in NFKC normal form",
                )
            elif any(p.name == port.name for p in ports):
                self.error(
                    "DF006",
                    f"{path}.{port.name}",
                    f"{side} of {path!r} name {port.name!r} twice",
                    "give every port of one side its own name",
                )
            elif type(port.name) is not str:  # a str subclass: plain, so none of its methods reach the code
                ports.append(Port(str.__str__(port.name), port.type, port.default, port.doc))
            else:
                ports.append(port)
        return ports

    def _normalized(self, blk: Any, port: Port, path: str, side: str) -> Port:
        hint, reason = types.normalize(port.type)
        if reason is not None and id(blk) not in self._noted:
            self.warn(
                "DF204",
                f"{path}.{port.name}",
                f"{side} {port.name}: {reason}; typed as Any",
                _NOTE_HINTS["DF204"],
            )
        if hint is port.type:
            return port
        return Port(port.name, hint, port.default, port.doc, check=port.check, ignore=port.ignore)

    def _call(self, blk: Any, scope: Scope, path: str, region: Region) -> dict[str, Value]:
        ins, outs = self._leaf_ports(blk, path)
        op = CallOp(self._next_id(), path, blk, region, call_spec(blk))
        for port in ins:
            self.read(scope, port.name, op, port)
        result: dict[str, Value] = {}
        for port in outs:
            value = self.value(port.name, port.type, "op", op, f"{path}.{port.name}")
            op.outputs.append(value)
            result[port.name] = value
        region.ops.append(op)
        return result

    # -- Sequential -------------------------------------------------------------------------------------

    def _sequential(
        self, seq: Sequential, scope: Scope, path: str | _Path, region: Region
    ) -> Nested[dict[str, Value]]:
        inner = _SeqScope(self, scope)
        for child_name, child in seq.children:
            outs: dict[str, Value] = yield self._child(child, inner, _Path(path, child_name), region)
            for name, value in outs.items():
                inner.write(name, value)
        for name, value in inner.written.items():
            if inner.first[name] != value.where:
                self.first_write[value.id] = inner.first[name]
        return inner.written

    # -- Loop -------------------------------------------------------------------------------------------

    def _loop(self, loop: Loop, scope: Scope, path: str, region: Region) -> Nested[dict[str, Value]]:
        op = LoopOp(self._next_id(), path, loop, region)
        control_type: Any = int if loop.times is not None else _ITERABLE
        control = self.read(
            scope, loop.control, op, Port(loop.control, control_type, doc=f"drives loop {path!r}")
        )
        fixed: dict[str, Value] = {}
        op.index_value = fixed[loop.index] = self.value(
            loop.index, int, "index", op, f"{path} (index {loop.index!r})"
        )
        if loop.over is not None:
            op.item_value = fixed[loop.item] = self.value(
                loop.item,
                types.item_type(control.type),
                "item",
                op,
                f"{path} (item {loop.item!r} of {loop.over!r})",
            )
        body_scope = _BodyScope(self, fixed, scope)
        body = loop.body
        body_path = path if isinstance(body, Sequential) else f"{path}/{getattr(body, 'name', 'body')}"
        written: dict[str, Value] = yield self._child(body, body_scope, body_path, op.body)

        for reserved, what in (
            (loop.index, "index"),
            (loop.item, "item"),
            (loop.control, "loop-control input"),
        ):
            if reserved in written and (what != "item" or loop.over is not None):
                self.error(
                    "DF103",
                    written[reserved].where,
                    f"the body of loop {path!r} writes {reserved!r}, which is the loop's {what}",
                    "rename the output; the loop owns its index, item and control input",
                )
                del written[reserved]

        for name, placeholder in body_scope.free.items():
            readers = [op_.inputs[k].port for op_, k in placeholder.readers]
            port = Port(name, _narrowest(readers), common_default(readers), _first_doc(readers))
            if name in written:
                placeholder.kind = "carry"
                placeholder.type = port.type
                placeholder.where = f"{path} (carried {name!r})"
                self.read(scope, name, op, port)
                op.carried.append(Carried(name, placeholder, op.inputs[-1], written[name]))
            else:
                self.read(scope, name, op, port)
                # the body's readers are rebound to the outer value once, at the end (resolve_captures):
                # rebinding them here, level by level, moved them once per enclosing loop
                self.captures[(op.id, len(op.inputs) - 1)] = placeholder

        self._check_declared_carry(loop, op, path, body_scope, written)
        if loop.until is not None:
            op.until_value = written.get(loop.until)
            if op.until_value is None:
                self.error(
                    "DF404",
                    path,
                    f"until= names {loop.until!r}, which the body of loop {path!r} does not write"
                    + did_you_mean(loop.until, written),
                    "until= names a bool output of the body: the loop ends after an iteration that "
                    "wrote True",
                )

        result: dict[str, Value] = {}
        carried = {c.name: c for c in op.carried}
        for name, final in written.items():
            c = carried.get(name)
            start: Slot | None  # the slot of the value after zero iterations
            if c is not None:
                start = c.init_slot
            else:
                # A name that existed before the loop keeps that value when the loop runs zero times.
                prior = scope.peek(name)
                start = None
                if prior is not None:
                    self.read(scope, name, op, Port(name, prior.type))
                    start = op.inputs[-1]
            if start is None:
                typ = final.type
            else:  # a prior read through an enclosing body is a placeholder: its port has the type
                pending = c is None and start.value.kind == "pending"
                typ = types.union(start.port.type if pending else _known_type(start.value, op), final.type)
            out = self.value(name, typ, "op", op, f"{path}.{name}")
            op.outputs.append(out)
            op.outs.append(LoopOut(out, final, start, c is not None))
            result[name] = out
        region.ops.append(op)
        return result

    def _check_declared_carry(
        self, loop: Loop, op: LoopOp, path: str, body_scope: _BodyScope, written: dict[str, Value]
    ) -> None:
        if loop.carry is None:
            return
        inferred = {c.name for c in op.carried}
        declared = set(loop.carry)
        known = set(body_scope.free) | set(written)
        for name in loop.carry:
            if name in inferred:
                continue
            if name not in known:
                self.error(
                    "DF003",
                    path,
                    f"carry= names {name!r}, which the body of loop {path!r} never reads or writes"
                    + did_you_mean(name, known),
                    "list only names the body reads and writes",
                )
            elif name in written:
                self.error(
                    "DF102",
                    path,
                    f"carry= declares {name!r}, but the body writes it before reading it, "
                    "so nothing is carried",
                    f"remove {name!r} from carry=, or read it before writing",
                )
            else:
                self.error(
                    "DF102",
                    path,
                    f"carry= declares {name!r}, but the body only reads it (it never changes)",
                    f"remove {name!r} from carry=",
                )
        for name in sorted(inferred - declared, key=lambda n: list(written).index(n)):
            self.error(
                "DF102",
                path,
                f"the body of loop {path!r} carries {name!r} (read before written, and written), "
                "but carry= omits it",
                f"add {name!r} to carry=",
            )

    # -- Switch -----------------------------------------------------------------------------------------

    def _switch(self, sw: Switch, scope: Scope, path: str, region: Region) -> Nested[dict[str, Value]]:
        key = self._switch_key(sw, scope, path, region)
        key_value: Value = yield key  # a selector's output, lowered just before the switch
        op = SwitchOp(self._next_id(), path, sw, region)
        port = Port(sw.on or "key", str, doc=f"chooses the case of switch {path!r}")
        op.inputs.append(Slot(port, key_value))
        key_value.readers.append((op, 0))
        written: list[dict[str, Value]] = []
        for key_name, case_block in sw.cases.items():
            case = op.add_case(key_name)
            # a case reads through to the switch's scope; what it writes stays in the case
            outs = yield self._child(case_block, scope, f"{path}/{key_name}", case.body)
            written.append(outs)
        self._capture(op)
        names = list(dict.fromkeys(name for outs in written for name in outs))
        result: dict[str, Value] = {}
        for name in names:
            finals = tuple(outs.get(name) for outs in written)
            typ = functools.reduce(types.union, [f.type for f in finals if f is not None])
            start: Slot | None = None
            if any(f is None for f in finals):
                prior = scope.peek(name)
                if prior is not None:  # the cases that do not write it pass the earlier value through
                    self.read(scope, name, op, Port(name, prior.type))
                    start = op.inputs[-1]
                    known = start.port.type if prior.kind == "pending" else _known_type(prior, op)
                    typ = types.union(known, typ)
            out = self.value(name, typ, "op", op, f"{path}.{name}")
            op.outputs.append(out)
            op.outs.append(SwitchOut(out, finals, start))
            result[name] = out
        region.ops.append(op)
        return result

    def _switch_key(self, sw: Switch, scope: Scope, path: str, region: Region) -> Any:
        """The key's value: the name read in `scope`, or a selector's one output (lowered here)."""
        if sw.selector is None:
            assert sw.on is not None
            return scope.read(sw.on)
        return self._selected(sw, scope, f"{path}/{sw.selector_name}", region)

    def _selected(self, sw: Switch, scope: Scope, path: str, region: Region) -> Nested[Value]:
        outs: dict[str, Value] = yield self._child(sw.selector, scope, path, region)
        if len(outs) == 1:
            return next(iter(outs.values()))
        self.error(
            "DF405",
            path,
            f"the selector of switch {path.rsplit('/', 1)[0]!r} has {len(outs)} outputs "
            f"({', '.join(outs) or 'none'}); a selector has exactly one, the key",
            "give the selector block one output: the key of the case to run",
        )
        return self.value("key", Any, "error", None, path)

    @staticmethod
    def _capture(op: SwitchOp) -> None:
        """Give the switch an input slot for every value from outside that its cases read (once each).

        Ops at a case's top level read outside values directly; nested loops and switches read theirs
        through their own slots, so the top levels are enough."""
        seen: set[int] = set()
        for case in op.cases:
            inside: set[int] = set()
            for inner in case.body.ops:
                for slot in inner.inputs:
                    value = slot.value
                    if value.id not in inside and value.id not in seen and value.kind != "error":
                        seen.add(value.id)
                        op.inputs.append(Slot(Port(value.name, slot.port.type, slot.port.default), value))
                        value.readers.append((op, len(op.inputs) - 1))
                inside.update(v.id for v in inner.outputs)

    # -- Bound ------------------------------------------------------------------------------------------

    def _bound(self, bound: Bound, scope: Scope, path: str, region: Region) -> Nested[dict[str, Value]]:
        constants = self._call(Constants(bound.values), scope, f"{path}/bound", region)
        outs: dict[str, Value] = yield self._child(bound.block, _NodeScope(scope, constants), path, region)
        return outs

    # -- Graph ------------------------------------------------------------------------------------------

    def _graph(self, graph: Graph, scope: Scope, path: str, region: Region) -> Nested[dict[str, Value]]:
        nodes = graph.nodes
        in_names = {n: _port_names(b, "inputs") for n, b in nodes.items()}
        out_names = {n: _port_names(b, "outputs") for n, b in nodes.items()}
        wiring: dict[str, dict[str, tuple[str, str]]] = {n: {} for n in nodes}  # node -> port -> source
        deps: dict[str, list[str]] = {n: [] for n in nodes}
        for source, target in graph.edges:
            dst = self._endpoint(graph, path, target, in_names, "input", "target")
            if dst is None:
                continue
            if "." in source:
                src = self._endpoint(graph, path, source, out_names, "output", "source")
                if src is None:
                    continue
            else:
                src = ("", source)  # a graph input
            previous = wiring[dst[0]].get(dst[1])
            if previous is not None:
                self.error(
                    "DF005",
                    f"{path}/{dst[0]}.{dst[1]}",
                    f"input {dst[0]}.{dst[1]} is driven by two producers: {_show(previous)} and {_show(src)}",
                    "keep one edge into each input",
                )
                continue
            wiring[dst[0]][dst[1]] = src
            if src[0]:
                deps[dst[0]].append(src[0])

        order, cyclic = _topological(list(nodes), deps)
        if cyclic:
            self._report_cycles(path, cyclic, deps)
        # Every node sees the graph's inputs whatever the node order: one that a node outputs too is bound
        # first, so a loop node writing it keeps it after zero iterations (as if it came after the reader).
        written = {name for names in out_names.values() for name in names}
        for node in order + cyclic:
            for port in in_names[node]:
                if port in written and port not in wiring[node]:
                    scope.read(port)
        produced: dict[str, dict[str, Value]] = {}
        for node in order + cyclic:
            wired: dict[str, Value] = {}
            for port, (snode, sport) in wiring[node].items():
                if not snode:
                    wired[port] = scope.read(sport)
                elif snode in produced and sport in produced[snode]:
                    wired[port] = produced[snode][sport]
                else:  # a cycle edge: bind a silent placeholder so nothing downstream repeats the DF004
                    wired[port] = self.value(port, Any, "error", None, f"{path}/{snode}.{sport}")
            node_scope = _NodeScope(scope, wired)
            produced[node] = yield self._child(nodes[node], node_scope, f"{path}/{node}", region)

        self._warn_unwired(path, order, cyclic, wiring, deps, in_names, out_names)
        return self._graph_outputs(graph, path, produced, out_names)

    def _endpoint(
        self, graph: Graph, path: str, text: str, names: dict[str, list[str]], side: str, role: str
    ) -> tuple[str, str] | None:
        node, dot, port = text.partition(".")
        if not dot:
            self.error(
                "DF003",
                path,
                f"edge {role} {text!r} is not of the form 'node.port'",
                "write the node name and the port name joined by a dot",
            )
            return None
        if node not in names:
            self.error(
                "DF003",
                path,
                f"edge {role} {text!r} names no node {node!r}" + did_you_mean(node, names),
                f"the nodes are: {', '.join(names) or '(none)'}",
            )
            return None
        if port not in names[node]:
            self.error(
                "DF003",
                f"{path}/{node}",
                f"node {node!r} has no {side} {port!r}" + did_you_mean(port, names[node]),
                f"its {side}s are: {', '.join(names[node]) or '(none)'}",
            )
            return None
        return node, port

    def _report_cycles(self, path: str, cyclic: list[str], deps: dict[str, list[str]]) -> None:
        import networkx as nx  # only graphs with a cycle pay for the import

        g = nx.DiGraph()
        g.add_nodes_from(cyclic)
        g.add_edges_from((s, d) for d in cyclic for s in deps[d] if s in cyclic)
        for component in nx.strongly_connected_components(g):
            if len(component) == 1 and not g.has_edge(next(iter(component)), next(iter(component))):
                continue  # blocked only by a cycle upstream: not part of one
            start = min(component, key=cyclic.index)
            cycle = [start, *self._cycle_path(g, start, component)]
            self.error(
                "DF004",
                path,
                "cycle outside a loop: " + " -> ".join(cycle),
                "break the cycle, or put the repeated part in a df.Loop to carry the value",
            )

    @staticmethod
    def _cycle_path(g: Any, start: str, component: set[str]) -> list[str]:
        import networkx as nx

        back = min((p for p in g.predecessors(start) if p in component), default=start)
        return [*nx.shortest_path(g.subgraph(component), start, back)[1:], start]

    def _warn_unwired(
        self,
        path: str,
        order: list[str],
        cyclic: list[str],
        wiring: dict[str, dict[str, tuple[str, str]]],
        deps: dict[str, list[str]],
        in_names: dict[str, list[str]],
        out_names: dict[str, list[str]],
    ) -> None:
        """DF205: an unwired input that a node could feed; not when that edge would close a cycle (the
        loop-carry idiom: a body reads 'x' from outside and a later node writes 'x')."""
        producers: dict[str, list[str]] = {}
        for node, names in out_names.items():
            for name in names:
                producers.setdefault(name, []).append(node)
        unwired = [
            (node, port)
            for node in in_names
            for port in in_names[node]
            if port not in wiring[node] and any(p != node for p in producers.get(port, ()))
        ]
        if not unwired:
            return
        # One pass over the graph answers every "would this edge close a cycle" question at once.
        below = descendants(dict.fromkeys(node for node, _ in unwired), order, cyclic, deps)
        for node, port in unwired:
            others = [p for p in producers[port] if p != node and p not in below[node]]
            if others:
                self.warn(
                    "DF205",
                    f"{path}/{node}.{port}",
                    f"{node}.{port} is not wired, so it becomes graph input {port!r}, "
                    f"though node {others[0]!r} outputs {port!r}",
                    f"add the edge ('{others[0]}.{port}', '{node}.{port}'), or wire it from an input",
                )

    def _graph_outputs(
        self, graph: Graph, path: str, produced: dict[str, dict[str, Value]], out_names: dict[str, list[str]]
    ) -> dict[str, Value]:
        result: dict[str, Value] = {}
        if graph.output_map is None:
            # Every node output; a name several nodes write is the last writer's, in execution order
            # (topological, independent nodes in declaration order) -- as in a Sequential.
            for outs in produced.values():
                result.update(outs)
            return result
        for out_name, end in graph.output_map:
            src = self._endpoint(graph, path, end, out_names, "output", "output")
            if src is None:
                continue
            value = produced.get(src[0], {}).get(src[1])
            if value is None:
                continue
            if out_name in result:
                self.error(
                    "DF005",
                    path,
                    f"graph output {out_name!r} is given twice: {result[out_name].where} and {value.where}",
                    "name the outputs apart with a mapping: outputs={'a': 'n1.x', 'b': 'n2.x'}",
                )
                continue
            result[out_name] = value
        exported = {id(v) for v in result.values()}
        for node, outs in produced.items():
            if outs and not any(v.readers or id(v) in exported for v in outs.values()):
                self.warn(
                    "DF203",
                    f"{path}/{node}",
                    f"node {node!r} is unused: no edge reads its outputs and none is a graph output",
                    "remove the node, or add it to outputs=",
                )
        return result


_ITERABLE: Any = Iterable[Any]

_NOTE_HINTS = {
    "DF202": "annotate the parameter or return type so the checker can verify the wiring",
    "DF204": "use a standard annotation (a class, a typing generic, a jaxtyping array) the checker can use",
}


def _known_type(value: Value, reader: Op) -> Any:
    """A value's type as known now: an external input is only narrowed at the end, so use the reading port."""
    if value.kind != "input":
        return value.type
    return next(slot.port.type for slot in reader.inputs if slot.value is value)


class _Below:
    """The nodes that depend on one target, read from the per-node bitsets `descendants` computed."""

    __slots__ = ("bit", "marks")

    def __init__(self, marks: dict[str, int], bit: int) -> None:
        self.marks, self.bit = marks, bit

    def __contains__(self, node: object) -> bool:
        return isinstance(node, str) and bool(self.marks.get(node, 0) & self.bit)


def descendants(
    targets: dict[str, None], order: list[str], cyclic: list[str], deps: dict[str, list[str]]
) -> dict[str, _Below]:
    """For each target node, the nodes that depend on it (itself included), in one pass over the graph.

    Each target gets a bit; walking the topological `order`, a node's bitset is its own bit or-ed with
    its dependencies' bitsets: O((nodes + edges) * targets / 64) instead of a search per pair. Nodes on
    or behind a cycle (`cyclic`) are iterated to a fixed point (a cycle is an error: those are few)."""
    bits = {t: 1 << k for k, t in enumerate(targets)}
    marks: dict[str, int] = {}
    for node in order:
        mark = bits.get(node, 0)
        for dep in deps[node]:
            mark |= marks[dep]
        marks[node] = mark
    changed = True
    while changed:
        changed = False
        for node in cyclic:
            mark = marks.get(node, bits.get(node, 0))
            for dep in deps[node]:
                mark |= marks.get(dep, bits.get(dep, 0))
            if mark != marks.get(node):
                marks[node] = mark
                changed = True
    return {t: _Below(marks, bit) for t, bit in bits.items()}


def _show(src: tuple[str, str]) -> str:
    return f"{src[0]}.{src[1]}" if src[0] else f"graph input {src[1]!r}"


def _port_names(blk: Any, side: str) -> list[str]:
    """Port names for wiring; malformed ports are skipped here and reported when the block is lowered."""
    try:
        ports = getattr(blk, side, ())
    except Exception:
        return []
    if not isinstance(ports, tuple | list):
        return []
    # a badly named port still resolves here, so its one DF006 is not followed by a DF003
    return [p.name for p in ports if isinstance(p, Port) and isinstance(p.name, str)]


def resolve_captures(captures: dict[tuple[int, int], Value], ops: Iterable[Op]) -> None:
    """Rebind every reader of a captured placeholder to the outer value the loop reads, in one pass.

    A value's readers end up in the order rebinding level by level gave: each loop's capture slot is
    followed by the readers inside that loop (depth first, on an explicit stack)."""
    if not captures:
        return
    forwarded = {id(placeholder) for placeholder in captures.values()}
    finals: dict[int, Value] = {}
    for op in ops:
        if isinstance(op, LoopOp):
            for k, slot in enumerate(op.inputs):
                if (op.id, k) in captures and id(slot.value) not in forwarded:
                    finals.setdefault(slot.value.id, slot.value)
    for value in finals.values():
        readers: list[tuple[Op, int]] = []
        stack = [iter(value.readers)]
        while stack:
            reader = next(stack[-1], None)
            if reader is None:
                stack.pop()
                continue
            reader[0].inputs[reader[1]].value = value
            readers.append(reader)
            placeholder = captures.get((reader[0].id, reader[1]))
            if placeholder is not None:
                stack.append(iter(placeholder.readers))
        value.readers = readers
    for placeholder in captures.values():
        placeholder.readers = []


def _failure(exc: BaseException) -> str:
    """'Type: message' of an exception, even when its `__str__` raises."""
    text = exception_text(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _replace_uses(old: Value, new: Value) -> None:
    for op, k in old.readers:
        op.inputs[k].value = new
        new.readers.append((op, k))
    old.readers.clear()


def _narrowest(ports: list[Port]) -> Any:
    # each distinct hint once: a name read in loops nested 300 deep has 300 readers of one type
    narrowed = types.narrow(list({id(p.type): p.type for p in ports}.values()))
    return narrowed if narrowed is not None else ports[0].type


def _first_doc(ports: list[Port]) -> str:
    return next((p.doc for p in ports if p.doc), "")


def _topological(nodes: list[str], deps: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Kahn's order, stable in declaration order; the second list holds nodes on or behind a cycle."""
    waiting = {n: len(set(deps[n])) for n in nodes}
    users: dict[str, list[str]] = {n: [] for n in nodes}
    for n in nodes:
        for d in set(deps[n]):
            users[d].append(n)
    position = {n: i for i, n in enumerate(nodes)}
    ready = [position[n] for n in nodes if waiting[n] == 0]  # a heap of declaration positions
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for user in users[node]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, position[user])
    done = set(order)
    return order, [n for n in nodes if n not in done]


def root_path(blk: Any) -> str:
    """The path segment of the root block: its name."""
    return str(getattr(blk, "name", "graph"))


def lower(blk: Any) -> Lowered:
    """Lower a block (composite or leaf) to the IR, collecting structural diagnostics."""
    with gc_paused():
        return _lower(blk)


def _lower(blk: Any) -> Lowered:
    derive_node_interfaces(blk)
    lowerer = Lowerer()
    root = _RootScope(lowerer)
    region = Region(None)
    name = root_path(blk)
    outputs = lowerer.lower(blk, root, name, region)
    resolve_captures(lowerer.captures, region.walk())
    for value in root.inputs.values():
        readers = [op.inputs[k].port for op, k in value.readers]
        if readers:
            value.type = _narrowest(readers)
    return Lowered(name, region, root.inputs, dict(outputs), lowerer.diagnostics)


def derive_node_interfaces(blk: Any) -> None:
    """Derive the interface of every composite Graph node below `blk`, deepest first.

    Lowering a Graph reads its nodes' port names, and a composite derives those by lowering itself:
    done on demand that nests one lowering per Graph level (Python recursion). Deepest first, each
    derivation finds its own Graph nodes' interfaces already cached. A composite whose interface is
    cached is not entered: deriving it derived everything below it."""
    finished: list[Any] = []  # post-order: every composite after all of its children
    nodes: set[int] = set()
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(blk, False)]
    while stack:
        current, expanded = stack.pop()
        if expanded:
            finished.append(current)
            continue
        if id(current) in seen or not isinstance(current, Sequential | Loop | Graph | Switch | Bound):
            continue
        seen.add(id(current))
        if current is not blk and current._interface is not None:
            continue
        stack.append((current, True))
        if isinstance(current, Sequential):
            stack.extend((child, False) for _, child in reversed(current.children))
        elif isinstance(current, Loop):
            stack.append((current.body, False))
        elif isinstance(current, Switch):
            stack.extend((case, False) for case in reversed(current.cases.values()))
            if current.selector is not None:
                stack.append((current.selector, False))
        elif isinstance(current, Bound):
            stack.append((current.block, False))
        else:
            nodes.update(id(node) for node in current.nodes.values())
            stack.extend((node, False) for node in reversed(current.nodes.values()))
    for node in finished:
        if node is not blk and id(node) in nodes:
            node.inputs  # noqa: B018 -- derives and caches the interface


def input_default(value: Value) -> Any:
    """The default of a program input: the one its readers that always run share (REQUIRED when they
    differ or one has none). An input only switch cases read defaults to their shared default, or to
    WHEN_CHOSEN (needed only when a case reading it runs) where that would be REQUIRED."""
    always: list[Port] = []
    sometimes: list[Port] = []
    for op, k in value.readers:
        port = op.inputs[k].port
        if isinstance(op, LoopOp) and k > 0 and _captured(op, k):
            continue  # the body's readers read it directly, and count for themselves
        if op.region.conditional or (k > 0 and isinstance(op, SwitchOp)):
            sometimes.append(port)
        else:
            always.append(port)
    if always:
        return common_default(always)
    if not sometimes:
        return REQUIRED
    default = common_default(sometimes)
    if default is not REQUIRED:
        return default
    return REQUIRED if _needed_by_every_case(value) else WHEN_CHOSEN


def _captured(op: LoopOp, k: int) -> bool:
    """Whether input slot k of a loop is a capture (neither a carried name's nor an output's init)."""
    slot = op.inputs[k]
    return all(c.init_slot is not slot for c in op.carried) and all(o.init_slot is not slot for o in op.outs)


def _needed_by_every_case(value: Value) -> bool:
    """Whether every way through the switches reads `value`: a switch whose every case reads it reads it
    as surely as a block beside the switch does (and so on outward)."""
    reading: set[Region] = set()  # regions in which it is read, directly or by every case of a switch
    work: list[Region] = []

    def mark(region: Region) -> None:
        if region not in reading:
            reading.add(region)
            work.append(region)

    for op, k in value.readers:
        if isinstance(op, LoopOp) and k > 0 and _captured(op, k):
            continue  # the body's readers count for themselves
        if not isinstance(op, SwitchOp) or k == 0:
            mark(op.region)
            continue
        for out in op.outs:  # an init slot: read by the cases that pass the value through
            if out.init_slot is op.inputs[k]:
                for case, final in zip(op.cases, out.finals, strict=True):
                    if final is None:
                        mark(case.body)
    while work:
        region = work.pop()
        if not region.conditional:
            return True
        owner = region.owner
        if isinstance(owner, SwitchOp):
            if all(case.body in reading for case in owner.cases):
                mark(owner.region)
        elif owner is not None:
            mark(owner.region)  # a loop inside a case reads it through its own slot as well
    return False


def input_ports(lowered: Lowered) -> tuple[Port, ...]:
    """The ports of the external inputs: narrowed type, shared default, first doc."""
    ports = []
    for name, value in lowered.inputs.items():
        readers = [op.inputs[k].port for op, k in value.readers]
        if not readers:
            continue
        default, typ = input_default(value), value.type
        if default is None and any(op.region.conditional for op, _ in value.readers):
            # the type narrows over the cases' readers too (`image: Tensor` where it is chosen), but a
            # reader that always runs accepts the default (`image: Tensor | None = None`): show both
            typ = types.union(typ, type(None))
        ports.append(Port(name, typ, default, _first_doc(readers)))
    return tuple(ports)


def output_ports(lowered: Lowered) -> tuple[Port, ...]:
    """The ports of the outputs, typed by their producers."""
    return tuple(Port(name, value.type) for name, value in lowered.outputs.items())


def interface(blk: Any) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
    """The (inputs, outputs) ports of a composite, derived from its wiring."""
    lowered = lower(blk)
    return input_ports(lowered), output_ports(lowered)

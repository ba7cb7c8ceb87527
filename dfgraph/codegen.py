"""Code generation: the lowered IR becomes one readable Python function whose values are locals.

A loop-carried name shares one variable with its initial value and its final body value when no later
reader needs the old one, so the counter loop compiles to exactly the loop a person would write. Every
emitted line that calls a block is recorded, so a failure maps back to the block path and iteration.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import attrs

from dfgraph import boundary, types
from dfgraph.capture import Segment
from dfgraph.ir import (
    CallOp,
    FusedOp,
    LoopOp,
    Lowered,
    Nested,
    Op,
    Region,
    Slot,
    Value,
    common_default,
    consumers,
    run_nested,
)
from dfgraph.ports import REQUIRED, Port
from dfgraph.schedule import BodySchedule, Schedule


class Unset:
    """The value of a loop output that has none: the loop ran zero times, the name had no value before it
    and is not carried. One object per loop output, so that the error names the loop; never returned."""

    __slots__ = ("loop", "name")

    def __init__(self, loop: str, name: str) -> None:
        self.loop, self.name = loop, name

    def __repr__(self) -> str:
        return f"UNSET({self.loop!r}, {self.name!r})"


def no_value_message(program: str, unset: Unset, reader: str) -> str:
    """The InputError message when a block or loop (`reader`) is about to read a value that has none."""
    return (
        f"{program}: loop {unset.loop!r} ran zero times, so {unset.name!r} (not carried) has no value; "
        f"{reader} reads it"
    )


def no_output_message(program: str, output: str, unset: Unset) -> str:
    """The InputError message when the caller asks for an output that has no value."""
    return (
        f"{program}: output {output!r} has no value: loop {unset.loop!r} ran zero times, "
        f"so {unset.name!r} (not carried) has no value"
    )


def iterator_refusal(op: LoopOp) -> str | None:
    """Why an iterator cannot be the `over=` of this loop, or None when one can.

    A loop around it runs this loop once per iteration, so a one-shot iterator made outside that loop
    would be empty from its second iteration on: both engines refuse it with an InputError instead."""
    value, outer = op.inputs[0].value, op.region.owner
    if op.loop.over is None or outer is None:
        return None
    made_per_iteration = value.producer is outer or (
        value.kind != "input" and op.region.top_level(value.producer) is not None
    )
    if made_per_iteration:
        return None
    return (
        f"over= of loop {op.path!r} got an iterator, but loop {outer.path!r} runs that "
        "loop once per iteration and an iterator is used up by the first: pass a list or a tuple"
    )


def maybe_unset(lowered: Lowered) -> set[int]:
    """The ids of the values that may have no value at run time (a loop output, or what it flows into)."""
    unset: set[int] = set()
    loops = [op for op in lowered.ops() if isinstance(op, LoopOp)]
    changed = True
    while changed:  # a monotone fixpoint: a phi and a final may feed each other through nested loops
        changed = False
        for op in loops:
            for c in op.carried:
                if c.phi.id not in unset and (c.init.id in unset or c.final.id in unset):
                    unset.add(c.phi.id)
                    changed = True
            for out in op.outs:
                init = out.init
                if out.value.id not in unset and (init is None or init.id in unset or out.final.id in unset):
                    unset.add(out.value.id)
                    changed = True
    return unset


class Missing:
    """The value of a required input the caller did not pass (sends the call down the slow path)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()

# CPython allows 20 statically nested blocks per function; deeper loops go into helper functions.
MAX_NESTING = 12

# Names the generated code uses for itself; the allocator never hands them to values or blocks.
_HELPERS = (
    "_range",
    "_enumerate",
    "_isinstance",
    "_iter",
    "_tqdm",
    "_cat",
    "_rt",
    "_Unset",
    "_MISSING",
    "_bad_input",
    "_no_value",
    "_OUTPUTS",
    "self",
    "args",
    "output",
    "unknown",
    "exc",
    # the only builtins the generated code names; no identifier of ours may shadow them
    "str",
    "Exception",
    "__builtins__",  # exec reads the builtins from this global
    "__debug__",  # cannot be assigned
)
# Globals never take a builtin's name unless they hold that very builtin (int is int); locals other than
# inputs neither (inputs keep theirs, so the caller's keywords bind straight to parameters: the
# generated code names no builtin but those above).
_BUILTINS = frozenset(dir(builtins))
# Up to this many outputs, `output="name"` is answered by inline comparisons instead of a lookup.
INLINE_OUTPUTS = 8


@attrs.frozen
class LineInfo:
    """What a generated line does: the block (or loop) path and the loops around it in that function."""

    path: str
    loops: tuple[tuple[str, str], ...]  # (loop path, index variable)


@attrs.frozen
class InputCheck:
    """A boundary check of one input: which hint and who reads it, for the error message."""

    name: str
    hint: Any
    readers: tuple[str, ...]


@attrs.frozen
class Generated:
    """The generated source and everything the Program needs to run it and explain failures."""

    source: str
    namespace: dict[str, Any]
    entry: str
    params: tuple[tuple[str, str], ...]  # (input name, parameter identifier)
    output_names: tuple[str, ...]
    lines: dict[int, LineInfo]
    maybe_unset: bool
    segments: tuple[Segment, ...] = ()


class _Names:
    """Allocates unique, readable identifiers for locals and globals alike (so none shadows another).

    Any string may be a base (a block, port or loop name): the identifier made from it is one Python
    reads exactly as written (NFKC-normal, not a keyword), so user names reach the source only as
    identifiers made here or as string literals (`repr`)."""

    def __init__(self) -> None:
        self.used: set[str] = set(_HELPERS)
        self.next_suffix: dict[str, int] = {}  # per base name, so 10,000 versions of 'x' stay linear

    def new(self, base: str, *, builtin_ok: bool = False) -> str:
        """A fresh identifier like `base`; a builtin's name only when `builtin_ok` (an input parameter)."""
        ident = identifier(base)
        candidate, k = ident, self.next_suffix.get(ident, 1)
        while candidate in self.used or (candidate in _BUILTINS and not builtin_ok):
            candidate, k = f"{ident}_{k}", k + 1
        self.next_suffix[ident] = k
        self.used.add(candidate)
        return candidate


def identifier(base: str) -> str:
    """An identifier that Python reads as written (NFKC-normal, not a keyword), close to `base`."""
    text = unicodedata.normalize("NFKC", base)
    ident = "".join(c if c == "_" or f"_{c}".isidentifier() else "_" for c in text)
    if unicodedata.normalize("NFKC", ident) != ident:  # a rare sequence NFKC recomposes: keep ASCII only
        ident = re.sub(r"[^0-9A-Za-z_]", "_", ident)
    if not ident:
        ident = "v"
    if not ident.isidentifier():  # starts with a digit or another continue-only character
        ident = f"_{ident}"
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident):
        ident = f"{ident}_"
    return ident


def _block_name(op: CallOp) -> str:
    """The block's name as the base of its identifier (the path's last segment if it has none)."""
    try:
        name = getattr(op.block, "name", None)
    except Exception:  # a name property that raises: check reports nothing for a Graph node's name
        name = None
    return name if isinstance(name, str) else op.path.rsplit("/", 1)[-1]


def _literal(text: str) -> str:
    """A string literal of `text`: str's own repr, which a str subclass cannot override."""
    return str.__repr__(text)


def _comment(text: str) -> str:
    """Text for a `#` comment: as is when printable (no line break can end the comment), else a literal."""
    text = str.__str__(text)
    return text if text.isprintable() else _literal(text)


def _plain_keyword(name: str) -> bool:
    """True when `name=` in a call passes exactly the keyword `name` (else it goes through **{...})."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and name != "__debug__"
        and unicodedata.normalize("NFKC", name) == name
    )


class _Function:
    def __init__(self, header: str) -> None:
        self.lines: list[tuple[str, LineInfo | None]] = [(header, None)]
        self.setup: list[str] = []  # run once per call (CUDA streams and events), inserted at setup_at
        self.setup_at = 1  # right after the header; the entry moves it past its argument checks


@attrs.frozen
class _StreamPlan:
    """The variables of one scheduled loop body: its streams (0 is the main one), events, fork, joins."""

    body: BodySchedule
    region: Region
    stream_var: list[str]
    event_var: dict[str, str]
    fork: str
    joins: list[str]


class _Emitter:
    def __init__(
        self, lowered: Lowered, schedule: Schedule | None = None, runtime: Any = None, capture: bool = False
    ) -> None:
        self.lowered = lowered
        self.schedule = schedule
        self.runtime = runtime  # set for device="cuda": scheduled bodies run on streams
        self.capture = capture  # loop bodies run their capturable segments as CUDA graphs
        self.segments: list[Segment] = []
        self.plans: dict[int, _StreamPlan] = {}
        self.names = _Names()
        self.vars: dict[int, str] = {}
        self.namespace: dict[str, Any] = {}
        self._global_ids: dict[int, str] = {}
        self.functions: list[_Function] = []
        self.position: dict[int, int] = {}
        self.output_ids = {v.id for v in lowered.outputs.values()}
        self.unset = maybe_unset(lowered)
        self.maybe_unset = any(v.id in self.unset for v in lowered.outputs.values())
        self.checks: list[InputCheck] = []
        self.no_value: list[str] = []  # who reads a value that may have none, cited by _no_value(k, value)
        self._index_positions()

    def _index_positions(self) -> None:
        regions = [self.lowered.root]
        while regions:
            region = regions.pop()
            for i, op in enumerate(region.ops):
                self.position[op.id] = i
                if isinstance(op, LoopOp):
                    regions.append(op.body)

    # -- names ------------------------------------------------------------------------------------------

    def var(self, value: Value) -> str:
        ident = self.vars.get(value.id)
        if ident is None:
            ident = self.vars[value.id] = self.names.new(value.name, builtin_ok=value.kind == "input")
        return ident

    def glob(self, obj: object, base: str) -> str:
        ident = self._global_ids.get(id(obj))
        if ident is None:
            # a builtin's own name may hold the builtin itself (int is int): nothing is shadowed
            same = getattr(builtins, identifier(base), None) is obj
            ident = self._global_ids[id(obj)] = self.names.new(base, builtin_ok=same)
            self.namespace[ident] = obj
        return ident

    # -- program ----------------------------------------------------------------------------------------

    def program(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The program's `__call__`: keywords bind straight to parameters; anything unusual (positional
        arguments, unknown or missing names, renamed ports) takes the slow path, which explains it."""
        params: list[tuple[str, str]] = []
        signature = ["self", "/", "*args"]
        required: list[str] = []
        inputs = [(n, v) for n, v in self.lowered.inputs.items() if v.readers]
        for name, value in inputs:
            ident = self.var(value)
            params.append((name, ident))
            default = input_default(value)
            if default is REQUIRED:
                required.append(ident)
                signature.append(f"{ident}=_MISSING")
            else:
                signature.append(f"{ident}={self.glob(default, f'{name}_default')}")
        signature += ["output=None", "**unknown"]
        fn = _Function(f"def __call__({', '.join(signature)}):")
        self.functions.append(fn)
        given = ", ".join(f"{ident!r}: {ident}" for _, ident in params)
        odd = " or ".join(["args", "unknown", *(f"{ident} is _MISSING" for ident in required)])
        fn.lines.append((f"    if {odd}:", None))
        fn.lines.append((f"        return self._slow_call(args, unknown, output, {{{given}}})", None))
        # unknown output names are refused before any block runs, as bad inputs are
        check = "output is not None and (output.__class__ is not str or output not in _OUTPUTS)"
        fn.lines.append((f"    if {check}: output = self._check_output(output)", None))
        for name, value in inputs:
            self._input_check(fn, name, value)
        for op in self.lowered.root.walk():  # iterators given as inputs to inner loops' over=
            if isinstance(op, LoopOp) and op.inputs[0].value.kind == "input":
                self._reiterable_check(fn, op, "    ")
        fn.setup_at = len(fn.lines)  # bad calls never make streams
        fn.lines.append(("    try:", None))
        before = len(fn.lines)
        run_nested(self._region(fn, self.lowered.root, 2, ()))
        if len(fn.lines) == before:
            fn.lines.append(("        pass", None))
        fn.lines.append(("    except Exception as exc:", None))
        fn.lines.append(("        self._reraise(exc)", None))
        self._select_output(fn)
        return "__call__", tuple(params)

    def _select_output(self, fn: _Function) -> None:
        names = list(self.lowered.outputs)
        outs = [self.var(v) for v in self.lowered.outputs.values()]
        mapping = ", ".join(f"{_literal(n)}: {o}" for n, o in zip(names, outs, strict=True))
        if self.maybe_unset:  # a loop may have run zero times: its non-carried outputs are left out
            fn.lines.append((f"    if output is None: return self._defined({{{mapping}}})", None))
        else:
            fn.lines.append((f"    if output is None: return {{{mapping}}}", None))
        if len(names) <= INLINE_OUTPUTS and not self.maybe_unset:
            fn.lines.extend(
                (f"    if output == {_literal(n)}: return {o}", None)
                for n, o in zip(names, outs, strict=True)
            )
        fn.lines.append((f"    return self._select(output, ({_tuple(outs)}))", None))

    def _input_check(self, fn: _Function, name: str, value: Value) -> None:
        """Boundary checks, inlined as isinstance where that is exact; they run before any block."""
        # a reader port with check=False (or whose DF002 was ignored) is not checked at the boundary
        paths = tuple(dict.fromkeys(f"{op.path}.{port.name}" for op, port in consumers(value)))
        ident = self.var(value)
        default = input_default(value)
        guard = "" if default is REQUIRED else f"{ident} is not {self.glob(default, f'{name}_default')} and "
        for hint, test in boundary_checks(value):
            if isinstance(test, type | tuple):  # the fast path: an inline isinstance, no call of ours
                expr = f"_isinstance({ident}, {self.glob(test, _class_name(test))})"
            else:
                expr = f"{self.glob(test, f'is_{name}')}({ident})"
            self.checks.append(InputCheck(name, hint, paths))
            fn.lines.append((f"    if {guard}not {expr}: _bad_input({len(self.checks) - 1}, {ident})", None))

    # -- regions ----------------------------------------------------------------------------------------

    def _region(
        self, fn: _Function, region: Region, depth: int, loops: tuple[tuple[str, str], ...]
    ) -> Nested[None]:
        """Emit a region's ops; a nested loop is yielded to run_nested (loops nested 1,000 deep)."""
        plan = self.plans.get(id(region))
        if self.capture and region.owner is not None:
            for group in _segments(region):
                if isinstance(group, list):
                    self._segment(fn, group, region.owner, depth, loops)
                else:
                    yield self._op(fn, group, depth, loops)
            return
        for op in region.ops:
            if plan is None:
                yield self._op(fn, op, depth, loops)
                continue
            # A scheduled body: each op on its stream, after its waits, then its event if anyone waits.
            stream = plan.stream_var[plan.body.stream_of(op.path)]
            inner = depth
            if stream != plan.stream_var[0]:
                fn.lines.append((f"{'    ' * depth}with _rt.on({stream}):", None))
                inner = depth + 1
            pad = "    " * inner
            fn.lines.extend(
                (f"{pad}{stream}.wait_event({plan.event_var[p]})", None) for p in plan.body.waits_for(op.path)
            )
            yield self._op(fn, op, inner, loops)
            for value in self._from_other_streams(op, plan):
                fn.lines.append((f"{pad}_rt.keep({self.var(value)}, {stream})", None))
            if plan.body.records_event(op.path):
                fn.lines.append((f"{pad}{plan.event_var[op.path]}.record({stream})", None))

    def _segment(
        self, fn: _Function, ops: list[CallOp], loop: LoopOp, depth: int, loops: tuple[tuple[str, str], ...]
    ) -> None:
        """Capturable calls as one function, run through a `Segment` (warm-up, capture, replays)."""
        members = {id(op) for op in ops}
        params: dict[str, str] = {}  # variable -> 'block.port' of its first reader
        varying: dict[str, bool] = {}  # variable -> made in this loop's body (changes every step)
        for op in ops:
            for slot in op.inputs:
                value = slot.value
                if value.kind == "op" and id(value.producer) in members:
                    continue  # made inside the segment
                ident = self.var(value)
                params.setdefault(ident, f"{op.path}.{slot.port.name}")
                varying[ident] = value.producer is loop or (
                    value.kind == "op" and loop.body.top_level(value.producer) is not None
                )
        kept = {c.final.id for c in loop.carried} | {o.final.id for o in loop.outs} | self.output_ids
        outs = list(
            dict.fromkeys(
                self.var(value)
                for op in ops
                for value in op.outputs
                if value.id in kept or any(id(reader) not in members for reader, _ in value.readers)
            )
        )
        segment = Segment(
            [op.path for op in ops], list(params.values()), list(varying.values()), self.runtime
        )
        self.segments.append(segment)
        name = self.names.new(f"_segment_{len(self.segments)}")
        helper = _Function(f"def {name}({', '.join(params)}):")
        self.functions.append(helper)
        for op in ops:
            self._call(helper, op, 1, ())
        helper.lines.append((f"    return ({_tuple(outs) if outs else ''})", None))
        runner = self.glob(segment, f"{name}_graph")
        target = f"{_tuple(outs)} = " if outs else ""
        arguments = f"({_tuple(list(params))})" if params else "()"
        info = LineInfo(segment.label, loops)
        fn.lines.append((f"{'    ' * depth}{target}{runner}.run({name}, {arguments})", info))

    def _from_other_streams(self, op: Op, plan: _StreamPlan) -> list[Value]:
        """The values `op` reads that an op of the same body made on another stream."""
        mine = plan.body.stream_of(op.path)
        found: dict[int, Value] = {}
        for slot in op.inputs:
            producer = self._in_body(slot.value, plan)
            if producer is not None and plan.body.stream_of(producer.path) != mine:
                found[slot.value.id] = slot.value
        return list(found.values())

    @staticmethod
    def _in_body(value: Value, plan: _StreamPlan) -> Op | None:
        """The op of the scheduled body that made `value` (itself or the loop around it), if any."""
        return plan.region.top_level(value.producer) if value.kind == "op" else None

    def _op(
        self, fn: _Function, op: Op, depth: int, loops: tuple[tuple[str, str], ...]
    ) -> Nested[None] | None:
        """Emit a call now; a loop's emission is returned, for the caller to yield to run_nested."""
        # depth counts indentation: the entry's try adds one level, so nesting stays under 20 blocks
        if isinstance(op, CallOp):
            self._call(fn, op, depth, loops)
        elif isinstance(op, LoopOp):
            if depth > MAX_NESTING:
                return self._loop_function(fn, op, depth, loops)
            return self._loop(fn, op, depth, loops)
        return None

    def _stream_plan(self, fn: _Function, op: LoopOp, pad: str) -> _StreamPlan | None:
        """On CUDA, a body scheduled on several streams gets its streams and events, made before the loop."""
        body = self.schedule.bodies.get(op.path) if self.schedule is not None else None
        if body is None or body.n_streams < 2 or self.capture:
            return None  # captured bodies replay their segments in issue order on the main stream
        self.namespace.setdefault("_rt", self.runtime)
        tag = self.names.new(f"_{op.path.rsplit('/', 1)[-1]}")
        # every derived name is allocated too, so none collides with a value named like it
        streams = [self.names.new(f"{tag}_s{k}") for k in range(body.n_streams)]
        events = {p: self.names.new(f"{tag}_e{k}") for k, p in enumerate(body.events)}
        joins = [self.names.new(f"{tag}_join{k}") for k in body.side_streams]
        plan = _StreamPlan(body, op.body, streams, events, self.names.new(f"{tag}_fork"), joins)
        # Streams and events are made once per call (not per iteration of an enclosing loop); the main
        # stream is whichever is current where the loop starts (a side stream, for a nested loop).
        fn.lines.append((f"{pad}{streams[0]} = _rt.current_stream()", None))
        fn.setup.extend(f"    {s} = _rt.new_stream()" for s in streams[1:])
        created = [*events.values(), plan.fork, *plan.joins] if body.side_streams else list(events.values())
        fn.setup.extend(f"    {e} = _rt.new_event()" for e in created)
        self.plans[id(op.body)] = plan
        return plan

    def _unset_check(self, fn: _Function, pad: str, value: Value, reader: str) -> None:
        """Before a block or loop reads a value that may have none: an InputError naming the loop."""
        if value.id in self.unset:
            self.no_value.append(reader)
            ident = self.var(value)
            check = f"if _isinstance({ident}, _Unset): _no_value({len(self.no_value) - 1}, {ident})"
            fn.lines.append((f"{pad}{check}", None))  # no LineInfo: an InputError of ours, not a BlockError

    def _call(self, fn: _Function, op: CallOp, depth: int, loops: tuple[tuple[str, str], ...]) -> None:
        pad = "    " * depth
        info = LineInfo(op.path, loops)
        checked: set[int] = set()
        for member in op.members if isinstance(op, FusedOp) else (op,):
            for slot in member.inputs:
                if slot.value.id not in checked:
                    checked.add(slot.value.id)
                    self._unset_check(fn, pad, slot.value, f"block {member.path!r}")
        if not isinstance(op, FusedOp):
            self._plain_call(fn, pad, op, info)
            return
        # One call on the stacked batch, then each output split back at the first member's batch size.
        first, second = op.members
        self.namespace.setdefault("_cat", _torch_cat())
        optional = [
            self.var(slot.value)
            for member in op.members
            for slot in member.inputs
            if slot.port.name in op.batch and types.is_assignable(type(None), slot.port.type)
        ]
        if optional:
            # A None batch input (an optional branch switched off) cannot be stacked: the two calls
            # then run as written, so the fused program always computes what the unfused one does.
            fn.lines.append((f"{pad}if {' or '.join(f'{v} is None' for v in optional)}:", info))
            for member in op.members:
                self._plain_call(fn, pad + "    ", member, info)
            fn.lines.append((f"{pad}else:", info))
            pad += "    "
        size = self.names.new("_n")
        batch_input = next(slot for slot in first.inputs if slot.port.name in op.batch)
        fn.lines.append((f"{pad}{size} = {self.var(batch_input.value)}.shape[0]", info))
        args = [
            f"_cat(({self.var(a.value)}, {self.var(b.value)}))"
            if a.port.name in op.batch
            else self.var(a.value)
            for a, b in zip(first.inputs, second.inputs, strict=True)
        ]
        batched = [self.names.new(f"{v.name}_batch") for v in first.outputs]
        self._assign(fn, pad, op, self._call_expr(op, first.inputs, args), batched, info)
        for whole, a, b in zip(batched, first.outputs, second.outputs, strict=True):
            fn.lines.append((f"{pad}{self.var(a)}, {self.var(b)} = {whole}[:{size}], {whole}[{size}:]", info))

    def _plain_call(self, fn: _Function, pad: str, op: CallOp, info: LineInfo) -> None:
        """One call of a block on its own inputs, bound to its own outputs."""
        args = [self.var(slot.value) for slot in op.inputs]
        self._assign(
            fn, pad, op, self._call_expr(op, op.inputs, args), [self.var(v) for v in op.outputs], info
        )

    def _call_expr(self, op: CallOp, slots: list[Slot], args: list[str]) -> str:
        """`block(positional..., keyword=...)` for a leaf call, arguments given as expressions."""
        spec = op.spec
        target = self.glob(spec.target, _block_name(op))
        positional = args[: spec.n_positional]
        keywords = [
            (slot.port.name, a)
            for slot, a in zip(slots[spec.n_positional :], args[spec.n_positional :], strict=True)
        ]
        if all(_plain_keyword(k) for k, _ in keywords):
            parts = positional + [f"{k}={a}" for k, a in keywords]
        else:
            parts = [*positional, "**{" + ", ".join(f"{_literal(k)}: {a}" for k, a in keywords) + "}"]
        return f"{target}({', '.join(parts)})"

    def _assign(
        self, fn: _Function, pad: str, op: CallOp, call: str, outs: list[str], info: LineInfo
    ) -> None:
        """Bind a call's results to `outs`, following the block's return form."""
        spec = op.spec
        comment = f"  # {_comment(_short(op.path))}"
        if spec.returns == "value" and len(outs) == 1:
            fn.lines.append((f"{pad}{outs[0]} = {call}{comment}", info))
        elif spec.returns == "tuple" and outs:
            fn.lines.append(
                (f"{pad}{', '.join(outs)}{',' if len(outs) == 1 else ''} = {call}{comment}", info)
            )
        elif spec.returns == "mapping" and outs:
            result = self.names.new("_r")
            fn.lines.append((f"{pad}{result} = {call}{comment}", info))
            for value, out in zip(op.outputs, outs, strict=True):  # a fused op's first outputs lead
                fn.lines.append((f"{pad}{out} = {result}[{_literal(value.name)}]", info))
        else:
            fn.lines.append((f"{pad}{call}{comment}", info))

    def _loop(
        self, fn: _Function, op: LoopOp, depth: int, loops: tuple[tuple[str, str], ...]
    ) -> Nested[None]:
        pad = "    " * depth
        loop = op.loop
        info = LineInfo(op.path, loops)
        fn.lines.append((f"{pad}# {_comment(f'loop {_short(op.path)}: {_describe_loop(op)}')}", None))
        plan = self._stream_plan(fn, op, pad) if self.runtime is not None else None
        # An enclosing loop may already have chosen the variable of an output of this loop (to write
        # its own carried value in place): then the output's source must live in that variable.
        preset = {out.final.id: self.vars[out.value.id] for out in op.outs if out.value.id in self.vars}
        for carried in op.carried:
            wanted = preset.get(carried.final.id)
            if wanted is not None:
                self.vars[carried.phi.id] = wanted
            elif self._can_share_init(op, carried.init):
                self.vars[carried.phi.id] = self.var(carried.init)
            if self.var(carried.phi) != self.var(carried.init):
                fn.lines.append((f"{pad}{self.var(carried.phi)} = {self.var(carried.init)}", info))
            if self._can_share_final(op, carried.phi, carried.final):
                self.vars[carried.final.id] = self.var(carried.phi)
        self._unset_check(fn, pad, op.inputs[0].value, f"loop {op.path!r}")
        for out in op.outs:
            if out.carried:
                continue
            if out.final.id in preset and out.final.id not in self.vars:
                self.vars[out.final.id] = preset[out.final.id]
            ident = self.var(out.final)
            if out.init is not None:
                if ident != self.var(out.init):
                    fn.lines.append((f"{pad}{ident} = {self.var(out.init)}", info))
            else:  # always: in an enclosing loop the variable may still hold an earlier iteration's value
                unset = self.glob(Unset(op.path, out.value.name), f"_unset_{out.value.name}")
                fn.lines.append((f"{pad}{ident} = {unset}", info))
        for out in op.outs:
            source = out.final if not out.carried else next(c.phi for c in op.carried if c.final is out.final)
            self.vars[out.value.id] = self.var(source)
            assert preset.get(out.final.id, self.vars[out.value.id]) == self.vars[out.value.id], op.path

        control = self.var(op.inputs[0].value)
        if op.inputs[0].value.kind != "input":  # program inputs are checked on entry, before any block
            self._reiterable_check(fn, op, pad)
        index = self.var(op.index_value) if op.index_value is not None else "_"
        iterable = f"_range({control})" if loop.times is not None else control
        if loop.progress:
            # the outermost loop keeps its finished bar; nested loops clear theirs
            iterable = f"_tqdm({iterable}, desc={_literal(op.path)}, leave={op.region.owner is None})"
            self.namespace["_tqdm"] = _tqdm()
        if loop.over is not None and op.item_value is not None:
            header = f"for {index}, {self.var(op.item_value)} in _enumerate({iterable}):"
        else:
            header = f"for {index} in {iterable}:"
        fn.lines.append((f"{pad}{header}", info))
        inner = (*loops, (op.path, index))
        before = len(fn.lines)
        body_pad = f"{pad}    "
        if plan is not None:  # fork: every side stream starts after what the main stream did so far
            fn.lines.append((f"{body_pad}{plan.fork}.record({plan.stream_var[0]})", None))
            fn.lines.extend(
                (f"{body_pad}{plan.stream_var[k]}.wait_event({plan.fork})", None)
                for k in plan.body.side_streams
            )
        yield self._region(fn, op.body, depth + 1, inner)
        if plan is not None:  # join, before the carried copies free anything a side stream may still read
            for k, join in zip(plan.body.side_streams, plan.joins, strict=True):
                fn.lines.append((f"{body_pad}{join}.record({plan.stream_var[k]})", None))
                fn.lines.append((f"{body_pad}{plan.stream_var[0]}.wait_event({join})", None))
        for carried in op.carried:
            phi, final = self.var(carried.phi), self.var(carried.final)
            if phi != final:
                fn.lines.append((f"{pad}    {phi} = {final}", LineInfo(op.path, inner)))
        if len(fn.lines) == before:
            fn.lines.append((f"{pad}    pass", None))
        if plan is not None:  # outputs made on a side stream are used on the main stream from now on
            for out in op.outs:
                producer = self._in_body(out.final, plan)
                if producer is not None and plan.body.stream_of(producer.path) != 0:
                    fn.lines.append((f"{pad}_rt.keep({self.var(out.value)}, {plan.stream_var[0]})", None))

    def _reiterable_check(self, fn: _Function, op: LoopOp, pad: str) -> None:
        """Refuse an iterator as `over=` of a loop that a loop around it would start again."""
        refusal = iterator_refusal(op)
        if refusal is None:
            return
        self.no_value.append(refusal)
        control = self.var(op.inputs[0].value)
        fn.lines.append((f"{pad}if _iter({control}) is {control}: _no_value({len(self.no_value) - 1})", None))

    def _loop_function(
        self, fn: _Function, op: LoopOp, depth: int, loops: tuple[tuple[str, str], ...]
    ) -> Nested[None]:
        """A loop too deeply nested for one function becomes a helper function called in its place."""
        name = self.names.new(f"_loop_{op.path.rsplit('/', 1)[-1]}")
        params = list(dict.fromkeys(self.var(slot.value) for slot in op.inputs))
        helper = _Function(f"def {name}({', '.join(params)}):")
        self.functions.append(helper)
        yield self._loop(helper, op, 1, ())
        outs = [self.var(out.value) for out in op.outs]
        helper.lines.append((f"    return ({_tuple(outs)})", None))
        pad = "    " * depth
        target = f"{', '.join(outs)}, = " if outs else ""
        fn.lines.append((f"{pad}{target}{name}({', '.join(params)})", LineInfo(op.path, loops)))

    # -- variable sharing -------------------------------------------------------------------------------

    def _can_share_init(self, op: LoopOp, init: Value) -> bool:
        """The phi may reuse the initial value's variable when nothing reads it after the loop starts."""
        if init.kind not in ("input", "op") or init.id in self.output_ids:
            return False
        if init.kind == "op" and (init.producer is None or init.producer.region is not op.region):
            return False
        if init.kind == "input" and op.region.owner is not None:
            return False
        start = self.position[op.id]
        uses_here = 0
        for reader, _ in init.readers:
            if reader is op:
                uses_here += 1
                continue
            where = self._ancestor_position(reader, op.region)
            if where is None or where >= start:
                return False
        return uses_here == 1

    def _can_share_final(self, op: LoopOp, phi: Value, final: Value) -> bool:
        """The final value may be written into the phi's variable when no reader of the phi comes after it."""
        if final.kind != "op" or final.producer is None or final.id in self.vars:
            return False
        if id(op.body) in self.plans:
            return False  # streamed: the old value may still be read on a side stream until the join
        defined = self._ancestor_position(final.producer, op.body)
        if defined is None:
            return False
        # a loop writes its outputs (their zero-iteration values first) while its body still reads: a
        # reader inside the producing loop is after the write; a call reads its arguments before it writes
        inside_counts = isinstance(op.body.top_level(final.producer), LoopOp)
        for reader, _ in phi.readers:
            where = self._ancestor_position(reader, op.body)
            if where is None or where > defined or (where == defined and inside_counts):
                return False
        return True

    def _ancestor_position(self, op: Op, region: Region) -> int | None:
        """The index in `region` of the op that is `op` or contains it; None when `op` is outside."""
        top = region.top_level(op)
        return None if top is None else self.position[top.id]


# A comment names its block's path up to this long; past it, the root and the innermost segments.
COMMENT_PATH = 100


def _short(path: str) -> str:
    """A path for a comment of the generated source: in full up to COMMENT_PATH characters, else cut in
    the middle, so the source of blocks nested 20,000 deep does not grow with the square of the depth
    (errors still name the full path, from the line table)."""
    if len(path) <= COMMENT_PATH:
        return path
    root = path.split("/", 1)[0]
    tail = path[-max(COMMENT_PATH - len(root) - 5, 20) :]
    return f"{root}/.../{tail.split('/', 1)[-1] if '/' in tail else tail}"


def input_default(value: Value) -> Any:
    """The default of a program input: the one its readers share (REQUIRED when they differ or lack one)."""
    return common_default([op.inputs[k].port for op, k in value.readers])


BoundaryTest: TypeAlias = type | tuple[type, ...] | Callable[[object], bool]


def boundary_checks(value: Value) -> list[tuple[Any, BoundaryTest]]:
    """The call-boundary checks of one program input, for the generated code and the interpreter alike:
    (hint, classes for an inline isinstance, or a predicate), the narrowed hint when one exists."""
    # a reader port with check=False (or whose DF002 was ignored) is not checked at the boundary
    readers = [op.inputs[k].port for op, k in value.readers if op.inputs[k].port.check]
    distinct = list({id(p.type): p.type for p in readers}.values())  # 300 nested loops: 300 readers
    narrowed = types.narrow(distinct)
    tests: list[tuple[Any, BoundaryTest]] = []
    for hint in [narrowed] if narrowed is not None else distinct:
        plain = boundary.plain_class(hint)
        if plain is not None:
            tests.append((hint, plain))
            continue
        predicate = boundary.checker(hint)
        if predicate is not None and predicate is not boundary.ACCEPT:  # knowingly accepted: no code
            tests.append((hint, predicate))
    return tests


def _tuple(items: list[str]) -> str:
    return f"{items[0]}," if len(items) == 1 else ", ".join(items)


def _class_name(plain: type | tuple[type, ...]) -> str:
    """A readable global name for the class(es) of an inline isinstance: int, float_or_int."""
    if isinstance(plain, tuple):
        return "_or_".join(c.__name__ for c in plain)
    return plain.__name__


def _capturable(op: Op) -> bool:
    """A call of a block without Python-side state (no `mutates`) can be replayed from a CUDA graph."""
    return isinstance(op, CallOp) and not tuple(getattr(op.block, "mutates", ()))


def _segments(region: Region) -> list[list[CallOp] | Op]:
    """The region's ops in order, maximal runs of capturable calls grouped into lists."""
    groups: list[list[CallOp] | Op] = []
    for op in region.ops:
        if not _capturable(op):
            groups.append(op)
        elif groups and isinstance(groups[-1], list):
            groups[-1].append(op)  # type: ignore[arg-type]
        else:
            groups.append([op])  # type: ignore[list-item]
    return groups


def _describe_loop(op: LoopOp) -> str:
    loop = op.loop
    how = f"times={loop.times}" if loop.times is not None else f"over={loop.over}"
    carried = ", ".join(c.name for c in op.carried) or "nothing"
    return f"{how}, carries {carried}"


def _torch_cat() -> Any:
    import torch  # only programs with fused calls need it

    return torch.cat


def _tqdm() -> Any:
    from tqdm.auto import tqdm

    return tqdm


def generate(
    lowered: Lowered, schedule: Schedule | None = None, runtime: Any = None, capture: bool = False
) -> tuple[Generated, list[InputCheck], list[str]]:
    """Generate the program's source; also returns the input checks and zero-iteration messages it cites.

    With a CUDA `runtime`, every loop body the `schedule` spreads over several streams runs on them; with
    `capture`, every loop body runs its capturable segments as CUDA graphs instead (`Generated.segments`)."""
    emitter = _Emitter(lowered, schedule, runtime, capture)
    entry, params = emitter.program()
    lines: list[str] = []
    infos: dict[int, LineInfo] = {}
    for fn in emitter.functions[1:] + emitter.functions[:1]:  # helpers first, so __call__ reads last
        at = fn.setup_at
        for text, info in [*fn.lines[:at], *((line, None) for line in fn.setup), *fn.lines[at:]]:
            lines.append(text)
            if info is not None:
                infos[len(lines)] = info
        lines.append("")
    namespace = dict(emitter.namespace)
    namespace.update(
        _range=range,
        _enumerate=enumerate,
        _isinstance=isinstance,
        _iter=iter,
        _Unset=Unset,
        _MISSING=MISSING,
    )
    namespace["_OUTPUTS"] = frozenset(lowered.outputs)
    generated = Generated(
        source="\n".join(lines),
        namespace=namespace,
        entry=entry,
        params=params,
        output_names=tuple(lowered.outputs),
        lines=infos,
        maybe_unset=emitter.maybe_unset,
        segments=tuple(emitter.segments),
    )
    return generated, emitter.checks, emitter.no_value


def ports_text(ports: Iterable[Port]) -> str:
    """Ports rendered as `name: type = default`, comma separated."""
    parts = []
    for p in ports:
        default = "" if p.required else f" = {p.default!r}"
        parts.append(f"{p.name}: {types.describe(p.type)}{default}")
    return ", ".join(parts)

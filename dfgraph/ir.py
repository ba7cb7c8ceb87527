"""The SSA dataflow IR: its data types, a printer and a verifier (no lowering here: see dfgraph.lowering).

Every write of a name makes a new `Value`; an `Op` is one block call (`CallOp`, or a `FusedOp` standing
for two), one loop (`LoopOp`, owning a body `Region`) or one switch (`SwitchOp`, owning one `Region` per
case, of which exactly one runs). `str(lowered)` prints the IR one op a line;
`verify(lowered)` checks its invariants and raises `IRError` listing every broken one. Passes keep what
they find about an op in `op.meta` (as torch.fx nodes do), not in side tables keyed by id().
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Generator, Iterator
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from dfgraph import types
from dfgraph.errors import GraphError
from dfgraph.ports import REQUIRED, Port

if TYPE_CHECKING:
    from dfgraph.block import CallSpec
    from dfgraph.compose import Loop, Switch
    from dfgraph.diagnostics import Diagnostic

__all__ = [
    "CallOp",
    "Carried",
    "Case",
    "FusedOp",
    "IRError",
    "LoopOp",
    "LoopOut",
    "Lowered",
    "Nested",
    "Op",
    "Region",
    "Slot",
    "SwitchOp",
    "SwitchOut",
    "Value",
    "case_chain",
    "common_default",
    "consumers",
    "format_ir",
    "gc_paused",
    "regions",
    "run_nested",
    "same_default",
    "verify",
]

ValueKind = Literal["input", "op", "carry", "index", "item", "pending", "error"]

T = TypeVar("T")

Nested = Generator[Any, Any, T]
"""A step of a nested computation run by `run_nested`: it yields a sub-step (a generator) or a finished
value, is sent that sub-step's result, and returns its own."""


def run_nested(task: Nested[T]) -> T:
    """Run a nested computation on an explicit stack, so composites nested 20,000 deep need no Python
    recursion (no RecursionError, no raised limit): each yield of a generator suspends the parent
    until that child returns; anything else yielded is sent straight back."""
    stack: list[Nested[Any]] = [task]
    value: Any = None
    while True:
        try:
            step = stack[-1].send(value)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value  # type: ignore[no-any-return]
            value = done.value
            continue
        if isinstance(step, GeneratorType):
            stack.append(step)
            value = None
        else:
            value = step


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the IR is millions of fresh objects in cycles, and repeated full scans
    of them made checking big graphs several times slower. The previous state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Value:
    """One version of a named datum: who produced it, its type, and who reads it."""

    __slots__ = ("id", "kind", "name", "producer", "readers", "type", "where")

    def __init__(
        self, vid: int, name: str, typ: Any, kind: ValueKind, producer: Op | None, where: str
    ) -> None:
        self.id = vid
        self.name = name
        self.type = typ
        self.kind: ValueKind = kind
        self.producer = producer
        self.where = where  # for messages: the producing port path, or "input 'x'"
        self.readers: list[tuple[Op, int]] = []

    def __repr__(self) -> str:
        return f"%{self.id}:{self.name}"


class Slot:
    """One input of an op: the port it feeds and the value bound to it (rebound when a capture resolves)."""

    __slots__ = ("port", "value")

    def __init__(self, port: Port, value: Value) -> None:
        self.port = port
        self.value = value


class Op:
    """A node of the IR: reads `inputs`, writes `outputs`, lives at `path` inside `region`."""

    __slots__ = ("block", "id", "inputs", "meta", "outputs", "path", "region")

    def __init__(self, oid: int, path: str, block: Any, region: Region) -> None:
        self.id = oid
        self.path = path
        self.block = block
        self.region = region
        self.inputs: list[Slot] = []
        self.outputs: list[Value] = []
        self.meta: dict[str, Any] = {}  # what passes found out about this op, by pass-chosen keys

    def format(self) -> str:
        """This op as one line of the printed IR (torch.fx's `format_node`)."""
        return f"{_targets(self.outputs)}op {_label(self.block)}({_args(self.inputs)})  # {self.path}"


class CallOp(Op):
    """A call of a leaf block."""

    __slots__ = ("spec",)

    def __init__(self, oid: int, path: str, block: Any, region: Region, spec: CallSpec) -> None:
        super().__init__(oid, path, block, region)
        self.spec = spec

    def format(self) -> str:
        """`%5:x = call add_one(x=%3:x)  # loop/add_one`."""
        return f"{_targets(self.outputs)}call {_label(self.block)}({_args(self.inputs)})  # {self.path}"


class FusedOp(CallOp):
    """One call of a batchable block standing for two: `members` are the calls it replaces, in order.

    Fusion detaches the members: their inputs' readers and their outputs' producer become this op."""

    __slots__ = ("batch", "members")

    def __init__(self, oid: int, first: CallOp, second: CallOp) -> None:
        path = f"{first.path}+{second.path.rsplit('/', 1)[-1]}"
        super().__init__(oid, path, first.block, first.region, first.spec)
        self.members = (first, second)
        self.batch: tuple[str, ...] = tuple(getattr(first.block, "batch", ()))

    def format(self) -> str:
        """`%9:e, %10:e = fused(loop/cond, loop/uncond) denoise(...)  # loop/cond+uncond`."""
        members = ", ".join(m.path for m in self.members)
        call = f"{_label(self.block)}({_args(self.inputs)})"
        return f"{_targets(self.outputs)}fused({members}) {call}  # {self.path}"


class Carried:
    """A loop-carried name: its phi (read by the body), initial value (outside) and final body value.

    The initial value is read through the loop's input slot, so it follows the slot when an enclosing
    loop later resolves a placeholder (a capture) to the real value."""

    __slots__ = ("final", "init_slot", "name", "phi")

    def __init__(self, name: str, phi: Value, init_slot: Slot, final: Value) -> None:
        self.name, self.phi, self.init_slot, self.final = name, phi, init_slot, final

    @property
    def init(self) -> Value:
        """The value the first iteration reads."""
        return self.init_slot.value

    def format(self) -> str:
        """`%4:x = phi(%1:x, %7:x)`: the initial value, then the value the body leaves for the next."""
        return f"{self.phi!r} = phi({self.init!r}, {self.final!r})"


class LoopOut:
    """A loop output: the value after the loop, the body value it comes from, its zero-iteration value."""

    __slots__ = ("carried", "final", "init_slot", "value")

    def __init__(self, value: Value, final: Value, init_slot: Slot | None, carried: bool) -> None:
        self.value, self.final, self.init_slot, self.carried = value, final, init_slot, carried

    @property
    def init(self) -> Value | None:
        """The value after zero iterations, when the name had one before the loop."""
        return None if self.init_slot is None else self.init_slot.value

    def format(self) -> str:
        """`out %9:x = %7:x if ran else %1:x`: the last iteration's value, or the zero-iteration one."""
        zero = "unset" if self.init is None else repr(self.init)
        return f"out {self.value!r} = {self.final!r} if ran else {zero}"


class LoopOp(Op):
    """A loop: `inputs[0]` is the control (count or iterable); the body region runs once per iteration."""

    __slots__ = ("body", "carried", "index_value", "item_value", "outs", "until_value")

    def __init__(self, oid: int, path: str, block: Loop, region: Region) -> None:
        super().__init__(oid, path, block, region)
        self.body = Region(self, region.depth + 1, region.conditional)
        self.index_value: Value | None = None
        self.item_value: Value | None = None
        self.carried: list[Carried] = []
        self.outs: list[LoopOut] = []
        # until=: the body's final value of that name; the loop ends after an iteration that left it True
        self.until_value: Value | None = None

    @property
    def loop(self) -> Loop:
        """The Loop definition this op lowers."""
        loop: Loop = self.block
        return loop

    def format(self) -> str:
        """`%9:x = loop times %1:n, index %2:i  # loop`: the header of the loop's indented region."""
        control = self.inputs[0].value if self.inputs else None
        how = "over" if self.item_value is not None else "times"
        parts = [f"{how} {control!r}", f"index {self.index_value!r}"]
        if self.item_value is not None:
            parts.append(f"item {self.item_value!r}")
        if self.until_value is not None:
            parts.append(f"until {self.until_value!r}")
        return f"{_targets(self.outputs)}loop {', '.join(parts)}  # {self.path}"


class Case:
    """One case of a switch: its key and the region that runs when the key is chosen."""

    __slots__ = ("body", "key")

    def __init__(self, key: str, body: Region) -> None:
        self.key, self.body = key, body

    def format(self) -> str:
        """`case 'img2img':`, the header of the case's indented region."""
        return f"case {self.key!r}:"


class SwitchOut:
    """A switch output: the value after the switch, the value each case leaves, and the value before it.

    `finals[k]` is what case k leaves (None: case k does not write the name, so the value before the
    switch passes through). `init_slot` reads that value before the switch; it is None when every case
    writes the name, or when the name had no value before (then the output may have none: `partial`)."""

    __slots__ = ("finals", "init_slot", "value")

    def __init__(self, value: Value, finals: tuple[Value | None, ...], init_slot: Slot | None) -> None:
        self.value, self.finals, self.init_slot = value, finals, init_slot

    @property
    def init(self) -> Value | None:
        """The value a case that does not write the name passes through, when the name had one."""
        return None if self.init_slot is None else self.init_slot.value

    @property
    def partial(self) -> bool:
        """True when some case does not write the name and it had no value before the switch."""
        return self.init_slot is None and any(f is None for f in self.finals)

    def format(self) -> str:
        """`out %9:x = (%5:x, %7:x, %1:x)`: per case, the value it leaves (`unset` when none)."""
        zero = "unset" if self.init is None else repr(self.init)
        return f"out {self.value!r} = ({', '.join(zero if f is None else repr(f) for f in self.finals)})"


class SwitchOp(Op):
    """A switch: `inputs[0]` is the key; exactly one case's region runs, the one whose key it equals.

    `inputs[1:]` are every value from outside that a case reads (once each: the cases' ops read those
    values directly, as a loop body's captures do) and the `init_slot`s of the outputs. A selector block
    (`on=` a block) is lowered as a call just before the switch, in the enclosing region."""

    __slots__ = ("cases", "outs")

    def __init__(self, oid: int, path: str, block: Switch, region: Region) -> None:
        super().__init__(oid, path, block, region)
        self.cases: list[Case] = []
        self.outs: list[SwitchOut] = []

    @property
    def switch(self) -> Switch:
        """The Switch definition this op lowers."""
        switch: Switch = self.block
        return switch

    def add_case(self, key: str) -> Case:
        """A new, empty case region owned by this switch."""
        case = Case(key, Region(self, self.region.depth + 1, True))
        self.cases.append(case)
        return case

    def format(self) -> str:
        """`%9:x = switch %3:mode  # switch`: the header of the cases' indented regions."""
        key = self.inputs[0].value if self.inputs else None
        return f"{_targets(self.outputs)}switch {key!r}  # {self.path}"


def case_chain(op: Op) -> tuple[tuple[SwitchOp, int], ...]:
    """The switch cases enclosing `op`, outermost first, as (switch, case index); () when it always runs
    (when its enclosing loops run). Walks the enclosing regions, so costs the nesting depth."""
    chain: list[tuple[SwitchOp, int]] = []
    region = op.region
    while region.conditional and region.owner is not None:
        owner = region.owner
        if isinstance(owner, SwitchOp):
            index = next(k for k, case in enumerate(owner.cases) if case.body is region)
            chain.append((owner, index))
        region = owner.region
    return tuple(reversed(chain))


class Region:
    """An ordered list of ops: the program's top level, one loop body, or one case of a switch.

    `conditional` is True inside a case (at any depth): its ops may not run even when their loops do."""

    __slots__ = ("conditional", "depth", "ops", "owner")

    def __init__(self, owner: Op | None, depth: int = 0, conditional: bool = False) -> None:
        self.owner = owner
        self.depth = depth
        self.conditional = conditional
        self.ops: list[Op] = []

    def top_level(self, op: Op | None) -> Op | None:
        """The op of this region that is `op` or contains it (a loop); None when `op` lives outside."""
        while op is not None and op.region is not self:
            op = op.region.owner
        return op

    def walk(self) -> Iterator[Op]:
        """Every op in this region and in nested loop bodies and cases, in order (iterative: any depth)."""
        stack: list[Iterator[Op]] = [iter(self.ops)]
        while stack:
            op = next(stack[-1], None)
            if op is None:
                stack.pop()
                continue
            yield op
            if isinstance(op, LoopOp):
                stack.append(iter(op.body.ops))
            elif isinstance(op, SwitchOp):
                stack.extend(iter(case.body.ops) for case in reversed(op.cases))


def regions(op: Op) -> list[Region]:
    """The regions an op owns: a loop's body, a switch's cases in order; none for a call."""
    if isinstance(op, LoopOp):
        return [op.body]
    if isinstance(op, SwitchOp):
        return [case.body for case in op.cases]
    return []


class Lowered:
    """The lowered program: root region, external inputs, outputs and the structural diagnostics."""

    def __init__(
        self,
        name: str,
        root: Region,
        inputs: dict[str, Value],
        outputs: dict[str, Value],
        diagnostics: list[Diagnostic],
    ) -> None:
        self.name = name
        self.root = root
        self.inputs = inputs
        self.outputs = outputs
        self.diagnostics = diagnostics

    def ops(self) -> Iterator[Op]:
        """Every op, nested ones included, in program order."""
        return self.root.walk()

    def __str__(self) -> str:
        return format_ir(self)


def consumers(value: Value) -> list[tuple[Op, Port]]:
    """The block ports reading a value, through loops (a carried init reaches the body's readers)."""
    found: list[tuple[Op, Port]] = []
    # depth first on an explicit stack, in reader order: a carried init of loops nested 1,000 deep
    stack: list[tuple[Value, Iterator[tuple[Op, int]]]] = [(value, iter(value.readers))]
    while stack:
        current, readers = stack[-1]
        reader = next(readers, None)
        if reader is None:
            stack.pop()
            continue
        op, k = reader
        if isinstance(op, SwitchOp):
            if k == 0:
                found.append((op, op.inputs[0].port))  # the key
            # a case's readers read the value directly; an init slot only passes it through
        elif not isinstance(op, LoopOp):
            found.append((op, op.inputs[k].port))
        elif k == 0:
            found.append((op, op.inputs[0].port))  # the loop's control input
        else:
            carried = next(
                (c for c in op.carried if c.init is current and op.inputs[k].port.name == c.name), None
            )
            if carried is not None:
                stack.append((carried.phi, iter(carried.phi.readers)))
            # a capture's body readers read the value directly, so they are in value.readers already
    return found


def common_default(ports: list[Port]) -> Any:
    """The default shared by every reader, else REQUIRED (one reader without a default makes it required)."""
    first = ports[0].default
    for p in ports[1:]:
        if p.default is not first and not same_default(first, p.default):
            return REQUIRED
    return first


def same_default(a: Any, b: Any) -> bool:
    """True when two defaults are the same object or compare equal (comparison errors mean different)."""
    if a is b:
        return True
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False


# -- printing ---------------------------------------------------------------------------------------------


def _label(blk: Any) -> str:
    """A block's name for the printed IR; a name that cannot be read gives the type's."""
    try:
        name = blk.name
    except Exception:
        name = None
    return name if isinstance(name, str) else type(blk).__name__


def _targets(values: list[Value]) -> str:
    return f"{', '.join(map(repr, values))} = " if values else ""


def _args(slots: list[Slot]) -> str:
    return ", ".join(f"{slot.port.name}={slot.value!r}" for slot in slots)


def format_ir(lowered: Lowered, indent: str = "  ") -> str:
    """The IR as text: inputs, then one op a line (a loop's body indented under it, its phis first and
    its outputs last), then the program outputs. Iterative, so loops nested any depth print."""
    with gc_paused():
        return "\n".join(_ir_lines(lowered, indent))


def _ir_lines(lowered: Lowered, indent: str) -> list[str]:
    lines = [f"graph {lowered.name}"]
    lines.extend(f"input {value!r}: {types.describe(value.type)}" for value in lowered.inputs.values())
    # each entry: what is left to print at one depth -- ops, and ready-made lines (headers, outputs)
    stack: list[tuple[Iterator[Op | str], int]] = [(iter(lowered.root.ops), 0)]
    while stack:
        items, depth = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        if isinstance(item, str):
            lines.append(indent * depth + item)
            continue
        lines.append(indent * depth + item.format())
        if isinstance(item, LoopOp):
            lines.extend(indent * (depth + 1) + c.format() for c in item.carried)
            stack.append((iter([*item.body.ops, *(out.format() for out in item.outs)]), depth + 1))
        elif isinstance(item, SwitchOp):
            stack.append((iter([out.format() for out in item.outs]), depth + 1))
            for case in reversed(item.cases):
                stack.append((iter(case.body.ops), depth + 2))
                stack.append((iter([case.format()]), depth + 1))
    lines.extend(f"output {name} = {value!r}" for name, value in lowered.outputs.items())
    return lines


# -- verifying --------------------------------------------------------------------------------------------


class IRError(GraphError):
    """The IR breaks its invariants (a dfgraph bug, or a pass that corrupted it); `.problems` lists each."""

    def __init__(self, problems: list[str], where: str = "") -> None:
        self.problems = tuple(problems)
        head = f"invalid IR{f' {where}' if where else ''}: {len(problems)} problem(s)"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))


def verify(lowered: Lowered) -> None:
    """Check the IR's invariants; raise IRError listing every problem found (None when it is sound).

    Slots and readers agree both ways; every value read is produced before its reader (an input, an
    earlier op of an enclosing region, or a phi, index or item of an enclosing loop); no pending
    placeholder survives; each value's producer owns it; fused members are detached; every op's region
    lists it; loop carried names and outputs are consistent; a switch's outputs come from its cases (a
    value made in one case is visible in that case only). One pass over the ops, no recursion."""
    with gc_paused():
        problems = _Verifier(lowered).run()
    if problems:
        raise IRError(problems)


class _Verifier:
    def __init__(self, lowered: Lowered) -> None:
        self.lowered = lowered
        self.problems: list[str] = []
        # Program order as preorder numbers: op P's subtree (a loop and its body) is pre[P]..post[P], so
        # "after P, inside P's region" is two comparisons however deep the loops nest.
        self.pre: dict[Op, int] = {}
        self.post: dict[Op, int] = {}
        # each region's ops (nested ones included) are numbered first..last: a value produced in a region
        # is visible to later ops of that region only (not to a sibling case of a switch)
        self.span: dict[Region, tuple[int, int]] = {}
        self.phi_of: dict[Value, LoopOp] = {}
        self.member_of: dict[Op, FusedOp] = {}
        self.values: dict[Value, None] = {}  # every value met, in order

    def run(self) -> list[str]:
        self._structure()
        for name, value in self.lowered.inputs.items():
            self._note(value)
            if value.kind != "input" or value.producer is not None or value.name != name:
                self.problems.append(
                    f"input {name!r} is {value!r} of kind {value.kind!r}, producer {_who(value.producer)}"
                )
        for op in self.pre:
            self._owned(op)
        for op in self.pre:
            self._reads(op)
        self._readers()
        for name, value in self.lowered.outputs.items():
            self._note(value)
            if not self._visible(value, None):
                self.problems.append(f"output {name!r} is {value!r}, which the program does not produce")
        return self.problems

    def _note(self, value: Value) -> None:
        self.values.setdefault(value, None)

    def _structure(self) -> None:
        """Number the ops; every op listed once, by the region it names; loop bodies owned by their loop."""
        root = self.lowered.root
        if root.owner is not None:
            self.problems.append(f"the root region is owned by {root.owner.path!r}")
        counter = 0
        stack: list[tuple[Region, Iterator[Op], Op | None, int]] = [(root, iter(root.ops), None, -1)]
        while stack:
            region, ops, owner, first = stack[-1]
            if first < 0:  # the region starts now: its sibling regions before it are numbered
                first = counter
                stack[-1] = (region, ops, owner, first)
            op = next(ops, None)
            if op is None:
                stack.pop()
                self.span[region] = (first, counter - 1)
                if owner is not None and (not stack or stack[-1][2] is not owner):
                    self.post[owner] = counter - 1  # after its last region
                continue
            if op in self.pre:
                self.problems.append(f"op {op.path!r} is listed twice")
                continue
            if op.region is not region:
                where = region.owner.path if region.owner is not None else "the root"
                self.problems.append(
                    f"op {op.path!r} is listed in the region of {where} but names another region"
                )
            self.pre[op] = counter
            self.post[op] = counter
            counter += 1
            if isinstance(op, FusedOp):
                for member in op.members:
                    self.member_of[member] = op
            if isinstance(op, LoopOp):
                for c in op.carried:
                    self.phi_of[c.phi] = op
            owned = regions(op)
            for inner in owned:
                if inner.owner is not op:
                    self.problems.append(f"a region of {op.path!r} names another owner")
                if inner.depth != region.depth + 1:
                    self.problems.append(
                        f"a region of {op.path!r} has depth {inner.depth}, not {region.depth + 1}"
                    )
                if inner.conditional != (region.conditional or isinstance(op, SwitchOp)):
                    self.problems.append(f"a region of {op.path!r} has conditional={inner.conditional}")
            for inner in reversed(owned):  # the first region is numbered first
                stack.append((inner, iter(inner.ops), op, -1))
        for detached, fused in self.member_of.items():
            if detached in self.pre:
                self.problems.append(
                    f"fused member {detached.path!r} of {fused.path!r} is still listed in a region"
                )

    def _owned(self, op: Op) -> None:
        """The op's outputs name it as producer; a loop's index, item, phis and outputs are consistent."""
        for value in op.outputs:
            self._note(value)
            if value.producer is not op:
                self.problems.append(
                    f"{value!r} is an output of {op.path!r} but its producer is {_who(value.producer)}"
                )
            if value.kind != "op":
                self.problems.append(
                    f"{value!r}, an output of {op.path!r}, has kind {value.kind!r}, not 'op'"
                )
        if isinstance(op, LoopOp):
            self._loop(op)
        elif isinstance(op, SwitchOp):
            self._switch(op)

    def _switch(self, op: SwitchOp) -> None:
        add = self.problems.append
        if not op.inputs:
            add(f"switch {op.path!r} has no key input")
        if not op.cases:
            add(f"switch {op.path!r} has no case")
        slots = {id(slot) for slot in op.inputs}
        outs = [out.value for out in op.outs]
        if outs != op.outputs:
            add(
                f"the switch outputs of {op.path!r} ({_values(outs)}) differ from its outputs "
                f"({_values(op.outputs)})"
            )
        for out in op.outs:
            if len(out.finals) != len(op.cases):
                add(
                    f"switch output {out.value!r} of {op.path!r} has {len(out.finals)} finals "
                    f"for {len(op.cases)} cases"
                )
                continue
            if out.init_slot is not None and id(out.init_slot) not in slots:
                add(
                    f"switch output {out.value!r} of {op.path!r}: its value before is not read by "
                    "an input slot"
                )
            for case, final in zip(op.cases, out.finals, strict=True):
                if final is None:
                    continue
                self._note(final)
                producer = final.producer
                if final.kind != "op" or producer is None or producer.region is not case.body:
                    add(
                        f"switch output {out.value!r} of {op.path!r}: the final value {final!r} of case "
                        f"{case.key!r} is not produced in that case"
                    )

    def _loop(self, op: LoopOp) -> None:
        add = self.problems.append
        if not op.inputs:
            add(f"loop {op.path!r} has no control input")
        for value, kind in ((op.index_value, "index"), (op.item_value, "item")):
            if value is None:
                if kind == "index":
                    add(f"loop {op.path!r} has no index value")
                continue
            self._note(value)
            if value.kind != kind or value.producer is not op:
                add(
                    f"{value!r}, the {kind} of loop {op.path!r}, has kind {value.kind!r} "
                    f"and producer {_who(value.producer)}"
                )
        slots = {id(slot) for slot in op.inputs}
        finals: dict[Value, None] = {}
        for c in op.carried:
            self._note(c.phi)
            finals[c.final] = None
            if c.phi.kind != "carry" or c.phi.name != c.name:
                add(f"carried {c.name!r} of loop {op.path!r}: its phi {c.phi!r} has kind {c.phi.kind!r}")
            if c.phi.producer not in (None, op):
                add(f"carried {c.name!r} of loop {op.path!r}: its phi is produced by {_who(c.phi.producer)}")
            if id(c.init_slot) not in slots:
                add(
                    f"carried {c.name!r} of loop {op.path!r}: its initial value is not read by an input slot "
                    "of the loop"
                )
            self._final(op, c.final, f"carried {c.name!r}")
        outs = [out.value for out in op.outs]
        if outs != op.outputs:
            add(
                f"the loop outputs of {op.path!r} ({_values(outs)}) differ from its outputs "
                f"({_values(op.outputs)})"
            )
        for out in op.outs:
            if out.init_slot is not None and id(out.init_slot) not in slots:
                add(
                    f"loop output {out.value!r} of {op.path!r}: its zero-iteration value is not read by an "
                    "input slot"
                )
            if out.carried != (out.final in finals):
                add(
                    f"loop output {out.value!r} of {op.path!r} is marked carried={out.carried}, but its "
                    f"final value {out.final!r} is{'' if out.final in finals else ' not'} a carried final"
                )
            self._final(op, out.final, f"loop output {out.value!r}")
        if op.until_value is not None:
            self._final(op, op.until_value, "the until= value")

    def _final(self, op: LoopOp, final: Value, what: str) -> None:
        """A body's final value is written by an op of the body itself (at its top level)."""
        self._note(final)
        producer = final.producer
        if (
            final.kind != "op"
            or producer is None
            or producer.region is not op.body
            or producer not in self.pre
        ):
            self.problems.append(
                f"{what} of loop {op.path!r}: its final value {final!r} is not produced in the loop body"
            )

    def _reads(self, op: Op) -> None:
        for slot in op.inputs:
            value = slot.value
            self._note(value)
            where = f"{op.path}.{slot.port.name}"
            if value.kind == "pending":
                self.problems.append(f"pending placeholder {value!r} survives: {where} reads it")
            elif not self._visible(value, op):
                self.problems.append(
                    f"{where} reads {value!r} before it is produced, or outside its scope "
                    f"(producer {_who(value.producer)})"
                )

    def _visible(self, value: Value, reader: Op | None) -> bool:
        """Whether `reader` (None: the program's end) may read `value`: produced earlier, in scope."""
        kind = value.kind
        if kind == "error":
            return True  # a lowering error's silent placeholder; the diagnostics report it
        if kind == "input":
            return self.lowered.inputs.get(value.name) is value and value.producer is None
        if kind in ("index", "item", "carry"):
            loop = self.phi_of.get(value) if kind == "carry" else value.producer
            if not isinstance(loop, LoopOp) or loop not in self.pre:
                return False
            return reader is not None and self.pre[loop] < self.pre[reader] <= self.post[loop]
        producer = value.producer
        if kind != "op" or producer is None or producer not in self.pre or value not in producer.outputs:
            return False
        if reader is None:
            return producer.region is self.lowered.root
        first, last = self.span.get(producer.region, (0, -1))
        at = self.pre.get(reader, -1)
        return first <= at <= last and at > self.post[producer]

    def _readers(self) -> None:
        """Each reader entry points at a live op's slot holding the value; each slot is listed once."""
        listed: set[tuple[Op, int]] = set()
        ids: dict[int, Value] = {}
        for value in self.values:
            other = ids.setdefault(value.id, value)
            if other is not value:
                self.problems.append(f"two values have id {value.id}: {other!r} and {value!r}")
            for op, k in value.readers:
                if op not in self.pre:
                    fused = self.member_of.get(op)
                    what = f"fused member of {fused.path!r}" if fused is not None else "not in the program"
                    self.problems.append(f"{value!r} lists reader {op.path!r} ({what})")
                elif not 0 <= k < len(op.inputs) or op.inputs[k].value is not value:
                    self.problems.append(
                        f"{value!r} lists reader entry ({op.path!r}, {k}), whose slot holds another value"
                    )
                elif (op, k) in listed:
                    self.problems.append(f"{value!r} lists reader entry ({op.path!r}, {k}) twice")
                else:
                    listed.add((op, k))
            producer = value.producer
            if producer is not None and producer not in self.pre:
                fused = self.member_of.get(producer)
                what = f"fused member of {fused.path!r}" if fused is not None else "not in the program"
                self.problems.append(f"{value!r} names producer {producer.path!r} ({what})")
        for op in self.pre:
            for k, slot in enumerate(op.inputs):
                if (op, k) not in listed:
                    self.problems.append(
                        f"{op.path}.{slot.port.name} reads {slot.value!r}, which does not list it as a reader"
                    )


def _who(op: Op | None) -> str:
    return "none" if op is None else repr(op.path)


def _values(values: list[Value]) -> str:
    return ", ".join(map(repr, values)) or "none"

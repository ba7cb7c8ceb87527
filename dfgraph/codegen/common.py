"""What generated code and the interpreter share: run-time markers, messages, line and check records.

Everything here is a pure function of the IR or a small value type; the emitters (dfgraph.codegen.serial
and its extensions) and the reference interpreter both build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import attrs

from dfgraph import boundary, types
from dfgraph.capture import Segment
from dfgraph.ir import LoopOp, Lowered, Value, common_default
from dfgraph.ports import Port


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
    events: frozenset[str] = frozenset()  # the hook events the source calls (dfgraph.hooks.EVENTS)


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


def ports_text(ports: Iterable[Port]) -> str:
    """Ports rendered as `name: type = default`, comma separated."""
    parts = []
    for p in ports:
        default = "" if p.required else f" = {p.default!r}"
        parts.append(f"{p.name}: {types.describe(p.type)}{default}")
    return ", ".join(parts)

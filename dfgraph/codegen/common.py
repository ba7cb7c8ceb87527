"""What generated code and the interpreter share: run-time markers, messages, line and check records.

Everything here is a pure function of the IR or a small value type; the emitters (dfgraph.codegen.serial
and its extensions) and the reference interpreter both build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TypeAlias

import attrs

from dfgraph import boundary, lowering, types
from dfgraph.capture import Segment
from dfgraph.diagnostics import did_you_mean
from dfgraph.errors import InputError
from dfgraph.ir import CallOp, LoopOp, Lowered, SwitchOp, Value, case_chain
from dfgraph.ports import WHEN_CHOSEN, Port


class Unset:
    """The marker of a value that has none, with why: a loop output after zero iterations (the name had no
    value before the loop and is not carried), a switch output the chosen case does not write (and that
    had no value before the switch), or a program input read only under cases that the caller did not
    give. One object per such value (and per case), so that the error says which; never returned."""

    __slots__ = ("name", "where", "why")

    def __init__(self, where: str, name: str, why: str | None = None) -> None:
        self.where, self.name = where, name
        self.why = why or f"loop {where!r} ran zero times, so {name!r} (not carried) has no value"

    @property
    def loop(self) -> str:
        """The path of the loop, switch or input this marker comes from."""
        return self.where

    @classmethod
    def not_written(cls, switch: str, key: str, name: str) -> Unset:
        """A switch output that the chosen case `key` does not write, with no value before the switch."""
        why = f"switch {switch!r} chose case {key!r}, which does not write {name!r}, so it has no value"
        return cls(switch, name, why)

    @classmethod
    def not_given(cls, name: str, cases: Iterable[tuple[str, str]]) -> Unset:
        """A program input read only under the `cases` ((switch path, key)) that the caller did not give."""
        which = " or ".join(f"case {key!r} of switch {path!r}" for path, key in cases) or "a case"
        why = f"input {name!r} was not given (it is needed only when {which} is chosen)"
        return cls(f"input {name!r}", name, why)

    def __repr__(self) -> str:
        return f"UNSET({self.where!r}, {self.name!r})"


def no_value_message(program: str, unset: Unset, reader: str) -> str:
    """The InputError message when a block or loop (`reader`) is about to read a value that has none."""
    return f"{program}: {unset.why}; {reader} reads it"


def no_output_message(program: str, output: str, unset: Unset) -> str:
    """The InputError message when the caller asks for an output that has no value."""
    return f"{program}: output {output!r} has no value: {unset.why}"


def iterator_refusal(op: LoopOp) -> str | None:
    """Why an iterator cannot be the `over=` of this loop, or None when one can.

    A loop around it runs this loop once per iteration, so a one-shot iterator made outside that loop
    would be empty from its second iteration on: both engines refuse it with an InputError instead."""
    value, outer = op.inputs[0].value, op.region.owner
    while outer is not None and not isinstance(outer, LoopOp):  # a switch runs a case once: look past it
        outer = outer.region.owner
    if op.loop.over is None or outer is None:
        return None
    made_per_iteration = value.producer is outer or (
        value.kind != "input" and outer.body.top_level(value.producer) is not None
    )
    if made_per_iteration:
        return None
    return (
        f"over= of loop {op.path!r} got an iterator, but loop {outer.path!r} runs that "
        "loop once per iteration and an iterator is used up by the first: pass a list or a tuple"
    )


def maybe_unset(lowered: Lowered) -> set[int]:
    """The ids of the values that may have no value at run time: a loop output, a partial switch output,
    a program input read only under cases (not required), and what they flow into."""
    unset = {v.id for v in lowered.inputs.values() if v.readers and input_default(v) is WHEN_CHOSEN}
    ops = [op for op in lowered.ops() if isinstance(op, LoopOp | SwitchOp)]
    changed = True
    while changed:  # a monotone fixpoint: a phi and a final may feed each other through nested loops
        changed = False
        for op in ops:
            if isinstance(op, SwitchOp):
                for sw in op.outs:
                    if sw.value.id not in unset and (
                        sw.partial
                        or (sw.init is not None and sw.init.id in unset)
                        or any(f is not None and f.id in unset for f in sw.finals)
                    ):
                        unset.add(sw.value.id)
                        changed = True
                continue
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


# -- switches decided by the call's inputs ---------------------------------------------------------------


@attrs.frozen
class Decided:
    """A switch whose case the call's inputs decide: its key is a program input, or the output of a
    selector in the root region reading only program inputs (run first, before any other block), and
    every case around it is decided too. Both engines refuse an unknown key, or a missing input the
    chosen case needs, with an InputError before any other block runs."""

    op: SwitchOp
    key: Value  # a program input, or the selector's output
    selector: CallOp | None
    within: tuple[tuple[SwitchOp, int], ...]  # the enclosing cases (switches decided before this one)
    after_selectors: bool  # its checks wait for a selector (its own or an enclosing switch's)
    by: str  # who chooses, for messages: "input 'mode'" or "selector 'switch/pick'"
    needs: tuple[tuple[str, ...], ...]  # per case: the inputs read only under cases that it reads


def conditional_inputs(lowered: Lowered) -> dict[str, tuple[tuple[SwitchOp, int], ...]]:
    """The program inputs read only under cases (default WHEN_CHOSEN): name -> the innermost cases that
    read them, as (switch, case index), in program order."""
    found: dict[str, tuple[tuple[SwitchOp, int], ...]] = {}
    for name, value in lowered.inputs.items():
        if not value.readers or input_default(value) is not WHEN_CHOSEN:
            continue
        cases: dict[tuple[int, int], tuple[SwitchOp, int]] = {}
        for op, k in value.readers:
            if isinstance(op, SwitchOp) and k > 0:
                continue  # passed through to the cases, which read it themselves
            chain = case_chain(op)
            if chain:
                cases.setdefault((chain[-1][0].id, chain[-1][1]), chain[-1])
        found[name] = tuple(cases.values())
    return found


def not_given_marker(name: str, cases: Iterable[tuple[SwitchOp, int]]) -> Unset:
    """The marker bound to a conditional input the caller did not give."""
    return Unset.not_given(name, [(op.path, op.cases[k].key) for op, k in cases])


def run_defaults(lowered: Lowered) -> dict[int, Any]:
    """The value each program input takes when not given (by value id): its default, REQUIRED, or for an
    input read only under cases a marker (`not_given_marker`) that a reader refuses."""
    conditional = conditional_inputs(lowered)
    defaults: dict[int, Any] = {}
    for name, value in lowered.inputs.items():
        if value.readers:
            default = input_default(value)
            defaults[value.id] = (
                not_given_marker(name, conditional.get(name, ())) if default is WHEN_CHOSEN else default
            )
    return defaults


def decided_switches(lowered: Lowered) -> list[Decided]:
    """The switches the call's inputs decide, in program order (an enclosing switch first)."""
    needs: dict[tuple[int, int], list[str]] = {}
    for name, cases in conditional_inputs(lowered).items():
        for switch, k in cases:
            needs.setdefault((switch.id, k), []).append(name)
    decided: dict[int, Decided] = {}
    for op in lowered.ops():
        if not isinstance(op, SwitchOp) or not op.inputs:
            continue
        key = op.inputs[0].value
        producer = key.producer
        selector: CallOp | None = None
        if key.kind == "input":
            by = f"input {key.name!r}"
        elif (
            key.kind == "op"
            and isinstance(producer, CallOp)
            and producer.region is lowered.root
            and all(slot.value.kind == "input" for slot in producer.inputs)
        ):
            selector, by = producer, f"selector {producer.path!r}"
        else:
            continue
        within = case_chain(op)
        if any(outer.id not in decided for outer, _ in within):
            continue
        after = selector is not None or any(decided[outer.id].after_selectors for outer, _ in within)
        per_case = tuple(tuple(needs.get((op.id, k), ())) for k in range(len(op.cases)))
        decided[op.id] = Decided(op, key, selector, within, after, by, per_case)
    return list(decided.values())


def unknown_case_message(path: str, keys: Sequence[str], key: object) -> str:
    """Why a switch cannot run: no case has the key (with the close keys, and every key)."""
    close = did_you_mean(key, keys) if isinstance(key, str) else ""
    return f"switch {path!r} has no case {key!r}{close}; the cases are {', '.join(map(repr, keys))}"


def case_refusal(op: SwitchOp) -> Callable[[object], NoReturn]:
    """`no_case(key)`: the ValueError of a key no case has, found while the program runs (a BlockError
    of the switch then names its path and loop iterations)."""
    path, keys = op.path, tuple(case.key for case in op.cases)

    def no_case(key: object) -> NoReturn:
        raise ValueError(unknown_case_message(path, keys, key))

    return no_case


def early_refusal(program: str, decided: Decided) -> Callable[[object], NoReturn]:
    """`bad_key(key)`: the InputError of a key no case has, when the call's inputs chose it."""
    op, by = decided.op, decided.by
    keys = tuple(case.key for case in op.cases)

    def bad_key(key: object) -> NoReturn:
        message = unknown_case_message(op.path, keys, key)
        raise InputError(f"{program}: {by} chose a key no case has: {message}")

    return bad_key


def needed_message(decided: Decided, k: int, name: str) -> str:
    """Why a call is refused: the chosen case reads a conditional input the caller did not give."""
    op = decided.op
    return (
        f"missing input {name!r}, needed by case {op.cases[k].key!r} of switch {op.path!r}, "
        f"which {decided.by} chose"
    )


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
    """The default of a program input (dfgraph.lowering.input_default): the one its unconditional readers
    share, else WHEN_CHOSEN for one read only under cases (REQUIRED when they differ or lack one)."""
    return lowering.input_default(value)


BoundaryTest: TypeAlias = type | tuple[type, ...] | Callable[[object], bool]


def boundary_checks(value: Value) -> list[tuple[Any, BoundaryTest]]:
    """The call-boundary checks of one program input, for the generated code and the interpreter alike:
    (hint, classes for an inline isinstance, or a predicate), the narrowed hint when one exists."""
    # a reader port with check=False (or whose DF002 was ignored) is not checked at the boundary
    readers = [
        op.inputs[k].port
        for op, k in value.readers
        if op.inputs[k].port.check and not (isinstance(op, SwitchOp) and k > 0)  # k > 0: passed through
    ]
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

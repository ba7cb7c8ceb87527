"""inputs_for: a hypothesis strategy of the inputs a program (or block) accepts."""

from __future__ import annotations

import random
import typing
from collections.abc import Callable
from typing import Any

import attrs
from beartype import BeartypeConf, BeartypeStrategy
from beartype.door import is_bearable
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from dfgraph import boundary, types
from dfgraph.block import Block
from dfgraph.diagnostics import did_you_mean
from dfgraph.ir import LoopOp, SwitchOp, consumers
from dfgraph.lowering import lower
from dfgraph.ports import WHEN_CHOSEN, Port
from dfgraph.program import Program

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
        if port.default is WHEN_CHOSEN:  # needed when its case runs: always drawn, never left out
            if strategy is None:
                raise InvalidArgument(
                    f"inputs_for: cannot draw input {port.name!r} of type {types.describe(port.type)}, "
                    f"which a switch case reads; pass a strategy for it: inputs_for(..., {port.name}=...)"
                )
            fields.append((port.name, strategy, False))
        elif strategy is None:  # not drawable, but optional: leave it out
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
    keys: tuple[str, ...] = ()  # kind "key": the case keys of the switches it chooses for


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
        if isinstance(op, SwitchOp) and op.inputs[0].value.kind == "input":
            keys = controls.get(op.inputs[0].value.name, _Control("key")).keys
            controls[op.inputs[0].value.name] = _Control("key", keys=(*keys, *op.switch.cases))
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
    if control is not None and control.kind == "key":  # a switch key: one of the cases' keys
        base = st.sampled_from(sorted(set(control.keys)))
    elif control is not None and control.kind == "times" and types.is_assignable(int, port.type):
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

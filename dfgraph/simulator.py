"""A stream simulator: runs a BodySchedule under random legal interleavings and checks every edge.

Without a GPU the schedule is still verified: each stream becomes a FIFO queue of commands (fork wait,
event waits, ops, event records, join) for all iterations, a random runnable stream runs its head
command each step, and vector clocks (one per stream, snapshotted by records and merged by waits) prove
that every DAG edge, and every iteration boundary, is ordered by happens-before. Values computed by an
optional `run` are compared with a serial execution by the tests.

A switch in a loop body is one node of its schedule (`BodySchedule.switches` names its cases) and is
simulated as one op: whichever case is chosen runs on the unit's stream, between the unit's waits and its
event, so proving the unit's edges proves them for every case.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dfgraph.schedule import BodySchedule

__all__ = ["SimulationError", "SimulationResult", "happens_before", "serial", "simulate"]

Run = Callable[[str, Mapping[str, Any]], Any]


class SimulationError(AssertionError):
    """The schedule is wrong: an edge not ordered by happens-before, a deadlock, or a bad wait."""


@attrs.frozen
class SimulationResult:
    """What a simulation did: the value of every (block, iteration) and the commands in run order."""

    iterations: int
    # hash=False: a mapping is unhashable; eq still compares it, and equal objects still hash equal.
    values: Mapping[tuple[str, int], Any] = attrs.field(hash=False)
    trace: tuple[tuple[int, str], ...]

    def final(self) -> dict[str, Any]:
        """The values of the last iteration, block by block."""
        last = self.iterations - 1
        return {node: value for (node, i), value in self.values.items() if i == last}


# A command is (kind, block or side stream, iteration); kinds below. Event keys are (kind, x, i).
_FORK_RECORD, _FORK_WAIT, _WAIT, _OP, _RECORD, _JOIN_RECORD, _JOIN_WAIT = range(7)
_Command = tuple[int, Any, int]
_Event = tuple[str, Any, int]


def _commands(schedule: BodySchedule, iterations: int, fork_join: bool) -> list[deque[_Command]]:
    """One FIFO queue per stream, holding every iteration's commands in issue order."""
    waits: dict[str, list[str]] = {}
    for v, u in schedule.waits:
        waits.setdefault(v, []).append(u)
    events = set(schedule.events)
    sides = schedule.side_streams if fork_join else ()
    queues: list[deque[_Command]] = [deque() for _ in range(schedule.n_streams)]
    for i in range(iterations):
        if sides:
            queues[0].append((_FORK_RECORD, None, i))
            for s in sides:
                queues[s].append((_FORK_WAIT, None, i))
        for node, s in zip(schedule.nodes, schedule.assignment, strict=True):
            queues[s].extend((_WAIT, u, i) for u in waits.get(node, ()))
            queues[s].append((_OP, node, i))
            if node in events:
                queues[s].append((_RECORD, node, i))
        for s in sides:
            queues[s].append((_JOIN_RECORD, s, i))
            queues[0].append((_JOIN_WAIT, s, i))
    return queues


def _awaited(command: _Command) -> _Event | None:
    """The event a command waits on, or None when it can always run."""
    kind, x, i = command
    if kind == _FORK_WAIT:
        return ("fork", None, i)
    if kind == _WAIT:
        return ("op", x, i)
    if kind == _JOIN_WAIT:
        return ("join", x, i)
    return None


def _describe(command: _Command) -> str:
    kind, x, i = command
    names = ("record fork", "wait fork", "wait for", "run", "record event of", "record join", "join stream")
    return f"{names[kind]}{'' if x is None else ' ' + repr(x)} @{i}"


def _check_schedule(schedule: BodySchedule) -> None:
    index = {node: i for i, node in enumerate(schedule.nodes)}
    if len(index) != len(schedule.nodes) or len(schedule.assignment) != len(schedule.nodes):
        raise SimulationError("blocks must be unique and each must have exactly one stream")
    for node, s in zip(schedule.nodes, schedule.assignment, strict=True):
        if not 0 <= s < schedule.n_streams:
            raise SimulationError(f"block {node!r} is on stream {s}, outside 0..{schedule.n_streams - 1}")
    events = set(schedule.events)
    for v, u in schedule.waits:
        if u not in index or v not in index:
            raise SimulationError(f"wait ({v!r}, {u!r}) names a block outside the schedule")
        if u not in events:
            raise SimulationError(f"{v!r} waits for {u!r}, but {u!r} records no event")


def simulate(
    schedule: BodySchedule,
    iterations: int,
    rng: random.Random,
    run: Run | None = None,
    *,
    initial: Mapping[str, Any] | None = None,
    fork_join: bool = True,
) -> SimulationResult:
    """Execute a schedule under one random legal interleaving of its streams and check every edge."""
    # initial: block -> its "__prev__" input in iteration 0 (None when absent). fork_join=False drops
    # the per-iteration fork and join, modelling a code generator that forgot them (the checks fire).
    _check_schedule(schedule)
    preds: dict[str, list[str]] = {node: [] for node in schedule.nodes}
    for u, v in schedule.edges:
        preds[v].append(u)
    last_op = {s: ops[-1] for s in range(schedule.n_streams) if (ops := schedule.ops_on(s))}
    queues = _commands(schedule, iterations, fork_join)
    n_streams = len(queues)
    clocks = [[0] * n_streams for _ in range(n_streams)]
    recorded: dict[_Event, list[int]] = {}
    done: dict[tuple[str, int], tuple[int, int]] = {}  # (block, iteration) -> (stream, its clock tick)
    # `buffer` models the one memory slot per block: reading it at the wrong time would read a stale
    # value, so an ordering bug also shows up as a value mismatch against the serial run.
    buffer: dict[str, Any] = dict(initial or {})
    values: dict[tuple[str, int], Any] = {}
    trace: list[tuple[int, str]] = []

    def runnable(s: int) -> bool:
        event = _awaited(queues[s][0])
        return event is None or event in recorded

    def ordered_before(u: str, i: int, s: int) -> bool:
        # u's completion happened before stream s's next op iff s's clock has reached u's tick.
        if (u, i) not in done:
            return False
        t, tick = done[u, i]
        return clocks[s][t] >= tick

    while True:
        ready = [s for s in range(n_streams) if queues[s] and runnable(s)]
        if not ready:
            break
        s = rng.choice(ready)
        command = queues[s].popleft()
        trace.append((s, _describe(command)))
        kind, x, i = command
        clock = clocks[s]
        if kind in (_FORK_RECORD, _RECORD, _JOIN_RECORD):
            key = {_FORK_RECORD: "fork", _RECORD: "op", _JOIN_RECORD: "join"}[kind]
            recorded[key, x, i] = list(clock)
        elif kind in (_FORK_WAIT, _WAIT, _JOIN_WAIT):
            event = _awaited(command)
            assert event is not None
            clocks[s] = [max(a, b) for a, b in zip(clock, recorded[event], strict=True)]
        else:
            node: str = x
            for u in preds[node]:
                if not ordered_before(u, i, s):
                    raise SimulationError(
                        f"edge {u!r} -> {node!r} is not ordered in iteration {i}: {node!r} on stream {s} "
                        f"may start before {u!r} (stream {schedule.stream_of(u)}) finishes"
                    )
            if i > 0:
                for t, u in last_op.items():
                    if not ordered_before(u, i - 1, s):
                        raise SimulationError(
                            f"iteration {i} of {node!r} (stream {s}) may start before iteration {i - 1} "
                            f"ends: {u!r} on stream {t} is not ordered before it (fork/join missing?)"
                        )
            clock[s] += 1
            done[node, i] = (s, clock[s])
            if run is not None:
                inputs = {u: buffer.get(u) for u in preds[node]}
                inputs["__prev__"] = buffer.get(node)
                buffer[node] = values[node, i] = run(node, inputs)
            else:
                values[node, i] = None
    stuck = [(s, _describe(q[0])) for s, q in enumerate(queues) if q]
    if stuck:
        heads = "; ".join(f"stream {s}: {what}" for s, what in stuck)
        raise SimulationError(f"deadlock: no stream can run; heads of the queues: {heads}")
    return SimulationResult(iterations, MappingProxyType(values), tuple(trace))


def serial(
    schedule: BodySchedule, iterations: int, run: Run, *, initial: Mapping[str, Any] | None = None
) -> dict[tuple[str, int], Any]:
    """The reference: every block in issue order on one stream, iteration after iteration."""
    preds: dict[str, list[str]] = {node: [] for node in schedule.nodes}
    for u, v in schedule.edges:
        preds[v].append(u)
    buffer: dict[str, Any] = dict(initial or {})
    values: dict[tuple[str, int], Any] = {}
    for i in range(iterations):
        for node in schedule.nodes:
            inputs = {u: buffer.get(u) for u in preds[node]}
            inputs["__prev__"] = buffer.get(node)
            buffer[node] = values[node, i] = run(node, inputs)
    return values


def happens_before(schedule: BodySchedule) -> set[tuple[str, str]]:
    """The happens-before pairs (u, v), u != v, that stream order plus waits enforce in one iteration."""
    # The fork is recorded before the iteration's first op and the join after its last, so neither
    # orders two ops of the same iteration: only stream order and waits do.
    index = {node: i for i, node in enumerate(schedule.nodes)}
    direct: list[list[int]] = [[] for _ in schedule.nodes]
    last: dict[int, int] = {}
    for i, s in enumerate(schedule.assignment):
        if s in last:
            direct[i].append(last[s])
        last[s] = i
    for v, u in schedule.waits:
        direct[index[v]].append(index[u])
    before = [0] * len(schedule.nodes)  # bitset of the blocks that happen before block i
    for i, ds in enumerate(direct):
        for d in ds:
            if d >= i:
                raise SimulationError(f"{schedule.nodes[i]!r} waits for a later block {schedule.nodes[d]!r}")
            before[i] |= before[d] | (1 << d)
    return {
        (schedule.nodes[u], v)
        for v, bits in zip(schedule.nodes, before, strict=True)
        for u in range(bits.bit_length())
        if (bits >> u) & 1
    }

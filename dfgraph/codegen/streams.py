"""The streams emitter (device="cuda"): each loop body the schedule spreads over several CUDA streams runs
on them. It extends the serial emitter at four points: streams and events made before the loop, a fork
at the top of each iteration, each op on its stream after its waits (region emission), a join before
the carried copies, and outputs made on a side stream handed to the main stream after the loop.

A switch in a scheduled body is one unit of the schedule (dfgraph.schedule): its waits come before the
`if`/`elif` and its event after it, all on the unit's stream, and the chosen case runs inside the unit's
stream context, serially. Its slots hold everything its cases read, so each value a case reads from
another stream is kept for the unit's stream whichever case runs."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import attrs

from dfgraph.codegen.serial import Loops, SerialEmitter
from dfgraph.codegen.writer import Writer
from dfgraph.ir import LoopOp, Lowered, Nested, Op, Region, Value
from dfgraph.schedule import BodySchedule, Schedule


@attrs.frozen
class StreamPlan:
    """The variables of one scheduled loop body: its streams (0 is the main one), events, fork, joins."""

    body: BodySchedule
    region: Region
    stream_var: list[str]
    event_var: dict[str, str]
    fork: str
    joins: list[str]


class StreamsEmitter(SerialEmitter):
    """Emits scheduled loop bodies on CUDA streams through the runtime `_rt` (dfgraph.cuda)."""

    def __init__(
        self,
        lowered: Lowered,
        schedule: Schedule | None = None,
        runtime: Any = None,
        events: frozenset[str] = frozenset(),
    ) -> None:
        self.plans: dict[int, StreamPlan] = {}  # by id of the loop body
        super().__init__(lowered, schedule, runtime, events)

    def streamed(self, op: LoopOp) -> bool:
        """A body the schedule spreads over two or more streams."""
        body = self.schedule.bodies.get(op.path) if self.schedule is not None else None
        return body is not None and body.n_streams >= 2

    def before_loop(self, w: Writer, op: LoopOp) -> None:
        """A body scheduled on several streams gets its streams and events, made before the loop."""
        if not self.streamed(op):
            return
        assert self.schedule is not None
        body = self.schedule.bodies[op.path]
        self.namespace.setdefault("_rt", self.runtime)
        tag = self.names.new(f"_{op.path.rsplit('/', 1)[-1]}")
        # every derived name is allocated too, so none collides with a value named like it
        streams = [self.names.new(f"{tag}_s{k}") for k in range(body.n_streams)]
        events = {p: self.names.new(f"{tag}_e{k}") for k, p in enumerate(body.events)}
        joins = [self.names.new(f"{tag}_join{k}") for k in body.side_streams]
        plan = StreamPlan(body, op.body, streams, events, self.names.new(f"{tag}_fork"), joins)
        # Streams and events are made once per call (not per iteration of an enclosing loop); the main
        # stream is whichever is current where the loop starts (a side stream, for a nested loop).
        w.line(f"{streams[0]} = _rt.current_stream()")
        for s in streams[1:]:
            w.setup_line(f"{s} = _rt.new_stream()")
        created = [*events.values(), plan.fork, *plan.joins] if body.side_streams else list(events.values())
        for e in created:
            w.setup_line(f"{e} = _rt.new_event()")
        self.plans[id(op.body)] = plan

    def body_start(self, w: Writer, op: LoopOp) -> None:
        """Fork: every side stream starts after what the main stream did so far."""
        plan = self.plans.get(id(op.body))
        if plan is not None:
            w.line(f"{plan.fork}.record({plan.stream_var[0]})")
            for k in plan.body.side_streams:
                w.line(f"{plan.stream_var[k]}.wait_event({plan.fork})")

    def body_end(self, w: Writer, op: LoopOp) -> None:
        """Join, before the carried copies free anything a side stream may still read."""
        plan = self.plans.get(id(op.body))
        if plan is not None:
            for k, join in zip(plan.body.side_streams, plan.joins, strict=True):
                w.line(f"{join}.record({plan.stream_var[k]})")
                w.line(f"{plan.stream_var[0]}.wait_event({join})")

    def after_loop(self, w: Writer, op: LoopOp) -> None:
        """Outputs made on a side stream are used on the main stream from now on."""
        plan = self.plans.get(id(op.body))
        if plan is None:
            return
        for out in op.outs:
            producer = _in_body(out.final, plan)
            if producer is not None and plan.body.stream_of(producer.path) != 0:
                w.line(f"_rt.keep({self.var(out.value)}, {plan.stream_var[0]})")

    def region(self, w: Writer, region: Region, loops: Loops) -> Nested[None]:
        """A scheduled body: each op (a call, a nested loop, a switch) on its stream, after its waits, then
        its event if anyone waits; the regions inside a switch's cases are emitted serially."""
        plan = self.plans.get(id(region))
        if plan is None:
            yield from super().region(w, region, loops)
            return
        for op in region.ops:
            stream = plan.stream_var[plan.body.stream_of(op.path)]
            context: AbstractContextManager[Any] = nullcontext()
            if stream != plan.stream_var[0]:
                context = w.block(f"with _rt.on({stream}):")
            with context:
                for p in plan.body.waits_for(op.path):
                    w.line(f"{stream}.wait_event({plan.event_var[p]})")
                yield self.op(w, op, loops)
                for value in _from_other_streams(op, plan):
                    w.line(f"_rt.keep({self.var(value)}, {stream})")
                if plan.body.records_event(op.path):
                    w.line(f"{plan.event_var[op.path]}.record({stream})")


def _from_other_streams(op: Op, plan: StreamPlan) -> list[Value]:
    """The values `op` reads that an op of the same body made on another stream."""
    mine = plan.body.stream_of(op.path)
    found: dict[int, Value] = {}
    for slot in op.inputs:
        producer = _in_body(slot.value, plan)
        if producer is not None and plan.body.stream_of(producer.path) != mine:
            found[slot.value.id] = slot.value
    return list(found.values())


def _in_body(value: Value, plan: StreamPlan) -> Op | None:
    """The op of the scheduled body that made `value` (itself or the loop around it), if any."""
    return plan.region.top_level(value.producer) if value.kind == "op" else None

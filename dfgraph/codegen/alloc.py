"""Variable allocation: which values share one variable, decided from the IR before any line is emitted.

A loop-carried name shares one variable with its initial value and its final body value when no later
reader needs the old one, so the counter loop compiles to exactly the loop a person would write. The
result maps a value to the value whose variable it uses; the emitter names each variable on first use
(so identifiers keep their order of appearance) and only reads these decisions.
"""

from __future__ import annotations

from collections.abc import Callable

from dfgraph.ir import LoopOp, Lowered, Op, Region, SwitchOp, Value


class Allocation:
    """The sharing decisions: `root(value)` is the value whose variable `value` lives in."""

    def __init__(self, same: dict[int, Value]) -> None:
        self.same = same  # value id -> a value sharing its variable (followed to the root)

    def root(self, value: Value) -> Value:
        """The value that names `value`'s variable (itself when it shares none)."""
        seen = []
        while value.id in self.same:
            seen.append(value.id)
            value = self.same[value.id]
        for vid in seen[:-1]:  # path compression: chains through 20,000 nested loops stay linear
            self.same[vid] = value
        return value


def allocate(lowered: Lowered, streamed: Callable[[LoopOp], bool]) -> Allocation:
    """Decide every variable shared across a loop (carried values, outputs) before emission.

    `streamed(loop)` says whether the loop's body runs on several CUDA streams (then a final value never
    overwrites its carried variable: a side stream may still read the old value until the join)."""
    return _Allocator(lowered, streamed).run()


class _Allocator:
    def __init__(self, lowered: Lowered, streamed: Callable[[LoopOp], bool]) -> None:
        self.lowered = lowered
        self.streamed = streamed
        self.same: dict[int, Value] = {}
        # values that have a variable before their loop is emitted: shared ones, and the finals of an
        # enclosing loop's outputs (named in that loop's preamble)
        self.fixed: set[int] = set()
        self.output_ids = {v.id for v in lowered.outputs.values()}
        self.position: dict[int, int] = {}
        regions = [lowered.root]
        while regions:
            region = regions.pop()
            for i, op in enumerate(region.ops):
                self.position[op.id] = i
                if isinstance(op, LoopOp):
                    regions.append(op.body)

    def share(self, value: Value, other: Value) -> None:
        """`value` lives in `other`'s variable."""
        self.same[value.id] = other
        self.fixed.add(value.id)

    def run(self) -> Allocation:
        # preorder, as emitted: an enclosing loop decides before the loops in its body
        for op in self.lowered.ops():
            if isinstance(op, LoopOp):
                self.loop(op)
        return Allocation(self.same)

    def loop(self, op: LoopOp) -> None:
        # An enclosing loop may already have chosen the variable of an output of this loop (to write
        # its own carried value in place): then the output's source must live in that variable.
        preset = {out.final.id: out.value for out in op.outs if out.value.id in self.fixed}
        for carried in op.carried:
            wanted = preset.get(carried.final.id)
            if wanted is not None:
                self.share(carried.phi, wanted)
            elif self.can_share_init(op, carried.init):
                self.share(carried.phi, carried.init)
            self.fixed.add(carried.phi.id)
            if self.can_share_final(op, carried.phi, carried.final):
                self.share(carried.final, carried.phi)
        for out in op.outs:
            if out.carried:
                continue
            if out.final.id in preset and out.final.id not in self.fixed:
                self.share(out.final, preset[out.final.id])
            self.fixed.add(out.final.id)
        for out in op.outs:
            source = out.final if not out.carried else next(c.phi for c in op.carried if c.final is out.final)
            if out.value.id not in self.fixed:
                self.share(out.value, source)

    def can_share_init(self, op: LoopOp, init: Value) -> bool:
        """The phi may reuse the initial value's variable when nothing reads it after the loop starts."""
        if init.kind not in ("input", "op") or init.id in self.output_ids:
            return False
        if init.kind == "op" and (init.producer is None or init.producer.region is not op.region):
            return False
        if init.kind == "input" and op.region.owner is not None:
            return False
        outer = op.region.owner
        if isinstance(outer, LoopOp) and (
            any(c.final is init for c in outer.carried) or any(o.final is init for o in outer.outs)
        ):
            return False  # the enclosing loop reads it after this loop (its next carried value, its output)
        if isinstance(outer, SwitchOp) and any(init in o.finals for o in outer.outs):
            return False  # the enclosing switch reads it after this loop (the value its case leaves)
        start = self.position[op.id]
        uses_here = 0
        for reader, _ in init.readers:
            if reader is op:
                uses_here += 1
                continue
            where = self.ancestor_position(reader, op.region)
            if where is None or where >= start:
                return False
        return uses_here == 1

    def can_share_final(self, op: LoopOp, phi: Value, final: Value) -> bool:
        """The final value may be written into the phi's variable when no reader of the phi comes after it."""
        if final.kind != "op" or final.producer is None or final.id in self.fixed:
            return False
        if self.streamed(op):
            return False  # streamed: the old value may still be read on a side stream until the join
        defined = self.ancestor_position(final.producer, op.body)
        if defined is None:
            return False
        # a loop writes its outputs (their zero-iteration values first) while its body still reads: a
        # reader inside the producing loop is after the write; a call reads its arguments before it writes
        inside_counts = isinstance(op.body.top_level(final.producer), LoopOp)
        for reader, _ in phi.readers:
            where = self.ancestor_position(reader, op.body)
            if where is None or where > defined or (where == defined and inside_counts):
                return False
        return True

    def ancestor_position(self, op: Op, region: Region) -> int | None:
        """The index in `region` of the op that is `op` or contains it; None when `op` is outside."""
        top = region.top_level(op)
        return None if top is None else self.position[top.id]

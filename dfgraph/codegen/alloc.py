"""Variable allocation: which values share one variable, decided from the IR before any line is emitted.

A loop-carried name shares one variable with its initial value and its final body value when no later
reader needs the old one, so the counter loop compiles to exactly the loop a person would write. A switch
output shares the variable of the value before the switch (a case that does not write the name then
passes it through without a copy) and each case's final value (written in place, no copy at the end of
the case), when no reader of the old value comes after the write. The result maps a value to the value
whose variable it uses; the emitter names each variable on first use (so identifiers keep their order of
appearance) and only reads these decisions.
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
        self.members: dict[int, list[Value]] = {}  # root value id -> every value in its variable
        regions = [lowered.root]
        while regions:
            region = regions.pop()
            for i, op in enumerate(region.ops):
                self.position[op.id] = i
                if isinstance(op, LoopOp):
                    regions.append(op.body)
                elif isinstance(op, SwitchOp):
                    regions.extend(case.body for case in op.cases)

    def root(self, value: Value) -> Value:
        """The value naming `value`'s variable so far (path compression: nesting 20,000 deep stays linear)."""
        seen = []
        while value.id in self.same:
            seen.append(value.id)
            value = self.same[value.id]
        for vid in seen[:-1]:
            self.same[vid] = value
        return value

    def share(self, value: Value, other: Value) -> None:
        """`value` lives in `other`'s variable."""
        mine, theirs = self.root(value), self.root(other)
        self.same[value.id] = other
        self.fixed.add(value.id)
        if mine is not theirs:
            group = self.members.setdefault(theirs.id, [theirs])
            group.extend(self.members.pop(mine.id, [mine]))

    def run(self) -> Allocation:
        # preorder, as emitted: an enclosing loop or switch decides before the ops inside it
        for op in self.lowered.ops():
            if isinstance(op, LoopOp):
                self.loop(op)
            elif isinstance(op, SwitchOp):
                self.switch(op)
        return Allocation(self.same)

    def switch(self, op: SwitchOp) -> None:
        # in a loop body on several streams nothing is shared (as for that loop's own finals)
        owner = op.region.owner
        while owner is not None:
            if isinstance(owner, LoopOp) and self.streamed(owner):
                for out in op.outs:
                    self.fixed.add(out.value.id)
                return
            owner = owner.region.owner
        for out in op.outs:
            init = out.init
            if out.value.id not in self.fixed and init is not None and self.can_pass_through(op, init):
                self.share(out.value, init)
            self.fixed.add(out.value.id)
        for out in op.outs:
            for k, final in enumerate(out.finals):
                if final is not None and self.can_share_case_final(op, k, final, out.value):
                    self.share(final, out.value)

    def can_pass_through(self, op: SwitchOp, init: Value) -> bool:
        """The output may live in the variable of the value before the switch (a case that does not write
        the name then copies nothing) when no reader of that value comes after the switch."""
        if init.kind not in ("input", "op") or init.id in self.output_ids:
            return False
        outer = op.region.owner
        while outer is not None and not isinstance(outer, LoopOp):
            outer = outer.region.owner
        if init.kind == "input" and outer is not None:
            return False  # the next iteration reads the input again
        if init.kind == "op" and (init.producer is None or init.producer.region is not op.region):
            return False
        owner = op.region.owner
        if isinstance(owner, LoopOp) and (
            any(c.final is init for c in owner.carried) or any(o.final is init for o in owner.outs)
        ):
            return False  # the enclosing loop reads it after the switch
        start = self.position[op.id]
        for reader, _ in init.readers:
            where = self.ancestor_position(reader, op.region)
            if where is None or where > start:
                return False
        return True  # readers inside the cases: checked when a case's final takes the variable

    def can_share_case_final(self, op: SwitchOp, k: int, final: Value, out: Value) -> bool:
        """Case k may write its final value straight into the output's variable when no reader of a value
        living in that variable (the value before, an enclosing loop's carried value) comes after it in
        the case."""
        body = op.cases[k].body
        if final.kind != "op" or final.producer is None or final.id in self.fixed:
            return False
        if final.producer.region is not body:
            return False
        defined = self.position[final.producer.id]
        # a loop or switch writes its outputs while the ops inside it still read; a call reads first
        inside_counts = isinstance(final.producer, LoopOp | SwitchOp)
        root = self.root(out)
        for value in self.members.get(root.id, [root]):
            for reader, _ in value.readers:
                where = self.ancestor_position(reader, body)
                if where is None:
                    continue  # another case (never both), or outside: decided with the variable
                if where > defined or (where == defined and inside_counts):
                    return False
        return True

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

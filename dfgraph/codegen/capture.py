"""The capture emitter (device="cuda", capture=True): every loop body runs its capturable segments (runs
of blocks without `mutates`) as CUDA graphs through a `dfgraph.capture.Segment`; it extends the serial
emitter by overriding region emission for loop bodies."""

from __future__ import annotations

from dfgraph.capture import Segment
from dfgraph.codegen.common import LineInfo
from dfgraph.codegen.names import literal, tuple_text
from dfgraph.codegen.serial import Loops, SerialEmitter
from dfgraph.codegen.writer import Writer
from dfgraph.ir import CallOp, LoopOp, Nested, Op, Region


class CaptureEmitter(SerialEmitter):
    """Loop bodies as segments replayed from CUDA graphs, blocks with `mutates` run eagerly between."""

    def region(self, w: Writer, region: Region, loops: Loops) -> Nested[None]:
        """A loop body: each maximal run of capturable calls becomes one segment."""
        owner = region.owner
        if not isinstance(owner, LoopOp):  # the top level, or a switch case: run eagerly
            yield from super().region(w, region, loops)
            return
        for group in segments(region):
            if isinstance(group, list):
                self.segment(w, group, owner, loops)
            else:
                yield self.op(w, group, loops)

    def segment(self, w: Writer, ops: list[CallOp], loop: LoopOp, loops: Loops) -> None:
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
        helper = Writer(f"def {name}({', '.join(params)}):")
        self.functions.append(helper)
        # replayed from a graph, the calls inside run no Python: hooks see the segment as one block
        events, self.events = self.events, self.events - {"block_start", "block_end"}
        for op in ops:
            self.call(helper, op, ())
        self.events = events
        helper.line(f"return ({tuple_text(outs) if outs else ''})")
        runner = self.glob(segment, f"{name}_graph")
        target = f"{tuple_text(outs)} = " if outs else ""
        arguments = f"({tuple_text(list(params))})" if params else "()"
        label = literal(segment.label)  # hooks see a segment as one block: it replays as one graph
        given = ", ".join(f"{literal(reader)}: {ident}" for ident, reader in params.items())
        self.hook(w, "block_start", label, f"{{{given}}}")
        w.line(f"{target}{runner}.run({name}, {arguments})", LineInfo(segment.label, loops))
        self.hook(w, "block_end", label, "{" + ", ".join(f"{literal(o)}: {o}" for o in outs) + "}")


def capturable(op: Op) -> bool:
    """A call of a block without Python-side state (no `mutates`) can be replayed from a CUDA graph."""
    return isinstance(op, CallOp) and not tuple(getattr(op.block, "mutates", ()))


def segments(region: Region) -> list[list[CallOp] | Op]:
    """The region's ops in order, maximal runs of capturable calls grouped into lists."""
    groups: list[list[CallOp] | Op] = []
    for op in region.ops:
        if not capturable(op):
            groups.append(op)
        elif groups and isinstance(groups[-1], list):
            groups[-1].append(op)  # type: ignore[arg-type]
        else:
            groups.append([op])  # type: ignore[list-item]
    return groups

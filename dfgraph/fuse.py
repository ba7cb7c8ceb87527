"""Batch fusion: two independent calls of one batchable block become one call on the stacked batch.

The case that matters is classifier-free guidance: the denoiser runs once for the conditional and once
for the unconditional branch, with the same weights, timestep and latents but different embeddings.
Fused, it runs once on both embeddings concatenated along dim 0, and its output is split back.

A block is batchable when it declares `batch=` (the inputs stacked along dim 0). Two calls fuse when
they call the same block object, neither depends on the other, and every input not in `batch` is bound
to the same value. The pass rewrites the checked IR in place, before code generation and scheduling.

Every region is searched on its own: the program's top level, each loop body and each case of a switch.
So two calls in one case fuse, but never a call of one case with a call of another (only one of them
runs) nor a call inside a case with one outside the switch (it may not run): the switch is one op of
its enclosing region, whose inputs are everything its cases read.
"""

from __future__ import annotations

from dfgraph.ir import CallOp, FusedOp, Lowered, Op, Region, regions

__all__ = ["FusedOp", "fuse"]  # FusedOp is an IR type (dfgraph.ir); re-exported here


def fuse(lowered: Lowered) -> list[tuple[str, str]]:
    """Fuse every eligible pair of calls in every region (top level, loop bodies, switch cases); returns
    the (first, second) paths fused."""
    next_id = max((op.id for op in lowered.ops()), default=0) + 1
    every = [lowered.root, *(region for op in lowered.ops() for region in regions(op))]
    fused: list[tuple[str, str]] = []
    for region in every:
        while (pair := _find_pair(region)) is not None:
            first, second, position = pair
            _replace(region, FusedOp(next_id, first, second), position)
            next_id += 1
            fused.append((first.path, second.path))
    return fused


def _batchable(op: Op) -> bool:
    if not isinstance(op, CallOp) or isinstance(op, FusedOp):
        return False
    try:
        return bool(getattr(op.block, "batch", ()))
    except Exception:  # a proxy's __getattr__ may raise anything: a block without batch= never fuses
        return False


def _find_pair(region: Region) -> tuple[CallOp, CallOp, int] | None:
    """The first fusable pair in program order, and where the fused call may stand."""
    ops = region.ops
    for j, second in enumerate(ops):
        if not _batchable(second):
            continue
        for i in range(j):
            first = ops[i]
            if first.block is not second.block or not _batchable(first):
                continue
            assert isinstance(first, CallOp) and isinstance(second, CallOp)
            if not _shares_the_rest(first, second):
                continue
            depends_on_first = _dependents(region, i, j)
            if j in depends_on_first:
                continue  # the second call needs the first one's result
            if not depends_on_first:
                return first, second, j  # nothing between them waits for the first: fuse at the second
            if not _dependencies(region, i, j):
                return first, second, i  # nothing between them feeds the second: fuse at the first
    return None


def _shares_the_rest(first: CallOp, second: CallOp) -> bool:
    batch = set(getattr(first.block, "batch", ()))
    return all(
        a.value is b.value
        for a, b in zip(first.inputs, second.inputs, strict=True)
        if a.port.name not in batch
    )


def _direct_deps(region: Region, op: Op) -> set[int]:
    """Indices in `region` of the ops whose outputs `op` reads (a loop or switch reads through its slots
    whatever its body or cases read from this region)."""
    deps = set()
    for slot in op.inputs:
        producer = region.top_level(slot.value.producer) if slot.value.kind == "op" else None
        if producer is not None:
            deps.add(region.ops.index(producer))
    return deps


def _dependents(region: Region, i: int, j: int) -> set[int]:
    """Indices in (i, j] of ops that depend, directly or not, on op i."""
    found = {i}
    for k in range(i + 1, j + 1):
        if _direct_deps(region, region.ops[k]) & found:
            found.add(k)
    return found - {i}


def _dependencies(region: Region, i: int, j: int) -> set[int]:
    """Indices in [i, j) of ops that op j depends on, directly or not."""
    needed = _direct_deps(region, region.ops[j])
    for k in range(j - 1, i - 1, -1):
        if k in needed:
            needed |= _direct_deps(region, region.ops[k])
    return {k for k in needed if i <= k < j}


def _replace(region: Region, fused: FusedOp, position: int) -> None:
    """Put `fused` where its members were: inputs, readers, outputs and producers rewired to it."""
    first, second = fused.members
    fused.inputs = [*first.inputs, *second.inputs]
    offset = len(first.inputs)
    for member, base in ((first, 0), (second, offset)):
        for k, slot in enumerate(member.inputs):
            readers = slot.value.readers
            readers[readers.index((member, k))] = (fused, base + k)
        for value in member.outputs:
            value.producer = fused
    fused.outputs = [*first.outputs, *second.outputs]
    anchor = region.ops[position]
    region.ops[region.ops.index(anchor)] = fused
    region.ops.remove(second if anchor is first else first)

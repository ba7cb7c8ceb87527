"""dfgraph: typed dataflow graphs of blocks, checked before they run and compiled to plain Python.

import dfgraph as df

@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1

loop = df.Loop(df.Sequential(add_one, add_one), times="num_steps")
prog = df.compile(loop)                      # raises df.WiringError listing every error
assert prog(num_steps=10, x=0, output="x") == 20
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dfgraph.block import Block, block
from dfgraph.check import check
from dfgraph.compose import Graph, Loop, Sequential
from dfgraph.diagnostics import Diagnostic, Report, Severity
from dfgraph.errors import BlockError, GraphError, InputError, WiringError
from dfgraph.hooks import Hook
from dfgraph.ports import REQUIRED, Port
from dfgraph.program import Program, compile_block

__all__ = [
    "REQUIRED",
    "Block",
    "BlockError",
    "Diagnostic",
    "Graph",
    "GraphError",
    "Hook",
    "InputError",
    "Loop",
    "Port",
    "Program",
    "Report",
    "Sequential",
    "Severity",
    "WiringError",
    "block",
    "check",
    "compile",
]

__version__ = "0.1.0"


def compile(
    block: Any,
    *,
    device: str | None = None,
    streams: str | int = "auto",
    fuse: bool = False,
    capture: bool = False,
    ignore: str | Iterable[str] | None = None,
    errors: str | Iterable[str] | None = None,
    select: str | Iterable[str] | None = None,
    hooks: Iterable[object] = (),
) -> Program:
    """Check `block` and compile it to a Program; raises df.WiringError listing every error.

    `streams` caps the CUDA streams of each loop body's schedule ("auto": at most 4); the schedule is
    computed on every device (`prog.schedule`). With `device="cuda"` each loop body runs on its
    streams (events, waits, fork and join as scheduled); otherwise execution is serial. `fuse=True` merges
    independent calls of one batchable block (`@df.block(batch=...)`) into one batched call
    (`prog.fused` lists the pairs). `capture=True` (with device="cuda") runs the capturable segments of
    each loop body (runs of blocks without `mutates`) as CUDA graphs, captured once and replayed per
    step (`prog.captured` lists them; see dfgraph.capture). `ignore`, `errors` and `select` are as
    for `df.check`: an ignored error no longer stops compilation (the value passes that edge unchecked).
    `hooks` (`df.Hook` subclasses, see dfgraph.hooks) are called on the events they listen to, on every
    call; `prog.with_hooks(*hooks)` adds hooks for the calls of the program it returns.
    """
    return compile_block(
        block,
        device=device,
        streams=streams,
        fuse=fuse,
        capture=capture,
        ignore=ignore,
        errors=errors,
        select=select,
        hooks=hooks,
    )

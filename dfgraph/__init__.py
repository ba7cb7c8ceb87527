"""dfgraph: typed dataflow graphs of blocks, checked before they run and compiled to plain Python.

import dfgraph as df

@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1

loop = df.Loop(df.Sequential(add_one, add_one), times="num_steps")
prog = df.compile(loop)                      # raises df.WiringError listing every error
assert prog(num_steps=10, x=0, output="x") == 20

Control flow: `Switch(cases, on=name | selector)` runs one case, `Loop(..., until="stop")` ends early,
`first_given({"img2img": "image"}, default="text2img")` is the trigger selector of Modular Diffusers'
AutoPipelineBlocks, `specialize(block, mode="img2img")` resolves the Switches given values decide (the
given inputs it still reads are bound, as `Bound` does), and `switches_text(block)` describes the cases.
An input only some cases read has the default `WHEN_CHOSEN`: needed only when one of them is chosen.

Everything in `__all__` is the public API; `blocks/` and the CLI use nothing else. Beside the graph
builders, the compiler and the errors: `RNG` (the resource random blocks name in `mutates=`), `is_block`
and `Composite` (what is a block), `ports_text` and `describe_type` (ports and types as the messages
render them), `is_assignable` and `type_union` (the static type relation), `did_you_mean` and
`select_codes` (as the checker uses them), `REGISTRY` and `Code` (every diagnostic code), `Note` (a
block's finding about its own definition). `dfgraph.testing` holds the hypothesis strategies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dfgraph import compose as _compose
from dfgraph import program as _program
from dfgraph.block import Block, FunctionBlock, Note, block
from dfgraph.check import check
from dfgraph.codegen import ports_text
from dfgraph.compose import Bound, Composite, Graph, Loop, Sequential, Switch, is_block
from dfgraph.control import first_given, specialize, switches_text
from dfgraph.diagnostics import REGISTRY, Code, Diagnostic, Report, Severity, did_you_mean, select_codes
from dfgraph.errors import BlockError, GraphError, InputError, WiringError
from dfgraph.hooks import Hook
from dfgraph.ir import IRError, verify
from dfgraph.lowering import interface as _interface
from dfgraph.lowering import lower
from dfgraph.ports import REQUIRED, WHEN_CHOSEN, Port
from dfgraph.program import Program, compile_block
from dfgraph.schedule import RNG
from dfgraph.types import describe as describe_type
from dfgraph.types import is_assignable
from dfgraph.types import union as type_union

__all__ = [
    "REGISTRY",
    "REQUIRED",
    "RNG",
    "WHEN_CHOSEN",
    "Block",
    "BlockError",
    "Bound",
    "Code",
    "Composite",
    "Diagnostic",
    "FunctionBlock",
    "Graph",
    "GraphError",
    "Hook",
    "IRError",
    "InputError",
    "Loop",
    "Note",
    "Port",
    "Program",
    "Report",
    "Sequential",
    "Severity",
    "Switch",
    "WiringError",
    "__version__",
    "block",
    "check",
    "compile",
    "describe_type",
    "did_you_mean",
    "first_given",
    "is_assignable",
    "is_block",
    "lower",
    "ports_text",
    "select_codes",
    "specialize",
    "switches_text",
    "type_union",
    "verify",
]


def _compile_composite(composite: Any) -> Program:
    # read at call time, so that a patched dfgraph.program.compile_block is the one used
    return _program.compile_block(composite)


# Composites are data (dfgraph.compose imports neither the lowering nor the compiler); their ports and
# their compile-on-first-call come from here, the one module above both.
_compose.connect(interface=_interface, compile=_compile_composite)

__version__ = "0.1.0"


def compile(
    block: Block,
    *,
    device: str | None = None,
    streams: str | int = "auto",
    fuse: bool = True,
    capture: bool = False,
    ignore: str | Iterable[str] | None = None,
    errors: str | Iterable[str] | None = None,
    select: str | Iterable[str] | None = None,
    hooks: Iterable[object] = (),
    progress: bool = True,
) -> Program:
    """Check `block` and compile it to a Program; raises df.WiringError listing every error.

    `streams` caps the CUDA streams of each loop body's schedule ("auto": at most 4); the schedule is
    computed on every device (`prog.schedule`). With `device="cuda"` each loop body runs on its
    streams (events, waits, fork and join as scheduled); otherwise execution is serial. Fusion (on unless
    `fuse=False`) merges independent calls of one batchable block (`@df.block(batch=...)`) into one
    batched call (`prog.fused` lists the pairs; it concatenates with torch.cat, so without torch
    installed nothing fuses). `capture=True` (with device="cuda") runs the capturable
    segments of each loop body (runs of blocks without `mutates`) as CUDA graphs, captured once and
    replayed per step (`prog.captured` lists them; see dfgraph.capture). `ignore`, `errors` and `select`
    are as for `df.check`: an ignored error no longer stops compilation (the value passes that edge
    unchecked).
    `hooks` (`df.Hook` subclasses, see dfgraph.hooks) are called on the events they listen to, on every
    call; `prog.with_hooks(*hooks)` adds hooks for the calls of the program it returns.
    `progress=False` hides the bars of `Loop(progress=True)`; `prog.with_progress(False)` (or `True`)
    switches them per call without compiling again.
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
        progress=progress,
    )

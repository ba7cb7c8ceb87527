"""Code generation: the lowered IR becomes one readable Python function whose values are locals.

One backend per module, each a small extension of the serial one:
- `serial.SerialEmitter`: every op in issue order (the CPU, and the shape every backend shares);
- `streams.StreamsEmitter`: scheduled loop bodies on CUDA streams (fork, events, join);
- `capture.CaptureEmitter`: loop bodies as segments replayed from CUDA graphs.
They write through `writer.Writer` (lines carry their LineInfo; blocks indent) and read the variable of
every value from `alloc.allocate`, which decides before emission which values share a variable.
"""

from __future__ import annotations

from typing import Any

from dfgraph.codegen.capture import CaptureEmitter
from dfgraph.codegen.common import (
    MISSING,
    BoundaryTest,
    Generated,
    InputCheck,
    LineInfo,
    Missing,
    Unset,
    boundary_checks,
    input_default,
    iterator_refusal,
    maybe_unset,
    no_output_message,
    no_value_message,
    ports_text,
)
from dfgraph.codegen.names import COMMENT_PATH, identifier
from dfgraph.codegen.serial import INLINE_OUTPUTS, MAX_NESTING, SerialEmitter
from dfgraph.codegen.streams import StreamsEmitter
from dfgraph.ir import Lowered
from dfgraph.schedule import Schedule

__all__ = [
    "COMMENT_PATH",
    "INLINE_OUTPUTS",
    "MAX_NESTING",
    "MISSING",
    "BoundaryTest",
    "CaptureEmitter",
    "Generated",
    "InputCheck",
    "LineInfo",
    "Missing",
    "SerialEmitter",
    "StreamsEmitter",
    "Unset",
    "boundary_checks",
    "emitter",
    "generate",
    "identifier",
    "input_default",
    "iterator_refusal",
    "maybe_unset",
    "no_output_message",
    "no_value_message",
    "ports_text",
]


def emitter(
    lowered: Lowered,
    schedule: Schedule | None = None,
    runtime: Any = None,
    capture: bool = False,
    events: frozenset[str] = frozenset(),
) -> SerialEmitter:
    """The backend's emitter: serial on the CPU; streams with a CUDA `runtime`; capture with `capture`."""
    if runtime is None:
        return SerialEmitter(lowered, schedule, events=events)
    if capture:
        return CaptureEmitter(lowered, schedule, runtime, events)
    return StreamsEmitter(lowered, schedule, runtime, events)


def generate(
    lowered: Lowered,
    schedule: Schedule | None = None,
    runtime: Any = None,
    capture: bool = False,
    *,
    events: frozenset[str] = frozenset(),
) -> tuple[Generated, list[InputCheck], list[str]]:
    """Generate the program's source; also returns the input checks and zero-iteration messages it cites.

    With a CUDA `runtime`, every loop body the `schedule` spreads over several streams runs on them; with
    `capture`, every loop body runs its capturable segments as CUDA graphs instead (`Generated.segments`).
    `events` are the hook events (dfgraph.hooks.EVENTS) the source calls `self._hooks` for; without any,
    the source has no hook call at all."""
    return emitter(lowered, schedule, runtime, capture, events).generate()

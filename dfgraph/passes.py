"""The compiler's pass list, in one place: lower -> check -> fuse -> schedule -> hooks -> codegen.

Each pass is a function of the IR (`dfgraph.ir.Lowered`) returning its result; `compile_ir` runs them in
order. Lowering and checking share one guard (`check.analyse`): an internal failure in either becomes a
DF000 diagnostic instead of a traceback. Capture segmentation is not a pass of its own: the capture
emitter splits each loop body into segments while it generates code (dfgraph.capture, `Generated.segments`).

With the debug switch on (`DFGRAPH_VERIFY=1` in the environment, or `verify=True`), `dfgraph.ir.verify`
runs after every pass and an IRError names the pass that broke the IR.

The hooks pass decides which hook events the generated code calls: those the given hooks listen to, plus
the loop events of a progress bar over the loops built with `progress=True` (dfgraph.hooks.ProgressBar),
wherever they are: nested in loops or inside the cases of a switch.
No hook and no progress bar: no event, and the source is the hand-written loop.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import attrs

from dfgraph import types
from dfgraph.check import Rules, analyse, apply_rules
from dfgraph.codegen import Generated, InputCheck, generate
from dfgraph.diagnostics import Report
from dfgraph.errors import WiringError
from dfgraph.fuse import fuse as fuse_calls
from dfgraph.hooks import Dispatcher, ProgressBar
from dfgraph.ir import IRError, LoopOp, Lowered, consumers, gc_paused, verify
from dfgraph.schedule import Schedule, schedule_program

__all__ = ["PASSES", "Compiled", "compile_ir", "verifying"]

PASSES = ("lower", "check", "fuse", "schedule", "hooks", "codegen")
"""The passes in the order `compile_ir` runs them (fuse runs only with fuse=True, schedule only on CUDA:
on the CPU the program computes its schedule on first use)."""

VERIFY_ENV = "DFGRAPH_VERIFY"


@attrs.frozen
class Compiled:
    """What the pass list produces: the final IR, the checker's report and each later pass's result."""

    lowered: Lowered
    report: Report
    fused: tuple[tuple[str, str], ...]
    schedule: Schedule | None
    generated: Generated
    checks: list[InputCheck]
    no_value: list[str]
    dispatcher: Dispatcher | None


def verifying(verify: bool | None = None) -> bool:
    """Whether to verify the IR after every pass: `verify` when given, else the DFGRAPH_VERIFY switch."""
    if verify is not None:
        return verify
    return os.environ.get(VERIFY_ENV, "").strip().lower() not in ("", "0", "false", "no")


def compile_ir(
    block: Any,
    *,
    rules: Rules,
    fuse: bool = True,
    max_streams: int | None = None,
    runtime: Any = None,
    capture: bool = False,
    hooks: tuple[object, ...] = (),
    verify: bool | None = None,
    progress: bool = True,
) -> Compiled:
    """Run the pass list on a block; raises WiringError listing every error the checker kept."""
    debug = verifying(verify)

    def after(name: str, lowered: Lowered) -> None:
        if debug:
            verified(name, lowered)

    lowered, report = analyse(block, lambda ir: after("lower", ir))  # lower, then check
    report = check_pass(lowered, report, rules)
    assert lowered is not None  # check_pass raised otherwise
    after("check", lowered)
    fused: tuple[tuple[str, str], ...] = ()
    if fuse:
        fused = fuse_pass(lowered)
        after("fuse", lowered)
    schedule = None
    if runtime is not None:  # on the CPU nothing runs on streams: the program schedules on first use
        schedule = schedule_program(lowered, max_streams)
        after("schedule", lowered)
    dispatcher = hooks_pass(lowered, hooks, progress)
    after("hooks", lowered)
    events = dispatcher.events if dispatcher is not None else frozenset()
    generated, checks, no_value = codegen_pass(lowered, schedule, runtime, capture, events)
    after("codegen", lowered)
    return Compiled(lowered, report, fused, schedule, generated, checks, no_value, dispatcher)


def _has_torch() -> bool:
    """Whether torch is installed (found without importing it; a finder that refuses it means no)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def verified(name: str, lowered: Lowered) -> None:
    """Verify the IR after pass `name`; the IRError says which pass left it broken."""
    try:
        verify(lowered)
    except IRError as exc:
        raise IRError(list(exc.problems), f"after pass {name!r}") from None


def check_pass(lowered: Lowered | None, report: Report, rules: Rules) -> Report:
    """Apply the rules and suppressions to the checker's report; WiringError when an error remains."""
    report = apply_rules(lowered, report, rules)
    if lowered is None or not report.ok:
        raise WiringError(report)
    _unchecked_inputs(lowered, report)
    return report


def fuse_pass(lowered: Lowered) -> tuple[tuple[str, str], ...]:
    """Batch fusion (dfgraph.fuse), in place; the (first, second) paths of each fused pair. A fused call
    concatenates its batch with torch.cat: without torch installed nothing fuses."""
    return tuple(fuse_calls(lowered)) if _has_torch() else ()


def hooks_pass(lowered: Lowered, hooks: tuple[object, ...], progress: bool = True) -> Dispatcher | None:
    """The program's hook dispatcher: a progress bar over the `progress=True` loops (inside switch cases
    too; none when `progress` is False), then `hooks`; None when nothing listens (the generated code then
    calls no hook)."""
    shown = [op.path for op in lowered.ops() if isinstance(op, LoopOp) and op.loop.progress and progress]
    listeners = (ProgressBar(shown),) if shown else ()
    return Dispatcher((*listeners, *hooks)) if listeners or hooks else None


def codegen_pass(
    lowered: Lowered,
    schedule: Schedule | None,
    runtime: Any,
    capture: bool,
    events: frozenset[str] = frozenset(),
) -> tuple[Generated, list[InputCheck], list[str]]:
    """Python source for the IR (dfgraph.codegen), capture segments included when `capture`, calling the
    hook `events` some hook listens to."""
    with gc_paused():  # millions of fresh objects in cycles: full GC scans would slow big graphs
        return generate(lowered, schedule, runtime, capture, events=events)


def _unchecked_inputs(lowered: Lowered, report: Report) -> None:
    """An input whose DF002 was ignored passes the call boundary unchecked when no value could fit all its
    checked readers (a reader with check=False is left out already)."""
    sites = {(s.path, s.port) for d in report.ignored if d.code == "DF002" for s in d.sites}
    if not sites:
        return
    for value in lowered.inputs.values():
        if not any((op.path, port.name) in sites for op, port in consumers(value)):
            continue
        checked = [op.inputs[k].port for op, k in value.readers if op.inputs[k].port.check]
        if types.narrow([p.type for p in checked]) is None:
            for op, k in value.readers:
                op.inputs[k].port = attrs.evolve(op.inputs[k].port, check=False)

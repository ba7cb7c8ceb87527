"""Programs: the compiled, immutable, callable result of `df.compile`.

Each program is an instance of its own small subclass of `Program` whose `__call__` is the generated
function: keywords bind straight to its parameters, values live in its locals, and a call costs about
what the hand-written code costs. Everything unusual goes through the slow paths here.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, NoReturn

from dfgraph import types
from dfgraph.boundary import show_value
from dfgraph.capture import CaptureError
from dfgraph.check import analyse, gc_paused
from dfgraph.codegen import MISSING, UNSET, Generated, InputCheck, generate, ports_text
from dfgraph.cuda import runtime as cuda_runtime
from dfgraph.diagnostics import Report, did_you_mean
from dfgraph.errors import BlockError, InputError, WiringError
from dfgraph.fuse import fuse as fuse_calls
from dfgraph.ir import Lowered, consumers, input_ports, output_ports
from dfgraph.ports import Port
from dfgraph.schedule import Schedule, max_streams_of, schedule_program

_serial = itertools.count(1)


class Program:
    """A compiled graph: call it with its inputs as keywords; thread-safe (all state is in locals)."""

    __slots__ = (
        "_ident_of",
        "_index",
        "_lines",
        "_readers",
        "_schedule",
        "block",
        "filename",
        "fused",
        "inputs",
        "name",
        "outputs",
        "report",
        "segments",
        "source",
    )

    def __init__(
        self,
        block: Any,
        report: Report,
        generated: Generated,
        filename: str,
        ports: tuple[tuple[Port, ...], tuple[Port, ...]],
        readers: Mapping[str, tuple[str, ...]],
        schedule: Schedule | _Deferred,
    ) -> None:
        self.block = block
        self.name: str = str(getattr(block, "name", "program"))
        self.report = report
        self.source = generated.source
        self.filename = filename
        self.inputs, self.outputs = ports
        self._lines = generated.lines
        self._index = {name: i for i, name in enumerate(generated.output_names)}
        self._ident_of = dict(generated.params)  # input name -> parameter of the generated __call__
        self._readers = dict(readers)
        self._schedule = schedule
        self.fused: tuple[tuple[str, str], ...] = ()  # the pairs of calls batch fusion merged
        self.segments = generated.segments  # capture=True: the captured runs of blocks (dfgraph.capture)

    @property
    def schedule(self) -> Schedule:
        """The stream schedule of every loop body (on the CPU computed on first use; execution is serial)."""
        if isinstance(self._schedule, _Deferred):
            self._schedule = self._schedule.compute()
        return self._schedule

    @property
    def captured(self) -> tuple[tuple[str, ...], ...]:
        """With capture=True, the block paths of each loop-body segment run as a CUDA graph."""
        return tuple(segment.paths for segment in self.segments)

    def __call__(self, /, *args: Any, output: str | Iterable[str] | None = None, **inputs: Any) -> Any:
        """Run the program: `output=None` maps every output, a name gives its value, names a mapping."""
        # Replaced in each compiled program's class by the generated function; this generic form
        # reaches it through the slow path.
        return self._slow_call(args, inputs, output, {})

    @property
    def doc(self) -> str:
        """Inputs with types, defaults and docs; outputs with types."""
        lines = [f"{self.name}({ports_text(self.inputs)})", "", "Inputs:"]
        for p in self.inputs:
            default = "required" if p.required else f"default {p.default!r}"
            readers = ", ".join(self._readers.get(p.name, ()))
            doc = f" — {p.doc}" if p.doc else ""
            lines.append(f"  {p.name}: {types.describe(p.type)} ({default}){doc}  [read by {readers}]")
        if not self.inputs:
            lines.append("  (none)")
        lines.append("Outputs:")
        lines.extend(f"  {p.name}: {types.describe(p.type)}" for p in self.outputs)
        if not self.outputs:
            lines.append("  (none)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        outs = ", ".join(p.name for p in self.outputs)
        return f"<Program {self.name}({ports_text(self.inputs)}) -> ({outs})>"

    # -- slow paths, called by the generated __call__ ---------------------------------------------------

    def _slow_call(
        self, args: tuple[Any, ...], unknown: dict[str, Any], output: Any, given: dict[str, Any]
    ) -> Any:
        """Explain a bad call with an InputError, or forward renamed ports (non-identifier names)."""
        problems = []
        if args:
            problems.append(f"pass inputs by keyword, not by position ({len(args)} positional given)")
        values = {ident: v for ident, v in given.items() if v is not MISSING}
        for name, value in unknown.items():
            ident = self._ident_of.get(name)
            if ident is not None and ident != name:
                values[ident] = value
            else:
                problems.append(f"unknown input {name!r}{did_you_mean(name, self._ident_of)}")
        for p in self.inputs:
            if p.required and self._ident_of[p.name] not in values:
                readers = ", ".join(self._readers.get(p.name, ())) or "the graph"
                problems.append(f"missing input {p.name!r} ({types.describe(p.type)}), read by {readers}")
        if problems:
            raise InputError(f"{self.name}: " + "; ".join(problems) + f". Inputs: {ports_text(self.inputs)}")
        return self(output=output, **values)

    def _check_output(self, output: object) -> None:
        if isinstance(output, str):
            raise self._unknown_output(output)
        if not isinstance(output, Iterable):
            raise InputError(f"{self.name}: output= takes a name or a list of names, got {output!r}")
        for name in output:
            if not isinstance(name, str) or name not in self._index:
                raise self._unknown_output(name)

    def _unknown_output(self, name: object) -> InputError:
        return InputError(
            f"{self.name}: no output {name!r}{did_you_mean(str(name), self._index)}; "
            f"the outputs are: {', '.join(self._index) or '(none)'}"
        )

    def _select(self, output: Any, values: tuple[Any, ...]) -> Any:
        if isinstance(output, str):
            value = values[self._index[output]]
            if value is UNSET:
                raise InputError(
                    f"{self.name}: output {output!r} has no value: the loop that writes it ran zero times "
                    "and it is not carried"
                )
            return value
        return {name: values[self._index[name]] for name in output}

    @staticmethod
    def _defined(outputs: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in outputs.items() if value is not UNSET}

    def _reraise(self, exc: Exception) -> NoReturn:
        error = self._translate(exc)
        if error is exc:
            raise exc
        raise error from exc

    def _translate(self, exc: Exception) -> Exception:
        """A BlockError naming the block path and loop iterations, from the generated frames' lines."""
        tracebacks = [exc.__traceback__]
        if isinstance(exc, CaptureError) and exc.__cause__ is not None:
            tracebacks.append(exc.__cause__.__traceback__)  # it failed inside the block being captured
        frames = [t for tb in tracebacks for t in _walk(tb) if t.tb_frame.f_code.co_filename == self.filename]
        infos = [(t, self._lines.get(t.tb_lineno)) for t in frames]
        innermost = infos[-1][1] if infos else None
        if innermost is None:
            return exc  # raised by our own zero-iteration check: already a clear InputError
        iterations: list[tuple[str, int]] = []
        for t, info in infos:
            if info is None:
                continue
            for loop_path, ident in info.loops:
                index = t.tb_frame.f_locals.get(ident)
                if isinstance(index, int):
                    iterations.append((loop_path, index))
        where = ""
        if iterations:
            where = " (" + ", ".join(f"iteration {i} of loop {p!r}" for p, i in reversed(iterations)) + ")"
        message = f"block {innermost.path!r} raised {type(exc).__name__}: {exc}{where}"
        return BlockError(message, innermost.path, tuple(iterations))


class _Deferred:
    """A schedule not computed yet: the checked IR and the stream cap it needs."""

    __slots__ = ("lowered", "max_streams")

    def __init__(self, lowered: Lowered, max_streams: int | None) -> None:
        self.lowered, self.max_streams = lowered, max_streams

    def compute(self) -> Schedule:
        """schedule_program(lowered, max_streams)."""
        return schedule_program(self.lowered, self.max_streams)


def _walk(tb: TracebackType | None) -> Iterable[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _bad_input_factory(name: str, checks: list[InputCheck]) -> Any:
    def _bad_input(k: int, value: Any) -> None:
        """Raise the InputError of a value that failed boundary check k: name, expected type, what came."""
        check = checks[k]
        readers = ", ".join(check.readers)
        raise InputError(
            f"{name}: input {check.name!r} must be {types.describe(check.hint)} (read by {readers}), "
            f"got {show_value(value)}"
        )

    return _bad_input


def _no_value_factory(name: str, messages: list[str]) -> Any:
    def _no_value(k: int) -> None:
        raise InputError(f"{name}: {messages[k]}")

    return _no_value


def compile_block(
    block: Any,
    *,
    device: str | None = None,
    streams: str | int = "auto",
    fuse: bool = False,
    capture: bool = False,
) -> Program:
    """Check a block and compile it to a Program; raises WiringError listing every error."""
    max_streams = max_streams_of(streams)
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device= takes None, 'cpu' or 'cuda', got {device!r}")
    if capture and device != "cuda":
        raise ValueError(
            f"capture=True records CUDA graphs, so it needs device='cuda' (got device={device!r})"
        )
    rt = cuda_runtime() if device == "cuda" else None
    lowered, report = analyse(block)
    if lowered is None or not report.ok:
        raise WiringError(report)
    fused = fuse_calls(lowered) if fuse else []
    # On the CPU nothing runs on streams: the schedule is computed when first asked for
    schedule = schedule_program(lowered, max_streams) if rt is not None else None
    with gc_paused():
        generated, checks, no_value = generate(lowered, schedule, rt, capture)
    name = str(getattr(block, "name", "program"))
    filename = f"<dfgraph {name} #{next(_serial)}>"
    namespace = dict(generated.namespace)
    namespace["_bad_input"] = _bad_input_factory(name, checks)
    namespace["_no_value"] = _no_value_factory(name, no_value)
    exec(compile(generated.source, filename, "exec"), namespace)  # our source, built from the checked IR
    # Register the source so tracebacks through generated code show its lines.
    linecache.cache[filename] = (len(generated.source), None, generated.source.splitlines(True), filename)
    cls = type(f"Program[{name}]", (Program,), {"__slots__": (), "__call__": namespace[generated.entry]})
    readers = {
        n: tuple(dict.fromkeys(f"{op.path}.{port.name}" for op, port in consumers(v)))
        for n, v in lowered.inputs.items()
        if v.readers
    }
    ports = (input_ports(lowered), output_ports(lowered))
    program: Program = cls(
        block, report, generated, filename, ports, readers, schedule or _Deferred(lowered, max_streams)
    )
    program.fused = tuple(fused)
    return program

"""Programs: the compiled, immutable, callable result of `df.compile`.

Each program is an instance of its own small subclass of `Program` whose `__call__` is the generated
function: keywords bind straight to its parameters, values live in its locals, and a call costs about
what the hand-written code costs. `prog.run` is that function bound to the program: calling it skips the
keyword dict CPython builds to call an instance. Everything unusual goes through the slow paths here.
Programs are immutable, and pickle as their block and compile options (they compile again on loading).
"""

from __future__ import annotations

import functools
import itertools
import linecache
from collections.abc import Callable, Iterable, Mapping
from types import MethodType, TracebackType
from typing import Any, NoReturn, overload

from dfgraph import types
from dfgraph.boundary import bad_input_factory as _bad_input_factory
from dfgraph.capture import CaptureError, Segment
from dfgraph.check import Codes, Rules
from dfgraph.codegen import (
    MISSING,
    Generated,
    LineInfo,
    Unset,
    no_output_message,
    no_value_message,
    ports_text,
)
from dfgraph.cuda import runtime as cuda_runtime
from dfgraph.diagnostics import Report, did_you_mean
from dfgraph.errors import InputError, block_error
from dfgraph.hooks import Dispatcher, ProgressBar
from dfgraph.interpret import Interpreter
from dfgraph.ir import Lowered, consumers
from dfgraph.lowering import input_ports, output_ports
from dfgraph.passes import compile_ir
from dfgraph.ports import Port
from dfgraph.schedule import Schedule, max_streams_of, schedule_program

_serial = itertools.count(1)


class Program:
    """A compiled graph: call it with its inputs as keywords; thread-safe (all state is in locals)."""

    __slots__ = (
        "_events",
        "_hooks",
        "_ident_of",
        "_index",
        "_lines",
        "_options",
        "_readers",
        "_schedule",
        "_variants",
        "block",
        "filename",
        "fused",
        "inputs",
        "name",
        "outputs",
        "report",
        "run",
        "segments",
        "source",
    )
    block: Any
    name: str
    report: Report
    source: str
    filename: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    fused: tuple[tuple[str, str], ...]
    segments: tuple[Segment, ...]
    run: Callable[..., Any]
    """The fast call path: the generated function bound to this program; `prog.run(**inputs)` does
    what `prog(**inputs)` does, without CPython's keyword dict for calling an instance."""
    _lines: Mapping[int, LineInfo]
    _index: dict[str, int]
    _ident_of: dict[str, str]
    _readers: dict[str, tuple[str, ...]]
    _schedule: Schedule | _Deferred
    _options: dict[str, Any]
    _hooks: Dispatcher | None
    _events: frozenset[str]
    _variants: dict[frozenset[str], Program]

    def __init__(
        self,
        block: Any,
        report: Report,
        generated: Generated,
        filename: str,
        ports: tuple[tuple[Port, ...], tuple[Port, ...]],
        readers: Mapping[str, tuple[str, ...]],
        schedule: Schedule | _Deferred,
        options: Mapping[str, Any] | None = None,
        fused: tuple[tuple[str, str], ...] = (),
        hooks: Dispatcher | None = None,
    ) -> None:
        init = functools.partial(object.__setattr__, self)  # the only writes: a Program is immutable
        init("block", block)
        init("name", str(getattr(block, "name", "program")))
        init("report", report)
        init("source", generated.source)
        init("filename", filename)
        init("inputs", ports[0])
        init("outputs", ports[1])
        init("_lines", generated.lines)
        init("_index", {name: i for i, name in enumerate(generated.output_names)})
        init("_ident_of", dict(generated.params))  # input name -> parameter of the generated __call__
        init("_readers", dict(readers))
        init("_schedule", schedule)
        init("_options", dict(options or {}))  # df.compile's keywords, to recompile on unpickling
        init("fused", fused)  # the pairs of calls batch fusion merged
        init("segments", generated.segments)  # capture=True: the captured runs of blocks (dfgraph.capture)
        init("_hooks", hooks)  # what the generated code calls for the events in `_events`
        init("_events", generated.events)
        # compiled variants of this program emitting more hook events, shared by its with_hooks copies
        init("_variants", {generated.events: self})
        # The fast call path: the generated function bound to this program. Calling a bound method is a
        # plain vectorcall; calling an instance with keywords makes CPython build a kwargs dict first.
        init("run", MethodType(type(self).__call__, self))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Program {self.name!r} is immutable: cannot assign {name!r}; compile anew")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Program {self.name!r} is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its definition and compile options; unpickling compiles it again."""
        return (_recompile, (self.block, self._options))

    def __copy__(self) -> Program:
        """The program itself: it is immutable, so a shallow copy need not be another object."""
        return self

    @property
    def hooks(self) -> tuple[object, ...]:
        """The hooks this program calls (df.compile's, with_hooks', and the progress bar of progress=True)."""
        return () if self._hooks is None else self._hooks.hooks

    def with_hooks(self, *hooks: object) -> Program:
        """A program that also calls `hooks` (dfgraph.hooks), sharing this one's compiled code when it
        already calls every event they listen to (else a variant compiled once and cached)."""
        return self._calling((*self.hooks, *hooks), {"hooks": (*self._options.get("hooks", ()), *hooks)})

    def with_progress(self, show: bool = True, loops: Iterable[str] | None = None) -> Program:
        """This program with progress bars on (over `loops`; by default the `progress=True` loops, or every
        loop when none is) or off (`show=False`) for the calls made through it; nothing is rebuilt."""
        bars = [hook for hook in self.hooks if isinstance(hook, ProgressBar)]
        kept = tuple(hook for hook in self.hooks if not isinstance(hook, ProgressBar))
        given = tuple(h for h in self._options.get("hooks", ()) if not isinstance(h, ProgressBar))
        if show:
            if loops is None and bars and all(bar.loops is not None for bar in bars):
                loops = sorted({path for bar in bars for path in bar.loops or ()})
            bar = ProgressBar(loops)
            kept, given = (*kept, bar), (*given, bar)
        return self._calling(kept, {"hooks": given, "progress": False})

    def _calling(self, hooks: tuple[object, ...], options: Mapping[str, Any]) -> Program:
        """This program calling exactly `hooks` (its compile options updated by `options`), sharing the
        compiled code when it already calls every event they listen to (else a cached variant)."""
        options = {**self._options, **options}
        dispatcher = Dispatcher(hooks)
        wanted = dispatcher.events - {"error"}
        source: Program = self
        if not wanted <= self._events:
            events = wanted | self._events
            variant = self._variants.get(events)
            if variant is None:
                variant = compile_block(self.block, **options)
                variant = self._variants.setdefault(variant._events, variant)
            source = variant
        program: Program = object.__new__(type(source))
        for name in Program.__slots__:
            object.__setattr__(program, name, getattr(source, name))
        object.__setattr__(program, "_hooks", dispatcher)
        object.__setattr__(program, "_variants", self._variants)
        object.__setattr__(program, "_options", options)
        object.__setattr__(program, "run", MethodType(type(program).__call__, program))
        return program

    @property
    def schedule(self) -> Schedule:
        """The stream schedule of every loop body (on the CPU computed on first use; execution is serial)."""
        schedule = self._schedule
        if isinstance(schedule, _Deferred):
            schedule = schedule.compute()
            object.__setattr__(self, "_schedule", schedule)  # a cache, computed on first use
        return schedule

    @property
    def captured(self) -> tuple[tuple[str, ...], ...]:
        """With capture=True, the block paths of each loop-body segment run as a CUDA graph."""
        return tuple(segment.paths for segment in self.segments)

    # Typed by output=: one name gives its value (Any), None or a list of names a mapping.
    @overload
    def __call__(self, /, *args: Any, output: str, **inputs: Any) -> Any: ...
    @overload
    def __call__(
        self, /, *args: Any, output: Iterable[str] | None = None, **inputs: Any
    ) -> Mapping[str, Any]: ...
    def __call__(self, /, *args: Any, output: str | Iterable[str] | None = None, **inputs: Any) -> Any:
        """Run the program: `output=None` maps every output, a name gives its value, names a mapping."""
        # Replaced in each compiled program's class by the generated function; this generic form
        # reaches it through the slow path.
        return self._slow_call(args, inputs, output, {})

    def interpret(self, /, *args: Any, output: str | Iterable[str] | None = None, **inputs: Any) -> Any:
        """Run the definition in the reference interpreter (a debugging mode): same results, same errors."""
        return Interpreter(self).run(*args, output=output, **inputs)

    @property
    def doc(self) -> str:
        """Inputs with types, defaults and docs; outputs with types; each switch with its cases and the
        inputs each case needs (dfgraph.control.switches_text)."""
        from dfgraph.control import switches_text
        from dfgraph.ports import WHEN_CHOSEN

        lines = [f"{self.name}({ports_text(self.inputs)})", "", "Inputs:"]
        for p in self.inputs:
            default = "required" if p.required else f"default {p.default!r}"
            if p.default is WHEN_CHOSEN:
                default = "required when a case reading it is chosen"
            readers = ", ".join(self._readers.get(p.name, ()))
            doc = f" — {p.doc}" if p.doc else ""
            lines.append(f"  {p.name}: {types.describe(p.type)} ({default}){doc}  [read by {readers}]")
        if not self.inputs:
            lines.append("  (none)")
        lines.append("Outputs:")
        lines.extend(f"  {p.name}: {types.describe(p.type)}" for p in self.outputs)
        if not self.outputs:
            lines.append("  (none)")
        switches = switches_text(self.block)
        if switches:
            lines.append(switches)
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """A notebook shows the graph: SVG when Graphviz's `dot` is installed, else Mermaid markdown."""
        from dfgraph.render import mimebundle  # on first use: `import dfgraph` does not pay for it

        return mimebundle(self)

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

    def _check_output(self, output: object) -> str | tuple[str, ...]:
        """`output=` read once: a name (a str subclass becomes a str) or a tuple of names; else InputError."""
        if isinstance(output, str):
            if output not in self._index:
                raise self._unknown_output(output)
            return str(output)
        if isinstance(output, bytes | bytearray | Mapping) or not isinstance(output, Iterable):
            raise InputError(f"{self.name}: output= takes a name or a list of names, got {output!r}")
        names = tuple(output)  # read exactly once: a generator is not consumed by the check
        for name in names:
            if not isinstance(name, str) or name not in self._index:
                raise self._unknown_output(name)
        return tuple(str(name) for name in names)

    def _unknown_output(self, name: object) -> InputError:
        return InputError(
            f"{self.name}: no output {name!r}{did_you_mean(str(name), self._index)}; "
            f"the outputs are: {', '.join(self._index) or '(none)'}"
        )

    def _select(self, output: Any, values: tuple[Any, ...]) -> Any:
        """The value of one output, or a mapping of several; asking for one that has no value raises."""
        names = [output] if isinstance(output, str) else output
        selected = {name: values[self._index[name]] for name in names}
        for name, value in selected.items():
            if isinstance(value, Unset):  # named explicitly, so refused rather than left out
                raise InputError(no_output_message(self.name, name, value))
        return selected[output] if isinstance(output, str) else selected

    @staticmethod
    def _defined(outputs: dict[str, Any]) -> dict[str, Any]:
        """output=None: every output that has a value (a loop that ran zero times may leave some out)."""
        return {name: value for name, value in outputs.items() if not isinstance(value, Unset)}

    def _reraise(self, exc: Exception) -> NoReturn:
        error = self._translate(exc)
        if self._hooks is not None:
            self._hooks.error(error)
        if error is exc:
            raise exc
        raise error from error.__cause__ or exc

    def _translate(self, exc: Exception) -> Exception:
        """A BlockError naming the block path and loop iterations, from the generated frames' lines.

        A BlockError from a nested Program (a block that is itself a Program) is merged into one: the
        full path (this program's path of the block, then the inner path below its root), every
        iteration outer to inner, and the original exception as `__cause__`."""
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
        return block_error(exc, innermost.path, iterations)


def _recompile(block: Any, options: Mapping[str, Any]) -> Program:
    """Unpickling a Program: compile its definition again with the same options."""
    return compile_block(block, **options)


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


def _no_value_factory(name: str, readers: list[str]) -> Any:
    def _no_value(k: int, unset: Unset | None = None) -> None:
        # without `unset`, readers[k] is a whole message (an iterator refused as an inner over=)
        raise InputError(
            f"{name}: {readers[k]}" if unset is None else no_value_message(name, unset, readers[k])
        )

    return _no_value


def compile_block(
    block: Any,
    *,
    device: str | None = None,
    streams: str | int = "auto",
    fuse: bool = True,
    capture: bool = False,
    ignore: Codes = None,
    errors: Codes = None,
    select: Codes = None,
    hooks: Iterable[object] = (),
    progress: bool = True,
) -> Program:
    """Check a block and compile it to a Program; raises WiringError listing every error.

    `ignore`, `errors` and `select` are as for `df.check`: an ignored error no longer stops compilation.
    `hooks` (dfgraph.hooks) are called on the events they listen to; the source calls no other.
    `progress=False` drops the bars of the `progress=True` loops (Program.with_progress does it per call)."""
    hooks = tuple(hooks)
    rules = Rules.of(ignore, errors, select)
    max_streams = max_streams_of(streams)
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device= takes None, 'cpu' or 'cuda', got {device!r}")
    if capture and device != "cuda":
        raise ValueError(
            f"capture=True records CUDA graphs, so it needs device='cuda' (got device={device!r})"
        )
    rt = cuda_runtime() if device == "cuda" else None
    c = compile_ir(
        block,
        rules=rules,
        fuse=fuse,
        max_streams=max_streams,
        runtime=rt,
        capture=capture,
        hooks=hooks,
        progress=progress,
    )
    lowered, report, schedule, generated = c.lowered, c.report, c.schedule, c.generated
    checks, no_value, fused, dispatcher = c.checks, c.no_value, c.fused, c.dispatcher
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
    options: dict[str, Any] = {
        "device": device,
        "streams": streams,
        "fuse": fuse,
        "capture": capture,
        # the validated codes, so a generator given as ignore= survives pickling
        "ignore": tuple(sorted(rules.ignore)),
        "errors": tuple(sorted(rules.errors)),
        "select": None if rules.select is None else tuple(sorted(rules.select)),
    }
    if hooks:
        options["hooks"] = hooks
    if not progress:
        options["progress"] = False
    program: Program = cls(
        block,
        report,
        generated,
        filename,
        ports,
        readers,
        schedule or _Deferred(lowered, max_streams),
        options,
        tuple(fused),
        dispatcher,
    )
    return program

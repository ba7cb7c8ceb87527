"""Programs: the compiled, immutable, callable result of `df.compile`."""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from dfgraph import types
from dfgraph.check import analyse
from dfgraph.codegen import UNSET, Generated, InputCheck, generate, ports_text
from dfgraph.diagnostics import Report, did_you_mean
from dfgraph.errors import BlockError, InputError, WiringError
from dfgraph.ir import consumers, input_ports, output_ports
from dfgraph.ports import Port

_serial = itertools.count(1)


class Program:
    """A compiled graph: call it with its inputs as keywords; thread-safe (all state is in locals)."""

    __slots__ = (
        "_fn",
        "_index",
        "_lines",
        "_params",
        "_readers",
        "_rename",
        "_unset",
        "block",
        "filename",
        "inputs",
        "name",
        "outputs",
        "report",
        "source",
    )

    def __init__(
        self,
        block: Any,
        report: Report,
        generated: Generated,
        inputs: tuple[Port, ...],
        outputs: tuple[Port, ...],
        readers: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.block = block
        self.name: str = str(getattr(block, "name", "program"))
        self.report = report
        self.source = generated.source
        self.inputs = inputs
        self.outputs = outputs
        self.filename = f"<dfgraph {self.name} #{next(_serial)}>"
        code = compile(generated.source, self.filename, "exec")
        namespace = dict(generated.namespace)
        exec(code, namespace)  # the generated source is ours, built from the checked IR
        self._fn = namespace[generated.entry]
        self._lines = generated.lines
        self._index = {name: i for i, name in enumerate(generated.output_names)}
        self._unset = generated.maybe_unset
        self._params = generated.params
        self._readers = dict(readers)
        renamed = {name: ident for name, ident in generated.params if name != ident}
        self._rename = renamed or None
        # Register the source so tracebacks through generated code show its lines.
        linecache.cache[self.filename] = (len(self.source), None, self.source.splitlines(True), self.filename)

    def __call__(self, /, *args: Any, output: str | Iterable[str] | None = None, **inputs: Any) -> Any:
        """Run the program: `output=None` maps every output, a name gives its value, names a mapping."""
        if args:
            raise InputError(f"{self.name}: pass inputs by keyword ({ports_text(self.inputs)})")
        pick: int | tuple[tuple[str, int], ...] | None
        if output is None:
            pick = None
        elif output.__class__ is str:
            pick = self._index.get(output)
            if pick is None:
                raise self._unknown_output(str(output))
        else:
            pick = self._pick_many(output)
        try:
            result = self._fn(**inputs) if self._rename is None else self._fn(**self._renamed(inputs))
        except Exception as exc:
            error = self._translate(exc, inputs)
            if error is exc:
                raise
            raise error from (None if isinstance(error, InputError) else exc)
        if pick is None:
            names = self._index
            if self._unset:
                return {n: v for n, v in zip(names, result, strict=True) if v is not UNSET}
            return dict(zip(names, result, strict=True))
        if isinstance(pick, int):
            value = result[pick]
            if value is UNSET:
                raise InputError(
                    f"{self.name}: output {output!r} has no value: the loop that writes it ran "
                    "zero times and it is not carried"
                )
            return value
        return {name: result[i] for name, i in pick}

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

    # -- calls that go wrong ------------------------------------------------------------------------

    def _renamed(self, inputs: dict[str, Any]) -> dict[str, Any]:
        rename = self._rename or {}
        return {rename.get(k, k): v for k, v in inputs.items()}

    def _unknown_output(self, name: object) -> InputError:
        return InputError(
            f"{self.name}: no output {name!r}{did_you_mean(str(name), self._index)}; "
            f"the outputs are: {', '.join(self._index) or '(none)'}"
        )

    def _pick_many(self, output: object) -> tuple[tuple[str, int], ...]:
        if not isinstance(output, Iterable):
            raise InputError(f"{self.name}: output= takes a name or a list of names, got {output!r}")
        picked = []
        for name in output:
            index = self._index.get(name) if isinstance(name, str) else None
            if index is None:
                raise self._unknown_output(name)
            picked.append((name, index))
        return tuple(picked)

    def _translate(self, exc: Exception, inputs: Mapping[str, Any]) -> Exception:
        tb = exc.__traceback__
        if isinstance(exc, TypeError) and tb is not None and tb.tb_next is None:
            return self._binding_error(inputs) or exc  # Python refused the arguments: say which
        frames = [t for t in _walk(tb) if t.tb_frame.f_code.co_filename == self.filename]
        infos = [(t, self._lines.get(t.tb_lineno)) for t in frames]
        innermost = infos[-1][1] if infos else None
        if innermost is None:
            return exc  # raised by the boundary checks, already a clear InputError
        iterations: list[tuple[str, int]] = []
        for t, info in infos:
            if info is None:
                continue
            for loop_path, ident in info.loops:
                index = t.tb_frame.f_locals.get(ident)
                if isinstance(index, int):
                    iterations.append((loop_path, index))
        path = innermost.path
        where = ""
        if iterations:
            where = " (" + ", ".join(f"iteration {i} of loop {p!r}" for p, i in reversed(iterations)) + ")"
        message = f"block {path!r} raised {type(exc).__name__}: {exc}{where}"
        return BlockError(message, path, tuple(iterations))

    def _binding_error(self, inputs: Mapping[str, Any]) -> InputError | None:
        known = {p.name: p for p in self.inputs}
        problems = []
        missing = [p for p in self.inputs if p.required and p.name not in inputs]
        for p in missing:
            readers = ", ".join(self._readers.get(p.name, ())) or "the graph"
            problems.append(f"missing input {p.name!r} ({types.describe(p.type)}), read by {readers}")
        for name in inputs:
            if name not in known:
                problems.append(f"unknown input {name!r}{did_you_mean(name, known)}")
        if not problems:
            return None
        return InputError(f"{self.name}: " + "; ".join(problems) + f". Inputs: {ports_text(self.inputs)}")


def _walk(tb: TracebackType | None) -> Iterable[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _bad_input_factory(name: str, checks: list[InputCheck]) -> Any:
    def _bad_input(k: int, value: Any) -> None:
        check = checks[k]
        readers = ", ".join(check.readers)
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InputError(
            f"{name}: input {check.name!r} must be {types.describe(check.hint)} (read by {readers}), "
            f"got {type(value).__name__}: {shown}"
        )

    return _bad_input


def _no_value_factory(name: str, messages: list[str]) -> Any:
    def _no_value(k: int) -> None:
        raise InputError(f"{name}: {messages[k]}")

    return _no_value


def compile_block(block: Any) -> Program:
    """Check a block and compile it to a Program; raises WiringError listing every error."""
    lowered, report = analyse(block)
    if lowered is None or not report.ok:
        raise WiringError(report)
    generated, checks, no_value = generate(lowered)
    name = str(getattr(block, "name", "program"))
    generated.namespace["_bad_input"] = _bad_input_factory(name, checks)
    generated.namespace["_no_value"] = _no_value_factory(name, no_value)
    readers = {
        n: tuple(dict.fromkeys(f"{op.path}.{port.name}" for op, port in consumers(v)))
        for n, v in lowered.inputs.items()
        if v.readers
    }
    return Program(block, report, generated, input_ports(lowered), output_ports(lowered), readers)

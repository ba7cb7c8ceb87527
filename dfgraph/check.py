"""The checker: types, shapes and dtypes on every edge of the lowered IR, in one pass."""

from __future__ import annotations

import contextlib
import difflib
import gc
import traceback
from collections.abc import Hashable, Iterator
from typing import Any

from dfgraph import shapes, types
from dfgraph.block import safe_repr
from dfgraph.compose import block_name, is_block
from dfgraph.diagnostics import Diagnostic, Report, Severity
from dfgraph.errors import WiringError
from dfgraph.ir import CallOp, Carried, LoopOp, Lowered, Op, Value, consumers, lower, same_default
from dfgraph.ports import Port

RESERVED_INPUTS = frozenset({"output"})  # Program.__call__ takes it


class _Checker:
    def __init__(self, lowered: Lowered) -> None:
        self.lowered = lowered
        self.diagnostics: list[Diagnostic] = []
        self.solver = shapes.ShapeSolver()
        self.carried: dict[int, Carried] = {}
        self.changed: set[int] = set()  # phis already reported as DF101: once per carried name

    def error(self, code: str, path: str, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, path, message, hint))

    def warn(self, code: str, path: str, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(code, Severity.WARNING, path, message, hint))

    def run(self) -> list[Diagnostic]:
        ops = list(self.lowered.ops())
        for op in ops:
            if isinstance(op, LoopOp):
                self.carried.update((c.phi.id, c) for c in op.carried)
        for op in ops:
            if isinstance(op, LoopOp):
                self._loop(op)
            elif isinstance(op, CallOp):
                for slot in op.inputs:
                    self._edge(slot.value, slot.port, op.id, f"{op.path}.{slot.port.name}")
        self._external_inputs()
        return self.diagnostics

    def _loop(self, op: LoopOp) -> None:
        control = op.inputs[0]
        if control.value.kind not in ("input", "error"):
            self._edge(control.value, control.port, op.id, f"{op.path} ({op.loop.control!r})")
        for out in op.outs:
            spec = shapes.array_spec(out.value.type)
            for source in (out.final, out.init):
                if source is not None and spec is not None:
                    self._shapes(source, spec, ("v", out.value.id), f"{op.path}.{out.value.name}")

    def _edge(self, value: Value, port: Port, scope: Hashable, where: str) -> None:
        if value.kind == "error":
            return
        if value.kind == "input":
            spec = shapes.array_spec(port.type)
            if spec is not None:
                reference = shapes.array_spec(value.type) or spec
                self._report_shapes(self.solver.unify(reference, ("v", value.id), spec, scope, where), where)
            return
        if value.kind == "carry":
            carried = self.carried[value.id]
            self._edge(carried.init, port, scope, where)  # the init may itself be an outer loop's phi
            if not types.is_assignable(carried.final.type, port.type):
                if value.id in self.changed:
                    return
                self.changed.add(value.id)
                self.error(
                    "DF101",
                    where,
                    f"loop-carried {value.name!r} changes type across an iteration: {where} reads it as "
                    f"{types.describe(port.type)}, but {carried.final.where} writes "
                    f"{types.describe(carried.final.type)} for the next iteration",
                    f"make {carried.final.where} return {types.describe(port.type)}, "
                    f"or widen {where} to accept {types.describe(carried.final.type)}",
                )
            else:
                self._typed(carried.final, port, scope, where, type_checked=True)
            return
        self._typed(value, port, scope, where)

    def _typed(
        self, value: Value, port: Port, scope: Hashable, where: str, *, type_checked: bool = False
    ) -> None:
        if value.kind == "error":
            return
        if not type_checked and value.kind != "input" and not types.is_assignable(value.type, port.type):
            self.error(
                "DF001",
                where,
                f"{value.name!r} is {types.describe(value.type)} (from {value.where}) but {where} expects "
                f"{types.describe(port.type)}",
                "change one of the annotations, or convert the value in a block between them",
            )
            return
        spec = shapes.array_spec(port.type)
        if spec is not None:
            self._shapes(value, spec, scope, where)

    def _shapes(self, value: Value, consumer: shapes.ArraySpec, scope: Hashable, where: str) -> None:
        producer = shapes.array_spec(value.type)
        if producer is None:
            return
        conflict = shapes.dtype_conflict(producer, consumer)
        if conflict is not None:
            self.error(
                "DF302",
                where,
                f"{value.name!r} from {value.where}: {conflict}",
                "cast the tensor, or widen one dtype annotation (e.g. Float, Shaped)",
            )
        self._report_shapes(self.solver.unify(producer, _scope(value), consumer, scope, where), where)

    def _report_shapes(self, conflicts: list[str], where: str) -> None:
        for message in conflicts:
            self.error(
                "DF301",
                where,
                message,
                "make the tensor annotations agree, or fix the block that produces the wrong shape",
            )

    def _external_inputs(self) -> None:
        position: dict[int, int] = {}
        first_write: dict[str, int] = {}  # name -> program position of its first writer
        for k, op in enumerate(self.lowered.ops()):
            position[op.id] = k
            for v in op.outputs:
                first_write.setdefault(v.name, k)
        produced = set(first_write)
        root = self.lowered.name
        for name, value in self.lowered.inputs.items():
            readers = [(op.path, port) for op, port in consumers(value)]
            if not readers:
                continue
            if name in RESERVED_INPUTS:
                self.error(
                    "DF006",
                    f"{readers[0][0]}.{name}",
                    f"input name {name!r} is reserved: Program.__call__ takes output= to select outputs",
                    f"rename the port {name!r}",
                )
            hints = [p.type for _, p in readers]
            if types.narrow(hints) is None and _any_disjoint(hints):
                shown = ", ".join(f"{types.describe(p.type)} by {path}.{p.name}" for path, p in readers)
                self.error(
                    "DF002",
                    root,
                    f"input {name!r} is read as {shown}; no single type satisfies them all",
                    "give the readers compatible annotations, or feed them from different inputs",
                )
            defaults = [p.default for _, p in readers]
            if all(not p.required for _, p in readers) and not all(
                same_default(defaults[0], d) for d in defaults
            ):
                shown = ", ".join(
                    f"{safe_repr(d)} at {path}" for d, (path, _) in zip(defaults, readers, strict=True)
                )
                self.warn(
                    "DF206",
                    root,
                    f"the readers of input {name!r} give different defaults ({shown}), so "
                    f"{name!r} is required",
                    "give the readers the same default, or always pass it",
                )
            if name not in produced:
                # only a name written before the first reader, or in a loop around a reader (a carry),
                # could feed it: anything else would stay an input after the rename
                close = difflib.get_close_matches(name, sorted(produced), n=5, cutoff=0.8)
                if close:
                    first_read = min(position[op.id] for op, _ in consumers(value))
                    around = {n for op, _ in consumers(value) for n in _written_in_loops_around(op)}
                    close = [c for c in close if first_write[c] < first_read or c in around]
                if close:
                    self.warn(
                        "DF207",
                        f"{readers[0][0]}.{name}",
                        f"{name!r} is read but no block writes it, so it is a graph input; "
                        f"did you mean {close[0]!r}, which a block writes?",
                        f"rename the input to {close[0]!r} if it should come from inside the graph",
                    )


def _written_in_loops_around(op: Op) -> set[str]:
    """The names written inside the loops that contain `op`."""
    names: set[str] = set()
    loop = op.region.owner
    while loop is not None:
        names.update(v.name for inner in loop.body.walk() for v in inner.outputs)
        loop = loop.region.owner
    return names


def _scope(value: Value) -> Hashable:
    """Dim variables are shared by all ports of one block call; other values get their own scope."""
    if isinstance(value.producer, CallOp) and value.kind == "op":
        return ("op", value.producer.id)
    return ("v", value.id)


def _any_disjoint(hints: list[Any]) -> bool:
    distinct = list({id(h): h for h in hints}.values())
    return any(types.disjoint(a, b) for i, a in enumerate(distinct) for b in distinct[i + 1 :])


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the IR is millions of fresh objects in cycles, and repeated full scans
    of them made checking big graphs several times slower. The previous state is restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def analyse(blk: Any) -> tuple[Lowered | None, Report]:
    """Lower and check a block; never raises (an internal failure is reported as DF000)."""
    with gc_paused():
        return _analyse(blk)


def _analyse(blk: Any) -> tuple[Lowered | None, Report]:
    if not is_block(blk):
        d = Diagnostic(
            "DF006",
            Severity.ERROR,
            safe_repr(blk),
            f"{safe_repr(blk)} is not a block",
            "pass a @df.block function or class instance, or a df.Sequential / df.Loop / df.Graph",
        )
        return None, Report((d,))
    try:
        block_name(blk, safe_repr(blk))  # the root's name is the first segment of every path
        lowered = lower(blk)
        diagnostics = lowered.diagnostics + _Checker(lowered).run()
    except WiringError as exc:  # a malformed definition found while deriving an interface
        return None, exc.report
    except Exception as exc:
        where = "".join(traceback.format_exception_only(exc)).strip()
        d = Diagnostic(
            "DF000",
            Severity.ERROR,
            _label(blk),
            f"internal error in the checker: {where}",
            "please report this as a dfgraph bug",
        )
        return None, Report((d,))
    unique = list(dict.fromkeys(diagnostics))
    return lowered, Report(tuple(unique))


def _label(blk: Any) -> str:
    """The block's name when it can be read as a str, else a safe repr."""
    try:
        name = getattr(blk, "name", None)
    except Exception:
        name = None
    return name if isinstance(name, str) else safe_repr(blk)


def check(blk: Any) -> Report:
    """Check a block's wiring, types and shapes; never raises. `.ok`, `.errors`, `.warnings`, `str()`."""
    return analyse(blk)[1]

"""The checker: types, shapes and dtypes on every edge of the lowered IR, in one pass."""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import attrs

from dfgraph import shapes, types
from dfgraph.block import safe_repr
from dfgraph.compose import block_name, is_block
from dfgraph.diagnostics import (
    REGISTRY,
    TYPE_CODES,
    Diagnostic,
    Report,
    Severity,
    Site,
    did_you_mean,
    select_codes,
)
from dfgraph.errors import WiringError
from dfgraph.ir import (
    CallOp,
    Carried,
    IRError,
    LoopOp,
    Lowered,
    Op,
    SwitchOp,
    Value,
    consumers,
    gc_paused,
    same_default,
)
from dfgraph.lowering import lower
from dfgraph.ports import Port

__all__ = [
    "RESERVED_INPUTS",
    "Codes",
    "Rules",
    "analyse",
    "apply_rules",
    "check",
    "check_ir",
    "gc_paused",  # it lives in dfgraph.ir now; re-exported for the importers it had here
]

RESERVED_INPUTS = frozenset({"output"})  # Program.__call__ takes it


class _Checker:
    def __init__(self, lowered: Lowered) -> None:
        self.lowered = lowered
        self.diagnostics: list[Diagnostic] = []
        self.solver = shapes.ShapeSolver()
        self.carried: dict[int, Carried] = {}
        self.changed: set[int] = set()  # phis already reported as DF101: once per carried name

        self.at: tuple[Site, ...] = ()  # the port being checked: where suppressions are looked up

    def error(self, code: str, path: str, message: str, hint: str = "", sites: tuple[Site, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, path, message, hint, self.at + sites))

    def warn(self, code: str, path: str, message: str, hint: str = "", sites: tuple[Site, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, Severity.WARNING, path, message, hint, sites))

    def run(self) -> list[Diagnostic]:
        ops = list(self.lowered.ops())
        for op in ops:
            if isinstance(op, LoopOp):
                self.carried.update((c.phi.id, c) for c in op.carried)
        for op in ops:
            if isinstance(op, LoopOp):
                self._loop(op)
            elif isinstance(op, SwitchOp):
                self._switch(op)
            elif isinstance(op, CallOp):
                for slot in op.inputs:
                    self.at = (Site(op.path, slot.port.name, "input"),)
                    self._edge(slot.value, slot.port, op.id, f"{op.path}.{slot.port.name}")
        self.at = ()
        self._external_inputs()
        return self.diagnostics

    def _loop(self, op: LoopOp) -> None:
        control = op.inputs[0]
        self.at = (Site(op.path),)
        if control.value.kind not in ("input", "error"):
            self._edge(control.value, control.port, op.id, f"{op.path} ({op.loop.control!r})")
        for out in op.outs:
            spec = shapes.array_spec(out.value.type)
            for source in (out.final, out.init):
                if source is not None and spec is not None:
                    self._shapes(source, spec, ("v", out.value.id), f"{op.path}.{out.value.name}")

        until = op.until_value
        if until is not None and until.kind != "error" and not types.is_assignable(until.type, bool):
            self.error(
                "DF404",
                op.path,
                f"until= of loop {op.path!r} names {until.name!r}, which {until.where} writes as "
                f"{types.describe(until.type)}, not bool",
                f"make {until.where} return bool (True ends the loop)",
                _produced_at(until),
            )

    def _switch(self, op: SwitchOp) -> None:
        """The key is a str; Literal keys match the cases; no one reads a name only some cases write."""
        key = op.inputs[0]
        self.at = (Site(op.path),)
        if key.value.kind not in ("input", "error"):
            self._edge(key.value, key.port, op.id, f"{op.path} (key)")
        self.at = ()
        values = types.literal_values(key.value.type)
        if values is not None:
            cases = list(op.switch.cases)
            for value in values:
                if value not in cases:
                    self.error(
                        "DF402",
                        op.path,
                        f"switch {op.path!r} is on {key.value.name!r} ({types.describe(key.value.type)}), "
                        f"but no case handles {value!r}" + did_you_mean(str(value), cases),
                        f"add a case {value!r}, or narrow the key's type",
                        _produced_at(key.value),
                    )
            for case in cases:
                if case not in values:
                    self.warn(
                        "DF403",
                        f"{op.path}/{case}",
                        f"case {case!r} of switch {op.path!r} is never chosen: the key "
                        f"{key.value.name!r} is {types.describe(key.value.type)}",
                        "remove the case, or widen the key's type",
                    )
        for out in op.outs:
            if not out.partial:
                continue
            missing = [c.key for c, f in zip(op.cases, out.finals, strict=True) if f is None]
            for reader, k in out.value.readers:
                where = f"{reader.path}.{reader.inputs[k].port.name}"
                self.error(
                    "DF401",
                    where,
                    f"{where} reads {out.value.name!r}, which switch {op.path!r} writes only in some cases: "
                    f"{_cases(missing)} do{'es' if len(missing) == 1 else ''} not write it, and it has no "
                    "value before the switch",
                    f"write {out.value.name!r} in every case, or give it a value before the switch",
                    _produced_at(out.value),
                )

    def _edge(self, value: Value, port: Port, scope: Hashable, where: str) -> None:
        # A carried value's init may be an outer loop's phi, and so on outward: follow that chain in a
        # loop (loops nested 1,000 deep), then check from the outermost value inward.
        chain: list[Value] = []
        while value.kind == "carry":
            chain.append(value)
            value = self.carried[value.id].init
        if value.kind == "input":
            spec = shapes.array_spec(port.type)
            if spec is not None:
                reference = shapes.array_spec(value.type) or spec
                self._report_shapes(self.solver.unify(reference, ("v", value.id), spec, scope, where), where)
        elif value.kind != "error":
            self._typed(value, port, scope, where)
        for value in reversed(chain):
            carried = self.carried[value.id]
            if not types.is_assignable(carried.final.type, port.type):
                if value.id in self.changed:
                    continue
                self.changed.add(value.id)
                final, case = _wrong_case(carried.final, port.type)  # through a switch: the case at fault
                self.error(
                    "DF101",
                    where,
                    f"loop-carried {value.name!r} changes type across an iteration: {where} reads it as "
                    f"{types.describe(port.type)}, but {final.where}{case} writes "
                    f"{types.describe(final.type)} for the next iteration",
                    f"make {final.where} return {types.describe(port.type)}, "
                    f"or widen {where} to accept {types.describe(final.type)}",
                    _produced_at(final),
                )
            else:
                self._typed(carried.final, port, scope, where, type_checked=True)

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
                _produced_at(value),
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
                _produced_at(value),
            )
        conflicts = self.solver.unify(producer, _scope(value), consumer, scope, where)
        self._report_shapes(conflicts, where, _produced_at(value))

    def _report_shapes(self, conflicts: list[str], where: str, sites: tuple[Site, ...] = ()) -> None:
        for message in conflicts:
            self.error(
                "DF301",
                where,
                message,
                "make the tensor annotations agree, or fix the block that produces the wrong shape",
                sites,
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
            at = tuple(Site(path, port.name, "input") for path, port in readers)
            if name in RESERVED_INPUTS:
                self.error(
                    "DF006",
                    f"{readers[0][0]}.{name}",
                    f"input name {name!r} is reserved: Program.__call__ takes output= to select outputs",
                    f"rename the port {name!r}",
                    at,
                )
            hints = [p.type for _, p in readers]
            if types.narrow(list({id(h): h for h in hints}.values())) is None and _any_disjoint(hints):
                shown = ", ".join(f"{types.describe(p.type)} by {path}.{p.name}" for path, p in readers)
                self.error(
                    "DF002",
                    root,
                    f"input {name!r} is read as {shown}; no single type satisfies them all",
                    "give the readers compatible annotations, or feed them from different inputs",
                    at,
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
                    at,
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
                        at,
                    )


def _wrong_case(value: Value, expected: Any) -> tuple[Value, str]:
    """The value a switch case leaves that does not fit `expected` (through nested switches), and
    ' (case K of switch S)'; else `value` itself and '': DF101 names the case at fault."""
    case = ""
    while isinstance(value.producer, SwitchOp):
        op = value.producer
        out = next(o for o in op.outs if o.value is value)
        bad = next(
            (
                (f, c.key)
                for f, c in zip(out.finals, op.cases, strict=True)
                if f is not None and not types.is_assignable(f.type, expected)
            ),
            None,
        )
        if bad is None:
            break
        value, case = bad[0], f" (case {bad[1]!r} of switch {op.path!r})"
    return value, case


def _cases(keys: list[str]) -> str:
    """'case 'a'' or 'cases 'a', 'b''."""
    return f"case{'s' if len(keys) > 1 else ''} {', '.join(map(repr, keys))}"


def _produced_at(value: Value) -> tuple[Site, ...]:
    """The output port a value comes from, when a block or loop produced it."""
    if value.kind == "op" and value.producer is not None:
        return (Site(value.producer.path, value.name, "output"),)
    return ()


def _written_in_loops_around(op: Op) -> set[str]:
    """The names written inside the loops that contain `op`."""
    names: set[str] = set()
    loop = op.region.owner
    while loop is not None:
        if isinstance(loop, LoopOp):
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


def analyse(blk: Any, after_lower: Callable[[Lowered], None] | None = None) -> tuple[Lowered | None, Report]:
    """Lower and check a block; never raises (an internal failure is reported as DF000).

    `after_lower` sees the IR between the two passes (the pass list verifies it there); an IRError it
    raises propagates: a corrupt IR is a bug to show, not a diagnostic of the user's graph."""
    with gc_paused():
        return _analyse(blk, after_lower)


def check_ir(lowered: Lowered) -> list[Diagnostic]:
    """The check pass: types, shapes and dtypes on every edge of a lowered program."""
    return _Checker(lowered).run()


def _analyse(blk: Any, after_lower: Callable[[Lowered], None] | None) -> tuple[Lowered | None, Report]:
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
        if after_lower is not None:
            after_lower(lowered)
        diagnostics = lowered.diagnostics + check_ir(lowered)
    except WiringError as exc:  # a malformed definition found while deriving an interface
        return None, exc.report
    except IRError:
        raise
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


Codes = str | Iterable[str] | None


@attrs.frozen
class Rules:
    """What to do with findings: codes to ignore and to promote to errors, each with what asked for it."""

    ignore: dict[str, str] = attrs.field(factory=dict)  # code -> what ignores it (for --show-ignored)
    errors: frozenset[str] = frozenset()
    select: frozenset[str] | None = None  # when set, only these codes (and the fatal ones) are reported
    select_origin: str = "select="

    @classmethod
    def of(
        cls, ignore: Codes = None, errors: Codes = None, select: Codes = None, *, origin: str = ""
    ) -> Rules:
        """Validated rules (ValueError on an unknown or fatal code); `origin` prefixes the labels."""
        ignored = {code: f"{origin}ignore=" for code in select_codes(ignore)}
        chosen = None if select is None else select_codes(select, "select")
        return cls(ignored, select_codes(errors, "errors"), chosen, f"{origin}select=")


def apply_rules(lowered: Lowered | None, report: Report, rules: Rules | None = None) -> Report:
    """Apply `rules` and the suppressions blocks and ports carry; the suppressed go to `report.ignored`."""
    rules = rules or Rules()
    if not report.diagnostics:
        return report
    ops = {op.path: op for op in lowered.ops()} if lowered is not None else {}
    kept: list[Diagnostic] = []
    ignored = list(report.ignored)
    for d in report.diagnostics:
        by = "" if REGISTRY.get(d.code, REGISTRY["DF000"]).fatal else _suppressed_by(d, rules, ops)
        if by:
            ignored.append(attrs.evolve(d, suppressed_by=by))
        elif d.code in rules.errors and d.severity is not Severity.ERROR:
            kept.append(attrs.evolve(d, severity=Severity.ERROR))
        else:
            kept.append(d)
    return Report(tuple(kept), tuple(ignored))


def _suppressed_by(d: Diagnostic, rules: Rules, ops: dict[str, Op]) -> str:
    """What suppresses `d` ('' when nothing does): the rules first, then the blocks and ports it concerns."""
    if d.code in rules.ignore:
        label = rules.ignore[d.code]
        return f"{label}{'' if label.endswith('=') else ' '}{d.code}"
    if rules.select is not None and d.code not in rules.select:
        return f"{rules.select_origin} (not selected)"
    for site in d.sites or _sites_of_path(d.path, ops):  # the checker's sites are exact: sides known
        op = ops.get(site.path)
        if op is None:
            continue
        if d.code in _codes_of(getattr(op.block, "__dfgraph_ignore__", ())):
            return f"ignore= of block {site.path}" + _reason(op.block, "", d.code)
        if not site.port or not isinstance(op, CallOp):
            continue
        sides = ("inputs", "outputs") if not site.side else (f"{site.side}s",)
        for side in sides:
            for port in getattr(op.block, side, ()):
                if not isinstance(port, Port) or port.name != site.port:
                    continue
                if not port.check and d.code in TYPE_CODES:
                    return f"check=False of {site.side or 'port'} {site.path}.{site.port}"
                if d.code in port.ignore:
                    label = f"ignore= of {site.side or 'port'} {site.path}.{site.port}"
                    return label + _reason(op.block, port.name, d.code)
    return ""


def _reason(blk: Any, port: str, code: str) -> str:
    """': why' when the block explains the suppression (`__dfgraph_ignore_reasons__`: (port, code) -> why)."""
    try:
        reasons = getattr(blk, "__dfgraph_ignore_reasons__", None)
    except Exception:  # a proxy block whose attributes raise explains nothing
        return ""
    why = reasons.get((port, code)) if isinstance(reasons, dict) else None
    return f": {why}" if isinstance(why, str) and why else ""


def _sites_of_path(path: str, ops: dict[str, Op]) -> tuple[Site, ...]:
    """Where a diagnostic's path points: a block, or a port of one ('loop/step.x'); side unknown."""
    if path in ops:
        return (Site(path),)
    head, dot, port = path.rpartition(".")
    if dot and head in ops:
        return (Site(head, port),)
    head = path.partition(" (")[0]  # a loop's control edge: "loop ('num_steps')"
    return (Site(head),) if head in ops else ()


def _codes_of(raw: object) -> tuple[str, ...]:
    """A block's own suppressions: a tuple of codes (anything else suppresses nothing)."""
    return tuple(c for c in raw if isinstance(c, str)) if isinstance(raw, tuple | list | frozenset) else ()


def check(blk: Any, *, ignore: Codes = None, errors: Codes = None, select: Codes = None) -> Report:
    """Check a block's wiring, types and shapes; never raises on the graph (ValueError on a bad code).

    `ignore` codes are suppressed (kept in `report.ignored`), `errors` codes are promoted to errors,
    `select` reports only the codes it names; each takes a code, a prefix ("DF2") or an iterable."""
    rules = Rules.of(ignore, errors, select)
    return apply_rules(*analyse(blk), rules)


def _label(blk: Any) -> str:
    """The block's name when it can be read as a str, else a safe repr."""
    try:
        name = getattr(blk, "name", None)
    except Exception:
        name = None
    return name if isinstance(name, str) else safe_repr(blk)

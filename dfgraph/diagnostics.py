"""Diagnostics: the checker's findings, with stable codes, and the report that collects them."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from typing import Literal

import attrs


class Severity(enum.StrEnum):
    """How bad a finding is: errors stop compilation, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@attrs.frozen
class Code:
    """One registered diagnostic code: its default severity, what it means, and whether it can be ignored."""

    code: str
    severity: Severity
    meaning: str
    fatal: bool = False  # compiling without it is impossible, so it cannot be ignored


_E, _W = Severity.ERROR, Severity.WARNING

#: Every code the checker emits, in order; the README's diagnostics table is generated from it.
REGISTRY: dict[str, Code] = {
    c.code: c
    for c in (
        Code("DF000", _E, "internal error in the checker (a dfgraph bug: please report it)", fatal=True),
        Code(
            "DF001",
            _E,
            "type mismatch: producer type not assignable to consumer type (both ends and both types shown)",
        ),
        Code("DF002", _E, "one external input read with types no single type satisfies"),
        Code(
            "DF003",
            _E,
            "unknown name (Graph edge or output endpoint, `carry=`), with did-you-mean",
            fatal=True,
        ),
        Code("DF004", _E, "cycle outside a loop (the whole cycle path shown)", fatal=True),
        Code("DF005", _E, "an input driven by two producers; a graph output given twice", fatal=True),
        Code(
            "DF006",
            _E,
            "malformed definition: not a block, bad loop arguments, `*args` ports, bad `outputs=`, "
            "`batch=`, `mutates=`, `carry=`, Graph `edges=` or `outputs=` (a bare string where a tuple of "
            "names is expected included), an `async def` block, a name that breaks the naming rule (see "
            "Names), ports that are not `df.Port` or share a name, a block whose `name`, `inputs`, "
            "`outputs` or `mutates` cannot be read, the reserved input name `output`",
            fatal=True,
        ),
        Code(
            "DF101", _E, "loop-carried state changes type across an iteration (path and both types, fix hint)"
        ),
        Code("DF102", _E, "declared `carry=` differs from the inferred carry"),
        Code("DF103", _E, "loop body writes its index, item or loop-control input"),
        Code("DF201", _W, "value overwritten before anyone reads it"),
        Code("DF202", _W, "unannotated port (typed as `Any`)"),
        Code("DF203", _W, "unused Graph node: no edge reads its outputs and none is a graph output"),
        Code(
            "DF204",
            _W,
            "unknown or exotic annotation degraded to `Any` (e.g. an unresolvable forward reference)",
        ),
        Code(
            "DF205", _W, "an unwired Graph input that another node outputs (and could feed without a cycle)"
        ),
        Code("DF206", _W, "the readers of one input give different defaults, so it is required"),
        Code(
            "DF207",
            _W,
            "a graph input no block writes, with a name close to one a block writes (likely misspelt)",
        ),
        Code(
            "DF301",
            _E,
            "tensor shape mismatch (jaxtyping): fixed dims disagree, a named dim bound to two sizes, "
            "ranks differ",
        ),
        Code("DF302", _E, "tensor dtype mismatch (jaxtyping): the dtype families do not intersect"),
        Code(
            "DF401",
            _E,
            "a name only some cases of a Switch write (and that had no value before it) is read later; "
            "the cases that do not write it are named",
        ),
        Code("DF402", _E, "a Switch on a `Literal[...]` key: a key value with no case"),
        Code("DF403", _W, "a Switch on a `Literal[...]` key: a case no key value reaches"),
        Code("DF404", _E, "`until=` does not name a `bool` output of the loop body"),
        Code("DF405", _E, "a Switch selector without exactly one output (the key)"),
    )
}

#: The codes about a port's type or shape: what `df.Port(..., check=False)` suppresses at that port.
TYPE_CODES: frozenset[str] = frozenset({"DF001", "DF002", "DF101", "DF202", "DF204", "DF301", "DF302"})


def registry_table() -> str:
    """The registry as the README's markdown table (a test checks the README contains exactly this)."""
    rows = ["| code | severity | meaning |", "| --- | --- | --- |"]
    rows.extend(f"| {c.code} | {c.severity} | {c.meaning} |" for c in REGISTRY.values())
    return "\n".join(rows)


def select_codes(spec: str | Iterable[str] | None, what: str = "ignore") -> frozenset[str]:
    """The registered codes a selection names: a code, a prefix ("DF2" = every DF2xx) or an iterable of them.

    Raises ValueError naming an unknown code or prefix (with did-you-mean). Fatal codes (DF000, DF003-DF006)
    are refused by name for `what="ignore"`, and left out of a prefix: they are always reported."""
    if spec is None:
        return frozenset()
    items = [spec] if isinstance(spec, str) else list(spec)
    chosen: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{what}= takes diagnostic codes such as 'DF001', got {item!r}")
        text = item.strip().upper()
        if text in REGISTRY:
            if what == "ignore" and REGISTRY[text].fatal:
                raise ValueError(
                    f"{text} cannot be ignored: {REGISTRY[text].meaning}; without it the graph cannot be "
                    "compiled (fatal codes: " + ", ".join(fatal_codes()) + ")"
                )
            chosen.add(text)
            continue
        matched = (
            [c for c in REGISTRY if c.startswith(text)] if text.startswith("DF") and text != "DF" else []
        )
        if not matched:
            raise ValueError(f"{what}=: unknown diagnostic code {item!r}" + did_you_mean(text, REGISTRY))
        chosen.update(c for c in matched if not (what == "ignore" and REGISTRY[c].fatal))
    return frozenset(chosen)


def fatal_codes() -> list[str]:
    """The codes that can never be ignored: compiling without them is impossible."""
    return [c.code for c in REGISTRY.values() if c.fatal]


@attrs.frozen
class Site:
    """A place a finding concerns besides its path: a block path, a port name and the port's side."""

    path: str
    port: str = ""
    side: Literal["input", "output", ""] = ""


@attrs.frozen
class Diagnostic:
    """One finding of the checker: code, severity, path (composite nesting), message, hint.

    `sites` are further ports it concerns (e.g. the producer of a mismatched value), consulted by
    suppressions; `suppressed_by` says what ignored it (empty for a finding that is reported)."""

    code: str
    severity: Severity
    path: str
    message: str
    hint: str = ""
    sites: tuple[Site, ...] = attrs.field(default=(), eq=False, repr=False)
    suppressed_by: str = attrs.field(default="", eq=False)

    def __str__(self) -> str:
        head = f"{self.path}: {self.severity}[{self.code}]: {self.message}"
        if self.suppressed_by:
            head = (
                f"{self.path}: ignored {self.severity}[{self.code}] (by {self.suppressed_by}): {self.message}"
            )
        return f"{head}\n  hint: {self.hint}" if self.hint else head


@attrs.frozen
class Report:
    """Every diagnostic of one check, in graph order; `str()` renders them compiler-style.

    `ignored` keeps the findings that suppressions removed (each with `.suppressed_by`)."""

    diagnostics: tuple[Diagnostic, ...] = ()
    ignored: tuple[Diagnostic, ...] = ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics that stop compilation."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The diagnostics that do not stop compilation."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def codes(self) -> list[str]:
        """The codes of all diagnostics, in order (handy in tests)."""
        return [d.code for d in self.diagnostics]

    def summary(self) -> str:
        """'N errors, M warnings', then '(K ignored)' when suppressions removed any."""
        text = f"{_plural(len(self.errors), 'error')}, {_plural(len(self.warnings), 'warning')}"
        return f"{text} ({len(self.ignored)} ignored)" if self.ignored else text

    def __str__(self) -> str:
        return "\n".join([*map(str, self.diagnostics), self.summary()])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A '; did you mean ...?' suffix naming the closest candidates, or '' when none is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"

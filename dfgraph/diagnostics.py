"""Diagnostics: the checker's findings, with stable codes, and the report that collects them."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable

import attrs


class Severity(enum.StrEnum):
    """How bad a finding is: errors stop compilation, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@attrs.frozen
class Diagnostic:
    """One finding of the checker: code, severity, path (composite nesting), message, hint."""

    code: str
    severity: Severity
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        head = f"{self.path}: {self.severity}[{self.code}]: {self.message}"
        return f"{head}\n  hint: {self.hint}" if self.hint else head


@attrs.frozen
class Report:
    """Every diagnostic of one check, in graph order; `str()` renders them compiler-style."""

    diagnostics: tuple[Diagnostic, ...] = ()

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
        """'N errors, M warnings'."""
        return f"{_plural(len(self.errors), 'error')}, {_plural(len(self.warnings), 'warning')}"

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

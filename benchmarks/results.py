"""The outcome of a benchmark case (tables, target, verdict) and RESULTS.md, which gathers every case."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.timing import Table, markdown_text

DEFAULT_RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
"""Where `python -m benchmarks` writes its report unless told otherwise (`--out`)."""


@dataclass
class CaseResult:
    """One case of the issue's list: what it measured, its target, and whether the target was met."""

    number: int
    title: str
    target: str
    met: bool | None
    """True or False against the target; None when it was not measured or has no target."""
    verdict: str
    """One line: the figure the target is judged on (or why nothing was measured)."""
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unjudged: str = "n/a"
    """The status shown when something was measured but `met` is None (no target, or not all of it run)."""

    @property
    def status(self) -> str:
        """'yes', 'no', 'not measured', or `unjudged` when measured without a verdict."""
        if self.met is None:
            return "not measured" if not self.tables else self.unjudged
        return "yes" if self.met else "no"

    def text(self, commit: str) -> str:
        """The case for the terminal: a header naming the commit, the tables, the target and the verdict."""
        out = [f"== {self.number}. {self.title} (commit {commit})"]
        out += [f"\n{t.text()}" for t in self.tables]
        out += [f"note: {n}" for n in self.notes]
        out.append(f"target: {self.target}  ->  {self.verdict}  [met: {self.status}]")
        return "\n".join(out)

    def markdown(self) -> str:
        """The case as a RESULTS.md section."""
        status = (
            f"Target: {markdown_text(self.target)}. Met: **{self.status}**: {markdown_text(self.verdict)}."
        )
        out = [f"## {self.number}. {markdown_text(self.title)}", "", status]
        for table in self.tables:
            out += ["", table.markdown()]
        if self.notes:
            out += [""] + [f"- {markdown_text(n)}" for n in self.notes]
        return "\n".join(out)


def render_results(
    cases: Sequence[CaseResult],
    *,
    commit: str,
    machine: Mapping[str, str],
    quick: bool,
    command: str,
    repeats_note: str,
    now: datetime.datetime | None = None,
) -> str:
    """RESULTS.md: the commit, the machine, a summary of every case against its target, then each case."""
    when = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick (smoke sizes: the figures show that everything runs, not how fast)" if quick else "full"
    out = [
        "# dfgraph benchmarks",
        "",
        f"Written by `{command}` on {when}. Mode: {mode}.",
        "",
        f"- Commit: `{commit}`",
        *[f"- {key}: {markdown_text(value)}" for key, value in machine.items()],
        "",
        repeats_note,
        "",
        "## Summary",
        "",
        "| # | benchmark | target | result | met |",
        "| ---: | --- | --- | --- | --- |",
    ]
    for case in cases:
        cells = [str(case.number), case.title, case.target, case.verdict, case.status]
        out.append("| " + " | ".join(markdown_text(c) for c in cells) + " |")
    for case in cases:
        out += ["", case.markdown()]
    return "\n".join(out) + "\n"


def write_results(text: str, path: Path) -> Path:
    """Write RESULTS.md text to `path` (creating its folder); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path

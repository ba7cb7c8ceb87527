"""Measuring and reporting: interleaved repeats, tables of median/min/max/ratio, the commit and the machine.

Every benchmark times its variants with `measure`, which runs them round by round (A B C, B C A, ...)
so that noise from other processes falls on every variant alike, and renders them with `timing_table`
(text for the terminal, Markdown for RESULTS.md).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
"""The checkout the benchmarks belong to (where `git` is asked for the commit)."""


@dataclass(frozen=True)
class Stats:
    """The wall times, in seconds, of the repeats of one variant."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median time."""
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        """The fastest repeat."""
        return min(self.times)

    @property
    def max(self) -> float:
        """The slowest repeat."""
        return max(self.times)


def measure(
    variants: Mapping[str, Callable[[], object]],
    repeats: int,
    *,
    warmup: int = 1,
    sync: Callable[[], object] | None = None,
) -> dict[str, Stats]:
    """Time every variant `repeats` times, interleaved round by round (order rotated), after warm-up runs.

    `sync` (e.g. torch.cuda.synchronize) runs after each call, inside its timing, for asynchronous work.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
            if sync is not None:
                sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            fn = variants[name]
            start = time.perf_counter()
            fn()
            if sync is not None:
                sync()
            times[name].append(time.perf_counter() - start)
    return {name: Stats(tuple(ts)) for name, ts in times.items()}


def seconds(value: float) -> str:
    """A time in seconds with four significant digits, never in exponent notation."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = max(0, 3 - math.floor(math.log10(value)))
    return f"{value:.{digits}f}"


def ratio_text(value: float) -> str:
    """A ratio as shown in tables: two decimals and a times sign."""
    return f"{value:.2f}x"


def markdown_text(text: str) -> str:
    """Text for Markdown: outside `code` spans, escape the characters Markdown would read as markup."""
    parts = text.split("`")
    for k in range(0, len(parts), 2):
        for char in ("\\", "*", "_", "<"):
            parts[k] = parts[k].replace(char, "\\" + char)
    return "`".join(parts).replace("|", "\\|")


@dataclass(frozen=True)
class Table:
    """A titled table of strings, rendered as aligned text or as Markdown, with notes under it."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} has {len(row)} cells for {len(self.columns)} columns")

    def row(self, first: str) -> tuple[str, ...]:
        """The row whose first cell is `first` (KeyError when there is none)."""
        for row in self.rows:
            if row[0] == first:
                return row
        raise KeyError(first)

    def text(self) -> str:
        """The table as aligned plain text: title, header, rows (first column left, others right), notes."""
        widths = [max(len(c), *(len(r[k]) for r in self.rows)) for k, c in enumerate(self.columns)]

        def line(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
            return "  ".join([first, *rest]).rstrip()

        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows]
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        """The table in Markdown: a bold title, a pipe table (numbers right-aligned), notes as a list."""

        def cells(values: Sequence[str]) -> str:
            return "| " + " | ".join(markdown_text(v) for v in values) + " |"

        align = ["---"] + ["---:"] * (len(self.columns) - 1)
        out = [f"**{markdown_text(self.title)}**", "", cells(self.columns), "| " + " | ".join(align) + " |"]
        out += [cells(r) for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {markdown_text(n)}" for n in self.notes]
        return "\n".join(out)


def timing_table(
    title: str, stats: Mapping[str, Stats], baseline: str, *, notes: Sequence[str] = ()
) -> Table:
    """One row per variant: median, min and max seconds, and the ratio of its median to the baseline's."""
    base = stats[baseline].median
    rows = tuple(
        (name, seconds(s.median), seconds(s.min), seconds(s.max), ratio_text(s.median / base))
        for name, s in stats.items()
    )
    columns = ("variant", "median s", "min s", "max s", f"ratio to {baseline}")
    return Table(title, columns, rows, tuple(notes))


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args], check=False, cwd=REPO, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None


def commit() -> str:
    """The commit measured: the short hash, with '+dirty' when tracked files differ from it."""
    head = _git("rev-parse", "--short", "HEAD")
    if head is None or head.returncode != 0:
        return "unknown"
    dirty = _git("diff-index", "--quiet", "HEAD", "--")  # read-only: does not refresh the index
    suffix = "+dirty" if dirty is not None and dirty.returncode == 1 else ""
    return head.stdout.strip() + suffix


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """The machine and software measured on: CPUs, platform, Python, torch (threads, CUDA), diffusers."""
    info = {
        "CPUs": str(os.cpu_count()),
        "CPUs usable": str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "unknown",
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "Python": sys.version.split()[0],
        "torch": _version("torch"),
        "diffusers": _version("diffusers"),
        "dfgraph": _version("dfgraph"),
    }
    try:
        import torch

        info["torch threads"] = str(torch.get_num_threads())
        info["CUDA"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    except ImportError:
        info["CUDA"] = "not available"
    return info


def quiet() -> None:
    """Silence diffusers' and transformers' informational warnings (experimental guiders, missing extras)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from diffusers.utils import logging
    except ImportError:
        return
    logging.set_verbosity_error()

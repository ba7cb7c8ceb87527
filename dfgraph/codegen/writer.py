"""An indentation-aware writer of one generated function: each line carries its LineInfo."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dfgraph.codegen.common import LineInfo

INDENT = "    "


class Writer:
    """The lines of one generated function; `with writer.block("for ...:")` indents what it writes.

    `setup` lines (CUDA streams and events, made once per call) go at `setup_at`, right after the header
    unless the entry moves it past its argument checks."""

    def __init__(self, header: str) -> None:
        self.lines: list[tuple[str, LineInfo | None]] = [(header, None)]
        self.depth = 1  # the indentation of the next line: the function body
        self.setup: list[str] = []
        self.setup_at = 1

    def line(self, text: str, info: LineInfo | None = None) -> None:
        """Write one line at the current indentation."""
        self.lines.append((f"{INDENT * self.depth}{text}", info))

    @contextmanager
    def block(self, header: str, info: LineInfo | None = None) -> Iterator[None]:
        """Write `header` and indent what the with-body writes; an empty block gets `pass`."""
        self.line(header, info)
        self.depth += 1
        before = len(self.lines)
        try:
            yield
        finally:
            if len(self.lines) == before:
                self.line("pass")
            self.depth -= 1

    @contextmanager
    def indented(self) -> Iterator[None]:
        """Indent what the with-body writes, under a header written some other way."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def setup_line(self, text: str) -> None:
        """A line run once per call at the top of the function body (before any loop)."""
        self.setup.append(f"{INDENT}{text}")

    def text(self) -> list[tuple[str, LineInfo | None]]:
        """The function's lines, setup lines in their place."""
        at = self.setup_at
        return [*self.lines[:at], *((line, None) for line in self.setup), *self.lines[at:]]

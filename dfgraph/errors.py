"""The exceptions dfgraph raises: one base class, one subclass per kind of failure."""

from __future__ import annotations

from dfgraph.diagnostics import Report


class GraphError(Exception):
    """Base class of every error dfgraph raises on purpose."""


class WiringError(GraphError):
    """The graph is statically wrong; `.report` lists every error found."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(f"the graph has {len(report.errors)} wiring error(s):\n{report}")


class InputError(GraphError, TypeError):
    """A program was called badly: missing, unknown or ill-typed input, or unknown output."""


class BlockError(GraphError):
    """A block raised; names the block path and loop iterations, the original is `__cause__`."""

    def __init__(self, message: str, path: str, iterations: tuple[tuple[str, int], ...] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.iterations = iterations

    @property
    def iteration(self) -> int | None:
        """The innermost loop iteration the block was in, or None outside loops."""
        return self.iterations[-1][1] if self.iterations else None


def exception_text(exc: BaseException) -> str:
    """str(exc), or a note that it failed: a broken exception is still reported."""
    try:
        return str(exc)
    except Exception as failure:
        return f"<str() of the exception raised {type(failure).__name__}>"

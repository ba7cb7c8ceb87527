"""The exceptions dfgraph raises: one base class, one subclass per kind of failure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles (to a worker's caller, say) with its path and iterations; `__cause__` is not pickled."""
        message = self.args[0] if self.args else ""
        return (type(self), (message, self.path, self.iterations), self.__dict__)

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


def block_error(exc: Exception, path: str, iterations: Iterable[tuple[str, int]]) -> BlockError:
    """The BlockError for `exc`, raised by the block at `path` in the loop `iterations` (outer to inner).

    A BlockError from a nested Program (a block that is itself a Program) is merged into one: the full
    path (`path`, then the inner path below the inner root), every iteration outer to inner, and the
    original exception as `__cause__`."""
    iterations, original = list(iterations), exc
    if isinstance(exc, BlockError) and isinstance(exc.__cause__, Exception):
        outer = path

        def full(inner: str) -> str:  # the inner program's paths start with its own name: replace it
            below = inner.partition("/")[2]
            return f"{outer}/{below}" if below else outer

        path, original = full(exc.path), exc.__cause__
        iterations.extend((full(loop_path), i) for loop_path, i in exc.iterations)
    where = ""
    if iterations:
        where = " (" + ", ".join(f"iteration {i} of loop {p!r}" for p, i in reversed(iterations)) + ")"
    message = f"block {path!r} raised {type(original).__name__}: {exception_text(original)}{where}"
    error = BlockError(message, path, tuple(iterations))
    error.__cause__ = original
    return error

"""Hooks: the one extension point of a compiled program (progress bars, step callbacks, tracing).

A hook is an object with some of the event methods of `Hook`; subclass `Hook` and override the events
you need (a duck-typed object with some of the methods works too). Give hooks to `df.compile(block,
hooks=[...])`, or per call through `prog.with_hooks(*hooks)` (a program sharing the compiled code).

The generated code calls a hook only for the events some hook listens to: a program without hooks is
the plain generated function, with no hook call in its source. Events, in the order of a run:

- `run_start(program, inputs)`: the inputs passed their checks, before the first block;
- `block_start(path, inputs)` / `block_end(path, outputs)`: around each block call (ports -> values);
- `loop_start(path, total)`: before a loop's first iteration (`total`: the iteration count when known);
- `iteration_start(path, index, item)` / `iteration_end(path, index, item, carried)`: around each
  iteration; `carried` maps each carried name to its value after the iteration;
- `loop_end(path)`: after the loop's last iteration;
- `run_end(program, outputs)`: after the last block;
- `error(exc)`: the call fails with `exc` (the translated `df.BlockError`, naming the block path and
  loop iterations) once blocks started running; the exception still propagates after the hooks ran.

A switch (`df.Switch`) has no event of its own: only the chosen case runs, and its blocks and loops fire
theirs (a selector block fires block events like any block).

Hooks are called on the calling thread; a hook shared by programs running on several threads must be
thread-safe (`Trace` and `ProgressBar` are).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

EVENTS = (
    "run_start",
    "block_start",
    "block_end",
    "loop_start",
    "iteration_start",
    "iteration_end",
    "loop_end",
    "run_end",
    "error",
)
"""Every event a hook can listen to, in the order of a run."""


class Hook:
    """Base class of hooks: every event is a no-op; a hook listens to the events it overrides."""

    def run_start(self, program: str, inputs: Mapping[str, Any]) -> None:
        """A call of `program` starts: its inputs passed their checks, no block ran yet."""

    def run_end(self, program: str, outputs: Mapping[str, Any]) -> None:
        """A call of `program` ran its last block; `outputs` maps each output that has a value."""

    def block_start(self, path: str, inputs: Mapping[str, Any]) -> None:
        """The block at `path` is about to be called with `inputs` (its ports' values)."""

    def block_end(self, path: str, outputs: Mapping[str, Any]) -> None:
        """The block at `path` returned `outputs` (its output names' values)."""

    def loop_start(self, path: str, total: int | None) -> None:
        """The loop at `path` starts; `total` is its iteration count when known (times=, a sized over=)."""

    def iteration_start(self, path: str, index: int, item: Any) -> None:
        """Iteration `index` of the loop at `path` starts (`item`: the element of over=, else None)."""

    def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
        """Iteration `index` ended; `carried` maps every carried name to its value for the next one."""

    def loop_end(self, path: str) -> None:
        """The loop at `path` finished its last iteration."""

    def error(self, exc: Exception) -> None:
        """The call fails with `exc` (a df.BlockError naming the block and iterations, usually)."""


def listens(hook: object, event: str) -> bool:
    """Whether `hook` listens to `event`: a Hook overriding it, or any other object with that method."""
    method = getattr(type(hook), event, None)
    if method is None:
        return callable(getattr(hook, event, None))
    return method is not getattr(Hook, event) and callable(getattr(hook, event))


def events_of(hooks: Iterable[object]) -> frozenset[str]:
    """The events at least one of `hooks` listens to."""
    hooks = tuple(hooks)
    return frozenset(e for e in EVENTS if any(listens(h, e) for h in hooks))


def _nothing(*args: Any) -> None:
    """The dispatch of an event no hook listens to (generated code compiled for more hooks calls it)."""


def _fan_out(methods: Sequence[Callable[..., None]]) -> Callable[..., None]:
    def dispatch(*args: Any) -> None:
        for method in methods:
            method(*args)

    return dispatch


class Dispatcher:
    """What generated code calls: one attribute per event, calling each listening hook in order."""

    __slots__ = (*EVENTS, "events", "hooks")

    run_start: Callable[[str, Mapping[str, Any]], None]
    run_end: Callable[[str, Mapping[str, Any]], None]
    block_start: Callable[[str, Mapping[str, Any]], None]
    block_end: Callable[[str, Mapping[str, Any]], None]
    loop_start: Callable[[str, int | None], None]
    iteration_start: Callable[[str, int, Any], None]
    iteration_end: Callable[[str, int, Any, Mapping[str, Any]], None]
    loop_end: Callable[[str], None]
    error: Callable[[Exception], None]
    hooks: tuple[object, ...]
    events: frozenset[str]

    def __init__(self, hooks: Iterable[object]) -> None:
        self.hooks = tuple(hooks)
        self.events = events_of(self.hooks)
        for event in EVENTS:
            methods = [getattr(h, event) for h in self.hooks if listens(h, event)]
            # one listener is called directly: no loop between the generated code and the hook
            dispatch = _nothing if not methods else methods[0] if len(methods) == 1 else _fan_out(methods)
            setattr(self, event, dispatch)


def total(over: object) -> int | None:
    """The iteration count of an over= value when it has a length (an iterator has none)."""
    try:
        return len(over)  # type: ignore[arg-type]
    except Exception:  # no __len__ (a generator), or one that fails: the count is unknown
        return None


class ProgressBar(Hook):
    """tqdm progress bars for loops (all of them, or the paths in `loops`): the outermost loop of a program
    keeps its finished bar, nested loops clear theirs. `Loop(progress=True)` runs through this hook."""

    def __init__(self, loops: Iterable[str] | None = None) -> None:
        self.loops = None if loops is None else frozenset(loops)
        self._local = threading.local()

    def __reduce__(self) -> tuple[Any, ...]:
        return (ProgressBar, (None if self.loops is None else sorted(self.loops),))

    def _stack(self) -> list[Any]:
        stack: list[Any] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def loop_start(self, path: str, total: int | None) -> None:
        """Open a bar (or None for a loop not shown); nested loops' bars are cleared when done."""
        stack = self._stack()
        bar = None
        if self.loops is None or path in self.loops:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=path, leave=not stack)
        stack.append(bar)

    def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
        """Advance the loop's bar."""
        bar = self._stack()[-1]
        if bar is not None:
            bar.update(1)

    def loop_end(self, path: str) -> None:
        """Close the loop's bar."""
        bar = self._stack().pop()
        if bar is not None:
            bar.close()

    def error(self, exc: Exception) -> None:
        """A failed call leaves its loops: close their bars."""
        stack = self._stack()
        while stack:
            bar = stack.pop()
            if bar is not None:
                bar.close()


class Trace(Hook):
    """Records runs as a Chrome trace (chrome://tracing, ui.perfetto.dev): a complete event per block, loop
    and iteration, with the block path as name, the enclosing loops' iterations in args and the thread
    as tid. Thread-safe: one Trace may record programs running on several threads."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pid = os.getpid()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Trace, ())

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of the trace events recorded so far (Chrome trace event format)."""
        with self._lock:
            return list(self._events)

    def json(self) -> str:
        """The trace as Chrome trace JSON: {"traceEvents": [...], "displayTimeUnit": "ms"}."""
        return json.dumps({"traceEvents": self.events, "displayTimeUnit": "ms"}, default=repr)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `json()` to `path` (open it in ui.perfetto.dev or chrome://tracing)."""
        Path(path).write_text(self.json(), encoding="utf-8")

    # -- recording (per thread: open spans and the loop iterations around them) -------------------------

    def _state(self) -> tuple[list[tuple[str, str, float, dict[str, Any]]], list[list[Any]]]:
        local = self._local
        if not hasattr(local, "spans"):
            local.spans, local.loops = [], []
        return local.spans, local.loops

    def _open(self, name: str, category: str, args: dict[str, Any]) -> None:
        spans, loops = self._state()
        iterations = {path: index for path, index in loops if index is not None}
        if iterations:
            args["iterations"] = iterations
        spans.append((name, category, time.perf_counter(), args))

    def _close(self) -> None:
        end = time.perf_counter()
        spans, _ = self._state()
        name, category, start, args = spans.pop()
        event = {
            "name": name,
            "cat": category,
            "ph": "X",
            "ts": start * 1e6,
            "dur": (end - start) * 1e6,
            "pid": self._pid,
            "tid": threading.get_ident(),
            "args": args,
        }
        with self._lock:
            self._events.append(event)

    def run_start(self, program: str, inputs: Mapping[str, Any]) -> None:
        """Open the run's span."""
        self._open(program, "run", {})

    def run_end(self, program: str, outputs: Mapping[str, Any]) -> None:
        """Close the run's span."""
        self._close()

    def block_start(self, path: str, inputs: Mapping[str, Any]) -> None:
        """Open the block's span."""
        self._open(path, "block", {"path": path})

    def block_end(self, path: str, outputs: Mapping[str, Any]) -> None:
        """Close the block's span."""
        self._close()

    def loop_start(self, path: str, total: int | None) -> None:
        """Open the loop's span."""
        self._open(path, "loop", {"path": path, "total": total})
        self._state()[1].append([path, None])

    def iteration_start(self, path: str, index: int, item: Any) -> None:
        """Open the iteration's span."""
        self._state()[1][-1][1] = index
        self._open(f"{path}[{index}]", "iteration", {"path": path, "index": index})

    def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
        """Close the iteration's span."""
        self._close()

    def loop_end(self, path: str) -> None:
        """Close the loop's span."""
        self._state()[1].pop()
        self._close()

    def error(self, exc: Exception) -> None:
        """An instant event naming the error; the spans left open by the failure are closed."""
        spans, loops = self._state()
        while spans:
            self._close()
        loops.clear()
        event = {
            "name": type(exc).__name__,
            "cat": "error",
            "ph": "i",
            "s": "t",
            "ts": time.perf_counter() * 1e6,
            "pid": self._pid,
            "tid": threading.get_ident(),
            "args": {"message": str(exc), "path": getattr(exc, "path", None)},
        }
        with self._lock:
            self._events.append(event)


__all__ = ["EVENTS", "Dispatcher", "Hook", "ProgressBar", "Trace", "events_of", "listens", "total"]

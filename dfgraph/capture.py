"""CUDA-graph capture of loop bodies (`df.compile(..., device="cuda", capture=True)`).

A loop body is cut into segments: maximal runs of capturable blocks, in issue order. A block is
capturable unless it `mutates` a resource: a scheduler's step index or a generator lives in Python (or
host memory), which a replayed graph would not advance. Those blocks run eagerly between segments.

A CUDA graph cannot hold a data-dependent branch, so a switch (`df.Switch`) in a loop body is never
captured whole: segments end before it and start after it, the branch runs on the host, and each case's
own runs of capturable blocks become segments of their own (replayed only when that case is chosen). A
block whose output is a switch's key or the loop's `until=` flag runs eagerly too: the host branches on
it, and a replay would return the value seen at capture time.

Each segment becomes a function of its inputs, run through a `Segment`:
- the first run of a new input signature is a warm-up, eager, as torch recommends before capture;
- the next one captures the function into a CUDA graph, on static input buffers;
- every later run copies its inputs into those buffers, replays the graph and returns clones of the
  static outputs (a replay overwrites them, and a value may outlive the step).

The signature of an input is its shape, dtype and device for a tensor, and its value for anything else,
except floats made in the loop body (the item, a carried value, a block's output), which go through
static 0-d device buffers so a per-step scalar (a timestep from a list) does not force a new capture
every step. Floats from outside the loop (guidance_scale) stay Python floats, so blocks may branch on
them; another value re-captures. A segment that needs more than `MAX_GRAPHS`
graphs (an int index or another Python value that changes every step) is refused with the input named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dfgraph.errors import GraphError

MAX_GRAPHS = 4
"""Distinct input signatures one segment may capture before it is refused (they are kept alive)."""


class CaptureError(GraphError):
    """A segment of a loop body cannot be captured as a CUDA graph."""


class _Graph:
    """One captured graph with its static inputs and outputs."""

    __slots__ = ("graph", "inputs", "outputs")

    def __init__(self, graph: Any, inputs: tuple[Any, ...], outputs: tuple[Any, ...]) -> None:
        self.graph, self.inputs, self.outputs = graph, inputs, outputs


class Segment:
    """A run of capturable blocks of one loop body: warmed up, captured once per signature, replayed."""

    def __init__(
        self, paths: Sequence[str], inputs: Sequence[str], varying: Sequence[bool], runtime: Any
    ) -> None:
        self.paths = tuple(paths)
        self.input_names = tuple(inputs)  # 'block.port' of the first reader, for error messages
        self.varying = tuple(varying)  # per input: made in the loop body (changes step to step)
        self.runtime = runtime
        self.graphs: dict[tuple[Any, ...], _Graph] = {}
        self.warm: set[tuple[Any, ...]] = set()  # signatures seen (warmed up); at most MAX_GRAPHS
        self.replays = 0

    @property
    def label(self) -> str:
        """The segment's blocks, joined by ' + '."""
        return " + ".join(self.paths)

    def run(self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]) -> tuple[Any, ...]:
        """fn(*args), eagerly the first time per signature, then captured once and replayed."""
        key = tuple(_signature(a, v, self.runtime) for a, v in zip(args, self.varying, strict=True))
        captured = self.graphs.get(key)
        if captured is None:
            if key not in self.warm:
                if len(self.warm) >= MAX_GRAPHS:
                    raise CaptureError(self._too_many(key))
                self.warm.add(key)
                warmed: tuple[Any, ...] = self.runtime.warm_up(fn, args)
                return warmed
            captured = self._capture(fn, args, key)
        for static, value in zip(captured.inputs, args, strict=True):
            if self.runtime.is_tensor(static):  # a buffer (other inputs are part of the key)
                if self.runtime.is_tensor(value):
                    static.copy_(value)
                else:
                    static.fill_(value)
        captured.graph.replay()
        self.replays += 1
        return tuple(self.runtime.clone(o) if self.runtime.is_tensor(o) else o for o in captured.outputs)

    def _capture(
        self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...], key: tuple[Any, ...]
    ) -> _Graph:
        static = tuple(self._static(a, v) for a, v in zip(args, self.varying, strict=True))
        try:
            graph, outputs = self.runtime.capture(fn, static)
        except Exception as exc:
            raise CaptureError(
                f"segment {self.label!r} cannot be captured as a CUDA graph: {type(exc).__name__}: {exc} "
                "(blocks that synchronise with the host, e.g. .item() or printing a tensor, cannot be "
                "captured; declare Python-side state with mutates= so the block runs eagerly)"
            ) from exc
        self.graphs[key] = _Graph(graph, static, tuple(outputs))
        return self.graphs[key]

    def _static(self, value: Any, varying: bool) -> Any:
        if self.runtime.is_tensor(value):
            return self.runtime.clone(value)
        if isinstance(value, float) and varying:
            return self.runtime.scalar(value)
        return value

    def _too_many(self, key: tuple[Any, ...]) -> str:
        changing = [
            name for k, name in enumerate(self.input_names) if any(other[k] != key[k] for other in self.warm)
        ]
        names = ", ".join(repr(n) for n in changing) or "its inputs"
        return (
            f"segment {self.label!r} would need more than {MAX_GRAPHS} CUDA graphs: {names} changes from "
            "step to step (a Python value other than a float, or a tensor of another shape); pass it as a "
            "tensor, or move the block that reads it out of the loop"
        )


def _signature(value: Any, varying: bool, runtime: Any) -> Any:
    """What a captured graph depends on: a tensor's layout, a per-step float's kind, other values."""
    if runtime.is_tensor(value):
        return ("tensor", tuple(value.shape), value.dtype, value.device)
    if isinstance(value, float) and varying:
        return ("float",)
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return ("value", type(value), value)

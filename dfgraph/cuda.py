"""The CUDA runtime of compiled programs: streams, events and the stream context, behind one object.

Generated code for a scheduled loop body talks only to this runtime (`_rt`): `current_stream()`,
`new_stream()`, `new_event()`, `on(stream)`, `keep(value, stream)` (record_stream: a tensor made on one
stream and used on another is not handed out again by the caching allocator before that use is done),
the stream and event methods `wait_event(event)` and `record(stream)` of torch.cuda, and for CUDA-graph
capture (dfgraph.capture) `warm_up`, `capture`, `scalar`, `clone` and `is_tensor`. On a GPU it is
torch.cuda itself; tests substitute a recording runtime (`RUNTIME`) so the emitted synchronisation is
verified without a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from dfgraph.errors import GraphError


class Runtime(Protocol):
    """What generated code needs of a CUDA runtime."""

    def current_stream(self) -> Any:
        """The stream the caller is on (the main stream of a loop body)."""

    def new_stream(self) -> Any:
        """A fresh side stream."""

    def new_event(self) -> Any:
        """A fresh event (recorded on one stream, waited for on others)."""

    def on(self, stream: Any) -> AbstractContextManager[Any]:
        """Make `stream` current inside the block."""

    def keep(self, value: Any, stream: Any) -> None:
        """Tell the allocator that `stream` uses `value` (made on another stream): not reused before."""

    def is_tensor(self, value: Any) -> bool:
        """Whether `value` is a tensor (captured graphs read and write tensors only)."""

    def clone(self, tensor: Any) -> Any:
        """A copy of `tensor` in fresh memory."""

    def scalar(self, value: float) -> Any:
        """A 0-d device tensor holding `value`: the static buffer of a per-step float."""

    def warm_up(self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]) -> tuple[Any, ...]:
        """fn(*args) run eagerly before a capture (lazy initialisation happens outside the graph)."""

    def capture(
        self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]
    ) -> tuple[Any, tuple[Any, ...]]:
        """Capture fn(*args) into a graph with a `replay()` method; returns it and fn's (static) outputs."""


class TorchCuda:
    """The runtime on a real GPU: torch.cuda."""

    def __init__(self) -> None:
        import torch

        self._cuda = torch.cuda
        self._tensor = torch.Tensor

    def current_stream(self) -> Any:
        """torch.cuda.current_stream()."""
        return self._cuda.current_stream()

    def new_stream(self) -> Any:
        """torch.cuda.Stream()."""
        return self._cuda.Stream()  # type: ignore[no-untyped-call]

    def new_event(self) -> Any:
        """torch.cuda.Event()."""
        return self._cuda.Event()  # type: ignore[no-untyped-call]

    def on(self, stream: Any) -> AbstractContextManager[Any]:
        """torch.cuda.stream(stream)."""
        context: AbstractContextManager[Any] = self._cuda.stream(stream)
        return context

    def keep(self, value: Any, stream: Any) -> None:
        """value.record_stream(stream) for CUDA tensors; other values need nothing."""
        if isinstance(value, self._tensor) and value.is_cuda:
            value.record_stream(stream)

    def is_tensor(self, value: Any) -> bool:
        """isinstance(value, torch.Tensor)."""
        return isinstance(value, self._tensor)

    def clone(self, tensor: Any) -> Any:
        """tensor.clone()."""
        return tensor.clone()

    def scalar(self, value: float) -> Any:
        """torch.tensor(value) on the current CUDA device, in float64 so no precision is lost."""
        import torch

        return torch.tensor(value, dtype=torch.float64, device="cuda")

    def warm_up(self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]) -> tuple[Any, ...]:
        """fn(*args) on a side stream that forks from and rejoins the current one (torch's recipe)."""
        side, main = self._cuda.Stream(), self._cuda.current_stream()  # type: ignore[no-untyped-call]
        side.wait_stream(main)
        with self._cuda.stream(side):
            outputs = fn(*args)
        main.wait_stream(side)
        for value in outputs:
            self.keep(value, main)
        return outputs

    def capture(
        self, fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...]
    ) -> tuple[Any, tuple[Any, ...]]:
        """torch.cuda.CUDAGraph captured around fn(*args); side streams inside fork from its stream."""
        graph = self._cuda.CUDAGraph()
        with self._cuda.graph(graph):
            outputs = fn(*args)
        return graph, outputs


# A substitute runtime (tests); None means torch.cuda.
RUNTIME: Runtime | None = None


def runtime() -> Runtime:
    """The runtime for device="cuda": the substitute if set, else torch.cuda when a GPU is present."""
    if RUNTIME is not None:
        return RUNTIME
    import torch

    if not torch.cuda.is_available():
        raise GraphError("device='cuda' needs a CUDA device, but torch.cuda.is_available() is False")
    return TorchCuda()

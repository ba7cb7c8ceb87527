"""The CUDA runtime of compiled programs: streams, events and the stream context, behind one object.

Generated code for a scheduled loop body talks only to this runtime (`_rt`): `current_stream()`,
`new_stream()`, `new_event()`, `on(stream)`, `keep(value, stream)` (record_stream: a tensor made on one
stream and used on another is not handed out again by the caching allocator before that use is done),
and the stream and event methods `wait_event(event)` and `record(stream)` of torch.cuda. On a GPU it is
torch.cuda itself; tests substitute a recording runtime (`RUNTIME`) so the emitted synchronisation is
verified without a GPU.
"""

from __future__ import annotations

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

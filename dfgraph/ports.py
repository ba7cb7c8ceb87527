"""Ports: the named, typed inputs and outputs of a block."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from dfgraph.diagnostics import did_you_mean, select_codes


class _Required:
    """The default of a port that has none: a caller or an upstream block must supply it."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


class _WhenChosen:
    """The default of a program input only some switch cases read: not required, but a case that reads
    it may run only when it is given (else an InputError naming the case)."""

    _instance: _WhenChosen | None = None

    def __new__(cls) -> _WhenChosen:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "WHEN_CHOSEN"

    def __reduce__(self) -> str:
        return "WHEN_CHOSEN"


WHEN_CHOSEN: Final = _WhenChosen()


def _codes(spec: str | Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(select_codes(spec)))


@attrs.frozen
class Port:
    """A named, typed input or output of a block; `default` absent means required.

    `check=False` suppresses the type and shape findings at this port (DF001, DF002, DF101, DF202, DF204,
    DF301, DF302); `ignore=` suppresses the codes it names (e.g. `("DF001",)`) at this port."""

    name: str
    type: Any = Any
    default: Any = REQUIRED
    doc: str = ""
    check: bool = attrs.field(default=True, kw_only=True)
    ignore: tuple[str, ...] = attrs.field(default=(), converter=_codes, kw_only=True)

    @property
    def required(self) -> bool:
        """True when the port has no default."""
        return self.default is REQUIRED


def split_ignore(
    spec: str | Iterable[str] | Mapping[str, str | Iterable[str]],
    inputs: tuple[Port, ...],
    outputs: tuple[Port, ...],
) -> tuple[tuple[str, ...], tuple[Port, ...], tuple[Port, ...]]:
    """A block's `ignore=`: codes for the whole block, or a mapping port name -> codes for those ports.

    Returns the block's codes and its ports with their `ignore` extended; ValueError on an unknown code
    or port name."""
    if not isinstance(spec, Mapping):
        return _codes(spec), inputs, outputs
    names = {p.name for p in (*inputs, *outputs)}
    for name in spec:
        if name not in names:
            raise ValueError(f"ignore= names no port {name!r}" + did_you_mean(str(name), names))

    def extended(port: Port) -> Port:
        extra = spec.get(port.name)
        return port if extra is None else attrs.evolve(port, ignore=(*port.ignore, *_codes(extra)))

    return (), tuple(map(extended, inputs)), tuple(map(extended, outputs))

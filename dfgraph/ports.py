"""Ports: the named, typed inputs and outputs of a block."""

from __future__ import annotations

from typing import Any, Final

import attrs


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


@attrs.frozen
class Port:
    """A named, typed input or output of a block; `default` absent means required."""

    name: str
    type: Any = Any
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        """True when the port has no default."""
        return self.default is REQUIRED

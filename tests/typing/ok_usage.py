"""User-style code that must type-check under mypy --strict (run by tests/test_typing.py) and run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, assert_type

import dfgraph as df


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


@df.block
def scaled(value: float, factor: float = 2.0) -> float:
    return value * factor


class Pair(NamedTuple):
    low: int
    high: int


@df.block
def split(x: int) -> Pair:
    return Pair(x - 1, x + 1)


# A decorated function keeps its signature: calling it is typed like the function.
assert_type(add_one(1), int)
assert_type(scaled(1.0), float)
assert_type(scaled(1.0, factor=3.0), float)
assert_type(split(3), Pair)
typed: df.FunctionBlock[[int], int] = add_one  # the block type, with the parameters and return

# It is a block: name, inputs and outputs are typed.
assert_type(add_one.name, str)
assert_type(add_one.inputs, tuple[df.Port, ...])
assert_type(add_one.outputs, tuple[df.Port, ...])
port_names = [p.name for p in add_one.inputs]


def count_ports(blk: df.Block) -> int:
    """Somewhere a block is expected."""
    return len(blk.inputs) + len(blk.outputs)


assert count_ports(add_one) == 2
assert count_ports(split) == 3

loop = df.Loop(df.Sequential(add_one, add_one), times="num_steps")
assert count_ports(loop) == 3

# df.compile accepts blocks: a decorated function, a composite, a compiled program.
prog = df.compile(loop)
assert_type(prog, df.Program)
direct = df.compile(add_one)
again = df.compile(prog)

# Program.__call__ is typed by output=: one name gives a value, None or a list of names a mapping.
everything = prog(num_steps=3, x=0)
assert_type(everything, Mapping[str, Any])
chosen = prog(num_steps=3, x=0, output=["x"])
assert_type(chosen, Mapping[str, Any])
value = prog(num_steps=3, x=0, output="x")
assert_type(value, Any)
assert everything["x"] == 6
assert chosen == {"x": 6}
assert value == 6
assert direct(x=1, output="x") == 2
assert again(num_steps=1, x=1)["x"] == 3


# Decorating a class keeps the class: its instances are the blocks.
@df.block(outputs="y")
class Offset:
    def __init__(self, by: int) -> None:
        self.by = by

    def __call__(self, x: int) -> int:
        return x + self.by


offset = Offset(5)
assert_type(offset, Offset)
assert_type(offset(1), int)
assert df.compile(df.Sequential(offset))(x=1, output="y") == 6


# mypy does not see the ports the decorator adds to a class: declared on the class, they type-check too.
@df.block(outputs="y")
class Scale:
    name: str
    inputs: tuple[df.Port, ...]
    outputs: tuple[df.Port, ...]

    def __call__(self, x: float) -> float:
        return 2 * x


scale_prog = df.compile(Scale())
assert scale_prog(x=1.5, output="y") == 3.0
assert [p.name for p in Scale().inputs] == ["x"]

"""User-style mistakes mypy --strict must report: each line marked `# E: code` must be an error with that
code, and no other line may have one (checked by tests/test_typing.py; never imported)."""

from __future__ import annotations

import dfgraph as df


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


add_one("one")  # E: arg-type
add_one(1, 2)  # E: call-arg
add_one(y=1)  # E: call-arg
text: str = add_one(1)  # E: assignment
add_one.inputs = 3  # E: assignment
add_one.nmae  # E: attr-defined
df.compile(42)  # E: arg-type
df.compile(lambda x: x)  # E: arg-type
df.compile("dfgraph_blocks.examples:counter_one")  # E: arg-type

prog = df.compile(add_one)
prog(x=1)["x"].anything  # allowed: values are Any
prog(x=1).anything  # E: attr-defined
prog(x=1, output=["x"]).keys
prog(x=1, output=3)  # E: call-overload


@df.block(outputs="y")
class Undeclared:
    def __call__(self, x: int) -> int:
        return x


df.compile(Undeclared())  # E: arg-type
df.compile(df.Sequential(Undeclared()))

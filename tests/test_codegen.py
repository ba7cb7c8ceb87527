"""Code generation internals: the writer's indentation, variable allocation decided before emission, and
regressions of variable sharing found by the differential tests."""

from __future__ import annotations

from test_interpret import Leaf, Net, Rep, Seq, build, outcome

import dfgraph as df
from dfgraph.codegen import LineInfo
from dfgraph.codegen.alloc import allocate
from dfgraph.codegen.writer import Writer
from dfgraph.interpret import Interpreter
from dfgraph.ir import LoopOp
from dfgraph.lowering import lower


def test_the_writer_indents_blocks_and_keeps_line_infos() -> None:
    w = Writer("def f(n):")
    info = LineInfo("loop", ())
    with w.block("for i in range(n):", info):
        w.line("x = i", info)
        with w.block("if x:"):
            pass  # an empty block gets `pass`
    w.line("return x")
    w.setup_line("s = 1")
    assert w.text() == [
        ("def f(n):", None),
        ("    s = 1", None),
        ("    for i in range(n):", info),
        ("        x = i", info),
        ("        if x:", None),
        ("            pass", None),
        ("    return x", None),
    ]
    assert w.depth == 1


def test_the_counter_loop_shares_one_variable_decided_before_emission() -> None:
    @df.block(outputs="x")
    def add_one(x: int) -> int:
        return x + 1

    lowered = lower(df.Loop(df.Sequential(add_one, add_one), times="n"))
    alloc = allocate(lowered, lambda op: False)
    (loop,) = [op for op in lowered.ops() if isinstance(op, LoopOp)]
    (carried,) = loop.carried
    x_in = lowered.inputs["x"]
    # the phi lives in the input's variable, the final value in the phi's: one `x` throughout
    assert alloc.root(carried.phi) is x_in and alloc.root(carried.final) is x_in
    assert alloc.root(lowered.outputs["x"]) is x_in
    # streamed bodies keep the final apart (a side stream may still read the old value)
    assert allocate(lowered, lambda op: True).root(carried.final) is not x_in


def test_a_loop_does_not_take_over_the_variable_an_enclosing_loop_carries_on() -> None:
    # loop2 carries c, and its c is loop0's next c; loop3 (in a graph that renames its c to a) starts
    # from that c: its carried variable may not be loop2's, or loop0's next c is loop3's last one
    loop3 = Rep("loop3", 3, Leaf("b4", ["c"], ["c"], False, True), False)
    body = Seq(
        "seq0",
        False,
        [
            Leaf("b0", ["a"], ["b"], False, True),
            Rep("loop2", 2, Leaf("b2", ["c"], ["c"], False, True), False),
            Net("net1", [("node1", loop3)], [], {"a": "node1.c"}),
            Rep("loop4", 4, Leaf("b5", ["a"], ["a"], False, True), False),
            Leaf("b6", ["a"], ["b"], False, True),
        ],
    )
    prog = df.compile(build(Rep("loop0", 0, body, False)))
    inputs = {"n0": 2, "n2": 0, "n3": 2, "n4": 0, "c": 5, "a": 1}
    interpreter = Interpreter(prog)
    for output in (None, "c", "b"):
        assert outcome(prog, **inputs, output=output) == outcome(interpreter.run, **inputs, output=output)
    assert prog(**inputs, output="c") == 5  # loop2 ran zero times: loop0 carries c unchanged

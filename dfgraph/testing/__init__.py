"""Hypothesis strategies for property-testing your dfgraph graphs, and the stream-schedule simulator.

    from hypothesis import given, strategies as st
    from dfgraph.testing import inputs_for

    prog = df.compile(my_loop)

    @given(inputs_for(prog, num_steps=st.integers(0, 20)))
    def test_my_loop_runs(inputs):
        prog(**inputs)

- `inputs_for(program_or_block, **overrides)` draws input mappings the program accepts: each value from
  its port's type (a `times=` count from 0..MAX_LOOP_STEPS, an `over=` list of at most MAX_LOOP_ITEMS
  items), optional inputs sometimes left out, a strategy of your own per name in `overrides`.
- `counter_loops()` draws a `CounterCase`: a random nest of Sequentials, Loops and Graphs of `increment`
  blocks, its inputs and the `x` it must compute (from the structure, never by running dfgraph).
- `dags()` draws a loop-body DAG (block paths, edges); `simulate` runs a stream schedule under random legal
  interleavings of its streams and checks every edge with vector clocks (`happens_before`, `serial`,
  `SimulationError`), so a schedule is proven correct without a GPU.

dfgraph's own test generators (well-typed, mistyped and malformed graphs with their expected diagnostics)
are in `dfgraph.testing.generators`, which is not part of this documented API.
"""

from __future__ import annotations

from dfgraph.simulator import SimulationError, SimulationResult, happens_before, serial, simulate
from dfgraph.testing.graphs import CounterCase, counter_loops, dags, increment
from dfgraph.testing.inputs import MAX_LOOP_ITEMS, MAX_LOOP_STEPS, inputs_for

__all__ = [
    "MAX_LOOP_ITEMS",
    "MAX_LOOP_STEPS",
    "CounterCase",
    "SimulationError",
    "SimulationResult",
    "counter_loops",
    "dags",
    "happens_before",
    "increment",
    "inputs_for",
    "serial",
    "simulate",
]

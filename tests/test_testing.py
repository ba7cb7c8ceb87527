"""Tests of dfgraph.testing itself: the strategies draw what they promise, with the right expectations.

The walkers below run and name the composite trees by the documented semantics, without compiling them,
so the strategies' expectations are checked against a second, independent reading of the same structure.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import dfgraph as df
from dfgraph.testing import MAX_LOOP_ITEMS, MAX_LOOP_STEPS, CounterCase, counter_loops, increment, inputs_for
from dfgraph.testing.generators import (
    Injected,
    Malformed,
    malformed_graphs,
    mistyped_graphs,
    well_typed_graphs,
)
from dfgraph_blocks.examples import counter_two

SETTINGS = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
# Coverage checks: find one example, without spending time shrinking it.
FIND = settings(deadline=None, max_examples=2000, database=None, phases=[Phase.generate])


# -- independent walkers ---------------------------------------------------------------------------------


def _run(blk: Any, env: dict[str, Any]) -> dict[str, Any]:
    """Run a composite tree by the documented semantics, calling leaf blocks directly; return its writes."""
    if isinstance(blk, df.Sequential):
        scope, written = dict(env), {}
        for _, child in blk.children:
            out = _run(child, scope)
            scope.update(out)
            written.update(out)
        return written
    if isinstance(blk, df.Loop):
        scope, written = dict(env), {}
        steps = range(env[blk.times]) if blk.times is not None else env[blk.over]
        for index, item in enumerate(steps):
            fixed = {blk.index: index} | ({blk.item: item} if blk.over is not None else {})
            out = _run(blk.body, scope | fixed)
            scope.update(out)
            written.update(out)
        return written
    if isinstance(blk, df.Graph):
        produced: dict[str, dict[str, Any]] = {}
        while len(produced) < len(blk.nodes):
            for key, node in blk.nodes.items():
                if key in produced:
                    continue
                wired = {dst.split(".")[1]: src for src, dst in blk.edges if dst.split(".")[0] == key}
                sources = [s.split(".")[0] for s in wired.values() if "." in s]
                if any(s not in produced for s in sources):
                    continue
                args = {}
                for port in node.inputs:
                    src = wired.get(port.name)
                    if src is None:
                        args[port.name] = env[port.name]
                    elif "." in src:
                        args[port.name] = produced[src.split(".")[0]][src.split(".")[1]]
                    else:
                        args[port.name] = env[src]
                produced[key] = _run(node, args)
        assert blk.output_map is not None
        return {name: produced[end.split(".")[0]][end.split(".")[1]] for name, end in blk.output_map}
    result = blk(**{p.name: env[p.name] for p in blk.inputs})
    names = [p.name for p in blk.outputs]
    return dict(zip(names, result if len(names) > 1 else (result,), strict=True))


def _leaves(blk: Any, path: str | None = None) -> Iterator[tuple[str, Any]]:
    """(path, leaf) for every leaf block, paths by the documented rules (a loop's Sequential adds none)."""
    path = blk.name if path is None else path
    if isinstance(blk, df.Sequential):
        for name, child in blk.children:
            yield from _leaves(child, f"{path}/{name}")
    elif isinstance(blk, df.Loop):
        body_path = path if isinstance(blk.body, df.Sequential) else f"{path}/{blk.body.name}"
        if isinstance(blk.body, df.Sequential):
            for name, child in blk.body.children:
                yield from _leaves(child, f"{body_path}/{name}")
        else:
            yield from _leaves(blk.body, body_path)
    elif isinstance(blk, df.Graph):
        for key, node in blk.nodes.items():
            yield from _leaves(node, f"{path}/{key}")
    else:
        yield path, blk


def _children(blk: Any) -> list[Any]:
    if isinstance(blk, df.Sequential):
        return [c for _, c in blk.children]
    if isinstance(blk, df.Loop):
        return [blk.body]
    if isinstance(blk, df.Graph):
        return list(blk.nodes.values())
    return []


def _composites(blk: Any) -> Iterator[Any]:
    """The block and every block inside it."""
    yield blk
    for child in _children(blk):
        yield from _composites(child)


def _loop_depth(blk: Any) -> int:
    """How many loops nest at the deepest point."""
    inner = max((_loop_depth(c) for c in _children(blk)), default=0)
    return inner + 1 if isinstance(blk, df.Loop) else inner


# -- increment ---------------------------------------------------------------------------------------------


def test_increment_is_a_typed_block_named_by_its_step() -> None:
    add = increment(3)
    assert add.name == "add_3"
    assert add.inputs == (df.Port("x", int),)
    assert add.outputs == (df.Port("x", int),)
    assert add(x=4) == 7
    assert add(4) == 7
    assert increment(-2).name == "sub_2"
    assert increment(0).name == "add_0"
    assert df.check(add).diagnostics == ()


def test_increment_on_another_name() -> None:
    add = increment(2, "y")
    assert [p.name for p in add.inputs] == ["y"]
    assert df.compile(add)(y=1) == {"y": 3}


@pytest.mark.parametrize("bad", ["not a name", "class", "", "1x"])
def test_increment_refuses_a_non_identifier(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        increment(1, bad)


@SETTINGS
@given(st.integers(-50, 50), st.integers())
def test_increment_adds_k(k: int, x: int) -> None:
    assert df.compile(increment(k))(x=x, output="x") == x + k


# -- counter_loops -------------------------------------------------------------------------------------------


@SETTINGS
@given(counter_loops())
def test_counter_expectation_matches_a_direct_run_of_the_tree(case: CounterCase) -> None:
    """The expected x (interpreted from the random structure) equals running the built tree block by block."""
    assert _run(case.block, dict(case.inputs)).get("x", case.inputs["x"]) == case.expected


@SETTINGS
@given(counter_loops())
def test_counter_inputs_are_the_block_inputs(case: CounterCase) -> None:
    assert {p.name for p in case.block.inputs} == set(case.inputs)
    assert all(isinstance(v, int) for v in case.inputs.values())
    assert "x" in case.inputs


@SETTINGS
@given(counter_loops(max_depth=2, max_blocks=2, max_steps=3))
def test_counter_bounds_are_respected(case: CounterCase) -> None:
    assert all(0 <= v <= 3 for k, v in case.inputs.items() if k != "x")
    assert _loop_depth(case.block) <= 2


@SETTINGS
@given(counter_loops(max_depth=0))
def test_counter_depth_zero_is_one_increment(case: CounterCase) -> None:
    assert set(case.inputs) == {"x"}
    assert case.structure.startswith("inc(")


@pytest.mark.parametrize(
    "wanted",
    [
        pytest.param(lambda c: any(v == 0 for k, v in c.inputs.items() if k != "x"), id="zero-count"),
        pytest.param(lambda c: _loop_depth(c.block) >= 2, id="nested-loops"),
        pytest.param(
            lambda c: any(isinstance(b, df.Loop) and b.over for b in _composites(c.block)), id="over"
        ),
        pytest.param(lambda c: any(isinstance(b, df.Graph) for b in _composites(c.block)), id="graph"),
        pytest.param(lambda c: "add(t" in c.structure and "add(i" in c.structure, id="index-and-item"),
    ],
)
def test_counter_loops_cover(wanted: Any) -> None:
    find(counter_loops(), wanted, settings=FIND)


def test_counter_loops_refuse_bad_bounds() -> None:
    with pytest.raises(InvalidArgument):
        counter_loops(max_blocks=0)
    with pytest.raises(InvalidArgument):
        counter_loops(max_steps=-1)


# -- well_typed_graphs / mistyped_graphs --------------------------------------------------------------------


@SETTINGS
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), well_typed_graphs(n))))
def test_well_typed_graphs_stay_within_max_blocks(sized: tuple[int, Any]) -> None:
    max_blocks, blk = sized
    assert 1 <= len(list(_leaves(blk))) <= max_blocks


@SETTINGS
@given(well_typed_graphs())
def test_well_typed_graph_ports_are_all_annotated(blk: Any) -> None:
    codes = df.check(blk).codes()
    assert "DF202" not in codes and "DF204" not in codes


@pytest.mark.parametrize(
    "wanted",
    [
        pytest.param(lambda b: isinstance(b, df.Loop), id="root-loop"),
        pytest.param(lambda b: isinstance(b, df.Graph), id="root-graph"),
        pytest.param(lambda b: any(isinstance(c, df.Loop) and c.over for c in _composites(b)), id="over"),
        pytest.param(lambda b: _loop_depth(b) >= 2, id="nested-loops"),
        pytest.param(lambda b: any(isinstance(c, df.Graph) and c.edges for c in _composites(b)), id="edges"),
        pytest.param(
            lambda b: (
                any(isinstance(c, df.Loop) for c in _composites(b))
                and any(isinstance(c, df.Graph) for c in _composites(b))
            ),
            id="loop-and-graph",
        ),
    ],
)
def test_well_typed_graphs_cover(wanted: Any) -> None:
    find(well_typed_graphs(), wanted, settings=FIND)


@SETTINGS
@given(mistyped_graphs())
def test_injected_path_names_a_port_of_a_leaf(case: Injected) -> None:
    """The expected path is `<leaf path>.<port>` for a leaf that reads that port, by the documented rules."""
    assert case.code in ("DF001", "DF101")
    leaf_path, _, port = case.path.rpartition(".")
    leaves = dict(_leaves(case.block))
    assert leaf_path in leaves, sorted(leaves)
    assert port in [p.name for p in leaves[leaf_path].inputs]
    assert case.structure


@pytest.mark.parametrize("code", ["DF001", "DF101"])
def test_mistyped_graphs_cover(code: str) -> None:
    """Both codes are injected, also below the top level (inside loops, graphs, Sequentials)."""
    nested = find(mistyped_graphs(), lambda c: c.code == code and c.path.count("/") >= 2, settings=FIND)
    assert nested.path.startswith("seq0/")


def test_typed_strategies_refuse_bad_bounds() -> None:
    with pytest.raises(InvalidArgument):
        well_typed_graphs(0)
    with pytest.raises(InvalidArgument):
        mistyped_graphs(0)


# -- malformed_graphs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["DF002", "DF003", "DF004", "DF005", "DF006", "DF102", "DF103"])
def test_malformed_graphs_cover(code: str) -> None:
    find(malformed_graphs(), lambda case: case.code == code, settings=FIND)


def _codes_of(case: Malformed) -> list[str]:
    try:
        blk = case.build()
    except df.WiringError as exc:
        return exc.report.codes()
    return df.check(blk).codes()


@SETTINGS
@given(malformed_graphs())
def test_malformed_builders_are_repeatable(case: Malformed) -> None:
    """build() makes a fresh definition each time, with the same diagnostics."""
    assert _codes_of(case) == _codes_of(case)
    assert "build" not in repr(case)


# -- inputs_for --------------------------------------------------------------------------------------------


@df.block(outputs="y")
def _optional(x: int, scale: float = 1.0) -> float:
    return x * scale


@df.block(outputs="y")
def _maybe(v: int | None) -> int:
    return 0


@df.block(outputs="z")
def _real(v: float) -> int:
    return 0


@df.block(outputs="y")
def _anything(v: Any) -> Any:
    return v


@df.block(outputs="x")
def _add_item(x: int, t: int) -> int:
    return x + t


@SETTINGS
@given(inputs_for(df.compile(counter_two), num_steps=st.just(3)))
def test_inputs_for_uses_overrides(inputs: dict[str, Any]) -> None:
    assert inputs["num_steps"] == 3
    assert isinstance(inputs["x"], int)


def test_inputs_for_refuses_an_unknown_override() -> None:
    with pytest.raises(InvalidArgument, match="num_steps"):
        inputs_for(df.compile(counter_two), num_step=st.just(3))


@SETTINGS
@given(inputs_for(df.compile(counter_two)))
def test_inputs_for_bounds_loop_counts(inputs: dict[str, Any]) -> None:
    assert 0 <= inputs["num_steps"] <= MAX_LOOP_STEPS


def test_inputs_for_sometimes_omits_optional_inputs() -> None:
    strategy = inputs_for(df.compile(_optional))
    find(strategy, lambda d: "scale" not in d, settings=FIND)
    found = find(strategy, lambda d: "scale" in d, settings=FIND)
    assert isinstance(found["scale"], float | int)


@SETTINGS
@given(inputs_for(df.compile(df.Sequential(_maybe, _real))))
def test_inputs_for_satisfies_every_reader_of_an_input(inputs: dict[str, Any]) -> None:
    """v is read as int | None and as float: only an int satisfies both, and the program accepts it."""
    assert isinstance(inputs["v"], int)
    df.compile(df.Sequential(_maybe, _real))(**inputs)


@SETTINGS
@given(inputs_for(_anything))
def test_inputs_for_draws_plain_values_for_any(inputs: dict[str, Any]) -> None:
    assert inputs["v"] is None or isinstance(inputs["v"], bool | int | float | str)


@SETTINGS
@given(inputs_for(df.compile(df.Loop(_add_item, over="ts"))))
def test_inputs_for_draws_lists_of_items_for_over_loops(inputs: dict[str, Any]) -> None:
    assert isinstance(inputs["ts"], list) and len(inputs["ts"]) <= MAX_LOOP_ITEMS
    assert all(isinstance(t, int) for t in inputs["ts"])
    assert df.compile(df.Loop(_add_item, over="ts"))(**inputs, output="x") == inputs["x"] + sum(inputs["ts"])


@SETTINGS
@given(inputs_for(increment(1, "target"), target=st.just(5)))
def test_inputs_for_takes_a_leaf_block_and_an_input_named_target(inputs: dict[str, Any]) -> None:
    assert inputs == {"target": 5}

"""Property-based tests of the engine: counting loops, type checking, malformed graphs, bad calls, inputs.

The strategies live in dfgraph.testing; every expectation they carry is computed from the random structure
itself. The last section holds the minimal reproductions of engine bugs these properties found.
"""

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph import passes
from dfgraph.check import Rules
from dfgraph.codegen import Unset
from dfgraph.ir import LoopOp, Lowered, verify
from dfgraph.testing import MAX_LOOP_STEPS, CounterCase, counter_loops, increment, inputs_for
from dfgraph.testing.generators import (
    Injected,
    Malformed,
    malformed_graphs,
    mistyped_graphs,
    well_typed_graphs,
)
from dfgraph_blocks.examples import counter_one, counter_two, guided_loop

# Sized so that the whole file runs in well under a minute on two cores.
PROPERTY = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(PROPERTY, max_examples=40)

COUNTS = st.integers(0, 12)  # loop counts, zero included


@pytest.fixture(autouse=True, scope="module")
def _verify_after_every_pass() -> Iterator[None]:
    """Every compile in this file verifies the IR after each pass: the debug switch, on for the module."""
    patch = pytest.MonkeyPatch()
    patch.setenv(passes.VERIFY_ENV, "1")
    yield
    patch.undo()


def test_this_file_compiles_with_the_verifier_on() -> None:
    assert passes.verifying()


def _printed_lines(lowered: Lowered) -> int:
    """The lines the printer gives: header, inputs, ops, each loop's phis and outputs, program outputs."""
    ops = list(lowered.ops())
    loops = [op for op in ops if isinstance(op, LoopOp)]
    extra = sum(len(op.carried) + len(op.outs) for op in loops)
    return 1 + len(lowered.inputs) + len(ops) + extra + len(lowered.outputs)


@PROPERTY
@given(st.one_of(well_typed_graphs(), counter_loops().map(lambda case: case.block)))
def test_every_pass_leaves_a_sound_ir_that_prints_stably(blk: df.Block) -> None:
    """The pass list with the verifier after each pass (IRError otherwise); the final IR prints one line
    per op, phi and loop output, the same text for the same graph lowered again, and verifies."""
    compiled = passes.compile_ir(blk, rules=Rules(), fuse=True, verify=True)
    text = str(compiled.lowered)
    assert len(text.splitlines()) == _printed_lines(compiled.lowered)
    again = df.lower(blk)
    verify(again)
    assert str(again) == text  # these graphs have no batchable blocks: fusion changes nothing


def _controls(prog: df.Program) -> list[str]:
    """The loop-count inputs of a generated graph (n0, n1, ...)."""
    return [p.name for p in prog.inputs if re.fullmatch(r"n\d+", p.name)]


def _outcome(fn: Any, /, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    """Call fn; return (result, None) or (None, the exception), so assertions fail outside `except`
    (an exception chained to generated code has a new file name per compile, which hypothesis would
    report as a flaky failure instead of shrinking it)."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:
        return None, exc


# -- 1. loop accumulation ------------------------------------------------------------------------------------


@PROPERTY
@given(counter_loops())
def test_random_counter_nests_compute_the_interpreted_value(case: CounterCase) -> None:
    """Random nests of Sequentials and Loops of increments: compiled result == the interpreted value."""
    note(case.structure)
    assert df.check(case.block).ok
    prog = df.compile(case.block)
    assert {p.name for p in prog.inputs} == set(case.inputs)
    result, error = _outcome(prog, **case.inputs)
    assert error is None, repr(error)
    assert result["x"] == case.expected
    assert prog(**case.inputs, output="x") == case.expected


@PROPERTY
@given(
    n=COUNTS,
    ks=st.lists(st.integers(-5, 5), min_size=1, max_size=6),
    x0=st.integers(-(10**6), 10**6),
)
def test_one_loop_adds_its_increments_each_step(n: int, ks: list[int], x0: int) -> None:
    """Loop(Sequential(inc(k1), ..., inc(kb)), times=n) adds n * (k1 + ... + kb)."""
    loop = df.Loop(df.Sequential(*(increment(k) for k in ks)), times="num_steps")
    assert df.check(loop).ok
    assert df.compile(loop)(num_steps=n, x=x0, output="x") == x0 + n * sum(ks)


@QUICK
@given(counter_loops(max_depth=15, max_blocks=2, max_steps=1))
def test_deep_nests_compute_the_interpreted_value(case: CounterCase) -> None:
    """Nests deeper than one generated function holds (loops become helper functions) still count right."""
    note(case.structure)
    result, error = _outcome(df.compile(case.block), **case.inputs, output="x")
    assert error is None, repr(error)
    assert result == case.expected


# -- 2. nested loops -----------------------------------------------------------------------------------------


@PROPERTY
@given(n=COUNTS, m=COUNTS, k=st.integers(0, 5), x0=st.integers(-100, 100))
def test_nested_loops_multiply(n: int, m: int, k: int, x0: int) -> None:
    """Loop(Sequential(inc(1), Loop(Sequential(inc(1) * k), times=m)), times=n) adds n * (m * k + 1)."""
    inc = increment(1)
    inner = df.Loop(df.Sequential(*[inc] * k), times="m", name="inner")
    outer = df.Loop(df.Sequential(inc, inner), times="n", name="outer")
    assert df.check(outer).ok
    result, error = _outcome(df.compile(outer), n=n, m=m, x=x0, output="x")
    assert error is None, repr(error)
    assert result == x0 + n * (m * k + 1)


# -- 3. well-typed graphs ------------------------------------------------------------------------------------


@PROPERTY
@given(well_typed_graphs())
def test_well_typed_graphs_check_clean_and_compile(blk: df.Block) -> None:
    """Every input produced earlier with an assignable type, or left as a graph input: no error."""
    report = df.check(blk)
    assert report.errors == (), str(report)
    assert report.ok
    prog = df.compile(blk)
    assert prog.report.errors == ()


@PROPERTY
@given(well_typed_graphs(), st.data())
def test_well_typed_graphs_run_and_return_every_output(blk: df.Block, data: st.DataObject) -> None:
    """With every loop running at least once, a well-typed graph runs and returns all its outputs."""
    if not df.check(blk).ok:
        return  # reported by the test above
    prog = df.compile(blk)
    note(prog.source)
    inputs = data.draw(inputs_for(prog, **{n: st.integers(1, 2) for n in _controls(prog)}), label="inputs")
    result, error = _outcome(prog, **inputs)
    assert error is None, repr(error)
    assert set(result) == {p.name for p in prog.outputs}


# -- 4. injected type errors ---------------------------------------------------------------------------------


@PROPERTY
@given(mistyped_graphs())
def test_an_injected_type_error_is_reported_at_its_path(case: Injected) -> None:
    """The injected DF001 / DF101 is reported with its code at its path, and nothing else is."""
    report = df.check(case.block)
    found = [(d.code, d.path) for d in report.errors]
    assert "DF000" not in report.codes(), str(report)
    assert (case.code, case.path) in found, str(report)
    if case.code == "DF001":
        assert found == [(case.code, case.path)], str(report)  # one edge changed: one error
    else:
        assert {code for code, _ in found} == {case.code}, str(report)
    with pytest.raises(df.WiringError) as raised:
        df.compile(case.block)
    assert raised.value.report.errors == report.errors


# -- 5. malformed graphs and bad calls raise only documented errors ------------------------------------------


@PROPERTY
@given(malformed_graphs())
def test_malformed_graphs_raise_only_wiring_errors(case: Malformed) -> None:
    """Building raises df.WiringError, or df.check reports the error (never raising) and compile refuses."""
    try:
        blk = case.build()
    except df.WiringError as exc:
        codes = exc.report.codes()
        assert case.code in codes, str(exc.report)
        assert "DF000" not in codes
        return
    report, error = _outcome(df.check, blk)
    assert error is None, f"df.check raised {error!r}"
    assert "DF000" not in report.codes(), str(report)
    assert case.code in [d.code for d in report.errors], str(report)
    _, error = _outcome(df.compile, blk)
    assert isinstance(error, df.WiringError), repr(error)
    assert error.report.errors == report.errors
    if isinstance(blk, df.Sequential | df.Loop | df.Graph):
        _, error = _outcome(blk)  # calling a composite compiles it
        assert isinstance(error, df.WiringError), repr(error)


_NOT_INT = st.one_of(
    st.text(max_size=3), st.none(), st.floats(), st.lists(st.integers(), max_size=2), st.just(object())
)


@st.composite
def _bad_calls(
    draw: st.DrawFn, prog: df.Program, good: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A call of `prog` that must be refused: missing, unknown or ill-typed input, bad output=, positional."""
    names = [p.name for p in prog.inputs]
    kinds = ["unknown_input", "unknown_output", "bad_output", "positional"]
    kinds += ["missing", "ill_typed"] if names else []
    kind = draw(st.sampled_from(kinds), label="kind")
    kwargs = dict(good)
    args: tuple[Any, ...] = ()
    if kind == "missing":
        del kwargs[draw(st.sampled_from(names))]
    elif kind == "unknown_input":
        name = draw(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n not in names))
        kwargs[name] = draw(st.integers())
    elif kind == "ill_typed":
        kwargs[draw(st.sampled_from(names))] = draw(_NOT_INT)
    elif kind == "unknown_output":
        outputs = [p.name for p in prog.outputs]
        bad = draw(st.text(max_size=4).filter(lambda n: n not in outputs))
        kwargs["output"] = draw(st.sampled_from([bad, [bad], [*outputs, bad]]))
    elif kind == "bad_output":
        kwargs["output"] = draw(st.sampled_from([42, [42], 1.5, [None]]))
    else:
        args = tuple(draw(st.lists(st.integers(), min_size=1, max_size=3)))
    return args, kwargs


@PROPERTY
@given(counter_loops(max_depth=2), st.data())
def test_bad_calls_raise_input_errors(case: CounterCase, data: st.DataObject) -> None:
    """Missing, unknown or ill-typed inputs, unknown outputs, positional arguments: df.InputError only."""
    prog = df.compile(case.block)
    args, kwargs = data.draw(_bad_calls(prog, case.inputs), label="call")
    _, error = _outcome(prog, *args, **kwargs)
    assert isinstance(error, df.InputError), repr(error)


@PROPERTY
@given(well_typed_graphs(max_blocks=6), st.data())
def test_typed_graphs_refuse_missing_and_unknown_inputs(blk: df.Block, data: st.DataObject) -> None:
    """Dropping a required input or adding an unknown one is refused with df.InputError."""
    if not df.check(blk).ok:
        return
    prog = df.compile(blk)
    good = data.draw(inputs_for(prog, **{n: st.integers(1, 2) for n in _controls(prog)}), label="inputs")
    required = [p.name for p in prog.inputs if p.required]
    if required and data.draw(st.booleans(), label="drop"):
        del good[data.draw(st.sampled_from(required))]
    else:
        good["not_an_input"] = 1
    _, error = _outcome(prog, **good)
    assert isinstance(error, df.InputError), repr(error)


@PROPERTY
@given(well_typed_graphs(max_blocks=8))
def test_check_never_raises(blk: df.Block) -> None:
    """df.check returns a report for whatever it is given, with no internal (DF000) error."""
    report, error = _outcome(df.check, blk)
    assert error is None, repr(error)
    assert "DF000" not in report.codes()


# -- 6. zero iterations --------------------------------------------------------------------------------------

_TYPED_VALUES = st.sampled_from(
    [int, float, str, bytes, list[int], dict[str, int], tuple[int, ...], int | None, Sequence[float]]
).flatmap(lambda t: st.tuples(st.just(t), st.from_type(t)))


def _copying_step(hint: Any, name: str) -> df.Block:
    """A block that reads `v: hint` and writes an equal copy of it back."""

    def step(v: Any) -> Any:
        return type(v)(v) if v is not None else None

    step.__annotations__ = {"v": hint, "return": hint}
    return df.block(outputs="v", name=name)(step)


@PROPERTY
@given(_TYPED_VALUES, st.integers(1, 3), st.booleans())
def test_zero_iterations_return_the_carried_value_unchanged(
    typed: tuple[Any, Any], n_blocks: int, over: bool
) -> None:
    """A carried value is returned as it came in (the same object) when the loop runs zero times."""
    hint, value = typed
    body = df.Sequential(*(_copying_step(hint, f"step{k}") for k in range(n_blocks)))
    loop = df.Loop(body, over="ts") if over else df.Loop(body, times="n")
    assert df.check(loop).ok
    prog = df.compile(loop)
    result = prog(ts=[], v=value, output="v") if over else prog(n=0, v=value, output="v")
    assert result is value
    assert (prog(ts=[], v=value) if over else prog(n=0, v=value)) == {"v": value}


@PROPERTY
@given(counter_loops(), st.data())
def test_zero_counts_leave_x_unchanged_when_every_increment_is_in_a_loop(
    case: CounterCase, data: st.DataObject
) -> None:
    """Wrapping any counter nest in a loop that runs zero times returns x unchanged."""
    outer = df.Loop(case.block, times="never", name="outer")
    inputs = {**case.inputs, "never": 0}
    result, error = _outcome(df.compile(outer), **inputs, output="x")
    assert error is None, repr(error)
    assert result == case.inputs["x"]


@df.block(outputs="y")
def _fresh(x: int) -> int:
    return x * 2


def test_zero_iterations_leave_a_non_carried_output_without_a_value() -> None:
    """A body output that is not carried has no value after zero iterations: omitted, and output= refuses."""
    prog = df.compile(df.Loop(df.Sequential(increment(1), _fresh), times="n"))
    assert prog(n=0, x=5) == {"x": 5}
    with pytest.raises(df.InputError):
        prog(n=0, x=5, output="y")
    with pytest.raises(df.InputError, match="output 'y' has no value: loop 'loop' ran zero times"):
        prog(n=0, x=5, output=["x", "y"])  # named in a list: refused too, never a sentinel
    assert prog(n=0, x=5, output=["x"]) == {"x": 5}
    assert prog(n=2, x=5) == {"x": 7, "y": 14}


@PROPERTY
@given(well_typed_graphs(max_blocks=8), st.data())
def test_zero_iterations_everywhere_leak_no_sentinel_and_match_the_interpreter(
    blk: df.Block, data: st.DataObject
) -> None:
    """Every times= loop runs zero times: each output has a value or is left out (a name asked for
    raises InputError), and the interpreter answers the same."""
    prog = df.compile(blk)
    inputs = data.draw(inputs_for(prog, **{n: st.just(0) for n in _controls(prog)}))
    result, error = _outcome(prog, **inputs)
    assert (result, repr(error)) == _outcome_repr(prog.interpret, **inputs)
    if error is None:
        assert not any(isinstance(v, Unset) for v in result.values()), result
        for name in (p.name for p in prog.outputs):
            one, failed = _outcome(prog, **inputs, output=[name])
            assert (name in result) == (failed is None), (name, failed)
            assert failed is None or isinstance(failed, df.InputError)
            if failed is None:
                assert one == {name: result[name]}


def _outcome_repr(fn: Any, /, **kwargs: Any) -> tuple[Any, str]:
    result, error = _outcome(fn, **kwargs)
    return result, repr(error)


# -- 7. inputs_for -------------------------------------------------------------------------------------------


@PROPERTY
@given(counter_loops(), st.data())
def test_inputs_for_draws_inputs_the_program_accepts(case: CounterCase, data: st.DataObject) -> None:
    """inputs_for(prog, num_steps=...) draws keyword inputs the program runs on."""
    prog = df.compile(case.block)
    inputs = data.draw(inputs_for(prog, **{n: COUNTS for n in _controls(prog)}))
    assert set(inputs) == {p.name for p in prog.inputs}  # every input here is required
    result, error = _outcome(prog, **inputs)
    assert error is None, repr(error)
    assert "x" in result


@QUICK
@given(st.data())
def test_inputs_for_examples_draw_accepted_inputs(data: st.DataObject) -> None:
    """The example graphs accept what inputs_for draws, with and without an override of num_steps."""
    for graph in (counter_one, counter_two):
        prog = df.compile(graph)
        inputs = data.draw(inputs_for(prog))
        assert 0 <= inputs["num_steps"] <= MAX_LOOP_STEPS
        assert prog(**inputs, output="x") == inputs["x"] + inputs["num_steps"] * len(graph.body.children)
    prog = df.compile(guided_loop)
    inputs = data.draw(inputs_for(prog, num_steps=st.integers(0, 20)))
    _, error = _outcome(prog, **inputs)
    assert error is None, repr(error)


@QUICK
@given(well_typed_graphs(max_blocks=8), st.data())
def test_inputs_for_typed_graphs_draws_inputs_the_checks_accept(blk: df.Block, data: st.DataObject) -> None:
    """Inputs drawn for any typed graph pass the program's input checks (no InputError naming an input)."""
    if not df.check(blk).ok:
        return
    prog = df.compile(blk)
    inputs = data.draw(inputs_for(prog, **{n: st.integers(1, 2) for n in _controls(prog)}))
    _, error = _outcome(prog, **inputs)
    assert not (isinstance(error, df.InputError) and "must be" in str(error)), repr(error)


# -- BlockError points at the block and the iteration --------------------------------------------------------


def _fails_at(step: int) -> df.Block:
    @df.block(outputs="x")
    def fail(x: int, i: int) -> int:
        if i == step:
            raise ValueError(f"failed at step {step}")
        return x

    return fail


@PROPERTY
@given(n=st.integers(0, 8), fail_at=st.integers(0, 8), before=st.integers(0, 3))
def test_a_failing_block_is_named_with_its_iteration(n: int, fail_at: int, before: int) -> None:
    """A block raising in iteration k gives df.BlockError with its path, k, and the original as cause."""
    loop = df.Loop(df.Sequential(*[increment(1)] * before, _fails_at(fail_at)), times="n", name="lp")
    prog = df.compile(loop)
    result, error = _outcome(prog, n=n, x=0, output="x")
    if fail_at >= n:
        assert error is None and result == n * before
        return
    assert isinstance(error, df.BlockError), repr(error)
    assert error.path == "lp/fail"
    assert error.iteration == fail_at
    assert error.iterations == (("lp", fail_at),)
    assert isinstance(error.__cause__, ValueError)


# -- Regressions: minimal reproductions of engine bugs the properties above found ----------------------------


@df.block(outputs="a")
def _make_a() -> int:
    return 1


@df.block(outputs="y")
def _use_a(a: int) -> int:
    return a


def test_regression_output_of_a_loop_nested_in_a_loop_is_kept() -> None:
    """The inner loop's (non-carried) output is the outer loop's output: it must not be lost."""
    outer = df.Loop(df.Sequential(df.Loop(_fresh, times="m", name="inner")), times="n", name="outer")
    assert df.compile(outer)(n=1, m=1, x=5) == {"y": 10}


def test_regression_carried_value_written_in_a_doubly_nested_loop() -> None:
    """`a` is carried by the outer loop and written two loops down: the generated code must define it."""
    inner = df.Loop(df.Loop(_make_a, times="k", name="l2"), times="m", name="l1")
    outer = df.Loop(df.Sequential(_use_a, inner), times="n", name="outer")
    result, error = _outcome(df.compile(outer), n=1, m=1, k=1, a=0)
    assert error is None, repr(error)
    assert result == {"y": 0, "a": 1}


def test_regression_carried_value_kept_when_the_inner_loop_runs_zero_times() -> None:
    """The inner loop that writes the carried `a` runs zero times: `a` keeps its value (no NameError)."""
    outer = df.Loop(df.Sequential(_use_a, df.Loop(_make_a, times="m", name="inner")), times="n", name="outer")
    result, error = _outcome(df.compile(outer), n=1, m=0, a=7)
    assert error is None, repr(error)
    assert result == {"y": 7, "a": 7}


def test_regression_str_is_not_a_sequence_of_int() -> None:
    """str is Sequence[str]: feeding it to a Sequence[int] port is DF001 (it fails at run time otherwise)."""

    @df.block(outputs="s")
    def text() -> str:
        return "ab"

    @df.block(outputs="total")
    def total(s: Sequence[int]) -> int:
        return sum(s)

    report = df.check(df.Sequential(text, total, name="seq"))
    assert [(d.code, d.path) for d in report.errors] == [("DF001", "seq/total.s")], str(report)


def test_regression_type_change_of_a_value_carried_through_a_nested_loop_is_DF101() -> None:
    """x enters the outer loop as int, the inner loop reads it as int, the outer body then writes str."""

    @df.block(outputs="x")
    def to_text() -> str:
        return "s"

    inner = df.Loop(df.Sequential(increment(1), name="ib"), times="m", name="inner")
    outer = df.Loop(df.Sequential(inner, to_text, name="ob"), times="n", name="outer")
    report = df.check(outer)
    assert any(d.code == "DF101" and d.path.startswith("outer/inner") for d in report.errors), str(report)


def test_regression_carried_readers_with_different_but_compatible_types_check_clean() -> None:
    """x is always int (both writers write int); its readers take int | None and float: no error."""

    @df.block(outputs="y")
    def maybe(x: int | None) -> int:
        return 1

    @df.block(outputs="x")
    def real(x: float) -> int:
        return 1

    @df.block(outputs="x")
    def start() -> int:
        return 1

    inner = df.Loop(df.Sequential(real, name="ib"), times="m", name="inner")
    outer = df.Loop(df.Sequential(maybe, inner, name="ob"), times="n", name="outer")
    report = df.check(df.Sequential(start, outer, name="root"))
    assert report.errors == (), str(report)


class _HandWritten:
    """A hand-written protocol block (name, inputs, outputs, __call__) with the ports it is given."""

    def __init__(self, inputs: Any, outputs: Any) -> None:
        self.name, self.inputs, self.outputs = "raw", inputs, outputs

    def __call__(self, **inputs: Any) -> Any:
        return {}


def test_regression_a_block_whose_ports_are_not_ports_is_DF006_not_an_internal_error() -> None:
    """Ports given as strings (or None) make a malformed definition (DF006), not a checker crash (DF000)."""
    for raw in (_HandWritten(("x",), ("y",)), _HandWritten(None, ())):
        report = df.check(df.Sequential(increment(1), raw))
        assert "DF000" not in report.codes(), str(report)
        assert "DF006" in report.codes(), str(report)


def test_regression_a_block_naming_an_output_twice_is_DF006() -> None:
    """@df.block refuses outputs=('y', 'y') with DF006; a hand-written block doing the same is no better."""
    raw = _HandWritten((df.Port("x", int),), (df.Port("y", int), df.Port("y", str)))
    report = df.check(df.Sequential(increment(1), raw))
    assert "DF006" in [d.code for d in report.errors], str(report)

"""The checker: every diagnostic code, its path and message, all found in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import dfgraph as df


@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1


@df.block(outputs="y")
def to_str(x: int) -> str:
    return str(x)


@df.block(outputs="z")
def needs_int(y: int) -> int:
    return y


@df.block(outputs="x")
def halve(x: float) -> float:
    return x / 2


def only(report: df.Report, code: str) -> df.Diagnostic:
    found = [d for d in report.diagnostics if d.code == code]
    assert len(found) == 1, str(report)
    return found[0]


def test_clean_graph_reports_nothing() -> None:
    report = df.check(df.Loop(df.Sequential(add_one, add_one), times="n"))
    assert report.ok and report.diagnostics == ()
    assert str(report) == "0 errors, 0 warnings"


def test_df001_type_mismatch_names_both_ends_and_types() -> None:
    report = df.check(df.Sequential(add_one, to_str, needs_int, name="seq"))
    d = only(report, "DF001")
    assert d.severity is df.Severity.ERROR and d.severity == "error"
    assert d.path == "seq/needs_int.y"
    assert "str" in d.message and "int" in d.message and "seq/to_str.y" in d.message
    assert d.hint
    assert str(d).startswith("seq/needs_int.y: error[DF001]: ")
    with pytest.raises(df.WiringError) as info:
        df.compile(df.Sequential(add_one, to_str, needs_int, name="seq"))
    assert info.value.report.codes() == ["DF001"]


def test_assignability_rules() -> None:
    @df.block(outputs="v")
    def make_bool() -> bool:
        return True

    @df.block(outputs="w")
    def take_float(v: float) -> float:
        return v

    @df.block(outputs="u")
    def take_optional(w: float | None) -> float:
        return w or 0.0

    @df.block(outputs="s")
    def take_seq(lst: Sequence[int]) -> int:
        return len(lst)

    @df.block(outputs="lst")
    def make_list() -> list[int]:
        return [1]

    @df.block(outputs="a")
    def anything(u: Any) -> Any:
        return u

    ok = df.Sequential(make_bool, take_float, take_optional, make_list, take_seq, anything)
    assert df.check(ok).ok, str(df.check(ok))

    @df.block(outputs="w")
    def maybe() -> float | None:
        return None

    assert df.check(df.Sequential(maybe, take_float_w())).codes() == ["DF001"]


def take_float_w() -> Any:
    @df.block(outputs="q")
    def take(w: float) -> float:
        return w

    return take


def test_df002_external_input_read_with_incompatible_types() -> None:
    @df.block(outputs="a")
    def ra(v: int) -> int:
        return v

    @df.block(outputs="b")
    def rb(v: str) -> str:
        return v

    d = only(df.check(df.Sequential(ra, rb, name="s")), "DF002")
    assert d.path == "s" and "s/ra.v" in d.message and "s/rb.v" in d.message

    @df.block(outputs="c")
    def rc(v: bool) -> bool:
        return v

    # int and bool: bool satisfies both, so the input is narrowed to bool and checked at the boundary
    prog = df.compile(df.Sequential(ra, rc))
    assert prog.inputs[0].type is bool
    with pytest.raises(df.InputError, match="must be bool"):
        prog(v=3)


def test_df003_unknown_names_with_did_you_mean() -> None:
    g = df.Graph(
        {"a": add_one, "b": add_one},
        edges=[("a.xx", "b.x"), ("c.x", "a.x"), ("a.x", "b.nope"), ("a.x", "bx")],
        name="g",
    )
    report = df.check(g)
    assert report.codes().count("DF003") == 4
    messages = [d.message for d in report.errors]
    assert any("no output 'xx'; did you mean 'x'?" in m for m in messages)
    assert any("names no node 'c'" in m for m in messages)
    assert any("no input 'nope'" in m for m in messages)
    assert any("not of the form 'node.port'" in m for m in messages)

    loop = df.Loop(add_one, times="n", carry=("xs",))
    d = next(d for d in df.check(loop).errors if d.code == "DF003")
    assert "did you mean 'x'?" in d.message


def test_df004_cycle_shows_the_whole_path() -> None:
    g = df.Graph(
        {"a": add_one, "b": add_one, "c": add_one, "d": add_one},
        edges=[("a.x", "b.x"), ("b.x", "c.x"), ("c.x", "a.x"), ("c.x", "d.x")],
        name="g",
    )
    d = only(df.check(g), "DF004")
    assert d.message.endswith("a -> b -> c -> a")
    assert d.path == "g"


def test_df005_input_driven_twice_and_duplicate_outputs() -> None:
    g = df.Graph({"a": add_one, "b": add_one, "c": add_one}, edges=[("a.x", "c.x"), ("b.x", "c.x")], name="g")
    d = only(df.check(g), "DF005")
    assert d.path == "g/c.x" and "a.x" in d.message and "b.x" in d.message
    g2 = df.Graph({"a": add_one, "b": add_one}, outputs=["a.x", "b.x"], name="g2")
    assert "DF005" in df.check(g2).codes()


def test_df101_loop_carried_type_change() -> None:
    report = df.check(df.Loop(df.Sequential(add_one, halve), times="n", name="loop"))
    d = only(report, "DF101")
    assert d.path == "loop/add_one.x"
    assert "int" in d.message and "float" in d.message and "loop/halve.x" in d.message
    assert "widen" in d.hint


def test_df102_declared_carry_mismatch() -> None:
    @df.block(outputs="y")
    def fresh(x: int) -> int:
        return x

    report = df.check(df.Loop(df.Sequential(add_one, fresh), times="n", carry=("y",), name="l"))
    codes = report.codes()
    assert codes.count("DF102") == 2  # y is not carried (written before read), x is carried but undeclared
    assert df.check(df.Loop(add_one, times="n", carry=("x",))).ok


def test_df103_body_writes_index_item_or_control() -> None:
    @df.block(outputs="i")
    def writes_i(x: int) -> int:
        return x

    @df.block(outputs="n")
    def writes_n(x: int) -> int:
        return x

    @df.block(outputs="t")
    def writes_t(x: int) -> int:
        return x

    assert df.check(df.Loop(df.Sequential(add_one, writes_i), times="n")).codes() == ["DF103"]
    assert df.check(df.Loop(df.Sequential(add_one, writes_n), times="n")).codes() == ["DF103"]
    assert df.check(df.Loop(df.Sequential(add_one, writes_t), over="ts")).codes() == ["DF103"]
    # with times=, 't' is an ordinary name
    assert df.check(df.Loop(df.Sequential(add_one, writes_t), times="n")).ok


def test_df006_malformed_definitions_raise_at_construction() -> None:
    with pytest.raises(df.WiringError) as info:
        df.Sequential(add_one, 42)
    assert info.value.report.codes() == ["DF006"]
    with pytest.raises(df.WiringError, match="exactly one of times= or over="):
        df.Loop(add_one)
    with pytest.raises(df.WiringError, match="exactly one"):
        df.Loop(add_one, times="n", over="ts")
    with pytest.raises(df.WiringError, match="must differ"):
        df.Loop(add_one, over="ts", item="k", index="k")
    with pytest.raises(df.WiringError, match="identifier"):
        df.Loop(add_one, times="not a name")
    with pytest.raises(df.WiringError, match="edge"):
        df.Graph({"a": add_one}, edges=[("a.x",)])  # type: ignore[list-item]
    with pytest.raises(df.WiringError, match="mapping"):
        df.Graph([add_one])  # type: ignore[arg-type]
    assert df.check(42).codes() == ["DF006"]  # check never raises


def test_df201_overwritten_before_read() -> None:
    d = only(df.check(df.Sequential(to_str, to_str, name="s")), "DF201")
    assert d.severity is df.Severity.WARNING and d.path == "s/to_str.y" and "s/to_str_2.y" in d.message


def test_df203_unused_node_and_df205_unwired_input() -> None:
    g = df.Graph({"a": add_one, "b": to_str}, outputs=["a.x"], name="g")
    report = df.check(g)
    assert report.ok
    assert only(report, "DF203").path == "g/b"
    g2 = df.Graph({"a": add_one, "b": needs_int, "c": to_str}, edges=[], name="g2")
    report = df.check(g2)
    assert report.ok and report.codes() == ["DF205", "DF205"]
    by_path = {d.path: d for d in report.diagnostics}
    assert "('c.y', 'b.y')" in by_path["g2/b.y"].hint
    assert "('a.x', 'c.x')" in by_path["g2/c.x"].hint


def test_df206_readers_disagree_on_default() -> None:
    @df.block(outputs="a")
    def ra(v: int = 1) -> int:
        return v

    @df.block(outputs="b")
    def rb(v: int = 2) -> int:
        return v

    report = df.check(df.Sequential(ra, rb))
    assert only(report, "DF206").severity is df.Severity.WARNING
    prog = df.compile(df.Sequential(ra, rb))
    assert prog.inputs[0].required
    with pytest.raises(df.InputError, match="missing input 'v'"):
        prog()


def test_df207_input_resembling_a_produced_name() -> None:
    @df.block(outputs="latents")
    def prepare(seed: int) -> int:
        return seed

    @df.block(outputs="image")
    def decode(latent: int) -> int:
        return latent

    d = only(df.check(df.Sequential(prepare, decode, name="p")), "DF207")
    assert d.path == "p/decode.latent" and "did you mean 'latents'" in d.message


def test_df207_ignores_names_that_could_not_feed_the_input() -> None:
    @df.block(outputs="negative_prompt_embeds")
    def encode(negative_prompt: str) -> str:
        return negative_prompt  # reads a name close to the one it writes itself

    @df.block(outputs="images")
    def postprocess(latents: int) -> int:
        return latents

    @df.block(outputs="latents")
    def prepare(image: int) -> int:  # 'images' is only written later, so renaming would not connect it
        return image

    assert df.check(df.Sequential(encode, prepare, postprocess, name="p")).codes() == []

    @df.block(outputs="latent")
    def step(latents: int) -> int:  # in a loop, a later write feeds the next iteration: still suggested
        return latents

    d = only(df.check(df.Loop(df.Sequential(step), times="n", name="p")), "DF207")
    assert "did you mean 'latent'" in d.message


def test_all_errors_are_reported_in_one_pass() -> None:
    @df.block(outputs="i")
    def writes_i(x: int) -> int:
        return x

    body = df.Sequential(add_one, halve, to_str, needs_int, writes_i)
    report = df.check(df.Loop(body, times="n", carry=("q",), name="l"))
    assert {"DF001", "DF101", "DF103", "DF003", "DF102"} <= set(report.codes())
    with pytest.raises(df.WiringError) as info:
        df.compile(df.Loop(body, times="n", carry=("q",), name="l"))
    assert len(info.value.report.errors) == len(report.errors) >= 5
    assert "error[DF001]" in str(info.value)


def test_no_duplicate_downstream_reports() -> None:
    # the cycle is reported once; the nodes behind it get silent placeholders, not DF001s
    g = df.Graph(
        {"a": add_one, "b": add_one, "c": to_str},
        edges=[("a.x", "b.x"), ("b.x", "a.x"), ("b.x", "c.x")],
        name="g",
    )
    assert df.check(g).codes() == ["DF004"]


def test_checking_never_raises_on_odd_annotations() -> None:
    class Weird:
        def __class_getitem__(cls, item: Any) -> Any:
            return object()

    @df.block(outputs="y")
    def odd(x: Weird[int]) -> list[NoSuchThing]:  # type: ignore[name-defined, misc] # noqa: F821
        return []

    report = df.check(odd)
    assert report.ok and set(report.codes()) <= {"DF204"}
    assert "DF000" not in report.codes()


def test_df201_inside_a_nested_sequential_names_its_first_writer() -> None:
    @df.block(outputs="emb")
    def encode(x: int) -> int:
        return x

    @df.block(outputs="emb")
    def placeholder(n: int) -> int:  # overwrites the encoder's output before anyone reads it
        return 0

    @df.block(outputs="emb")
    def refine(emb: int) -> int:
        return emb

    d = only(
        df.check(df.Sequential(encode, df.Sequential(placeholder, refine, name="core"), name="p")), "DF201"
    )
    assert d.path == "p/encode.emb"
    assert "overwritten by p/core/placeholder.emb" in d.message

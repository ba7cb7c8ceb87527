"""@df.block on functions and classes: ports from signatures, outputs, definition errors."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

import dfgraph as df


def codes(exc: df.WiringError) -> list[str]:
    return exc.report.codes()


def test_function_block_ports_and_plain_call() -> None:
    @df.block(outputs="x")
    def add(x: int, k: int = 1) -> int:
        return x + k

    assert add.name == "add"
    assert [(p.name, p.type, p.required) for p in add.inputs] == [("x", int, True), ("k", int, False)]
    assert add.inputs[1].default == 1
    assert [(p.name, p.type) for p in add.outputs] == [("x", int)]
    assert add(3) == 4  # a decorated function is still the function
    assert add(x=3, k=2) == 5


def test_bare_decorator_names_output_after_function() -> None:
    @df.block
    def latents(seed: int) -> float:
        return seed * 0.5

    assert [p.name for p in latents.outputs] == ["latents"]
    assert df.compile(latents)(seed=4, output="latents") == 2.0


def test_tuple_outputs() -> None:
    @df.block(outputs=("q", "r"))
    def divmod_(a: int, b: int) -> tuple[int, int]:
        return divmod(a, b)

    assert [(p.name, p.type) for p in divmod_.outputs] == [("q", int), ("r", int)]
    assert df.compile(divmod_)(a=7, b=2) == {"q": 3, "r": 1}


def test_namedtuple_outputs() -> None:
    class Pair(NamedTuple):
        low: int
        high: str

    @df.block
    def split(v: int) -> Pair:
        return Pair(v, str(v))

    assert [(p.name, p.type) for p in split.outputs] == [("low", int), ("high", str)]
    assert df.compile(split)(v=3) == {"low": 3, "high": "3"}


def test_none_return_means_no_outputs() -> None:
    seen: list[int] = []

    @df.block
    def log(v: int) -> None:
        seen.append(v)

    assert log.outputs == ()
    assert df.compile(log)(v=5) == {}
    assert seen == [5]


def test_keyword_only_parameters_are_passed_by_keyword() -> None:
    @df.block(outputs="s")
    def f(a: int, *, b: int) -> int:
        return a - b

    prog = df.compile(f)
    assert prog(a=5, b=2, output="s") == 3
    assert "b=b" in prog.source


def test_class_block_instances_hold_components() -> None:
    @df.block(outputs="y")
    class Scale:
        def __init__(self, factor: float) -> None:
            self.factor = factor

        def __call__(self, x: float) -> float:
            return x * self.factor

    double, triple = Scale(2.0), Scale(3.0)
    assert Scale.name == "Scale"
    assert [p.name for p in double.inputs] == ["x"]
    assert double(x=2.0) == 4.0
    seq = df.Sequential({"d": double, "t": Scale(3.0)})
    # both write y: the second reads x too (not y), so y is overwritten before it is read
    assert "DF201" in df.check(seq).codes()
    chained = df.Graph({"d": double, "t": triple}, edges=[("d.y", "t.x")], outputs={"out": "t.y"})
    assert df.compile(chained)(x=1.0) == {"out": 6.0}


def test_custom_name() -> None:
    @df.block(outputs="x", name="increment")
    def f(x: int) -> int:
        return x + 1

    assert f.name == "increment"
    prog = df.compile(df.Sequential(f, f))
    assert "sequential/increment_2" in prog.source


def test_unannotated_ports_warn_and_are_any() -> None:
    @df.block(outputs="y")
    def loose(x):  # type: ignore[no-untyped-def]
        return x

    assert loose.inputs[0].type is Any
    report = df.check(loose)
    assert report.ok
    assert report.codes() == ["DF202", "DF202"]
    assert report.diagnostics[0].path == "loose.x"


def test_unresolvable_annotation_degrades_with_warning() -> None:
    @df.block(outputs="y")
    def odd(x: NotDefinedAnywhere) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 1

    assert odd.inputs[0].type is Any
    assert "DF204" in df.check(odd).codes()


@pytest.mark.parametrize(
    "make",
    [
        lambda: df.block(outputs=("a", "b"))(lambda x: (x, x)),  # no tuple annotation is fine (Any)...
    ],
)
def test_tuple_outputs_without_annotation_are_any(make: Any) -> None:
    blk = make()
    assert [p.type for p in blk.outputs] == [Any, Any]


def test_definition_errors_raise_df006() -> None:
    with pytest.raises(df.WiringError) as info:

        @df.block(outputs=("a", "b"))
        def wrong(x: int) -> tuple[int, int, int]:
            return (x, x, x)

    assert codes(info.value) == ["DF006"]
    assert "3 items" not in str(info.value) and "2 items" in str(info.value)

    with pytest.raises(df.WiringError, match=r"\*args cannot be a port"):

        @df.block(outputs="a")
        def star(*args: int) -> int:
            return 0

    with pytest.raises(df.WiringError, match="outputs= names an output twice"):
        df.block(outputs=("a", "a"))(lambda x: (x, x))

    with pytest.raises(df.WiringError, match="needs a function or a class"):
        df.block(42)  # type: ignore[call-overload]

    with pytest.raises(df.WiringError, match="__call__"):

        @df.block(outputs="a")
        class NoCall:
            pass


def test_protocol_block_with_explicit_ports() -> None:
    class Adapter:
        name = "adapter"
        inputs = (df.Port("a", int, doc="first"), df.Port("b", int, default=10))
        outputs = (df.Port("total", int),)

        def __call__(self, **kw: Any) -> dict[str, Any]:
            return {"total": kw["a"] + kw["b"]}

    prog = df.compile(df.Sequential(Adapter()))
    assert prog(a=1, output="total") == 11
    assert prog(a=1, b=2) == {"total": 3}
    assert "first" in prog.doc


def test_port_is_frozen_value() -> None:
    p = df.Port("x", int)
    assert p == df.Port("x", int)
    assert p.required and not df.Port("x", int, default=None).required
    with pytest.raises(AttributeError):
        p.name = "y"  # type: ignore[misc]

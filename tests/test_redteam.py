"""Red-team regressions (issue 10, items 3 and 4): user strings never become code, every malformed
definition is a WiringError with DF006, and df.check never raises."""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import keyword
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dfgraph as df

INJECTED: list[str] = []  # an injected statement would append here


class Named:
    """A protocol block with any name and port names: output = fn(inputs in order)."""

    def __init__(self, name: Any, inputs: Sequence[str], output: str, fn: Callable[..., int]) -> None:
        self.name = name
        self.inputs = tuple(df.Port(n, int) for n in inputs)
        self.outputs = (df.Port(output, int),)
        self._ins, self._out, self._fn = tuple(inputs), output, fn

    def __call__(self, /, **kw: Any) -> dict[str, Any]:  # positional-only: a port may be named 'self'
        return {self._out: self._fn(*(kw[n] for n in self._ins))}


def codes(exc: df.WiringError) -> list[str]:
    return exc.report.codes()


def unbound_names(prog: df.Program) -> set[str]:
    """Names the generated source reads that it binds nowhere (neither a local nor a namespace global)."""
    tree = ast.parse(prog.source)
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.ExceptHandler) and node.name:
            bound.add(node.name)
    namespace = type(prog).__call__.__globals__
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return {name for name in loaded if name not in bound and name not in namespace}


def assert_sound(prog: df.Program) -> None:
    """The source is one line per statement we wrote, and names only what it binds, `str` and `Exception`."""
    assert unbound_names(prog) <= {"str", "Exception"}
    for name in ("str", "Exception"):
        assert name not in type(prog).__call__.__globals__  # no global of ours shadows the builtin
    assert "\x00" not in prog.source
    assert prog.source.splitlines() == prog.source.removesuffix("\n").split("\n")  # no odd line breaks


# -- user strings never become code -----------------------------------------------------------------------


def test_a_block_name_with_a_line_break_is_refused_not_run() -> None:
    payload = "add_one\n        INJECTED.append('name')"
    with pytest.raises(df.WiringError) as info:
        df.block(name=payload, outputs="x")(lambda x: x + 1)
    assert codes(info.value) == ["DF006"] and "not printable" in str(info.value)
    with pytest.raises(df.WiringError) as info:
        df.block(name="add_one\nbroken", outputs="x")(lambda x: x + 1)  # was a SyntaxError at compile
    assert codes(info.value) == ["DF006"]
    # a protocol block escapes the decorator: as a Sequential child, a loop body and a root it is refused
    sneaky = Named(payload, ["x"], "x", lambda x: x + 1)
    with pytest.raises(df.WiringError) as info:
        df.Sequential(sneaky)
    assert codes(info.value) == ["DF006"] and "Sequential({'step': block})" in str(info.value)
    with pytest.raises(df.WiringError):
        df.Loop(sneaky, times="n")
    assert df.check(sneaky).codes() == ["DF006"]
    assert INJECTED == []


def test_a_name_that_reaches_the_source_only_as_a_literal_cannot_inject() -> None:
    # a Graph node's block name is not a path segment: it is kept, and reaches the source only made safe
    payload = "add_one\n    INJECTED.append('node')"
    graph = df.Graph({"step": Named(payload, ["x"], "x", lambda x: x + 1)}, name="g")
    prog = df.compile(graph)
    assert prog(x=1) == {"x": 2} and INJECTED == []
    assert_sound(prog)
    # ports named with quotes, brackets and comment signs travel as string literals
    odd = "x'] + INJECTED.append('port') or ['# )"
    prog = df.compile(df.Sequential(Named("f", [odd], "y']#", lambda v: v * 3)))
    assert prog(**{odd: 2}) == {"y']#": 6} and INJECTED == []
    assert_sound(prog)


class Evil(str):
    """A str whose repr and str are code: names must reach the source through str's own methods."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INJECTED.append('repr')"

    def __str__(self) -> str:
        return "INJECTED.append('str')"

    def isprintable(self) -> bool:
        return True


def test_str_subclasses_cannot_inject_through_their_methods() -> None:
    blk = Named("f", [Evil("x")], Evil("y"), lambda x: x + 1)
    for built in (
        blk,
        df.Sequential({Evil("step"): blk}, name=Evil("s")),
        df.Graph({Evil("node"): blk}, outputs={Evil("out"): "node.y"}),
        df.Loop(Named("g", [Evil("x")], Evil("x"), lambda x: x + 1), times=Evil("n"), index=Evil("k")),
    ):
        prog = df.compile(built)
        assert "INJECTED" not in prog.source
        result = prog(**{name: 1 for name in ("x", "n") if name in {p.name for p in prog.inputs}})
        assert set(result.values()) <= {2} and INJECTED == []
    assert df.check(Named(Evil("a\nb"), ["x"], "y", lambda x: x)).codes() == ["DF006"]


def test_a_path_with_an_unprintable_character_is_a_repr_in_comments() -> None:
    # a path segment can only be unprintable if set after the checks; the comment still cannot break
    blk = Named("ok", ["x"], "x", lambda x: x + 1)
    seq = df.Sequential({"step": blk}, name="s")
    object.__setattr__(seq, "children", (("st\nep", blk),))  # bypasses the checks and the seal on purpose
    prog = df.compile(seq)
    assert prog(x=1) == {"x": 2}
    assert "# 's/st\\nep'" in prog.source
    assert_sound(prog)


@pytest.mark.parametrize(
    ("name", "normal"), [("\U0001d45b", "n"), ("\ufb01lter", "filter"), ("\u0132", "IJ")]
)
def test_names_that_nfkc_changes_are_refused_with_df006_naming_them(name: str, normal: str) -> None:
    assert unicodedata.normalize("NFKC", name) == normal
    blk = df.block(outputs="x")(lambda x: x)
    attempts: list[Callable[[], Any]] = [
        lambda: df.block(name=name, outputs="x")(lambda x: x),
        lambda: df.block(outputs=name)(lambda x: x),
        lambda: df.Sequential({name: blk}),
        lambda: df.Sequential(blk, name=name),
        lambda: df.Graph({name: blk}),
        lambda: df.Graph({"a": blk}, outputs={name: "a.x"}),
        lambda: df.Loop(blk, times=name),
        lambda: df.Loop(blk, over="ts", item=name),
        lambda: df.Loop(blk, times="n", index=name),
        lambda: df.Loop(blk, times="n", carry=(name,)),
        lambda: df.block(outputs="x", mutates=(name,))(lambda x: x),
    ]
    for attempt in attempts:
        with pytest.raises(df.WiringError) as info:
            attempt()
        assert codes(info.value) == ["DF006"]
        assert repr(name) in str(info.value) and f"reads it as {normal!r}" in str(info.value)
    # a protocol block's port is checked where its ports are read
    report = df.check(Named("f", [name], "y", lambda v: v))
    assert report.codes() == ["DF006"] and repr(name) in str(report)
    assert INJECTED == []


def test_block_and_port_names_need_not_be_identifiers() -> None:
    lam = df.block(outputs="x")(lambda x: x * 2)
    assert lam.name == "<lambda>"
    prog = df.compile(df.Sequential(lam, lam, name="s"))
    assert prog(x=3) == {"x": 12}
    with pytest.raises(df.BlockError) as info:
        prog(x=None)  # Any-typed, so it passes the boundary; the lambda fails on None
    assert info.value.path == "s/<lambda>"
    spaced = df.block(name="add one", outputs="sum total")(lambda x: x + 1)
    assert df.compile(df.Sequential(spaced))(x=1) == {"sum total": 2}


def test_a_graph_node_block_named_like_a_builtin_calls_the_block() -> None:
    # 'ﬁlter' as a written identifier is read as 'filter': the builtin was called instead of the block
    for name in ["ﬁlter", "filter", "Exception", "str", "self", "_range", "__builtins__", "__debug__"]:
        prog = df.compile(df.Graph({"node": Named(name, ["x"], "y", lambda x: x + 1)}))
        assert prog(x=1) == {"y": 2}, name
        assert_sound(prog)


def test_inputs_named_like_builtins_bind_as_keywords_and_stay_correct() -> None:
    names = ["input", "type", "filter", "str", "Exception", "__debug__", "self", "output_", "match", "_"]
    blocks = [Named(f"b{k}", [n], f"out{k}", lambda v, k=k: v + k) for k, n in enumerate(names)]
    prog = df.compile(df.Sequential(*blocks))
    values = {n: 10 * k for k, n in enumerate(names)}
    assert prog(**values) == {f"out{k}": 10 * k + k for k in range(len(names))}
    assert_sound(prog)
    params = {a.arg for a in ast.parse(prog.source).body[0].args.kwonlyargs}  # type: ignore[attr-defined]
    # the fast path: plain keyword parameters; `type` (soft keyword from 3.12 on) is renamed like `match`
    soft = set(keyword.softkwlist)
    assert {"input", "type", "filter"} - soft <= params
    assert not {"type", "match"} & soft & params
    assert not {"str", "Exception", "__debug__"} & params  # these go through the renaming slow path


# -- every malformed definition is a WiringError with DF006 ------------------------------------------------


def _plain(x: int) -> int:
    return x


async def _coroutine(x: int) -> int:
    return x


async def _async_gen(x: int) -> Any:
    yield x


class _AsyncCall:
    async def __call__(self, x: int) -> int:
        return x


_BLK = df.block(outputs="x")(_plain)

MALFORMED: dict[str, Callable[[], Any]] = {
    "Loop(carry=5)": lambda: df.Loop(_BLK, times="n", carry=5),  # type: ignore[arg-type]
    "Loop(carry='x')": lambda: df.Loop(_BLK, times="n", carry="x"),
    "Loop(carry=[42])": lambda: df.Loop(_BLK, times="n", carry=[42]),  # type: ignore[list-item]
    "Graph(edges=None)": lambda: df.Graph({"a": _BLK}, edges=None),  # type: ignore[arg-type]
    "Graph(edges=5)": lambda: df.Graph({"a": _BLK}, edges=5),  # type: ignore[arg-type]
    "Graph(edges='a.x')": lambda: df.Graph({"a": _BLK}, edges="a.x"),  # type: ignore[arg-type]
    "Graph(outputs=5)": lambda: df.Graph({"a": _BLK}, outputs=5),  # type: ignore[arg-type]
    "Graph(outputs='a.x')": lambda: df.Graph({"a": _BLK}, outputs="a.x"),
    "block(outputs=5)": lambda: df.block(outputs=5)(_plain),  # type: ignore[call-overload]
    "block(outputs=True)": lambda: df.block(outputs=True)(_plain),  # type: ignore[call-overload]
    "block(outputs=(1,))": lambda: df.block(outputs=(1,))(_plain),  # type: ignore[call-overload]
    "block(outputs='')": lambda: df.block(outputs="")(_plain),
    "block(batch=5)": lambda: df.block(outputs="x", batch=5)(_plain),  # type: ignore[call-overload]
    "block(batch='x')": lambda: df.block(outputs="x", batch="x")(_plain),  # type: ignore[call-overload]
    "block(mutates='rng')": lambda: df.block(outputs="x", mutates="rng")(_plain),  # type: ignore[call-overload]
    "block(mutates=5)": lambda: df.block(outputs="x", mutates=5)(_plain),  # type: ignore[call-overload]
    "block(mutates=(1,))": lambda: df.block(outputs="x", mutates=(1,))(_plain),  # type: ignore[call-overload]
    "block(name=5)": lambda: df.block(outputs="x", name=5)(_plain),  # type: ignore[call-overload]
    "block(name='')": lambda: df.block(outputs="x", name="")(_plain),
    "async def": lambda: df.block(outputs="x")(_coroutine),
    "async generator": lambda: df.block(outputs="x")(_async_gen),
    "async __call__": lambda: df.block(outputs="x")(_AsyncCall),
    "Sequential(name='a b')": lambda: df.Sequential(_BLK, name="a b"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_definitions_are_wiring_errors_with_df006(case: str) -> None:
    with pytest.raises(df.WiringError) as info:
        MALFORMED[case]()
    assert codes(info.value) == ["DF006"], case


def test_bare_strings_where_tuples_are_expected_are_refused_with_the_fix() -> None:
    with pytest.raises(df.WiringError, match=r"write mutates=\('rng',\)"):
        df.block(outputs="x", mutates="rng")(_plain)  # type: ignore[call-overload]
    with pytest.raises(df.WiringError, match=r"write carry=\('x',\)"):
        df.Loop(_BLK, times="n", carry="x")
    # the tuple forms are what they say
    assert df.block(outputs="x", mutates=["rng"])(_plain).mutates == ("rng",)
    assert df.Loop(_BLK, times="n", carry=["x"]).carry == ("x",)


def test_a_protocol_block_mutating_a_bare_string_is_reported() -> None:
    blk = Named("noise", ["x"], "x", lambda x: x)
    blk.mutates = "rng"  # type: ignore[attr-defined]
    report = df.check(blk)
    assert report.codes() == ["DF006"] and "mutates=('rng',)" in str(report)


def test_a_decorated_rng_block_stays_on_the_main_stream() -> None:
    @df.block(outputs="p", mutates=("rng",))
    def noise(x: float) -> float:
        return x

    @df.block(outputs="q")
    def other(x: float) -> float:
        return x

    @df.block(outputs="x")
    def join(p: float, q: float, x: float) -> float:
        return p + q + x

    assert noise.mutates == ("rng",)  # one resource, not ('r', 'n', 'g')
    schedule = df.compile(df.Loop(df.Sequential(other, noise, join), times="n", name="l"), streams=8).schedule
    assert schedule.stream_of("l/noise") == 0
    assert (
        df.compile(df.Loop(df.Sequential(noise, other, join), times="n", name="l")).schedule.stream_of(
            "l/noise"
        )
        == 0
    )


def test_async_blocks_are_refused_and_sync_ones_still_work() -> None:
    with pytest.raises(df.WiringError, match="async function"):
        df.block(outputs="x")(_coroutine)
    assert df.compile(df.block(outputs="x")(_plain))(x=3) == {"x": 3}


# -- df.check never raises ---------------------------------------------------------------------------------


class _Boom(RuntimeError):  # noqa: N818 -- a test double
    pass


class UnreadablePorts:
    name = "unreadable"

    def __init__(self, side: str) -> None:
        self.side = side

    @property
    def inputs(self) -> tuple[df.Port, ...]:
        if self.side == "inputs":
            raise _Boom("no inputs today")
        return (df.Port("x", int),)

    @property
    def outputs(self) -> tuple[df.Port, ...]:
        if self.side == "outputs":
            raise _Boom("no outputs today")
        return (df.Port("y", int),)

    def __call__(self, **kw: Any) -> dict[str, Any]:
        return {"y": kw["x"]}


@pytest.mark.parametrize("side", ["inputs", "outputs"])
@pytest.mark.parametrize("where", ["root", "sequential", "sequential_map", "loop", "graph"])
def test_a_block_whose_ports_raise_is_a_diagnostic_naming_it(side: str, where: str) -> None:
    blk = UnreadablePorts(side)
    built: Any = {
        "root": lambda: blk,
        "sequential": lambda: df.Sequential(blk, name="s"),
        "sequential_map": lambda: df.Sequential({"unreadable": blk}, name="s"),
        "loop": lambda: df.Loop(blk, times="n", name="s"),
        "graph": lambda: df.Graph({"unreadable": blk}, name="s"),
    }[where]()
    report = df.check(built)
    assert report.codes() == ["DF006"], str(report)
    (diagnostic,) = report.errors
    assert diagnostic.path.endswith("unreadable") and "cannot be read" in diagnostic.message
    assert f"_Boom: no {side} today" in diagnostic.message
    with pytest.raises(df.WiringError):
        df.compile(built)


class BadRepr:
    def __repr__(self) -> str:
        raise _Boom("repr")

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__


def test_objects_whose_repr_raises_are_still_reported() -> None:
    report = df.check(BadRepr())
    assert report.codes() == ["DF006"] and "repr() raised _Boom" in str(report)
    with pytest.raises(df.WiringError, match="is not a block"):
        df.Sequential(BadRepr())
    with pytest.raises(df.WiringError, match="repr\\(\\) raised"):
        df.Graph({"a": _BLK}, edges=[BadRepr()])  # type: ignore[list-item]
    with pytest.raises(df.WiringError) as info:
        df.Loop(_BLK, times=BadRepr())  # type: ignore[arg-type]
    assert codes(info.value) == ["DF006"]
    # a port list holding one
    holder = Named("holder", ["x"], "y", lambda x: x)
    holder.inputs = (BadRepr(),)  # type: ignore[assignment]
    assert df.check(holder).codes() == ["DF006"]
    # defaults whose repr raises, shown in DF206
    a, b = Named("a", ["x"], "p", lambda x: x), Named("b", ["x"], "q", lambda x: x)
    a.inputs = (df.Port("x", int, BadRepr()),)
    b.inputs = (df.Port("x", int, BadRepr()),)
    report = df.check(df.Sequential(a, b))
    assert report.ok and "DF206" in report.codes() and "repr() raised" in str(report)


def test_a_name_property_that_raises_is_a_diagnostic() -> None:
    class Nameless(Named):
        @property  # type: ignore[override]
        def name(self) -> str:
            raise _Boom("nameless")

        @name.setter
        def name(self, value: str) -> None:
            pass

    blk = Nameless("x", ["x"], "y", lambda x: x)
    assert df.check(blk).codes() == ["DF006"]
    with pytest.raises(df.WiringError, match="cannot be read"):
        df.Sequential(blk)
    prog = df.compile(df.Graph({"node": blk}))  # a node is named by its key: the block's name is unused
    assert prog(x=4) == {"y": 4}


def test_a_proxy_whose_getattr_raises_anything_is_checked_and_runs() -> None:
    class Proxy(Named):
        def __getattr__(self, attribute: str) -> Any:
            raise KeyError(attribute)  # not AttributeError: hasattr() and getattr(..., default) raise

    blk = Proxy("proxy", ["x"], "y", lambda x: x + 1)
    report = df.check(blk)  # schedulers read mutates: one that cannot be read is reported, not raised
    assert report.codes() == ["DF006"] and "mutates of 'proxy' cannot be read: KeyError" in str(report)
    Proxy.mutates = ()  # type: ignore[attr-defined]
    assert df.check(blk).ok  # the optional dfgraph hooks (__dfgraph_call__, notes) fall back quietly
    assert df.compile(df.Sequential(blk))(x=1) == {"y": 2}


def test_an_input_whose_repr_raises_is_still_an_input_error() -> None:
    prog = df.compile(_BLK)
    # the value is shown by its type and reprlib's placeholder for an instance whose repr raises
    with pytest.raises(df.InputError, match=r"must be int .*got BadRepr: <BadRepr instance at 0x"):
        prog(x=BadRepr())


def test_an_exception_whose_str_raises_still_becomes_a_block_error() -> None:
    class Unprintable(Exception):  # noqa: N818 -- a test double
        def __str__(self) -> str:
            raise _Boom("str")

    @df.block(outputs="x")
    def fails(x: int) -> int:
        raise Unprintable

    prog = df.compile(df.Loop(fails, times="n", name="l"))
    with pytest.raises(df.BlockError) as info:
        prog(n=2, x=0)
    assert info.value.path == "l/fails" and info.value.iteration == 0
    message = str(info.value)
    assert "raised Unprintable" in message and "str() of the exception raised _Boom" in message
    assert isinstance(info.value.__cause__, Unprintable)


# -- property: arbitrary Unicode names ---------------------------------------------------------------------

SPECIAL = [
    "x", "\ufb01lter", "filter", "\U0001d45b", "\u0132", "Exception", "str", "self", "_range", "_UNSET",
    "__builtins__", "__debug__", "output", "a\nb", "y\n    INJECTED.append(1)", "class", "None", "_",
    "match", "1x", "a b", "a-b", "a.b", "a/b", "", "\x00", "\u2028", "é", "e\u0301", "ǅ", "x" * 80,
]  # fmt: skip
_WORDS = ("Lu", "Ll", "Lt", "Lm", "Lo", "Nl", "Nd", "Mn", "Mc", "Pc")  # mostly identifiers, some NFKC-odd
names = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(st.characters(), max_size=6),  # anything: control characters, surrogates, combining marks
    st.text(st.characters(whitelist_categories=_WORDS), min_size=1, max_size=6),
    st.text(st.characters(whitelist_categories=("L", "P", "S", "Zs")), min_size=1, max_size=6),
)


def _outcome(build: Callable[[], Any], call: Callable[[df.Program], Any], expected: Any) -> None:
    """Either the definition is refused with DF006 (and check agrees), or the program computes `expected`."""
    try:
        built = build()
        prog = df.compile(built)
    except df.WiringError as exc:
        assert set(codes(exc)) == {"DF006"}, str(exc)
        return
    assert df.check(built).ok
    assert call(prog) == expected
    assert_sound(prog)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(names, min_size=4, max_size=4, unique=True))
def test_any_names_compile_to_working_code_or_df006(drawn: list[str]) -> None:
    blk_name, port_in, port_out, node = drawn
    ins = {port_in: 5}

    def leaf() -> Named:
        return Named(blk_name, [port_in], port_out, lambda v: v + 1)

    _outcome(leaf, lambda p: p(**ins), {port_out: 6})
    _outcome(
        lambda: df.block(name=blk_name, outputs=port_out)(lambda x: x + 1), lambda p: p(x=1), {port_out: 2}
    )
    _outcome(lambda: df.Sequential(leaf(), name="s"), lambda p: p(**ins), {port_out: 6})
    _outcome(lambda: df.Sequential({node: leaf()}), lambda p: p(**ins), {port_out: 6})
    _outcome(lambda: df.Graph({node: leaf()}), lambda p: p(**ins), {port_out: 6})
    _outcome(lambda: df.Graph({"n": leaf()}, outputs={node: f"n.{port_out}"}), lambda p: p(**ins), {node: 6})
    assert INJECTED == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(names, min_size=5, max_size=5, unique=True), st.integers(0, 3))
def test_any_loop_names_compile_to_working_code_or_df006(drawn: list[str], n: int) -> None:
    blk_name, carried, times, index, item = drawn
    step = Named(blk_name, [carried, index], carried, lambda v, i: v + i + 1)
    _outcome(
        lambda: df.Loop(step, times=times, index=index, name="l"),
        lambda p: p(**{carried: 0, times: n}),
        {carried: sum(i + 1 for i in range(n))},
    )
    over = Named(blk_name, [carried, item], carried, lambda v, t: v * 10 + t)
    items = list(range(1, n + 1))
    _outcome(
        lambda: df.Loop(over, over=times, item=item, index=index, name="l"),
        lambda p: p(**{carried: 0, times: items}),
        {carried: int("".join(map(str, items)) or 0)},
    )
    assert INJECTED == []


def test_builtins_are_untouched() -> None:
    # nothing above rebinds a builtin (a generated global leaking into builtins would show here)
    assert builtins.filter is filter and builtins.str is str
    with contextlib.redirect_stdout(io.StringIO()) as out:
        df.compile(df.Graph({"n": Named("print", ["x"], "y", lambda x: x)}))(x=1)
    assert out.getvalue() == ""

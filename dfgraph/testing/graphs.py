"""Random graphs with known answers: counter loops (the final `x` computed from the structure) and DAGs."""

from __future__ import annotations

import inspect
import keyword
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from dfgraph.block import Block, block
from dfgraph.compose import Graph, Loop, Sequential
from dfgraph.ports import REQUIRED


def function_block(
    name: str,
    inputs: Sequence[tuple[str, Any, Any]],
    outputs: Sequence[tuple[str, Any]],
    body: Callable[[dict[str, Any]], Any],
) -> Block:
    """A @df.block function named `name` with ports (name, type, default) -> (name, type), running `body`."""
    params: list[inspect.Parameter] = []
    keyword_only = False
    for port, hint, default in inputs:
        keyword_only = keyword_only or default is not REQUIRED  # required positionals come first
        params.append(
            inspect.Parameter(
                port,
                inspect.Parameter.KEYWORD_ONLY if keyword_only else inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=hint,
                default=inspect.Parameter.empty if default is REQUIRED else default,
            )
        )
    order = [port for port, _, _ in inputs]
    returns: Any
    out: str | tuple[str, ...] | None
    if len(outputs) == 1:
        returns, out = outputs[0][1], outputs[0][0]
    elif outputs:
        returns, out = tuple[tuple(h for _, h in outputs)], tuple(n for n, _ in outputs)  # type: ignore[misc]
    else:
        returns, out = None, None

    def fn(*args: Any, **kwargs: Any) -> Any:
        values = dict(zip(order, args, strict=False))
        values.update(kwargs)
        return body(values)

    fn.__name__ = fn.__qualname__ = name
    setattr(fn, "__signature__", inspect.Signature(params, return_annotation=returns))  # noqa: B010
    fn.__annotations__ = {port: hint for port, hint, _ in inputs} | {"return": returns}
    made: Any = block(outputs=out, name=name)(fn)
    return typing.cast(Block, made)


def _is_name(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def increment(k: int, name: str = "x") -> Block:
    """A block reading the int `name` and writing `name + k`; it is named add_<k> (sub_<-k> when k < 0)."""
    if not _is_name(name):
        raise InvalidArgument(f"increment: name must be an identifier, got {name!r}")
    block_name = f"add_{k}" if k >= 0 else f"sub_{-k}"
    return function_block(block_name, [(name, int, REQUIRED)], [(name, int)], lambda v: v[name] + k)


# -- counter loops -----------------------------------------------------------------------------------------


@attrs.frozen
class CounterCase:
    """A nest of Sequentials, Loops and Graphs adding to `x`: the block, its inputs and the final `x`."""

    block: Block = attrs.field(repr=False)
    inputs: dict[str, int]
    expected: int
    structure: str


@attrs.frozen
class _Inc:
    k: int


@attrs.frozen
class _AddVar:
    """x += the value of a loop index or item."""

    name: str


@attrs.frozen
class _Seq:
    name: str | None  # None: the default name
    mapping: bool
    children: tuple[_Node, ...]


@attrs.frozen
class _Rep:
    """Loop(body, times=control), or over the list _items(control) made by a block just before it."""

    serial: int
    name: str | None
    body: _Node
    over: bool

    @property
    def control(self) -> str:
        return f"n{self.serial}"

    @property
    def index(self) -> str:
        return f"i{self.serial}"

    @property
    def item(self) -> str:
        return f"t{self.serial}"


@attrs.frozen
class _Chain:
    """A Graph of increments wired x -> x in a chain, its nodes declared in a shuffled order."""

    ks: tuple[int, ...]
    declared: tuple[int, ...]  # a permutation of range(len(ks))
    wire_input: bool  # an explicit edge from the graph input x into the first node


_Node = _Inc | _AddVar | _Seq | _Rep | _Chain


def _item(step: int) -> int:
    """The item of an over= counter loop at a step (not the step itself, so index and item differ)."""
    return 3 * step + 1


def _interpret(node: _Node, x: int, counts: Mapping[str, int], env: dict[str, int]) -> int:
    """Run the structure by hand: what `x` is after it (env holds the enclosing loops' index and item)."""
    if isinstance(node, _Inc):
        return x + node.k
    if isinstance(node, _AddVar):
        return x + env[node.name]
    if isinstance(node, _Chain):
        return x + sum(node.ks)
    if isinstance(node, _Seq):
        for child in node.children:
            x = _interpret(child, x, counts, env)
        return x
    for step in range(counts[node.control]):
        inner = {**env, node.index: step}
        if node.over:
            inner[node.item] = _item(step)
        x = _interpret(node.body, x, counts, inner)
    return x


def _show(node: _Node) -> str:
    if isinstance(node, _Inc):
        return f"inc({node.k})"
    if isinstance(node, _AddVar):
        return f"add({node.name})"
    if isinstance(node, _Chain):
        return f"Graph(chain {list(node.ks)}, declared {list(node.declared)})"
    if isinstance(node, _Seq):
        return f"Seq({', '.join(map(_show, node.children))})"
    how = f"over {node.control} items as {node.item}" if node.over else node.control
    return f"Loop[{how}, index {node.index}]({_show(node.body)})"


def _build_counter(node: _Node) -> Block:
    if isinstance(node, _Inc):
        return increment(node.k)
    if isinstance(node, _AddVar):
        name = node.name
        return function_block(
            f"add_{name}",
            [("x", int, REQUIRED), (name, int, REQUIRED)],
            [("x", int)],
            lambda v: v["x"] + v[name],
        )
    if isinstance(node, _Chain):
        keys = [f"g{j}" for j in range(len(node.ks))]
        edges = [(f"{keys[j]}.x", f"{keys[j + 1]}.x") for j in range(len(keys) - 1)]
        if node.wire_input:
            edges.insert(0, ("x", f"{keys[0]}.x"))
        nodes = {keys[j]: increment(node.ks[j]) for j in node.declared}
        return Graph(nodes, edges, outputs=[f"{keys[-1]}.x"], name="chain")
    if isinstance(node, _Seq):
        blocks = [_build_counter(c) for c in node.children]
        name = node.name or "sequential"
        if node.mapping:
            return Sequential({f"s{i}": b for i, b in enumerate(blocks)}, name=name)
        return Sequential(*blocks, name=name)
    body = _build_counter(node.body)
    name = node.name or "loop"
    if not node.over:
        return Loop(body, times=node.control, index=node.index, name=name)
    items = f"ts{node.serial}"
    make = function_block(
        f"range_{node.control}",
        [(node.control, int, REQUIRED)],
        [(items, list[int])],
        lambda v: [_item(s) for s in range(v[node.control])],
    )
    loop = Loop(body, over=items, item=node.item, index=node.index, name=name)
    return Sequential(make, loop, name=f"over_{node.control}")


def _reads_x(node: _Node) -> bool:
    if isinstance(node, _Inc | _AddVar | _Chain):
        return True
    if isinstance(node, _Seq):
        return any(map(_reads_x, node.children))
    return _reads_x(node.body)


def counter_loops(max_depth: int = 3, max_blocks: int = 4, max_steps: int = 6) -> SearchStrategy[CounterCase]:
    """Random nests of Sequentials, Loops (times= n0, n1, ... in 0..max_steps, or over= a list) and Graphs of
    blocks adding to x a constant or an enclosing loop's index or item, with the final x computed by hand."""
    if max_depth < 0 or max_blocks < 1 or max_steps < 0:
        raise InvalidArgument("counter_loops: needs max_depth >= 0, max_blocks >= 1, max_steps >= 0")

    @st.composite
    def cases(draw: st.DrawFn) -> CounterCase:
        loops: list[int] = []
        serial = iter(range(1 << 30))

        def node(depth: int, visible: tuple[str, ...]) -> _Node:
            kinds = ["inc", "inc", "var"] if visible else ["inc"]
            if depth < max_depth:
                kinds += ["seq", "loop", "loop", "graph"]
            kind = draw(st.sampled_from(kinds))
            if kind == "inc":
                return _Inc(draw(st.integers(-3, 5)))
            if kind == "var":
                return _AddVar(draw(st.sampled_from(visible)))
            if kind == "graph":
                ks = tuple(draw(st.lists(st.integers(-3, 5), min_size=1, max_size=max_blocks)))
                return _Chain(ks, tuple(draw(st.permutations(range(len(ks))))), draw(st.booleans()))
            named = draw(st.booleans())  # default names collide: Sequential dedups them
            if kind == "seq":
                size = draw(st.integers(0, max_blocks))
                children = tuple(node(depth + 1, visible) for _ in range(size))
                return _Seq(f"seq{next(serial)}" if named else None, draw(st.booleans()), children)
            j = len(loops)
            loops.append(j)
            over = draw(st.booleans())
            inner = (*visible, f"i{j}", *((f"t{j}",) if over else ()))
            body: _Node
            if draw(st.booleans()):  # the usual form: the body is a Sequential
                size = draw(st.integers(1, max_blocks))
                body = _Seq(None, draw(st.booleans()), tuple(node(depth + 1, inner) for _ in range(size)))
            else:
                body = node(depth + 1, inner)
            return _Rep(j, f"loop{next(serial)}" if named else None, body, over)

        root = node(0, ())
        if not _reads_x(root):  # x must be read, or it would not be an input of the block
            root = _Seq(None, False, (root, _Inc(draw(st.integers(-3, 5)))))
        counts = {f"n{j}": draw(st.integers(0, max_steps), label=f"n{j}") for j in loops}
        x = draw(st.integers(-100, 100), label="x")
        return CounterCase(
            _build_counter(root), {**counts, "x": x}, _interpret(root, x, counts, {}), _show(root)
        )

    return cases()


# -- loop-body DAGs ----------------------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 12, prefix: str = "") -> tuple[list[str], list[tuple[str, str]]]:
    """A loop-body DAG for schedule tests: block paths in topological order, edges from earlier to later."""
    n = draw(st.integers(0, max_nodes))
    nodes = [f"{prefix}b{i}" for i in range(n)]
    if n < 2:
        return nodes, []
    pairs = draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n).map(
            lambda ps: [(min(p), max(p)) for p in ps if p[0] != p[1]]
        )
    )
    return nodes, [(nodes[u], nodes[v]) for u, v in pairs]

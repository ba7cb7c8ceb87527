"""The graph-wide shape solver's properties, on specs built by hand (the specs read from jaxtyping
annotations of torch tensors, and the solver's concrete cases, are in test_shapes_torch.py)."""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from dfgraph.shapes import (
    ArraySpec,
    Dim,
    Fixed,
    Named,
    ShapeSolver,
)

# -- ShapeSolver: properties -----------------------------------------------------------------------------

Edge = tuple[ArraySpec, object, ArraySpec, object, str]


@attrs.frozen
class Chain:
    """Block calls 0..n-1 agreeing on one layout: dim j of every port stands for bases[j]."""

    bases: list[str]
    sizes: dict[str, int]
    names: list[list[str]]  # per block, the local name of each dim (blocks rename: b -> b0, b1, ...)
    fixed_out: list[list[bool]]  # per block, which output dims are written as fixed sizes

    def port(self, block: int, fixed: list[bool]) -> ArraySpec:
        """A port of a block: dim j is the true size where fixed[j], else the block's local name."""
        parts: list[Dim] = [
            Fixed(self.sizes[base]) if f else Named(name)
            for name, f, base in zip(self.names[block], fixed, self.bases, strict=True)
        ]
        return ArraySpec(None, tuple(parts), " ".join(map(str, parts)))

    def edges(self) -> list[Edge]:
        """A fully fixed source feeds block 0; block k's output feeds block k+1's input. Inputs are named,
        so every class is anchored to its true size from the left."""
        named = [False] * len(self.bases)
        edges: list[Edge] = [
            (self.port(0, [True] * len(self.bases)), "source", self.port(0, named), 0, "block0.in")
        ]
        for k in range(len(self.names) - 1):
            edges.append(
                (self.port(k, self.fixed_out[k]), k, self.port(k + 1, named), k + 1, f"block{k + 1}.in")
            )
        return edges


@st.composite
def chains(draw: st.DrawFn) -> Chain:
    """Random consistent chains: up to 4 dims (letters may repeat), 1 to 8 blocks."""
    bases = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=4))
    sizes = {base: draw(st.integers(1, 9)) for base in bases}
    blocks = draw(st.integers(1, 8))
    suffixes = [draw(st.sampled_from(["", "0", "1", "x"])) for _ in range(blocks)]
    fixed_out = [
        draw(st.lists(st.booleans(), min_size=len(bases), max_size=len(bases))) for _ in range(blocks)
    ]
    return Chain(bases, sizes, [[base + suffix for base in bases] for suffix in suffixes], fixed_out)


@settings(max_examples=150, deadline=None)
@given(chains(), st.data())
def test_consistent_sizes_never_conflict(chain: Chain, data: st.DataObject) -> None:
    edges = chain.edges()
    # Extra edges from an output to any later input agree as well.
    for k in range(len(chain.names) - 1):
        target = data.draw(st.integers(k + 1, len(chain.names) - 1))
        fixed = data.draw(st.lists(st.booleans(), min_size=len(chain.bases), max_size=len(chain.bases)))
        named = [False] * len(chain.bases)
        edges.append((chain.port(k, fixed), k, chain.port(target, named), target, f"extra{k}"))
    order = data.draw(st.permutations(range(len(edges))))
    solver = ShapeSolver()
    assert [message for i in order for message in solver.unify(*edges[i])] == []
    for block, names in enumerate(chain.names):
        for name, base in zip(names, chain.bases, strict=True):
            assert solver.size_of(block, name) == chain.sizes[base]


@settings(max_examples=150, deadline=None)
@given(chains(), st.data())
def test_one_wrong_size_is_one_conflict_naming_its_site(chain: Chain, data: st.DataObject) -> None:
    edges = chain.edges()
    # One consumer dim becomes a wrong fixed size. Its producer side is anchored to the true size, so
    # there is a conflict whatever order the edges are unified in, and it must be reported once.
    site = data.draw(st.integers(0, len(edges) - 1))
    j = data.draw(st.integers(0, len(chain.bases) - 1))
    wrong = chain.sizes[chain.bases[j]] + data.draw(st.integers(1, 5))
    producer, p_scope, consumer, c_scope, where = edges[site]
    bad = list(consumer.dims)
    bad[j] = Fixed(wrong)
    edges[site] = (producer, p_scope, ArraySpec(None, tuple(bad), "bad"), c_scope, where)
    order = data.draw(st.permutations(range(len(edges))))
    solver = ShapeSolver()
    messages = [message for i in order for message in solver.unify(*edges[i])]
    assert len(messages) == 1, messages
    assert where in messages[0] and str(wrong) in messages[0]

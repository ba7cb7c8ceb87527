"""Stream scheduling of loop bodies: Nimble-style stream assignment, minimal waits, fork and join.

A loop body is a DAG of blocks listed in program order (which is topological). Each iteration issues every
block once, on one of K CUDA streams (stream 0 is the main stream):

    sched = assign(["scale", "cond", "uncond", "guide", "step"],
                   [("scale", "cond"), ("scale", "uncond"), ("cond", "guide"),
                    ("uncond", "guide"), ("guide", "step")])
    print(sched)          # one row per block: stream, waits, events; plus the fork and join

Within a stream ops run in issue order; a cross-stream edge u -> v is enforced by an event recorded on
u's stream right after u and a wait on v's stream right before v, unless it is already implied by
earlier waits (vector clocks decide). Every iteration forks from stream 0 (each side stream waits on
an event recorded on stream 0 before the iteration's first op) and joins back (stream 0 waits on an
event recorded after each side stream's last op), so iteration i + 1 starts only after iteration i ends.

A switch in a loop body is one unit of the body's schedule, like a nested loop: it reads what its key and
its cases read (its slots) and writes its outputs, it mutates what any block of any case mutates, and its
chosen case runs serially on the unit's stream. Only the chosen case runs, so waits and events before
and after the unit hold whichever case it is; loops inside a case get schedules of their own.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs

from dfgraph.diagnostics import did_you_mean
from dfgraph.ir import CallOp, LoopOp, Lowered, Op, SwitchOp, regions

__all__ = ["AUTO_STREAMS", "RNG", "BodySchedule", "Schedule", "assign", "body_dag", "schedule_program"]


@attrs.frozen
class BodySchedule:
    """The stream schedule of one loop body: stream per block, issue order, waits, events, fork/join."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    assignment: tuple[int, ...]
    n_streams: int
    waits: tuple[tuple[str, str], ...]
    events: tuple[str, ...]
    # (path, case keys) of each node that is a switch: one unit whose chosen case runs on its stream
    switches: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Derived lookup tables; excluded from eq/hash/repr because they follow from the fields above.
    _index: Mapping[str, int] = attrs.field(init=False, eq=False, hash=False, repr=False)

    _streams: Mapping[str, int] = attrs.field(init=False, eq=False, hash=False, repr=False)

    @_index.default
    def _make_index(self) -> Mapping[str, int]:
        return MappingProxyType({node: i for i, node in enumerate(self.nodes)})

    @_streams.default
    def _make_streams(self) -> Mapping[str, int]:
        return MappingProxyType(dict(zip(self.nodes, self.assignment, strict=True)))

    def __contains__(self, path: object) -> bool:
        return path in self._index

    @property
    def issue_order(self) -> tuple[str, ...]:
        """The order the host issues ops in: program order (topological)."""
        return self.nodes

    @property
    def streams(self) -> Mapping[str, int]:
        """Block path -> stream index (0 is the main stream)."""
        return self._streams

    def stream_of(self, path: str) -> int:
        """The stream a block is issued on; KeyError (with a suggestion) for an unknown path."""
        try:
            return self.assignment[self._index[path]]
        except KeyError:
            raise KeyError(f"no block {path!r} in this loop body{did_you_mean(path, self.nodes)}") from None

    @property
    def side_streams(self) -> tuple[int, ...]:
        """The streams other than 0; each waits on the fork event and is joined back every iteration."""
        return tuple(range(1, self.n_streams))

    def ops_on(self, stream: int) -> tuple[str, ...]:
        """The blocks issued on one stream, in order."""
        return tuple(n for n, s in zip(self.nodes, self.assignment, strict=True) if s == stream)

    @property
    def joins(self) -> tuple[tuple[int, str], ...]:
        """(side stream, its last block): stream 0 waits on an event recorded right after that block."""
        last: dict[int, str] = {}
        for node, stream in zip(self.nodes, self.assignment, strict=True):
            last[stream] = node
        return tuple((s, last[s]) for s in self.side_streams)

    def cases_of(self, path: str) -> tuple[str, ...]:
        """The case keys of a node that is a switch unit; () for a block or a loop."""
        self.stream_of(path)
        return next((keys for node, keys in self.switches if node == path), ())

    def label(self, path: str) -> str:
        """How pictures and tables name a node: its path, and a switch unit's cases after it."""
        keys = self.cases_of(path)
        return f"{path} [switch: {' | '.join(keys)}]" if keys else path

    def waits_for(self, path: str) -> tuple[str, ...]:
        """The producers whose events are waited on right before `path` runs."""
        self.stream_of(path)  # validates the path
        return tuple(u for v, u in self.waits if v == path)

    def records_event(self, path: str) -> bool:
        """Whether an event is recorded right after `path` (some other stream waits on it)."""
        self.stream_of(path)
        return path in self.events

    def __str__(self) -> str:
        return "\n".join([self._header(), *_table(self)])

    def _header(self) -> str:
        n = len(self.nodes)
        head = (
            f"{n} block{'s' if n != 1 else ''} on {self.n_streams} stream{'s' if self.n_streams != 1 else ''}"
        )
        if self.n_streams == 1:
            return f"{head}; no fork/join"
        sides = ", ".join(map(str, self.side_streams))
        joins = ", ".join(f"{s} (after {node!r})" for s, node in self.joins)
        return f"{head}; fork: stream 0 -> {sides}; join: {joins} -> stream 0"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _table(body: BodySchedule) -> list[str]:
    waits: dict[str, list[str]] = {}
    for v, u in body.waits:
        waits.setdefault(v, []).append(u)
    events = set(body.events)
    header = ("#", "stream", "block", "waits for", "records event")
    rows = [
        (str(i), str(s), body.label(node), ", ".join(waits.get(node, ())), "yes" if node in events else "no")
        for i, (node, s) in enumerate(zip(body.nodes, body.assignment, strict=True))
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    right = (True, True, False, False, False)  # numbers right-aligned, text left-aligned

    def line(row: tuple[str, ...]) -> str:
        cells = (c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True))
        return "  " + "  ".join(cells).rstrip()

    return [line(header), *map(line, rows)]


def _freeze_bodies(bodies: Mapping[str, BodySchedule]) -> Mapping[str, BodySchedule]:
    frozen = MappingProxyType(dict(bodies))
    seen: dict[str, str] = {}
    for loop, body in frozen.items():
        for node in body.nodes:
            if node in seen:
                raise ValueError(f"block {node!r} is scheduled in both loop {seen[node]!r} and {loop!r}")
            seen[node] = loop
    return frozen


@attrs.frozen
class Schedule:
    """The stream schedules of a whole program: one BodySchedule per loop, keyed by loop path."""

    # hash=False: a mapping is unhashable; eq still compares it, and equal objects still hash equal.
    bodies: Mapping[str, BodySchedule] = attrs.field(converter=_freeze_bodies, hash=False, factory=dict)

    def stream_of(self, path: str) -> int:
        """The stream of a block in any loop body; KeyError (with a suggestion) when unknown."""
        for body in self.bodies.values():
            if path in body:
                return body.stream_of(path)
        raise KeyError(f"no scheduled block {path!r}{did_you_mean(path, self.issue_order)}")

    @property
    def waits(self) -> tuple[tuple[str, str], ...]:
        """Every (consumer, producer) wait, loop by loop."""
        return tuple(w for body in self.bodies.values() for w in body.waits)

    @property
    def issue_order(self) -> tuple[str, ...]:
        """Every scheduled block, loop by loop, each in issue order."""
        return tuple(n for body in self.bodies.values() for n in body.nodes)

    def __str__(self) -> str:
        if not self.bodies:
            return "no loops: nothing to schedule"
        return "\n\n".join(f"loop {loop!r}: {body}" for loop, body in self.bodies.items())


def assign(
    nodes: Sequence[str],
    edges: Iterable[tuple[str, str]],
    *,
    max_streams: int | None = None,
    pinned: Iterable[str] = (),
    switches: Mapping[str, Sequence[str]] | None = None,
) -> BodySchedule:
    """Nimble-style stream assignment for one loop body; `switches` maps the nodes that are switch units
    to their case keys (for tables and pictures: a unit is scheduled like any node)."""
    order = tuple(nodes)
    index = _index_nodes(order)
    if max_streams is not None and max_streams < 1:
        raise ValueError(f"max_streams must be at least 1 (or None for uncapped), got {max_streams}")
    succ, preds, edge_list = _check_edges(order, index, edges)
    pinned_ids = [_lookup(index, p, "pinned block") for p in pinned]
    units = tuple(
        (order[_lookup(index, node, "switch unit")], tuple(map(str, keys)))
        for node, keys in (switches or {}).items()
    )
    n = len(order)
    if n == 0:
        return BodySchedule((), (), (), 1, (), ())

    chain = _chains(n, _transitive_reduction(n, succ))
    # Stream 0 is the main stream: it holds the first block, and RNG blocks must all be on one stream.
    main = {chain[0], *(chain[p] for p in pinned_ids)}
    groups = _merge_chains(n, chain, main, max_streams)
    waits, events = _waits(n, groups, preds)
    return BodySchedule(
        nodes=order,
        edges=tuple((order[u], order[v]) for u, v in edge_list),
        assignment=tuple(groups),
        n_streams=max(groups) + 1,
        waits=tuple((order[v], order[u]) for v, u in waits),
        events=tuple(order[u] for u in events),
        switches=units,
    )


def _index_nodes(order: tuple[str, ...]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, node in enumerate(order):
        if node in index:
            raise ValueError(f"block {node!r} is listed twice (positions {index[node]} and {i})")
        index[node] = i
    return index


def _lookup(index: Mapping[str, int], name: str, what: str) -> int:
    try:
        return index[name]
    except KeyError:
        raise ValueError(f"{what} {name!r} is not in the loop body{did_you_mean(name, index)}") from None


def _check_edges(
    order: tuple[str, ...], index: Mapping[str, int], edges: Iterable[tuple[str, str]]
) -> tuple[list[list[int]], list[list[int]], list[tuple[int, int]]]:
    """Successor and predecessor lists (by program position) and the sorted, deduplicated edges."""
    pairs = sorted({(_lookup(index, u, "edge source"), _lookup(index, v, "edge target")) for u, v in edges})
    backward = [(u, v) for u, v in pairs if u >= v]
    if backward:
        import networkx as nx  # on first use, so `import dfgraph` does not pay for it

        graph = nx.DiGraph([(order[u], order[v]) for u, v in pairs])
        try:
            cycle = [u for u, _ in nx.find_cycle(graph)]
        except nx.NetworkXNoCycle:
            u, v = backward[0]
            raise ValueError(
                f"edge {order[u]!r} -> {order[v]!r} goes backwards: list the blocks in program "
                "(topological) order"
            ) from None
        raise ValueError("the loop body has a cycle: " + " -> ".join(map(repr, [*cycle, cycle[0]])))
    succ: list[list[int]] = [[] for _ in order]
    preds: list[list[int]] = [[] for _ in order]
    for u, v in pairs:
        succ[u].append(v)
        preds[v].append(u)
    return succ, preds, pairs


def _transitive_reduction(n: int, succ: list[list[int]]) -> list[tuple[int, int]]:
    """The edges of the transitive reduction (same as networkx.transitive_reduction, tested so)."""
    # Reachability is kept as Python-int bitsets (bit i = block i): networkx's per-node DFS is
    # quadratic in Python on long chains, and 10,000-block bodies must schedule in well under a second.
    reach = [0] * n  # reach[u]: bitset of every block reachable from u (u excluded)
    kept: list[tuple[int, int]] = []
    for u in range(n - 1, -1, -1):
        # An edge u -> v is redundant exactly when v is reachable through another child of u.
        covered = 0
        for w in succ[u]:
            covered |= reach[w]
        direct = 0
        for w in succ[u]:
            direct |= 1 << w
            if not (covered >> w) & 1:
                kept.append((u, w))
        reach[u] = covered | direct
    kept.sort()
    return kept


def _chains(n: int, reduced: list[tuple[int, int]]) -> list[int]:
    """Chain id per block: a maximum matching of the reduced DAG strings blocks into disjoint paths."""
    import networkx as nx  # on first use, so `import dfgraph` does not pay for it

    # Left copy u = producer, right copy n + v = consumer; a matched u -> v puts v right after u.
    graph = nx.Graph()
    graph.add_nodes_from(range(2 * n))
    graph.add_edges_from((u, n + v) for u, v in reduced)
    matching = nx.bipartite.hopcroft_karp_matching(graph, top_nodes=range(n))
    after = {u: matching[u] - n for u in range(n) if u in matching}
    chain = [-1] * n
    has_pred = set(after.values())
    for head in range(n):  # heads in program order, so chain ids follow program order too
        if head in has_pred:
            continue
        node: int | None = head
        while node is not None:
            chain[node] = head
            node = after.get(node)
    return chain


def _merge_chains(n: int, chain: list[int], main: set[int], max_streams: int | None) -> list[int]:
    """Stream per block: the main chains become stream 0, the rest one stream each, capped greedily."""
    members: dict[int, list[int]] = {}
    for node in range(n):
        members.setdefault(chain[node], []).append(node)
    others = [c for c in members if c not in main]
    bin_of = {c: 0 for c in main}
    if max_streams is None or len(others) < max_streams:
        bin_of.update({c: i + 1 for i, c in enumerate(others)})
    else:
        # Longest chain first onto the least-loaded stream (ties: lower stream), stream 0 included:
        # the classic LPT heuristic keeps the streams' op counts balanced.
        load = sum(len(members[c]) for c in main)
        heap = [(load, 0), *((0, s) for s in range(1, max_streams))]
        heapq.heapify(heap)
        for c in sorted(others, key=lambda c: (-len(members[c]), c)):
            load, s = heapq.heappop(heap)
            bin_of[c] = s
            heapq.heappush(heap, (load + len(members[c]), s))
    # Renumber side streams by their first block so the table reads top to bottom.
    renumber = {0: 0}
    for node in range(n):
        renumber.setdefault(bin_of[chain[node]], len(renumber))
    return [renumber[bin_of[chain[node]]] for node in range(n)]


def _waits(n: int, stream: list[int], preds: list[list[int]]) -> tuple[list[tuple[int, int]], list[int]]:
    """Minimal waits (consumer, producer) in issue order, and the producers that record an event."""
    # A vector clock per stream says which ops on every stream it is known to come after. It is kept
    # in closed form, as a bitset of blocks (bit u = block u happens before the stream's next op): the
    # vector clock is that set's last position per stream, and Python ints merge bitsets in C, so
    # wide bodies (thousands of streams) stay fast where dict clocks took seconds. A wait is added only
    # for an uncovered predecessor that no other uncovered predecessor implies, so removing any single
    # wait uncovers its edge. Events are recorded only where some stream waits: a producer whose
    # cross-stream consumers are all covered transitively would record an event nobody waits on.
    n_streams = max(stream) + 1
    clock = [0] * n_streams  # clock[s]: blocks known to happen before the next op on stream s
    after = [0] * n  # after[u]: blocks happening before or at u, i.e. u's stream clock right after u
    waits: list[tuple[int, int]] = []
    for v in range(n):
        s = stream[v]
        known = clock[s]
        # Same-stream predecessors are covered by issue order (they are in `known` already).
        uncovered = [u for u in preds[v] if not (known >> u) & 1]
        if uncovered:
            # Happens-before follows issue order, so a later producer can imply an earlier one but
            # never the reverse: scan latest first, keep a producer only if the kept ones miss it.
            merged = 0
            for u in sorted(uncovered, reverse=True):
                if not (merged >> u) & 1:
                    waits.append((v, u))
                    merged |= after[u]
            known |= merged
        known |= 1 << v
        after[v] = clock[s] = known
    waits.sort()
    events = sorted({u for _, u in waits})
    return waits, events


# Blocks that draw random numbers declare this resource (`mutates=("rng",)`): they stay on stream 0.
RNG = "rng"
# `streams="auto"` caps each loop body at this many streams (Nimble's chains beyond it are merged).
AUTO_STREAMS = 4


def max_streams_of(streams: str | int) -> int:
    """The stream cap a `streams=` option asks for: "auto" or a positive int; ValueError otherwise."""
    if streams == "auto":
        return AUTO_STREAMS
    if isinstance(streams, int) and not isinstance(streams, bool) and streams >= 1:
        return streams
    raise ValueError(f"streams= takes 'auto' or a positive int, got {streams!r}")


def schedule_program(lowered: Lowered, max_streams: int | None) -> Schedule:
    """One BodySchedule per loop of a lowered program (nested loops, and loops inside switch cases,
    included); a switch in a loop body is one unit of that body's schedule."""
    ops = list(lowered.ops())
    for op in reversed(ops):  # inner ops before the loops and switches around them: each unions once
        if isinstance(op, LoopOp | SwitchOp):
            inner = (child.meta["mutates"] for region in regions(op) for child in region.ops)
            op.meta["mutates"] = frozenset().union(*inner)
        else:
            op.meta["mutates"] = _mutated(op)
    bodies: dict[str, BodySchedule] = {}
    for op in ops:
        if isinstance(op, LoopOp):
            nodes, edges, pinned = body_dag(op)
            switches = {
                s.path: [case.key for case in s.cases] for s in op.body.ops if isinstance(s, SwitchOp)
            }
            body = bodies[op.path] = assign(
                nodes, edges, max_streams=max_streams, pinned=pinned, switches=switches
            )
            op.meta["schedule"] = body
    return Schedule(bodies)


def body_dag(loop: LoopOp) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """The DAG of one loop body: its top-level ops (a nested loop or a switch is one node), data edges
    within an iteration, order edges between ops that mutate the same resource, and the ops pinned to
    stream 0."""
    ops = loop.body.ops
    edges: dict[tuple[str, str], None] = {}
    last_user: dict[str, Op] = {}
    pinned: list[str] = []
    for op in ops:
        # a nested loop's or a switch's slots include whatever its body or cases read from here
        for slot in op.inputs:
            source = loop.body.top_level(slot.value.producer) if slot.value.kind == "op" else None
            if source is not None and source is not op:
                edges[(source.path, op.path)] = None
        for resource in sorted(_mutated(op)):
            if resource in last_user:
                edges[(last_user[resource].path, op.path)] = None
            last_user[resource] = op
            if resource == RNG:
                pinned.append(op.path)
    return [op.path for op in ops], list(edges), pinned


def _mutated(op: Op) -> frozenset[str]:
    """The resources an op (for a loop or a switch, any call inside it) declares it mutates;
    `op.meta["mutates"]` when schedule_program recorded it (then ops nested deep are not walked once per
    enclosing loop)."""
    known: frozenset[str] | None = op.meta.get("mutates")
    if known is not None:
        return known
    if isinstance(op, LoopOp | SwitchOp):  # a walk, not recursion: loops and switches nest deep
        inside = (inner for region in regions(op) for inner in region.walk())
        calls: Iterable[Op] = (inner for inner in inside if isinstance(inner, CallOp))
    else:
        calls = (op,)
    return frozenset(str(r) for inner in calls for r in getattr(inner.block, "mutates", ()))

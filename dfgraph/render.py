"""Pictures of graphs and schedules: Graphviz dot, Mermaid, self-contained SVG and Chrome/Perfetto traces.

    to_dot(graph)            # Graphviz: composites as clusters, loops with their control and carried names
    to_mermaid(graph)        # the same as a Mermaid flowchart (renders on GitHub and in Jupyter markdown)
    graph_svg(graph)         # the same drawn here, in pure Python: an SVG that needs no other tool
    schedule_mermaid(prog)   # each loop body's streams as a Mermaid sequence diagram: ops, waits, fork/join
    schedule_svg(prog)       # a simulated run of the schedule as lanes per stream, in pure Python
    schedule_trace(prog)     # the same simulated run as Chrome/Perfetto trace JSON (ui.perfetto.dev)

Every function takes a block (a composite or a leaf) or a compiled Program (the schedule functions also
a dfgraph.schedule.Schedule) and returns text; the output is
deterministic (same graph, same text). Edges carry the value's name and type; a loop is drawn as a
cluster holding a loop head (its control: `for i in range(num_steps)`, and its carried names), whose
carried values feed the body and come back from it as dashed "next iteration" edges. A switch is drawn
as a cluster holding its head (`switch on mode`, fed the key: by the `on=` name's producer, or by the
selector block drawn beside it) and one sub-cluster per case (`case img2img: mode == 'img2img'` when `on=`
is a name); a value the switch writes flows to its readers from every case that writes it (and from its
value before the switch when some case leaves it as it was).
"""

from __future__ import annotations

import html
import json
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import attrs

from dfgraph import types
from dfgraph.block import safe_repr
from dfgraph.check import analyse
from dfgraph.compose import Bound, Graph, Loop, Sequential, Switch
from dfgraph.errors import WiringError
from dfgraph.ir import CallOp, LoopOp, Lowered, SwitchOp, Value
from dfgraph.schedule import BodySchedule, Schedule, max_streams_of, schedule_program
from dfgraph.simulator import simulate

__all__ = [
    "Cluster",
    "Edge",
    "GraphPicture",
    "Node",
    "graph_picture",
    "graph_svg",
    "mimebundle",
    "schedule_mermaid",
    "schedule_of",
    "schedule_svg",
    "schedule_trace",
    "to_dot",
    "to_mermaid",
]

NodeKind = Literal["block", "loop", "switch", "input", "output"]
ClusterKind = Literal["loop", "sequential", "graph", "switch", "case"]


@attrs.frozen
class Cluster:
    """A composite drawn as a box around its children: `parent` is the enclosing cluster's id."""

    id: str
    label: str
    kind: ClusterKind
    parent: str | None
    path: str


@attrs.frozen
class Node:
    """A block call, a loop head, a switch head, a graph input or a graph output; `cluster` is the
    enclosing cluster."""

    id: str
    label: str
    kind: NodeKind
    cluster: str | None
    path: str


@attrs.frozen
class Edge:
    """A value flowing from one node to another; `back` marks a carried value's next-iteration edge."""

    src: str
    dst: str
    label: str
    back: bool = False


@attrs.frozen
class GraphPicture:
    """What every graph picture draws: clusters (nested), nodes and labelled edges, in program order."""

    name: str
    clusters: tuple[Cluster, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def children(self, cluster: str | None) -> tuple[list[Cluster], list[Node]]:
        """The clusters and nodes directly inside `cluster` (None: the top level)."""
        return (
            [c for c in self.clusters if c.parent == cluster],
            [n for n in self.nodes if n.cluster == cluster],
        )


# -- the picture of a graph, from the checked IR -----------------------------------------------------------


def _block_of(target: Any) -> Any:
    """The block a target names: a Program gives the block it was compiled from."""
    return target.block if _is_program(target) else target


def _is_program(target: Any) -> bool:
    """A compiled Program (duck-typed: render sits below dfgraph.program, which imports it lazily)."""
    return hasattr(target, "source") and hasattr(target, "block") and hasattr(target, "schedule")


def _lowered(blk: Any) -> Lowered:
    """The IR of a block; a definition too malformed to lower raises its WiringError."""
    lowered, report = analyse(blk)
    if lowered is None:
        raise WiringError(report)
    return lowered


def _composite_clusters(root: Any, root_path: str) -> tuple[list[Cluster], dict[str, str]]:
    """The clusters of a composite tree, and for every path (leaf or loop) the cluster that holds it.

    Paths follow the lowering: `parent/child` for Sequential children and Graph nodes; a loop's body
    shares the loop's path when it is a Sequential (its children sit directly in the loop's cluster), and
    so does a case's (in the case's cluster, at `switch/key`); a switch's selector is `switch/selector`;
    a Bound is transparent (its constants are `path/bound`, its block keeps the Bound's path)."""
    clusters: list[Cluster] = []
    owner: dict[str, str] = {}
    # an explicit stack (children pushed in reverse), so the clusters come out in program order
    stack: list[tuple[Any, str, str | None]] = [(root, root_path, None)]
    while stack:
        blk, path, parent = stack.pop()
        children: list[tuple[Any, str, str | None]] = []
        if isinstance(blk, Loop):
            cid = f"c{len(clusters)}"
            clusters.append(Cluster(cid, f"loop {blk.name}", "loop", parent, path))
            owner[path] = cid
            body = blk.body
            if isinstance(body, Sequential):
                children = [(child, f"{path}/{name}", cid) for name, child in body.children]
            else:
                children = [(body, f"{path}/{getattr(body, 'name', 'body')}", cid)]
        elif isinstance(blk, Switch):
            cid = f"c{len(clusters)}"
            clusters.append(Cluster(cid, f"switch {blk.name}", "switch", parent, path))
            owner[path] = cid  # the switch head
            if blk.selector is not None:
                children.append((blk.selector, f"{path}/{blk.selector_name}", cid))
            for key, case in blk.cases.items():
                kid = f"c{len(clusters)}"
                label = f"case {key}" if blk.on is None else f"case {key}: {blk.on} == {key!r}"
                clusters.append(Cluster(kid, label, "case", cid, f"{path}/{key}"))
                if isinstance(case, Sequential):  # its children sit directly in the case's cluster
                    children += [(child, f"{path}/{key}/{name}", kid) for name, child in case.children]
                else:
                    children.append((case, f"{path}/{key}", kid))
        elif isinstance(blk, Bound):
            if parent is not None:
                owner[f"{path}/bound"] = parent
            children = [(blk.block, path, parent)]
        elif isinstance(blk, Sequential | Graph):
            cid = f"c{len(clusters)}"
            kind: ClusterKind = "sequential" if isinstance(blk, Sequential) else "graph"
            clusters.append(Cluster(cid, f"{kind} {blk.name}", kind, parent, path))
            items = blk.children if isinstance(blk, Sequential) else tuple(blk.nodes.items())
            children = [(child, f"{path}/{name}", cid) for name, child in items]
        elif parent is not None:
            owner[path] = parent
        stack.extend(reversed(children))
    return clusters, owner


def _loop_head(op: LoopOp) -> str:
    """`for i in range(num_steps)` or `for i, t in enumerate(timesteps)`, then the carried names."""
    loop = op.loop
    if loop.times is not None:
        head = f"for {loop.index} in range({loop.times})"
    else:
        head = f"for {loop.index}, {loop.item} in enumerate({loop.over})"
    carried = ", ".join(c.name for c in op.carried)
    return f"{head}\ncarries {carried}" if carried else head


def _switch_head(op: SwitchOp) -> str:
    """`switch on mode`, or `switch on pick` for a selector block, then the case keys."""
    switch = op.switch
    on = switch.on if switch.on is not None else switch.selector_name
    return f"switch on {on}\ncases {', '.join(case.key for case in op.cases)}"


def _value_label(value: Value, port: str | None = None) -> str:
    shown = value.name if port is None or port == value.name else f"{value.name} → {port}"
    return f"{shown}: {types.describe(value.type)}"


def graph_picture(target: Any) -> GraphPicture:
    """The clusters, nodes and labelled edges every graph picture draws, from the checked IR."""
    blk = _block_of(target)
    lowered = _lowered(blk)
    clusters, owner = _composite_clusters(blk, lowered.name)
    nodes: list[Node] = []
    edges: dict[Edge, None] = {}  # ordered set: one edge per (source, target, label)
    source: dict[int, list[str]] = {}  # value id -> the nodes that may produce it (several: a switch's)

    def cluster_of(path: str) -> str | None:
        while path:  # a path the composite walk did not name (a renamed root): its nearest ancestor
            if path in owner:
                return owner[path]
            path = path.rpartition("/")[0]
        return None

    for k, (name, value) in enumerate(lowered.inputs.items()):
        nodes.append(Node(f"in{k}", _value_label(value), "input", None, name))
        source[value.id] = [f"in{k}"]
    ops = list(lowered.ops())
    ids = {op: _node_id(k, op) for k, op in enumerate(ops)}
    for op in ops:
        nid = ids[op]
        last = op.path.rpartition("/")[2]
        if isinstance(op, LoopOp):
            nodes.append(Node(nid, _loop_head(op), "loop", owner.get(op.path, cluster_of(op.path)), op.path))
            inner = [op.index_value, op.item_value, *(c.phi for c in op.carried)]
            for value in (v for v in inner if v is not None):
                source[value.id] = [nid]
        elif isinstance(op, SwitchOp):
            nodes.append(
                Node(nid, _switch_head(op), "switch", owner.get(op.path, cluster_of(op.path)), op.path)
            )
            continue  # its outputs come from its cases (below)
        else:
            name = str(getattr(op.block, "name", last))
            label = last if name == last else f"{last}: {name}"
            nodes.append(Node(nid, label, "block", cluster_of(op.path), op.path))
        for value in op.outputs:
            source[value.id] = [nid]
    for op in reversed(ops):  # inner switches first: an outer case may leave an inner switch's output
        if isinstance(op, SwitchOp):
            for out in op.outs:
                given = [f for f in out.finals if f is not None]
                if out.init is not None and len(given) < len(out.finals):  # some case passes it through
                    given.append(out.init)
                source[out.value.id] = list(dict.fromkeys(n for v in given for n in source.get(v.id, ())))
    for op in ops:
        nid = ids[op]
        slots: list[tuple[Value, str | None]]
        if isinstance(op, CallOp):
            slots = [(slot.value, slot.port.name) for slot in op.inputs]
        elif isinstance(op, LoopOp):  # the control and initial carried values; the body reads the rest
            slots = [(op.inputs[0].value, None), *((c.init, None) for c in op.carried)]
        elif isinstance(op, SwitchOp):  # the key; the cases read the rest themselves
            slots = [(op.inputs[0].value, None)]
        else:
            slots = []
        for value, port in slots:
            for src in source.get(value.id, ()):
                edges[Edge(src, nid, _value_label(value, port))] = None
        if isinstance(op, LoopOp):
            for c in op.carried:
                for src in source.get(c.final.id, ()):
                    edges[Edge(src, nid, f"{c.name} (next iteration)", back=True)] = None
    for k, (name, value) in enumerate(lowered.outputs.items()):
        nodes.append(Node(f"out{k}", f"{name}: {types.describe(value.type)}", "output", None, name))
        for src in source.get(value.id, ()):
            edges[Edge(src, f"out{k}", name)] = None
    return GraphPicture(lowered.name, tuple(clusters), tuple(nodes), tuple(edges))


def _node_id(k: int, op: object) -> str:
    """The node id of the k-th op: `h` for a loop head, `w` for a switch head, `n` for a block."""
    return f"h{k}" if isinstance(op, LoopOp) else f"w{k}" if isinstance(op, SwitchOp) else f"n{k}"


class _Tree:
    """The picture's nesting indexed once: `children` and `members` without scanning every cluster per
    cluster (a graph with thousands of loops or switches has thousands of clusters)."""

    def __init__(self, picture: GraphPicture) -> None:
        self.sub: dict[str | None, list[Cluster]] = {}
        self.inner: dict[str | None, list[Node]] = {}
        for c in picture.clusters:
            self.sub.setdefault(c.parent, []).append(c)
        for n in picture.nodes:
            self.inner.setdefault(n.cluster, []).append(n)

    def children(self, cluster: str | None) -> tuple[list[Cluster], list[Node]]:
        """The clusters and nodes directly inside `cluster` (None: the top level)."""
        return self.sub.get(cluster, []), self.inner.get(cluster, [])

    def members(self, cluster: str) -> list[str]:
        """Every node inside a cluster, nested clusters included."""
        found: list[str] = []
        stack = [cluster]
        while stack:
            cid = stack.pop()
            found.extend(n.id for n in self.inner.get(cid, ()))
            stack.extend(c.id for c in self.sub.get(cid, ()))
        return found


def _walk_clusters(picture: GraphPicture) -> Iterator[tuple[str, Cluster | Node | None, int]]:
    """("open", cluster, depth), ("node", node, depth), ("close", None, depth) in nesting order."""
    tree = _Tree(picture)
    pending: list[tuple[str, Cluster | Node | None, int]] = []
    top_clusters, top_nodes = tree.children(None)
    pending.extend(("open", c, 0) for c in reversed(top_clusters))
    pending.extend(("node", n, 0) for n in reversed(top_nodes))
    while pending:
        kind, item, depth = pending.pop()
        yield kind, item, depth
        if kind == "open" and isinstance(item, Cluster):
            sub, inner = tree.children(item.id)
            pending.append(("close", None, depth))
            pending.extend(("open", c, depth + 1) for c in reversed(sub))
            pending.extend(("node", n, depth + 1) for n in reversed(inner))


# -- Graphviz dot ------------------------------------------------------------------------------------------


def _dot_str(text: str) -> str:
    """A dot double-quoted string; line breaks become dot's centred `\\n`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_NODE = {
    "block": 'shape=box, style="rounded,filled", fillcolor="#e8f0fe"',
    "loop": 'shape=hexagon, style=filled, fillcolor="#fde9c9"',
    "switch": 'shape=diamond, style=filled, fillcolor="#f3e8fd"',
    "input": 'shape=ellipse, style=filled, fillcolor="#e6f4ea"',
    "output": 'shape=ellipse, style=filled, fillcolor="#fce8e6"',
}
_DOT_CLUSTER = {
    "loop": 'style="rounded,filled", fillcolor="#fff8ec", color="#d9a24a"',
    "sequential": 'style="rounded", color="#9aa0a6"',
    "graph": 'style="rounded,dashed", color="#5f6368"',
    "switch": 'style="rounded,filled", fillcolor="#faf5ff", color="#a142f4"',
    "case": 'style="rounded,dashed", color="#a142f4"',
}


def to_dot(target: Any) -> str:
    """The graph as Graphviz dot: composites as nested clusters, edges labelled `name: type`."""
    picture = graph_picture(target)
    lines = [
        f"digraph {_dot_str(picture.name)} {{",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, newrank=true];',
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#5f6368"];',
    ]
    for kind, item, depth in _walk_clusters(picture):
        pad = "  " * (depth + 1)
        if isinstance(item, Cluster):
            lines.append(f"{pad}subgraph cluster_{item.id} {{")
            lines.append(f"{pad}  graph [label={_dot_str(item.label)}, {_DOT_CLUSTER[item.kind]}];")
        elif isinstance(item, Node):
            tooltip = _dot_str(item.path)
            lines.append(
                f"{pad}{item.id} [label={_dot_str(item.label)}, tooltip={tooltip}, {_DOT_NODE[item.kind]}];"
            )
        elif kind == "close":
            lines.append(f"{pad}}}")
    for edge in picture.edges:
        style = ', style=dashed, constraint=false, color="#d9a24a"' if edge.back else ""
        lines.append(f"  {edge.src} -> {edge.dst} [label={_dot_str(edge.label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Mermaid -----------------------------------------------------------------------------------------------


_MERMAID_ESCAPES = {'"': "#quot;", "#": "#35;", "<": "#lt;", ">": "#gt;", "|": "#124;", ";": "#59;"}


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label (entity codes; a line break becomes <br/>)."""
    out = "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)
    return out.replace("\n", "<br/>")


_MERMAID_SHAPE = {
    "block": ('["', '"]'),
    "loop": ('{{"', '"}}'),
    "switch": ('{"', '"}'),
    "input": ('(["', '"])'),
    "output": ('(["', '"])'),
}


def to_mermaid(target: Any) -> str:
    """The graph as a Mermaid flowchart: composites as nested subgraphs, edges labelled `name: type`."""
    picture = graph_picture(target)
    lines = ["flowchart TB"]
    for kind, item, depth in _walk_clusters(picture):
        pad = "    " * (depth + 1)
        if isinstance(item, Cluster):
            lines.append(f'{pad}subgraph {item.id}["{_mermaid_text(item.label)}"]')
            lines.append(f"{pad}    direction TB")
        elif isinstance(item, Node):
            left, right = _MERMAID_SHAPE[item.kind]
            lines.append(f"{pad}{item.id}{left}{_mermaid_text(item.label)}{right}")
        elif kind == "close":
            lines.append(f"{pad}end")
    for edge in picture.edges:
        arrow = "-.->" if edge.back else "-->"
        lines.append(f'    {edge.src} {arrow}|"{_mermaid_text(edge.label)}"| {edge.dst}')
    lines.extend(f"    class {c.id} loopbox" for c in picture.clusters if c.kind == "loop")
    lines.extend(f"    class {c.id} switchbox" for c in picture.clusters if c.kind == "switch")
    lines.append("    classDef loopbox fill:#fff8ec,stroke:#d9a24a")
    if any(c.kind == "switch" for c in picture.clusters):
        lines.append("    classDef switchbox fill:#faf5ff,stroke:#a142f4")
    return "\n".join(lines) + "\n"


# -- notebooks ---------------------------------------------------------------------------------------------


def mimebundle(target: Any) -> dict[str, str]:
    """What a notebook shows for a program: SVG from Graphviz's `dot` when it is installed, else Mermaid
    in Markdown (JupyterLab renders ```mermaid blocks); always a text/plain fallback."""
    bundle = {"text/plain": safe_repr(target, limit=10_000)}
    dot = shutil.which("dot")
    if dot is not None:
        try:
            done = subprocess.run(
                [dot, "-Tsvg"], input=to_dot(target), capture_output=True, text=True, timeout=30, check=True
            )
        except (OSError, subprocess.SubprocessError):
            pass  # a broken Graphviz install: fall back to Mermaid
        else:
            bundle["image/svg+xml"] = done.stdout
            return bundle
    bundle["text/markdown"] = f"```mermaid\n{to_mermaid(target)}```\n"
    return bundle


# -- schedules ---------------------------------------------------------------------------------------------


def schedule_of(target: Any, *, streams: str | int = "auto") -> Schedule:
    """The stream schedule a target names: a Schedule itself, a Program's, or a block's once compiled
    (with `streams=`)."""
    if isinstance(target, Schedule):
        return target
    if _is_program(target):
        schedule: Schedule = target.schedule
        return schedule
    return schedule_program(_lowered(target), max_streams_of(streams))


def _short(path: str, loop: str) -> str:
    """A block path inside a loop body, without the loop's own path."""
    return path[len(loop) + 1 :] if path.startswith(loop + "/") else path


def _unit(body: BodySchedule, node: str, loop: str) -> str:
    """A node of a body's schedule as pictures name it: its path in the loop, a switch's cases after it."""
    keys = body.cases_of(node)
    short = _short(node, loop)
    return f"{short} [switch: {' | '.join(keys)}]" if keys else short


def schedule_mermaid(target: Any, *, streams: str | int = "auto") -> str:
    """Each loop body's schedule as a Mermaid sequence diagram: a lane per stream, an op as a note on its
    stream, a wait as an arrow from the producer's stream, and the per-iteration fork and join."""
    schedule = schedule_of(target, streams=streams)
    n_streams = max((b.n_streams for b in schedule.bodies.values()), default=1)
    lines = ["sequenceDiagram"]
    lines.extend(f"    participant S{s} as stream {s}{' (main)' if s == 0 else ''}" for s in range(n_streams))
    if not schedule.bodies:
        lines.append("    Note over S0: no loops: nothing to schedule")
    for loop, body in schedule.bodies.items():
        lines.append(f"    loop {_mermaid_text(f'every iteration of {loop}')}")
        lines.extend(f"        S0->>S{s}: fork" for s in body.side_streams)
        waits: dict[str, list[str]] = {}
        for v, u in body.waits:
            waits.setdefault(v, []).append(u)
        for node, s in zip(body.nodes, body.assignment, strict=True):
            for u in waits.get(node, ()):
                text = _mermaid_text(f"wait for {_short(u, loop)}")
                lines.append(f"        S{body.stream_of(u)}-->>S{s}: {text}")
            lines.append(f"        Note over S{s}: {_mermaid_text(_unit(body, node, loop))}")
        for s, last in body.joins:
            lines.append(f"        S{s}->>S0: {_mermaid_text(f'join after {_short(last, loop)}')}")
        lines.append("    end")
    return "\n".join(lines) + "\n"


Durations = Mapping[str, float] | Callable[[str], float] | None


@attrs.frozen
class _Slice:
    """One op of one iteration in a simulated run: its stream and its start and end times (µs)."""

    path: str
    iteration: int
    stream: int
    start: float
    end: float


@attrs.frozen
class _Run:
    """A simulated run of one loop body: slices, waits (producer slice, consumer slice), fork/join times."""

    loop: str
    body: BodySchedule
    slices: tuple[_Slice, ...]
    waits: tuple[tuple[_Slice, _Slice], ...]
    forks: tuple[float, ...]
    joins: tuple[float, ...]


def _duration(durations: Durations, path: str) -> float:
    if durations is None:
        return 1000.0
    if callable(durations):
        return float(durations(path))
    return float(durations.get(path, 1000.0))


def _simulate_body(loop: str, body: BodySchedule, iterations: int, durations: Durations) -> _Run:
    """Times of every op when each stream runs its queue as early as its waits allow.

    The schedule is first run by dfgraph.simulator under a random legal interleaving, which raises
    SimulationError if any edge or iteration boundary is not ordered; these start times follow from the
    stream order and the waits alone, so they are the same for every legal interleaving."""
    simulate(body, iterations, random.Random(0))
    clock = [0.0] * body.n_streams
    done: dict[str, _Slice] = {}
    slices: list[_Slice] = []
    pairs: list[tuple[_Slice, _Slice]] = []
    forks: list[float] = []
    joins: list[float] = []
    waits: dict[str, list[str]] = {}
    for v, u in body.waits:
        waits.setdefault(v, []).append(u)
    for i in range(iterations):
        forks.append(clock[0])
        for s in body.side_streams:  # each side stream waits on the fork recorded on stream 0
            clock[s] = max(clock[s], clock[0])
        for node, s in zip(body.nodes, body.assignment, strict=True):
            producers = [done[u] for u in waits.get(node, ())]
            start = max([clock[s], *(p.end for p in producers)])
            piece = _Slice(node, i, s, start, start + _duration(durations, node))
            clock[s] = piece.end
            done[node] = piece
            slices.append(piece)
            pairs.extend((p, piece) for p in producers)
        for s in body.side_streams:  # stream 0 waits on each side stream's join event
            clock[0] = max(clock[0], clock[s])
        joins.append(clock[0])
    return _Run(loop, body, tuple(slices), tuple(pairs), tuple(forks), tuple(joins))


def _runs(target: Any, iterations: int, durations: Durations, streams: str | int) -> list[_Run]:
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    schedule = schedule_of(target, streams=streams)
    return [_simulate_body(loop, body, iterations, durations) for loop, body in schedule.bodies.items()]


def schedule_trace(
    target: Any, *, iterations: int = 2, durations: Durations = None, streams: str | int = "auto"
) -> str:
    """A simulated run of every loop body's schedule as Chrome/Perfetto trace JSON.

    One process per loop, one thread per stream; an op is a complete event (ph "X", `durations` in µs
    per block path, 1 ms each by default), a cross-stream wait a flow (ph "s" on the producer, "f" on
    the consumer), the fork and join instant events. Open it at ui.perfetto.dev or chrome://tracing."""
    events: list[dict[str, Any]] = []
    flow = 0
    for pid, run in enumerate(_runs(target, iterations, durations, streams), start=1):
        events.append(
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": f"loop {run.loop}"}}
        )
        for s in range(run.body.n_streams):
            name = f"stream {s}{' (main)' if s == 0 else ''}"
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": s, "args": {"name": name}})
        for piece in run.slices:
            events.append(
                {
                    "name": _unit(run.body, piece.path, run.loop),
                    "cat": "block",
                    "ph": "X",
                    "ts": piece.start,
                    "dur": piece.end - piece.start,
                    "pid": pid,
                    "tid": piece.stream,
                    "args": {"path": piece.path, "iteration": piece.iteration},
                }
            )
        for producer, consumer in run.waits:
            flow += 1
            common = {"name": "wait", "cat": "wait", "id": flow, "pid": pid}
            events.append({**common, "ph": "s", "ts": producer.start, "tid": producer.stream})
            events.append({**common, "ph": "f", "bp": "e", "ts": consumer.start, "tid": consumer.stream})
        for i, (fork, join) in enumerate(zip(run.forks, run.joins, strict=True)):
            if run.body.side_streams:
                for what, ts in (("fork", fork), ("join", join)):
                    events.append(
                        {
                            "name": what,
                            "ph": "i",
                            "s": "p",
                            "ts": ts,
                            "pid": pid,
                            "tid": 0,
                            "args": {"iteration": i},
                        }
                    )
    trace = {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"dfgraph": f"simulated run, {iterations} iterations per loop"},
    }
    return json.dumps(trace, indent=1) + "\n"


# -- self-contained SVG (no Graphviz, no JavaScript) ---------------------------------------------------


_FONT = 12
_CHAR = 7.0  # average glyph width of a 12 px sans-serif, for box sizes
_LINE = 16


def _text_width(text: str) -> float:
    return max((len(line) for line in text.split("\n")), default=0) * _CHAR


def _svg_text(
    x: float, y: float, text: str, *, anchor: str = "middle", size: int = _FONT, extra: str = ""
) -> str:
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{0 if k == 0 else _LINE}">{html.escape(line)}</tspan>'
        for k, line in enumerate(text.split("\n"))
    )
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{spans}</text>'


def _svg_document(width: float, height: float, title: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">'
    )
    return (
        "\n".join(
            [
                head,
                f"<title>{html.escape(title)}</title>",
                '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                'markerHeight="7" '
                'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5f6368"/></marker></defs>',
                f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
                *body,
                "</svg>",
            ]
        )
        + "\n"
    )


@attrs.define
class _Box:
    """A laid-out node or cluster: top-left corner and size."""

    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


_GAP = 34.0  # vertical space between rows (edge labels sit there)
_HGAP = 24.0
_PAD = 14.0
_HEAD = 22.0  # a cluster's title line
_ROW = 4  # at most this many boxes side by side


def graph_svg(target: Any) -> str:
    """The graph drawn in pure Python as a self-contained SVG (viewable in any browser, no Graphviz).

    Layout: a Sequential or loop body stacks its children top to bottom, a Graph puts its nodes in rows
    by dependency; clusters are nested boxes; edges are curves labelled with the value's name."""
    picture = graph_picture(target)
    sizes: dict[str, _Box] = {}
    for node in picture.nodes:
        lines = node.label.count("\n") + 1
        sizes[node.id] = _Box(0, 0, max(_text_width(node.label) + 2 * _PAD, 80), lines * _LINE + 14)
    tree = _Tree(picture)
    rank = _ranks(picture, tree)
    labels = {c.id: c.label for c in picture.clusters}
    # sizes of clusters, innermost first (a cluster's children come after it in `picture.clusters`)
    rows_of: dict[str | None, list[list[str]]] = {}
    # a cluster's smallest rank of any node inside it (nested clusters included); None when it has none
    first_rank: dict[str, int | None] = {}
    for cid in [*(c.id for c in reversed(picture.clusters)), None]:
        sub, inner = tree.children(cid)
        known = [r for r in (first_rank[c.id] for c in sub) if r is not None] + [rank[n.id] for n in inner]
        members = [(c.id, first_rank[c.id] or 0) for c in sub]
        members += [(n.id, rank[n.id]) for n in inner]
        rows = _rows(members)
        rows_of[cid] = rows
        if cid is None:
            break
        first_rank[cid] = min(known, default=None)
        w = max((sum(sizes[m].w for m in row) + _HGAP * (len(row) - 1) for row in rows), default=60)
        h = sum(max(sizes[m].h for m in row) for row in rows) + _GAP * max(len(rows) - 1, 0)
        label = labels[cid]
        sizes[cid] = _Box(0, 0, max(w, _text_width(label)) + 2 * _PAD, h + _HEAD + 2 * _PAD)
    placed: dict[str, _Box] = {}
    _place(None, 20.0, 20.0, rows_of, sizes, placed, picture)
    width = max((b.x + b.w for b in placed.values()), default=100) + 160
    height = max((b.y + b.h for b in placed.values()), default=100) + 20
    body: list[str] = []
    for cluster in picture.clusters:  # outer clusters first, so inner ones are drawn on top
        box = placed[cluster.id]
        fill, stroke, dash = {
            "loop": ("#fff8ec", "#d9a24a", ""),
            "sequential": ("#fafafa", "#9aa0a6", ""),
            "graph": ("#f5f7fa", "#5f6368", ' stroke-dasharray="5,3"'),
            "switch": ("#faf5ff", "#a142f4", ""),
            "case": ("#ffffff", "#a142f4", ' stroke-dasharray="5,3"'),
        }[cluster.kind]
        body.append(
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="8" '
            f'fill="{fill}" stroke="{stroke}"{dash}><title>{html.escape(cluster.path)}</title></rect>'
        )
        body.append(
            _svg_text(box.x + 8, box.y + 16, cluster.label, anchor="start", size=11, extra=' fill="#5f6368"')
        )
    body.extend(_svg_edges(picture, placed))
    for node in picture.nodes:
        box = placed[node.id]
        fill, stroke, rx = {
            "block": ("#e8f0fe", "#4285f4", 6),
            "loop": ("#fde9c9", "#d9a24a", 14),
            "switch": ("#f3e8fd", "#a142f4", 14),
            "input": ("#e6f4ea", "#34a853", 16),
            "output": ("#fce8e6", "#ea4335", 16),
        }[node.kind]
        body.append(
            f'<g><title>{html.escape(node.path)}</title><rect x="{box.x:.1f}" y="{box.y:.1f}" '
            f'width="{box.w:.1f}" height="{box.h:.1f}" rx="{rx}" fill="{fill}" stroke="{stroke}"/>'
        )
        lines = node.label.count("\n") + 1
        top = box.y + box.h / 2 - (lines - 1) * _LINE / 2 + 4
        body.append(_svg_text(box.x + box.w / 2, top, node.label) + "</g>")
    return _svg_document(width, height, picture.name, body)


def _ranks(picture: GraphPicture, tree: _Tree) -> dict[str, int]:
    """Longest-path rank of every node over the forward edges (nodes are in program order)."""
    rank = {n.id: 0 for n in picture.nodes}
    preds: dict[str, list[str]] = {}
    for e in picture.edges:
        if not e.back:
            preds.setdefault(e.dst, []).append(e.src)
    order = [n.id for n in picture.nodes if n.kind == "input"]
    # a switch's head comes after every value its cases read from outside, and its cases below it
    heads = {n.cluster: n.id for n in picture.nodes if n.kind == "switch"}
    for case in (c for c in picture.clusters if c.kind == "case" and c.parent in heads):
        head, members = heads[case.parent], set(tree.members(case.id))
        preds.setdefault(head, []).extend(p for m in members for p in preds.get(m, ()) if p not in members)
        for member in members:
            preds.setdefault(member, []).append(head)
    order += [n.id for n in picture.nodes if n.kind in ("block", "loop", "switch")]
    order += [n.id for n in picture.nodes if n.kind == "output"]
    for nid in order:  # program order is topological for forward edges
        rank[nid] = max([0, *(rank[p] + 1 for p in preds.get(nid, ()) if p in rank)])
    last = max((rank[n.id] for n in picture.nodes if n.kind != "output"), default=0) + 1
    for n in picture.nodes:  # the graph's outputs share the bottom row
        if n.kind == "output":
            rank[n.id] = last
    return rank


def _rows(members: list[tuple[str, int]]) -> list[list[str]]:
    """Members grouped into rows by rank, rows in rank order, members in their given order."""
    by_rank: dict[int, list[str]] = {}
    for mid, r in members:
        by_rank.setdefault(r, []).append(mid)
    # a wide row (a dozen graph inputs) wraps, so the picture stays readable on a screen
    return [by_rank[r][k : k + _ROW] for r in sorted(by_rank) for k in range(0, len(by_rank[r]), _ROW)]


def _place(
    cid: str | None,
    x: float,
    y: float,
    rows_of: Mapping[str | None, list[list[str]]],
    sizes: Mapping[str, _Box],
    placed: dict[str, _Box],
    picture: GraphPicture,
) -> None:
    """Place a cluster's rows inside the box whose content starts at (x, y); rows are centred."""
    rows = rows_of[cid]
    width = max((sum(sizes[m].w for m in row) + _HGAP * (len(row) - 1) for row in rows), default=0)
    if cid is not None:
        width = max(width, sizes[cid].w - 2 * _PAD)
    for row in rows:
        row_w = sum(sizes[m].w for m in row) + _HGAP * (len(row) - 1)
        row_h = max(sizes[m].h for m in row)
        cx = x + (width - row_w) / 2
        for m in row:
            size = sizes[m]
            box = _Box(cx, y + (row_h - size.h) / 2, size.w, size.h)
            placed[m] = box
            if m in rows_of:  # a cluster: place its own rows inside
                _place(m, box.x + _PAD, box.y + _HEAD + _PAD, rows_of, sizes, placed, picture)
            cx += size.w + _HGAP
        y += row_h + _GAP


def _svg_edges(picture: GraphPicture, placed: Mapping[str, _Box]) -> list[str]:
    out: list[str] = []
    kinds = {n.id: n.kind for n in picture.nodes}
    for edge in picture.edges:
        a, b = placed[edge.src], placed[edge.dst]
        if edge.back:  # from the body's last writer up to the loop head, along the right side
            x1, y1 = a.x + a.w, a.y + a.h / 2
            x2, y2 = b.x + b.w, b.y + b.h / 2
            bulge = max(x1, x2) + 40
            path = f"M{x1:.1f},{y1:.1f} C{bulge:.1f},{y1:.1f} {bulge:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            lx, ly, style = bulge - 10, (y1 + y2) / 2, ' stroke="#d9a24a" stroke-dasharray="5,3"'
        else:
            x1, y1 = a.x + a.w / 2, a.y + a.h
            x2, y2 = b.x + b.w / 2, b.y
            if y2 < y1 + 1:  # side by side (or upwards): leave from the side instead
                x1, y1 = (a.x + a.w, a.y + a.h / 2) if x2 > x1 else (a.x, a.y + a.h / 2)
            dy = max((y2 - y1) / 2, 20)
            path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + dy:.1f} {x2:.1f},{y2 - dy:.1f} {x2:.1f},{y2:.1f}"
            lx, ly, style = (x1 + x2) / 2 + 4, (y1 + y2) / 2, ' stroke="#5f6368"'
        out.append(
            f'<g><title>{html.escape(edge.label)}</title><path d="{path}" fill="none"{style} '
            'stroke-width="1.3" marker-end="url(#arrow)"/>'
        )
        name = edge.label.split(":")[0]
        if kinds[edge.src] == "input" or kinds[edge.dst] == "output":
            name = ""  # the input or output box already names it: fewer labels where edges crowd
        out.append(
            _svg_text(
                lx,
                ly,
                name,
                anchor="start",
                size=10,
                extra=' fill="#3c4043" stroke="white" stroke-width="3" paint-order="stroke"',
            )
            + "</g>"
        )
    return out


def schedule_svg(
    target: Any, *, iterations: int = 2, durations: Durations = None, streams: str | int = "auto"
) -> str:
    """A simulated run of every loop body's schedule as a self-contained SVG: one lane per stream, a box
    per op and iteration, an arrow per cross-stream wait (the same run as `schedule_trace`)."""
    runs = _runs(target, iterations, durations, streams)
    name = "schedule" if isinstance(target, Schedule) else str(getattr(_block_of(target), "name", "program"))
    body: list[str] = []
    lane, left, y = 30.0, 110.0, 20.0
    end = max((p.end for run in runs for p in run.slices), default=1.0)
    scale = min(900.0 / end, 0.12) if end else 0.1
    width = left + end * scale + 40
    if not runs:
        body.append(_svg_text(20, 40, "no loops: nothing to schedule", anchor="start"))
        y = 60
    how = "every block 1 ms" if durations is None else "given durations"
    how += "; red arrows: waits between streams; dashed: iteration boundaries"
    palette = ["#e8f0fe", "#e6f4ea", "#fef7e0", "#fce8e6", "#f3e8fd", "#e4f7fb"]
    for run in runs:
        body.append(
            _svg_text(
                10,
                y + 14,
                f"loop {run.loop}: {iterations} iterations, simulated ({how})",
                anchor="start",
                size=13,
            )
        )
        y += 26
        top = y
        for s in range(run.body.n_streams):
            ly = top + s * lane
            body.append(
                f'<rect x="{left:.1f}" y="{ly:.1f}" width="{end * scale:.1f}" height="{lane - 4:.1f}" '
                'fill="#f8f9fa"/>'
            )
            body.append(
                _svg_text(10, ly + 17, f"stream {s}{' (main)' if s == 0 else ''}", anchor="start", size=11)
            )
        for ts in run.joins[:-1]:  # iteration boundaries
            x = left + ts * scale
            body.append(
                f'<line x1="{x:.1f}" y1="{top - 4:.1f}" x2="{x:.1f}" '
                f'y2="{top + run.body.n_streams * lane:.1f}" stroke="#bdc1c6" stroke-dasharray="3,3"/>'
            )
        order = {node: k for k, node in enumerate(run.body.nodes)}
        for piece in run.slices:
            x, ly = left + piece.start * scale, top + piece.stream * lane
            w = (piece.end - piece.start) * scale
            label = _unit(run.body, piece.path, run.loop)
            fits = label if _text_width(label) * 10 / _FONT < w - 4 else ""
            body.append(
                f"<g><title>{html.escape(f'{piece.path} (iteration {piece.iteration})')}</title>"
                f'<rect x="{x:.1f}" y="{ly:.1f}" width="{w:.1f}" height="{lane - 4:.1f}" '
                f'fill="{palette[order[piece.path] % len(palette)]}" stroke="#5f6368" stroke-width="0.8"/>'
                + _svg_text(x + w / 2, ly + 17, fits, size=10)
                + "</g>"
            )
        for producer, consumer in run.waits:
            x1, y1 = left + producer.end * scale, top + producer.stream * lane + (lane - 4) / 2
            x2, y2 = left + consumer.start * scale, top + consumer.stream * lane + (lane - 4) / 2
            body.append(
                f'<path d="M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}" stroke="#d93025" stroke-width="1.2" '
                'fill="none" marker-end="url(#arrow)"/>'
            )
        y = top + run.body.n_streams * lane + 24
    return _svg_document(max(width, 960), y + 10, f"schedule of {name}", body)

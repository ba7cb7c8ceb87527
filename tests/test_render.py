"""Pictures (dfgraph.render): dot and Mermaid parse and show every block, edge, cluster and loop; the
schedule pictures and the simulated Chrome trace respect every wait; everything is deterministic."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph import render
from dfgraph.check import analyse
from dfgraph.ir import CallOp, LoopOp
from dfgraph.schedule import Schedule, assign
from dfgraph.testing import counter_loops, dags
from dfgraph_blocks.examples import counter_two, guided_loop

# -- a strict parser for the dot this module writes (the grammar's subset: no ports, no edge chains) ----

_TOKEN = re.compile(
    r'\s*(?:(->)|([{}\[\];=,])|("(?:[^"\\\n]|\\.)*")|([A-Za-z_][A-Za-z_0-9]*|-?(?:\.\d+|\d+(?:\.\d*)?)))'
)


class DotCluster:
    def __init__(self, name: str, parent: DotCluster | None) -> None:
        self.name, self.parent = name, parent
        self.attrs: dict[str, str] = {}
        self.nodes: dict[str, dict[str, str]] = {}
        self.children: list[DotCluster] = []


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match and match.end() > pos, f"bad dot at {text[pos : pos + 40]!r}"
        out.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return out


def _unquote(token: str) -> str:
    if token.startswith('"'):
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), token[1:-1])
    return token


def parse_dot(text: str) -> tuple[DotCluster, list[tuple[str, str, dict[str, str]]]]:
    """(root with nested clusters and nodes, edges); AssertionError on anything outside the grammar."""
    toks = _tokens(text)
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        assert pos < len(toks), "dot ends early"
        tok = toks[pos]
        pos += 1
        assert expected is None or tok == expected, f"expected {expected!r}, got {tok!r}"
        return tok

    def ident() -> str:
        tok = take()
        assert tok.startswith('"') or re.fullmatch(r"[A-Za-z_]\w*|-?[\d.]+", tok), f"not an ID: {tok!r}"
        return _unquote(tok)

    def attr_list() -> dict[str, str]:
        take("[")
        attrs: dict[str, str] = {}
        while toks[pos] != "]":
            key = ident()
            take("=")
            attrs[key] = ident()
            if toks[pos] == ",":
                take(",")
        take("]")
        return attrs

    edges: list[tuple[str, str, dict[str, str]]] = []

    def stmts(cluster: DotCluster) -> None:
        while toks[pos] != "}":
            head = ident()
            if head in ("graph", "node", "edge"):
                attrs = attr_list()
                if head == "graph":
                    cluster.attrs.update(attrs)
            elif head == "subgraph":
                child = DotCluster(ident(), cluster)
                cluster.children.append(child)
                take("{")
                stmts(child)
                take("}")
                continue
            elif toks[pos] == "->":
                take("->")
                edges.append((head, ident(), attr_list() if toks[pos] == "[" else {}))
            else:
                cluster.nodes[head] = attr_list()
            take(";")

    take("digraph")
    root = DotCluster(ident(), None)
    take("{")
    stmts(root)
    take("}")
    assert pos == len(toks), "text after the graph"
    return root, edges


def _all_nodes(cluster: DotCluster) -> dict[str, tuple[DotCluster, dict[str, str]]]:
    found = {name: (cluster, attrs) for name, attrs in cluster.nodes.items()}
    for child in cluster.children:
        found.update(_all_nodes(child))
    return found


def _cluster_path(cluster: DotCluster) -> list[str]:
    labels = []
    node: DotCluster | None = cluster
    while node is not None and node.parent is not None:
        labels.append(node.attrs["label"])
        node = node.parent
    return labels[::-1]


def _check_dot(text: str) -> tuple[DotCluster, list[tuple[str, str, dict[str, str]]]]:
    root, edges = parse_dot(text)
    nodes = _all_nodes(root)
    for src, dst, _ in edges:
        assert src in nodes and dst in nodes, (src, dst)
    if shutil.which("dot"):  # where Graphviz is installed, it must accept the text too
        subprocess.run(["dot", "-Tsvg"], input=text, text=True, capture_output=True, check=True)
    return root, edges


# -- a structural check of the Mermaid this module writes --------------------------------------------------

_M_NODE = re.compile(r'^(\w+)(\["|\{\{"|\(\[")([^"]*)("\]|"\}\}|"\]\))$')
_M_EDGE = re.compile(r'^(\w+) (-->|-\.->)\|"([^"]*)"\| (\w+)$')
_M_SUB = re.compile(r'^subgraph (\w+)\["([^"]*)"\]$')


def parse_mermaid(text: str) -> tuple[dict[str, tuple[str, list[str]]], list[tuple[str, str, str, bool]]]:
    """({node: (label, enclosing subgraph ids)}, edges); AssertionError on any line outside the subset."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    stack: list[str] = []
    nodes: dict[str, tuple[str, list[str]]] = {}
    edges: list[tuple[str, str, str, bool]] = []
    classes: set[str] = set()
    for raw in lines[1:]:
        line = raw.strip()
        if (m := _M_SUB.match(line)) is not None:
            stack.append(m.group(1))
        elif line == "end":
            assert stack, "an end without a subgraph"
            stack.pop()
        elif line == "direction TB":
            assert stack
        elif (m := _M_NODE.match(line)) is not None:
            assert m.group(1) not in nodes
            nodes[m.group(1)] = (m.group(3), list(stack))
        elif (m := _M_EDGE.match(line)) is not None:
            edges.append((m.group(1), m.group(4), m.group(3), m.group(2) == "-.->"))
        elif line.startswith("class "):
            classes.add(line.split()[2])
        elif line.startswith("classDef "):
            classes.discard(line.split()[1])
        else:
            raise AssertionError(f"not a line of the flowchart subset: {line!r}")
    assert not stack, "an unclosed subgraph"
    assert not classes, "a class used but never defined"
    for src, dst, _, _ in edges:
        assert src in nodes and dst in nodes, (src, dst)
    return nodes, edges


def _call_paths(blk: Any) -> list[str]:
    lowered, _ = analyse(blk)
    assert lowered is not None
    return [op.path for op in lowered.ops() if isinstance(op, CallOp)]


# -- graphs ---------------------------------------------------------------------------------------------


def test_dot_of_the_guided_loop_nests_clusters_and_labels_edges() -> None:
    root, edges = _check_dot(render.to_dot(guided_loop))
    nodes = _all_nodes(root)
    by_path = {attrs["tooltip"]: (name, cluster, attrs) for name, (cluster, attrs) in nodes.items()}
    # every block call is a node, inside the loop's cluster inside the Sequential's
    for path in _call_paths(guided_loop):
        assert path in by_path
    _, cond_cluster, cond = by_path["guided_loop/denoise/step/cond"]
    assert cond["label"] == "cond: predict"
    assert _cluster_path(cond_cluster) == ["sequential guided_loop", "loop denoise", "graph step"]
    head_name, head_cluster, head = by_path["guided_loop/denoise"]
    assert _cluster_path(head_cluster) == ["sequential guided_loop", "loop denoise"]
    assert head["label"] == "for i, t in enumerate(timesteps)\ncarries value"
    labelled = {(nodes[s][1]["tooltip"], nodes[d][1]["tooltip"], a["label"]) for s, d, a in edges}
    assert ("guided_loop/denoise/step/scale", "guided_loop/denoise/step/cond", "scaled: float") in labelled
    assert ("cond_weight", "guided_loop/denoise/step/cond", "cond_weight → weight: float") in labelled
    assert ("guided_loop/make_timesteps", "guided_loop/denoise", "timesteps: Sequence[float]") in labelled
    assert ("guided_loop/denoise", "guided_loop/denoise/step/scale", "t: float") in labelled
    back = [(s, d, a) for s, d, a in edges if a.get("style") == "dashed"]
    assert [(nodes[s][1]["tooltip"], d, a["label"]) for s, d, a in back] == [
        ("guided_loop/denoise/step/update", head_name, "value (next iteration)")
    ]


def test_every_ir_edge_is_drawn_once() -> None:
    picture = render.graph_picture(guided_loop)
    lowered, _ = analyse(guided_loop)
    assert lowered is not None
    path_of = {n.id: n.path for n in picture.nodes}
    drawn = {(path_of[e.src], path_of[e.dst]) for e in picture.edges if not e.back}
    for op in lowered.ops():
        if not isinstance(op, CallOp):
            continue
        for slot in op.inputs:
            value = slot.value
            src = value.name if value.kind == "input" else None
            if value.kind == "op":
                assert value.producer is not None
                src = value.producer.path
            if value.kind in ("carry", "index", "item"):  # produced by the loop head
                src = op.path.rsplit("/", 2)[0]
            assert (src, op.path) in drawn, (src, op.path, value)
    assert len(picture.edges) == len(set(picture.edges))


def test_mermaid_of_a_loop() -> None:
    nodes, edges = parse_mermaid(render.to_mermaid(counter_two))
    labels = {label: stack for label, stack in nodes.values()}
    assert labels["block1: add_one"] == ["c0"] and labels["block2: add_one"] == ["c0"]
    assert labels["for i in range(num_steps)<br/>carries x"] == ["c0"]
    assert labels["num_steps: int"] == [] and labels["x: int"] == []
    named = {(nodes[s][0], nodes[d][0], label, back) for s, d, label, back in edges}
    assert ("block2: add_one", "for i in range(num_steps)<br/>carries x", "x (next iteration)", True) in named
    assert ("block1: add_one", "block2: add_one", "x: int", False) in named


def test_labels_escape_quotes_and_markup() -> None:
    @df.block(outputs="y", name='say "hi" <b>|#;')
    def odd(x: int) -> int:
        return x

    seq = df.Sequential(odd, name="s")
    nodes, _ = parse_mermaid(render.to_mermaid(seq))  # no raw quote or pipe breaks a line
    assert [label for label, _ in nodes.values() if "say" in label] == [
        "say #quot;hi#quot; #lt;b#gt;#124;#35;#59;"
    ]
    root, _ = _check_dot(render.to_dot(seq))
    assert [a["label"] for _, a in _all_nodes(root).values() if "say" in a["label"]] == ['say "hi" <b>|#;']
    assert 'say "hi" <b>|#;' in "".join(ET.fromstring(render.graph_svg(seq)).itertext())


@settings(max_examples=40, deadline=None)
@given(counter_loops(max_depth=3, max_blocks=3))
def test_random_graphs_draw_every_block_in_its_loops(case: Any) -> None:
    blk = case.block
    dot = render.to_dot(blk)
    root, edges = _check_dot(dot)
    nodes = _all_nodes(root)
    tooltips = [attrs["tooltip"] for _, attrs in nodes.values()]
    lowered, _ = analyse(blk)
    assert lowered is not None
    for op in lowered.ops():
        assert tooltips.count(op.path) == 1, op.path
        if isinstance(op, CallOp | LoopOp):
            cluster = next(c for c, a in nodes.values() if a["tooltip"] == op.path)
            # the enclosing loops of the op are clusters around it, innermost last
            outer, loops = op.region.owner, []
            while outer is not None:
                loops.append(f"loop {outer.loop.name}")
                outer = outer.region.owner
            drawn = [label for label in _cluster_path(cluster) if label.startswith("loop ")]
            if isinstance(op, LoopOp):
                drawn = drawn[:-1]  # its own cluster holds its head
            assert drawn == loops[::-1]
    mermaid_nodes, mermaid_edges = parse_mermaid(render.to_mermaid(blk))
    assert len(mermaid_nodes) == len(nodes) and len(mermaid_edges) == len(edges)
    assert render.to_dot(blk) == dot  # deterministic


def test_output_is_deterministic_across_equal_definitions() -> None:
    from dfgraph_blocks import examples

    def build() -> df.Sequential:
        return df.Sequential(
            examples.make_timesteps,
            df.Loop(examples.guided_step, over="timesteps", item="t", name="denoise"),
            name="guided_loop",
        )

    assert render.to_dot(build()) == render.to_dot(build()) == render.to_dot(guided_loop)
    assert render.to_mermaid(build()) == render.to_mermaid(guided_loop)
    assert render.schedule_trace(build()) == render.schedule_trace(guided_loop)
    assert render.graph_svg(build()) == render.graph_svg(guided_loop)


def test_a_program_draws_its_block_and_a_leaf_block_draws_alone() -> None:
    prog = df.compile(counter_two)
    assert render.to_dot(prog) == render.to_dot(counter_two)
    root, edges = _check_dot(render.to_dot(examples_add_one()))
    assert root.children == [] and len(edges) == 2  # input -> block -> output


def examples_add_one() -> Any:
    from dfgraph_blocks.examples import add_one

    return add_one


def test_a_malformed_definition_raises_its_wiring_error() -> None:
    with pytest.raises(df.WiringError):
        render.to_dot(object())


def test_graph_svg_is_standalone_xml_with_every_block() -> None:
    svg = render.graph_svg(guided_loop)
    tree = ET.fromstring(svg)
    assert tree.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<script" not in svg and "href" not in svg  # loads nothing, runs nothing
    texts = " ".join("".join(t.itertext()) for t in tree.iter("{http://www.w3.org/2000/svg}text"))
    for label in ("scale", "cond: predict", "uncond: predict", "guide", "update", "make_timesteps"):
        assert label in texts
    assert "for i, t in enumerate(timesteps)" in texts


# -- notebooks --------------------------------------------------------------------------------------------


def test_notebook_without_graphviz_gets_mermaid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    bundle = df.compile(counter_two)._repr_mimebundle_()
    assert "image/svg+xml" not in bundle
    assert bundle["text/markdown"] == f"```mermaid\n{render.to_mermaid(counter_two)}```\n"
    assert bundle["text/plain"].startswith("<Program counter_two(")


def test_notebook_with_graphviz_gets_its_svg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "dot"  # stands in for Graphviz: echoes what it was given inside an SVG
    fake.write_text('#!/bin/sh\n[ "$1" = "-Tsvg" ] || exit 2\necho "<svg>"; cat; echo "</svg>"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    bundle = df.compile(counter_two)._repr_mimebundle_()
    assert bundle["image/svg+xml"] == f"<svg>\n{render.to_dot(counter_two)}</svg>\n"
    assert "text/markdown" not in bundle


# -- schedules --------------------------------------------------------------------------------------------


def test_schedule_mermaid_shows_streams_waits_fork_and_join() -> None:
    text = render.schedule_mermaid(guided_loop)
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:3] == ["sequenceDiagram", "participant S0 as stream 0 (main)", "participant S1 as stream 1"]
    body = lines[lines.index("loop every iteration of guided_loop/denoise") + 1 : lines.index("end")]
    sched = df.compile(guided_loop).schedule.bodies["guided_loop/denoise"]
    notes = [line for line in body if line.startswith("Note over")]
    assert notes == [
        f"Note over S{s}: {n.removeprefix('guided_loop/denoise/')}"
        for n, s in zip(sched.nodes, sched.assignment, strict=True)
    ]
    assert body[0] == "S0->>S1: fork" and body[-1] == "S1->>S0: join after step/uncond"
    waits = [line for line in body if "-->>" in line]
    assert len(waits) == len(sched.waits) == 2
    assert "S0-->>S1: wait for step/scale" in waits and "S1-->>S0: wait for step/uncond" in waits
    # every wait arrow comes right before the note of the op that waits
    for line in waits:
        following = body[body.index(line) + 1]
        assert following.startswith(f"Note over {line.split('-->>')[1].split(':')[0]}")


def test_schedule_pictures_without_loops() -> None:
    from dfgraph_blocks.examples import add_one

    seq = df.Sequential(add_one, add_one)
    assert "Note over S0: no loops: nothing to schedule" in render.schedule_mermaid(seq)
    trace = json.loads(render.schedule_trace(seq))
    assert trace["traceEvents"] == []
    assert "no loops" in render.schedule_svg(seq)


def _check_trace(text: str, schedule: Schedule, iterations: int) -> dict[str, Any]:
    """The Chrome trace structure, and that the simulated run obeys every edge, stream and iteration."""
    trace = json.loads(text)
    assert set(trace) >= {"traceEvents", "displayTimeUnit"}
    events = trace["traceEvents"]
    for e in events:
        assert e["ph"] in {"M", "X", "s", "f", "i"}
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], int | float)
    slices = [e for e in events if e["ph"] == "X"]
    pids = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert list(pids.values()) == [f"loop {loop}" for loop in schedule.bodies]
    for pid, body in enumerate(schedule.bodies.values(), start=1):
        mine = [e for e in slices if e["pid"] == pid]
        assert len(mine) == len(body.nodes) * iterations
        at = {(e["args"]["path"], e["args"]["iteration"]): e for e in mine}
        for e in mine:
            assert e["dur"] > 0 and e["tid"] == body.stream_of(e["args"]["path"])
        for i in range(iterations):
            for u, v in body.edges:  # every dependency: v starts after u ends
                assert at[v, i]["ts"] >= at[u, i]["ts"] + at[u, i]["dur"]
            if i and body.nodes:  # iteration i starts after iteration i - 1 ends, on every stream
                assert min(at[n, i]["ts"] for n in body.nodes) >= max(
                    at[n, i - 1]["ts"] + at[n, i - 1]["dur"] for n in body.nodes
                )
        for s in range(body.n_streams):  # a stream runs one op at a time
            lane = sorted((e["ts"], e["ts"] + e["dur"]) for e in mine if e["tid"] == s)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(lane))
        names = {
            e["tid"]: e["args"]["name"] for e in events if e["pid"] == pid and e["name"] == "thread_name"
        }
        assert names == {s: f"stream {s}{' (main)' if s == 0 else ''}" for s in range(body.n_streams)}
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    finishes = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts.keys() == finishes.keys()
    for k, s in starts.items():  # a wait's flow goes from the producer's slice to the consumer's
        f = finishes[k]
        assert f["bp"] == "e" and f["ts"] >= s["ts"] and f["pid"] == s["pid"]
        assert any(e["tid"] == s["tid"] and e["ts"] <= s["ts"] < e["ts"] + e["dur"] for e in slices)
        assert any(e["tid"] == f["tid"] and e["ts"] == f["ts"] for e in slices)
    return trace


def test_trace_of_the_guided_loop() -> None:
    prog = df.compile(guided_loop)
    trace = _check_trace(render.schedule_trace(prog, iterations=3), prog.schedule, 3)
    flows = [e for e in trace["traceEvents"] if e["ph"] == "s"]
    assert len(flows) == 2 * 3  # two waits per iteration
    forks = [e for e in trace["traceEvents"] if e["ph"] == "i" and e["name"] == "fork"]
    assert [e["args"]["iteration"] for e in forks] == [0, 1, 2]
    # cond and uncond overlap in time on their two streams
    cond = next(e for e in trace["traceEvents"] if e.get("name") == "step/cond")
    uncond = next(e for e in trace["traceEvents"] if e.get("name") == "step/uncond")
    assert cond["tid"] != uncond["tid"] and cond["ts"] == uncond["ts"]


def test_trace_durations_per_block() -> None:
    prog = df.compile(guided_loop)
    slow = {"guided_loop/denoise/step/uncond": 5000.0}
    trace = json.loads(render.schedule_trace(prog, iterations=1, durations=slow))
    at = {e["name"]: e for e in trace["traceEvents"] if e["ph"] == "X"}
    assert at["step/uncond"]["dur"] == 5000.0
    assert at["step/guide"]["ts"] == at["step/uncond"]["ts"] + 5000.0  # guide waits for the slow branch
    with pytest.raises(ValueError, match="iterations"):
        render.schedule_trace(prog, iterations=0)


@settings(max_examples=60, deadline=None)
@given(dags(max_nodes=10), st.integers(1, 4), st.integers(1, 3))
def test_simulated_trace_obeys_every_random_schedule(
    dag: tuple[list[str], list[tuple[str, str]]], max_streams: int, iterations: int
) -> None:
    nodes, edges = dag
    schedule = Schedule({"loop": assign(nodes, edges, max_streams=max_streams)})
    text = render.schedule_trace(schedule, iterations=iterations)
    _check_trace(text, schedule, iterations)
    assert render.schedule_trace(schedule, iterations=iterations) == text
    svg_text = render.schedule_svg(schedule, iterations=iterations)
    assert "<script" not in svg_text and "href" not in svg_text
    svg = ET.fromstring(svg_text)
    rects = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.get("stroke") == "#5f6368"]
    assert len(rects) == len(nodes) * iterations
    mermaid = render.schedule_mermaid(schedule)
    assert mermaid.count("Note over") == len(nodes) and mermaid.count("-->>") == len(schedule.waits)


def test_readme_pictures_example_runs() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Pictures of graphs and schedules", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict[str, Any] = {}
    exec(example, namespace)  # asserts inside
    assert namespace["trace"] == render.schedule_trace(guided_loop)

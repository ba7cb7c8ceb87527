"""Every block set the installed diffusers ships converts and checks, and docs/modular_findings.md records
what the check finds in each (the table between `<!-- shipped-sets -->` markers)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("diffusers")

import diffusers
import diffusers.modular_pipelines as mp

import dfgraph as df
from dfgraph_blocks.diffusers_compat import LoopSpec, from_modular, from_modular_workflows
from dfgraph_blocks.modular_known import KNOWN_FINDINGS

ROOT = Path(__file__).resolve().parents[1]
BASES = {
    "AutoPipelineBlocks",
    "ConditionalPipelineBlocks",
    "LoopSequentialPipelineBlocks",
    "ModularPipelineBlocks",
    "SequentialPipelineBlocks",
}
# Two loops iterate over a local variable, which from_modular cannot read (it asks for loops=).
LOOPS = {
    "EchoDenoiseLoopStep": LoopSpec(over="sigmas", item="sigma", index="i"),  # enumerate(sigmas[:-1])
    "MiniMaxMusic3ChunkDenoiseStep": LoopSpec(
        over="chunk_starts", item="chunk_start", index="k"
    ),  # range(len)
}


def shipped_sets() -> list[str]:
    """The block sets diffusers.modular_pipelines exports: its classes named *Blocks, bar the base ones."""
    names = []
    for name in dir(mp):
        obj = getattr(mp, name) if name.endswith("Blocks") and name not in BASES else None
        if inspect.isclass(obj) and issubclass(obj, mp.ModularPipelineBlocks):
            names.append(name)
    return names


def counts(report: df.Report) -> tuple[int, int]:
    return len(report.errors), len(report.warnings)


def table() -> str:
    """The markdown table of every shipped set: its workflows, and what the one-graph check reports."""
    lines = [
        f"diffusers {diffusers.__version__}: {len(shipped_sets())} block sets. Workflows: how many of the "
        "set's `_workflow_map` check without an error (`workflow=`). The other columns: the one-graph form "
        "(`from_modular(blocks)`), with the known findings suppressed (the default) and without them "
        "(`known_findings=False`).",
        "",
        "| block set | workflows without errors | errors | warnings | suppressed | errors, unsuppressed "
        "| warnings, unsuppressed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in shipped_sets():
        blocks = getattr(mp, name)()
        report = df.check(from_modular(blocks, loops=LOOPS))
        raw = df.check(from_modular(blocks, loops=LOOPS, known_findings=False))
        workflows = (
            from_modular_workflows(blocks, loops=LOOPS) if getattr(blocks, "_workflow_map", None) else {}
        )
        clean = sum(df.check(graph).ok for graph in workflows.values())
        errors, warnings = counts(report)
        raw_errors, raw_warnings = counts(raw)
        row = [
            name,
            f"{clean} of {len(workflows)}",
            errors,
            warnings,
            len(report.ignored),
            raw_errors,
            raw_warnings,
        ]
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines) + "\n"


def documented_table() -> str:
    text = (ROOT / "docs" / "modular_findings.md").read_text()
    return text.split("<!-- shipped-sets -->\n", 1)[1].split("<!-- /shipped-sets -->", 1)[0]


def test_every_shipped_set_converts_and_checks_without_an_internal_error() -> None:
    names = shipped_sets()
    assert len(names) >= 30 and "StableDiffusionXLAutoBlocks" in names and "FluxAutoBlocks" in names
    for name in names:
        blocks = getattr(mp, name)()
        graphs = {"": from_modular(blocks, loops=LOOPS)}
        if getattr(blocks, "_workflow_map", None):
            graphs.update(from_modular_workflows(blocks, loops=LOOPS))
        for workflow, graph in graphs.items():
            report = df.check(graph)
            assert "DF000" not in report.codes(), (name, workflow, str(report))
            assert "DF000" not in [d.code for d in report.ignored]
            if workflow:  # each workflow of each set checks without an error (the known ones suppressed)
                assert report.ok, (name, workflow, str(report))


def test_the_findings_of_every_shipped_set_are_recorded_in_the_docs() -> None:
    assert documented_table() == table(), "regenerate the table: python tests/test_modular_sets.py"


def test_known_findings_name_classes_diffusers_ships() -> None:
    """Every entry of the known-findings table names a class of the installed diffusers and a port of it."""
    classes: dict[str, Any] = {}
    for name in shipped_sets():
        stack = [getattr(mp, name)()]
        while stack:
            block = stack.pop()
            classes[type(block).__name__] = block
            stack.extend((getattr(block, "sub_blocks", None) or {}).values())
    for key, codes in KNOWN_FINDINGS.items():
        cls, _, port = key.partition(".")
        assert cls in classes, key
        block = classes[cls]
        names = {p.name for p in block.inputs} | {o.name for o in block.intermediate_outputs}
        names |= set(inspect.signature(type(block).__call__).parameters)  # the loop-step arguments
        assert port in names, key
        assert codes and all(
            why.split(":")[0] in ("real", "loose", "FP of the one-graph form") for why in codes.values()
        )


if __name__ == "__main__":
    print(table(), end="")

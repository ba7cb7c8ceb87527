"""The command line: `dfgraph check MODULE:ATTR...`, `dfgraph describe MODULE:ATTR`, `dfgraph schedule`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from dfgraph import types
from dfgraph.check import check
from dfgraph.codegen import ports_text
from dfgraph.compose import Composite, Graph, Loop, Sequential, is_block
from dfgraph.errors import GraphError
from dfgraph.program import Program, compile_block


class TargetError(Exception):
    """A MODULE:ATTR that cannot be loaded as a block."""


def load(target: str) -> Any:
    """Import `MODULE:ATTR` (ATTR may be dotted) and return the block it names.

    A Program gives its block; a function that is not a block is called with no arguments (a factory)."""
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise TargetError(f"{target!r}: expected MODULE:ATTR, e.g. blocks.examples:counter_two")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise TargetError(f"{target!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"{target!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not is_block(obj) and not isinstance(obj, Program) and callable(obj):
        # a factory (graphs built around components, e.g. blocks.diffusion.demo:tiny_text2img)
        try:
            obj = obj()
        except Exception as exc:
            raise TargetError(f"{target!r}: calling it failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, Program):
        return obj.block
    if not is_block(obj):
        raise TargetError(f"{target!r} is a {type(obj).__name__}, not a block")
    return obj


def _cmd_check(targets: Sequence[str]) -> int:
    failed = False
    for target in targets:
        blk = _load_or_report(target)
        if blk is None:
            failed = True
            continue
        report = check(blk)
        for diagnostic in report.diagnostics:
            print(diagnostic)
        print(f"{target}: {report.summary()}")
        failed = failed or not report.ok
    return 1 if failed else 0


def describe(blk: Any) -> str:
    """The ports and the nesting structure of a block, as text."""
    lines = [f"{getattr(blk, 'name', blk)}: {_kind(blk)}"]
    lines.append(f"  inputs:  {ports_text(blk.inputs) or '(none)'}")
    lines.append(f"  outputs: {ports_text(blk.outputs) or '(none)'}")
    lines.append("  structure:")
    _tree(blk, str(getattr(blk, "name", "block")), "    ", lines)
    return "\n".join(lines)


def _kind(blk: Any) -> str:
    if isinstance(blk, Loop):
        how = f"times={blk.times!r}" if blk.times is not None else f"over={blk.over!r}, item={blk.item!r}"
        return f"Loop({how}, index={blk.index!r})"
    if isinstance(blk, Sequential):
        return f"Sequential({len(blk.children)} blocks)"
    if isinstance(blk, Graph):
        return f"Graph({len(blk.nodes)} nodes, {len(blk.edges)} edges)"
    return "block"


def _tree(blk: Any, label: str, indent: str, lines: list[str]) -> None:
    if isinstance(blk, Composite):
        lines.append(f"{indent}{label}  {_kind(blk)}")
        children: list[tuple[str, Any]]
        if isinstance(blk, Sequential):
            children = list(blk.children)
        elif isinstance(blk, Loop):
            children = [(str(getattr(blk.body, "name", "body")), blk.body)]
        else:
            assert isinstance(blk, Graph)
            children = list(blk.nodes.items())
        for name, child in children:
            _tree(child, name, indent + "  ", lines)
        if isinstance(blk, Graph):
            lines.extend(f"{indent}  edge {src} -> {dst}" for src, dst in blk.edges)
        return
    ins = ", ".join(f"{p.name}: {types.describe(p.type)}" for p in blk.inputs)
    outs = ", ".join(f"{p.name}: {types.describe(p.type)}" for p in blk.outputs)
    lines.append(f"{indent}{label}  ({ins}) -> ({outs})")


def _load_or_report(target: str) -> Any | None:
    """The block a target names, or None after printing why it cannot be loaded."""
    try:
        return load(target)
    except TargetError as exc:
        print(f"{target}: error: {exc}", file=sys.stderr)
        return None


def _cmd_describe(target: str, source: bool) -> int:
    blk = _load_or_report(target)
    if blk is None:
        return 2
    print(describe(blk))
    if source:
        try:
            print("\ngenerated code:\n" + compile_block(blk).source)
        except GraphError as exc:
            print(f"\n(not compiled: {exc})")
            return 1
    return 0


def _cmd_schedule(target: str, streams: str) -> int:
    blk = _load_or_report(target)
    if blk is None:
        return 2
    try:
        program = compile_block(blk, streams=int(streams) if streams.isdigit() else streams)
    except ValueError as exc:
        print(f"{target}: error: {exc}", file=sys.stderr)
        return 2
    except GraphError as exc:
        print(f"{target}: not compiled: {exc}")
        return 1
    print(program.schedule)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dfgraph` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="dfgraph", description="Check and describe dfgraph graphs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="check graphs; exit 1 when any has an error")
    p_check.add_argument("targets", nargs="+", metavar="MODULE:ATTR")
    p_desc = sub.add_parser("describe", help="print a graph's ports and structure")
    p_desc.add_argument("target", metavar="MODULE:ATTR")
    p_desc.add_argument("--source", action="store_true", help="also print the generated Python")
    p_sched = sub.add_parser("schedule", help="print the stream schedule of every loop body")
    p_sched.add_argument("target", metavar="MODULE:ATTR")
    p_sched.add_argument("--streams", default="auto", help="'auto' (at most 4) or a number of streams")
    args = parser.parse_args(argv)
    sys.path.insert(0, "")  # like `python -m`: modules of the current directory are importable
    if args.command == "check":
        return _cmd_check(args.targets)
    if args.command == "schedule":
        return _cmd_schedule(args.target, args.streams)
    return _cmd_describe(args.target, args.source)


if __name__ == "__main__":
    raise SystemExit(main())

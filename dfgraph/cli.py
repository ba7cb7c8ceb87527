"""The command line: `dfgraph check MODULE:ATTR...`, `dfgraph describe MODULE:ATTR`, `dfgraph schedule`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dfgraph import lower as lower_ir
from dfgraph import types
from dfgraph.check import Rules, analyse, apply_rules
from dfgraph.codegen import ports_text
from dfgraph.compose import Composite, Graph, Loop, Sequential, is_block
from dfgraph.diagnostics import REGISTRY, did_you_mean, select_codes
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


class UsageError(Exception):
    """A bad option or configuration: exit status 2."""


CONFIG_KEYS = ("ignore", "select", "errors", "warnings-as-errors")


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.dfgraph] table, walking up from `start`."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise UsageError(f"{candidate}: cannot read it: {exc}") from exc
            if "dfgraph" in data.get("tool", {}):
                return candidate
    return None


def read_config(path: Path) -> dict[str, Any]:
    """The [tool.dfgraph] table of a pyproject.toml, with its keys and code lists validated."""
    table = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["dfgraph"]
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.dfgraph] must be a table")
    for key, value in table.items():
        if key not in CONFIG_KEYS:
            raise UsageError(
                f"{path}: [tool.dfgraph] has no key {key!r}{did_you_mean(key, CONFIG_KEYS)} "
                f"(keys: {', '.join(CONFIG_KEYS)})"
            )
        if key == "warnings-as-errors":
            if not isinstance(value, bool):
                raise UsageError(f"{path}: [tool.dfgraph] warnings-as-errors must be true or false")
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f'{path}: [tool.dfgraph] {key} must be a list of codes, e.g. ["DF202"]')
    return dict(table)


def _codes(raw: list[str] | None, what: str, origin: str) -> frozenset[str] | None:
    """Codes from repeated, comma-separated options (or a config list); UsageError on a bad one."""
    if raw is None:
        return None
    items = [c for chunk in raw for c in chunk.split(",") if c.strip()]
    try:
        return select_codes(items, what)
    except ValueError as exc:
        raise UsageError(f"{origin}: {exc}") from exc


def rules_for(args: argparse.Namespace, cwd: Path) -> Rules:
    """The check rules: [tool.dfgraph] in the nearest pyproject.toml, each key overridden by its flag."""
    config_path = find_config(cwd)
    config = read_config(config_path) if config_path is not None else {}
    where = f"{config_path} [tool.dfgraph]" if config_path is not None else ""
    ignore: dict[str, str] = {}
    if args.ignore is not None:
        ignore = dict.fromkeys(_codes(args.ignore, "ignore", "--ignore") or (), "--ignore")
    elif "ignore" in config:
        ignore = dict.fromkeys(_codes(config["ignore"], "ignore", where) or (), f"{where} ignore")
    if args.select is not None:
        select, select_origin = _codes(args.select, "select", "--select"), "--select"
    else:
        select, select_origin = _codes(config.get("select"), "select", where), f"{where} select"
    errors = _codes(config.get("errors"), "errors", where) or frozenset()
    as_errors = args.warnings_as_errors
    if as_errors is None:
        as_errors = bool(config.get("warnings-as-errors", False))
    if as_errors:
        errors = frozenset(REGISTRY)
    return Rules(ignore, errors, select, select_origin)


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        rules = rules_for(args, Path(os.getcwd()))
    except UsageError as exc:
        print(f"dfgraph check: error: {exc}", file=sys.stderr)
        return 2
    failed = False
    for target in args.targets:
        blk = _load_or_report(target)
        if blk is None:
            failed = True
            continue
        report = apply_rules(*analyse(blk), rules)
        for diagnostic in report.diagnostics:
            print(diagnostic)
        if args.show_ignored:
            for diagnostic in report.ignored:
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


def _cmd_describe(target: str, source: bool, ir: bool = False) -> int:
    blk = _load_or_report(target)
    if blk is None:
        return 2
    print(describe(blk))
    if ir:
        print(f"\nIR:\n{lower_ir(blk)}")
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
    p_check = sub.add_parser(
        "check",
        help="check graphs; exit 1 when any has an error",
        description="Defaults come from [tool.dfgraph] in the nearest pyproject.toml (keys: "
        + ", ".join(CONFIG_KEYS)
        + "); a flag given here replaces its key. Exit status: 0 clean, 1 errors, 2 usage errors.",
    )
    p_check.add_argument("targets", nargs="+", metavar="MODULE:ATTR")
    codes_help = "comma-separated codes or prefixes (DF001,DF2); may be repeated"
    p_check.add_argument(
        "--select", action="append", metavar="CODES", help="report only these; " + codes_help
    )
    p_check.add_argument("--ignore", action="append", metavar="CODES", help="suppress these; " + codes_help)
    p_check.add_argument(
        "-W",
        "--warnings-as-errors",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report warnings as errors (exit 1 on any)",
    )
    p_check.add_argument(
        "--show-ignored",
        action="store_true",
        help="also list the suppressed findings and what suppressed them",
    )
    p_desc = sub.add_parser("describe", help="print a graph's ports and structure")
    p_desc.add_argument("target", metavar="MODULE:ATTR")
    p_desc.add_argument("--source", action="store_true", help="also print the generated Python")
    p_desc.add_argument("--ir", action="store_true", help="also print the IR (one op a line)")
    p_sched = sub.add_parser("schedule", help="print the stream schedule of every loop body")
    p_sched.add_argument("target", metavar="MODULE:ATTR")
    p_sched.add_argument("--streams", default="auto", help="'auto' (at most 4) or a number of streams")
    args = parser.parse_args(argv)
    sys.path.insert(0, "")  # like `python -m`: modules of the current directory are importable
    if args.command == "check":
        return _cmd_check(args)
    if args.command == "schedule":
        return _cmd_schedule(args.target, args.streams)
    return _cmd_describe(args.target, args.source, args.ir)


if __name__ == "__main__":
    raise SystemExit(main())

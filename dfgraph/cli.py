"""The command line: `dfgraph check TARGET...`, `dfgraph describe TARGET`, `dfgraph schedule TARGET`,
`dfgraph run TARGET --jobs F.jsonl --out DIR` (dfgraph.distributed).

Exit status in every subcommand: 0 clean, 1 findings (errors), 2 a usage error or a target that cannot be
loaded. Imports only dfgraph's public names."""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

import dfgraph as df
from dfgraph import findings, render
from dfgraph.findings import FORMATS, Finding


class TargetError(Exception):
    """A target that cannot be loaded as a block: exit status 2."""


class UsageError(Exception):
    """A bad option or configuration: exit status 2."""


def is_block(obj: object) -> bool:
    """True for a composite, or an object with name, inputs and outputs that can be called."""
    if isinstance(obj, df.Composite):
        return True
    try:
        return all(hasattr(obj, a) for a in ("name", "inputs", "outputs")) and callable(obj)
    except Exception:  # reading an attribute failed: it claims to be a block (the checker reports DF006)
        return True


def _import(target: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise TargetError(f"{target!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc


def load(target: str) -> Any:
    """Import `MODULE:ATTR` (ATTR may be dotted) and return the block it names.

    A Program gives its block; a function that is not a block is called with no arguments (a factory).
    Modular Diffusers blocks (a block set, its class, or a ModularPipeline) are converted with
    `dfgraph_blocks.diffusers_compat.from_modular`; `diffusers:StableDiffusionXLAutoBlocks` names a
    shipped set, and a suffix `@WORKFLOW` (`...AutoBlocks@inpainting`) converts one of its workflows."""
    spec, at, workflow = target.partition("@")
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr or (at and not workflow):
        raise TargetError(f"{target!r}: expected MODULE:ATTR, e.g. dfgraph_blocks.examples:counter_two")
    obj: Any = _import(target, module_name)
    for part in attr.split("."):
        if not hasattr(obj, part) and module_name == "diffusers" and obj is sys.modules["diffusers"]:
            obj = _import(target, "diffusers.modular_pipelines")  # where every block set is exported
        if not hasattr(obj, part):
            raise TargetError(f"{target!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if _is_modular(obj) or workflow:
        return _from_modular(target, obj, workflow or None)
    if not is_block(obj) and not isinstance(obj, df.Program) and callable(obj):
        # a factory (graphs built around components, e.g. dfgraph_blocks.diffusion.demo:tiny_text2img)
        try:
            obj = obj()
        except Exception as exc:
            raise TargetError(f"{target!r}: calling it failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, df.Program):
        return obj.block
    if not is_block(obj):
        raise TargetError(f"{target!r} is a {type(obj).__name__}, not a block")
    return obj


def _is_modular(obj: Any) -> bool:
    """Modular Diffusers blocks or pipeline (an instance or a class), found without importing diffusers."""
    cls = obj if isinstance(obj, type) else type(obj)
    return any(
        c.__module__.startswith("diffusers.modular_pipelines")
        and c.__name__ in ("ModularPipelineBlocks", "ModularPipeline")
        for c in cls.__mro__
    )


def _from_modular(target: str, obj: Any, workflow: str | None) -> Any:
    """The dfgraph block of Modular Diffusers blocks: the whole set (a Switch per conditional block), or one
    workflow of it."""
    if not _is_modular(obj):
        raise TargetError(
            f"{target!r}: a @WORKFLOW suffix needs Modular Diffusers blocks, not {type(obj).__name__}"
        )
    try:
        compat = importlib.import_module("dfgraph_blocks.diffusers_compat")
        blocks = obj() if isinstance(obj, type) else obj
        return compat.from_modular(blocks, workflow=workflow)
    except Exception as exc:
        raise TargetError(f"{target!r}: cannot convert it: {type(exc).__name__}: {exc}") from exc


def _file_of(module: object) -> str | None:
    file = getattr(module, "__file__", None)
    return os.path.realpath(file) if isinstance(file, str) else None


def _defined_in(obj: Any, module: ModuleType) -> bool:
    """True when `obj` was made in `module`: a block whose function or class is there, a composite built
    there, or one built by a function elsewhere (a factory) unless it is a global of the module it was
    built in (then it was imported from there)."""
    if not isinstance(obj, df.Composite):
        return bool(getattr(obj, "__module__", None) == module.__name__)
    where = findings.defined_at(obj)
    if where is None:
        return False
    built_in = os.path.realpath(where[0])
    if built_in == _file_of(module):
        return True
    for other in list(sys.modules.values()):
        if _file_of(other) == built_in:
            return not any(value is obj for value in vars(other).values())
    return True


def _descendants(blk: Any, seen: set[int]) -> None:
    """Add the ids of every block nested in `blk` (not `blk` itself) to `seen`."""
    stack = list(findings.children(blk).values())
    while stack:
        child = stack.pop()
        if id(child) not in seen:
            seen.add(id(child))
            stack.extend(findings.children(child).values())


def load_module(target: str) -> list[tuple[str, Any]]:
    """The blocks defined at module level in MODULE (a Program's block included), as (MODULE:NAME, block),
    leaving out imported ones and those nested in another one listed (checked as part of it)."""
    module = _import(target, target)
    defined: dict[int, tuple[str, Any]] = {}
    for name, value in vars(module).items():
        obj = value.block if isinstance(value, df.Program) else value
        if name.startswith("__") or isinstance(obj, type) or not is_block(obj):
            continue
        if _defined_in(obj, module) and id(obj) not in defined:
            defined[id(obj)] = (f"{target}:{name}", obj)
    nested: set[int] = set()
    for _, blk in defined.values():
        _descendants(blk, nested)
    roots = [entry for key, entry in defined.items() if key not in nested]
    if not roots:
        raise TargetError(f"{target!r}: the module defines no blocks or graphs at module level")
    return roots


# -- configuration: [tool.dfgraph] --------------------------------------------------------------------------

CONFIG_KEYS = ("targets", "format", "ignore", "select", "errors", "warnings-as-errors")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A '; did you mean ...?' suffix naming the closest candidates, or '' when none is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""


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
    """The [tool.dfgraph] table of a pyproject.toml, with its keys and values validated."""
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
        elif key == "format":
            if value not in FORMATS:
                raise UsageError(f"{path}: [tool.dfgraph] format must be one of {', '.join(FORMATS)}")
        elif key == "targets":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise UsageError(
                    f'{path}: [tool.dfgraph] targets must be a list of targets, e.g. ["mypkg.graphs"]'
                )
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f'{path}: [tool.dfgraph] {key} must be a list of codes, e.g. ["DF202"]')
    return dict(table)


def _codes(raw: list[str] | None, what: str, origin: str) -> frozenset[str] | None:
    """Codes from repeated, comma-separated options (or a config list); UsageError on a bad one."""
    if raw is None:
        return None
    items = [c for chunk in raw for c in chunk.split(",") if c.strip()]
    try:
        return df.select_codes(items, what)
    except ValueError as exc:
        raise UsageError(f"{origin}: {exc}") from exc


@attrs.frozen
class Settings:
    """What `dfgraph check` does: the rules (codes with what asked for them), the targets and the format."""

    ignore: frozenset[str] = frozenset()
    ignore_origin: str = ""
    select: frozenset[str] | None = None
    select_origin: str = ""
    errors: frozenset[str] = frozenset()
    targets: tuple[str, ...] = ()
    format: str = "text"
    config: Path | None = None

    def check(self, blk: Any) -> df.Report:
        """Check `blk` under these rules; a suppression by the rules says which option or key made it."""
        report = df.check(blk, ignore=self.ignore, errors=self.errors, select=self.select)
        return attrs.evolve(report, ignored=tuple(self._relabel(d) for d in report.ignored))

    def _relabel(self, d: df.Diagnostic) -> df.Diagnostic:
        # df.check labels the suppressions its own keywords made as 'ignore=DF001' and 'select= (...)'
        if d.suppressed_by == f"ignore={d.code}":
            return attrs.evolve(d, suppressed_by=f"{self.ignore_origin} {d.code}")
        if d.suppressed_by == "select= (not selected)":
            return attrs.evolve(d, suppressed_by=f"{self.select_origin} (not selected)")
        return d


def settings_for(args: argparse.Namespace, cwd: Path, *, need_targets: bool = True) -> Settings:
    """[tool.dfgraph] in the nearest pyproject.toml, each key replaced by its command-line option."""
    config_path = find_config(cwd)
    config = read_config(config_path) if config_path is not None else {}
    where = f"{config_path} [tool.dfgraph]" if config_path is not None else ""
    if args.ignore is not None:
        ignore, ignore_origin = _codes(args.ignore, "ignore", "--ignore") or frozenset(), "--ignore"
    else:
        ignore = _codes(config.get("ignore"), "ignore", where) or frozenset()
        ignore_origin = f"{where} ignore"
    if args.select is not None:
        select, select_origin = _codes(args.select, "select", "--select"), "--select"
    else:
        select, select_origin = _codes(config.get("select"), "select", where), f"{where} select"
    errors = _codes(config.get("errors"), "errors", where) or frozenset()
    as_errors = args.warnings_as_errors
    if as_errors is None:
        as_errors = bool(config.get("warnings-as-errors", False))
    if as_errors:
        errors = frozenset(df.REGISTRY)
    targets = tuple(args.targets) or tuple(config.get("targets", ()))
    if not targets and need_targets:
        raise UsageError("no targets: give MODULE or MODULE:ATTR, or set targets in [tool.dfgraph]")
    return Settings(
        ignore=ignore,
        ignore_origin=ignore_origin,
        select=select,
        select_origin=select_origin,
        errors=errors,
        targets=targets,
        format=args.format or str(config.get("format", "text")),
        config=config_path,
    )


# -- check --------------------------------------------------------------------------------------------------


def _blocks_of(target: str) -> list[tuple[str, Any]]:
    """(label, block) pairs a target names: one for MODULE:ATTR, every one defined there for MODULE."""
    return [(target, load(target))] if ":" in target else load_module(target)


def _cmd_check(args: argparse.Namespace, argv: list[str]) -> int:
    cwd = Path(os.getcwd())
    try:
        settings = settings_for(args, cwd)
    except UsageError as exc:
        print(f"dfgraph check: error: {exc}", file=sys.stderr)
        return 2
    if settings.config is not None and not args.targets:
        sys.path.insert(1, str(settings.config.parent))  # targets from the file are relative to it
    fmt, quiet = settings.format, args.quiet
    collected: list[Finding] = []
    unloadable = failed = False
    for target in settings.targets:
        try:
            blocks = _blocks_of(target)
        except TargetError as exc:
            print(f"{target}: error: {exc}", file=sys.stderr)
            unloadable = True
            continue
        for label, blk in blocks:
            report = settings.check(blk)
            shown = [*report.diagnostics, *(report.ignored if args.show_ignored else ())]
            items = [findings.finding(label, blk, d, cwd) for d in shown]
            collected.extend(items)
            failed = failed or not report.ok
            if fmt in ("text", "github"):
                render = findings.text if fmt == "text" else findings.github
                for item in items:
                    print(render(item))
                if not quiet:
                    print(f"{label}: {report.summary()}")
    status = 2 if unloadable else 1 if failed else 0
    if fmt == "json":
        print(findings.json_document(collected))
    elif fmt == "sarif":
        log = findings.sarif_document(
            collected, version=df.__version__, cwd=cwd, exit_code=status, arguments=["dfgraph", *argv]
        )
        print(json.dumps(log, indent=2))
    return status


# -- describe -----------------------------------------------------------------------------------------------


def describe(blk: Any) -> str:
    """The ports and the nesting structure of a block, as text."""
    lines = [f"{getattr(blk, 'name', blk)}: {_kind(blk)}"]
    lines.append(f"  inputs:  {df.ports_text(blk.inputs) or '(none)'}")
    lines.append(f"  outputs: {df.ports_text(blk.outputs) or '(none)'}")
    lines.append("  structure:")
    _tree(blk, str(getattr(blk, "name", "block")), "    ", lines)
    switches = df.switches_text(blk)
    if switches:
        lines.extend("  " + line for line in switches.splitlines())
    return "\n".join(lines)


def _kind(blk: Any) -> str:
    if isinstance(blk, df.Loop):
        how = f"times={blk.times!r}" if blk.times is not None else f"over={blk.over!r}, item={blk.item!r}"
        return f"Loop({how}, index={blk.index!r})"
    if isinstance(blk, df.Sequential):
        return f"Sequential({len(blk.children)} blocks)"
    if isinstance(blk, df.Graph):
        return f"Graph({len(blk.nodes)} nodes, {len(blk.edges)} edges)"
    if isinstance(blk, df.Switch):
        on = repr(blk.on) if blk.on is not None else f"selector {blk.selector_name!r}"
        return f"Switch({len(blk.cases)} cases, on={on})"
    if isinstance(blk, df.Bound):
        return f"Bound({', '.join(blk.values) or 'nothing'})"
    return "block"


def _tree(blk: Any, label: str, indent: str, lines: list[str]) -> None:
    if isinstance(blk, df.Composite):
        lines.append(f"{indent}{label}  {_kind(blk)}")
        children: list[tuple[str, Any]]
        if isinstance(blk, df.Sequential):
            children = list(blk.children)
        elif isinstance(blk, df.Loop):
            children = [(str(getattr(blk.body, "name", "body")), blk.body)]
        elif isinstance(blk, df.Switch):
            selector = [] if blk.selector is None else [(f"{blk.selector_name} (selector)", blk.selector)]
            children = [*selector, *((f"case {key!r}", case) for key, case in blk.cases.items())]
        elif isinstance(blk, df.Bound):
            children = [(str(getattr(blk.block, "name", "block")), blk.block)]
        elif isinstance(blk, df.Graph):
            children = list(blk.nodes.items())
        else:
            children = []
        for name, child in children:
            _tree(child, name, indent + "  ", lines)
        if isinstance(blk, df.Graph):
            lines.extend(f"{indent}  edge {src} -> {dst}" for src, dst in blk.edges)
        return
    ins = ", ".join(f"{p.name}: {df.describe_type(p.type)}" for p in blk.inputs)
    outs = ", ".join(f"{p.name}: {df.describe_type(p.type)}" for p in blk.outputs)
    lines.append(f"{indent}{label}  ({ins}) -> ({outs})")


def _load_or_report(target: str) -> Any | None:
    """The block a target names, or None after printing why it cannot be loaded."""
    try:
        return load(target)
    except TargetError as exc:
        print(f"{target}: error: {exc}", file=sys.stderr)
        return None


def _compile_rules(command: str) -> Settings | None:
    """The rules of [tool.dfgraph] for compiling (as `check` applies them), or None after printing why
    the configuration is bad."""
    no_options = argparse.Namespace(
        ignore=None, select=None, warnings_as_errors=None, targets=[], format=None
    )
    try:
        return settings_for(no_options, Path(os.getcwd()), need_targets=False)
    except UsageError as exc:
        print(f"dfgraph {command}: error: {exc}", file=sys.stderr)
        return None


def _picture(target: str, draw: Callable[[], str]) -> int:
    """Print a picture (dot, Mermaid, a trace); a graph too malformed to draw exits 1."""
    try:
        text = draw()
    except df.GraphError as exc:
        print(f"{target}: not drawn: {exc}")
        return 1
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _cmd_describe(target: str, source: bool, ir: bool = False, fmt: str = "text") -> int:
    rules = _compile_rules("describe")
    blk = _load_or_report(target) if rules is not None else None
    if rules is None or blk is None:
        return 2
    if fmt != "text":
        return _picture(target, lambda: render.to_dot(blk) if fmt == "dot" else render.to_mermaid(blk))
    print(describe(blk))
    if ir:
        print(f"\nIR:\n{df.lower(blk)}")
    if source:
        try:
            program = df.compile(blk, ignore=rules.ignore, errors=rules.errors, select=rules.select)
            print("\ngenerated code:\n" + program.source)
        except df.GraphError as exc:
            print(f"\n(not compiled: {exc})")
            return 1
    return 0


def _cmd_schedule(target: str, streams: str, fmt: str = "text") -> int:
    rules = _compile_rules("schedule")
    blk = _load_or_report(target) if rules is not None else None
    if rules is None or blk is None:
        return 2
    try:
        program = df.compile(
            blk,
            streams=int(streams) if streams.isdigit() else streams,
            ignore=rules.ignore,
            errors=rules.errors,
            select=rules.select,
        )
    except ValueError as exc:
        print(f"{target}: error: {exc}", file=sys.stderr)
        return 2
    except df.GraphError as exc:
        print(f"{target}: not compiled: {exc}")
        return 1
    if fmt == "mermaid":
        return _picture(target, lambda: render.schedule_mermaid(program))
    if fmt == "trace":
        return _picture(target, lambda: render.schedule_trace(program))
    print(program.schedule)
    return 0


def _read_jobs(path: Path) -> list[Any]:
    """The jobs of a JSON Lines file: one JSON object a line (blank lines skipped); UsageError if bad."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"--jobs {path}: {exc.strerror or exc}") from exc
    jobs = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                jobs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UsageError(f"--jobs {path}:{number}: not JSON: {exc.msg}") from exc
    return jobs


def _cmd_run(args: argparse.Namespace) -> int:
    """`dfgraph run`: one result file per job in --out, skipping jobs whose result exists; exit 1 when
    any job failed."""
    from dfgraph import distributed

    try:
        jobs = _read_jobs(args.jobs)
    except UsageError as exc:
        print(f"dfgraph run: error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    done = distributed.done_jobs(out)
    todo = [k for k in range(len(jobs)) if k not in done]
    outputs = [name for names in args.output or () for name in names.split(",") if name]
    output: str | list[str] | None = outputs[0] if len(outputs) == 1 else (outputs or None)
    failed: list[int] = []
    written = 0
    try:
        calls = distributed.iter_calls(
            args.target,
            [jobs[k] for k in todo],
            numbers=todo,
            workers=args.workers,
            gpus_per_worker=args.gpus_per_worker,
            output=output,
            progress=not args.quiet,
            retries=args.retries,
        )
        for k, result in calls:
            error = result if isinstance(result, Exception) else None
            if error is None:
                try:
                    distributed.save_result(
                        out, k, result, name=outputs[0] if len(outputs) == 1 else "output"
                    )
                    written += 1
                except Exception as exc:
                    error = exc
            if error is not None:
                failed.append(k)
                print(f"error: {error}", file=sys.stderr)
    except Exception as exc:  # each job's failure is yielded: what raises is loading the target, or workers
        print(f"{args.target}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    there = len(jobs) - len(todo)
    print(
        f"dfgraph run: {len(jobs)} jobs: {written} written to {out}, {there} already there, "
        f"{len(failed)} failed",
        file=sys.stderr,
    )
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of the `dfgraph` command."""
    top = argparse.ArgumentParser(
        prog="dfgraph", description="Check, describe, schedule and run dfgraph graphs."
    )
    top.add_argument("--version", action="version", version=f"dfgraph {df.__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser(
        "check",
        help="check graphs; exit 1 when any has an error",
        description="Defaults come from [tool.dfgraph] in the nearest pyproject.toml (keys: "
        + ", ".join(CONFIG_KEYS)
        + "); an argument given here replaces its key. Exit status: 0 clean, 1 errors, 2 usage errors "
        "or a target that cannot be loaded.",
    )
    p_check.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="MODULE:ATTR (one block, graph, program or factory) or MODULE (every block and graph "
        "defined at its top level); default: targets in [tool.dfgraph]",
    )
    p_check.add_argument(
        "--format", choices=FORMATS, default=None, help="output format (default: text, or format= in config)"
    )
    p_check.add_argument(
        "-q", "--quiet", action="store_true", help="print only the findings (no per-target summary)"
    )
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
    compiled = "compiled with the ignore, select and errors of [tool.dfgraph], as `check` applies them"
    p_desc = sub.add_parser(
        "describe", help="print a graph's ports and structure", description=f"--source: {compiled}."
    )
    p_desc.add_argument("target", metavar="MODULE:ATTR")
    p_desc.add_argument("--source", action="store_true", help="also print the generated Python")
    p_desc.add_argument("--ir", action="store_true", help="also print the IR (one op a line)")
    p_desc.add_argument(
        "--format",
        choices=("text", "dot", "mermaid"),
        default="text",
        help="text (ports and structure), or a picture of the graph in Graphviz dot or Mermaid",
    )
    p_sched = sub.add_parser(
        "schedule",
        help="print the stream schedule of every loop body",
        description=f"The graph is {compiled}.",
    )
    p_sched.add_argument("target", metavar="MODULE:ATTR")
    p_sched.add_argument("--streams", default="auto", help="'auto' (at most 4) or a number of streams")
    p_sched.add_argument(
        "--format",
        choices=("text", "mermaid", "trace"),
        default="text",
        help="text, a Mermaid sequence diagram, or a Chrome/Perfetto trace of a simulated run",
    )
    p_run = sub.add_parser(
        "run",
        help="run a program once per job (JSON Lines), on Ray workers; one result file per job",
        description="Each line of --jobs is a JSON object of inputs; job k's result is written to "
        "DIR/<k>.json (plain values), .png (a PIL image) or .safetensors (tensors; .pt without "
        "safetensors). Jobs whose result file exists are skipped (resume). Exit status: 0 every job "
        "written, 1 some job failed, 2 usage errors or a target that cannot be loaded.",
    )
    p_run.add_argument("target", metavar="MODULE:ATTR", help="a block, program or a function building one")
    p_run.add_argument(
        "--jobs", type=Path, required=True, metavar="JOBS.jsonl", help="one JSON object a line"
    )
    p_run.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder of result files")
    p_run.add_argument(
        "--workers", type=int, default=0, help="Ray workers (default 0: in this process; also without Ray)"
    )
    p_run.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs each worker holds (default 0)")
    p_run.add_argument(
        "--retries", type=int, default=1, help="retries of a job whose worker died (default 1)"
    )
    p_run.add_argument(
        "--output", action="append", metavar="NAMES", help="write only these outputs (comma-separated)"
    )
    p_run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dfgraph` command; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules of the current directory are importable
    if args.command == "check":
        return _cmd_check(args, arguments)
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "schedule":
        return _cmd_schedule(args.target, args.streams, args.format)
    return _cmd_describe(args.target, args.source, args.ir, args.format)


if __name__ == "__main__":
    raise SystemExit(main())

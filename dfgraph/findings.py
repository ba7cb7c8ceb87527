"""Findings for the command line: diagnostics with the file and line of the block they name, rendered as
text, JSON, GitHub workflow commands or SARIF 2.1.0.

Imports only dfgraph's public names, like the CLI that uses it."""

from __future__ import annotations

import inspect
import json
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from dfgraph import REGISTRY, Bound, Composite, Diagnostic, Graph, Loop, Sequential, Severity, Switch

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FORMATS = ("text", "json", "github", "sarif")


@attrs.frozen
class Finding:
    """One diagnostic of one target, with where the block or composite it names was defined."""

    target: str
    diagnostic: Diagnostic
    file: str | None = None  # relative to the current directory when inside it
    line: int | None = None

    @property
    def ignored(self) -> bool:
        """True for a suppressed finding (listed only with --show-ignored)."""
        return bool(self.diagnostic.suppressed_by)


def children(blk: Any) -> Mapping[str, Any]:
    """The blocks one path segment below `blk`, by segment name (a Loop's Sequential body is transparent)."""
    if isinstance(blk, Loop):
        body = blk.body
        if isinstance(body, Sequential):
            return dict(body.children)
        return {str(getattr(body, "name", "body")): body}
    if isinstance(blk, Sequential):
        return dict(blk.children)
    if isinstance(blk, Graph):
        return dict(blk.nodes)
    if isinstance(blk, Switch):  # the selector and each case by key
        selector = {} if blk.selector is None else {blk.selector_name: blk.selector}
        return {**selector, **blk.cases}
    if isinstance(blk, Bound):  # transparent in paths
        return children(blk.block)
    return {}


def defined_at(blk: Any) -> tuple[str, int] | None:
    """Where a block was defined: a composite where it was built, a function block its def, else its class."""
    if isinstance(blk, Composite):
        where = getattr(blk, "defined_at", None)
        return where if isinstance(where, tuple) and len(where) == 2 else None
    try:
        fn = getattr(blk, "fn", None)
        fn = inspect.unwrap(fn) if callable(fn) else None
        code = getattr(fn, "__code__", None)
        if code is not None:
            return str(code.co_filename), int(code.co_firstlineno)
        source = getattr(blk, "__dfgraph_source__", None)  # what an adapter wraps (e.g. a diffusers class)
        cls = source if inspect.isclass(source) else type(blk)
        if cls.__module__.split(".")[0] == "dfgraph":  # a wrapper of ours says nothing about the user's code
            return None
        file = inspect.getsourcefile(cls)
        return (file, inspect.getsourcelines(cls)[1]) if file else None
    except Exception:  # a proxy or a class without source: no location
        return None


def locate(root: Any, path: str) -> tuple[str, int] | None:
    """The definition site of the deepest block a diagnostic path names ('g/loop/step.x' -> step)."""
    segments = path.split("/")
    segments[-1] = segments[-1].partition(" (")[0].partition(".")[0]  # drop '.port' and ' (carried ...)'
    best = defined_at(root)
    current = root
    for segment in segments[1:]:
        child = children(current).get(segment)
        if child is None:
            break
        current = child
        best = defined_at(child) or best
    return best


def display_path(file: str, cwd: Path) -> str | None:
    """`file` relative to `cwd` (POSIX separators) when inside it, else absolute; None for '<string>'."""
    if file.startswith("<") or not os.path.isfile(file):
        return None
    absolute = Path(file).resolve()
    try:
        return absolute.relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def finding(target: str, root: Any, diagnostic: Diagnostic, cwd: Path) -> Finding:
    """A diagnostic of `target` (whose block is `root`), located at its block's definition."""
    where = locate(root, diagnostic.path)
    file = display_path(where[0], cwd) if where is not None else None
    return Finding(target, diagnostic, file, where[1] if where is not None and file is not None else None)


# -- text ---------------------------------------------------------------------------------------------------


def text(item: Finding) -> str:
    """Compiler style: `file:line: path: error[DF001]: message`, then the hint indented."""
    return f"{item.file}:{item.line}: {item.diagnostic}" if item.file else str(item.diagnostic)


# -- JSON ---------------------------------------------------------------------------------------------------


def as_json(item: Finding) -> dict[str, Any]:
    """One finding as a JSON object (suppressed_by is null for a reported finding)."""
    d = item.diagnostic
    return {
        "target": item.target,
        "code": d.code,
        "severity": str(d.severity),
        "path": d.path,
        "message": d.message,
        "hint": d.hint,
        "file": item.file,
        "line": item.line,
        "suppressed_by": d.suppressed_by or None,
    }


def json_document(items: Iterable[Finding]) -> str:
    """Every finding as one JSON list."""
    return json.dumps([as_json(item) for item in items], indent=2)


# -- GitHub workflow commands -------------------------------------------------------------------------------


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(item: Finding) -> str:
    """A workflow command that GitHub Actions shows as an annotation on the line (`::error file=..::..`)."""
    d = item.diagnostic
    command = "notice" if item.ignored else ("error" if d.severity is Severity.ERROR else "warning")
    props = [f"file={_escape_property(item.file)}"] if item.file else []
    if item.file and item.line:
        props.append(f"line={item.line}")
    title = f"{d.code} (ignored by {d.suppressed_by})" if item.ignored else d.code
    props.append(f"title={_escape_property(title)}")
    message = f"{d.path}: {d.message}" + (f"\nhint: {d.hint}" if d.hint else "")
    return f"::{command} {','.join(props)}::{_escape_data(message)}"


# -- SARIF 2.1.0 --------------------------------------------------------------------------------------------


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def _rules() -> list[dict[str, Any]]:
    return [
        {
            "id": code.code,
            "shortDescription": {"text": code.meaning},
            "defaultConfiguration": {"level": _level(code.severity)},
            "properties": {"fatal": code.fatal},
        }
        for code in REGISTRY.values()
    ]


def _result(item: Finding, rule_index: Mapping[str, int]) -> dict[str, Any]:
    d = item.diagnostic
    location: dict[str, Any] = {
        "logicalLocations": [{"fullyQualifiedName": d.path, "kind": "member"}],
    }
    if item.file:
        if os.path.isabs(item.file):
            artifact = {"uri": Path(item.file).as_uri()}
        else:  # relative to the checkout: GitHub code scanning and editors resolve it there
            artifact = {"uri": urllib.parse.quote(item.file), "uriBaseId": "%SRCROOT%"}
        physical: dict[str, Any] = {"artifactLocation": artifact}
        if item.line:
            physical["region"] = {"startLine": item.line}
        location["physicalLocation"] = physical
    result: dict[str, Any] = {
        "ruleId": d.code,
        "level": _level(d.severity),
        "message": {"text": f"{d.message}\nhint: {d.hint}" if d.hint else d.message},
        "locations": [location],
        "properties": {"target": item.target},
    }
    if d.code in rule_index:
        result["ruleIndex"] = rule_index[d.code]
    if item.ignored:
        # suppressions written in the code (a block's or port's ignore=, check=False) are in source
        in_source = d.suppressed_by.startswith(("ignore= of", "check=False of"))
        result["suppressions"] = [
            {"kind": "inSource" if in_source else "external", "justification": d.suppressed_by}
        ]
    return result


def sarif_document(
    items: Iterable[Finding], *, version: str, cwd: Path, exit_code: int, arguments: list[str]
) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run: the code registry as the driver's rules, one result per finding."""
    rule_index = {code: index for index, code in enumerate(REGISTRY)}
    root = cwd.resolve().as_uri().rstrip("/") + "/"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dfgraph",
                        "version": version,
                        "rules": _rules(),
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root}},
                "invocations": [
                    {
                        "executionSuccessful": exit_code in (0, 1),
                        "exitCode": exit_code,
                        "arguments": arguments,
                    }
                ],
                "results": [_result(item, rule_index) for item in items],
            }
        ],
    }

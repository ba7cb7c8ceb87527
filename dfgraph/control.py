"""Control flow beyond the Switch itself: `specialize` (resolve the Switches some values decide, as Modular
Diffusers' workflows and `get_execution_blocks` do), `first_given` (the trigger form of Modular Diffusers'
AutoPipelineBlocks: the first case whose trigger input is not None, else a default) and `switches_text`
(the switches of a block, their cases and the inputs each case needs, as `prog.doc` and `dfgraph describe`
show them).

`specialize` rewrites the composite tree (composites are plain data, so it copies what changes and shares
the rest): the block it returns is an ordinary composite to compile, check, pickle or specialize again.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Mapping
from typing import Any, Literal

from dfgraph.block import CallSpec, definition_error, name_problem, safe_repr
from dfgraph.compose import Bound, Composite, FrozenDict, Graph, Loop, Sequential, Switch
from dfgraph.diagnostics import did_you_mean
from dfgraph.errors import InputError
from dfgraph.ir import SwitchOp, case_chain, consumers
from dfgraph.lowering import input_ports, lower
from dfgraph.ports import WHEN_CHOSEN, Port

__all__ = ["FirstGiven", "first_given", "specialize", "switches_text"]


# -- the trigger form -----------------------------------------------------------------------------------


class FirstGiven:
    """A selector block: the key of the first case whose trigger input is not None, else `default`.

    Its inputs are the trigger names, each typed `object | None` with default None (a trigger need not
    be given); its one output `key` is typed `Literal[...]` of every key it can return, so the checker
    matches it against the Switch's cases (DF402, DF403). Build one with `df.first_given`."""

    def __init__(self, triggers: Mapping[str, str], default: str, *, name: str = "first_given") -> None:
        where = name if isinstance(name, str) else "first_given"
        problem = name_problem(name)
        if problem is not None:
            raise definition_error("first_given", f"name=: {problem}")
        if not isinstance(triggers, Mapping) or not triggers:
            raise definition_error(
                where,
                f"triggers must be a non-empty mapping case key -> input name, got {safe_repr(triggers)}",
                "write df.first_given({'img2img': 'image'}, default='text2img')",
            )
        pairs: list[tuple[str, str]] = []
        for key, trigger in triggers.items():
            for what, text in (("a case key", key), ("a trigger input", trigger)):
                problem = name_problem(text, identifier=what == "a trigger input")
                if problem is not None:
                    raise definition_error(where, f"{what}: {problem}")
            pairs.append((str.__str__(key), str.__str__(trigger)))
        problem = name_problem(default)
        if problem is not None:
            raise definition_error(
                where, f"default= is the key of the case run when no trigger is given: {problem}"
            )
        self.name = str.__str__(name)
        self.triggers: tuple[tuple[str, str], ...] = tuple(pairs)
        self.default = str.__str__(default)
        keys = tuple(dict.fromkeys([*(key for key, _ in pairs), self.default]))
        names = tuple(dict.fromkeys(trigger for _, trigger in pairs))
        self.inputs: tuple[Port, ...] = tuple(
            Port(t, object | None, None, doc=_trigger_doc(t, pairs)) for t in names
        )
        self.outputs: tuple[Port, ...] = (Port("key", typing.cast(Any, Literal)[keys]),)

    def choose(self, given: Mapping[str, Any]) -> str | None:
        """The key these trigger values choose; None when a trigger it must look at is not in `given`."""
        for key, trigger in self.triggers:
            if trigger not in given:
                return None
            if given[trigger] is not None:
                return key
        return self.default

    def _key(self, **given: Any) -> str:
        # the call compiled programs make: every trigger is there (a missing one defaults to None)
        for key, trigger in self.triggers:
            if given.get(trigger) is not None:
                return key
        return self.default

    def __call__(self, **given: Any) -> dict[str, str]:
        """Run as a block: `{'key': the chosen key}`."""
        return {"key": self._key(**given)}

    def __dfgraph_call__(self) -> CallSpec:
        """Compiled code calls `_key` and gets the key itself (no mapping built per call)."""
        return CallSpec(self._key, 0, "value")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FirstGiven):
            return NotImplemented
        return (self.name, self.triggers, self.default) == (other.name, other.triggers, other.default)

    def __hash__(self) -> int:
        return hash((self.name, self.triggers, self.default))

    def __repr__(self) -> str:
        rule = ", ".join(f"{key!r}: {trigger!r}" for key, trigger in self.triggers)
        return f"first_given({{{rule}}}, default={self.default!r})"


def _trigger_doc(trigger: str, pairs: list[tuple[str, str]]) -> str:
    first = next(k for k, (_, t) in enumerate(pairs) if t == trigger)
    earlier = ", ".join(t for _, t in pairs[:first])
    unless = f" (and {earlier} not given)" if earlier else ""
    return f"a trigger: given (not None){unless}, case {pairs[first][0]!r} runs"


def first_given(triggers: Mapping[str, str], *, default: str, name: str = "first_given") -> FirstGiven:
    """A selector for `df.Switch(cases, on=...)`: the first key (in order) whose trigger input is not None,
    else `default` (Modular Diffusers' AutoPipelineBlocks rule)."""
    return FirstGiven(triggers, default, name=name)


# -- specialize -----------------------------------------------------------------------------------------


def specialize(block: Any, cases: Mapping[str, str] | None = None, /, **values: Any) -> Any:
    """`block` with every Switch that `values` (or `cases`) decide replaced by its chosen case, and the
    given inputs it still reads bound.

    A Switch is decided when its `on` name reads one of the given values (a graph input, not a value an
    earlier block wrote), or its selector reads only given values (the selector is called on them; a
    `first_given` selector needs only the triggers up to the first given one that is not None), or
    `cases` maps its path (as `prog.doc` shows it) to a key: that choice binds nothing, so the inputs
    stay inputs. The chosen case takes the Switch's place and name: its path is the Switch's path (the
    `/key` segment is dropped). Given names the result still reads are bound (`Bound`); `block` itself
    is unchanged.
    """
    root = str(getattr(block, "name", "block"))
    known = {p.name for p in block.inputs}
    unknown = [name for name in values if name not in known]
    if unknown:
        raise InputError(
            f"specialize({root}): "
            + "; ".join(f"unknown input {name!r}{did_you_mean(name, known)}" for name in unknown)
            + f". Inputs: {', '.join(sorted(known)) or '(none)'}"
        )
    chosen = _checked_cases(block, cases)
    result = _Specializer(chosen).rewrite(block, dict(values), root, at_root=True)
    still_read = {p.name for p in result.inputs}
    bound = {name: value for name, value in values.items() if name in still_read}
    if bound or (isinstance(block, Switch) and not isinstance(result, Composite)):
        # a leaf case chosen at the root is named (in paths, and as the program) after the Switch
        return Bound(result, bound, name=block.name if isinstance(block, Switch) else None)
    return result


def _checked_cases(block: Any, cases: Mapping[str, str] | None) -> dict[str, str]:
    """`cases` as a dict of switch path -> key; a path that names no Switch of `block` is DF006."""
    if cases is None:
        return {}
    if not isinstance(cases, Mapping):
        raise definition_error(
            str(getattr(block, "name", "block")),
            f"specialize's cases map switch paths to keys, got {safe_repr(cases)}",
            "write df.specialize(graph, {'graph/prepare': 'img2img'})",
        )
    paths = (
        [op.path for op in lower(block).ops() if isinstance(op, SwitchOp)]
        if isinstance(block, Composite)
        else []
    )
    for path in cases:
        if path not in paths:
            listed = ", ".join(repr(p) for p in paths) or "none"
            raise definition_error(
                str(path),
                f"specialize: no Switch at path {safe_repr(path)}"
                + (did_you_mean(path, paths) if isinstance(path, str) else "")
                + f"; the switches are at {listed}",
            )
    return dict(cases)


def _replaced(composite: Composite, **attributes: Any) -> Any:
    """A copy of a (sealed) composite with some attributes replaced; the caches start empty."""
    new = copy.copy(composite)  # through __getstate__/__setstate__: the definition without the caches
    for key, value in attributes.items():
        object.__setattr__(new, key, value)
    return new


def _output_names(blk: Any) -> set[str]:
    try:
        return {str(p.name) for p in blk.outputs}
    except Exception:  # a malformed leaf: the checker reports it (DF006); it writes nothing we know of
        return set()


def writes(blk: Any) -> set[str]:
    """Every name a block may write, read from the composite tree (no lowering): an over-approximation."""
    found: set[str] = set()
    stack = [blk]
    while stack:
        current = stack.pop()
        if isinstance(current, Sequential):
            stack.extend(child for _, child in current.children)
        elif isinstance(current, Loop):
            stack.append(current.body)
        elif isinstance(current, Graph):
            if current.output_map is not None:
                found.update(name for name, _ in current.output_map)
            else:
                stack.extend(current.nodes.values())
        elif isinstance(current, Switch):
            stack.extend(current.cases.values())
        elif isinstance(current, Bound):
            stack.append(current.block)
        else:
            found |= _output_names(current)
    return found


class _Specializer:
    """The rewrite: each block with the values its reads see (`scope`: name -> value) and its path;
    `cases` are the keys chosen by switch path."""

    def __init__(self, cases: dict[str, str]) -> None:
        self.cases = cases

    def rewrite(self, blk: Any, scope: dict[str, Any], path: str, *, at_root: bool = False) -> Any:
        """`blk` with the Switches `scope` decides resolved (the same object when nothing changed)."""
        if isinstance(blk, Sequential):
            return self._sequential(blk, scope, path)
        if isinstance(blk, Loop):
            return self._loop(blk, scope, path)
        if isinstance(blk, Graph):
            return self._graph(blk, scope, path)
        if isinstance(blk, Switch):
            return self._switch(blk, scope, path, at_root)
        if isinstance(blk, Bound):
            inner = self.rewrite(blk.block, {**scope, **blk.values}, path)
            return blk if inner is blk.block else _replaced(blk, block=inner)
        return blk

    def _sequential(self, seq: Sequential, scope: dict[str, Any], path: str) -> Any:
        children: list[tuple[str, Any]] = []
        visible = dict(scope)
        for child_name, child in seq.children:
            children.append((child_name, self.rewrite(child, visible, f"{path}/{child_name}")))
            for name in writes(child):  # later blocks read what this one wrote, not the given value
                visible.pop(name, None)
        if all(new is old for (_, new), (_, old) in zip(children, seq.children, strict=True)):
            return seq
        return _replaced(seq, children=tuple(children))

    def _loop(self, loop: Loop, scope: dict[str, Any], path: str) -> Any:
        body = loop.body
        # what the body writes is carried or rewritten each iteration: only the rest keeps a given value
        hidden = writes(body) | {loop.index, loop.item}
        inner = {name: value for name, value in scope.items() if name not in hidden}
        body_path = path if isinstance(body, Sequential) else f"{path}/{getattr(body, 'name', 'body')}"
        new = self.rewrite(body, inner, body_path)
        if new is body:
            return loop
        if isinstance(body, Switch) and not isinstance(new, Sequential):
            # the case keeps the body's path segment (the Switch's name): wrapped, as Sequential bodies
            # are transparent in paths
            new = Sequential({body.name: new}, name=body.name)
        return _replaced(loop, body=new)

    def _graph(self, graph: Graph, scope: dict[str, Any], path: str) -> Any:
        node_scopes: dict[str, dict[str, Any]] = {node: dict(scope) for node in graph.nodes}
        for source, target in graph.edges:
            node, _, port = target.rpartition(".")
            if node not in node_scopes:
                continue  # an edge to no node: the checker reports it (DF003)
            node_scopes[node].pop(port, None)  # wired: not the graph input of that name
            if "." not in source and source in scope:
                node_scopes[node][port] = scope[source]  # a graph input renamed by the edge
        nodes = {
            node: self.rewrite(blk, node_scopes[node], f"{path}/{node}") for node, blk in graph.nodes.items()
        }
        changed = {node for node, blk in graph.nodes.items() if nodes[node] is not blk}
        if not changed:
            return graph
        # an edge into a port the rewritten node no longer has (the key of a resolved Switch) is dropped
        ports = {node: {p.name for p in nodes[node].inputs} for node in changed}
        edges = tuple(
            (source, target)
            for source, target in graph.edges
            if target.rpartition(".")[0] not in ports
            or target.rpartition(".")[2] in ports[target.rpartition(".")[0]]
        )
        return _replaced(graph, nodes=FrozenDict(nodes), edges=edges)

    def _switch(self, switch: Switch, scope: dict[str, Any], path: str, at_root: bool) -> Any:
        key = self._key(switch, scope, path)
        if key is None:
            cases = {k: self.rewrite(case, scope, f"{path}/{k}") for k, case in switch.cases.items()}
            if all(cases[k] is case for k, case in switch.cases.items()):
                return switch
            return _replaced(switch, cases=FrozenDict(cases))
        chosen = self.rewrite(switch.cases[key], scope, f"{path}/{key}")
        if at_root and isinstance(chosen, Composite):
            return _replaced(chosen, name=switch.name)  # the program keeps the Switch's name
        return chosen

    def _key(self, switch: Switch, scope: dict[str, Any], path: str) -> str | None:
        """The key `scope` decides for `switch`, or None when it does not decide it."""
        selector = switch.selector
        key: object
        if path in self.cases:
            key, source = self.cases[path], "chosen by specialize's cases"
        elif switch.on is not None:
            if switch.on not in scope:
                return None
            key, source = scope[switch.on], f"{switch.on}={safe_repr(scope[switch.on])}"
        elif isinstance(selector, FirstGiven):
            key = selector.choose({t: scope[t] for _, t in selector.triggers if t in scope})
            if key is None:
                return None  # a trigger it must look at is not given
            source = f"selector {switch.selector_name!r}"
        else:
            try:
                names = [p.name for p in selector.inputs]
            except Exception:  # a selector whose ports cannot be read: the checker reports it
                return None
            if not all(name in scope for name in names):
                return None
            key = _call_selector(selector, {name: scope[name] for name in names})
            source = f"selector {switch.selector_name!r} on {', '.join(names) or 'no inputs'}"
        if not isinstance(key, str) or key not in switch.cases:
            keys = ", ".join(repr(k) for k in switch.cases)
            hint = did_you_mean(key, switch.cases) if isinstance(key, str) else ""
            raise definition_error(
                path,
                f"switch {path!r} has no case {safe_repr(key)} ({source}); its cases are {keys}{hint}",
                "give a value that names one of the cases",
            )
        return key


def _call_selector(selector: Any, values: dict[str, Any]) -> Any:
    """The key a selector block returns for these inputs (run as a one-block program)."""
    name = str(getattr(selector, "name", "selector"))
    outputs = [p.name for p in selector.outputs]
    if len(outputs) != 1:
        raise definition_error(
            name, f"a selector has exactly one output (the key), {name!r} has {len(outputs)}"
        )
    program: Any = Sequential({"selector": selector}, name=name)
    return program(**values)[outputs[0]]


# -- describing switches --------------------------------------------------------------------------------


def switches_text(block: Any) -> str:
    """The switches of a block, one paragraph each: path, what chooses, each case with the inputs only it
    needs (read by a case and by nothing that always runs); '' when it has none."""
    if not isinstance(block, Composite):
        return ""
    lowered = lower(block)
    switches = [op for op in lowered.ops() if isinstance(op, SwitchOp)]
    if not switches:
        return ""
    conditional = {p.name for p in input_ports(lowered) if p.default is WHEN_CHOSEN}
    needs: dict[tuple[int, int], list[str]] = {}
    for name, value in lowered.inputs.items():
        if name not in conditional:
            continue
        for op, _port in consumers(value):
            for owner, index in case_chain(op):
                seen = needs.setdefault((owner.id, index), [])
                if name not in seen:
                    seen.append(name)
    lines = ["Switches:"]
    for op in switches:
        switch = op.switch
        selector = switch.selector
        if switch.on is not None:
            how = f"on {switch.on!r}"
        elif isinstance(selector, FirstGiven):
            triggers = ", ".join(t for _, t in selector.triggers)
            how = f"on the first given of {triggers} ({op.path}/{switch.selector_name})"
        else:
            reads = ", ".join(p.name for p in selector.inputs) or "no inputs"
            how = f"on selector {op.path}/{switch.selector_name} (reads {reads})"
        lines.append(f"  {op.path}: {how}")
        for index, case in enumerate(op.cases):
            trigger = ""
            if isinstance(selector, FirstGiven):
                trigger = _trigger_rule(selector, case.key)
            needed = needs.get((op.id, index), [])
            text = f": needs {', '.join(needed)}" if needed else ""
            lines.append(f"    case {case.key!r}{trigger}{text}")
    return "\n".join(lines)


def _trigger_rule(selector: FirstGiven, key: str) -> str:
    """When a `first_given` selector picks `key`: ' (when image is not None and mask_image is None)'."""
    earlier: list[str] = []
    for k, trigger in selector.triggers:
        if k == key and trigger not in earlier:
            unless = "".join(f" and {t} is None" for t in dict.fromkeys(earlier))
            return f" (when {trigger} is not None{unless})"
        earlier.append(trigger)
    return " (default: every trigger is None)" if key == selector.default else " (never chosen)"

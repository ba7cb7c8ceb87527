"""The serial emitter: the lowered IR becomes one readable Python function whose values are locals.

Every emitted line that calls a block is recorded with its LineInfo, so a failure maps back to the block
path and iteration. The streams and capture emitters (dfgraph.codegen.streams, .capture) extend this one
by overriding region emission and the points around a loop body.
"""

from __future__ import annotations

import builtins
from typing import Any

from dfgraph import hooks, types
from dfgraph.codegen.alloc import Allocation, allocate
from dfgraph.codegen.common import (
    MISSING,
    Decided,
    Generated,
    InputCheck,
    LineInfo,
    Unset,
    boundary_checks,
    case_refusal,
    decided_switches,
    early_refusal,
    iterator_refusal,
    maybe_unset,
    needed_message,
    run_defaults,
)
from dfgraph.codegen.names import (
    Names,
    block_name,
    class_name,
    comment,
    describe_loop,
    identifier,
    literal,
    plain_keyword,
    short,
    tuple_text,
)
from dfgraph.codegen.writer import Writer
from dfgraph.fuse import FusedOp
from dfgraph.ir import (
    CallOp,
    LoopOp,
    Lowered,
    Nested,
    Op,
    Region,
    Slot,
    SwitchOp,
    Value,
    consumers,
    run_nested,
)
from dfgraph.ports import REQUIRED
from dfgraph.schedule import Schedule

# CPython allows 20 statically nested blocks per function; deeper loops and switches (an if/elif counts
# as a level here too) go into helper functions.
MAX_NESTING = 12

# Up to this many outputs, `output="name"` is answered by inline comparisons instead of a lookup.
INLINE_OUTPUTS = 8

Loops = tuple[tuple[str, str], ...]  # (loop path, index variable) of the loops around a line


class SerialEmitter:
    """Emits the program's `__call__` (and helpers for loops nested too deep), every op in issue order."""

    def __init__(
        self,
        lowered: Lowered,
        schedule: Schedule | None = None,
        runtime: Any = None,
        events: frozenset[str] = frozenset(),
    ) -> None:
        self.lowered = lowered
        self.schedule = schedule
        self.runtime = runtime
        # the hook events the source calls (dfgraph.hooks); `error` is raised by Program._reraise
        self.events = frozenset(events) - {"error"}
        self.hooks: str | None = None  # the local holding the program's hook dispatcher
        self.segments: list[Any] = []  # the capture emitter's Segments
        self.names = Names()
        self.vars: dict[int, str] = {}
        self.namespace: dict[str, Any] = {}
        self._global_ids: dict[int, str] = {}
        self.functions: list[Writer] = []
        self.output_ids = {v.id for v in lowered.outputs.values()}
        self.unset = maybe_unset(lowered)
        self.maybe_unset = any(v.id in self.unset for v in lowered.outputs.values())
        self.checks: list[InputCheck] = []
        self.no_value: list[str] = []  # who reads a value that may have none, cited by _no_value(k, value)
        self.alloc: Allocation = allocate(lowered, self.streamed)
        self.defaults = run_defaults(lowered)  # value id -> the default of an input (a marker: WHEN_CHOSEN)
        self.decided = decided_switches(lowered)
        # the selectors deciding switches: called first of all blocks, and not again in their region
        self.hoisted = [d.selector for d in self.decided if d.selector is not None]
        self.hoisted_ids = {op.id for op in self.hoisted}

    def streamed(self, op: LoopOp) -> bool:
        """Whether the loop's body runs on several streams (the allocator keeps its finals apart)."""
        return False

    # -- names ------------------------------------------------------------------------------------------

    def var(self, value: Value) -> str:
        """The variable of `value`: the allocation's shared one, named on first use."""
        ident = self.vars.get(value.id)
        if ident is None:
            root = self.alloc.root(value)
            ident = self.vars.get(root.id)
            if ident is None:
                ident = self.vars[root.id] = self.names.new(root.name, builtin_ok=root.kind == "input")
            self.vars[value.id] = ident
        return ident

    def glob(self, obj: object, base: str) -> str:
        """The global holding `obj` in the generated namespace (one per object)."""
        ident = self._global_ids.get(id(obj))
        if ident is None:
            # a builtin's own name may hold the builtin itself (int is int): nothing is shadowed
            same = getattr(builtins, identifier(base), None) is obj
            ident = self._global_ids[id(obj)] = self.names.new(base, builtin_ok=same)
            self.namespace[ident] = obj
        return ident

    # -- program ----------------------------------------------------------------------------------------

    def generate(self) -> tuple[Generated, list[InputCheck], list[str]]:
        """The program's source, with the input checks and zero-iteration messages it cites."""
        entry, params = self.program()
        lines: list[str] = []
        infos: dict[int, LineInfo] = {}
        for fn in self.functions[1:] + self.functions[:1]:  # helpers first, so __call__ reads last
            for text, info in fn.text():
                lines.append(text)
                if info is not None:
                    infos[len(lines)] = info
            lines.append("")
        namespace = dict(self.namespace)
        namespace.update(
            _range=range,
            _enumerate=enumerate,
            _isinstance=isinstance,
            _iter=iter,
            _Unset=Unset,
            _MISSING=MISSING,
        )
        namespace["_OUTPUTS"] = frozenset(self.lowered.outputs)
        generated = Generated(
            source="\n".join(lines),
            namespace=namespace,
            entry=entry,
            params=params,
            output_names=tuple(self.lowered.outputs),
            lines=infos,
            maybe_unset=self.maybe_unset,
            segments=tuple(self.segments),
            events=self.events,
        )
        return generated, self.checks, self.no_value

    def program(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The program's `__call__`: keywords bind straight to parameters; anything unusual (positional
        arguments, unknown or missing names, renamed ports) takes the slow path, which explains it."""
        params: list[tuple[str, str]] = []
        signature = ["self", "/", "*args"]
        required: list[str] = []
        inputs = [(n, v) for n, v in self.lowered.inputs.items() if v.readers]
        for name, value in inputs:
            ident = self.var(value)
            params.append((name, ident))
            default = self.defaults[value.id]
            if default is REQUIRED:
                required.append(ident)
                signature.append(f"{ident}=_MISSING")
            else:
                signature.append(f"{ident}={self.glob(default, f'{name}_default')}")
        signature += ["output=None", "**unknown"]
        if self.events:  # named after the inputs, so they keep their own names
            self.hooks = self.names.new("_hooks")
        w = Writer(f"def __call__({', '.join(signature)}):")
        self.functions.append(w)
        given = ", ".join(f"{ident!r}: {ident}" for _, ident in params)
        odd = " or ".join(["args", "unknown", *(f"{ident} is _MISSING" for ident in required)])
        with w.block(f"if {odd}:"):
            w.line(f"return self._slow_call(args, unknown, output, {{{given}}})")
        # unknown output names are refused before any block runs, as bad inputs are
        check = "output is not None and (output.__class__ is not str or output not in _OUTPUTS)"
        w.line(f"if {check}: output = self._check_output(output)")
        for name, value in inputs:
            self.input_check(w, name, value)
        for op in self.lowered.root.walk():  # iterators given as inputs to inner loops' over=
            if isinstance(op, LoopOp) and op.inputs[0].value.kind == "input":
                self.reiterable_check(w, op)
        self.decide(w, after_selectors=False)
        w.setup_at = len(w.lines)  # bad calls never make streams
        if self.hooks is not None:
            w.line(f"{self.hooks} = self._hooks")
        with w.block("try:"):
            if "run_start" in self.events:
                given = ", ".join(f"{literal(name)}: {ident}" for name, ident in params)
                w.line(f"{self.hooks}.run_start(self.name, {{{given}}})")
            for selector in self.hoisted:
                self.call(w, selector, ())
            self.decide(w, after_selectors=True)
            run_nested(self.region(w, self.lowered.root, ()))
            if "run_end" in self.events:
                w.line(f"{self.hooks}.run_end(self.name, {self.outputs_mapping()})")
        w.line("except Exception as exc:")
        with w.indented():
            w.line("self._reraise(exc)")
        self.select_output(w)
        return "__call__", tuple(params)

    def outputs_mapping(self) -> str:
        """`{'name': variable, ...}` of the outputs (those that have a value, when a loop may leave some)."""
        mapping = ", ".join(f"{literal(n)}: {self.var(v)}" for n, v in self.lowered.outputs.items())
        return f"self._defined({{{mapping}}})" if self.maybe_unset else f"{{{mapping}}}"

    def hook(self, w: Writer, event: str, *args: str) -> None:
        """Call the hooks of `event` (only when some hook listens to it); no LineInfo: a hook's own
        exception propagates as it is, not as a BlockError."""
        if event in self.events:
            w.line(f"{self.hooks}.{event}({', '.join(args)})")

    def select_output(self, w: Writer) -> None:
        """Return every output, the one named by `output=`, or a mapping of the named ones."""
        names = list(self.lowered.outputs)
        outs = [self.var(v) for v in self.lowered.outputs.values()]
        mapping = ", ".join(f"{literal(n)}: {o}" for n, o in zip(names, outs, strict=True))
        if self.maybe_unset:  # a loop may have run zero times: its non-carried outputs are left out
            w.line(f"if output is None: return self._defined({{{mapping}}})")
        else:
            w.line(f"if output is None: return {{{mapping}}}")
        if len(names) <= INLINE_OUTPUTS and not self.maybe_unset:
            for n, o in zip(names, outs, strict=True):
                w.line(f"if output == {literal(n)}: return {o}")
        w.line(f"return self._select(output, ({tuple_text(outs)}))")

    def decide(self, w: Writer, *, after_selectors: bool) -> None:
        """The InputErrors of the switches the call's inputs decide (dfgraph.codegen.common.Decided): a
        key no case has; a missing input the chosen case needs. Those that wait for no selector come
        right after the input checks, the others right after the selectors (run first of all blocks)."""
        for d in self.decided:
            if d.after_selectors == after_selectors:
                self.decided_checks(w, d)

    def decided_checks(self, w: Writer, d: Decided) -> None:
        """`if mode not in (...): bad_key(mode)`, then per input a chosen case needs and was not given."""
        op, key = d.op, self.var(d.key)
        within = "".join(
            f"{self.var(outer.inputs[0].value)} == {literal(outer.cases[k].key)} and "
            for outer, k in d.within
        )
        base = op.path.rsplit("/", 1)[-1]
        keys = self.glob(tuple(case.key for case in op.cases), f"_keys_{base}")
        refusal = self.glob(early_refusal(self.lowered.name, d), f"_bad_key_{base}")
        w.line(f"if {within}{key} not in {keys}: {refusal}({key})")
        for k, case in enumerate(op.cases):
            for name in d.needs[k]:
                value = self.lowered.inputs[name]
                marker = self.glob(self.defaults[value.id], f"{name}_default")
                self.no_value.append(needed_message(d, k, name))
                test = f"{within}{key} == {literal(case.key)} and {self.var(value)} is {marker}"
                w.line(f"if {test}: _no_value({len(self.no_value) - 1})")

    def input_check(self, w: Writer, name: str, value: Value) -> None:
        """Boundary checks, inlined as isinstance where that is exact; they run before any block."""
        # a reader port with check=False (or whose DF002 was ignored) is not checked at the boundary
        paths = tuple(dict.fromkeys(f"{op.path}.{port.name}" for op, port in consumers(value)))
        ident = self.var(value)
        default = self.defaults[value.id]
        guard = "" if default is REQUIRED else f"{ident} is not {self.glob(default, f'{name}_default')} and "
        for hint, test in boundary_checks(value):
            if isinstance(test, type | tuple):  # the fast path: an inline isinstance, no call of ours
                expr = f"_isinstance({ident}, {self.glob(test, class_name(test))})"
            else:
                expr = f"{self.glob(test, f'is_{name}')}({ident})"
            self.checks.append(InputCheck(name, hint, paths))
            w.line(f"if {guard}not {expr}: _bad_input({len(self.checks) - 1}, {ident})")

    # -- regions ----------------------------------------------------------------------------------------

    def region(self, w: Writer, region: Region, loops: Loops) -> Nested[None]:
        """Emit a region's ops; a nested loop or switch is yielded to run_nested (nested 1,000 deep)."""
        for op in region.ops:
            yield self.op(w, op, loops)

    def op(self, w: Writer, op: Op, loops: Loops) -> Nested[None] | None:
        """Emit a call now; a loop's or switch's emission is returned, for the caller to yield to
        run_nested. A selector already called first (it decides a switch) is not called again."""
        # depth counts indentation: the entry's try adds one level, so nesting stays under 20 blocks
        if isinstance(op, CallOp):
            if op.id not in self.hoisted_ids:
                self.call(w, op, loops)
        elif isinstance(op, LoopOp):
            if w.depth > MAX_NESTING:
                return self.loop_function(w, op, loops)
            return self.loop(w, op, loops)
        elif isinstance(op, SwitchOp):
            if w.depth > MAX_NESTING:
                return self.switch_function(w, op, loops)
            return self.switch(w, op, loops)
        return None

    # -- switches ---------------------------------------------------------------------------------------

    def switch(self, w: Writer, op: SwitchOp, loops: Loops) -> Nested[None]:
        """`if key == 'a': ... elif key == 'b': ... else: <no such case>`: per case its region, then the
        assignments of the outputs the allocation could not put in the case's own variables."""
        info = LineInfo(op.path, loops)
        key_value = op.inputs[0].value
        cases = ", ".join(case.key for case in op.cases)
        w.line(f"# {comment(f'switch {short(op.path)}: on {key_value.name}, cases {cases}')}")
        self.unset_check(w, key_value, f"switch {op.path!r}")
        key = self.var(key_value)
        for k, case in enumerate(op.cases):
            with w.block(f"{'elif' if k else 'if'} {key} == {literal(case.key)}:", info):
                yield self.region(w, case.body, loops)
                self.case_outputs(w, op, k, info)
        with w.block("else:"):
            refusal = self.glob(case_refusal(op), f"_no_case_{op.path.rsplit('/', 1)[-1]}")
            w.line(f"{refusal}({key})", info)

    def case_outputs(self, w: Writer, op: SwitchOp, k: int, info: LineInfo) -> None:
        """The switch outputs after case k: its final value, the value before, or a marker (partial)."""
        targets: list[str] = []
        sources: list[str] = []
        for out in op.outs:
            target, final, init = self.var(out.value), out.finals[k], out.init
            if final is not None:
                source = self.var(final)
            elif init is not None:
                source = self.var(init)
            else:
                marker = Unset.not_written(op.path, op.cases[k].key, out.value.name)
                source = self.glob(marker, f"_unset_{out.value.name}")
            if source != target:
                targets.append(target)
                sources.append(source)
        if len(targets) == 1:
            w.line(f"{targets[0]} = {sources[0]}", info)
        elif targets:  # one assignment: no output's new value overwrites another's source
            w.line(f"{', '.join(targets)} = {', '.join(sources)}", info)

    def switch_function(self, w: Writer, op: SwitchOp, loops: Loops) -> Nested[None]:
        """A switch too deeply nested for one function becomes a helper function called in its place."""
        name = self.names.new(f"_switch_{op.path.rsplit('/', 1)[-1]}")
        params = list(dict.fromkeys(self.var(slot.value) for slot in op.inputs))
        if self.hooks is not None:
            params.append(self.hooks)
        helper = Writer(f"def {name}({', '.join(params)}):")
        self.functions.append(helper)
        yield self.switch(helper, op, ())
        outs = [self.var(out.value) for out in op.outs]
        helper.line(f"return ({tuple_text(outs)})" if outs else "return None")
        target = f"{', '.join(outs)}, = " if outs else ""
        w.line(f"{target}{name}({', '.join(params)})", LineInfo(op.path, loops))

    # -- loops ------------------------------------------------------------------------------------------

    def loop(self, w: Writer, op: LoopOp, loops: Loops) -> Nested[None]:
        """A loop: carried and output variables set up, the `for`, the body, the carried copies."""
        info = LineInfo(op.path, loops)
        w.line(f"# {comment(f'loop {short(op.path)}: {describe_loop(op)}')}")
        self.before_loop(w, op)
        for carried in op.carried:
            phi, init = self.var(carried.phi), self.var(carried.init)
            if phi != init:
                w.line(f"{phi} = {init}", info)
        self.unset_check(w, op.inputs[0].value, f"loop {op.path!r}")
        for out in op.outs:
            if out.carried:
                continue
            ident = self.var(out.final)
            if out.init is not None:
                if ident != self.var(out.init):
                    w.line(f"{ident} = {self.var(out.init)}", info)
            else:  # always: in an enclosing loop the variable may still hold an earlier iteration's value
                unset = self.glob(Unset(op.path, out.value.name), f"_unset_{out.value.name}")
                w.line(f"{ident} = {unset}", info)
        if op.inputs[0].value.kind != "input":  # program inputs are checked on entry, before any block
            self.reiterable_check(w, op)
        index = self.var(op.index_value) if op.index_value is not None else "_"
        inner = (*loops, (op.path, index))
        path = literal(op.path)
        header = self.loop_header(op, index)
        if "loop_start" in self.events:
            control = self.var(op.inputs[0].value)
            total = control if op.loop.times is not None else f"{self.glob(hooks.total, '_total')}({control})"
            self.hook(w, "loop_start", path, total)
        item = self.var(op.item_value) if op.loop.over is not None and op.item_value is not None else "None"
        with w.block(header, info):
            self.body_start(w, op)
            self.hook(w, "iteration_start", path, index, item)
            yield self.region(w, op.body, inner)
            self.body_end(w, op)
            for carried in op.carried:
                phi, final = self.var(carried.phi), self.var(carried.final)
                if phi != final:
                    w.line(f"{phi} = {final}", LineInfo(op.path, inner))
            if "iteration_end" in self.events:
                values = ", ".join(f"{literal(c.name)}: {self.var(c.phi)}" for c in op.carried)
                self.hook(w, "iteration_end", path, index, item, f"{{{values}}}")
            if op.until_value is not None:  # until=: ends after the iteration that left it true
                self.unset_check(w, op.until_value, f"until= of loop {op.path!r}")
                w.line(f"if {self.var(op.until_value)}: break", LineInfo(op.path, inner))
        self.hook(w, "loop_end", path)
        self.after_loop(w, op)

    def loop_header(self, op: LoopOp, index: str) -> str:
        """`for i in _range(n):` or `for i, item in _enumerate(over):`."""
        loop = op.loop
        control = self.var(op.inputs[0].value)
        iterable = f"_range({control})" if loop.times is not None else control
        if loop.over is not None and op.item_value is not None:
            return f"for {index}, {self.var(op.item_value)} in _enumerate({iterable}):"
        return f"for {index} in {iterable}:"

    def before_loop(self, w: Writer, op: LoopOp) -> None:
        """Written before a loop's variables are set up (the streams emitter makes its streams here)."""

    def body_start(self, w: Writer, op: LoopOp) -> None:
        """Written first in each iteration (the streams emitter forks here)."""

    def body_end(self, w: Writer, op: LoopOp) -> None:
        """Written after the body, before the carried copies (the streams emitter joins here)."""

    def after_loop(self, w: Writer, op: LoopOp) -> None:
        """Written after the loop (the streams emitter hands side-stream outputs to the main stream)."""

    def reiterable_check(self, w: Writer, op: LoopOp) -> None:
        """Refuse an iterator as `over=` of a loop that a loop around it would start again."""
        refusal = iterator_refusal(op)
        if refusal is None:
            return
        self.no_value.append(refusal)
        control = self.var(op.inputs[0].value)
        w.line(f"if _iter({control}) is {control}: _no_value({len(self.no_value) - 1})")

    def loop_function(self, w: Writer, op: LoopOp, loops: Loops) -> Nested[None]:
        """A loop too deeply nested for one function becomes a helper function called in its place."""
        name = self.names.new(f"_loop_{op.path.rsplit('/', 1)[-1]}")
        params = list(dict.fromkeys(self.var(slot.value) for slot in op.inputs))
        if self.hooks is not None:
            params.append(self.hooks)
        helper = Writer(f"def {name}({', '.join(params)}):")
        self.functions.append(helper)
        yield self.loop(helper, op, ())
        outs = [self.var(out.value) for out in op.outs]
        helper.line(f"return ({tuple_text(outs)})")
        target = f"{', '.join(outs)}, = " if outs else ""
        w.line(f"{target}{name}({', '.join(params)})", LineInfo(op.path, loops))

    # -- calls ------------------------------------------------------------------------------------------

    def unset_check(self, w: Writer, value: Value, reader: str) -> None:
        """Before a block or loop reads a value that may have none: an InputError naming the loop."""
        if value.id in self.unset:
            self.no_value.append(reader)
            ident = self.var(value)
            # no LineInfo: an InputError of ours, not a BlockError
            w.line(f"if _isinstance({ident}, _Unset): _no_value({len(self.no_value) - 1}, {ident})")

    def call(self, w: Writer, op: CallOp, loops: Loops) -> None:
        """A block call (a fused op: one call on the stacked batch, split back after)."""
        info = LineInfo(op.path, loops)
        checked: set[int] = set()
        for member in op.members if isinstance(op, FusedOp) else (op,):
            for slot in member.inputs:
                if slot.value.id not in checked:
                    checked.add(slot.value.id)
                    self.unset_check(w, slot.value, f"block {member.path!r}")
        members = op.members if isinstance(op, FusedOp) else (op,)
        for member in members:  # a fused call reports each call it stands for
            self.block_event(w, "block_start", member.path, member.inputs)
        self.emit_call(w, op, info)
        for member in members:
            self.block_event(w, "block_end", member.path, member.outputs)

    def block_event(self, w: Writer, event: str, path: str, ports: list[Slot] | list[Value]) -> None:
        """block_start / block_end with the ports' (or outputs') values by name."""
        if event in self.events:
            values = ", ".join(
                f"{literal(p.port.name if isinstance(p, Slot) else p.name)}: "
                f"{self.var(p.value if isinstance(p, Slot) else p)}"
                for p in ports
            )
            self.hook(w, event, literal(path), f"{{{values}}}")

    def emit_call(self, w: Writer, op: CallOp, info: LineInfo) -> None:
        """The call itself: a plain one, or a fused one (with its unfused fallback)."""
        if not isinstance(op, FusedOp):
            self.plain_call(w, op, info)
            return
        self.namespace.setdefault("_cat", _torch_cat())
        optional = [
            self.var(slot.value)
            for member in op.members
            for slot in member.inputs
            if slot.port.name in op.batch and types.is_assignable(type(None), slot.port.type)
        ]
        if not optional:
            self.fused_call(w, op, info)
            return
        # A None batch input (an optional branch switched off) cannot be stacked: the two calls
        # then run as written, so the fused program always computes what the unfused one does.
        with w.block(f"if {' or '.join(f'{v} is None' for v in optional)}:", info):
            for member in op.members:
                self.plain_call(w, member, info)
        w.line("else:", info)
        with w.indented():
            self.fused_call(w, op, info)

    def fused_call(self, w: Writer, op: FusedOp, info: LineInfo) -> None:
        """One call on the stacked batch, then each output split back at the first member's batch size."""
        first, second = op.members
        size = self.names.new("_n")
        batch_input = next(slot for slot in first.inputs if slot.port.name in op.batch)
        w.line(f"{size} = {self.var(batch_input.value)}.shape[0]", info)
        args = [
            f"_cat(({self.var(a.value)}, {self.var(b.value)}))"
            if a.port.name in op.batch
            else self.var(a.value)
            for a, b in zip(first.inputs, second.inputs, strict=True)
        ]
        batched = [self.names.new(f"{v.name}_batch") for v in first.outputs]
        self.assign(w, op, self.call_expr(op, first.inputs, args), batched, info)
        for whole, a, b in zip(batched, first.outputs, second.outputs, strict=True):
            w.line(f"{self.var(a)}, {self.var(b)} = {whole}[:{size}], {whole}[{size}:]", info)

    def plain_call(self, w: Writer, op: CallOp, info: LineInfo) -> None:
        """One call of a block on its own inputs, bound to its own outputs."""
        args = [self.var(slot.value) for slot in op.inputs]
        self.assign(w, op, self.call_expr(op, op.inputs, args), [self.var(v) for v in op.outputs], info)

    def call_expr(self, op: CallOp, slots: list[Slot], args: list[str]) -> str:
        """`block(positional..., keyword=...)` for a leaf call, arguments given as expressions."""
        spec = op.spec
        target = self.glob(spec.target, block_name(op))
        positional = args[: spec.n_positional]
        keywords = [
            (slot.port.name, a)
            for slot, a in zip(slots[spec.n_positional :], args[spec.n_positional :], strict=True)
        ]
        if all(plain_keyword(k) for k, _ in keywords):
            parts = positional + [f"{k}={a}" for k, a in keywords]
        else:
            parts = [*positional, "**{" + ", ".join(f"{literal(k)}: {a}" for k, a in keywords) + "}"]
        return f"{target}({', '.join(parts)})"

    def assign(self, w: Writer, op: CallOp, call: str, outs: list[str], info: LineInfo) -> None:
        """Bind a call's results to `outs`, following the block's return form."""
        spec = op.spec
        note = f"  # {comment(short(op.path))}"
        if spec.returns == "value" and len(outs) == 1:
            w.line(f"{outs[0]} = {call}{note}", info)
        elif spec.returns == "tuple" and outs:
            w.line(f"{', '.join(outs)}{',' if len(outs) == 1 else ''} = {call}{note}", info)
        elif spec.returns == "mapping" and outs:
            result = self.names.new("_r")
            w.line(f"{result} = {call}{note}", info)
            for value, out in zip(op.outputs, outs, strict=True):  # a fused op's first outputs lead
                w.line(f"{out} = {result}[{literal(value.name)}]", info)
        else:
            w.line(f"{call}{note}", info)


def _torch_cat() -> Any:
    import torch  # only programs with fused calls need it

    return torch.cat

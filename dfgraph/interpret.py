"""The reference interpreter: runs a program's lowered IR op by op, each rule written once, plainly.

It is the oracle the generated code is tested against (same outputs, same errors, same paths and
iterations) and a debugging mode: `prog.interpret(**inputs)` takes what `prog(**inputs)` takes. In the
spirit of `torch.fx.Interpreter`, subclass `Interpreter` and override `call_op` or `run_loop` to trace or
change what one op does. It interprets the unfused IR of the program's definition on the CPU, serially:
`fuse=`, `device=`, `streams=` and `capture=` change how the generated code runs, never what it computes.

The semantics, one rule per construct:
- every input is checked at the boundary, as the program checks it, before any block runs;
- a block call binds its inputs (the first positionally, as its call spec says) and its outputs;
- a loop starts its carried names at their initial values and its other outputs at the value the name
  had before the loop, or at no value (an `Unset` naming the loop); each iteration runs the body, then
  the carried names take the body's final values, the other outputs the body's last values;
- a loop with `until=` ends after an iteration (after the carried names take their final values and
  the iteration_end hook) whose final value of that name is true (Python truthiness of a bool: a
  numpy or 0-d tensor bool counts as its value); its outputs are the values at that point;
- a switch reads its key and runs the first case (in case order) whose key equals it (`key == case`),
  with no event of its own: block hooks fire for the chosen case's ops only; after it, each output is
  the chosen case's final value, else the value before the switch (passed through), else an `Unset`
  naming the switch and the case (a partial output);
- a key no case has is a `BlockError` of the switch (path and loop iterations), its cause a ValueError
  listing the keys; but when the call's inputs decide the switch (`codegen.common.decided_switches`:
  its key is a program input, or the output of a root selector reading only inputs, run first of all
  the blocks), an unknown key, or a missing input the chosen case needs, is an `InputError` before any
  other block runs (after the input checks; after those selectors when it waits for one);
- a program input read only under cases (default WHEN_CHOSEN) is not required: when not given it is an
  `Unset` saying which cases need it;
- a block, loop or switch about to read a value that has none raises `InputError` saying why;
- an exception from a block (or from iterating a loop's control, testing its until= value or comparing
  a switch key) becomes a `BlockError` with the block path and every enclosing loop's iteration, the
  original as `__cause__`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from dfgraph import types
from dfgraph.boundary import bad_input_factory
from dfgraph.codegen import (
    BoundaryTest,
    InputCheck,
    Unset,
    boundary_checks,
    iterator_refusal,
    no_value_message,
    ports_text,
)
from dfgraph.codegen.common import (
    case_refusal,
    decided_switches,
    early_refusal,
    needed_message,
    run_defaults,
)
from dfgraph.diagnostics import did_you_mean
from dfgraph.errors import BlockError, InputError, block_error
from dfgraph.hooks import total
from dfgraph.ir import CallOp, LoopOp, Region, SwitchOp, Value, consumers
from dfgraph.lowering import lower
from dfgraph.ports import REQUIRED

if TYPE_CHECKING:  # the program runs this interpreter (`prog.interpret`): only its type is needed here
    from dfgraph.program import Program

Env = dict[int, Any]  # value id -> its run-time value
Loops = tuple[tuple[str, int], ...]  # (loop path, iteration) of every enclosing loop, outermost first


class Interpreter:
    """Runs one compiled program's IR directly; `run(**inputs)` answers as calling the program does."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.name = program.name
        self.lowered = lower(program.block)  # the unfused IR, lowered again from the definition
        self._inputs = [(n, v) for n, v in self.lowered.inputs.items() if v.readers]
        # the value an input not given takes: its default, or (read only under cases) a marker
        self._defaults = run_defaults(self.lowered)
        self._checks: list[tuple[Value, Any, Callable[[object], bool]]] = []
        described: list[InputCheck] = []
        for name, value in self._inputs:
            for hint, test in boundary_checks(value):
                paths = tuple(dict.fromkeys(f"{op.path}.{port.name}" for op, port in consumers(value)))
                described.append(InputCheck(name, hint, paths))
                self._checks.append((value, self._defaults[value.id], _test(test)))
        self._bad_input = bad_input_factory(self.name, described)
        self.decided = decided_switches(self.lowered)
        # selectors deciding a switch run first, before any other block (and only there)
        self.hoisted: list[CallOp] = [d.selector for d in self.decided if d.selector is not None]
        self._hoisted_ids = {op.id for op in self.hoisted}
        self.hooks = program._hooks  # dfgraph.hooks.Dispatcher, or None

    # -- the call ---------------------------------------------------------------------------------------

    def run(self, /, *args: Any, output: str | Iterable[str] | None = None, **inputs: Any) -> Any:
        """Check the inputs, run every op, select the outputs: what `program(**inputs)` returns or raises."""
        env = self.bind(args, inputs, output)
        self.decide(env, after_selectors=False)
        hooks = self.hooks
        if hooks is None:
            self.run_start(env)
        else:  # the program's hooks see the events the generated code fires, in the same order
            hooks.run_start(self.name, {name: env[value.id] for name, value in self._inputs})
            try:
                self.run_start(env)
            except Exception as exc:
                hooks.error(exc)
                raise
            outputs = {name: env[v.id] for name, v in self.lowered.outputs.items()}
            hooks.run_end(self.name, self.program._defined(outputs))
        values = tuple(env[v.id] for v in self.lowered.outputs.values())
        if output is None:
            return self.program._defined(dict(zip(self.lowered.outputs, values, strict=True)))
        return self.program._select(output, values)

    def bind(self, args: tuple[Any, ...], inputs: dict[str, Any], output: Any) -> Env:
        """The inputs checked as the program checks them (same order, same messages), defaults filled in."""
        known = dict(self._inputs)
        problems = []
        if args:
            problems.append(f"pass inputs by keyword, not by position ({len(args)} positional given)")
        problems += [f"unknown input {n!r}{did_you_mean(n, known)}" for n in inputs if n not in known]
        for p in self.program.inputs:
            if p.required and p.name not in inputs:
                readers = ", ".join(self.program._readers.get(p.name, ())) or "the graph"
                problems.append(f"missing input {p.name!r} ({types.describe(p.type)}), read by {readers}")
        if problems:
            raise InputError(
                f"{self.name}: " + "; ".join(problems) + f". Inputs: {ports_text(self.program.inputs)}"
            )
        if output is not None and (output.__class__ is not str or output not in self.lowered.outputs):
            self.program._check_output(output)
        env: Env = {value.id: inputs.get(name, self._defaults[value.id]) for name, value in self._inputs}
        for k, (value, default, test) in enumerate(self._checks):
            given = env[value.id]
            if (default is REQUIRED or given is not default) and not test(given):
                self._bad_input(k, given)
        return env

    def run_start(self, env: Env) -> None:
        """The selectors deciding switches, the checks waiting for them, then the root region."""
        for op in self.hoisted:
            self.run_call(op, env, ())
        self.decide(env, after_selectors=True)
        self.run_region(self.lowered.root, env, ())

    def decide(self, env: Env, *, after_selectors: bool) -> None:
        """The InputErrors of the switches the call decides: an unknown key; a missing input the chosen
        case needs."""
        for d in self.decided:
            if d.after_selectors != after_selectors or not self._chosen(d.within, env):
                continue
            key = env[d.key.id]
            keys = tuple(case.key for case in d.op.cases)
            if key not in keys:
                early_refusal(self.lowered.name, d)(key)
            for k, case in enumerate(d.op.cases):
                for name in d.needs[k]:
                    value = self.lowered.inputs[name]
                    if key == case.key and env[value.id] is self._defaults[value.id]:
                        raise InputError(f"{self.name}: {needed_message(d, k, name)}")

    def _chosen(self, within: tuple[tuple[SwitchOp, int], ...], env: Env) -> bool:
        """Whether the call's inputs choose every case of `within` (keys of decided switches)."""
        return all(env[op.inputs[0].value.id] == op.cases[k].key for op, k in within)

    # -- ops --------------------------------------------------------------------------------------------

    def run_region(self, region: Region, env: Env, loops: Loops) -> None:
        """Run a region's ops in order (a selector already run first is skipped)."""
        for op in region.ops:
            if isinstance(op, LoopOp):
                self.run_loop(op, env, loops)
            elif isinstance(op, SwitchOp):
                self.run_switch(op, env, loops)
            elif isinstance(op, CallOp):
                if op.id not in self._hoisted_ids:
                    self.run_call(op, env, loops)
            else:  # pragma: no cover - lowering makes only calls, loops and switches
                raise TypeError(f"unknown op {op!r}")

    def run_call(self, op: CallOp, env: Env, loops: Loops) -> None:
        """Call a block: read its inputs, fire block_start, call, bind its outputs, fire block_end."""
        args = [self.read(env, slot.value, f"block {op.path!r}") for slot in op.inputs]
        if self.hooks is not None:
            given = {s.port.name: a for s, a in zip(op.inputs, args, strict=True)}
            self.hooks.block_start(op.path, given)
        try:
            results = self.call_op(op, args)
        except Exception as exc:
            raise (error := self.block_error(exc, op.path, loops)) from error.__cause__
        env.update(zip((v.id for v in op.outputs), results, strict=True))
        if self.hooks is not None:
            made = {v.name: r for v, r in zip(op.outputs, results, strict=True)}
            self.hooks.block_end(op.path, made)

    def run_switch(self, op: SwitchOp, env: Env, loops: Loops) -> None:
        """Run the case whose key equals the key value; then each output: that case's final value, else
        the value before the switch, else an Unset naming the switch and the case."""
        key = self.read(env, op.inputs[0].value, f"switch {op.path!r}")
        try:  # the comparisons the generated if/elif makes, in the same order
            chosen = next((k for k, case in enumerate(op.cases) if key == case.key), None)
            if chosen is None:
                case_refusal(op)(key)
        except Exception as exc:
            raise (error := self.block_error(exc, op.path, loops)) from error.__cause__
        case = op.cases[chosen]
        self.run_region(case.body, env, loops)
        for out in op.outs:
            final, init = out.finals[chosen], out.init
            if final is not None:
                env[out.value.id] = env[final.id]
            elif init is not None:
                env[out.value.id] = env[init.id]
            else:
                env[out.value.id] = Unset.not_written(op.path, case.key, out.value.name)

    def read(self, env: Env, value: Value, reader: str) -> Any:
        """The value a block or loop reads; one that has none (zero iterations) is an InputError."""
        got = env[value.id]
        if isinstance(got, Unset):
            raise InputError(no_value_message(self.name, got, reader))
        return got

    def call_op(self, op: CallOp, args: list[Any]) -> list[Any]:
        """Call a leaf block on its input values; its output values, in `op.outputs` order."""
        spec = op.spec
        n = spec.n_positional
        keywords = {slot.port.name: a for slot, a in zip(op.inputs[n:], args[n:], strict=True)}
        result = spec.target(*args[:n], **keywords)
        outs = len(op.outputs)
        if spec.returns == "value" and outs == 1:
            return [result]
        if spec.returns == "tuple" and outs:
            return list(_unpacker(outs)(result))  # unpacked as the generated code does, same errors
        if spec.returns == "mapping" and outs:
            return [result[v.name] for v in op.outputs]
        return []

    def run_loop(self, op: LoopOp, env: Env, loops: Loops) -> None:
        """Run a loop: carried names start at their initial values, the body runs once per iteration."""
        control = self.read(env, op.inputs[0].value, f"loop {op.path!r}")
        for c in op.carried:
            env[c.phi.id] = env[c.init.id]
        zero = {}  # the value of each other output after zero iterations
        for out in op.outs:
            if not out.carried:
                init = out.init
                zero[out.final.id] = env[init.id] if init is not None else Unset(op.path, out.value.name)
        env.update(zero)
        hooks = self.hooks
        if hooks is not None:
            hooks.loop_start(op.path, control if op.loop.times is not None else total(control))
        for index, element in self._iterations(op, control, loops):
            assert op.index_value is not None
            env[op.index_value.id] = index
            item = None  # as the generated code reports it when the body reads no item
            if op.item_value is not None:
                env[op.item_value.id] = item = element
            if hooks is not None:
                hooks.iteration_start(op.path, index, item)
            self.run_region(op.body, env, (*loops, (op.path, index)))
            finals = [env[c.final.id] for c in op.carried]  # all read before any phi changes
            for c, final in zip(op.carried, finals, strict=True):
                env[c.phi.id] = final
            if hooks is not None:
                hooks.iteration_end(op.path, index, item, {c.name: env[c.phi.id] for c in op.carried})
            if op.until_value is not None and self.until(op, env, (*loops, (op.path, index))):
                break
        if hooks is not None:
            hooks.loop_end(op.path)
        for out in op.outs:
            source = next(c.phi for c in op.carried if c.final is out.final) if out.carried else out.final
            env[out.value.id] = env[source.id]

    def until(self, op: LoopOp, env: Env, loops: Loops) -> bool:
        """Whether the loop ends after this iteration: its until= value is true (a failing bool() is a
        BlockError of the loop)."""
        assert op.until_value is not None
        stop = self.read(env, op.until_value, f"until= of loop {op.path!r}")
        try:
            return bool(stop)
        except Exception as exc:
            raise (error := self.block_error(exc, op.path, loops)) from error.__cause__

    def _iterations(self, op: LoopOp, control: Any, loops: Loops) -> Iterator[tuple[int, Any]]:
        """(index, item) per iteration; a failure of the control itself is a BlockError of the loop."""
        loop = op.loop
        refusal = iterator_refusal(op)
        if refusal is not None and iter(control) is control:
            raise InputError(f"{self.name}: {refusal}")
        try:
            iterable: Any = range(control) if loop.times is not None else control
            # progress=True: the program's ProgressBar hook shows the bar
            steps = iter(enumerate(iterable)) if loop.over is not None else ((i, None) for i in iterable)
        except Exception as exc:
            raise (error := self.block_error(exc, op.path, loops)) from error.__cause__
        while True:
            try:
                step = next(steps)
            except StopIteration:
                return
            except Exception as exc:
                raise (error := self.block_error(exc, op.path, loops)) from error.__cause__
            yield step

    def block_error(self, exc: Exception, path: str, loops: Loops) -> BlockError:
        """The BlockError the program raises for `exc` at `path` inside `loops`."""
        return block_error(exc, path, loops)


def run(program: Program, /, *args: Any, output: str | Iterable[str] | None = None, **inputs: Any) -> Any:
    """Interpret `program` on `inputs`: `Interpreter(program).run(output=output, **inputs)`."""
    return Interpreter(program).run(*args, output=output, **inputs)


def _test(test: BoundaryTest) -> Callable[[object], bool]:
    """A boundary test as a predicate (classes become an isinstance)."""
    if isinstance(test, type | tuple):
        return functools.partial(_is_instance, classes=test)
    return test


def _is_instance(value: object, classes: type | tuple[type, ...]) -> bool:
    return isinstance(value, classes)


_UNPACKERS: dict[int, Callable[[Any], tuple[Any, ...]]] = {}


def _unpacker(n: int) -> Callable[[Any], tuple[Any, ...]]:
    """`a0, ..., an = result` as a function, so a wrong length raises what the generated assignment does."""
    fn = _UNPACKERS.get(n)
    if fn is None:
        targets = ", ".join(f"a{k}" for k in range(n)) + ("," if n == 1 else "")
        namespace: dict[str, Any] = {}
        exec(f"def unpack(r):\n    {targets} = r\n    return ({targets})\n", namespace)  # fixed source
        fn = _UNPACKERS[n] = namespace["unpack"]
    return fn


__all__ = ["Interpreter", "run"]

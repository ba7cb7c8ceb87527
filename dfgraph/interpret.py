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
- a block or loop about to read a value that has none raises `InputError` naming the loop;
- an exception from a block (or from iterating a loop's control) becomes a `BlockError` with the block
  path and every enclosing loop's iteration, the original as `__cause__`.
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
    input_default,
    iterator_refusal,
    no_value_message,
    ports_text,
)
from dfgraph.diagnostics import did_you_mean
from dfgraph.errors import BlockError, InputError, block_error
from dfgraph.hooks import total
from dfgraph.ir import CallOp, LoopOp, Region, Value, consumers
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
        self._checks: list[tuple[Value, Any, Callable[[object], bool]]] = []
        described: list[InputCheck] = []
        for name, value in self._inputs:
            for hint, test in boundary_checks(value):
                paths = tuple(dict.fromkeys(f"{op.path}.{port.name}" for op, port in consumers(value)))
                described.append(InputCheck(name, hint, paths))
                self._checks.append((value, input_default(value), _test(test)))
        self._bad_input = bad_input_factory(self.name, described)
        self.hooks = program._hooks  # dfgraph.hooks.Dispatcher, or None

    # -- the call ---------------------------------------------------------------------------------------

    def run(self, /, *args: Any, output: str | Iterable[str] | None = None, **inputs: Any) -> Any:
        """Check the inputs, run every op, select the outputs: what `program(**inputs)` returns or raises."""
        env = self.bind(args, inputs, output)
        hooks = self.hooks
        if hooks is None:
            self.run_region(self.lowered.root, env, ())
        else:  # the program's hooks see the events the generated code fires, in the same order
            hooks.run_start(self.name, {name: env[value.id] for name, value in self._inputs})
            try:
                self.run_region(self.lowered.root, env, ())
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
        env: Env = {value.id: inputs.get(name, input_default(value)) for name, value in self._inputs}
        for k, (value, default, test) in enumerate(self._checks):
            given = env[value.id]
            if (default is REQUIRED or given is not default) and not test(given):
                self._bad_input(k, given)
        return env

    # -- ops --------------------------------------------------------------------------------------------

    def run_region(self, region: Region, env: Env, loops: Loops) -> None:
        """Run a region's ops in order."""
        for op in region.ops:
            if isinstance(op, LoopOp):
                self.run_loop(op, env, loops)
            elif isinstance(op, CallOp):
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
            else:  # pragma: no cover - lowering makes only calls and loops
                raise TypeError(f"unknown op {op!r}")

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
        if hooks is not None:
            hooks.loop_end(op.path)
        for out in op.outs:
            source = next(c.phi for c in op.carried if c.final is out.final) if out.carried else out.final
            env[out.value.id] = env[source.id]

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

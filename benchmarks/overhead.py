"""Cases 1 and 2: the call overhead of dfgraph against Modular Diffusers and the same calls hand-written.

    python -m benchmarks.overhead [--quick] [--hooks]

1. Loop overhead: the guide's counter loop (two x -> x blocks, 100,000 steps) as a compiled `df.Loop`, as
   the guide's `LoopSequentialPipelineBlocks` run through a `ModularPipeline`, and as a Python loop.
2. Sequential overhead: 20 trivial blocks called 10,000 times, as a compiled `df.Sequential` (through
   `prog.run`, the fast call path, and through `prog(...)`), as 20 `ModularPipelineBlocks` in a
   `SequentialPipelineBlocks` called through `ModularPipeline.__call__`, as a hand-written function, and as
   a hand-written function with the same checks as the generated one (keyword binding, unknown and
   missing inputs, output=, the input's type, the try around the blocks). Also the time of
   `import dfgraph` in a fresh interpreter.

Hook overhead (`--hooks`, not one of the numbered cases of `python -m benchmarks`): the counter loop
without hooks, as its code was before hooks existed (the benchmark checks the source is the same), and
with a no-op hook listening to one event and to every event (dfgraph.hooks).

Every variant returns its result; the cases check that all of them agree before timing anything.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from types import MethodType
from typing import Any

import dfgraph as df
from benchmarks.results import CaseResult
from benchmarks.timing import Table, commit, measure, ratio_text, timing_table

LOOP_TARGET = 1.2
"""Case 1: dfgraph's counter loop within this factor of the hand-written loop."""

SEQUENCE_TARGET = 1.2
"""Case 2: dfgraph's 20-block sequence (`prog.run`) within this factor of the hand-written function."""

HAND = "hand-written"
CHECKED = "hand-written with the same checks"
DFGRAPH = "dfgraph"
INSTANCE = "dfgraph, prog(...) (instance call)"
MODULAR_LOOP = "Modular Diffusers (LoopSequentialPipelineBlocks)"
MODULAR_SEQUENCE = "Modular Diffusers (SequentialPipelineBlocks)"


def modular_pipelines() -> Any:
    """diffusers.modular_pipelines, imported on first use (importing diffusers takes seconds)."""
    return importlib.import_module("diffusers.modular_pipelines")


def modular_counter_pipeline(blocks: int = 2) -> Any:
    """The guide's counter loop: a `LoopWrapper` over `blocks` `LoopBlock`s (x += 1), as a ModularPipeline.

    Written as the Modular Diffusers loop guide writes it, with one change: the guide passes the second
    block as a class (`{"block1": LoopBlock(), "block2": LoopBlock}`), which diffusers 0.42's
    `LoopSequentialPipelineBlocks.from_blocks_dict` keeps uninstantiated, so building the pipeline fails
    (`'property' object is not iterable`); every block is passed as an instance here.
    """
    import torch

    mp = modular_pipelines()
    InputParam, OutputParam = mp.InputParam, mp.OutputParam
    LoopSequentialPipelineBlocks: Any = mp.LoopSequentialPipelineBlocks
    ModularPipelineBlocks: Any = mp.ModularPipelineBlocks

    class LoopWrapper(LoopSequentialPipelineBlocks):  # type: ignore[misc]
        model_name = "test"

        @property
        def description(self) -> str:
            return "I'm a loop!!"

        @property
        def loop_inputs(self) -> list[Any]:
            return [InputParam(name="num_steps")]

        @torch.no_grad()
        def __call__(self, components: Any, state: Any) -> Any:
            block_state = self.get_block_state(state)
            # Loop structure - can be customized to your needs
            for i in range(block_state.num_steps):
                # loop_step executes all registered blocks in sequence
                components, block_state = self.loop_step(components, block_state, i=i)
            self.set_block_state(state, block_state)
            return components, state

    class LoopBlock(ModularPipelineBlocks):  # type: ignore[misc]
        model_name = "test"

        @property
        def inputs(self) -> list[Any]:
            return [InputParam(name="x")]

        @property
        def intermediate_outputs(self) -> list[Any]:
            # outputs produced by this block
            return [OutputParam(name="x")]

        @property
        def description(self) -> str:
            return "I'm a block used inside the `LoopWrapper` class"

        def __call__(self, components: Any, block_state: Any, i: int) -> Any:
            block_state.x += 1
            return components, block_state

    loop = LoopWrapper.from_blocks_dict({f"block{k + 1}": LoopBlock() for k in range(blocks)})
    return loop.init_pipeline()


def modular_sequence_pipeline(blocks: int) -> Any:
    """`blocks` trivial ModularPipelineBlocks (x -> x + 1) in a SequentialPipelineBlocks, as a pipeline."""
    mp = modular_pipelines()
    InputParam, OutputParam = mp.InputParam, mp.OutputParam
    ModularPipelineBlocks: Any = mp.ModularPipelineBlocks

    class AddOne(ModularPipelineBlocks):  # type: ignore[misc]
        model_name = "test"

        @property
        def description(self) -> str:
            return "x -> x + 1"

        @property
        def inputs(self) -> list[Any]:
            return [InputParam(name="x")]

        @property
        def intermediate_outputs(self) -> list[Any]:
            return [OutputParam(name="x")]

        def __call__(self, components: Any, state: Any) -> Any:
            block_state = self.get_block_state(state)
            block_state.x = block_state.x + 1
            self.set_block_state(state, block_state)
            return components, state

    sequence = mp.SequentialPipelineBlocks.from_blocks_dict({f"b{k}": AddOne() for k in range(blocks)})
    return sequence.init_pipeline()


def counter_case(steps: int, *, modular: bool = True) -> dict[str, Callable[[], Any]]:
    """The guide's two-block counter loop, `steps` steps from x = 0: each variant returns the final x."""

    def inc(x: int) -> int:
        return x + 1

    block = df.block(outputs="x")(inc)
    prog = df.compile(df.Loop(df.Sequential(block, block), times="num_steps"))

    def hand() -> int:
        x = 0
        for _ in range(steps):
            x = inc(x)
            x = inc(x)
        return x

    variants: dict[str, Callable[[], Any]] = {
        HAND: hand,
        DFGRAPH: lambda: prog.run(num_steps=steps, x=0, output="x"),
    }
    if modular:
        pipe = modular_counter_pipeline()
        variants[MODULAR_LOOP] = lambda: pipe(num_steps=steps, x=0, output="x")
    return variants


NO_HOOKS = "dfgraph, no hooks"
BEFORE_HOOKS = "dfgraph's code before hooks existed"
ONE_EVENT = "dfgraph, a no-op hook on iteration_end"
EVERY_EVENT = "dfgraph, a no-op hook on every event"

COUNTER_SOURCE = """\
def __call__(self, /, *args, num_steps=_MISSING, x=_MISSING, output=None, **unknown):
    if args or unknown or num_steps is _MISSING or x is _MISSING:
        return self._slow_call(args, unknown, output, {'num_steps': num_steps, 'x': x})
    if output is not None and (output.__class__ is not str or output not in _OUTPUTS): \
output = self._check_output(output)
    if not _isinstance(num_steps, int): _bad_input(0, num_steps)
    if not _isinstance(x, int): _bad_input(1, x)
    try:
        # loop loop: times=num_steps, carries x
        for i in _range(num_steps):
            x_1 = inc(x)  # loop/inc
            x = inc(x_1)  # loop/inc_2
    except Exception as exc:
        self._reraise(exc)
    if output is None: return {'x': x}
    if output == 'x': return x
    return self._select(output, (x,))
"""
"""The counter loop's generated source as of commit 8c0405e, before hooks existed."""


class OneEvent(df.Hook):
    """A no-op hook listening to one event: the generated code calls it once per iteration."""

    def iteration_end(self, path: str, index: int, item: Any, carried: Mapping[str, Any]) -> None:
        """Nothing."""


class EveryEvent(OneEvent):
    """A no-op hook listening to every event: calls around each block and iteration."""

    def run_start(self, program: str, inputs: Mapping[str, Any]) -> None:
        """Nothing."""

    def run_end(self, program: str, outputs: Mapping[str, Any]) -> None:
        """Nothing."""

    def block_start(self, path: str, inputs: Mapping[str, Any]) -> None:
        """Nothing."""

    def block_end(self, path: str, outputs: Mapping[str, Any]) -> None:
        """Nothing."""

    def loop_start(self, path: str, total: int | None) -> None:
        """Nothing."""

    def iteration_start(self, path: str, index: int, item: Any) -> None:
        """Nothing."""

    def loop_end(self, path: str) -> None:
        """Nothing."""

    def error(self, exc: Exception) -> None:
        """Nothing."""


def hook_case(steps: int) -> dict[str, Callable[[], Any]]:
    """The counter loop without hooks, as before hooks existed, and with no-op hooks; each returns x."""

    def inc(x: int) -> int:
        return x + 1

    block = df.block(outputs="x")(inc)
    prog = df.compile(df.Loop(df.Sequential(block, block), times="num_steps"))
    if prog.source.rstrip() != COUNTER_SOURCE.rstrip():
        raise AssertionError(f"the counter loop's source changed:\n{prog.source}")
    # the code before hooks, run on the same program (its globals are the generated namespace)
    namespace = dict(prog.run.__func__.__globals__)  # type: ignore[attr-defined]
    exec(COUNTER_SOURCE, namespace)  # a fixed source, above
    before = MethodType(namespace["__call__"], prog)
    one, every = prog.with_hooks(OneEvent()), prog.with_hooks(EveryEvent())

    def hand() -> int:
        x = 0
        for _ in range(steps):
            x = inc(x)
            x = inc(x)
        return x

    return {
        HAND: hand,
        BEFORE_HOOKS: lambda: before(num_steps=steps, x=0, output="x"),
        NO_HOOKS: lambda: prog.run(num_steps=steps, x=0, output="x"),
        ONE_EVENT: lambda: one.run(num_steps=steps, x=0, output="x"),
        EVERY_EVENT: lambda: every.run(num_steps=steps, x=0, output="x"),
    }


def hook_overhead(steps: int = 100_000, repeats: int = 15) -> CaseResult:
    """The cost of hooks per block: none without hooks; a call per event some hook listens to."""
    variants = hook_case(steps)
    check_agree(variants, 2 * steps)
    stats = measure(variants, repeats)
    table = timing_table(f"counter loop: two x->x blocks, {steps:,} steps ({repeats} runs each)", stats, HAND)
    blocks = 2 * steps

    def per_block(name: str) -> float:
        return (stats[name].median - stats[BEFORE_HOOKS].median) / blocks * 1e9

    verdict = (
        f"no hooks {per_block(NO_HOOKS):+.1f} ns per block against the code before hooks (the same source); "
        f"a no-op hook on iteration_end {per_block(ONE_EVENT):+.0f} ns, on every event "
        f"{per_block(EVERY_EVENT):+.0f} ns per block"
    )
    notes = [
        "without hooks the generated source is byte for byte the one before hooks existed (checked "
        "before timing), so the difference between those two rows is the noise of the measurement",
        "ns per block: (median of the variant - median of the code before hooks) / (2 blocks x steps)",
        "the blocks are pure Python (no torch), so the number of torch threads plays no part",
        f"every variant returns x = {2 * steps:,} (checked before timing)",
    ]
    target = "no hooks: 0 ns added per block (the source before hooks)"
    return CaseResult(6, "Hook overhead", target, None, verdict, [table], notes, unjudged="see the numbers")


def checked_source(blocks: int) -> str:
    """A hand-written function with the checks the generated one makes, calling b0 .. b{blocks-1}."""
    calls = "".join(f"        x = b{k}(x)\n" for k in range(blocks))
    return (
        "def checked(*args, x=MISSING, output=None, **unknown):\n"
        "    if args or unknown or x is MISSING:\n"
        "        raise TypeError('pass x by keyword')\n"
        "    if output is not None and (output.__class__ is not str or output not in OUTPUTS):\n"
        "        raise TypeError('unknown output')\n"
        "    if not isinstance(x, int):\n"
        "        raise TypeError('x must be int')\n"
        "    try:\n"
        f"{calls}"
        "    except Exception as exc:\n"
        "        raise RuntimeError('a block failed') from exc\n"
        "    if output is None: return {'x': x}\n"
        "    if output == 'x': return x\n"
        "    return {name: x for name in output}\n"
    )


def sequence_case(blocks: int, calls: int, *, modular: bool = True) -> dict[str, Callable[[], Any]]:
    """`blocks` trivial blocks in sequence, called `calls` times from x = 0: each returns the last x."""
    namespace: dict[str, Any] = {"MISSING": object(), "OUTPUTS": frozenset({"x"})}
    for k in range(blocks):
        exec(f"def b{k}(x: int) -> int:\n    return x + 1", namespace)
    fns = [namespace[f"b{k}"] for k in range(blocks)]
    prog = df.compile(df.Sequential(*[df.block(outputs="x")(f) for f in fns]))
    body = "".join(f"    x = b{k}(x)\n" for k in range(blocks))
    exec(f"def pipeline(x):\n{body}    return x\n", namespace)
    exec(checked_source(blocks), namespace)
    pipeline, checked = namespace["pipeline"], namespace["checked"]

    def hand() -> Any:
        out = None
        for _ in range(calls):
            out = pipeline(0)
        return out

    def hand_checked() -> Any:
        out = None
        for _ in range(calls):
            out = checked(x=0, output="x")
        return out

    def compiled() -> Any:
        out = None
        for _ in range(calls):
            out = prog.run(x=0, output="x")
        return out

    def instance() -> Any:
        out = None
        for _ in range(calls):
            out = prog(x=0, output="x")
        return out

    variants: dict[str, Callable[[], Any]] = {
        HAND: hand,
        CHECKED: hand_checked,
        DFGRAPH: compiled,
        INSTANCE: instance,
    }
    if modular:
        pipe = modular_sequence_pipeline(blocks)

        def through_modular() -> Any:
            out = None
            for _ in range(calls):
                out = pipe(x=0, output="x")
            return out

        variants[MODULAR_SEQUENCE] = through_modular
    return variants


def import_seconds(module: str, repeats: int = 5) -> float:
    """The fastest of `repeats` fresh interpreters at `import module` (`python -X importtime`), seconds."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        run = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        pattern = rf"^import time:\s*\d+ \|\s*(\d+) \| {re.escape(module)}$"
        found = re.search(pattern, run.stderr, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no import time for {module!r} in: {run.stderr[-500:]}")
        best = min(best, int(found.group(1)) / 1e6)
    return best


def imports_networkx() -> bool:
    """Whether `import dfgraph` imports networkx (it should not: the schedule imports it on first use)."""
    code = "import sys, dfgraph; print('networkx' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return run.stdout.strip() == "True"


def results_of(variants: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run every variant once; returns name -> result."""
    return {name: fn() for name, fn in variants.items()}


def check_agree(variants: dict[str, Callable[[], Any]], expected: Any) -> None:
    """Raise AssertionError unless every variant returns `expected`."""
    got = results_of(variants)
    wrong = {name: value for name, value in got.items() if value != expected}
    if wrong:
        raise AssertionError(f"variants disagree: expected {expected!r}, got {wrong!r}")


def report(title: str, variants: dict[str, Callable[[], Any]], repeats: int) -> Table:
    """Time the variants interleaved, print their table (ratios to hand-written) and return it."""
    table = timing_table(f"{title} ({repeats} runs each)", measure(variants, repeats), HAND)
    print(table.text())
    return table


def _judge(
    title: str,
    variants: dict[str, Callable[[], Any]],
    repeats: int,
    target: float,
    others: dict[str, str],
) -> tuple[Table, bool, str]:
    """Time the variants; the table, whether dfgraph's ratio to hand-written meets `target`, the verdict."""
    stats = measure(variants, repeats)
    table = timing_table(f"{title} ({repeats} runs each)", stats, HAND)
    base = stats[HAND].median
    ratio = stats[DFGRAPH].median / base
    extra = [
        f"{label} {ratio_text(stats[name].median / base)}" for name, label in others.items() if name in stats
    ]
    verdict = f"dfgraph {ratio_text(ratio)} hand-written" + (f" ({'; '.join(extra)})" if extra else "")
    return table, ratio <= target, verdict


def loop_overhead(steps: int = 100_000, repeats: int = 15, *, modular: bool = True) -> CaseResult:
    """Case 1: the counter loop; checks the variants agree, times them, judges dfgraph against 1.2x."""
    variants = counter_case(steps, modular=modular)
    check_agree(variants, 2 * steps)
    title = f"counter loop: two x->x blocks, {steps:,} steps"
    table, met, verdict = _judge(title, variants, repeats, LOOP_TARGET, {MODULAR_LOOP: "Modular Diffusers"})
    notes = [
        "Modular Diffusers: the loop guide's LoopWrapper and LoopBlock, run by ModularPipeline.__call__; "
        "from_blocks_dict gets two LoopBlock instances (the guide's class-valued second entry fails to "
        "build a pipeline in diffusers 0.42: from_blocks_dict keeps it uninstantiated)",
        f"every variant returns x = {2 * steps:,} (checked before timing)",
    ]
    target = f"dfgraph within {LOOP_TARGET}x of hand-written"
    return CaseResult(1, "Loop overhead", target, met, verdict, [table], notes)


def sequential_overhead(
    blocks: int = 20, calls: int = 10_000, repeats: int = 15, *, modular: bool = True
) -> CaseResult:
    """Case 2: a sequence of trivial blocks called many times; judges `prog.run(...)` against 1.2x."""
    variants = sequence_case(blocks, calls, modular=modular)
    check_agree(variants, blocks)
    title = f"sequence: {blocks} trivial blocks, {calls:,} calls"
    others = {CHECKED: "same checks", INSTANCE: "`prog(...)`", MODULAR_SEQUENCE: "Modular Diffusers"}
    table, met, verdict = _judge(title, variants, repeats, SEQUENCE_TARGET, others)
    imported = import_seconds("dfgraph", repeats=min(repeats, 5))
    networkx = import_seconds("networkx", repeats=min(repeats, 5))
    eager = "imports networkx" if imports_networkx() else "does not import networkx"
    verdict += f"; `import dfgraph` {imported * 1e3:.0f} ms"
    notes = [
        "the target is judged on `prog.run(x=0, output='x')`, the fast call path: the generated function "
        "bound to the program; `prog(...)` runs the same function, but CPython first builds a keyword "
        "dict to call an instance",
        "hand-written: one function calling the blocks positionally; hand-written with the same checks: "
        "the generated function's checks written by hand (keywords, unknown and missing inputs, output=, "
        "isinstance of x, try around the blocks); Modular Diffusers: `pipe(x=0, output='x')` on the "
        "blocks' ModularPipeline (each block: get_block_state, x + 1, set_block_state)",
        f"`import dfgraph`: {imported * 1e3:.0f} ms (fastest of {min(repeats, 5)} fresh interpreters, "
        f"`python -X importtime`); it {eager}, which takes {networkx * 1e3:.0f} ms on its own and is "
        "imported when a schedule is first computed",
        f"every variant returns x = {blocks} (checked before timing)",
    ]
    target = f"dfgraph within {SEQUENCE_TARGET}x of hand-written"
    return CaseResult(2, "Sequential overhead", target, met, verdict, [table], notes)


def main(argv: Sequence[str] | None = None) -> None:
    """Run cases 1 and 2 and print their tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--hooks", action="store_true", help="only the hook overhead (its markdown too)")
    args = parser.parse_args(argv)
    steps, calls, repeats = (1_000, 100, 3) if args.quick else (100_000, 10_000, 15)
    here = commit()
    if args.hooks:
        result = hook_overhead(steps, repeats)
        print(result.text(here), flush=True)
        print(f"\n{result.markdown()}")
        return
    print(loop_overhead(steps, repeats).text(here), flush=True)
    print()
    print(sequential_overhead(20, calls, repeats).text(here))


if __name__ == "__main__":
    main()

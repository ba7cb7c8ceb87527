"""Property tests of switches and until= at run time: random programs (nested switches, switches in loops,
keys no case has, zero-iteration loops, partial outputs, until=) give the same outputs and errors in the
generated code, in the reference interpreter and in a hand-written Python `if` evaluation below, which
walks the random structure itself (never the IR, never dfgraph)."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dfgraph as df
from dfgraph.testing.generators import (
    CASE_KEYS,
    MODULUS,
    SWITCH_COUNTS,
    SWITCH_INPUTS,
    SWITCH_KEYS,
    UNKNOWN_KEY,
    SLeaf,
    SLoop,
    SSelector,
    SSeq,
    SSpec,
    SSwitch,
    SUntil,
    SwitchProgram,
    switch_programs,
)

PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the oracle: the random program evaluated as plain Python ------------------------------------------


class RefusedError(Exception):
    """What the oracle says the call raises: ('InputError',) or ('BlockError', path, iterations)."""

    def __init__(self, *what: Any) -> None:
        super().__init__(*what)
        self.what = what


def writes(spec: SSpec) -> set[str]:
    """The names a block writes anywhere inside it (a selector's key is not visible outside)."""
    if isinstance(spec, SLeaf):
        return {spec.dst}
    if isinstance(spec, SUntil):
        return {"stop"}
    if isinstance(spec, SSeq):
        return set().union(*(writes(c) for c in spec.children))
    if isinstance(spec, SLoop):
        return writes(spec.body)
    return set().union(*(writes(case) for _, case in spec.cases))


@attrs.frozen
class Early:
    """A switch the call's inputs decide: its path, the enclosing cases and whether a selector decides."""

    switch: SSwitch
    path: str
    within: tuple[tuple[SSwitch, str], ...]
    after_selector: bool


class Oracle:
    """Runs the structure on a dict of names: `if key == ...` for a switch, `for` (and `break`) for a loop."""

    def __init__(self, root: SSeq, inputs: dict[str, Any]) -> None:
        self.root = root
        self.inputs = inputs
        self.early: list[Early] = []
        self.keys: dict[int, Any] = {}  # id(switch) -> its key, for the switches decided before the run
        self.hoisted: set[int] = set()

    def run(self) -> dict[str, Any]:
        """The outputs of the call, or RefusedError."""
        self.collect(self.root, "root", (), True)
        for early in self.early:  # keys given as inputs: checked right after the input checks
            if not early.after_selector:
                self.check(early)
        for early in self.early:  # the selectors deciding switches run first of all blocks
            on = early.switch.on
            if isinstance(on, SSelector):
                self.keys[id(early.switch)] = self.select(on, self.inputs, f"{early.path}/{on.name}", ())
                self.hoisted.add(id(early.switch))
        for early in self.early:
            if early.after_selector:
                self.check(early)
        env = dict(self.inputs)
        self.seq(self.root, env, "root", (), set(self.inputs))
        return {name: env[name] for name in sorted(writes(self.root)) if name in env}

    def collect(
        self, spec: SSpec, path: str, within: tuple[tuple[SSwitch, str], ...] | None, root: bool
    ) -> None:
        """The switches decided before the run, in program order (`within` None: under an undecided case)."""
        if isinstance(spec, SSeq):
            for child in spec.children:
                self.collect(child, f"{path}/{child.name}", within, root)
        elif isinstance(spec, SLoop):
            for child in spec.body.children:
                self.collect(child, f"{path}/{child.name}", within, False)
        elif isinstance(spec, SSwitch):
            on = spec.on
            decided = within is not None and (
                isinstance(on, str) or (root and on.src in SWITCH_INPUTS)  # a selector reading inputs
            )
            inner: tuple[tuple[SSwitch, str], ...] | None = None
            if decided:
                assert within is not None
                after = isinstance(on, SSelector) or any(
                    e.after_selector for e in self.early if any(e.switch is s for s, _ in within)
                )
                self.early.append(Early(spec, path, within, after))
            for key, case in spec.cases:
                inner = (*within, (spec, key)) if decided and within is not None else None
                for child in case.children:
                    self.collect(child, f"{path}/{key}/{child.name}", inner, False)

    def key_of(self, switch: SSwitch) -> Any:
        on = switch.on
        return self.inputs[on] if isinstance(on, str) else self.keys[id(switch)]

    def check(self, early: Early) -> None:
        chosen = all(self.key_of(s) == key for s, key in early.within)
        if chosen and self.key_of(early.switch) not in [key for key, _ in early.switch.cases]:
            raise RefusedError("InputError")

    def read(self, env: dict[str, Any], name: str) -> Any:
        if name not in env:
            raise RefusedError("InputError")  # a loop ran zero times, or a case did not write it
        return env[name]

    def select(self, on: SSelector, env: dict[str, Any], path: str, loops: tuple[Any, ...]) -> str:
        value = self.read(env, on.src)
        if on.boom is not None and value % 13 == on.boom:
            raise RefusedError("BlockError", path, loops)
        return on.table[value % len(on.table)]

    def seq(
        self, spec: SSeq, env: dict[str, Any], path: str, loops: tuple[Any, ...], seen: set[str]
    ) -> set[str]:
        """Run the children; `seen`: the names that have a value (maybe none at run time) at this point."""
        for child in spec.children:
            seen = self.one(child, env, f"{path}/{child.name}", loops, seen)
        return seen

    def one(
        self, spec: SSpec, env: dict[str, Any], path: str, loops: tuple[Any, ...], seen: set[str]
    ) -> set[str]:
        if isinstance(spec, SLeaf):
            value = self.read(env, spec.src)
            if spec.boom is not None and value % 13 == spec.boom:
                raise RefusedError("BlockError", path, loops)
            env[spec.dst] = (value * spec.mul + spec.add) % MODULUS
            return seen | {spec.dst}
        if isinstance(spec, SUntil):
            env["stop"] = self.read(env, spec.src) % 3 == 0
            return seen | {"stop"}
        if isinstance(spec, SLoop):
            for name in writes(spec.body) - seen:
                env.pop(name, None)  # no value before the loop: none after zero iterations
            for i in range(self.read(env, spec.count)):
                self.seq(spec.body, env, path, (*loops, (path, i)), seen)
                if spec.until and env["stop"]:
                    break
            return seen | writes(spec.body)
        assert isinstance(spec, SSwitch)
        if id(spec) in self.hoisted:
            key = self.keys[id(spec)]
        elif isinstance(spec.on, str):
            key = self.read(env, spec.on)
        else:
            key = self.select(spec.on, env, f"{path}/{spec.on.name}", loops)
        cases = dict(spec.cases)
        if key not in cases:
            raise RefusedError("BlockError", path, loops)
        chosen = cases[key]
        self.seq(chosen, env, f"{path}/{key}", loops, seen)
        for name in set().union(*(writes(c) for c in cases.values())) - seen - writes(chosen):
            env.pop(name, None)  # written by other cases only, no value before: none now
        return seen | set().union(*(writes(c) for c in cases.values()))


def oracle(program: SwitchProgram, inputs: dict[str, Any]) -> tuple[Any, ...]:
    """('ok', outputs), ('InputError',) or ('BlockError', path, iterations)."""
    try:
        return ("ok", Oracle(program.spec, inputs).run())
    except RefusedError as refused:
        return refused.what


def engine(fn: Any, inputs: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    """The same shape as the oracle's answer, and the full repr of the error (for engine == engine)."""
    try:
        return ("ok", fn(**inputs)), ""
    except df.BlockError as error:
        full = f"{error!r} {error.path} {error.iterations} {error.__cause__!r}"
        return ("BlockError", error.path, error.iterations), full
    except df.InputError as error:
        return ("InputError",), repr(error)


def switch_inputs(prog: df.Program) -> st.SearchStrategy[dict[str, Any]]:
    """Every input the program reads: ints, loop counts 0..3, keys mostly some case's."""
    names = {p.name for p in prog.inputs}
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name in names:
        if name in SWITCH_COUNTS:
            fields[name] = st.integers(0, 3)
        elif name in SWITCH_KEYS:
            fields[name] = st.sampled_from([*CASE_KEYS, *CASE_KEYS, UNKNOWN_KEY])
        else:
            fields[name] = st.integers(0, MODULUS - 1)
    return st.fixed_dictionaries(fields)


# -- the properties --------------------------------------------------------------------------------------


@PROPS
@given(switch_programs(), st.data())
def test_generated_code_interpreter_and_a_hand_written_if_agree(
    program: SwitchProgram, data: st.DataObject
) -> None:
    """Outputs and errors (kind, path, iterations) of the three agree; the engines' messages too."""
    prog = df.compile(program.block)
    inputs = data.draw(switch_inputs(prog))
    compiled, compiled_text = engine(prog, inputs)
    interpreted, interpreted_text = engine(prog.interpret, inputs)
    assert (compiled, compiled_text) == (interpreted, interpreted_text)
    assert compiled == oracle(program, inputs), program.text


@PROPS
@given(switch_programs(), st.data())
def test_inputs_only_cases_read_may_be_left_out_in_both_engines(
    program: SwitchProgram, data: st.DataObject
) -> None:
    """Leaving out inputs that are not required: both engines answer the same (an InputError when a chosen
    case needs one, before any block when the inputs decide it); with all given, nothing is missing."""
    prog = df.compile(program.block)
    inputs = data.draw(switch_inputs(prog))
    optional = sorted(p.name for p in prog.inputs if not p.required)
    left_out = data.draw(st.lists(st.sampled_from(optional), unique=True)) if optional else []
    given_inputs = {n: v for n, v in inputs.items() if n not in left_out}
    assert engine(prog, given_inputs) == engine(prog.interpret, given_inputs)
    full, _ = engine(prog, inputs)
    answer, _ = engine(prog, given_inputs)
    if full[0] == "ok":  # leaving out inputs only turns an answer into an InputError
        assert answer in (full, ("InputError",)), program.text

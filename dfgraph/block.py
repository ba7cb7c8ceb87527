"""Blocks: `@df.block` turns a function or a class into a block; ports come from the signature."""

from __future__ import annotations

import contextlib
import functools
import inspect
import keyword
import sys
import typing
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import (
    Any,
    Generic,
    Literal,
    ParamSpec,
    Protocol,
    SupportsIndex,
    TypeVar,
    overload,
    runtime_checkable,
)

import attrs

from dfgraph import types
from dfgraph.diagnostics import Diagnostic, Report, Severity
from dfgraph.errors import WiringError
from dfgraph.ports import REQUIRED, Port, split_ignore

Returns = Literal["value", "tuple", "mapping", "none"]
P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)


@runtime_checkable
class Block(Protocol):
    """Anything with `name`, `inputs`, `outputs` that, called with its inputs as keywords, returns them."""

    @property
    def name(self) -> str:
        """The block's name, the last segment of its path."""

    @property
    def inputs(self) -> tuple[Port, ...]:
        """The input ports."""

    @property
    def outputs(self) -> tuple[Port, ...]:
        """The output ports."""

    # (*args: Any, **kwargs: Any) is how mypy spells "any signature": a @df.block function keeps its own
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the block (a composite takes its inputs as keywords and returns a mapping)."""


@attrs.frozen
class Note:
    """A warning about a block's own definition (unannotated or unsupported annotation)."""

    code: str
    port: str
    message: str
    hint: str = ""  # how to fix it; empty: the code's usual hint


@attrs.frozen
class CallSpec:
    """How compiled code calls a leaf block: callable, how many inputs go positionally, return form."""

    target: Callable[..., Any]
    n_positional: int
    returns: Returns


def call_spec(blk: object) -> CallSpec:
    """How to call a block fast; plain protocol blocks take keywords and return a mapping."""
    with contextlib.suppress(Exception):  # a proxy's __getattr__ may raise anything: use the protocol
        spec = getattr(blk, "__dfgraph_call__", None)
        if callable(spec):
            result = spec()
            if isinstance(result, CallSpec):
                return result
    return CallSpec(typing.cast(Callable[..., Any], blk), 0, "mapping")


def block_notes(blk: object) -> tuple[Note, ...]:
    """The definition warnings recorded when the block was made."""
    try:
        notes = getattr(blk, "__dfgraph_notes__", ())
    except Exception:  # a proxy's __getattr__ may raise anything: no notes
        return ()
    return notes if isinstance(notes, tuple) else ()


def definition_error(path: str, message: str, hint: str = "") -> WiringError:
    """A WiringError for a malformed definition (DF006), raised where the definition is written."""
    return WiringError(Report((Diagnostic("DF006", Severity.ERROR, path, message, hint),)))


def safe_repr(obj: object, limit: int = 60) -> str:
    """`repr(obj)`, shortened; never raises (a failing `__repr__` is named instead)."""
    try:
        text = repr(obj)
    except Exception as exc:
        text = f"<{type(obj).__name__} object (repr() raised {type(exc).__name__})>"
    if not isinstance(text, str):  # pragma: no cover -- repr() itself enforces str
        text = object.__repr__(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def name_problem(name: object, *, identifier: bool = False) -> str | None:
    """Why `name` is not a name, or None: a name is a non-empty printable str that NFKC normalization
    leaves unchanged (Python reads identifiers after NFKC); with `identifier`, also a non-keyword
    identifier."""
    if not isinstance(name, str):
        return f"a name is a string, got {type(name).__name__} {safe_repr(name)}"
    name = str.__str__(name)  # a str subclass's own methods play no part
    if not name:
        return "a name cannot be empty"
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        return (
            f"name {safe_repr(name)} changes under NFKC normalization (Python reads it as "
            f"{safe_repr(normal)}); write {safe_repr(normal)}"
        )
    if not name.isprintable():
        return f"name {safe_repr(name)} holds a character that is not printable (a line break, a control)"
    if identifier and not name.isidentifier():
        return f"name {safe_repr(name)} is not a Python identifier"
    if identifier and keyword.iskeyword(name):
        return f"name {safe_repr(name)} is a Python keyword"
    return None


def name_tuple(value: object, what: str, where: str, *, identifier: bool = False) -> tuple[str, ...]:
    """A tuple of names from a list, tuple or other iterable of names; a bare string is refused (DF006),
    since it would be read as its characters."""
    if isinstance(value, str):
        raise definition_error(
            where,
            f"{what} takes a tuple of names, got the string {safe_repr(value)}",
            f"write {what}({value!r},) for one name",
        )
    try:
        items = tuple(typing.cast(Iterable[object], value))  # anything else raises TypeError here
    except Exception:
        raise definition_error(
            where, f"{what} takes a tuple of names, got {type(value).__name__} {safe_repr(value)}"
        ) from None
    for item in items:
        problem = name_problem(item, identifier=identifier)
        if problem is not None:
            raise definition_error(where, f"{what}: {problem}")
    return tuple(str.__str__(item) for item in items)


class FunctionBlock(Generic[P, R]):
    """A block made from a function; calling it calls the function unchanged (typed as the function:
    `FunctionBlock[P, R]` keeps its parameters `P` and return type `R`)."""

    __slots__ = ("__dict__", "_spec", "batch", "fn", "inputs", "mutates", "name", "notes", "outputs")
    fn: Callable[P, R]
    name: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    mutates: tuple[str, ...]
    batch: tuple[str, ...]
    notes: tuple[Note, ...]

    def __init__(
        self,
        fn: Callable[P, R],
        name: str,
        inputs: tuple[Port, ...],
        outputs: tuple[Port, ...],
        spec: CallSpec,
        notes: tuple[Note, ...],
        mutates: tuple[str, ...],
    ) -> None:
        self.fn = fn
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self._spec = spec
        self.notes = notes
        self.mutates = mutates
        self.batch = ()  # set by @df.block(batch=...)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the wrapped function as it is (blocks stay unit-testable as plain functions)."""
        return self.fn(*args, **kwargs)

    def __dfgraph_call__(self) -> CallSpec:
        """The fast-call description used by the code generator."""
        return self._spec

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        """Pickled by reference when it is the module global its function was (`@df.block` on a
        module-level def), as functions are; otherwise by value."""
        qualname = str(getattr(self.fn, "__qualname__", ""))
        found: Any = sys.modules.get(str(getattr(self.fn, "__module__", "")))
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is self:
            return qualname
        return super().__reduce_ex__(protocol)

    @property
    def __dfgraph_notes__(self) -> tuple[Note, ...]:
        return self.notes

    def __repr__(self) -> str:
        ins = ", ".join(p.name for p in self.inputs)
        outs = ", ".join(p.name for p in self.outputs)
        return f"<block {self.name}({ins}) -> ({outs})>"


class BlockDecorator(Protocol):
    """What `@df.block(...)` with arguments returns: a decorator typed like `@df.block` itself."""

    @overload
    def __call__(self, target: C, /) -> C: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, target: Callable[P, R], /) -> FunctionBlock[P, R]: ...


# A decorated class stays the class (its instances are the blocks); a function becomes a FunctionBlock
# typed with its own signature. A class is also a callable, hence the ignored overlap of the two.
@overload
def block(fn: C, /) -> C: ...  # type: ignore[overload-overlap]
@overload
def block(fn: Callable[P, R], /) -> FunctionBlock[P, R]: ...
@overload
def block(
    *,
    outputs: str | tuple[str, ...] | list[str] | None = None,
    name: str | None = None,
    mutates: tuple[str, ...] = (),
    batch: tuple[str, ...] = (),
    ignore: str | tuple[str, ...] | list[str] | Mapping[str, str | tuple[str, ...] | list[str]] = (),
) -> BlockDecorator: ...
def block(
    fn: Any = None,
    /,
    *,
    outputs: str | tuple[str, ...] | list[str] | None = None,
    name: str | None = None,
    mutates: tuple[str, ...] = (),
    batch: tuple[str, ...] = (),
    ignore: str | tuple[str, ...] | list[str] | Mapping[str, str | tuple[str, ...] | list[str]] = (),
) -> Any:
    """Make a block from a function, or from a class whose instances are blocks (ports from `__call__`).

    `outputs="x"` names the single output; `outputs=("a", "b")` names the items of a `tuple[...]` return;
    with no `outputs=`, a `NamedTuple` return annotation gives the outputs, `-> None` gives none, and any
    other return annotation gives one output named after the function. `mutates` names shared resources
    the block changes (blocks that mutate the same resource keep their relative order). `batch` names
    the tensor inputs that may be stacked along dim 0, making the block batchable: with
    `df.compile(..., fuse=True)`, two independent calls that share every other input become one call on
    the concatenated batch, whose outputs are split back along dim 0. `ignore` suppresses diagnostic
    codes on the findings at this block (`("DF001",)`), or at single ports (`{"t": ("DF001",)}`).
    """

    scope = dict(sys._getframe(1).f_locals)  # resolves annotations naming classes local to the caller

    def decorate(target: Any) -> Any:
        made: Any
        resources = _check_arguments(target, outputs, name, mutates, batch)
        if inspect.isclass(target):
            made = _decorate_class(target, outputs, name, resources, scope)
        elif callable(target):
            made = _make_function_block(target, outputs, name, resources, scope)
        else:
            raise definition_error(
                safe_repr(target), f"@df.block needs a function or a class, got {type(target).__name__}"
            )
        if isinstance(batch, str):
            unknown: list[object] = [batch]
        else:
            try:
                unknown = [b for b in batch if b not in {p.name for p in made.inputs}]
            except TypeError:  # not iterable, or unhashable items
                unknown = [batch]
        if unknown:
            raise definition_error(
                made.name,
                f"batch= must be a tuple of input names, got {safe_repr(batch)}",
                f"the inputs are: {', '.join(p.name for p in made.inputs)}",
            )
        made.batch = tuple(batch)
        made.__dfgraph_ignore__, made.inputs, made.outputs = split_ignore(ignore, made.inputs, made.outputs)
        return made

    return decorate(fn) if fn is not None else decorate


def _check_arguments(
    target: Any, outputs: object, name: object, mutates: object, batch: object
) -> tuple[str, ...]:
    """Refuse malformed @df.block arguments (DF006) before reading the target; returns the resources."""
    where = str(getattr(target, "__name__", None) or "block")
    if name is not None:
        problem = name_problem(name)
        if problem is not None:
            raise definition_error(safe_repr(where), f"@df.block(name=...): {problem}")
        where = str.__str__(name)
    if outputs is not None:
        if isinstance(outputs, str):
            problem = name_problem(outputs)
            if problem is not None:
                raise definition_error(where, f"outputs=: {problem}")
        elif not isinstance(outputs, tuple | list):
            raise definition_error(
                where,
                f"outputs= must be a name or a tuple of names, got {type(outputs).__name__} "
                f"{safe_repr(outputs)}",
                "write outputs='x' for one output or outputs=('a', 'b') for a tuple return",
            )
        else:
            name_tuple(outputs, "outputs=", where)
    if batch is not None and not isinstance(batch, str | tuple | list | set | frozenset):
        raise definition_error(
            where, f"batch= must be a tuple of input names, got {type(batch).__name__} {safe_repr(batch)}"
        )
    # async blocks would return coroutines that nothing awaits
    call = getattr(target, "__call__", None) if inspect.isclass(target) else target  # noqa: B004
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        raise definition_error(
            where,
            f"{where} is an async function: a block is called synchronously, so it would return a "
            "coroutine nobody awaits",
            "make it a plain def (run the async work inside it, e.g. with asyncio.run)",
        )
    return name_tuple(mutates, "mutates=", where)


def _make_function_block(
    fn: Callable[P, R],
    outputs: str | tuple[str, ...] | list[str] | None,
    name: str | None,
    mutates: tuple[str, ...],
    scope: Mapping[str, Any],
) -> FunctionBlock[P, R]:
    block_name = str(name or getattr(fn, "__name__", type(fn).__name__))
    inputs, n_positional, in_notes = _input_ports(fn, block_name, scope, skip_self=False)
    out_ports, returns, out_notes = _output_ports(fn, block_name, outputs, scope)
    spec = CallSpec(fn, n_positional, returns)
    return FunctionBlock(fn, block_name, inputs, out_ports, spec, in_notes + out_notes, mutates)


def _decorate_class(
    cls: type,
    outputs: str | tuple[str, ...] | list[str] | None,
    name: str | None,
    mutates: tuple[str, ...],
    scope: Mapping[str, Any],
) -> type:
    call = getattr(cls, "__call__", None)  # noqa: B004 -- the class's own __call__, not callable(cls)
    if call is None or call is object.__call__ or not inspect.isfunction(call):
        raise definition_error(cls.__name__, f"class {cls.__name__} needs a __call__ method to be a block")
    block_name = name or cls.__name__
    inputs, n_positional, in_notes = _input_ports(call, block_name, scope, skip_self=True)
    out_ports, returns, out_notes = _output_ports(call, block_name, outputs, scope, fn_name=block_name)
    notes = in_notes + out_notes

    def __dfgraph_call__(self: Any) -> CallSpec:  # noqa: N807 -- installed as a method
        return CallSpec(self.__call__, n_positional, returns)

    attrs_to_set: dict[str, Any] = {
        "inputs": inputs,
        "outputs": out_ports,
        "mutates": mutates,
        "__dfgraph_call__": __dfgraph_call__,
        "__dfgraph_notes__": notes,
    }
    if name is not None or "name" not in vars(cls):
        attrs_to_set["name"] = block_name
    for key, value in attrs_to_set.items():
        setattr(cls, key, value)
    return cls


def _hints(fn: Callable[..., Any], scope: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Resolved annotations; string ones are looked up in the closure and the decorating scope too."""
    localns = dict(scope or {})
    with contextlib.suppress(TypeError, ValueError):  # builtins and classes have no closure
        localns.update(inspect.getclosurevars(fn).nonlocals)
    try:
        return typing.get_type_hints(fn, localns=localns, include_extras=True)
    except Exception:  # resolve one by one, so one bad annotation only degrades its own port
        raw = dict(getattr(fn, "__annotations__", {}) or {})
        module_globals = getattr(fn, "__globals__", {})
        for key, ann in raw.items():
            if isinstance(ann, str):
                try:
                    raw[key] = eval(ann, module_globals, localns)  # how typing resolves string annotations
                except Exception:
                    continue
        return raw


def _port_type(raw: Any, where: str, notes: list[Note], port: str) -> Any:
    if raw is inspect.Parameter.empty:
        notes.append(Note("DF202", port, f"{where} has no annotation; typed as Any"))
        return Any
    hint, reason = types.normalize(raw)
    if reason is not None:
        notes.append(Note("DF204", port, f"{where}: {reason}; typed as Any"))
    return hint


def _input_ports(
    fn: Callable[..., Any], block_name: str, scope: Mapping[str, Any], *, skip_self: bool
) -> tuple[tuple[Port, ...], int, tuple[Note, ...]]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise definition_error(block_name, f"cannot read the signature of {block_name}: {exc}") from exc
    hints = _hints(fn, scope)
    params = list(sig.parameters.values())
    if skip_self and params:
        params = params[1:]
    ports: list[Port] = []
    notes: list[Note] = []
    n_positional = 0
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise definition_error(
                f"{block_name}.{p.name}",
                f"{star}{p.name} cannot be a port: a block's inputs are named parameters",
                "declare each input as its own parameter",
            )
        if p.kind is not p.KEYWORD_ONLY:
            n_positional += 1
        raw = hints.get(p.name, p.annotation)
        typ = _port_type(raw, f"input {block_name}.{p.name}", notes, p.name)
        default = REQUIRED if p.default is inspect.Parameter.empty else p.default
        ports.append(Port(p.name, typ, default))
    return tuple(ports), n_positional, tuple(notes)


def _output_ports(
    fn: Callable[..., Any],
    block_name: str,
    outputs: str | tuple[str, ...] | list[str] | None,
    scope: Mapping[str, Any],
    fn_name: str | None = None,
) -> tuple[tuple[Port, ...], Returns, tuple[Note, ...]]:
    hints = _hints(fn, scope)
    raw = hints.get("return", inspect.signature(fn).return_annotation)
    notes: list[Note] = []
    if isinstance(outputs, str):
        return (
            (Port(outputs, _port_type(raw, f"output {block_name}.{outputs}", notes, outputs)),),
            "value",
            tuple(notes),
        )
    if outputs is not None:
        names = tuple(outputs)
        if not names or not all(isinstance(n, str) for n in names):
            raise definition_error(
                block_name, f"outputs= must be a name or a tuple of names, got {outputs!r}"
            )
        if len(set(names)) != len(names):
            raise definition_error(block_name, f"outputs= names an output twice: {names!r}")
        if raw is inspect.Parameter.empty:
            ports = [Port(n, _port_type(raw, f"output {block_name}.{n}", notes, n)) for n in names]
            return tuple(ports), "tuple", tuple(notes)
        item_types = _tuple_items(raw)
        if item_types is None or len(item_types) != len(names):
            raise definition_error(
                block_name,
                f"outputs={names!r} needs a return annotation tuple[...] with {len(names)} items, "
                f"got {types.describe(raw)}",
                "annotate the return as tuple[T1, T2, ...], one type per output",
            )
        ports = [
            Port(n, _port_type(t, f"output {block_name}.{n}", notes, n))
            for n, t in zip(names, item_types, strict=True)
        ]
        return tuple(ports), "tuple", tuple(notes)
    if raw is None or raw is type(None):
        return (), "none", ()
    fields = _namedtuple_fields(raw, scope)
    if fields is not None:
        ports = [Port(n, _port_type(t, f"output {block_name}.{n}", notes, n)) for n, t in fields]
        return tuple(ports), "tuple", tuple(notes)
    # Hamilton-style: one output named after the function.
    out_name = fn_name or block_name
    return (
        (Port(out_name, _port_type(raw, f"output {block_name}.{out_name}", notes, out_name)),),
        "value",
        tuple(notes),
    )


def _tuple_items(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return None
        return args
    return None


def _namedtuple_fields(hint: Any, scope: Mapping[str, Any]) -> list[tuple[str, Any]] | None:
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        annotations: Mapping[str, Any] = _hints(hint, scope)
        return [(f, annotations.get(f, inspect.Parameter.empty)) for f in hint._fields]
    return None

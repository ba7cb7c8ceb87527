"""Modular Diffusers blocks as dfgraph blocks, so dfgraph can check diffusers' own modular pipelines.

    import dfgraph
    from diffusers.modular_pipelines import StableDiffusionXLAutoBlocks
    from dfgraph_blocks.diffusers_compat import from_modular

    sdxl = from_modular(StableDiffusionXLAutoBlocks(), workflow="image2image")
    print(dfgraph.check(sdxl))          # or, from a module holding `sdxl`: dfgraph check mymodule:sdxl
    every = from_modular(StableDiffusionXLAutoBlocks())   # all workflows, a df.Switch per auto block

Mapping (Modular Diffusers -> dfgraph):

- A leaf block (a `ModularPipelineBlocks` without `sub_blocks`) becomes a `ModularLeaf`, a protocol block
  named after its key in the parent (the root after its class, or `name=`); names that are not Python
  identifiers are made into ones ("non-inpaint" -> "non_inpaint").
  - Inputs are its `InputParam`s: `type_hint` is the port type (`Any` when None, with a DF202 warning
    unless `warn_untyped=False`); `description` is the doc. A non-None `default` is the port default
    (even on a `required` param: `ModularPipeline.__call__` fills it in, so it never goes missing); else a
    `required` param is required; else the input is optional. An optional input without a default that
    an earlier block also reads from the caller takes that block's default when it declared one:
    `ModularPipeline.__call__` puts the first declaring block's default in the state, so this block sees
    it (mapping it to None would report that difference as DF206, which diffusers never shows). Failing
    that the default is None and the type is widened to `T | None`, because diffusers passes None for an
    absent optional input (unwidened, a `Tensor | None` producer would be a false DF001).
  - Outputs are its `intermediate_outputs` (`OutputParam`), typed the same way. A block may also rebind
    one of its *inputs* in the state without declaring it (diffusers writes back every input whose
    identity changed): a `block_state.X = ...` write of a declared input X in its `__call__` source (or
    `setattr(block_state, name, ...)`, `name` a string, `self.attr` or a loop variable over `self.attrs`)
    (outside loops) makes X an output too, typed as the input's `type_hint` (without one, as the value it
    rebinds: Flux and Wan rebind their image latents only when they are not None), when an earlier
    block writes X, or when X is a caller's input that no block of the set declares as an output and the
    block is in no Switch case (Wan's set_timesteps rebinds `timesteps` and declares nothing; its loop
    reads them). Otherwise a rebound caller input stays invisible: in a Switch case it would make that
    optional input required, and a declared writer's value is the one later blocks read.
  - `mutates` lists its `expected_components` (scheduler, guider, unet, ...): blocks mutate them (e.g.
    `scheduler.set_timesteps`, `guider.set_state`), so stream scheduling keeps blocks sharing one in order.
- A nameless `InputParam(kwargs_type=K)` (e.g. `**denoiser_input_fields`) reads every state value that
  was set with `kwargs_type=K`. It is resolved statically, in execution order: it becomes one optional
  port (`T | None`, default None) per name an *earlier* block declared with `kwargs_type=K` (outputs, and
  named inputs, which the pipeline tags when it sets them), skipping names the block declares itself.
  Approximation: a named input tagged K of a *later* block (tagged at pipeline start by diffusers) is not
  seen, and with nothing earlier (a leaf converted alone) the kwargs input adds no port.
- `SequentialPipelineBlocks` -> `df.Sequential({key: child, ...})`: both wire by name through the state.
- `LoopSequentialPipelineBlocks` -> `df.Loop(df.Sequential(...), over=..., item=..., index=...)`. How it
  iterates is read from the source of its `__call__`: `for i, t in enumerate(block_state.timesteps):
  self.loop_step(..., i=i, t=t)` gives `over="timesteps", index="i", item="t"`, and `for k in
  range(block_state.n): self.loop_step(..., k=k)` gives `times="n", index="k"`; anything else needs
  `loops={ClassName: LoopSpec(...)}`. Sub-blocks get the loop-step arguments (`i`, `t`) as extra inputs,
  typed by their `__call__` annotations (`Any` when absent). The body starts with a `loop_inputs` block
  that reads the wrapper's `loop_inputs` (so their declared types are checked) and writes its
  `loop_intermediate_outputs` that no sub-block writes. Carried state is inferred by dfgraph (SDXL:
  `latents`). Values sub-blocks pass through the shared `BlockState` without declaring them are read
  from each sub-block's `__call__` source (`block_state.X = ...` writes, `block_state.X` and
  `getattr(block_state, "X")` reads before any write): a read of a name an earlier sub-block writes, or
  that a sub-block declares as an output (the carry), becomes an input port, and that earlier write an
  output port (`Any` unless a declared writer types it); each carries a DF202 note naming the sub-block
  and the name (SDXL: `scaled_latents`, `noise_pred`, and `after_denoiser`'s read of `latents`). The
  `BlockState` also holds every input the loop or any sub-block declares: an undeclared read of one is
  an input port (typed by the value's declared writer before the loop, else `Any`: another reader's
  declaration is no promise about the value), and an undeclared write of one an `Any` output, the carry
  (Wan: the denoiser reads `dtype`, which only before_denoiser declares; after_denoiser reads and
  writes `latents`, declaring neither). Not modelled: the wrapper's own code around the loop (guider
  enable, warm-up count), and a value a sub-block leaves in the `BlockState` for the next iteration.
- Conditional blocks (`AutoPipelineBlocks`, `ConditionalPipelineBlocks`) become `df.Switch`es, chosen
  at run time exactly as `ConditionalPipelineBlocks.__call__` chooses: a `BlockSelector` calls the
  block's own `select_block(**triggers)` on the `block_trigger_inputs` (an earlier block's output, or a
  pipeline input with the pipeline's default; a trigger no block declares as an input is always None,
  as `ModularPipeline.__call__` drops such an input), then falls back to `default_block_name`. Each
  sub-block is a case keyed by its name made an identifier (paths: `decode/non_inpaint/...`); a block
  without a default gets a `skip` case that runs nothing. A name some cases write and others leave
  unset, with no value before the block, is set to None by the cases that leave it (`state.get` gives
  None in diffusers), so the Switch output is `T | None`; when it is a pipeline input a block reads
  from the caller (Flux Kontext's `height`, which only the image-conditioned case rewrites) those
  cases pass the caller's value on.
  An AutoPipelineBlocks case whose trigger an earlier block writes starts with a `given` block that
  reads the trigger narrowed to its type without None (the case runs only when it is not None). Not
  modelled: the correlation between two switches (a later case triggered by `mask` reads
  `image_latents`, which an earlier switch sets exactly when `mask_image` was given): such a reader of
  a `T | None` output is a DF001 the checker cannot rule out.
- Build-time resolution, `trigger_inputs=` or `workflow=`: conditional blocks are resolved exactly as
  diffusers' `get_execution_blocks(**trigger_inputs)` resolves them: `select_block` is called with the
  trigger inputs given plus the names written by the blocks converted so far (present = True), falling
  back to `default_block_name`; a skipped block (no match, no default) is left out. The chosen branch
  becomes `df.Sequential({branch: converted}, name=key)`, so paths show it (`decode/non_inpaint`).
  `workflow="inpainting"` takes the trigger inputs from the blocks' `_workflow_map` (as `get_workflow`);
  `trigger_inputs={}` is the default workflow; `from_modular_workflows` converts every workflow.
  On the Switch form, `df.specialize(converted, **values)` resolves the Switches whose triggers the
  given values decide (a trigger given as None or not None), binding those inputs: with every trigger
  input of a pipeline given, it selects the blocks `get_execution_blocks` selects; Switches triggered by
  an intermediate (`image_latents`) stay run-time Switches (diffusers assumes it present once an
  earlier resolved block declares it).

Suppressions: `ignore=` gives converted blocks diagnostic codes to suppress (all blocks, one diffusers
class, or one port of it: `{"StableDiffusionXLLoopDenoiser.t": ("DF001",)}`). Without it, the findings
judged in docs/modular_findings.md (`dfgraph_blocks.modular_known`) are carried on diffusers' own classes,
each with its judgement as the reason, so every shipped SDXL workflow checks clean
(`known_findings=False` reports them).

Calling: built with `components=` (a `ModularPipeline`; a `ComponentsManager`, whose components of the
blocks' expected names are used; or a mapping name -> component: both go into the family's
`ModularPipeline` from `init_pipeline()`, whose properties such as `vae_scale_factor` SDXL's blocks read,
or are exposed as attributes when the blocks name no family), a leaf puts its inputs on a fresh
`PipelineState` (loop sub-blocks: a `BlockState` plus the loop-step arguments), runs the modular
block and returns its declared outputs; without components it raises `RuntimeError` (built for
checking only). A `ModularPipeline` passed as the blocks brings its
blocks and is the components.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import keyword
import re
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import attrs

import dfgraph as df
from dfgraph import Note, did_you_mean, select_codes
from dfgraph_blocks.modular_known import UNTYPED, known_for

Suppressions = str | Iterable[str] | Mapping[str, str | Iterable[str]]

__all__ = ["BlockSelector", "LoopSpec", "ModularLeaf", "from_modular", "from_modular_workflows"]


@dataclass(frozen=True)
class LoopSpec:
    """How a loop block iterates: `over=` a state name (binding `item` and `index`) or `times=` a count."""

    over: str | None = None
    times: str | None = None
    item: str = "t"
    index: str = "i"

    def __post_init__(self) -> None:
        if (self.over is None) == (self.times is None):
            raise ValueError(f"LoopSpec needs exactly one of over= or times=, got {self!r}")

    @property
    def step_args(self) -> tuple[str, ...]:
        """The keyword arguments `loop_step` passes to every sub-block."""
        return (self.index, self.item) if self.over is not None else (self.index,)


@dataclass
class _Context:
    """State of one conversion, threaded through the blocks in execution order."""

    active: dict[str, Any]  # trigger resolution: given trigger inputs + names written so far
    tagged: dict[str, dict[str, Any]]  # kwargs_type -> {name: type} declared so far
    components: Any
    loops: Mapping[str, LoopSpec]
    warn_untyped: bool
    path: list[str] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # names written by the blocks converted so far
    first_default: dict[str, Any] = field(default_factory=dict)  # the pipeline-level default of an input
    ignore: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "", "Class" or "Class.port" -> codes
    converted: set[str] = field(default_factory=set)  # the classes of the leaves and loops converted
    matched: set[str] = field(default_factory=set)  # the "Class.port" keys of ignore= that found a port
    known_findings: bool = True  # suppress diffusers' judged findings (modular_known)
    switches: bool = False  # conditional blocks become df.Switch (no trigger inputs, no workflow given)
    types: dict[str, Any] = field(default_factory=dict)  # name -> declared type of its latest writer
    pipeline_inputs: set[str] = field(default_factory=set)  # what ModularPipeline.__call__ accepts
    batch_branches: bool = False  # loop sub-blocks stack the guider's branches into one model call
    caller_ports: dict[str, df.Port] = field(default_factory=dict)  # an input's port at its first caller read
    in_case: int = 0  # how many Switch cases enclose the block being converted
    declared_outputs: set[str] = field(default_factory=set)  # every name some block declares it writes


class ModularLeaf:
    """A leaf Modular Diffusers block as a dfgraph block: ports from its InputParam / OutputParam specs."""

    def __init__(
        self,
        modular: Any,
        name: str,
        inputs: tuple[df.Port, ...],
        outputs: tuple[df.Port, ...],
        *,
        params: Mapping[str, tuple[str | None, Any]],
        fields: Mapping[str, tuple[str, ...]],
        step_args: tuple[str, ...] | None,
        components: Any,
        notes: tuple[Note, ...] = (),
        inferred: Iterable[str] = (),
        batch_branches: bool = False,
    ) -> None:
        self.modular = modular
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.mutates: tuple[str, ...] = tuple(
            dict.fromkeys(str(c.name) for c in getattr(modular, "expected_components", ()) or ())
        )
        self.params = dict(params)  # named input -> (kwargs_type, modular default)
        self.fields = dict(fields)  # kwargs_type -> the field names its kwargs input was resolved to
        self.step_args = step_args  # None outside a loop; the loop-step keywords inside one
        self.components = components
        self.inferred = tuple(inferred)  # outputs read from the source, not declared: may stay unset
        self.batch_branches = batch_branches  # a loop sub-block runs with dfgraph_blocks.diffusers_batching
        self.__dfgraph_notes__ = notes
        self.__dfgraph_source__ = type(modular)  # findings point at the diffusers class

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """Run the modular block on its inputs (needs `components=`); returns its declared outputs."""
        if self.components is None:
            raise RuntimeError(
                f"block {self.name!r} ({type(self.modular).__name__}) was built for checking only; "
                "pass components= (a ModularPipeline or a mapping of components) to from_modular to run it"
            )
        mp = _diffusers()
        if self.step_args is None:
            state = mp.PipelineState()
            for name, (kwargs_type, _) in self.params.items():
                state.set(name, inputs.get(name), kwargs_type)
            for kwargs_type, names in self.fields.items():
                for name in names:
                    state.set(name, inputs.get(name), kwargs_type)
            _, state = self.modular(self.components, state)
            return {p.name: state.get(p.name) for p in self.outputs}
        # Inside a loop diffusers hands every sub-block the loop's BlockState, defaults applied.
        block_state = mp.BlockState()
        for name, (_, default) in self.params.items():
            value = inputs.get(name)
            setattr(block_state, name, default if value is None else value)
        for kwargs_type, names in self.fields.items():
            present = {n: inputs[n] for n in names if inputs.get(n) is not None}
            for n, value in present.items():
                setattr(block_state, n, value)
            setattr(block_state, kwargs_type, present)
        step = {arg: inputs[arg] for arg in self.step_args}
        components = self.components
        if self.batch_branches:  # the guider's branches in one model call (diffusers' code unchanged)
            from dfgraph_blocks.diffusers_batching import batched_components

            components = batched_components(components)
        _, block_state = self.modular(components, block_state, **step)
        missing = [p.name for p in self.outputs if not hasattr(block_state, p.name)]
        if [m for m in missing if m not in self.inferred]:
            raise ValueError(f"block {self.name!r} did not set its declared outputs {missing}")
        return {p.name: getattr(block_state, p.name, None) for p in self.outputs}

    def __repr__(self) -> str:
        ins = ", ".join(p.name for p in self.inputs)
        outs = ", ".join(p.name for p in self.outputs)
        return f"<ModularLeaf {self.name}: {type(self.modular).__name__}({ins}) -> ({outs})>"


class BlockSelector:
    """The selector of a converted conditional block: diffusers' `select_block` on the trigger inputs at
    run time, then `default_block_name`; its one output is the case key (`skip_key` when neither names a
    block, as diffusers then skips the block)."""

    def __init__(
        self,
        modular: Any,
        name: str,
        inputs: tuple[df.Port, ...],
        keys: Mapping[str, str],
        skip_key: str | None,
        absent: Iterable[str] = (),
    ) -> None:
        self.modular = modular
        self.name = name
        self.inputs = inputs
        self.keys = dict(keys)  # diffusers block name -> case key
        self.skip_key = skip_key
        self.absent = tuple(absent)  # triggers the pipeline's state never holds: always None
        self.__dfgraph_source__ = type(modular)  # findings point at the diffusers class
        choices = (*self.keys.values(), *([skip_key] if skip_key is not None else []))
        self.outputs = (df.Port("block_name", Literal.__getitem__(choices), doc="the case to run"),)

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """The key of the block diffusers' ConditionalPipelineBlocks.__call__ would run."""
        chosen = self.modular.select_block(**inputs, **dict.fromkeys(self.absent))
        if chosen is None:
            chosen = self.modular.default_block_name
        key = self.skip_key if chosen is None else self.keys.get(str(chosen))
        if key is None:
            raise ValueError(
                f"{type(self.modular).__name__}.select_block returned {chosen!r}, which is none of its "
                f"blocks ({', '.join(map(repr, self.keys))})"
            )
        return {"block_name": key}

    def __repr__(self) -> str:
        return (
            f"<BlockSelector {self.name}: {type(self.modular).__name__} on {[p.name for p in self.inputs]}>"
        )


class _Unset:
    """Writes None for the names a case leaves unset that another case writes: diffusers' state.get. A
    pipeline input among them (`kept`: name -> the port a block first read it by) keeps the caller's value."""

    def __init__(self, name: str, names: Iterable[str], kept: Mapping[str, df.Port] | None = None) -> None:
        self.name = name
        kept = dict(kept or {})
        doc = "a pipeline input this case leaves as the caller gave it"
        self.inputs: tuple[df.Port, ...] = tuple(df.Port(n, p.type, p.default, doc) for n, p in kept.items())
        unset = "not set by this case: None"
        self.outputs = tuple(
            df.Port(n, kept[n].type, doc=doc) if n in kept else df.Port(n, type(None), doc=unset)
            for n in names
        )

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """None for each name, or the caller's value of a kept pipeline input."""
        return {p.name: inputs.get(p.name) for p in self.outputs}


class _Given:
    """The head of an AutoPipelineBlocks case whose trigger an earlier block writes: the case runs only when
    the trigger is not None, so it reads the trigger narrowed to its type without None."""

    def __init__(self, name: str, trigger: str, typ: Any) -> None:
        self.name = name
        self.inputs = (df.Port(trigger, Any, doc="the trigger of this case: not None when it runs"),)
        self.outputs = (df.Port(trigger, typ, doc="the trigger, not None"),)

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """The trigger value, unchanged."""
        return dict(inputs)


Converted = ModularLeaf | df.Sequential | df.Loop | df.Switch


class _LoopInputs:
    """The head of a converted loop body: reads the wrapper's `loop_inputs`, writes its own loop outputs."""

    def __init__(
        self, name: str, owner: str, inputs: tuple[df.Port, ...], outputs: tuple[df.Port, ...]
    ) -> None:
        self.name = name
        self.owner = owner
        self.inputs = inputs
        self.outputs = outputs

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """Nothing to do for the inputs; the wrapper's own outputs cannot be made outside its __call__."""
        if self.outputs:
            raise RuntimeError(
                f"loop {self.owner!r} declares loop_intermediate_outputs "
                f"{[p.name for p in self.outputs]} that only its own __call__ makes; it cannot run here"
            )
        return {}


def from_modular(
    modular_blocks: Any,
    *,
    trigger_inputs: Mapping[str, Any] | None = None,
    workflow: str | None = None,
    components: Any = None,
    loops: Mapping[str, LoopSpec] | None = None,
    name: str | None = None,
    warn_untyped: bool = True,
    ignore: Suppressions | None = None,
    known_findings: bool = True,
    batch_branches: bool = False,
) -> Converted:
    """Convert Modular Diffusers blocks to a dfgraph block (see the module docstring for the mapping).

    `ignore` passes suppressions to the converted blocks: codes (every block carries them), or a mapping
    from a diffusers block class name to codes (that block, or a loop's `loop_inputs` head), from
    "ClassName.port" to codes (that port only), or from "*" to codes (every block).
    `known_findings` (default True) suppresses what dfgraph finds in diffusers' own blocks, as judged in
    `dfgraph_blocks.modular_known` (each suppression gives its judgement as the reason); False reports it.

    `batch_branches=True` runs the guider's branches (cond, uncond, ...) of each converted loop sub-block
    as ONE model call, as `guiders.guided_denoiser(batch_branches=True)` does, without changing diffusers'
    code (see `dfgraph_blocks.diffusers_batching`): equal within float rounding, not bitwise. It falls back
    to diffusers' one call per branch for one branch, a guider with model hooks (PAG, SLG, SEG,
    AutoGuidance) or fields that do not stack. The default, False, is bitwise equal to ModularPipeline."""
    mp = _diffusers()
    if isinstance(modular_blocks, mp.ModularPipeline):
        components = modular_blocks if components is None else components
        modular_blocks = modular_blocks.blocks
    if inspect.isclass(modular_blocks) and issubclass(modular_blocks, mp.ModularPipelineBlocks):
        raise TypeError(
            f"from_modular needs a block instance, got the class {modular_blocks.__name__}; "
            f"call it: from_modular({modular_blocks.__name__}())"
        )
    if not isinstance(modular_blocks, mp.ModularPipelineBlocks):
        raise TypeError(
            f"from_modular needs Modular Diffusers blocks (a ModularPipelineBlocks instance), "
            f"got {type(modular_blocks).__name__}: {modular_blocks!r:.80}"
        )
    triggers = _triggers(modular_blocks, trigger_inputs, workflow)
    components = _components(modular_blocks, components)
    ctx = _Context(triggers, {}, components, dict(loops or {}), warn_untyped)
    ctx.switches = trigger_inputs is None and workflow is None
    ctx.pipeline_inputs = _pipeline_inputs(modular_blocks)
    ctx.declared_outputs = _declared_outputs(modular_blocks)
    ctx.ignore = _suppressions(ignore, modular_blocks)
    ctx.known_findings = known_findings
    ctx.batch_branches = batch_branches
    root = name if name is not None else type(modular_blocks).__name__
    converted = _convert(modular_blocks, _identifier(root), ctx)
    if converted is None:
        raise ValueError(
            f"{type(modular_blocks).__name__}: no block would run for trigger inputs {sorted(triggers)}; "
            "pass the trigger inputs of a branch"
        )
    for key in ctx.ignore:
        cls, dot, port = key.partition(".")
        if dot and cls in ctx.converted and key not in ctx.matched:
            raise ValueError(f"ignore= names {key!r}, but the converted {cls} has no port {port!r}")
    return converted


def _components(blocks: Any, components: Any) -> Any:
    """What the leaves run with: a ModularPipeline as is; a ComponentsManager's components of the blocks'
    expected names, or a mapping, in the family's ModularPipeline (SDXL blocks read its properties, e.g.
    `vae_scale_factor`), or as attributes when the blocks name no family."""
    mp = _diffusers()
    if isinstance(components, mp.ComponentsManager):
        names = sorted({str(c.name) for c in blocks.expected_components})
        components = components.get_components_by_names(names)
    if not isinstance(components, Mapping):
        return components
    if getattr(blocks, "model_name", None) in mp.MODULAR_PIPELINE_MAPPING:
        pipeline = blocks.init_pipeline()
        pipeline.update_components(**components)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline
    return types.SimpleNamespace(**components)  # blocks read components as attributes


def _pipeline_inputs(blocks: Any) -> set[str]:
    """The names ModularPipeline.__call__ puts in the state (the blocks' combined inputs)."""
    try:
        return {str(p.name) for p in blocks.inputs if p.name}
    except Exception:  # a malformed sub-block: converting it reports it, naming its path
        return set()


def _declared_outputs(blocks: Any) -> set[str]:
    """The names any block of the set (every branch) declares as an intermediate output."""
    names: set[str] = set()
    stack = [blocks]
    while stack:
        block = stack.pop()
        with contextlib.suppress(Exception):  # a malformed block: converting it reports it
            names.update(str(o.name) for o in block.intermediate_outputs if o.name)
        stack.extend((getattr(block, "sub_blocks", None) or {}).values())
    return names


def _suppressions(spec: Suppressions | None, blocks: Any) -> dict[str, tuple[str, ...]]:
    """`ignore=` as "" (every block), "Class" or "Class.port" -> codes; ValueError on an unknown class."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        return {"": tuple(sorted(select_codes(spec)))}
    classes: set[str] = set()
    stack = [blocks]
    while stack:  # every class of every branch: a key may name a block of another workflow
        block = stack.pop()
        classes.add(type(block).__name__)
        stack.extend((getattr(block, "sub_blocks", None) or {}).values())
    result: dict[str, tuple[str, ...]] = {}
    for key, codes in spec.items():
        cls = str(key).partition(".")[0]
        if key == "*":
            result[""] = tuple(sorted(select_codes(codes)))
            continue
        if cls not in classes:
            raise ValueError(
                f"ignore= names {key!r}, but no block of {type(blocks).__name__} is a {cls}"
                + did_you_mean(cls, classes)
            )
        result[str(key)] = tuple(sorted(select_codes(codes)))
    return result


def _suppress(blk: Any, block: Any, ctx: _Context, untyped: Iterable[str] = ()) -> None:
    """Give a converted block the suppressions `ignore=` named for it and its ports, and (unless
    `known_findings=False`) diffusers' known findings with their judgements as reasons."""
    cls = type(block).__name__
    ctx.converted.add(cls)
    known = known_for(type(block)) if ctx.known_findings else {}
    if ctx.known_findings and type(block).__module__.startswith("diffusers."):
        for name in untyped:  # the DF202 of an untyped declaration (an inferred port's DF202 stays)
            known.setdefault(name, {}).setdefault("DF202", UNTYPED)
    reasons = {(name, code): why for name, codes in known.items() for code, why in codes.items()}
    codes = (*ctx.ignore.get("", ()), *ctx.ignore.get(cls, ()), *known.get("", {}))
    if codes:
        blk.__dfgraph_ignore__ = tuple(dict.fromkeys(codes))
    if reasons:
        blk.__dfgraph_ignore_reasons__ = reasons

    def port(p: df.Port) -> df.Port:
        key = f"{cls}.{p.name}"
        extra = (*ctx.ignore.get(key, ()), *known.get(p.name, {}))
        if key in ctx.ignore:
            ctx.matched.add(key)
        return attrs.evolve(p, ignore=tuple(dict.fromkeys((*p.ignore, *extra)))) if extra else p

    blk.inputs = tuple(map(port, blk.inputs))
    blk.outputs = tuple(map(port, blk.outputs))


def from_modular_workflows(modular_blocks: Any, **options: Any) -> dict[str, Converted]:
    """Convert each workflow of the blocks' `_workflow_map`: name -> block (options as from_modular)."""
    workflow_map = getattr(modular_blocks, "_workflow_map", None)
    if not workflow_map:
        raise ValueError(f"{type(modular_blocks).__name__} defines no workflows (_workflow_map)")
    return {w: from_modular(modular_blocks, workflow=w, **options) for w in workflow_map}


def _diffusers() -> Any:
    """diffusers' modular_pipeline module, imported on first use (importing diffusers takes seconds)."""
    return importlib.import_module("diffusers.modular_pipelines.modular_pipeline")


def _triggers(blocks: Any, trigger_inputs: Mapping[str, Any] | None, workflow: str | None) -> dict[str, Any]:
    if workflow is None:
        return dict(trigger_inputs or {})
    if trigger_inputs is not None:
        raise ValueError("pass workflow= or trigger_inputs=, not both")
    workflow_map = getattr(blocks, "_workflow_map", None) or {}
    if workflow not in workflow_map:
        raise ValueError(
            f"{type(blocks).__name__} has no workflow {workflow!r}; its workflows are: "
            f"{', '.join(workflow_map) or '(none)'}"
        )
    chosen = workflow_map[workflow]
    # A tuple lists alternative spellings of one workflow; diffusers' get_workflow uses the first.
    return dict(chosen[0] if isinstance(chosen, tuple) else chosen)


def _convert(block: Any, name: str, ctx: _Context) -> Converted | None:
    """The dfgraph block for one modular block, or None when a conditional block is skipped."""
    mp = _diffusers()
    where = "/".join([*ctx.path, name])
    if not isinstance(block, mp.ModularPipelineBlocks):
        raise TypeError(f"{where}: {type(block).__name__} is not a Modular Diffusers block")
    ctx.path.append(name)
    try:
        if isinstance(block, mp.ConditionalPipelineBlocks):
            return _switch(block, name, ctx) if ctx.switches else _conditional(block, name, ctx)
        if isinstance(block, mp.LoopSequentialPipelineBlocks):
            return _loop(block, name, ctx)
        if block.sub_blocks:
            children = _children(block.sub_blocks.items(), ctx)
            return df.Sequential(children, name=name) if children else None
        return _leaf(block, name, ctx, None)
    finally:
        ctx.path.pop()


def _children(items: Any, ctx: _Context) -> dict[str, Converted]:
    children: dict[str, Converted] = {}
    for key, sub in items:
        child_name = _identifier(str(key), children)
        child = _convert(sub, child_name, ctx)
        if child is not None:
            children[child_name] = child
    return children


def _conditional(block: Any, name: str, ctx: _Context) -> Converted | None:
    # As ConditionalPipelineBlocks.get_execution_blocks: triggers are looked up among the active names.
    trigger_kwargs = {t: ctx.active.get(t) for t in block.block_trigger_inputs if t is not None}
    chosen = block.select_block(**trigger_kwargs)
    if chosen is None:
        chosen = block.default_block_name
    if chosen is None:
        return None
    branch_name = _identifier(str(chosen))
    branch = _convert(block.sub_blocks[chosen], branch_name, ctx)
    return None if branch is None else df.Sequential({branch_name: branch}, name=name)


def _switch(block: Any, name: str, ctx: _Context) -> df.Switch:
    """A conditional block as a df.Switch: one case per sub-block, a `BlockSelector`, and a "skip" case
    (no default block) that runs nothing. A name some case writes and another leaves unset, with no value
    before the block, is written None by the cases that leave it (what diffusers' state.get gives)."""
    mp = _diffusers()
    before_written, before_tagged = set(ctx.written), _copy_tagged(ctx.tagged)
    before_types = dict(ctx.types)
    triggers = dict(zip(block.block_names, block.block_trigger_inputs, strict=False))
    auto = isinstance(block, mp.AutoPipelineBlocks)
    keys: dict[str, str] = {}
    cases: dict[str, Any] = {}
    writes: dict[str, set[str]] = {}
    types: dict[str, Any] = {}
    tagged = _copy_tagged(before_tagged)
    for block_name, sub in block.sub_blocks.items():
        key = _identifier(str(block_name), cases)
        keys[str(block_name)] = key
        ctx.written, ctx.tagged, ctx.types = (
            set(before_written),
            _copy_tagged(before_tagged),
            dict(before_types),
        )
        trigger = triggers.get(block_name) if auto else None
        given = None
        if trigger is not None and trigger in before_written:  # an earlier block writes the trigger
            given = _Given("given", trigger, _without_none(before_types.get(trigger, Any)))
            ctx.types[trigger] = given.outputs[0].type
        ctx.in_case += 1
        try:
            case = _convert(sub, key, ctx)
        finally:
            ctx.in_case -= 1
        if given is not None:
            children = dict(case.children) if isinstance(case, df.Sequential) else {key: case}
            case = df.Sequential({_identifier(given.name, children): given, **children}, name=key)
        cases[key] = case
        writes[key] = ctx.written - before_written
        for written in writes[key]:
            types[written] = (
                df.type_union(types[written], ctx.types[written]) if written in types else ctx.types[written]
            )
        for kind, names in ctx.tagged.items():
            tagged.setdefault(kind, {}).update(names)
    skip = None if block.default_block_name is not None else _identifier("skip", cases)
    if skip is not None:
        cases[skip], writes[skip] = None, set()
    every: set[str] = set().union(*writes.values())
    for key, case in list(cases.items()):
        unset = sorted(every - writes[key])
        # A pipeline input a block reads from the caller (Kontext's `height`) is in diffusers' state
        # before the block: a case that leaves it passes the caller's value on, not None.
        kept = {n: ctx.caller_ports[n] for n in unset if n in ctx.caller_ports}
        for missing in unset:
            types[missing] = df.type_union(
                types[missing], kept[missing].type if missing in kept else type(None)
            )
        if not unset and case is not None:
            continue
        filler = _Unset(_identifier("unset", {key}), unset, kept)
        if case is None:
            cases[key] = filler
        elif isinstance(case, df.Sequential):
            cases[key] = df.Sequential({**dict(case.children), filler.name: filler}, name=key)
        else:
            cases[key] = df.Sequential({key: case, filler.name: filler}, name=key)
    ctx.written, ctx.tagged, ctx.types = before_written | every, tagged, {**before_types, **types}
    ctx.active.update(dict.fromkeys(every, True))
    declared = {p.name: p.default for p in block.inputs if p.name}
    ports, absent = [], []
    for trigger in dict.fromkeys(t for t in block.block_trigger_inputs if t is not None):
        if trigger in before_written:  # an earlier block's output
            ports.append(df.Port(trigger, Any, doc="a trigger input of the block"))
        elif trigger in ctx.pipeline_inputs:  # read from the caller, with the pipeline's default
            default = ctx.first_default.setdefault(trigger, declared.get(trigger))
            ports.append(df.Port(trigger, Any, default, "a trigger input of the block"))
        else:  # ModularPipeline.__call__ drops an input no block declares: the state never holds it
            absent.append(trigger)
    selector = BlockSelector(block, _identifier("select_block", cases), tuple(ports), keys, skip, absent)
    _suppress(selector, block, ctx)
    return df.Switch(cases, on=selector, name=name)


def _copy_tagged(tagged: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {kind: dict(names) for kind, names in tagged.items()}


def _without_none(typ: Any) -> Any:
    """`typ` less None: `T | None` -> T (Any stays Any)."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(typ) if a is not type(None)]
        result: Any = rest[0]
        for arg in rest[1:]:
            result = df.type_union(result, arg)
        return result
    return typ


def _loop(block: Any, name: str, ctx: _Context) -> df.Loop:
    spec = ctx.loops.get(type(block).__name__) or _detect_loop(block, "/".join(ctx.path))
    head_inputs = tuple(_input_port(p, ctx)[0] for p in block.loop_inputs if p.name)
    written = {o.name for sub in block.sub_blocks.values() for o in sub.intermediate_outputs}
    head_outputs = tuple(_output_port(o)[0] for o in block.loop_intermediate_outputs if o.name not in written)
    body: dict[str, Any] = {}
    if head_inputs or head_outputs:
        head = _identifier("loop_inputs", {str(k) for k in block.sub_blocks})
        body[head] = _LoopInputs(head, "/".join(ctx.path), head_inputs, head_outputs)
        _suppress(body[head], block, ctx)
    for key, sub in block.sub_blocks.items():
        if sub.sub_blocks:
            raise TypeError(
                f"{'/'.join(ctx.path)}/{_identifier(str(key), body)}: a loop's sub-blocks must be leaf "
                f"blocks (as diffusers requires), got {type(sub).__name__}"
            )
    undeclared = _undeclared_traffic(block.sub_blocks, spec.step_args, block.loop_inputs)
    for key, sub in block.sub_blocks.items():
        child_name = _identifier(str(key), body)
        ctx.path.append(child_name)
        try:
            body[child_name] = _leaf(sub, child_name, ctx, spec.step_args, undeclared.get(str(key)))
        finally:
            ctx.path.pop()
    for out in block.loop_intermediate_outputs:
        ctx.active[out.name] = True
        ctx.written.add(out.name)
        ctx.types.setdefault(out.name, _output_port(out)[0].type)
    sequential = df.Sequential(body, name=f"{name}_body")
    if spec.over is not None:
        return df.Loop(sequential, over=spec.over, item=spec.item, index=spec.index, name=name)
    return df.Loop(sequential, times=spec.times, index=spec.index, name=name)


def _leaf(
    block: Any,
    name: str,
    ctx: _Context,
    step_args: tuple[str, ...] | None,
    undeclared: _Undeclared | None = None,
) -> ModularLeaf:
    cls = type(block).__name__
    ports: list[df.Port] = []
    notes: list[Note] = []
    untyped_names: list[str] = []
    hidden = undeclared or _Undeclared()
    params: dict[str, tuple[str | None, Any]] = {}
    kwargs_types: list[str] = []
    hints = {p.name: p.type_hint for p in block.inputs if p.name and p.type_hint is not None}
    written_before = set(ctx.written)
    for param in block.inputs:
        if param.name:
            if param.kwargs_type:  # the pipeline tags it when it sets it in the state
                ctx.tagged.setdefault(param.kwargs_type, {})[param.name] = param.type_hint
            port, untyped = _input_port(param, ctx)
            ports.append(port)
            params[param.name] = (param.kwargs_type, param.default)
            if untyped:
                notes.append(_untyped_note("input", param.name, cls))
                untyped_names.append(param.name)
        elif param.kwargs_type and param.kwargs_type not in kwargs_types:
            kwargs_types.append(param.kwargs_type)
    declared = {p.name for p in ports}
    fields: dict[str, tuple[str, ...]] = {}
    for kwargs_type in kwargs_types:
        tagged = ctx.tagged.get(kwargs_type, {})
        fields[kwargs_type] = tuple(tagged)  # a field the block also names is one port, in both
        doc = f"a field of **{kwargs_type}"
        ports.extend(df.Port(n, _admit_none(tagged[n]), None, doc) for n in tagged if n not in declared)
        declared.update(tagged)
    for arg, typ in _step_arg_types(block, step_args or ()).items():
        if arg not in declared:
            ports.append(df.Port(arg, typ, doc="passed by the loop to every sub-block"))
            declared.add(arg)
    for read, writer in hidden.reads.items():
        if read in declared:
            continue
        typ = hidden.types.get(read, ctx.types.get(read, Any))  # a declared writer gives a type
        doc = f"read from the loop's BlockState without a declaration ({writer})"
        ports.append(df.Port(read, typ, doc=doc))
        params[read] = (None, None)
        declared.add(read)
        notes.append(_undeclared_note("reads", read, cls, writer, typ))
    outputs: list[df.Port] = []
    for out in block.intermediate_outputs:
        port, untyped = _output_port(out)
        outputs.append(port)
        if untyped:
            notes.append(_untyped_note("output", out.name, cls))
            untyped_names.append(out.name)
        if out.kwargs_type:
            ctx.tagged.setdefault(out.kwargs_type, {})[out.name] = out.type_hint
        ctx.types[out.name] = port.type
        ctx.active[out.name] = True  # as get_execution_blocks: a later trigger sees it present
        ctx.written.add(out.name)
    declared_outputs = {p.name for p in outputs}
    declared_ports = set(declared_outputs)  # the outputs the block declares itself
    if step_args is None:  # set_block_state writes back every input the block rebinds
        for rebound in _state_access(block)[1]:
            # A caller's input too, outside Switch cases, when no block declares writing it (Wan's
            # set_timesteps rebinds `timesteps`, declared by none; the loop reads it); a declared
            # writer's value is the one read (else: DF201 on SDXL's rebound `dtype`). In a case it would
            # make that optional input required of the Switch (a value for the cases not writing it).
            caller = not ctx.in_case and rebound not in ctx.declared_outputs
            if (
                rebound in params
                and rebound not in declared_outputs
                and (rebound in written_before or caller)
            ):
                # as declared (a rebinding sets a value); untyped, as the value it rebinds (None stays None)
                typ = hints.get(rebound, ctx.types.get(rebound, Any))
                if rebound not in written_before:  # a caller's optional input may pass through as None
                    typ = next(p.type for p in ports if p.name == rebound)
                outputs.append(
                    df.Port(rebound, typ, doc="an input the block rebinds (diffusers writes it back)")
                )
                declared_outputs.add(rebound)
    for written in hidden.writes:
        if written in declared_outputs:
            continue
        doc = "written to the loop's BlockState without a declaration (a later sub-block reads it)"
        outputs.append(df.Port(written, Any, doc=doc))
        notes.append(_undeclared_note("writes", written, cls, "read by a later sub-block", Any))
        declared_outputs.add(written)
    for written in hidden.carried:
        if written in declared_outputs:
            continue
        doc = "an input of the loop's BlockState written without a declaration (the next iteration reads it)"
        outputs.append(df.Port(written, Any, doc=doc))
        where = "an input of the loop's BlockState: the next iteration and the loop's caller see it"
        notes.append(_undeclared_note("writes", written, cls, where, Any))
    leaf = ModularLeaf(
        block,
        name,
        tuple(ports),
        tuple(outputs),
        params=params,
        fields=fields,
        step_args=step_args,
        components=ctx.components,
        notes=tuple(n for n in notes if ctx.warn_untyped or n.message.startswith("undeclared")),
        inferred=[w for w in (*hidden.writes, *hidden.carried) if w not in declared_ports],
        batch_branches=ctx.batch_branches and step_args is not None,
    )
    _suppress(leaf, block, ctx, untyped_names)
    return leaf


def _input_port(param: Any, ctx: _Context) -> tuple[df.Port, bool]:
    """The port of a named InputParam, and whether it is untyped."""
    untyped = param.type_hint is None
    typ: Any = Any if untyped else param.type_hint
    doc = str(param.description or "")
    default = param.default
    if param.name not in ctx.written:  # read from the caller, as a pipeline input
        # ModularPipeline.__call__ puts the first declaring block's default in the state, so a later
        # reader that declares none sees that value when the caller leaves the input out.
        first = ctx.first_default.setdefault(param.name, default)
        if default is None and not param.required:
            default = first
    if default is not None:
        port = df.Port(param.name, typ, default, doc)
    elif param.required:
        port = df.Port(param.name, typ, doc=doc)
    else:
        port = df.Port(param.name, _admit_none(typ), None, doc)
    if param.name not in ctx.written:
        ctx.caller_ports.setdefault(param.name, port)
    return port, untyped


def _output_port(out: Any) -> tuple[df.Port, bool]:
    untyped = out.type_hint is None
    return df.Port(out.name, Any if untyped else out.type_hint, doc=str(out.description or "")), untyped


def _admit_none(typ: Any) -> Any:
    """`typ | None` unless None already fits (an absent optional input is passed as None)."""
    if typ is None or typ is Any or df.is_assignable(type(None), typ):
        return Any if typ is None else typ
    return df.type_union(typ, type(None))


def _undeclared_note(verb: str, port: str, cls: str, where: str, typ: Any) -> Note:
    """The DF202 an inferred port carries: undeclared, so untyped unless a declared writer types it."""
    typed = "typed as Any" if typ is Any else f"typed {df.describe_type(typ)} by its declared writer"
    return Note(
        "DF202",
        port,
        f"undeclared: {cls}.__call__ {verb} block_state.{port} without declaring it ({where}); "
        f"inferred from its source, {typed}",
        f"declare it: {'an InputParam' if verb == 'reads' else 'an OutputParam'} {port!r} of {cls}",
    )


@dataclass
class _Undeclared:
    """The values a loop sub-block passes through the shared BlockState without declaring them."""

    reads: dict[str, str] = field(default_factory=dict)  # name -> its writer ("written by before_denoiser")
    writes: list[str] = field(default_factory=list)  # names a later sub-block reads
    types: dict[str, Any] = field(default_factory=dict)  # read name -> the type of its declared writer
    carried: list[str] = field(default_factory=list)  # inputs of the loop's BlockState it writes


def _undeclared_traffic(
    sub_blocks: Mapping[str, Any], step_args: tuple[str, ...], loop_inputs: Iterable[Any] = ()
) -> dict[str, _Undeclared]:
    """Per loop sub-block, the undeclared BlockState reads and writes found in its `__call__` source.

    Read statically (not by a recorded trial) so it works before anything runs, without components, and
    sees every branch. A read counts when the block reads the name before writing it and does not declare
    it; it is inferred only when an earlier sub-block writes the name, any sub-block declares it as an
    output (the loop's carry, e.g. `latents`), or the loop or another sub-block declares it as an input
    (the loop's BlockState holds every input of the loop: Wan's denoiser reads `dtype`, which only
    before_denoiser declares). A name a block writes and reads only itself stays local."""
    access = {str(k): _state_access(sub) for k, sub in sub_blocks.items()}
    declared_out = {
        o.name: _output_port(o)[0].type for sub in sub_blocks.values() for o in sub.intermediate_outputs
    }
    declared_in: dict[str, str] = {}  # an input of the loop's BlockState -> the first block declaring it
    for owner, params in [
        ("the loop", loop_inputs),
        *((str(k), sub.inputs) for k, sub in sub_blocks.items()),
    ]:
        for p in params:
            if p.name:
                declared_in.setdefault(p.name, owner)
    result: dict[str, _Undeclared] = {}
    written_before: dict[str, str] = {}  # undeclared name -> the first earlier sub-block writing it
    for key, sub in sub_blocks.items():
        reads, writes = access[str(key)]
        mine = {p.name for p in sub.inputs if p.name} | set(step_args)
        entry = result.setdefault(str(key), _Undeclared())
        for name in reads:
            if name in mine:
                continue
            if name in written_before:
                entry.reads[name] = f"written by {written_before[name]}"
                result[written_before[name]].writes.append(name)
            elif name in declared_out:
                entry.reads[name] = "a declared output of the loop body"
                entry.types[name] = declared_out[name]
            elif name in declared_in:  # typed by the value's declared writer before the loop, if any
                entry.reads[name] = f"an input {declared_in[name]} declares"
        outs = {o.name for o in sub.intermediate_outputs}
        for name in writes:
            if name not in outs:
                written_before.setdefault(name, str(key))
            if name not in outs and name in declared_in and name not in step_args:
                entry.carried.append(name)  # the next iteration (and the loop's caller) sees it
    for entry in result.values():
        entry.writes = list(dict.fromkeys(entry.writes))
    return result


def _state_access(block: Any) -> tuple[list[str], list[str]]:
    """The BlockState names `block.__call__` reads before writing them, and those it writes (in order)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(type(block).__call__)))
    except (OSError, TypeError, SyntaxError):
        return [], []
    func = tree.body[0]
    if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) or len(func.args.args) < 3:
        return [], []
    state = func.args.args[2].arg  # a loop sub-block: (self, components, block_state, ...)
    for node in ast.walk(func):  # any other block: block_state = self.get_block_state(state)
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "get_block_state"
        ):
            state = node.targets[0].id
    reads: list[str] = []
    writes: list[str] = []
    me = func.args.args[0].arg
    bound: dict[str, list[str]] = {}  # loop variable -> the names it takes (`for n in self.names:`)

    def names(node: ast.expr) -> list[str]:
        """The state names an attribute-name argument can be: "x", `self.name` or a loop variable over
        `self.names` (configurable blocks, e.g. Flux's additional inputs, name their values that way)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.Name):
            return bound.get(node.id, [])
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == me:
            value = getattr(block, node.attr, None)
            return [value] if isinstance(value, str) else []
        return []

    class Visitor(ast.NodeVisitor):
        def visit_Assign(self, node: ast.Assign) -> None:  # the value is evaluated before the targets
            self.visit(node.value)
            for target in node.targets:
                self.visit(target)

        def visit_For(self, node: ast.For) -> None:
            it, target = node.iter, node.target
            values = (
                getattr(block, it.attr, None)
                if isinstance(it, ast.Attribute) and isinstance(it.value, ast.Name) and it.value.id == me
                else None
            )
            if isinstance(target, ast.Name) and isinstance(values, list | tuple):
                bound[target.id] = [v for v in values if isinstance(v, str)]
            self.generic_visit(node)

        def visit_Attribute(self, node: ast.Attribute) -> None:
            if isinstance(node.value, ast.Name) and node.value.id == state:
                if isinstance(node.ctx, ast.Store):
                    writes.append(node.attr)
                elif node.attr not in writes:
                    reads.append(node.attr)
            self.generic_visit(node)

        def visit_Call(self, node: ast.Call) -> None:  # getattr(block_state, n), setattr(block_state, n, _)
            f, args = node.func, node.args
            self.generic_visit(node)  # setattr's value is evaluated before the write
            if not (isinstance(f, ast.Name) and len(args) >= 2):
                return
            if not (isinstance(args[0], ast.Name) and args[0].id == state):
                return
            if f.id == "getattr" and len(args) == 2:  # with a default, a missing value is no error
                reads.extend(n for n in names(args[1]) if n not in writes)
            elif f.id == "setattr" and len(args) == 3:
                writes.extend(names(args[1]))

    Visitor().visit(func)
    return list(dict.fromkeys(reads)), list(dict.fromkeys(writes))


def _untyped_note(side: str, port: str, cls: str) -> Note:
    return Note("DF202", port, f"{side} {port!r} of {cls} declares no type_hint; typed as Any")


def _step_arg_types(block: Any, step_args: tuple[str, ...]) -> dict[str, Any]:
    """The loop-step arguments a sub-block receives, typed by its `__call__` annotations (else Any)."""
    if not step_args:
        return {}
    call = type(block).__call__
    try:
        hints = typing.get_type_hints(call)
    except Exception:  # an unresolvable annotation elsewhere in the signature: keep the resolved ones
        hints = dict(getattr(call, "__annotations__", {}))
    return {arg: _usable_hint(hints.get(arg, Any)) for arg in step_args}


def _usable_hint(hint: Any) -> Any:
    return Any if isinstance(hint, str | typing.ForwardRef) else hint


def _detect_loop(block: Any, where: str) -> LoopSpec:
    """Read how a loop wrapper iterates from its `__call__`: the `for` around `self.loop_step(...)`."""
    cls = type(block)
    hint = (
        f"pass loops={{{cls.__name__!r}: LoopSpec(over='timesteps', item='t', index='i')}} "
        "(or times='n') to from_modular"
    )
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__call__)))
    except (OSError, TypeError, SyntaxError) as exc:
        raise ValueError(f"{where}: cannot read how {cls.__name__} loops ({exc}); {hint}") from exc
    found: LoopSpec | None = None
    for node in ast.walk(tree):  # breadth first: the innermost `for` around loop_step wins
        if isinstance(node, ast.For):
            step = next((c for c in ast.walk(node) if _is_loop_step(c)), None)
            if step is not None:
                found = _loop_spec(node, step)
    if found is None:
        raise ValueError(f"{where}: cannot read how {cls.__name__} iterates from its __call__; {hint}")
    return found


def _is_loop_step(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "loop_step"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
    )


def _loop_spec(loop: ast.For, step: ast.AST) -> LoopSpec | None:
    """`for i, t in enumerate(s.X)` or `for k in range(s.X)`, with loop_step passing the targets."""
    assert isinstance(step, ast.Call)
    passed: dict[str, str] = {}  # loop variable -> keyword it is passed as
    for kw in step.keywords:
        if kw.arg is None or not isinstance(kw.value, ast.Name):
            return None
        passed[kw.value.id] = kw.arg
    it = loop.iter
    if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and len(it.args) == 1):
        return None
    source = it.args[0]
    if not (isinstance(source, ast.Attribute) and isinstance(source.value, ast.Name)):
        return None
    target = loop.target
    if it.func.id == "enumerate" and isinstance(target, ast.Tuple) and len(target.elts) == 2:
        index, item = target.elts
        if isinstance(index, ast.Name) and isinstance(item, ast.Name) and set(passed) == {index.id, item.id}:
            return LoopSpec(over=source.attr, item=passed[item.id], index=passed[index.id])
    if it.func.id == "range" and isinstance(target, ast.Name) and set(passed) == {target.id}:
        return LoopSpec(times=source.attr, index=passed[target.id])
    return None


def _identifier(text: str, taken: Any = ()) -> str:
    """A Python identifier made from a block name, distinct from the names in `taken`."""
    ident = re.sub(r"\W", "_", text) or "block"
    if ident[0].isdigit():
        ident = f"_{ident}"
    if keyword.iskeyword(ident):
        ident = f"{ident}_"
    unique, k = ident, 2
    while unique in taken:
        unique, k = f"{ident}_{k}", k + 1
    return unique

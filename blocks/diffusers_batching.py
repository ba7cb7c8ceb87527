"""One model call for all guider branches of a converted Modular Diffusers loop step (`batch_branches=True`).

Modular Diffusers' loop denoisers (e.g. `StableDiffusionXLLoopDenoiser.__call__`) run each branch the
guider prepares (cond, uncond, ...) as its own model call. `from_modular(..., batch_branches=True)` makes
those converted loop sub-blocks run diffusers' unchanged code with `batched_components(components)`, a
view of the components in which:

- each guider (`guider`, Wan 2.2's `guider_2`) is a `BranchBatchingGuider`: its `prepare_inputs` (and
  `prepare_inputs_from_block_state`) calls the real guider and, when there are at least two branches and
  every field is stackable (tensors of one shape, dtype and device with a batch dimension, or None in
  every branch), returns ONE merged `BlockState` whose fields are the branches' concatenated along dim 0.
  `prepare_models` and `cleanup_models` still run the real guider's once per real branch (it counts
  them); calling it splits the merged `noise_pred` into the branches' chunks and runs the real guider on
  the real branches.
- every `torch.nn.Module` component (the UNet or transformer the loop calls) is a `BatchedModel`: during
  a merged step it repeats along dim 0 (once per branch) every tensor argument that is not a merged field
  and has the per-branch batch as its first dim (the latents), nested in dicts, lists and tuples too;
  0-d tensors (the timestep) pass unchanged.

With one branch or fields that do not stack, every call passes straight through; with a guider that has
model hooks (`guiders.uses_hooks`: PAG, SLG, SEG, AutoGuidance, whose branches run different models) the
real components are used: diffusers' exact path, bitwise equal.
The batched path equals it within float rounding (one batch-k call rounds differently from k batch-1
calls). A denoiser that asks the guider per branch whether it is conditional (ControlNet's guess mode)
cannot be merged: reading `is_conditional` during a merged step raises RuntimeError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BatchedModel", "BranchBatchingGuider", "BatchingComponents", "batched_components"]


def batched_components(components: Any) -> Any:
    """The components a converted loop sub-block runs with when branches are batched: a
    `BatchingComponents` view, or `components` itself when no guider can batch (none, or one is hooked:
    a hooked guider's prepare_models must get the real model)."""
    from diffusers.guiders.guider_utils import BaseGuidance

    from dfgraph_blocks.diffusion.guiders import uses_hooks

    found = getattr(components, "components", None)  # a ModularPipeline's loaded components
    if not isinstance(found, Mapping):
        found = vars(components) if hasattr(components, "__dict__") else {}
    guiders = {str(name): g for name, g in found.items() if isinstance(g, BaseGuidance)}
    if not guiders or any(uses_hooks(g) for g in guiders.values()):
        return components
    return BatchingComponents(components, guiders)


@dataclass(frozen=True)
class _Merged:
    """One merged step: the state handed to diffusers, the real branches, and how to repeat for it."""

    state: Any  # the merged BlockState
    branches: list[Any]  # the real guider's BlockStates, in its order
    batch: int  # the per-branch batch
    fields: tuple[torch.Tensor, ...]  # the concatenated fields (never repeated again)

    @property
    def k(self) -> int:
        """The number of branches merged."""
        return len(self.branches)


class BranchBatchingGuider:
    """A diffusers guider that hands a loop denoiser one merged branch when the branches can share a call."""

    def __init__(self, guider: Any) -> None:
        object.__setattr__(self, "_guider", guider)
        object.__setattr__(self, "_merged", None)

    @property
    def guider(self) -> Any:
        """The real guider."""
        return self._guider

    @property
    def merged(self) -> _Merged | None:
        """The merged step in progress (None outside one)."""
        merged: _Merged | None = self._merged
        return merged

    def prepare_inputs(self, *args: Any, **kwargs: Any) -> list[Any]:
        """The real guider's branches, or one BlockState with their fields concatenated along dim 0."""
        return self._merging(self._guider.prepare_inputs(*args, **kwargs))

    def prepare_inputs_from_block_state(self, *args: Any, **kwargs: Any) -> list[Any]:
        """As `prepare_inputs`, for the denoisers that hand the guider their BlockState (Wan)."""
        return self._merging(self._guider.prepare_inputs_from_block_state(*args, **kwargs))

    def _merging(self, branches: list[Any]) -> list[Any]:
        object.__setattr__(self, "_merged", None)
        merged = _merge(branches, self._guider._identifier_key)
        if merged is None:
            return branches
        object.__setattr__(self, "_merged", merged)
        return [merged.state]

    def prepare_models(self, model: Any) -> None:
        """The real guider's prepare_models on the real model, once per real branch of this call."""
        for _ in range(self._calls()):
            self._guider.prepare_models(_unwrap(model))

    def cleanup_models(self, model: Any) -> None:
        """The real guider's cleanup_models on the real model, once per real branch of this call."""
        for _ in range(self._calls()):
            self._guider.cleanup_models(_unwrap(model))

    def __call__(self, data: list[Any], *args: Any, **kwargs: Any) -> Any:
        """The real guider on the real branches, each given its chunk of the merged `noise_pred`."""
        merged = self.merged
        if merged is None or len(data) != 1 or data[0] is not merged.state:
            return self._guider(data, *args, **kwargs)
        object.__setattr__(self, "_merged", None)
        noise = merged.state.noise_pred
        if not isinstance(noise, torch.Tensor) or noise.shape[0] != merged.k * merged.batch:
            got = tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__
            raise ValueError(
                f"batch_branches: the merged model call of {merged.k} branches (batch {merged.batch} each) "
                f"returned noise_pred {got}, not {merged.k * merged.batch} along dim 0"
            )
        for branch, part in zip(merged.branches, noise.chunk(merged.k), strict=True):
            branch.noise_pred = part
        return self._guider(merged.branches, *args, **kwargs)

    def _calls(self) -> int:
        merged = self.merged
        return 1 if merged is None else merged.k

    def __getattr__(self, name: str) -> Any:
        if name in ("is_conditional", "is_unconditional") and self._merged is not None:
            raise RuntimeError(
                f"batch_branches: the denoiser reads guider.{name} inside a merged step, which depends on "
                "the branch; convert these blocks with batch_branches=False"
            )
        return getattr(self._guider, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._guider, name, value)  # the wrapper has no state of its own to set

    def __repr__(self) -> str:
        return f"<BranchBatchingGuider of {type(self._guider).__name__}>"


class BatchedModel:
    """A model component that, during a merged step, repeats the per-branch tensors once per branch."""

    def __init__(self, model: Any, guiders: tuple[BranchBatchingGuider, ...]) -> None:
        self.model = model
        self.guiders = guiders

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The real model; its batch arguments repeated along dim 0 while a merged step is in progress."""
        merged = next((g.merged for g in self.guiders if g.merged is not None), None)
        if merged is None:
            return self.model(*args, **kwargs)
        return self.model(*_repeat(args, merged), **_repeat(kwargs, merged))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"<BatchedModel of {type(self.model).__name__}>"


class BatchingComponents:
    """A view of the components: the guiders and the model components wrapped for batching; everything
    else, and every attribute set on it, is the real components'."""

    _own = ("_components", "_guiders", "_models")

    def __init__(self, components: Any, guiders: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_components", components)
        object.__setattr__(self, "_guiders", {n: BranchBatchingGuider(g) for n, g in guiders.items()})
        object.__setattr__(self, "_models", {})

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._components, name)
        wrapper = self._guiders.get(name)
        if wrapper is not None and wrapper.guider is value:
            return wrapper
        if isinstance(value, torch.nn.Module):
            model = self._models.get(name)
            if model is None or model.model is not value:
                model = self._models[name] = BatchedModel(value, tuple(self._guiders.values()))
            return model
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._components, name, value)  # as diffusers' code would on the real components

    def __repr__(self) -> str:
        return f"<BatchingComponents of {type(self._components).__name__}>"


def _unwrap(model: Any) -> Any:
    return model.model if isinstance(model, BatchedModel) else model


def _merge(branches: list[Any], identifier: str) -> _Merged | None:
    """The branches as one merged BlockState, or None when they must run one by one."""
    if len(branches) < 2:
        return None
    values = [dict(b.as_dict()) for b in branches]
    ids = [v.pop(identifier, None) for v in values]
    names = list(values[0])
    if any(list(v) != names for v in values[1:]):
        return None
    fields: dict[str, Any] = {}
    batch: int | None = None
    for name in names:
        column = [v[name] for v in values]
        if all(c is None for c in column):
            fields[name] = None
            continue
        if not all(isinstance(c, torch.Tensor) and c.ndim >= 1 for c in column):
            return None
        first = column[0]
        if any(c.shape != first.shape or c.dtype != first.dtype or c.device != first.device for c in column):
            return None
        if batch is not None and first.shape[0] != batch:  # one per-branch batch to repeat the rest by
            return None
        batch = int(first.shape[0])
        fields[name] = torch.cat(column)
    if batch is None:
        return None
    state = type(branches[0])(**fields, **{identifier: "+".join(map(str, ids))})
    stacked = tuple(f for f in fields.values() if isinstance(f, torch.Tensor))
    return _Merged(state, list(branches), batch, stacked)


def _repeat(value: Any, merged: _Merged) -> Any:
    """`value` with every per-branch tensor in it repeated once per branch along dim 0."""
    if isinstance(value, torch.Tensor):
        if value.ndim == 0 or value.shape[0] != merged.batch or any(value is f for f in merged.fields):
            return value
        return torch.cat([value] * merged.k)
    if isinstance(value, Mapping):
        return {key: _repeat(item, merged) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_repeat(item, merged) for item in value)
    return value

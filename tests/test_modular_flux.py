"""Flux's Modular Diffusers blocks run under dfgraph: `df.compile(from_modular(...))` equals ModularPipeline.

A loop of another shape than SDXL's: flow matching (FlowMatchEulerDiscreteScheduler with dynamic shifting),
a transformer over packed latents, a guidance embedding instead of a CFG batch pair (one transformer call
per step). Tiny random components (`tiny.flux_components()`: CLIP and T5 encoders, tokenizers over
vocabularies written on the fly, nothing from a model hub), diffusers' own `FluxAutoBlocks` and
`FluxKontextAutoBlocks`, from the text prompt (the text encoder step runs), the same inputs and seed on
both sides: bitwise equal float32 latents and the same number of transformer calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("diffusers")

import numpy as np
import PIL.Image
import torch
from diffusers.modular_pipelines import FluxAutoBlocks, FluxKontextAutoBlocks
from hypothesis import given, settings
from hypothesis import strategies as st
from test_modular_run import components_as, pipeline_of

import dfgraph as df
from dfgraph_blocks.diffusers_compat import from_modular
from dfgraph_blocks.diffusion import tiny

STEPS = 4
SEED = 0
SIZE = 32  # pixels: 4x4 latents, 2x2 packed tokens
STRENGTH = 0.6


# Real (docs/modular_findings.md, Flux): `prepare_rope_inputs` declares `txt_ids`/`img_ids` as list[int]
# and builds tensors; the denoiser declares Tensor. The DF001 is reported at the reading port.
@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Both sides on one torch thread: tiny matmuls on two threads of a busy machine ran 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def flux() -> dict[str, Any]:
    """Tiny Flux components, a FluxModularPipeline and a FluxKontextModularPipeline holding them, and the
    transformer calls of the last run."""
    components = tiny.flux_components()
    calls: list[int] = []
    components["transformer"].register_forward_hook(lambda *_: calls.append(1))
    return {
        "components": components,
        "pipe": pipeline_of(FluxAutoBlocks(), components),
        "kontext": pipeline_of(FluxKontextAutoBlocks(), components),
        "calls": calls,
    }


def image() -> PIL.Image.Image:
    return PIL.Image.fromarray(np.random.default_rng(SEED).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))


def flux_inputs(workflow: str, *, steps: int = STEPS, strength: float = STRENGTH) -> dict[str, Any]:
    """The inputs of one workflow; T5 reads 16 tokens (Flux's default is 512); no VAE decode."""
    inputs: dict[str, Any] = {"prompt": "a red cat", "max_sequence_length": 16, "output_type": "latent"}
    inputs |= {"num_inference_steps": steps, "height": SIZE, "width": SIZE}
    if workflow == "image2image":
        inputs |= {"image": image(), "strength": strength}
    if workflow == "image_conditioned":  # keep Kontext at SIZE: no resize to its preferred resolutions
        inputs |= {"image": image(), "_auto_resize": False}
    return inputs


def img2img_steps(steps: int, strength: float) -> int:
    """The steps FluxImg2ImgSetTimestepsStep keeps: the last `strength` of the schedule."""
    return steps - int(max(steps - min(steps * strength, steps), 0))


def both(
    flux: dict[str, Any], program: Any, inputs: dict[str, Any], *, pipe: Any = None, seed: int = SEED
) -> Any:
    """(our latents, our transformer calls, Modular Diffusers' latents, its transformer calls)."""
    calls = flux["calls"]
    calls.clear()
    ours = program(**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
    our_calls = len(calls)
    calls.clear()
    theirs = (pipe or flux["pipe"])(**inputs, generator=torch.Generator().manual_seed(seed), output="latents")
    return ours, our_calls, theirs, len(calls)


def walk(block: Any) -> Iterator[Any]:
    """The block and every block inside it (Sequential children, Loop bodies, Switch cases)."""
    yield block
    inner: list[Any] = [child for _, child in getattr(block, "children", ())]
    inner += [block.body] if isinstance(block, df.Loop) else []
    inner += list(block.cases.values()) if isinstance(block, df.Switch) else []
    for child in inner:
        yield from walk(child)


def test_flux_has_two_documented_errors_carried_as_suppressions(flux: dict[str, Any]) -> None:
    plain = df.check(from_modular(FluxAutoBlocks(), known_findings=False))
    assert {(d.code, d.path.rsplit("/", 1)[-1]) for d in plain.errors} == {
        ("DF001", "denoiser.txt_ids"),
        ("DF001", "denoiser.img_ids"),
    }
    report = df.check(from_modular(FluxAutoBlocks()))  # the known findings are carried as suppressions
    assert report.errors == ()
    assert {d.code for d in report.diagnostics} == {"DF202"}  # untyped and undeclared ports: warnings
    assert {(d.code, d.path.rsplit("/", 1)[-1]) for d in report.ignored if d.code != "DF202"} == {
        ("DF001", "denoiser.txt_ids"),
        ("DF001", "denoiser.img_ids"),
    }
    with pytest.raises(df.WiringError, match="DF001"):
        df.compile(from_modular(FluxAutoBlocks(), components=flux["pipe"], known_findings=False))


@pytest.fixture(scope="module")
def one_graph(flux: dict[str, Any]) -> Any:
    """FluxAutoBlocks as one graph of Switches, compiled, run with the ModularPipeline's components."""
    return df.compile(from_modular(FluxAutoBlocks(), components=flux["pipe"]))


@pytest.mark.parametrize("workflow", ["text2image", "image2image"])
def test_flux_one_graph_equals_modular_pipeline(flux: dict[str, Any], one_graph: Any, workflow: str) -> None:
    ours, our_calls, theirs, their_calls = both(flux, one_graph, flux_inputs(workflow))
    assert ours.dtype == theirs.dtype == torch.float32
    assert ours.shape == (1, tiny.FLUX_LATENT_CHANNELS, SIZE // 8, SIZE // 8)  # unpacked at the end
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    expected = STEPS if workflow == "text2image" else img2img_steps(STEPS, STRENGTH)
    assert our_calls == their_calls == expected  # guidance is embedded: one call per step, no batch pair


def test_flux_decoded_images_equal_modular_pipeline(flux: dict[str, Any], one_graph: Any) -> None:
    inputs = {**flux_inputs("text2image", steps=2), "output_type": "pt"}
    ours = one_graph(**inputs, generator=torch.Generator().manual_seed(SEED), output="images")
    theirs = flux["pipe"](**inputs, generator=torch.Generator().manual_seed(SEED), output="images")
    assert ours.shape == (1, 3, SIZE, SIZE)
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()


@pytest.mark.parametrize("form", ["dict", "manager"])
def test_flux_components_as_a_dict_or_a_manager_run_the_same(flux: dict[str, Any], form: str) -> None:
    graph = from_modular(FluxAutoBlocks(), components=components_as(flux, form))
    ours, our_calls, theirs, their_calls = both(flux, df.compile(graph), flux_inputs("image2image"))
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == img2img_steps(STEPS, STRENGTH)


@pytest.mark.parametrize("workflow", ["text2image", "image2image"])
def test_a_resolved_flux_workflow_equals_modular_pipeline(flux: dict[str, Any], workflow: str) -> None:
    graph = from_modular(FluxAutoBlocks(), workflow=workflow, components=flux["pipe"])
    assert not any(isinstance(b, df.Switch) for b in walk(graph))  # every auto block resolved
    ours, our_calls, theirs, their_calls = both(flux, df.compile(graph), flux_inputs(workflow))
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls


def test_the_patchified_image_latents_are_an_output_of_the_additional_inputs_step() -> None:
    """Equal image2image only because `additional_inputs` rebinds `image_latents` (packed 2x2) with
    `setattr(block_state, name, ...)` over its configured names: without that output the loop read the
    VAE's unpacked latents and `prepare_img2img_latents` refused them."""
    graph = from_modular(FluxAutoBlocks(), workflow="image2image")
    step = next(b for b in walk(graph) if getattr(b, "name", "") == "additional_inputs")
    assert "image_latents" in {p.name for p in step.outputs}


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    steps=st.integers(1, 3),
    workflow=st.sampled_from(["text2image", "image2image"]),
    strength=st.sampled_from([0.1, 0.5, 1.0]),
)
def test_flux_equals_modular_pipeline_for_any_seed_and_steps(
    flux: dict[str, Any], one_graph: Any, seed: int, steps: int, workflow: str, strength: float
) -> None:
    inputs = flux_inputs(workflow, steps=steps, strength=strength)
    ours, our_calls, theirs, their_calls = both(flux, one_graph, inputs, seed=seed)
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == (steps if workflow == "text2image" else img2img_steps(steps, strength))


def test_zero_steps_fail_in_the_same_block_as_in_diffusers(flux: dict[str, Any], one_graph: Any) -> None:
    """Flux's set_timesteps divides by num_inference_steps: diffusers raises ZeroDivisionError at 0 steps;
    dfgraph raises it too, as a BlockError naming that block, before any transformer call."""
    inputs = flux_inputs("text2image", steps=0)
    flux["calls"].clear()
    with pytest.raises(ZeroDivisionError):
        flux["pipe"](**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    with pytest.raises(df.BlockError, match="set_timesteps") as raised:
        one_graph(**inputs, generator=torch.Generator().manual_seed(SEED), output="latents")
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    assert raised.value.path.endswith("text2image/set_timesteps")
    assert flux["calls"] == []


# -- Flux Kontext: the image is a second sequence of tokens, not a starting point ---------------------------


@pytest.mark.parametrize("workflow", ["text2image", "image_conditioned"])
def test_flux_kontext_one_graph_equals_modular_pipeline(flux: dict[str, Any], workflow: str) -> None:
    """Kontext text2image is equal only because a Switch case that leaves a pipeline input unset passes the
    caller's value on: only the image-conditioned input case rewrites `height` (to max_area), and a None
    from the text2image case made the latents Kontext's default 1024 pixels high."""
    graph = from_modular(FluxKontextAutoBlocks(), components=flux["kontext"])
    assert df.check(graph).errors == ()
    inputs = {**flux_inputs(workflow), "max_area": SIZE * SIZE}
    ours, our_calls, theirs, their_calls = both(flux, df.compile(graph), inputs, pipe=flux["kontext"])
    assert ours.shape == (1, tiny.FLUX_LATENT_CHANNELS, SIZE // 8, SIZE // 8)
    assert torch.equal(ours, theirs), (ours - theirs).abs().max().item()
    assert our_calls == their_calls == STEPS  # Kontext does not cut the schedule by strength


# -- the tiny components ---------------------------------------------------------------------------------


def test_the_tiny_t5_tokenizer_spells_words_with_word_start_pieces() -> None:
    tokenizer = tiny.t5_tokenizer()
    ids = tokenizer("a red cat", padding="max_length", max_length=12).input_ids
    assert tokenizer.convert_ids_to_tokens(ids[:8]) == [
        "\u2581a",
        "\u2581r",
        "e",
        "d",
        "\u2581c",
        "a",
        "t",
        "</s>",
    ]
    assert ids[8:] == [tokenizer.pad_token_id] * 4 == [0] * 4  # T5 pads with id 0
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a red cat"

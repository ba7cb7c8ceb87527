"""The diffusion graphs reproduce diffusers' own pipelines, and the checker rejects miswired variants.

Equivalence is tested in float64 for every scheduler, guidance scale and fusion setting: there the only
differences left are rounding (about 1e-14). In float32 the fused graph and single-branch guidance give
the pipeline's latents bit for bit, because they batch the UNet exactly as the pipeline does. Two
separate batch-1 calls (unfused, guidance > 1) round differently from the pipeline's one batch-2 call
(CPU GEMV versus GEMM in the time embedding, 1e-7 in one layer), which guidance 7.5 amplifies to about
1e-4 over the steps; that case is held to 1e-3 in float32 and to 1e-5 in float64.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import PIL.Image
import pytest
import torch
from jaxtyping import Float
from torch import Tensor

import dfgraph as df
from dfgraph.cli import main as dfgraph_main
from dfgraph_blocks.diffusion import demo, denoising_loop, img2img, sd_auto, steps, text2img, tiny

STEPS = 6
SEED = 1


@pytest.fixture(scope="module")
def parts() -> dict[torch.dtype, Any]:
    """Tiny UNet and VAE with the same random weights, in float32 and float64."""
    unet, vae = tiny.unet(), tiny.vae()
    return {
        torch.float32: (unet, vae),
        torch.float64: (tiny.unet().double(), tiny.vae().double()),
    }


def embeddings(dtype: torch.dtype, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    prompt, negative = tiny.prompt_embeddings(batch=batch)
    return prompt.to(dtype), negative.to(dtype)


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(SEED)


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape and a.dtype == b.dtype
    return float((a - b).abs().max())


def run_text2img(
    unet: Any, kind: str, *, fuse: bool = False, vae: Any | None = None, **inputs: Any
) -> dict[str, Any]:
    program = df.compile(text2img(unet=unet, scheduler=tiny.scheduler(kind), vae=vae), fuse=fuse)
    result: dict[str, Any] = program(num_inference_steps=STEPS, generator=generator(), **inputs)
    return result


def run_pipeline(
    unet: Any, kind: str, *, vae: Any | None = None, output_type: str = "latent", **inputs: Any
) -> Any:
    pipe = tiny.pipeline(unet, tiny.scheduler(kind), vae)
    return pipe(num_inference_steps=STEPS, generator=generator(), output_type=output_type, **inputs).images


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
@pytest.mark.parametrize("kind", tiny.SCHEDULERS)
def test_text2img_gives_the_pipeline_latents(
    parts: Any, kind: str, guidance_scale: float, fuse: bool
) -> None:
    for dtype in (torch.float64, torch.float32):
        unet, _ = parts[dtype]
        prompt, negative = embeddings(dtype)
        inputs = {
            "prompt_embeds": prompt,
            "negative_prompt_embeds": negative,
            "guidance_scale": guidance_scale,
        }
        ours = run_text2img(unet, kind, fuse=fuse, height=64, width=64, **inputs)["latents"]
        theirs = run_pipeline(unet, kind, height=64, width=64, **inputs)
        same_batching = fuse or guidance_scale <= 1
        tolerance = 1e-5 if dtype == torch.float64 or same_batching else 1e-3
        assert max_difference(ours, theirs) <= tolerance, (dtype, max_difference(ours, theirs))
        if dtype == torch.float32 and same_batching:
            assert torch.equal(ours, theirs)


def test_text2img_with_a_vae_gives_the_pipeline_image(parts: Any) -> None:
    unet, vae = parts[torch.float64]
    prompt, negative = embeddings(torch.float64)
    inputs = {"prompt_embeds": prompt, "negative_prompt_embeds": negative, "guidance_rescale": 0.7}
    ours = run_text2img(unet, "euler_ancestral", vae=vae, fuse=True, height=32, width=48, **inputs)
    latents = run_pipeline(unet, "euler_ancestral", vae=vae, height=32, width=48, **inputs)
    image = run_pipeline(unet, "euler_ancestral", vae=vae, output_type="pt", height=32, width=48, **inputs)
    assert ours["latents"].shape == (1, 4, 4, 6)  # height and width in pixels, latents at 1/8
    assert ours["image"].shape == (1, 3, 32, 48)
    assert max_difference(ours["latents"], latents) <= 1e-5
    assert max_difference(ours["image"], image) <= 1e-5
    assert float(ours["image"].min()) >= 0 and float(ours["image"].max()) <= 1


def test_text2img_batches_given_latents_and_per_sample_generators(parts: Any) -> None:
    unet, _ = parts[torch.float64]
    prompt, negative = embeddings(torch.float64, batch=2)
    start = torch.randn(2, 4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    inputs = {"prompt_embeds": prompt, "negative_prompt_embeds": negative}
    program = df.compile(text2img(unet=unet, scheduler=tiny.scheduler("euler_ancestral")))
    generators = [torch.Generator().manual_seed(k) for k in range(2)]
    ours = program(num_inference_steps=STEPS, latents=start, generator=generators, **inputs)["latents"]
    pipe = tiny.pipeline(unet, tiny.scheduler("euler_ancestral"))
    generators = [torch.Generator().manual_seed(k) for k in range(2)]
    theirs = pipe(
        num_inference_steps=STEPS, latents=start, generator=generators, output_type="latent", **inputs
    )
    assert max_difference(ours, theirs.images) <= 1e-5


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
@pytest.mark.parametrize("kind", tiny.SCHEDULERS)
def test_img2img_gives_the_pipeline_latents_and_image(
    parts: Any, kind: str, guidance_scale: float, fuse: bool
) -> None:
    unet, vae = parts[torch.float64]
    prompt, negative = embeddings(torch.float64)
    image = torch.rand(1, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    inputs = {
        "prompt_embeds": prompt,
        "negative_prompt_embeds": negative,
        "guidance_scale": guidance_scale,
        "image": image,
        "strength": 0.6,
        "num_inference_steps": 10,
    }
    program = df.compile(img2img(unet=unet, scheduler=tiny.scheduler(kind), vae=vae), fuse=fuse)
    ours = program(generator=generator(), **inputs)
    pipe = tiny.pipeline(unet, tiny.scheduler(kind), vae, img2img=True)
    latents = pipe(generator=generator(), output_type="latent", **inputs).images
    decoded = pipe(generator=generator(), output_type="pt", **inputs).images
    assert max_difference(ours["latents"], latents) <= 1e-5
    assert max_difference(ours["image"], decoded) <= 1e-5


def test_the_graphs_check_clean_with_the_pipeline_input_names(parts: Any) -> None:
    unet, vae = parts[torch.float32]
    graph = text2img(unet=unet, scheduler=tiny.scheduler(), vae=vae)
    report = df.check(graph)
    assert report.ok and not report.warnings, report
    names = {p.name for p in graph.inputs}
    assert names == {
        "prompt_embeds",
        "negative_prompt_embeds",
        "num_inference_steps",
        "guidance_scale",
        "guidance_rescale",
        "height",
        "width",
        "generator",
        "latents",
        "eta",
        "callback_on_step_end",
        "callback_on_step_end_tensor_inputs",
    }
    assert {p.name for p in graph.outputs} == {"latents", "image"}
    defaults = {p.name: p.default for p in graph.inputs if not p.required}
    assert defaults["height"] == defaults["width"] == unet.config.sample_size * 8
    assert defaults["guidance_scale"] == 7.5 and defaults["num_inference_steps"] == 50
    assert [p.name for p in graph.inputs if p.required] == ["prompt_embeds"]
    assert {p.name for p in text2img(unet=unet, scheduler=tiny.scheduler()).outputs} == {"latents"}
    i2i = img2img(unet=unet, scheduler=tiny.scheduler(), vae=vae)
    assert df.check(i2i).ok
    assert {"image", "strength"} <= {p.name for p in i2i.inputs}
    assert not {"height", "width", "latents"} & {p.name for p in i2i.inputs}


class CountingUNet(torch.nn.Module):
    """Wraps a UNet and counts forward calls and the batch of each."""

    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet
        self.config = unet.config
        self.batches: list[int] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, sample: torch.Tensor, t: torch.Tensor, **kwargs: Any) -> Any:
        self.batches.append(sample.shape[0])
        return self.unet(sample, t, **kwargs)


@pytest.mark.parametrize(
    ("guidance_scale", "fuse", "batches"),
    [(7.5, False, [1, 1]), (7.5, True, [2]), (1.0, False, [1]), (1.0, True, [1])],
)
def test_unet_calls_per_step(parts: Any, guidance_scale: float, fuse: bool, batches: list[int]) -> None:
    counting = CountingUNet(parts[torch.float32][0])
    prompt, negative = embeddings(torch.float32)
    run_text2img(
        counting,
        "ddim",
        fuse=fuse,
        prompt_embeds=prompt,
        negative_prompt_embeds=negative,
        guidance_scale=guidance_scale,
    )
    assert counting.batches == batches * STEPS


def test_the_branches_are_independent_blocks_on_two_streams(parts: Any) -> None:
    unet, _ = parts[torch.float32]
    program = df.compile(text2img(unet=unet, scheduler=tiny.scheduler()), streams="auto", fuse=False)
    body = program.schedule
    cond, uncond = "text2img/denoise/cfg/step/cond", "text2img/denoise/cfg/step/uncond"
    assert body.stream_of(cond) != body.stream_of(uncond)
    order = body.issue_order
    assert order.index("text2img/denoise/cfg/step/scale") < order.index(cond)
    assert order.index(cond) < order.index("text2img/denoise/cfg/step/guidance")


def test_wrong_latent_channels_are_rejected_statically(parts: Any) -> None:
    unet, _ = parts[torch.float32]
    eight = tiny.unet(in_channels=8)
    scheduler = tiny.scheduler()
    graph = df.Sequential(
        steps.set_timesteps(scheduler, unet),
        steps.prepare_latents(scheduler, eight, 8),  # made for an 8-channel UNet
        denoising_loop(unet, scheduler),
        name="miswired",
    )
    report = df.check(graph)
    assert "DF301" in report.codes()
    assert any("8" in d.message and "4" in d.message for d in report.errors)


def test_wrong_embedding_width_is_rejected_statically(parts: Any) -> None:
    unet, _ = parts[torch.float32]
    wide = tiny.unet(cross_attention_dim=64)

    @df.block(outputs="negative_prompt_embeds")
    def wide_negative(negative_prompt: str) -> Float[Tensor, "batch sequence 64"]:
        """64-wide negative embeddings, for a 32-wide denoiser."""
        return torch.zeros(1, 8, wide.config.cross_attention_dim)

    graph = df.Sequential(wide_negative, denoising_loop(unet, tiny.scheduler()), name="miswired")
    report = df.check(graph)
    assert set(report.codes()) == {"DF301"}
    assert any("uncond" in d.path for d in report.errors)


@df.block(outputs="prompt_embeds")
def text_encoder_output(prompt: str) -> dict[str, torch.Tensor]:
    """A text encoder that returns its output mapping instead of the hidden states."""
    return {"last_hidden_state": torch.zeros(1, 8, 32)}


def test_wrong_embedding_type_is_rejected_statically(parts: Any) -> None:
    unet, _ = parts[torch.float32]
    graph = df.Sequential(
        text_encoder_output, text2img(unet=unet, scheduler=tiny.scheduler()), name="miswired"
    )
    report = df.check(graph)
    assert "DF001" in report.codes()
    assert any("prompt_embeds" in d.message for d in report.errors)


def test_bad_inputs_fail_with_the_block_named(parts: Any) -> None:
    unet, vae = parts[torch.float32]
    prompt, negative = embeddings(torch.float32)
    counting = CountingUNet(unet)
    program = df.compile(text2img(unet=counting, scheduler=tiny.scheduler()))
    # guidance on needs the unconditional branch's embeddings: found before any block runs
    with pytest.raises(df.InputError, match="negative_prompt_embeds"):
        program(prompt_embeds=prompt, guidance_scale=7.5)
    assert counting.batches == []
    program(prompt_embeds=prompt, guidance_scale=1.0, num_inference_steps=2)  # guidance off: not needed
    assert counting.batches == [1, 1]
    with pytest.raises(df.BlockError, match=r"prepare_latents.*divisible by 8"):
        program(prompt_embeds=prompt, negative_prompt_embeds=negative, height=60)
    with pytest.raises(df.BlockError, match=r"set_timesteps.*at least 1"):
        program(prompt_embeds=prompt, negative_prompt_embeds=negative, num_inference_steps=0)
    with pytest.raises(df.InputError, match="prompt_embeds"):
        program(prompt_embeds=torch.zeros(1, 8, 64))  # a 64-wide embedding fails the boundary check
    i2i = df.compile(img2img(unet=unet, scheduler=tiny.scheduler(), vae=vae))
    image = torch.rand(1, 3, 32, 32)
    with pytest.raises(df.BlockError, match="leaves no denoising step"):
        i2i(
            prompt_embeds=prompt,
            negative_prompt_embeds=negative,
            image=image,
            strength=0.05,
            num_inference_steps=10,
        )
    with pytest.raises(df.BlockError, match=r"strength must be in \[0, 1\]"):
        i2i(prompt_embeds=prompt, negative_prompt_embeds=negative, image=image, strength=1.5)


def test_guidance_without_an_unconditional_prediction_passes_the_text_prediction() -> None:
    text = torch.randn(1, 4, 2, 2)
    assert steps.classifier_free_guidance(text, None, 7.5) is text
    uncond = torch.randn(1, 4, 2, 2)
    assert torch.allclose(steps.classifier_free_guidance(text, uncond, 1.0), text, atol=1e-6)
    with pytest.raises(ValueError, match="conditional branch"):
        steps.classifier_free_guidance(None, uncond, 7.5)


def test_demo_writes_a_png_of_the_asked_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "image.png"
    demo.main(["--steps", "3", "--size", "64", "--scheduler", "euler", "--out", str(out)])
    text = capsys.readouterr().out
    assert "check text2img: 0 errors, 0 warnings" in text
    assert "text2img/denoise/cfg/step/uncond" in text  # the schedule table
    assert "fused: text2img/denoise/cfg/step/cond + text2img/denoise/cfg/step/uncond" in text
    with PIL.Image.open(out) as image:
        assert image.size == (64, 64) and image.mode == "RGB"
    # pictures of the graph and its schedule next to the PNG, each the render of the demo's graph
    suffixes = {p.name.removeprefix("image") for p in tmp_path.iterdir()} - {".png"}
    assert suffixes == {
        ".graph.svg",
        ".graph.mmd",
        ".graph.dot",
        ".schedule.svg",
        ".schedule.mmd",
        ".trace.json",
    }
    assert "step: scheduler_step" in (tmp_path / "image.graph.svg").read_text()
    assert "Note over S1: step/uncond" in (tmp_path / "image.schedule.mmd").read_text()


def test_the_cli_checks_a_graph_factory(capsys: pytest.CaptureFixture[str]) -> None:
    assert dfgraph_main(["check", "dfgraph_blocks.diffusion.demo:tiny_text2img"]) == 0
    assert "tiny_text2img: 0 errors, 0 warnings" in capsys.readouterr().out
    assert dfgraph_main(["check", "dfgraph_blocks.diffusion.demo:save_png"]) == 2  # unloadable: usage
    assert "calling it failed" in capsys.readouterr().err


# -- control flow: guidance on/off is a Switch; sd_auto picks text2img or img2img ---------------------------


def test_guidance_on_or_off_is_a_switch_decided_once_per_call(parts: Any) -> None:
    unet, _ = parts[torch.float32]
    graph = text2img(unet=unet, scheduler=tiny.scheduler())
    denoise = graph.nodes["denoise"]
    assert isinstance(denoise, df.Switch)
    assert list(denoise.cases) == ["cfg", "single"]
    assert denoise.selector_name == "do_classifier_free_guidance"
    # the rule of diffusers' do_classifier_free_guidance, and the Literal the checker matches to the cases
    assert [steps.guidance_selector(unet)(guidance_scale=g) for g in (7.5, 1.01, 1.0, 0.0)] == [
        "cfg",
        "cfg",
        "single",
        "single",
    ]
    cfg_body = {name for name, _ in denoise.cases["cfg"].body.nodes.items()}
    single_body = {name for name, _ in denoise.cases["single"].body.nodes.items()}
    assert cfg_body == {"scale", "cond", "uncond", "guidance", "step", "step_end"}
    assert single_body == {"scale", "cond", "step", "step_end"}  # one UNet call per step, no None embeddings
    ports = {p.name: p for p in graph.inputs}
    assert not ports["negative_prompt_embeds"].required  # needed only when the "cfg" case is chosen
    assert ports["guidance_scale"].default == 7.5


def test_guidance_off_gives_the_pipeline_latents_without_negative_embeddings(parts: Any) -> None:
    unet, _ = parts[torch.float32]
    prompt, _ = embeddings(torch.float32)
    ours = run_text2img(unet, "euler", prompt_embeds=prompt, guidance_scale=1.0)["latents"]
    theirs = run_pipeline(unet, "euler", prompt_embeds=prompt, guidance_scale=1.0)
    assert torch.equal(ours, theirs)


def auto_inputs(dtype: torch.dtype, guidance_scale: float, image: torch.Tensor | None) -> dict[str, Any]:
    prompt, negative = embeddings(dtype)
    inputs: dict[str, Any] = {
        "prompt_embeds": prompt,
        "negative_prompt_embeds": negative,
        "guidance_scale": guidance_scale,
        "num_inference_steps": STEPS,
    }
    if image is not None:
        inputs.update(image=image, strength=0.6)
    else:
        inputs.update(height=32, width=48)
    return inputs


@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
@pytest.mark.parametrize("workflow", ["text2img", "img2img"])
def test_sd_auto_equals_the_separate_graphs(parts: Any, workflow: str, guidance_scale: float) -> None:
    unet, vae = parts[torch.float32]
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    inputs = auto_inputs(torch.float32, guidance_scale, image if workflow == "img2img" else None)
    auto = df.compile(sd_auto(unet=unet, scheduler=tiny.scheduler("euler_ancestral"), vae=vae), fuse=True)
    build = text2img if workflow == "text2img" else img2img
    alone = df.compile(build(unet=unet, scheduler=tiny.scheduler("euler_ancestral"), vae=vae), fuse=True)
    ours, theirs = auto(generator=generator(), **inputs), alone(generator=generator(), **inputs)
    assert set(ours) == set(theirs) == {"latents", "image"}
    assert torch.equal(ours["latents"], theirs["latents"]) and torch.equal(ours["image"], theirs["image"])


def test_sd_auto_reads_the_union_of_both_workflows_inputs(parts: Any) -> None:
    unet, vae = parts[torch.float32]
    graph = sd_auto(unet=unet, scheduler=tiny.scheduler(), vae=vae)
    assert df.check(graph).ok and not df.check(graph).warnings
    prepare = graph.nodes["prepare"]
    assert isinstance(prepare, df.Switch) and list(prepare.cases) == ["text2img", "img2img"]
    t2i = {p.name for p in text2img(unet=unet, scheduler=tiny.scheduler(), vae=vae).inputs}
    i2i = {p.name for p in img2img(unet=unet, scheduler=tiny.scheduler(), vae=vae).inputs}
    ports = {p.name: p for p in graph.inputs}
    assert set(ports) == t2i | i2i
    assert [name for name, p in ports.items() if p.required] == ["prompt_embeds"]
    assert ports["image"].default is None and ports["strength"].default == 0.8
    assert [steps.image_given(image=i) for i in (None, torch.zeros(1, 3, 8, 8))] == ["text2img", "img2img"]


def test_sd_auto_specialized_is_each_workflow_alone(parts: Any) -> None:
    specialize = getattr(df, "specialize", None)
    if specialize is None:  # df.specialize is h-api's (dfgraph/control.py); the lead merges it
        pytest.skip("df.specialize is not exported yet")
    unet, vae = parts[torch.float32]
    graph = specialize(sd_auto(unet=unet, scheduler=tiny.scheduler("ddim"), vae=vae), image=None)
    alone = text2img(unet=unet, scheduler=tiny.scheduler("ddim"), vae=vae)
    # the same inputs, types and defaults (image is bound; strength was read by img2img's case only)
    assert {p.name: (df.describe_type(p.type), p.default) for p in graph.inputs} == {
        p.name: (df.describe_type(p.type), p.default) for p in alone.inputs
    }
    inputs = auto_inputs(torch.float32, 7.5, None)
    ours = df.compile(graph)(generator=generator(), **inputs)
    theirs = df.compile(alone)(generator=generator(), **inputs)
    assert torch.equal(ours["latents"], theirs["latents"]) and torch.equal(ours["image"], theirs["image"])


@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
@pytest.mark.parametrize("negative_prompt", [None, ["blurry", "dark"]], ids=["no-negative", "negative"])
def test_text2img_from_prompts_gives_the_pipeline_latents(
    guidance_scale: float, negative_prompt: list[str] | None
) -> None:
    import diffusers

    unet, text_encoder, tokenizer = tiny.unet(), tiny.text_encoder(), tiny.tokenizer()
    graph = text2img(
        unet=unet, scheduler=tiny.scheduler("euler"), text_encoder=text_encoder, tokenizer=tokenizer
    )
    names = {p.name for p in graph.inputs}
    assert {"prompt", "negative_prompt", "num_images_per_prompt"} <= names
    assert not {"prompt_embeds", "negative_prompt_embeds"} & names
    assert df.check(graph).ok
    inputs = {
        "prompt": ["a cat", "a dog"],
        "negative_prompt": negative_prompt,
        "num_inference_steps": 3,
        "guidance_scale": guidance_scale,
        "height": 32,
        "width": 32,
        "num_images_per_prompt": 2,
    }
    ours = df.compile(graph)(**inputs, generator=torch.Generator().manual_seed(0), output="latents")
    pipe = diffusers.StableDiffusionPipeline(
        vae=None,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=tiny.scheduler("euler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(**inputs, generator=torch.Generator().manual_seed(0), output_type="latent").images
    assert ours.shape[0] == 4 and torch.equal(ours, theirs)


def test_encoders_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="text_encoder and tokenizer together"):
        text2img(unet=tiny.unet(), scheduler=tiny.scheduler(), text_encoder=tiny.text_encoder())


@pytest.mark.parametrize("workflow", ["text2img", "img2img"])
def test_a_diffusers_cfg_guider_gives_the_pipeline_latents_in_float64(parts: Any, workflow: str) -> None:
    from diffusers.guiders import ClassifierFreeGuidance

    unet, vae = parts[torch.float64]
    prompt, negative = (e.double() for e in tiny.prompt_embeddings())
    inputs: dict[str, Any] = {
        "prompt_embeds": prompt,
        "negative_prompt_embeds": negative,
        "num_inference_steps": 4,
    }
    if workflow == "img2img":
        inputs |= {
            "image": torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)),
            "strength": 0.75,
        }
    else:
        inputs |= {"height": 32, "width": 32}
    build = img2img if workflow == "img2img" else text2img
    graph = build(
        unet=unet,
        scheduler=tiny.scheduler("euler"),
        vae=vae,
        guider=ClassifierFreeGuidance(guidance_scale=7.5),
    )
    assert "guidance_scale" not in {p.name for p in graph.inputs}  # the guider's own scale is used
    assert not df.compile(graph).fused  # the guider makes one UNet call per branch, as Modular Diffusers
    ours = df.compile(graph)(**inputs, generator=torch.Generator().manual_seed(0), output="latents")
    pipe = tiny.pipeline(unet, tiny.scheduler("euler"), vae, img2img=workflow == "img2img")
    theirs = pipe(
        **inputs, guidance_scale=7.5, generator=torch.Generator().manual_seed(0), output_type="latent"
    ).images
    assert (ours - theirs).abs().max() < 1e-10

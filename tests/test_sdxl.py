"""sdxl_text2img and sdxl_img2img reproduce diffusers' StableDiffusionXL(Img2Img)Pipeline.

Same tiny components, inputs and seed: float64 within 1e-10 for every scheduler (DDIM with its default,
legacy config too), guidance on and off, from embeddings and from prompts; float32 bit for bit when the
branches fuse into the pipeline's one batch-2 UNet call. The UNet conditioning is checked while the graph
is built: an SD 1.x UNet here, or an SDXL UNet in text2img, names the missing inputs.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from pathlib import Path
from typing import Any

import diffusers
import PIL.Image
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float
from torch import Tensor

import dfgraph as df
from dfgraph.cli import main as dfgraph_main
from dfgraph_blocks.diffusion import demo, sdxl, sdxl_img2img, sdxl_text2img, steps, text2img, tiny

STEPS = 5
SEED = 1
ENCODERS = ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")
KINDS = ("ddim", "ddim-default", "euler", "euler_ancestral", "dpm++")
_UNET = tiny.sdxl_unet()  # for the hypothesis test (its examples share one UNet; nothing runs it)


@pytest.fixture(scope="module")
def parts() -> dict[torch.dtype, dict[str, Any]]:
    """The tiny SDXL components with the same random weights, in float32 and float64."""
    double = tiny.sdxl_components()
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        double[name] = double[name].double()
    return {torch.float32: tiny.sdxl_components(), torch.float64: double}


def scheduler(kind: str) -> Any:
    """tiny.scheduler(kind), or "ddim-default": DDIMScheduler() with its legacy defaults (steps_offset 0,
    clip_sample True), which the SDXL pipelines do not rewrite."""
    return diffusers.DDIMScheduler() if kind == "ddim-default" else tiny.scheduler(kind)


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(SEED)


def embeddings(dtype: torch.dtype, batch: int = 1) -> dict[str, Tensor]:
    return {k: v.to(dtype) for k, v in tiny.sdxl_prompt_embeddings(batch=batch).items()}


def image(dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)).to(dtype)


def run(
    components: dict[str, Any],
    kind: str,
    *,
    img2img: bool = False,
    prompts: bool = False,
    vae: bool = False,
    fuse: bool | None = None,
    **inputs: Any,
) -> tuple[dict[str, Tensor], Tensor]:
    """Ours (outputs) and the pipeline's (latents, or the image with a VAE) on fresh schedulers."""
    encoders = {k: components[k] for k in ENCODERS} if prompts else {}
    decoder = components["vae"] if vae or img2img else None
    build = sdxl_img2img if img2img else sdxl_text2img
    graph = build(unet=components["unet"], scheduler=scheduler(kind), vae=decoder, **encoders)
    program = df.compile(graph) if fuse is None else df.compile(graph, fuse=fuse)  # default: fused
    ours: dict[str, Tensor] = program(generator=generator(), **inputs)
    pipe = tiny.sdxl_pipeline(components["unet"], scheduler(kind), decoder, img2img=img2img, **encoders)
    output_type = "pt" if decoder is not None else "latent"
    theirs: Tensor = pipe(generator=generator(), output_type=output_type, **inputs).images
    return ours, theirs


def difference(a: Tensor, b: Tensor) -> float:
    assert a.shape == b.shape and a.dtype == b.dtype
    return float((a - b).abs().max())


@pytest.mark.parametrize("guidance_scale", [5.0, 1.0])
@pytest.mark.parametrize("kind", KINDS)
def test_text2img_from_embeddings_gives_the_pipeline_latents(
    parts: Any, kind: str, guidance_scale: float
) -> None:
    for dtype in (torch.float64, torch.float32):
        inputs = {"num_inference_steps": STEPS, "guidance_scale": guidance_scale, **embeddings(dtype)}
        ours, theirs = run(parts[dtype], kind, **inputs)
        if dtype == torch.float64:
            assert difference(ours["latents"], theirs) <= 1e-10
        else:  # the fused branches are the pipeline's batch-2 call
            assert torch.equal(ours["latents"], theirs)


@pytest.mark.parametrize("kind", ["euler_ancestral", "dpm++"])
def test_text2img_from_prompts_gives_the_pipeline_image(parts: Any, kind: str) -> None:
    cases: list[dict[str, Any]] = [
        {"prompt": "a red cat", "guidance_rescale": 0.7},
        {
            "prompt": ["a cat", "a dog"],
            "prompt_2": ["oil", "ink"],
            "negative_prompt": "blurry",
            "num_images_per_prompt": 2,
        },
        {"prompt": "a cat", "negative_prompt": "dark", "negative_prompt_2": "flat", "guidance_scale": 1.0},
    ]
    for case in cases:
        for dtype in (torch.float64, torch.float32):
            ours, theirs = run(
                parts[dtype], kind, prompts=True, vae=True, num_inference_steps=STEPS, height=48, **case
            )
            assert ours["image"].shape == theirs.shape and ours["latents"].shape[-2:] == (6, 8)
            if dtype == torch.float64:
                assert difference(ours["image"], theirs) <= 1e-10
            else:
                assert torch.equal(ours["image"], theirs)


def test_size_conditioning_gives_the_pipeline_latents(parts: Any) -> None:
    """original/target size, crop corner and their negatives; with a batch of 2, whose negative time ids
    the pipeline interleaves ([negative, positive] repeated)."""
    sizes = {
        "original_size": (128, 96),
        "crops_coords_top_left": (8, 4),
        "target_size": (64, 64),
        "negative_original_size": (32, 32),
        "negative_crops_coords_top_left": (0, 16),
        "negative_target_size": (48, 64),
    }
    for batch in (1, 2):
        inputs = {"num_inference_steps": STEPS, **embeddings(torch.float64, batch), **sizes}
        ours, theirs = run(parts[torch.float64], "euler", **inputs)
        assert difference(ours["latents"], theirs) <= 1e-10
        plain, _ = run(
            parts[torch.float64], "euler", num_inference_steps=STEPS, **embeddings(torch.float64, batch)
        )
        assert difference(ours["latents"], plain["latents"]) > 1e-3  # the sizes reach the UNet


def test_denoising_end_and_given_latents_give_the_pipeline_latents(parts: Any) -> None:
    start = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    inputs = {"num_inference_steps": 8, "denoising_end": 0.6, "latents": start, **embeddings(torch.float64)}
    for kind in ("euler", "dpm++"):
        ours, theirs = run(parts[torch.float64], kind, **inputs)
        assert difference(ours["latents"], theirs) <= 1e-10


@pytest.mark.parametrize("guidance_scale", [5.0, 1.0])
@pytest.mark.parametrize("kind", KINDS)
def test_img2img_gives_the_pipeline_latents_and_image(parts: Any, kind: str, guidance_scale: float) -> None:
    for dtype in (torch.float64, torch.float32):
        inputs = {
            "image": image(dtype),
            "strength": 0.6,
            "num_inference_steps": 8,
            "guidance_scale": guidance_scale,
            **embeddings(dtype),
        }
        ours, theirs = run(parts[dtype], kind, img2img=True, **inputs)
        if dtype == torch.float64:
            assert difference(ours["image"], theirs) <= 1e-10
        else:
            assert torch.equal(ours["image"], theirs)


def test_img2img_from_prompts_with_denoising_start_and_sizes(parts: Any) -> None:
    cases: list[dict[str, Any]] = [
        {"prompt": ["a cat", "a dog"], "negative_prompt": "blurry", "strength": 0.5},
        {"prompt": "a cat", "denoising_start": 0.5, "denoising_end": 0.8},
        {
            "prompt": "a cat",
            "original_size": (96, 96),
            "negative_target_size": (32, 32),
            "num_images_per_prompt": 2,
        },
    ]
    for case in cases:
        ours, theirs = run(
            parts[torch.float64],
            "dpm++",
            img2img=True,
            prompts=True,
            image=image(torch.float64),
            num_inference_steps=8,
            **case,
        )
        assert difference(ours["image"], theirs) <= 1e-10


def test_img2img_with_an_aesthetic_score(parts: Any) -> None:
    """requires_aesthetics_score (the refiner's layout): 5 time ids, the last an aesthetic score."""
    unet = tiny.sdxl_unet(pooled_dim=32 - tiny.SDXL_TIME_EMBED).double()  # 5 ids * 8 + 32 = 6 * 8 + 24
    vae = parts[torch.float64]["vae"]
    inputs = {
        "image": image(torch.float64),
        "num_inference_steps": 8,
        "strength": 0.7,
        **embeddings(torch.float64),
    }
    graph = sdxl_img2img(
        unet=unet, scheduler=tiny.scheduler("euler"), vae=vae, requires_aesthetics_score=True
    )
    assert {"aesthetic_score", "negative_aesthetic_score"} <= {p.name for p in graph.inputs}
    program = df.compile(graph)
    pipe = tiny.sdxl_pipeline(
        unet, tiny.scheduler("euler"), vae, img2img=True, requires_aesthetics_score=True
    )
    for score in (6.0, 1.0):
        ours = program(generator=generator(), aesthetic_score=score, **inputs)["latents"]
        theirs = pipe(generator=generator(), aesthetic_score=score, output_type="latent", **inputs).images
        assert difference(ours, theirs) <= 1e-10
    with pytest.raises(ValueError, match="added time embedding of length 72"):
        sdxl_img2img(
            unet=unet, scheduler=tiny.scheduler(), vae=vae, **{k: parts[torch.float64][k] for k in ENCODERS}
        )


class CountingUNet(torch.nn.Module):
    """Wraps a UNet and records the batch of each forward call (what the pipelines read of it too)."""

    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet
        self.config = unet.config
        self.add_embedding = unet.add_embedding
        self.batches: list[int] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def forward(self, sample: Tensor, t: Tensor, **kwargs: Any) -> Any:
        self.batches.append(sample.shape[0])
        return self.unet(sample, t, **kwargs)


@pytest.mark.parametrize(("guidance_scale", "fuse"), [(5.0, True), (5.0, False), (1.0, True)])
def test_unet_calls_per_step_are_the_pipelines(parts: Any, guidance_scale: float, fuse: bool) -> None:
    ours, theirs = CountingUNet(parts[torch.float32]["unet"]), CountingUNet(parts[torch.float32]["unet"])
    inputs = {"num_inference_steps": STEPS, "guidance_scale": guidance_scale, **embeddings(torch.float32)}
    program = df.compile(sdxl_text2img(unet=ours, scheduler=tiny.scheduler()), fuse=fuse)
    program(generator=generator(), **inputs)
    tiny.sdxl_pipeline(theirs, tiny.scheduler())(generator=generator(), output_type="latent", **inputs)
    assert theirs.batches == ([2] if guidance_scale > 1 else [1]) * STEPS
    assert ours.batches == (theirs.batches if fuse else [1, 1] * STEPS)


def pipeline_inputs(img2img: bool) -> set[str]:
    cls = diffusers.StableDiffusionXLImg2ImgPipeline if img2img else diffusers.StableDiffusionXLPipeline
    return set(inspect.signature(cls.__call__).parameters)


def test_the_graphs_check_clean_with_the_pipeline_input_names(parts: Any) -> None:
    c = parts[torch.float32]
    encoders = {k: c[k] for k in ENCODERS}
    sizes = {"original_size", "crops_coords_top_left", "target_size"}
    sizes |= {f"negative_{name}" for name in sizes}
    common = {
        "callback_on_step_end",
        "callback_on_step_end_tensor_inputs",
        "num_inference_steps",
        "guidance_scale",
        "guidance_rescale",
        "generator",
        "eta",
        "denoising_end",
    }
    embeds = {
        "prompt_embeds",
        "negative_prompt_embeds",
        "pooled_prompt_embeds",
        "negative_pooled_prompt_embeds",
    }
    texts = {"prompt", "prompt_2", "negative_prompt", "negative_prompt_2", "num_images_per_prompt"}
    t2i = {"height", "width", "latents"}
    i2i = {"image", "strength", "denoising_start", "aesthetic_score", "negative_aesthetic_score"}
    for img2img, extra in ((False, t2i), (True, i2i)):
        build = sdxl_img2img if img2img else sdxl_text2img
        for components, names in (({}, embeds), (encoders, texts)):
            graph = build(unet=c["unet"], scheduler=tiny.scheduler(), vae=c["vae"], **components)
            report = df.check(graph)
            assert report.ok and not report.warnings, report
            ports = {p.name: p for p in graph.inputs}
            assert set(ports) == common | sizes | names | extra
            assert set(ports) <= pipeline_inputs(img2img)  # every input is the pipeline's, by name
            assert {p.name for p in graph.outputs} == {"latents", "image"}
            assert ports["guidance_scale"].default == 5.0 and ports["num_inference_steps"].default == 50
            required = {n for n, p in ports.items() if p.required}
            assert required == ({"prompt"} if components else {"prompt_embeds", "pooled_prompt_embeds"}) | (
                {"image"} if img2img else set()
            )
            if img2img:
                assert ports["strength"].default == 0.3 and ports["aesthetic_score"].default == 6.0
            else:
                assert ports["height"].default == ports["width"].default == 64  # sample_size * 8
    denoise = sdxl_text2img(unet=c["unet"], scheduler=tiny.scheduler()).nodes["denoise"]
    assert isinstance(denoise, df.Switch) and list(denoise.cases) == ["cfg", "single"]
    assert set(denoise.cases["cfg"].body.nodes) == {"scale", "uncond", "cond", "guidance", "step", "step_end"}
    assert set(denoise.cases["single"].body.nodes) == {"scale", "cond", "step", "step_end"}
    assert denoise.cases["cfg"].until == "interrupt"


def test_the_branches_fuse_into_one_call(parts: Any) -> None:
    program = df.compile(sdxl_text2img(unet=parts[torch.float32]["unet"], scheduler=tiny.scheduler()))
    assert list(program.fused) == [
        ("sdxl_text2img/denoise/cfg/step/uncond", "sdxl_text2img/denoise/cfg/step/cond")
    ]


def test_an_sdxl_unet_in_sd_graphs_fails_while_building(parts: Any) -> None:
    with pytest.raises(ValueError, match=r"text_embeds and time_ids.*use sdxl_text2img"):
        text2img(unet=parts[torch.float32]["unet"], scheduler=tiny.scheduler())


def test_an_sd_unet_in_sdxl_graphs_fails_while_building(parts: Any) -> None:
    for build in (sdxl_text2img, sdxl_img2img):
        with pytest.raises(
            ValueError, match=r"no input for SDXL's added conditioning text_embeds.*use text2img"
        ):
            build(unet=tiny.unet(), scheduler=tiny.scheduler(), vae=tiny.vae())
    with pytest.raises(ValueError, match="text_embeds and time_ids"):
        steps.denoiser(parts[torch.float32]["unet"])
    denoiser = steps.denoiser(parts[torch.float32]["unet"], added_time_ids=6)
    ports = {p.name: df.describe_type(p.type) for p in denoiser.inputs}
    assert (
        "32" in ports["text_embeds"] and "6" in ports["time_ids"] and "64" in ports["encoder_hidden_states"]
    )
    assert set(denoiser.batch) == {"sample", "encoder_hidden_states", "text_embeds", "time_ids"}


def test_a_pooled_embedding_of_the_wrong_width_is_rejected_statically(parts: Any) -> None:
    @df.block(outputs="pooled_prompt_embeds")
    def wide_pooled(prompt: str) -> Float[Tensor, "batch 48"]:
        """A 48-wide pooled embedding, for a UNet that reads 32."""
        return torch.zeros(1, 48)

    graph = df.Sequential(
        wide_pooled,
        sdxl_text2img(unet=parts[torch.float32]["unet"], scheduler=tiny.scheduler()),
        name="miswired",
    )
    report = df.check(graph)
    assert "DF301" in report.codes()
    assert any("48" in d.message and "32" in d.message for d in report.errors)


def test_bad_inputs_fail_before_the_unet_runs(parts: Any) -> None:
    counting = CountingUNet(parts[torch.float32]["unet"])
    program = df.compile(sdxl_text2img(unet=counting, scheduler=tiny.scheduler()))
    inputs = embeddings(torch.float32)
    with pytest.raises(df.InputError, match="negative_prompt_embeds"):
        program(prompt_embeds=inputs["prompt_embeds"], pooled_prompt_embeds=inputs["pooled_prompt_embeds"])
    with pytest.raises(df.InputError, match="pooled_prompt_embeds"):
        program(**{**inputs, "pooled_prompt_embeds": torch.zeros(1, 40)})
    assert counting.batches == []
    with pytest.raises(ValueError, match="text_encoder_2 and tokenizer_2"):
        sdxl_text2img(
            unet=counting, scheduler=tiny.scheduler(), text_encoder=parts[torch.float32]["text_encoder"]
        )


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 3),
    size=st.tuples(st.integers(1, 16), st.integers(1, 16)).map(lambda s: (8 * s[0], 8 * s[1])),
    original=st.one_of(st.none(), st.tuples(st.integers(1, 2048), st.integers(1, 2048))),
    crops=st.tuples(st.integers(0, 64), st.integers(0, 64)),
    negative=st.one_of(st.none(), st.tuples(st.integers(1, 2048), st.integers(1, 2048))),
    guidance_scale=st.sampled_from([1.0, 5.0]),
)
def test_time_ids_are_the_pipelines_rows(
    batch: int,
    size: tuple[int, int],
    original: tuple[int, int] | None,
    crops: tuple[int, int],
    negative: tuple[int, int] | None,
    guidance_scale: float,
) -> None:
    """The unconditional and conditional halves of the pipeline's add_time_ids, row for row."""
    unet = _UNET
    block = sdxl.add_time_ids(unet, 8)
    embeds = torch.zeros(batch, 4, unet.config.cross_attention_dim)
    height, width = size
    ours = block(embeds, height, width, original, crops, None, negative, (0, 0), negative, guidance_scale)
    pipe = tiny.sdxl_pipeline(unet, tiny.scheduler())
    positive = pipe._get_add_time_ids(original or size, crops, size, torch.float32, 32)
    negative_ids = (
        pipe._get_add_time_ids(negative, (0, 0), negative, torch.float32, 32) if negative else positive
    )
    if guidance_scale > 1:
        theirs = torch.cat([negative_ids, positive], dim=0).repeat(batch, 1)
        assert torch.equal(torch.cat([ours[1], ours[0]]), theirs)
    else:
        assert torch.equal(ours[0], positive.repeat(batch, 1))


def test_the_sdxl_demo_writes_a_png_from_a_prompt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sdxl.png"
    demo.main(["sdxl", "--prompt", "a cat", "--steps", "3", "--size", "48", "--out", str(out)])
    text = capsys.readouterr()
    assert "check sdxl_text2img: 0 errors, 0 warnings" in text.out
    assert "fused: sdxl_text2img/denoise/cfg/step/uncond + sdxl_text2img/denoise/cfg/step/cond" in text.out
    assert "3/3" in text.err  # the loop's progress bar
    with PIL.Image.open(out) as picture:
        assert picture.size == (48, 48) and picture.mode == "RGB"
    assert dfgraph_main(["check", "dfgraph_blocks.diffusion.demo:tiny_sdxl_text2img"]) == 0


def stand_in_guiders() -> types.ModuleType:
    """Contract C2's `guiders.guided_denoiser` for the SDXL fields, written as Modular Diffusers'
    StableDiffusionXLLoopDenoiser runs a guider; used only where h-guide's module is not there yet."""
    module = types.ModuleType("dfgraph_blocks.diffusion.guiders")

    def guided_denoiser(unet: Any, guider: Any, fields: dict[str, tuple[str, str]] | None = None) -> Any:
        assert fields == sdxl.FIELDS

        @df.block(outputs="noise_pred")
        def guided_denoiser(
            sample: Tensor,
            t: Tensor,
            i: int,
            num_inference_steps: int,
            prompt_embeds: Tensor,
            add_text_embeds: Tensor,
            add_time_ids: Tensor,
            negative_prompt_embeds: Tensor | None = None,
            negative_pooled_prompt_embeds: Tensor | None = None,
            negative_add_time_ids: Tensor | None = None,
        ) -> Tensor:
            """set_state, prepare_inputs, one UNet call per batch, guider(batches)."""
            given = locals()
            guider.set_state(step=i, num_inference_steps=num_inference_steps, timestep=t)
            batches = guider.prepare_inputs({f: (given[c], given[u]) for f, (c, u) in fields.items()})
            for batch in batches:
                guider.prepare_models(unet)
                added = {name: getattr(batch, name) for name in fields}
                hidden = added.pop("prompt_embeds")
                with torch.no_grad():
                    batch.noise_pred = unet(
                        sample, t, encoder_hidden_states=hidden, added_cond_kwargs=added, return_dict=False
                    )[0]
                guider.cleanup_models(unet)
            noise: Tensor = guider(batches)[0]
            return noise

        return guided_denoiser

    module.guided_denoiser = guided_denoiser  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize("prompts", [False, True], ids=["embeddings", "prompts"])
def test_a_cfg_guider_gives_the_pipeline_latents(
    parts: Any, monkeypatch: pytest.MonkeyPatch, prompts: bool
) -> None:
    if importlib.util.find_spec("dfgraph_blocks.diffusion.guiders") is None:
        monkeypatch.setitem(sys.modules, "dfgraph_blocks.diffusion.guiders", stand_in_guiders())
    from diffusers.guiders import ClassifierFreeGuidance

    c = parts[torch.float64]
    counting = CountingUNet(c["unet"])
    encoders = {k: c[k] for k in ENCODERS} if prompts else {}
    inputs: dict[str, Any] = {"prompt": ["a cat", "a dog"]} if prompts else embeddings(torch.float64)
    graph = sdxl_text2img(
        unet=counting, scheduler=tiny.scheduler("dpm++"), guider=ClassifierFreeGuidance(5.0), **encoders
    )
    assert not isinstance(
        graph.nodes["denoise"], df.Switch
    )  # the guider decides per step, no guidance Switch
    ours = df.compile(graph)(num_inference_steps=STEPS, generator=generator(), **inputs)["latents"]
    pipe = tiny.sdxl_pipeline(c["unet"], tiny.scheduler("dpm++"), **encoders)
    theirs = pipe(
        num_inference_steps=STEPS, guidance_scale=5.0, generator=generator(), output_type="latent", **inputs
    )
    assert difference(ours, theirs.images) <= 1e-10
    batch = 2 if prompts else 1
    assert counting.batches == [batch, batch] * STEPS  # the guider's two batches: conditional, unconditional


def scale_latents_at_two(pipe: Any, i: int, t: Tensor, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """A diffusers step callback: halve the latents after step 2."""
    return {"latents": tensors["latents"] * 0.5} if i == 2 else {}


def interrupt_at(k: int) -> Any:
    def callback(pipe: Any, i: int, t: Tensor, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        if i == k:
            pipe._interrupt = True
        return {}

    return callback


@pytest.mark.parametrize("img2img", [False, True], ids=["text2img", "img2img"])
def test_a_step_callback_gives_the_pipelines_result(parts: Any, img2img: bool) -> None:
    for dtype in (torch.float64, torch.float32):
        inputs: dict[str, Any] = {"num_inference_steps": 6, "callback_on_step_end": scale_latents_at_two}
        inputs.update(embeddings(dtype))
        if img2img:
            inputs.update(image=image(dtype), strength=1.0)
        ours, theirs = run(parts[dtype], "euler_ancestral", img2img=img2img, **inputs)
        plain, _ = run(
            parts[dtype], "euler_ancestral", img2img=img2img, **{**inputs, "callback_on_step_end": None}
        )
        key = "image" if img2img else "latents"
        assert difference(ours[key], plain[key]) > 1e-3  # the callback changed the run
        if dtype == torch.float64:
            assert difference(ours[key], theirs) <= 1e-10
        else:
            assert torch.equal(ours[key], theirs)


@pytest.mark.parametrize("k", [0, 2])
def test_an_interrupt_at_step_k_returns_the_pipelines_latents(parts: Any, k: int) -> None:
    counting = CountingUNet(parts[torch.float32]["unet"])
    inputs = {"num_inference_steps": 6, "callback_on_step_end": interrupt_at(k), **embeddings(torch.float32)}
    ours = df.compile(sdxl_text2img(unet=counting, scheduler=tiny.scheduler("dpm++")))(
        generator=generator(), **inputs
    )
    pipe = tiny.sdxl_pipeline(parts[torch.float32]["unet"], tiny.scheduler("dpm++"))
    theirs = pipe(generator=generator(), output_type="latent", **inputs).images
    assert torch.equal(ours["latents"], theirs)
    assert counting.batches == [2] * (k + 1)  # the loop ended after step k: no UNet call after it


def test_a_callback_reads_and_replaces_the_pipelines_tensors(parts: Any) -> None:
    """What a callback reads equals the pipeline's (under guidance the embeddings and time ids as
    torch.cat([negative, positive]), for a batch of 2 too); without guidance, replacing add_text_embeds
    gives the pipeline's result."""
    names = list(sdxl.CALLBACK_TENSOR_INPUTS)

    def recorder(log: list[dict[str, Tensor]], zero_pooled: bool) -> Any:
        def callback(pipe: Any, i: int, t: Tensor, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
            log.append(dict(tensors))
            return {"add_text_embeds": torch.zeros_like(tensors["add_text_embeds"])} if zero_pooled else {}

        return callback

    c = parts[torch.float64]
    sizes = {"negative_original_size": (32, 32), "negative_target_size": (48, 64)}
    for guidance_scale, batch in ((5.0, 2), (1.0, 1)):
        zero = guidance_scale <= 1
        ours_log: list[dict[str, Tensor]] = []
        theirs_log: list[dict[str, Tensor]] = []
        inputs = {"num_inference_steps": 4, "guidance_scale": guidance_scale, **sizes}
        inputs |= {"callback_on_step_end_tensor_inputs": names, **embeddings(torch.float64, batch)}
        ours = df.compile(sdxl_text2img(unet=c["unet"], scheduler=tiny.scheduler("euler")))(
            generator=generator(), callback_on_step_end=recorder(ours_log, zero), **inputs
        )
        pipe = tiny.sdxl_pipeline(c["unet"], tiny.scheduler("euler"))
        theirs = pipe(
            generator=generator(),
            output_type="latent",
            callback_on_step_end=recorder(theirs_log, zero),
            **inputs,
        )
        assert difference(ours["latents"], theirs.images) <= 1e-10
        assert len(ours_log) == len(theirs_log) == 4
        for mine, reference in zip(ours_log, theirs_log, strict=True):
            assert set(mine) == set(reference) == set(names)
            for name in names:
                assert difference(mine[name], reference[name]) <= 1e-10, name
        rows = 2 * batch if guidance_scale > 1 else batch
        assert ours_log[0]["add_time_ids"].shape == (rows, sdxl.TIME_IDS)
    with pytest.raises(df.BlockError, match="callback_on_step_end_tensor_inputs"):
        df.compile(sdxl_text2img(unet=c["unet"], scheduler=tiny.scheduler()))(
            callback_on_step_end=scale_latents_at_two,
            callback_on_step_end_tensor_inputs=["image"],
            **embeddings(torch.float64),
        )


def test_a_legacy_scheduler_config_is_left_as_the_sdxl_pipelines_leave_it(parts: Any) -> None:
    """StableDiffusionPipeline rewrites steps_offset and clip_sample; the SDXL pipelines do not, nor do
    these graphs (the "ddim-default" cases above hold the results equal)."""
    legacy = diffusers.DDIMScheduler()
    sdxl_text2img(unet=parts[torch.float32]["unet"], scheduler=legacy)
    tiny.sdxl_pipeline(parts[torch.float32]["unet"], legacy)
    assert legacy.config.steps_offset == 0 and legacy.config.clip_sample is True

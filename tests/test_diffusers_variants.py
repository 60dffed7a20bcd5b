"""`diffusers:PATH` variants (issue 16): knobs (steps, guidance, compression) and `device_pipeline()`, with tiny
pipelines built in the test (random init, fixed seed, saved as safetensors; nothing downloaded): an unconditional
pixel-space DDPM and a text-to-image Stable Diffusion (CLIP text encoder on a byte-level vocabulary, VAE, unet)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from evalsuite.errors import InputError
from evalsuite.models import resolve_model

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory):
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    folder = tmp_path_factory.mktemp("tinyddpm")
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=10)).save_pretrained(
        folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    """A 16 px Stable Diffusion pipeline (8x8x4 latents), default 50 DDIM steps at guidance 7.5."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]  # GPT-2's byte-to-unicode table
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(256 - len(printable))]
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[], model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                                num_hidden_layers=1, num_attention_heads=2,
                                                max_position_embeddings=77, projection_dim=16))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                norm_num_groups=4, attention_head_dim=2)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=16)
    folder = tmp_path_factory.mktemp("tinysd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                scheduler=DDIMScheduler(num_train_timesteps=1000), safety_checker=None,
                                feature_extractor=None, requires_safety_checker=False).save_pretrained(
            folder, safe_serialization=True)
    return folder


def arrays(images) -> list[np.ndarray]:
    return [np.asarray(im) for im in images]


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b)))


def test_defaults_generate_what_the_adapter_generated_before(sd, ddpm):
    """At the knobs' defaults the pipeline is called as the adapter without knobs called it: the same images as a
    direct call (seeded torch.Generator, the query's arguments only) and the same model id."""
    import torch

    for spec, kwargs in [(f"diffusers:{sd}", {}), (f"diffusers:{ddpm}?num_inference_steps=2",
                                                   {"num_inference_steps": 2})]:
        source = resolve_model(spec)
        gen = source.generator
        assert source.model_id == gen.model_id and "?compression" not in source.model_id  # the base id
        prompt = {"prompt": "a red circle"} if gen.takes_prompt else {}
        direct = [gen._fp32_pipe(generator=torch.Generator(gen.device).manual_seed(s), **prompt, **kwargs).images[0]
                  for s in (3, 4)]
        assert same(gen.generate(["a red circle"] * 2, [3, 4]), direct)
        assert gen._pipeline_kwargs() == kwargs


def test_knobs_change_the_images_and_the_variant_id(sd):
    src = {q: resolve_model(f"diffusers:{sd}{q}") for q in ("", "?steps=2", "?steps=2&guidance=1.5", "?steps=3")}
    knobs = {k.name: k for k in src[""].generator.knobs}
    assert knobs["steps"].default == 50 and knobs["guidance"].default == 7.5
    assert knobs["compression"].default == "fp32"
    vid = src["?steps=2&guidance=1.5"].info["variant"]["id"]
    assert vid.startswith(src[""].model_id + "?compression=fp32&guidance=1.5&steps=2#w=")
    assert src["?steps=2&guidance=1.5"].model_id == vid and src["?steps=2"].spec == f"diffusers:{sd}?steps=2"
    images = {q: arrays(s.generator.generate(["a blue square"], [7])) for q, s in src.items()}
    for a, b in [("", "?steps=2"), ("?steps=2", "?steps=3"), ("?steps=2", "?steps=2&guidance=1.5")]:
        assert not np.array_equal(images[a][0], images[b][0]), (a, b)
    assert src["?steps=2"].generator._pipeline_kwargs() == {"num_inference_steps": 2}
    # the weights are the same: only the knobs differ in the id
    assert len({s.info["variant"]["weights_sha256"] for s in src.values()}) == 1


def test_knob_errors(sd, ddpm):
    with pytest.raises(InputError, match="has no knob guidance"):
        resolve_model(f"diffusers:{ddpm}?guidance=2")  # DDPM takes no guidance_scale
    with pytest.raises(InputError, match="sets both steps and num_inference_steps"):
        resolve_model(f"diffusers:{ddpm}?num_inference_steps=2&steps=3")
    with pytest.raises(InputError, match="steps=1 or more"):
        resolve_model(f"diffusers:{sd}?steps=0")
    with pytest.raises(InputError, match="compression"):
        resolve_model(f"diffusers:{sd}?compression=fp8")
    # a query's num_inference_steps is the steps knob's default for that spec
    assert {k.name: k.default for k in resolve_model(f"diffusers:{ddpm}?num_inference_steps=2").generator.knobs} \
        == {"steps": 2, "compression": "fp32"}


def test_device_pipeline_holds_the_modules_the_generator_samples_with(sd, ddpm):
    import torch

    from evalsuite.device.models import GenerationPipeline
    from evalsuite.hashing import sha256_state_dict

    source = resolve_model(f"diffusers:{sd}?steps=3&guidance=2")
    gen = source.generator
    pipe = gen.device_pipeline()
    assert isinstance(pipe, GenerationPipeline) and pipe.info["steps"] == 3 and pipe.info["guidance"] == 2.0
    assert pipe.denoiser.module.inner is gen.pipe.unet  # the very unet generate() runs
    assert pipe.decoder.module.inner is gen.pipe.vae and pipe.decoder.module.method == "decode"
    assert pipe.text_encoder is not None and pipe.text_encoder.module.calls[0].inner is gen.pipe.text_encoder
    assert pipe.denoiser.weights_sha256 == sha256_state_dict(gen.pipe.unet) == gen.weights_sha256
    assert source.info["variant"]["id"].endswith("#w=" + pipe.denoiser.weights_sha256[:16])
    latents, t, text = pipe.denoiser.example_inputs[:3]
    assert latents.shape == (2, 4, 8, 8) and text.shape == (2, 77, 16)  # classifier-free guidance: batch 2
    assert pipe.decoder.example_inputs[0].shape == (1, 4, 8, 8)
    with torch.no_grad():
        assert pipe.denoiser.module(*pipe.denoiser.example_inputs).shape == (2, 4, 8, 8)
        assert pipe.decoder.module(*pipe.decoder.example_inputs).shape == (1, 3, 16, 16)
        assert pipe.text_encoder.module(*pipe.text_encoder.example_inputs).shape == (1, 77, 16)
    # guidance <= 1 runs no classifier-free guidance: one latent per step
    no_cfg = resolve_model(f"diffusers:{sd}?steps=3&guidance=1").generator.device_pipeline()
    assert no_cfg.denoiser.example_inputs[0].shape == (1, 4, 8, 8)
    # a pixel-space pipeline: no text encoder, a weight-free decoder
    px = resolve_model(f"diffusers:{ddpm}?steps=2").generator
    ppipe = px.device_pipeline()
    assert ppipe.text_encoder is None and ppipe.denoiser.module.inner is px.pipe.unet
    with torch.no_grad():
        out = ppipe.decoder.module(ppipe.denoiser.module(*ppipe.denoiser.example_inputs))
    assert out.shape == (1, 3, 16, 16) and sha256_state_dict(ppipe.decoder.module) == ppipe.decoder.weights_sha256


def test_fp16_compresses_the_denoiser_it_generates_with(sd):
    import torch

    from evalsuite.hashing import sha256_state_dict

    base = resolve_model(f"diffusers:{sd}?steps=2")
    half = resolve_model(f"diffusers:{sd}?steps=2&compression=fp16")
    g0, g1 = base.generator, half.generator
    assert g1.weights_sha256 != g0.weights_sha256
    assert sha256_state_dict(g1._fp32_pipe.unet) == g0.weights_sha256  # the fp32 unet is untouched
    assert half.info["variant"]["id"].endswith("#w=" + g1.weights_sha256[:16])
    assert g1.pipe.unet is not g0.pipe.unet and g1.pipe.vae is g1._fp32_pipe.vae  # only the unet is compressed
    w = next(iter(g1.pipe.unet.parameters()))
    assert w.dtype == torch.float32 and torch.equal(w, w.half().float())  # float16 values in fp32 storage
    assert g1.device_pipeline().denoiser.module.inner is g1.pipe.unet
    assert g1.device_pipeline().denoiser.weights_sha256 == g1.weights_sha256
    a, b = g0.generate(["x"], [1]), g1.generate(["x"], [1])
    assert np.abs(arrays(a)[0].astype(int) - arrays(b)[0].astype(int)).max() <= 8  # close, not the weights
    # the fp32 variant of a compressed generator is the original again
    assert g1.with_knobs(compression="fp32").weights_sha256 == g0.weights_sha256


def test_palettized_denoiser_carries_the_core_ml_weights(ddpm):
    pytest.importorskip("coremltools")  # palettisation runs device build's Core ML compression
    import torch

    source = resolve_model(f"diffusers:{ddpm}?steps=2&compression=palettize2")
    gen = source.generator
    assert source.info["variant"]["id"].endswith("#w=" + gen.weights_sha256[:16])
    big = [w for w in gen.pipe.unet.parameters() if w.numel() > 512]  # device build palettizes tensors > 512
    assert big and all(len(torch.unique(w)) <= 4 for w in big)  # a 2-bit palette per tensor
    fp32 = resolve_model(f"diffusers:{ddpm}?steps=2").generator
    assert all(len(torch.unique(w)) > 4 for w in fp32.pipe.unet.parameters() if w.numel() > 512)
    assert gen.device_pipeline().denoiser.module.inner is gen.pipe.unet


def test_a_sweep_over_steps_times_what_it_scores(sd, tmp_path):
    from evalsuite.device import records
    from evalsuite.device import sweep as sweeps

    settings = sweeps.SweepSettings(num_samples=2, iterations=1, warmup=0,
                                    options={"variant-fidelity.reference": "?steps=4"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sweeps.run_sweep(f"diffusers:{sd}", {"steps": ["1", "2"]}, ["variant-fidelity"],
                                  store=tmp_path / "store", settings=settings, progress=False)
    variants = result.manifest["variants"]
    assert [v["status"] for v in variants] == ["complete", "complete"]
    assert [v["knobs"]["steps"] for v in variants] == [1, 2]
    recs = {r.variant_id: r for r in records.load_all(tmp_path / "store")}
    for v in variants:
        rec = recs[v["variant_id"]]
        assert rec.steps == v["knobs"]["steps"] and set(rec.components_ms) == {"text_encoder", "denoise_step",
                                                                                 "decoder"}
        assert v["variant_id"].endswith("#w=" + rec.model_hash[:16])
    assert result.reports["variant-fidelity.psnr"]

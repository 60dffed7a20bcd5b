"""OpenAI CLIP in the precision OpenAI's `clip.load` runs it (clean-fid's CLIP-FID, VBench's background_consistency),
checked against OpenAI's own `clip.model.build_model` (openai-clip 1.0.1, the `clip` package) on the same weights."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from evalsuite import extractors, openai_clip
from evalsuite.errors import InputError
from tests.official import official

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture
def openai_build_model(monkeypatch):
    """OpenAI's `clip.model.build_model`. `clip/clip.py` imports `pkg_resources` only to compare torch versions,
    which is irrelevant here; it is stubbed where setuptools no longer ships it."""
    if importlib.util.find_spec("pkg_resources") is None:
        import packaging.version  # noqa: F401  (the attribute clip.py reads)

        stub = types.ModuleType("pkg_resources")
        stub.packaging = sys.modules["packaging"]
        monkeypatch.setitem(sys.modules, "pkg_resources", stub)
    for name in [m for m in sys.modules if m == "clip" or m.startswith("clip.")]:
        monkeypatch.delitem(sys.modules, name)  # another test's stand-in `clip` must not answer this import
    return official("clip.model").build_model


def _batch(seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(0, 1, (3, 3, 224, 224)).astype(np.float32))


def test_official_precision_is_clip_loads():
    assert openai_clip.official_precision("cuda") == "fp16" and openai_clip.official_precision("cuda:1") == "fp16"
    assert openai_clip.official_precision("cpu") == "fp32"


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_encode_image_equals_openai_clip(tiny_openai_clip, openai_build_model, precision):
    """`build_model(state_dict)` is what `clip.load(..., jit=False)` builds (fp16 weights, fp32 LayerNorm); it calls
    `.float()` on the CPU only (`clip/clip.py` `load`). The same weights through open_clip give the same features."""
    official_model = openai_build_model(torch.load(tiny_openai_clip, map_location="cpu")).eval()
    if precision == "fp32":
        official_model = official_model.float()
    ours = openai_clip.load(tiny_openai_clip, "cpu", precision)
    x = _batch()
    with torch.no_grad():
        expected = official_model.encode_image(x).float()
        got = openai_clip.encode_image(ours, x)
    assert expected.dtype == got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_clip_fp16_extractor_gives_the_official_gpu_features(tiny_openai_clip, openai_build_model):
    """`clip:fp16` (what `clip` is on a CUDA device) on the CPU: clean-fid's CLIP_fx input (u8/255, CLIP
    normalisation) into OpenAI's fp16 model gives the extractor's features; the id says fp16, so references and
    cached features of the fp32 network never mix with them."""
    ext = extractors.build("clip:fp16", "cpu", offline=True)
    assert ext.id == "clip-vit-b-32-openai@fp16" and extractors.build("clip", "cpu", offline=True).id == \
        "clip-vit-b-32-openai"
    official_model = openai_build_model(torch.load(tiny_openai_clip, map_location="cpu")).eval()
    u8 = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (2, 3, 224, 224), dtype=np.uint8))
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = official_model.encode_image((u8.float() / 255 - mean) / std).float()
        got = ext.forward(u8)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    fp32 = extractors.build("clip:fp32", "cpu", offline=True).forward(u8)
    assert (got - fp32).abs().max() > 0  # the precision matters, which is why it is part of the id


def test_clip_option_is_checked():
    assert extractors.key_of("clip")["extractor"] == "clip-vit-b-32-openai"
    assert extractors.key_of("clip:fp16")["extractor"] == "clip-vit-b-32-openai@fp16"
    with pytest.raises(InputError, match="fp16 or fp32"):
        extractors.key_of("clip:bf16")

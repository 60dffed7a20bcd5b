"""Bad `python:` models (issue 14, items 8-10): a factory, generate, generate_video, encode or decode that raises or
returns the wrong thing gets one clear error naming the model, the call and the sample (the model's own traceback
under `evalsuite --debug`); generated pixels are accepted by one documented rule and nothing else is converted
silently; a model without `model_id` keys its samples by a fingerprint of its module file and its weights.
"""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from evalsuite import imageio
from evalsuite.cli import app
from evalsuite.errors import InputError
from evalsuite.models import resolve_model
from evalsuite.runner import ScoreOptions, score
from tests.conftest import write_images

HERE = "python:tests.test_model_outputs"
TINY = "python:tests.tiny_models:tiny_uint8"


# ------------------------------------------------------------------ bad models (module-level factories)
class Gen:
    """Returns `make(seed)` for each seed; `model_id` set so only the output matters."""

    model_id = "bad-output@test"

    def __init__(self, make):
        self.make = make

    def generate(self, prompts, seeds):
        return [self.make(s) for s in seeds]


def _noise(seed):
    return np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def factory_raises():
    raise ValueError("checkpoint /ckpts/x.pt not found")


def generate_raises():
    class G(Gen):
        def generate(self, prompts, seeds):
            raise RuntimeError("CUDA out of memory (simulated)")
    return G(_noise)


def returns_none():
    class G(Gen):
        def generate(self, prompts, seeds):
            return None
    return G(_noise)


def returns_string():
    class G(Gen):
        def generate(self, prompts, seeds):
            return "an image"
    return G(_noise)


def returns_one_too_few():
    class G(Gen):
        def generate(self, prompts, seeds):
            return [_noise(s) for s in seeds][1:]
    return G(_noise)


def third_is_none():
    return Gen(lambda s: None if s == 2 else _noise(s))


def third_is_empty():
    return Gen(lambda s: np.zeros((0, 0, 3), np.uint8) if s == 2 else _noise(s))


def third_is_1d():
    return Gen(lambda s: np.zeros(48, np.uint8) if s == 2 else _noise(s))


def int64_sevens():
    return Gen(lambda s: np.full((16, 16, 3), 7, dtype=np.int64))


def float_two_hundreds():
    return Gen(lambda s: np.full((16, 16, 3), 200.0, dtype=np.float32))


def video_raises():
    class V(Gen):
        fps = 8

        def generate_video(self, prompts, seeds):
            raise KeyError("scheduler")
    return V(_noise)


def video_int64():
    class V(Gen):
        fps = 8

        def generate_video(self, prompts, seeds):
            return [np.full((4, 16, 16, 3), 7, dtype=np.int64) for _ in seeds]
    return V(_noise)


class AE:
    model_id = "bad-ae@test"

    def encode(self, x):
        return torch.nn.functional.avg_pool2d(x, 4)

    def decode(self, z):
        return torch.nn.functional.interpolate(z, scale_factor=4, mode="nearest")


def encode_raises():
    class A(AE):
        def encode(self, x):
            raise RuntimeError("shape mismatch inside the user's encoder")
    return A()


def encode_returns_none():
    class A(AE):
        def encode(self, x):
            return None
    return A()


def decode_returns_numpy():
    class A(AE):
        def decode(self, z):
            return super().decode(z).numpy()
    return A()


# ------------------------------------------------------------------ helpers
@pytest.fixture
def ref(tmp_path):
    folder = tmp_path / "ref"
    write_images(folder, 12, size=(16, 16), seed=3)
    return folder


def _options(tmp_path: Path, ref: Path, **kw) -> ScoreOptions:
    defaults = dict(tasks=["fid"], extractor=TINY, ref=f"folder:{ref}", store=tmp_path / "store", device="cpu",
                    batch_size=4, num_workers=0, progress=False, num_samples=6, seed=0)
    return ScoreOptions.with_legacy(**{**defaults, **kw})


def _stored(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """The task results (not a run's manifest) and the sample files in the store."""
    store = tmp_path / "store"
    results = [p for p in sorted(store.glob("runs/*/*.json")) if "task" in json.loads(p.read_text())]
    return results, sorted(p for p in store.glob("samples/**/*") if p.suffix in (".png", ".mp4"))


def _cli(tmp_path: Path, ref: Path, model: str, *pre: str):
    return CliRunner().invoke(app, [*pre, "score", model, "--tasks", "fid", "--extractor", TINY, "--ref",
                                    f"folder:{ref}", "--workers", "0", "--device", "cpu", "--num-samples", "6",
                                    "--batch-size", "4", "--store", str(tmp_path / "store")])


# ------------------------------------------------------------------ item 8: the error names model, call and sample
@pytest.mark.parametrize("name,words", [
    ("factory_raises", ["factory_raises()", "ValueError", "checkpoint /ckpts/x.pt not found"]),
    ("generate_raises", ["generate()", "RuntimeError", "CUDA out of memory", "seeds 0-3"]),
    ("returns_none", ["generate()", "returned NoneType", "one image per prompt"]),
    ("returns_string", ["generate()", "returned str"]),
    ("returns_one_too_few", ["generate()", "returned 3 images for 4"]),
    ("third_is_none", ["generate()", "output 2", "seed 2", "NoneType"]),
    ("third_is_empty", ["generate()", "output 2", "seed 2", "(0, 0, 3)"]),
    ("third_is_1d", ["generate()", "output 2", "seed 2", "(48,)"]),
])
def test_bad_generator_is_one_clear_error(tmp_path, ref, name, words):
    with pytest.raises(InputError) as info:
        score(f"{HERE}:{name}", _options(tmp_path, ref))
    assert f"{HERE}:{name}" in info.value.message
    for word in words:
        assert word in f"{info.value.message} {info.value.fix}", info.value.message
    assert "\n" not in info.value.message and info.value.fix
    results, _ = _stored(tmp_path)
    assert not results


def test_cli_bad_generator_no_traceback_and_debug_shows_the_models(tmp_path, ref):
    plain = _cli(tmp_path, ref, f"{HERE}:generate_raises")
    assert plain.exit_code == 2, plain.output
    assert "Traceback" not in plain.output
    assert "generate()" in plain.stderr and "CUDA out of memory" in plain.stderr and "--debug" in plain.stderr
    debug = _cli(tmp_path, ref, f"{HERE}:generate_raises", "--debug")
    assert debug.exit_code == 2, debug.output
    assert "Traceback" in debug.stderr and "def generate" not in debug.stderr  # the frames, not the source file
    assert "in generate" in debug.stderr and "test_model_outputs.py" in debug.stderr  # the user's own frame
    assert "CUDA out of memory" in debug.stderr


def test_factory_that_fails_on_import_is_a_clear_error(tmp_path, ref, monkeypatch):
    (tmp_path / "broken_mod.py").write_text("raise RuntimeError('no GPU driver')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError) as info:
        resolve_model("python:broken_mod:load")
    assert "python:broken_mod:load" in info.value.message and "no GPU driver" in info.value.message
    sys.modules.pop("broken_mod", None)


def test_bad_video_generator_is_one_clear_error(tmp_path, ref):
    source = resolve_model(f"{HERE}:video_raises")
    with pytest.raises(InputError) as info:
        source.generator.generate_video(["a"], [5])
    assert f"{HERE}:video_raises" in info.value.message and "generate_video()" in info.value.message
    assert "KeyError" in info.value.message and "seed 5" in info.value.message
    source = resolve_model(f"{HERE}:video_int64")
    with pytest.raises(InputError) as info:
        source.generator.generate_video(["a", "b"], [5, 6])
    assert "generate_video() output 0" in info.value.message and "int64" in info.value.message


@pytest.mark.parametrize("name,words", [
    ("encode_raises", ["encode()", "RuntimeError", "user's encoder", "(2, 3, 32, 32)"]),
    ("encode_returns_none", ["encode()", "returned NoneType", "torch.Tensor"]),
    ("decode_returns_numpy", ["decode()", "returned ndarray", "torch.Tensor"]),
])
def test_bad_autoencoder_is_one_clear_error(name, words):
    ae = resolve_model(f"{HERE}:{name}").autoencoder
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(InputError) as info:
        ae.decode(ae.encode(x))
    text = f"{info.value.message} {info.value.fix}"
    for word in [f"{HERE}:{name}", *words]:
        assert word in text, text


def test_bad_autoencoder_through_the_cli(tmp_path):
    data = tmp_path / "data"
    write_images(data, 3, size=(64, 64))
    result = CliRunner().invoke(app, ["score", f"{HERE}:encode_returns_none", "--tasks", "ae-recon", "--data",
                                      f"folder:{data}", "--resolution", "32", "--device", "cpu", "--store",
                                      str(tmp_path / "store")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "encode()" in result.stderr


# ------------------------------------------------------------------ item 9: no silent conversion
@pytest.mark.parametrize("name,words", [
    ("int64_sevens", ["int64", "uint8", "[0, 1]"]),
    ("float_two_hundreds", ["float32", "200", "[0, 1]"]),
])
def test_int64_and_0_255_floats_are_refused_not_scored(tmp_path, ref, name, words):
    """Before: both became all-white PNGs and got an FID."""
    with pytest.raises(InputError) as info:
        score(f"{HERE}:{name}", _options(tmp_path, ref))
    text = info.value.message + " " + info.value.fix
    for word in words:
        assert word in text, text
    results, samples = _stored(tmp_path)
    assert not results and not samples


@pytest.mark.parametrize("value,shape,dtype,expected", [
    (200, (8, 8, 3), np.uint8, 200),                 # uint8 HxWx3
    (0.5, (8, 8, 3), np.float32, 128),               # float HWC, rounded
    (0.5, (3, 8, 8), np.float64, 128),               # float CHW
    (1.0005, (8, 8, 3), np.float32, 255),            # within the 1e-3 tolerance: clipped
    (-0.0005, (3, 8, 8), np.float32, 0),
])
def test_accepted_images(value, shape, dtype, expected):
    out = imageio.image_from_model(np.full(shape, value, dtype=dtype), "test image")
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3) and (out == expected).all()
    tensor = imageio.image_from_model(torch.full((3, 8, 8), 0.25, dtype=torch.bfloat16), "test image")
    assert (tensor == 64).all()
    pil = imageio.image_from_model(Image.new("RGB", (8, 6), (1, 2, 3)), "test image")
    assert pil.shape == (6, 8, 3) and (pil == (1, 2, 3)).all()


@pytest.mark.parametrize("obj,words", [
    (np.full((8, 8, 3), 7, np.int64), ["int64"]),
    (np.full((8, 8, 3), 7, np.uint16), ["uint16"]),
    (np.full((8, 8, 3), True), ["bool"]),
    (np.full((8, 8, 3), 1.01, np.float32), ["[1.01, 1.01]", "[0, 1]"]),
    (np.full((8, 8, 3), -0.5, np.float32), ["[-0.5, -0.5]"]),
    (np.full((8, 8, 3), np.nan, np.float32), ["NaN"]),
    (np.full((3, 8, 8), 9, np.uint8), ["(3, 8, 8)", "uint8"]),   # uint8 must be HxWx3
    (np.full((8, 8), 9, np.uint8), ["(8, 8)"]),                  # no grayscale guessing
    (np.full((8, 8, 4), 0.5, np.float32), ["(8, 8, 4)"]),
    (np.full((1, 8, 8, 3), 0.5, np.float32), ["(1, 8, 8, 3)"]),
    (np.zeros((8, 0, 3), np.uint8), ["(8, 0, 3)"]),
    (np.zeros(3), ["(3,)"]),
    ([[[0, 0, 0]]], ["list"]),
    ("img.png", ["str"]),
    (Image.new("F", (4, 4), 0.5), ["mode F"]),
    (Image.new("I;16", (4, 4), 500), ["mode I;16"]),
    (torch.zeros(8, 8, 3, dtype=torch.complex64), ["complex"]),
])
def test_refused_images_state_the_rule(obj, words):
    with pytest.raises(InputError) as info:
        imageio.image_from_model(obj, "model m: output 3")
    assert info.value.message.startswith("model m: output 3")
    for word in words:
        assert word in info.value.message, info.value.message
    assert "uint8" in info.value.fix and "[0, 1]" in info.value.fix


def test_video_frames_follow_the_same_rule():
    ok = imageio.frames_from_model(np.full((2, 8, 8, 3), 9, np.uint8), "v")
    assert ok.shape == (2, 8, 8, 3) and (ok == 9).all()
    assert (imageio.frames_from_model(torch.full((2, 3, 8, 8), 1.0), "v") == 255).all()
    assert imageio.frames_from_model([np.full((8, 8, 3), 0.0), Image.new("RGB", (8, 8))], "v").shape == (2, 8, 8, 3)
    for bad, word in [(np.full((2, 8, 8, 3), 7, np.int64), "int64"), (np.full((2, 8, 8, 3), 200.0), "200"),
                      (np.zeros((8, 8, 3), np.uint8), "(8, 8, 3)"), (np.zeros((0, 8, 8, 3), np.uint8), "(0, 8, 8, 3)"),
                      ([], "no frames"), ([np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)], "sizes")]:
        with pytest.raises(InputError) as info:
            imageio.frames_from_model(bad, "v")
        assert word in info.value.message, info.value.message


# ------------------------------------------------------------------ item 10: stale samples
MODEL_SRC = """
import numpy as np
import torch
SHADE = {shade}
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.full((3,), float(open({weights!r}).read())))
class Model:
    def __init__(self):
        self.net = Net()
    def generate(self, prompts, seeds):
        b = self.net.bias.detach().numpy()
        return [np.clip(np.random.default_rng(s).uniform(0, 1, (16, 16, 3)) * SHADE + b, 0, 1) for s in seeds]
def load():
    return Model()
"""


def _write_model(folder: Path, shade: str, weights: str) -> None:
    (folder / "weights.txt").write_text(weights)
    (folder / "unnamed_model.py").write_text(MODEL_SRC.format(shade=shade, weights=str(folder / "weights.txt")))
    sys.modules.pop("unnamed_model", None)
    importlib.invalidate_caches()


def test_model_without_model_id_is_keyed_by_its_fingerprint(tmp_path, ref, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    spec = "python:unnamed_model:load"

    def run() -> int:
        """Score, and return how many sample files the store holds."""
        score(spec, _options(tmp_path, ref))
        return len(_stored(tmp_path)[1])

    _write_model(tmp_path, "1.0", "0.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = resolve_model(spec)
        resolve_model(spec)
    assert first.model_id.startswith(spec + "@") and first.info["fingerprint"]["module_weights"]["net"]
    assert len([w for w in caught if "has no model_id" in str(w.message)]) == 1, [str(w.message) for w in caught]
    assert run() == 6 and run() == 6  # unchanged: reused
    _write_model(tmp_path, "0.50", "0.0")  # the module's code changed: 6 new samples
    assert run() == 12
    _write_model(tmp_path, "0.50", "0.25")  # the weights changed (file not visible; the nn.Module's tensors are)
    assert run() == 18 and run() == 18
    sys.modules.pop("unnamed_model", None)

"""Autoencoder inputs: bad autoencoders and bad data get clear errors or counted skips with nothing half-written in
the store; video data (image and video autoencoders); the `python:` and `diffusers-ae:` adapters.

Covers: a decoder that changes the shape, NaN latents (some / all, `strict`), data smaller than --resolution, odd
resolutions and odd source sizes, empty / missing / mixed folders, corrupt images, short and empty videos, AE tasks
on a generator with and without --autoencoder, FID on an autoencoder; tiny MP4s through every AE task; a tiny
diffusers AutoencoderKL (and AutoencoderTiny, whose encode returns `.latents`) saved as safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from evalsuite.errors import InputError
from evalsuite.models import resolve_model
from evalsuite.results import ResultsStore
from evalsuite.runner import ScoreOptions, score
from evalsuite.videoio import write_video
from tests.conftest import write_images

AE_TASKS = ["ae-recon", "spectral", "scale-equivariance"]
HERE = "python:tests.test_ae_inputs"


# ------------------------------------------------------------------ test autoencoders (module-level factories)
class PoolAE:
    """Average-pool by `f`, nearest upsampling back: the simplest well-behaved image AE."""

    model_id = "pool-ae@test"
    f = 4

    def encode(self, x):
        return F.avg_pool2d(x, self.f)

    def decode(self, z):
        return F.interpolate(z, scale_factor=self.f, mode="nearest")


class CropAE(PoolAE):
    """Its decoder loses the last row: the output shape differs from the input's."""

    model_id = "crop-ae@test"

    def decode(self, z):
        return super().decode(z)[..., :-1, :]


class NaNOnBrightAE(PoolAE):
    """NaN latents for images whose mean (in [-1, 1]) is above 0.2; finite for the others."""

    model_id = "nan-on-bright-ae@test"

    def encode(self, x):
        z = super().encode(x).clone()
        z[x.reshape(len(x), -1).mean(dim=1) > 0.2] = float("nan")
        return z


class AllNaNAE(PoolAE):
    model_id = "all-nan-ae@test"

    def encode(self, x):
        return torch.full_like(super().encode(x), float("nan"))


class VideoPoolAE:
    """A video AE: (N, 3, T, H, W) -> (N, 3, T, H/f, W/f) by spatial average pooling, nearest upsampling back."""

    kind = "video"
    model_id = "video-pool-ae@test"
    f = 4

    def __init__(self):
        self.inputs: list[tuple] = []

    def encode(self, x):
        assert x.ndim == 5, x.shape  # a video AE gets whole clips, never frames
        self.inputs.append(tuple(x.shape))
        return F.avg_pool3d(x, (1, self.f, self.f))

    def decode(self, z):
        assert z.ndim == 5, z.shape
        return F.interpolate(z, scale_factor=(1, self.f, self.f), mode="nearest")


class NotAModel:
    pass


def pool_ae():
    return PoolAE()


def crop_ae():
    return CropAE()


def nan_on_bright_ae():
    return NaNOnBrightAE()


def all_nan_ae():
    return AllNaNAE()


def video_pool_ae():
    return VideoPoolAE()


def not_a_model():
    return NotAModel()


POOL_AE_INSTANCE = PoolAE()  # `python:module:INSTANCE` (no factory call)


# ------------------------------------------------------------------ helpers
def _opts(tmp_path: Path, **kw) -> ScoreOptions:
    base = dict(store=tmp_path / "store", device="cpu", num_workers=0, progress=False, resolution=32,
                batch_size=4, tasks=["ae-recon"])
    return ScoreOptions.with_legacy(**{**base, **kw})


def _result_files(tmp_path: Path, task: str = "*") -> list[Path]:
    return sorted((tmp_path / "store" / "runs").glob(f"*/{task}.json"))


def _assert_nothing_half_written(tmp_path: Path) -> None:
    """No result documents and no temporary files anywhere in the store; the index (if any) agrees."""
    store = tmp_path / "store"
    assert _result_files(tmp_path) == []
    if store.exists():
        assert not [p for p in store.rglob("*") if p.name.endswith(".tmp")]
    assert ResultsStore(store).rows() == []


def _doc(summary, task: str) -> dict:
    (doc,) = [d for d in summary.results if d["task"] == task]
    return doc


def _bright_dark_folder(folder: Path, n_bright: int, n_dark: int, size=(40, 48)) -> tuple[list[str], list[str]]:
    """Interleaved bright (mean ~220) and dark (mean ~40) noisy images; returns (bright names, dark names)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    bright: list[str] = []
    dark: list[str] = []
    for i in range(n_bright + n_dark):
        is_bright = (i % 2 == 0 and len(bright) < n_bright) or len(dark) >= n_dark
        level = 220 if is_bright else 40
        img = np.clip(level + rng.normal(0, 10, (*size, 3)), 0, 255).astype(np.uint8)
        name = f"{i:03d}.png"
        Image.fromarray(img).save(folder / name)
        (bright if is_bright else dark).append(name)
    return bright, dark


def _moving_square(frames: int, size: int = 32, offset: int = 0) -> np.ndarray:
    out = np.full((frames, size, size, 3), 30, np.uint8)
    for t in range(frames):
        y, x = 4 + offset + t, 6 + 2 * t
        out[t, y:y + 8, x:x + 8] = (230, 200, 40)
    return out


@pytest.fixture
def video_folder(tmp_path) -> Path:
    """Two 8-frame 32x32 MP4s of a moving square."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for k in range(2):
        write_video(folder / f"clip{k}.mp4", _moving_square(8, offset=3 * k))
    return folder


# ------------------------------------------------------------------ a decoder that changes the shape
def test_decoder_changing_the_shape_is_an_error_naming_shapes_and_resolution(tmp_path):
    write_images(tmp_path / "imgs", 3)
    with pytest.raises(InputError) as err:
        score(f"{HERE}:crop_ae", _opts(tmp_path, data=f"folder:{tmp_path / 'imgs'}", tasks=AE_TASKS))
    assert "(3, 3, 31, 32)" in err.value.message and "(3, 3, 32, 32)" in err.value.message
    assert "crop_ae" in err.value.message
    assert "--resolution" in err.value.fix
    assert not _result_files(tmp_path, "ae-recon")
    _assert_nothing_half_written(tmp_path)


# ------------------------------------------------------------------ NaN latents
def test_nan_latents_for_some_samples_are_counted_skips(tmp_path):
    bright, dark = _bright_dark_folder(tmp_path / "imgs", n_bright=3, n_dark=3)
    summary = score(f"{HERE}:nan_on_bright_ae", _opts(tmp_path, data=f"folder:{tmp_path / 'imgs'}", tasks=AE_TASKS))
    for task in AE_TASKS:  # batches of 4 mix NaN and finite samples: only the NaN ones are skipped
        doc = _doc(summary, task)
        assert doc["status"] == "ok", task
        assert doc["num_samples"] == len(dark), task
        assert doc["skipped_samples"]["count"] == len(bright), task
        assert sorted(s["file"] for s in doc["skipped_samples"]["files"]) == sorted(bright), task
        assert all("NaN" in s["reason"] for s in doc["skipped_samples"]["files"]), task
        assert all(np.isfinite(v) for v in doc["metrics"].values()), task
    recon = _doc(summary, "ae-recon")
    assert recon["per_sample"]["name"] == dark
    assert all(len(v) == len(dark) for v in recon["per_sample"].values())
    eq = _doc(summary, "scale-equivariance")
    assert eq["per_sample"]["name"] == dark
    assert all(len(v) == len(dark) for v in eq["per_sample"].values())
    # the skips are stored, and the CLI-facing rows mention them
    stored = json.loads(_result_files(tmp_path, "ae-recon")[0].read_text())
    assert stored["skipped_samples"]["count"] == len(bright)
    assert any("3 sample(s) skipped" in (row["note"] or "") for row in summary.rows())


def test_nan_latents_with_strict_are_an_error(tmp_path):
    _bright_dark_folder(tmp_path / "imgs", n_bright=2, n_dark=2)
    with pytest.raises(InputError) as err:
        score(f"{HERE}:nan_on_bright_ae", _opts(tmp_path, data=f"folder:{tmp_path / 'imgs'}", strict=True))
    assert "NaN" in err.value.message and "--strict" in err.value.fix
    _assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("task", AE_TASKS)
def test_all_nan_latents_are_an_error(tmp_path, task):
    write_images(tmp_path / "imgs", 3)
    with pytest.raises(InputError) as err:
        score(f"{HERE}:all_nan_ae", _opts(tmp_path, data=f"folder:{tmp_path / 'imgs'}", tasks=[task]))
    assert "all_nan_ae" in err.value.message and "finite" in err.value.message
    _assert_nothing_half_written(tmp_path)


# ------------------------------------------------------------------ data smaller than the resolution; odd sizes
def test_images_smaller_than_the_resolution_are_counted_not_upscaled(tmp_path):
    folder = tmp_path / "imgs"
    write_images(folder / "big", 3, size=(40, 40))
    write_images(folder / "small", 2, size=(16, 24), seed=5)
    summary = score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{folder}", tasks=AE_TASKS))
    for task in AE_TASKS:
        doc = _doc(summary, task)
        assert doc["status"] == "ok" and doc["num_samples"] == 3, task
        skipped = doc["skipped_samples"]
        assert skipped["count"] == 2, task
        assert sorted(s["file"] for s in skipped["files"]) == ["small/00000.png", "small/00001.png"]
        assert all("24x16" in s["reason"] and "not upscaled" in s["reason"] for s in skipped["files"])
        assert doc["provenance"]["data"]["skipped"] == 2 and doc["provenance"]["data"]["count"] == 3


def test_images_smaller_than_the_resolution_with_strict_are_an_error(tmp_path):
    folder = tmp_path / "imgs"
    write_images(folder / "big", 2, size=(40, 40))
    write_images(folder / "small", 1, size=(16, 16))
    with pytest.raises(InputError, match="not upscaled"):
        score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{folder}", strict=True))
    _assert_nothing_half_written(tmp_path)


def test_all_images_smaller_than_the_resolution_is_an_error_naming_the_data(tmp_path):
    folder = tmp_path / "tiny"
    write_images(folder, 3, size=(16, 16))
    with pytest.raises(InputError) as err:
        score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{folder}"))
    assert f"folder:{folder}" in err.value.message and "3 skipped" in err.value.message
    assert "not upscaled" in err.value.message and "--resolution" in err.value.fix
    _assert_nothing_half_written(tmp_path)


def test_resolution_not_divisible_by_the_factor_is_a_shape_error(tmp_path):
    write_images(tmp_path / "imgs", 2, size=(40, 40))
    with pytest.raises(InputError) as err:
        score("demo-ae:f=8", _opts(tmp_path, data=f"folder:{tmp_path / 'imgs'}", resolution=30))
    assert "(2, 3, 24, 24)" in err.value.message and "(2, 3, 30, 30)" in err.value.message
    assert "--resolution" in err.value.fix
    _assert_nothing_half_written(tmp_path)
    (doc,) = score("demo-ae:f=8", _opts(tmp_path, data=f"folder:{tmp_path / 'imgs'}", resolution=32)).results
    assert doc["status"] == "ok" and doc["num_samples"] == 2
    assert doc["details"]["latent_shape"] == [4, 4, 4]


def test_odd_sized_sources_are_resized_and_cropped(tmp_path):
    folder = tmp_path / "odd"
    write_images(folder, 2, size=(33, 47))
    write_images(folder / "tall", 1, size=(47, 33), seed=3)
    summary = score("demo-ae:f=8", _opts(tmp_path, data=f"folder:{folder}", tasks=AE_TASKS, dct_block=4))
    for doc in summary.results:
        assert doc["status"] == "ok" and doc["num_samples"] == 3 and doc["skipped_samples"]["count"] == 0
        assert doc["provenance"]["data"]["resolution"] == 32


# ------------------------------------------------------------------ bad data folders
def test_empty_data_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(InputError) as err:
        score("demo-ae", _opts(tmp_path, data=f"folder:{tmp_path / 'empty'}"))
    assert "holds no images or videos" in err.value.message and str(tmp_path / "empty") in err.value.message
    _assert_nothing_half_written(tmp_path)


def test_missing_data_folder(tmp_path):
    with pytest.raises(InputError) as err:
        score("demo-ae", _opts(tmp_path, data=f"folder:{tmp_path / 'nowhere'}"))
    assert "does not exist" in err.value.message and "nowhere" in err.value.message
    _assert_nothing_half_written(tmp_path)


def test_unknown_data_spec(tmp_path):
    with pytest.raises(InputError, match="unknown data spec"):
        score("demo-ae", _opts(tmp_path, data=str(tmp_path)))
    _assert_nothing_half_written(tmp_path)


def test_folder_mixing_images_and_videos(tmp_path):
    folder = tmp_path / "mixed"
    write_images(folder, 2)
    write_video(folder / "clip.mp4", _moving_square(4))
    with pytest.raises(InputError) as err:
        score("demo-ae", _opts(tmp_path, data=f"folder:{folder}"))
    assert "mixes images and videos" in err.value.message and "one kind" in err.value.fix
    _assert_nothing_half_written(tmp_path)


def test_corrupt_image_in_the_data_is_a_counted_skip(tmp_path):
    folder = tmp_path / "imgs"
    write_images(folder, 3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (folder / "empty.jpg").write_bytes(b"")
    (doc,) = score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{folder}")).results
    assert doc["status"] == "ok" and doc["num_samples"] == 3
    assert doc["skipped_samples"]["count"] == 2
    assert sorted(s["file"] for s in doc["skipped_samples"]["files"]) == ["broken.png", "empty.jpg"]
    assert all("cannot decode image" in s["reason"] for s in doc["skipped_samples"]["files"])
    with pytest.raises(InputError, match="could not be used"):
        score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{folder}", strict=True))


def test_too_small_resolution(tmp_path):
    with pytest.raises(InputError, match="too small"):
        score("demo-ae", _opts(tmp_path, resolution=4))
    _assert_nothing_half_written(tmp_path)


# ------------------------------------------------------------------ which model the AE tasks score
@pytest.mark.parametrize("generator", ["demo", "python:tests.tiny_models:noise_generator"])
def test_ae_task_on_a_generator_without_autoencoder_is_stored_as_skipped(tmp_path, generator):
    (doc,) = score(generator, _opts(tmp_path)).results
    assert doc["status"] == "skipped" and doc["metrics"] == {}
    assert "--autoencoder" in doc["fix"] and "not" in doc["reason"]
    (path,) = _result_files(tmp_path, "ae-recon")
    stored = json.loads(path.read_text())
    assert stored["status"] == "skipped" and "--autoencoder" in stored["fix"]


def test_ae_task_on_a_generator_with_autoencoder_scores_the_autoencoder(tmp_path):
    write_images(tmp_path / "imgs", 2)
    (doc,) = score("demo", _opts(tmp_path, data=f"folder:{tmp_path / 'imgs'}", autoencoder=f"{HERE}:pool_ae")).results
    assert doc["status"] == "ok" and doc["model"]["id"] == "pool-ae@test"


def test_autoencoder_option_that_is_not_an_autoencoder(tmp_path):
    with pytest.raises(InputError) as err:
        score("demo", _opts(tmp_path, autoencoder="demo"))
    assert "--autoencoder demo is not an autoencoder" in err.value.message and "demo-ae" in err.value.fix
    _assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("extractor", [None, "python:tests.tiny_models:tiny_uint8"])
def test_fid_on_an_autoencoder_is_an_error(tmp_path, extractor):
    # without --extractor the Inception weights are missing offline: still the autoencoder error, not that skip
    with pytest.raises(InputError) as err:
        score("demo-ae", _opts(tmp_path, tasks=["fid"], extractor=extractor, ref="unused"))
    assert "is an autoencoder" in err.value.message and "--suite autoencoder" in err.value.fix
    _assert_nothing_half_written(tmp_path)


# ------------------------------------------------------------------ video data
def test_video_data_through_every_ae_task(tmp_path, video_folder):
    summary = score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{video_folder}", frames=4, tasks=AE_TASKS))
    for task in AE_TASKS:
        doc = _doc(summary, task)
        assert doc["status"] == "ok", task
        assert doc["num_samples"] == 2 and doc["skipped_samples"]["count"] == 0, task
        data = doc["provenance"]["data"]
        assert data["kind"] == "video" and data["count"] == 2 and data["resolution"] == 32
        assert data["frames"] == {"num_frames": 4, "stride": 1, "start": 0}
        assert doc["provenance"]["task_options"]["frames"] == 4
        for key, values in doc.get("per_sample", {}).items():  # one value per video, not per frame
            assert len(values) == 2, (task, key)
        assert all(np.isfinite(v) for v in doc["metrics"].values()), task
    recon = _doc(summary, "ae-recon")
    assert recon["per_sample"]["name"] == [str(video_folder / "clip0.mp4"), str(video_folder / "clip1.mp4")]
    assert recon["details"]["latent_shape"] == [4, 4, 8, 8]  # an image AE on video: frames, C, h, w
    assert recon["metrics"]["compression_ratio"] == pytest.approx(3 * 16 / 4)
    assert 15 < recon["metrics"]["psnr"] < 60
    eq = _doc(summary, "scale-equivariance")
    assert set(eq["per_sample"]) >= {"name", "rel_mse_s2", "psnr_s2", "mse_s2", "rel_mse_s4"}
    spectral = _doc(summary, "spectral")
    assert spectral["artifacts"] and (tmp_path / "store" / spectral["artifacts"][0]).is_file()


def test_video_shorter_than_frames_and_empty_video_are_counted_skips(tmp_path, video_folder):
    write_video(video_folder / "short.mp4", _moving_square(2))
    (video_folder / "zero.mp4").write_bytes(b"")
    summary = score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{video_folder}", frames=4, tasks=AE_TASKS))
    for doc in summary.results:
        assert doc["status"] == "ok" and doc["num_samples"] == 2, doc["task"]
        skipped = {Path(s["file"]).name: s["reason"] for s in doc["skipped_samples"]["files"]}
        assert doc["skipped_samples"]["count"] == 2 and set(skipped) == {"short.mp4", "zero.mp4"}
        assert "fewer than 4 frames" in skipped["short.mp4"] and "got 2" in skipped["short.mp4"]
        assert "cannot decode video" in skipped["zero.mp4"]


def test_only_unusable_videos_is_an_error(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "short.mp4", _moving_square(2))
    with pytest.raises(InputError) as err:
        score("demo-ae:f=4", _opts(tmp_path, data=f"folder:{folder}", frames=4))
    assert "no usable videos" in err.value.message and "--frames" in err.value.fix
    _assert_nothing_half_written(tmp_path)


def test_video_autoencoder_gets_whole_clips(tmp_path, video_folder):
    summary = score(f"{HERE}:video_pool_ae", _opts(tmp_path, data=f"folder:{video_folder}", frames=4, tasks=AE_TASKS))
    for task in AE_TASKS:
        doc = _doc(summary, task)
        assert doc["status"] == "ok" and doc["num_samples"] == 2, task
        assert doc["model"]["id"] == "video-pool-ae@test" and doc["model"]["info"]["kind"] == "video"
        assert doc["provenance"]["data"]["kind"] == "video"
        for key, values in doc.get("per_sample", {}).items():
            assert len(values) == 2, (task, key)
    recon = _doc(summary, "ae-recon")
    assert recon["details"]["latent_shape"] == [3, 4, 8, 8]  # C, t, h, w
    assert recon["metrics"]["compression_ratio"] == pytest.approx(16)


def test_video_and_image_autoencoders_agree_on_a_framewise_ae(tmp_path, video_folder):
    """PoolAE frame by frame and VideoPoolAE on clips compute the same reconstruction."""
    opts = dict(data=f"folder:{video_folder}", frames=4, tasks=["ae-recon", "scale-equivariance"])
    image = score(f"{HERE}:pool_ae", _opts(tmp_path, **opts))
    video = score(f"{HERE}:video_pool_ae", _opts(tmp_path, **opts))
    for task in ("ae-recon", "scale-equivariance"):
        a, b = _doc(image, task), _doc(video, task)
        for key in a["metrics"]:
            if not key.endswith("_ms") and key != "peak_memory_mb":
                assert a["metrics"][key] == pytest.approx(b["metrics"][key], rel=1e-9), (task, key)
        for key, values in a["per_sample"].items():
            if key != "name":
                np.testing.assert_allclose(values, b["per_sample"][key], rtol=1e-9, err_msg=f"{task} {key}")


# ------------------------------------------------------------------ adapters
@pytest.mark.parametrize("name", ["pool_ae", "POOL_AE_INSTANCE"])
def test_python_factory_returning_an_autoencoder(name):
    source = resolve_model(f"{HERE}:{name}")
    assert source.kind == "autoencoder" and source.model_id == "pool-ae@test"
    assert source.default_suite == "autoencoder" and source.generator is None
    assert source.info["kind"] == "image" and source.info["factory"] == f"{HERE}:{name}"
    video = resolve_model(f"{HERE}:video_pool_ae")
    assert video.kind == "autoencoder" and video.info["kind"] == "video"


def test_python_factory_returning_neither_generator_nor_autoencoder():
    with pytest.raises(InputError) as err:
        resolve_model(f"{HERE}:not_a_model")
    assert "NotAModel" in err.value.message and "encode" in err.value.fix


def test_python_autoencoder_default_suite_is_the_autoencoder_suite(tmp_path):
    write_images(tmp_path / "imgs", 2)
    summary = score(f"{HERE}:pool_ae", _opts(tmp_path, tasks=None, data=f"folder:{tmp_path / 'imgs'}"))
    assert [d["task"] for d in summary.results] == AE_TASKS
    assert all(d["status"] == "ok" and d["model"]["spec"] == f"{HERE}:pool_ae" for d in summary.results)


@pytest.fixture(scope="module")
def diffusers_aes(tmp_path_factory):
    pytest.importorskip("diffusers")
    from diffusers import AutoencoderKL, AutoencoderTiny

    torch.manual_seed(0)
    kl = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                       up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,), layers_per_block=1,
                       latent_channels=4, norm_num_groups=4, sample_size=32)
    tiny = AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                           num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4)
    root = tmp_path_factory.mktemp("diffusers-ae")
    kl.save_pretrained(root / "kl", safe_serialization=True)
    tiny.save_pretrained(root / "tiny", safe_serialization=True)
    return root


def test_diffusers_autoencoder_kl_scores_ae_recon(tmp_path, diffusers_aes):
    folder = diffusers_aes / "kl"
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    source = resolve_model(f"diffusers-ae:{folder}")
    assert source.kind == "autoencoder" and source.model_id.startswith("diffusers-ae:kl@")
    assert source.info["kind"] == "image" and source.default_suite == "autoencoder"
    (doc,) = score(f"diffusers-ae:{folder}", _opts(tmp_path, num_samples=3)).results
    assert doc["status"] == "ok" and doc["num_samples"] == 3
    assert doc["model"]["id"] == source.model_id
    assert doc["details"]["latent_shape"] == [4, 32, 32]  # one block: no downsampling
    assert all(np.isfinite(v) for v in doc["metrics"].values())
    assert doc["provenance"]["data"]["spec"] == "skimage" and doc["provenance"]["data"]["count"] == 3
    assert len(doc["per_sample"]["name"]) == 3


def test_diffusers_autoencoder_tiny_whose_encode_returns_latents(tmp_path, diffusers_aes):
    summary = score(f"diffusers-ae:{diffusers_aes / 'tiny'}", _opts(tmp_path, num_samples=2, tasks=AE_TASKS))
    for doc in summary.results:
        assert doc["status"] == "ok" and doc["num_samples"] == 2, doc["task"]
    assert _doc(summary, "ae-recon")["details"]["latent_shape"] == [4, 16, 16]  # factor 2


def test_diffusers_ae_folder_without_config(tmp_path):
    folder = tmp_path / "not-an-ae"
    write_images(folder, 1)
    with pytest.raises(InputError) as err:
        resolve_model(f"diffusers-ae:{folder}")
    assert "no config.json" in err.value.message and "save_pretrained" in err.value.fix
    with pytest.raises(InputError, match="no config.json"):
        score(f"diffusers-ae:{tmp_path / 'nowhere'}", _opts(tmp_path))
    _assert_nothing_half_written(tmp_path)

"""`diffusers:PATH` with a tiny pipeline built in the test (random init, fixed seed, saved as safetensors)."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.errors import InputError
from evalsuite.models import resolve_model

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    folder = tmp_path_factory.mktemp("tinyddpm")
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=10)).save_pretrained(folder,
                                                                                              safe_serialization=True)
    return folder


def test_generates_seeded_images(tiny_pipeline):
    source = resolve_model(f"diffusers:{tiny_pipeline}?num_inference_steps=2")
    assert source.kind == "generator" and source.info["call_kwargs"] == {"num_inference_steps": 2}
    a, b, c = source.generator.generate(["x", "y", "x"], [1, 2, 1])
    assert np.asarray(a).shape == (16, 16, 3)
    assert np.array_equal(np.asarray(a), np.asarray(c))  # same seed, same image (the prompt is unused here)
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    assert source.model_id == resolve_model(f"diffusers:{tiny_pipeline}?num_inference_steps=2").model_id
    assert source.model_id != resolve_model(f"diffusers:{tiny_pipeline}?num_inference_steps=3").model_id


def test_scores_through_the_sample_store(tiny_pipeline, tmp_path):
    from evalsuite.runner import ScoreOptions, score
    from tests.conftest import write_images

    write_images(tmp_path / "ref", 6, size=(16, 16))
    (doc,) = score(f"diffusers:{tiny_pipeline}?num_inference_steps=2",
                   ScoreOptions(tasks=["fid"], extractor="python:tests.tiny_models:tiny_uint8",
                                ref=f"folder:{tmp_path / 'ref'}", num_samples=4, num_workers=0,
                                progress=False)).results
    assert doc["status"] == "ok" and doc["num_samples"] == 4


def test_not_a_pipeline_folder(tmp_path):
    with pytest.raises(InputError, match="model_index.json"):
        resolve_model(f"diffusers:{tmp_path}")

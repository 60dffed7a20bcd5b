"""The imagenet-adm suite end to end, offline: the class-conditional demo (and a python: generate_class model)
through the runner, features from a small TorchScript stand-in with the interface of StyleGAN2-ADA's
inception-2015-12-05.pt (`forward(img, return_features, use_fp16, no_output_bias)`, `output` 2048 -> 1008; random
weights, fixed seed: a wiring test, not the real network), against a tiny ADM reference batch written in the
VIRTUAL_imagenet256_labeled.npz layout. The metrics' agreement with evaluator.py is tests/test_adm_metrics.py's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from evalsuite import adm_metrics, adm_npz
from evalsuite.cli import app
from evalsuite.models import resolve_model
from evalsuite.models.class_conditional import class_counts, class_labels, class_requests
from evalsuite.runner import ScoreOptions, score
from tests.conftest import install_standin_weights
from tests.test_adm_npz import official_read_batches, official_statistics_source


class _StandIn(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.Sequential(nn.AdaptiveAvgPool2d(6), nn.Conv2d(3, 2048, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1))
        self.output = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        x = F.interpolate(img, size=(299, 299), mode="bilinear", align_corners=False)
        features = self.layers((x - 128.0) / 128.0).reshape(x.shape[0], -1)
        if return_features:
            return features
        logits = F.linear(features, self.output.weight, None if no_output_bias else self.output.bias)
        return F.softmax(logits, 1)


@pytest.fixture
def standin(tmp_path, monkeypatch):
    path = tmp_path / "inception-2015-12-05.pt"
    net = torch.jit.script(_StandIn())
    net.save(str(path))
    install_standin_weights(monkeypatch, "inception-2015-12-05", path)
    return net


def _reference(tmp_path, n=12):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2048, 3)), rng.normal(size=(2023, 3))
    images = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    path = tmp_path / "VIRTUAL_tiny.npz"
    np.savez(path, arr_0=images, mu=rng.normal(size=2048) * 0.01, sigma=a @ a.T * 1e-3, mu_s=rng.normal(size=2023),
             sigma_s=b @ b.T)
    return path, images


def test_class_labels_spread_evenly():
    assert class_counts(class_labels(50_000)) == {"classes": 1000, "min_per_class": 50, "max_per_class": 50}
    assert class_counts(class_labels(1234)) == {"classes": 1000, "min_per_class": 1, "max_per_class": 2}
    reqs = class_requests(3, seed=7, classes=2)
    assert [(r.prompt, r.seed) for r in reqs] == [("class:0", 7), ("class:1", 8), ("class:0", 9)]


def test_guidance_scale_is_a_knob():
    base, guided = resolve_model("demo-class"), resolve_model("demo-class?guidance_scale=2")
    assert guided.model_id != base.model_id and guided.info["variant"]["knobs"] == {"guidance_scale": 2.0}
    a, b = base.generator.generate_class([5], [1])[0], guided.generator.generate_class([5], [1])[0]
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and not np.array_equal(a, b)


def test_imagenet_adm_suite(tmp_path, standin):
    ref_path, ref_images = _reference(tmp_path)
    opts = ScoreOptions(suite="imagenet-adm", ref=f"adm:{ref_path}", num_samples=20, batch_size=8, num_workers=0,
                        progress=False, store=tmp_path / "store")
    docs = {d["task"]: d for d in score("demo-class", opts).results}
    for task in ("adm-is", "adm-fid", "adm-precision", "adm-recall"):
        assert docs[task]["status"] == "ok", docs[task].get("reason")
        assert docs[task]["num_samples"] == 20
    assert docs["adm-sfid"]["status"] == "skipped" and "mixed_6/conv" in docs["adm-sfid"]["reason"]

    # the same numbers from the stand-in's outputs on the generated images and evalsuite.adm_metrics
    gen = resolve_model("demo-class").generator
    labels = class_labels(20)
    images = np.stack(gen.generate_class(list(labels), [opts.seed + i for i in range(20)]))
    with torch.inference_mode():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
        pool = standin(x, return_features=True).numpy()
        probs = standin(x, no_output_bias=True).numpy()
        ref_pool = standin(torch.from_numpy(ref_images).permute(0, 3, 1, 2).float(), return_features=True).numpy()
    assert docs["adm-is"]["metrics"]["is"] == pytest.approx(adm_metrics.inception_score_adm(probs), rel=1e-5)
    ref = adm_npz.read_reference_batch(ref_path)
    stats = adm_metrics.statistics_adm(pool)
    fid = adm_metrics.frechet_distance_adm(stats.mu, stats.sigma, ref.mu, ref.sigma)
    assert docs["adm-fid"]["metrics"]["fid"] == pytest.approx(fid, rel=1e-4)
    prec, rec = adm_metrics.precision_recall_adm(ref_pool, pool)
    assert (docs["adm-precision"]["metrics"]["precision"], docs["adm-recall"]["metrics"]["recall"]) == (prec, rec)
    assert docs["adm-fid"]["details"]["protocol"] == "adm-fid/torchscript"
    assert docs["adm-is"]["details"]["samples"]["classes"] == 20

    # export-npz: the run's samples as an ADM sample batch, read back through evaluator.py's streaming path
    result = CliRunner().invoke(app, ["export-npz", docs["adm-fid"]["run_id"], "-o", str(tmp_path / "s.npz"),
                                      "--store", str(tmp_path / "store"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 20
    np.testing.assert_array_equal(np.concatenate(official_read_batches(tmp_path / "s.npz")), images)
    assert official_statistics_source(tmp_path / "s.npz")[0] == "computed"
    with np.load(tmp_path / "s.npz") as data:
        np.testing.assert_array_equal(data["arr_1"], labels)


def test_not_class_conditional_and_no_ref(tmp_path, standin):
    opts = ScoreOptions(tasks=["adm-fid", "adm-is"], num_samples=4, num_workers=0, progress=False,
                        store=tmp_path / "store")
    docs = {d["task"]: d for d in score("demo", opts).results}
    assert docs["adm-is"]["status"] == "skipped" and "generate_class" in docs["adm-is"]["reason"]
    docs = {d["task"]: d for d in score("demo-class", opts).results}
    assert docs["adm-fid"]["status"] == "skipped" and "ADM reference batch" in docs["adm-fid"]["reason"]
    assert docs["adm-is"]["status"] == "ok"


CLASS_MODEL = '''
import numpy as np

class Tiny:
    model_id = "tiny-class@1"
    num_classes = 10

    def generate_class(self, labels, seeds):
        out = []
        for label, seed in zip(labels, seeds):
            rng = np.random.default_rng(seed)
            img = np.full((32, 32, 3), label * 25, dtype=np.uint8) + rng.integers(0, 5, (32, 32, 3), dtype=np.uint8)
            out.append(img)
        return out

def load():
    return Tiny()
'''


def test_python_class_model_through_cli(tmp_path, standin, monkeypatch):
    (tmp_path / "my_dit.py").write_text(CLASS_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    ref_path, _ = _reference(tmp_path)
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["score", "python:my_dit:load", "--suite", "imagenet-adm", "--ref",
                                      f"adm:{ref_path}", "--num-samples", "25", "--workers", "0", "--store",
                                      str(store), "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(CliRunner().invoke(app, ["runs", "list", "--json", "--store", str(store)]).stdout)
    out = tmp_path / "dit.npz"
    result = CliRunner().invoke(app, ["export-npz", runs[0]["run_id"], "-o", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        np.testing.assert_array_equal(data["arr_1"], np.arange(25) % 10)  # the model's 10 classes, spread evenly
        assert data["arr_0"].shape == (25, 32, 32, 3)
        np.testing.assert_array_equal(data["arr_0"][:, 0, 0, 0] // 25, np.arange(25) % 10)


def _tiny_dit(folder):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    transformer = diffusers.DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                                  out_channels=8, num_layers=1, sample_size=4, patch_size=2,
                                                  num_embeds_ada_norm=1000)  # DiTPipeline's null class: 1000
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 8), latent_channels=4,
                                  down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                                  up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=4,
                                  sample_size=8)
    diffusers.DiTPipeline(transformer=transformer, vae=vae, scheduler=diffusers.DDIMScheduler(
        num_train_timesteps=10)).save_pretrained(folder, safe_serialization=True)


def test_diffusers_dit_is_class_conditional(tmp_path, standin):
    from evalsuite.models.class_conditional import is_class_conditional

    _tiny_dit(tmp_path / "dit")
    source = resolve_model(f"diffusers:{tmp_path / 'dit'}?steps=2")
    gen = source.generator
    assert is_class_conditional(gen) and gen.num_classes == 1000
    a, b = gen.generate_class([3, 3], [0, 1])
    assert np.asarray(a).shape == (8, 8, 3) and not np.array_equal(np.asarray(a), np.asarray(b))
    again = resolve_model(f"diffusers:{tmp_path / 'dit'}?steps=2").generator.generate_class([3], [0])[0]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(a))  # seeded: the same (label, seed), same image
    guided = resolve_model(f"diffusers:{tmp_path / 'dit'}?steps=2&guidance=1.5")
    assert guided.model_id != source.model_id  # guidance_scale is the `guidance` knob: its own variant
    assert not np.array_equal(np.asarray(guided.generator.generate_class([3], [0])[0]), np.asarray(a))
    opts = ScoreOptions(tasks=["adm-is"], num_samples=12, num_workers=0, progress=False, store=tmp_path / "store")
    (doc,) = score(f"diffusers:{tmp_path / 'dit'}?steps=2", opts).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["details"]["samples"]["num_classes"] == 1000 and doc["details"]["samples"]["classes"] == 12

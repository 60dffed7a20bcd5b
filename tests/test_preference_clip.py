"""HPSv2, PickScore and the LAION aesthetic predictor against their official code on tiny random models (fixed
seeds) of the same architecture, the same weights loaded on both sides.

* `hpsv2`: hpsv2 1.2.0's own `img_score.score` (its bundled open_clip: model, ResizeMaxSize transform, tokenizer),
  with a tiny ViT config in place of ViT-H-14 and the checkpoint file passed as `cp`; stubbed: `clint` (a progress
  bar its module imports for downloads) and the laion2B base weights download (the HPS checkpoint overwrites
  every weight, strictly). The 1.2.0 wheel lacks its BPE vocabulary file; it is the same file open_clip ships
  (sha256 checked against tgxs002/HPSv2's copy) and is put in place when missing.
* `pickscore`: the yuvalkirstain/PickScore README recipe (no package) run through transformers' CLIPProcessor and
  AutoModel on a tiny random CLIPModel saved as a folder, with a processor folder in the hub's legacy format; and
  verbatim under transformers 4 (a subprocess), the version family the recipe was written for.
* `aesthetic`: no package; christophschuhmann/improved-aesthetic-predictor `simple_inference.py` @6934dd8 worked by
  hand with its lines cited, its CLIP half run through OpenAI's own `clip` package (openai-clip 1.0.1:
  `clip.clip._transform`, `clip.model.build_model`) on a tiny random CLIP with a 768-d embedding.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.runner import ScoreOptions, score
from tests.official import OFFICIAL_DIR, official

open_clip = pytest.importorskip("open_clip")

# ViT-H-14's config shape (hpsv2/src/open_clip/model_configs/ViT-H-14.json), shrunk: same tower types and keys
TINY_HPS = {"embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"  # tgxs002/HPSv2's bpe file
LONG = "a photo of " + "very " * 90 + "red car"  # over 77 tokens: cut, end token kept
PROMPTS = ["a red car parked next to two dogs", LONG, "Two CATS on a sofa", "x " * 76, "a bowl of fruit"]
SIZES = [(40, 60), (32, 32), (100, 37), (45, 31), (64, 64)]  # (height, width): resize, no-op, odd padding


def _images(folder, sizes=SIZES, prompts=PROMPTS) -> list[Image.Image]:
    generator = torch.Generator().manual_seed(1)
    folder.mkdir()
    images, rows = [], []
    for i, ((h, w), prompt) in enumerate(zip(sizes, prompts)):
        image = Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=generator, dtype=torch.uint8).numpy())
        image.save(folder / f"{i:02d}.png")
        images.append(image)
        if prompt is not None:
            rows.append(json.dumps({"file": f"{i:02d}.png", "prompt": prompt}))
    if rows:
        (folder / "prompts.jsonl").write_text("\n".join(rows) + "\n")
    return images


def _official_hps(monkeypatch, tmp_path):
    """hpsv2.img_score with the tiny config as 'ViT-H-14' and no base-weights download."""
    from evalsuite.hashing import sha256_file

    vocab = OFFICIAL_DIR / "hpsv2" / "src" / "open_clip" / "bpe_simple_vocab_16e6.txt.gz"
    if vocab.parent.is_dir():  # the 1.2.0 wheel omits it; .ci/install-official puts open_clip's identical file there
        assert vocab.is_file(), "hpsv2's BPE vocabulary is missing: run `bash .ci/install-official`"
        assert sha256_file(vocab) == VOCAB_SHA256
    for name in ("clint", "clint.textui"):
        stub = types.ModuleType(name)
        vars(stub)["progress"] = None
        monkeypatch.setitem(sys.modules, name, stub)
    img_score = official("hpsv2.img_score")
    factory = sys.modules["hpsv2.src.open_clip.factory"]
    monkeypatch.setitem(factory._MODEL_CONFIGS, "tiny-hps", TINY_HPS)
    real = factory.create_model_and_transforms

    def tiny(model_name, pretrained=None, **kwargs):
        assert model_name == "ViT-H-14" and kwargs["light_augmentation"] is True
        return real("tiny-hps", None, **kwargs)  # no laion2B download: every weight comes from `cp`

    monkeypatch.setattr(img_score, "create_model_and_transforms", tiny)
    monkeypatch.setattr(img_score, "model_dict", {})
    monkeypatch.setattr(img_score, "root_path", str(tmp_path / "hps-root"))
    monkeypatch.setattr(img_score, "device", "cpu")
    return img_score, factory


def _tiny_hps_checkpoint(factory, tmp_path, monkeypatch, version="v2.1"):
    """A tiny model built by hpsv2's own factory (seed 0), its state dict saved as HPS checkpoints are, and
    installed as the stand-in for the hpsv2.x weights; our open_clip gets the same config under a test name."""
    from evalsuite.tasks.preference import hps
    from tests.conftest import install_standin_weights

    torch.manual_seed(0)
    model = factory.create_model("tiny-hps", None)
    with torch.no_grad():  # break the init's symmetries (zero biases, unit norms) so every weight matters
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    path = tmp_path / f"HPS_{version}_tiny.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    install_standin_weights(monkeypatch, hps.VERSIONS[version], path)
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "tiny-hps", TINY_HPS)
    monkeypatch.setattr(hps, "ARCH", "tiny-hps")
    return path


@pytest.mark.parametrize("version", ["v2.1", "v2.0"])
def test_hpsv2_equals_img_score(tmp_path, monkeypatch, version):
    """Per image: 100 × hpsv2.img_score.score(image, prompt, cp, hps_version) (one image at a time, as the package
    scores a list); the task's mean and protocol; a non-square image whose longer side is already the model's size
    (the official transform leaves it unpadded and the ViT fails on it) is a skipped sample, as is one without a
    prompt."""
    img_score, factory = _official_hps(monkeypatch, tmp_path)
    cp = _tiny_hps_checkpoint(factory, tmp_path, monkeypatch, version)
    sizes, prompts = [*SIZES, (32, 20), (48, 48)], [*PROMPTS, "a tall narrow image", None]
    images = _images(tmp_path / "images", sizes, prompts)
    theirs = [img_score.score(image, prompt, cp=str(cp), hps_version=version)[0]
              for image, prompt in zip(images[:5], prompts[:5])]
    with pytest.raises(RuntimeError):  # the official transform feeds a 32×20 tensor to a 32×32 ViT
        img_score.score(images[5], prompts[5], cp=str(cp), hps_version=version)

    (doc,) = score(f"folder:{tmp_path / 'images'}",
                   ScoreOptions(tasks=["hpsv2"], num_workers=0, progress=False, batch_size=2,
                                task_options={"hpsv2": {"version": version}})).results
    assert doc["status"] == "ok", doc
    np.testing.assert_allclose(doc["per_sample"]["hpsv2"], 100 * np.array(theirs, dtype=np.float64),
                               rtol=0, atol=1e-4)
    assert doc["metrics"]["hpsv2"] == pytest.approx(100 * float(np.mean(theirs)), abs=1e-4)
    assert doc["skipped_samples"]["count"] == 2
    reasons = sorted(s["reason"] for s in doc["skipped_samples"]["files"])
    assert "ResizeMaxSize" in reasons[0] and "no prompt" in reasons[1]
    assert doc["details"]["protocol"] == f"hps{version}-openclip-vit-h-14" == doc["protocol"]
    assert doc["details"]["weights_sha256"]


def test_hpsv2_without_antialias_is_old_torchvisions_package(tmp_path, monkeypatch):
    """hpsv2's ResizeMaxSize calls torchvision's `F.resize` on a tensor with the default antialias: True since
    torchvision 0.17, False before. With that default set to False in the package's call, `-o hpsv2.antialias=false`
    gives its scores (protocol `-noantialias`), and they differ from the default's on downscaled images."""
    import functools

    import torchvision.transforms.functional as F

    img_score, factory = _official_hps(monkeypatch, tmp_path)
    cp = _tiny_hps_checkpoint(factory, tmp_path, monkeypatch)
    sizes, prompts = [(100, 37), (96, 128), (64, 64)], PROMPTS[:3]
    images = _images(tmp_path / "images", sizes, prompts)
    monkeypatch.setattr(F, "resize", functools.partial(F.resize, antialias=False))  # torchvision < 0.17's default
    theirs = 100 * np.array([img_score.score(im, p, cp=str(cp), hps_version="v2.1")[0]
                             for im, p in zip(images, prompts)], dtype=np.float64)
    # (ours passes antialias explicitly, so the patched default does not reach it)
    docs = {aa: score(f"folder:{tmp_path / 'images'}",
                      ScoreOptions(tasks=["hpsv2"], num_workers=0, progress=False,
                                   task_options={"hpsv2": {"antialias": aa}})).results[0] for aa in (False, True)}
    np.testing.assert_allclose(docs[False]["per_sample"]["hpsv2"], theirs, rtol=0, atol=1e-4)
    assert docs[False]["protocol"] == "hpsv2.1-openclip-vit-h-14-noantialias"
    assert np.abs(np.array(docs[True]["per_sample"]["hpsv2"]) - theirs).max() > 1e-2


def test_hps_tokens_and_transform_match_the_package(tmp_path, monkeypatch):
    """hpsv2's `tokenize` (bundled open_clip tokenizer.py: cut at 77, end token last) and its val transform
    (transform.py ResizeMaxSize + MaskAwareNormalize) give exactly our tokens and tensors."""
    _, factory = _official_hps(monkeypatch, tmp_path)
    from evalsuite.tasks.preference.hps import HPSScorer

    tokenizer = sys.modules["hpsv2.src.open_clip.tokenizer"]
    torch.testing.assert_close(open_clip.tokenize(PROMPTS), tokenizer.tokenize(PROMPTS), rtol=0, atol=0)
    model, _, preprocess = factory.create_model_and_transforms("tiny-hps", None, light_augmentation=True)
    ours = HPSScorer.from_model(open_clip.CLIP(**TINY_HPS))
    for image in _images(tmp_path / "images"):
        torch.testing.assert_close(ours.preprocess(image), preprocess(image), rtol=0, atol=1e-6)


def test_hpsv2_missing_weights_is_a_skip(tmp_path, monkeypatch):
    from evalsuite import weights

    monkeypatch.setattr(weights, "local_path", lambda name: tmp_path / "absent" / name)
    _images(tmp_path / "images")
    (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(tasks=["hpsv2"], num_workers=0, progress=False,
                                                                  offline=True)).results
    assert doc["status"] == "skipped" and "hpsv2.1" in doc["fix"], doc


# ---------------------------------------------------------------------------------------------------- PickScore
def _clip_tokenizer():
    """A transformers CLIPTokenizer on OpenAI's BPE vocabulary (the file open_clip ships; laion's CLIP-H uses it)."""
    import gzip

    transformers = official("transformers")
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines]
    byte_tokens = list(bytes_to_unicode().values())
    vocab = byte_tokens + [t + "</w>" for t in byte_tokens] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return transformers.CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges)


def _tiny_pickscore(tmp_path):
    """A tiny random CLIPModel saved as a model folder, and a processor folder: the CLIP tokenizer and a
    preprocessor_config.json in the hub's legacy form (laion/CLIP-ViT-H-14's keys, sizes shrunk to 32)."""
    transformers = official("transformers")
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, eos_token_id=2, bos_token_id=0,
                         pad_token_id=1, hidden_act="gelu"),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, hidden_act="gelu"),
        projection_dim=16)
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model_dir, processor_dir = tmp_path / "PickScore_v1", tmp_path / "clip-h-processor"
    model.save_pretrained(model_dir)
    _clip_tokenizer().save_pretrained(processor_dir)
    (processor_dir / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": 32, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 32}))
    return model_dir, processor_dir


def _recipe(model_dir, processor_dir, prompt, images):
    """yuvalkirstain/PickScore README `calc_probs`, up to its softmax, through transformers' CLIPProcessor and
    AutoModel (CLIPModel); the processor's image half is transformers 4's PIL CLIPImageProcessor, and transformers
    5's get_*_features return a ModelOutput whose pooler_output is the projected embedding."""
    transformers = official("transformers")
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    processor = transformers.CLIPProcessor(image_processor=CLIPImageProcessorPil.from_pretrained(processor_dir),
                                           tokenizer=transformers.CLIPTokenizer.from_pretrained(processor_dir))
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    image_inputs = processor(images=images, padding=True, truncation=True, max_length=77, return_tensors="pt")
    text_inputs = processor(text=prompt, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        image_embs = model.get_image_features(**image_inputs).pooler_output
        image_embs = image_embs / torch.norm(image_embs, dim=-1, keepdim=True)
        text_embs = model.get_text_features(**text_inputs).pooler_output
        text_embs = text_embs / torch.norm(text_embs, dim=-1, keepdim=True)
        return (model.logit_scale.exp() * (text_embs @ image_embs.T)[0]).numpy()


def test_pickscore_equals_the_recipe(tmp_path):
    """Per image: the recipe's score for its prompt (one prompt, one image; and one prompt over two images, the
    recipe's own batching); mean, protocol and weights digest; a long prompt (truncated, end token kept)."""
    model_dir, processor_dir = _tiny_pickscore(tmp_path)
    images = _images(tmp_path / "images")
    theirs = np.array([_recipe(model_dir, processor_dir, p, [im])[0] for im, p in zip(images, PROMPTS)])
    pair = _recipe(model_dir, processor_dir, PROMPTS[0], images[:2])
    (doc,) = score(f"folder:{tmp_path / 'images'}",
                   ScoreOptions(tasks=["pickscore"], num_workers=0, progress=False, batch_size=2,
                                task_options={"pickscore": {"model": str(model_dir),
                                                            "processor": str(processor_dir)}})).results
    assert doc["status"] == "ok", doc
    np.testing.assert_allclose(doc["per_sample"]["pickscore"], theirs, rtol=0, atol=1e-4)
    assert doc["metrics"]["pickscore"] == pytest.approx(float(np.mean(theirs)), abs=1e-4)
    assert doc["details"]["protocol"] == "pickscore-v1-transformers"
    from evalsuite.tasks.preference.pickscore import PickScorer, weights_digest

    assert doc["details"]["weights_sha256"] == weights_digest(model_dir)
    ours = PickScorer(str(model_dir), str(processor_dir)).score(images[:2], [PROMPTS[0]] * 2)
    np.testing.assert_allclose(ours, pair, rtol=0, atol=1e-4)
    assert abs(theirs).max() > 1e-3 and np.ptp(theirs) > 1e-3  # the scores differ: the check has teeth


# the README's code verbatim (AutoProcessor, AutoModel, calc_probs up to its softmax) under transformers 4, where
# get_*_features return tensors and AutoProcessor gives the PIL CLIPImageProcessor; argv: inputs JSON, output JSON
RECIPE_TF4 = """
import json, sys
args = json.load(open(sys.argv[1]))
import torch, transformers
from PIL import Image
from transformers import AutoModel, AutoProcessor

processor = AutoProcessor.from_pretrained(args["processor"])
model = AutoModel.from_pretrained(args["model"]).eval()

def calc_scores(prompt, images):
    image_inputs = processor(images=images, padding=True, truncation=True, max_length=77, return_tensors="pt")
    text_inputs = processor(text=prompt, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        image_embs = model.get_image_features(**image_inputs)
        image_embs = image_embs / torch.norm(image_embs, dim=-1, keepdim=True)
        text_embs = model.get_text_features(**text_inputs)
        text_embs = text_embs / torch.norm(text_embs, dim=-1, keepdim=True)
        return (model.logit_scale.exp() * (text_embs @ image_embs.T)[0]).tolist()

images = [Image.open(f) for f in args["files"]]
json.dump({"version": transformers.__version__, "image_processor": type(processor.image_processor).__name__,
           "single": [calc_scores(p, [im])[0] for p, im in zip(args["prompts"], images)]}, open(sys.argv[2], "w"))
"""


def test_pickscore_equals_the_recipe_under_transformers4(tmp_path):
    """The recipe verbatim with transformers 4.50.3 (`.official/transformers4-env`, installed by
    `.ci/install-official` for ImageReward; PickScore's requirements.txt pins 4.27.3): AutoProcessor picks the PIL
    CLIPImageProcessor there, as our pinned processor; the same folders, the task's per-image scores."""
    import os
    import subprocess

    env_dir = OFFICIAL_DIR / "transformers4-env"
    if not (env_dir / "transformers").is_dir():
        message = "transformers 4 for the official recipe is not installed: run `bash .ci/install-official`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    model_dir, processor_dir = _tiny_pickscore(tmp_path)
    _images(tmp_path / "images")
    files = sorted(str(f) for f in (tmp_path / "images").glob("*.png"))
    (tmp_path / "args.json").write_text(json.dumps({"model": str(model_dir), "processor": str(processor_dir),
                                                    "files": files, "prompts": PROMPTS}))
    env = {**os.environ, "PYTHONPATH": str(env_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", RECIPE_TF4, str(tmp_path / "args.json"), str(tmp_path / "out.json")],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    theirs = json.loads((tmp_path / "out.json").read_text())
    assert theirs["version"].startswith("4.") and theirs["image_processor"] == "CLIPImageProcessor"
    (doc,) = score(f"folder:{tmp_path / 'images'}",
                   ScoreOptions(tasks=["pickscore"], num_workers=0, progress=False, batch_size=3,
                                task_options={"pickscore": {"model": str(model_dir),
                                                            "processor": str(processor_dir)}})).results
    assert doc["status"] == "ok", doc
    np.testing.assert_allclose(doc["per_sample"]["pickscore"], theirs["single"], rtol=0, atol=1e-4)


def test_pickscore_protocol_names_the_model():
    from pathlib import Path

    from evalsuite.tasks.preference.pickscore import protocol_for

    cache = Path("/hub/models--yuvalkirstain--PickScore_v1/snapshots/a4e4367c")
    assert protocol_for(Path("/m/PickScore_v1"), "ab" * 32) == protocol_for(cache, "ab" * 32) \
        == "pickscore-v1-transformers"
    assert protocol_for(Path("/m/my-finetune"), "ab" * 32) == "pickscore-abababababab-transformers"


def test_pickscore_without_a_model_folder_is_a_skip(tmp_path):
    _images(tmp_path / "images")
    for options in ({}, {"model": str(tmp_path / "absent")}):
        (doc,) = score(f"folder:{tmp_path / 'images'}",
                       ScoreOptions(tasks=["pickscore"], num_workers=0, progress=False,
                                    task_options={"pickscore": options})).results
        assert doc["status"] == "skipped" and "huggingface-cli download" in doc["fix"], doc


# ---------------------------------------------------------------------------------------------------- aesthetic
def _aesthetic_setup(tmp_path, monkeypatch):
    """OpenAI's `clip` modules, a tiny random CLIP with a 768-d embedding and a random MLP (the .pth's keys), both
    installed as stand-ins for the task's weights, and 5 images (square, non-square, odd crop offset)."""
    import importlib.util

    from tests.conftest import install_standin_weights

    if importlib.util.find_spec("pkg_resources") is None:  # clip/clip.py imports it only to compare torch versions
        import packaging.version  # noqa: F401

        stub = types.ModuleType("pkg_resources")
        vars(stub)["packaging"] = sys.modules["packaging"]
        monkeypatch.setitem(sys.modules, "pkg_resources", stub)
    for name in [m for m in sys.modules if m == "clip" or m.startswith("clip.")]:
        monkeypatch.delitem(sys.modules, name)  # another test's stand-in `clip` must not answer this import
    clip_model, clip_clip = official("clip.model"), official("clip.clip")
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from evalsuite.tasks.preference import aesthetic

    torch.manual_seed(0)
    tiny = CLIP(embed_dim=768, vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=32, image_size=224),
                text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))
    clip_path = tmp_path / "ViT-L-14.pt"
    torch.save(tiny.state_dict(), clip_path)
    install_standin_weights(monkeypatch, aesthetic.CLIP_WEIGHTS, clip_path)
    nn = torch.nn
    layers = nn.Sequential(nn.Linear(768, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                           nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1)).eval()
    with torch.no_grad():  # widen the scores' spread (x 3^5) so per-image differences are far above the tolerance
        for layer in layers:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(3.0)
    head_path = tmp_path / "sac+logos+ava1-l14-linearMSE.pth"
    torch.save({f"layers.{k}": v for k, v in layers.state_dict().items()}, head_path)  # MLP.state_dict()'s keys
    install_standin_weights(monkeypatch, aesthetic.HEAD_WEIGHTS, head_path)
    images = _images(tmp_path / "images", [(224, 224), (240, 320), (300, 227), (224, 227), (231, 300)],
                     [None] * 5)
    model2 = clip_model.build_model(torch.load(clip_path, map_location="cpu")).eval()  # clip.load's fp16 model
    return model2, clip_clip._transform(224), layers, images


def _simple_inference(model2, preprocess, layers, images) -> list[float]:
    """simple_inference.py l.106-117 for each image: preprocess, encode_image, numpy `normalized` (l.84-89: L2 norm
    in the array's dtype, zero -> 1), the MLP on float32."""
    out = []
    with torch.no_grad():
        for pil_image in images:
            image_features = model2.encode_image(preprocess(pil_image).unsqueeze(0))
            a = image_features.cpu().numpy()
            l2 = np.atleast_1d(np.linalg.norm(a, 2, -1))
            l2[l2 == 0] = 1
            im_emb_arr = a / np.expand_dims(l2, -1)
            out.append(layers(torch.from_numpy(im_emb_arr).type(torch.float32))[0, 0].item())  # l.117
    return out


def test_aesthetic_equals_simple_inference(tmp_path, monkeypatch):
    """simple_inference.py, worked by hand: l.40-64 MLP(768) (five Linear layers, dropouts, no activation) loaded
    from the .pth's state dict (l.94-99, eval mode); l.103/108 `clip.load("ViT-L/14")`'s model and preprocess (here
    OpenAI's `build_model` on the tiny weights, `.float()` as `clip.load` on the CPU, and `_transform(224)`);
    l.113 `encode_image`; l.84-89 + l.115 numpy L2 normalisation (zero norm -> 1); l.117 the MLP on float32."""
    model2, preprocess, layers, images = _aesthetic_setup(tmp_path, monkeypatch)
    theirs = _simple_inference(model2.float(), preprocess, layers, images)
    (doc,) = score(f"folder:{tmp_path / 'images'}",
                   ScoreOptions(tasks=["aesthetic"], num_workers=0, progress=False, batch_size=2)).results
    assert doc["status"] == "ok", doc
    np.testing.assert_allclose(doc["per_sample"]["aesthetic"], theirs, rtol=0, atol=1e-5)
    assert doc["metrics"]["aesthetic"] == pytest.approx(float(np.mean(theirs)), abs=1e-5)
    assert doc["num_samples"] == 5 and doc["skipped_samples"]["count"] == 0
    assert doc["details"]["clip_precision"] == "fp32" and np.ptp(theirs) > 1e-2


def test_aesthetic_fp16_equals_simple_inference_on_cuda_weights(tmp_path, monkeypatch):
    """On CUDA `clip.load` keeps the fp16 weights, so the script's embedding and its numpy normalisation are fp16;
    the same computation run here on the CPU (fp16 kernels) against our fp16 path."""
    from evalsuite.tasks.preference.aesthetic import AestheticScorer

    model2, preprocess, layers, images = _aesthetic_setup(tmp_path, monkeypatch)
    theirs = _simple_inference(model2, preprocess, layers, images)
    fp32 = _simple_inference(model2.float(), preprocess, layers, images)
    ours = AestheticScorer("cpu", precision="fp16").score(images)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    assert np.abs(np.array(theirs) - fp32).max() > 1e-4  # the fp16 path is not the fp32 one


def test_aesthetic_missing_weights_is_a_skip(tmp_path, monkeypatch):
    from evalsuite import weights

    monkeypatch.setattr(weights, "local_path", lambda name: tmp_path / "absent" / name)
    _images(tmp_path / "images", prompts=[None] * 5)
    (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(tasks=["aesthetic"], num_workers=0, progress=False,
                                                                  offline=True)).results
    assert doc["status"] == "skipped" and "weights" in doc["fix"], doc

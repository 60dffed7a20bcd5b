"""ImageReward against the official package (image-reward 1.5) on a tiny random model of the same architecture.

The package's own code runs: `ImageReward.load(checkpoint, device, med_config)` (utils.py) builds `ImageReward`
(ImageReward.py) with its BLIP modules (models/BLIP: vit.py VisionTransformer, med.py BertModel, blip.py
init_tokenizer), loads our state dict, and `score(prompt, path)` / `inference_rank(prompt, paths)` score it. Its
med.py imports helpers transformers 5 removed, so it runs in a subprocess with transformers 4.50.3 first on the
path (`.official/transformers4-env`, installed by `.ci/install-official`); torch is ours. Replaced there, none of
it on the scoring path: the imports of ReFL.py (diffusers training), `clip` (CLIPScore/Aesthetic baselines) and
fairscale's checkpoint_wrapper (gradient checkpointing, off); `BertTokenizer.from_pretrained('bert-base-uncased')`
reads a local vocabulary instead of the hub; `create_vit('large', ...)` builds the package's VisionTransformer with
a small width and depth (its other arguments as for 'large'). The text encoder is small through med_config.json;
the reward head is the package's MLP(768), so the text width stays 768. At full size (unpatched create_vit, the
published med config) the package's network is built with its parameters on the meta device, and its names and
shapes are compared with ours.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.runner import ScoreOptions, score
from evalsuite.tasks.preference import imagereward as ir
from tests.official import OFFICIAL_DIR

TRANSFORMERS4 = OFFICIAL_DIR / "transformers4-env"
TOLERANCE = 2e-5  # absolute, on rewards spread over 2 (float32 rounding; seen: at most 1.8e-6)

WORDS = ["photo", "of", "red", "car", "two", "dogs", "cat", "sofa", "bowl", "fruit", "cafe", ",", ".", "!"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + WORDS + list(string.ascii_lowercase) + [f"##{c}" for c in string.ascii_lowercase] + \
    [str(d) for d in range(10)]
TINY = ir.ImageRewardConfig(vision_width=64, vision_depth=2, vision_heads=4, text_width=768, text_layers=2,
                            text_heads=4, text_intermediate=96, vocab_size=len(VOCAB) + 2, max_positions=40)
LONG = "a photo of " + "very " * 40 + "red car"  # over 35 tokens: truncated, [SEP] kept last
PROMPTS = ["a red car parked next to two dogs", "Two CATS on a SOFA!", "Café au lait, déjà vu.", LONG,
           "a bowl of fruit 42 中文", "photo"]
# (height, width, mode): upscaling, downscaling, non-square crops, and modes the package converts after resizing
IMAGES = [(40, 60, "RGB"), (300, 224, "RGB"), (224, 224, "RGB"), (250, 500, "RGBA"), (97, 131, "P"), (64, 64, "L")]

MED_CONFIG = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1, "hidden_size": TINY.text_width, "initializer_range": 0.02,
              "intermediate_size": TINY.text_intermediate, "layer_norm_eps": 1e-12,
              "max_position_embeddings": TINY.max_positions, "model_type": "bert",
              "num_attention_heads": TINY.text_heads, "num_hidden_layers": TINY.text_layers, "pad_token_id": 0,
              "type_vocab_size": 2, "vocab_size": TINY.vocab_size, "encoder_width": 768, "add_cross_attention": True}

# BLIP's configs/med_config.json, which THUDM/ImageReward publishes as its med_config.json (BLIP_Pretrain sets
# encoder_width to the ViT's width)
FULL_MED_CONFIG = {**MED_CONFIG, "hidden_size": 768, "intermediate_size": 3072, "max_position_embeddings": 512,
                   "num_attention_heads": 12, "num_hidden_layers": 12, "vocab_size": 30524}

# run with transformers 4 first on sys.path; argv[1]: a JSON file of inputs, argv[2]: where to write the results
OFFICIAL_SCRIPT = r'''
import json, sys, types
args = json.load(open(sys.argv[1]))
sys.path.append(args["official_dir"])
import transformers
assert transformers.__version__.startswith("4."), transformers.__version__
for name in ("ImageReward.ReFL", "clip", "fairscale", "fairscale.nn", "fairscale.nn.checkpoint",
             "fairscale.nn.checkpoint.checkpoint_activations"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["fairscale.nn.checkpoint.checkpoint_activations"].checkpoint_wrapper = None
import torch
import ImageReward as RM
blip = sys.modules["ImageReward.models.BLIP.blip"]
blip_pretrain = sys.modules["ImageReward.models.BLIP.blip_pretrain"]
vit = sys.modules["ImageReward.models.BLIP.vit"]

class LocalTokenizer(blip.BertTokenizer):
    @classmethod
    def from_pretrained(cls, name, *a, **k):
        assert name == "bert-base-uncased", name
        return super().from_pretrained(args["tokenizer_dir"], *a, **k)

def tiny_vit(kind, image_size, use_grad_checkpointing=False, ckpt_layer=0, drop_path_rate=0):
    assert kind == "large" and image_size == 224
    v = args["vit"]
    return vit.VisionTransformer(img_size=image_size, patch_size=16, embed_dim=v["width"], depth=v["depth"],
                                 num_heads=v["heads"], use_grad_checkpointing=use_grad_checkpointing,
                                 ckpt_layer=ckpt_layer, drop_path_rate=0.1 or drop_path_rate), v["width"]

blip.BertTokenizer = LocalTokenizer
register = torch.nn.Module.register_parameter
def on_meta(module, name, param):  # the full-size network (ViT-L, the published med config): names and shapes only
    register(module, name, None if param is None else torch.nn.Parameter(param.to("meta"), param.requires_grad))
torch.nn.Module.register_parameter = on_meta
full = RM.ImageReward(med_config=args["full_med_config"], device="cpu")
torch.nn.Module.register_parameter = register
shapes = {k: list(v.shape) for k, v in full.state_dict().items()}
blip_pretrain.create_vit = tiny_vit
model = RM.load(args["checkpoint"], device="cpu", med_config=args["med_config"])
ours = torch.load(args["checkpoint"], map_location="cpu")
theirs = model.state_dict()
used = [k for k in theirs if k.startswith(("blip.visual_encoder.", "blip.text_encoder.", "mlp."))
        and not k.endswith("position_ids")]
loaded = all(k in ours and torch.equal(theirs[k], ours[k]) for k in used)
with torch.no_grad():
    scores = [model.score(p, f) for p, f in zip(args["prompts"], args["files"])]
    _, ranked = model.inference_rank(args["prompts"][0], args["files"])
tok = model.blip.tokenizer
ids = [tok(p, padding="max_length", truncation=True, max_length=35).input_ids for p in args["prompts"]]
json.dump({"scores": scores, "inference_rank": ranked, "ids": ids, "loaded": loaded, "used": len(used),
           "special": [tok.bos_token_id, tok.enc_token_id], "full_shapes": shapes}, open(sys.argv[2], "w"))
'''


def _vocab(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}))
    return path


def _checkpoint(path: Path) -> dict:
    """A seeded random tiny model (every weight perturbed: no zero bias or unit norm left), saved as ImageReward.pt
    is, with the extra tensors the real checkpoint carries (BLIP's projections, position_ids), which both sides
    ignore."""
    torch.manual_seed(0)
    model = ir.ImageRewardModel(TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = dict(model.state_dict())
    state["blip.vision_proj.weight"] = torch.randn(256, TINY.vision_width)
    state["blip.text_proj.weight"] = torch.randn(256, TINY.text_width)
    state["blip.text_encoder.embeddings.position_ids"] = torch.arange(TINY.max_positions)[None]
    torch.save(state, path)
    return state


def _images(folder: Path, prompts: list[str | None]) -> list[Path]:
    generator = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    files, rows = [], []
    for i, ((h, w, mode), prompt) in enumerate(zip(IMAGES, prompts)):
        pixels = generator.integers(0, 256, (h, w, 4 if mode == "RGBA" else 3), dtype=np.uint8)
        image = Image.fromarray(pixels, "RGBA" if mode == "RGBA" else "RGB")
        if mode == "P":
            image = image.quantize(32)
        elif mode == "L":
            image = image.convert("L")
        path = folder / f"{i:02d}.png"
        image.save(path)
        files.append(path)
        if prompt is not None:
            rows.append(json.dumps({"file": path.name, "prompt": prompt}))
    (folder / "prompts.jsonl").write_text("\n".join(rows) + "\n")
    return files


def _run_official(tmp_path: Path, checkpoint: Path, files: list[Path]) -> dict:
    if not (TRANSFORMERS4 / "transformers").is_dir() or not (OFFICIAL_DIR / "ImageReward").is_dir():
        message = "image-reward 1.5 or its transformers 4 are not installed: run `bash .ci/install-official`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    (tmp_path / "med_config.json").write_text(json.dumps(MED_CONFIG))
    (tmp_path / "med_config_full.json").write_text(json.dumps(FULL_MED_CONFIG))
    args = {"official_dir": str(OFFICIAL_DIR), "tokenizer_dir": str(_vocab(tmp_path / "bert").parent),
            "checkpoint": str(checkpoint), "med_config": str(tmp_path / "med_config.json"),
            "full_med_config": str(tmp_path / "med_config_full.json"),
            "prompts": PROMPTS, "files": [str(f) for f in files],
            "vit": {"width": TINY.vision_width, "depth": TINY.vision_depth, "heads": TINY.vision_heads}}
    (tmp_path / "args.json").write_text(json.dumps(args))
    env = {**os.environ, "PYTHONPATH": str(TRANSFORMERS4), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", OFFICIAL_SCRIPT, str(tmp_path / "args.json"),
                           str(tmp_path / "official.json")], capture_output=True, text=True, env=env, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((tmp_path / "official.json").read_text())


@pytest.fixture(scope="module")
def agreement(tmp_path_factory):
    """The official scores, ids and load check on the tiny model, once for the module."""
    tmp = tmp_path_factory.mktemp("imagereward")
    checkpoint = tmp / "ImageReward-tiny.pt"
    state = _checkpoint(checkpoint)
    files = _images(tmp / "images", list(PROMPTS))
    return {"tmp": tmp, "checkpoint": checkpoint, "state": state, "files": files,
            "official": _run_official(tmp, checkpoint, files)}


def _ours(agreement) -> ir.ImageRewardScorer:
    model = ir.ImageRewardModel(TINY)
    ir.load_checkpoint(model, agreement["state"])
    return ir.ImageRewardScorer(model, ir.blip_tokenizer(agreement["tmp"] / "bert" / "vocab.txt"))


def test_official_loaded_our_weights(agreement):
    """The package's strict=False load took every tensor it scores with from our file (none left random)."""
    official = agreement["official"]
    assert official["loaded"] and official["used"] == len(ir.ImageRewardModel(TINY).state_dict())


def test_full_size_network_matches_the_package(agreement):
    """At full size (the package's own create_vit('large') and the published med config) our parameter names and
    shapes are the package's, less what the score never uses (BLIP's two projections, position_ids)."""
    with torch.device("meta"):
        ours = {k: list(v.shape) for k, v in ir.ImageRewardModel().state_dict().items()}
    theirs = agreement["official"]["full_shapes"]
    assert {k: v for k, v in theirs.items() if k in ours} == ours
    assert sorted(set(theirs) - set(ours)) == ["blip.text_encoder.embeddings.position_ids", "blip.text_proj.bias",
                                               "blip.text_proj.weight", "blip.vision_proj.bias",
                                               "blip.vision_proj.weight"]
    assert theirs["blip.visual_encoder.pos_embed"] == [1, 197, 1024]


def test_tokens_match_blip_init_tokenizer(agreement):
    """Ids (lower-casing, accents stripped, [UNK], cut at 35 with [SEP] last, [PAD] after) and the added special
    tokens ([DEC] bos, [ENC]) equal the package's tokenizer's."""
    ours = _ours(agreement)
    ids, mask = ours.tokenize(PROMPTS)
    assert ids.tolist() == agreement["official"]["ids"]
    assert mask.tolist() == [[int(i != 0) for i in row] for row in agreement["official"]["ids"]]
    assert [ours.tokenizer.bos_token_id, ours.tokenizer.convert_tokens_to_ids("[ENC]")] == \
        agreement["official"]["special"] == [len(VOCAB), len(VOCAB) + 1]
    assert ids[PROMPTS.index(LONG), -1] == VOCAB.index("[SEP]")


@pytest.mark.parametrize("batch", [1, 4])
def test_scores_equal_the_package(agreement, batch):
    """Per pair: ImageReward.score(prompt, path) of the package (one image per forward pass) = ours, batched or not;
    its other path, inference_rank(prompt, paths), too."""
    ours = _ours(agreement)
    images = [Image.open(f) for f in agreement["files"]]
    got = np.concatenate([ours.score(images[i:i + batch], PROMPTS[i:i + batch]) for i in range(0, len(images), batch)])
    theirs = np.array(agreement["official"]["scores"])
    assert np.ptp(theirs) > 0.5  # the pairs are told apart: the comparison is not of near-constants
    np.testing.assert_allclose(got, theirs, rtol=0, atol=TOLERANCE)
    ranked = ours.score(images, [PROMPTS[0]] * len(images))
    np.testing.assert_allclose(ranked, agreement["official"]["inference_rank"], rtol=0, atol=TOLERANCE)


def _install(monkeypatch, agreement) -> None:
    from tests.conftest import install_standin_weights

    install_standin_weights(monkeypatch, ir.WEIGHTS, agreement["checkpoint"])
    install_standin_weights(monkeypatch, ir.VOCAB, agreement["tmp"] / "bert" / "vocab.txt")
    monkeypatch.setattr(ir, "CONFIG", TINY)


def test_task_end_to_end(agreement, tmp_path, monkeypatch):
    """The `imagereward` task through the runner: per-image rewards = the package's, their mean the metric, the
    protocol and both digests recorded; an image without a prompt and an unreadable one are skipped samples."""
    _install(monkeypatch, agreement)
    folder = tmp_path / "images"
    _images(folder, [*PROMPTS[:-1], None])
    (folder / "99.png").write_bytes(b"not a png")
    with (folder / "prompts.jsonl").open("a") as rows:
        rows.write(json.dumps({"file": "99.png", "prompt": "a photo"}) + "\n")
    (doc,) = score(f"folder:{folder}", ScoreOptions(tasks=["imagereward"], num_workers=0, progress=False,
                                                    batch_size=3)).results
    assert doc["status"] == "ok", doc
    theirs = np.array(agreement["official"]["scores"][:-1])
    np.testing.assert_allclose(doc["per_sample"]["imagereward"], theirs, rtol=0, atol=TOLERANCE)
    assert doc["metrics"]["imagereward"] == pytest.approx(float(np.mean(theirs)), abs=TOLERANCE)
    assert doc["protocol"] == doc["details"]["protocol"] == "imagereward-v1.0"
    assert doc["details"]["weights_sha256"] and doc["details"]["vocab_sha256"]
    assert doc["skipped_samples"]["count"] == 2
    reasons = sorted(s["reason"] for s in doc["skipped_samples"]["files"])
    assert "cannot decode" in reasons[0] and "no prompt" in reasons[1]


def test_missing_weights_is_a_skip(tmp_path, monkeypatch):
    from evalsuite import weights

    monkeypatch.setattr(weights, "local_path", lambda name: tmp_path / "absent" / name)
    _images(tmp_path / "images", list(PROMPTS))
    (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(tasks=["imagereward"], num_workers=0,
                                                                  progress=False, offline=True)).results
    assert doc["status"] == "skipped" and "imagereward-v1.0" in doc["fix"], doc


def test_checkpoint_missing_a_tensor_is_refused():
    from evalsuite.errors import InputError

    model = ir.ImageRewardModel(TINY)
    state = dict(model.state_dict())
    del state["mlp.layers.7.weight"]
    with pytest.raises(InputError, match="lacks 1 tensor"):
        ir.load_checkpoint(model, state)

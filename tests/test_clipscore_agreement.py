"""CLIPScore's two conventions against their official code, on one tiny random CLIP (fixed seed).

`clipscore` runs against torchmetrics itself: the same weights converted to a transformers `CLIPModel`, a HF
`CLIPTokenizer` built from open_clip's copy of OpenAI's BPE vocabulary, and HF's PIL `CLIPImageProcessor`; prompts of
75 (kept whole), 76 and 100+ BPE tokens (sliced at 77, end token lost: torchmetrics #2883). `clip_s_hessel` has no
installable package (its script imports OpenAI's `clip`), so it is a hand-worked case citing jmhessel/clipscore.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.runner import ScoreOptions, score
from tests.official import official

open_clip = pytest.importorskip("open_clip")

SHORT = "a red car parked next to two dogs"
# "x" is one BPE token: 75 of them fill the context exactly (start + 75 + end = 77); 76 and more lose the end token
PROMPTS = [SHORT, "x " * 75, "x " * 76, "a photo of " + "very " * 100 + "red car", "two cats on a sofa"]
SIZES = [(224, 224), (240, 320), (300, 227), (224, 227), (231, 300)]  # (height, width): resize and crop offsets


def _tiny_clip(tmp_path, monkeypatch, sign: float = 1.0):
    """tests/conftest.py's tiny OpenAI-layout CLIP; sign -1 negates the text projection (every cos flips sign)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from tests.conftest import install_standin_weights

    torch.manual_seed(0)
    model = CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=32, image_size=224),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))
    with torch.no_grad():
        model.text_projection.mul_(sign)
    path = tmp_path / "ViT-B-32.pt"
    torch.save(model.state_dict(), path)
    install_standin_weights(monkeypatch, "clip-vit-b-32-openai", path)
    return open_clip.load_openai_model(str(path), precision="fp32", device="cpu").eval()


def _to_transformers(model, eos_token_id: int):
    """The same weights as a transformers CLIPModel (OpenAI layout -> HF names, as HF's conversion script maps them).
    eos_token_id 2 is what the hub's openai/clip-vit-* configs carry (HF pools at the largest id); 49407 the newer
    rule (pools at the first end token). Both pool at the start token once the end token is sliced off."""
    transformers = official("transformers")
    sd, width, layers = model.state_dict(), 64, 1
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                         num_attention_heads=1, max_position_embeddings=77, eos_token_id=eos_token_id,
                         bos_token_id=0 if eos_token_id == 2 else 49406, pad_token_id=1),
        vision_config=dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                           num_attention_heads=1, image_size=224, patch_size=32),
        projection_dim=32)
    hf = transformers.CLIPModel(config).eval()
    new = {}
    for src, dst in (("transformer", "text_model.encoder"), ("visual.transformer", "vision_model.encoder")):
        for i in range(layers):
            s, d = f"{src}.resblocks.{i}", f"{dst}.layers.{i}"
            weights, biases = sd[f"{s}.attn.in_proj_weight"].chunk(3), sd[f"{s}.attn.in_proj_bias"].chunk(3)
            for name, w, b in zip("qkv", weights, biases):
                new[f"{d}.self_attn.{name}_proj.weight"], new[f"{d}.self_attn.{name}_proj.bias"] = w, b
            for a, b in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                         ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                new[f"{d}.{b}.weight"], new[f"{d}.{b}.bias"] = sd[f"{s}.{a}.weight"], sd[f"{s}.{a}.bias"]
    for a, b in (("ln_final", "text_model.final_layer_norm"), ("visual.ln_pre", "vision_model.pre_layrnorm"),
                 ("visual.ln_post", "vision_model.post_layernorm")):
        new[f"{b}.weight"], new[f"{b}.bias"] = sd[f"{a}.weight"], sd[f"{a}.bias"]
    new.update({"text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
                "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
                "text_projection.weight": sd["text_projection"].T,
                "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
                "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
                "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
                "visual_projection.weight": sd["visual.proj"].T, "logit_scale": sd["logit_scale"]})
    missing, unexpected = hf.load_state_dict(new, strict=False)
    assert not missing and not unexpected
    return hf


def _processor():
    """HF's CLIPProcessor: a CLIPTokenizer on OpenAI's BPE vocabulary (open_clip ships the same file) and the PIL
    CLIPImageProcessor (transformers 4's default; transformers 5's default resizes tensors with torchvision)."""
    transformers = official("transformers")
    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines]
    byte_tokens = list(bytes_to_unicode().values())
    vocab = byte_tokens + [t + "</w>" for t in byte_tokens] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = transformers.CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges)
    return transformers.CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tokenizer)


class _Features(torch.nn.Module):
    """transformers 5 returns a ModelOutput from get_*_features (torchmetrics 1.x expects the tensor, as transformers
    4 returned): hand torchmetrics the projected pooled tensor, nothing else changed."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def get_text_features(self, *args, **kwargs):
        return self.model.get_text_features(*args, **kwargs).pooler_output

    def get_image_features(self, *args, **kwargs):
        return self.model.get_image_features(*args, **kwargs).pooler_output


def _images(folder):
    generator = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, h, w), generator=generator, dtype=torch.uint8) for h, w in SIZES]
    folder.mkdir()
    rows = []
    for i, (image, prompt) in enumerate(zip(images, PROMPTS)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:02d}.png")
        rows.append(json.dumps({"file": f"{i:02d}.png", "prompt": prompt}))
    (folder / "prompts.jsonl").write_text("\n".join(rows) + "\n")
    return images


@pytest.mark.parametrize("sign,eos_token_id", [(1.0, 2), (1.0, 49407), (-1.0, 2)])
def test_clipscore_equals_torchmetrics(tmp_path, monkeypatch, sign, eos_token_id):
    """Per pair: torchmetrics `_clip_score_update` (100·cos); overall: `CLIPScore.compute` (max(mean, 0)); sign -1
    makes every cos negative, so the overall number is torchmetrics' clamp of the mean to 0."""
    clip_score = official("torchmetrics.functional.multimodal.clip_score")
    from torchmetrics.multimodal import CLIPScore

    model = _tiny_clip(tmp_path, monkeypatch, sign)
    features, processor = _Features(_to_transformers(model, eos_token_id)), _processor()
    images = _images(tmp_path / "images")
    with torch.no_grad(), pytest.warns(UserWarning, match="longer than"):
        per_pair, n = clip_score._clip_score_update(images, PROMPTS, features, processor)
        metric = CLIPScore(model_name_or_path=lambda: (features, processor))
        metric.update(images, PROMPTS)
        overall = metric.compute().item()
    assert n == len(PROMPTS)

    with pytest.warns(UserWarning, match="2 prompt"):
        (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(tasks=["clipscore"], num_workers=0,
                                                                      progress=False, batch_size=2)).results
    assert doc["status"] == "ok", doc
    np.testing.assert_allclose(doc["per_sample"]["clipscore"], per_pair.numpy(), rtol=0, atol=1e-4)
    assert doc["metrics"]["clipscore"] == pytest.approx(overall, abs=1e-4)
    assert (doc["metrics"]["clipscore"] == 0.0) == (sign < 0)
    assert doc["per_sample"]["truncated"] == [False, False, True, True, False]
    # the quirk reproduced: both prompts that lost their end token are pooled at the start token, one embedding
    from evalsuite.tasks.t2i.clipscore import CLIPScorer

    same = [images[0], images[0]]
    with torch.no_grad(), pytest.warns(UserWarning):
        theirs = clip_score._clip_score_update(same, PROMPTS[2:4], features, processor)[0].numpy()
    ours = CLIPScorer().score([Image.fromarray(i.permute(1, 2, 0).numpy()) for i in same], PROMPTS[2:4])
    np.testing.assert_allclose(ours["clipscore"], theirs, rtol=0, atol=1e-4)
    assert theirs[0] == pytest.approx(theirs[1], abs=1e-5)
    assert doc["details"]["prompts_over_77_tokens"] == {"clipscore": 2, "clip_s_hessel": 3}


def test_truncation_at_the_context_boundary():
    """torchmetrics keeps 77 ids (functional/multimodal/clip_score.py `_get_features`: `input_ids[..., :77]`);
    OpenAI's clip.tokenize(truncate=True) (openai/CLIP clip/clip.py l.238-240) cuts at 77 and writes the end token
    last, as open_clip's tokenizer does."""
    from evalsuite.tasks.t2i.clipscore import hessel_tokens, torchmetrics_tokens

    tok = open_clip.get_tokenizer("ViT-B-32")
    sot, eot, x = 49406, 49407, tok.encode("x")[0]
    assert torchmetrics_tokens([x] * 75, sot, eot) == [sot] + [x] * 75 + [eot]
    assert torchmetrics_tokens([x] * 76, sot, eot) == [sot] + [x] * 76
    assert hessel_tokens([x] * 76, sot, eot) == [sot] + [x] * 75 + [eot]
    for n in (74, 75, 76, 120):
        ours = hessel_tokens(tok.encode("x " * n), sot, eot)
        assert ours == [t for t in tok(["x " * n])[0].tolist() if t]


def test_clip_s_hessel_hand_worked(tmp_path, monkeypatch):
    """jmhessel/clipscore clipscore.py: CLIPCapDataset (l.66-76) tokenises "A photo depicts " + caption with
    clip.tokenize(truncate=True); get_clip_score (l.135-160) L2-normalises both embeddings and returns
    w·clip(cos, 0, None) per pair with w = 2.5, and their mean. Worked here for a short caption, 76 × "x" (start,
    "a", "photo", "depicts", 72 × "x", end: 77 tokens) and a 100+-token caption (its first 72 tokens kept)."""
    model = _tiny_clip(tmp_path, monkeypatch)
    images = _images(tmp_path / "images")
    tok = open_clip.get_tokenizer("ViT-B-32")
    a_photo_depicts = tok.encode("a photo depicts")
    assert len(a_photo_depicts) == 3
    ids = torch.zeros(3, 77, dtype=torch.long)
    short = [49406, *a_photo_depicts, *tok.encode(SHORT), 49407]
    ids[0, :len(short)] = torch.tensor(short)
    ids[1] = torch.tensor([49406, *a_photo_depicts, *[tok.encode("x")[0]] * 72, 49407])
    ids[2] = torch.tensor([49406, *a_photo_depicts, *tok.encode(PROMPTS[3])[:72], 49407])
    # Hessel's _transform_test (l.88-95): Resize(224, BICUBIC), torchvision CenterCrop (rounds the offset: the
    # 224×227 image is cropped at x = 2, where HF's processor takes x = 1), ToTensor, CLIP mean/std
    pre = open_clip.image_transform(224, is_train=False)
    with torch.no_grad():
        img = model.encode_image(torch.stack([pre(Image.open(tmp_path / "images" / f"{i:02d}.png"))
                                              for i in (0, 2, 3)]))
        txt = model.encode_text(ids)
    img, txt = img.numpy(), txt.numpy()
    cos = np.sum(img / np.linalg.norm(img, axis=1, keepdims=True) * txt / np.linalg.norm(txt, axis=1, keepdims=True),
                 axis=1)
    expected = 2.5 * np.clip(cos, 0, None)

    with pytest.warns(UserWarning):
        (doc,) = score(f"folder:{tmp_path / 'images'}", ScoreOptions(tasks=["clipscore"], num_workers=0,
                                                                      progress=False)).results
    per = doc["per_sample"]
    np.testing.assert_allclose([per["clip_s_hessel"][i] for i in (0, 2, 3)], expected, rtol=1e-5, atol=1e-6)
    assert doc["metrics"]["clip_s_hessel"] == pytest.approx(np.mean(per["clip_s_hessel"]), rel=1e-12)
    assert per["truncated_hessel"] == [False, True, True, True, False]  # 75 x's + 3 prefix tokens no longer fit
    assert len(images) == len(PROMPTS)

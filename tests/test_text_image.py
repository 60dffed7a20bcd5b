"""Text-image plumbing and CLIPScore: the GenEval layout (written from the sample store, read back, missing images
counted) and CLIPScore's convention checked against a direct computation with a tiny stand-in CLIP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite import prompt_layout as layout
from evalsuite.models import resolve_model
from evalsuite.runner import ScoreOptions, score
from evalsuite.samples import SampleStore

open_clip = pytest.importorskip("open_clip")

PROMPTS = [{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
           {"tag": "counting", "include": [{"class": "cat", "count": 2}], "exclude": [{"class": "cat", "count": 3}],
            "prompt": "a photo of two cats"}]


def test_layout_written_from_the_sample_store_and_read_back(tmp_path):
    source = resolve_model("demo")
    store = SampleStore(tmp_path / "samples", source.model_id)
    folder, generated = layout.write_layout(tmp_path / "layouts", source.generator, source.model_id, PROMPTS, 3,
                                            seed=10, sample_store=store, progress=False)
    assert generated == 6
    assert sorted(p.name for p in folder.iterdir()) == ["00000", "00001"]
    meta = json.loads((folder / "00001" / "metadata.jsonl").read_text())
    assert meta["prompt"] == "a photo of two cats" and meta["seeds"] == [13, 14, 15]
    items = layout.read_layout(folder, 3)
    assert [len(i.images) for i in items] == [3, 3] and items[1].seeds == [13, 14, 15]
    # the files are the sample store's samples (hard links), and a rerun generates nothing
    assert items[0].images[0].read_bytes() == store.path_for(store_req := __import__(
        "evalsuite.samples", fromlist=["SampleRequest"]).SampleRequest("a photo of a dog", 10)).read_bytes()
    _, again = layout.write_layout(tmp_path / "layouts", source.generator, source.model_id, PROMPTS, 3, seed=10,
                                   sample_store=store, progress=False)
    assert again == 0 and store_req.seed == 10


def test_missing_images_are_counted_not_dropped(tmp_path):
    folder = tmp_path / "geneval"
    for i, meta in enumerate(PROMPTS):
        (folder / f"{i:05d}" / "samples").mkdir(parents=True)
        (folder / f"{i:05d}" / "metadata.jsonl").write_text(json.dumps(meta) + "\n")
    Image.new("RGB", (8, 8)).save(folder / "00000" / "samples" / "0000.png")
    items = layout.read_layout(folder, 4)
    assert [i.missing for i in items] == [3, 4]
    assert not layout.is_layout(tmp_path)
    with pytest.raises(Exception, match="layout"):
        layout.read_layout(tmp_path / "nothing")


def test_clipscore_convention_and_per_sample(tiny_openai_clip):
    summary = score("demo", ScoreOptions(tasks=["clipscore"], num_samples=6, num_workers=0, progress=False,
                                         batch_size=4))
    (doc,) = summary.results
    assert doc["status"] == "ok" and doc["num_samples"] == 6
    per = doc["per_sample"]
    # independent computation: open_clip's own loader, preprocessing and tokenizer (the demo prompts are short, so
    # its truncation never applies), then torchmetrics' 100·cos per pair and max(mean, 0) overall
    model = open_clip.load_openai_model(str(tiny_openai_clip), precision="fp32", device="cpu").eval()
    pre = open_clip.image_transform(224, is_train=False)
    tok = open_clip.get_tokenizer("ViT-B-32")
    with torch.inference_mode():
        img = model.encode_image(torch.stack([pre(Image.open(p).convert("RGB")) for p in per["name"]]))
        txt = model.encode_text(tok(per["prompt"]))
    cos = torch.nn.functional.cosine_similarity(img, txt).numpy()
    expected = 100 * cos
    np.testing.assert_allclose(per["clipscore"], expected, rtol=1e-5, atol=1e-5)
    assert doc["metrics"]["clipscore"] == pytest.approx(max(expected.mean(), 0), rel=1e-5, abs=1e-5)
    assert doc["details"]["prompts_over_77_tokens"] == {"clipscore": 0, "clip_s_hessel": 0}
    assert per["prompt"][0] == "a red circle"


def test_clipscore_skips_without_weights_or_prompts(tmp_path):
    (doc,) = score("demo", ScoreOptions(tasks=["clipscore"], num_samples=2, num_workers=0, progress=False)).results
    assert doc["status"] == "skipped" and "ViT-B-32.pt" in doc["reason"]

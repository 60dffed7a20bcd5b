"""GenEval's colour classifier against the official code it runs: clip-benchmark 1.4.0's `zero_shot_classifier`
and `run_classification` (clip_benchmark/metrics/zeroshot_classification.py), called as GenEval's
`evaluation/evaluate_images.py` calls them (djghosh13/geneval at af4902f, L109-127: the 10 colours as class names,
three templates with the object name filled in, crops from `ImageCrops`, L94-106), on a tiny random-init open_clip
model (fixed seed) and open_clip's real tokenizer.

Tolerances: text weights and logits within 1e-5 (absolute; the logits are 100 x cosine), identical predicted
colours. On a CPU both run in float32 (clip-benchmark's amp=True uses `torch.cuda.amp.autocast`, a no-op without
CUDA); on CUDA both run under float16 autocast (that test needs a GPU)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.tasks.geneval.color_classifier import CLIPColorClassifier, color_crop
from evalsuite.tasks.geneval.prompts import COLORS
from evalsuite.tasks.t2i.backends import Detection
from tests.official import official

ZSC = "clip_benchmark.metrics.zeroshot_classification"
TOL = 1e-5
# the logits are 100 · cos in float32 (clip-benchmark's logit scale): their rounding is ~100 · 2^-24 · sqrt(d) per
# value, so they are compared to 1e-6 of that scale (1e-4 absolute), the class weights (unit vectors) to 1e-5
LOGIT_TOL = 1e-4


def _official_zsc(monkeypatch):
    """clip-benchmark's zero-shot module. It imports sklearn.metrics (for its report and average-precision helpers)
    and tqdm (a progress bar) at module level; where they are not installed they are stubbed: neither is used by
    `zero_shot_classifier` or `run_classification` beyond `tqdm(iterable)`, which the stub passes through."""
    def stub(name: str) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # torch._dynamo looks modules up by spec
        monkeypatch.setitem(sys.modules, name, module)
        return module

    if importlib.util.find_spec("sklearn") is None:
        stub("sklearn").metrics = metrics = stub("sklearn.metrics")
        metrics.classification_report = metrics.balanced_accuracy_score = None
    if importlib.util.find_spec("tqdm") is None:
        stub("tqdm").tqdm = lambda iterable, *args, **kwargs: iterable
    monkeypatch.delitem(sys.modules, ZSC, raising=False)
    module = official(ZSC)
    monkeypatch.setitem(sys.modules, ZSC, module)  # dropped again after the test (it may hold the stubs)
    return module


def _tiny_clip():
    import open_clip

    torch.manual_seed(0)
    return open_clip.CLIP(
        embed_dim=32,
        vision_cfg=open_clip.CLIPVisionCfg(layers=1, width=64, head_width=32, patch_size=16, image_size=64),
        text_cfg=open_clip.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=1),
    ).eval()


def _scene():
    """An image (six solid stripes above, noise below) and detections of two classes: boxes with fractional
    corners, masks, one box partly outside the image, boxes without a mask."""
    arr = np.zeros((72, 96, 3), dtype=np.uint8)
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (255, 255, 0)]):
        arr[:36, 16 * i:16 * (i + 1)] = colour
    arr[36:] = np.random.default_rng(0).integers(0, 256, (36, 96, 3), dtype=np.uint8)
    dets = [Detection("car", 0.9, (16 * i + 0.4, 0.6, 16 * i + 15.5, 35.5)) for i in range(6)]
    for box, name in [((4.4, 6.6, 40.2, 50.5), "car"), ((30, 10, 90, 70), "tv remote"),
                      ((50.5, 20.5, 101.0, 75.0), "tv remote"), ((0, 40, 20, 60), "tv remote")]:
        mask = np.zeros((72, 96), dtype=bool)
        x1, y1, x2, y2 = (int(v) for v in box)
        mask[y1 + 3:y2 - 3, x1 + 2:x2 - 5] = True
        dets.append(Detection(name, 0.9, box, mask))
    return Image.fromarray(arr), dets


class _OfficialCrops(torch.utils.data.Dataset):
    """GenEval's `ImageCrops` (evaluate_images.py L81-106) with its defaults bgcolor='#999', crop='1'."""

    def __init__(self, image, objects, transform):
        self.image, self.objects, self.transform = image.convert("RGB"), objects, transform
        self.blank = Image.new("RGB", image.size, color="#999")

    def __len__(self):
        return len(self.objects)

    def __getitem__(self, index):
        box, mask = self.objects[index]
        crop = self.image if mask is None else Image.composite(self.image, self.blank, Image.fromarray(mask))
        return self.transform(crop.crop(tuple(float(v) for v in box[:4]))), 0  # (Pillow 13 refuses arrays)


def _official_run(zsc, model, tokenizer, transform, image, dets, classname, device):
    templates = [f"a photo of a {{c}} {classname}", f"a photo of a {{c}}-colored {classname}",
                 "a photo of a {c} object"]  # evaluate_images.py L111-119
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.cuda.amp.autocast is deprecated (and off without CUDA)
        weights = zsc.zero_shot_classifier(model, tokenizer, list(COLORS), templates, device)
        objects = [(np.asarray(d.box, dtype=np.float32), d.mask) for d in dets]
        loader = torch.utils.data.DataLoader(_OfficialCrops(image, objects, transform), batch_size=16)
        with torch.no_grad():
            logits, _ = zsc.run_classification(model, weights, loader, device)
    return weights, logits


def _compare(zsc, device):
    import open_clip

    model = _tiny_clip().to(device)
    tokenizer = open_clip.get_tokenizer("ViT-L-14")
    transform = open_clip.image_transform(model.visual.image_size, is_train=False,
                                          mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD)
    ours = CLIPColorClassifier(device=device, model=model, tokenizer=tokenizer)
    image, dets = _scene()
    predicted: set[str] = set()
    for classname in ("car", "tv remote"):
        mine = [d for d in dets if d.label == classname]
        weights, logits = _official_run(zsc, model, tokenizer, transform, image, mine, classname, device)
        assert torch.allclose(ours._class_weights(classname, COLORS).float().cpu(), weights.float().cpu(),
                              atol=TOL, rtol=0)
        our_logits = torch.cat([ours.logits(image, d, classname, list(COLORS)) for d in mine])
        assert torch.allclose(our_logits, logits, atol=LOGIT_TOL, rtol=0), (our_logits - logits).abs().max()
        top2 = logits.topk(2, dim=1).values
        assert ((top2[:, 0] - top2[:, 1]) > 10 * LOGIT_TOL).all()  # predictions are decided, not ties
        official_colors = [COLORS[int(i)] for i in logits.argmax(1)]  # evaluate_images.py L127
        assert [ours.classify(image, d, classname, list(COLORS)) for d in mine] == official_colors
        predicted |= set(official_colors)
    assert len(predicted) >= 3  # the argmax is exercised, not one colour for every crop
    return ours


def test_color_classifier_matches_clip_benchmark_on_cpu(monkeypatch):
    ours = _compare(_official_zsc(monkeypatch), "cpu")
    assert ours.precision == "float32" and not ours.amp


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the float16 autocast path needs CUDA")
def test_color_classifier_matches_clip_benchmark_under_cuda_autocast(monkeypatch):
    ours = _compare(_official_zsc(monkeypatch), "cuda")
    assert ours.amp and "float16" in ours.precision


def test_color_crop_is_genevals_composite_and_pil_crop():
    """evaluate_images.py L98-102: `Image.composite(image, grey, mask)` then `image.crop(box)`: PIL rounds the box
    (half to even) and pads outside the image with black."""
    arr = np.full((10, 12, 3), 200, dtype=np.uint8)
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:6, 3:8] = True
    crop = np.asarray(color_crop(Image.fromarray(arr), Detection("cup", 0.9, (2.5, 1.5, 14.4, 6.6), mask)))
    # round(2.5) = 2, round(1.5) = 2, round(14.4) = 14, round(6.6) = 7 -> 12 x 5 pixels, two columns off the image
    assert crop.shape == (5, 12, 3)
    assert (crop[:4, 1:6] == 200).all() and (crop[4, :10] == 153).all() and (crop[:, :1] == 153).all()
    assert (crop[:, 10:] == 0).all()

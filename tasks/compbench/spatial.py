"""T2I-CompBench's 2D-spatial rule (UniDet_eval/2D_spatial_eval.py) over any registered detector.

The official detector is UniDet (Unified_learned_OCIM_RS200_6x+2x, detectron2), which does not install here; the
rule below runs on the boxes of whichever detector the protocol names. Per image (2D_spatial_eval.py):

* the image is resized as the official transform does, `Resize(size=479, max_size=480)` (experts/model_bank.py
  L89-91), and the boxes live in that frame (the distance threshold of 150 is in those pixels);
* detections below 0.5 confidence are dropped (`--confidence-threshold` 0.5, model_bank.py L75 and
  obj_detection/utils.py L12-13), the rest ordered by confidence (detectron2's output order);
* the relation is the first of `vocab_spatial` found in the prompt as a substring (L168-174);
* obj1 / obj2 are the first / last token spaCy tags NOUN (L223-226); girl, boy, man, woman -> person (L228-232);
* an object is found when a detection's label equals it exactly; the first such detection is used (L233-235);
* both found: 0.25·conf1 + 0.25·conf2 + determine_position(...)/2 (L250-251); one found: 0.25·its conf
  (L252-257); none: 0; a score under 0.5 becomes 0 (L260-261);
* determine_position (L23-78): centres, x/y distances box2 − box1, IoU; 'next to', 'on side of', 'near': 1 if
  |dx| < 150 or |dy| < 150, else 150 / max(|dx|, |dy|); 'on the right of' needs dx < 0, 'on the left of' dx > 0,
  'on the bottom of' dy < 0, 'on the top of' dy > 0, each with the major axis along that direction, then 1 if
  IoU < 0.1 else 0.1 / IoU; anything else (including 'on top of', which the vocabulary finds but the function
  does not handle) scores 0.

Where the official script crashes (a prompt spaCy finds no noun in, L225 `[...][0]`; two boxes with zero union,
L39), this scores 0 and records why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from PIL import Image

VOCAB_SPATIAL: tuple[str, ...] = ("on side of", "next to", "near", "on the left of", "on the right of",
                                  "on the bottom of", "on the top of", "on top of")  # 2D_spatial_eval.py L168
NEAR_WORDS = ("next to", "on side of", "near")  # L43
PERSON_WORDS = ("girl", "boy", "man", "woman")  # L228
IOU_THRESHOLD = 0.1  # L23
DISTANCE_THRESHOLD = 150  # L23
CONFIDENCE_THRESHOLD = 0.5  # experts/model_bank.py L75
RESIZE = (479, 480)  # experts/model_bank.py L89-91: Resize(size=479, max_size=480)


@dataclass
class Box:
    x_min: float
    y_min: float
    x_max: float
    y_max: float


def locality(prompt: str) -> str | None:
    """The first relation of VOCAB_SPATIAL contained in the prompt (2D_spatial_eval.py L170-174)."""
    for word in VOCAB_SPATIAL:
        if word in prompt:
            return word
    return None


def determine_position(locality: str | None, box1: Box, box2: Box, iou_threshold: float = IOU_THRESHOLD,
                       distance_threshold: float = DISTANCE_THRESHOLD) -> float:
    """The official soft position score in [0, 1] (2D_spatial_eval.py L23-78)."""
    c1 = ((box1.x_min + box1.x_max) / 2, (box1.y_min + box1.y_max) / 2)
    c2 = ((box2.x_min + box2.x_max) / 2, (box2.y_min + box2.y_max) / 2)
    dx, dy = c2[0] - c1[0], c2[1] - c1[1]
    x_overlap = max(0.0, min(box1.x_max, box2.x_max) - max(box1.x_min, box2.x_min))
    y_overlap = max(0.0, min(box1.y_max, box2.y_max) - max(box1.y_min, box2.y_min))
    inter = x_overlap * y_overlap
    union = ((box1.x_max - box1.x_min) * (box1.y_max - box1.y_min)
             + (box2.x_max - box2.x_min) * (box2.y_max - box2.y_min) - inter)
    iou = inter / union if union else 0.0  # the official divides by zero here (L39)
    if locality in NEAR_WORDS:
        if abs(dx) < distance_threshold or abs(dy) < distance_threshold:
            return 1.0
        return distance_threshold / max(abs(dx), abs(dy))
    # direction -> (the signed distance that must be positive, the other axis)
    sides = {"on the right of": (-dx, dy), "on the left of": (dx, dy), "on the bottom of": (-dy, dx),
             "on the top of": (dy, dx)}
    if locality not in sides:
        return 0.0
    along, across = sides[locality]
    if along > 0 and abs(along) > abs(across):
        return 1.0 if iou < iou_threshold else iou_threshold / iou
    return 0.0


def nouns(prompt: str, nlp: Any) -> tuple[str | None, str | None]:
    """obj1, obj2: the first and last token spaCy tags NOUN (L223-226), person words mapped (L228-232)."""
    found = [t.text for t in nlp(prompt) if t.pos_ == "NOUN"]
    if not found:
        return None, None
    obj1, obj2 = found[0], found[-1]
    return ("person" if obj1 in PERSON_WORDS else obj1), ("person" if obj2 in PERSON_WORDS else obj2)


def official_resize(image: Image.Image) -> Image.Image:
    """torchvision `Resize(size=479, max_size=480)` on the PIL image (bilinear), the frame the official boxes use."""
    from torchvision.transforms import Resize

    return Resize(size=RESIZE[0], max_size=RESIZE[1])(image.convert("RGB"))


def score_detections(prompt: str, detections: Sequence[Any], nlp: Any) -> dict:
    """The official per-image score from detections (objects with .label, .score, .box = (x1, y1, x2, y2) in the
    resized frame), before the confidence threshold: {'score', 'obj1', 'obj2', 'locality', 'reason'}."""
    kept = sorted((d for d in detections if d.score >= CONFIDENCE_THRESHOLD), key=lambda d: -d.score)
    labels = [d.label for d in kept]
    where = locality(prompt)
    obj1, obj2 = nouns(prompt, nlp)
    out: dict[str, Any] = {"obj1": obj1, "obj2": obj2, "locality": where, "reason": None}
    if obj1 is None:
        out.update(score=0.0, reason="spaCy finds no noun in the prompt (the official script crashes here)")
        return out
    if obj1 in labels and obj2 in labels:
        d1, d2 = kept[labels.index(obj1)], kept[labels.index(obj2)]
        score = 0.25 * d1.score + 0.25 * d2.score + determine_position(where, Box(*d1.box), Box(*d2.box)) / 2
    elif obj1 in labels:
        score = 0.25 * kept[labels.index(obj1)].score
    elif obj2 in labels:
        score = 0.25 * kept[labels.index(obj2)].score
    else:
        score = 0.0
    out["score"] = 0.0 if score < 0.5 else float(score)
    return out


def score_image(image: Image.Image, prompt: str, detector: Any, nlp: Any) -> dict:
    """Detect on the officially resized image and apply the rule."""
    return score_detections(prompt, detector.detect(official_resize(image)), nlp)

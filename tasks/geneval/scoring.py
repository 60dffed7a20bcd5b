"""GenEval's official rule and summary (djghosh13/geneval `evaluation/evaluate_images.py`, `summary_scores.py`),
pure functions on detections: detections above 0.3 confidence (0.9 for counting), at most 16 per class, no NMS;
include clauses ANDed (at least `count` objects of the class, of the requested colour, in the requested relation to
an earlier group); exclude clauses fail at `count` or more objects; overall = unweighted mean of the task accuracies.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, cast

import numpy as np
from PIL import Image, ImageOps

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.tasks.geneval.prompts import COLORS
from evalsuite.tasks.t2i.backends import ColorClassifier, Detection, Detector, detect_all

THRESHOLD = 0.3
COUNTING_THRESHOLD = 0.9
MAX_OBJECTS = 16
POSITION_SHRINK = 0.1  # each axis of a centre offset shrinks by this fraction of the two boxes' summed size


def filter_detections(detections: Iterable[Detection], tag: str, threshold: float = THRESHOLD,
                      counting_threshold: float = COUNTING_THRESHOLD,
                      max_objects: int = MAX_OBJECTS) -> dict[str, list[Detection]]:
    """Per class, the detections scoring above the threshold (the counting one for tag 'counting'), most confident
    first, at most `max_objects`; no NMS. Classes with nothing left are absent."""
    cutoff = counting_threshold if tag == "counting" else threshold
    by_class: dict[str, list[Detection]] = defaultdict(list)
    for det in detections:
        if float(det.score) > cutoff:
            by_class[det.label].append(det)
    return {label: sorted(dets, key=lambda d: -float(d.score))[:max_objects] for label, dets in by_class.items()}


def relative_position(a: Detection, b: Detection, shrink: float = POSITION_SHRINK) -> set[str]:
    """Where A lies relative to B ("left of", "right of", "above", "below"; image y grows downwards).

    offset = centre(A) - centre(B); each axis's |offset| shrinks by shrink * (size_A + size_B) along that axis (not
    below 0, sign kept); near-zero on both axes -> no relation; otherwise a relation holds where the shrunk offset,
    divided by the length of the original offset, passes 0.5 on that axis."""
    box_a = np.asarray(a.box[:4], dtype=np.float64)
    box_b = np.asarray(b.box[:4], dtype=np.float64)
    centre_a = (box_a[:2] + box_a[2:]) / 2
    centre_b = (box_b[:2] + box_b[2:]) / 2
    size_a = np.abs(box_a[2:] - box_a[:2])
    size_b = np.abs(box_b[2:] - box_b[:2])
    offset = centre_a - centre_b
    revised = np.sign(offset) * np.maximum(np.abs(offset) - shrink * (size_a + size_b), 0.0)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def evaluate(image: Image.Image | None, metadata: Mapping, detections_by_class: Mapping[str, list[Detection]],
             color_classifier: ColorClassifier | None = None) -> tuple[bool, str]:
    """GenEval's rule for one image: (correct, reason); the reason lists every failed clause, one per line.

    Include clauses in order: the first `count` objects of the class must exist; a colour clause needs `count` of
    them classified as that colour; a position clause (if the clause matched so far) needs each of its objects in the
    relation to every object of the earlier group it names (a failed group: "no target"). Exclude clauses fail when
    the class has `count` or more detections."""
    correct = True
    reasons: list[str] = []
    groups: list[list[Detection] | None] = []
    for clause in metadata.get("include", []):
        name, count = clause["class"], int(clause["count"])
        objects = list(detections_by_class.get(name, []))[:count]
        matched = True
        if len(objects) < count:
            matched = False
            reasons.append(f"expected {name}>={count}, found {len(objects)}")
        else:
            if "color" in clause:
                want = clause["color"]
                if color_classifier is None:
                    raise InputError(f"prompt {metadata.get('prompt')!r} has a colour clause but no colour "
                                     "classifier was given", "pass a colour backend (e.g. clip-vit-l-14)")
                # (image is None only for callers whose classifier never looks at it: the tests' stand-ins)
                found = [color_classifier.classify(cast(Image.Image, image), obj, name, list(COLORS))
                         for obj in objects]
                hits = found.count(want)
                if hits < count:
                    matched = False
                    tally = ", ".join(f"{found.count(c)} {c}" for c in COLORS if c in found)
                    reasons.append(f"expected {want} {name}>={count}, found {hits} {want}; and {tally}")
            if "position" in clause and matched:
                relation, target = clause["position"]
                if not 0 <= target < len(groups):
                    raise InputError(f"prompt {metadata.get('prompt')!r}: position target {target} is not an "
                                     "earlier include clause", "point 'position' at an earlier group index")
                if groups[target] is None:
                    matched = False
                    reasons.append(f"no target for {name} to be {relation}")
                else:
                    for obj in objects:
                        for other in groups[target]:
                            found_rel = relative_position(obj, other)
                            if relation not in found_rel:
                                matched = False
                                seen = " and ".join(sorted(found_rel)) or "no clear relation to"
                                reasons.append(f"expected {name} {relation} target, found {seen} target")
                                break
                        if not matched:
                            break
        groups.append(objects if matched else None)
        correct = correct and matched
    for clause in metadata.get("exclude", []):
        name, count = clause["class"], int(clause["count"])
        n = len(detections_by_class.get(name, []))
        if n >= count:
            correct = False
            reasons.append(f"expected {name}<{count}, found {n}")
    return correct, "\n".join(reasons)


def open_image(image: Image.Image | str | Path) -> Image.Image:
    """An RGB image; a path is read as GenEval reads it (`ImageOps.exif_transpose(Image.open(...))`,
    evaluate_images.py L227); an unreadable file raises InputError naming it."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    path = Path(image)
    try:
        with Image.open(path) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read image {path}: {exc}", "regenerate or remove the file") from exc


def score_images(samples: Iterable[tuple[str, Image.Image | str | Path, Mapping]], detector: Detector,
                 color_classifier: ColorClassifier | None = None, *, threshold: float = THRESHOLD,
                 counting_threshold: float = COUNTING_THRESHOLD, max_objects: int = MAX_OBJECTS) -> list[dict]:
    """Score (filename, image or image path, metadata) triples; one row per image in the official results.jsonl
    schema: filename, tag, prompt, correct, reason, metadata (JSON string), details (JSON string: per class, the
    kept boxes as [x1, y1, x2, y2, score], most confident first). Images of one size are detected in one batch
    where the detector batches (`detect_all`)."""
    samples = list(samples)
    images = [open_image(image) for _, image, _ in samples]
    rows = []
    for (filename, _, metadata), img, found in zip(samples, images, detect_all(detector, images)):
        kept = filter_detections(found, metadata["tag"], threshold, counting_threshold, max_objects)
        correct, reason = evaluate(img, metadata, kept, color_classifier)
        rows.append({
            "filename": str(filename),
            "tag": metadata["tag"],
            "prompt": metadata["prompt"],
            "correct": bool(correct),
            "reason": reason,
            "metadata": json.dumps(dict(metadata)),
            "details": json.dumps({label: [[float(v) for v in d.box[:4]] + [float(d.score)] for d in dets]
                                   for label, dets in kept.items()}),
        })
    return rows


def write_results(rows: Iterable[Mapping], path: str | Path) -> Path:
    """results.jsonl: one row per line (readable by GenEval's summary_scores.py)."""
    return atomic_write_bytes(Path(path), "".join(json.dumps(dict(r)) + "\n" for r in rows).encode("utf-8"))


def summarize(rows: Iterable[Mapping]) -> dict:
    """GenEval summary: per-task accuracy (tasks in first-seen order), overall = unweighted mean of the task
    accuracies (the published GenEval score), plus image accuracy, prompt accuracy (mean over prompts of the
    fraction of correct images), the share of prompts with any correct image, and one entry per prompt."""
    rows = list(rows)
    if not rows:
        raise InputError("no GenEval results to summarize", "score at least one image")
    by_tag: dict[str, list[bool]] = {}
    by_prompt: dict[str, dict] = {}
    for row in rows:
        ok = bool(row["correct"])
        by_tag.setdefault(row["tag"], []).append(ok)
        key = row["metadata"] if isinstance(row["metadata"], str) else json.dumps(row["metadata"])
        entry = by_prompt.setdefault(key, {"prompt": row["prompt"], "tag": row["tag"], "correct": 0, "total": 0})
        entry["correct"] += int(ok)
        entry["total"] += 1
    tasks = {tag: {"accuracy": sum(v) / len(v), "correct": sum(v), "total": len(v),
                   "prompts": sum(1 for e in by_prompt.values() if e["tag"] == tag)}
             for tag, v in by_tag.items()}
    per_prompt = [{**e, "accuracy": e["correct"] / e["total"]} for e in by_prompt.values()]
    return {
        "overall": float(np.mean([t["accuracy"] for t in tasks.values()])),
        "tasks": tasks,
        "image_accuracy": sum(bool(r["correct"]) for r in rows) / len(rows),
        "prompt_accuracy": float(np.mean([p["accuracy"] for p in per_prompt])),
        "prompts_any_correct": sum(p["correct"] > 0 for p in per_prompt) / len(per_prompt),
        "num_images": len(rows),
        "num_prompts": len(per_prompt),
        "per_prompt": per_prompt,
    }

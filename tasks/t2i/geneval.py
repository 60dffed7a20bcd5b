"""GenEval (Ghosh et al., 2023; github.com/djghosh13/geneval): prompts, the scoring rule and its backends.

Our own implementation of the benchmark's published protocol:

* prompts: GenEval's metadata format (one JSON object per line: `tag`, `include`, optional `exclude`, `prompt`) over
  the 80 COCO classes (GenEval's names: "tv remote", "computer mouse", "computer keyboard", ...) and six tasks;
  `generate_prompts` writes a fresh, deterministic set in that format, `load_prompts` reads the official file.
* scoring: detections above 0.3 confidence (0.9 for counting), at most 16 per class, no NMS; include clauses ANDed
  (at least `count` objects of the class, of the requested colour, in the requested relation to an earlier group);
  exclude clauses fail at `count` or more objects; overall = unweighted mean of the task accuracies.
* backends: detectors ("mask2former" = the official mmdet Mask2Former Swin-S, "torchvision-maskrcnn" = an installable
  stand-in with its own protocol name) and the CLIP ViT-L/14 zero-shot colour classifier.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from PIL import Image, ImageOps

from evalsuite import weights
from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.tasks.t2i.backends import ColorClassifier, Detection, Detector, register

# The 80 COCO classes in COCO order, spelled as GenEval's object_names.txt spells them (the index is the class id
# of mmdet's COCO detectors, which GenEval relies on).
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
COLORS: tuple[str, ...] = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
TAGS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# prompts per task in the official set (553 in all)
TAG_COUNTS: dict[str, int] = {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100,
                              "color_attr": 100}

THRESHOLD = 0.3
COUNTING_THRESHOLD = 0.9
MAX_OBJECTS = 16
POSITION_SHRINK = 0.1  # each axis of a centre offset shrinks by this fraction of the two boxes' summed size
GREY_BACKGROUND = (153, 153, 153)  # "#999": what the colour classifier sees around a masked object

_CLASS_SET = frozenset(COCO_CLASSES)
_COLOR_SET = frozenset(COLORS)

# ---------------------------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------------------------

_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                 10: "ten"}
# nouns that name a pair ("a pair of skis"); their plural is "pairs of ..."
_PAIR_NOUNS = frozenset({"skis", "scissors"})
_IRREGULAR_PLURALS = {
    "person": "people",
    "computer mouse": "computer mice",
    "knife": "knives",
    "sheep": "sheep",
    "broccoli": "broccoli",
}


def _article(phrase: str) -> str:
    return "an" if phrase[0].lower() in "aeiou" else "a"


def plural(name: str) -> str:
    """English plural of a GenEval class name ("dog" -> "dogs", "bus" -> "buses", "person" -> "people")."""
    if name in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[name]
    if name in _PAIR_NOUNS:
        return name
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and len(name) > 1 and name[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def noun_phrase(name: str, count: int = 1, color: str | None = None) -> str:
    """'a dog', 'an orange cup', 'three dogs', 'a pair of red skis', 'two pairs of scissors'."""
    adjective = f"{color} " if color else ""
    if name in _PAIR_NOUNS:
        if count == 1:
            return f"a pair of {adjective}{name}"
        return f"{_NUMBER_WORDS[count]} pairs of {adjective}{name}"
    if count == 1:
        words = f"{adjective}{name}"
        return f"{_article(words)} {words}"
    return f"{_NUMBER_WORDS[count]} {adjective}{plural(name)}"


def _single_object(name: str) -> dict:
    return {"tag": "single_object", "include": [{"class": name, "count": 1}],
            "prompt": f"a photo of {noun_phrase(name)}"}


def _two_object(rng: random.Random) -> dict:
    a, b = rng.sample(COCO_CLASSES, 2)
    return {"tag": "two_object", "include": [{"class": a, "count": 1}, {"class": b, "count": 1}],
            "prompt": f"a photo of {noun_phrase(a)} and {noun_phrase(b)}"}


def _counting(rng: random.Random) -> dict:
    name = rng.choice(COCO_CLASSES)
    n = rng.randint(2, 4)
    return {"tag": "counting", "include": [{"class": name, "count": n}],
            "exclude": [{"class": name, "count": n + 1}],
            "prompt": f"a photo of {noun_phrase(name, n)}"}


_COLORABLE = tuple(c for c in COCO_CLASSES if c != "person")  # no "a photo of a green person"


def _colors(rng: random.Random) -> dict:
    name = rng.choice(_COLORABLE)
    color = rng.choice(COLORS)
    return {"tag": "colors", "include": [{"class": name, "count": 1, "color": color}],
            "prompt": f"a photo of {noun_phrase(name, color=color)}"}


def _position(rng: random.Random) -> dict:
    a, b = rng.sample(COCO_CLASSES, 2)  # prompt: "a photo of <a> <relation> <b>"; b is group 0
    relation = rng.choice(RELATIONS)
    return {"tag": "position",
            "include": [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [relation, 0]}],
            "prompt": f"a photo of {noun_phrase(a)} {relation} {noun_phrase(b)}"}


def _color_attr(rng: random.Random) -> dict:
    a, b = rng.sample(_COLORABLE, 2)
    color_a, color_b = rng.sample(COLORS, 2)
    return {"tag": "color_attr",
            "include": [{"class": a, "count": 1, "color": color_a}, {"class": b, "count": 1, "color": color_b}],
            "prompt": f"a photo of {noun_phrase(a, color=color_a)} and {noun_phrase(b, color=color_b)}"}


_MAKERS = {"two_object": _two_object, "counting": _counting, "colors": _colors, "position": _position,
           "color_attr": _color_attr}


def generate_prompts(seed: int = 43) -> list[dict]:
    """A GenEval-format prompt set: 80 single_object (each class once), 99 two_object, 80 counting (2-4, exactly N
    through an exclude of N+1), 94 colors, 100 position, 100 color_attr; no duplicates; the same list for a seed.

    Our own generator: the official 553 prompts (prompts/evaluation_metadata.jsonl) are a different draw; load that
    file with `load_prompts` to compare with published numbers."""
    rng = random.Random(seed)
    classes = list(COCO_CLASSES)
    rng.shuffle(classes)
    prompts = [_single_object(name) for name in classes]
    for tag, maker in _MAKERS.items():
        seen: set[str] = set()
        while len(seen) < TAG_COUNTS[tag]:
            sample = maker(rng)
            key = json.dumps(sample["include"], sort_keys=True)
            if key not in seen:
                seen.add(key)
                prompts.append(sample)
    return prompts


def write_prompts(prompts: Iterable[Mapping], path: str | Path) -> Path:
    """Write metadata in GenEval's JSON-lines format (one object per line)."""
    return atomic_write_bytes(Path(path), "".join(json.dumps(dict(p)) + "\n" for p in prompts).encode("utf-8"))


def _bad(where: str, what: str) -> InputError:
    return InputError(f"{where}: {what}",
                      "each line must be a GenEval metadata object: {\"tag\", \"include\": [{\"class\", \"count\", "
                      "\"color\"?, \"position\"?: [relation, group index]}], \"exclude\"?, \"prompt\"} with the 80 "
                      "GenEval COCO class names and the 10 colours (evalsuite.tasks.t2i.geneval.COCO_CLASSES / COLORS)")


def _check_count(where: str, clause: Mapping) -> None:
    count = clause.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _bad(where, f"'count' must be a positive integer, got {count!r}")


def _check_class(where: str, clause: Any) -> None:
    if not isinstance(clause, Mapping):
        raise _bad(where, f"a clause must be an object, got {clause!r}")
    if "class" not in clause:
        raise _bad(where, "a clause has no 'class'")
    if clause["class"] not in _CLASS_SET:
        raise _bad(where, f"unknown class {clause['class']!r}")
    _check_count(where, clause)


def validate_metadata(meta: Any, where: str = "metadata") -> dict:
    """Check one metadata object (classes, colours, counts, relations, group indices); returns it as a dict."""
    if not isinstance(meta, Mapping):
        raise _bad(where, f"expected a JSON object, got {type(meta).__name__}")
    for key in ("tag", "include", "prompt"):
        if key not in meta:
            raise _bad(where, f"missing required field '{key}'")
    if not isinstance(meta["tag"], str) or not meta["tag"]:
        raise _bad(where, f"'tag' must be a non-empty string, got {meta['tag']!r}")
    if not isinstance(meta["prompt"], str) or not meta["prompt"].strip():
        raise _bad(where, f"'prompt' must be a non-empty string, got {meta['prompt']!r}")
    include = meta["include"]
    if not isinstance(include, list) or not include:
        raise _bad(where, "'include' must be a non-empty list of clauses")
    for i, clause in enumerate(include):
        _check_class(where, clause)
        if "color" in clause and clause["color"] not in _COLOR_SET:
            raise _bad(where, f"unknown colour {clause['color']!r}")
        if "position" in clause:
            pos = clause["position"]
            if not isinstance(pos, (list, tuple)) or len(pos) != 2:
                raise _bad(where, f"'position' must be [relation, group index], got {pos!r}")
            relation, target = pos
            if relation not in RELATIONS:
                raise _bad(where, f"unknown relation {relation!r} (use one of {', '.join(RELATIONS)})")
            if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < i:
                raise _bad(where, f"position target {target!r} must index an earlier include clause")
    exclude = meta.get("exclude", [])
    if not isinstance(exclude, list):
        raise _bad(where, "'exclude' must be a list of clauses")
    for clause in exclude:
        _check_class(where, clause)
    return dict(meta)


def load_prompts(path: str | Path) -> list[dict]:
    """Read GenEval metadata (JSON lines, e.g. the official prompts/evaluation_metadata.jsonl); blank lines are
    skipped; a bad line raises InputError naming the file, the line number and the offending value."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"GenEval metadata file {path} does not exist",
                         "pass the path of evaluation_metadata.jsonl (or one written by generate_prompts)")
    prompts = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            meta = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(where, f"not valid JSON ({exc.msg})") from None
        prompts.append(validate_metadata(meta, where))
    if not prompts:
        raise InputError(f"GenEval metadata file {path} has no prompts", "pass a non-empty JSON-lines file")
    return prompts


# ---------------------------------------------------------------------------------------------------------------
# Scoring rule (pure functions on detections)
# ---------------------------------------------------------------------------------------------------------------

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
                found = [color_classifier.classify(image, obj, name, list(COLORS)) for obj in objects]
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
    kept boxes as [x1, y1, x2, y2, score], most confident first)."""
    rows = []
    for filename, image, metadata in samples:
        img = open_image(image)
        kept = filter_detections(detector.detect(img), metadata["tag"], threshold, counting_threshold, max_objects)
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


# ---------------------------------------------------------------------------------------------------------------
# Colour classifier: CLIP ViT-L/14 zero-shot
# ---------------------------------------------------------------------------------------------------------------

COLOR_TEMPLATES: tuple[str, ...] = ("a photo of a {color} {object}", "a photo of a {color}-colored {object}",
                                    "a photo of a {color} object")


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def color_crop(image: Image.Image, detection: Detection) -> Image.Image:
    """What the colour classifier sees, as GenEval's `ImageCrops` (evaluate_images.py L94-106) makes it: where the
    detection has a mask, pixels outside it become grey #999 (`Image.composite`); then PIL crops the box (PIL rounds
    the coordinates and pads outside the image with black). A box that rounds to no pixel keeps one."""
    rgb = image.convert("RGB")
    if detection.mask is not None:
        mask = np.asarray(detection.mask, dtype=bool)
        if mask.shape != (rgb.height, rgb.width):
            raise InputError(f"detection mask has shape {mask.shape}, image is {rgb.height}x{rgb.width}",
                             "the detector must return full-image HxW masks")
        rgb = Image.composite(rgb, Image.new("RGB", rgb.size, GREY_BACKGROUND), Image.fromarray(mask))
    x1, y1, x2, y2 = (int(round(float(v))) for v in detection.box[:4])
    return rgb.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))


class CLIPColorClassifier:
    """GenEval's colour rule (evaluate_images.py L109-127): clip-benchmark 1.4.0's zero-shot classifier over the 10
    colours with GenEval's three templates, argmax of 100 x the cosine similarity of the (masked) crop.

    Precision as the official run: clip-benchmark's `zero_shot_classifier` and `run_classification` default to
    amp=True, i.e. `torch.cuda.amp.autocast` (float16) around the text and image towers and the logits; GenEval runs
    on CUDA only. So on a CUDA device we run the same operations under float16 autocast; on a CPU (where that
    autocast is a no-op) everything is float32. `precision` records which."""

    protocol = "geneval-clip-vit-l-14"

    def __init__(self, device: str | None = None, offline: bool | None = None, *, model: Any = None,
                 tokenizer: Any = None, preprocess: Any = None):
        path = weights.require("clip-vit-l-14-openai", offline=offline) if model is None else None
        import open_clip

        self.device = device or _default_device()
        if model is None:
            model = open_clip.load_openai_model(str(path), precision="fp32", device=self.device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer or open_clip.get_tokenizer("ViT-L-14")
        if preprocess is None:
            size = getattr(self.model.visual, "image_size", 224)
            preprocess = open_clip.image_transform(size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                                   std=open_clip.OPENAI_DATASET_STD)
        self.preprocess = preprocess
        self.amp = str(self.device).startswith("cuda")
        self.precision = "float16 autocast (clip-benchmark amp=True)" if self.amp else "float32"
        self._text: dict[tuple[str, tuple[str, ...]], Any] = {}

    def _autocast(self) -> Any:
        import contextlib

        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def _class_weights(self, classname: str, colors: tuple[str, ...]):
        """(dim, colours) text weights, the operations of clip-benchmark's `zero_shot_classifier`."""
        import torch
        import torch.nn.functional as F

        key = (classname, colors)
        if key not in self._text:
            columns = []
            with torch.no_grad(), self._autocast():
                for color in colors:
                    texts = self.tokenizer([t.format(color=color, object=classname) for t in COLOR_TEMPLATES])
                    mean = F.normalize(self.model.encode_text(texts.to(self.device)), dim=-1).mean(dim=0)
                    columns.append(mean / mean.norm())
                self._text[key] = torch.stack(columns, dim=1)
        return self._text[key]

    def logits(self, image: Image.Image, detection: Detection, classname: str, colors: list[str]):
        """(1, colours) logits of one crop, the operations of clip-benchmark's `run_classification`."""
        import torch
        import torch.nn.functional as F

        text = self._class_weights(classname, tuple(colors))
        pixels = self.preprocess(color_crop(image, detection)).unsqueeze(0).to(self.device)
        with torch.no_grad(), self._autocast():
            logits = 100.0 * F.normalize(self.model.encode_image(pixels), dim=-1) @ text
        return logits.float().cpu()

    def classify(self, image: Image.Image, detection: Detection, classname: str, colors: list[str]) -> str:
        """The colour with the largest logit (the first on a tie, as `argmax`)."""
        return colors[int(self.logits(image, detection, classname, colors).argmax(dim=1)[0])]


def _clip_color_factory(arg: str = "", device: str | None = None, offline: bool | None = None,
                        **_ignored: Any) -> CLIPColorClassifier:
    if arg:
        raise InputError(f"colour backend 'clip-vit-l-14' takes no argument, got 'clip-vit-l-14:{arg}'",
                         "use --color clip-vit-l-14")
    return CLIPColorClassifier(device=device, offline=offline)


register("color", "clip-vit-l-14", _clip_color_factory)


# ---------------------------------------------------------------------------------------------------------------
# Detectors
# ---------------------------------------------------------------------------------------------------------------

# torchvision's COCO category names -> GenEval's where they differ
_TORCHVISION_TO_GENEVAL = {"mouse": "computer mouse", "remote": "tv remote", "keyboard": "computer keyboard"}


def torchvision_label_map() -> dict[int, str]:
    """torchvision's Mask R-CNN label index (91 slots with N/A gaps) -> GenEval class name (80 of them)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    mapping = {}
    for index, name in enumerate(MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"]):
        name = _TORCHVISION_TO_GENEVAL.get(name, name)
        if name in _CLASS_SET:
            mapping[index] = name
    if len(mapping) != len(COCO_CLASSES):
        raise RuntimeError(f"torchvision's COCO categories map to {len(mapping)} GenEval classes, expected 80")
    return mapping


class TorchvisionMaskRCNNDetector:
    """torchvision Mask R-CNN ResNet-50 FPN v2 (COCO) with every detection kept (box_score_thresh=0; GenEval's
    thresholds apply later); masks thresholded at 0.5. Its own protocol: scores are not comparable with the
    official Mask2Former ones."""

    protocol = "torchvision-maskrcnn-v2-coco"

    def __init__(self, device: str | None = None, offline: bool | None = None):
        path = weights.require("maskrcnn-v2-coco", offline=offline)
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

        self.device = device or _default_device()
        model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, box_score_thresh=0.0)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model = model.to(self.device).eval()
        self.labels = torchvision_label_map()

    def detect(self, image: Image.Image) -> list[Detection]:
        import torch
        from torchvision.transforms.functional import pil_to_tensor

        x = pil_to_tensor(image.convert("RGB")).float().div(255.0).to(self.device)
        with torch.no_grad():
            out = self.model([x])[0]
        boxes = out["boxes"].cpu().numpy()
        scores = out["scores"].cpu().numpy()
        labels = out["labels"].cpu().numpy()
        masks = (out["masks"][:, 0] > 0.5).cpu().numpy() if "masks" in out else None
        detections = []
        for i in range(len(scores)):
            name = self.labels.get(int(labels[i]))
            if name is None:
                continue
            detections.append(Detection(name, float(scores[i]), tuple(float(v) for v in boxes[i]),
                                        None if masks is None else masks[i]))
        return detections


def _torchvision_factory(arg: str = "", device: str | None = None, offline: bool | None = None,
                         **_ignored: Any) -> TorchvisionMaskRCNNDetector:
    if arg:
        raise InputError(f"detector 'torchvision-maskrcnn' takes no argument, got 'torchvision-maskrcnn:{arg}'",
                         "its weights come from the store: `evalsuite weights fetch maskrcnn-v2-coco`")
    return TorchvisionMaskRCNNDetector(device=device, offline=offline)


_MMDET_FIX = ("run the official detector in its own environment with mmdet 2.x (GenEval pins torch 1.x, mmcv-full "
              "1.7, mmdet 2.27), then use --detector mask2former:/path/to/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco"
              ".py,/path/to/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.pth (config, checkpoint); otherwise use "
              "--detector torchvision-maskrcnn (protocol torchvision-maskrcnn-v2-coco, not comparable with published "
              "GenEval numbers)")


class MMDetMask2FormerDetector:
    """The official GenEval detector: Mask2Former Swin-S (COCO) through mmdet; its 80 classes in COCO order map
    one-to-one onto COCO_CLASSES."""

    protocol = "geneval-mask2former-mmdet"

    def __init__(self, config: str, checkpoint: str, device: str | None = None):
        from mmdet.apis import inference_detector, init_detector

        for what, p in (("config", config), ("checkpoint", checkpoint)):
            if not Path(p).is_file():
                raise InputError(f"mask2former {what} {p} does not exist", _MMDET_FIX)
        self._infer = inference_detector
        self.model = init_detector(config, checkpoint, device=device or _default_device())
        classes = getattr(self.model, "CLASSES", None) or getattr(self.model, "dataset_meta", {}).get("classes")
        if classes is not None and len(classes) != len(COCO_CLASSES):
            raise InputError(f"mask2former checkpoint has {len(classes)} classes, GenEval needs the 80 COCO ones",
                             _MMDET_FIX)

    def detect(self, image: Image.Image) -> list[Detection]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
        result = self._infer(self.model, bgr)
        detections = []
        if hasattr(result, "pred_instances"):  # mmdet 3.x: a DetDataSample
            inst = result.pred_instances
            boxes, scores, labels = (t.cpu().numpy() for t in (inst.bboxes, inst.scores, inst.labels))
            masks = inst.masks.cpu().numpy().astype(bool) if hasattr(inst, "masks") else None
            for i in range(len(scores)):
                detections.append(Detection(COCO_CLASSES[int(labels[i])], float(scores[i]),
                                            tuple(float(v) for v in boxes[i][:4]),
                                            None if masks is None else masks[i]))
            return detections
        if isinstance(result, dict):  # mmdet 2.x panoptic-capable heads: {'ins_results': (bbox, segm), ...}
            result = result["ins_results"]
        bbox = result[0] if isinstance(result, tuple) else result  # mmdet 2.x: per-class arrays
        segm = result[1] if isinstance(result, tuple) and len(result) > 1 else None
        for index, name in enumerate(COCO_CLASSES):
            for j, row in enumerate(np.asarray(bbox[index]).reshape(-1, 5)):
                mask = None if segm is None else np.asarray(segm[index][j], dtype=bool)
                detections.append(Detection(name, float(row[4]), tuple(float(v) for v in row[:4]), mask))
        return detections


def _mask2former_factory(arg: str = "", device: str | None = None, **_ignored: Any) -> MMDetMask2FormerDetector:
    try:
        import mmdet  # noqa: F401
    except ImportError:
        raise InputError("detector 'mask2former' (the official GenEval protocol) needs mmdet, which is not "
                         "installed here (mmdet 2.x needs an old torch, so it lives in its own environment)",
                         _MMDET_FIX) from None
    parts = [p.strip() for p in arg.split(",")] if arg else []
    if len(parts) != 2 or not all(parts):
        raise InputError(f"detector spec 'mask2former:{arg}' must name a config and a checkpoint", _MMDET_FIX)
    return MMDetMask2FormerDetector(parts[0], parts[1], device=device)


register("detector", "mask2former", _mask2former_factory)
register("detector", "torchvision-maskrcnn", _torchvision_factory)

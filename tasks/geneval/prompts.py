"""GenEval's prompts (Ghosh et al., 2023; github.com/djghosh13/geneval): the vocabulary (the 80 COCO classes as
GenEval spells them, the 10 colours, the 4 relations, the 6 tasks), English noun phrases, our own generator of a
prompt set in GenEval's metadata format, and reading / checking / writing that format.

The metadata format: one JSON object per line: `tag`, `include`, optional `exclude`, `prompt`; `generate_prompts`
writes a fresh, deterministic set in it, `load_prompts` reads the official file (prompts/evaluation_metadata.jsonl).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable, Mapping

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes

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

_CLASS_SET = frozenset(COCO_CLASSES)
_COLOR_SET = frozenset(COLORS)

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
                      "GenEval COCO class names and the 10 colours "
                      "(evalsuite.tasks.geneval.prompts.COCO_CLASSES / COLORS)")


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

"""VBench's constants (its `scripts/constant.py`: the 16 dimensions, the normalisation bounds, the weights), its
normalisation and Quality/Semantic/Total aggregation (`scripts/cal_final_score.py`), and the reading of the
`<name>_eval_results.json` files VBench writes. See the package docstring (`evalsuite.tasks.vbench`) for the rules.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from evalsuite.errors import InputError

# --------------------------------------------------------------------------- VBench's constants (scripts/constant.py)
DIMENSIONS = (
    "subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness", "dynamic_degree",
    "aesthetic_quality", "imaging_quality", "object_class", "multiple_objects", "human_action", "color",
    "spatial_relationship", "scene", "appearance_style", "temporal_style", "overall_consistency",
)
DIM_WEIGHT = {d: (0.5 if d == "dynamic_degree" else 1.0) for d in DIMENSIONS}
NORMALIZE: dict[str, tuple[float, float]] = {  # (Min, Max)
    "subject_consistency": (0.1462, 1.0),
    "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0),
    "motion_smoothness": (0.706, 0.9975),
    "dynamic_degree": (0.0, 1.0),
    "aesthetic_quality": (0.0, 1.0),
    "imaging_quality": (0.0, 1.0),
    "object_class": (0.0, 1.0),
    "multiple_objects": (0.0, 1.0),
    "human_action": (0.0, 1.0),
    "color": (0.0, 1.0),
    "spatial_relationship": (0.0, 1.0),
    "scene": (0.0, 0.8222),
    "appearance_style": (0.0009, 0.2855),
    "temporal_style": (0.0, 0.364),
    "overall_consistency": (0.0, 0.364),
}
QUALITY_LIST = ("subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
                "aesthetic_quality", "imaging_quality", "dynamic_degree")
SEMANTIC_LIST = ("object_class", "multiple_objects", "human_action", "color", "spatial_relationship", "scene",
                 "appearance_style", "temporal_style", "overall_consistency")
QUALITY_WEIGHT = 4.0
SEMANTIC_WEIGHT = 1.0

MODES = ("vbench_standard", "custom_input")
# vbench/__init__.py (check_dimension_requires_extra_info): refused in custom_input mode
CUSTOM_UNSUPPORTED = frozenset({"object_class", "multiple_objects", "scene", "appearance_style", "color",
                                "spatial_relationship"})
# what evalsuite runs in custom_input mode: the prompt-independent Quality dimensions
CUSTOM_DIMENSIONS = QUALITY_LIST
DETECTRON2_DIMENSIONS = frozenset({"object_class", "multiple_objects", "color", "spatial_relationship"})  # GRiT


def _canonical(dim: str) -> str:
    """VBench's result keys use underscores; cal_final_score's use spaces: accept both."""
    return str(dim).strip().replace(" ", "_")


# --------------------------------------------------------------------------- scoring
def normalize(scores: dict[str, float]) -> dict[str, float]:
    """(x − Min) / (Max − Min) per known dimension (unweighted, not clipped); unknown dimensions are left out."""
    out = {}
    for dim, value in scores.items():
        key = _canonical(dim)
        if key in NORMALIZE:
            lo, hi = NORMALIZE[key]
            out[key] = (float(value) - lo) / (hi - lo)
    return out


def _group(normalized: dict[str, float], dims: Sequence[str]) -> float:
    return sum(DIM_WEIGHT[d] * normalized[d] for d in dims) / sum(DIM_WEIGHT[d] for d in dims)


def aggregate(scores: dict[str, float]) -> dict[str, Any]:
    """VBench's Quality, Semantic and Total scores (cal_final_score.py), each only when its dimensions are all
    present: {"quality", "semantic", "total" (float or None), "normalized": {dim: value}, "missing": {"quality":
    [...], "semantic": [...]}}."""
    normalized = normalize(scores)
    missing = {"quality": [d for d in QUALITY_LIST if d not in normalized],
               "semantic": [d for d in SEMANTIC_LIST if d not in normalized]}
    quality = None if missing["quality"] else _group(normalized, QUALITY_LIST)
    semantic = None if missing["semantic"] else _group(normalized, SEMANTIC_LIST)
    total = None
    if quality is not None and semantic is not None:
        total = (QUALITY_WEIGHT * quality + SEMANTIC_WEIGHT * semantic) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT)
    return {"quality": quality, "semantic": semantic, "total": total, "normalized": normalized, "missing": missing}


# --------------------------------------------------------------------------- results files
class VBenchResults(NamedTuple):
    """`scores`: {dimension: VBench's score}; `videos`: {dimension: [{"video_path", "value"}, ...]} where value is
    the per-video result as a float (bools as 0/1), or None when it is not a number; `raw`: the merged JSON."""

    scores: dict[str, float]
    videos: dict[str, list[dict]]
    raw: dict[str, Any]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def _parse_one(path: Path) -> dict[str, tuple[float, list[dict], Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"VBench results {path} cannot be read as JSON: {exc}",
                         "pass the <name>_eval_results.json files VBench wrote") from exc
    fmt = 'VBench writes {"dimension": [score, [{"video_path": ..., "video_results": ...}, ...]], ...}'
    if not isinstance(doc, dict) or not doc:
        raise InputError(f"VBench results {path} are not a non-empty JSON object", fmt)
    out = {}
    for key, entry in doc.items():
        dim = _canonical(key)
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise InputError(f"VBench results {path}: '{key}' is not a [score, [per-video results]] pair", fmt)
        score = _number(entry[0])
        if score is None or isinstance(entry[0], bool):
            raise InputError(f"VBench results {path}: the score of '{key}' is {entry[0]!r}, not a finite number", fmt)
        videos = []
        for i, item in enumerate(entry[1]):
            if not isinstance(item, dict) or not isinstance(item.get("video_path"), str) or "video_results" not in item:
                raise InputError(f"VBench results {path}: per-video entry {i} of '{key}' lacks video_path or "
                                 "video_results", fmt)
            videos.append({"video_path": item["video_path"], "value": _number(item["video_results"])})
        out[dim] = (score, videos, entry)
    return out


def parse_results(path_or_dir: str | Path | Sequence[str | Path]) -> VBenchResults:
    """Read one `*_eval_results.json`, every such file in a folder, or a list of files, and merge them. A dimension
    found twice with different scores is an error (the files come from different runs)."""
    if isinstance(path_or_dir, (str, Path)):
        target = Path(path_or_dir)
        if target.is_dir():
            files = sorted(target.glob("*_eval_results.json"))
            if not files:
                raise InputError(f"no *_eval_results.json in {target}",
                                 "point at the output folder of a VBench run (its --output_path)")
        elif target.is_file():
            files = [target]
        else:
            raise InputError(f"VBench results {target} do not exist", "pass a *_eval_results.json file or its folder")
    else:
        files = [Path(p) for p in path_or_dir]
    scores: dict[str, float] = {}
    videos: dict[str, list[dict]] = {}
    raw: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for path in files:
        for dim, (score, per_video, entry) in _parse_one(path).items():
            if dim in scores:
                if scores[dim] != score:
                    raise InputError(f"dimension {dim} is in both {origin[dim]} ({scores[dim]}) and {path} ({score})",
                                     "merge results of one VBench run only")
                continue
            scores[dim], videos[dim], raw[dim], origin[dim] = score, per_video, entry, path
    return VBenchResults(scores, videos, raw)

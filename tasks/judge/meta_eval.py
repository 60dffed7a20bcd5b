"""Judge meta-evaluation (`evalsuite judge-eval --labels FILE.csv --judge SPEC`): how well a judge's scores follow
the human labels a lab has, per aspect, so the lab can choose and pin a judge.

The labels CSV has one row per rated (media, aspect): `file` (an image or video; relative paths are relative to the
CSV's folder), `prompt`, `aspect` (one of the judge's aspects, or `overall`) and `label` (a number: 0/1, a Likert
score, ...); an optional `question` column asks that exact question instead of the prompt's automatic questions of
the aspect. The judge's score of a row is the mean P(yes) over the aspect's questions (all questions for
`overall`), exactly as the `vlm-judge` task computes it (same questions, same cache). Per aspect: Spearman's ρ and
Kendall's τ-b between scores and labels, each with a 95% percentile bootstrap CI over rows (seeded).

>>> r = correlations(np.array([0.1, 0.4, 0.35, 0.8, 0.9]), np.array([1, 2, 3, 4, 5]), n_boot=200, seed=0)
>>> round(r["spearman"], 3), round(r["kendall"], 3), r["n"]
(0.9, 0.8, 5)
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.errors import InputError
from evalsuite.tasks.judge import questions as qs
from evalsuite.tasks.judge.backends import resolve
from evalsuite.tasks.judge.scoring import answer_cache, aspect_means
from evalsuite.tasks.judge.task import ask, open_media

REQUIRED = ("file", "prompt", "aspect", "label")
_FIX = ("write a CSV with columns file,prompt,aspect,label (and optionally question); aspect one of "
        + ", ".join((*qs.ASPECTS, "overall")) + "; label a number")


@dataclass
class LabelRow:
    file: Path
    prompt: str
    aspect: str
    label: float
    question: str | None = None


@dataclass
class JudgeEvalReport:
    """Correlations per aspect (and "all": every row pooled), the judge, and each row's score."""

    judge: str
    fingerprint: str
    aspects: dict[str, dict[str, Any]]
    scores: list[float] = field(default_factory=list)
    rows: list[LabelRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"judge": self.judge, "judge_fingerprint": self.fingerprint, "aspects": self.aspects,
                "rows": [{"file": str(r.file), "prompt": r.prompt, "aspect": r.aspect, "label": r.label,
                          "question": r.question, "judge_score": s} for r, s in zip(self.rows, self.scores)]}


def read_labels(path: str | Path) -> list[LabelRow]:
    """The labels CSV, checked row by row (a bad row is an InputError naming the file and line)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"labels file {path} does not exist", _FIX)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"labels file {path} lacks the column(s) {', '.join(missing)}", _FIX)
        rows = []
        for line, record in enumerate(reader, start=2):
            where = f"labels file {path}, line {line}"
            aspect = (record["aspect"] or "").strip()
            if aspect not in (*qs.ASPECTS, "overall"):
                raise InputError(f"{where}: aspect {aspect!r} is not a judge aspect", _FIX)
            try:
                label = float(record["label"])
            except (TypeError, ValueError):
                raise InputError(f"{where}: label {record['label']!r} is not a number", _FIX) from None
            if not math.isfinite(label):
                raise InputError(f"{where}: label {record['label']!r} is not finite", _FIX)
            file = Path(record["file"] or "").expanduser()
            file = file if file.is_absolute() else path.parent / file
            if not file.is_file():
                raise InputError(f"{where}: {file} does not exist", "fix the file column (relative paths are "
                                                                    "relative to the CSV's folder)")
            question = (record.get("question") or "").strip() or None
            rows.append(LabelRow(file, (record["prompt"] or "").strip(), aspect, label, question))
    if len(rows) < 3:
        raise InputError(f"labels file {path} has {len(rows)} row(s); a correlation needs at least 3", _FIX)
    return rows


def correlations(scores: np.ndarray, labels: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Spearman's ρ and Kendall's τ-b with 95% percentile bootstrap CIs over rows (None where undefined: constant
    scores or labels)."""
    from scipy.stats import kendalltau, spearmanr

    x, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)

    def both(idx: np.ndarray) -> tuple[float, float]:
        a, b = x[idx], y[idx]
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            return math.nan, math.nan
        return float(spearmanr(a, b).statistic), float(kendalltau(a, b).statistic)

    rho, tau = both(np.arange(len(x)))
    rng = np.random.default_rng(seed)
    boots = np.array([both(rng.integers(0, len(x), len(x))) for _ in range(n_boot)])

    def interval(column: np.ndarray) -> list[float] | None:
        finite = column[np.isfinite(column)]
        return None if len(finite) < n_boot // 2 else [float(v) for v in np.percentile(finite, [2.5, 97.5])]

    return {"n": int(len(x)), "spearman": None if math.isnan(rho) else rho, "spearman_ci": interval(boots[:, 0]),
            "kendall": None if math.isnan(tau) else tau, "kendall_ci": interval(boots[:, 1]), "n_boot": n_boot,
            "seed": seed}


def judge_eval(labels: str | Path, judge_spec: str, *, device: str | None = None, video_frames: int = 8,
               batch_size: int = 8, n_boot: int = 2000, seed: int = 0, progress: bool = True) -> JudgeEvalReport:
    """Score every labelled row with the judge and correlate the scores with the labels, per aspect."""
    from tqdm.auto import tqdm

    from evalsuite.videoio import VIDEO_EXTENSIONS

    rows = read_labels(labels)
    judge = resolve(judge_spec, device=device)
    cache = answer_cache(judge)
    scores = []
    for row in tqdm(rows, desc="judge-eval", unit="row", disable=not progress):
        medium = "video" if row.file.suffix.lower() in VIDEO_EXTENSIONS else "image"
        if row.question:
            asked = [qs.Question(row.aspect if row.aspect != "overall" else "other", row.question)]
        else:
            asked = qs.prompt_questions(row.prompt, medium) + qs.quality_questions(medium)
            if row.aspect != "overall":
                asked = [q for q in asked if q.aspect == row.aspect]
            if not asked:
                raise InputError(f"prompt {row.prompt!r} gives no {row.aspect} question for {row.file}",
                                 "add a question column for this row, or rate an aspect the prompt has")
        media, key, _ = open_media(row.file, medium, video_frames)
        p = ask(media, key, [f"{q.text} {qs.ANSWER_INSTRUCTION}" for q in asked], judge, cache, batch_size)
        scores.append(aspect_means([q.aspect for q in asked], p)["overall"])
    by_aspect: dict[str, dict[str, Any]] = {}
    for aspect in dict.fromkeys(r.aspect for r in rows):
        chosen = [i for i, r in enumerate(rows) if r.aspect == aspect]
        if len(chosen) >= 3:
            by_aspect[aspect] = correlations(np.array([scores[i] for i in chosen]),
                                             np.array([rows[i].label for i in chosen]), n_boot, seed)
    by_aspect["all"] = correlations(np.array(scores), np.array([r.label for r in rows]), n_boot, seed)
    return JudgeEvalReport(judge.protocol, judge.fingerprint, by_aspect, scores, rows)

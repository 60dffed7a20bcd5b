"""From a judge's yes/no logits to scores: P(yes) normalised over the two answers, the cache of answers per (media,
question, judge) (the shared `evalsuite.score_cache`), and the per-aspect aggregation.

P(yes) = exp(y) / (exp(y) + exp(n)) = sigmoid(y − n), where y and n are the log-sum-exp of the next-token logits over
every token that spells "yes" / "no" (the backend's job): a judge that puts all its mass on other tokens still gets
a defined score, and no answer text is ever parsed.

>>> p_yes(np.array([[2.0, 2.0], [0.0, -50.0], [-3.0, 1.0]])).round(4).tolist()
[0.5, 1.0, 0.018]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evalsuite.score_cache import ScoreCache


def p_yes(logits: np.ndarray) -> np.ndarray:
    """P(yes) from (n, 2) [yes, no] log-scores, normalised over the two; NaN or ±inf logits are refused."""
    arr = np.asarray(logits, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"a judge must return (n, 2) [yes, no] logits, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("a judge returned non-finite yes/no logits")
    from scipy.special import expit

    return np.asarray(expit(arr[:, 0] - arr[:, 1]), dtype=np.float64)


def answer_cache(judge: Any) -> ScoreCache:
    """The judge's answers (P(yes) per media key and question text) in the shared per-sample score cache, keyed by
    the judge's protocol, fingerprint and what ran (`details`): $EVALSUITE_HOME/scores/<key>/."""
    return ScoreCache({"kind": "vlm-judge answers", "protocol": judge.protocol, "fingerprint": judge.fingerprint,
                       "details": getattr(judge, "details", None)})


def aspect_means(aspects: Sequence[str], scores: Sequence[float]) -> dict[str, float]:
    """One sample's mean P(yes) per aspect, and "overall": the mean over all its questions.

    >>> aspect_means(["entity", "entity", "count"], [1.0, 0.5, 0.0])
    {'entity': 0.75, 'count': 0.0, 'overall': 0.5}
    """
    out: dict[str, list[float]] = {}
    for aspect, score in zip(aspects, scores):
        out.setdefault(aspect, []).append(float(score))
    means = {aspect: float(np.mean(values)) for aspect, values in out.items()}
    means["overall"] = float(np.mean(scores))
    return means


def aggregate(per_sample: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each aspect's mean over the samples that have it (overall: over every sample).

    >>> aggregate([{"entity": 1.0, "overall": 1.0}, {"entity": 0.0, "count": 0.5, "overall": 0.25}])
    {'entity': 0.5, 'overall': 0.625, 'count': 0.5}
    """
    keys = list(dict.fromkeys(k for sample in per_sample for k in sample))
    return {k: float(np.mean([s[k] for s in per_sample if k in s])) for k in keys}

"""Sample-size honesty for the distribution metrics (FID, KID, CLIP-FID, CMMD, FD-DINOv2).

These numbers depend on how many samples they were computed from (FID is biased upwards at small N, Chong & Forsyth
2020), so a published "FID-50K" can only be compared with a result from 50,000 samples. Each of these tasks has the
option `protocol_samples` (its protocol's count: 50,000 for FID/KID/CLIP-FID/FD-DINOv2, 30,000, COCO-30K, for
CMMD); every result records `sample_count = {"protocol": P, "used": N, "comparable": N >= P}`, and a result from
fewer samples is marked "not comparable" by `runs`, `score`, `compare` and the leaderboard (and never ranked best
there). Another count is another protocol: `-o fid.protocol_samples=30000` puts the result in its own column
(`fid [fid-30k]`), never beside FID-50K numbers.

>>> record(5000, 50000)
{'protocol': 50000, 'used': 5000, 'comparable': False}
>>> note({"sample_count": record(5000, 50000)})
'not comparable: 5000 samples, the protocol needs 50000'
>>> count_name(30000), count_name(1234)
('30k', '1234')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalsuite.errors import InputError

FID_PROTOCOL_SAMPLES = 50_000  # FID-50K: clean-fid's and StyleGAN's default num_gen, Stein et al.'s FD-DINOv2 count
CMMD_PROTOCOL_SAMPLES = 30_000  # Jayasumana et al. 2024 report CMMD on COCO-30K

HELP = ("the sample count of the protocol the number is published under (FID-50K); a result from fewer samples is "
        "marked 'not comparable'; another count names its own protocol and leaderboard column")


@dataclass(frozen=True)
class SampleCountOptions:
    """The `protocol_samples` option every distribution task has (a task's Options subclass this)."""

    protocol_samples: int = field(default=FID_PROTOCOL_SAMPLES, metadata={"help": HELP})

    def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
        if self.protocol_samples < 2:
            raise InputError(f"protocol_samples is {self.protocol_samples}",
                             f"pass -o protocol_samples=N with N of at least 2 (e.g. {FID_PROTOCOL_SAMPLES})")


def record(used: int, protocol: int) -> dict[str, Any]:
    """What a result stores as `sample_count`: the protocol's count, the count used, and whether they compare."""
    return {"protocol": int(protocol), "used": int(used), "comparable": int(used) >= int(protocol)}


def count_name(n: int) -> str:
    """A sample count as protocols name it: 50000 -> '50k', 1234 -> '1234'."""
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def protocol_name(base: str | None, task: str, protocol_samples: int, default: int) -> str | None:
    """The result's protocol: `base` unchanged at the default count, else `base` (or the task's name) plus the count,
    so results of different sample protocols never share a leaderboard column."""
    if protocol_samples == default:
        return base
    return f"{base or task}-{count_name(protocol_samples)}"


def note(doc: dict) -> str:
    """'not comparable: ...' for a result computed from fewer samples than its protocol's count, else ''."""
    count = doc.get("sample_count")
    if not isinstance(count, dict) or count.get("comparable") is not False:
        return ""
    return f"not comparable: {count.get('used')} samples, the protocol needs {count.get('protocol')}"


def comparable(doc: dict) -> bool:
    """False only for a result that records fewer samples than its protocol's count."""
    return not note(doc)

"""What a task declares and returns. A task reads inputs only through the run context (samples, features,
reference statistics), so every task shares one sample store, one feature engine and one results store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from evalsuite.context import RunContext
    from evalsuite.options import ScoreOptions


@dataclass(frozen=True)
class MetricInfo:
    """A reported number: which way is better, and what it means."""

    direction: str  # "lower" or "higher"
    description: str
    primary: bool = False
    allow_inf: bool = False  # +inf is a meaningful value (e.g. PSNR of identical images)
    unit: str = ""
    # how reports bootstrap it: the per-sample list it is computed from, and the statistic over that list
    per_sample: str | None = None
    aggregate: str = "mean"  # "mean" or "psnr_of_mean" (see evalsuite.bootstrap.STATISTICS)
    data_range: float = 1.0


@dataclass
class TaskOutput:
    """A task's result: headline metrics, optional per-sample values (for bootstrap CIs) and details."""

    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    per_sample: dict[str, list] | None = None
    skipped_samples: list[dict] = field(default_factory=list)
    num_samples: int | None = None
    reference: dict | None = None
    extractor: dict | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes, stored beside the result
    protocol: str | None = None  # the scoring backend(s); results of different protocols never share a column


@dataclass(frozen=True)
class Requirements:
    """What a task needs before it can run: weights names, reference statistics, the kind of samples."""

    weights: tuple[str, ...] = ()
    reference: bool = False
    optional_weights: tuple[str, ...] = ()  # parts of the task (e.g. LPIPS) that are skipped without them
    needs: str = ""  # anything else, in words (a data path, a separate environment)


class Task:
    """Subclass, fill the class variables, implement `run`; register with `@evalsuite.tasks.register`."""

    name: ClassVar[str]
    version: ClassVar[str]
    family: ClassVar[str]  # leaderboard table: image-quality, text-image, video, autoencoder, on-device
    sample_kind: ClassVar[str]  # "image", "video", "autoencoder"
    description: ClassVar[str]
    metrics: ClassVar[dict[str, MetricInfo]]
    needs_all_features: ClassVar[bool] = False  # keeps every feature vector (KID); FID alone streams statistics

    def requirements(self, options: "ScoreOptions") -> Requirements:
        return Requirements()

    def run(self, ctx: "RunContext") -> TaskOutput:
        raise NotImplementedError

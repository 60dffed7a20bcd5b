"""The task contract, owned by the core: what a task declares (`Task`: name, version, family, sample kind, metrics
with their direction, its typed `Options`, what it needs) and returns (`TaskOutput`), and the one registry of
tasks and suites. A task reads its inputs only through the run context (samples, features, reference statistics),
so every task shares one sample store, one feature engine and one results store.

Adding a task is one file:

>>> from dataclasses import dataclass
>>> from evalsuite.task import MetricInfo, Task, TaskOutput
>>> class MeanBrightness(Task):
...     name, version, family, sample_kind = "mean-brightness", "1", "image-quality", "image"
...     description = "Mean pixel value of the samples"
...     metrics = {"brightness": MetricInfo("higher", "mean of all pixels, in [0, 1]", primary=True)}
...
...     @dataclass
...     class Options:
...         channel: int | None = None  # `-o mean-brightness.channel=0`: one channel only
...
...     def run(self, ctx) -> TaskOutput:
...         ...
>>> MeanBrightness(MeanBrightness.Options(channel=1)).options.channel
1

Register it with `@evalsuite.task.register` (or `evalsuite.tasks.register`) in a module listed in
`BUILTIN_TASK_MODULES`, or in a plugin package's module named by an `evalsuite.tasks` entry point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from evalsuite.registry import Registry

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
    """A task's result: headline metrics, optional per-sample values (for bootstrap CIs) and details.

    `skipped_samples` lists every input the task could not use (`{"file": ..., "reason": ...}`): the runner
    records them with the result and, under `--strict`, refuses the result instead (one rule for every task)."""

    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    per_sample: dict[str, list] | None = None
    skipped_samples: list[dict] = field(default_factory=list)
    num_samples: int | None = None
    reference: dict | None = None
    extractor: dict | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes, stored beside the result
    protocol: str | None = None  # the scoring backend(s); results of different protocols never share a column
    protocol_samples: int | None = None  # the protocol's sample count (FID-50K): fewer is "not comparable"


@dataclass(frozen=True)
class Requirements:
    """What a task needs before it can run: weights names, reference statistics, the kind of samples."""

    weights: tuple[str, ...] = ()
    reference: bool = False
    optional_weights: tuple[str, ...] = ()  # parts of the task (e.g. LPIPS) that are skipped without them
    needs: str = ""  # anything else, in words (a data path, a separate environment)


@dataclass(frozen=True)
class NoOptions:
    """The options of a task that has none."""


class Task:
    """Subclass, fill the class variables, implement `run`; register with `@evalsuite.task.register`.

    `Options`: a dataclass of the task's own options with their defaults (typed fields; a comment or
    `field(metadata={"help": ...})` says what each does). The runner builds it from the run's `-o TASK.NAME=VALUE`
    / `-o NAME=VALUE` settings and passes it in; the task reads `self.options`. Run-wide settings (model, seed,
    number of samples, device, reference, extractor) are `ctx.options`."""

    name: ClassVar[str]
    version: ClassVar[str]
    family: ClassVar[str]  # leaderboard table: image-quality, text-image, video, autoencoder, on-device
    sample_kind: ClassVar[str]  # "image", "video", "autoencoder"
    description: ClassVar[str]
    metrics: ClassVar[dict[str, MetricInfo]]
    needs_all_features: ClassVar[bool] = False  # keeps every feature vector (KID); FID alone streams statistics
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None):
        self.options = self.Options() if options is None else options

    def requirements(self, options: "ScoreOptions") -> Requirements:
        """What the task needs with the run-wide `options` and its own `self.options`."""
        return Requirements()

    def run(self, ctx: "RunContext") -> TaskOutput:
        raise NotImplementedError


BUILTIN_TASK_MODULES = ("evalsuite.tasks.image_quality", "evalsuite.tasks.autoencoder",
                        "evalsuite.tasks.text_image", "evalsuite.tasks.geneval.task",
                        "evalsuite.tasks.geneval.counting_task", "evalsuite.tasks.dpg.task",
                        "evalsuite.tasks.video_native", "evalsuite.tasks.video_fvd", "evalsuite.tasks.vbench.task",
                        "evalsuite.tasks.variant_fidelity", "evalsuite.tasks.preference.clip_tasks",
                        "evalsuite.tasks.vqascore.task",
                        "evalsuite.tasks.compbench.task",
                        "evalsuite.tasks.preference.imagereward_task", "evalsuite.tasks.judge.task",
                        "evalsuite.tasks.adm")

TASKS: Registry[type[Task]] = Registry("task", builtin_modules=BUILTIN_TASK_MODULES, group="evalsuite.tasks",
                                       fix="`evalsuite tasks`")
SUITES: Registry[dict] = Registry("suite", fix="`evalsuite tasks`")  # filled by the task modules (TASKS.load())


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task to the registry under `cls.name`."""
    return TASKS.register(cls.name, cls)


def register_suite(name: str, tasks: list[str], description: str, options: dict | None = None) -> None:
    """A named list of tasks with default run-wide options (e.g. the reference to compare against)."""
    SUITES.register(name, {"name": name, "tasks": list(tasks), "description": description,
                           "options": options or {}}, replace=True)


def all_tasks() -> list[type[Task]]:
    """Every registered task class, by name."""
    return TASKS.values()


def get(name: str) -> type[Task]:
    """The task class named `name` (an unknown name lists the known ones)."""
    return TASKS.get(name)


def suites() -> list[dict]:
    """Every registered suite, by name."""
    TASKS.load()
    return SUITES.values()


def get_suite(name: str) -> dict:
    """The suite named `name`."""
    TASKS.load()
    return SUITES.get(name)

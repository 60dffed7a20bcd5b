"""What shapes a run: `ScoreOptions` (stored verbatim in every result), the run-wide defaults, and the checks of a
run's inputs made before any work."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from evalsuite import config
from evalsuite.errors import InputError
from evalsuite.fsutil import package_dir
from evalsuite.models import ModelSource

DEFAULT_NUM_SAMPLES = 1000
MAX_NUM_SAMPLES = 10_000_000
# lower bounds of one stored sample (a tiny PNG; a short lossless MP4): a run is refused only when even these do not
# fit on the store's disk
MIN_SAMPLE_BYTES = {"image": 1 << 10, "video": 16 << 10}
REFERENCE_SEED_OFFSET = 1_000_000  # `--ref model:SPEC` samples use seeds disjoint from the scored model's
DEFAULT_PROMPTS_FILE = package_dir("evalsuite.tasks") / "data" / "image_prompts.txt"  # the installed package's data


@dataclass
class ScoreOptions:
    """The run-wide settings of a run (the options of each task are in `task_options`); stored verbatim in the
    run's manifest and every result."""

    tasks: list[str] | None = None
    suite: str | None = None
    num_samples: int | None = None
    seed: int = 0
    batch_size: int = 32
    device: str = "auto"
    store: Path = field(default_factory=config.default_store)
    extractor: str | None = None
    ref: str | None = None
    prompts: Path | None = None
    offline: bool | None = None
    strict: bool = False
    num_workers: int | None = None
    progress: bool = True
    # the other models of a run: the autoencoder of the autoencoder tasks and the video model of the video tasks when
    # the scored model is not one, and the reference of FVD when it differs from --ref
    autoencoder: str | None = None
    video_model: str | None = None
    video_ref: str | None = None
    fast: bool = False  # opt-in TF32/autocast feature extraction; the deviation from exact mode is measured
    optimize_graph: bool = True  # folded conv+BN, channels_last, frozen TorchScript; checked, recorded, revertible
    # the options that belong to tasks, as asked: {"*": {NAME: VALUE}, TASK: {NAME: VALUE}} (see task_options)
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def with_legacy(cls, **kwargs: Any) -> "ScoreOptions":
        """ScoreOptions from run-wide fields plus task options by their old flat names (`detector=...`,
        `kid_subsets=...`), which become `task_options` settings: how the CLI's old flags, the Python API and runs
        stored before options belonged to tasks reach the new layout."""
        from evalsuite import task_options

        own = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - own - set(task_options.LEGACY_ALIASES))
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}", task_options.LIST_FIX)
        legacy = {k: kwargs.pop(k) for k in list(kwargs) if k not in own}
        kwargs["task_options"] = task_options.merge(kwargs.get("task_options") or {},
                                                    task_options.from_legacy(legacy))
        return cls(**kwargs)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device} was asked for, but no CUDA device is available", "use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"unknown device '{device}'", "use auto, cpu or cuda[:N]")
    return device


def read_prompts(path: Path) -> list[str]:
    """One prompt per line (.txt) or {"prompt": "..."} per line (.jsonl), UTF-8; blank lines are skipped, a file
    without prompts is an error."""
    import json

    if not path.is_file():
        raise InputError(f"prompts file {path} does not exist", "pass a .txt (one prompt per line) or .jsonl file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"prompts file {path} is not UTF-8 text (byte {exc.start} cannot be decoded)",
                         "save it as UTF-8") from exc
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if path.suffix == ".jsonl":
        try:
            lines = [json.loads(ln)["prompt"] for ln in lines]
        except (json.JSONDecodeError, KeyError, TypeError, IndexError, RecursionError) as exc:
            raise InputError(f"{path} is not JSON lines with a 'prompt' field: {type(exc).__name__}: "
                             f"{str(exc)[:100]}", 'write one {"prompt": "..."} object per line') from exc
        if not all(isinstance(p, str) for p in lines):
            raise InputError(f"{path} has a 'prompt' that is not a string", 'write one {"prompt": "..."} per line')
    if not lines:
        raise InputError(f"prompts file {path} holds no prompts", "write one prompt per line")
    return lines


def _free_bytes(folder: Path) -> int:
    """Free space on the disk `folder` is (or will be created) on."""
    for p in (folder, *folder.absolute().parents):
        if p.is_dir():
            return shutil.disk_usage(p).free
    return shutil.disk_usage(Path.cwd()).free


def check_run_inputs(source: ModelSource, options: ScoreOptions) -> None:
    """Refuse, before any work: a store that is a file, an unreadable --prompts file, --num-samples below 1 or above
    MAX_NUM_SAMPLES, and more new samples than the store's free disk holds at MIN_SAMPLE_BYTES each."""
    store = config.folder(options.store, "the store", config.STORE_FIX)
    if options.prompts:
        read_prompts(Path(options.prompts))
    n = options.num_samples
    if n is None:
        return
    if n < 1 or n > MAX_NUM_SAMPLES:
        raise InputError(f"--num-samples {n} is not between 1 and {MAX_NUM_SAMPLES}",
                         f"pass at least 1 and at most {MAX_NUM_SAMPLES} samples (FID protocols use 10k to 50k)")
    if source.kind != "generator":
        return
    media = "image" if hasattr(source.generator, "generate") else "video"
    need, free = n * MIN_SAMPLE_BYTES[media], _free_bytes(store)
    if need > free:
        raise InputError(f"--num-samples {n} needs at least {need / 1e9:.2f} GB for its {media} samples "
                         f"({MIN_SAMPLE_BYTES[media]} bytes each at the least), but the disk of the store {store} "
                         f"has {free / 1e9:.2f} GB free",
                         "free disk space, pass a smaller --num-samples, or --store a folder on a larger disk")

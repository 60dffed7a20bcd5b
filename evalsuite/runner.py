"""`score`: resolve a model and tasks, run each task through one shared context, store one result per task."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch

import evalsuite
from evalsuite import config, distributed, extractors, refstats
from evalsuite.errors import EvalsuiteError, InputError, MissingWeightsError, TaskSkipped
from evalsuite.features import FeatureResult, extract
from evalsuite.fsutil import remove_temp_files
from evalsuite.imageio import list_images
from evalsuite.models import ModelSource, resolve_model
from evalsuite.provenance import environment
from evalsuite.results import ResultsStore, new_run_id
from evalsuite.samples import SampleStore, sample_requests

T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F", bound=FeatureResult)

DEFAULT_NUM_SAMPLES = 1000
MAX_NUM_SAMPLES = 10_000_000
# lower bounds of one stored sample (a tiny PNG; a short lossless MP4): a run is refused only when even these do not
# fit on the store's disk
MIN_SAMPLE_BYTES = {"image": 1 << 10, "video": 16 << 10}
REFERENCE_SEED_OFFSET = 1_000_000  # `--ref model:SPEC` samples use seeds disjoint from the scored model's
DEFAULT_PROMPTS_FILE = (Path(importlib.util.find_spec("evalsuite.tasks").origin).parent  # the installed package's data
                        / "data" / "image_prompts.txt")


@dataclass
class ScoreOptions:
    """Everything that shapes a run; stored verbatim in every result."""

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
    biased_cov: bool = False
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_neighbourhood: int = 3  # precision/recall: k of the k-NN balls
    pr_extractor: str = "vgg16"  # precision/recall feature space: the paper's and torch-fidelity's VGG-16 fc2_relu
    num_workers: int | None = None
    progress: bool = True
    # autoencoder tasks
    autoencoder: str | None = None
    data: str | None = None
    resolution: int = 256
    frames: int = 16
    dct_block: int = 8
    # text-image tasks
    images_per_prompt: int = 4
    detector: str = "torchvision-maskrcnn"
    color: str = "clip-vit-l-14"
    vqa: str | None = None
    dpg: str | None = None
    clip_backbone: str = "ViT-B-32"
    max_prompts: int | None = None
    geneval_missing_as_failure: bool = False  # opt-in: missing images count as failures (the official script skips)
    # video tasks: frame sampling (recorded in every video result)
    frame_stride: int = 1
    frame_start: int = 0
    vbench_frames: int | None = None  # native VBench dimensions: None = every frame (VBench); N = sampled, recorded
    fvd_max_real: int = 2048  # FVD fvd2048_16f: reference videos used (StyleGAN-V's max_real)
    vbench_python: str | None = None
    video_model: str | None = None
    video_ref: str | None = None
    fast: bool = False  # opt-in TF32/autocast feature extraction; the deviation from exact mode is measured
    optimize_graph: bool = True  # folded conv+BN, channels_last, frozen TorchScript; checked, recorded, revertible


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


class RunContext:
    """What tasks read from: the samples, their features per extractor, reference statistics. Each is computed
    once per run and shared (FID, KID and precision/recall use one feature pass)."""

    def __init__(self, source: ModelSource, options: ScoreOptions, store: ResultsStore):
        self.source = source
        self.options = options
        self.store = store
        self.dist = distributed.current()
        self.device = resolve_device(options.device)
        if self.dist.enabled and self.device.startswith("cuda") and torch.cuda.device_count() > 1:
            self.device = f"cuda:{int(__import__('os').environ.get('LOCAL_RANK', self.dist.rank))}"
        self._files: list[Path] | None = None
        self._extractors: dict[str, extractors.Extractor] = {}
        self._features: dict[tuple[str, str], FeatureResult] = {}
        self._refs: dict[str, refstats.ReferenceStats] = {}
        self.generated: dict[str, int] = {}  # samples generated this run, per model under test (by model id)
        self.weights_used: dict[str, str] = {}
        self.fast_mode: dict[str, dict] = {}
        self.keep_features = False  # set when a task of the run needs every feature vector (KID)
        self._ae_source: ModelSource | None = None
        self._video_source: ModelSource | None = None
        self._ae_data = None
        self._sample_prompts: list[str | None] | None = None
        self.layouts: dict[str, Path] = {}

    # ------------------------------------------------------------------ samples
    def prompts(self, source: ModelSource | None = None) -> list[str]:
        source = source or self.source
        if self.options.prompts:
            return read_prompts(Path(self.options.prompts))
        if source.prompts:
            return list(source.prompts)
        return read_prompts(DEFAULT_PROMPTS_FILE)

    def _source_files(self, source: ModelSource, seed: int, is_reference: bool = False) -> list[Path]:
        """Sample files of a source: a folder's images (the first --num-samples of them, all of them for a
        reference folder), or a generator's samples through the sample store."""
        if source.kind == "autoencoder":
            raise InputError(f"model {source.spec} is an autoencoder; this task needs generated images",
                             "score a generator or a folder:PATH of images, or run the autoencoder tasks "
                             "(--suite autoencoder)")
        n = self.options.num_samples
        if source.kind == "folder":
            files = list_images(source.folder)
            if n is not None and not is_reference:
                if len(files) < n:
                    raise InputError(
                        f"folder {source.folder} holds {len(files)} images, fewer than --num-samples {n}",
                        f"generate more images, or pass --num-samples {len(files)} (or less)")
                files = files[:n]
            return files
        return self._generated(source, seed, "image")[0]

    def _generated(self, source: ModelSource, seed: int, media: str,
                   prompts: list[str] | None = None) -> tuple[list[Path], list[str]]:
        """--num-samples (default 1000) samples of a generator through the sample store: prompt i mod P (from
        `prompts`, else the run's prompt list), seed+i. Returns the paths and each sample's prompt."""
        requests = sample_requests(prompts or self.prompts(source),
                                   self.options.num_samples or DEFAULT_NUM_SAMPLES, seed)
        store = SampleStore(self.store.root / "samples", source.model_id)
        paths, generated = self.generate(store, source.generator, requests, media)
        if source is self.source or source is self._video_source:  # models under test, not references
            self.generated[source.model_id] = self.generated.get(source.model_id, 0) + generated
        if source is self.source:
            self._sample_prompts = [r.prompt for r in requests]
        return paths, [r.prompt for r in requests]

    def generate(self, store: SampleStore, generator: Any, requests: list, media: str) -> tuple[list[Path], int]:
        """Generate what is missing; under torchrun each rank makes its shard, then all see every file."""
        mine = self.dist.shard(requests) if self.dist.enabled else requests  # lazy requests stay lazy
        _, generated = self.dist.collectively(
            lambda: store.ensure(generator, mine, batch_size=self.options.batch_size,
                                 progress=self.options.progress and self.dist.is_main, media=media), "generation")
        return [store.path_for(r, media) for r in requests], sum(self.dist.gather(generated))

    def map_shards(self, items: Sequence[T], work: Callable[[list[T]], R], what: str) -> list[R]:
        """Rank r runs `work` on items r, r+W, r+2W, ...; every rank gets each rank's result, in rank order (one
        process: [work(items)]). A rank that raises ends the run on every rank."""
        mine = self.dist.shard(items)
        return self.dist.gather(self.dist.collectively(lambda: work(mine), what))

    def map_samples(self, items: Sequence[T], score: Callable[[list[T]], list[R]], what: str) -> list[R]:
        """Per-sample work sharded like features: every rank gets all results back in the items' order.
        `score` returns one result per item of its shard."""
        def checked(shard: list[T]) -> list[R]:
            out = list(score(shard))
            if len(out) != len(shard):
                raise EvalsuiteError(f"{what} returned {len(out)} results for {len(shard)} samples",
                                     "return exactly one result per sample")
            return out

        return self.dist.unshard(self.map_shards(items, checked, what))

    def sample_files(self) -> list[Path]:
        if self._files is None:
            self._files = self._source_files(self.source, self.options.seed)
        return self._files

    def video_source(self) -> ModelSource:
        """The video model under test: the model itself when it makes or holds videos, else --video-model (the demo
        suite sets demo-video); video tasks' results are attributed to it."""
        if self._video_source is None:
            own = self.source
            makes_video = own.kind == "generator" and hasattr(own.generator, "generate_video")
            holds_video = own.kind == "folder" and _has_videos(own.folder)
            if makes_video or holds_video:
                self._video_source = own
            elif self.options.video_model:
                self._video_source = resolve_model(self.options.video_model)
            else:
                raise TaskSkipped(f"this task scores videos, and {own.spec} makes none",
                                  "score a video generator (demo-video, python:...), a folder:PATH of videos, or "
                                  "pass --video-model SPEC")
        return self._video_source

    def video_files(self, source: ModelSource | None = None, seed: int | None = None,
                    is_reference: bool = False) -> list[Path]:
        return self.video_samples(source, seed, is_reference)[0]

    def video_samples(self, source: ModelSource | None = None, seed: int | None = None, is_reference: bool = False,
                      prompts: list[str] | None = None) -> tuple[list[Path], list[str] | None]:
        """Videos of a source and their prompts: a folder's videos (the first --num-samples; fewer is an error,
        never reuse; prompts unknown here), or a video generator's clips through the sample store (lossless MP4,
        seeds SEED + i, prompt i mod P from `prompts` or the run's list)."""
        from evalsuite.videoio import check_one_frame_rate, list_videos

        source = source or self.video_source()
        n = self.options.num_samples
        if source.kind == "folder":
            files = list_videos(source.folder)
            check_one_frame_rate(files)
            if n is not None and not is_reference:
                if len(files) < n:
                    raise InputError(f"folder {source.folder} holds {len(files)} videos, fewer than --num-samples {n}",
                                     f"generate more videos, or pass --num-samples {len(files)}; videos are never "
                                     "reused to make up the count")
                files = files[:n]
            return files, None
        if source.kind != "generator" or not hasattr(source.generator, "generate_video"):
            raise InputError(f"model {source.spec} does not generate videos",
                             "score a video generator (demo-video, or a python: factory with generate_video) or a "
                             "folder:PATH of videos")
        return self._generated(source, self.options.seed if seed is None else seed, "video", prompts)

    def frame_sampling(self) -> dict:
        """The explicit, recorded frame sampling of video tasks."""
        return {"num_frames": self.options.frames, "stride": self.options.frame_stride,
                "start": self.options.frame_start}

    def sample_prompts(self) -> list[str | None]:
        """The prompt of each sample file: from generation, or a folder's prompts.jsonl (None where unknown)."""
        files = self.sample_files()
        if self._sample_prompts is None:
            from evalsuite.models.folder import read_prompts_jsonl

            table = {}
            if self.source.kind == "folder" and (self.source.folder / "prompts.jsonl").is_file():
                table = read_prompts_jsonl(self.source.folder / "prompts.jsonl")
            self._sample_prompts = [table.get(str(f.relative_to(self.source.folder)), {}).get("prompt")
                                    if self.source.kind == "folder" else None for f in files]
        return self._sample_prompts

    def prompt_samples(self, prompts: list[dict], label: str) -> list:
        """N images per prompt in GenEval's layout: generated through the sample store (seeds recorded), or read
        from a `folder:` model that is already in that layout (its own metadata then defines the prompts)."""
        from evalsuite import prompt_layout as layout

        per_prompt = self.options.images_per_prompt
        if self.source.kind == "folder":
            if not layout.is_layout(self.source.folder):
                raise InputError(f"folder {self.source.folder} is not in GenEval's layout (<NNNNN>/metadata.jsonl + "
                                 "samples/)", "generate with a model spec, or lay the images out as GenEval does")
            self.layouts[label] = self.source.folder
            return layout.read_layout(self.source.folder, per_prompt)
        if self.source.kind != "generator":
            raise InputError(f"model {self.source.spec} is not a text-to-image generator",
                             "score a generator (demo, python:..., diffusers:...) or a GenEval-layout folder")
        store = SampleStore(self.store.root / "samples", self.source.model_id)
        folder, generated = layout.write_layout(
            self.store.root / "layouts" / label, self.source.generator, self.source.model_id, prompts, per_prompt,
            self.options.seed, store,
            ensure=lambda requests: self.generate(store, self.source.generator, requests, "image"))
        self.generated[self.source.model_id] = self.generated.get(self.source.model_id, 0) + generated
        self.layouts[label] = folder
        return layout.read_layout(folder, per_prompt)

    # ------------------------------------------------------------------ features
    def extractor(self, spec: str) -> extractors.Extractor:
        if spec not in self._extractors:
            try:
                ext = extractors.build(spec, self.device, self.options.offline)
            except MissingWeightsError as exc:
                raise TaskSkipped(exc.message, exc.fix) from exc
            ext = dataclasses.replace(ext, fast=self.options.fast, optimize_graph=self.options.optimize_graph)
            self.record_extractor(spec, ext)
        return self._extractors[spec]

    def record_extractor(self, label: str, ext: extractors.Extractor) -> None:
        """List an extractor a task built itself (e.g. a video network) in the result's provenance."""
        self._extractors[label] = ext
        self.weights_used[ext.id] = ext.weights_sha256

    def record_reference(self, key: str, ref: refstats.ReferenceStats) -> None:
        """List reference statistics a task resolved itself in the result's provenance."""
        self._refs[key] = ref

    def features_of(self, files: list[Path], spec: str, label: str, keep_features: bool = False) -> FeatureResult:
        memo = (spec, label)
        keep_features = keep_features or self.keep_features  # one pass serves FID and KID
        cached = self._features.get(memo)
        if cached is None or (keep_features and cached.features is None):
            ext = self.extractor(spec)
            if ext.fast and spec not in self.fast_mode:
                self.fast_mode[spec] = measure_fast_deviation(files, ext, self.options.batch_size)
            cached = self.sharded_features(files, lambda shard: extract(
                shard, ext, batch_size=self.options.batch_size, num_workers=self.options.num_workers,
                keep_features=keep_features, progress=self.options.progress and self.dist.is_main,
                desc=f"{label} features"), "feature extraction")
            self._check_skips(cached, label)
            self._features[memo] = cached
        return cached

    def sharded_features(self, files: Sequence[Path], extract_shard: Callable[[list[Path]], F], what: str) -> F:
        """Feature extraction (image or video) sharded over ranks, merged back in file order; one process: all."""
        return self._merge_shards(self.dist.collectively(lambda: extract_shard(self.dist.shard(files)), what))

    def _merge_shards(self, local: F) -> F:
        """All ranks' shards as one result in the original file order (identity for a single process)."""
        if not self.dist.enabled:
            return local
        parts = self.dist.gather({"files": local.files, "sha": local.content_sha256, "skipped": local.skipped,
                                  "features": local.features, "cached": local.n_cached, "computed": local.n_computed,
                                  "resolutions": getattr(local, "resolutions", None)})
        order = {f: i for i, f in enumerate(self.dist.unshard([p["files"] for p in parts]))}
        files = sorted(order, key=order.get)
        sha = dict(zip([f for p in parts for f in p["files"]], [s for p in parts for s in p["sha"]]))
        features = None
        if local.features is not None:
            rows = {f: row for p in parts for f, row in zip(p["files"], p["features"])}
            features = np.stack([rows[f] for f in files]) if files else local.features[:0]
        merged = dataclasses.replace(
            local, stats=self.dist.reduce_stats(local.stats), files=files, content_sha256=[sha[f] for f in files],
            features=features, skipped=[s for p in parts for s in p["skipped"]],
            n_cached=sum(p["cached"] for p in parts), n_computed=sum(p["computed"] for p in parts))
        if parts[0]["resolutions"] is not None:  # video results: usable videos per resolution, summed over ranks
            totals: dict[str, int] = {}
            for p in parts:
                for size, count in p["resolutions"].items():
                    totals[size] = totals.get(size, 0) + count
            merged.resolutions = dict(sorted(totals.items()))  # type: ignore[attr-defined]
        return merged

    def _check_skips(self, result: FeatureResult, label: str) -> None:
        if result.skipped and self.options.strict:
            first = result.skipped[0]
            raise InputError(f"{len(result.skipped)} {label} file(s) could not be used, e.g. {first['file']}: "
                             f"{first['reason']}", "fix or remove those files, or run without --strict to skip them")
        if result.n < 2:
            raise InputError(f"only {result.n} usable {label} image(s) ({len(result.skipped)} skipped)",
                             "statistics need at least 2 images; check the folder or the model's output")

    def sample_features(self, spec: str, keep_features: bool = False) -> FeatureResult:
        if self.source.kind == "autoencoder":
            self.sample_files()  # an autoencoder has no samples: its error, not a missing-weights skip
        self.extractor(spec)  # fail (skip) on missing weights before generating anything
        return self.features_of(self.sample_files(), spec, "sample", keep_features)

    # ------------------------------------------------------------------ autoencoders
    def autoencoder_source(self) -> ModelSource:
        """The autoencoder under test: the model itself, or --autoencoder SPEC (the demo suite sets demo-ae)."""
        if self._ae_source is None:
            if self.source.kind == "autoencoder":
                self._ae_source = self.source
            elif self.options.autoencoder:
                source = resolve_model(self.options.autoencoder)
                if source.kind != "autoencoder":
                    raise InputError(f"--autoencoder {self.options.autoencoder} is not an autoencoder",
                                     "pass demo-ae, diffusers-ae:PATH or a python: factory returning encode/decode")
                self._ae_source = source
            else:
                raise TaskSkipped(f"this task scores an autoencoder, and {self.source.spec} is not one",
                                  "score an autoencoder (demo-ae, diffusers-ae:PATH, python:...) or pass "
                                  "--autoencoder SPEC")
        return self._ae_source

    def ae_data(self):
        """The prepared real images or videos the autoencoder tasks reconstruct (default: scikit-image photos)."""
        from evalsuite import aedata

        if self._ae_data is None:
            self._ae_data = aedata.prepare(self.options.data, self.options.resolution,
                                           num_frames=self.options.frames, limit=self.options.num_samples)
            if self._ae_data.skipped and self.options.strict:
                first = self._ae_data.skipped[0]
                raise InputError(f"{len(self._ae_data.skipped)} data item(s) could not be used, e.g. "
                                 f"{first['file']}: {first['reason']}", "fix or remove them, or run without --strict")
        return self._ae_data

    def store_key(self, model_id: str, data: Any) -> str:
        """Folder name for an autoencoder's reconstructions of a prepared dataset."""
        from evalsuite.hashing import sha256_json

        return sha256_json({"model_id": model_id, "data": [str(f) for f in data.files]})[:16]

    def source_for(self, task: Any) -> ModelSource:
        """The model a task's result belongs to: the autoencoder for autoencoder tasks, else the scored model."""
        if task.sample_kind == "autoencoder" and self._ae_source is not None:
            return self._ae_source
        if task.sample_kind == "video" and self._video_source is not None:
            return self._video_source
        return self.source

    # ------------------------------------------------------------------ reference statistics
    def reference(self, spec: str, need_features: bool = False) -> refstats.ReferenceStats:
        """Reference statistics named by --ref: a registered name, an .npz file, folder:PATH or model:SPEC."""
        ref_spec = self.options.ref
        if not ref_spec:
            raise TaskSkipped("no reference statistics were given",
                              "pass --ref NAME (see `evalsuite ref list`), --ref FILE.npz, --ref folder:PATH "
                              "or --ref model:SPEC")
        memo = f"{ref_spec}|{spec}|{need_features}"
        if memo in self._refs:
            return self._refs[memo]
        ext = self.extractor(spec)
        if ref_spec.startswith(("folder:", "model:")):
            kind, _, arg = ref_spec.partition(":")
            source = resolve_model(f"folder:{arg}" if kind == "folder" else arg)
            files = self._source_files(source, self.options.seed + REFERENCE_SEED_OFFSET, is_reference=True)
            feats = self.features_of(files, spec, f"reference {ref_spec}", keep_features=need_features)
            ref = refstats.from_stream(ref_spec, feats.stats, ext.key, source=ref_spec, feats=feats.features)
            ref.id = f"{ref_spec}#{source.model_id}#n={feats.n}"
            if kind == "model":
                ref.meta["seeds"] = [self.options.seed + REFERENCE_SEED_OFFSET, feats.n]
        else:
            ref = refstats.load_npz(ref_spec) if ref_spec.endswith(".npz") else refstats.load(ref_spec)
            refstats.check_compatible(ref, ext.key)
        self._refs[memo] = ref
        return ref


def _has_videos(folder: Path | None) -> bool:
    from evalsuite.videoio import VIDEO_EXTENSIONS

    return bool(folder) and any(p.suffix.lower() in VIDEO_EXTENSIONS for p in Path(folder).rglob("*") if p.is_file())


def measure_fast_deviation(files: list[Path], ext: extractors.Extractor, batch_size: int, count: int = 64) -> dict:
    """Features of the first `count` files in fast and exact mode: the largest deviation, relative to the largest
    exact feature magnitude, is recorded with every fast-mode result."""
    probe = list(files[:count])
    exact = extract(probe, dataclasses.replace(ext, fast=False), batch_size=batch_size, num_workers=0,
                    keep_features=True, use_cache=False, progress=False)
    fast = extract(probe, ext, batch_size=batch_size, num_workers=0, keep_features=True, use_cache=False,
                   progress=False)
    scale = float(np.abs(exact.features).max()) or 1.0
    dev = float(np.abs(fast.features.astype(np.float64) - exact.features).max()) / scale if len(probe) else 0.0
    return {"precision": extractors.FAST_PRECISION, "checked_files": len(probe),
            "max_feature_deviation_relative": dev}


@dataclass
class RunSummary:
    run_id: str
    store: Path
    results: list[dict]

    def rows(self) -> list[dict]:
        """Flat rows (task, metric, value, status, note) for tables and --json."""
        out = []
        for doc in self.results:
            model = doc["model"]["spec"]
            if doc["status"] == "ok":
                for metric, value in doc["metrics"].items():
                    out.append({"task": doc["task"], "model": model, "metric": metric, "value": value,
                                "status": "ok", "n": doc.get("num_samples"), "note": _skip_note(doc)})
            else:
                out.append({"task": doc["task"], "model": model, "metric": None, "value": None,
                            "status": doc["status"], "n": None, "note": doc.get("reason"), "fix": doc.get("fix")})
        return out

    def artifacts(self) -> list[str]:
        """Files stored beside the results (plots), relative to the store."""
        return [a for doc in self.results for a in doc.get("artifacts", [])]


def _skip_note(doc: dict) -> str:
    """Counted sample skips, and parts of a task that could not run (e.g. LPIPS without its weights)."""
    notes = []
    n = doc.get("skipped_samples", {}).get("count", 0)
    if n:
        notes.append(f"{n} sample(s) skipped")
    parts = [k[: -len("_skipped")] for k in doc.get("details", {}) if k.endswith("_skipped")]
    if parts:
        notes.append(f"not computed: {', '.join(parts)} (see details)")
    return "; ".join(notes)


def resolve_tasks(source: ModelSource, options: ScoreOptions) -> tuple[list[str], dict]:
    """Task names to run, and the suite's default options (filled in where the user gave none)."""
    import evalsuite.tasks as registry

    if options.tasks is not None and not options.tasks:
        raise InputError("--tasks names no task", "pass comma-separated task names, e.g. --tasks fid,kid "
                         "(see `evalsuite tasks`), or leave --tasks out for the model's suite")
    if options.tasks and options.suite:
        raise InputError("--tasks and --suite were both given", "pass one of them")
    if options.tasks:
        names, defaults = options.tasks, {}
    else:
        suite = registry.get_suite(options.suite or source.default_suite)
        names, defaults = suite["tasks"], suite["options"]
    for name in names:
        registry.get(name)  # unknown names fail before any work
    return list(dict.fromkeys(names)), defaults


def score(model_spec: str, options: ScoreOptions | None = None) -> RunSummary:
    """Score a model on the requested tasks; returns the stored result documents. The run's manifest
    (`runs/<run_id>/run.json`: model, tasks, options) is written before the first task and marked complete after
    the last, so an interrupted run is listed as incomplete and `resume` finishes it."""
    options = options or ScoreOptions()
    source = resolve_model(model_spec)
    names, defaults = resolve_tasks(source, options)
    for key, value in defaults.items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    check_run_inputs(source, options)
    run_id = distributed.current().broadcast(
        new_run_id(source.spec.split(":")[0] if source.kind != "folder" else Path(str(source.folder)).name))
    manifest = {"run_id": run_id, "model": {"spec": source.spec, "id": source.model_id}, "tasks": names,
                "options": _options_json(options), "created_at": _now(), "status": "running"}
    return _execute(source, names, options, ResultsStore(options.store), manifest)


def resume(run_id: str, store_dir: str | Path, model_spec: str | None = None, progress: bool = True) -> RunSummary:
    """Finish an interrupted run: the tasks of its manifest without a result, for the same model, with the options
    stored in the manifest, under the same run id; results already stored stay as they are."""
    store = ResultsStore(store_dir)
    stored = store.load_run(run_id)  # an unknown id is an error; a unique prefix names the run
    run_id = stored[0]["run_id"] if stored else run_id
    manifest = store.read_manifest(run_id, required=True)
    spec = manifest["model"]["spec"]
    if model_spec is not None and model_spec != spec:
        raise InputError(f"run {run_id} scored {spec}, not {model_spec}", f"resume it without MODEL, or as {spec}")
    state = store.run_state(run_id, manifest, [d["task"] for d in stored])
    if not state["missing_tasks"]:
        raise InputError(f"run {run_id} is complete: every task of its manifest has a result",
                         f"nothing to resume; start a new run with `evalsuite score {spec}`")
    damaged = [str(store.run_path(run_id, f"{t}.json")) for t in state["missing_tasks"]
               if store.run_path(run_id, f"{t}.json").exists()]
    if damaged:
        raise InputError(f"run {run_id} holds result files that cannot be read: {', '.join(damaged)}",
                         "move them out of the store, then resume to score those tasks again")
    source = resolve_model(spec)
    if source.model_id != manifest["model"]["id"]:
        raise InputError(f"model {spec} now identifies as {source.model_id!r}, but run {run_id} scored "
                         f"{manifest['model']['id']!r}", "the checkpoint changed: score it in a new run")
    return _execute(source, state["missing_tasks"], _options_from_json(manifest["options"], store_dir, progress),
                    store, manifest, stored)


def _execute(source: ModelSource, names: list[str], options: ScoreOptions, store: ResultsStore, manifest: dict,
             stored: list[dict] | None = None) -> RunSummary:
    """Run `names` in the run `manifest` describes, storing each result as soon as it is done, under the run's
    lock; `stored`: the run's results already in the store when resuming (None: a new run). Returns every result
    of the run."""
    import evalsuite.tasks as registry

    dist = distributed.current()
    run_id = manifest["run_id"]
    with ExitStack() as held:
        def start() -> None:
            if dist.is_main:
                held.enter_context(store.run_lock(run_id))
                if stored is not None:
                    remove_temp_files(store.run_path(run_id), older_than_s=0)  # we hold the lock: a dead writer's
                    manifest["resumed_at"] = [*manifest.get("resumed_at", []), _now()]
                    store.write_manifest(manifest, new=False)
                else:
                    store.write_manifest(manifest, new=True)

        dist.collectively(start, "starting the run")
        if dist.is_main and stored is None:  # a new run that ends before its first result (bad input) leaves nothing
            held.callback(store.discard_run, run_id)
        ctx = RunContext(source, options, store)
        ctx.keep_features = any(registry.get(n).needs_all_features for n in names)
        env = environment(ctx.device)
        if dist.enabled:
            env["distributed"] = {"world_size": dist.world, "backend": torch.distributed.get_backend()}
        docs, pending_artifacts = [], []
        for name in names:
            task = registry.get(name)()
            started = time.perf_counter()
            doc: dict[str, Any] = {
                "run_id": run_id, "task": name, "task_version": task.version, "family": task.family,
                "metric_info": {k: asdict(v) for k, v in task.metrics.items()},
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            try:
                out = dist.collectively(lambda task=task: task.run(ctx), f"task {name}")
            except TaskSkipped as skip:
                doc.update(status="skipped", reason=skip.reason, fix=skip.fix, metrics={})
            except MissingWeightsError as exc:
                doc.update(status="skipped", reason=exc.message, fix=exc.fix, metrics={})
            else:
                _check_metrics(task, out.metrics)
                doc.update(status="ok", metrics=out.metrics, details=out.details, num_samples=out.num_samples,
                           skipped_samples={"count": len(out.skipped_samples), "files": out.skipped_samples[:100]})
                if out.per_sample is not None:
                    doc["per_sample"] = out.per_sample
                if out.protocol:
                    doc["protocol"] = out.protocol
                if out.artifacts:
                    doc["artifacts"] = [str((store.runs_dir / run_id / f"{name}.{fname}").relative_to(store.root))
                                        for fname in out.artifacts]
                    pending_artifacts += [(f"{name}.{fname}", data) for fname, data in out.artifacts.items()]
            model = ctx.source_for(task)
            doc["model"] = {"spec": model.spec, "id": model.model_id, "info": model.info}
            doc["provenance"] = _provenance(ctx, task, env, time.perf_counter() - started)
            if not dist.enabled:
                _write(store, run_id, doc, pending_artifacts)
                pending_artifacts = []
            docs.append(doc)
        if dist.enabled:  # all ranks finished every task: rank 0 stores the one result
            dist.collectively(lambda: None, "the run")
            if dist.is_main:
                for i, doc in enumerate(docs):
                    _write(store, run_id, doc, pending_artifacts if i == len(docs) - 1 else [])
        if dist.is_main:
            store.write_manifest({**manifest, "status": "complete", "completed_at": _now()}, new=False)
    order = {task: i for i, task in enumerate(manifest["tasks"])}
    return RunSummary(run_id, store.root, sorted((stored or []) + docs, key=lambda d: order.get(d["task"], len(order))))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _options_json(options: ScoreOptions) -> dict:
    """The options as stored in results' provenance and run manifests."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}


def _options_from_json(data: dict, store: str | Path, progress: bool) -> ScoreOptions:
    """Options stored by `_options_json`, for the store they are in now (a store may have been moved)."""
    known = {f.name for f in dataclasses.fields(ScoreOptions)}
    kwargs = {k: v for k, v in data.items() if k in known}
    kwargs.update(store=Path(store), progress=progress)
    if kwargs.get("prompts") is not None:
        kwargs["prompts"] = Path(kwargs["prompts"])
    return ScoreOptions(**kwargs)


def _write(store: ResultsStore, run_id: str, doc: dict, artifacts: list[tuple[str, bytes]]) -> None:
    """Artifacts first, then the document that lists them."""
    for fname, data in artifacts:
        store.write_artifact(run_id, fname, data)
    store.write(doc)


def _check_metrics(task: Any, metrics: dict[str, float]) -> None:
    """Every returned metric is declared in the task's `metrics` (its direction is what ranks it: an undeclared
    number would be stored without one); NaN is never stored; +inf only where the metric declares it meaningful
    (PSNR of identical images)."""
    undeclared = sorted(set(metrics) - set(task.metrics))
    if undeclared:
        raise EvalsuiteError(f"task {task.name} returned undeclared metrics {', '.join(undeclared)}; nothing was "
                             "stored", f"declare them in {type(task).__name__}.metrics (MetricInfo with a direction)")
    bad = [k for k, v in metrics.items()
           if not np.isfinite(v) and not (v == np.inf and k in task.metrics and task.metrics[k].allow_inf)]
    if bad:
        raise EvalsuiteError(f"task {task.name} produced non-finite {', '.join(bad)}; nothing was stored",
                             "report this with the run's inputs; check for degenerate features")


def _provenance(ctx: RunContext, task: Any, env: dict, wall_time: float) -> dict:
    refs = [{"spec": r.name, "id": r.id, "n": r.n, "source": r.meta.get("source"),
             "covariance": r.meta.get("covariance")}
            for r in ctx._refs.values()]
    prov = {
        "evalsuite_version": evalsuite.__version__,
        "task_version": task.version,
        "weights_sha256": dict(ctx.weights_used),
        "extractors": {spec: ext.key for spec, ext in ctx._extractors.items()},
        "reference_stats": refs,
        "seeds": {"sample_seed_start": ctx.options.seed, "kid_seed": ctx.options.seed},
        "num_samples_requested": ctx.options.num_samples,
        "samples_generated_this_run": ctx.generated.get(ctx.source_for(task).model_id, 0),
        "preprocessing": {spec: ext.preprocessing.id for spec, ext in ctx._extractors.items()},
        "fast_mode": ctx.fast_mode or None,
        "inference_graph": {spec: ext.graph_report() for spec, ext in ctx._extractors.items()
                            if ext.graph_report() is not None},
        "hardware": env,
        "wall_time_s": round(wall_time, 3),
        "options": _options_json(ctx.options),
    }
    if task.sample_kind == "autoencoder" and ctx._ae_data is not None:
        prov["data"] = ctx._ae_data.describe()
        prov["seeds"] = {}  # autoencoder tasks are deterministic given the data
    return prov

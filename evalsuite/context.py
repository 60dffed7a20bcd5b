"""`RunContext`: what tasks read from (samples, features per extractor, reference statistics), each computed once
per run and shared, sharded under torchrun."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch

from evalsuite import distributed, extractors, refstats
from evalsuite.errors import EvalsuiteError, InputError, MissingWeightsError, TaskSkipped, refuse_skipped
from evalsuite.features import FeatureResult, extract
from evalsuite.imageio import list_images
from evalsuite.models import ModelSource, resolve_model
from evalsuite.options import (
    DEFAULT_NUM_SAMPLES,
    DEFAULT_PROMPTS_FILE,
    REFERENCE_SEED_OFFSET,
    ScoreOptions,
    read_prompts,
    resolve_device,
)
from evalsuite.results import ResultsStore
from evalsuite.samples import SampleRequest, SampleStore, sample_requests

T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F", bound=FeatureResult)


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
        self._ae_data: dict[tuple, Any] = {}  # prepared autoencoder data, by (data, resolution, frames)
        self._sample_prompts: list[str | None] | None = None
        self.layouts: dict[str, Path] = {}
        self._memos: dict[str, dict] = {}

    def run_memo(self, owner: str) -> dict:
        """A dict that lives as long as this run, for what several tasks of one family compute once and share
        (e.g. the ADM tasks' features); `owner` keeps families apart."""
        return self._memos.setdefault(owner, {})

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
            assert source.folder is not None  # (a folder source has its folder)
            files = list_images(source.folder)
            if n is not None and not is_reference:
                if len(files) < n:
                    raise InputError(
                        f"folder {source.folder} holds {len(files)} images, fewer than --num-samples {n}",
                        f"generate more images, or pass --num-samples {len(files)} (or less)")
                files = files[:n]
            return files
        return self._generated(source, seed, "image")[0]

    def samples_of(self, source: ModelSource, seed: int) -> list[Path]:
        """The image samples of another model than the one scored (a reference variant, a reference model): the
        same prompts and count as the run's samples, seeds from `seed`; a folder's images, all of them."""
        return self._source_files(source, seed, is_reference=True)

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

    def generate(self, store: SampleStore, generator: Any, requests: Sequence[SampleRequest],
                 media: str) -> tuple[list[Path], int]:
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
            assert source.folder is not None
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

    def makes_videos(self, source: ModelSource | None = None) -> bool:
        """Whether a source (default: the model under test) generates or holds videos."""
        source = source or self.source
        return (source.kind == "generator" and hasattr(source.generator, "generate_video")) or \
            (source.kind == "folder" and _has_videos(source.folder))

    def image_samples(self, prompts: list[str] | None = None) -> tuple[list[Path], list[str | None]]:
        """The run's images and their prompts; a generator makes them for `prompts` (prompt i mod P, seed + i) when
        given, else for the run's prompt list (then the same files as `sample_files`). A folder's are its own."""
        if prompts is None or self.source.kind != "generator":
            return self.sample_files(), self.sample_prompts()
        kept = self._sample_prompts  # the run's own samples keep their prompts
        files, used = self._generated(self.source, self.options.seed, "image", prompts)
        self._sample_prompts = kept
        return files, list(used)

    def sample_prompts(self) -> list[str | None]:
        """The prompt of each sample file: from generation, or a folder's prompts.jsonl (None where unknown)."""
        files = self.sample_files()
        if self._sample_prompts is None:
            from evalsuite.models.folder import read_prompts_jsonl

            table = {}
            folder = self.source.folder if self.source.kind == "folder" else None
            if folder is not None and (folder / "prompts.jsonl").is_file():
                table = read_prompts_jsonl(folder / "prompts.jsonl")
            self._sample_prompts = [table.get(str(f.relative_to(folder)), {}).get("prompt")
                                    if folder is not None else None for f in files]
        return self._sample_prompts

    def prompt_samples(self, prompts: list[dict], label: str, per_prompt: int) -> list:
        """`per_prompt` images per prompt in GenEval's layout: generated through the sample store (seeds recorded),
        or read from a `folder:` model that is already in that layout (its own metadata then defines the prompts)."""
        from evalsuite import prompt_layout as layout

        if self.source.kind == "folder":
            assert self.source.folder is not None
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
        files = sorted(order, key=order.__getitem__)
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
        if self.options.strict:  # refused before the features are used (the runner refuses a task's skips after it)
            refuse_skipped(result.skipped, f"{label} file(s)")
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

    def ae_data(self, data: str | None, resolution: int, frames: int):
        """The prepared real images or videos the autoencoder tasks reconstruct (default: scikit-image photos),
        prepared once per (data, resolution, frames) and shared by the tasks asking for the same."""
        from evalsuite import aedata

        key = (data, resolution, frames)
        if key not in self._ae_data:
            self._ae_data[key] = aedata.prepare(data, resolution, num_frames=frames, limit=self.options.num_samples)
        return self._ae_data[key]

    def prepared_ae_data(self, data: str | None, resolution: int, frames: int):
        """The autoencoder data prepared for these options in this run, or None."""
        return self._ae_data.get((data, resolution, frames))

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
        """Reference statistics named by --ref: a registered name, an .npz file, folder:PATH, model:SPEC or adm:PATH
        (an ADM reference batch: the TF graph's statistics, refused for another network's features)."""
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
            ref = refstats.load_adm(ref_spec[len(refstats.ADM_PREFIX):]) if ref_spec.startswith(refstats.ADM_PREFIX) \
                else refstats.load_npz(ref_spec) if ref_spec.endswith(".npz") else refstats.load(ref_spec)
            refstats.check_compatible(ref, ext.key)
        self._refs[memo] = ref
        return ref


def _has_videos(folder: Path | None) -> bool:
    from evalsuite.videoio import VIDEO_EXTENSIONS

    return folder is not None and any(p.suffix.lower() in VIDEO_EXTENSIONS
                                      for p in Path(folder).rglob("*") if p.is_file())


def measure_fast_deviation(files: list[Path], ext: extractors.Extractor, batch_size: int, count: int = 64) -> dict:
    """Features of the first `count` files in fast and exact mode: the largest deviation, relative to the largest
    exact feature magnitude, is recorded with every fast-mode result."""
    probe = list(files[:count])
    exact = extract(probe, dataclasses.replace(ext, fast=False), batch_size=batch_size, num_workers=0,
                    keep_features=True, use_cache=False, progress=False)
    fast = extract(probe, ext, batch_size=batch_size, num_workers=0, keep_features=True, use_cache=False,
                   progress=False)
    assert exact.features is not None and fast.features is not None  # (keep_features=True)
    scale = float(np.abs(exact.features).max()) or 1.0
    dev = float(np.abs(fast.features.astype(np.float64) - exact.features).max()) / scale if len(probe) else 0.0
    return {"precision": extractors.FAST_PRECISION, "checked_files": len(probe),
            "max_feature_deviation_relative": dev}

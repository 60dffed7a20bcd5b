"""FVD: Fréchet Video Distance between the model's videos and a reference, with an explicit, recorded protocol.

Default protocol: StyleGAN-V's `fvd2048_16f` -- the I3D TorchScript network (`--extractor i3d`), 16 consecutive
frames from frame 0 of each video (`--frames`, `--frame-stride`, `--frame-start`), uint8 native-size frames resized
inside the network, biased covariance, 2048 generated and 2048 reference videos. Other feature networks:
`--extractor videomae:PATH` (cd-fvd style, see `evalsuite.video_features`) or `--extractor python:module:factory`.
The protocol name (`fvd-i3d-16f`, ...) is stored with the result, so results of different networks or samplings
never share a leaderboard column.

Covariance: FVD always uses the biased covariance (divided by N), as StyleGAN-V and cd-fvd do; `--biased-cov`
changes only the image tasks (FID, CLIP-FID) and is a no-op here. Reference statistics stored unbiased are
converted (their N is known) before use.

Batches hold at most 256 frames (StyleGAN-V's 256 // num_frames clips), whatever --batch-size says, because clips
are decoded at full size; the batch size used is recorded.

Counts: `--num-samples N` asks for N videos; fewer usable ones (a folder that holds fewer, or unreadable / too short
videos among them) is an error -- videos are never reused to make up the count (cd-fvd's default silently does).
Without --num-samples a folder's videos are all used and unusable ones are counted skips. Fewer than 2048 videos on
either side gives a number that is not comparable to published fvd2048 figures; the result says so in its details.

References (`--ref`): `folder:PATH` (all of its videos, featurised with the same extractor and sampling),
`model:SPEC` (another video generator, seeds offset by runner.REFERENCE_SEED_OFFSET, as many videos as the run
scores), or an `.npz` file / registered name whose extractor, weights and preprocessing (which names the frame
sampling) must match the run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from evalsuite import refstats
from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.hashing import sha256_json
from evalsuite.metrics import frechet_distance
from evalsuite.video_features import (
    VideoFeatureResult,
    build,
    extract_videos,
    is_video_spec,
    normalize_sampling,
    protocol_name,
    weights_needed,
)
from tasks import register
from tasks.base import MetricInfo, Requirements, Task, TaskOutput

DEFAULT_EXTRACTOR = "i3d"
STANDARD_COUNT = 2048  # StyleGAN-V fvd2048: 2048 generated and 2048 real videos
FRAMES_PER_BATCH = 256  # StyleGAN-V: batch_size = 256 // num_frames


def extractor_spec(options) -> str:
    """--extractor when it names a video network (i3d, videomae:PATH, python:...), else the default i3d."""
    spec = getattr(options, "extractor", None)
    return spec if is_video_spec(spec) else DEFAULT_EXTRACTOR


# ------------------------------------------------------------------------------------------------ references
def reference_videos(ref_spec: str, *, store_root: Path, num_samples: int | None, seed: int,
                     prompts_file: Path | None = None, batch_size: int = 8, progress: bool = True,
                     generate: Callable | None = None) -> tuple[list, dict]:
    """Video files of a `folder:PATH` or `model:SPEC` reference, without a RunContext: a folder's videos (all of
    them), or a video generator's clips through the sample store under `store_root` (lossless MP4, seeds
    seed + REFERENCE_SEED_OFFSET + i, num_samples of them or runner.DEFAULT_NUM_SAMPLES); `generate(store,
    generator, requests, media)` replaces the store's own loop (RunContext.generate shards it). Returns (files,
    info)."""
    from evalsuite.models import resolve_model
    from evalsuite.runner import (
        DEFAULT_NUM_SAMPLES,
        DEFAULT_PROMPTS_FILE,
        REFERENCE_SEED_OFFSET,
        read_prompts,
    )
    from evalsuite.samples import SampleStore, make_requests
    from evalsuite.videoio import list_videos

    kind, _, arg = ref_spec.partition(":")
    if kind not in ("folder", "model") or not arg:
        raise InputError(f"--ref {ref_spec} is not folder:PATH or model:SPEC", "pass --ref folder:PATH of videos, "
                         "--ref model:SPEC of a video generator, or an .npz / registered statistics name")
    source = resolve_model(f"folder:{arg}" if kind == "folder" else arg)
    if source.kind == "folder":
        return list_videos(source.folder), {"source": ref_spec, "model_id": source.model_id}
    if source.kind != "generator" or not hasattr(source.generator, "generate_video"):
        raise InputError(f"--ref {ref_spec}: model {source.spec} does not generate videos",
                         "use a video generator (demo-video, or a python: factory with generate_video) or a "
                         "folder:PATH of videos")
    if prompts_file:
        prompts = read_prompts(Path(prompts_file))
    else:
        prompts = list(source.prompts) if source.prompts else read_prompts(DEFAULT_PROMPTS_FILE)
    n = num_samples or DEFAULT_NUM_SAMPLES
    first_seed = seed + REFERENCE_SEED_OFFSET
    requests = make_requests(prompts, n, first_seed)
    store = SampleStore(Path(store_root) / "samples", source.model_id)
    if generate is None:
        paths, generated = store.ensure(source.generator, requests, batch_size=batch_size, progress=progress,
                                        media="video")
    else:
        paths, generated = generate(store, source.generator, requests, "video")
    return paths, {"source": ref_spec, "model_id": source.model_id, "seeds": [first_seed, n], "generated": generated,
                   "requested": n}


def check_usable(result: VideoFeatureResult, label: str, *, requested: int | None, strict: bool) -> None:
    """Refuse a feature set with skipped videos under --strict, fewer usable videos than requested, or under 2."""
    if result.skipped and strict:
        first = result.skipped[0]
        raise InputError(f"{len(result.skipped)} {label} video(s) could not be used, e.g. {first['file']}: "
                         f"{first['reason']}", "fix or remove those videos, or run without --strict to skip them")
    if requested is not None and result.n < requested:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in result.skipped[:3])
        raise InputError(f"only {result.n} of the {requested} requested {label} videos are usable "
                         f"({len(result.skipped)} skipped{': ' + reasons if reasons else ''})",
                         "fix or replace the unusable videos, or lower --num-samples; videos are never reused to "
                         "make up the count")
    if result.n < 2:
        raise InputError(f"only {result.n} usable {label} video(s) ({len(result.skipped)} skipped)",
                         "statistics need at least 2 videos; check the folder or the model's output")


def reference_stats(ref_spec: str, extractor, sampling: dict, *, store_root: Path, num_samples: int | None = None,
                    seed: int = 0, prompts_file: Path | None = None, batch_size: int = 8,
                    num_workers: int | None = None, progress: bool = True, strict: bool = False,
                    cache_root: Path | None = None, sharded: Callable | None = None,
                    generate: Callable | None = None) -> tuple[refstats.ReferenceStats, VideoFeatureResult | None]:
    """Reference statistics for FVD, without a RunContext: folder:/model: references are featurised with the same
    extractor and sampling (biased covariance stored); .npz files and registered names must be compatible with the
    extractor's key (which names the sampling). `sharded(files, extract_shard, what)` spreads the featurisation over
    ranks (RunContext.sharded_features), and `generate` the reference clips (RunContext.generate). Returns
    (statistics, the reference's features or None)."""
    from evalsuite.video_features import with_sampling

    ext = with_sampling(extractor, sampling)
    if not ref_spec.startswith(("folder:", "model:")):
        ref = refstats.load_npz(ref_spec) if ref_spec.endswith(".npz") else refstats.load(ref_spec)
        refstats.check_compatible(ref, ext.key)
        return ref, None
    files, info = reference_videos(ref_spec, store_root=store_root, num_samples=num_samples, seed=seed,
                                   prompts_file=prompts_file, batch_size=batch_size, progress=progress,
                                   generate=generate)
    def extract_shard(shard: list) -> VideoFeatureResult:
        return extract_videos(shard, ext, sampling, batch_size=batch_size, num_workers=num_workers,
                              progress=progress, cache_root=cache_root, desc=f"reference {ref_spec} video features")

    feats = sharded(files, extract_shard, "reference video features") if sharded else extract_shard(files)
    check_usable(feats, f"reference ({ref_spec})", requested=info.get("requested"), strict=strict)
    ref = refstats.from_stream(ref_spec, feats.stats, ext.key, source=ref_spec, unbiased=False)
    ref.id = f"{ref_spec}#{info['model_id']}#n={feats.n}"
    ref.meta["sampling"] = feats.sampling
    ref.meta["skipped_files"] = len(feats.skipped)
    if "seeds" in info:
        ref.meta["seeds"] = info["seeds"]
    return ref, feats


# ------------------------------------------------------------------------------------------------ task
@register
class FVD(Task):
    name = "fvd"
    version = "1"
    family = "video"
    sample_kind = "video"
    description = ("Fréchet Video Distance (StyleGAN-V fvd2048_16f protocol by default: I3D TorchScript, 16 frames, "
                   "biased covariance); the protocol, sampling and counts are recorded")
    metrics = {"fvd": MetricInfo("lower", "Fréchet distance of video features (I3D by default)", primary=True)}

    def requirements(self, options) -> Requirements:
        return Requirements(weights=weights_needed(extractor_spec(options)), reference=True)

    def run(self, ctx) -> TaskOutput:
        opts = ctx.options
        ref_spec = opts.video_ref or opts.ref  # --video-ref lets one run score FID and FVD against different sets
        if not ref_spec:
            raise TaskSkipped("no reference videos or statistics were given",
                              "pass --ref folder:PATH (videos), --ref model:SPEC (a video generator), --ref FILE.npz "
                              "or --ref NAME")
        spec = extractor_spec(opts)
        sampling = normalize_sampling(ctx.frame_sampling())
        try:  # before any generation: a missing network skips the task
            ext = build(spec, ctx.device, opts.offline, sampling)
        except MissingWeightsError as exc:
            raise TaskSkipped(exc.message, exc.fix) from exc
        ctx.record_extractor(f"video:{spec}", ext)

        # at most 256 frames per network batch (StyleGAN-V's budget): decoded full-size clips are large
        batch = max(1, min(opts.batch_size, FRAMES_PER_BATCH // sampling["num_frames"]))
        progress = opts.progress and ctx.dist.is_main
        feats = ctx.sharded_features(ctx.video_files(), lambda shard: extract_videos(
            shard, ext, sampling, batch_size=batch, num_workers=opts.num_workers, progress=progress,
            desc="sample video features"), "video feature extraction")
        check_usable(feats, "sample", requested=opts.num_samples, strict=opts.strict)
        ref, ref_feats = reference_stats(
            ref_spec, ext, sampling, store_root=ctx.store.root, num_samples=opts.num_samples, seed=opts.seed,
            prompts_file=opts.prompts, batch_size=batch, num_workers=opts.num_workers,
            progress=progress, strict=opts.strict, sharded=ctx.sharded_features, generate=ctx.generate)
        ctx.record_reference(f"video|{ref_spec}|{sha256_json(ext.key)[:16]}", ref)

        value = frechet_distance(feats.stats.mean, feats.stats.cov(unbiased=False),
                                 ref.mu, ref.covariance(unbiased=False))
        prep = ext.preprocessing
        details = {
            "extractor": spec, "extractor_key": ext.key,
            "frames": prep.num_frames, "stride": prep.stride, "start": prep.start,
            "resize": ("inside the I3D TorchScript graph (resize=True) from each video's native resolution"
                       if spec == "i3d" else f"per frame: {prep.frame.id}; network: {prep.network}"),
            "covariance": "biased",
            "covariance_note": "FVD always divides by N (StyleGAN-V, cd-fvd); --biased-cov only affects image tasks",
            "num_videos": feats.n, "num_videos_requested": opts.num_samples,
            "resolutions": feats.resolutions,
            "n_reference": ref.n, "reference": {"spec": ref_spec, "id": ref.id,
                                                 "covariance_stored": ref.meta.get("covariance")},
            "n_cached_features": feats.n_cached, "n_computed_features": feats.n_computed,
            "batch_size": batch,
        }
        if ref_feats is not None:
            details.update(reference_resolutions=ref_feats.resolutions, n_reference_skipped=len(ref_feats.skipped),
                           n_reference_cached_features=ref_feats.n_cached,
                           n_reference_computed_features=ref_feats.n_computed)
            if "seeds" in ref.meta:
                details["reference"]["seeds"] = ref.meta["seeds"]
        if feats.n < STANDARD_COUNT or (ref.n or 0) < STANDARD_COUNT:
            details["note"] = (f"{feats.n} generated and {ref.n if ref.n else 'an unknown number of'} reference "
                               f"videos; the standard is {STANDARD_COUNT} of each (StyleGAN-V fvd2048), so this "
                               "number is not comparable to fvd2048 results")
        return TaskOutput(metrics={"fvd": value}, details=details, num_samples=feats.n,
                          skipped_samples=feats.skipped, protocol=protocol_name(spec, ext))

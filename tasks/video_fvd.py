"""FVD: Fréchet Video Distance between the model's videos and a reference, with an explicit, recorded protocol.

Default protocol: StyleGAN-V's `fvd2048_16f` (src/metrics/metric_main.py `fvd2048_16f`: compute_fvd(max_real=2048,
num_gen=2048, num_frames=16)) -- the I3D TorchScript network (`--extractor i3d`), uint8 native-size frames resized
inside the network, biased covariance. Generated clips: 16 consecutive frames from frame 0 (`--frames`,
`--frame-stride`, `--frame-start`; StyleGAN-V sets load_n_consecutive_random_offset=False for them). Reference clips:
the first `--fvd-max-real` (2048) usable videos of the folder in sorted order (StyleGAN-V's max_items=max_real over
its dataset's first items, videos shorter than the clip discarded first), each clip at a random start (its dataset's
load_n_consecutive_random_offset=True), drawn from `--seed` and the file's content (`video_features.random_start`)
and recorded. Another cap is explicit and adds `-maxreal{N}` to the protocol name.

`--extractor videomae` (or `videomae:FILE.pth`): cd-fvd's protocol (`cd-fvd-videomae-16f`): VideoMAE-v2 ViT-g SSv2,
its preprocessing and features (see `evalsuite.video_features`), random clip starts on both sides, every reference
video (its n_real='full'; --fvd-max-real does not apply). `--extractor python:module:factory` follows StyleGAN-V's
sampling. The protocol name is stored with the result, so results of different networks or samplings never share a
leaderboard column.

Covariance: FVD always uses the biased covariance (divided by N), as StyleGAN-V and cd-fvd do; `--biased-cov`
changes only the image tasks (FID, CLIP-FID) and is a no-op here. Reference statistics stored unbiased are
converted (their N is known) before use.

Batches hold at most 256 frames (StyleGAN-V's 256 // num_frames clips), whatever --batch-size says, because clips
are decoded at full size; the batch size used is recorded.

Counts: `--num-samples N` asks for N videos; fewer usable ones (a folder that holds fewer, or unreadable / too short
videos among them) is an error -- videos are never reused to make up the count (cd-fvd's default silently does).
Without --num-samples a folder's videos are all used and unusable ones are counted skips. Another count than 2048 on
either side gives a number that is not comparable to published fvd2048 figures; the result says so in its details.

References (`--ref`): `folder:PATH` (its videos, featurised as the reference side above), `model:SPEC` (another video
generator, seeds offset by runner.REFERENCE_SEED_OFFSET, as many videos as the run scores, at most the cap), or an
`.npz` file / registered name (`evalsuite ref build` applies the same reference rule, seed 0) whose extractor,
weights and preprocessing (which names the frame sampling, the random-start seed and the cap) must match the run's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from evalsuite import refstats
from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped, refuse_skipped
from evalsuite.hashing import sha256_json
from evalsuite.metrics import frechet_distance
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.video_features import (
    RANDOM_START_RULE,
    VideoFeatureResult,
    build,
    extract_reference_videos,
    extract_videos,
    is_cdfvd,
    is_video_spec,
    normalize_sampling,
    protocol_name,
    reference_extractor,
    weights_needed,
    with_random_start,
)

DEFAULT_EXTRACTOR = "i3d"
STANDARD_COUNT = 2048  # StyleGAN-V fvd2048: 2048 generated and 2048 real videos
FRAMES_PER_BATCH = 256  # StyleGAN-V: batch_size = 256 // num_frames


def extractor_spec(options) -> str:
    """--extractor when it names a video network (i3d, videomae[:FILE], python:...), else the default i3d."""
    spec = getattr(options, "extractor", None)
    return spec if isinstance(spec, str) and is_video_spec(spec) else DEFAULT_EXTRACTOR


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
        assert source.folder is not None  # (a folder source has its folder)
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
    if strict:
        refuse_skipped(result.skipped, f"{label} video(s)")
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
                    seed: int = 0, max_real: int | None = STANDARD_COUNT, prompts_file: Path | None = None,
                    batch_size: int = 8, num_workers: int | None = None, progress: bool = True, strict: bool = False,
                    cache_root: Path | None = None, sharded: Callable | None = None,
                    generate: Callable | None = None) -> tuple[refstats.ReferenceStats, VideoFeatureResult | None]:
    """Reference statistics for FVD, without a RunContext. folder:/model: references are featurised as the real side
    of the protocol (`video_features.extract_reference_videos`: seeded random clip starts and, for StyleGAN-V, the
    first `max_real` usable videos; a model: reference generates min(num_samples, max_real) clips); biased covariance
    stored. .npz files and registered names must have been built the same way (the key names the rule, the seed and
    the cap). `sharded(files, extract_shard, what)` spreads the featurisation over ranks (RunContext.sharded_features),
    and `generate` the reference clips (RunContext.generate). Returns (statistics, the reference's features or
    None)."""
    ext = reference_extractor(extractor, sampling, seed=seed, max_real=max_real)
    if not ref_spec.startswith(("folder:", "model:")):
        ref = refstats.load_npz(ref_spec) if ref_spec.endswith(".npz") else refstats.load(ref_spec)
        refstats.check_compatible(ref, ext.key)
        return ref, None
    from evalsuite.runner import DEFAULT_NUM_SAMPLES

    cap = ext.preprocessing.max_videos
    count = num_samples if cap is None or ref_spec.startswith("folder:") else min(num_samples or DEFAULT_NUM_SAMPLES,
                                                                                  cap)
    files, info = reference_videos(ref_spec, store_root=store_root, num_samples=count, seed=seed,
                                   prompts_file=prompts_file, batch_size=batch_size, progress=progress,
                                   generate=generate)
    feats = extract_reference_videos(files, ext, None, seed=seed, max_real=cap, sharded=sharded,
                                     batch_size=batch_size, num_workers=num_workers, progress=progress,
                                     cache_root=cache_root, desc=f"reference {ref_spec} video features")
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
    version = "2"
    family = "video"
    sample_kind = "video"
    description = ("Fréchet Video Distance (StyleGAN-V fvd2048_16f protocol by default: I3D TorchScript, 16 frames, "
                   "first 2048 reference videos at random clip starts, biased covariance; cd-fvd's VideoMAE with "
                   "--extractor videomae); the protocol, sampling and counts are recorded")
    metrics = {"fvd": MetricInfo("lower", "Fréchet distance of video features (I3D by default)", primary=True)}

    @dataclass(frozen=True)
    class Options:
        frames: int = field(default=16, metadata={"help": "frames per clip (16: fvd2048_16f)"})
        frame_stride: int = field(default=1, metadata={"help": "take every k-th frame"})
        frame_start: int = field(default=0, metadata={"help": "first frame of generated clips (StyleGAN-V)"})
        max_real: int = field(default=2048, metadata={
            "help": "reference videos used (StyleGAN-V's max_real); another count changes the protocol name"})

        def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
            if self.max_real < 2:
                raise InputError(f"fvd.max_real is {self.max_real}", "pass -o fvd.max_real=2 or more (--fvd-max-real)")

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
        own = self.options
        sampling = normalize_sampling({"num_frames": own.frames, "stride": own.frame_stride,
                                       "start": own.frame_start})
        try:  # before any generation: a missing network skips the task
            ext = build(spec, ctx.device, opts.offline, sampling)
        except MissingWeightsError as exc:
            raise TaskSkipped(exc.message, exc.fix) from exc
        ctx.record_extractor(f"video:{spec}", ext)
        cdfvd = is_cdfvd(ext)
        if cdfvd and sampling["start"] != 0:
            raise InputError(f"--frame-start {sampling['start']} does not apply to cd-fvd's protocol",
                             "drop --frame-start: cd-fvd takes a random clip start in every video, on both sides")
        max_real = None if cdfvd else own.max_real
        gen_ext = with_random_start(ext, opts.seed) if cdfvd else ext  # StyleGAN-V: generated clips from --frame-start

        # at most 256 frames per network batch (StyleGAN-V's budget): decoded full-size clips are large
        batch = max(1, min(opts.batch_size, FRAMES_PER_BATCH // sampling["num_frames"]))
        progress = opts.progress and ctx.dist.is_main
        feats = ctx.sharded_features(ctx.video_files(), lambda shard: extract_videos(
            shard, gen_ext, sampling, batch_size=batch, num_workers=opts.num_workers, progress=progress,
            desc="sample video features"), "video feature extraction")
        check_usable(feats, "sample", requested=opts.num_samples, strict=False)  # skips: the runner's --strict
        ref, ref_feats = reference_stats(
            ref_spec, ext, sampling, store_root=ctx.store.root, num_samples=opts.num_samples, seed=opts.seed,
            max_real=max_real, prompts_file=opts.prompts, batch_size=batch, num_workers=opts.num_workers,
            progress=progress, strict=opts.strict, sharded=ctx.sharded_features, generate=ctx.generate)
        ref_key = reference_extractor(ext, sampling, seed=opts.seed, max_real=max_real).key
        ctx.record_reference(f"video|{ref_spec}|{sha256_json(ref_key)[:16]}", ref)

        value = frechet_distance(feats.stats.mean, feats.stats.cov(unbiased=False),
                                 ref.mu, ref.covariance(unbiased=False))
        prep = ext.preprocessing
        if cdfvd:
            resize = (f"per clip: {prep.clip}; network: {prep.network} (cd-fvd's video-folder loader and "
                      "preprocess_videomae)")
        elif spec == "i3d":
            resize = "inside the I3D TorchScript graph (resize=True) from each video's native resolution"
        else:
            resize = f"per frame: {prep.frame.id}; network: {prep.network}"
        details = {
            "extractor": spec, "extractor_key": gen_ext.key, "reference_extractor_key": ref_key,
            "frames": prep.num_frames, "stride": prep.stride,
            "start": "random" if cdfvd else prep.start, "reference_start": "random",
            "random_start": {"seed": opts.seed, "rule": RANDOM_START_RULE,
                             "applies_to": "both sides (cd-fvd)" if cdfvd else "reference videos only (StyleGAN-V: "
                             "load_n_consecutive_random_offset=True for the dataset, False for generated videos)"},
            "reference_cap": ({"max_real": max_real, "rule": "the first max_real usable reference videos in sorted "
                               "order (StyleGAN-V max_real, discard_short_videos)"} if max_real is not None else
                              {"max_real": None, "rule": "every reference video (cd-fvd n_real='full'); "
                               "--fvd-max-real does not apply"}),
            "resize": resize,
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
        if cdfvd and feats.n != STANDARD_COUNT:
            details["note"] = (f"{feats.n} generated videos; cd-fvd's default is n_fake={STANDARD_COUNT} (it reuses "
                               "videos to get there; we never do), so this number is not comparable to its defaults")
        elif not cdfvd and (feats.n != STANDARD_COUNT or ref.n != STANDARD_COUNT):
            details["note"] = (f"{feats.n} generated and {ref.n if ref.n else 'an unknown number of'} reference "
                               f"videos; the standard is {STANDARD_COUNT} of each (StyleGAN-V fvd2048), so this "
                               "number is not comparable to fvd2048 results")
        protocol = protocol_name(spec, ext)
        if max_real is not None and max_real != STANDARD_COUNT:
            protocol += f"-maxreal{max_real}"
        return TaskOutput(metrics={"fvd": value}, details=details, num_samples=feats.n,
                          skipped_samples=feats.skipped, protocol=protocol)

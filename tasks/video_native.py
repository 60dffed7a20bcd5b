"""Video tasks computed in our own environment: VBench's `temporal_flickering` exactly as VBench computes it (no
weights needed), VBench's `subject_consistency` (DINO ViT-B/16) and `background_consistency` (CLIP ViT-B/32) with
VBench's preprocessing and formula, and host generation speed of video generators (frames of video per second of
wall time). The three VBench dimensions read every frame of each video, as VBench does; `--vbench-frames N` samples
N frames instead (an explicit option with its own protocol name)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from evalsuite import openai_clip
from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.score_cache import ScoreCache, fill, scorer_identity
from evalsuite.tasks import register, register_suite
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.videoio import read_all_frames, read_frames

if TYPE_CHECKING:
    import torch



def flicker_score(frames: np.ndarray) -> float:
    """VBench temporal_flickering for one clip: (255 − mean over adjacent pairs of mean |f_i − f_{i+1}|) / 255,
    differences in float32 over every pixel and channel."""
    if len(frames) < 2:
        raise InputError(f"temporal flickering compares adjacent frames, and the video has {len(frames)}",
                         "score videos of 2 frames or more")
    f = frames.astype(np.float32)
    per_pair = np.abs(f[1:] - f[:-1]).reshape(len(f) - 1, -1).mean(axis=1)
    return float((255.0 - per_pair.mean()) / 255.0)


@dataclass(frozen=True)
class NativeVBenchOptions:
    """Frame sampling of the native VBench dimensions (recorded in the protocol name when not VBench's)."""

    vbench_frames: int | None = field(default=None, metadata={
        "help": "sample N frames (frame_start, frame_stride) instead of every frame as VBench does"})
    frame_stride: int = field(default=1, metadata={"help": "with vbench_frames: take every k-th frame"})
    frame_start: int = field(default=0, metadata={"help": "with vbench_frames: first frame index"})

    def __post_init__(self) -> None:  # checked when the run's options are resolved, before any video is made
        vbench_sampling(self)


def vbench_sampling(options: NativeVBenchOptions) -> tuple[dict, str]:
    """(recorded sampling, protocol suffix) of the native VBench dimensions: every frame by default (VBench's
    protocol, suffix ""), or `vbench_frames` N frames from `frame_start` every `frame_stride` (suffix
    "-sampled-{N}f-s{stride}", plus "-from{start}" when start > 0)."""
    n = options.vbench_frames
    if n is None:
        return {"frames": "all"}, ""
    if n < 2:
        raise InputError(f"vbench_frames is {n}; the VBench dimensions compare frames", "pass 2 or more")
    start, stride = options.frame_start, options.frame_stride
    if stride < 1 or start < 0:
        raise InputError(f"frame_stride {stride}, frame_start {start}", "pass a stride of 1 or more and a start of 0 "
                         "or more")
    suffix = f"-sampled-{n}f-s{stride}" + (f"-from{start}" if start else "")
    return {"num_frames": n, "stride": stride, "start": start}, suffix


def _per_video(path, sampling: dict, score: Callable[[np.ndarray], Any]) -> Any:
    """One video's score from its frames (every frame, or the sampled ones), or a skip record naming the file and
    why (unreadable, too short)."""
    try:
        if sampling.get("frames") == "all":
            frames = read_all_frames(path)
        else:
            frames = read_frames(path, sampling["num_frames"], sampling["stride"], sampling["start"])
        return score(frames)
    except InputError as exc:
        return {"file": str(path), "reason": exc.message}


def _collect(files: list, results: list) -> tuple[list[str], list, list[dict]]:
    """(names, scores, skipped) from per-video results in file order (skips are the dicts); refuses a run where no
    video could be scored."""
    kept = [(str(f), r) for f, r in zip(files, results) if not isinstance(r, dict)]
    skipped = [r for r in results if isinstance(r, dict)]
    if not kept:
        example = f", e.g. {skipped[0]['file']}: {skipped[0]['reason']}" if skipped else ""
        raise InputError(f"no usable video among {len(files)} ({len(skipped)} skipped){example}",
                         "check the videos (at least 2 readable frames each)")
    return [n for n, _ in kept], [r for _, r in kept], skipped


def _pair_summary(pairs: np.ndarray) -> tuple[float, float, int]:
    return float(pairs.mean()), float(pairs.sum()), len(pairs)


@register
class TemporalFlickering(Task):
    name = "temporal-flickering"
    version = "2"  # 2: every frame of each video by default (VBench), not the first --frames
    family = "video"
    sample_kind = "video"
    description = "VBench temporal_flickering, computed natively (no weights); no RAFT static-video filter"
    metrics = {"temporal_flickering": MetricInfo("higher", "mean over videos of (255 − mean adjacent-frame MAE)/255",
                                                 primary=True, per_sample="temporal_flickering")}
    Options = NativeVBenchOptions

    def run(self, ctx) -> TaskOutput:
        sampling, suffix = vbench_sampling(self.options)
        files = ctx.video_files(ctx.video_source())

        def score(paths: list) -> list:
            return [_per_video(path, sampling, flicker_score) for path in paths]

        names, scores, skipped = _collect(files, ctx.map_samples(files, score, "temporal flickering"))
        return TaskOutput(metrics={"temporal_flickering": float(np.mean(scores))},
                          details={"sampling": sampling, "note": "VBench's official protocol first drops static "
                                   "videos with RAFT; this native score does not (it scores every video). A video "
                                   "of one frame is a counted skip (VBench's mean would be NaN)"},
                          per_sample={"name": names, "temporal_flickering": scores}, skipped_samples=skipped,
                          num_samples=len(scores), protocol="vbench-temporal-flickering-native" + suffix)


@register
class VideoGenerationSpeed(Task):
    name = "video-speed"
    version = "1"
    family = "video"
    sample_kind = "video"
    description = "Host generation speed of a video generator: frames of video per second of wall time"
    metrics = {"frames_per_second": MetricInfo("higher", "generated video frames per wall-clock second", primary=True),
               "seconds_per_video": MetricInfo("lower", "wall-clock seconds per generated video", unit="s")}

    def run(self, ctx) -> TaskOutput:
        source = ctx.video_source()
        if source.kind != "generator":
            raise InputError(f"model {source.spec} is a folder of videos; generation speed needs a generator",
                             "score a video generator (demo-video, python:...)")
        gen = source.generator
        prompts = ctx.prompts(source)
        count = min(ctx.options.num_samples or 4, 8)
        gen.generate_video(prompts[:1], [ctx.options.seed])  # warm-up, not timed
        per_video, frames = [], 0
        for i in range(count):
            t0 = time.perf_counter()
            (clip,) = gen.generate_video([prompts[i % len(prompts)]], [ctx.options.seed + i])
            per_video.append(time.perf_counter() - t0)
            frames += len(clip)
        total = float(sum(per_video))
        return TaskOutput(metrics={"frames_per_second": frames / total, "seconds_per_video": total / count},
                          details={"videos": count, "frames": frames, "steps": getattr(gen, "steps", None),
                                   "device": ctx.device, "per_video_s": per_video,
                                   "note": "host wall time of generate_video, one video at a time after one "
                                           "warm-up; on-device timing is the device runner's job"},
                          num_samples=count)



# ------------------------------------------------------------------------------------ VBench subject / background
# VBench 0.1.5 (vbench/subject_consistency.py, vbench/background_consistency.py, vbench/utils.py), recomputed here:
# every frame of the video (`load_video`), per frame an L2-normalised feature; each frame after the first scores the
# mean of max(0, cos) with the previous frame and with the first frame; a video scores the mean over its frames after
# the first, and the dimension is the sum of every frame's score over the count of frames scored across all videos
# (single-process VBench; videos of different lengths weigh by their frame count).

DINO_WEIGHTS = "dino-vitb16"
CLIP_WEIGHTS = "clip-vit-b-32-openai"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def _pair_scores(features: np.ndarray) -> np.ndarray:
    """Per frame after the first: (max(0, cos(f_i, f_{i-1})) + max(0, cos(f_i, f_0))) / 2, features L2-normalised
    first (torch's F.normalize, eps 1e-12)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise InputError(f"subject/background consistency compares frames, and the video has {len(f)}",
                         "score videos of 2 frames or more")
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    to_previous = np.maximum(0.0, np.sum(f[1:] * f[:-1], axis=1))
    to_first = np.maximum(0.0, f[1:] @ f[0])
    return (to_previous + to_first) / 2


def consistency_score(features: np.ndarray) -> float:
    """VBench subject_consistency / background_consistency of one clip from its (T, d) frame features: the mean
    over frames i ≥ 1 of (max(0, cos(f_i, f_{i−1})) + max(0, cos(f_i, f_0))) / 2."""
    return float(_pair_scores(features).mean())


def _dino_architecture():
    """The empty network DINO's checkpoint loads into: timm's ViT-B/16 without head (same keys as DINO's
    VisionTransformer: patch_embed, cls_token, pos_embed, blocks, norm). Tests swap in a smaller ViT here."""
    import timm

    return timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)


def _dino_pos_embed(pos_embed, rows: int, cols: int, patch: int):
    """DINO's interpolate_pos_encoding: the table as trained for a square 224 grid, else its patch part resized
    bicubically by scale factors ((rows//patch + 0.1)/√N, (cols//patch + 0.1)/√N)."""
    import math

    import torch

    n = pos_embed.shape[1] - 1
    r0, c0 = rows // patch, cols // patch
    if r0 * c0 == n and rows == cols:
        return pos_embed
    side, dim = int(math.sqrt(n)), pos_embed.shape[-1]
    grid = pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, scale_factor=((r0 + 0.1) / math.sqrt(n), (c0 + 0.1) / math.sqrt(n)),
                                           mode="bicubic")
    if grid.shape[-2:] != (r0, c0):
        raise InputError(f"DINO position table resized to {tuple(grid.shape[-2:])}, not {(r0, c0)}",
                         "report this frame size")
    return torch.cat((pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


CHUNK = 16  # frames per forward pass (VBench: DINO one frame at a time, CLIP all frames at once)


def dino_input(frames: np.ndarray) -> torch.Tensor:
    """VBench's `dino_transform(224)` on (T, H, W, 3) uint8 frames taken as float 0..255 (as `load_video` gives
    them): shorter side resized to 224 (bilinear, no antialias, no crop), /255, ImageNet mean/std; (T, 3, 224, W')."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = TF.resize(x, 224, interpolation=InterpolationMode.BILINEAR, antialias=False).div(255.0)
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def clip_input(frames: np.ndarray) -> torch.Tensor:
    """VBench's `clip_transform(224)` on (T, H, W, 3) uint8 frames taken as float 0..255: shorter side resized to
    224 (bicubic, no antialias), centre crop 224, /255, CLIP mean/std; (T, 3, 224, 224)."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = TF.resize(x, 224, interpolation=InterpolationMode.BICUBIC, antialias=False)
    x = TF.center_crop(x, [224, 224]).div(255.0)
    return TF.normalize(x, CLIP_MEAN, CLIP_STD)


def dino_forward(model: Any, x: torch.Tensor) -> torch.Tensor:  # model: a timm VisionTransformer (timm is untyped)
    """DINO's VisionTransformer.forward on a timm ViT holding DINO's weights: patch tokens at any frame size, CLS
    token, position table resized as DINO does, blocks, final norm; the CLS token."""
    import torch

    tokens = model.patch_embed.proj(x).flatten(2).transpose(1, 2)  # any frame size, as DINO's PatchEmbed
    tokens = torch.cat((model.cls_token.expand(len(x), -1, -1), tokens), dim=1)
    tokens = tokens + _dino_pos_embed(model.pos_embed, x.shape[-2], x.shape[-1], model.patch_embed.proj.stride[0])
    for block in model.blocks:
        tokens = block(tokens)
    return model.norm(tokens)[:, 0]


class _DinoFrames:
    """VBench's subject_consistency features: DINO ViT-B/16 CLS token (after the final norm), fp32, of frames
    prepared by `dino_input` (VBench's `dino_transform`)."""

    weights = DINO_WEIGHTS
    protocol = "vbench-subject-consistency-native-dino-vitb16"
    precision = "fp32"  # VBench's DINO (torch.hub) runs in fp32 on every device

    def __init__(self, device: str, offline: bool | None):
        import torch

        from evalsuite import weights as weights_store

        path, self.weights_sha256 = weights_store.require_verified(DINO_WEIGHTS, offline=offline)
        model = _dino_architecture()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model = model.eval().to(device)
        self.device = device

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        x = dino_input(frames)
        with torch.inference_mode():
            return np.concatenate([dino_forward(self.model, chunk.to(self.device)).float().cpu().numpy()
                                   for chunk in x.split(CHUNK)])


class _ClipFrames:
    """VBench's background_consistency features: OpenAI CLIP ViT-B/32 `encode_image` of frames prepared by
    `clip_input` (VBench's `clip_transform`), in the precision VBench's `clip.load` gives on the device: fp16 weights
    on CUDA, fp32 on the CPU (`evalsuite.openai_clip`; recorded in the result's details)."""

    weights = CLIP_WEIGHTS
    protocol = "vbench-background-consistency-native-clip-vitb32"

    def __init__(self, device: str, offline: bool | None):
        from evalsuite import weights as weights_store

        path, self.weights_sha256 = weights_store.require_verified(CLIP_WEIGHTS, offline=offline)
        self.precision = openai_clip.official_precision(device)
        self.model = openai_clip.load(path, device, self.precision)
        self.device = device

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        x = clip_input(frames)
        with torch.inference_mode():
            return np.concatenate([openai_clip.encode_image(self.model, chunk.to(self.device)).cpu().numpy()
                                   for chunk in x.split(CHUNK)])


class _VBenchConsistency(Task):
    """Shared run of the two VBench consistency dimensions; subclasses name the metric and the feature network."""

    family = "video"
    sample_kind = "video"
    version = "2"  # 2: every frame of each video by default (VBench); subject: /255 before normalising (VBench)
    metric: str
    backbone: type[_DinoFrames] | type[_ClipFrames]
    Options = NativeVBenchOptions

    def requirements(self, options) -> Requirements:
        return Requirements(weights=(self.backbone.weights,))

    def run(self, ctx) -> TaskOutput:
        sampling, suffix = vbench_sampling(self.options)
        try:  # before any generation: missing weights skip the task
            net = self.backbone(ctx.device, ctx.options.offline)
        except MissingWeightsError as exc:
            raise TaskSkipped(exc.message, exc.fix) from exc
        ctx.weights_used[net.protocol] = net.weights_sha256
        files = ctx.video_files(ctx.video_source())
        # per video content: (mean, sum, count) of its frame scores, keyed like the feature cache
        identity = scorer_identity(self, net, ctx, sampling=sampling, precision=net.precision)
        cache = ScoreCache(identity) if identity else None

        def score(paths: list) -> list:  # per video: ((mean of its frame scores, sum, count), from the cache?)
            def compute(chunk: list[int]) -> dict[int, Any]:  # the summary, or why the video cannot be scored
                done = {i: _per_video(paths[i], sampling, lambda frames: _pair_summary(_pair_scores(net(frames))))
                        for i in chunk}
                return {i: r["reason"] if isinstance(r, dict) else list(r) for i, r in done.items()}

            got, from_cache = fill(cache, [(path, None) for path in paths], compute)
            return [({"file": str(paths[i]), "reason": got[i]} if isinstance(got[i], str) else tuple(got[i]),
                     i in from_cache) for i in range(len(paths))]

        scored = ctx.map_samples(files, score, self.name)
        names, summaries, skipped = _collect(files, [result for result, _ in scored])
        scores = [mean for mean, _, _ in summaries]
        pair_sum, pair_count = sum(s for _, s, _ in summaries), sum(c for _, _, c in summaries)
        return TaskOutput(metrics={self.metric: pair_sum / pair_count},
                          details={"sampling": sampling, "protocol": net.protocol, "weights": net.weights,
                                   "precision": net.precision, "frames_scored": pair_count,
                                   "cached_samples": sum(hit for _, hit in scored),
                                   "note": "as single-process VBench: the dimension is the sum of every scored "
                                           "frame's score over the number of frames scored across all videos (a "
                                           "longer video weighs more); per video, the mean over its frames. A "
                                           "video of one frame is a counted skip (VBench divides by zero)"},
                          per_sample={"name": names, self.metric: scores}, skipped_samples=skipped,
                          num_samples=len(scores), protocol=net.protocol + suffix)


@register
class SubjectConsistency(_VBenchConsistency):
    name = "subject-consistency"
    metric = "subject_consistency"
    backbone = _DinoFrames
    description = "VBench subject_consistency, computed natively: DINO ViT-B/16 CLS-token similarity across frames"
    metrics = {"subject_consistency": MetricInfo(
        "higher", "mean over frames of (max(0, cos to previous) + max(0, cos to first))/2, DINO ViT-B/16",
        primary=True, per_sample="subject_consistency")}


@register
class BackgroundConsistency(_VBenchConsistency):
    name = "background-consistency"
    metric = "background_consistency"
    backbone = _ClipFrames
    description = "VBench background_consistency, computed natively: CLIP ViT-B/32 image similarity across frames"
    metrics = {"background_consistency": MetricInfo(
        "higher", "mean over frames of (max(0, cos to previous) + max(0, cos to first))/2, CLIP ViT-B/32",
        primary=True, per_sample="background_consistency")}


register_suite("video", ["fvd", "temporal-flickering", "subject-consistency", "background-consistency", "video-speed"],
               "Video: FVD (fvd2048_16f protocol), VBench temporal flickering and subject/background consistency "
               "(native), host generation speed; add vbench for all 16 dimensions in its own environment",
               options={"video_ref": "model:demo-video", "num_samples": 8})

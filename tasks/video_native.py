"""Video tasks computed in our own environment: VBench's `temporal_flickering` exactly as VBench computes it (no
weights needed), and host generation speed of video generators (frames of video per second of wall time)."""

from __future__ import annotations

import time

import numpy as np

from evalsuite.errors import InputError
from evalsuite.videoio import read_frames
from tasks import register, register_suite
from tasks.base import MetricInfo, Task, TaskOutput


def flicker_score(frames: np.ndarray) -> float:
    """VBench temporal_flickering for one clip: (255 − mean over adjacent pairs of mean |f_i − f_{i+1}|) / 255,
    differences in float32 over every pixel and channel."""
    if len(frames) < 2:
        raise InputError("temporal flickering needs at least 2 frames", "pass --frames 2 or more")
    f = frames.astype(np.float32)
    per_pair = np.abs(f[1:] - f[:-1]).reshape(len(f) - 1, -1).mean(axis=1)
    return float((255.0 - per_pair.mean()) / 255.0)


@register
class TemporalFlickering(Task):
    name = "temporal-flickering"
    version = "1"
    family = "video"
    sample_kind = "video"
    description = "VBench temporal_flickering, computed natively (no weights); no RAFT static-video filter"
    metrics = {"temporal_flickering": MetricInfo("higher", "mean over videos of (255 − mean adjacent-frame MAE)/255",
                                                 primary=True, per_sample="temporal_flickering")}

    def run(self, ctx) -> TaskOutput:
        files = ctx.video_files(ctx.video_source())
        sampling = ctx.frame_sampling()
        names, scores, skipped = [], [], []
        for path in files:
            try:
                frames = read_frames(path, sampling["num_frames"], sampling["stride"], sampling["start"])
            except InputError as exc:
                skipped.append({"file": str(path), "reason": exc.message})
                continue
            names.append(str(path))
            scores.append(flicker_score(frames))
        if ctx.options.strict and skipped:
            raise InputError(f"{len(skipped)} video(s) could not be used, e.g. {skipped[0]['file']}: "
                             f"{skipped[0]['reason']}", "fix or remove them, or run without --strict")
        if not scores:
            raise InputError(f"no usable video among {len(files)} ({len(skipped)} skipped)",
                             "check the videos' length against --frames")
        return TaskOutput(metrics={"temporal_flickering": float(np.mean(scores))},
                          details={"sampling": sampling, "note": "VBench's official protocol first drops static "
                                   "videos with RAFT; this native score does not (it scores every video)"},
                          per_sample={"name": names, "temporal_flickering": scores}, skipped_samples=skipped,
                          num_samples=len(scores), protocol="vbench-temporal-flickering-native")


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


register_suite("video", ["fvd", "temporal-flickering", "video-speed"],
               "Video: FVD (fvd2048_16f protocol), VBench temporal flickering (native), host generation speed; "
               "add vbench for all 16 dimensions in its own environment",
               options={"video_ref": "model:demo-video", "num_samples": 8})

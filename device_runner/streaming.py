"""Streaming video timing: time to first frame, sustained FPS, per-chunk latency, deadline misses and jitter of a
generator that yields chunks of frames, measured on the host (`time_stream`) with the same definitions the
benchmark app uses on the phone (`StreamBenchmark.swift`; `stream_stats` is the one reference of them).

The streaming protocol (`StreamSource`): an object with `chunk_frames` (frames per chunk, fixed), `target_fps` (the
frame rate it is meant to play at) and `stream_video(prompt, seed)`, an iterator of chunks, each an array of
`chunk_frames` frames (C, H, W, 3) uint8. Two built in (`resolve_stream`):

* `demo-video[:SIZE]`: the procedural demo video generator's streaming mode (`DemoVideoGenerator.stream_video`);
* `demo`: the device pipeline of a chunk denoiser and a decoder (`StreamPipeline`): the text encoder once per
  stream, then per chunk `steps` calls of the DiT-like denoiser on a chunk of `chunk_frames` latents and one
  decoder call, the pieces the phone runs as Core ML packages;
* `python:package.module:factory` returning either.

Definitions (all times in ms from the stream's start t0, the moment `stream_video` is called; a_k is the arrival of
chunk k, the moment the consumer holds its frames; C = chunk_frames, F = target_fps, P = 1000·C/F the play time of
one chunk; N chunks measured):

* time to first frame: TTFF = a_0 (the first frame arrives with the first chunk; it includes the stream's start-up,
  e.g. the text encoder);
* chunk latency l_k = a_k − a_(k−1), with a_(−1) = 0 (so l_0 = TTFF); `chunk_latencies_ms` holds all N;
* p50/p90/p99 (numpy's linear interpolation) and jitter = p99 − p50 over the steady-state chunks l_1 … l_(N−1)
  (over l_0 alone when N = 1);
* sustained FPS = C·(N−1)·1000 / (a_(N−1) − a_0): the frames after the first chunk over the time they took
  (C·1000 / a_0 when N = 1);
* playback starts when the first chunk arrives and plays at F frames per second. Chunk k ≥ 1 is due when the frames
  before it have played: deadline d_k = s_(k−1) + P, where s_0 = a_0 and s_k is when chunk k starts playing. It
  *misses* when a_k > d_k (by more than 1 ns: float rounding never decides); playback then stalls until it arrives
  (s_k = a_k, the stall a_k − d_k is added to `stall_ms`), otherwise s_k = d_k. Deadline-miss rate =
  misses / (N − 1) (0 when N = 1). The generator is never throttled: frames made early wait in the player's buffer
  (an unbounded one);
* the run: `warmup_chunks` chunks of an untimed stream first (same prompt and seed, then closed), then one measured
  stream until a chunk arrives at or after `duration_s` (at least two chunks) or `max_chunks` have arrived; the
  record's `duration_s` is the measured stream's wall time a_(N−1). A stream stops at `MAX_CHUNKS` chunks in any
  case (the record keeps every chunk's latency).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np

from evalsuite.device.stream_records import StreamRecord
from evalsuite.errors import InputError
from evalsuite.pyspec import load_object

DEFAULT_PROMPT = "a red circle moving over a blue background"
TIE_MS = 1e-6  # an arrival within 1 ns of its deadline is on time (float rounding never decides a miss)
MAX_CHUNKS = 20_000  # a stream faster than this many chunks per --duration stops here (the record keeps them all)


@runtime_checkable
class StreamSource(Protocol):
    """A streaming video generator: `stream_video(prompt, seed)` yields chunks of `chunk_frames` frames."""

    chunk_frames: int
    target_fps: float

    def stream_video(self, prompt: str, seed: int) -> Iterator[Any]: ...


# ------------------------------------------------------------------------------------------------ definitions

def stream_stats(arrivals_ms: list[float], chunk_frames: int, target_fps: float) -> dict:
    """Every derived measurement of one stream from its chunk arrival times (ms since the stream's start, in
    order): ttff_ms, chunk_latencies_ms, p50_ms, p90_ms, p99_ms, jitter_ms, sustained_fps, deadline_misses,
    deadline_miss_rate, stall_ms, duration_s, chunks. See the module docstring for the definitions."""
    a = np.asarray(arrivals_ms, dtype=np.float64)
    if a.ndim != 1 or len(a) == 0 or not np.isfinite(a).all() or a[0] <= 0 or (np.diff(a) <= 0).any():
        raise InputError(f"unusable chunk arrival times ({len(a)} values): they must be finite, > 0 and strictly "
                         "increasing", "record each chunk's arrival in ms since the stream started")
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise InputError(f"chunk_frames is {chunk_frames!r}", "a chunk holds one or more frames")
    if isinstance(target_fps, bool) or not np.isfinite(target_fps) or target_fps <= 0:
        raise InputError(f"target_fps is {target_fps!r}", "give the frame rate the stream plays at, > 0")
    lat = np.diff(a, prepend=0.0)
    steady = lat[1:] if len(lat) > 1 else lat
    p50, p90, p99 = (float(v) for v in np.percentile(steady, [50, 90, 99]))
    n = len(a)
    fps = chunk_frames * (n - 1) * 1000.0 / (a[-1] - a[0]) if n > 1 else chunk_frames * 1000.0 / a[0]
    play_ms = 1000.0 * chunk_frames / target_fps
    start, misses, stall = a[0], 0, 0.0
    for k in range(1, n):
        due = start + play_ms
        if a[k] > due + TIE_MS:
            misses, stall, start = misses + 1, stall + (a[k] - due), a[k]
        else:
            start = due
    return {"ttff_ms": float(a[0]), "chunk_latencies_ms": lat.tolist(), "p50_ms": p50, "p90_ms": p90,
            "p99_ms": p99, "jitter_ms": p99 - p50, "sustained_fps": float(fps), "deadline_misses": misses,
            "deadline_miss_rate": misses / (n - 1) if n > 1 else 0.0, "stall_ms": float(stall),
            "duration_s": float(a[-1]) / 1000.0, "chunks": n}


# ------------------------------------------------------------------------------------------------ measurement

def measure_arrivals(source: StreamSource, prompt: str, seed: int, *, duration_s: float, max_chunks: int | None,
                     warmup_chunks: int, sync: Any = None) -> list[float]:
    """Chunk arrival times (ms since `stream_video` was called) of one measured stream, after `warmup_chunks`
    chunks of an untimed one. `sync()` (e.g. torch.cuda.synchronize) runs before each arrival is read."""
    if duration_s <= 0 and not max_chunks:
        raise InputError("neither a duration nor a chunk count bounds the stream", "pass --duration or --chunks")
    if warmup_chunks:
        warm = iter(source.stream_video(prompt, seed))
        for _ in range(warmup_chunks):
            _check_chunk(next(warm, None), source, "warm-up")
        _close(warm)
    arrivals: list[float] = []
    t0 = time.perf_counter()
    chunks = iter(source.stream_video(prompt, seed))
    try:
        while True:
            chunk = next(chunks, None)
            if sync is not None:
                sync()
            now = (time.perf_counter() - t0) * 1000.0
            if chunk is None:
                if len(arrivals) < 1:
                    raise InputError(f"{type(source).__name__}.stream_video yielded no chunk",
                                     "yield chunks of chunk_frames frames until the consumer stops")
                break  # a finite stream ended early: what arrived is measured
            _check_chunk(chunk, source, f"chunk {len(arrivals)}")
            arrivals.append(max(now, arrivals[-1] + 1e-6) if arrivals else max(now, 1e-6))
            if len(arrivals) >= (max_chunks or MAX_CHUNKS):
                break
            if duration_s > 0 and len(arrivals) >= 2 and now >= duration_s * 1000:
                break
    finally:
        _close(chunks)
    return arrivals


def _check_chunk(chunk: Any, source: Any, what: str) -> None:
    if chunk is None:
        raise InputError(f"{type(source).__name__}.stream_video ended during the {what}",
                         "a stream yields chunks until the consumer stops (or lower --warmup-chunks)")
    frames = len(chunk) if hasattr(chunk, "__len__") else None
    if frames != source.chunk_frames:
        raise InputError(f"{what} of {type(source).__name__} holds {frames} frames, not chunk_frames="
                         f"{source.chunk_frames}", "yield chunks of exactly chunk_frames frames")


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if callable(close):
        close()


def time_stream(source: StreamSource, *, model: str, variant: str = "fp32", prompt: str = DEFAULT_PROMPT,
                seed: int = 0, duration_s: float = 10.0, max_chunks: int | None = None, warmup_chunks: int = 2,
                target_fps: float | None = None, device: str = "cpu", release: str = "unreleased",
                git_sha: str = "", variant_id: str | None = None, notes: str = "") -> StreamRecord:
    """Measure one stream of `source` on this host and return its `video-stream` record (not stored)."""
    import torch

    from evalsuite.provenance import environment

    fps = float(target_fps or getattr(source, "target_fps", 0) or 0)
    if fps <= 0:
        raise InputError(f"{model} declares no target FPS", "pass --target-fps")
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    with torch.inference_mode():
        arrivals = measure_arrivals(source, prompt, seed, duration_s=duration_s, max_chunks=max_chunks,
                                    warmup_chunks=warmup_chunks, sync=sync)
    env = environment(device)
    capped = len(arrivals) >= MAX_CHUNKS and not max_chunks
    steps = getattr(source, "steps", None)
    extra = [f"requested {duration_s:g} s" + (f" or {max_chunks} chunks" if max_chunks else ""),
             f"stopped at the {MAX_CHUNKS}-chunk cap" if capped else "",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads", notes]
    return StreamRecord.from_arrivals(
        arrivals, chunk_frames=int(source.chunk_frames), target_fps=fps, model=model, variant=variant,
        backend="host", device_model=env.get("gpu") or env["cpu"], compute_unit=device,
        os_version=platform.platform(), warmup_chunks=warmup_chunks, release=release, git_sha=git_sha,
        steps=steps if isinstance(steps, int) else None,
        variant_id=variant_id, notes="; ".join(n for n in extra if n))


# ------------------------------------------------------------------------------------------------ sources

@dataclass
class StreamPipeline:
    """A device streaming pipeline: per chunk `steps` denoiser calls on a batch of `chunk_frames` latents, then one
    decoder call (frames out); the text encoder once per stream. Parts are `evalsuite.device.models.DeviceModel`s
    whose `module(*inputs)` the stream calls; inputs are the parts' example inputs at batch `chunk_frames` where
    the module takes a batch (`example_inputs(batch)`), else as given."""

    name: str
    denoiser: Any
    decoder: Any
    text_encoder: Any = None
    chunk_frames: int = 4
    steps: int = 2
    target_fps: float = 10.0
    device: str = "cpu"

    def _inputs(self, part: Any, batch: int) -> list:
        import torch

        module = part.module
        try:
            inputs = module.example_inputs(batch) if hasattr(module, "example_inputs") else part.example_inputs
        except TypeError:
            inputs = part.example_inputs
        return [x.to(self.device) if isinstance(x, torch.Tensor) else x for x in inputs]

    def stream_video(self, prompt: str, seed: int) -> Iterator[np.ndarray]:
        """Chunks of `chunk_frames` uint8 frames (C, H, W, 3), forever. The latents are the parts' fixed example
        inputs: latency does not depend on the values."""
        import torch

        modules = {name: part.module.to(self.device).eval() for name, part in
                   (("denoiser", self.denoiser), ("decoder", self.decoder), ("text_encoder", self.text_encoder))
                   if part is not None}
        den_in = self._inputs(self.denoiser, self.chunk_frames)
        dec_in = self._inputs(self.decoder, self.chunk_frames)
        if "text_encoder" in modules:
            modules["text_encoder"](*self._inputs(self.text_encoder, 1))
        while True:
            for _ in range(self.steps):
                modules["denoiser"](*den_in)
            frames = modules["decoder"](*dec_in)
            if isinstance(frames, torch.Tensor) and frames.ndim == 4:
                frames = ((frames.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(0, 2, 3, 1)
                frames = frames.cpu().numpy()
            yield frames


def demo_pipeline(chunk_frames: int = 4, steps: int = 2, target_fps: float = 10.0,
                  device: str = "cpu") -> StreamPipeline:
    """The built-in `demo` streaming pipeline: DemoTextEncoder once, DemoDiT × steps and DemoDecoder per chunk."""
    from evalsuite.device.models import resolve_pipeline

    pipe = resolve_pipeline("demo")
    return StreamPipeline("demo", pipe.denoiser, pipe.decoder, pipe.text_encoder, chunk_frames=chunk_frames,
                          steps=steps, target_fps=target_fps, device=device)


def resolve_stream(spec: str, *, chunk_frames: int | None = None, steps: int | None = None,
                   target_fps: float | None = None, device: str = "cpu") -> StreamSource:
    """`demo-video[:SIZE]`, `demo` or `python:module:factory` -> a StreamSource; `chunk_frames`, `steps` and
    `target_fps` override the source's own where it has them."""
    if spec == "demo":
        return demo_pipeline(chunk_frames or 4, steps or 2, target_fps or 10.0, device)
    if spec == "demo-video" or spec.startswith("demo-video:"):
        from evalsuite.models.demo_video import DemoVideoGenerator

        arg = spec.partition(":")[2]
        if arg and not arg.isdigit():
            raise InputError(f"demo-video size {arg!r} is not a number", "write demo-video or demo-video:SIZE")
        gen = DemoVideoGenerator(int(arg) if arg else 64)
        if chunk_frames:
            gen.chunk_frames = chunk_frames
        if target_fps:
            gen.target_fps = target_fps
        return gen
    if spec.startswith("python:"):
        obj = load_object(spec[len("python:"):], "stream source")
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "stream_video")):
            obj = obj()  # a class or a factory function
        if not isinstance(obj, StreamSource):
            raise InputError(f"{spec} returned {type(obj).__name__}, not a stream source",
                             "return an object with chunk_frames, target_fps and stream_video(prompt, seed)")
        for name, value in (("chunk_frames", chunk_frames), ("steps", steps), ("target_fps", target_fps)):
            if value and hasattr(obj, name):
                setattr(obj, name, value)
        if isinstance(obj, StreamPipeline):
            obj.device = device
        return obj
    raise InputError(f"unknown stream source '{spec}'", "use demo, demo-video[:SIZE] or python:package.module:factory")

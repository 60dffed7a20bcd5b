"""Video reading and writing through PyAV (which ships FFmpeg); frame sampling is explicit and recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalsuite.errors import InputError
from evalsuite.fsutil import is_temp_file

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".gif")


def read_frames(path: str | Path, num_frames: int, stride: int = 1, start: int = 0) -> np.ndarray:
    """Frames start, start+stride, ... (num_frames of them) as (T, H, W, 3) uint8; a short or unreadable video
    raises InputError naming the file."""
    import av

    path = Path(path)
    wanted = set(range(start, start + stride * num_frames, stride))
    last = start + stride * (num_frames - 1)
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    frames.append(frame.to_ndarray(format="rgb24"))
                if index >= last:
                    break
    except (av.error.FFmpegError, IndexError, OSError, ValueError) as exc:
        raise InputError(f"cannot decode video {path}: {exc}", "re-encode or remove this file") from exc
    if len(frames) < num_frames:
        raise InputError(f"video {path} has fewer than {last + 1} frames (needed {num_frames} at stride {stride} "
                         f"from frame {start}; got {len(frames)})", "pass fewer --frames, or remove the video")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise InputError(f"video {path} changes resolution between frames {sorted(shapes)}", "re-encode it")
    return np.stack(frames)


def read_all_frames(path: str | Path) -> np.ndarray:
    """Every frame of a video, in order, as (T, H, W, 3) uint8 (what VBench's readers take); an unreadable or empty
    video, or one that changes resolution, raises InputError naming the file."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    except (av.error.FFmpegError, IndexError, OSError, ValueError) as exc:
        raise InputError(f"cannot decode video {path}: {exc}", "re-encode or remove this file") from exc
    if not frames:
        raise InputError(f"video {path} has no frames", "re-encode or remove this file")
    if len({f.shape for f in frames}) != 1:
        raise InputError(f"video {path} changes resolution between frames", "re-encode it")
    return np.stack(frames)


def write_video(path: str | Path, frames: np.ndarray, fps: int = 8, lossless: bool = False) -> None:
    """Write (T, H, W, 3) uint8 frames as an H.264 MP4: yuv420p (even sizes) by default, or lossless RGB
    (libx264rgb, qp 0) so decoded frames equal the written ones exactly (what the sample store uses)."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise InputError(f"cannot write video {path}: frames must be (T, H, W, 3) uint8 with T > 0, got "
                         f"{frames.shape} {frames.dtype}", "return uint8 RGB frames from the generator")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264rgb" if lossless else "libx264", rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "rgb24" if lossless else "yuv420p"
        if lossless:
            stream.options = {"qp": "0"}
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def probe(path: str | Path) -> dict:
    """Frame count (decoded), fps, width and height of a video; unreadable files raise InputError."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            count = sum(1 for _ in container.decode(stream))
            width, height = stream.codec_context.width, stream.codec_context.height
    except (av.error.FFmpegError, IndexError, OSError, ValueError) as exc:
        raise InputError(f"cannot decode video {path}: {exc}", "re-encode or remove this file") from exc
    if count == 0:
        raise InputError(f"video {path} has no frames", "re-encode or remove this file")
    return {"frames": count, "fps": fps, "width": width, "height": height}


def list_videos(folder: str | Path) -> list[Path]:
    """Video files in `folder` (recursively), sorted; a missing or empty folder is an error naming it."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"video folder {root} does not exist", "pass an existing folder of videos")
    files = sorted(p for p in root.rglob("*")  # never a killed writer's half-written temporary file
                   if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not is_temp_file(p))
    if not files:
        raise InputError(f"video folder {root} holds no videos ({', '.join(VIDEO_EXTENSIONS)})",
                         "point at the folder that holds the generated videos")
    return files


def frame_rate(path: str | Path) -> float | None:
    """The container's average frame rate from the header (no decoding); None when unreadable or unknown."""
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
    except (av.error.FFmpegError, IndexError, OSError, ValueError):
        return None


def check_one_frame_rate(files: list[Path]) -> float | None:
    """Videos scored together must share a frame rate (temporal metrics depend on it); mixed rates are an error
    naming an example of each. Unreadable files are left to the per-video counted skips."""
    rates: dict[float, Path] = {}
    for path in files:
        rate = frame_rate(path)
        if rate is not None:
            rates.setdefault(round(rate, 2), path)
    if len(rates) > 1:
        examples = ", ".join(f"{p.name} at {r:g} fps" for r, p in sorted(rates.items()))
        raise InputError(f"videos with different frame rates cannot be scored together: {examples}",
                         "re-encode them to one frame rate (e.g. ffmpeg -r 8), or score each rate separately")
    return next(iter(rates), None)

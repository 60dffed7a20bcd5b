"""Video reading and writing through PyAV (which ships FFmpeg); frame sampling is explicit and recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalsuite.errors import InputError

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


def write_video(path: str | Path, frames: np.ndarray, fps: int = 8) -> None:
    """Write (T, H, W, 3) uint8 frames as an H.264 MP4 (yuv420p; even sizes)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

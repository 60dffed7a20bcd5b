"""What the autoencoder tasks share: their data options, the runner that feeds prepared data through an autoencoder
(checking shapes and finiteness, timing each call), and the peak-memory probe."""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from evalsuite.errors import InputError
from evalsuite.tasks.base import Task


@dataclass(frozen=True)
class AEDataOptions:
    """The data an autoencoder task reconstructs (shared by the three tasks: one preparation serves them all)."""

    data: str | None = field(default=None, metadata={
        "help": "skimage (scikit-image's photographs, the default) | folder:PATH of images or videos"})
    resolution: int = field(default=256, metadata={"help": "square crop size (shorter side resized, centre crop)"})
    frames: int = field(default=16, metadata={"help": "video data: frames per clip"})

    def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
        if self.frames < 1:
            raise InputError(f"frames is {self.frames}", "pass -o frames=1 or more")


class AutoencoderTask(Task):
    """What the autoencoder tasks share: their data options, and the prepared data their results record."""

    family = "autoencoder"
    sample_kind = "autoencoder"
    Options = AEDataOptions

    def prepared_data(self, ctx: Any) -> Any:
        """The data this task's options prepared in the run (recorded in the result's provenance), or None."""
        return ctx.prepared_ae_data(self.options.data, self.options.resolution, self.options.frames)


@dataclass
class AEBatch:
    """One batch of data in the AE's layout: x in [-1, 1], (B, 3, H, W) or (B, 3, T, H, W)."""

    indices: list[int]
    x: torch.Tensor


class AERunner:
    """Feeds prepared data through an autoencoder, checking shapes and finiteness, timing each call."""

    def __init__(self, ctx: Any, options: AEDataOptions):
        self.ctx = ctx
        self.source = ctx.autoencoder_source()
        self.ae = self.source.autoencoder
        self.data = ctx.ae_data(options.data, options.resolution, options.frames)
        self.device = str(getattr(self.ae, "device", ctx.device))
        self.video_ae = getattr(self.ae, "kind", "image") == "video"

    def indices(self) -> list[int]:
        return list(range(len(self.data.files)))

    def batches(self, indices: Sequence[int] | None = None) -> Iterator[AEBatch]:
        """The data items `indices` (default: all) in batches (one clip at a time for video)."""
        indices = self.indices() if indices is None else list(indices)
        size = 1 if self.data.kind == "video" else max(1, self.ctx.options.batch_size)
        for start in range(0, len(indices), size):
            idx = indices[start:start + size]
            arr = np.stack([self.data.load(i) for i in idx])  # (B, H, W, 3) or (B, T, H, W, 3) uint8
            x = torch.from_numpy(arr).float() / 127.5 - 1.0
            x = x.permute(0, 4, 1, 2, 3) if x.ndim == 5 else x.permute(0, 3, 1, 2)
            yield AEBatch(idx, x.contiguous().to(self.device))

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """Video (B, 3, T, H, W) -> frames (B*T, 3, H, W) for an image AE."""
        b, c, t, h, w = x.shape
        return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if x.ndim == 5 and not self.video_ae:
                return self.ae.encode(self._frames(x))
            return self.ae.encode(x)

    def decode(self, z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Decode and return in the layout of `like`; a changed shape is an error naming the fix."""
        with torch.inference_mode():
            out = self.ae.decode(z)
        if like.ndim == 5 and not self.video_ae:
            b, c, t, h, w = like.shape
            if out.shape == (b * t, c, h, w):
                out = out.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)
        if tuple(out.shape) != tuple(like.shape):
            raise InputError(
                f"autoencoder {self.source.spec} decoded shape {tuple(out.shape)} from input {tuple(like.shape)}",
                "decode(encode(x)) must return x's shape: pick a --resolution divisible by the AE's downsampling "
                "factor (and frame count by its temporal factor)")
        return out

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


def finite_rows(t: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)


def finite_items(batch: AEBatch, z: torch.Tensor, names: list[str], skipped: list[dict]):
    """The batch's items whose latents are finite, as (indices, x, z); the others are counted in `skipped`.
    z's rows are per item, or per frame of each item (an image AE on video)."""
    ok = finite_rows(z.reshape(len(batch.indices), -1))
    skipped.extend({"file": names[i], "reason": "NaN or inf in the latent"}
                   for row, i in enumerate(batch.indices) if not ok[row])
    if bool(ok.all()):
        return batch.indices, batch.x, z
    keep = ok.nonzero().flatten()
    return ([batch.indices[int(r)] for r in keep], batch.x[keep],
            z.reshape(len(batch.indices), -1, *z.shape[1:])[keep].flatten(0, 1))


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _ru_maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


class PeakMemory:
    """Peak memory growth (MiB) while the `with` block runs: what the autoencoder's encode/decode allocate above what
    was held on entry (its weights and the input batch are not counted).
    CUDA: the caching allocator's peak (torch.cuda.max_memory_allocated after reset_peak_memory_stats) minus the
    memory allocated on entry. Linux CPU: the kernel's peak RSS (VmHWM, reset by writing 5 to /proc/self/clear_refs)
    minus VmRSS on entry; memory the C allocator already holds is reused without growth, so this is a lower bound.
    Elsewhere: growth of the process's lifetime peak RSS (ru_maxrss), 0 unless the block sets a new peak."""

    def __init__(self, device: str):
        self.device = device
        self.mib = 0.0
        self.method = ""
        self._base: float = 0  # bytes (CUDA), KiB (VmRSS) or MiB (ru_maxrss) on entry

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda: max_memory_allocated after reset_peak_memory_stats, minus allocated on entry"
            return self
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._base = _proc_status_kib("VmRSS")
            self.method = "cpu: peak RSS (VmHWM reset via /proc/self/clear_refs) minus RSS on entry"
        except OSError:
            self._base = _ru_maxrss_mib()
            self.method = "cpu: growth of the process peak RSS (ru_maxrss; 0 unless a new process peak)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self.method.startswith("cpu: peak RSS"):
            self.mib = (_proc_status_kib("VmHWM") - self._base) / 1024
        else:
            self.mib = _ru_maxrss_mib() - self._base
        self.mib = max(0.0, self.mib)


def to_01(x: torch.Tensor) -> torch.Tensor:
    return ((x.double() + 1.0) / 2.0).clamp(0.0, 1.0)


def frames01(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] tensor -> [0, 1] frames: video (B, 3, T, H, W) becomes (B*T, 3, H, W)."""
    if x.ndim == 5:
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    return to_01(x)

"""Peak memory of this process while predicting, for the host timing backends (the iPhone app reports its own
`phys_footprint`). CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats` (the caching
allocator's peak of live tensors on that device). CPU on Linux: the peak resident set size `VmHWM` of
/proc/self/status after resetting it (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0), so the number is the
process's peak during the measured calls; where the reset is impossible (macOS, old kernels) the process lifetime
peak (`resource.getrusage(RUSAGE_SELF).ru_maxrss`), which the method string says."""

from __future__ import annotations

import re
import sys
from pathlib import Path

MIB = 1024 * 1024


def _vm_hwm_kib() -> int | None:
    try:
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _maxrss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / MIB if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


class PeakMemory:
    """`start()` before the calls to measure, `peak_mb()` after; `method` says what was measured."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.method = ""

    def start(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "torch.cuda.max_memory_allocated"
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "peak RSS (VmHWM, reset before the first prediction)"
        except OSError:
            self.method = "peak RSS of the process lifetime (ru_maxrss; no reset here)"

    def peak_mb(self) -> float | None:
        if self.device.startswith("cuda"):
            import torch

            return torch.cuda.max_memory_allocated(self.device) / MIB
        if self.method.startswith("peak RSS (VmHWM"):
            kib = _vm_hwm_kib()
            if kib is not None:
                return kib / 1024
        return _maxrss_mib()

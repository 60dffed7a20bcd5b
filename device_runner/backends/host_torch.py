"""`host-torch`: eager PyTorch on this machine (CPU or CUDA), under inference_mode; available everywhere."""

from __future__ import annotations

import platform
import time

import torch

from evalsuite.device.backends import DeviceError, TimingSettings, TimingTarget, register
from evalsuite.device.host_memory import PeakMemory
from evalsuite.device.records import TimingRecord
from evalsuite.device.sustained import timed_loop
from evalsuite.provenance import environment


class HostTorchBackend:
    name = "host-torch"

    def check_available(self) -> None:
        return None

    @staticmethod
    def _sync(device: str) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def measure(self, fn, settings: TimingSettings) -> tuple[float, list[float]]:
        """(first call ms, steady-state ms per iteration after `warmup` more calls)."""
        first, latencies, _ = self.measure_sustained(fn, settings)
        return first, latencies

    def measure_sustained(self, fn, settings: TimingSettings) -> tuple[float, list[float], dict]:
        """(first call ms, steady-state latencies, extra record fields): `settings.extra["duration_s"]` makes it a
        sustained run with windows (`evalsuite.device.sustained`); peak_memory_mb covers the timed calls."""
        duration_s = settings.extra.get("duration_s")
        memory = PeakMemory(settings.device)
        with torch.inference_mode():
            t0 = time.perf_counter()
            fn()
            self._sync(settings.device)
            first = (time.perf_counter() - t0) * 1000
            for _ in range(settings.warmup):
                fn()
            self._sync(settings.device)
            memory.start()
            latencies, windows, elapsed = timed_loop(fn, settings.iterations, duration_s,
                                                     settings.extra.get("window_s"),
                                                     sync=lambda: self._sync(settings.device))
        extra = {"peak_memory_mb": memory.peak_mb(), "windows": windows, "duration_s": elapsed,
                 "memory_method": memory.method}
        return first, latencies, extra

    def time(self, target: TimingTarget, settings: TimingSettings) -> list[TimingRecord]:
        if target.module is None:
            raise DeviceError(f"host-torch times torch modules; {target.model} has none",
                              "pass a torch model spec (demo or python:...)")
        device = settings.device
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise DeviceError("host-torch on cuda was asked for, but no CUDA device is available", "use --device cpu")
        t0 = time.perf_counter()
        module = target.module.to(device).eval()
        inputs = [x.to(device) if isinstance(x, torch.Tensor) else x for x in target.example_inputs]
        self._sync(device)
        load_ms = (time.perf_counter() - t0) * 1000
        first, latencies, extra = self.measure_sustained(lambda: module(*inputs), settings)
        env = environment(device)
        return [TimingRecord(
            model=target.model, model_hash=target.model_hash, variant=target.variant, backend=self.name,
            compute_unit=device, device_model=env.get("gpu") or env["cpu"], os_version=platform.platform(),
            thermal_state="unknown", warmup=settings.warmup, iterations=len(latencies), latencies_ms=latencies,
            load_ms=load_ms, first_predict_ms=first, release=settings.release, git_sha=settings.git_sha,
            peak_memory_mb=extra["peak_memory_mb"], windows=extra["windows"], duration_s=extra["duration_s"],
            notes=f"torch {torch.__version__}, {torch.get_num_threads()} threads; peak memory: "
                  f"{extra['memory_method']}")]


register("host-torch", HostTorchBackend)

"""`coreml-mac`: coremltools `MLModel.predict` on a Mac, once per compute unit. Prediction is macOS-only in
coremltools, so elsewhere this backend says so instead of failing obscurely."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from functools import partial

import numpy as np

from evalsuite.device.backends import DeviceError, TimingSettings, TimingTarget, register
from evalsuite.device.host_memory import PeakMemory
from evalsuite.device.records import TimingRecord
from evalsuite.device.sustained import timed_loop

COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")


def _mac_model() -> str:
    try:
        return subprocess.run(["sysctl", "-n", "hw.model"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return platform.machine()


def _mac_thermal() -> str:
    """macOS's thermal pressure level (`pmset -g therm` reports only warnings): unknown unless Foundation's
    ProcessInfo is reachable through PyObjC."""
    try:
        from Foundation import NSProcessInfo  # type: ignore[import-not-found]
    except ImportError:
        return "unknown"
    level = int(NSProcessInfo.processInfo().thermalState())
    return ("nominal", "fair", "serious", "critical")[level] if 0 <= level <= 3 else "unknown"


def _worst(states: list[str]) -> str:
    order = ("unknown", "nominal", "fair", "serious", "critical")
    return max(states, key=lambda s: order.index(s) if s in order else 0) if states else "unknown"


class CoreMLMacBackend:
    name = "coreml-mac"

    def check_available(self) -> None:
        if sys.platform != "darwin":
            raise DeviceError(f"coreml-mac runs Core ML predictions, which only macOS can do (this is {sys.platform})",
                              "run it on a Mac, use --backend iphone with a connected iPhone, or --backend "
                              "host-torch here")

    def time(self, target: TimingTarget, settings: TimingSettings) -> list[TimingRecord]:
        self.check_available()
        import coremltools as ct

        if target.package is None:
            raise DeviceError(f"coreml-mac needs a built .mlpackage for {target.model}",
                              "run `evalsuite device build` first and pass --package PATH")
        units = COMPUTE_UNITS if settings.compute_unit == "each" else (settings.compute_unit,)
        records = []
        duration_s = settings.extra.get("duration_s")
        for unit in units:
            t0 = time.perf_counter()
            model = ct.models.MLModel(str(target.package), compute_units=getattr(ct.ComputeUnit, unit))
            load_ms = (time.perf_counter() - t0) * 1000
            del model
            t0 = time.perf_counter()  # a second load: Core ML's cache of the device-specialised model is warm
            model = ct.models.MLModel(str(target.package), compute_units=getattr(ct.ComputeUnit, unit))
            warm_load_ms = (time.perf_counter() - t0) * 1000
            inputs = {}
            for f in model.get_spec().description.input:
                shape = tuple(f.type.multiArrayType.shape)
                inputs[f.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            t0 = time.perf_counter()
            model.predict(inputs)
            first = (time.perf_counter() - t0) * 1000
            for _ in range(settings.warmup):
                model.predict(inputs)
            memory = PeakMemory("cpu")
            memory.start()
            latencies, windows, elapsed = timed_loop(partial(model.predict, inputs), settings.iterations, duration_s,
                                                     settings.extra.get("window_s"), thermal=_mac_thermal)
            records.append(TimingRecord(
                model=target.model, model_hash=target.model_hash, variant=target.variant, backend=self.name,
                compute_unit=unit, device_model=_mac_model(), os_version=f"macOS {platform.mac_ver()[0]}",
                warmup=settings.warmup, iterations=len(latencies), latencies_ms=latencies, load_ms=load_ms,
                warm_load_ms=warm_load_ms, first_predict_ms=first, release=settings.release,
                git_sha=settings.git_sha, peak_memory_mb=memory.peak_mb(), windows=windows, duration_s=elapsed,
                thermal_state=_worst([w["thermal_state"] for w in windows or []] + [_mac_thermal()]),
                notes=f"peak memory: {memory.method}"))
        return records


register("coreml-mac", CoreMLMacBackend)

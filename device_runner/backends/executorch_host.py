"""`executorch-host`: an ExecuTorch `.pte` (XNNPACK delegate, built by `evalsuite device build --runtime
executorch`) run on this machine's CPU through the ExecuTorch runtime's Python bindings — the same runtime and
delegate an Android app ships, so its numbers sit beside an Android phone's (ExecuTorch's benchmark app, brought in
with `evalsuite device ingest`) for the same `.pte` and model hash.

Measured like ExecuTorch's benchmark app (ModelRunner): load = `load_program` + `load_method("forward")`; the first
`execute` is `first_predict_ms`; `warmup` more calls; then every one of `iterations` calls is timed. Inputs are the
model's example inputs when the caller has them, else drawn (seed 0) from the method's input metadata (the app
feeds all-ones tensors; latency does not depend on the values for these models). One record per `.pte`: backend
`executorch-host`, compute_unit `xnnpack`, device_model the CPU model, variant and model hash from the build.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from evalsuite.device import executorch_build
from evalsuite.device.backends import DeviceError, TimingSettings, TimingTarget, register
from evalsuite.device.host_memory import PeakMemory
from evalsuite.device.records import TimingRecord
from evalsuite.device.sustained import timed_loop
from evalsuite.errors import InputError
from evalsuite.provenance import environment

# ExecuTorch's ScalarType codes (runtime/core/portable_type/scalar_type.h, the same numbering as c10::ScalarType)
_DTYPES = {0: torch.uint8, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.int64, 5: torch.float16,
           6: torch.float32, 7: torch.float64, 11: torch.bool, 15: torch.bfloat16}


def _inputs_from_meta(method, pte: Path) -> list[torch.Tensor]:
    """Seeded inputs shaped by the method's input metadata: floats standard normal, integers zeros."""
    meta = method.metadata
    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(meta.num_inputs()):
        tm = meta.input_tensor_meta(i)
        dtype = _DTYPES.get(int(tm.dtype()))
        if dtype is None:
            raise InputError(f"{pte}: input {i} has dtype {tm.dtype()}, which executorch-host cannot make up",
                             "time it through a model spec that has example inputs")
        shape = tuple(tm.sizes())
        out.append(torch.randn(shape, generator=gen).to(dtype) if dtype.is_floating_point
                   else torch.zeros(shape, dtype=dtype))
    return out


def _threads() -> int | None:
    try:
        from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count
    except ImportError:
        return None
    return int(_threadpool_get_thread_count())


class ExecuTorchHostBackend:
    name = "executorch-host"

    def check_available(self) -> None:
        executorch_build.require_executorch()
        from executorch.runtime import Runtime

        if not Runtime.get().backend_registry.is_available("XnnpackBackend"):
            raise DeviceError("this ExecuTorch runtime has no XNNPACK backend",
                              "install the executorch wheel from the registry (it includes XNNPACK)")

    def time(self, target: TimingTarget, settings: TimingSettings) -> list[TimingRecord]:
        self.check_available()
        from executorch.runtime import Runtime

        if target.package is None or Path(target.package).suffix != ".pte":
            raise InputError(f"executorch-host times .pte programs; {target.model} has none",
                             f"run `evalsuite device build {target.model} --runtime executorch` and pass "
                             f"--package FILE.pte or the builds folder")
        pte = Path(target.package)
        manifest = executorch_build.read_manifest(pte) or {}
        try:
            t0 = time.perf_counter()
            method = Runtime.get().load_program(pte).load_method("forward")
            load_ms = (time.perf_counter() - t0) * 1000
            if method is None:
                raise InputError(f"{pte} has no forward method", "rebuild it with `evalsuite device build "
                                                                 "--runtime executorch`")
            inputs = list(target.example_inputs) or _inputs_from_meta(method, pte)
            t0 = time.perf_counter()
            method.execute(inputs)
            first = (time.perf_counter() - t0) * 1000
            for _ in range(settings.warmup):
                method.execute(inputs)
            memory = PeakMemory("cpu")
            memory.start()
            latencies, windows, elapsed = timed_loop(lambda: method.execute(inputs), settings.iterations,
                                                     settings.extra.get("duration_s"), settings.extra.get("window_s"))
        except (RuntimeError, ValueError, TypeError) as exc:  # the runtime's load/execute errors
            first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
            raise DeviceError(f"the ExecuTorch runtime could not run {pte} ({type(exc).__name__}: {first_line})",
                              "rebuild it with `evalsuite device build --runtime executorch` using this executorch "
                              "version") from exc
        threads = _threads()
        notes = "; ".join(part for part in (
            f"ExecuTorch {manifest.get('executorch') or executorch_build.require_executorch()} runtime, XNNPACK "
            f"delegate, {threads if threads is not None else '?'} threadpool threads, Python bindings",
            f"{pte.name}", executorch_build.manifest_notes(manifest), f"peak memory: {memory.method}") if part)
        return [TimingRecord(
            model=target.model, model_hash=target.model_hash or executorch_build.sha256_file(pte),
            variant=target.variant, backend=self.name, compute_unit=executorch_build.DELEGATE,
            device_model=environment("cpu")["cpu"], os_version=platform.platform(), thermal_state="unknown",
            warmup=settings.warmup, iterations=len(latencies), latencies_ms=latencies, load_ms=load_ms,
            first_predict_ms=first, release=settings.release, git_sha=settings.git_sha, notes=notes,
            peak_memory_mb=memory.peak_mb(), windows=windows, duration_s=elapsed)]


register("executorch-host", ExecuTorchHostBackend)

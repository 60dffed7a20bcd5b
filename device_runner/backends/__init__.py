"""Timing backends behind one interface; every backend returns a `TimingRecord` (evalsuite.device.records).

* `host-torch`: eager PyTorch on this machine's CPU or GPU (everywhere; used by the tests);
* `coreml-mac`: coremltools `MLModel.predict` per compute unit (macOS only);
* `iphone`: a USB-attached iPhone through pymobiledevice3 and the benchmark app in `device_runner/ios/`.
* `executorch-host`: an ExecuTorch `.pte` (XNNPACK delegate) on this machine's CPU through ExecuTorch's Python
  bindings (`device build --runtime executorch`; needs `pip install 'evalsuite[executorch]'`).

`BACKENDS` (an `evalsuite.registry.Registry`) maps each name to a factory; third-party backends join through the
entry-point group `evalsuite.device_backends`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from evalsuite.errors import EvalsuiteError
from evalsuite.registry import Registry


class DeviceError(EvalsuiteError):
    """A device or backend that cannot time now: not connected, locked, wrong OS, app crash, time-out."""


@dataclass
class TimingTarget:
    """What to time: a Core ML package (for coreml-mac / iphone) and/or a torch module with example inputs."""

    model: str
    variant: str = "fp32"
    model_hash: str = ""
    package: Path | None = None
    module: Any = None
    example_inputs: tuple = ()


@dataclass
class TimingSettings:
    iterations: int = 50
    warmup: int = 5
    compute_unit: str = "ALL"
    release: str = "unreleased"
    git_sha: str = ""
    timeout_s: float = 600.0
    device: str = "cpu"  # host-torch: cpu or cuda
    extra: dict = field(default_factory=dict)


class TimingBackend(Protocol):
    name: str

    def check_available(self) -> object:
        """Raise DeviceError (with the fix) when this backend cannot run here and now (what it returns, if anything,
        is the backend's own: the iPhone backend returns the phone it found)."""

    def time(self, target: TimingTarget, settings: TimingSettings) -> list:
        """Time the target; one TimingRecord per compute unit measured."""


BACKENDS: Registry[Callable[[], TimingBackend]] = Registry(
    "timing backend",
    builtin_modules=("evalsuite.device.backends.host_torch", "evalsuite.device.backends.coreml_mac",
                     "evalsuite.device.backends.iphone", "evalsuite.device.backends.executorch_host"),
    # imported on the first lookup; each registers itself
    group="evalsuite.device_backends",
    fix="pass one to --backend",
)


def register(name: str, factory: Callable[[], TimingBackend], *, replace: bool = False) -> Callable[[], TimingBackend]:
    """Add a timing backend: `factory()` (e.g. the backend class) makes one. Plugins register through the
    entry-point group `evalsuite.device_backends` (`name = package.module:BackendClass`, or a module that calls
    this on import)."""
    return BACKENDS.register(name, factory, replace=replace)


def get(name: str) -> TimingBackend:
    """A new instance of the backend named `name`; an unknown name is UnknownNameError listing the known ones."""
    return BACKENDS.get(name)()

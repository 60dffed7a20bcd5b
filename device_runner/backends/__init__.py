"""Timing backends behind one interface; every backend returns a `TimingRecord` (evalsuite.device.records).

* `host-torch`: eager PyTorch on this machine's CPU or GPU (everywhere; used by the tests);
* `coreml-mac`: coremltools `MLModel.predict` per compute unit (macOS only);
* `iphone`: a USB-attached iPhone through pymobiledevice3 and the benchmark app in `device_runner/ios/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from evalsuite.errors import EvalsuiteError, UnknownNameError


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

    def check_available(self) -> None:
        """Raise DeviceError (with the fix) when this backend cannot run here and now."""

    def time(self, target: TimingTarget, settings: TimingSettings) -> list:
        """Time the target; one TimingRecord per compute unit measured."""


_BACKENDS: dict[str, Callable[[], TimingBackend]] = {}
_MODULES = {"host-torch": "host_torch", "coreml-mac": "coreml_mac", "iphone": "iphone"}  # imported on first use


def register(name: str, factory: Callable[[], TimingBackend]) -> None:
    _BACKENDS[name] = factory


def get(name: str) -> TimingBackend:
    import importlib

    if name not in _BACKENDS and name in _MODULES:
        importlib.import_module(f"evalsuite.device.backends.{_MODULES[name]}")  # registers itself
    if name not in _BACKENDS:
        raise UnknownNameError(f"unknown timing backend '{name}'",
                               f"use one of {', '.join(sorted(set(_MODULES) | set(_BACKENDS)))}")
    return _BACKENDS[name]()

"""`iphone`: a USB-attached iPhone, driven from this host (Linux or macOS) through pymobiledevice3, running the
benchmark app in `device_runner/ios/` (built and signed once on a Mac; see its README).

One timing run (`IPhoneBackend.time`):

1. check the phone: connected, unlocked, Developer Mode on (`check_available`);
2. install the app when an .ipa is given (`ipa=`, `settings.extra["ipa"]` or `$EVALSUITE_IOS_IPA`; otherwise the
   app must already be installed);
3. zip the `.mlpackage` folder (`protocol.zip_package`), *stored* (uncompressed: weights barely compress and the
   app's reader stays small), and push it as one file, `/Documents/<request_id>.mlpackage.zip`. One file rather
   than one push per file, because house_arrest pushes need existing parent folders and every push is a process
   start;
4. write and push `/Documents/<request_id>.request.json` (`evalsuite.device.protocol.make_request`);
5. launch the app with `--request /Documents/<request_id>.request.json`;
6. poll `pull` of `/Documents/<request_id>.result.json` every `poll_s` until `settings.timeout_s` (monotonic
   clock); on time-out, fetch the app's progress log and the syslog and raise DeviceError with their tail;
7. parse the result (`protocol.parse_result`): an error status or a crash marker becomes DeviceError with the log.
   The result carries cold start (compile, first load, warm load, first prediction), the app's peak
   `phys_footprint`, and for a sustained run (`settings.extra["duration_s"]`, `device time --duration`) the latency
   and thermal state per window.

The backend returns records and never stores them (the caller does), so a failure stores nothing.

Environment: `EVALSUITE_IOS_IPA` (the app to install), `EVALSUITE_IPHONE_UDID` (which phone, when several are
connected), `EVALSUITE_IPHONE_TUNNEL` (iOS 17+: passed as `--tunnel` to developer services; '' = any tunnel).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from evalsuite.device import protocol
from evalsuite.device.backends import DeviceError, TimingSettings, TimingTarget, register
from evalsuite.device.protocol import zip_package
from evalsuite.device.records import TimingRecord

DEFAULT_BUNDLE_ID = "org.evalsuite.bench"
APP_PROCESS = "EvalsuiteBench"
LOG_TAIL_LINES = 40
PIP_FIX = "pip install pymobiledevice3 (and, on Linux, run usbmuxd: apt install usbmuxd)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Transport(Protocol):
    """How the backend reaches the phone; `PyMobileDevice3Transport` is the real one, tests use a fake."""

    def devices(self) -> list[dict]:
        """Connected phones: {udid, product_type, os_version, name, locked, developer_mode} (None = unknown)."""

    def install(self, ipa: Path) -> None:
        """Install (or update) the app from an .ipa."""

    def push(self, bundle_id: str, local: Path, remote: str) -> None:
        """Copy a local file into the app's container (remote path like /Documents/x)."""

    def launch(self, bundle_id: str, args: list[str]) -> None:
        """Start the app (killing a running instance) with these launch arguments."""

    def pull(self, bundle_id: str, remote: str, local: Path) -> bool:
        """Copy a file out of the app's container; False when it does not exist (yet)."""

    def syslog(self, seconds: float) -> str:
        """The device log for about `seconds` from now."""


# ------------------------------------------------------------------------------------------------ pymobiledevice3

class PyMobileDevice3Transport:
    """Runs `python -m pymobiledevice3 ...` subprocesses (nothing is imported from it, so a missing install is a
    clear DeviceError, not an ImportError). `udid` (or `$EVALSUITE_IPHONE_UDID`) picks one phone among several;
    `tunnel` is passed as `--tunnel` to developer services (iOS 17+, with `pymobiledevice3 remote tunneld` or
    `lockdown start-tunnel` running; '' = any tunnel)."""

    def __init__(self, udid: str | None = None, python: str | None = None, tunnel: str | None = None,
                 command_timeout_s: float = 900.0):
        self.udid = udid or os.environ.get("EVALSUITE_IPHONE_UDID") or None
        self.python = python or sys.executable
        self.tunnel = tunnel if tunnel is not None else os.environ.get("EVALSUITE_IPHONE_TUNNEL")
        self.command_timeout_s = command_timeout_s

    # -- plumbing
    def _require_module(self) -> None:
        if self.python == sys.executable and importlib.util.find_spec("pymobiledevice3") is None:
            raise DeviceError(f"pymobiledevice3 is not installed for {self.python}, so no iPhone can be reached",
                              PIP_FIX)

    def _cmd(self, args: list[str], udid: bool = True, developer: bool = False) -> list[str]:
        cmd = [self.python, "-m", "pymobiledevice3", *args]
        if developer and self.tunnel is not None:
            cmd += ["--tunnel", self.tunnel or self.udid or ""]
        elif udid and self.udid:
            cmd += ["--udid", self.udid]
        return cmd

    def _run(self, args: list[str], *, udid: bool = True, developer: bool = False, check: bool = True,
             timeout: float | None = None) -> subprocess.CompletedProcess:
        self._require_module()
        cmd = self._cmd(args, udid, developer)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or self.command_timeout_s)
        except FileNotFoundError as exc:
            raise DeviceError(f"cannot run {self.python}: {exc}", PIP_FIX) from exc
        except subprocess.TimeoutExpired as exc:
            raise DeviceError(f"`{shlex.join(cmd[1:])}` did not finish in {exc.timeout:g} s",
                              "check the USB connection and that the phone is unlocked") from exc
        text = proc.stdout + proc.stderr
        if "No module named pymobiledevice3" in text:
            raise DeviceError(f"pymobiledevice3 is not installed for {self.python}", PIP_FIX)
        if check and proc.returncode != 0:
            raise DeviceError(f"`{shlex.join(cmd[1:])}` failed (exit {proc.returncode}): {_tail(text, 8)}",
                              _fix_for(text))
        return proc

    @staticmethod
    def _json(text: str, what: str) -> Any:
        text = _ANSI.sub("", text).strip()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeviceError(f"could not read the output of {what}: {_tail(text, 4)}",
                              "update pymobiledevice3 (pip install -U pymobiledevice3)") from exc

    # -- Transport
    def devices(self) -> list[dict]:
        listed = self._json(self._run(["usbmux", "list"], udid=False).stdout, "usbmux list")
        out = []
        for dev in listed if isinstance(listed, list) else []:
            udid = dev.get("Identifier") or dev.get("UniqueDeviceID") or dev.get("SerialNumber") or ""
            if self.udid and udid != self.udid:
                continue
            info = dict(dev)
            lockdown = self._run(["lockdown", "info", "--udid", udid], udid=False, check=False, timeout=60)
            if lockdown.returncode == 0:
                info.update(self._json(lockdown.stdout, "lockdown info"))
            else:
                # not paired yet: lockdown refuses until the phone trusts this host
                raise DeviceError(f"the iPhone {udid} does not answer lockdown: {_tail(lockdown.stderr, 4)}",
                                  "unlock the phone and tap 'Trust' on the 'Trust This Computer?' prompt; "
                                  "then retry")
            dev_mode = self._run(["amfi", "developer-mode-status", "--udid", udid], udid=False, check=False,
                                 timeout=60)
            answer = _ANSI.sub("", dev_mode.stdout).strip().lower().splitlines()
            out.append({
                "udid": udid,
                "name": info.get("DeviceName", ""),
                "product_type": info.get("ProductType", ""),
                "os_version": info.get("ProductVersion", ""),
                # lockdown's PasswordProtected is true while a passcode-protected phone is locked
                "locked": bool(info["PasswordProtected"]) if "PasswordProtected" in info else None,
                "developer_mode": (answer[-1] == "true") if dev_mode.returncode == 0 and answer else None,
            })
        return out

    def install(self, ipa: Path) -> None:
        self._run(["apps", "install", str(ipa)])

    def push(self, bundle_id: str, local: Path, remote: str) -> None:
        self._run(["apps", "push", bundle_id, str(local), remote])

    def launch(self, bundle_id: str, args: list[str]) -> None:
        self._run(["developer", "dvt", "launch", shlex.join([bundle_id, *args])], developer=True)

    def pull(self, bundle_id: str, remote: str, local: Path) -> bool:
        proc = self._run(["apps", "pull", bundle_id, remote, str(local)], check=False)
        text = proc.stdout + proc.stderr
        if proc.returncode != 0:
            if re.search(r"AfcFileNotFound|OBJECT_NOT_FOUND|ObjectNotFound|No such file|not found", text, re.I):
                return False
            raise DeviceError(f"`apps pull {bundle_id} {remote}` failed (exit {proc.returncode}): {_tail(text, 8)}",
                              _fix_for(text))
        return Path(local).is_file()

    def syslog(self, seconds: float) -> str:
        self._require_module()
        cmd = self._cmd(["syslog", "live"])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds)
            return proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:  # the normal end: `syslog live` streams until killed
            out = exc.stdout or b""
            return out.decode(errors="replace") if isinstance(out, bytes) else out
        except OSError as exc:
            raise DeviceError(f"cannot run {self.python}: {exc}", PIP_FIX) from exc


def _fix_for(text: str) -> str:
    low = text.lower()
    if "locked" in low or "passcode" in low:
        return "unlock the iPhone and keep it unlocked while timing"
    if "developer mode" in low or "developermode" in low:
        return _developer_mode_fix()
    if "invalidservice" in low or "tunnel" in low or "rsd" in low:
        return ("iOS 17+: start a tunnel first (iOS 17.4+: `sudo python -m pymobiledevice3 lockdown start-tunnel`, "
                "or `sudo python -m pymobiledevice3 remote tunneld`), mount the developer disk image with "
                "`python -m pymobiledevice3 mounter auto-mount`, and set EVALSUITE_IPHONE_TUNNEL='' to pass --tunnel")
    if "appnotinstalled" in low or "not installed" in low or "unknown bundle" in low:
        return "install the benchmark app: pass its .ipa (EVALSUITE_IOS_IPA) or see device_runner/ios/README.md"
    if "pair" in low or "trust" in low:
        return "unlock the phone and tap 'Trust' on the 'Trust This Computer?' prompt"
    return "check the USB cable, that usbmuxd runs, and `python -m pymobiledevice3 usbmux list`"


def _developer_mode_fix() -> str:
    return ("enable Developer Mode on the phone (Settings > Privacy & Security > Developer Mode, then restart and "
            "confirm; on a phone without a passcode `python -m pymobiledevice3 amfi enable-developer-mode`), then "
            "mount the developer disk image with `python -m pymobiledevice3 mounter auto-mount`")


def _tail(text: str, lines: int) -> str:
    kept = [ln for ln in _ANSI.sub("", text or "").strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:]) if kept else "(no output)"


# -------------------------------------------------------------------------------------------------------- backend

class IPhoneBackend:
    name = "iphone"

    def __init__(self, transport: Transport | None = None, bundle_id: str = DEFAULT_BUNDLE_ID, poll_s: float = 1.0,
                 ipa: str | Path | None = None, syslog_s: float = 5.0):
        self.transport = transport if transport is not None else PyMobileDevice3Transport()
        self.bundle_id = bundle_id
        self.poll_s = poll_s
        self.ipa = ipa
        self.syslog_s = syslog_s

    def check_available(self) -> dict:
        """The phone to use (a `Transport.devices()` entry), or DeviceError with the fix."""
        devices = self.transport.devices()
        if not devices:
            raise DeviceError("no iPhone connected",
                              "connect the iPhone with a USB cable, unlock it and tap 'Trust'; on Linux usbmuxd must "
                              "run (`python -m pymobiledevice3 usbmux list` should show the phone)")
        udid = getattr(self.transport, "udid", None)
        if len(devices) > 1 and not udid:
            names = ", ".join(f"{d.get('udid')} ({d.get('product_type')})" for d in devices)
            raise DeviceError(f"{len(devices)} iPhones connected: {names}",
                              "choose one with EVALSUITE_IPHONE_UDID=<udid>")
        device = devices[0]
        label = f"{device.get('name') or 'iPhone'} ({device.get('product_type') or device.get('udid')})"
        if device.get("locked"):
            raise DeviceError(f"the iPhone {label} is locked",
                              "unlock it and keep it unlocked while timing (Settings > Display & Brightness > "
                              "Auto-Lock > Never)")
        if device.get("developer_mode") is False:
            raise DeviceError(f"Developer Mode is off on the iPhone {label}", _developer_mode_fix())
        return device

    def time(self, target: TimingTarget, settings: TimingSettings) -> list[TimingRecord]:
        package = self._check_package(target)
        device = self.check_available()
        units = protocol.normalise_compute_units(settings.compute_unit)
        inputs = settings.extra.get("inputs")
        if inputs is None:
            inputs = input_specs(package)
        model_hash = target.model_hash or _package_hash(package)
        ipa = self.ipa or settings.extra.get("ipa") or os.environ.get("EVALSUITE_IOS_IPA")
        request_id = protocol.new_request_id()
        zip_name = f"{request_id}.mlpackage.zip"
        request = protocol.make_request(zip_name, iterations=settings.iterations, warmup=settings.warmup,
                                        compute_units=units, inputs=inputs, request_id=request_id,
                                        meta={"model": target.model, "variant": target.variant,
                                              "model_hash": model_hash, "release": settings.release,
                                              "git_sha": settings.git_sha},
                                        duration_s=settings.extra.get("duration_s"),
                                        window_s=settings.extra.get("window_s"))
        remote_request = f"/Documents/{request_id}.request.json"
        remote_result = f"/Documents/{request['result_file']}"
        with tempfile.TemporaryDirectory(prefix="evalsuite-iphone-") as tmp_name:
            tmp = Path(tmp_name)
            if ipa:
                if not Path(ipa).is_file():
                    raise DeviceError(f"the benchmark app {ipa} does not exist",
                                      "build and export it once on a Mac (device_runner/ios/README.md)")
                self.transport.install(Path(ipa))
            zip_package(package, tmp / zip_name)
            (tmp / "request.json").write_text(json.dumps(request, indent=1))
            self.transport.push(self.bundle_id, tmp / zip_name, f"/Documents/{zip_name}")
            self.transport.push(self.bundle_id, tmp / "request.json", remote_request)
            self.transport.launch(self.bundle_id, ["--request", remote_request])
            local = tmp / "result.json"
            deadline = time.monotonic() + settings.timeout_s
            while not self.transport.pull(self.bundle_id, remote_result, local):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeviceError(
                        f"time-out: the benchmark app on {_label(device)} wrote no result ({remote_result}) within "
                        f"{settings.timeout_s:g} s\n{self._logs(request, tmp)}",
                        "the first load of a large model on the Neural Engine can take minutes: raise --timeout; "
                        "keep the phone unlocked with the app in the foreground; a model too big for the phone's "
                        "memory is killed by iOS (look for 'jetsam' in the log)")
                time.sleep(min(self.poll_s, remaining))
            raw = local.read_bytes()
            try:
                return protocol.parse_result(raw, model=target.model, variant=target.variant, model_hash=model_hash,
                                             release=settings.release, git_sha=settings.git_sha,
                                             source=f"the app's result {remote_result}", request_id=request_id)
            except DeviceError as exc:
                raise DeviceError(f"{exc.message}\n{self._logs(request, tmp)}", exc.fix) from exc

    # -- helpers
    @staticmethod
    def _check_package(target: TimingTarget) -> Path:
        if target.package is None:
            raise DeviceError(f"the iphone backend times a built Core ML package, and {target.model} has none",
                              "run `evalsuite device build` first and pass --package PATH.mlpackage")
        package = Path(target.package)
        if not package.is_dir() or package.suffix != ".mlpackage":
            raise DeviceError(f"Core ML package {package} is not an existing .mlpackage folder",
                              "pass the .mlpackage folder `evalsuite device build` wrote")
        if not any(p.is_file() for p in package.rglob("*")):
            raise DeviceError(f"Core ML package {package} is empty", "rebuild it with `evalsuite device build`")
        return package

    def _logs(self, request: dict, tmp: Path) -> str:
        """The app's own progress log and the tail of the device syslog, best effort (a failing fetch says so)."""
        parts = []
        local = tmp / "app.log"
        try:
            if self.transport.pull(self.bundle_id, f"/Documents/{request['log_file']}", local):
                parts.append("--- app log (tail) ---\n" + _tail(local.read_text(errors="replace"), LOG_TAIL_LINES))
            else:
                parts.append("--- app log: none written (did the app start?) ---")
        except DeviceError as exc:
            parts.append(f"--- app log unavailable: {exc.message} ---")
        try:
            text = self.transport.syslog(self.syslog_s)
            lines = [ln for ln in (text or "").splitlines() if ln.strip()]
            mine = [ln for ln in lines if APP_PROCESS in ln or self.bundle_id in ln]
            parts.append("--- syslog (tail) ---\n" + _tail("\n".join(mine or lines), LOG_TAIL_LINES))
        except DeviceError as exc:
            parts.append(f"--- syslog unavailable: {exc.message} ---")
        return "\n".join(parts)


def _label(device: dict) -> str:
    return f"{device.get('name') or 'iPhone'} ({device.get('product_type') or device.get('udid') or '?'})"


def input_specs(package: Path) -> list[dict]:
    """Input specs {name, shape, dtype} read from the package's spec with coremltools (reading works on Linux).
    Inputs that are not multi-arrays, or a spec that cannot be read, are left to the app, which builds inputs from
    the compiled model's own description."""
    try:
        from coremltools.models.utils import load_spec
        from coremltools.proto import FeatureTypes_pb2 as ft
    except ImportError:
        return []
    names = {ft.ArrayFeatureType.FLOAT32: "float32", ft.ArrayFeatureType.FLOAT16: "float16",
             ft.ArrayFeatureType.DOUBLE: "float64", ft.ArrayFeatureType.INT32: "int32"}
    try:
        spec = load_spec(str(package))
    except Exception:  # noqa: BLE001 (any unreadable spec: the app falls back to the model description)
        return []
    out = []
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") != "multiArrayType":
            continue
        arr = feature.type.multiArrayType
        shape = [int(d) for d in arr.shape]
        if not shape and arr.WhichOneof("ShapeFlexibility") == "enumeratedShapes":
            shape = [int(d) for d in arr.enumeratedShapes.shapes[0].shape]
        if shape and all(d > 0 for d in shape) and arr.dataType in names:
            out.append({"name": feature.name, "shape": shape, "dtype": names[arr.dataType]})
    return out


def _package_hash(package: Path) -> str:
    try:
        from evalsuite.device.build import package_hash
    except ImportError:
        return ""
    return package_hash(package)


register("iphone", IPhoneBackend)

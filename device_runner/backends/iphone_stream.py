"""Streaming video on a USB-attached iPhone: the benchmark app runs a chunk pipeline of Core ML packages (a chunk
denoiser `steps` times and a decoder per chunk; a text encoder once per stream) for a stated duration and reports
every chunk's arrival (`StreamBenchmark.swift`). Same transport and app as the `iphone` backend
(`evalsuite.device.backends.iphone`: `Transport`, `PyMobileDevice3Transport`, device checks, logs on failure).

One run (`IPhoneStreamBackend.time_stream`):

1. check the phone (connected, unlocked, Developer Mode); install the app when an .ipa is given;
2. zip each stage's `.mlpackage` (stored) and push it as `/Documents/<request_id>.<stage>.mlpackage.zip`;
3. push `/Documents/<request_id>.stream-request.json` (`protocol.make_stream_request`) and launch the app with
   `--stream-request /Documents/<request_id>.stream-request.json`;
4. poll for `/Documents/<request_id>.result.json` until `timeout_s` (the stream's duration plus compile and load
   time); on a time-out, an error or a crash: DeviceError with the app's log and the syslog;
5. `protocol.parse_stream_result` -> one `evalsuite.stream-timing/1` record (returned, not stored).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from evalsuite.device import protocol
from evalsuite.device.backends import DeviceError, TimingTarget
from evalsuite.device.backends.iphone import DEFAULT_BUNDLE_ID, IPhoneBackend, Transport, input_specs
from evalsuite.device.stream_records import StreamRecord

STAGE_ORDER = ("text_encoder", "denoiser", "decoder")


class IPhoneStreamBackend:
    name = "iphone"

    def __init__(self, transport: Transport | None = None, bundle_id: str = DEFAULT_BUNDLE_ID, poll_s: float = 1.0,
                 ipa: str | Path | None = None, syslog_s: float = 5.0):
        self.phone = IPhoneBackend(transport=transport, bundle_id=bundle_id, poll_s=poll_s, ipa=ipa,
                                   syslog_s=syslog_s)

    @property
    def transport(self) -> Transport:
        return self.phone.transport

    def check_available(self) -> dict:
        return self.phone.check_available()

    def time_stream(self, packages: dict[str, Path], *, model: str, variant: str = "fp16", steps: int = 2,
                    chunk_frames: int = 4, target_fps: float = 10.0, duration_s: float = 10.0, max_chunks: int = 0,
                    warmup_chunks: int = 2, compute_unit: str = "ALL", release: str = "unreleased",
                    git_sha: str = "", model_hash: str = "", timeout_s: float = 900.0,
                    inputs: dict[str, list[dict]] | None = None) -> StreamRecord:
        """Stream on the phone. `packages`: stage name (text_encoder, denoiser, decoder) -> .mlpackage folder;
        `inputs`: stage name -> input specs (default: read from each package, else built by the app)."""
        unknown = sorted(set(packages) - set(STAGE_ORDER))
        if unknown or not ({"denoiser", "decoder"} & set(packages)):
            raise DeviceError(f"stream stages {', '.join(sorted(packages)) or '(none)'}: "
                              + (f"unknown {', '.join(unknown)}" if unknown else "no per-chunk stage"),
                              "pass --package denoiser=PATH.mlpackage and/or --package decoder=PATH.mlpackage "
                              "(text_encoder=PATH optional)")
        for name, package in packages.items():
            IPhoneBackend._check_package(TimingTarget(model=f"{model} {name}", package=Path(package)))
        device = self.check_available()
        request_id = protocol.new_request_id()
        stages: list[dict] = []
        for stage in (s for s in STAGE_ORDER if s in packages):
            specs = (inputs or {}).get(stage)
            stages.append({"name": stage, "package": f"{request_id}.{stage}.mlpackage.zip",
                           "calls": steps if stage == "denoiser" else 1,
                           "per": "stream" if stage == "text_encoder" else "chunk",
                           "inputs": specs if specs is not None else input_specs(Path(packages[stage]))})
        request = protocol.make_stream_request(
            stages, chunk_frames=chunk_frames, target_fps=target_fps, duration_s=duration_s, max_chunks=max_chunks,
            warmup_chunks=warmup_chunks, compute_unit=compute_unit, request_id=request_id,
            meta={"model": model, "variant": variant, "model_hash": model_hash, "release": release,
                  "git_sha": git_sha})
        ipa = self.phone.ipa or os.environ.get("EVALSUITE_IOS_IPA")
        remote_request = f"/Documents/{request_id}.stream-request.json"
        remote_result = f"/Documents/{request['result_file']}"
        bundle = self.phone.bundle_id
        with tempfile.TemporaryDirectory(prefix="evalsuite-iphone-stream-") as tmp_name:
            tmp = Path(tmp_name)
            if ipa:
                if not Path(ipa).is_file():
                    raise DeviceError(f"the benchmark app {ipa} does not exist",
                                      "build and export it once on a Mac (device_runner/ios/README.md)")
                self.transport.install(Path(ipa))
            for part in stages:
                protocol.zip_package(Path(packages[part["name"]]), tmp / part["package"])
                self.transport.push(bundle, tmp / part["package"], f"/Documents/{part['package']}")
            (tmp / "request.json").write_text(json.dumps(request, indent=1))
            self.transport.push(bundle, tmp / "request.json", remote_request)
            self.transport.launch(bundle, ["--stream-request", remote_request])
            local = tmp / "result.json"
            deadline = time.monotonic() + timeout_s
            while not self.transport.pull(bundle, remote_result, local):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeviceError(
                        f"time-out: the benchmark app on {device.get('name') or 'the iPhone'} wrote no stream result "
                        f"({remote_result}) within {timeout_s:g} s\n{self.phone._logs(request, tmp)}",
                        "raise --timeout (compiling and loading large packages takes minutes); keep the phone "
                        "unlocked with the app in the foreground")
                time.sleep(min(self.phone.poll_s, remaining))
            try:
                return protocol.parse_stream_result(
                    local.read_bytes(), model=model, variant=variant, model_hash=model_hash, release=release,
                    git_sha=git_sha, source=f"the app's stream result {remote_result}", request_id=request_id)
            except DeviceError as exc:
                raise DeviceError(f"{exc.message}\n{self.phone._logs(request, tmp)}", exc.fix) from exc


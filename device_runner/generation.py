"""End-to-end generation timing on the host: the pieces papers time (text encoder once, the denoiser `steps`
times, the decoder once), reported as seconds per image, or FPS for video, with the step count recorded."""

from __future__ import annotations

import platform

import numpy as np
import torch

from evalsuite.device.backends import TimingSettings
from evalsuite.device.backends.host_torch import HostTorchBackend
from evalsuite.device.models import GenerationPipeline
from evalsuite.device.records import TimingRecord
from evalsuite.provenance import environment


def time_generation(pipeline: GenerationPipeline, steps: int, settings: TimingSettings) -> TimingRecord:
    device = settings.device
    parts = {"denoise_step": pipeline.denoiser, "decoder": pipeline.decoder}
    if pipeline.text_encoder is not None:
        parts = {"text_encoder": pipeline.text_encoder, **parts}
    calls = {}
    for name, part in parts.items():
        module = part.module.to(device).eval()
        inputs = [x.to(device) if isinstance(x, torch.Tensor) else x for x in part.example_inputs]
        calls[name] = (lambda m=module, a=inputs: m(*a))
    backend = HostTorchBackend()
    component_ms = {name: float(np.median(backend.measure(fn, settings)[1])) for name, fn in calls.items()}

    def generate() -> None:
        if "text_encoder" in calls:
            calls["text_encoder"]()
        for _ in range(steps):
            calls["denoise_step"]()
        calls["decoder"]()

    first, totals = backend.measure(generate, settings)
    median_s = float(np.median(totals)) / 1000
    frames = pipeline.frames
    env = environment(device)
    return TimingRecord(
        model=pipeline.name, variant=f"pipeline-{steps}step", backend="host-torch", compute_unit=device,
        device_model=env.get("gpu") or env["cpu"], os_version=platform.platform(), warmup=settings.warmup,
        iterations=settings.iterations, latencies_ms=totals, first_predict_ms=first,
        throughput=(frames / median_s) if frames > 1 else 1.0 / median_s,
        throughput_unit="frames/s" if frames > 1 else "images/s", steps=steps, frames=frames,
        components_ms=component_ms, release=settings.release, git_sha=settings.git_sha,
        notes=f"seconds per {'video' if frames > 1 else 'image'} = text encoder + {steps} x denoise step + decoder")

"""`evalsuite device time-stream` and `evalsuite device stream-history`: streaming video timing (TTFF, sustained
FPS, per-chunk latency, deadline misses, jitter) on the host or an iPhone, and its history with the regression
gate on TTFF and sustained FPS."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import JsonOpt, StoreOpt, _print_json, _store, _table, device_app, err, friendly, out
from evalsuite.cli.device import _release
from evalsuite.errors import InputError


def _stream_table(recs: list) -> None:
    _table("video-stream", ["model", "variant", "backend", "frames/chunk", "target fps", "TTFF ms", "sustained fps",
                            "p50 ms", "p99 ms", "jitter ms", "deadline misses", "chunks", "duration s"],
           [[r.model, r.variant, r.backend, r.chunk_frames, r.target_fps, r.ttff_ms, r.sustained_fps, r.p50_ms,
             r.p99_ms, r.jitter_ms, f"{r.deadline_misses} ({100 * r.deadline_miss_rate:.1f}%)", r.chunks,
             round(r.duration_s, 3)] for r in recs])
    for r in recs:
        out.print(f"{r.device_model} ({r.backend}/{r.compute_unit}), release {r.release}", soft_wrap=True)


def _packages(items: list[str]) -> dict[str, Path]:
    out_: dict[str, Path] = {}
    for item in items:
        stage, sep, path = item.partition("=")
        if not sep or not stage or not path:
            raise InputError(f"--package {item!r} is not STAGE=PATH",
                             "e.g. --package denoiser=demo-fp16.mlpackage --package decoder=decoder-fp16.mlpackage")
        out_[stage.strip()] = Path(path)
    return out_


@device_app.command("time-stream")
@friendly
def device_time_stream(
    model: str = typer.Argument(..., help="demo-video[:SIZE] | demo (chunk denoiser + decoder) | python:mod:factory"),
    backend: str = typer.Option("host", "--backend", help="host | iphone"),
    duration: float = typer.Option(10.0, "--duration", min=0.0, help="Seconds of measured stream (0: --chunks)."),
    target_fps: Optional[float] = typer.Option(None, "--target-fps", min=0.001,
                                               help="Frame rate the stream plays at (default: the model's)."),
    chunk_frames: Optional[int] = typer.Option(None, "--chunk-frames", min=1,
                                               help="Frames per chunk (default: the model's)."),
    chunks: int = typer.Option(0, "--chunks", min=0, help="Stop after this many chunks (0: --duration only)."),
    warmup_chunks: int = typer.Option(2, "--warmup-chunks", min=0, help="Chunks of an untimed stream first."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Denoiser calls per chunk (pipelines)."),
    prompt: Optional[str] = typer.Option(None, "--prompt"),
    seed: int = typer.Option(0, "--seed"),
    variant: Optional[str] = typer.Option(None, "--variant", help="Variant name recorded (default fp32; iphone fp16)."),
    device: str = typer.Option("cpu", "--device", help="host: cpu or cuda"),
    package: list[str] = typer.Option([], "--package", help="iphone: STAGE=PATH.mlpackage, STAGE one of "
                                      "text_encoder, denoiser, decoder (repeat)."),
    compute_unit: str = typer.Option("ALL", "--compute-unit", help="iphone: ALL | CPU_AND_NE | CPU_AND_GPU | "
                                     "CPU_ONLY"),
    timeout: float = typer.Option(900.0, "--timeout", help="iphone: seconds to wait for the app's result."),
    release: Optional[str] = typer.Option(None, "--release", help="Release tag (default: git describe)."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Time a streaming video generator: TTFF, sustained FPS, per-chunk latency, deadline misses, jitter."""
    from evalsuite.device import stream_records, streaming

    tag, sha = _release(release)
    if backend == "host":
        source = streaming.resolve_stream(model, chunk_frames=chunk_frames, steps=steps, target_fps=target_fps,
                                          device=device)
        rec = streaming.time_stream(source, model=model, variant=variant or "fp32", prompt=prompt or
                                    streaming.DEFAULT_PROMPT, seed=seed, duration_s=duration,
                                    max_chunks=chunks or None, warmup_chunks=warmup_chunks, target_fps=target_fps,
                                    device=device, release=tag, git_sha=sha)
    elif backend == "iphone":
        from evalsuite.device.backends.iphone_stream import IPhoneStreamBackend

        if not package:
            raise InputError("the iphone stream runs Core ML packages, and none was given",
                             "build them with `evalsuite device build` and pass --package denoiser=PATH.mlpackage "
                             "--package decoder=PATH.mlpackage")
        rec = IPhoneStreamBackend().time_stream(
            _packages(package), model=model, variant=variant or "fp16", steps=steps or 2,
            chunk_frames=chunk_frames or 4, target_fps=target_fps or 10.0, duration_s=duration, max_chunks=chunks,
            warmup_chunks=warmup_chunks, compute_unit=compute_unit, release=tag, git_sha=sha, timeout_s=timeout)
    else:
        raise InputError(f"unknown stream backend '{backend}'", "use --backend host or --backend iphone")
    path = stream_records.write(_store(store), rec)
    if as_json:
        _print_json({**rec.__dict__, "path": str(path)})
    else:
        _stream_table([rec])
        out.print(f"TTFF {rec.ttff_ms:.1f} ms; sustained {rec.sustained_fps:.2f} fps over {rec.duration_s:.2f} s "
                  f"({rec.chunks} chunks of {rec.chunk_frames}); {rec.deadline_misses} deadline miss(es) at "
                  f"{rec.target_fps:g} fps ({100 * rec.deadline_miss_rate:.1f}%); jitter {rec.jitter_ms:.2f} ms",
                  soft_wrap=True)
        out.print(f"stored {path}", soft_wrap=True)


@device_app.command("stream-history")
@friendly
def device_stream_history(
    model: str,
    device: Optional[str] = typer.Option(None, "--device", help="Device model code, e.g. iPhone17,2."),
    backend: Optional[str] = typer.Option(None, "--backend"),
    threshold: float = typer.Option(1.15, "--threshold", min=1.0,
                                    help="TTFF or frame period (1/FPS) above this × the window median."),
    window: int = typer.Option(5, "--window", min=1, help="Earlier releases whose median is the baseline."),
    consecutive: int = typer.Option(2, "--consecutive", min=1, help="Latest releases that must all be worse."),
    gate: str = typer.Option("ttff,fps", "--gate", help="What --fail-on-regression gates on: ttff, fps or both."),
    plot_file: Optional[Path] = typer.Option(None, "--out", help="Plot file (default: "
                                             "<store>/device/stream/<model>-stream-history.png)."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                            help="Exit 1 if the latest release regressed on a gated metric."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """TTFF and sustained FPS across releases per device/backend/variant; flags regressions and writes a plot."""
    from evalsuite.device import stream_history, stream_records
    from evalsuite.fsutil import atomic_write_bytes

    gated = tuple(g.strip().lower() for g in gate.split(",") if g.strip())
    if not gated or any(g not in stream_history.METRICS for g in gated):
        raise InputError(f"--gate {gate!r}", "use ttff, fps or ttff,fps")
    series = stream_history.history(_store(store), model, device=device, backend=backend, threshold=threshold,
                                    window=window, consecutive=consecutive)
    if not series:
        raise InputError(f"no stream records for model '{model}' in {stream_records.folder(_store(store))}",
                         "measure it with `evalsuite device time-stream`")
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in model)
    path = plot_file or stream_records.folder(_store(store)) / f"{slug}-stream-history.png"
    atomic_write_bytes(path, stream_history.plot(series, f"{model}: streaming across releases"))
    regressed = [(s, s.regressed(gated)) for s in series if s.regressed(gated)]
    if as_json:
        _print_json({"plot": str(path), "gate": list(gated),
                     "series": [s.__dict__ | {"label": s.label, "regressed": s.regressed(gated)} for s in series]})
    else:
        for s in series:
            _table(s.label, ["release", "TTFF ms", "sustained fps", "miss rate", "jitter ms", "measurements",
                             "flag"],
                   [[rel, s.ttff_ms[i], s.sustained_fps[i], s.deadline_miss_rate[i], s.jitter_ms[i],
                     s.measurements[i],
                     " ".join(f for f, hit in (("TTFF-slow", s.ttff_violations[i]), ("FPS-slow", s.fps_violations[i]),
                                               ("TTFF-REGRESSION", i in s.ttff_events),
                                               ("FPS-REGRESSION", i in s.fps_events)) if hit)]
                    for i, rel in enumerate(s.releases)])
        out.print(f"plot: {path}", soft_wrap=True)
        for s, which in regressed:
            err.print(f"regression ({', '.join(which)}): {s.label} at {s.releases[-1]}", markup=False,
                      highlight=False)
    if regressed and fail_on_regression:
        raise typer.Exit(1)


@device_app.command("ingest-stream")
@friendly
def device_ingest_stream(
    file: Path = typer.Argument(..., help="The benchmark app's stream result JSON (evalsuite.ios-stream-result/1)."),
    release: Optional[str] = typer.Option(None, "--release", help="Release tag (default: the result's meta)."),
    store: Optional[Path] = StoreOpt,
) -> None:
    """Store the stream record of an app stream result produced elsewhere (e.g. a run started by hand)."""
    from evalsuite.device import protocol, stream_records

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc}", "pass the result JSON the app wrote") from exc
    rec = protocol.parse_stream_result(raw, release=release, source=str(file))
    path = stream_records.write(_store(store), rec)
    _stream_table([rec])
    out.print(f"stored {path}", soft_wrap=True)

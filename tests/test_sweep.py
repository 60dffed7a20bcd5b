"""`evalsuite sweep` (issue 16): every variant of a knob grid scored and timed end to end, stored and joined by
variant id, resumable after an interruption, its frontier the one `evalsuite.pareto` computes on the loaded points;
a result and a timing record of different variants are never joined."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evalsuite import pareto
from evalsuite.device import records
from evalsuite.device import sweep as sweeps
from evalsuite.device import sweep_manifest as manifests
from evalsuite.device.sweep_points import join_point, sweep_reports
from evalsuite.errors import InputError
from evalsuite.models import resolve_model

MODEL = "demo:64"  # the demo at 64 px: the same knobs and sampler, a quarter of the pixels
FAST = sweeps.SweepSettings(num_samples=3, iterations=2, warmup=0)


def demo_grid() -> dict[str, list[str]]:
    """Six variants: steps x weight compression (fp16 is host-side float16 rounding, no coremltools needed)."""
    return {"steps": ["1", "2", "4"], "compression": ["fp32", "fp16"]}


class Interrupt(KeyboardInterrupt):
    """Stands for Ctrl-C (a KeyboardInterrupt, so nothing catches it on the way out)."""


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, fail_at: int | None = None,
             after: bool = False) -> list[Any]:
    """Wrap owner.name to count its calls; call number `fail_at` raises Interrupt (after the real call if `after`)."""
    real, calls = getattr(owner, name), []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0] if args else None)
        if fail_at is not None and len(calls) == fail_at and not after:
            raise Interrupt()
        out = real(*args, **kwargs)
        if fail_at is not None and len(calls) == fail_at:
            raise Interrupt()
        return out

    monkeypatch.setattr(owner, name, wrapper)
    return calls


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One demo sweep of six variants with fast settings, interrupted three times and resumed until complete:
    (1) while timing variant 3, (2) right after variant 4's run finished, before the manifest knew it, (3) inside
    variant 5's second task, leaving its run incomplete. Records what each attempt called."""
    from evalsuite import api
    from evalsuite.tasks import get as get_task

    store = tmp_path_factory.mktemp("sweep-store")
    out: dict[str, Any] = {"store": store, "tasks": ["variant-fidelity", "fid"]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVALSUITE_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("EVALSUITE_OFFLINE", "1")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mp.context() as m:
                timed = counting(m, sweeps, "time_variant", fail_at=3)
                scored = counting(m, api, "score")
                with pytest.raises(Interrupt):
                    sweeps.run_sweep(MODEL, demo_grid(), out["tasks"], store=store, settings=FAST, progress=False)
                out["first"] = {"scored": list(scored), "timed": list(timed)}
            (sweep_id,) = [p.name for p in (store / "sweeps").iterdir()]
            out["sweep_id"] = sweep_id
            out["after_first"] = manifests.read(store, sweep_id)
            with mp.context() as m:
                scored = counting(m, api, "score", fail_at=1, after=True)  # variant 4 scored, not yet in the manifest
                with pytest.raises(Interrupt):
                    sweeps.resume_sweep(sweep_id, store, progress=False)
                out["second"] = {"scored": list(scored)}
            with mp.context() as m:
                fid = get_task("fid")
                runs = counting(m, fid, "run", fail_at=1)  # variant 5: variant-fidelity stored, fid interrupted
                with pytest.raises(Interrupt):
                    sweeps.resume_sweep(sweep_id, store, progress=False)
                out["third_fid_runs"] = len(runs)
            out["after_third"] = manifests.read(store, sweep_id)
            with mp.context() as m:
                timed, scored = counting(m, sweeps, "time_variant"), counting(m, api, "score")
                resumed = counting(m, api, "resume")
                out["result"] = sweeps.resume_sweep(sweep_id, store, progress=False)
                out["last"] = {"scored": list(scored), "timed": list(timed), "resumed": list(resumed)}
    return out


def test_a_sweep_of_six_variants_is_interrupted_and_resumed_without_redoing_work(swept):
    first, after = swept["first"], swept["after_first"]
    specs = [v["spec"] for v in after["variants"]]
    assert len(specs) == 6 and len(set(specs)) == 6
    assert first["scored"] == specs[:3] and first["timed"] == specs[:3]
    assert [v["status"] for v in after["variants"]] == ["complete", "complete", "timing", "pending", "pending",
                                                        "pending"]
    assert after["status"] == "running"
    # 2nd attempt: variant 3 only timed (not scored again); variant 4 scored, then interrupted
    assert swept["second"]["scored"] == [specs[3]]
    # 3rd attempt: variant 4's finished run adopted (no new score call reached fid for it), variant 5 interrupted
    states = [v["status"] for v in swept["after_third"]["variants"]]
    assert states == ["complete"] * 4 + ["scoring", "pending"]
    # last attempt: variant 5's incomplete run finished through the runner's resume; only variant 6 newly scored
    assert swept["third_fid_runs"] == 1
    last, manifest = swept["last"], swept["result"].manifest
    assert last["resumed"] == [manifest["variants"][4]["run_id"]]
    assert last["scored"] == [specs[5]] and last["timed"] == specs[4:]
    assert manifest["status"] == "complete" and all(v["status"] == "complete" for v in manifest["variants"])
    assert len(manifest["resumed_at"]) == 3
    assert len({v["run_id"] for v in manifest["variants"]}) == 6


def test_manifest_schema_and_records_carry_the_variant_ids(swept):
    store, manifest = swept["store"], swept["result"].manifest
    raw = json.loads((store / "sweeps" / swept["sweep_id"] / "sweep.json").read_text())
    assert raw["schema"] == "evalsuite.sweep/1" and raw == {"schema": "evalsuite.sweep/1", **manifest}
    for key in ("sweep_id", "model", "grid", "tasks", "backend", "device", "created_at", "status", "variants"):
        assert key in raw
    assert raw["model"] == MODEL and raw["backend"] == "host-torch" and raw["device"] == "cpu"
    by_file = {p.name: records.TimingRecord.from_dict(json.loads(p.read_bytes())) for p in (store / "device").iterdir()}
    assert len(by_file) == 6  # one record per variant: nothing timed twice
    for entry in manifest["variants"]:
        source = resolve_model(entry["spec"])
        vid = source.info["variant"]["id"]
        assert entry["variant_id"] == vid and entry["knobs"] == source.info["variant"]["knobs"]
        rec = by_file[entry["timing_record"]]
        assert rec.variant_id == vid and rec.backend == "host-torch" and rec.steps == entry["knobs"]["steps"]
        assert vid.endswith("#w=" + rec.model_hash[:16])  # the weights timed are the weights scored
        docs = {d["task"]: d for d in _run_docs(store, entry["run_id"])}
        assert docs["variant-fidelity"]["model"]["info"]["variant"]["id"] == vid
        assert docs["fid"]["status"] == "skipped"  # no reference given: stored as skipped, the sweep goes on


def _run_docs(store: Path, run_id: str) -> list[dict]:
    from evalsuite.results import ResultsStore

    return ResultsStore(store).load_run(run_id)


def test_the_frontier_is_evalsuite_pareto_on_the_loaded_points(swept):
    store, sweep_id, result = swept["store"], swept["sweep_id"], swept["result"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fid: no points (skipped), said in a warning
        points = sweeps.load_sweep_points(store, sweep_id, "variant-fidelity")
    assert len(points) == 6 and all(p.quality_ci is not None and p.latency_p10_p90 is not None for p in points)
    assert all(p.quality_ci[0] <= p.quality <= p.quality_ci[1] for p in points if p.quality_ci)
    expected = pareto.report(points, "higher", "variant-fidelity.psnr")
    assert list(result.reports) == ["variant-fidelity.psnr", "fid.fid"] and result.reports["fid.fid"] == ()
    assert pareto.to_dict(result.reports["variant-fidelity.psnr"]) == pareto.to_dict(expected)
    assert pareto.to_markdown(expected) in result.to_markdown()
    # more steps, closer to the reference variant (the demo's knob really moves the metric)
    psnr = {p.knobs["steps"]: p.quality for p in points if p.knobs["compression"] == "fp32"}
    assert psnr[1] < psnr[2] < psnr[4]


def test_a_result_and_a_record_of_different_variants_are_never_joined(swept):
    store, sweep_id = swept["store"], swept["sweep_id"]
    manifest = manifests.read(store, sweep_id)
    a, b = manifest["variants"][0], manifest["variants"][1]
    doc = next(d for d in _run_docs(store, a["run_id"]) if d["task"] == "variant-fidelity")
    rec = records.TimingRecord.from_dict(json.loads((store / "device" / b["timing_record"]).read_bytes()))
    with pytest.raises(InputError) as caught:
        join_point(doc, "psnr", rec)
    message = caught.value.message
    assert "\n" not in message and a["variant_id"] in message and b["variant_id"] in message
    # a manifest that pairs a variant with another variant's record is refused, not plotted
    copy = store.parent / "mismatched-store"
    import shutil

    shutil.copytree(store, copy)
    manifest["variants"][0]["timing_record"] = b["timing_record"]
    manifests.write(copy, manifest)
    with pytest.raises(InputError, match="refusing to join the quality result of variant"):
        sweeps.load_sweep_points(copy, sweep_id, "variant-fidelity.psnr")


def test_records_from_elsewhere_join_by_variant_id_and_old_records_still_load(swept, tmp_path):
    import dataclasses
    import shutil

    store = tmp_path / "store-copy"
    shutil.copytree(swept["store"], store)
    manifest = manifests.read(store, swept["sweep_id"])
    entry = manifest["variants"][2]
    phone = records.TimingRecord(model="demo@1", variant="fp16", backend="iphone", device_model="iPhone17,2",
                                 latencies_ms=[900.0, 1000.0, 1100.0], release="r", compute_unit="CPU_AND_NE",
                                 variant_id=entry["variant_id"])
    records.write(store, phone)
    old = {k: v for k, v in dataclasses.asdict(dataclasses.replace(phone, variant_id=None)).items()
           if k != "variant_id"}
    assert records.TimingRecord.from_dict(old).variant_id is None  # a record from before variant ids
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reports = sweep_reports(store, swept["sweep_id"], ["variant-fidelity"])["variant-fidelity.psnr"]
    devices = {r.device: [p.variant_id for p in r.frontier.frontier] + [e.point.variant_id
                                                                       for e in r.frontier.entries if e.dominated_by]
               for r in reports}
    assert devices["iPhone17,2 (iphone, CPU_AND_NE)"] == [entry["variant_id"]]
    assert sum(len(v) for k, v in devices.items() if "host-torch" in k) == 6


def test_the_demo_pipeline_times_the_weights_it_scores():
    from evalsuite.device.models import GenerationPipeline

    for spec in ["demo?steps=3", "demo?steps=3&compression=fp16"]:
        source = resolve_model(spec)
        pipe = source.generator.device_pipeline()
        assert isinstance(pipe, GenerationPipeline) and pipe.text_encoder is None and pipe.info["steps"] == 3
        assert pipe.denoiser.module is source.generator.denoiser  # the very module generate() runs
        assert source.info["variant"]["id"].endswith("#w=" + pipe.denoiser.weights_sha256[:16])
    with pytest.raises(InputError, match="runs no network"):
        resolve_model("demo").generator.device_pipeline()


def test_palettized_variants_are_timed_with_their_palettized_weights():
    pytest.importorskip("coremltools")  # palettisation runs device build's Core ML compression
    source = resolve_model("demo?steps=2&compression=palettize4")
    pipe = source.generator.device_pipeline()
    assert source.info["variant"]["id"].endswith("#w=" + pipe.denoiser.weights_sha256[:16])
    assert pipe.denoiser.weights_sha256 != resolve_model("demo?steps=2").generator.weights_sha256


def test_cli_sweep_json_and_its_errors(tmp_path):
    from evalsuite.cli import app

    store = tmp_path / "cli-store"
    runner = CliRunner()
    args = ["sweep", MODEL, "--grid", "steps=1,2", "--tasks", "variant-fidelity", "--num-samples", "2",
            "--iterations", "1", "--warmup", "0", "--store", str(store)]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["status"] == "complete" and len(data["variants"]) == 2
    points = sweeps.load_sweep_points(store, data["sweep_id"], "psnr")
    assert data["pareto"]["variant-fidelity.psnr"] == json.loads(json.dumps(
        pareto.to_dict(pareto.report(points, "higher", "variant-fidelity.psnr"))))
    # resuming a complete sweep, and options with --resume, are refused; other backends name `device ingest`
    resume = ["sweep", "--store", str(store), "--resume", data["sweep_id"]]
    for argv, message in [(resume, "is complete"), ([*resume, "--num-samples", "3"], "cannot be changed"),
                          ([*args, "--backend", "iphone"], "device ingest"),
                          (["sweep", MODEL, "--grid", "stepz=1", "--tasks", "variant-fidelity", "--store", str(store)],
                           "has no knob stepz")]:
        res = runner.invoke(app, argv)
        assert res.exit_code == 2 and message in res.output, (argv, res.output)

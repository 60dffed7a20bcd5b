"""The weights store, reference statistics and `evalsuite fd`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite import config
from evalsuite.cli.common import (
    JsonOpt,
    OfflineOpt,
    _print_json,
    _table,
    app,
    friendly,
    out,
    ref_app,
    weights_app,
)


# ------------------------------------------------------------------------------------------------ weights
@weights_app.command("list")
@friendly
def weights_list(as_json: bool = JsonOpt) -> None:
    """Registered weights files and whether each is in the local store."""
    from evalsuite import weights

    rows = weights.list_weights()
    if as_json:
        _print_json(rows)
        return
    _table(f"weights (store: {config.weights_dir()})", ["name", "file", "present", "licence", "sha256"],
           [[r["name"], r["filename"], r["present"], r["licence"],
             r["sha256"][:16] + "…" if r["sha256"]
             else f"unpublished; pinned {(r['pinned_sha256'] or 'on first use')[:16]}"]
            for r in rows])


@weights_app.command("fetch")
@friendly
def weights_fetch(name: str, offline: Optional[bool] = OfflineOpt) -> None:
    """Download NAME into the store (progress bar) and verify its sha256."""
    from evalsuite import weights

    out.print(f"{name}: {weights.fetch(name, offline=offline)}", markup=False, highlight=False)


@weights_app.command("import")
@friendly
def weights_import(name: str, file: Path) -> None:
    """Copy a local FILE into the store as NAME after checking its sha256 (for machines without internet)."""
    from evalsuite import weights

    out.print(f"{name}: imported to {weights.import_file(name, file)}", markup=False, highlight=False)


@weights_app.command("verify")
@friendly
def weights_verify(as_json: bool = JsonOpt) -> None:
    """Re-hash every stored weights file against the registry; exit 1 if any differs."""
    from evalsuite import weights

    rows = weights.verify()
    if as_json:
        _print_json(rows)
    else:
        _table("weights verification", ["name", "present", "sha256 ok", "file"],
               [[r["name"], r["present"], r["ok"], r["file"]] for r in rows])
    if any(r["ok"] is False for r in rows):
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------------ reference statistics
@ref_app.command("list")
@friendly
def ref_list(as_json: bool = JsonOpt) -> None:
    """Known reference statistics (shipped and user-built)."""
    from evalsuite import refstats

    rows = refstats.entries()
    if as_json:
        _print_json(rows)
        return
    _table("reference statistics", ["name", "extractor", "preprocessing", "n", "source"],
           [[e["name"], e.get("extractor"), e.get("preprocessing"), e.get("n"), e.get("source")] for e in rows])


@ref_app.command("build")
@friendly
def ref_build(
    name: str,
    from_: Path = typer.Option(..., "--from", help="Folder of reference images."),
    extractor: str = typer.Option("inception", "--extractor"),
    device: str = typer.Option("auto", "--device"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    workers: Optional[int] = typer.Option(None, "--workers", min=0),
    offline: Optional[bool] = OfflineOpt,
    strict: bool = typer.Option(False, "--strict"),
    frames: int = typer.Option(16, "--frames", min=1, help="Video extractors: frames per clip."),
    frame_stride: int = typer.Option(1, "--frame-stride", min=1),
    frame_start: int = typer.Option(0, "--frame-start", min=0),
    as_json: bool = JsonOpt,
) -> None:
    """Compute statistics (and features) of a folder of images, or of videos with a video extractor (i3d,
    videomae:PATH), and register them as NAME."""
    from evalsuite import refstats
    from evalsuite.runner import resolve_device

    entry = refstats.build(name, from_, extractor, device=resolve_device(device), batch_size=batch_size,
                           num_workers=workers, offline=offline, strict=strict, progress=not as_json,
                           sampling={"num_frames": frames, "stride": frame_stride, "start": frame_start})
    if as_json:
        _print_json(entry)
    else:
        out.print(f"reference '{name}' built from {entry['n']} images -> {config.user_reference_dir() / entry['file']}",
                  highlight=False, soft_wrap=True)


@ref_app.command("import")
@friendly
def ref_import(
    name: str,
    file: Path,
    extractor: str = typer.Option("inception", "--extractor", help="The extractor the statistics were made with."),
    source: str = typer.Option("", "--source", help="Where they come from (dataset, split, resolution)."),
    covariance: str = typer.Option("unbiased", "--covariance", help="unbiased (clean-fid, pytorch-fid) or biased"),
) -> None:
    """Import a clean-fid / pytorch-fid / evalsuite .npz as NAME (no network: the key is taken from the registry)."""
    from evalsuite import refstats
    from evalsuite.catalog import extractor_key

    if covariance not in ("unbiased", "biased"):
        raise typer.BadParameter("use unbiased or biased", param_hint="--covariance")
    entry = refstats.import_npz(name, file, extractor_key(extractor), source, covariance)
    out.print(f"reference '{name}' imported ({entry.get('n') or 'unknown'} samples, {entry['extractor']})",
              markup=False, highlight=False)


@ref_app.command("show")
@friendly
def ref_show(name: str, as_json: bool = JsonOpt) -> None:
    """Metadata and shape of one reference (a name or an .npz path)."""
    from evalsuite import refstats

    ref = refstats.resolve_file_or_name(name)
    info = {"name": ref.name, "id": ref.id, "dim": ref.dim, "n": ref.n, "has_features": ref.feats is not None,
            "path": str(ref.path), **ref.meta}
    if as_json:
        _print_json(info)
        return
    _table(f"reference {ref.name}", ["field", "value"], [[k, v] for k, v in info.items()])


# ------------------------------------------------------------------------------------------------ fd
@app.command("fd")
@friendly
def fd(
    stats_a: str = typer.Argument(..., help="Statistics file (.npz) or reference name."),
    stats_b: str = typer.Argument(..., help="Statistics file (.npz) or reference name."),
    biased_cov: bool = typer.Option(False, "--biased-cov"),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Compare statistics of different extractors."),
    as_json: bool = JsonOpt,
) -> None:
    """Fréchet distance between two statistics files."""
    from evalsuite import refstats

    result = refstats.distance(stats_a, stats_b, biased_cov=biased_cov, allow_mismatch=allow_mismatch)
    if as_json:
        _print_json(result)
    else:
        out.print(f"Fréchet distance: {result['fd']:.6f}  (d={result['dim']}, {result['covariance']} covariance)")

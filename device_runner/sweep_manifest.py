"""The sweep manifest: what `evalsuite sweep` scored and timed, one file per sweep, the join's index.

`<store>/sweeps/<sweep_id>/sweep.json`, schema `evalsuite.sweep/1`, written atomically (a temporary file renamed
into place: readers never see half of one) after every step of every variant, never through a symbolic link and
never outside `<store>/sweeps/`:

| field | type | meaning |
|---|---|---|
| schema | str | `evalsuite.sweep/1` |
| sweep_id | str | `<UTC time>-<model slug>-sweep-<random>`, a plain name (`evalsuite.fsutil.check_name`) |
| model | str | the base model spec the knob values apply to (`demo`, `python:pkg.mod:factory`) |
| grid | {knob: [value, ...]} | the grid as given (`--grid steps=1,2,4`); the variants are every combination |
| tasks | [str] | the quality tasks each variant is scored on |
| backend, device | str | where each variant is timed end to end (`host-torch`, and `cpu` or `cuda`) |
| score_options | dict | num_samples, seed, ref, extractor, batch_size, options (`TASK.NAME`: value) of every run |
| timing | dict | iterations, warmup, release, git_sha of every timing |
| created_at | str | ISO 8601, UTC |
| status | str | `running` (started or interrupted: `--resume SWEEP_ID` finishes it) or `complete` |
| resumed_at, completed_at | [str], str | when it was resumed / finished |
| variants | list | one entry per grid combination, in grid order (below) |

A variant entry: `spec` (`knobs.variant_spec(model, values)`, e.g. `demo?compression=fp16&steps=4`), `knobs` (every
declared knob's value, the defaults included), `variant_id` (model id, knob values, `#w=` weights sha256: the id
every quality result and timing record of the variant carries; null until it is scored), `run_id` (the results
store run holding its quality results), `timing_record` (the file name of its timing record in `<store>/device/`),
`status`: `pending` -> `scoring` (`scoring_since` set: a run of the spec started at or after it belongs to the sweep)
-> `scored` -> `timing` (`timing_since`) -> `complete`. Resuming picks each variant up where it stopped: an interrupted
run is finished with the runner's resume, a stored timing record is adopted, nothing done is done again.
"""

from __future__ import annotations

import json
import secrets
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes, check_name, inside, refuse_symlink

SCHEMA = "evalsuite.sweep/1"
MANIFEST = "sweep.json"
LOCK = "sweep.lock"
VARIANT_STATES = ("pending", "scoring", "scored", "timing", "complete")
_FIELDS = {"sweep_id": str, "model": str, "grid": dict, "tasks": list, "backend": str, "device": str,
           "score_options": dict, "timing": dict, "created_at": str, "status": str, "variants": list}
_VARIANT_FIELDS = {"spec": str, "knobs": dict, "status": str}


def now() -> str:
    """The current UTC time, ISO 8601 to the second (as run manifests write it)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_sweep_id(model: str) -> str:
    """Sortable, unique sweep id: UTC time, a slug of the model spec, `sweep` and random bits."""
    slug = "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")[:32] or "model"
    return check_name(f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{slug}-sweep-{secrets.token_hex(3)}", "sweep id")


def sweep_path(store: str | Path, sweep_id: str, name: str | None = None) -> Path:
    """`<store>/sweeps/<sweep_id>[/<name>]`: plain names only, no link, inside the store once links are resolved."""
    path = Path(store) / "sweeps" / check_name(sweep_id, "sweep id")
    if name is not None:
        path = refuse_symlink(path / check_name(name, "sweep file"))
    return inside(store, path, "the store")


def write(store: str | Path, manifest: dict, *, new: bool = False) -> Path:
    """Write the manifest atomically (durable); `new`: a sweep's first write, which never replaces one."""
    path = sweep_path(store, manifest["sweep_id"], MANIFEST)
    data = json.dumps({"schema": SCHEMA, **{k: v for k, v in manifest.items() if k != "schema"}}, indent=1,
                      default=str).encode()
    try:
        return atomic_write_bytes(path, data, overwrite=not new, durable=True, root=Path(store) / "sweeps")
    except FileExistsError:
        raise InputError(f"sweep manifest {path} already exists", "start a new sweep") from None


def read(store: str | Path, sweep_id: str) -> dict:
    """A sweep's manifest, checked; an unknown id lists the store's sweeps, a damaged file is one InputError."""
    path = sweep_path(store, sweep_id, MANIFEST)
    if not path.is_file():
        folder = Path(store) / "sweeps"
        known = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        raise InputError(f"store {store} has no sweep {sweep_id}",
                         f"known sweeps: {', '.join(known[-10:])}" if known else "start one with `evalsuite sweep`")
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"sweep manifest {path} cannot be read ({type(exc).__name__}: {exc})",
                         "move it out of the store and run the sweep again") from None
    problem = _problem(manifest, sweep_id)
    if problem:
        raise InputError(f"sweep manifest {path} is damaged: {problem}", "move it out of the store and run the "
                         "sweep again")
    return manifest


def _problem(manifest: Any, sweep_id: str) -> str | None:
    if not isinstance(manifest, dict):
        return f"it holds a JSON {type(manifest).__name__}, not an object"
    if manifest.get("schema") != SCHEMA:
        return f"its schema is {manifest.get('schema')!r}, not {SCHEMA}"
    for name, kind in _FIELDS.items():
        if not isinstance(manifest.get(name), kind):
            return f"field {name} is missing or not a {kind.__name__}"
    if manifest["sweep_id"] != sweep_id:
        return f"it names the sweep {manifest['sweep_id']!r}"
    for i, entry in enumerate(manifest["variants"]):
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), t) for k, t in _VARIANT_FIELDS.items()):
            return f"variant {i} lacks spec, knobs or status"
        if entry["status"] not in VARIANT_STATES:
            return f"variant {i} has the status {entry['status']!r}"
        for name in ("variant_id", "run_id", "timing_record"):
            if not isinstance(entry.get(name), (str, type(None))):
                return f"variant {i}: {name} is not a string"
    return None


@contextmanager
def locked(store: str | Path, sweep_id: str) -> Iterator[None]:
    """Held while a process runs the sweep (released by the kernel if it dies); InputError if another holds it."""
    from evalsuite.filelock import held_by_this_process

    with held_by_this_process(sweep_path(store, sweep_id, LOCK), f"sweep {sweep_id} is being run by another process",
                              "wait for it to finish"):
        yield

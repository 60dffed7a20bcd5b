"""Leaderboard data: measured results (latest run per model and task), paper-reported rows (kept apart, never
merged), and on-device timing series. Columns come from each result's stored metric metadata, so a new task
appears without changes here."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import evalsuite.tasks as task_registry
from evalsuite import sample_count
from evalsuite.errors import InputError, UnknownNameError
from evalsuite.leaderboard import adm_table
from evalsuite.results import ResultsStore

PUBLISHED_FILE = Path(__file__).resolve().parent / "published.yaml"
FAMILIES = {"image-quality": "Image quality", adm_table.FAMILY: adm_table.TITLE, "text-image": "Text-image alignment",
            "video": "Video", "autoencoder": "Autoencoder", "on-device": "On-device speed"}
FAMILY_PROTOCOLS = {adm_table.FAMILY: adm_table.PROTOCOL}  # a table's protocol, printed under its title


@dataclass(frozen=True)
class Column:
    family: str
    task: str
    metric: str
    direction: str
    description: str = ""
    unit: str = ""
    label: str = ""  # header text in place of task and metric (the ADM table: "FID")
    protocol: str = ""  # the header's protocol line (the ADM table: "official evaluator (TensorFlow)")
    order: tuple = ()  # sort key within its table, before task and metric

    @property
    def key(self) -> str:
        return f"{self.task}/{self.metric}"


@dataclass
class Cell:
    value: float
    n: int | None = None
    run_id: str | None = None
    provenance: str | None = None  # relative link to the provenance page
    note: str = ""
    comparable: bool = True  # False: fewer samples than the protocol's count (never ranked best)


@dataclass
class Row:
    key: str
    label: str
    kind: str  # "measured" or "reported"
    model_id: str = ""
    citation: str = ""
    setting: str = ""
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Table:
    family: str
    title: str
    columns: list[Column]
    rows: list[Row]
    protocol: str = ""
    claims: list[dict] = field(default_factory=list)  # papers' claims with no absolute number (text, cited)

    def best(self) -> dict[str, str]:
        """Column key -> row key of the best measured value (reported rows are not reproduced, and results from fewer
        samples than their protocol's count are not comparable: never 'best')."""
        out = {}
        for col in self.columns:
            values = [(r.cells[col.key].value, r.key) for r in self.rows
                      if r.kind == "measured" and col.key in r.cells and not math.isnan(r.cells[col.key].value)
                      and r.cells[col.key].comparable]
            if values:
                pick = min if col.direction == "lower" else max
                out[col.key] = pick(values)[1]
        return out


def measured(store: ResultsStore) -> tuple[list[dict], dict[str, Column]]:
    """The latest ok document per (model id, task), and the columns their metric metadata declare."""
    latest: dict[tuple[str, str], dict] = {}
    for row in store.rows():
        if row["status"] != "ok":
            continue
        doc = store.read_document(store.document_path(row["path"]))  # None, with a warning, if gone or unusable
        if doc is None:
            continue
        doc = {**doc, "family": adm_table.family_of(doc["task"], doc.get("family", "other"))}
        key = (doc["model"]["id"], column_task(doc))
        if key not in latest or (doc.get("created_at") or "") > (latest[key].get("created_at") or ""):
            latest[key] = doc
    columns: dict[str, Column] = {}
    for doc in latest.values():
        for metric, info in doc.get("metric_info", {}).items():
            if metric in doc["metrics"]:
                col = Column(doc.get("family", "other"), column_task(doc), metric, info.get("direction", "lower"),
                             info.get("description", ""), info.get("unit", ""))
                columns.setdefault(col.key, _labelled(col, doc["task"], doc.get("protocol"), _version_note(doc)))
    return list(latest.values()), columns


def _published_section(path: Path | None, section: str, required: tuple[str, ...], what: str) -> list[dict]:
    """The entries of one section of published.yaml (`results`, `claims`), each checked to have `required`."""
    path = path or PUBLISHED_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read published results {path}: {exc}", "fix the YAML file") from exc
    entries = data.get(section, []) if isinstance(data, dict) else []
    for i, entry in enumerate(entries):
        missing = [k for k in required if k not in entry]
        if missing:
            raise InputError(f"{path}: {what} {i} ({entry.get('model', '?')}) lacks {', '.join(missing)}",
                             f"each {'published result' if what == 'entry' else what} needs {', '.join(required)}")
    return entries


def load_published(path: Path | None = None) -> list[dict]:
    """Paper-reported results; every entry needs model, task, metric, value, direction, family and citation."""
    return _published_section(path, "results", ("model", "task", "metric", "value", "direction", "family",
                                                "citation"), "entry")


def load_claims(path: Path | None = None) -> list[dict]:
    """Papers' claims that carry no absolute number (a relative improvement): shown as cited text under their
    family's table, never in a column; each needs model, family, citation and claim."""
    return _published_section(path, "claims", ("model", "family", "citation", "claim"), "claim")


def published_column_task(entry: dict) -> str:
    """A published number's column group: its task, with the protocol when the entry names one (as a measured
    result's), so a paper's number sits in the column of the protocol it was computed with."""
    return _with_protocol(str(entry["task"]), entry.get("protocol"))


def _with_protocol(name: str, protocol: str | None) -> str:
    """A column group's name: the task (and version) name, then its protocol in brackets when there is one."""
    return f"{name} [{protocol}]" if protocol else name


def build_tables(store: ResultsStore, published: list[dict], device_rows: list[Row] | None = None,
                 device_columns: list[Column] | None = None, claims: list[dict] | None = None) -> list[Table]:
    """One table per family: measured rows (one per model), then reported rows (one per paper and model)."""
    docs, columns = measured(store)
    for entry in published:
        col = Column(entry["family"], published_column_task(entry), entry["metric"], entry["direction"],
                     entry.get("setting", ""), entry.get("unit", ""))
        columns.setdefault(col.key, _labelled(col, str(entry["task"]), entry.get("protocol")))
    for col in device_columns or []:
        columns.setdefault(col.key, col)
    rows: dict[str, dict[str, Row]] = {}
    for doc in docs:
        family = doc.get("family", "other")
        model = doc["model"]
        row = rows.setdefault(family, {}).setdefault(
            f"measured:{model['id']}", Row(f"measured:{model['id']}", model["spec"], "measured", model["id"]))
        for metric, value in doc["metrics"].items():
            key = f"{column_task(doc)}/{metric}"
            row.cells[key] = Cell(float(value), doc.get("num_samples"), doc["run_id"],
                                  provenance_href(doc["run_id"], doc["task"]), note=_measured_note(doc),
                                  comparable=sample_count.comparable(doc))
    for entry in published:  # keyed apart from measured rows: a shared model name never merges
        key = f"reported:{entry['model']}|{entry['citation']}"
        row = rows.setdefault(entry["family"], {}).setdefault(
            key, Row(key, str(entry["model"]), "reported", citation=str(entry["citation"])))
        row.cells[f"{published_column_task(entry)}/{entry['metric']}"] = Cell(
            float(entry["value"]), note=_published_note(entry))
        row.setting = "; ".join(filter(None, [row.setting, str(entry.get("setting", ""))]))
    for row in device_rows or []:
        rows.setdefault("on-device", {})[row.key] = row
    if adm_table.FAMILY in rows:  # the five official columns always, filled or not: the table's fixed shape
        for task, metric, direction, description in adm_table.OFFICIAL_COLUMNS:
            col = Column(adm_table.FAMILY, _with_protocol(task, task), metric, direction, description)
            columns.setdefault(col.key, _labelled(col, task, task))
    tables = []
    for family in list(FAMILIES) + sorted(set(rows) - set(FAMILIES)):
        fam_cols = [c for c in columns.values() if c.family == family]
        if not fam_cols or family not in rows:
            continue
        fam_cols.sort(key=lambda c: (c.order, c.task, c.metric))
        ordered = sorted(rows[family].values(), key=lambda r: (r.kind != "measured", r.label.lower()))
        tables.append(Table(family, FAMILIES.get(family, family), fam_cols, ordered, FAMILY_PROTOCOLS.get(family, ""),
                            [c for c in claims or [] if c["family"] == family]))
    return tables


def _labelled(col: Column, task: str, protocol: str | None, version_note: str = "") -> Column:
    """A column of the ADM table with its header (metric name, feature path) and order; any other as it is."""
    if col.family != adm_table.FAMILY:
        return col
    label, path, order = adm_table.header(task, protocol, version_note)
    return dataclasses.replace(col, label=label, protocol=path, order=order)


def _version_note(doc: dict) -> str:
    """'task v0' for a result of another version than the installed task's (as column_task names it), else ''."""
    version = _other_version(doc)
    return f"task v{version}" if version else ""


def _other_version(doc: dict) -> str:
    """The result's task version when it is not the installed task's (its own column), else ''."""
    version = str(doc.get("task_version", ""))
    return version if version and version != _current_version(doc["task"]) else ""


def _measured_note(doc: dict) -> str:
    """A measured cell's hover text: 'not comparable' below the protocol's sample count, a sampling interval."""
    notes = [sample_count.note(doc)]
    interval = (doc.get("details") or {}).get("sampling_interval")
    if isinstance(interval, dict) and isinstance(interval.get("low"), (int, float)):
        notes.append(f"sampling {100 * float(interval.get('level', 0.95)):.0f}% interval [{interval['low']:.4g}, "
                     f"{interval.get('high', float('nan')):.4g}] ({interval.get('n_boot')} resamples of the "
                     "generated features)")
    return "; ".join(filter(None, notes))


def _published_note(entry: dict) -> str:
    bound = {"upper": "at most", "lower": "at least"}.get(entry.get("bound", ""), "")
    return " ".join(filter(None, [bound, str(entry.get("setting", ""))]))


def column_task(doc: dict) -> str:
    """A task's column group: results of different scoring protocols (detector, VQA model) never share one, and
    neither do results of different task versions: a result written by another version than the installed task's
    gets its own column, labelled with its version (the current version's column is where published numbers of
    the official protocol sit)."""
    version = _other_version(doc)
    return _with_protocol(f"{doc['task']} v{version}" if version else doc["task"], doc.get("protocol"))


def _current_version(task: str) -> str | None:
    """The installed task's version, or None for a task that is not installed here."""
    try:
        return str(task_registry.get(task).version)
    except UnknownNameError:
        return None


def provenance_href(run_id: str, task: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{run_id}__{task}")
    return f"provenance/{safe}.html"


def doc_for(store: ResultsStore, run_id: str, task: str) -> dict[str, Any]:
    return next(d for d in store.load_run(run_id) if d["task"] == task)

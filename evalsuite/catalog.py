"""What can run here and now: tasks with their needs, checked against the weights store and offline mode."""

from __future__ import annotations

from evalsuite import config, extractors, task_options, weights
from evalsuite.options import ScoreOptions


def task_rows(offline: bool | None = None) -> list[dict]:
    """One row per registered task: family, sample kind, weights (present or not), and whether it can run now."""
    from evalsuite import task as registry

    is_offline = config.offline(offline)
    rows = []
    for cls in registry.all_tasks():
        needs = cls().requirements(ScoreOptions())
        missing = [w for w in needs.weights if not weights.is_present(w)]
        if not missing:
            runnable = "yes" + (" (with --ref)" if needs.reference else "")
            absent = [w for w in needs.optional_weights if not weights.is_present(w)]
            if absent:
                runnable += f"; without {', '.join(absent)} some metrics are skipped"
            if needs.needs:
                runnable += f"; needs {needs.needs}"
        elif is_offline:
            runnable = "no: needs weights " + ", ".join(missing)
        else:
            runnable = "yes, after downloading " + ", ".join(missing)
        rows.append({"task": cls.name, "version": cls.version, "family": cls.family, "sample_kind": cls.sample_kind,
                     "weights": list(needs.weights), "missing_weights": missing, "reference": needs.reference,
                     "optional_weights": list(needs.optional_weights), "needs": needs.needs,
                     "runnable": runnable, "description": cls.description,
                     "metrics": {k: v.direction for k, v in cls.metrics.items()}})
    return rows


def option_rows() -> list[dict]:
    """One row per option of every registered task: task, option, type, default, help, old flags (aliases)."""
    from evalsuite import task as registry

    return [row for cls in registry.all_tasks() for row in task_options.describe(cls)]


def extractor_key(spec: str) -> dict:
    return extractors.key_of(spec)

"""Errors that carry the file at fault and the fix, so the CLI can print something actionable."""

from __future__ import annotations


class EvalsuiteError(Exception):
    """Base error: `message` says what is wrong (naming the file), `fix` says what to do about it."""

    def __init__(self, message: str, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message}\n  fix: {fix}")


class InputError(EvalsuiteError):
    """Bad user input: a folder, image, statistics file or spec that cannot be used."""


class UnknownNameError(EvalsuiteError):
    """A model spec, task, suite, extractor or weights name that is not registered."""


class MissingWeightsError(EvalsuiteError):
    """A weights file that is not in the local weights store (and may not be fetched now)."""

    def __init__(self, name: str, filename: str, path: str, offline: bool):
        self.name = name
        self.filename = filename
        self.path = path
        why = "offline mode is on" if offline else "the download failed"
        super().__init__(
            f"missing weights {filename} ({why}; looked in {path})",
            f"`evalsuite weights fetch {name}` (needs internet), or "
            f"`evalsuite weights import {name} /path/to/{filename}`",
        )


class WeightsIntegrityError(EvalsuiteError):
    """A weights file whose sha256 differs from the registry's."""


class IncompatibleStatsError(EvalsuiteError):
    """Reference statistics computed with another extractor, weights or preprocessing than the run's."""


class TaskSkipped(Exception):
    """Raised by a task that cannot run here and now; the result is stored as skipped with the reason and fix."""

    def __init__(self, reason: str, fix: str | None = None):
        self.reason = reason
        self.fix = fix
        super().__init__(reason)


def refuse_skipped(skipped: list[dict], what: str) -> None:
    """`--strict`: inputs that could not be used (`{"file": ..., "reason": ...}` records) are an error, naming the
    first; the one rule every task's skips go through. `what` names them in the plural, e.g. "sample file(s)"."""
    if skipped:
        first = skipped[0]
        raise InputError(f"{len(skipped)} {what} could not be used, e.g. {first.get('file')}: "
                         f"{first.get('reason')}", "fix or remove them, or run without --strict to skip them")

"""evalsuite: one-command quality evaluation, comparison reports and on-device speed for efficient generative models."""

from __future__ import annotations

from typing import Any

from evalsuite.errors import EvalsuiteError

__version__ = "0.1.0"

# The Python API (evalsuite.api), imported on first use so that `import evalsuite` stays cheap (no torch, no pandas).
_API = ("compute_fid", "compute_kid", "compute_fvd", "frechet_distance", "score", "resume", "load_results",
        "RunResult")

__all__ = ["EvalsuiteError", "RunResult", "__version__", "compute_fid", "compute_fvd", "compute_kid",
           "frechet_distance", "load_results", "resume", "score"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from evalsuite import api

        return getattr(api, name)
    raise AttributeError(f"module 'evalsuite' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

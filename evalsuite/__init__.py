"""evalsuite: one-command quality evaluation, comparison reports and on-device speed for efficient generative models."""

__version__ = "0.1.0"

from evalsuite.errors import EvalsuiteError  # noqa: E402

__all__ = ["__version__", "EvalsuiteError"]

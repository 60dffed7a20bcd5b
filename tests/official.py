"""Import the official implementations that agreement tests run against (vbench, cd-fvd, clip-benchmark, lpips,
pytorch-fid), installed for the tests only by `bash .ci/install-official` into `.official/` without their pins.

The folder goes at the end of `sys.path`, so our environment's numpy, torch and transformers stay the ones
imported. Under CI (`CI` set) a missing package fails the test: an agreement test that silently skips proves nothing.
Elsewhere it skips with the command that installs it.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

OFFICIAL_DIR = Path(__file__).resolve().parent.parent / ".official"


def official(module: str) -> ModuleType:
    """The official package's `module` (e.g. "vbench.utils"), imported from `.official/`."""
    if str(OFFICIAL_DIR) not in sys.path:
        sys.path.append(str(OFFICIAL_DIR))
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"official package for {module} is not importable ({exc}): run `bash .ci/install-official`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

"""Resolve `package.module:attribute` strings (used by `python:` model and extractor specs)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from evalsuite.errors import InputError


def load_object(target: str, what: str) -> Any:
    """Import `package.module:attribute` and return the attribute; errors say which part failed."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(
            f"{what} spec 'python:{target}' is not of the form python:package.module:factory",
            "write e.g. python:my_models.snapgen:load (a module on PYTHONPATH and a callable in it)",
        )
    if os.getcwd() not in sys.path:  # like `python -m`: modules next to where the user runs evalsuite import
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(
            f"cannot import module '{module_name}' for {what} spec 'python:{target}': {exc}",
            "install the package or add its folder to PYTHONPATH",
        ) from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"module '{module_name}' has no attribute '{attr}'", "check the factory's name")
        obj = getattr(obj, part)
    return obj

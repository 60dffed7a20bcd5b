"""Where evalsuite keeps its caches (EVALSUITE_HOME) and whether it may touch the network (offline mode)."""

from __future__ import annotations

import os
from pathlib import Path


def folder(path: str | Path, what: str, fix: str) -> Path:
    """`path` when it is a folder or can be made one; an existing file at it (or above it) is an InputError that
    names `what` (e.g. "--store") and the fix."""
    from evalsuite.errors import InputError

    path = Path(path).expanduser()
    for p in (path, *path.parents):
        if os.path.lexists(p):
            if p.is_dir():
                return path
            at = "" if p == path else f" ({p} is not a folder)"
            raise InputError(f"{what} {path} is not a folder{at}", fix)
    return path


def home() -> Path:
    """The per-user cache root: $EVALSUITE_HOME, else $XDG_CACHE_HOME/evalsuite, else ~/.cache/evalsuite; one that
    is a file is an InputError."""
    env = os.environ.get("EVALSUITE_HOME")
    if env:
        return folder(env, "EVALSUITE_HOME", "point EVALSUITE_HOME at a folder (created if missing), or unset it")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return folder(base / "evalsuite", "the evalsuite cache", "set EVALSUITE_HOME to a folder")


def weights_dir() -> Path:
    return home() / "weights"


def features_dir() -> Path:
    return home() / "features"


def user_reference_dir() -> Path:
    return home() / "reference_stats"


STORE_FIX = "pass --store a folder (created if missing), or set EVALSUITE_STORE to one"


def default_store() -> Path:
    """Default results + samples store: $EVALSUITE_STORE, else ./evalsuite-store in the working directory."""
    env = os.environ.get("EVALSUITE_STORE")
    if env:
        return folder(env, "EVALSUITE_STORE", "point EVALSUITE_STORE at a folder (created if missing), or unset it")
    return folder("evalsuite-store", "the default store", STORE_FIX)


def offline(flag: bool | None = None) -> bool:
    """True when network access is forbidden: an explicit flag wins, else EVALSUITE_OFFLINE=1."""
    if flag is not None:
        return flag
    return os.environ.get("EVALSUITE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}

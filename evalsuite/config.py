"""Where evalsuite keeps its caches (EVALSUITE_HOME) and whether it may touch the network (offline mode)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The per-user cache root: $EVALSUITE_HOME, else $XDG_CACHE_HOME/evalsuite, else ~/.cache/evalsuite."""
    env = os.environ.get("EVALSUITE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "evalsuite"


def weights_dir() -> Path:
    return home() / "weights"


def features_dir() -> Path:
    return home() / "features"


def user_reference_dir() -> Path:
    return home() / "reference_stats"


def default_store() -> Path:
    """Default results + samples store: $EVALSUITE_STORE, else ./evalsuite-store in the working directory."""
    env = os.environ.get("EVALSUITE_STORE")
    return Path(env).expanduser() if env else Path("evalsuite-store")


def offline(flag: bool | None = None) -> bool:
    """True when network access is forbidden: an explicit flag wins, else EVALSUITE_OFFLINE=1."""
    if flag is not None:
        return flag
    return os.environ.get("EVALSUITE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}

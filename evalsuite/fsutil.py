"""Atomic file writes: write to a temporary file in the target's folder, then rename (or link) it into place,
so readers and concurrent writers never see a half-written file and a crash leaves none behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[str], None], *, overwrite: bool = True,
                 suffix: str = ".tmp") -> Path:
    """Call `write(tmp_path)` and move the result to `path`. With `overwrite=False` an existing `path` raises
    FileExistsError and stays untouched (the move is a hard link, which refuses to replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True, durable: bool = False) -> Path:
    """Atomically write `data`; `durable` also forces it to disk before the rename (results, not caches)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())

    return atomic_write(path, write, overwrite=overwrite)

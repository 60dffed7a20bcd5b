"""An exclusive flock on a lock file, as the stores use them: `run.lock` (held by the process scoring a run,
released by the kernel if it dies), a sweep's lock, and `.index.lock` (held while a damaged index is moved aside and
rebuilt)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evalsuite.errors import InputError


@contextmanager
def flock(path: str | Path, *, blocking: bool = True, create: bool = True) -> Iterator[bool | None]:
    """An exclusive flock on the lock file `path` (never through a link) for the block; yields True when held,
    False when another process holds it (non-blocking), None when it cannot be opened and `create` is off.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with flock(f"{folder}/x.lock") as held, flock(f"{folder}/x.lock", blocking=False) as again:
    ...         print(held, again)  # a second open file description is refused while the first holds it
    ...     with flock(f"{folder}/missing.lock", create=False) as absent:
    ...         print(absent)
    True False
    None
    """
    flags = (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        if create:
            raise
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextmanager
def held_by_this_process(path: Path, busy: str, fix: str) -> Iterator[None]:
    """Hold the lock file `path` (its folder created) for the block, or refuse with InputError(`busy` naming the
    file, `fix`) when another process holds it: one process at a time scores a run or runs a sweep."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with flock(path, blocking=False) as free:
        if not free:
            raise InputError(f"{busy} (it holds {path})", fix)
        yield

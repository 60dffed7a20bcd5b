"""Safe store files: the one place that writes into a store, and the one check of names and paths.

* Atomic writes: write to a temporary file in the target's folder, then rename (or link) it into place, so readers
  and concurrent writers never see a half-written file and a crash leaves none behind.
* Appends (`append_line`) open with O_NOFOLLOW | O_APPEND | O_CREAT: one short write per line, never through a link.
* A store file that is a symbolic link is refused (`refuse_symlink`), whether it would be replaced or appended to.
* Names and ids that become file names (run ids, task names, reference names) match one pattern (`check_name`), and
  every path derived from one is checked to lie inside its store (`inside`), links resolved.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from evalsuite.errors import InputError

NAME_PATTERN = re.compile(r"\w[\w.-]{0,127}")  # \w: letters (any script), digits, '_'
NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter, digit or '_', at most 128 characters"


def check_name(name: str, what: str = "name") -> str:
    """Return `name` if it can be used as one file or folder name in a store (no '/', no '..', no leading dot,
    nothing absolute); otherwise raise InputError naming it and the rule."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InputError(f"{what} {name!r} is not a valid name", f"use {NAME_RULE}")
    return name


def inside(root: str | Path, path: str | Path, what: str = "the store") -> Path:
    """Return `path` if it lies inside `root` once every symbolic link is resolved; otherwise raise InputError.
    `path` need not exist yet."""
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise InputError(f"{path} lies outside {what} {root} (it resolves to {real})",
                         "pass a name or id from the store (see `evalsuite runs list` / `evalsuite ref list`), and "
                         "remove links inside the store that point elsewhere")
    return Path(path)


def refuse_symlink(path: str | Path) -> Path:
    """Raise InputError if `path` is a symbolic link (store files are never read or written through links)."""
    if os.path.islink(path):
        raise InputError(f"store file {path} is a symbolic link (to {os.readlink(path)}); evalsuite never reads or "
                         "writes store files through links",
                         f"remove the link ({path}) and rerun; in a shared store, check who made it")
    return Path(path)


def atomic_write(path: str | Path, write: Callable[[str], object], *, overwrite: bool = True,
                 suffix: str = ".tmp", root: str | Path | None = None) -> Path:
    """Call `write(tmp_path)` and move the result to `path`. With `overwrite=False` an existing `path` raises
    FileExistsError and stays untouched (the move is a hard link, which refuses to replace). A `path` that is a
    symbolic link, or that lies outside `root` (when given), raises InputError before anything is written."""
    path = Path(path)
    refuse_symlink(path)
    if root is not None:
        inside(root, path)
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


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True, durable: bool = False,
                       root: str | Path | None = None) -> Path:
    """Atomically write `data`; `durable` also forces it to disk before the rename (results, not caches)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())

    return atomic_write(path, write, overwrite=overwrite, root=root)


def append_line(path: str | Path, line: str, *, root: str | Path | None = None) -> Path:
    """Append one line to a log-like store file (created if absent) with a single O_APPEND write, so concurrent
    writers never interleave; opened with O_NOFOLLOW: a symbolic link (or a FIFO, a device) is refused."""
    path = Path(path)
    refuse_symlink(path)
    if root is not None:
        inside(root, path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"store file {path} is not a regular file", f"remove {path} and rerun")
    fd = _open_nofollow(path, os.O_APPEND)
    try:
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
    return path


def open_for_writing(path: str | Path) -> BinaryIO:
    """A streamed store file (a log written while a process runs, so it cannot be renamed into place) opened for
    binary writing, created or truncated, with O_NOFOLLOW: a symbolic link is refused, never followed."""
    path = Path(path)
    refuse_symlink(path)
    return os.fdopen(_open_nofollow(path, os.O_TRUNC), "wb")


def _open_nofollow(path: Path, mode_flag: int) -> int:
    """A write descriptor on `path` (created if absent) that never follows a symbolic link: one planted between the
    caller's check and this open is refused with the same error."""
    flags = os.O_WRONLY | os.O_CREAT | mode_flag | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse_symlink(path)
        raise


TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}(\.[A-Za-z0-9.]+)?")  # mkstemp names of atomic_write
STALE_TEMP_AGE_S = 3600.0  # an atomic_write temp file untouched this long belongs to a process that died


def is_temp_file(path: str | Path) -> bool:
    """Whether `path` is named like an `atomic_write` temporary file (`.<target>.<8 random chars><suffix>`): a
    half-written file of a live or killed writer, never a sample, result or statistics file."""
    return TEMP_NAME.fullmatch(Path(path).name) is not None


def remove_temp_files(folder: str | Path, *, older_than_s: float = STALE_TEMP_AGE_S, recursive: bool = True) -> int:
    """Delete `atomic_write` temporary files under `folder` (left by a killed process) whose last write is older
    than `older_than_s` (0 when no other process can be writing there); links and folders are left alone. Returns
    how many were removed."""
    import time

    removed = 0
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(folder):
        if not recursive:
            dirnames[:] = []
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if is_temp_file(name) and stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than_s:
                    os.unlink(path)
                    removed += 1
            except OSError:
                continue
    return removed


def package_dir(package: str) -> Path:
    """The folder of an installed package (e.g. the data shipped in evalsuite.tasks or evalsuite.reference_stats)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"package {package} is not installed")
    return Path(spec.origin).parent

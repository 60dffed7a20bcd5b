"""The SQLite index (WAL) of a results store, `<store>/index.sqlite`: one row per result document (run, task,
status, model, time, metrics) for listing and querying without reading every file.

The JSON files are the truth. Every read reconciles the index with them file by file (`reconcile`: a file whose
size, mtime, ctime or inode changed is read again, rows of files that are gone are dropped), and a damaged index
(random bytes, a bad page, a failed quick_check) is moved aside (`index.sqlite.damaged-*`) and rebuilt from them
with a StoreWarning. A write never fails on the index: a row it cannot take is added on the next read.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
import warnings
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

from evalsuite.errors import InputError
from evalsuite.filelock import flock
from evalsuite.fsutil import refuse_symlink
from evalsuite.result_schema import StoreWarning, decode_nonfinite, encode_nonfinite

COLUMNS = ("run_id", "task", "status", "model_spec", "model_id", "created_at", "path", "metrics")
INDEX_VERSION = 2  # PRAGMA user_version of the index layout; an index of another version is rebuilt
T = TypeVar("T")


class ResultsIndex:
    """The index of the store at `root`. `list_files()` lists the store's result documents; `read(path)` reads one,
    checked (None, with a warning, when it cannot be used)."""

    def __init__(self, root: str | Path, list_files: Callable[[], list[Path]],
                 read: Callable[[Path], dict | None]):
        self.root = Path(root)
        self.path = self.root / "index.sqlite"
        self._list_files = list_files
        self._read = read
        self._checked = False  # the index passed PRAGMA quick_check once through this object
        self._bad: dict[str, str] = {}  # unusable result files (relative path -> file signature), warned once

    def connect(self) -> sqlite3.Connection:
        """A connection to the index (created, switched to WAL and to the current layout as needed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):  # sqlite opens these by name: never through a link
            refuse_symlink(f"{self.path}{suffix}")
        con = sqlite3.connect(self.path, timeout=60)
        try:
            for attempt in range(600):  # switching a new index to WAL fails at once, without the busy wait, while
                try:                     # another process holds a lock on it: retry for up to the same 60 s
                    con.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if attempt == 599 or "locked" not in str(exc):
                        raise
                    time.sleep(0.1)
            con.execute("PRAGMA busy_timeout=60000")
            if con.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:  # an older layout: rebuilt
                con.execute("DROP TABLE IF EXISTS results")
                con.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            con.execute(
                "CREATE TABLE IF NOT EXISTS results (run_id TEXT, task TEXT, status TEXT, model_spec TEXT, "
                "model_id TEXT, created_at TEXT, path TEXT, metrics TEXT, file_sig TEXT, PRIMARY KEY (run_id, task))")
        except BaseException:
            con.close()
            raise
        return con

    def use(self, use: Callable[[sqlite3.Connection], T]) -> T:
        """`use(connection)`; a damaged index (random bytes, a bad page: SQLite's DatabaseError, or a failed
        quick_check on this object's first use) is moved aside, rebuilt from the result files with a warning, and
        `use` retried once."""
        for attempt in range(2):
            try:
                with closing(self.connect()) as con:
                    if not self._checked:
                        check = con.execute("PRAGMA quick_check").fetchone()[0]
                        if check != "ok":
                            raise sqlite3.DatabaseError(f"integrity check failed: {check.splitlines()[-1]}")
                        self._checked = True
                    return use(con)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                    raise
                if attempt:
                    raise InputError(f"the index {self.path} cannot be used even after a rebuild ({exc})",
                                     f"check the disk and permissions of {self.root}; the index is rebuilt from "
                                     "the result files whenever it is missing") from exc
                self._heal(exc)
        raise AssertionError("unreachable")

    def _heal(self, exc: Exception) -> None:
        """Move a damaged index and its WAL aside (once, however many processes notice) and rebuild it."""
        with flock(self.root / ".index.lock"):
            if self._healthy():  # another process already replaced it
                return
            stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
            aside = self.root / f"index.sqlite.damaged-{stamp}"
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    os.rename(f"{self.path}{suffix}", f"{aside}{suffix}")
                except FileNotFoundError:
                    pass
            with closing(self.connect()) as con:
                count = self.reconcile(con)
            self._checked = True
        warnings.warn(f"the results index {self.path} was damaged ({exc}); moved aside to {aside.name} and "
                      f"rebuilt from the {count} result files", StoreWarning, stacklevel=5)

    def _healthy(self) -> bool:
        if not self.path.exists():
            return True
        try:
            with closing(self.connect()) as con:
                return con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            return False

    def add(self, doc: dict, path: Path) -> None:
        """Add one just-written document to the index. The file is already safe: an index that cannot take the
        row is healed, or left for the next read to reconcile, with a warning; a write never fails here."""
        row = _row(doc, str(path.relative_to(self.root)), _file_sig(os.stat(path)))
        try:
            self.use(lambda con: _upsert(con, [row]))
        except (InputError, sqlite3.DatabaseError) as exc:
            warnings.warn(f"result {path} is stored, but the index could not take it ({exc}); it is added when "
                          "the store is next read", StoreWarning, stacklevel=3)

    def rebuild(self) -> int:
        """Rebuild the index from the result files; returns the number of indexed documents."""
        def rebuild(con: sqlite3.Connection) -> int:
            with con:
                con.execute("DELETE FROM results")
            return self.reconcile(con)

        return self.use(rebuild)

    def reconcile(self, con: sqlite3.Connection) -> int:
        """Make the index match the result files, file by file: rows of files that are gone or changed (size,
        mtime, ctime or inode differ) are dropped, files without an up-to-date row are read, checked and indexed.
        Unusable files are skipped with a warning. Returns the number of indexed documents."""
        indexed = dict(con.execute("SELECT path, file_sig FROM results").fetchall())  # before listing the files
        on_disk = {}
        for path in self._list_files():
            try:
                on_disk[str(path.relative_to(self.root))] = _file_sig(os.stat(path))
            except OSError:
                continue
        stale = [(p, sig) for p, sig in indexed.items() if p not in on_disk or on_disk[p] != sig]
        fresh = [p for p, sig in on_disk.items() if indexed.get(p) != sig and self._bad.get(p) != sig]
        rows = []
        for rel in fresh:
            doc = self._read(self.root / rel)
            if doc is None:
                self._bad[rel] = on_disk[rel]
            else:
                rows.append(_row(doc, rel, on_disk[rel]))
        if stale or rows:
            with con:
                con.executemany("DELETE FROM results WHERE path = ? AND file_sig IS ?", stale)
            _upsert(con, rows)
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def rows(self, run_id: str | None = None) -> list[dict]:
        """Index rows (newest first), optionally for one run, after reconciling the index with the files."""
        def select(con: sqlite3.Connection) -> list[tuple]:
            self.reconcile(con)
            query = f"SELECT {', '.join(COLUMNS)} FROM results" + (" WHERE run_id = ?" if run_id else "") + \
                " ORDER BY created_at DESC, task"
            return con.execute(query, (run_id,) if run_id else ()).fetchall()

        return [dict(zip(COLUMNS, r), metrics=decode_nonfinite(json.loads(r[7]))) for r in self.use(select)]


def _file_sig(st: os.stat_result) -> str:
    """What identifies one version of a file: replacing or copying it in changes its ctime or inode."""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _row(doc: dict, rel: str, sig: str) -> tuple:
    model = doc.get("model") or {}
    return (doc["run_id"], doc["task"], doc["status"], model.get("spec"), model.get("id"), doc.get("created_at"),
            rel, json.dumps(encode_nonfinite(doc.get("metrics", {})), allow_nan=False), sig)


def _upsert(con: sqlite3.Connection, rows: list[tuple]) -> None:
    with con:
        con.executemany(f"INSERT OR REPLACE INTO results VALUES ({','.join('?' * (len(COLUMNS) + 1))})", rows)

"""Content hashes: of files (streamed), of JSON-able specs, and of a module's weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-able object with sorted keys, so equal specs give equal hashes."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode())


def sha256_state_dict(module: Any) -> str:
    """Hash of an nn.Module's parameters and buffers (names, dtypes, shapes, bytes), independent of pickling."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def sha256_file_remembered(path: str | Path, hasher: Any = None) -> str:
    """sha256 of a large file (a model folder's weights: tens of GB), hashed once and remembered across runs under
    $EVALSUITE_HOME/hash-cache, keyed by the file's identity (resolved path, device, inode, size, mtime_ns,
    ctime_ns; ctime cannot be set back by a user, so changed contents are hashed again). A file that changes while
    it is hashed is not remembered. `hasher` hashes a file that is not remembered (default `sha256_file`)."""
    from evalsuite import config
    from evalsuite.fsutil import atomic_write_bytes

    resolved = Path(path).resolve()

    def identity() -> list:
        st = resolved.stat()
        return [str(resolved), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    before = identity()
    remembered = config.home() / "hash-cache" / f"{sha256_json(before)}.sha256"
    try:
        digest = remembered.read_text().strip()
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return digest
    except OSError:
        pass
    digest = (hasher or sha256_file)(resolved)
    if identity() == before:
        remembered.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(remembered, digest.encode())
    return digest

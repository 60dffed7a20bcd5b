"""Content hashes: of files (streamed), of JSON-able specs, and of a module's weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

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


def files_digest(root: str | Path, files: Iterable[str | Path]) -> tuple[str, dict[str, str]]:
    r"""(digest, {relative posix path: sha256}) of a model folder's `files` (its weights, and the configs a caller
    counts as part of the model): the digest is the sha256 of the lines "<relative posix path>\t<file sha256>\n" in
    sorted path order; each file is hashed once and remembered while unchanged (`sha256_file_remembered`). The one
    identity of a model folder for every task that records one.

    >>> import tempfile; folder = Path(tempfile.mkdtemp()); _ = (folder / "model.safetensors").write_bytes(b"w")
    >>> digest, files = files_digest(folder, [folder / "model.safetensors"])
    >>> digest == sha256_bytes(f"model.safetensors\t{sha256_bytes(b'w')}\n".encode()), list(files)
    (True, ['model.safetensors'])
    """
    base = Path(root)
    digests = {Path(f).relative_to(base).as_posix(): sha256_file_remembered(f) for f in files}
    text = "".join(f"{name}\t{digest}\n" for name, digest in sorted(digests.items()))
    return sha256_bytes(text.encode()), dict(sorted(digests.items()))


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

"""Per-sample results of a scoring model, cached like features: one folder per scorer identity (task, version,
protocol, weights sha256, device, options: whatever changes the number), one JSON file per image content hash holding
the result for each prompt, written atomically. A second run of a suite over the same images asks the model nothing.

>>> import tempfile
>>> cache = ScoreCache({"task": "demo", "weights": "abc"}, root=Path(tempfile.mkdtemp()))
>>> cache.get("f" * 64, "a cat") is None
True
>>> cache.put_many("f" * 64, {"a cat": [0.25, 3]})
>>> cache.get("f" * 64, "a cat")
[0.25, 3]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite import config
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.hashing import sha256_bytes, sha256_file, sha256_json


class ScoreCache:
    """Results by (image content sha256, prompt) for one scorer identity; damaged or linked entries are ignored
    (recomputed and rewritten), never trusted."""

    def __init__(self, identity: dict, root: Path | None = None):
        self.identity = identity
        self.root = root or config.home() / "scores"
        self.dir = self.root / sha256_json(identity)[:24]
        self.hits = 0  # counted by callers that report them (the VLM judge)
        self.misses = 0

    def _path(self, content_sha: str) -> Path:
        if len(content_sha) != 64 or not content_sha.isalnum():
            raise ValueError(f"{content_sha!r} is not a sha256 hex digest")
        return self.dir / content_sha[:2] / f"{content_sha}.json"

    def _entries(self, content_sha: str) -> dict[str, Any]:
        path = self._path(content_sha)
        if path.is_symlink():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _key(prompt: str | None) -> str:
        return sha256_bytes((prompt or "").encode())[:32]

    def get(self, content_sha: str, prompt: str | None) -> Any | None:
        """The cached result of this image with this prompt (None: not cached)."""
        return self._entries(content_sha).get(self._key(prompt))

    def get_many(self, content_sha: str, prompts: Sequence[Any]) -> dict[Any, Any]:
        """The cached results of one media item for these prompts (or questions), read once; absent ones left out."""
        entries = self._entries(content_sha)
        return {p: entries[self._key(p)] for p in prompts if self._key(p) in entries}

    def put_many(self, content_sha: str, results: Mapping[Any, Any]) -> None:
        """Store results of one image by prompt (JSON-able values), merged with what is cached."""
        key_file = self.dir / "key.json"
        if not key_file.exists():
            atomic_write_bytes(key_file, json.dumps(self.identity, indent=1, default=str).encode(), root=self.root)
        merged = {**self._entries(content_sha), **{self._key(p): v for p, v in results.items()}}
        atomic_write_bytes(self._path(content_sha), json.dumps(merged).encode(), root=self.root)


def lookup(cache: ScoreCache | None, items: Sequence[tuple[str | Path, Any]]) -> tuple[dict[int, Any], dict[int, str]]:
    """For (media file, key) items: the cached results by item index, and the content sha256 of every readable file
    by index (to store the fresh results under). Without a cache nothing is hashed or found; a file that cannot be
    read is left out of both (the caller's reader says why).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "a.png").write_bytes(b"not really a png")
    16
    >>> cache = ScoreCache({"task": "demo"}, root=folder / "scores")
    >>> found, shas = lookup(cache, [(folder / "a.png", "a cat")])
    >>> found, len(shas[0])
    ({}, 64)
    >>> cache.put_many(shas[0], {"a cat": 0.5})
    >>> lookup(cache, [(folder / "a.png", "a cat"), (folder / "gone.png", "a dog")])[0]
    {0: 0.5}
    """
    found: dict[int, Any] = {}
    shas: dict[int, str] = {}
    if cache is None:
        return found, shas
    for i, (path, key) in enumerate(items):
        try:
            shas[i] = sha256_file(path)
        except OSError:
            continue
        hit = cache.get(shas[i], key)
        if hit is not None:
            found[i] = hit
    return found, shas


def fill(cache: ScoreCache | None, items: Sequence[tuple[str | Path, Any]],
         compute: Callable[[list[int]], Mapping[int, Any]], batch: int = 1) -> tuple[dict[int, Any], set[int]]:
    """Every (media file, key) item's result: read from the cache where it is there, else computed `batch` items at
    a time by `compute(indices) -> {index: result}` and stored. A str result is the reason an item could not be
    scored (never stored), as is any result that is not JSON. Returns (results by index, the indices read from the
    cache); without a cache everything is computed.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in "ab":
    ...     _ = (folder / name).write_bytes(name.encode())
    >>> cache = ScoreCache({"task": "demo"}, root=folder / "scores")
    >>> items = [(folder / "a", "p"), (folder / "b", "p"), (folder / "gone", "p")]
    >>> score = lambda idx: {i: "cannot read it" if i == 2 else 10 * i for i in idx}
    >>> fill(cache, items, score, batch=2)
    ({0: 0, 1: 10, 2: 'cannot read it'}, set())
    >>> fill(cache, items, score)[1]
    {0, 1}
    """
    found, shas = lookup(cache, items)
    results: dict[int, Any] = dict(found)
    todo = [i for i in range(len(items)) if i not in found]
    for start in range(0, len(todo), max(1, batch)):
        for i, value in compute(todo[start:start + max(1, batch)]).items():
            results[i] = value
            if cache is not None and i in shas and not isinstance(value, str) and _jsonable(value):
                cache.put_many(shas[i], {items[i][1]: value})
    return results, set(found)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class ScorerInfo:
    """What a scorer is, known before its model is built (from the weights store's remembered digests): its
    protocol, the sha256 of its weights (a digest, or named digests), and what else its result records. A task keys
    the score cache with it and builds the model only when an image misses the cache.

    >>> ScorerInfo("clipscore-ViT-B-32-openai", "a" * 64).protocol
    'clipscore-ViT-B-32-openai'
    """

    protocol: str
    weights_sha256: Any
    details: dict = field(default_factory=dict)


def scorer_identity(task: Any, scorer: Any, ctx: Any, *others: Any, **extra: Any) -> dict | None:
    """What a per-image result depends on, as a score cache key (`score_per_image`, GenEval's rows): the task and
    its version, each scorer's protocol and weights sha256 (and config sha256 where it has one), the device
    (precision differs by device), the task's options and `extra`. None (no caching) when a scorer's weights have no
    recorded digest (e.g. a model object built in memory)."""
    scorers = (scorer, *others)
    if not all(getattr(s, "weights_sha256", None) and getattr(s, "protocol", None) for s in scorers):
        return None
    described = [{"protocol": s.protocol, "weights": s.weights_sha256,
                  **({"config": s.config_sha256} if getattr(s, "config_sha256", None) else {})} for s in scorers]
    first = described[0]
    return {"task": task.name, "version": task.version, "protocol": first["protocol"], "weights": first["weights"],
            **({"config": first["config"]} if "config" in first else {}),
            **({"also": described[1:]} if others else {}),
            "device": str(ctx.device), "options": repr(getattr(task, "options", None)), **extra}

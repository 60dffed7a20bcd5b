"""Every test runs offline, with its own EVALSUITE_HOME and store, so nothing touches the network or the user's caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "evalsuite-home"
    monkeypatch.setenv("EVALSUITE_HOME", str(home))
    monkeypatch.setenv("EVALSUITE_OFFLINE", "1")
    monkeypatch.setenv("EVALSUITE_STORE", str(tmp_path / "store"))
    return home


def write_images(folder: Path, count: int, size=(32, 32), seed: int = 0, offset: float = 0.0) -> list[Path]:
    """`count` seeded PNGs: smooth random colour fields plus noise (shifted by `offset` to make a distinct set)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        h, w = size
        base = rng.uniform(0, 255, 3) * np.ones((h, w, 3))
        img = np.clip(base + rng.normal(offset, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.png"
        Image.fromarray(img).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def image_folders(tmp_path):
    """Two folders of 40 images each, from different distributions."""
    a = tmp_path / "imgs_a"
    b = tmp_path / "imgs_b"
    write_images(a, 40, seed=1)
    write_images(b, 40, seed=2, offset=30.0)
    return a, b

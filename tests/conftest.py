"""Every test runs offline, with its own EVALSUITE_HOME and store, so nothing touches the network or the user's
caches."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def install_standin_weights(monkeypatch, name: str, path: Path) -> Path:
    """Register a test-made stand-in file under a real weights name (its own sha256, for this test only) and import
    it into the store: the wiring is exercised; the file is never presented as the real weights."""
    import dataclasses

    from evalsuite import weights
    from evalsuite.hashing import sha256_file

    spec = dataclasses.replace(weights.REGISTRY[name], sha256=sha256_file(path))
    monkeypatch.setitem(weights.REGISTRY, name, spec)
    return weights.import_file(name, path)


@pytest.fixture
def tiny_openai_clip(tmp_path, monkeypatch):
    """A tiny CLIP in OpenAI's state-dict layout (random init, fixed seed) as `clip-vit-b-32-openai`."""
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=32, image_size=224),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))
    path = tmp_path / "ViT-B-32.pt"
    torch.save(model.state_dict(), path)
    install_standin_weights(monkeypatch, "clip-vit-b-32-openai", path)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by playwright (never a downloaded browser), with the flags that keep it off
    the network; a skip where it is not installed, a failure under CI (which installs it)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI: Debian's chromium must be installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()

"""Issue 14 item 3: weights are verified when used, not only when fetched, and caches are keyed by the digest of the
file actually loaded (trust-on-first-use entries included)."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest
import torch
from typer.testing import CliRunner

from evalsuite import config, weights
from evalsuite.cli import app
from evalsuite.errors import WeightsIntegrityError
from evalsuite.hashing import sha256_file

NAME = "tiny-use-weights"
FILENAME = "tiny-use-weights.bin"
PAYLOAD = b"tiny weights used at run time\x00" * 50


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    spec = weights.WeightsSpec(name=NAME, filename=FILENAME, url=(tmp_path / "src" / FILENAME).as_uri(),
                               sha256=hashlib.sha256(PAYLOAD).hexdigest(), size_bytes=None, licence="test",
                               description="test")
    monkeypatch.setitem(weights.REGISTRY, NAME, spec)
    src = tmp_path / "src" / FILENAME
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    weights.import_file(NAME, src)
    return src


def _replace(path, data: bytes) -> None:
    """Replace a store file in place, keeping its size and modification time (the cheapest tampering)."""
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_require_refuses_a_file_replaced_inside_the_store(tiny):
    path, digest = weights.require_verified(NAME)
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    _replace(path, PAYLOAD[:-1] + b"X")
    with pytest.raises(WeightsIntegrityError) as info:
        weights.require(NAME)
    err = info.value
    assert str(path) in err.message and NAME in err.message
    assert f"evalsuite weights fetch {NAME}" in err.fix and f"evalsuite weights import {NAME}" in err.fix


def test_digest_is_cached_per_file_identity(tiny, monkeypatch):
    calls = []
    real = weights.sha256_file
    monkeypatch.setattr(weights, "sha256_file", lambda p: calls.append(p) or real(p))
    weights.require(NAME)
    weights.require(NAME)
    assert len(calls) == 1  # hashed once per process while the file is unchanged
    path = weights.local_path(NAME)
    path.write_bytes(PAYLOAD + b"grown")
    with pytest.raises(WeightsIntegrityError):
        weights.require(NAME)
    assert len(calls) == 2


def test_fetch_replaces_a_damaged_file_instead_of_keeping_it(tiny, monkeypatch):
    """The fix the error names must work: `weights fetch` downloads again when the stored file is wrong."""
    path = weights.local_path(NAME)
    path.write_bytes(b"damaged")
    assert weights.fetch(NAME, offline=False, progress=False) == path
    assert path.read_bytes() == PAYLOAD
    weights.require(NAME)
    # offline, a damaged file is an integrity error naming both fixes, never a silent success
    path.write_bytes(b"damaged again")
    with pytest.raises(WeightsIntegrityError) as info:
        weights.fetch(NAME, offline=True)
    assert f"evalsuite weights import {NAME}" in info.value.fix


def test_cli_fetch_repairs_a_damaged_file(tiny):
    runner = CliRunner()
    weights.local_path(NAME).write_bytes(b"damaged")
    result = runner.invoke(app, ["weights", "fetch", NAME, "--online"])
    assert result.exit_code == 0, result.output
    assert weights.local_path(NAME).read_bytes() == PAYLOAD


def test_malformed_pins_file_is_an_error_not_an_empty_pin_list(monkeypatch, tmp_path):
    spec = weights.WeightsSpec(name="tofu-use", filename="tofu-use.bin", url="https://example.invalid/t",
                               sha256=None, size_bytes=None, licence="test", description="test")
    monkeypatch.setitem(weights.REGISTRY, spec.name, spec)
    first = tmp_path / "first.bin"
    first.write_bytes(b"first")
    weights.import_file(spec.name, first)
    (config.weights_dir() / "pins.json").write_text("{not json")
    with pytest.raises(WeightsIntegrityError) as info:
        weights.require(spec.name)
    assert "pins.json" in info.value.message


# ------------------------------------------------------------------------------------------------ extractors
def test_clip_extractor_key_is_the_loaded_files_digest_and_a_replaced_file_is_refused(tiny_openai_clip):
    from evalsuite import extractors

    ext = extractors.build("clip")
    stored = weights.local_path("clip-vit-b-32-openai")
    assert ext.key["weights_sha256"] == sha256_file(stored)
    # someone replaces the CLIP file inside the store with another network of the same layout
    other = {k: v + 1 if v.is_floating_point() else v for k, v in torch.load(stored, weights_only=True).items()}
    torch.save(other, stored)
    with pytest.raises(WeightsIntegrityError) as info:
        extractors.build("clip")
    assert "evalsuite weights fetch clip-vit-b-32-openai" in info.value.fix


def test_unpinned_trust_on_first_use_file_keys_caches_by_its_digest(tmp_path):
    """i3d has no published digest: a file copied into the store by hand used to be keyed by '' (every copy the
    same cache key). It is now pinned on first use and keyed by its digest; a different copy is then refused."""
    from evalsuite import video_features
    from tests.test_fvd import I3DStandIn

    dest = weights.local_path(video_features.I3D_WEIGHTS)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(I3DStandIn().eval()), str(dest))
    ext = video_features.build("i3d", sampling={"num_frames": 8})
    assert ext.weights_sha256 == sha256_file(dest)
    assert ext.key["weights_sha256"] == sha256_file(dest)
    assert weights.expected_digest(video_features.I3D_WEIGHTS) == sha256_file(dest)  # pinned
    net = I3DStandIn()
    with torch.no_grad():
        net.fc.bias.add_(1.0)
    shutil.copyfile(dest, tmp_path / "old.pt")
    torch.jit.save(torch.jit.script(net.eval()), str(dest))
    with pytest.raises(WeightsIntegrityError) as info:
        video_features.build("i3d", sampling={"num_frames": 8})
    assert "pin" in info.value.message

"""Model-folder weights are hashed once and remembered by file identity across runs (a 45 GB CLIP-FlanT5 is not
re-read on every run); a changed file is hashed again."""

from __future__ import annotations

import hashlib
import os

import pytest

from evalsuite import hashing


def test_remembered_digest_is_the_files_and_is_reused_until_the_file_changes(tmp_path, monkeypatch):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights v1")
    assert hashing.sha256_file_remembered(weights) == hashlib.sha256(b"weights v1").hexdigest()

    def refuse(path):
        raise AssertionError("hashed again")

    with monkeypatch.context() as patched:
        patched.setattr(hashing, "sha256_file", refuse)
        assert hashing.sha256_file_remembered(weights) == hashlib.sha256(b"weights v1").hexdigest()  # remembered
    weights.write_bytes(b"weights v2, same folder")
    assert hashing.sha256_file_remembered(weights) == hashlib.sha256(b"weights v2, same folder").hexdigest()


def test_a_damaged_entry_is_hashed_again(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"x" * 100)
    hashing.sha256_file_remembered(weights)
    (entry,) = (tmp_path / "evalsuite-home" / "hash-cache").glob("*.sha256")
    entry.write_text("not a digest")
    assert hashing.sha256_file_remembered(weights) == hashlib.sha256(b"x" * 100).hexdigest()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_a_link_is_keyed_by_its_target(tmp_path):
    target = tmp_path / "real.pt"
    target.write_bytes(b"abc")
    link = tmp_path / "link.pt"
    link.symlink_to(target)
    assert hashing.sha256_file_remembered(link) == hashing.sha256_file_remembered(target)

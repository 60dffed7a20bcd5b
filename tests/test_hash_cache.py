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


def test_weights_digests_are_remembered_across_processes(tmp_path, monkeypatch):
    """The weights store verifies a file on every use; a new process (here: its per-process table emptied) reads the
    remembered digest instead of hashing gigabytes again, until the file changes."""
    from evalsuite import weights

    path = tmp_path / "big.pt"
    path.write_bytes(b"weights" * 1000)
    first = weights.file_digest(path)
    monkeypatch.setattr(weights, "_DIGESTS", {})

    def refuse(p):
        raise AssertionError("hashed again")

    with monkeypatch.context() as patched:
        patched.setattr(weights, "sha256_file", refuse)
        assert weights.file_digest(path) == first
    path.write_bytes(b"other weights")
    monkeypatch.setattr(weights, "_DIGESTS", {})
    assert weights.file_digest(path) == hashlib.sha256(b"other weights").hexdigest()


def test_every_model_folder_identity_is_one_formula(tmp_path):
    """PickScore, the judge, CLIP-FlanT5 (VQAScore) and T2I-CompBench's BLIP folder all name a model folder by
    `hashing.files_digest`: sha256 of "<relative path>\\t<sha256>\\n" lines in path order (its doctest runs here)."""
    import doctest

    from evalsuite.tasks.compbench import blip_vqa
    from evalsuite.tasks.judge.transformers_judge import folder_fingerprint
    from evalsuite.tasks.preference.pickscore import weights_digest
    from evalsuite.tasks.vqascore.clip_flant5 import folder_digest

    assert doctest.testmod(hashing).failed == 0
    (tmp_path / "b.safetensors").write_bytes(b"second")
    (tmp_path / "a.safetensors").write_bytes(b"first")
    lines = "".join(f"{name}\t{hashlib.sha256(data).hexdigest()}\n"
                    for name, data in (("a.safetensors", b"first"), ("b.safetensors", b"second")))
    expected = hashlib.sha256(lines.encode()).hexdigest()
    assert weights_digest(tmp_path) == folder_fingerprint(tmp_path)[0] == blip_vqa.folder_digest(tmp_path) == expected
    assert folder_digest(tmp_path) == folder_fingerprint(tmp_path)[1] == {
        "a.safetensors": hashlib.sha256(b"first").hexdigest(), "b.safetensors": hashlib.sha256(b"second").hexdigest()}
    (tmp_path / "config.json").write_text("{}")  # BLIP's identity also covers its configs; the others' do not
    assert blip_vqa.folder_digest(tmp_path) != expected == weights_digest(tmp_path)

"""The weights store: registry, verified import and download, offline errors, verification, CLI."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalsuite import config, weights
from evalsuite.cli import app
from evalsuite.errors import MissingWeightsError, WeightsIntegrityError

runner = CliRunner()

NAME = "tiny-test-weights"
FILENAME = "tiny-test-weights.bin"
PAYLOAD = b"tiny weights payload\x00\x01\x02" * 100


def _all_files(folder: Path) -> list[str]:
    """Every file under `folder`, hidden ones included (temp files start with a dot)."""
    if not folder.exists():
        return []
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)


def _spec(url: str = "https://example.invalid/tiny-test-weights.bin", sha256: str | None = None,
          name: str = NAME) -> weights.WeightsSpec:
    return weights.WeightsSpec(
        name=name, filename=FILENAME, url=url, sha256=sha256 or hashlib.sha256(PAYLOAD).hexdigest(),
        size_bytes=len(PAYLOAD), licence="test-only", description="a tiny file for the weights-store tests")


@pytest.fixture
def source_file(tmp_path) -> Path:
    path = tmp_path / "downloads" / FILENAME
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def registry():
    """The real registry, to which tests add their temporary specs; put back as it was afterwards."""
    before = dict(weights.REGISTRY)
    yield weights.REGISTRY
    for name in weights.REGISTRY.names():
        if name not in before:
            del weights.REGISTRY[name]
    for name, spec in before.items():
        weights.REGISTRY[name] = spec


@pytest.fixture
def tiny(registry):
    spec = _spec()
    registry[spec.name] = spec
    return spec


def test_store_lives_in_evalsuite_home(isolated_home):
    assert config.weights_dir() == isolated_home / "weights"


def test_import_right_file_installs_and_verifies(tiny, source_file, isolated_home):
    assert not weights.is_present(NAME)
    dest = weights.import_file(NAME, source_file)
    assert dest == isolated_home / "weights" / FILENAME
    assert dest.read_bytes() == PAYLOAD
    assert source_file.read_bytes() == PAYLOAD  # copied, not moved
    assert weights.is_present(NAME)
    assert _all_files(config.weights_dir()) == [FILENAME]  # no temp file left next to it
    (row,) = weights.verify([NAME])
    assert row["present"] is True and row["ok"] is True
    assert row["sha256"] == tiny.sha256
    # the full verification covers the registered entries that are absent as well
    rows = {r["name"]: r for r in weights.verify()}
    assert rows[NAME]["ok"] is True
    assert rows["inception-2015-12-05"]["present"] is False and rows["inception-2015-12-05"]["ok"] is None


def test_import_wrong_file_raises_and_leaves_nothing(tiny, tmp_path):
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(PAYLOAD + b"tampered")
    with pytest.raises(WeightsIntegrityError) as info:
        weights.import_file(NAME, wrong)
    assert str(wrong) in info.value.message
    assert tiny.sha256 in info.value.message
    assert not weights.is_present(NAME)
    assert _all_files(config.weights_dir()) == []


def test_import_wrong_file_does_not_replace_a_good_one(tiny, source_file, tmp_path):
    weights.import_file(NAME, source_file)
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"not the weights")
    with pytest.raises(WeightsIntegrityError):
        weights.import_file(NAME, wrong)
    assert weights.local_path(NAME).read_bytes() == PAYLOAD
    assert _all_files(config.weights_dir()) == [FILENAME]


def test_fetch_offline_raises_missing_weights_with_both_fixes(tiny, monkeypatch):
    with pytest.raises(MissingWeightsError) as info:
        weights.fetch(NAME)  # EVALSUITE_OFFLINE=1 from conftest
    err = info.value
    assert FILENAME in err.message
    assert "offline" in err.message
    assert f"evalsuite weights fetch {NAME}" in err.fix
    assert f"evalsuite weights import {NAME}" in err.fix
    assert err.name == NAME and err.filename == FILENAME
    assert _all_files(config.weights_dir()) == []
    # an explicit offline=True wins even when the environment allows the network
    monkeypatch.delenv("EVALSUITE_OFFLINE")
    with pytest.raises(MissingWeightsError):
        weights.fetch(NAME, offline=True)


def test_require_offline_raises_and_returns_path_when_present(tiny, source_file):
    with pytest.raises(MissingWeightsError):
        weights.require(NAME)
    weights.import_file(NAME, source_file)
    assert weights.require(NAME) == weights.local_path(NAME)
    assert weights.fetch(NAME) == weights.local_path(NAME)  # present: no download, even offline


def test_corrupted_stored_file_fails_verification(tiny, source_file):
    dest = weights.import_file(NAME, source_file)
    dest.write_bytes(PAYLOAD[:-1] + b"X")
    (row,) = weights.verify([NAME])
    assert row["present"] is True and row["ok"] is False
    assert row["sha256"] != tiny.sha256

    result = runner.invoke(app, ["weights", "verify"])
    assert result.exit_code == 1, result.output
    result = runner.invoke(app, ["weights", "verify", "--json"])
    assert result.exit_code == 1, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows[NAME]["ok"] is False


def test_cli_verify_exits_zero_when_all_present_files_match(tiny, source_file):
    weights.import_file(NAME, source_file)
    result = runner.invoke(app, ["weights", "verify", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows[NAME]["ok"] is True


def test_fetch_file_url_downloads_and_verifies(registry, source_file, isolated_home):
    spec = _spec(url=source_file.as_uri())
    registry[spec.name] = spec
    dest = weights.fetch(NAME, offline=False, progress=False)
    assert dest == isolated_home / "weights" / FILENAME
    assert dest.read_bytes() == PAYLOAD
    assert _all_files(config.weights_dir()) == [FILENAME]
    assert weights.verify([NAME])[0]["ok"] is True


def test_fetch_file_url_wrong_sha256_raises_and_leaves_no_file(registry, source_file):
    spec = _spec(url=source_file.as_uri(), sha256="0" * 64)
    registry[spec.name] = spec
    with pytest.raises(WeightsIntegrityError):
        weights.fetch(NAME, offline=False, progress=False)
    assert not weights.is_present(NAME)
    assert _all_files(config.weights_dir()) == []


def test_fetch_failed_download_raises_missing_weights(registry, tmp_path):
    spec = _spec(url=(tmp_path / "no-such-file.bin").as_uri())
    registry[spec.name] = spec
    with pytest.raises(MissingWeightsError) as info:
        weights.fetch(NAME, offline=False, progress=False)
    assert "download failed" in info.value.message
    assert _all_files(config.weights_dir()) == []


def test_cli_import_and_fetch(tiny, source_file, tmp_path):
    result = runner.invoke(app, ["weights", "fetch", NAME])
    assert result.exit_code == 2
    assert FILENAME in result.stderr
    assert f"evalsuite weights import {NAME}" in result.stderr

    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"nope")
    result = runner.invoke(app, ["weights", "import", NAME, str(wrong)])
    assert result.exit_code == 2
    assert "sha256" in result.stderr
    assert not weights.is_present(NAME)

    result = runner.invoke(app, ["weights", "import", NAME, str(source_file)])
    assert result.exit_code == 0, result.output
    assert weights.is_present(NAME)


def test_cli_unknown_weights_name():
    result = runner.invoke(app, ["weights", "fetch", "no-such-weights"])
    assert result.exit_code == 2
    assert "no-such-weights" in result.stderr


def test_cli_list_json_shows_registered_entries(tiny, source_file):
    result = runner.invoke(app, ["weights", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"inception-2015-12-05", "clip-vit-b-32-openai", NAME} <= set(rows)
    inception = rows["inception-2015-12-05"]
    assert inception["filename"] == "inception-2015-12-05.pt"
    assert inception["sha256"] == weights.REGISTRY["inception-2015-12-05"].sha256
    assert inception["present"] is False
    assert inception["url"].startswith("https://")
    assert rows["clip-vit-b-32-openai"]["filename"] == "ViT-B-32.pt"
    assert rows[NAME]["present"] is False

    weights.import_file(NAME, source_file)
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["weights", "list", "--json"]).stdout)}
    assert rows[NAME]["present"] is True
    assert rows[NAME]["path"] == str(weights.local_path(NAME))


def test_unpublished_digest_is_pinned_on_first_use(tmp_path, monkeypatch):
    """sha256=None (nothing published): the first copy is pinned; a different later copy is refused."""
    from evalsuite import weights as w

    spec = w.WeightsSpec(name="tofu-test", filename="tofu.bin", url="https://example.invalid/tofu.bin",
                         sha256=None, size_bytes=None, licence="test", description="test")
    monkeypatch.setitem(w.REGISTRY, spec.name, spec)
    first = tmp_path / "first.bin"
    first.write_bytes(b"first copy")
    w.import_file("tofu-test", first)
    assert w.expected_digest("tofu-test") == w.sha256_file(first)
    other = tmp_path / "other.bin"
    other.write_bytes(b"another copy")
    with pytest.raises(w.WeightsIntegrityError, match="pin"):
        w.import_file("tofu-test", other)
    assert w.local_path("tofu-test").read_bytes() == b"first copy"
    (row,) = [r for r in w.verify(["tofu-test"])]
    assert row["ok"] and not row["published_digest"]
    assert next(r for r in w.list_weights() if r["name"] == "tofu-test")["pinned_sha256"] == w.sha256_file(first)

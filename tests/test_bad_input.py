"""Bad inputs: each gets a clear error naming the file and the fix, or a counted skip that the result reports
(`strict` makes skips errors). None of them corrupts the results store or the feature cache.

Covers: corrupt / truncated / empty / bogus-header images, grayscale, RGBA, palette and 16-bit PNGs, mixed sizes,
an empty folder, fewer images than --num-samples, NaN features, statistics files with wrong keys, dimension or
shapes, missing weights, unknown model specs, tasks, suites and extractors; through `runner.score` and the CLI.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from evalsuite import config
from evalsuite.cli import app
from evalsuite.errors import IncompatibleStatsError, InputError, UnknownNameError
from evalsuite.features import FeatureCache
from evalsuite.hashing import sha256_bytes
from evalsuite.imageio import read_rgb
from evalsuite.results import ResultsStore
from evalsuite.runner import ScoreOptions, score
from tests.conftest import write_images

TINY = "python:tests.tiny_models:tiny_uint8"
NAN_ON_BRIGHT = "python:tests.tiny_models:nan_on_bright"
TINY_DIM = 16


# ------------------------------------------------------------------------------------------------ helpers
def _options(tmp_path: Path, ref: Path | str | None, **kw) -> ScoreOptions:
    kw.setdefault("tasks", ["fid"])
    kw.setdefault("extractor", TINY)
    defaults = dict(store=tmp_path / "store", device="cpu", batch_size=8, num_workers=0, progress=False,
                    kid_subsets=5, kid_subset_size=8)
    if isinstance(ref, Path):
        ref = f"folder:{ref}"
    return ScoreOptions.with_legacy(ref=ref, **{**defaults, **kw})


def _result_files(tmp_path: Path) -> list[Path]:
    """Result documents (not a run's manifest, run.json)."""
    return sorted(p for p in (tmp_path / "store" / "runs").glob("*/*.json") if p.name != "run.json")


def _store_is_empty(tmp_path: Path) -> bool:
    runs = tmp_path / "store" / "runs"
    return not runs.exists() or not any(runs.iterdir())


def _check_cache_sound() -> list[Path]:
    """Every feature-cache entry loads, is finite and has the extractor's dimension; no temporary files remain."""
    root = config.features_dir()
    if not root.exists():
        return []
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")], "temporary files left in the feature cache"
    entries = sorted(root.rglob("*.npy"))
    for path in entries:
        arr = np.load(path, allow_pickle=False)
        assert arr.shape == (TINY_DIM,) and np.isfinite(arr).all(), path
    return entries


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _raw_png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG written by hand (for what PIL cannot save: 48-bit RGB, or a header that lies about the size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b""))


def _write_rgb48(path: Path, rgb16: np.ndarray) -> None:
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    path.write_bytes(_raw_png(w, h, 16, 2, raw))


def _add_corrupt_files(folder: Path) -> dict[str, Path]:
    """Random bytes, a PNG cut in half, an empty file and a PNG whose header claims 30000x30000 pixels."""
    rng = np.random.default_rng(7)
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    good = folder / "00000.png"
    truncated = folder / "truncated.png"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    bogus = folder / "huge_header.png"
    bogus.write_bytes(_raw_png(30000, 30000, 8, 2, b"\x00" * 64))
    return {"corrupt": corrupt, "truncated": truncated, "empty": empty, "huge_header": bogus}


@pytest.fixture
def folders(tmp_path):
    """A sample folder of 10 good images and a reference folder of 12 (all with mean < 200, see nan_on_bright)."""
    samples, ref = tmp_path / "samples", tmp_path / "ref"
    write_images(samples, 10, seed=1, offset=-30.0)
    write_images(ref, 12, seed=2, offset=-20.0)
    return samples, ref


# ------------------------------------------------------------------------------------------------ corrupt images
@pytest.mark.parametrize("kind", ["corrupt", "truncated", "empty", "huge_header"])
def test_read_rgb_names_a_bad_file(tmp_path, kind):
    folder = tmp_path / "imgs"
    write_images(folder, 1)
    bad = _add_corrupt_files(folder)[kind]
    with pytest.raises(InputError) as info:
        read_rgb(bad)
    assert str(bad) in info.value.message
    assert info.value.fix and "--strict" in info.value.fix


def test_corrupt_and_truncated_images_are_counted_skips(tmp_path, folders):
    samples, ref = folders
    bad = _add_corrupt_files(samples)
    summary = score(f"folder:{samples}", _options(tmp_path, ref, tasks=["fid", "kid"]))
    for doc in summary.results:
        assert doc["status"] == "ok", doc
        assert doc["num_samples"] == 10
        assert doc["skipped_samples"]["count"] == len(bad)
        listed = {Path(s["file"]).name: s["reason"] for s in doc["skipped_samples"]["files"]}
        assert set(listed) == {p.name for p in bad.values()}
        assert all("cannot decode" in reason for reason in listed.values())
    # 10 samples are far below FID-50K's count: each note says so before the skips
    assert {r["note"] for r in summary.rows()} == {f"not comparable: 10 samples, the protocol needs 50000; "
                                                   f"{len(bad)} sample(s) skipped"}
    assert len(_result_files(tmp_path)) == 2
    # nothing was cached for the bad files
    entries = {p.stem for p in _check_cache_sound()}
    assert not entries & {sha256_bytes(p.read_bytes()) for p in bad.values()}


def test_bad_images_are_skipped_inside_dataloader_workers_too(tmp_path, folders):
    samples, ref = folders
    bad = _add_corrupt_files(samples)
    doc = score(f"folder:{samples}", _options(tmp_path, ref, num_workers=1)).results[0]
    assert doc["status"] == "ok" and doc["num_samples"] == 10
    assert doc["skipped_samples"]["count"] == len(bad)


def test_strict_makes_skips_an_error_and_leaves_store_and_cache_intact(tmp_path, folders):
    samples, ref = folders
    first = score(f"folder:{samples}", _options(tmp_path, ref))  # a clean run before the damage
    assert first.results[0]["skipped_samples"]["count"] == 0
    before = _result_files(tmp_path)
    index_before = ResultsStore(tmp_path / "store").rows()
    bad = _add_corrupt_files(samples)

    with pytest.raises(InputError) as info:
        score(f"folder:{samples}", _options(tmp_path, ref, tasks=["fid", "kid"], strict=True))
    message = info.value.message
    assert f"{len(bad)} sample file(s)" in message
    assert any(str(p) in message for p in bad.values())
    assert "--strict" in info.value.fix
    assert _result_files(tmp_path) == before  # no partial run was written
    assert ResultsStore(tmp_path / "store").rows() == index_before
    _check_cache_sound()

    again = score(f"folder:{samples}", _options(tmp_path, ref))
    doc = again.results[0]
    assert doc["status"] == "ok" and doc["skipped_samples"]["count"] == len(bad)
    assert doc["metrics"]["fid"] == pytest.approx(first.results[0]["metrics"]["fid"], rel=1e-9)
    assert doc["details"]["n_cached_features"] == 10  # the good files came from the (sound) cache
    assert len(_result_files(tmp_path)) == len(before) + 1


def test_strict_also_covers_the_reference_folder(tmp_path, folders):
    samples, ref = folders
    bad = _add_corrupt_files(ref)
    with pytest.raises(InputError) as info:
        score(f"folder:{samples}", _options(tmp_path, ref, strict=True))
    assert "reference" in info.value.message
    assert any(str(p) in info.value.message for p in bad.values())
    assert _store_is_empty(tmp_path)
    doc = score(f"folder:{samples}", _options(tmp_path, ref)).results[0]
    assert doc["status"] == "ok" and doc["details"]["n_reference"] == 12


def test_damaged_feature_cache_entries_are_recomputed(tmp_path, folders):
    samples, ref = folders
    fid = score(f"folder:{samples}", _options(tmp_path, ref)).results[0]["metrics"]["fid"]
    entries = _check_cache_sound()
    assert entries
    entries[0].write_bytes(b"")  # e.g. a crash before the data reached the disk
    entries[1].write_bytes(entries[1].read_bytes()[:40])  # cut inside the header
    entries[2].write_bytes(entries[2].read_bytes()[:-8])  # cut inside the data
    doc = score(f"folder:{samples}", _options(tmp_path, ref)).results[0]
    assert doc["status"] == "ok" and doc["skipped_samples"]["count"] == 0
    assert doc["metrics"]["fid"] == pytest.approx(fid, rel=1e-5)  # recomputed rows: other batch composition
    _check_cache_sound()  # the damaged entries were overwritten with good ones


# ------------------------------------------------------------------------------------------------ image modes and sizes
def test_grayscale_rgba_palette_and_16bit_convert_to_rgb_uint8(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (12, 20), dtype=np.uint8)
    rgba = rng.integers(0, 256, (12, 20, 4), dtype=np.uint8)
    k = np.arange(256, dtype=np.uint16).reshape(16, 16)

    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(rgba).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(rgba[:, :, :3]).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(k * 257).save(tmp_path / "gray16.png")
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(tmp_path / "white16.png")
    _write_rgb48(tmp_path / "rgb48.png", np.stack([k * 257, k[::-1] * 257, np.full_like(k, 65535)], axis=2))
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")  # really a 16-bit file

    for name in ("gray", "rgba", "la", "palette", "gray16", "white16", "rgb48"):
        arr = read_rgb(tmp_path / f"{name}.png")
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, name

    out = read_rgb(tmp_path / "gray.png")
    assert (out == gray[:, :, None]).all()
    assert (read_rgb(tmp_path / "rgba.png") == rgba[:, :, :3]).all()  # alpha dropped, colours kept
    assert (read_rgb(tmp_path / "white16.png") == 255).all()  # 65535 -> 255: rescaled, not clipped to 65535 & 255
    g16 = read_rgb(tmp_path / "gray16.png")
    assert (g16 == k[:, :, None]).all()  # 257 * k -> k
    rgb48 = read_rgb(tmp_path / "rgb48.png")
    assert (rgb48[:, :, 0] == k).all() and (rgb48[:, :, 1] == k[::-1]).all() and (rgb48[:, :, 2] == 255).all()


def test_folder_of_mixed_modes_is_scored_not_skipped(tmp_path, folders):
    _, ref = folders
    samples = tmp_path / "modes"
    samples.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        rgba = np.concatenate([rgb, rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)], axis=2)
        Image.fromarray(rgb).save(samples / f"rgb{i}.png")
        Image.fromarray(rgb).convert("L").save(samples / f"gray{i}.png")
        Image.fromarray(rgba).save(samples / f"rgba{i}.png")
        Image.fromarray(rgb).convert("P").save(samples / f"palette{i}.png")
        Image.fromarray(rng.integers(0, 65536, (32, 32), dtype=np.uint16)).save(samples / f"gray16_{i}.png")
        _write_rgb48(samples / f"rgb48_{i}.png", rng.integers(0, 65536, (32, 32, 3), dtype=np.uint16))
    doc = score(f"folder:{samples}", _options(tmp_path, ref, strict=True)).results[0]
    assert doc["status"] == "ok"
    assert doc["num_samples"] == 18 and doc["skipped_samples"]["count"] == 0
    assert np.isfinite(doc["metrics"]["fid"])


def test_mixed_sizes_are_scored_with_a_native_size_extractor(tmp_path, folders):
    _, ref = folders
    samples = tmp_path / "sizes"
    write_images(samples / "a", 4, size=(32, 32), seed=4)
    write_images(samples / "b", 3, size=(24, 40), seed=5)
    write_images(samples / "c", 3, size=(48, 48), seed=6)
    write_images(samples / "d", 2, size=(1, 7), seed=7)
    summary = score(f"folder:{samples}", _options(tmp_path, ref, tasks=["fid", "kid"], strict=True))
    for doc in summary.results:
        assert doc["status"] == "ok" and doc["num_samples"] == 12 and doc["skipped_samples"]["count"] == 0
    # per-shape batching gives the same features as one image at a time
    one_by_one = score(f"folder:{samples}", _options(tmp_path, ref, batch_size=1)).results[0]
    assert one_by_one["metrics"]["fid"] == pytest.approx(summary.results[0]["metrics"]["fid"], rel=1e-6)


# ------------------------------------------------------------------------------------------------ folders
def test_empty_folder_names_the_folder(tmp_path, folders):
    _, ref = folders
    empty = tmp_path / "EMPTY"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(InputError) as info:
        score(f"folder:{empty}", _options(tmp_path, ref))
    assert str(empty) in info.value.message and "no images" in info.value.message
    assert info.value.fix
    assert _store_is_empty(tmp_path)


def test_empty_reference_folder_names_the_folder(tmp_path, folders):
    samples, _ = folders
    empty = tmp_path / "EMPTY_REF"
    empty.mkdir()
    with pytest.raises(InputError) as info:
        score(f"folder:{samples}", _options(tmp_path, empty))
    assert str(empty) in info.value.message
    assert _store_is_empty(tmp_path)


def test_missing_folder_names_the_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(InputError) as info:
        score(f"folder:{missing}", _options(tmp_path, missing))
    assert str(missing) in info.value.message and info.value.fix


def test_fewer_images_than_num_samples(tmp_path, folders):
    samples, ref = folders
    with pytest.raises(InputError) as info:
        score(f"folder:{samples}", _options(tmp_path, ref, num_samples=11))
    assert str(samples) in info.value.message and "10" in info.value.message
    assert "--num-samples 10" in info.value.fix
    assert _store_is_empty(tmp_path)
    doc = score(f"folder:{samples}", _options(tmp_path, ref, num_samples=10)).results[0]
    assert doc["status"] == "ok" and doc["num_samples"] == 10


def test_all_images_unusable_is_an_error_not_a_metric(tmp_path, folders):
    _, ref = folders
    samples = tmp_path / "all_bad"
    write_images(samples, 1)
    _add_corrupt_files(samples)
    with pytest.raises(InputError) as info:
        score(f"folder:{samples}", _options(tmp_path, ref))
    assert "only 1 usable" in info.value.message and "4 skipped" in info.value.message
    assert _store_is_empty(tmp_path)


# ------------------------------------------------------------------------------------------------ NaN / inf features
def _add_bright_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(11)
    paths = []
    for i in range(count):
        path = folder / f"bright{i}.png"
        Image.fromarray(rng.integers(230, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_nan_features_are_counted_skips_and_never_cached(tmp_path, folders):
    samples, ref = folders
    bright = _add_bright_images(samples, 3)
    names = {p.name for p in bright}
    opts = dict(tasks=["fid", "kid"], extractor=NAN_ON_BRIGHT)
    first = score(f"folder:{samples}", _options(tmp_path, ref, **opts))
    for doc in first.results:
        assert doc["status"] == "ok" and doc["num_samples"] == 10
        assert doc["skipped_samples"]["count"] == 3
        assert {Path(s["file"]).name for s in doc["skipped_samples"]["files"]} == names
        assert all("NaN" in s["reason"] for s in doc["skipped_samples"]["files"])
        assert all(np.isfinite(v) for v in doc["metrics"].values())

    entries = {p.stem for p in _check_cache_sound()}
    assert entries and not entries & {sha256_bytes(p.read_bytes()) for p in bright}

    second = score(f"folder:{samples}", _options(tmp_path, ref, **opts))
    fid = second.results[0]
    assert fid["skipped_samples"]["count"] == 3  # still reported: the NaN rows were not cached
    assert fid["details"]["n_cached_features"] == 10 and fid["details"]["n_computed_features"] == 0
    assert fid["metrics"]["fid"] == pytest.approx(first.results[0]["metrics"]["fid"], rel=1e-9)


def test_nan_features_with_strict_are_an_error(tmp_path, folders):
    samples, ref = folders
    bright = _add_bright_images(samples, 2)
    with pytest.raises(InputError) as info:
        score(f"folder:{samples}", _options(tmp_path, ref, extractor=NAN_ON_BRIGHT, strict=True))
    assert "2 sample file(s)" in info.value.message and str(bright[0]) in info.value.message
    assert "NaN" in info.value.message and "--strict" in info.value.fix
    assert _store_is_empty(tmp_path)
    _check_cache_sound()


def test_feature_cache_rejects_non_finite_entries(tmp_path):
    cache = FeatureCache({"extractor": "x", "weights_sha256": "0", "preprocessing": "none", "dim": 4},
                         root=tmp_path / "cache")
    cache.put("ab" * 32, np.array([1.0, np.inf, 0.0, 2.0]))
    assert cache.get("ab" * 32) is None
    cache.put("cd" * 32, np.ones(3))  # wrong dimension
    assert cache.get("cd" * 32) is None


# ------------------------------------------------------------------------------------------------ statistics files
def _write_stats(tmp_path: Path, kind: str) -> Path:
    rng = np.random.default_rng(5)
    path = tmp_path / f"stats_{kind}.npz"
    if kind == "wrong_keys":
        np.savez(path, a=rng.normal(size=TINY_DIM), b=np.eye(TINY_DIM))
    elif kind == "wrong_dim":
        np.savez(path, mu=rng.normal(size=8), sigma=np.eye(8))
    elif kind == "sigma_mismatch":
        np.savez(path, mu=rng.normal(size=TINY_DIM), sigma=np.eye(8))
    elif kind == "nan":
        sigma = np.eye(TINY_DIM)
        sigma[0, 0] = np.nan
        np.savez(path, mu=rng.normal(size=TINY_DIM), sigma=sigma)
    elif kind == "not_npz":
        path.write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign":  # right shapes, but no record of the extractor that made it
        np.savez(path, mu=rng.normal(size=TINY_DIM), sigma=np.eye(TINY_DIM))
    elif kind == "good":
        np.savez(path, mu=rng.normal(size=TINY_DIM), sigma=np.eye(TINY_DIM) * 2.0)
    elif kind != "missing":
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize("kind,error,fix_word", [
    ("wrong_keys", InputError, "mu"),
    ("wrong_dim", IncompatibleStatsError, "extractor"),
    ("sigma_mismatch", InputError, "sigma"),
    ("nan", InputError, "rebuild"),
    ("not_npz", InputError, "numpy.savez"),
    ("empty", InputError, "numpy.savez"),
    ("missing", InputError, "path"),
    ("foreign", IncompatibleStatsError, "--extractor"),
])
def test_bad_statistics_file_as_ref(tmp_path, folders, kind, error, fix_word):
    samples, _ = folders
    path = _write_stats(tmp_path, kind)
    with pytest.raises(error) as info:
        score(f"folder:{samples}", _options(tmp_path, str(path)))
    assert str(path) in info.value.message
    assert info.value.fix and fix_word in info.value.fix
    assert _store_is_empty(tmp_path)
    _check_cache_sound()


@pytest.mark.parametrize("kind", ["wrong_keys", "wrong_dim", "sigma_mismatch", "not_npz"])
def test_fd_cli_on_bad_statistics_exits_2(tmp_path, kind):
    good = _write_stats(tmp_path, "good")
    bad = _write_stats(tmp_path, kind)
    ok = CliRunner().invoke(app, ["fd", str(good), str(good)])
    assert ok.exit_code == 0, ok.output
    result = CliRunner().invoke(app, ["fd", str(bad), str(good)])
    assert result.exit_code == 2, result.output
    assert bad.name in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------------------ missing weights
def test_missing_weights_store_skipped_results_with_both_fixes(tmp_path, folders):
    samples, ref = folders
    summary = score(f"folder:{samples}", _options(tmp_path, ref, tasks=["fid", "kid"], extractor=None))
    assert [d["task"] for d in summary.results] == ["fid", "kid"]
    for doc in summary.results:
        assert doc["status"] == "skipped" and doc["metrics"] == {}
        assert "inception-2015-12-05.pt" in doc["reason"]
        assert "evalsuite weights fetch" in doc["fix"] and "evalsuite weights import" in doc["fix"]
    stored = ResultsStore(tmp_path / "store").load_run(summary.run_id)
    assert {d["task"]: d["status"] for d in stored} == {"fid": "skipped", "kid": "skipped"}
    weights_dir = config.weights_dir()
    assert not weights_dir.exists() or not any(weights_dir.iterdir())  # no partial download left behind


def test_missing_weights_cli_reports_skip_and_fix(tmp_path, folders):
    samples, ref = folders
    result = CliRunner().invoke(app, ["score", f"folder:{samples}", "--tasks", "fid", "--ref", f"folder:{ref}",
                                      "--workers", "0", "--device", "cpu", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout
    assert "evalsuite weights fetch" in result.stdout and "evalsuite weights import" in result.stdout


# ------------------------------------------------------------------------------------------------ unknown names
@pytest.mark.parametrize("spec,error,listed", [
    ("nosuch:thing", UnknownNameError, "folder:"),
    ("", InputError, "folder:PATH"),
    ("   ", InputError, "folder:PATH"),
    ("folder:", InputError, "folder:/path"),
    ("python:no_such_module_xyz:make", InputError, "PYTHONPATH"),
    ("python:tests.tiny_models", InputError, "python:"),
])
def test_unknown_model_spec(tmp_path, folders, spec, error, listed):
    _, ref = folders
    with pytest.raises(error) as info:
        score(spec, _options(tmp_path, ref))
    assert listed in info.value.fix
    if spec.strip():
        assert spec.split(":")[0] in info.value.message
    assert _store_is_empty(tmp_path)


def test_bare_folder_spec_suggests_the_folder_scheme(tmp_path, folders):
    samples, ref = folders
    with pytest.raises(UnknownNameError) as info:
        score(str(samples), _options(tmp_path, ref))
    assert f"folder:{samples}" in info.value.fix
    assert _store_is_empty(tmp_path)


@pytest.mark.parametrize("field,value,listed", [
    ("tasks", ["fid", "nosuch"], "kid"),
    ("suite", "nosuch", "default"),
    ("extractor", "nosuch", "inception"),
])
def test_unknown_task_suite_or_extractor(tmp_path, folders, field, value, listed):
    samples, ref = folders
    kw = {"tasks": None} if field == "suite" else {}
    kw[field] = value
    with pytest.raises(UnknownNameError) as info:
        score(f"folder:{samples}", _options(tmp_path, ref, **kw))
    assert "nosuch" in info.value.message and listed in info.value.fix
    assert _store_is_empty(tmp_path)


# ------------------------------------------------------------------------------------------------ the CLI
def _cli_score(tmp_path: Path, model: str, *extra: str):
    return CliRunner().invoke(app, ["score", model, "--extractor", TINY, "--workers", "0", "--device", "cpu",
                                    "--store", str(tmp_path / "store"), *extra])


def test_cli_corrupt_image_skip_then_strict_error(tmp_path, folders):
    samples, ref = folders
    bad = samples / "img[i].png"  # brackets must not be read as console markup
    bad.write_bytes(b"not a png at all")
    result = _cli_score(tmp_path, f"folder:{samples}", "--tasks", "fid", "--ref", f"folder:{ref}", "--json")
    assert result.exit_code == 0, result.output
    assert "1 sample(s) skipped" in result.stdout

    strict = _cli_score(tmp_path, f"folder:{samples}", "--tasks", "fid", "--ref", f"folder:{ref}", "--strict")
    assert strict.exit_code == 2, strict.output
    assert str(bad) in strict.stderr
    assert "fix:" in strict.stderr and "--strict" in strict.stderr
    assert "Traceback" not in strict.output
    assert len(_result_files(tmp_path)) == 1  # only the non-strict run


def test_cli_fewer_images_than_num_samples(tmp_path, folders):
    samples, ref = folders
    result = _cli_score(tmp_path, f"folder:{samples}", "--tasks", "fid", "--ref", f"folder:{ref}",
                        "--num-samples", "50")
    assert result.exit_code == 2, result.output
    assert str(samples) in result.stderr and "fix:" in result.stderr and "--num-samples" in result.stderr
    assert _store_is_empty(tmp_path)


def test_cli_empty_folder(tmp_path, folders):
    _, ref = folders
    empty = tmp_path / "EMPTY"
    empty.mkdir()
    result = _cli_score(tmp_path, f"folder:{empty}", "--tasks", "fid", "--ref", f"folder:{ref}")
    assert result.exit_code == 2, result.output
    assert str(empty) in result.stderr and "fix:" in result.stderr


def test_cli_bad_stats_ref(tmp_path, folders):
    samples, _ = folders
    path = _write_stats(tmp_path, "wrong_dim")
    result = _cli_score(tmp_path, f"folder:{samples}", "--tasks", "fid", "--ref", str(path))
    assert result.exit_code == 2, result.output
    assert str(path) in result.stderr and "fix:" in result.stderr
    assert _store_is_empty(tmp_path)


@pytest.mark.parametrize("args,words", [
    (["nosuch:thing"], ["nosuch:thing", "folder:"]),
    (["folder:{samples}", "--tasks", "fid,nosuch"], ["nosuch", "known tasks", "fid"]),
])
def test_cli_unknown_names(tmp_path, folders, args, words):
    samples, ref = folders
    args = [a.format(samples=samples) for a in args]
    result = _cli_score(tmp_path, *args, "--ref", f"folder:{ref}")
    assert result.exit_code == 2, result.output
    assert "fix:" in result.stderr
    for word in words:
        assert word in result.stderr
    assert _store_is_empty(tmp_path)

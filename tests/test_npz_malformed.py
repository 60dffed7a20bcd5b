"""Issue 14 item 11: malformed `.npz` statistics are one clear error naming the file (never a traceback, never a
silent conversion), pickled object arrays stay refused, and a clean-fid file passed to --ref points to `ref import`."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evalsuite import refstats
from evalsuite.cli import app
from evalsuite.errors import IncompatibleStatsError, InputError

D = 4
MU = np.arange(D, dtype=np.float64)
SIGMA = np.eye(D)


def _npy(header: dict, payload: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    buf = io.BytesIO()
    writer = np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0
    buf.write(np.lib.format.magic(*version))
    writer(buf, header)
    return buf.getvalue() + payload


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _good_members() -> dict[str, bytes]:
    def npy(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()

    return {"mu.npy": npy(MU), "sigma.npy": npy(SIGMA)}


def _savez(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _cases(tmp: Path) -> dict[str, Path]:
    good = _savez(tmp / "good.npz", mu=MU, sigma=SIGMA)
    raw = good.read_bytes()
    cases = {
        "truncated": tmp / "truncated.npz", "truncated_tail": tmp / "truncated_tail.npz", "text": tmp / "text.npz",
        "npy_not_npz": tmp / "plain.npz",
    }
    cases["truncated"].write_bytes(raw[: len(raw) // 2])
    cases["truncated_tail"].write_bytes(raw[:-30])
    cases["text"].write_bytes(b"mu sigma\n1 2 3\n")
    np.save(tmp / "plain.npy", MU)
    (tmp / "plain.npy").rename(cases["npy_not_npz"])
    cases["string_mu"] = _savez(tmp / "string_mu.npz", mu=np.array(["a", "b", "c", "d"]), sigma=SIGMA)
    cases["complex"] = _savez(tmp / "complex.npz", mu=MU + 1j, sigma=SIGMA)
    cases["complex_sigma"] = _savez(tmp / "complex_sigma.npz", mu=MU, sigma=SIGMA * (1 + 1j))
    cases["bool"] = _savez(tmp / "bool.npz", mu=np.zeros(D, bool), sigma=np.eye(D, dtype=bool))
    cases["mu_2d"] = _savez(tmp / "mu_2d.npz", mu=np.zeros((2, 2)), sigma=SIGMA)
    cases["mu_0d"] = _savez(tmp / "mu_0d.npz", mu=np.float64(1.0), sigma=np.eye(1))
    cases["empty_mu"] = _savez(tmp / "empty_mu.npz", mu=np.zeros(0), sigma=np.zeros((0, 0)))
    cases["sigma_3d"] = _savez(tmp / "sigma_3d.npz", mu=MU, sigma=np.zeros((D, D, 1)))
    cases["asymmetric_sigma"] = _savez(tmp / "asymmetric_sigma.npz", mu=MU, sigma=np.triu(np.ones((D, D))))
    cases["feats_1d"] = _savez(tmp / "feats_1d.npz", feats=np.zeros(5))
    cases["feats_strings"] = _savez(tmp / "feats_strings.npz", feats=np.array([["a", "b"], ["c", "d"]]))
    cases["feats_one_row"] = _savez(tmp / "feats_one_row.npz", feats=np.zeros((1, D)))
    cases["feats_nan"] = _savez(tmp / "feats_nan.npz", feats=np.full((3, D), np.nan))
    cases["feats_wrong_dim"] = _savez(tmp / "feats_wrong_dim.npz", mu=MU, sigma=SIGMA, feats=np.zeros((3, D + 1)))
    cases["meta_bad_json"] = _savez(tmp / "meta_bad_json.npz", mu=MU, sigma=SIGMA, meta=np.array("{oops"))
    cases["meta_list"] = _savez(tmp / "meta_list.npz", mu=MU, sigma=SIGMA, meta=np.array("[1, 2]"))
    cases["meta_array"] = _savez(tmp / "meta_array.npz", mu=MU, sigma=SIGMA, meta=np.array(["{}", "{}"]))
    cases["meta_bytes"] = _savez(tmp / "meta_bytes.npz", mu=MU, sigma=SIGMA, meta=np.array([b"\xff\xfe"]))
    cases["meta_deep"] = _savez(tmp / "meta_deep.npz", mu=MU, sigma=SIGMA,
                                meta=np.array("[" * 100_000 + "]" * 100_000))
    cases["meta_n_string"] = _savez(tmp / "meta_n_string.npz", mu=MU, sigma=SIGMA,
                                    meta=np.array(json.dumps({"n": "many", "covariance": "biased"})))
    cases["meta_covariance"] = _savez(tmp / "meta_covariance.npz", mu=MU, sigma=SIGMA,
                                      meta=np.array(json.dumps({"covariance": 5})))
    cases["meta_extractor_type"] = _savez(tmp / "meta_extractor_type.npz", mu=MU, sigma=SIGMA,
                                          meta=np.array(json.dumps({"extractor": {"a": 1}})))
    cases["n_string"] = _savez(tmp / "n_string.npz", mu=MU, sigma=SIGMA, n=np.array("x"))
    cases["n_array"] = _savez(tmp / "n_array.npz", mu=MU, sigma=SIGMA, n=np.arange(3))
    cases["n_float"] = _savez(tmp / "n_float.npz", mu=MU, sigma=SIGMA, n=np.float64(2.7))
    cases["n_negative"] = _savez(tmp / "n_negative.npz", mu=MU, sigma=SIGMA, n=np.int64(-5))
    cases["object_array"] = _savez(tmp / "object_array.npz", mu=np.array([1, "a"], dtype=object), sigma=SIGMA)
    sigma_npy = _good_members()["sigma.npy"]
    for name, shape in [("huge_shape", (10**12,)), ("huge_shape_2d", (10**10, 10**10)), ("negative_shape", (-1,)),
                        ("shape_beyond_data", (1000,))]:
        cases[name] = _zip(tmp / f"{name}.npz", {
            "mu.npy": _npy({"descr": "<f8", "fortran_order": False, "shape": shape}, b"\0" * 32),
            "sigma.npy": sigma_npy})
    cases["huge_header"] = _zip(tmp / "huge_header.npz", {
        "mu.npy": b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{" * 100, "sigma.npy": sigma_npy})
    cases["structured"] = _zip(tmp / "structured.npz", {
        "mu.npy": _npy({"descr": [("a", "<f8"), ("b", "<i4")], "fortran_order": False, "shape": (D,)}, b"\0" * 48),
        "sigma.npy": sigma_npy})
    cases["pickle_descr"] = _zip(tmp / "pickle_descr.npz", {
        "mu.npy": _npy({"descr": "|O", "fortran_order": False, "shape": (D,)}, b"\x80\x04N."), "sigma.npy": sigma_npy})
    members = _good_members()
    members["mu.npy"] = members["mu.npy"][:-8]  # the zip is intact, the array inside is short
    cases["short_member"] = _zip(tmp / "short_member.npz", members)
    return cases


CASE_NAMES = [
    "truncated", "truncated_tail", "text", "npy_not_npz", "string_mu", "complex", "complex_sigma", "bool", "mu_2d",
    "mu_0d", "empty_mu", "sigma_3d", "asymmetric_sigma", "feats_1d", "feats_strings", "feats_one_row", "feats_nan",
    "feats_wrong_dim", "meta_bad_json", "meta_list", "meta_array", "meta_bytes", "meta_deep", "meta_n_string",
    "meta_covariance", "meta_extractor_type", "n_string", "n_array", "n_float", "n_negative", "object_array",
    "huge_shape", "huge_shape_2d", "negative_shape", "shape_beyond_data", "huge_header", "structured", "pickle_descr",
    "short_member",
]


def test_every_case_is_parametrized(tmp_path):
    assert sorted(_cases(tmp_path)) == sorted(CASE_NAMES)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_malformed_statistics_file_is_one_clear_error_naming_the_file(tmp_path, case):
    path = _cases(tmp_path)[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning (silent loss of the imaginary part) fails the test
        with pytest.raises(InputError) as info:
            refstats.load_npz(path)
    err = info.value
    assert str(path) in err.message and err.fix
    assert "\n" not in err.message
    assert "allow_pickle" not in err.message + err.fix  # never advise loading pickles


@pytest.mark.parametrize("case", ["truncated", "complex", "meta_deep", "huge_shape", "feats_1d", "object_array"])
def test_malformed_statistics_through_the_cli_exit_2_without_traceback(tmp_path, case):
    path = _cases(tmp_path)[case]
    good = _savez(tmp_path / "other.npz", mu=MU, sigma=SIGMA)
    for args in (["fd", str(path), str(good)], ["ref", "show", str(path)],
                 ["ref", "import", "x", str(path), "--extractor", "inception"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and str(path) in result.stderr
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_valid_files_still_load(tmp_path):
    ref = refstats.load_npz(_savez(tmp_path / "ok.npz", mu=MU.astype(np.float32), sigma=SIGMA, n=np.int64(10),
                                   meta=np.array(json.dumps({"covariance": "biased", "n": 10}))))
    assert ref.dim == D and ref.n == 10 and ref.meta["covariance"] == "biased"
    np.testing.assert_array_equal(ref.mu, MU)
    feats = np.random.default_rng(0).normal(size=(20, D)).astype(np.float32)
    np.savez_compressed(tmp_path / "kid.npz", feats=feats)  # clean-fid's _kid.npz: features only, compressed
    ref = refstats.load_npz(tmp_path / "kid.npz")
    assert ref.n == 20 and ref.feats.shape == (20, D)
    np.testing.assert_allclose(ref.mu, feats.astype(np.float64).mean(0))


def test_clean_fid_file_as_ref_points_to_ref_import(tmp_path):
    path = _savez(tmp_path / "cleanfid_stats.npz", mu=MU, sigma=SIGMA)
    ref = refstats.load_npz(path)
    key = {"extractor": "inception-2015-12-05/clean", "weights_sha256": "0" * 64, "preprocessing": "clean",
           "dim": D}
    with pytest.raises(IncompatibleStatsError) as info:
        refstats.check_compatible(ref, key)
    assert str(path) in info.value.message
    assert f"evalsuite ref import NAME {path}" in info.value.fix

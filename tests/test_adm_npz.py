"""ADM sample/reference batches (evalsuite.adm_npz) read by the ADM evaluator's own reading path.

evaluator.py (openai/guided-diffusion evaluations/) imports TensorFlow at module level; its npz reading is pure
numpy/zipfile, written out below line by line (evaluator.py:433-570) and run on what we write: the archive must
stream through `open_npz_array` (the branch taken for .npy 1.0/2.0 headers, C order, no objects) and give back the
same images; `read_statistics` (164-172) must take our reference's mu/sigma/mu_s/sigma_s and must NOT find `mu` in a
sample batch (it would then skip the sample images' statistics).
"""

from __future__ import annotations

import zipfile
from contextlib import contextmanager

import numpy as np
import pytest

from evalsuite import adm_npz
from evalsuite.errors import InputError


# -------------------------------------------------------------------------------------- evaluator.py, written out
@contextmanager
def official_open_npy_file(path, arr_name):  # evaluator.py:563-570
    with open(path, "rb") as f:
        with zipfile.ZipFile(f, "r") as zip_f:
            if f"{arr_name}.npy" not in zip_f.namelist():
                raise ValueError(f"missing {arr_name} in npz file")
            with zip_f.open(f"{arr_name}.npy", "r") as arr_f:
                yield arr_f


def official_read_bytes(fp, size):  # evaluator.py:534-560
    data = b""
    while True:
        r = fp.read(size - len(data))
        data += r
        if len(r) == 0 or len(data) == size:
            break
    if len(data) != size:
        raise ValueError("EOF")
    return data


@contextmanager
def official_open_npz_array(path, arr_name):  # evaluator.py:516-531, returning what it would stream
    with official_open_npy_file(path, arr_name) as arr_f:
        version = np.lib.format.read_magic(arr_f)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(arr_f)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(arr_f)
        else:
            yield ("memory", None)
            return
        shape, fortran, dtype = header
        if fortran or dtype.hasobject:
            yield ("memory", None)
        else:
            yield ("streaming", (arr_f, shape, dtype))


def official_read_batches(path, batch_size=64):  # StreamingNpzArrayReader.read_batch, evaluator.py:474-487
    with official_open_npz_array(path, "arr_0") as (kind, state):
        assert kind == "streaming"  # the evaluator's 50k-image path: never loaded whole
        arr_f, shape, dtype = state
        idx, out = 0, []
        while idx < shape[0]:
            bs = min(batch_size, shape[0] - idx)
            idx += bs
            read_count = bs * np.prod(shape[1:])
            data = official_read_bytes(arr_f, int(read_count * dtype.itemsize))
            out.append(np.frombuffer(data, dtype=dtype).reshape([bs, *shape[1:]]))
        return out


def official_statistics_source(path):  # read_statistics, evaluator.py:167-172
    obj = np.load(path)
    if "mu" in list(obj.keys()):
        return "stored", (obj["mu"], obj["sigma"], obj["mu_s"], obj["sigma_s"])
    return "computed", None


# ---------------------------------------------------------------------------------------------------------- tests
def _images(n, h=8, w=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("labels", [None, np.arange(70) % 10])
def test_sample_batch_read_by_evaluator_path(tmp_path, labels):
    images = _images(70)
    path = tmp_path / "samples.npz"
    adm_npz.write_sample_batch(path, (images[i:i + 9] for i in range(0, 70, 9)), 70, (8, 6), labels)
    batches = official_read_batches(path, 64)  # the evaluator's batch size (Evaluator(batch_size=64))
    assert [len(b) for b in batches] == [64, 6]
    np.testing.assert_array_equal(np.concatenate(batches), images)
    assert official_statistics_source(path)[0] == "computed"
    with np.load(path) as data:  # np.load reads it as image_sample.py's np.savez output
        assert sorted(data.keys()) == (["arr_0"] if labels is None else ["arr_0", "arr_1"])
        np.testing.assert_array_equal(data["arr_0"], images)
        if labels is not None:
            np.testing.assert_array_equal(data["arr_1"], labels)
    np.testing.assert_array_equal(np.concatenate(list(adm_npz.iter_images(path, 16))), images)
    got = adm_npz.read_labels(path)
    assert (got is None) if labels is None else np.array_equal(got, labels)


def test_single_images_and_bad_input(tmp_path):
    images = _images(3)
    path = tmp_path / "s.npz"
    adm_npz.write_sample_batch(path, iter(images), 3, (8, 6))
    np.testing.assert_array_equal(np.concatenate(official_read_batches(path)), images)
    with pytest.raises(InputError, match="expected uint8"):
        adm_npz.write_sample_batch(tmp_path / "b.npz", [images[0].astype(np.float32)], 1, (8, 6))
    with pytest.raises(InputError, match="announced"):
        adm_npz.write_sample_batch(tmp_path / "c.npz", iter(images), 4, (8, 6))
    assert not (tmp_path / "c.npz").exists()  # atomic: nothing half-written
    np.savez(tmp_path / "f.npz", arr_0=np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(InputError, match="expected uint8"):
        list(adm_npz.iter_images(tmp_path / "f.npz"))
    np.savez(tmp_path / "o.npz", arr_0=np.array([None, 1], dtype=object))
    with pytest.raises(InputError, match="object"):
        adm_npz.describe(tmp_path / "o.npz")
    (tmp_path / "z.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        adm_npz.describe(tmp_path / "z.npz")


def _reference(path, n_images=12, dims=(2048, 2023)):
    rng = np.random.default_rng(3)
    arrays = {}
    for key, d in zip(("", "_s"), dims):
        a = rng.normal(size=(d, 4))
        arrays["mu" + key] = rng.normal(size=d)
        arrays["sigma" + key] = a @ a.T / 4
    np.savez(path, arr_0=_images(n_images, 16, 16), **arrays)  # the VIRTUAL_imagenet256_labeled.npz layout
    return arrays


def test_reference_batch_as_the_evaluator_reads_it(tmp_path):
    path = tmp_path / "VIRTUAL_tiny.npz"
    arrays = _reference(path)
    ref = adm_npz.read_reference_batch(path)
    kind, stored = official_statistics_source(path)
    assert kind == "stored"
    for ours, theirs in zip((ref.mu, ref.sigma, ref.mu_s, ref.sigma_s), stored):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ref.sigma_s, arrays["sigma_s"])
    assert ref.num_images == 12 and ref.images is not None and ref.images.shape == (12, 16, 16, 3)
    assert len(ref.sha256) == 64


def test_reference_batch_refused(tmp_path):
    np.savez(tmp_path / "a.npz", arr_0=_images(2))
    with pytest.raises(InputError, match="lacks mu, sigma, mu_s, sigma_s"):
        adm_npz.read_reference_batch(tmp_path / "a.npz")
    _reference(tmp_path / "b.npz", dims=(2048, 100))
    with pytest.raises(InputError, match=r"\(2023,\)"):
        adm_npz.read_reference_batch(tmp_path / "b.npz")
    with pytest.raises(InputError, match="does not exist"):
        adm_npz.read_reference_batch(tmp_path / "missing.npz")


def test_adm_reference_as_reference_stats(tmp_path):
    from evalsuite import refstats

    path = tmp_path / "VIRTUAL_tiny.npz"
    arrays = _reference(path)
    ref = refstats.resolve_file_or_name(f"adm:{path}")
    np.testing.assert_array_equal(ref.mu, arrays["mu"])
    np.testing.assert_array_equal(ref.sigma, arrays["sigma"])
    np.testing.assert_array_equal(ref.extra["sigma_s"], arrays["sigma_s"])
    assert ref.meta["extractor"] == refstats.ADM_EXTRACTOR and ref.meta["images"] == 12
    # the TF graph's statistics are refused for another extractor's features
    with pytest.raises(Exception, match="computed differently"):
        refstats.check_compatible(ref, {"extractor": "inception-2015-12-05/clean", "weights_sha256": "x",
                                        "preprocessing": "clean", "dim": 2048})
    # `evalsuite ref distance adm:A adm:B`: the same batch is 0 apart
    assert refstats.distance(f"adm:{path}", f"adm:{path}")["fd"] == pytest.approx(0.0, abs=1e-6)


def test_ref_adm_path_reaches_the_reference_and_is_refused_for_another_network(tmp_path):
    """`score ... --ref adm:PATH` loads the ADM batch (not 'no such file'); its TF-graph statistics are refused for a
    different network's features with the reason, never compared with them."""
    import torch

    from evalsuite import score
    from evalsuite.errors import IncompatibleStatsError

    path = tmp_path / "VIRTUAL_tiny.npz"
    _reference(path)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    net.preprocessing = {"resize": "none", "input_dtype": "float255"}
    with pytest.raises(IncompatibleStatsError):
        score("demo", tasks=["fid"], num_samples=4, ref=f"adm:{path}", extractor=net, store=tmp_path / "s",
              progress=False)

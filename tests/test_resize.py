"""`clean` resizing bit-exact against clean-fid's own resizer, on odd sizes; legacy_pytorch likewise."""

from __future__ import annotations

import numpy as np
import pytest
from cleanfid.resize import make_resizer

from evalsuite.preprocess import Preprocessing, named


@pytest.mark.parametrize("shape", [(17, 33), (101, 77), (300, 301), (299, 299), (5, 3)])
def test_clean_bit_exact(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = named("clean", 299)(img)
    theirs = make_resizer("PIL", False, "bicubic", (299, 299))(img)
    assert ours.dtype == theirs.dtype == np.float32
    assert ours.shape == theirs.shape == (299, 299, 3)
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("shape", [(17, 33), (640, 480)])
def test_legacy_pytorch_bit_exact(shape):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = named("legacy_pytorch", 299)(img)
    theirs = make_resizer("PyTorch", False, "bilinear", (299, 299))(img)
    assert np.array_equal(ours, theirs.astype(np.float32))


def test_non_square_size_is_width_height():
    img = np.zeros((10, 20, 3), dtype=np.uint8)
    assert Preprocessing("pil-float-bicubic", (40, 30))(img).shape == (30, 40, 3)


def test_uint8_output_rounds():
    pre = Preprocessing("pil-float-bicubic", (8, 8), input_dtype="uint8")
    img = np.random.default_rng(0).integers(0, 256, (13, 13, 3), dtype=np.uint8)
    float_out = Preprocessing("pil-float-bicubic", (8, 8))(img)
    assert np.array_equal(pre(img), np.rint(float_out).astype(np.uint8))


def test_legacy_tensorflow_leaves_size_to_the_network():
    img = np.zeros((10, 20, 3), dtype=np.uint8)
    assert named("legacy_tensorflow", 299)(img).shape == (10, 20, 3)

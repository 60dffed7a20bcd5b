"""Host-side weight compression (issue 16): a compressed torch copy holds exactly the weights of the Core ML package
`device build` writes for the same variant. The packages are built by `build.build`, saved, read back from disk and
decoded here by hand (palette lookup from the packed indices; affine dequantisation), independently of the helper
`compression.coreml_dense_weights` that the host side uses. Convert/compress only: Core ML prediction is macOS-only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evalsuite.device import build, compression
from evalsuite.device.models import DeviceModel
from evalsuite.errors import InputError
from evalsuite.hashing import sha256_state_dict

ct = pytest.importorskip("coremltools")

COMPRESSED = ("conv.weight", "fc.weight")  # > build.WEIGHT_THRESHOLD elements: compressed by the build
UNCOMPRESSED = ("conv.bias", "fc.bias", "head.weight", "head.bias")  # below it: plain fp16 consts
FOLDED = ("bn.bias", "bn.running_mean", "bn.running_var", "bn.weight", "side.bias", "side.weight")  # BN into conv


class TinyNet(nn.Module):
    """A seeded conv + two linears: two weights above coremltools' weight_threshold (1152 and 1024), one below; and
    a 1x1 conv + BatchNorm, which the converter folds into one conv (weights no torch tensor holds)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.side, self.bn = nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 64)
        self.head = nn.Linear(64, 4)
        assert self.bn.running_var is not None
        with torch.no_grad():
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x) + self.bn(self.side(x))).mean((2, 3))
        return self.head(torch.relu(self.fc(h)))

    def example_inputs(self) -> tuple:
        return (torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(1)),)


def _mil_ops(package) -> dict:
    """The saved package's ML program ops by name (coremltools' reader of the package on disk)."""
    from coremltools.converters.mil.frontend.milproto.load import load

    mlmodel = ct.models.MLModel(str(package), skip_model_load=True)
    spec = mlmodel.get_spec()
    prog = load(model_spec=spec, specification_version=spec.specificationVersion,
                file_weights_dir=mlmodel.weights_dir)
    return {op.name: op for f in prog.functions.values() for op in f.operations}


def _lookup(op) -> np.ndarray:
    """constexpr_lut_to_dense by hand: indices are packed LSB first, nbits each, row-major; value = lut[index]."""
    lut, packed, shape = op.lut.val, op.indices.val, tuple(int(s) for s in op.shape.val)
    nbits = int(np.log2(lut.size))
    count = int(np.prod(shape))
    bits = np.unpackbits(packed.astype(np.uint8), bitorder="little")[: count * nbits].reshape(count, nbits)
    index = (bits.astype(np.int64) << np.arange(nbits)).sum(axis=1)
    return lut[index].reshape(shape)


def _dequantize(op) -> np.ndarray:
    """constexpr_affine_dequantize by hand: (q - zero_point) * scale along `axis`, in the scale's dtype (fp16)."""
    q, zp, scale, axis = op.quantized_data.val, op.zero_point.val, op.scale.val, int(op.axis.val)
    shape = [1] * q.ndim
    shape[axis] = -1
    zp = np.broadcast_to(zp, (q.shape[axis],)).reshape(shape)
    dense = (q.astype(np.float32) - zp.astype(np.float32)) * scale.astype(np.float32).reshape(shape)
    return dense.astype(scale.dtype)


def _mil_name(name: str, suffix: str = "") -> str:
    return "p_" + name.replace(".", "_") + "_to_fp16" + suffix  # how torch.export + ct.convert name a parameter


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict:
    """`device build`'s packages for palettize4 and int8, saved to disk, as ops by name."""
    module = TinyNet().eval()
    model = DeviceModel("tiny", module, module.example_inputs(), sha256_state_dict(module))
    results = build.build(model, ["palettize4", "int8"], tmp_path_factory.mktemp("coreml"))
    assert [r.error for r in results] == [None, None]
    assert {r.manifest["conversion"] for r in results} == {"torch.export"}  # the parameter names _mil_name expects
    return {r.variant: _mil_ops(r.package) for r in results}


@pytest.fixture(scope="module")
def compressed() -> dict:
    module = TinyNet().eval()
    return {"palettize4": compression.compress(module, "palettize4"),
            "int8": compression.compress(module, "int8", example_inputs=module.example_inputs())}


def _host(result: compression.CompressedModule, name: str) -> np.ndarray:
    return result.module.state_dict()[name].detach().numpy()


def test_palettized_host_weights_equal_the_packages_palette_lookup(packages, compressed):
    ops, result = packages["palettize4"], compressed["palettize4"]
    for name in COMPRESSED:
        op = ops[_mil_name(name, "_palettized")]
        assert op.op_type == "constexpr_lut_to_dense" and op.lut.val.size == 16
        dense = _lookup(op)
        assert _host(result, name).dtype == np.float32
        np.testing.assert_array_equal(_host(result, name), dense.astype(np.float32))  # exactly, bit for bit
    for name in UNCOMPRESSED:  # the rest of the program is fp16: the package's consts are torch's fp16 rounding
        stored = ops[_mil_name(name)].val.val
        original = TinyNet().state_dict()[name]
        np.testing.assert_array_equal(stored.astype(np.float32), original.half().float().numpy())
        np.testing.assert_array_equal(_host(result, name), stored.astype(np.float32))
    assert set(result.from_coreml) == set(COMPRESSED + UNCOMPRESSED)
    # the folded conv + BatchNorm is one new weight in the package: its tensors are host-rounded, never mistaken
    assert result.host_rounded == sorted(FOLDED) and not any("side_weight" in k or "bn_weight" in k for k in ops)
    for name in FOLDED:
        original = TinyNet().state_dict()[name]
        np.testing.assert_array_equal(_host(result, name), original.half().float().numpy())


def test_int8_host_weights_equal_the_packages_dequantised_weights(packages, compressed):
    ops, result = packages["int8"], compressed["int8"]
    for name in COMPRESSED:
        op = ops[_mil_name(name, "_quantized")]
        assert op.op_type == "constexpr_affine_dequantize" and op.quantized_data.val.dtype == np.int8
        assert op.scale.val.shape == (op.quantized_data.val.shape[0],)  # per output channel
        np.testing.assert_array_equal(_host(result, name), _dequantize(op).astype(np.float32))
        original = TinyNet().state_dict()[name].numpy()
        step = np.abs(original).reshape(len(original), -1).max(axis=1) / 127  # symmetric, per output channel
        error = np.abs(_host(result, name) - original).reshape(len(original), -1).max(axis=1)
        assert (error <= step / 2 + np.abs(original).max() * 2.0 ** -10).all()  # half a step + fp16 roundings
    for name in UNCOMPRESSED:
        np.testing.assert_array_equal(_host(result, name), ops[_mil_name(name)].val.val.astype(np.float32))


def test_fp16_is_float16_rounding_and_fp32_is_unchanged():
    module = TinyNet()
    half = compression.compress(module, "fp16")
    floating = {name: t for name, t in module.state_dict().items() if t.is_floating_point()}
    for name, tensor in floating.items():
        assert half.module.state_dict()[name].dtype == torch.float32
        assert torch.equal(half.module.state_dict()[name], tensor.half().float())
    assert half.host_rounded == sorted(floating) and half.from_coreml == {}
    assert torch.equal(half.module.bn.num_batches_tracked, module.bn.num_batches_tracked)  # integers untouched
    full = compression.compress_module(module, "fp32")
    assert full is not module and sha256_state_dict(full) == sha256_state_dict(module)


def test_compressed_copy_changes_outputs_a_little_and_leaves_the_original_untouched(compressed):
    module = TinyNet().eval()
    before = sha256_state_dict(module)
    copies = {v: compression.compress(module, v) for v in ("fp16",)} | compressed
    assert sha256_state_dict(module) == before and module.training is False
    assert all(not p.requires_grad or p.grad is None for p in module.parameters())
    (x,) = module.example_inputs()
    with torch.no_grad():
        reference = module(x)
        errors = {v: float((c.module.eval()(x) - reference).norm() / reference.norm()) for v, c in copies.items()}
    assert 0 < errors["fp16"] < errors["int8"] < errors["palettize4"] < 0.2, errors
    for variant, result in copies.items():
        assert result.weights_sha256 == compression.weights_sha256(result.module) != before
        assert result.variant == variant and result.info["variant"] == variant
    assert TinyNet().training and compression.compress_module(TinyNet(), "fp16").training  # mode kept


def test_unknown_variant_is_a_one_line_input_error_listing_the_valid_ones():
    for call in (lambda: compression.compress_module(TinyNet(), "palettize5"),
                 lambda: compression.compression_info("int4")):
        with pytest.raises(InputError) as err:
            call()
        assert "\n" not in err.value.message and "unknown variant" in err.value.message
        assert err.value.fix is not None and "\n" not in err.value.fix
        for valid in ("fp32", "fp16", "int8", "palettizeN[-kmeans]", "1, 2, 3, 4, 6, 8"):
            assert valid in err.value.fix


def test_a_module_without_example_inputs_is_an_input_error():
    bare = nn.Sequential(nn.Linear(32, 32))
    with pytest.raises(InputError, match="no example inputs"):
        compression.compress_module(bare, "int8")
    assert compression.compress_module(bare, "fp16") is not bare  # fp16 needs no conversion


def test_palettize4_has_at_most_16_values_per_tensor(compressed):
    result = compressed["palettize4"]
    assert result.info["config"]["granularity"] == "per_tensor" and result.info["config"]["nbits"] == 4
    for name in COMPRESSED:
        assert len(np.unique(_host(result, name))) <= 16
    assert len(np.unique(_host(result, "head.weight"))) > 16  # below weight_threshold: fp16, not palettized


def test_compression_info_is_the_builds_configuration():
    info = compression.compression_info("palettize4")
    assert info["method"] == "coremltools.optimize.coreml.palettize_weights"
    assert info["config"]["mode"] == "uniform" and info["config"]["weight_threshold"] == build.WEIGHT_THRESHOLD
    assert info["precision"] == "fp16" and info["weight_bits"] == 4 and info["coremltools"] == ct.__version__
    q = compression.compression_info("int8")
    assert q["config"]["mode"] == "linear_symmetric" and q["config"]["dtype"] == "int8"
    assert q["config"]["granularity"] == "per_channel"
    assert compression.compression_info("palettize2-kmeans")["config"]["mode"] == "kmeans"
    assert compression.compression_info("fp32")["weight_bits"] == 32


def test_host_tensors_pair_only_with_program_weights_that_hold_them_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    host = {"blocks.0.w": torch.randn(8, 8, generator=g), "blocks.1.w": torch.randn(8, 8, generator=g),
            "norm.w": torch.ones(8), "other.w": torch.ones(8), "bias": torch.randn(8, generator=g),
            "conv.weight": torch.randn(4, 8, generator=g), "bn.weight": torch.randn(4, generator=g)}
    half = {k: v.half().numpy() for k, v in host.items()}
    converted = {"blocks_0_w_to_fp16": half["blocks.0.w"],  # torch.jit.trace naming
                 "var_17": half["blocks.1.w"],  # a name the converter made up: found by its values
                 "p_norm_w_to_fp16": half["norm.w"], "p_other_w_to_fp16": half["other.w"],  # equal values
                 "bias_rank_expanded": half["bias"].reshape(1, 8, 1, 1),  # a reshape is the same tensor
                 "const_7_to_fp16": (host["conv.weight"] * host["bn.weight"][:, None]).half().numpy(),  # a fold
                 "var_18": half["blocks.0.w"].T.copy()}  # a transpose is not
    compressed = {"blocks_0_w_to_fp16_palettized": half["blocks.0.w"] * 0, "var_17_palettized": half["blocks.1.w"],
                  "p_norm_w_to_fp16": half["norm.w"], "p_other_w_to_fp16": half["other.w"],
                  "bias_rank_expanded": half["bias"].reshape(1, 8, 1, 1),
                  "const_7_to_fp16_quantized": converted["const_7_to_fp16"], "var_18_palettized": converted["var_18"]}
    assert compression._match(host, converted, compressed) == {
        "blocks.0.w": "blocks_0_w_to_fp16_palettized", "blocks.1.w": "var_17_palettized",
        "norm.w": "p_norm_w_to_fp16", "other.w": "p_other_w_to_fp16", "bias": "bias_rank_expanded"}

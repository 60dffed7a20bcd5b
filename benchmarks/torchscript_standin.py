"""A STAND-IN for the FID Inception TorchScript file, for benchmarks and tests only: the same architecture and
interface as StyleGAN2-ADA's `inception-2015-12-05.pt` (which clean-fid and evalsuite's `inception` extractor load),
with fixed-seed RANDOM weights. It is not the real network and its features mean nothing; it exists so that the
TorchScript path users run (torch.jit.load of a file, `net.layers(...)` in clean mode, `net(img,
return_features=True)` with the resize inside) can be timed and tested without the real file.

The module tree follows the real file's: `layers.conv`, `layers.conv_1`, `layers.conv_2`, `layers.pool0`,
`layers.conv_3`, `layers.conv_4`, `layers.pool1`, `layers.mixed` … `layers.mixed_10`, `layers.pool2`, and `output`
(the 1008-way classifier); every convolution is a bias-free Conv2d, a BatchNorm without scale (eps 0.001, TF's) and
a ReLU; the blocks are the TF-ported ones (pytorch-fid's FIDInceptionA/C/E_1/E_2: average pools that exclude the
padding, a max pool in the last block). `forward(img, return_features=False, use_fp16=False, no_output_bias=False)`
takes [0, 255] images of any size, resizes them to 299×299 (affine_grid + bilinear grid_sample, border padding) and
normalises with (x − 128) / 128, and returns the 2048-d pool3 features when `return_features`.

    from benchmarks.torchscript_standin import write_standin
    path = write_standin(folder)        # folder / "inception-2015-12-05.pt", a torch.jit.script save
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Iterator, cast

import torch
import torch.nn.functional as F
from torch import nn

FILENAME = "inception-2015-12-05.pt"  # the name clean-fid's InceptionV3W looks for in its folder


class ConvLayer(nn.Module):
    """Conv2d without bias, BatchNorm with a shift (beta) but no scale, eps 0.001, ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.beta = nn.Parameter(torch.zeros(cout))
        self.register_buffer("mean", torch.zeros(cout))
        self.register_buffer("var", torch.ones(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(self.conv(x), self.mean, self.var, None, self.beta, False, 0.0, 0.001)  # type: ignore[arg-type]
        return F.relu(x)


class AvgPoolNoPad(nn.Module):
    """3×3 stride-1 average pool over the valid pixels only (TF's SAME average pool)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class Tower(nn.Sequential):
    pass


class MixedA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.conv = ConvLayer(cin, 64, 1)
        self.tower = Tower(); self.tower.add_module("conv", ConvLayer(cin, 48, 1))  # noqa: E702
        self.tower.add_module("conv_1", ConvLayer(48, 64, 5, padding=2))
        self.tower_1 = Tower(); self.tower_1.add_module("conv", ConvLayer(cin, 64, 1))  # noqa: E702
        self.tower_1.add_module("conv_1", ConvLayer(64, 96, 3, padding=1))
        self.tower_1.add_module("conv_2", ConvLayer(96, 96, 3, padding=1))
        self.tower_2 = Tower(); self.tower_2.add_module("pool", AvgPoolNoPad())  # noqa: E702
        self.tower_2.add_module("conv", ConvLayer(cin, pool_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class MixedB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.conv = ConvLayer(cin, 384, 3, stride=2)
        self.tower = Tower(); self.tower.add_module("conv", ConvLayer(cin, 64, 1))  # noqa: E702
        self.tower.add_module("conv_1", ConvLayer(64, 96, 3, padding=1))
        self.tower.add_module("conv_2", ConvLayer(96, 96, 3, stride=2))
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], 1)


class MixedC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.conv = ConvLayer(cin, 192, 1)
        self.tower = Tower(); self.tower.add_module("conv", ConvLayer(cin, c7, 1))  # noqa: E702
        self.tower.add_module("conv_1", ConvLayer(c7, c7, (1, 7), padding=(0, 3)))
        self.tower.add_module("conv_2", ConvLayer(c7, 192, (7, 1), padding=(3, 0)))
        self.tower_1 = Tower(); self.tower_1.add_module("conv", ConvLayer(cin, c7, 1))  # noqa: E702
        self.tower_1.add_module("conv_1", ConvLayer(c7, c7, (7, 1), padding=(3, 0)))
        self.tower_1.add_module("conv_2", ConvLayer(c7, c7, (1, 7), padding=(0, 3)))
        self.tower_1.add_module("conv_3", ConvLayer(c7, c7, (7, 1), padding=(3, 0)))
        self.tower_1.add_module("conv_4", ConvLayer(c7, 192, (1, 7), padding=(0, 3)))
        self.tower_2 = Tower(); self.tower_2.add_module("pool", AvgPoolNoPad())  # noqa: E702
        self.tower_2.add_module("conv", ConvLayer(cin, 192, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class MixedD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.tower = Tower(); self.tower.add_module("conv", ConvLayer(cin, 192, 1))  # noqa: E702
        self.tower.add_module("conv_1", ConvLayer(192, 320, 3, stride=2))
        self.tower_1 = Tower(); self.tower_1.add_module("conv", ConvLayer(cin, 192, 1))  # noqa: E702
        self.tower_1.add_module("conv_1", ConvLayer(192, 192, (1, 7), padding=(0, 3)))
        self.tower_1.add_module("conv_2", ConvLayer(192, 192, (7, 1), padding=(3, 0)))
        self.tower_1.add_module("conv_3", ConvLayer(192, 192, 3, stride=2))
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], 1)


class MixedE(nn.Module):
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.conv = ConvLayer(cin, 320, 1)
        self.tower_conv = ConvLayer(cin, 384, 1)
        self.tower_mixed_conv = ConvLayer(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvLayer(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvLayer(cin, 448, 1)
        self.tower_1_conv_1 = ConvLayer(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvLayer(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvLayer(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = nn.MaxPool2d(3, 1, 1) if max_pool else AvgPoolNoPad()
        self.tower_2_conv = ConvLayer(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], 1)


def _layers() -> nn.Sequential:
    parts: list[tuple[str, nn.Module]] = [
        ("conv", ConvLayer(3, 32, 3, stride=2)), ("conv_1", ConvLayer(32, 32, 3)),
        ("conv_2", ConvLayer(32, 64, 3, padding=1)), ("pool0", nn.MaxPool2d(3, 2)),
        ("conv_3", ConvLayer(64, 80, 1)), ("conv_4", ConvLayer(80, 192, 3)), ("pool1", nn.MaxPool2d(3, 2)),
        ("mixed", MixedA(192, 32)), ("mixed_1", MixedA(256, 64)), ("mixed_2", MixedA(288, 64)),
        ("mixed_3", MixedB(288)), ("mixed_4", MixedC(768, 128)), ("mixed_5", MixedC(768, 160)),
        ("mixed_6", MixedC(768, 160)), ("mixed_7", MixedC(768, 192)), ("mixed_8", MixedD(768)),
        ("mixed_9", MixedE(1280, max_pool=False)), ("mixed_10", MixedE(2048, max_pool=True)),
        ("pool2", nn.AvgPool2d(8, 8)),
    ]
    layers = nn.Sequential()
    for name, module in parts:
        layers.add_module(name, module)
    return layers


class StandinInception(nn.Module):
    """The FID Inception's interface and graph with random weights (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.layers = _layers()
        self.output = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        batch_size, channels, height, width = img.shape
        x = img.to(torch.float16 if use_fp16 else torch.float32)
        theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)  # resize to 299×299 as a bilinear resampling
        theta[0, 2] += theta[0, 0] / width - theta[0, 0] / 299
        theta[1, 2] += theta[1, 1] / height - theta[1, 1] / 299
        grid = F.affine_grid(theta.unsqueeze(0).repeat(batch_size, 1, 1), [batch_size, channels, 299, 299], False)
        x = F.grid_sample(x, grid, "bilinear", "border", False)
        x = (x - 128.0) / 128.0
        features = torch.reshape(self.layers(x), [-1, 2048]).to(torch.float32)
        if return_features:
            return features
        if no_output_bias:
            logits = F.linear(features, self.output.weight, None)
        else:
            logits = self.output(features)
        return F.softmax(logits, 1)


def standin(seed: int = 0) -> StandinInception:
    """The stand-in with fixed-seed random weights (He-normal convolutions, small BatchNorm shifts), each layer's
    BatchNorm statistics set to those of its convolution's output on a seeded N(0, 1) batch, as the eager
    benchmark network's are. Calibrated on the images it then scores instead, a random network of this depth is
    chaotic (float32 rounding grows ~1.5x per block to ~1e-4 of the features, against ~5e-7 here), which a
    trained network is not."""
    torch.manual_seed(seed)
    net = StandinInception()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, ConvLayer):
                m.beta.normal_(0.0, 0.1)
        x = torch.randn(8, 3, 299, 299, generator=torch.Generator().manual_seed(seed + 1))
        hooks = [m.register_forward_pre_hook(_calibrate) for m in net.modules() if isinstance(m, ConvLayer)]
        net.layers(x)
        for h in hooks:
            h.remove()
    return net.eval()


def _calibrate(module: nn.Module, args: tuple) -> None:
    """Set a layer's BatchNorm statistics to those of its convolution's output on the calibration batch."""
    assert isinstance(module, ConvLayer)
    y = module.conv(args[0])
    cast(torch.Tensor, module.mean).copy_(y.mean(dim=(0, 2, 3)))
    cast(torch.Tensor, module.var).copy_(y.var(dim=(0, 2, 3), unbiased=False))


def write_standin(folder: Path, seed: int = 0) -> Path:
    """Script the stand-in (torch.jit.script) and save it as folder/inception-2015-12-05.pt; returns the path. The
    same seed writes the same weights (the file's bytes may differ between torch versions)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILENAME
    if not path.is_file():
        scripted = torch.jit.script(standin(seed))
        tmp = path.with_suffix(".tmp")
        scripted.save(str(tmp))
        tmp.replace(path)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def inception_from(path: Path) -> Iterator[None]:
    """Benchmark/test only: within this block, evalsuite's weights store resolves `inception-2015-12-05` to `path`
    (with that file's own sha256), so the `inception` extractor loads it exactly as it loads the real file
    (torch.jit.load, `layers` in clean mode). Real scoring never goes through this: outside the block the store
    accepts only the verified file."""
    from evalsuite import weights

    real = weights.require_verified
    digest = sha256_of(path)

    def require_verified(name: str, *, offline: bool | None = None) -> tuple[Path, str]:
        return (path, digest) if name == "inception-2015-12-05" else real(name, offline=offline)

    weights.require_verified = require_verified
    try:
        yield
    finally:
        weights.require_verified = real

"""The TorchScript FID Inception path (`--extractor inception`): its frozen graph rebuilt as an eager module with
the eager optimisations (evalsuite.jit_graph + evalsuite.inference) equals the TorchScript output, falls back to
the TorchScript on any deviation, and provenance records what ran.

The network is the benchmark's STAND-IN for `inception-2015-12-05.pt` (benchmarks/torchscript_standin.py: the
file's module tree and interface, random weights, saved with torch.jit.script), installed as the weights file for
each test only. That its graph is the FID Inception's is checked by running pytorch-fid 0.3.0's own FID Inception
(`fid_inception_v3`, FIDInceptionA/C/E_1/E_2 on torchvision's InceptionV3) with the stand-in's weights.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.torchscript_standin import standin, write_standin
from evalsuite import extractors, inference, jit_graph
from evalsuite.inference import deviation
from evalsuite.runner import ScoreOptions, score
from tests.conftest import install_standin_weights
from tests.official import official

TOLERANCE = 1e-5  # rebuilt (folded, channels_last, oneDNN) vs TorchScript features, relative to the largest one


@pytest.fixture(scope="module")
def standin_file(tmp_path_factory):
    return write_standin(tmp_path_factory.mktemp("standin"))


@pytest.fixture
def inception(standin_file, monkeypatch):
    install_standin_weights(monkeypatch, "inception-2015-12-05", standin_file)
    return standin_file


def _images(n=8, size=299, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 255


def test_standin_is_pytorch_fids_fid_inception(monkeypatch):
    """pytorch-fid's FID Inception (fid_inception_v3, its FIDInception blocks) with the stand-in's weights computes
    the stand-in's pool3 features: the stand-in has the FID Inception's graph."""
    pfid = official("pytorch_fid.inception")
    net = standin()
    ours = [m for m in net.layers.modules() if type(m).__name__ == "ConvLayer"]
    state = {}
    probe = pfid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    names = [n for n, m in probe.named_modules() if type(m).__name__ == "BasicConv2d"]
    assert len(names) == len(ours) == 94
    for name, layer in zip(names, ours):
        state[f"{name}.conv.weight"] = layer.conv.weight.detach()
        state[f"{name}.bn.weight"] = torch.ones_like(layer.beta)  # the TF graph's batch norm has no scale
        state[f"{name}.bn.bias"] = layer.beta.detach()
        state[f"{name}.bn.running_mean"] = layer.mean
        state[f"{name}.bn.running_var"] = layer.var
        state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    state["fc.weight"], state["fc.bias"] = net.output.weight.detach(), net.output.bias.detach()
    monkeypatch.setattr(pfid, "load_state_dict_from_url", lambda *a, **k: state)  # instead of the download
    theirs = pfid.InceptionV3([3], resize_input=False, normalize_input=False, use_fid_inception=True).eval()
    x = (_images(4) - 128) / 128
    with torch.no_grad():
        expected = theirs(x)[0].reshape(4, -1)
        got = net.layers(x).reshape(4, -1)
    assert deviation(expected, got) < 1e-5


def test_rebuilt_graph_equals_the_torchscript_output(inception):
    ext = extractors.build("inception")  # clean mode: torch.jit.load of the verified file, `layers` on (x-128)/128
    runner = ext.runner()
    x = _images(10).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fast = runner(x)
        again = runner(x)  # now served by the rebuilt graph alone
        exact = ext.forward(x)
    report = ext.graph_report()
    assert report["applied"][0].startswith("TorchScript freeze")
    assert any(step.startswith("frozen graph rebuilt as an eager torch.fx module (94 convolutions")
               for step in report["applied"])
    assert any("oneDNN" in step for step in report["applied"]) == inference._onednn_available()
    assert report["checked_input_shapes"] == 1 and report["max_feature_deviation_relative"] < TOLERANCE
    assert isinstance(runner.candidate, torch.fx.GraphModule)
    assert deviation(exact, fast) < TOLERANCE and deviation(exact, again) < TOLERANCE


def test_resize_inside_is_not_rebuilt_and_says_why(inception):
    """legacy_tensorflow runs the whole file (resize inside: control flow in the graph): frozen TorchScript."""
    ext = extractors.build("inception:legacy_tensorflow")
    x = _images(2, size=128)
    with torch.inference_mode():
        fast = ext.runner()(x)
        exact = ext.forward(x)
    report = ext.graph_report()
    assert report["applied"][0].startswith("TorchScript freeze")
    assert any(step.startswith("not rebuilt as an eager graph (control flow") for step in report["applied"])
    assert deviation(exact, fast) < TOLERANCE


def test_a_deviating_rebuild_falls_back_and_is_recorded(inception, monkeypatch):
    real = jit_graph.rebuild

    def off_by_a_bit(frozen):
        gm, counts = real(frozen)
        with torch.no_grad():
            next(m for m in gm.modules() if isinstance(m, torch.nn.Conv2d)).weight.mul_(1.01)
        return gm, counts

    monkeypatch.setattr(jit_graph, "rebuild", off_by_a_bit)
    ext = extractors.build("inception")
    x = _images(4)
    with torch.inference_mode():
        out = ext.runner()(x)
        exact = ext.forward(x)
    report = ext.graph_report()
    assert report["applied"] == [] and "deviated" in report["reason"] and "as written" in report["reason"]
    assert torch.equal(out, exact)  # the TorchScript's own output


def test_unsupported_graph_raises():
    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    frozen = torch.jit.freeze(torch.jit.script(Branchy()).eval())
    with pytest.raises(jit_graph.Unsupported, match="control flow"):
        jit_graph.rebuild(frozen)


def test_scored_fid_records_the_rebuilt_graph_and_equals_the_torchscript(inception, tmp_path):
    from tests.conftest import write_images

    a, b = tmp_path / "a", tmp_path / "b"
    write_images(a, 12, seed=1)
    write_images(b, 12, seed=2, offset=30.0)
    opts = dict(tasks=["fid"], extractor="inception", ref=f"folder:{b}", num_workers=0, progress=False, batch_size=8)
    (opt,) = score(f"folder:{a}", ScoreOptions.with_legacy(**opts, store=tmp_path / "s1")).results
    (plain,) = score(f"folder:{a}", ScoreOptions.with_legacy(**opts, store=tmp_path / "s2",
                                                             optimize_graph=False)).results
    graph = opt["provenance"]["inference_graph"]["inception"]
    assert any(step.startswith("frozen graph rebuilt") for step in graph["applied"])
    assert graph["max_feature_deviation_relative"] < TOLERANCE
    assert plain["provenance"]["inference_graph"]["inception"]["applied"] == []
    assert opt["metrics"]["fid"] == pytest.approx(plain["metrics"]["fid"], rel=1e-6)


def test_rebuild_of_ops_freezing_leaves_alone():
    """A batch norm without scale that freezing cannot fold (it precedes the convolution), list and shape ops."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.mean, self.var = torch.rand(3), torch.rand(3) + 0.5
            self.beta = torch.nn.Parameter(torch.randn(3))
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, 0.001)
            y = torch.relu(self.conv(x))
            return torch.cat([y, torch.nn.functional.avg_pool2d(y, 3, 1, 1, count_include_pad=False)], 1).reshape(
                x.shape[0], -1)

    net = Net().eval()
    frozen = torch.jit.freeze(torch.jit.script(net).eval())
    gm, counts = jit_graph.rebuild(frozen)
    assert counts["batch_norm"] == 1 and counts["conv2d"] == 1
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert deviation(net(x), gm(x)) < 1e-6

"""The optimised inference graph (folded conv+BN, channels_last, frozen TorchScript) agrees with the network as
written, falls back to it whenever it cannot be built or disagrees, and is recorded in provenance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evalsuite import inference
from evalsuite.inference import InferenceGraph, deviation
from evalsuite.runner import ScoreOptions, score


class ConvBN(nn.Module):
    """Conv→BN→ReLU twice with non-trivial BN statistics (seeded): the pattern that gets folded."""

    num_features = 12
    preprocessing = {"resize": "none", "input_dtype": "uint8"}

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 12, 3, stride=2), nn.BatchNorm2d(12), nn.ReLU())
        with torch.no_grad():
            for m in self.body:
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-1, 1)
                    m.running_var.uniform_(0.5, 2)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
        self.eval()

    def forward(self, x):
        return self.body(x.float() / 255.0).mean(dim=(2, 3))


class DataDependent(ConvBN):
    """Python control flow on tensor values: torch.fx cannot trace it, so the network must run as written."""

    def forward(self, x):
        y = super().forward(x)
        if y.sum() > 0:
            return y
        return -y


def conv_bn():
    return ConvBN()


def _batch(n=6, size=20, seed=1):
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_folds_batchnorm_and_agrees_with_the_original():
    net = ConvBN()
    graph = InferenceGraph(net)
    assert graph.candidate is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in graph.candidate.modules())  # folded away
    x = _batch()
    with torch.inference_mode():
        exact = net(x)
        got = graph(x)
        again = graph(_batch(seed=2))
    assert deviation(exact, got) < 1e-5
    assert torch.allclose(again, net(_batch(seed=2)), rtol=1e-5, atol=1e-6)
    report = graph.report()
    assert report["applied"][0].startswith("conv-batchnorm folding") and "channels_last weights" in report["applied"]
    assert report["checked_input_shapes"] == 1 and 0 <= report["max_feature_deviation_relative"] < 1e-5
    with torch.inference_mode():
        graph(_batch(size=24))  # a new input shape is checked again
    assert graph.report()["checked_input_shapes"] == 2


@pytest.mark.skipif(not inference._onednn_available(), reason="this torch build has no oneDNN")
def test_convolutions_and_their_relu_run_as_one_onednn_call():
    graph = InferenceGraph(ConvBN())
    onednn = [m for m in graph.candidate.modules() if isinstance(m, inference.OneDNNConv)]
    assert len(onednn) == 2 and all(m.relu for m in onednn)
    assert not any(isinstance(m, nn.ReLU) for m in graph.candidate.modules())  # taken into the oneDNN call
    net = ConvBN()
    with torch.inference_mode():
        for n in (1, 3, 8, 13):  # weights packed for the first input size serve every batch size
            x = _batch(n, seed=n).float().contiguous(memory_format=torch.channels_last)
            assert deviation(net(x), graph.candidate(x)) < 1e-5
            assert deviation(net(x), graph.candidate(x.contiguous())) < 1e-5  # NCHW input too
        assert onednn[0]._packed is not None
    x = torch.rand(1, 3, 8, 8, requires_grad=True)  # autograd: the plain convolution runs, gradients flow
    y = onednn[0](x)
    assert y.grad_fn is not None and torch.allclose(y, net.body[:3](x), atol=1e-6)  # conv→BN→ReLU as written
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fast mode keeps its bfloat16 convolutions
        assert onednn[0](torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16


def test_a_network_off_the_cpu_keeps_its_plain_convolutions():
    """Weights on another device (meta stands in for a GPU here) get folding and channels_last, not oneDNN calls."""
    graph = InferenceGraph(ConvBN().to("meta"))
    assert graph.candidate is not None
    assert not any(isinstance(m, inference.OneDNNConv) for m in graph.candidate.modules())
    assert sum(isinstance(m, nn.Conv2d) for m in graph.candidate.modules()) == 2
    assert not any("oneDNN" in step for step in graph.applied)


def test_a_relu_is_fused_only_into_its_convolutions_sole_user():
    class TwoUsers(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            return (torch.relu(y) + y).mean(dim=(2, 3))

    net = TwoUsers().eval()
    graph = InferenceGraph(net)
    if inference._onednn_available():
        (conv,) = [m for m in graph.candidate.modules() if isinstance(m, inference.OneDNNConv)]
        assert not conv.relu
    x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert deviation(net(x), graph(x)) < 1e-5


def test_untraceable_network_runs_as_written():
    net = DataDependent()
    graph = InferenceGraph(net)
    assert graph.candidate is None and "TraceError" in graph.report()["reason"]
    with torch.inference_mode():
        assert torch.equal(graph(_batch()), net(_batch()))


def test_a_deviating_graph_is_dropped_and_the_exact_output_used(monkeypatch):
    class OffByOne(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) + 1.0

    monkeypatch.setattr(inference, "optimized_copy", lambda m, cl: (OffByOne(m), ["broken"], None))
    net = ConvBN()
    graph = InferenceGraph(net)
    with torch.inference_mode():
        assert torch.equal(graph(_batch()), net(_batch()))
        assert torch.equal(graph(_batch(seed=3)), net(_batch(seed=3)))  # and every batch after it
    report = graph.report()
    assert report["applied"] == [] and "deviated" in report["reason"] and "as written" in report["reason"]


def test_nan_placement_must_match():
    a = torch.tensor([[1.0, float("nan")], [2.0, 3.0]])
    assert deviation(a, a.clone()) == 0.0
    assert deviation(a, torch.tensor([[1.0, 0.0], [2.0, 3.0]])) is None
    assert deviation(a, torch.tensor([[1.0, float("nan")], [2.0, 3.3]])) == pytest.approx(0.1)


def test_torchscript_network_is_frozen():
    net = torch.jit.script(ConvBN())
    graph = InferenceGraph(net)
    assert graph.candidate is not None and graph.report()["applied"][0].startswith("TorchScript freeze")
    with torch.inference_mode():
        assert deviation(net(_batch()), graph(_batch())) < 1e-5


def test_disabled_and_functions_run_as_written():
    assert InferenceGraph(ConvBN(), enabled=False).report() == {"applied": [], "reason": "disabled (--no-graph-opt)"}
    assert "function" in InferenceGraph(lambda x: x.float()).report()["reason"]


def test_score_records_the_graph_and_agrees_with_no_graph_opt(image_folders, tmp_path):
    a, b = image_folders
    spec = "python:tests.test_inference_graph:conv_bn"
    opts = dict(tasks=["fid"], extractor=spec, ref=f"folder:{b}", num_workers=0, progress=False, batch_size=8)
    (opt,) = score(f"folder:{a}", ScoreOptions.with_legacy(**opts, store=tmp_path / "s1")).results
    (plain,) = score(f"folder:{a}", ScoreOptions.with_legacy(**opts, store=tmp_path / "s2",
                                                             optimize_graph=False)).results
    graph = opt["provenance"]["inference_graph"][spec]
    assert graph["applied"] and graph["max_feature_deviation_relative"] < 1e-5
    assert plain["provenance"]["inference_graph"][spec]["applied"] == []
    assert plain["details"]["n_computed_features"] == 40  # never served the optimised graph's cached features
    assert opt["metrics"]["fid"] == pytest.approx(plain["metrics"]["fid"], rel=1e-5)


def test_cpu_forward_passes_take_cache_sized_chunks_in_order():
    from evalsuite import features
    from evalsuite.extractors import Extractor
    from evalsuite.preprocess import Preprocessing

    seen = []

    def network(x):
        seen.append(len(x))
        return x.float().mean(dim=(2, 3))

    ext = Extractor("test", "0" * 64, Preprocessing("none", None, "uint8"), 3, network)
    images = [_batch(1, seed=i)[0].permute(1, 2, 0).numpy() for i in range(21)]
    out = features.run_network(ext, images)
    assert seen == [8, 8, 5] and features.CPU_IMAGE_NETWORK_BATCH == 8
    expected = [img.astype("float64").mean(axis=(0, 1)) for img in images]
    assert all(abs(a - b).max() < 1e-4 for a, b in zip(out, expected))  # each image's row, in order


class PoolBranch(nn.Module):
    """TF-style Inception pool branches: a stride-1 average pool over valid pixels, then a 1×1 convolution with a
    bias (a folded BatchNorm) and a ReLU, written three ways (functional, nn.AvgPool2d, the ATen op a frozen
    TorchScript graph holds), plus pools the step must leave alone."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.c3 = (nn.Conv2d(16, 4, 1) for _ in range(3))
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.with_pad = nn.Conv2d(16, 4, 1)  # after a pool that counts the padding: border weights do not sum to 1
        self.strided = nn.Conv2d(16, 4, 1)  # after a stride-2 pool: moving it would run on 4× the pixels
        self.widening = nn.Conv2d(16, 32, 1)  # more output channels than input: pooling first is cheaper
        self.spatial = nn.Conv2d(16, 4, 3, padding=1)  # not 1×1: not a per-pixel map
        self.eval()

    def forward(self, x):
        x = x.float() / 255.0 - 0.5
        x = torch.cat([x] * 5 + [x[:, :1]], 1)  # 16 channels
        keep = [torch.relu(self.c1(torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1,
                                                                  count_include_pad=False))),
                torch.relu(self.c2(self.pool(x))),
                torch.relu(self.c3(torch.ops.aten.avg_pool2d(x, [3, 3], [1, 1], [1, 1], False, False, None)))]
        leave = [self.with_pad(torch.nn.functional.avg_pool2d(x, 3, 1, 1)),
                 self.strided(torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
                 self.widening(torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)),
                 self.spatial(torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False))]
        return torch.cat([t.mean(dim=(2, 3)) for t in keep + leave], 1)


def test_a_1x1_convolution_moves_before_its_average_pool_only_where_that_is_exact():
    net = PoolBranch()
    graph = InferenceGraph(net, channels_last=False)  # the step itself, without oneDNN's own reordering
    assert any(step.startswith("1x1 convolution moved before its stride-1 average pool (3;")
               for step in graph.applied), graph.applied
    x = _batch(4, 13)
    exact = net(x)
    fast = graph(x)
    assert graph.candidate is not None, graph.reason
    assert deviation(exact, fast) < 1e-6
    modules = dict(graph.candidate.named_modules())
    pools = [n for n in graph.candidate.graph.nodes if inference._avg_pool_call(n, modules) is not None]
    after_conv = [n for n in pools if n.args[0].op == "call_module"
                  and isinstance(modules[str(n.args[0].target)], nn.Conv2d)]
    assert len(pools) == 7 and len(after_conv) == 3  # each pool still runs once; three now follow their conv


def test_the_pool_step_changes_nothing_without_a_matching_pool():
    gm = torch.fx.symbolic_trace(ConvBN())
    assert inference._conv_before_avg_pool(gm) == 0

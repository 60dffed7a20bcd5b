"""Where the FID network's time goes on this CPU, and how close its convolutions are to the machine's float32 peak.

    python benchmarks/network_profile.py [--rounds 8] [--batch 8] [--json out.json]

The network is the TorchScript stand-in for `inception-2015-12-05.pt` (`benchmarks/torchscript_standin.py`: the
real file's architecture and graph, fixed-seed random weights) loaded by evalsuite's own `inception` extractor,
exactly as `--extractor inception` loads the real file. In one process, rounds alternate between:

* `as written`: the loaded TorchScript as the peers call it (clean-fid's `layers` on (x − 128) / 128), batch 50;
* `graph, pool not moved`: evalsuite's inference graph (`evalsuite.inference`) without the step that moves a 1×1
  convolution in front of its stride-1 average pool, at evalsuite's CPU batch;
* `graph`: evalsuite's inference graph as scoring runs it;
* `eager path`: the benchmark's eager network (torchvision's InceptionV3 architecture, random weights, the same
  FLOPs) through evalsuite's inference graph: what the TorchScript path is compared with.

so a busy spell hits each alike; the median ms/image of each is reported. Then, for `graph`: the profiler's
share of each op, the convolutions' GFLOP/s (FLOPs counted from every convolution's shapes) against what MKL's
float32 matrix product (4096², best of 5) reaches on the same cores, and the feature deviation of each graph from
the network as written.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: `benchmarks` and `evalsuite` import
    sys.path.insert(0, str(REPO))


def _graphs(standin: Path) -> tuple[dict, Callable[[torch.Tensor], torch.Tensor]]:
    """The three callables timed (name -> (callable, batch)) and the network as written."""
    from benchmarks.fid_vs_peers import TorchScriptFeatures, inception_random
    from benchmarks.torchscript_standin import inception_from
    from evalsuite import extractors, inference
    from evalsuite.features import CPU_IMAGE_NETWORK_BATCH

    with inception_from(standin):
        written = extractors.build("inception", "cpu", offline=True).forward
    full = inference.InferenceGraph(written)
    real_move = inference._conv_before_avg_pool
    inference._conv_before_avg_pool = lambda gm: 0  # benchmark only: the same graph without the pool step
    try:
        unmoved = inference.InferenceGraph(written)
    finally:
        inference._conv_before_avg_pool = real_move
    peers = TorchScriptFeatures(standin)()
    eager = inference.InferenceGraph(inception_random())
    return {"as written (peers' call, batch 50)": (peers, 50),
            "graph, pool not moved": (unmoved, CPU_IMAGE_NETWORK_BATCH),
            "graph": (full, CPU_IMAGE_NETWORK_BATCH),
            "eager path (torchvision InceptionV3)": (eager, CPU_IMAGE_NETWORK_BATCH)}, written


def _conv_flops_per_image(graph, x: torch.Tensor) -> float:
    from evalsuite.inference import OneDNNConv

    total = [0.0]

    def count(module, _inputs, out):
        conv = module.conv if isinstance(module, OneDNNConv) else module
        k = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
        total[0] += 2.0 * out.numel() * k

    modules = list(graph.candidate.modules())
    convs: list[torch.nn.Module] = [m for m in modules if isinstance(m, OneDNNConv)]
    convs = convs or [m for m in modules if type(m) is torch.nn.Conv2d]
    hooks = [m.register_forward_hook(count) for m in convs]
    try:
        graph.candidate(x)
    finally:
        for h in hooks:
            h.remove()
    return total[0] / len(x)


def _sgemm_gflops() -> float:
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 4096 ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def main(argv: list[str] | None = None) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from benchmarks.torchscript_standin import write_standin
    from evalsuite.inference import deviation
    from evalsuite.provenance import _cpu_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--images", type=int, default=16, help="images per timed call of each graph per round")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    standin = write_standin(Path(tempfile.mkdtemp()))
    graphs, written = _graphs(standin)
    gen = torch.Generator().manual_seed(0)
    probe = (torch.rand(8, 3, 299, 299, generator=gen) * 255).contiguous(memory_format=torch.channels_last)
    exact = written(probe)
    out: dict = {"cpu": _cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__, "graphs": {}}
    inputs = {}
    for name, (net, batch) in graphs.items():
        x = (torch.rand(batch, 3, 299, 299, generator=gen) * 255).contiguous(memory_format=torch.channels_last)
        inputs[name] = x
        got = net(probe)  # also the first-batch check of the inference graphs
        same_network = not name.startswith("eager")
        out["graphs"][name] = {"batch": batch,
                               "deviation_from_as_written": deviation(exact, got) if same_network else None,
                               "applied": getattr(net, "applied", None), "ms_per_image": []}
        net(x)  # warm-up at the timed shape
    for _ in range(args.rounds):
        for name, (net, batch) in graphs.items():
            calls = max(1, args.images // batch)
            t = time.perf_counter()
            for _ in range(calls):
                net(inputs[name])
            out["graphs"][name]["ms_per_image"].append(1000 * (time.perf_counter() - t) / (calls * batch))
    for name, row in out["graphs"].items():
        row["median_ms_per_image"] = statistics.median(row["ms_per_image"])
        print(f"{name:>36}: {row['median_ms_per_image']:6.1f} ms/image (median of {args.rounds})"
              + (f", deviation {row['deviation_from_as_written']:.1e}" if row["deviation_from_as_written"]
                 is not None else ", another network"))
    full = graphs["graph"][0]
    x = inputs["graph"]
    flops = _conv_flops_per_image(full, x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(4):
            full(x)
    ops = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    total = sum(ops.values())
    conv_s = sum(v for k, v in ops.items() if "convolution" in k)
    out["profile_share"] = {k: v / total for k, v in sorted(ops.items(), key=lambda kv: -kv[1])[:8]}
    out["conv_gflop_per_image"] = flops / 1e9
    out["conv_gflops"] = flops * 4 * len(x) / conv_s / 1e9
    out["sgemm_4096_gflops"] = _sgemm_gflops()
    print("profile (graph):", ", ".join(f"{k} {100 * v:.1f}%" for k, v in out["profile_share"].items()))
    print(f"convolutions: {out['conv_gflop_per_image']:.2f} GFLOP/image at {out['conv_gflops']:.0f} GFLOP/s; "
          f"MKL sgemm 4096²: {out['sgemm_4096_gflops']:.0f} GFLOP/s ({out['cpu']}, {out['threads']} threads)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()

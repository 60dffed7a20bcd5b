"""Seconds per image of a feature network against the number of images per forward pass, on this machine.

    python benchmarks/network_batch.py [--batches 1,2,4,8,16,32,50] [--graph folded|as-written]

It justifies `evalsuite.features.CPU_IMAGE_NETWORK_BATCH`: on a CPU, small batches keep InceptionV3's activations
in cache, and per-image time falls until the batch is too small to keep every core busy. The network is the
benchmark's InceptionV3 architecture with fixed-seed random weights (nothing downloaded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `benchmarks` and `evalsuite` import


def seconds_per_image(network, batch: int, images: int = 64, size: int = 299) -> float:
    x = (torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode():
        network(x)  # warm-up: oneDNN builds its primitives for this shape
        reps = max(2, images // batch)
        start = time.perf_counter()
        for _ in range(reps):
            network(x)
    return (time.perf_counter() - start) / (reps * batch)


def main(argv: list[str] | None = None) -> dict[int, float]:
    from benchmarks.fid_vs_peers import inception_random
    from evalsuite.inference import InferenceGraph

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="1,2,4,8,16,32,50")
    p.add_argument("--graph", choices=("folded", "as-written"), default="folded")
    args = p.parse_args(argv)
    net = inception_random()
    graph = InferenceGraph(net) if args.graph == "folded" else net
    out = {}
    print(f"{'batch':>6}{'ms/image':>10}   ({args.graph} graph, {torch.get_num_threads()} threads)")
    for b in (int(v) for v in args.batches.split(",")):
        out[b] = seconds_per_image(graph, b)
        print(f"{b:>6}{1000 * out[b]:>10.1f}", flush=True)
    return out


if __name__ == "__main__":
    main()

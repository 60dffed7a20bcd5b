"""FID, folder to number, with evalsuite and its peers on the same images and the same network.

    python benchmarks/fid_vs_peers.py --n 1000 [--paths eager,torchscript]
        [--tools evalsuite,clean-fid,torch-fidelity,torchmetrics] [--fd-dim 2048] [--memory-ns 1000,5000]
        [--device cpu|cuda] [--size 299] [--decode-limit] [--json out.json]

On a GPU machine (issue 20 item 3), every tool on the same GPU, 512 px PNGs resized by each tool's own path, and
the decode-bound limit (decode + clean resize alone on every core):

    python benchmarks/fid_vs_peers.py --n 10000 --paths torchscript --device cuda --size 512 --decode-limit \
        --json benchmarks/results/fid_vs_peers_n10000_torchscript_gpu.json

Every tool gets one folder pair of N generated 299×299 PNGs and the same network with fixed-seed random weights
(nothing is downloaded; every tool does the same arithmetic), on one or both paths:

* `eager`: torchvision's InceptionV3 architecture wrapped to take [0, 255] input: evalsuite (`--extractor
  python:benchmarks.fid_vs_peers:inception_random`), clean-fid (`custom_feat_extractor`), torch-fidelity (a
  registered feature extractor), torchmetrics (`feature=`).
* `torchscript`, the path users run: a TorchScript STAND-IN for `inception-2015-12-05.pt` (the FID Inception's
  module tree, graph and interface, random weights: `benchmarks/torchscript_standin.py`) loaded as the real file
  is: evalsuite's own `--extractor inception` (clean mode; the weights store pointed at the stand-in for this
  benchmark only), clean-fid `mode="clean"` with its own `InceptionV3W` wrapper on the stand-in's folder,
  torchmetrics and torch-fidelity with the stand-in's `layers` on (x − 128) / 128 as clean-fid calls it.

Each tool runs in its own process, so wall time and peak memory (ru_maxrss) are its own, start-up (imports)
excluded. It also times the Fréchet step
alone (ours: eigh of √Σ₁Σ₂√Σ₁; scipy `sqrtm` as clean-fid and pytorch-fid do) and evalsuite's second run on the
same folder (feature cache). Prints a table: wall s, images/s, peak MiB, ratio to evalsuite, FID.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `benchmarks` and `evalsuite` import
    sys.path.insert(0, str(REPO))
TOOLS = ("evalsuite", "clean-fid", "torch-fidelity", "torchmetrics")  # also: evalsuite-as-written (--no-graph-opt)


# ------------------------------------------------------------------------------------------------ shared network
def inception_random():
    """torchvision's InceptionV3 architecture, random weights (seed 0), pool features (2048-d); [0, 255] input."""
    import torch
    import torchvision
    from torch import nn

    class Wrapped(nn.Module):
        num_features = 2048
        preprocessing = {"resize": "none", "input_dtype": "float255"}  # images are already 299×299

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
            net.fc = nn.Identity()
            with torch.no_grad():  # calibrate BatchNorm on a seeded batch so activations stay in range
                for m in net.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.reset_running_stats()
                        m.momentum = None  # cumulative: one batch gives its exact statistics
                net.train()
                net(torch.randn(8, 3, 299, 299, generator=torch.Generator().manual_seed(1)))
            self.net = net.eval()
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

        def forward(self, x):
            return self.net((x.float() / 255.0 - self.mean) / self.std)

    return Wrapped().eval()


def make_images(folder: Path, n: int, seed: int, size: int = 299) -> None:
    """N deterministic size×size PNGs (the demo generator's shapes)."""
    from evalsuite.models.demo import DEMO_PROMPTS, DemoGenerator

    folder.mkdir(parents=True, exist_ok=True)
    gen = DemoGenerator(size)
    for i in range(n):
        path = folder / f"{i:06d}.png"
        if not path.exists():
            gen.generate([DEMO_PROMPTS[i % len(DEMO_PROMPTS)]], [seed + i])[0].save(path)


class TorchScriptFeatures:
    """Factory of the TorchScript path's network for torchmetrics / torch-fidelity: the file's `layers` on
    (x − 128) / 128 of a 299×299 [0, 255] batch, as clean-fid's InceptionV3W calls it in clean mode."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self):
        import torch
        from torch import nn

        class Wrapped(nn.Module):
            num_features = 2048

            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                if tuple(x.shape[-2:]) != (299, 299):  # the file's own forward: its resize inside, as users call it
                    return self.net(x.float(), return_features=True)
                return self.net.layers((x.float() - 128) / 128).view(x.shape[0], 2048)

        return Wrapped(torch.jit.load(str(self.path)).eval()).eval()


# ------------------------------------------------------------------------------------------------ one tool per process
def tiny_random():
    """A small conv net (random, seed 0) for the memory check: peak memory is about the pipeline, not the network."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        num_features = 2048
        preprocessing = {"resize": "none", "input_dtype": "float255"}

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 2048, 8, stride=8)

        def forward(self, x):
            return torch.tanh(self.conv(x / 255.0)).mean(dim=(2, 3))

    return Tiny().eval()


def run_tool(tool: str, a: Path, b: Path, batch: int, workers: int, network: str = "inception_random",
             standin: Path | None = None, device: str = "cpu") -> dict:
    """One tool on one folder pair on `device`; `standin` (a TorchScript file) selects the TorchScript path."""
    import contextlib

    import torch

    torch.set_grad_enabled(False)
    out: dict = {"tool": tool, "path": "torchscript" if standin else "eager", "device": device}
    make = TorchScriptFeatures(standin) if standin else inception_random

    def model():
        return make().to(device)
    start = time.perf_counter()
    if tool in ("evalsuite", "evalsuite-as-written"):  # as written: --no-graph-opt, the network as loaded
        from benchmarks.torchscript_standin import inception_from
        from evalsuite.runner import ScoreOptions, score

        extractor = "inception" if standin else f"python:benchmarks.fid_vs_peers:{network}"

        def once():
            opts = ScoreOptions(tasks=["fid"], extractor=extractor, ref=f"folder:{b}", batch_size=batch,
                                num_workers=workers, progress=False, store=Path(tempfile.mkdtemp()),
                                optimize_graph=tool == "evalsuite", device=device)
            with inception_from(standin) if standin else contextlib.nullcontext():
                result = score(f"folder:{a}", opts).results[0]
            return result["metrics"]["fid"], result["provenance"]["inference_graph"].get(extractor)

        out["fid"], out["inference_graph"] = once()
        out["wall_s"] = time.perf_counter() - start
        t1 = time.perf_counter()
        once()  # same folders again: every feature comes from the cache
        out["second_run_s"] = time.perf_counter() - t1
    elif tool == "clean-fid":
        from cleanfid import fid as cleanfid

        if standin:  # what compute_fid(mode="clean") builds itself, on the stand-in's folder instead of its download
            from cleanfid.inception_torchscript import InceptionV3W

            feat = InceptionV3W(str(standin.parent), download=False, resize_inside=False).eval().to(device)
        else:
            feat = model()
        out["fid"] = float(cleanfid.compute_fid(str(a), str(b), mode="clean", custom_feat_extractor=feat,
                                                batch_size=batch, num_workers=workers, device=torch.device(device),
                                                verbose=False, use_dataparallel=False))
    elif tool == "torch-fidelity":
        import torch_fidelity
        from torch_fidelity.feature_extractor_base import FeatureExtractorBase

        class Extractor(FeatureExtractorBase):
            def __init__(self, name, features_list, **kwargs):
                super().__init__(name, features_list)
                self.model = model()

            @staticmethod
            def get_provided_features_list():
                return ("2048",)

            @staticmethod
            def get_default_feature_layer_for_metric(metric):
                return "2048"

            @staticmethod
            def can_be_compiled():
                return False

            @staticmethod
            def get_dummy_input_for_compile():
                return None

            def forward(self, x):
                return (self.model(x),)

        torch_fidelity.register_feature_extractor("bench-inception-random", Extractor)
        metrics = torch_fidelity.calculate_metrics(
            input1=str(a), input2=str(b), fid=True, cuda=device.startswith("cuda"), batch_size=batch, verbose=False,
            cache=False,
            feature_extractor="bench-inception-random", feature_layer_fid="2048", save_cpu_ram=True)
        out["fid"] = float(metrics["frechet_inception_distance"])
    elif tool == "torchmetrics":
        from PIL import Image
        from torchmetrics.image.fid import FrechetInceptionDistance

        metric = FrechetInceptionDistance(feature=model()).to(device)
        for folder, real in ((b, True), (a, False)):
            files = sorted(folder.glob("*.png"))
            for i in range(0, len(files), batch):
                arr = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files[i:i + batch]])
                metric.update(torch.from_numpy(arr).permute(0, 3, 1, 2).to(device), real=real)
        out["fid"] = float(metric.compute())
    else:
        raise SystemExit(f"unknown tool {tool}")
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    out.setdefault("wall_s", time.perf_counter() - start)
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_in_subprocess(tool: str, a: Path, b: Path, batch: int, workers: int, home: Path,
                      network: str = "inception_random", standin: Path | None = None, device: str = "cpu") -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVALSUITE_HOME": str(home), "EVALSUITE_OFFLINE": "1"}
    cmd = [sys.executable, "-W", "ignore::FutureWarning", str(Path(__file__).resolve()), "--child", tool,
           "--a", str(a), "--b", str(b), "--batch", str(batch), "--workers", str(workers), "--network", network,
           "--device", device]
    if standin:
        cmd += ["--standin", str(standin)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        return {"tool": tool, "path": "torchscript" if standin else "eager",
                "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ decode-bound limit
def _decode_resize(path: str) -> int:
    """One image as the clean protocol reads it: PNG/JPEG decode to RGB, clean-fid's float bicubic to 299²."""
    from evalsuite.imageio import read_rgb
    from evalsuite.preprocess import pil_float_bicubic

    return int(pil_float_bicubic(read_rgb(path), (299, 299)).shape[0])


def decode_limit(folders: list[Path], processes: int | None = None) -> dict:
    """Images/s of decode + clean resize alone on every core (a process pool, no network): the speed no FID
    pipeline can beat on this machine's CPU, whatever its accelerator."""
    from multiprocessing import get_context

    files = [str(f) for folder in folders for f in sorted(folder.glob("*.png"))]
    processes = processes or os.cpu_count() or 1
    with get_context("spawn").Pool(processes) as pool:
        pool.map(_decode_resize, files[:processes])  # start-up and imports, not timed
        start = time.perf_counter()
        pool.map(_decode_resize, files, chunksize=16)
        seconds = time.perf_counter() - start
    return {"images": len(files), "processes": processes, "seconds": seconds, "images_per_s": len(files) / seconds}


# ------------------------------------------------------------------------------------------------ Fréchet step alone
def frechet_step(dim: int) -> dict:
    from cleanfid.fid import frechet_distance as sqrtm_fd

    from evalsuite.metrics import frechet_distance

    rng = np.random.default_rng(0)
    stats = []
    for shift in (0.0, 0.2):
        x = rng.normal(size=(dim + 500, dim)) @ (rng.normal(size=(dim, dim)) / np.sqrt(dim)) + shift
        stats.append((x.mean(0), np.cov(x, rowvar=False)))
    t0 = time.perf_counter()
    ours = frechet_distance(*stats[0], *stats[1])
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = float(sqrtm_fd(*stats[0], *stats[1]))
    t_sqrtm = time.perf_counter() - t0
    return {"dim": dim, "evalsuite_s": t_ours, "scipy_sqrtm_s": t_sqrtm, "speedup": t_sqrtm / t_ours,
            "relative_difference": abs(ours - theirs) / abs(theirs)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--paths", default="eager,torchscript",
                   help="eager (torchvision InceptionV3 module), torchscript (a stand-in for the FID TorchScript "
                        "file, loaded as the real one is), or both")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers for evalsuite and clean-fid (default: evalsuite's own choice for a CPU "
                        "run, given to both)")
    p.add_argument("--fd-dim", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=1,
                   help="run every tool this many times, in alternating order, and report each one's fastest run "
                        "(for a machine shared with other work)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda: every tool on the same device")
    p.add_argument("--size", type=int, default=299,
                   help="side of the generated PNGs (the torchscript path resizes them: evalsuite and clean-fid with "
                        "the clean resize, torchmetrics and torch-fidelity through the file's own forward)")
    p.add_argument("--decode-limit", action="store_true",
                   help="also time decode + clean resize alone on every core (no network): the decode-bound limit, "
                        "and each tool's fraction of it")
    p.add_argument("--memory-ns", default="", help="e.g. 10000,50000: evalsuite's peak memory at each N")
    p.add_argument("--memory-network", default="inception", choices=("inception", "tiny"),
                   help="network for the memory check: tiny (a small conv net on 64x64 images) keeps it fast")
    p.add_argument("--network", default="inception_random", help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--standin", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--a", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--b", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_tool(args.child, args.a, args.b, args.batch, args.workers, args.network, args.standin,
                                  args.device)))
        return {}
    if args.size != 299 and "eager" in args.paths.split(","):
        raise SystemExit("--size other than 299 needs --paths torchscript (the eager network takes 299x299 only)")
    if args.workers is None:
        from evalsuite.features import default_workers

        args.workers = default_workers(args.device)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fid-bench-"))
    suffix = "" if args.size == 299 else f"-{args.size}px"
    a, b = work / f"a{args.n}{suffix}", work / f"b{args.n}{suffix}"
    load_start = os.getloadavg()  # other processes on the machine: ratios within one run are what to compare
    make_images(a, args.n, 0, args.size)
    make_images(b, args.n, 1_000_000, args.size)
    rows = []
    for path in (v for v in args.paths.split(",") if v):
        if path not in ("eager", "torchscript"):
            raise SystemExit(f"unknown path {path}: use eager, torchscript or both")
        standin = None
        if path == "torchscript":
            from benchmarks.torchscript_standin import write_standin

            standin = write_standin(work / "torchscript-standin")
        tools = [t for t in args.tools.split(",") if t]
        runs: dict[str, list[dict]] = {t: [] for t in tools}
        for i in range(args.repeats):  # alternate the order: a busy spell on a shared machine hits every tool
            for t in (tools if i % 2 == 0 else tools[::-1]):
                runs[t].append(run_in_subprocess(t, a, b, args.batch, args.workers, Path(tempfile.mkdtemp()),
                                                 standin=standin, device=args.device))
        path_rows = []
        for t in tools:
            done = [r for r in runs[t] if "wall_s" in r]
            best = min(done, key=lambda run: run["wall_s"]) if done else runs[t][0]
            if args.repeats > 1:
                best["wall_s_all_runs"] = [run.get("wall_s") for run in runs[t]]
            path_rows.append(best)
        base = next((r for r in path_rows if r["tool"] == "evalsuite" and "wall_s" in r), None)
        for r in path_rows:
            if "wall_s" in r:
                r["images_per_s"] = 2 * args.n / r["wall_s"]
                r["ratio_to_evalsuite"] = r["wall_s"] / base["wall_s"] if base else None
        rows += path_rows
    limit = decode_limit([a, b]) if args.decode_limit else None
    if limit:
        for r in rows:
            if "images_per_s" in r:
                r["fraction_of_decode_limit"] = r["images_per_s"] / limit["images_per_s"]
    report = {"n": args.n, "batch": args.batch, "workers": args.workers, "repeats": args.repeats,
              "device": args.device, "image_size": args.size, "decode_limit": limit,
              "machine": _machine(args.device), "tools": rows,
              "frechet": frechet_step(args.fd_dim), "load_average_1min": [load_start[0], os.getloadavg()[0]]}
    base = next((r for r in rows if r["tool"] == "evalsuite" and "second_run_s" in r), None)
    if base:
        report["cache_speedup"] = base["wall_s"] / base["second_run_s"]
    if args.memory_ns:
        mem = {}
        tiny = args.memory_network == "tiny"
        for n in (int(v) for v in args.memory_ns.split(",")):
            ma, mb = work / f"mem-a{n}", work / f"mem-b{n}"
            make_images(ma, n, 0, 64 if tiny else 299)
            make_images(mb, n, 1_000_000, 64 if tiny else 299)
            mem[n] = run_in_subprocess("evalsuite", ma, mb, args.batch, args.workers, Path(tempfile.mkdtemp()),
                                       "tiny_random" if tiny else "inception_random")
        report["memory_vs_n"] = {n: r.get("peak_mib") for n, r in mem.items()}
        report["memory_network"] = args.memory_network
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


def _machine(device: str = "cpu") -> dict:
    from evalsuite.provenance import environment

    env = environment(device)
    return {"cpu": env["cpu"], "cpu_count": env["cpu_count"], "torch": env["torch"], "platform": env["platform"],
            **({"gpu": env.get("gpu"), "cuda": env.get("cuda")} if device.startswith("cuda") else {})}


def _print(report: dict) -> None:
    print(f"FID folder->number, N={report['n']} per folder, batch {report['batch']}, {report['workers']} workers, "
          f"{report['machine']['cpu']} x{report['machine']['cpu_count']}")
    print(f"{'path':<13}{'tool':<16}{'wall s':>10}{'images/s':>10}{'peak MiB':>10}{'x evalsuite':>12}{'FID':>14}")
    for r in report["tools"]:
        if "error" in r:
            print(f"{r['path']:<13}{r['tool']:<16}  failed: {r['error']}")
            continue
        print(f"{r['path']:<13}{r['tool']:<16}{r['wall_s']:>10.2f}{r['images_per_s']:>10.1f}{r['peak_mib']:>10.0f}"
              f"{(r['ratio_to_evalsuite'] or 0):>12.2f}{r['fid']:>14.6f}")
    for r in report["tools"]:
        if r.get("inference_graph"):
            g = r["inference_graph"]
            print(f"evalsuite {r['path']} graph: " + ("; ".join(g["applied"]) + f" (max deviation "
                  f"{g['max_feature_deviation_relative']:.1e})" if g["applied"] else f"as written: {g['reason']}"))
    print(f"load average (1 min) at start/end: {report['load_average_1min'][0]:.1f} / "
          f"{report['load_average_1min'][1]:.1f} on {report['machine']['cpu_count']} cores")
    f = report["frechet"]
    print(f"Fréchet step d={f['dim']}: evalsuite {f['evalsuite_s']:.3f} s, scipy sqrtm {f['scipy_sqrtm_s']:.3f} s "
          f"({f['speedup']:.1f}x), relative difference {f['relative_difference']:.1e}")
    if "cache_speedup" in report:
        print(f"evalsuite second run (feature cache): {report['cache_speedup']:.1f}x faster")
    if report.get("decode_limit"):
        lim = report["decode_limit"]
        print(f"decode-bound limit (decode + clean resize, {lim['processes']} processes, no network): "
              f"{lim['images_per_s']:.1f} images/s; fraction of it: " +
              ", ".join(f"{r['tool']} {r['fraction_of_decode_limit']:.2f}" for r in report["tools"]
                        if "fraction_of_decode_limit" in r))
    if "memory_vs_n" in report:
        print("evalsuite peak MiB by N: " + ", ".join(f"{n}: {m:.0f}" for n, m in report["memory_vs_n"].items()))


if __name__ == "__main__":
    main()

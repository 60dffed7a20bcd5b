"""Images/s of the per-image tasks on the path users run (`evalsuite.score`, the real scorer classes and
preprocessing, full-size networks), and the speed of a second run of the same suite (issue 20 item 4).

The real weights cannot be downloaded here, so each network is its real architecture with seeded random weights,
written to a temporary file and registered under the real weights name with its own digest for this process only
(never presented as the real weights; numbers are speeds, not scores). Tasks measured:

* `clipscore`: OpenAI CLIP ViT-B/32 (open_clip's 'ViT-B-32' config), batch 1 and --batch-size 16, then a second run
  (every image from the per-image score cache);
* `lpips`: the autoencoder task's LPIPS (AlexNet), one pair a call and 32 pairs a call;
* GenEval's detector: torchvision Mask R-CNN ResNet-50 FPN v2 (the detector of the installable protocol), one
  image a call against 4 and 8 a call, then the `counting` task's path, first run and second run (score cache);
* `temporal-flickering` (native VBench, no network) videos/s on demo-video clips, and native `subject-consistency`
  (DINO ViT-B/16 on every frame) first and second run (per-video score cache);
* `vlm-judge` second run: answers from the judge cache (the scripted judge of the tests stands in for a VLM, so
  only the cached path's speed is meaningful).

Run: `python -m benchmarks.per_image_tasks [--n 32] [--out benchmarks/results/per_image_tasks.json]`. The CPU model
is recorded with the numbers."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _standin(name: str, path: Path) -> None:
    """Register `path` under the weights name `name` with its own digest, for this process (benchmark only)."""
    from evalsuite import weights
    from evalsuite.hashing import sha256_file

    weights.REGISTRY.register(name, dataclasses.replace(weights.REGISTRY[name], sha256=sha256_file(path)),
                              replace=True)
    weights.import_file(name, path)


def _timed(fn) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def clipscore(n: int, work: Path) -> dict:
    import open_clip
    import torch

    from evalsuite import score

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = work / "ViT-B-32.pt"
    torch.save(model.state_dict(), path)
    _standin("clip-vit-b-32-openai", path)
    store = work / "store"
    score("demo", tasks=["clipscore"], num_samples=n, store=store, progress=False, batch_size=1)  # samples made
    out = {}
    for batch in (1, 16):
        os.environ["EVALSUITE_HOME"] = str(work / f"home-b{batch}")
        _standin("clip-vit-b-32-openai", path)
        seconds, doc = _timed(lambda b=batch: score("demo", tasks=["clipscore"], num_samples=n, store=store,
                                                    progress=False, batch_size=b)["clipscore"])
        out[f"batch{batch}_images_per_s"] = n / seconds
    seconds, doc = _timed(lambda: score("demo", tasks=["clipscore"], num_samples=n, store=store, progress=False,
                                        batch_size=16)["clipscore"])
    assert doc["details"]["cached_samples"] == n, doc["details"]
    out["second_run_images_per_s"] = n / seconds
    out["second_run_speedup"] = out["second_run_images_per_s"] / out["batch16_images_per_s"]
    return out


def _maskrcnn_standin(work: Path) -> None:
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    torch.manual_seed(0)
    path = work / "maskrcnn.pth"
    torch.save(maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None).state_dict(), path)
    _standin("maskrcnn-v2-coco", path)


def detection(n: int, work: Path) -> dict:
    """GenEval's detector: images/s one image a call against 4 and 8 a call (`detect_many`), alternating twice on
    the same 512 px images so a busy spell hits each alike; then the `counting` task's path (the same detector call
    and per-image score cache as `geneval`), first run and second run."""
    import numpy as np
    from PIL import Image

    from evalsuite import score
    from evalsuite.tasks.geneval.detectors import TorchvisionMaskRCNNDetector

    _maskrcnn_standin(work)
    detector = TorchvisionMaskRCNNDetector(device="cpu")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)) for _ in range(8)]
    detector.detect(images[0])  # warm-up
    per_call: dict[int, list[float]] = {1: [], 4: [], 8: []}
    for _ in range(2):
        for batch in per_call:
            seconds, _ = _timed(lambda b=batch: [detector.detect_many(images[i:i + b]) for i in range(0, 8, b)])
            per_call[batch].append(8 / seconds)
    out: dict[str, Any] = {f"batch{b}_images_per_s": max(v) for b, v in per_call.items()}
    out["batch_runs_images_per_s"] = {str(b): v for b, v in per_call.items()}
    run = lambda: score("demo", tasks=["counting"], num_samples=n, max_prompts=n,  # noqa: E731
                        images_per_prompt=1, store=work / "cstore", progress=False)["counting"]
    first, doc = _timed(run)
    assert doc["status"] == "ok" and doc["details"]["cached_samples"] == 0, doc.get("reason")
    second, doc = _timed(run)
    assert doc["details"]["cached_samples"] == n, doc["details"]
    out.update({"task_first_run_images_per_s": n / first, "task_second_run_images_per_s": n / second,
                "second_run_speedup": first / second,
                "detector_input": "torchvision Mask R-CNN resizes every image to 800 px on its shorter side"})
    return out


def flickering(n: int, work: Path) -> dict:
    from evalsuite import score

    seconds, doc = _timed(lambda: score("demo-video", tasks=["temporal-flickering"], num_samples=n,
                                        store=work / "vstore", progress=False)["temporal-flickering"])
    frames = doc["details"]["sampling"].get("frames") if isinstance(doc["details"].get("sampling"), dict) else None
    return {"videos_per_s_including_generation": n / seconds, "frames_per_video": frames}


def subject_consistency(n: int, work: Path) -> dict:
    """Native VBench subject_consistency (DINO ViT-B/16, every frame of demo-video's 16-frame clips): first run,
    then a second run from the per-video score cache."""
    import timm
    import torch

    from evalsuite import score

    torch.manual_seed(0)
    path = work / "dino.pth"
    torch.save(timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0).state_dict(), path)
    _standin("dino-vitb16", path)
    run = lambda: score("demo-video", tasks=["subject-consistency"], num_samples=n,  # noqa: E731
                        store=work / "sstore", progress=False)["subject-consistency"]
    score("demo-video", tasks=["temporal-flickering"], num_samples=n, store=work / "sstore", progress=False)
    first, doc = _timed(run)
    assert doc["status"] == "ok", doc.get("reason")
    second, again = _timed(run)
    assert again["details"]["cached_samples"] == n, again["details"]
    frames = doc["details"]["frames_scored"] + n  # pairs scored + the first frame of each video
    return {"first_run_videos_per_s": n / first, "first_run_frames_per_s": frames / first,
            "second_run_videos_per_s": n / second, "second_run_speedup": first / second}


def lpips(n: int) -> dict:
    """LPIPS (AlexNet, the autoencoder task's metric), 256x256 image pairs, one pair a call and --batch-size 32."""
    import torch

    from evalsuite import imagemetrics

    torch.manual_seed(0)
    metric = imagemetrics.LPIPS.__new__(imagemetrics.LPIPS)  # the same network, random AlexNet weights
    from torchmetrics.functional.image import lpips as tm_lpips

    metric.net, metric.device = tm_lpips._LPIPS(pretrained=True, net="alex", pnet_rand=True).eval(), "cpu"
    x, y = torch.rand(n, 3, 256, 256), torch.rand(n, 3, 256, 256)
    metric(x[:2], y[:2])  # warm-up
    one, _ = _timed(lambda: [metric(x[i:i + 1], y[i:i + 1]) for i in range(n)])
    batched, _ = _timed(lambda: [metric(x[i:i + 32], y[i:i + 32]) for i in range(0, n, 32)])
    return {"batch1_pairs_per_s": n / one, "batch32_pairs_per_s": n / batched, "size": [256, 256]}


def judge_cached(n: int, work: Path) -> dict:
    from evalsuite import score

    opts = {"vlm-judge.judge": "python:tests.test_judge:ScriptedJudge"}
    first, _ = _timed(lambda: score("demo", tasks=["vlm-judge"], num_samples=n, store=work / "jstore",
                                    progress=False, options=opts))
    second, doc = _timed(lambda: score("demo", tasks=["vlm-judge"], num_samples=n, store=work / "jstore",
                                       progress=False, options=opts)["vlm-judge"])
    return {"first_run_s": first, "second_run_s": second, "cache": doc["details"]["cache"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="images per measurement")
    parser.add_argument("--detection-n", type=int, default=16, help="images for the detector (about 3 s each)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    from evalsuite.provenance import environment

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["EVALSUITE_HOME"] = str(work / "home")
        os.environ["EVALSUITE_OFFLINE"] = "1"
        result = {"cpu": environment("cpu")["cpu"], "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "n": args.n,
                  "clipscore": clipscore(args.n, work), "lpips": lpips(args.n),
                  "maskrcnn_detection": detection(args.detection_n, work),
                  "temporal_flickering": flickering(min(args.n, 8), work),
                  "subject_consistency": subject_consistency(min(args.n, 8), work),
                  "vlm_judge_cache": judge_cached(4, work),
                  "weights": "real architectures, seeded random weights (stand-ins): speeds only"}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

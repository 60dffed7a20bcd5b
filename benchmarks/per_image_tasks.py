"""Images/s of the per-image tasks on the path users run (`evalsuite.score`, the real scorer classes and
preprocessing, full-size networks), and the speed of a second run of the same suite (issue 20 item 4).

The real weights cannot be downloaded here, so each network is its real architecture with seeded random weights,
written to a temporary file and registered under the real weights name with its own digest for this process only
(never presented as the real weights; numbers are speeds, not scores). Tasks measured:

* `clipscore`: OpenAI CLIP ViT-B/32 (open_clip's 'ViT-B-32' config), batch 1 and --batch-size 16, then a second run
  (every image from the per-image score cache);
* `geneval`-style detection: torchvision Mask R-CNN ResNet-50 FPN v2 (the detector of the installable protocol), one
  image per call as the task runs it;
* `temporal-flickering` (native VBench, no network) frames/s on demo-video clips;
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


def detection(n: int, work: Path) -> dict:
    import torch
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    from evalsuite.tasks.geneval.detectors import TorchvisionMaskRCNNDetector

    torch.manual_seed(0)
    path = work / "maskrcnn.pth"
    torch.save(maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None).state_dict(), path)
    _standin("maskrcnn-v2-coco", path)
    detector = TorchvisionMaskRCNNDetector(device="cpu")
    from evalsuite.models.demo import DemoGenerator

    pil = DemoGenerator().generate([f"prompt {i}" for i in range(n)], list(range(n)))
    detector.detect(pil[0])  # warm-up
    seconds, _ = _timed(lambda: [detector.detect(image) for image in pil])
    return {"images_per_s": n / seconds, "image_size": list(pil[0].size)}


def flickering(n: int, work: Path) -> dict:
    from evalsuite import score

    seconds, doc = _timed(lambda: score("demo-video", tasks=["temporal-flickering"], num_samples=n,
                                        store=work / "vstore", progress=False)["temporal-flickering"])
    frames = doc["details"]["sampling"].get("frames") if isinstance(doc["details"].get("sampling"), dict) else None
    return {"videos_per_s_including_generation": n / seconds, "frames_per_video": frames}


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
                  "clipscore": clipscore(args.n, work), "maskrcnn_detection": detection(min(args.n, 8), work),
                  "temporal_flickering": flickering(min(args.n, 8), work), "vlm_judge_cache": judge_cached(4, work),
                  "weights": "real architectures, seeded random weights (stand-ins): speeds only"}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

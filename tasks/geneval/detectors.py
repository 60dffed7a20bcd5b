"""GenEval's detectors: "mask2former" (the official mmdet Mask2Former Swin-S, run where mmdet 2.x is installed)
and "torchvision-maskrcnn" (torchvision's Mask R-CNN v2, an installable stand-in with its own protocol name),
registered as detector backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalsuite import weights
from evalsuite.errors import InputError
from evalsuite.hashing import sha256_file, sha256_file_remembered
from evalsuite.tasks.geneval.prompts import COCO_CLASSES
from evalsuite.tasks.t2i.backends import Detection, default_device, register

_CLASS_SET = frozenset(COCO_CLASSES)

# torchvision's COCO category names -> GenEval's where they differ
_TORCHVISION_TO_GENEVAL = {"mouse": "computer mouse", "remote": "tv remote", "keyboard": "computer keyboard"}


def _box(values: Any) -> tuple[float, float, float, float]:
    """A detector's (x1, y1, x2, y2) row as floats."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


def torchvision_label_map() -> dict[int, str]:
    """torchvision's Mask R-CNN label index (91 slots with N/A gaps) -> GenEval class name (80 of them)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    mapping = {}
    for index, name in enumerate(MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"]):
        name = _TORCHVISION_TO_GENEVAL.get(name, name)
        if name in _CLASS_SET:
            mapping[index] = name
    if len(mapping) != len(COCO_CLASSES):
        raise RuntimeError(f"torchvision's COCO categories map to {len(mapping)} GenEval classes, expected 80")
    return mapping


class TorchvisionMaskRCNNDetector:
    """torchvision Mask R-CNN ResNet-50 FPN v2 (COCO) with every detection kept (box_score_thresh=0; GenEval's
    thresholds apply later); masks thresholded at 0.5. Its own protocol: scores are not comparable with the
    official Mask2Former ones."""

    protocol = "torchvision-maskrcnn-v2-coco"

    def __init__(self, device: str | None = None, offline: bool | None = None):
        path, self.weights_sha256 = weights.require_verified("maskrcnn-v2-coco", offline=offline)
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

        self.device = device or default_device()
        model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, box_score_thresh=0.0)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model = model.to(self.device).eval()
        self.labels = torchvision_label_map()

    def detect(self, image: Image.Image) -> list[Detection]:
        return self.detect_many([image])[0]

    def detect_many(self, images: list[Image.Image]) -> list[list[Detection]]:
        """`detect` of each image, images of one size in one forward pass (torchvision pads a batch to its largest
        image, so images of other sizes go in their own passes and every image is padded as it is alone)."""
        import torch
        from torchvision.transforms.functional import pil_to_tensor

        tensors = [pil_to_tensor(image.convert("RGB")).float().div(255.0).to(self.device) for image in images]
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(tensors):
            by_size.setdefault(tuple(x.shape), []).append(i)
        results: list[list[Detection]] = [[] for _ in images]
        for group in by_size.values():
            with torch.no_grad():
                outs = self.model([tensors[i] for i in group])
            for i, out in zip(group, outs):
                results[i] = self._detections(out)
        return results

    def _detections(self, out: dict) -> list[Detection]:
        boxes = out["boxes"].cpu().numpy()
        scores = out["scores"].cpu().numpy()
        labels = out["labels"].cpu().numpy()
        masks = (out["masks"][:, 0] > 0.5).cpu().numpy() if "masks" in out else None
        detections = []
        for i in range(len(scores)):
            name = self.labels.get(int(labels[i]))
            if name is None:
                continue
            detections.append(Detection(name, float(scores[i]), _box(boxes[i]),
                                        None if masks is None else masks[i]))
        return detections


def _torchvision_factory(arg: str = "", device: str | None = None, offline: bool | None = None,
                         **_ignored: Any) -> TorchvisionMaskRCNNDetector:
    if arg:
        raise InputError(f"detector 'torchvision-maskrcnn' takes no argument, got 'torchvision-maskrcnn:{arg}'",
                         "its weights come from the store: `evalsuite weights fetch maskrcnn-v2-coco`")
    return TorchvisionMaskRCNNDetector(device=device, offline=offline)


_MMDET_FIX = ("run the official detector in its own environment with mmdet 2.x (GenEval pins torch 1.x, mmcv-full "
              "1.7, mmdet 2.27), then use --detector mask2former:/path/to/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco"
              ".py,/path/to/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.pth (config, checkpoint); otherwise use "
              "--detector torchvision-maskrcnn (protocol torchvision-maskrcnn-v2-coco, not comparable with published "
              "GenEval numbers)")


class MMDetMask2FormerDetector:
    """The official GenEval detector: Mask2Former Swin-S (COCO) through mmdet; its 80 classes in COCO order map
    one-to-one onto COCO_CLASSES."""

    protocol = "geneval-mask2former-mmdet"

    def __init__(self, config: str, checkpoint: str, device: str | None = None):
        from mmdet.apis import inference_detector, init_detector

        for what, p in (("config", config), ("checkpoint", checkpoint)):
            if not Path(p).is_file():
                raise InputError(f"mask2former {what} {p} does not exist", _MMDET_FIX)
        self._infer = inference_detector
        self.weights_sha256 = sha256_file_remembered(checkpoint)
        self.config_sha256 = sha256_file(config)
        self.model = init_detector(config, checkpoint, device=device or default_device())
        classes = getattr(self.model, "CLASSES", None) or getattr(self.model, "dataset_meta", {}).get("classes")
        if classes is not None and len(classes) != len(COCO_CLASSES):
            raise InputError(f"mask2former checkpoint has {len(classes)} classes, GenEval needs the 80 COCO ones",
                             _MMDET_FIX)

    def detect(self, image: Image.Image) -> list[Detection]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
        result = self._infer(self.model, bgr)
        detections = []
        if hasattr(result, "pred_instances"):  # mmdet 3.x: a DetDataSample
            inst = result.pred_instances
            boxes, scores, labels = (t.cpu().numpy() for t in (inst.bboxes, inst.scores, inst.labels))
            masks = inst.masks.cpu().numpy().astype(bool) if hasattr(inst, "masks") else None
            for i in range(len(scores)):
                detections.append(Detection(COCO_CLASSES[int(labels[i])], float(scores[i]),
                                            _box(boxes[i][:4]),
                                            None if masks is None else masks[i]))
            return detections
        if isinstance(result, dict):  # mmdet 2.x panoptic-capable heads: {'ins_results': (bbox, segm), ...}
            result = result["ins_results"]
        bbox = result[0] if isinstance(result, tuple) else result  # mmdet 2.x: per-class arrays
        segm = result[1] if isinstance(result, tuple) and len(result) > 1 else None
        for index, name in enumerate(COCO_CLASSES):
            for j, row in enumerate(np.asarray(bbox[index]).reshape(-1, 5)):
                mask = None if segm is None else np.asarray(segm[index][j], dtype=bool)
                detections.append(Detection(name, float(row[4]), _box(row[:4]), mask))
        return detections


def _mask2former_factory(arg: str = "", device: str | None = None, **_ignored: Any) -> MMDetMask2FormerDetector:
    try:
        import mmdet  # noqa: F401
    except ImportError:
        raise InputError("detector 'mask2former' (the official GenEval protocol) needs mmdet, which is not "
                         "installed here (mmdet 2.x needs an old torch, so it lives in its own environment)",
                         _MMDET_FIX) from None
    parts = [p.strip() for p in arg.split(",")] if arg else []
    if len(parts) != 2 or not all(parts):
        raise InputError(f"detector spec 'mask2former:{arg}' must name a config and a checkpoint", _MMDET_FIX)
    return MMDetMask2FormerDetector(parts[0], parts[1], device=device)


register("detector", "mask2former", _mask2former_factory)
register("detector", "torchvision-maskrcnn", _torchvision_factory)

"""LAION's improved aesthetic predictor (christophschuhmann/improved-aesthetic-predictor, `simple_inference.py` @
6934dd8): a linear MLP on the L2-normalised OpenAI CLIP ViT-L/14 image embedding, weights
`sac+logos+ava1-l14-linearMSE.pth`. No prompt is used; the score is roughly on a 1-10 scale.

What the script does, reproduced (line numbers of simple_inference.py):
* l.40-64 `MLP(768)`: Linear 768→1024, Dropout 0.2, Linear →128, Dropout 0.2, Linear →64, Dropout 0.1, Linear →16,
  Linear →1 (no activations: the ReLUs are commented out); eval mode, so the dropouts are identities;
* l.103, l.108 `clip.load("ViT-L/14")` and its `preprocess` (bicubic resize of the shorter side to 224, torchvision
  centre crop, RGB, CLIP mean/std); `clip.load` keeps fp16 weights on CUDA and fp32 on the CPU
  (`evalsuite.openai_clip`);
* l.113-115, l.84-89 `normalized`: the embedding, as numpy in the model's dtype (fp16 on CUDA), divided by its L2
  norm (a zero norm counts as 1);
* l.117 the MLP on that array cast to float32.
The script itself runs only on CUDA (`model.to("cuda")`, `torch.cuda.FloatTensor`); on the CPU this is the same
computation in fp32."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from evalsuite import openai_clip
from evalsuite import weights as weights_store
from evalsuite.errors import InputError
from evalsuite.score_cache import ScorerInfo

CLIP_WEIGHTS = "clip-vit-l-14-openai"
HEAD_WEIGHTS = "aesthetic-sac-logos-ava1-l14"


def mlp(input_size: int = 768) -> torch.nn.Sequential:
    """The predictor head, layer for layer as simple_inference.py's MLP (same state-dict keys: layers.N.*)."""
    nn = torch.nn
    return nn.Sequential(nn.Linear(input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                         nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))


def l2_normalised(a: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm, computed in the array's own dtype; a zero norm is taken as 1."""
    norm = np.atleast_1d(np.linalg.norm(a, 2, -1))
    norm[norm == 0] = 1
    return a / norm[..., None]


PROTOCOL = "aesthetic-laion-sac-logos-ava1-l14-linearmse"


class AestheticScorer:
    """The aesthetic score per image (no prompt)."""

    @staticmethod
    def describe(device: str = "cpu", offline: bool | None = None, precision: str | None = None) -> ScorerInfo:
        """Protocol, weights sha256 ({"clip", "head"}) and CLIP precision (details["precision"]) of the scorer on
        this device, without loading it (MissingWeightsError when a file is absent offline)."""
        _, clip_digest = weights_store.require_verified(CLIP_WEIGHTS, offline=offline)
        _, head_digest = weights_store.require_verified(HEAD_WEIGHTS, offline=offline)
        return ScorerInfo(PROTOCOL, {"clip": clip_digest, "head": head_digest},
                          {"precision": precision or openai_clip.official_precision(device)})

    def __init__(self, device: str = "cpu", offline: bool | None = None, precision: str | None = None):
        import open_clip

        info = self.describe(device, offline, precision)
        clip_path = weights_store.require(CLIP_WEIGHTS, offline=offline)
        head_path = weights_store.require(HEAD_WEIGHTS, offline=offline)
        self.precision = info.details["precision"]  # None: what clip.load does
        self.clip: Any = openai_clip.load(clip_path, device, self.precision)  # open_clip's CLIP (untyped)
        try:
            state = torch.load(head_path, map_location="cpu", weights_only=True)
            head = mlp(int(state["0.weight" if "0.weight" in state else "layers.0.weight"].shape[1]))
            head.load_state_dict({k.removeprefix("layers."): v for k, v in state.items()}, strict=True)
        except Exception as exc:  # a foreign or truncated file raises all sorts
            raise InputError(f"cannot load the aesthetic predictor head {head_path}: {exc}",
                             f"fetch it again: `evalsuite weights fetch {HEAD_WEIGHTS}`") from None
        self.head = head.to(device).eval()
        visual: Any = self.clip.visual
        size = visual.image_size
        self.preprocess = open_clip.image_transform(size if isinstance(size, int) else size[0], is_train=False)
        self.device = str(device)
        self.protocol = info.protocol
        self.weights_sha256 = info.weights_sha256

    @torch.inference_mode()
    def score(self, images: list[Image.Image]) -> np.ndarray:
        """The predicted aesthetic score of each image."""
        x = torch.stack([self.preprocess(image.convert("RGB")) for image in images]).to(self.device)
        stem: Any = self.clip.visual.conv1
        features = self.clip.encode_image(x.to(stem.weight.dtype))  # fp16 on CUDA, as clip.load's model
        embedding = l2_normalised(features.cpu().numpy())
        out = self.head(torch.from_numpy(embedding).to(self.device, torch.float32))
        return out[:, 0].double().cpu().numpy()

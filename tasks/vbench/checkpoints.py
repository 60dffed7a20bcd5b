"""The weights vbench 0.1.5 loads per dimension, where it looks for them, and which are present.

Read from vbench 0.1.5 as published (`vbench/utils.py` `init_submodules`, which also downloads what is missing with
`wget`; `vbench/aesthetic_quality.py`; `vbench/third_party/ViCLIP/simple_tokenizer.py`; `vbench/subject_consistency.py`
`torch.hub.load`; the scene dimension's `tag2text.py`, `BertTokenizer.from_pretrained('bert-base-uncased')`), for the
way evalsuite launches VBench (without `--load_ckpt_from_local`, VBench's default):

* VBench's cache folder is `$VBENCH_CACHE_DIR`, else `~/.cache/vbench` (`vbench.utils.CACHE_DIR`);
* CLIP models go through `clip.load('ViT-B/32')` / `clip.load('ViT-L/14')` (the `openai-clip` package), whose default
  folder is `~/.cache/clip`; it checks each file's SHA-256 (the hash in its URL) and downloads again on a mismatch;
* DINO goes through `torch.hub.load('facebookresearch/dino:main', 'dino_vitb16')`: the repository in torch.hub's
  folder (`$TORCH_HOME/hub`, default `~/.cache/torch/hub`) as `facebookresearch_dino_main`, the weights in its
  `checkpoints/`.

The folders are the ones the environment's own interpreter reports (`check_env`: `cache_dir`, `clip_dir`,
`torch_hub_dir`, `hf_hub_cache`), so environment variables set for the run are honoured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from evalsuite.tasks.vbench.scoring import DETECTRON2_DIMENSIONS, DIMENSIONS


class Expected(NamedTuple):
    """One thing VBench loads: `path` (a file, or a folder when `folder`), and how to get it (`source`: a URL, or
    a command)."""

    path: str
    source: str
    folder: bool = False


_CLIP_B32 = ("ViT-B-32.pt", "https://openaipublic.azureedge.net/clip/models/"
             "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt")
_CLIP_L14 = ("ViT-L-14.pt", "https://openaipublic.azureedge.net/clip/models/"
             "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt")
_HF_VBENCH = "https://huggingface.co/OpenGVLab/VBench_Used_Models/resolve/main/"


def _default_dirs() -> dict[str, str]:
    cache = os.environ.get("VBENCH_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "vbench")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return {"cache_dir": cache, "clip_dir": os.path.expanduser("~/.cache/clip"),
            "torch_hub_dir": os.path.join(torch_home, "hub"),
            "hf_hub_cache": os.path.expanduser("~/.cache/huggingface/hub")}


def expected_weights(dimension: str, env: dict[str, Any] | None = None) -> list[Expected]:
    """What vbench 0.1.5 loads for `dimension` (none for temporal_flickering), with the folders of `env` (what
    `check_env` reports; missing folders fall back to VBench's defaults under this process's environment)."""
    dirs = _default_dirs()
    dirs.update({k: v for k, v in (env or {}).items() if k in dirs and v})
    cache, clip_dir, hub = dirs["cache_dir"], dirs["clip_dir"], dirs["torch_hub_dir"]

    def c(rel: str) -> str:
        return os.path.join(cache, rel)

    if dimension == "temporal_flickering":
        return []
    if dimension == "motion_smoothness":
        return [Expected(c("amt_model/amt-s.pth"), "https://huggingface.co/lalala125/AMT/resolve/main/amt-s.pth")]
    if dimension == "dynamic_degree":
        return [Expected(c("raft_model/models/raft-things.pth"), "https://dl.dropboxusercontent.com/s/4j4z58wuv8o0mfz/"
                         "models.zip (unzip into " + c("raft_model") + ")")]
    if dimension == "imaging_quality":
        return [Expected(c("pyiqa_model/musiq_spaq_ckpt-358bb6af.pth"), "https://github.com/chaofengc/IQA-PyTorch/"
                         "releases/download/v0.1-weights/musiq_spaq_ckpt-358bb6af.pth")]
    if dimension in ("background_consistency", "appearance_style"):
        return [Expected(os.path.join(clip_dir, _CLIP_B32[0]), _CLIP_B32[1])]
    if dimension == "aesthetic_quality":
        return [Expected(os.path.join(clip_dir, _CLIP_L14[0]), _CLIP_L14[1]),
                Expected(c("aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth"),
                         "https://github.com/LAION-AI/aesthetic-predictor/blob/main/sa_0_4_vit_l_14_linear.pth?raw=true")]
    if dimension == "subject_consistency":
        return [Expected(os.path.join(hub, "facebookresearch_dino_main"),
                         "git clone https://github.com/facebookresearch/dino (branch main)", folder=True),
                Expected(os.path.join(hub, "checkpoints", "dino_vitbase16_pretrain.pth"),
                         "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth")]
    if dimension == "human_action":
        return [Expected(c("umt_model/l16_ptk710_ftk710_ftk400_f16_res224.pth"),
                         _HF_VBENCH + "l16_ptk710_ftk710_ftk400_f16_res224.pth")]
    if dimension in DETECTRON2_DIMENSIONS:
        return [Expected(c("grit_model/grit_b_densecap_objectdet.pth"),
                         "https://datarelease.blob.core.windows.net/grit/models/grit_b_densecap_objectdet.pth")]
    if dimension == "scene":
        hf = (env or {}).get("hf_hub_cache") or dirs["hf_hub_cache"]
        return [Expected(c("caption_model/tag2text_swin_14m.pth"),
                         "https://huggingface.co/spaces/xinyu1205/recognize-anything/resolve/main/tag2text_swin_14m.pth"),
                Expected(os.path.join(hf, "models--bert-base-uncased"),
                         "the Hugging Face hub's bert-base-uncased (config and tokenizer)", folder=True)]
    if dimension in ("temporal_style", "overall_consistency"):
        return [Expected(c("ViCLIP/ViClip-InternVid-10M-FLT.pth"), _HF_VBENCH + "ViClip-InternVid-10M-FLT.pth"),
                Expected(c("ViCLIP/bpe_simple_vocab_16e6.txt.gz"),
                         "https://raw.githubusercontent.com/openai/CLIP/main/clip/bpe_simple_vocab_16e6.txt.gz")]
    raise KeyError(dimension)


def _present(item: Expected) -> bool:
    path = Path(item.path)
    return path.is_dir() if item.folder else path.is_file()


def missing_weights(dimension: str, env: dict[str, Any] | None = None) -> list[Expected]:
    """The expected files (folders) of `dimension` that are not there."""
    return [e for e in expected_weights(dimension, env) if not _present(e)]


def describe_missing(missing: list[Expected]) -> str:
    """'VBench expects PATH (from SOURCE); ...' for a skip reason."""
    return "; ".join(f"VBench expects the {'folder' if e.folder else 'file'} {e.path} (from {e.source})"
                     for e in missing)


def offline_report(env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per dimension: {"offline": can it run without a download, "files": [{"path", "present", "source"}],
    "needs": what else it needs (detectron2) when that is missing}."""
    report = {}
    for dim in DIMENSIONS:
        files = [{"path": e.path, "present": _present(e), "source": e.source} for e in expected_weights(dim, env)]
        row: dict[str, Any] = {"offline": all(f["present"] for f in files), "files": files}
        if dim in DETECTRON2_DIMENSIONS and not env.get("detectron2"):
            row["offline"] = False
            row["needs"] = "detectron2 in the VBench environment"
        report[dim] = row
    return report

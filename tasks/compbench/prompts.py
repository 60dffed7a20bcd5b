"""T2I-CompBench's prompt files, read from the user's copy of the official repository
(github.com/Karine-Huang/T2I-CompBench, `examples/dataset/<category>_val.txt`; not shipped with evalsuite), and the
official image naming (`<prompt>_<NNNNNN>.png` under `samples/`).

Reading follows GORS_finetune/inference_eval.py L86-88 (the official generation script): `f.read().splitlines()`,
each line `.strip("\\n").split("\\t")[0]`. 10 images per prompt (inference_eval.py L21-25, `--n_iter` 10 with
`--batch_size` 1), the val split (`--from_file` default `../examples/dataset/color_val.txt`, L15-18).
"""

from __future__ import annotations

import re
from pathlib import Path

from evalsuite.errors import InputError, TaskSkipped

# category -> how the official repository scores it
CATEGORIES: dict[str, str] = {
    "color": "blip-vqa",  # BLIPvqa_eval/BLIP_vqa.py
    "shape": "blip-vqa",
    "texture": "blip-vqa",
    "spatial": "detector",  # UniDet_eval/2D_spatial_eval.py
    "non_spatial": "clip",  # CLIPScore_eval/CLIP_similarity.py
}
DEFAULT_CATEGORIES: tuple[str, ...] = tuple(CATEGORIES)
# the official categories this task does not score, and why
NOT_COVERED: dict[str, str] = {
    "3d_spatial": "UniDet_eval/3D_spatial_eval.py needs UniDet plus DPT-Hybrid depth maps; not implemented",
    "numeracy": "UniDet_eval/numeracy_eval.py (UniDet counts); not implemented",
    "complex": "3_in_1_eval/3_in_1.py (mean of BLIP-VQA, UniDet with --complex and CLIP with --complex); not "
               "implemented",
}
SPLITS = ("val", "train", "all")
IMAGES_PER_PROMPT = 10  # GORS_finetune/inference_eval.py L21-25

_FIX = ("clone the official repository once (git clone https://github.com/Karine-Huang/T2I-CompBench) and pass "
        "-o t2i-compbench.compbench=/path/to/T2I-CompBench (or its examples/dataset folder)")


def parse_categories(spec: str) -> tuple[str, ...]:
    """'color,spatial' -> ('color', 'spatial'); an unknown or not-covered name is an InputError naming the rest."""
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    if not names:
        raise InputError("categories is empty", f"pass -o t2i-compbench.categories={','.join(CATEGORIES)}")
    for name in names:
        if name in NOT_COVERED:
            raise InputError(f"T2I-CompBench category '{name}' is not covered: {NOT_COVERED[name]}",
                             f"choose among {', '.join(CATEGORIES)}")
        if name not in CATEGORIES:
            raise InputError(f"unknown T2I-CompBench category '{name}'", f"choose among {', '.join(CATEGORIES)}")
    return names


def dataset_dir(root: str | Path) -> Path:
    """The folder holding `<category>_val.txt`: the repository root, its `examples/`, or `examples/dataset/`."""
    base = Path(root).expanduser()
    for cand in (base, base / "dataset", base / "examples" / "dataset"):
        if (cand / "color_val.txt").is_file() or any(cand.glob("*_val.txt")):
            return cand
    raise TaskSkipped(f"no T2I-CompBench prompt files (examples/dataset/<category>_val.txt) under {base}", _FIX)


def prompt_file(root: str | Path, category: str, split: str = "val") -> Path:
    """`<category>_val.txt` (`<category>_train.txt`, or `<category>.txt` for split 'all') in the user's copy."""
    name = f"{category}.txt" if split == "all" else f"{category}_{split}.txt"
    path = dataset_dir(root) / name
    if not path.is_file():
        raise TaskSkipped(f"T2I-CompBench prompt file {path} does not exist", _FIX)
    return path


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of one file, read as inference_eval.py L86-88 reads them (empty lines kept out)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read T2I-CompBench prompt file {path}: {exc}", _FIX) from None
    prompts = [line.strip("\n").split("\t")[0] for line in lines]
    return [p for p in prompts if p]


def image_name(prompt: str, index: int) -> str:
    """The official file name: `<prompt>_<NNNNNN>.png` (inference_eval.py L108, a count over the whole folder)."""
    return f"{prompt}_{index:06}.png"


def prompt_of(file_name: str) -> str:
    """The prompt the official scorers read from a file name: `file_name.split("_")[0]` (BLIP_vqa.py L29,
    CLIP_similarity.py L59, 2D_spatial_eval.py L167)."""
    return file_name.split("_")[0]


def official_samples(folder: str | Path) -> list[Path]:
    """The images of an official `samples/` folder in the official order: sorted by the number after the last '_'
    (BLIP_vqa.py L21, CLIP_similarity.py L48); names without that number are refused."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    bad = [p.name for p in files if not re.fullmatch(r".+_\d+", p.stem)]
    if bad:
        raise InputError(f"{folder}: {len(bad)} image(s) not named <prompt>_<NNNNNN>.png (e.g. {bad[0]})",
                         "name the images as the official inference_eval.py does")
    return sorted(files, key=lambda p: int(p.stem.split("_")[-1]))

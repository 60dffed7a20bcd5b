"""DPG-Bench's images: either separate images per prompt or the official 2x2 grid (`split_grid`, crops in row-major
order as the official script: top-left, top-right, bottom-left, bottom-right); `load_dpg_images` finds them in a
folder and opens them lazily."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from PIL import Image

from evalsuite.errors import InputError
from evalsuite.imageio import IMAGE_EXTENSIONS
from evalsuite.tasks.dpg.prompts import DPGPrompt


def split_grid(image: Image.Image, rows: int = 2, cols: int = 2) -> list[Image.Image]:
    """The rows x cols tiles of a grid image in row-major order (for 2x2: top-left, top-right, bottom-left,
    bottom-right, the official crop order). Tiles are width//cols x height//rows; leftover pixels are ignored."""
    if rows < 1 or cols < 1:
        raise InputError(f"grid must have at least 1 row and 1 column (got {rows}x{cols})", "use rows=2, cols=2")
    w, h = image.size
    tw, th = w // cols, h // rows
    if tw == 0 or th == 0:
        raise InputError(f"image of {w}x{h} pixels cannot be split into a {rows}x{cols} grid",
                         "pass the 2x2 grid image DPG-Bench expects, or separate images")
    return [image.crop((c * tw, r * th, (c + 1) * tw, (r + 1) * th)) for r in range(rows) for c in range(cols)]


_INDEXED = re.compile(r"^(.+)_(\d+)$")


class DPGImageFolder(Mapping):
    """item_id -> list of PIL images, opened only when asked for (a full DPG-Bench run does not fit in memory).
    Built by `load_dpg_images`; `unmatched` lists image files that belong to no prompt."""

    def __init__(self, entries: dict[str, list[tuple[Path, bool]]], rows: int, cols: int, unmatched: list[str]):
        self._entries = entries  # item_id -> [(path, is_grid)]
        self.rows, self.cols = rows, cols
        self.unmatched = unmatched

    def paths(self, item_id: str) -> list[Path]:
        return [p for p, _ in self._entries[item_id]]

    def __getitem__(self, item_id: str) -> list[Image.Image]:
        images: list[Image.Image] = []
        for path, is_grid in self._entries[item_id]:
            try:
                with Image.open(path) as im:
                    image = im.convert("RGB")
            except Exception as exc:  # PIL raises many kinds
                raise InputError(f"cannot read image {path}: {exc}", "re-save it as PNG or JPEG") from None
            images.extend(split_grid(image, self.rows, self.cols) if is_grid else [image])
        return images

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def load_dpg_images(folder: str | Path, prompts: Iterable[DPGPrompt], layout: str = "auto", rows: int = 2,
                    cols: int = 2) -> DPGImageFolder:
    """Find each prompt's images in `folder`:

    * `<item_id>.<ext>`: the official 2x2 grid (split into rows x cols) with layout "auto" or "grid", one image
      with layout "separate";
    * `<item_id>/<any>.<ext>` and `<item_id>_<k>.<ext>` (k = 0, 1, ...): separate images with layout "auto" or
      "separate", grids to split with layout "grid".

    A stem that is itself an item id belongs to that item (so items 'a' and 'a_1' never mix). Prompts with no
    file are absent from the mapping (`score_dpg` reports them missing)."""
    folder = Path(folder).expanduser()
    if layout not in ("auto", "grid", "separate"):
        raise InputError(f"unknown DPG-Bench image layout '{layout}'", "use auto, grid or separate")
    if not folder.is_dir():
        raise InputError(f"DPG-Bench image folder {folder} does not exist",
                         "give the folder with <item_id>.png grids (or <item_id>/ folders of images)")
    ids = {p.item_id for p in prompts}
    found: dict[str, list[tuple[int, Path, bool]]] = {}
    unmatched: list[str] = []

    def is_image(p: Path) -> bool:
        return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS

    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name in ids:
            for i, img in enumerate(sorted(p for p in entry.iterdir() if is_image(p))):
                found.setdefault(entry.name, []).append((i, img, layout == "grid"))
        elif is_image(entry):
            stem = entry.stem
            m = _INDEXED.match(stem)
            if stem in ids:
                found.setdefault(stem, []).append((-1, entry, layout != "separate"))
            elif m and m.group(1) in ids:
                found.setdefault(m.group(1), []).append((int(m.group(2)), entry, layout == "grid"))
            else:
                unmatched.append(entry.name)
    entries = {}
    for item_id, items in found.items():
        items.sort(key=lambda t: (t[0], t[1].name))
        entries[item_id] = [(path, grid) for _, path, grid in items]
    return DPGImageFolder(entries, rows, cols, unmatched)

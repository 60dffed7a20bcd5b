"""The video folder VBench reads: its standard prompt list (`VBench_full_info.json`), its file names
(`{prompt}-{i}.mp4`), the folder evalsuite lays out for it (`write_layout`), and the (prompt, index) of videos in
a folder already named that way.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from pathlib import Path
from typing import NamedTuple, Sequence

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write, refuse_symlink
from evalsuite.tasks.vbench.scoring import _canonical

VIDEOS_PER_PROMPT = 5  # vbench_standard reads {prompt}-0 .. {prompt}-4
LAYOUT_SUFFIXES = (".mp4", ".gif")  # what VBench's folder scan accepts as videos
NAME_MAX_BYTES = 255
LONG_PROMPT_CHARS = 180  # VBench 2.0's truncation of over-long prompts in file names
_NUMBER_ENDING = re.compile(r"-(\d+)$")


def standard_info(full_info: str | Path) -> list[dict]:
    """The entries of VBench_full_info.json: {"prompt_en", "dimension": [...], "auxiliary_info"?}."""
    path = Path(full_info)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, list) or not all(isinstance(e, dict) and isinstance(e.get("prompt_en"), str)
                                                and isinstance(e.get("dimension"), list) for e in doc):
            raise ValueError("not a list of {prompt_en, dimension} objects")
    except (OSError, ValueError) as exc:
        raise InputError(f"VBench prompt list {path} cannot be read: {exc}",
                         "reinstall vbench in its environment") from exc
    return doc


def standard_prompts(full_info: str | Path) -> list[str]:
    """VBench's standard prompts (each once, in file order)."""
    return list(dict.fromkeys(e["prompt_en"] for e in standard_info(full_info)))


def prompt_dimensions(full_info: str | Path) -> dict[str, set[str]]:
    """prompt -> the VBench dimensions it is used for."""
    out: dict[str, set[str]] = {}
    for entry in standard_info(full_info):
        out.setdefault(entry["prompt_en"], set()).update(_canonical(d) for d in entry["dimension"])
    return out


def layout_name(prompt: str, index: int, suffix: str = ".mp4") -> str:
    """VBench's file name `{prompt}-{index}{suffix}`, with '/' (and NUL) made '_' and an over-long prompt cut to its
    first 180 characters (then further, to fit 255 bytes)."""
    stem = prompt.replace("/", "_").replace("\x00", "_")
    tail = f"-{int(index)}{suffix}"
    if len((stem + tail).encode("utf-8")) > NAME_MAX_BYTES:
        stem = stem[:LONG_PROMPT_CHARS]
        while stem and len((stem + tail).encode("utf-8")) > NAME_MAX_BYTES:
            stem = stem[:-1]
    return stem + tail


class LayoutEntry(NamedTuple):
    name: str  # file name in the layout folder
    path: Path  # the layout file
    prompt: str
    index: int  # type: ignore[assignment]  # a field named like tuple.index shadows it (fine at run time)
    source: Path  # the video it links to


def write_layout(videos: Sequence[tuple[str, int, str | Path]], out_dir: str | Path) -> list[LayoutEntry]:
    """Hard-link (or copy, across file systems) each (prompt, index, video) to `out_dir/{prompt}-{index}.mp4`.
    `out_dir` must be new or empty (VBench reads every file in it); all videos need one suffix, .mp4 or .gif
    (vbench_standard takes the suffix of the first file for all)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise InputError(f"VBench video folder {out} is not empty", "use a new folder: VBench reads every file in it")
    suffixes = {Path(src).suffix.lower() for _, _, src in videos}
    if len(suffixes) > 1 or not suffixes <= set(LAYOUT_SUFFIXES):
        raise InputError(f"VBench needs videos of one type, .mp4 or .gif; got {', '.join(sorted(suffixes))}",
                         "re-encode the videos to MP4")
    suffix = suffixes.pop() if suffixes else ".mp4"
    entries: list[LayoutEntry] = []
    seen: dict[str, tuple[str, int]] = {}
    for prompt, index, src in videos:
        src = Path(src)
        if not src.is_file():
            raise InputError(f"video {src} does not exist", "regenerate the samples")
        name = layout_name(prompt, index, suffix)
        if name in seen:
            raise InputError(f"videos ({seen[name][0]!r}, {seen[name][1]}) and ({prompt!r}, {index}) would both be "
                             f"named {name!r}", "give each prompt's videos distinct indices")
        seen[name] = (prompt, index)
        dst = out / name
        refuse_symlink(dst)
        try:
            os.link(src, dst)
        except OSError:
            atomic_write(dst, functools.partial(shutil.copyfile, src))
        entries.append(LayoutEntry(name, dst, prompt, int(index), src))
    return entries


def _folder_prompts(folder: Path, files: list[Path]) -> list[tuple[str, int | None]]:
    """(prompt, index) per video of a folder: prompts.jsonl where it names the file, else VBench's own naming
    (`{prompt}-{i}.mp4`, or the stem as the prompt, as VBench reads custom input)."""
    from evalsuite.models.folder import read_prompts_jsonl

    table = read_prompts_jsonl(folder / "prompts.jsonl") if (folder / "prompts.jsonl").is_file() else {}
    out: list[tuple[str, int | None]] = []
    for f in files:
        row = table.get(str(f.relative_to(folder))) or table.get(f.name) or {}
        stem = f.stem
        match = _NUMBER_ENDING.search(stem)
        if row.get("prompt"):
            out.append((str(row["prompt"]), None))
        elif match:
            out.append((stem[:match.start()], int(match.group(1))))
        else:
            out.append((stem, None))
    return out


def _index_videos(items: list[tuple[str, int | None]]) -> list[int]:
    """Each video's index among its prompt's videos: the given one, else the next free one in order."""
    used: dict[str, set[int]] = {}
    for prompt, index in items:
        if index is not None:
            used.setdefault(prompt, set()).add(index)
    out = []
    for prompt, index in items:
        if index is None:
            taken = used.setdefault(prompt, set())
            index = next(i for i in range(len(taken) + 1) if i not in taken)
            taken.add(index)
        out.append(index)
    return out

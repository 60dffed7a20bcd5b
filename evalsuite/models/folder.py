"""`folder:PATH`: images that were generated elsewhere; an optional `prompts.jsonl` ({"file", "prompt", "seed"})
ties each file to its prompt for text-image tasks."""

from __future__ import annotations

import json
from pathlib import Path

from evalsuite.errors import InputError
from evalsuite.models.base import ModelSource, register_scheme


def read_prompts_jsonl(path: Path) -> dict[str, dict]:
    """Map file name -> {"prompt", "seed", ...} from a prompts.jsonl; malformed lines name the line number."""
    out: dict[str, dict] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[str(row["file"])] = row
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{lineno} is not a JSON object with a 'file' field ({exc})",
                             'write one {"file": "0001.png", "prompt": "...", "seed": 1} object per line') from exc
    return out


def _resolve(arg: str) -> ModelSource:
    if not arg:
        raise InputError("folder: spec needs a path", "write folder:/path/to/images")
    folder = Path(arg).expanduser()
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist", "pass the folder that holds the generated images")
    prompts_file = folder / "prompts.jsonl"
    info = {"folder": str(folder.resolve())}
    if prompts_file.is_file():
        info["prompts_jsonl"] = str(prompts_file)
    return ModelSource(spec=f"folder:{arg}", model_id=f"folder:{folder.resolve()}", kind="folder", folder=folder,
                       info=info)


register_scheme("folder", _resolve)

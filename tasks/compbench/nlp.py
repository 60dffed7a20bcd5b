"""spaCy for T2I-CompBench: the official scorers parse each prompt with `spacy.load("en_core_web_sm")` (noun
chunks for BLIP-VQA, BLIP_vqa.py L17/L32-35; NOUN tokens for the spatial rule, 2D_spatial_eval.py L223-226).
The model is the user's (a package name or a folder, never downloaded here); without spaCy or the model the
categories that need it are skipped with the fix. Any object with spaCy's `nlp(text)` interface (tokens with
`.text`/`.pos_`, `doc.noun_chunks`) can be passed to the scorers, which is how the tests drive them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from evalsuite.errors import TaskSkipped

OFFICIAL_MODEL = "en_core_web_sm"
_FIX = ("`pip install spacy` and `python -m spacy download en_core_web_sm` (the official model; needs internet "
        "once), or pass a local copy: -o t2i-compbench.spacy=/path/to/en_core_web_sm")


def load_spacy(spec: str = OFFICIAL_MODEL) -> Any:
    """spaCy's pipeline `spec` (an installed package name or a model folder); absent -> TaskSkipped with the fix."""
    if importlib.util.find_spec("spacy") is None:
        raise TaskSkipped("T2I-CompBench's attribute and spatial categories parse prompts with spaCy, which is not "
                          "installed", _FIX)
    import spacy

    try:
        return spacy.load(str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec)
    except (OSError, ImportError, ValueError) as exc:
        raise TaskSkipped(f"spaCy model {spec} cannot be loaded: {exc}", _FIX) from None


def model_name(nlp: Any, spec: str) -> str:
    """'<lang>_<name>-<version>' of a loaded pipeline (the protocol records it), or the spec."""
    meta = getattr(nlp, "meta", None)
    if isinstance(meta, dict) and meta.get("name"):
        return f"{meta.get('lang', 'en')}_{meta['name']}-{meta.get('version', '?')}"
    return Path(spec).name or spec

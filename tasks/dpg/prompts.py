"""DPG-Bench's prompt set (the ELLA repository's `dpg_bench/`): `dpg_bench.csv` (one row per question:
"proposition") and `prompts/<item_id>.txt`, read into prompts with their questions and dependency graph.

`load_dpg` also refuses CSVs the official script would mis-handle silently or crash on mid-run: missing columns,
duplicate proposition ids within an item, a dependency on a proposition the item does not have, proposition id 0
(reserved for "no parent"), no rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from evalsuite.errors import InputError

CSV_NAME = "dpg_bench.csv"
PROMPTS_DIR = "prompts"
REQUIRED_COLUMNS = ("item_id", "text", "proposition_id", "dependency", "category_broad", "category_detailed",
                    "tuple", "question_natural_language")  # `keywords` is in the official CSV but unused

_CSV_FIX = ("use the official DPG-Bench CSV (ELLA repo, dpg_bench/dpg_bench.csv) with columns "
            + ", ".join(REQUIRED_COLUMNS))


@dataclass
class DPGQuestion:
    """One proposition of a prompt: `dependency` lists parent proposition ids ([0] = no parent)."""

    proposition_id: int
    dependency: list[int]
    category_broad: str
    category_detailed: str
    tuple: str
    question: str
    csv_row: int = -1  # index among the CSV's data rows (0 = the row the official script skips)

    @property
    def parents(self) -> list[int]:
        return [d for d in self.dependency if d != 0]


@dataclass
class DPGPrompt:
    item_id: str
    prompt: str
    questions: list[DPGQuestion] = field(default_factory=list)


def _parse_int(value: str, column: str, where: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise InputError(f"{where}: {column} '{value}' is not an integer", _CSV_FIX) from None


def parse_dependency(value: str, where: str = "dependency") -> list[int]:
    """'0' -> [0]; '1,2' -> [1, 2] (spaces allowed)."""
    parts = [p.strip() for p in str(value).split(",")]
    if not any(parts):
        raise InputError(f"{where}: empty dependency (use 0 for a question without parents)", _CSV_FIX)
    return [_parse_int(p, "dependency", where) for p in parts if p]


def load_dpg(path: str | Path) -> list[DPGPrompt]:
    """DPG-Bench prompts and questions from the official folder (`dpg_bench.csv` + `prompts/<item_id>.txt`) or
    from the CSV path itself. Each prompt's text comes from `prompts/<item_id>.txt` next to the CSV when that file
    exists, else from the CSV's `text` column. Every row is read; each question records its data-row index
    (`csv_row`), so the official scoring can skip row 0 as the official script does. Prompts keep the order of
    their first row."""
    path = Path(path).expanduser()
    if path.is_dir():
        csv_path = path / CSV_NAME
        if not csv_path.is_file():
            raise InputError(f"DPG-Bench folder {path} has no {CSV_NAME}",
                             f"point at the folder holding {CSV_NAME} and {PROMPTS_DIR}/, or at the CSV itself")
    elif path.is_file():
        csv_path = path
    else:
        raise InputError(f"DPG-Bench path {path} does not exist",
                         f"give the DPG-Bench folder (with {CSV_NAME} and {PROMPTS_DIR}/) or the CSV's path")
    prompts_dir = csv_path.parent / PROMPTS_DIR

    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            if not header:
                raise InputError(f"{csv_path} is empty (no header, no rows)", _CSV_FIX)
            header = [h.strip() for h in header]
            reader.fieldnames = header
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise InputError(f"{csv_path} lacks column(s) {', '.join(missing)} (has: {', '.join(header)})",
                                 _CSV_FIX)
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise InputError(f"{csv_path} is not UTF-8 text: {exc}", _CSV_FIX) from None
    except csv.Error as exc:
        raise InputError(f"{csv_path} is not a readable CSV: {exc}", _CSV_FIX) from None
    rows = [(line, row) for line, row in rows if any((v or "").strip() for v in row.values() if isinstance(v, str))]
    if not rows:
        raise InputError(f"{csv_path} has a header but no rows", _CSV_FIX)

    prompts: dict[str, DPGPrompt] = {}
    texts: dict[str, str] = {}
    lines: dict[tuple[str, int], int] = {}
    for csv_row, (line, row) in enumerate(rows):
        where = f"{csv_path} line {line}"
        item_id = (row.get("item_id") or "").strip()
        if not item_id:
            raise InputError(f"{where}: empty item_id", _CSV_FIX)
        pid = _parse_int(row.get("proposition_id") or "", "proposition_id", where)
        if pid == 0:
            raise InputError(f"{where}: proposition_id 0 is reserved (dependency 0 means 'no parent')", _CSV_FIX)
        question = DPGQuestion(
            proposition_id=pid,
            dependency=parse_dependency(row.get("dependency") or "", where),
            category_broad=(row.get("category_broad") or "").strip(),
            category_detailed=(row.get("category_detailed") or "").strip(),
            tuple=(row.get("tuple") or "").strip(),
            question=(row.get("question_natural_language") or "").strip(),
            csv_row=csv_row,
        )
        if not question.question:
            raise InputError(f"{where}: empty question_natural_language", _CSV_FIX)
        if (item_id, pid) in lines:
            raise InputError(f"{where}: item {item_id} repeats proposition_id {pid} "
                             f"(first at line {lines[item_id, pid]})", _CSV_FIX)
        lines[item_id, pid] = line
        if item_id not in prompts:
            prompts[item_id] = DPGPrompt(item_id=item_id, prompt="")
            texts[item_id] = (row.get("text") or "").strip()
        prompts[item_id].questions.append(question)

    for item_id, prompt in prompts.items():
        known = {q.proposition_id for q in prompt.questions}
        for q in prompt.questions:
            unknown = [d for d in q.parents if d not in known]
            if unknown:
                raise InputError(
                    f"{csv_path} line {lines[item_id, q.proposition_id]}: item {item_id} proposition "
                    f"{q.proposition_id} depends on unknown proposition(s) {', '.join(map(str, unknown))} "
                    f"(the item has {', '.join(map(str, sorted(known)))})", _CSV_FIX)
        txt = prompts_dir / f"{item_id}.txt"
        text = txt.read_text(encoding="utf-8").strip() if txt.is_file() else texts[item_id]
        if not text:
            raise InputError(f"no prompt text for item {item_id}: {txt} is absent or empty and {csv_path} "
                             "has an empty text column", f"add {txt} or fill the text column")
        prompt.prompt = text
    return list(prompts.values())

"""DPG-Bench (Dense Prompt Graph benchmark, from the ELLA repository's `dpg_bench/`): 1,065 dense prompts, each
decomposed into yes/no questions ("propositions") that form a dependency graph; a VQA model answers every
question on every generated image.

Scoring rule (`compute_dpg_bench.py` of TencentQQGYLab/ELLA at 3c228f1; line numbers below are that file's):

* a question scores 1 only if the VQA answer is "yes", else 0 (L135);
* a question any of whose parents (dependency ids other than 0; "0" means "no parent") scored 0 is set to 0
  (L140-153);
* image score = mean over the prompt's questions (L155); prompt score = mean over its images (officially 4,
  generated as one 2x2 grid and cropped, L111-118, L157); DPG-Bench score = mean over prompts x 100 (L219, L249).

**The default (`summarize(...).score`, `categories_l1`, `categories_l2`) is the official number, quirks included:**

* the first *data* row of the CSV is skipped (`if i == 0: continue` after pandas consumed the header, L72-74;
  ELLA #61), so the first question of the first prompt is never scored; a question of that prompt whose parent
  is that row raises KeyError when the rule's scan reaches it (L146), which the script catches (L213-215): the
  prompt is then dropped (listed in `failed`);
* the rule is one pass in CSV order over scores updated in place, stopping at the first zero parent (L140-153);
* answers are compared exactly, `answer == 'yes'` (L135);
* prompts without images are not scored (the script scores the files it finds, L190-215): they are dropped from
  the mean (listed in `missing`);
* category scores come from `qid2scores_orig`, the scores of the LAST crop taken BEFORE the rule (L138, L161,
  L208-211; ELLA #60); level 2 = the `tuple` column before '(' ("entity - whole"), level 1 = that before '-'
  ("entity") (L209, L232); each is the mean over all its questions of all scored prompts x 100.

**The corrected variant (`corrected_score`, `corrected_categories_l1/_l2`), reported beside it, never instead:**
every CSV row; the rule repeated until nothing changes (order-independent; equal to the one pass wherever parents
precede their children in the CSV); answers normalised (strip, lower-case, drop trailing punctuation, then exactly
"yes": "Yes." counts, "yes, it is" does not; a missing answer is "no"); category scores after the rule over every
image, each image's questions weighted 1/number-of-images of its prompt; a prompt without images scores 0 and stays
in the denominator.

`load_dpg` also refuses CSVs the official script would mis-handle silently or crash on mid-run: missing columns,
duplicate proposition ids within an item, a dependency on a proposition the item does not have, proposition id 0
(reserved for "no parent"), no rows.

Images: either separate images per prompt or the official 2x2 grid (`split_grid`, crops in row-major order as
the official script: top-left, top-right, bottom-left, bottom-right); `load_dpg_images` finds them in a folder.

VQA backends (`evalsuite.tasks.t2i.backends.resolve("vqa", spec)`): "mplug" is the official mPLUG-large through
modelscope (needs `pip install modelscope`, best in its own environment); "transformers:/path/to/folder" is an open
VQA model (e.g. Salesforce/blip-vqa-base) loaded from a local folder, never downloaded. Their protocols differ, so
results of different VQA models never share a column.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from evalsuite.errors import InputError
from evalsuite.imageio import IMAGE_EXTENSIONS
from evalsuite.tasks.t2i.backends import register

CSV_NAME = "dpg_bench.csv"
PROMPTS_DIR = "prompts"
REQUIRED_COLUMNS = ("item_id", "text", "proposition_id", "dependency", "category_broad", "category_detailed",
                    "tuple", "question_natural_language")  # `keywords` is in the official CSV but unused
MPLUG_MODEL = "damo/mplug_visual-question-answering_coco_large_en"
MPLUG_PROTOCOL = "dpg-mplug-large-modelscope"

_CSV_FIX = ("use the official DPG-Bench CSV (ELLA repo, dpg_bench/dpg_bench.csv) with columns "
            + ", ".join(REQUIRED_COLUMNS))


# --------------------------------------------------------------------------------------------------- prompt set

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


# ------------------------------------------------------------------------------------------------- scoring rule

_TRAILING = string.punctuation + string.whitespace


def normalize_answer(answer: Any) -> str:
    """Strip, lower-case and drop trailing punctuation: ' Yes. ' -> 'yes'; 'yes, it is' stays as it is."""
    return str(answer if answer is not None else "").strip().lower().rstrip(_TRAILING)


def answer_is_yes(answer: Any) -> bool:
    """True only for 'yes' after `normalize_answer` ('Yes.', ' YES ' count; 'yes, it is', 'yeah' do not)."""
    return normalize_answer(answer) == "yes"


def _get_answer(answers: Mapping[Any, str], pid: int) -> str:
    if pid in answers:
        return answers[pid]
    return answers.get(str(pid), "")  # answers read back from JSON have string keys


def score_answers(questions: Sequence[DPGQuestion], answers: Mapping[int, str]) -> dict[int, float]:
    """Corrected per-question scores of one image after the dependency rule: 1 for 'yes' (`answer_is_yes`),
    else 0; then any question with a zero-scored parent is 0, repeated until stable (so a zero propagates down
    chains, in any order). A question with no answer in `answers` scores 0."""
    scores = {q.proposition_id: 1.0 if answer_is_yes(_get_answer(answers, q.proposition_id)) else 0.0
              for q in questions}
    parents = {q.proposition_id: q.parents for q in questions}
    for pid, ps in parents.items():
        unknown = [p for p in ps if p not in scores]
        if unknown:
            raise InputError(f"proposition {pid} depends on unknown proposition(s) {unknown}",
                             "every dependency must name a proposition_id of the same item")
    changed = True
    while changed:
        changed = False
        for pid, ps in parents.items():
            if scores[pid] != 0.0 and any(scores[p] == 0.0 for p in ps):
                scores[pid] = 0.0
                changed = True
    return scores


def score_image(questions: Sequence[DPGQuestion], answers: Mapping[int, str]) -> float:
    """Mean over the item's questions after the dependency rule, in [0, 1]."""
    if not questions:
        raise InputError("a DPG-Bench item has no questions", _CSV_FIX)
    scores = score_answers(questions, answers)
    return sum(scores.values()) / len(scores)


def score_prompt(questions: Sequence[DPGQuestion], answers_per_image: Sequence[Mapping[int, str]]) -> float:
    """Mean of `score_image` over the prompt's images, in [0, 1]; 0 for a prompt with no images."""
    if not answers_per_image:
        return 0.0
    return sum(score_image(questions, a) for a in answers_per_image) / len(answers_per_image)


def tuple_categories(question: DPGQuestion) -> tuple[str, str]:
    """(level 1, level 2) as the official script names them from the `tuple` column (L209, L232):
    'entity - whole (cat)' -> ('entity', 'entity - whole'); 'global (photo)' -> ('global', 'global')."""
    level2 = question.tuple.split("(")[0].strip()
    return level2.split("-")[0].strip(), level2


def _means(sums: dict[str, float], weights: dict[str, float]) -> dict[str, float]:
    return {k: 100.0 * sums[k] / weights[k] for k in sorted(sums) if weights[k] > 0}


def category_scores(prompts: Sequence[DPGPrompt], answers_by_item: Mapping[str, Sequence[Mapping[int, str]]]
                    ) -> tuple[dict[str, float], dict[str, float]]:
    """Corrected (level 1, level 2) category scores x 100: post-rule scores (`score_answers`) of every image and
    every CSV row, the mean over the category's questions, each image's questions weighted 1/number-of-images of
    its prompt; a prompt without images contributes its questions as 0 (weight 1). Names as `tuple_categories`."""
    sums: dict[str, dict[str, float]] = {"l1": {}, "l2": {}}
    weights: dict[str, dict[str, float]] = {"l1": {}, "l2": {}}

    def add(q: DPGQuestion, value: float, weight: float) -> None:
        for level, key in zip(("l1", "l2"), tuple_categories(q)):
            sums[level][key] = sums[level].get(key, 0.0) + value * weight
            weights[level][key] = weights[level].get(key, 0.0) + weight

    for p in prompts:
        images = answers_by_item.get(p.item_id) or []
        if not images:
            for q in p.questions:
                add(q, 0.0, 1.0)
            continue
        w = 1.0 / len(images)
        for answers in images:
            scores = score_answers(p.questions, answers)
            for q in p.questions:
                add(q, scores[q.proposition_id], w)
    return _means(sums["l1"], weights["l1"]), _means(sums["l2"], weights["l2"])


# ------------------------------------------------------------------------------------- official scoring (default)

def official_questions(prompt: DPGPrompt) -> list[DPGQuestion]:
    """The prompt's questions that `prepare_dpg_data` keeps: all but the CSV's first data row (L72-74)."""
    return [q for q in prompt.questions if q.csv_row != 0]


def official_score_prompt(questions: Sequence[DPGQuestion], answers_per_image: Sequence[Mapping[int, str]]
                          ) -> tuple[float, dict[int, float]] | None:
    """`compute_dpg_one_sample` (L109-161) on one prompt's images: (mean over images of the image score, the LAST
    image's pre-rule question scores `qid2scores_orig`), or None where the script raises and drops the prompt
    (L213-215): no question kept (L120-121), or the rule reaching a parent that is not kept (L146, KeyError)."""
    if not questions or not answers_per_image:
        return None
    image_scores, before_rule = [], {}
    for answers in answers_per_image:
        scores = {q.proposition_id: float(_get_answer(answers, q.proposition_id) == "yes") for q in questions}
        before_rule = dict(scores)  # L138
        for q in questions:  # L140-153: one pass in CSV order, in place, stops at the first zero parent
            for parent in q.dependency:
                if parent == 0:
                    continue
                if parent not in scores:
                    return None
                if scores[parent] == 0:
                    scores[q.proposition_id] = 0.0
                    break
        image_scores.append(sum(scores.values()) / len(scores))  # L155
    return sum(image_scores) / len(image_scores), before_rule  # L157, L161


def official_summary(prompts: Sequence[DPGPrompt], answers_by_item: Mapping[str, Sequence[Mapping[int, str]]]
                     ) -> dict[str, Any]:
    """The official numbers (`main`, L190-249): `score` = mean over scored prompts x 100; `per_prompt` in [0, 1];
    `categories_l1` / `categories_l2` x 100 from the last image's pre-rule scores; `missing` (no images) and
    `failed` (dropped by an exception) prompts are left out of every mean."""
    per_prompt: dict[str, float] = {}
    by_category: dict[str, list[float]] = {}
    missing, failed = [], []
    for p in prompts:
        images = answers_by_item.get(p.item_id) or []
        if not images:
            missing.append(p.item_id)
            continue
        questions = official_questions(p)
        scored = official_score_prompt(questions, images)
        if scored is None:
            failed.append(p.item_id)
            continue
        per_prompt[p.item_id], before_rule = scored
        for q in questions:  # L208-211
            by_category.setdefault(tuple_categories(q)[1], []).append(before_rule[q.proposition_id])
    level1: dict[str, list[float]] = {}
    for category, values in by_category.items():  # L230-233
        level1.setdefault(category.split("-")[0].strip(), []).extend(values)

    def means(groups: dict[str, list[float]]) -> dict[str, float]:
        return {k: 100.0 * sum(v) / len(v) for k, v in sorted(groups.items())}

    score = 100.0 * sum(per_prompt.values()) / len(per_prompt) if per_prompt else float("nan")
    return {"score": score, "per_prompt": per_prompt, "categories_l1": means(level1),
            "categories_l2": means(by_category), "missing": missing, "failed": failed}


def official_category_scores(prompts: Sequence[DPGPrompt],
                             answers_by_item: Mapping[str, Sequence[Mapping[int, str]]]
                             ) -> tuple[dict[str, float], dict[str, float]]:
    """(level 1, level 2) category scores x 100 exactly as `compute_dpg_bench.py` computes them (ELLA #60): last
    image only, before the dependency rule, the first CSV row skipped, prompts without images left out."""
    official = official_summary(prompts, answers_by_item)
    return official["categories_l1"], official["categories_l2"]


@dataclass
class DPGResult:
    """DPG-Bench outcome. `score`, `categories_l1`, `categories_l2` are the OFFICIAL numbers (0-100; see the module
    docstring), over the prompts in `per_prompt` (official prompt scores in [0, 1]); `missing` (no images) and
    `failed` (the official script raises on them) prompts are left out. The `corrected_*` numbers read every row,
    apply the rule after normalised answers over every image and count a missing prompt as 0
    (`corrected_per_prompt`, `per_image` and `question_scores` in [0, 1]). `answers[item_id][k]` maps proposition
    id -> the VQA's raw answer for image k."""

    score: float
    categories_l1: dict[str, float]
    categories_l2: dict[str, float]
    per_prompt: dict[str, float]
    corrected_score: float
    corrected_categories_l1: dict[str, float]
    corrected_categories_l2: dict[str, float]
    corrected_per_prompt: dict[str, float]
    per_image: dict[str, list[float]]
    answers: dict[str, list[dict[int, str]]]
    question_scores: dict[str, list[dict[int, float]]]
    missing: list[str]
    failed: list[str]
    n_prompts: int
    protocol: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (proposition ids become string keys; `summarize` reads them back)."""
        out = asdict(self)
        out["answers"] = {k: [{str(p): a for p, a in img.items()} for img in v] for k, v in self.answers.items()}
        out["question_scores"] = {k: [{str(p): s for p, s in img.items()} for img in v]
                                  for k, v in self.question_scores.items()}
        return out


def summarize(prompts: Sequence[DPGPrompt], answers_by_item: Mapping[str, Sequence[Mapping[int, str]]],
              protocol: str = "") -> DPGResult:
    """Score stored answers (no VQA needed): the official numbers and the corrected ones from raw answers per
    image per prompt."""
    if not prompts:
        raise InputError("no DPG-Bench prompts to score", "load them with load_dpg(folder)")
    per_prompt: dict[str, float] = {}
    per_image: dict[str, list[float]] = {}
    answers_out: dict[str, list[dict[int, str]]] = {}
    qscores: dict[str, list[dict[int, float]]] = {}
    for p in prompts:
        images = list(answers_by_item.get(p.item_id) or [])
        if not images:
            per_prompt[p.item_id] = 0.0
            continue
        answers_out[p.item_id] = [{q.proposition_id: str(_get_answer(a, q.proposition_id)) for q in p.questions}
                                  for a in images]
        qscores[p.item_id] = [score_answers(p.questions, a) for a in images]
        per_image[p.item_id] = [sum(s.values()) / len(s) for s in qscores[p.item_id]]
        per_prompt[p.item_id] = sum(per_image[p.item_id]) / len(images)
    l1, l2 = category_scores(prompts, answers_by_item)
    official = official_summary(prompts, answers_by_item)
    return DPGResult(
        score=official["score"], categories_l1=official["categories_l1"],
        categories_l2=official["categories_l2"], per_prompt=official["per_prompt"],
        corrected_score=100.0 * sum(per_prompt.values()) / len(prompts),
        corrected_categories_l1=l1, corrected_categories_l2=l2, corrected_per_prompt=per_prompt,
        per_image=per_image, answers=answers_out, question_scores=qscores,
        missing=official["missing"], failed=official["failed"], n_prompts=len(prompts), protocol=protocol,
    )


def score_dpg(prompts: Sequence[DPGPrompt], images_by_item: Mapping[str, Sequence[Image.Image]], vqa: Any,
              progress: Any = None) -> DPGResult:
    """Ask `vqa.answer(image, question)` every question of every prompt on each of its images and score it.
    `images_by_item` may be a plain dict or `load_dpg_images(...)` (which opens images lazily). Prompts with no
    images are listed in `missing` (left out officially, 0 in the corrected score). `progress`, if given, is
    called with (done, total) prompts."""
    answers_by_item: dict[str, list[dict[int, str]]] = {}
    for n, p in enumerate(prompts):
        answers = answer_prompt(p, images_by_item.get(p.item_id), vqa)
        if answers is not None:
            answers_by_item[p.item_id] = answers
        if progress is not None:
            progress(n + 1, len(prompts))
    return summarize(prompts, answers_by_item, protocol=str(getattr(vqa, "protocol", "") or ""))


def answer_prompt(prompt: DPGPrompt, images: Sequence[Image.Image] | None, vqa: Any) -> list[dict[int, str]] | None:
    """The VQA's answer to each of a prompt's questions, per image (None when the prompt has no image)."""
    if not images:
        return None
    return [{q.proposition_id: str(vqa.answer(rgb, q.question)) for q in prompt.questions}
            for rgb in (image.convert("RGB") if image.mode != "RGB" else image for image in images)]


# ------------------------------------------------------------------------------------------------------- images

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


# --------------------------------------------------------------------------------------------------- VQA models

def _device(device: Any) -> str:
    if device:
        return str(device)
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


class MPLUGVQA:
    """DPG-Bench's official VQA: mPLUG-large (COCO VQA) through modelscope's pipeline."""

    def __init__(self, model: str = MPLUG_MODEL, device: Any = None):
        fix = ("`pip install modelscope` (best in its own environment: its pins clash with recent transformers); "
               f"its weights ({MPLUG_MODEL}) are fetched by modelscope on first use (needs internet once), or "
               "pass a local copy as mplug:/path/to/mplug_visual-question-answering_coco_large_en")
        if importlib.util.find_spec("modelscope") is None:
            raise InputError("the 'mplug' VQA backend (DPG-Bench's official mPLUG-large) needs modelscope, "
                             "which is not installed", fix)
        try:
            from modelscope.pipelines import pipeline
            from modelscope.utils.constant import Tasks
        except Exception as exc:  # a broken modelscope install raises all sorts
            raise InputError(f"modelscope is installed but cannot be imported: {exc}", fix) from None
        name = Path(model.rstrip("/")).name
        self.protocol = MPLUG_PROTOCOL if name == Path(MPLUG_MODEL).name else f"dpg-mplug-modelscope-{name}"
        dev = _device(device)
        self._pipeline = pipeline(Tasks.visual_question_answering, model=model,
                                  device="gpu" if dev == "cuda" else dev)

    def answer(self, image: Image.Image, question: str) -> str:
        return str(self._pipeline({"image": image, "question": question})["text"])


def _protocol_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


class TransformersVQA:
    """An open VQA model (e.g. Salesforce/blip-vqa-base) through transformers, from a local folder only.
    BLIP-style models generate their answer; classifier VQA models (ViLT) answer their top label."""

    def __init__(self, folder: str, device: Any = None, max_new_tokens: int = 10):
        fix = ("download the model folder once where there is internet (e.g. "
               "`huggingface-cli download Salesforce/blip-vqa-base --local-dir blip-vqa-base`), then pass its path: "
               "transformers:/path/to/blip-vqa-base")
        if not folder:
            raise InputError("the 'transformers' VQA backend needs a local model folder", fix)
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise InputError(f"VQA model folder {path} does not exist", fix)
        if not (path / "config.json").is_file():
            raise InputError(f"VQA model folder {path} has no config.json (not a transformers model folder)", fix)
        if importlib.util.find_spec("transformers") is None:
            raise InputError("the 'transformers' VQA backend needs transformers, which is not installed",
                             "`pip install transformers`")
        import torch
        import transformers

        self.protocol = f"dpg-{_protocol_name(path.resolve().name)}-transformers"
        self.max_new_tokens = max_new_tokens
        self._device = _device(device)
        try:
            model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {path / 'config.json'}: {exc}", fix) from None
        try:
            if model_type == "blip":
                self._processor = transformers.BlipProcessor.from_pretrained(path, local_files_only=True)
                self._model = transformers.BlipForQuestionAnswering.from_pretrained(path, local_files_only=True)
            else:
                self._processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
                self._model = transformers.AutoModelForVisualQuestionAnswering.from_pretrained(
                    path, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot load a VQA model from {path}: {exc}", fix) from None
        self._model.to(self._device).eval()
        self._generative = hasattr(self._model, "generate") and not type(self._model).__name__.startswith("Vilt")
        self._torch = torch

    def answer(self, image: Image.Image, question: str) -> str:
        inputs = self._processor(images=image.convert("RGB"), text=question, return_tensors="pt").to(self._device)
        with self._torch.no_grad():
            if self._generative:
                out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens)
                return self._processor.decode(out[0], skip_special_tokens=True).strip()
            logits = self._model(**inputs).logits
            return str(self._model.config.id2label[int(logits[0].argmax())])


def _mplug_factory(arg: str, device: Any = None, **_: Any) -> MPLUGVQA:
    return MPLUGVQA(arg or MPLUG_MODEL, device=device)


def _transformers_factory(arg: str, device: Any = None, **_: Any) -> TransformersVQA:
    return TransformersVQA(arg, device=device)


register("vqa", "mplug", _mplug_factory)
register("vqa", "transformers", _transformers_factory)

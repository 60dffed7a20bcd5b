"""DPG-Bench's scoring: the official numbers and the corrected ones, from the VQA's answers.

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
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

from evalsuite.errors import InputError
from evalsuite.tasks.dpg.prompts import _CSV_FIX, DPGPrompt, DPGQuestion

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

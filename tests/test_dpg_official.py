"""DPG-Bench's official numbers, hand-worked from `dpg_bench/compute_dpg_bench.py` (TencentQQGYLab/ELLA at
3c228f1; line numbers are that file's). The official script cannot run here (it needs accelerate, modelscope and the
mPLUG weights, and reads answers only from its VQA model), so each rule is checked on a tiny CSV and scripted
answers against numbers worked out by hand from the cited lines. Tolerance: 1e-9 (exact arithmetic on fractions)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evalsuite.tasks.dpg.prompts import load_dpg
from evalsuite.tasks.dpg.scoring import official_score_prompt, summarize

COLUMNS = ["item_id", "text", "keywords", "proposition_id", "dependency", "category_broad", "category_detailed",
           "tuple", "question_natural_language"]


def _csv(path: Path, rows: list[tuple]) -> Path:
    """rows: (item, proposition id, dependency, tuple); the question is '<item><id>?'."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for item, pid, dep, tup in rows:
            level2 = tup.split("(")[0].strip()
            broad, _, detailed = level2.partition(" - ")
            w.writerow([item, f"prompt {item}", "", pid, dep, broad, detailed or broad, tup, f"{item}{pid}?"])
    return path


ROWS = [
    ("A", 1, "0", "entity - whole (cat)"),  # data row 0: never read officially (L72-74)
    ("A", 2, "0", "entity - whole (dog)"),
    ("A", 3, "2", "attribute - color (dog, brown)"),
    ("B", 1, "2", "relation - spatial (bird, tree, in)"),  # a child listed before its parent ...
    ("B", 2, "3", "entity - whole (bird)"),  # ... whose own parent comes after it
    ("B", 3, "0", "entity - whole (tree)"),
    ("C", 1, "0", "other - text (sign, hello)"),
    ("C", 2, "0", "global (photo)"),
    ("E", 1, "0", "entity - whole (car)"),  # no images
]
# answers[item] = one {proposition id: raw answer} per image (crop), in crop order
ANSWERS = {
    "A": [{1: "yes", 2: "yes", 3: "yes"}, {1: "no", 2: "no", 3: "yes"}],
    "B": [{1: "yes", 2: "yes", 3: "no"}, {1: "yes", 2: "yes", 3: "yes"}],
    "C": [{1: "Yes", 2: "yes"}, {1: "yes", 2: "no"}],
}


def test_official_numbers_by_hand(tmp_path):
    result = summarize(load_dpg(_csv(tmp_path / "dpg.csv", ROWS)), ANSWERS)
    # A: row 0 (A1) skipped (L72-74), so A has questions 2 and 3 (L155 divides by 2).
    #    crop 0: A2 1, A3 1 -> 1.0; crop 1: A2 'no' 0, A3 'yes' zeroed by its parent A2 (L140-153) -> 0.0; mean 0.5
    # B: one pass in CSV order, in place (L140-153). crop 0: B1 (parent B2 = 1 at that point) stays 1, B2 (parent B3
    #    = 0) -> 0, B3 0 -> 1/3; crop 1: all yes -> 1; mean 2/3
    # C: exact 'yes' (L135): crop 0 'Yes' 0, 'yes' 1 -> 0.5; crop 1: 1, 0 -> 0.5; mean 0.5
    # E: no image file, so never scored (L190-215): out of the mean
    assert result.per_prompt == pytest.approx({"A": 0.5, "B": 2 / 3, "C": 0.5}, abs=1e-9)
    assert result.score == pytest.approx(100 * (0.5 + 2 / 3 + 0.5) / 3, abs=1e-9)  # L219, L249
    assert result.missing == ["E"] and result.failed == []
    # categories: `qid2scores_orig`, the LAST crop before the rule (L138, L161, L208-211), level 2 = tuple before
    # '(' (L209), level 1 = that before '-' (L232). Last crops: A2 0, A3 1; B1 1, B2 1, B3 1; C1 1, C2 0
    assert result.categories_l2 == pytest.approx({"entity - whole": 200 / 3, "attribute - color": 100.0,
                                                  "relation - spatial": 100.0, "other - text": 100.0,
                                                  "global": 0.0}, abs=1e-9)
    assert result.categories_l1 == pytest.approx({"entity": 200 / 3, "attribute": 100.0, "relation": 100.0,
                                                  "other": 100.0, "global": 0.0}, abs=1e-9)


def test_corrected_numbers_by_hand(tmp_path):
    result = summarize(load_dpg(_csv(tmp_path / "dpg.csv", ROWS)), ANSWERS)
    # every row; the rule until stable; 'Yes' counts; E (no images) is 0 in the denominator
    # A: crop 0 1, 1, 1 -> 1; crop 1: 0, 0, 0 -> 0; mean 0.5.  B: crop 0: B3 no -> B2 0 -> B1 0 -> 0; crop 1 1 -> 0.5
    # C: crop 0 1, 1 -> 1; crop 1 1, 0 -> 0.5; mean 0.75.  E: 0
    assert result.corrected_per_prompt == pytest.approx({"A": 0.5, "B": 0.5, "C": 0.75, "E": 0.0}, abs=1e-9)
    assert result.corrected_score == pytest.approx(100 * 1.75 / 4, abs=1e-9)
    # categories after the rule over both crops (each weighs 1/2), E's question as 0 (weight 1):
    # entity: A1 .5, A2 .5, B2 .5, B3 .5, E1 0 -> 2/5; attribute A3 .5; relation B1 .5; other C1 1; global C2 .5
    assert result.corrected_categories_l1 == pytest.approx({"entity": 40.0, "attribute": 50.0, "relation": 50.0,
                                                            "other": 100.0, "global": 50.0}, abs=1e-9)


def test_a_child_of_the_skipped_first_row_drops_its_prompt(tmp_path):
    prompts = load_dpg(_csv(tmp_path / "dpg.csv", [
        ("A", 1, "0", "entity - whole (cat)"),  # row 0, skipped (L72-74)
        ("A", 2, "0", "entity - whole (dog)"),
        ("A", 3, "2,1", "relation - spatial (dog, cat, next to)"),  # parents 2, then the skipped 1
        ("B", 1, "0", "entity - whole (tree)"),
    ]))
    b = {"B": [{1: "yes"}]}
    # A2 'no' on every crop: the scan of A3's parents stops at the zero parent 2 (L147-148) before reading 1, so
    # no KeyError: A = (0 + 0) / 2 per crop = 0
    kept = summarize(prompts, {"A": [{1: "yes", 2: "no", 3: "yes"}] * 2, **b})
    assert kept.per_prompt == pytest.approx({"A": 0.0, "B": 1.0}) and kept.failed == []
    assert kept.score == pytest.approx(50.0)
    # A2 'yes' on one crop: the scan reaches parent 1, which prepare_dpg_data never stored -> KeyError (L146),
    # caught per file (L213-215): A is left out of the score and of the categories
    dropped = summarize(prompts, {"A": [{1: "yes", 2: "no", 3: "yes"}, {1: "yes", 2: "yes", 3: "yes"}], **b})
    assert dropped.failed == ["A"] and dropped.per_prompt == pytest.approx({"B": 1.0})
    assert dropped.score == pytest.approx(100.0)
    assert dropped.categories_l1 == pytest.approx({"entity": 100.0})
    # the corrected score reads row 0 and scores A: crop 0 1, 0, 0 -> 1/3; crop 1 all yes -> 1; (2/3 + 1) / 2
    assert dropped.corrected_score == pytest.approx(100 * (2 / 3 + 1) / 2)


def test_a_prompt_whose_only_row_is_the_first_is_dropped(tmp_path):
    prompts = load_dpg(_csv(tmp_path / "dpg.csv", [("Z", 1, "0", "entity - whole (cat)"),
                                                   ("B", 1, "0", "entity - whole (tree)")]))
    # Z never enters question_dict (L72-74); `value['qid2tuple']` on None raises (L120-121), caught (L213-215)
    result = summarize(prompts, {"Z": [{1: "yes"}], "B": [{1: "no"}]})
    assert result.failed == ["Z"] and result.per_prompt == {"B": 0.0} and result.score == 0.0
    assert official_score_prompt([], [{1: "yes"}]) is None

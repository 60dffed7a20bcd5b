"""DPG-Bench: loading the official folder (every row), the corrected scoring rule by hand beside the official
numbers (first row skipped, last-image pre-rule categories), 2x2 grids, missing prompts, bad CSVs, and the VQA
backends' errors. The official rules one by one: tests/test_dpg_official.py."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from evalsuite.errors import InputError
from evalsuite.tasks.dpg.images import load_dpg_images, split_grid
from evalsuite.tasks.dpg.prompts import DPGQuestion, load_dpg
from evalsuite.tasks.dpg.scoring import (
    answer_is_yes,
    category_scores,
    official_category_scores,
    score_answers,
    score_dpg,
    score_image,
    score_prompt,
    summarize,
)
from evalsuite.tasks.t2i.backends import resolve

COLUMNS = ["item_id", "text", "keywords", "proposition_id", "dependency", "category_broad", "category_detailed",
           "tuple", "question_natural_language"]

# item, proposition, dependency, broad, detailed, tuple, question
QUESTIONS = [
    ("alpha", 1, "0", "entity", "whole", "entity - whole (cat)", "Is there a cat?"),
    ("alpha", 2, "1", "attribute", "color", "attribute - color (cat, black)", "Is the cat black?"),
    ("alpha", 3, "2", "attribute", "texture", "attribute - texture (cat, fluffy)", "Is the black cat fluffy?"),
    ("alpha", 4, "0", "entity", "whole", "entity - whole (sofa)", "Is there a sofa?"),
    ("alpha", 5, "1,4", "relation", "spatial", "relation - spatial (cat, sofa, on)", "Is the cat on the sofa?"),
    ("beta", 1, "0", "global", "global", "global (realistic photo)", "Is this a realistic photo?"),
    ("beta", 2, "0", "entity", "whole", "entity - whole (dog)", "Is there a dog?"),
    ("gamma", 1, "0", "entity", "whole", "entity - whole (tree)", "Is there a tree?"),
]
TEXTS = {"alpha": "a fluffy black cat on a sofa", "beta": "a realistic photo of a dog", "gamma": "a tree"}

# answers[image k][question]; image k is recognised by its red channel (k, 0, 0)
ANSWERS = [
    {"Is there a cat?": "yes", "Is the cat black?": "yes", "Is the black cat fluffy?": "yes",
     "Is there a sofa?": "yes", "Is the cat on the sofa?": "yes",
     "Is this a realistic photo?": "yes", "Is there a dog?": "yes"},
    {"Is there a cat?": "no", "Is the cat black?": "yes", "Is the black cat fluffy?": "yes",
     "Is there a sofa?": "yes", "Is the cat on the sofa?": "yes",
     "Is this a realistic photo?": "no", "Is there a dog?": "yes"},
    {"Is there a cat?": "Yes.", "Is the cat black?": "no", "Is the black cat fluffy?": "yes",
     "Is there a sofa?": "YES", "Is the cat on the sofa?": "yes, it is",
     "Is this a realistic photo?": " yes ", "Is there a dog?": "no"},
    {"Is there a cat?": "yes", "Is the cat black?": "yes", "Is the black cat fluffy?": "yes",
     "Is there a sofa?": "no", "Is the cat on the sofa?": "yes",
     "Is this a realistic photo?": "no", "Is there a dog?": "no"},
]
# by hand, after the rule:
#   alpha img0 1,1,1,1,1 -> 1.0; img1 cat no -> 0,0,0 (chain),1,0 (parent 1) -> 0.2;
#   img2 1, 0, 0 (chain), 1, 0 ('yes, it is' is not yes) -> 0.4; img3 1,1,1,0,0 (parent 4) -> 0.6; mean 0.55
#   beta  img0 1; img1 0.5; img2 0.5; img3 0 -> 0.5;  gamma missing -> 0
#   corrected DPG = (0.55 + 0.5 + 0) / 3 * 100 = 35.0
# official (compute_dpg_bench.py): row 0 (alpha's "Is there a cat?") is skipped, so alpha's "Is the cat black?"
#   (parent 1) raises KeyError in the rule and alpha is dropped; beta with exact 'yes' only: img0 1, img1 0.5,
#   img2 0 (' yes ' is not 'yes'), img3 0 -> 0.375; gamma (no image) left out -> DPG = 37.5
ALPHA_IMAGES = [1.0, 0.2, 0.4, 0.6]
BETA_IMAGES = [1.0, 0.5, 0.5, 0.0]


def write_bench(root: Path, rows=QUESTIONS, columns=COLUMNS, txt=("alpha", "beta")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "dpg_bench.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for item, pid, dep, broad, detailed, tup, question in rows:
            full = {"item_id": item, "text": TEXTS.get(item, "x"), "keywords": "kw", "proposition_id": pid,
                    "dependency": dep, "category_broad": broad, "category_detailed": detailed, "tuple": tup,
                    "question_natural_language": question}
            w.writerow([full[c] for c in columns])
    (root / "prompts").mkdir(exist_ok=True)
    for item in txt:
        (root / "prompts" / f"{item}.txt").write_text(f"{TEXTS[item]} (from txt)\n", encoding="utf-8")
    return root


class FakeVQA:
    protocol = "fake-vqa"

    def __init__(self, answers=ANSWERS):
        self.answers = answers
        self.calls = 0

    def answer(self, image, question):
        self.calls += 1
        return self.answers[image.getpixel((0, 0))[0]][question]


def tile(k: int, size: int = 8) -> Image.Image:
    return Image.new("RGB", (size, size), (k, 0, 0))


def grid(tiles: list[Image.Image], rows: int = 2, cols: int = 2) -> Image.Image:
    w, h = tiles[0].size
    out = Image.new("RGB", (w * cols, h * rows))
    for i, t in enumerate(tiles):
        out.paste(t, ((i % cols) * w, (i // cols) * h))
    return out


def q(pid, dep, broad="entity", detailed="whole", tup="entity - whole (x)"):
    return DPGQuestion(pid, dep, broad, detailed, tup, f"q{pid}?")


# ------------------------------------------------------------------------------------------------------- loading

def test_load_reads_every_row_including_the_first(tmp_path):
    prompts = load_dpg(write_bench(tmp_path / "dpg"))
    assert [p.item_id for p in prompts] == ["alpha", "beta", "gamma"]
    alpha = prompts[0]
    # the first data row (alpha, proposition 1) is kept: the official script drops it (ELLA #61)
    assert [x.proposition_id for x in alpha.questions] == [1, 2, 3, 4, 5]
    assert alpha.questions[0].question == "Is there a cat?"
    assert sum(len(p.questions) for p in prompts) == len(QUESTIONS)
    assert alpha.questions[0].dependency == [0] and alpha.questions[0].parents == []
    assert alpha.questions[4].dependency == [1, 4]
    assert alpha.questions[1].category_broad == "attribute" and alpha.questions[1].category_detailed == "color"
    assert alpha.questions[1].tuple == "attribute - color (cat, black)"
    # prompt text from prompts/<id>.txt when present, else the CSV's text column
    assert alpha.prompt == "a fluffy black cat on a sofa (from txt)"
    assert prompts[2].prompt == "a tree"


def test_load_from_csv_path_without_prompt_files(tmp_path):
    root = write_bench(tmp_path / "dpg", txt=())
    (root / "prompts").rmdir()
    prompts = load_dpg(root / "dpg_bench.csv")
    assert [p.prompt for p in prompts] == [TEXTS["alpha"], TEXTS["beta"], TEXTS["gamma"]]
    assert len(prompts[0].questions) == 5


def test_load_accepts_csv_without_keywords_and_with_bom(tmp_path):
    root = write_bench(tmp_path / "dpg", columns=[c for c in COLUMNS if c != "keywords"])
    data = (root / "dpg_bench.csv").read_bytes()
    (root / "dpg_bench.csv").write_bytes(b"\xef\xbb\xbf" + data)
    assert len(load_dpg(root)) == 3


@pytest.mark.parametrize("case, rows, columns, needle", [
    ("missing column", QUESTIONS, [c for c in COLUMNS if c != "dependency"], "dependency"),
    ("unknown dependency", QUESTIONS[:1] + [("alpha", 2, "7", "entity", "whole", "t", "Q?")], COLUMNS,
     "unknown proposition"),
    ("duplicate proposition", QUESTIONS[:1] + [("alpha", 1, "0", "entity", "whole", "t", "Q2?")], COLUMNS,
     "repeats proposition_id 1"),
    ("no rows", [], COLUMNS, "no rows"),
    ("bad dependency", [("alpha", 1, "x", "entity", "whole", "t", "Q?")], COLUMNS, "dependency"),
    ("proposition 0", [("alpha", 0, "0", "entity", "whole", "t", "Q?")], COLUMNS, "reserved"),
])
def test_bad_csvs_give_input_errors_naming_the_file(tmp_path, case, rows, columns, needle):
    root = write_bench(tmp_path / "dpg", rows=rows, columns=columns)
    with pytest.raises(InputError) as err:
        load_dpg(root)
    assert "dpg_bench.csv" in err.value.message and needle in err.value.message, case
    assert err.value.fix


def test_bad_csv_errors_name_the_line(tmp_path):
    rows = QUESTIONS[:2] + [("alpha", 3, "9", "entity", "whole", "t", "Q?")]
    with pytest.raises(InputError, match="line 4"):
        load_dpg(write_bench(tmp_path / "dpg", rows=rows))


def test_empty_file_and_missing_paths(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "dpg_bench.csv").write_text("")
    with pytest.raises(InputError, match="dpg_bench.csv is empty"):
        load_dpg(tmp_path / "e")
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match="has no dpg_bench.csv"):
        load_dpg(tmp_path / "none")
    with pytest.raises(InputError, match="does not exist"):
        load_dpg(tmp_path / "nowhere")


# -------------------------------------------------------------------------------------------------- scoring rule

@pytest.mark.parametrize("answer, yes", [
    ("yes", True), ("Yes.", True), (" YES ", True), ("yes!", True), ("yes .", True),
    ("no", False), ("No.", False), ("yes, it is", False), ("yes it is", False), ("yeah", False),
    ("", False), (None, False), ("not yes", False),
])
def test_only_yes_counts(answer, yes):
    # decision: after lower-casing, stripping and dropping trailing punctuation the answer must be exactly "yes";
    # "yes, it is" does not count (the official protocol is a one-word answer)
    assert answer_is_yes(answer) is yes


def test_dependency_rule_on_a_hand_made_graph():
    # 1 -> 2 -> 3 (chain); 4 has no parent ("0"); 5 depends on 1 and 4; listed children-first so a single pass in
    # list order would not be enough
    qs = [q(3, [2]), q(5, [1, 4]), q(2, [1]), q(1, [0]), q(4, [0])]
    yes_all = {1: "yes", 2: "yes", 3: "yes", 4: "yes", 5: "yes"}
    assert score_answers(qs, yes_all) == {3: 1.0, 5: 1.0, 2: 1.0, 1: 1.0, 4: 1.0}
    # parent 1 'no' -> 2 zero, 3 zero through the chain, 5 zero (one of its parents); 4 ("0" = no parent) stays
    assert score_answers(qs, {**yes_all, 1: "no"}) == {3: 0.0, 5: 0.0, 2: 0.0, 1: 0.0, 4: 1.0}
    # middle of the chain 'no' -> only its descendants
    assert score_answers(qs, {**yes_all, 2: "No."}) == {3: 0.0, 5: 1.0, 2: 0.0, 1: 1.0, 4: 1.0}
    # the other parent of 5
    assert score_answers(qs, {**yes_all, 4: "no"}) == {3: 1.0, 5: 0.0, 2: 1.0, 1: 1.0, 4: 0.0}
    # a child answered 'no' does not affect its parent; a missing answer is 'no'
    assert score_answers(qs, {1: "yes", 2: "yes", 4: "yes", 5: "yes"})[3] == 0.0
    assert score_image(qs, {**yes_all, 1: "no"}) == pytest.approx(1 / 5)
    # answers read back from JSON (string keys) work the same
    assert score_answers(qs, {str(k): v for k, v in {**yes_all, 1: "no"}.items()})[4] == 1.0


def test_dependency_rule_rejects_unknown_parent():
    with pytest.raises(InputError, match="unknown"):
        score_answers([q(1, [0]), q(2, [3])], {1: "yes", 2: "yes"})


def test_score_prompt_is_the_mean_over_images():
    qs = [q(1, [0]), q(2, [1])]
    assert score_prompt(qs, [{1: "yes", 2: "yes"}, {1: "no", 2: "yes"}, {1: "yes", 2: "no"}, {1: "yes"}]) == \
        pytest.approx((1 + 0 + 0.5 + 0.5) / 4)
    assert score_prompt(qs, []) == 0.0


def _answers_by_item(prompts, answers=ANSWERS, items=("alpha", "beta")):
    return {p.item_id: [{x.proposition_id: answers[k][x.question] for x in p.questions} for k in range(4)]
            for p in prompts if p.item_id in items}


def test_score_dpg_by_hand_with_separate_images_and_a_missing_prompt(tmp_path):
    prompts = load_dpg(write_bench(tmp_path / "dpg"))
    images = {"alpha": [tile(k) for k in range(4)], "beta": [tile(k) for k in range(4)]}  # gamma has none
    vqa = FakeVQA()
    result = score_dpg(prompts, images, vqa)
    assert vqa.calls == 4 * 5 + 4 * 2
    assert result.per_image["alpha"] == pytest.approx(ALPHA_IMAGES)
    assert result.per_image["beta"] == pytest.approx(BETA_IMAGES)
    assert result.corrected_per_prompt == pytest.approx({"alpha": 0.55, "beta": 0.5, "gamma": 0.0})
    assert result.corrected_score == pytest.approx(35.0)
    assert result.score == pytest.approx(37.5) and result.per_prompt == pytest.approx({"beta": 0.375})
    assert result.missing == ["gamma"] and result.failed == ["alpha"] and result.n_prompts == 3
    assert result.protocol == "fake-vqa"
    assert result.answers["alpha"][2][5] == "yes, it is"
    assert result.question_scores["alpha"][1] == {1: 0.0, 2: 0.0, 3: 0.0, 4: 1.0, 5: 0.0}
    # stored answers re-score to the same result (JSON round trip)
    stored = json.loads(json.dumps(result.to_dict()))
    again = summarize(prompts, stored["answers"], protocol=stored["protocol"])
    assert again.corrected_score == pytest.approx(35.0) and again.missing == ["gamma"]
    assert again.score == pytest.approx(37.5)
    assert again.corrected_categories_l1 == pytest.approx(result.corrected_categories_l1)


def test_category_scores_after_the_rule_differ_from_the_official_ones(tmp_path):
    prompts = load_dpg(write_bench(tmp_path / "dpg"))
    by_item = _answers_by_item(prompts)
    broad, detailed = category_scores(prompts, by_item)
    # post-rule, all four images, gamma's question as 0:
    #   entity: cat [1,0,1,1] .75, sofa [1,1,1,0] .75, dog [1,1,0,0] .5, tree 0 -> 2.0/4
    #   attribute: black [1,0,0,1] .5, fluffy [1,0,0,1] .5; relation: on [1,0,0,0] .25; global: [1,0,1,0] .5
    assert broad == pytest.approx({"entity": 50.0, "attribute": 50.0, "relation": 25.0, "global": 50.0})
    assert detailed == pytest.approx({"entity - whole": 50.0, "attribute - color": 50.0,
                                      "attribute - texture": 50.0, "relation - spatial": 25.0, "global": 50.0})
    # official: alpha dropped (its row 0 is skipped and a child of it raises KeyError), gamma left out; beta's
    #   last image (img3), before the rule, exact 'yes': global 'no' 0, dog 'no' 0
    o_broad, o_detailed = official_category_scores(prompts, by_item)
    assert o_broad == pytest.approx({"entity": 0.0, "global": 0.0})
    assert o_detailed == pytest.approx({"entity - whole": 0.0, "global": 0.0})
    # without the skipped first row (a header-like row in front), alpha counts: last image img3, before the rule:
    #   cat 1, black 1, fluffy 1, sofa 0, on 1 (its parent sofa is 'no', but no rule); beta 0, 0
    shifted = load_dpg(write_bench(tmp_path / "dpg2", rows=[("zeta", 1, "0", "other", "x", "other (x)", "x?")]
                                   + QUESTIONS))
    o_broad, o_detailed = official_category_scores(shifted, by_item)
    assert o_broad == pytest.approx({"entity": 100 / 3, "attribute": 100.0, "relation": 100.0, "global": 0.0})
    assert o_detailed == pytest.approx({"entity - whole": 100 / 3, "attribute - color": 100.0,
                                        "attribute - texture": 100.0, "relation - spatial": 100.0, "global": 0.0})
    assert o_broad != pytest.approx(broad)
    result = summarize(prompts, by_item)
    assert result.corrected_categories_l1 == pytest.approx(broad)
    assert result.corrected_categories_l2 == pytest.approx(detailed)


def test_category_weights_prompts_equally_when_image_counts_differ():
    from evalsuite.tasks.dpg.prompts import DPGPrompt
    prompts = [DPGPrompt("a", "a", [q(1, [0])]), DPGPrompt("b", "b", [q(1, [0])])]
    by_item = {"a": [{1: "yes"}], "b": [{1: "no"}, {1: "no"}, {1: "no"}, {1: "no"}]}
    assert category_scores(prompts, by_item)[0] == pytest.approx({"entity": 50.0})
    assert summarize(prompts, by_item).corrected_score == pytest.approx(50.0)
    assert summarize(prompts, by_item).score == pytest.approx(50.0)  # officially too: a: 1, b: 0


# -------------------------------------------------------------------------------------------------------- images

def test_split_grid_row_major():
    g = grid([tile(k, 16) for k in range(4)])
    assert g.size == (32, 32)
    crops = split_grid(g)
    assert [c.size for c in crops] == [(16, 16)] * 4
    assert [c.getpixel((0, 0))[0] for c in crops] == [0, 1, 2, 3]
    assert [c.getpixel((15, 15))[0] for c in crops] == [0, 1, 2, 3]
    wide = split_grid(grid([tile(k, 4) for k in range(3)], rows=1, cols=3), rows=1, cols=3)
    assert [c.getpixel((0, 0))[0] for c in wide] == [0, 1, 2]
    with pytest.raises(InputError):
        split_grid(Image.new("RGB", (1, 1)))


def test_score_dpg_from_a_folder_of_grids_and_separate_images(tmp_path):
    prompts = load_dpg(write_bench(tmp_path / "dpg"))
    out = tmp_path / "images"
    out.mkdir()
    grid([tile(k) for k in range(4)]).save(out / "alpha.png")  # official layout: one 2x2 grid per prompt
    for k in range(4):
        tile(k).save(out / f"beta_{k}.png")  # separate images
    tile(0).save(out / "stray.png")
    images = load_dpg_images(out, prompts)
    assert sorted(images) == ["alpha", "beta"] and images.unmatched == ["stray.png"]
    assert [im.getpixel((0, 0))[0] for im in images["alpha"]] == [0, 1, 2, 3]
    result = score_dpg(prompts, images, FakeVQA())
    assert result.corrected_score == pytest.approx(35.0) and result.missing == ["gamma"]
    assert result.score == pytest.approx(37.5) and result.failed == ["alpha"]
    assert result.per_image["alpha"] == pytest.approx(ALPHA_IMAGES)

    sub = tmp_path / "sub"
    (sub / "alpha").mkdir(parents=True)
    for k in range(4):
        tile(k).save(sub / "alpha" / f"{k:02d}.png")
    assert [im.getpixel((0, 0))[0] for im in load_dpg_images(sub, prompts)["alpha"]] == [0, 1, 2, 3]
    # layout "separate" takes <id>.png as one image
    assert len(load_dpg_images(out, prompts, layout="separate")["alpha"]) == 1


def test_image_ids_that_look_indexed_stay_with_their_item(tmp_path):
    from evalsuite.tasks.dpg.prompts import DPGPrompt
    prompts = [DPGPrompt("a", "a", [q(1, [0])]), DPGPrompt("a_1", "a1", [q(1, [0])])]
    (tmp_path / "i").mkdir()
    grid([tile(k) for k in range(4)]).save(tmp_path / "i" / "a.png")
    grid([tile(k) for k in range(4)]).save(tmp_path / "i" / "a_1.png")
    images = load_dpg_images(tmp_path / "i", prompts)
    assert images.paths("a") == [tmp_path / "i" / "a.png"]
    assert images.paths("a_1") == [tmp_path / "i" / "a_1.png"]
    assert len(images["a"]) == 4


# ---------------------------------------------------------------------------------------------------- backends

def test_mplug_without_modelscope_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "modelscope", None)  # makes it unimportable even where it is installed
    with pytest.raises(InputError) as err:
        resolve("vqa", "mplug")
    assert "modelscope" in err.value.message
    assert "pip install modelscope" in err.value.fix and "own environment" in err.value.fix
    assert "fetched by modelscope" in err.value.fix


def test_transformers_backend_missing_folder(tmp_path):
    missing = tmp_path / "models" / "blip-vqa-base"
    with pytest.raises(InputError) as err:
        resolve("vqa", f"transformers:{missing}")
    assert str(missing) in err.value.message
    assert "Salesforce/blip-vqa-base" in err.value.fix and "transformers:/path/to" in err.value.fix
    with pytest.raises(InputError, match="needs a local model folder"):
        resolve("vqa", "transformers:")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        resolve("vqa", f"transformers:{tmp_path / 'empty'}")


def _tiny_blip(folder: Path) -> Path:
    import transformers
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "yes", "no", "is", "there", "a", "cat", "?"]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
    image_processor = transformers.BlipImageProcessor(size={"height": 32, "width": 32})
    transformers.BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    small = dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1)
    config = transformers.BlipConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=32, encoder_hidden_size=16,
                         bos_token_id=5, pad_token_id=0, sep_token_id=3, eos_token_id=3, **small),
        vision_config=dict(image_size=32, patch_size=16, **small),
        projection_dim=16)
    transformers.BlipForQuestionAnswering(config).save_pretrained(folder)
    return folder


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers not installed")
def test_transformers_backend_with_a_tiny_random_blip(tmp_path):
    folder = _tiny_blip(tmp_path / "tiny-blip-vqa")
    vqa = resolve("vqa", f"transformers:{folder}", device="cpu")
    assert vqa.protocol == "dpg-tiny-blip-vqa-transformers"
    assert isinstance(vqa.answer(tile(3, 40), "is there a cat?"), str)

"""GenEval, counting and DPG-Bench through `score` with scripted backends (fixed outputs) against hand-computed
scores, including missing images, and the demo model end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from evalsuite.runner import ScoreOptions, score
from evalsuite.tasks import get as get_task
from evalsuite.tasks.geneval.counting_task import COUNTING_CLASSES
from evalsuite.tasks.t2i.backends import Detection


class FixedDetector:
    """Two confident dogs (one far left, one far right), one cat in the middle at 0.5, whatever the image."""

    protocol = "scripted-fixed-v1"

    def detect(self, image):
        return [Detection("dog", 0.95, (0, 0, 10, 10)), Detection("dog", 0.95, (60, 0, 70, 10)),
                Detection("cat", 0.5, (30, 0, 40, 10))]


class AlwaysRed:
    protocol = "scripted-red-v1"

    def classify(self, image, detection, classname, colors):
        return "red"


class ThreeOfEverything:
    protocol = "scripted-three-v1"

    def detect(self, image):
        return [Detection(c, 0.99, (10 * i, 0, 10 * i + 5, 5)) for c in COUNTING_CLASSES for i in range(3)]


class KeywordVQA:
    """'yes' when the question mentions red or circle, else 'no'."""

    protocol = "scripted-vqa-v1"

    def answer(self, image, question):
        return "yes" if ("red" in question or "circle" in question) else "no"


class CountedDetector(FixedDetector):
    """FixedDetector with a weights digest (so its results are cached) that counts the images it is asked about and
    takes them in batches (`detect_many`)."""

    weights_sha256 = "d" * 64
    images_seen = 0
    batches = 0

    def detect_many(self, images):
        CountedDetector.images_seen += len(images)
        CountedDetector.batches += 1
        return [self.detect(image) for image in images]


class CountedRed(AlwaysRed):
    weights_sha256 = "e" * 64


def fixed_detector():
    return FixedDetector()


def counted_detector():
    return CountedDetector()


def counted_red():
    return CountedRed()


def always_red():
    return AlwaysRed()


def three_of_everything():
    return ThreeOfEverything()


def keyword_vqa():
    return KeywordVQA()


def _opts(**kw):
    return ScoreOptions.with_legacy(**{**dict(num_workers=0, progress=False, images_per_prompt=1), **kw})


GENEVAL = [
    ("single_object", [{"class": "dog", "count": 1}], None, "a photo of a dog", True),
    ("single_object", [{"class": "cat", "count": 1}], None, "a photo of a cat", True),  # 0.5 > 0.3
    ("counting", [{"class": "dog", "count": 2}], [{"class": "dog", "count": 3}], "a photo of two dogs", True),
    # 0.5 < 0.9:
    ("counting", [{"class": "cat", "count": 1}], [{"class": "cat", "count": 2}], "a photo of one cat", False),
    ("two_object", [{"class": "dog", "count": 1}, {"class": "cat", "count": 1}], None, "a dog and a cat", True),
    ("colors", [{"class": "dog", "count": 1, "color": "red"}], None, "a photo of a red dog", True),
    ("colors", [{"class": "dog", "count": 1, "color": "blue"}], None, "a photo of a blue dog", False),
    ("position", [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}], None,
     "a photo of a dog left of a cat", True),  # the first dog found is the left one
    ("color_attr", [{"class": "dog", "count": 1, "color": "red"}, {"class": "cat", "count": 1, "color": "red"}],
     None, "a red dog and a red cat", True),
]


def _geneval_file(tmp_path):
    path = tmp_path / "evaluation_metadata.jsonl"
    with open(path, "w") as fh:
        for tag, include, exclude, prompt, _ in GENEVAL:
            meta = {"tag": tag, "include": include, "prompt": prompt}
            if exclude:
                meta["exclude"] = exclude
            fh.write(json.dumps(meta) + "\n")
    return path


def test_geneval_official_rule_hand_computed(tmp_path):
    (doc,) = score("demo", _opts(tasks=["geneval"], prompts=_geneval_file(tmp_path),
                                 detector="python:tests.test_text_image_tasks:fixed_detector",
                                 color="python:tests.test_text_image_tasks:always_red")).results
    assert doc["status"] == "ok", doc.get("reason")
    expected = {}
    for tag, *_, ok in GENEVAL:
        expected.setdefault(tag, []).append(ok)
    per_tag = {t: np.mean(v) for t, v in expected.items()}
    for tag, acc in per_tag.items():
        assert doc["metrics"][tag] == pytest.approx(acc), tag
    assert doc["metrics"]["overall"] == pytest.approx(np.mean(list(per_tag.values())))  # unweighted over tasks
    assert doc["metrics"]["image_accuracy"] == pytest.approx(7 / 9)
    assert doc["protocol"] == "scripted-fixed-v1+scripted-red-v1"
    assert doc["per_sample"]["correct"] == [float(ok) for *_, ok in GENEVAL]
    (results,) = [a for a in doc["artifacts"] if a.endswith("results.jsonl")]
    rows = [json.loads(line) for line in (tmp_path / "store" / results).read_text().splitlines()]
    assert set(rows[0]) == {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"}
    assert "expected dog>=1" not in rows[0]["reason"]


def test_geneval_layout_folder_with_missing_images(tmp_path):
    folder = tmp_path / "gen"
    for i, (tag, include, exclude, prompt, _) in enumerate(GENEVAL[:3]):
        d = folder / f"{i:05d}" / "samples"
        d.mkdir(parents=True)
        (d.parent / "metadata.jsonl").write_text(json.dumps({"tag": tag, "include": include, "prompt": prompt,
                                                             **({"exclude": exclude} if exclude else {})}) + "\n")
        if i != 1:  # prompt 1 has no image at all
            Image.new("RGB", (32, 32)).save(d / "0000.png")
    with pytest.warns(UserWarning, match="1 of 3 expected images are missing"):
        (doc,) = score(f"folder:{folder}", _opts(tasks=["geneval"],
                                                 detector="python:tests.test_text_image_tasks:fixed_detector",
                                                 color="python:tests.test_text_image_tasks:always_red")).results
    # official (evaluate_images.py L270-274): only the images that exist are scored; the missing one is counted
    assert doc["num_samples"] == 2 and doc["details"]["missing_or_unreadable_images"] == 1
    assert doc["metrics"]["missing_images"] == 1.0
    assert doc["per_sample"]["correct"] == [1.0, 1.0]
    assert doc["metrics"]["overall"] == pytest.approx(1.0)  # single_object 1/1, counting 1/1
    assert doc["protocol"] == "scripted-fixed-v1+scripted-red-v1"
    # opt-in: the missing image is a failure, under its own protocol name
    (doc,) = score(f"folder:{folder}", _opts(tasks=["geneval"], geneval_missing_as_failure=True,
                                             detector="python:tests.test_text_image_tasks:fixed_detector",
                                             color="python:tests.test_text_image_tasks:always_red")).results
    assert doc["num_samples"] == 3 and doc["per_sample"]["correct"] == [1.0, 0.0, 1.0]
    assert doc["metrics"]["overall"] == pytest.approx((0.5 + 1.0) / 2)
    assert doc["protocol"] == "scripted-fixed-v1+scripted-red-v1+missing-as-failure"
    with pytest.raises(Exception, match="missing"):
        score(f"folder:{folder}", _opts(tasks=["geneval"], strict=True,
                                        detector="python:tests.test_text_image_tasks:fixed_detector",
                                        color="python:tests.test_text_image_tasks:always_red"))


def test_geneval_scores_only_numbered_pngs_and_counts_unreadable_ones(tmp_path):
    folder = tmp_path / "gen"
    tag, include, _, prompt, _ = GENEVAL[0]
    d = folder / "00000" / "samples"
    d.mkdir(parents=True)
    (d.parent / "metadata.jsonl").write_text(json.dumps({"tag": tag, "include": include, "prompt": prompt}) + "\n")
    Image.new("RGB", (32, 32)).save(d / "0000.png")
    Image.new("RGB", (32, 32)).save(d / "grid.png")  # not `\d+\.png`: evaluate_images.py L272 skips it
    (d / "0001.png").write_bytes(b"not a png")  # unreadable: not scored by default, counted
    opts = dict(tasks=["geneval"], images_per_prompt=2, detector="python:tests.test_text_image_tasks:fixed_detector",
                color="python:tests.test_text_image_tasks:always_red")
    with pytest.warns(UserWarning, match="1 of 2 expected images"):
        (doc,) = score(f"folder:{folder}", _opts(**opts)).results
    assert doc["per_sample"]["name"] == ["00000/samples/0000.png"] and doc["metrics"]["missing_images"] == 1.0
    assert doc["details"]["missing"] == ["00000/samples/0001.png"]
    (doc,) = score(f"folder:{folder}", _opts(geneval_missing_as_failure=True, **opts)).results
    assert doc["per_sample"]["correct"] == [1.0, 0.0] and doc["metrics"]["overall"] == pytest.approx(0.5)


def test_counting_demo_end_to_end_hand_computed():
    summary = score("demo", _opts(tasks=["counting"], max_prompts=10,
                                  detector="python:tests.test_text_image_tasks:three_of_everything"))
    (doc,) = summary.results
    assert doc["num_samples"] == 10  # apples 1..10, one image each
    assert doc["metrics"]["accuracy"] == pytest.approx(0.1)  # only "three apples" is right
    assert doc["metrics"]["mae"] == pytest.approx(np.mean([abs(3 - n) for n in range(1, 11)]))
    assert doc["metrics"]["off_by_one"] == pytest.approx(0.2)  # two and four
    assert doc["details"]["per_count"]["3"] == 1.0 and doc["details"]["per_count"]["7"] == 0.0
    layout = summary.store / "layouts" / "counting"
    assert len(list(layout.glob("*/00009/samples/0000.png"))) == 1


def test_geneval_demo_end_to_end_with_generated_prompts():
    (doc,) = score("demo", _opts(tasks=["geneval"], max_prompts=12, images_per_prompt=2,
                                 detector="python:tests.test_text_image_tasks:fixed_detector",
                                 color="python:tests.test_text_image_tasks:always_red")).results
    assert doc["status"] == "ok" and doc["num_samples"] == 24
    assert doc["details"]["prompt_set"].startswith("evalsuite generate_prompts")


@pytest.mark.parametrize("task", ["geneval", "counting"])
def test_detection_second_run_reads_the_score_cache(tmp_path, task, monkeypatch):
    """Issue 20 item 4: the detector sees each image once (on the CPU one image a call; on an accelerator batches
    of --batch-size, at most 8); a second run of the same images reads every result from the score cache and gives
    the same numbers; another detector identity scores again."""
    monkeypatch.setattr(CountedDetector, "images_seen", 0)
    monkeypatch.setattr(CountedDetector, "batches", 0)
    opts = dict(tasks=[task], max_prompts=5, images_per_prompt=2, batch_size=4, store=tmp_path / "store",
                detector="python:tests.test_text_image_tasks:counted_detector",
                **({"color": "python:tests.test_text_image_tasks:counted_red"} if task == "geneval" else {}))
    (first,) = score("demo", _opts(**opts)).results
    assert first["status"] == "ok" and first["num_samples"] == 10 and first["details"]["cached_samples"] == 0
    assert CountedDetector.images_seen == 10 and CountedDetector.batches == 10  # CPU: one image a call
    (again,) = score("demo", _opts(**opts)).results
    assert CountedDetector.images_seen == 10 and again["details"]["cached_samples"] == 10
    assert again["metrics"] == first["metrics"] and again["per_sample"] == first["per_sample"]
    monkeypatch.setattr(CountedDetector, "weights_sha256", "f" * 64)
    (other,) = score("demo", _opts(**opts)).results
    assert CountedDetector.images_seen == 20 and other["details"]["cached_samples"] == 0


def test_detection_batch_by_device():
    from types import SimpleNamespace

    from evalsuite.tasks.geneval.task import detection_batch

    def ctx(device, batch):
        return SimpleNamespace(device=device, options=SimpleNamespace(batch_size=batch))

    assert detection_batch(ctx("cpu", 32)) == 1
    assert detection_batch(ctx("cuda:0", 32)) == 8 and detection_batch(ctx("cuda", 4)) == 4


def _dpg_folder(tmp_path):
    folder = tmp_path / "dpg_bench"
    (folder / "prompts").mkdir(parents=True)
    rows = [("p1", "a red circle", 1, "0", "entity", "whole", "entity - whole (circle)", "Is there a circle?"),
            ("p1", "a red circle", 2, "0", "attribute", "color", "attribute - color (circle, red)",
             "Is the circle red?"),
            ("p2", "a blue square", 1, "0", "entity", "whole", "entity - whole (square)", "Is there a square?"),
            ("p2", "a blue square", 2, "1", "attribute", "color", "attribute - color (square, blue)",
             "Is the square red?")]
    with open(folder / "dpg_bench.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "text", "keywords", "proposition_id", "dependency", "category_broad",
                    "category_detailed", "tuple", "question_natural_language"])
        for r in rows:
            w.writerow([r[0], r[1], "", *r[2:]])
    for item, text in (("p1", "a red circle"), ("p2", "a blue square")):
        (folder / "prompts" / f"{item}.txt").write_text(text)
    return folder


def test_dpg_bench_dependency_rule_hand_computed(tmp_path):
    (doc,) = score("demo", _opts(tasks=["dpg-bench"], dpg=str(_dpg_folder(tmp_path)), images_per_prompt=2,
                                 vqa="python:tests.test_text_image_tasks:keyword_vqa")).results
    # official (compute_dpg_bench.py): row 0 (p1 "circle?") skipped, so p1 = its "red?" yes -> 1.0; p2: "square?"
    # no -> child "red?" (yes) zeroed by the rule -> 0.0; categories from the last image BEFORE the rule:
    # entity = p2 "square?" 0; attribute = p1 "red?" 1, p2 "red?" 1 (not zeroed) -> 100
    m = doc["metrics"]
    assert m["overall"] == pytest.approx(50.0)
    assert doc["per_sample"] == {"name": ["p1", "p2"], "score": [100.0, 0.0]}
    assert m["cat_entity"] == pytest.approx(0.0) and m["cat_attribute"] == pytest.approx(100.0)
    # corrected: every row, categories after the rule: entity p1 1, p2 0 -> 50; attribute p1 1, p2 0 -> 50
    assert m["dpg_corrected"] == pytest.approx(50.0)
    assert m["cat_corrected_entity"] == pytest.approx(50.0) and m["cat_corrected_attribute"] == pytest.approx(50.0)
    assert set(m) <= set(get_task("dpg-bench").metrics)  # every returned metric is declared
    assert doc["protocol"] == "scripted-vqa-v1"


def test_text_image_tasks_skip_cleanly_offline():
    docs = {d["task"]: d for d in score("demo", _opts(tasks=["geneval", "counting", "dpg-bench"],
                                                      max_prompts=2)).results}
    assert docs["geneval"]["status"] == "skipped" and "maskrcnn" in docs["geneval"]["reason"]
    assert "evalsuite weights import maskrcnn-v2-coco" in docs["counting"]["fix"]
    assert docs["dpg-bench"]["status"] == "skipped" and "--dpg" in docs["dpg-bench"]["fix"]

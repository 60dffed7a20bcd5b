"""GenEval: prompt generation and loading, the scoring rule on hand-made detections (scripted fake detector and
colour classifier, expectations computed by hand), the summary, and the detector / colour backends (offline; the
Mask R-CNN and CLIP checks use random-init networks built here, never real weights)."""

from __future__ import annotations

import collections
import dataclasses
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite import weights
from evalsuite.errors import InputError, MissingWeightsError
from evalsuite.hashing import sha256_file
from evalsuite.tasks.geneval.color_classifier import CLIPColorClassifier, color_crop
from evalsuite.tasks.geneval.detectors import torchvision_label_map
from evalsuite.tasks.geneval.prompts import (
    COCO_CLASSES,
    COLORS,
    RELATIONS,
    generate_prompts,
    load_prompts,
    noun_phrase,
    validate_metadata,
    write_prompts,
)
from evalsuite.tasks.geneval.scoring import (
    evaluate,
    filter_detections,
    relative_position,
    score_images,
    summarize,
    write_results,
)
from evalsuite.tasks.t2i.backends import Detection, resolve


def det(label, score, box, mask=None):
    return Detection(label, score, tuple(float(v) for v in box), mask)


class FakeDetector:
    """Fixed detections per image; the image is identified by its top-left pixel."""

    protocol = "fake-detector-v1"

    def __init__(self, by_pixel):
        self.by_pixel = by_pixel

    def detect(self, image):
        return list(self.by_pixel[image.getpixel((0, 0))])


class FakeColors:
    """Colour per detection box; records what it was asked."""

    protocol = "fake-colors-v1"

    def __init__(self, by_box):
        self.by_box = {tuple(float(v) for v in k): c for k, c in by_box.items()}
        self.calls = []

    def classify(self, image, detection, classname, colors):
        assert list(colors) == list(COLORS)
        self.calls.append((classname, detection.box))
        return self.by_box[detection.box]


def solid(rgb, size=(64, 64)):
    return Image.new("RGB", size, rgb)


# ------------------------------------------------------------------------------------------------ prompts

def test_generate_prompts_counts_and_validity():
    prompts = generate_prompts()
    assert len(prompts) == 553
    counts = collections.Counter(p["tag"] for p in prompts)
    assert counts == {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100,
                      "color_attr": 100}
    assert len({p["prompt"] for p in prompts}) == 553
    for p in prompts:
        validate_metadata(json.loads(json.dumps(p)))  # JSON-able and valid
        assert p["prompt"].startswith("a photo of ")
        for clause in p["include"] + p.get("exclude", []):
            assert clause["class"] in COCO_CLASSES
            assert clause.get("color", "red") in COLORS
    singles = [p["include"][0]["class"] for p in prompts if p["tag"] == "single_object"]
    assert sorted(singles) == sorted(COCO_CLASSES)
    for p in prompts:
        if p["tag"] == "counting":
            (inc,), (exc,) = p["include"], p["exclude"]
            assert 2 <= inc["count"] <= 4 and exc == {"class": inc["class"], "count": inc["count"] + 1}
            assert ["two", "three", "four"][inc["count"] - 2] in p["prompt"]
        else:
            assert "exclude" not in p
        if p["tag"] in ("colors", "color_attr"):
            assert all("color" in c and c["class"] != "person" for c in p["include"])
        if p["tag"] == "color_attr":
            a, b = p["include"]
            assert a["class"] != b["class"] and a["color"] != b["color"]
        if p["tag"] == "position":
            target, mover = p["include"]
            assert "position" not in target and mover["position"][1] == 0
            relation = mover["position"][0]
            assert relation in RELATIONS
            assert p["prompt"] == (f"a photo of {noun_phrase(mover['class'])} {relation} "
                                   f"{noun_phrase(target['class'])}")


def test_generate_prompts_deterministic():
    assert generate_prompts(43) == generate_prompts(43)
    assert generate_prompts(43) != generate_prompts(44)


def test_natural_english():
    assert noun_phrase("dog", 3) == "three dogs"
    assert noun_phrase("person", 2) == "two people"
    assert noun_phrase("computer mouse", 4) == "four computer mice"
    assert noun_phrase("knife", 2) == "two knives"
    assert noun_phrase("sheep", 3) == "three sheep"
    assert noun_phrase("bus", 2) == "two buses"
    assert noun_phrase("wine glass", 2) == "two wine glasses"
    assert noun_phrase("toothbrush", 3) == "three toothbrushes"
    assert noun_phrase("skis") == "a pair of skis"
    assert noun_phrase("scissors", 2) == "two pairs of scissors"
    assert noun_phrase("umbrella") == "an umbrella"
    assert noun_phrase("car", color="orange") == "an orange car"
    assert noun_phrase("apple", color="red") == "a red apple"
    assert noun_phrase("skis", color="blue") == "a pair of blue skis"


def test_class_names_are_genevals():
    assert len(COCO_CLASSES) == 80 == len(set(COCO_CLASSES))
    for name in ("tv", "tv remote", "computer mouse", "computer keyboard", "hair drier", "dining table",
                 "potted plant", "motorcycle", "airplane", "couch", "donut", "cell phone"):
        assert name in COCO_CLASSES
    for name in ("mouse", "remote", "keyboard", "tvmonitor", "sofa"):
        assert name not in COCO_CLASSES
    assert COLORS == ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")


def test_load_prompts_round_trip(tmp_path):
    prompts = generate_prompts()
    path = write_prompts(prompts, tmp_path / "evaluation_metadata.jsonl")
    assert load_prompts(path) == prompts
    # blank lines are skipped
    path.write_text("\n" + path.read_text() + "\n\n")
    assert load_prompts(path) == prompts


@pytest.mark.parametrize("bad, needle", [
    ({"tag": "single_object", "include": [{"class": "unicorn", "count": 1}], "prompt": "a photo of a unicorn"},
     "'unicorn'"),
    ({"tag": "colors", "include": [{"class": "car", "count": 1, "color": "teal"}], "prompt": "a photo of a teal car"},
     "'teal'"),
    ({"tag": "counting", "include": [{"class": "dog", "count": 2}], "exclude": [{"class": "dogg", "count": 3}],
      "prompt": "a photo of two dogs"}, "'dogg'"),
    ({"tag": "single_object", "include": [{"class": "dog", "count": 1}]}, "'prompt'"),
    ({"tag": "single_object", "include": [{"class": "dog", "count": 0}], "prompt": "x"}, "count"),
    ({"tag": "position", "include": [{"class": "dog", "count": 1, "position": ["left of", 0]}], "prompt": "x"},
     "earlier"),
    ({"tag": "position", "include": [{"class": "dog", "count": 1},
                                     {"class": "cat", "count": 1, "position": ["behind", 0]}], "prompt": "x"},
     "'behind'"),
])
def test_load_prompts_bad_line(tmp_path, bad, needle):
    good = {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"}
    path = tmp_path / "meta.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError) as err:
        load_prompts(path)
    assert "line 2" in err.value.message and needle in err.value.message
    assert str(path) in err.value.message


def test_load_prompts_bad_json_and_missing_file(tmp_path):
    path = tmp_path / "meta.jsonl"
    path.write_text('{"tag": "single_object",\n')
    with pytest.raises(InputError, match="line 1"):
        load_prompts(path)
    with pytest.raises(InputError, match="does not exist"):
        load_prompts(tmp_path / "nope.jsonl")


# ------------------------------------------------------------------------------------------------ filtering

TWO_DOGS = {"tag": "counting", "include": [{"class": "dog", "count": 2}], "exclude": [{"class": "dog", "count": 3}],
            "prompt": "a photo of two dogs"}


def _score(meta, dets, colors=None):
    # the image is only handed to the (fake) colour classifier, which reads the boxes
    return evaluate(Image.new("RGB", (32, 32)), meta, filter_detections(dets, meta["tag"]), colors)


def test_counting_exclude_rule():
    d1, d2, d3 = (det("dog", 0.95, (i * 20, 0, i * 20 + 10, 10)) for i in range(3))
    assert _score(TWO_DOGS, [d1, d2, d3]) == (False, "expected dog<3, found 3")
    assert _score(TWO_DOGS, [d1, d2]) == (True, "")
    low = det("dog", 0.85, (60, 0, 70, 10))  # ignored under the 0.9 counting threshold
    assert _score(TWO_DOGS, [d1, d2, low]) == (True, "")
    assert _score(TWO_DOGS, [d1, low]) == (False, "expected dog>=2, found 1")
    # under another tag the same 0.85 detection counts (0.3 threshold)
    assert len(filter_detections([d1, low], "two_object")["dog"]) == 2


def test_threshold_other_tags():
    meta = {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"}
    assert _score(meta, [det("dog", 0.3, (0, 0, 5, 5))]) == (False, "expected dog>=1, found 0")  # strictly above
    assert _score(meta, [det("dog", 0.31, (0, 0, 5, 5))]) == (True, "")
    assert _score(meta, [det("cat", 0.99, (0, 0, 5, 5))]) == (False, "expected dog>=1, found 0")


def test_filter_sorts_and_caps_at_16():
    scores = [0.5 + 0.02 * i for i in range(20)]  # 0.50 ... 0.88
    dets = [det("person", s, (i, i, i + 5, i + 5)) for i, s in enumerate(scores)]
    dets.reverse()
    kept = filter_detections(dets, "single_object")
    assert list(kept) == ["person"]
    assert [d.score for d in kept["person"]] == sorted(scores, reverse=True)[:16]
    # the cap decides an exclude: 20 confident people, but only 16 survive, so "<17" holds
    confident = [det("person", 0.95, (i, i, i + 5, i + 5)) for i in range(20)]
    meta = {"tag": "counting", "include": [{"class": "person", "count": 2}],
            "exclude": [{"class": "person", "count": 17}], "prompt": "x"}
    assert _score(meta, confident) == (True, "")
    assert filter_detections(confident, "counting", max_objects=20)["person"][19] is confident[19]
    assert filter_detections([], "counting") == {}


# ------------------------------------------------------------------------------------------------ position

def test_relative_position_clear_cases():
    a = det("dog", 0.9, (0, 40, 20, 60))  # centre (10, 50)
    b = det("cat", 0.9, (80, 40, 100, 60))  # centre (90, 50): offset (-80, 0) -> shrink 4 -> -76/80 = -0.95
    assert relative_position(a, b) == {"left of"}
    assert relative_position(b, a) == {"right of"}
    top = det("dog", 0.9, (40, 0, 60, 20))  # centre (50, 10)
    bottom = det("cat", 0.9, (40, 80, 60, 100))  # centre (50, 90); y grows downwards
    assert relative_position(top, bottom) == {"above"}
    assert relative_position(bottom, top) == {"below"}
    # diagonal: offset (-80, -80), shrink 4 each -> (-76, -76)/113.1 = -0.67 on both axes
    assert relative_position(det("a", 1, (0, 0, 20, 20)), det("b", 1, (80, 80, 100, 100))) == {"left of",
                                                                                                  "above"}


def test_relative_position_no_relation():
    # offset (-2, -2); shrink 0.1 * (20 + 20) = 4 per axis -> (0, 0): no relation at all
    assert relative_position(det("a", 1, (40, 40, 60, 60)), det("b", 1, (42, 42, 62, 62))) == set()
    # identical boxes: zero offset
    assert relative_position(det("a", 1, (0, 0, 10, 10)), det("b", 1, (0, 0, 10, 10))) == set()
    # offset (-10, 0) between 100-wide boxes: shrink 20 -> 0 on x, 0 on y -> nothing, though A's centre is left
    assert relative_position(det("a", 1, (0, 0, 100, 10)), det("b", 1, (10, 0, 110, 10))) == set()


def test_relative_position_shrink_decides_borderline():
    # A centre (40, 180), B centre (100, 100): offset (-60, 80), |offset| = 100.
    # narrow boxes (20 wide, 10 high): shrink x 0.1*(20+20) = 4 -> -56/100 = -0.56 -> left of;
    #                                  shrink y 0.1*(10+10) = 2 ->  78/100 = 0.78 -> below
    narrow_a, narrow_b = det("a", 1, (30, 175, 50, 185)), det("b", 1, (90, 95, 110, 105))
    assert relative_position(narrow_a, narrow_b) == {"left of", "below"}
    # wide boxes (60 wide): shrink x 0.1*(60+60) = 12 -> -48/100 = -0.48 -> not left of (it would be -0.524 if
    # divided by the shrunk offset's length 91.6, so this also pins the division by the original length)
    wide_a, wide_b = det("a", 1, (10, 175, 70, 185)), det("b", 1, (70, 95, 130, 105))
    assert relative_position(wide_a, wide_b) == {"below"}
    meta = {"tag": "position", "include": [{"class": "b", "count": 1},
                                           {"class": "a", "count": 1, "position": ["left of", 0]}], "prompt": "x"}
    assert evaluate(None, meta, {"a": [narrow_a], "b": [narrow_b]}) == (True, "")
    assert evaluate(None, meta, {"a": [wide_a], "b": [wide_b]}) == (False,
                                                                       "expected a left of target, found below target")


POSITION = {"tag": "position", "include": [{"class": "cat", "count": 1},
                                           {"class": "dog", "count": 1, "position": ["left of", 0]}],
            "prompt": "a photo of a dog left of a cat"}


def test_position_clause():
    dog, cat = det("dog", 0.9, (0, 40, 20, 60)), det("cat", 0.9, (80, 40, 100, 60))
    assert _score(POSITION, [dog, cat]) == (True, "")
    ok, reason = _score(POSITION, [det("dog", 0.9, cat.box), det("cat", 0.9, dog.box)])
    assert not ok and reason == "expected dog left of target, found right of target"
    ok, reason = _score(POSITION, [dog])
    assert not ok and reason.split("\n") == ["expected cat>=1, found 0", "no target for dog to be left of"]
    ok, reason = _score(POSITION, [dog, det("cat", 0.9, (1, 41, 21, 61))])
    assert not ok and reason == "expected dog left of target, found no clear relation to target"
    # only the most confident dog is checked: a less confident dog to the right does not matter
    assert _score(POSITION, [dog, cat, det("dog", 0.5, (200, 40, 220, 60))]) == (True, "")


def test_position_every_target_object():
    meta = {"tag": "position", "include": [{"class": "cat", "count": 2},
                                           {"class": "dog", "count": 1, "position": ["above", 0]}], "prompt": "x"}
    dog = det("dog", 0.9, (50, 0, 70, 20))
    # first cat: centre (10, 30) vs the dog's (60, 10): offset (50, -20), |offset| 53.85; shrink 4 per axis ->
    # (46, -16) / 53.85 = (0.85, -0.30): right of, not above
    cats_below = [det("cat", 0.9, (0, 20, 20, 40)), det("cat", 0.8, (60, 80, 80, 100))]
    assert _score(meta, [dog, *cats_below]) == (False, "expected dog above target, found right of target")
    cats_below[0] = det("cat", 0.9, (40, 80, 60, 100))
    assert _score(meta, [dog, *cats_below]) == (True, "")
    # a cat beside the dog breaks "above every cat"
    ok, _ = _score(meta, [dog, cats_below[0], det("cat", 0.8, (100, 0, 120, 20))])
    assert not ok


# ------------------------------------------------------------------------------------------------ colour, multi

def test_color_clause():
    meta = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}],
            "prompt": "a photo of a red car"}
    red, blue = det("car", 0.9, (0, 0, 10, 10)), det("car", 0.8, (20, 0, 30, 10))
    colors = FakeColors({red.box: "red", blue.box: "blue"})
    assert _score(meta, [red, blue], colors) == (True, "")
    assert colors.calls == [("car", red.box)]  # only the first `count` objects are classified
    # the most confident car is the blue one: fails, though a red car exists further down
    blue_first = det("car", 0.95, blue.box)
    assert _score(meta, [red, blue_first], colors) == (False, "expected red car>=1, found 0 red; and 1 blue")
    # no colour classifier for a colour clause is an input error
    with pytest.raises(InputError, match="colour"):
        _score(meta, [red])


def test_color_count_two():
    meta = {"tag": "colors", "include": [{"class": "cup", "count": 2, "color": "green"}], "prompt": "x"}
    cups = [det("cup", 0.9 - 0.1 * i, (i * 10, 0, i * 10 + 5, 5)) for i in range(3)]
    colors = FakeColors({cups[0].box: "green", cups[1].box: "white", cups[2].box: "green"})
    assert _score(meta, cups, colors) == (False, "expected green cup>=2, found 1 green; and 1 green, 1 white")


def test_two_object_and_color_attr():
    two = {"tag": "two_object", "include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1}],
           "prompt": "a photo of a dog and a cat"}
    dog, cat = det("dog", 0.9, (0, 0, 10, 10)), det("cat", 0.9, (20, 0, 30, 10))
    assert _score(two, [dog, cat]) == (True, "")
    assert _score(two, [dog]) == (False, "expected cat>=1, found 0")
    assert _score(two, []) == (False, "expected dog>=1, found 0\nexpected cat>=1, found 0")

    attr = {"tag": "color_attr", "include": [{"class": "dog", "count": 1, "color": "brown"},
                                             {"class": "cat", "count": 1, "color": "white"}],
            "prompt": "a photo of a brown dog and a white cat"}
    assert _score(attr, [dog, cat], FakeColors({dog.box: "brown", cat.box: "white"})) == (True, "")
    assert _score(attr, [dog, cat], FakeColors({dog.box: "brown", cat.box: "black"})) == (
        False, "expected white cat>=1, found 0 white; and 1 black")
    assert _score(attr, [dog, cat], FakeColors({dog.box: "white", cat.box: "brown"})) == (
        False, "expected brown dog>=1, found 0 brown; and 1 white\nexpected white cat>=1, found 0 white; and 1 brown")


def test_failed_colour_group_is_no_target():
    meta = {"tag": "custom", "include": [{"class": "cat", "count": 1, "color": "red"},
                                         {"class": "dog", "count": 1, "position": ["left of", 0]}], "prompt": "x"}
    dog, cat = det("dog", 0.9, (0, 40, 20, 60)), det("cat", 0.9, (80, 40, 100, 60))
    ok, reason = _score(meta, [dog, cat], FakeColors({cat.box: "blue"}))
    assert not ok and reason.endswith("no target for dog to be left of")


# ------------------------------------------------------------------------------------------------ rows, summary

def test_score_images_rows(tmp_path):
    prompts = [TWO_DOGS, POSITION]
    dogs = [det("dog", 0.95, (0, 0, 10, 10)), det("dog", 0.92, (20, 0, 30, 10)), det("cat", 0.2, (0, 0, 5, 5))]
    detector = FakeDetector({(1, 1, 1): dogs,
                             (2, 2, 2): [det("dog", 0.9, (0, 40, 20, 60)), det("cat", 0.9, (80, 40, 100, 60))],
                             (3, 3, 3): [det("dog", 0.9, (0, 40, 20, 60))]})
    path = tmp_path / "0000.png"
    solid((3, 3, 3)).save(path)
    samples = [("00000/samples/0000.png", solid((1, 1, 1)), prompts[0]),
               ("00001/samples/0000.png", solid((2, 2, 2)), prompts[1]),
               ("00001/samples/0001.png", path, prompts[1])]
    rows = score_images(samples, detector)
    assert [r["correct"] for r in rows] == [True, True, False]
    for row, (name, _, meta) in zip(rows, samples):
        assert set(row) == {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"}
        assert row["filename"] == name and row["tag"] == meta["tag"] and row["prompt"] == meta["prompt"]
        assert json.loads(row["metadata"]) == meta
    assert json.loads(rows[0]["details"]) == {"dog": [[0, 0, 10, 10, 0.95], [20, 0, 30, 10, 0.92]]}
    assert rows[2]["reason"] == "expected cat>=1, found 0\nno target for dog to be left of"
    out = write_results(rows, tmp_path / "results.jsonl")
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows


def test_summary_overall_is_mean_of_tasks():
    def rows_for(tag, prompt, results):
        meta = json.dumps({"tag": tag, "prompt": prompt})
        return [{"filename": f"{prompt}/{i}", "tag": tag, "prompt": prompt, "correct": ok, "reason": "",
                 "metadata": meta, "details": "{}"} for i, ok in enumerate(results)]

    rows = (rows_for("single_object", "p1", [True, True]) + rows_for("single_object", "p2", [True])
            + rows_for("two_object", "p3", [False])
            + rows_for("counting", "p4", [True, False])
            + rows_for("colors", "p5", [True])
            + rows_for("position", "p6", [True, False]) + rows_for("position", "p7", [False, False])
            + rows_for("color_attr", "p8", [False]))
    s = summarize(rows)
    # tasks: 1, 0, 1/2, 1, 1/4, 0 -> overall 2.75 / 6; images: 6 correct of 12 -> 0.5
    assert s["overall"] == pytest.approx(2.75 / 6)
    assert s["image_accuracy"] == pytest.approx(0.5)
    assert list(s["tasks"]) == ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
    assert s["tasks"]["position"] == {"accuracy": 0.25, "correct": 1, "total": 4, "prompts": 2}
    # prompts: 1, 1, 0, 1/2, 1, 1/2, 0, 0 -> 4 / 8; any correct: 5 of 8
    assert s["prompt_accuracy"] == pytest.approx(0.5)
    assert s["prompts_any_correct"] == pytest.approx(5 / 8)
    assert s["num_images"] == 12 and s["num_prompts"] == 8
    assert {p["prompt"]: p["accuracy"] for p in s["per_prompt"]}["p6"] == 0.5
    with pytest.raises(InputError):
        summarize([])


# ------------------------------------------------------------------------------------------------ backends

def test_mask2former_without_mmdet(monkeypatch):
    monkeypatch.setitem(sys.modules, "mmdet", None)  # import mmdet -> ImportError, whatever is installed
    with pytest.raises(InputError) as err:
        resolve("detector", "mask2former:/x/config.py,/x/checkpoint.pth")
    assert "mmdet" in err.value.message
    assert "torchvision-maskrcnn" in err.value.fix and "mask2former:" in err.value.fix


def test_torchvision_maskrcnn_offline_without_weights():
    with pytest.raises(MissingWeightsError):
        resolve("detector", "torchvision-maskrcnn", offline=True, device="cpu")


def test_clip_color_offline_without_weights():
    with pytest.raises(MissingWeightsError):
        resolve("color", "clip-vit-l-14", offline=True, device="cpu")


def test_torchvision_label_map():
    mapping = torchvision_label_map()
    assert sorted(mapping.values()) == sorted(COCO_CLASSES)
    assert mapping[1] == "person" and mapping[74] == "computer mouse" and mapping[90] == "toothbrush"
    assert 12 not in mapping  # an N/A slot


def test_torchvision_maskrcnn_random_init(tmp_path, monkeypatch):
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    path = tmp_path / "random-maskrcnn.pth"
    torch.save(model.state_dict(), path)
    del model
    spec = weights.REGISTRY["maskrcnn-v2-coco"]
    monkeypatch.setitem(weights.REGISTRY, "maskrcnn-v2-coco",
                        dataclasses.replace(spec, sha256=sha256_file(path), size_bytes=None))
    weights.import_file("maskrcnn-v2-coco", path)
    detector = resolve("detector", "torchvision-maskrcnn", offline=True, device="cpu")
    assert detector.protocol == "torchvision-maskrcnn-v2-coco"
    # test speed only (types and shapes are what is checked): 128 px instead of torchvision's 800 px resize, fewer
    # proposals and detections
    detector.model.transform.min_size, detector.model.transform.max_size = (128,), 128
    detector.model.rpn._post_nms_top_n["testing"] = 50
    detector.model.roi_heads.detections_per_img = 10
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    dets = detector.detect(image)
    assert isinstance(dets, list) and dets
    # batched (issue 20 item 4): images of one size in one pass, others alone; the same detections as one by one
    other = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    wide = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    batched = detector.detect_many([image, wide, other])
    for got, alone in zip(batched, [dets, detector.detect(wide), detector.detect(other)]):
        assert [d.label for d in got] == [d.label for d in alone]
        np.testing.assert_allclose([d.score for d in got], [d.score for d in alone], rtol=0, atol=1e-5)
        np.testing.assert_allclose([d.box for d in got], [d.box for d in alone], rtol=0, atol=1e-3)
    for d in dets:
        assert isinstance(d, Detection) and d.label in COCO_CLASSES
        assert isinstance(d.score, float) and len(d.box) == 4
        assert d.mask is not None and d.mask.shape == (128, 128) and d.mask.dtype == bool


def test_color_crop_pastes_mask_on_grey():
    arr = np.zeros((20, 30, 3), dtype=np.uint8)
    arr[..., 0] = 200
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:10, 10:15] = True
    crop = np.asarray(color_crop(Image.fromarray(arr), det("cup", 0.9, (8, 4, 18, 12), mask)))
    assert crop.shape == (8, 10, 3)
    assert (crop[1:6, 2:7] == (200, 0, 0)).all()  # inside the mask: the object
    assert (crop[0] == (153, 153, 153)).all() and (crop[:, 7:] == (153, 153, 153)).all()
    no_mask = np.asarray(color_crop(Image.fromarray(arr), det("cup", 0.9, (8, 4, 18, 12))))
    assert (no_mask == (200, 0, 0)).all()


def test_clip_color_classifier_tiny_random_model():
    import open_clip

    torch.manual_seed(0)
    tiny = open_clip.CLIP(
        embed_dim=16,
        vision_cfg=open_clip.CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=16, image_size=32),
        text_cfg=open_clip.CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    )
    clf = CLIPColorClassifier(device="cpu", model=tiny)
    assert clf.protocol == "geneval-clip-vit-l-14"
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:20, 10:20] = True
    color = clf.classify(image, det("car", 0.9, (5, 5, 25, 25), mask), "car", list(COLORS))
    assert color in COLORS
    assert clf._text[("car", COLORS)].shape == (16, 10)
    # evaluate drives it like any colour backend
    ok, reason = evaluate(image, {"tag": "colors", "include": [{"class": "car", "count": 1, "color": color}],
                                     "prompt": "x"}, {"car": [det("car", 0.9, (5, 5, 25, 25), mask)]}, clf)
    assert ok and reason == ""

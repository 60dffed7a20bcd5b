"""The VLM judge (issue 18): P(yes) from a scripted judge whose logits are known, golden question decomposition,
question files (own, DPG-Bench, GenEval), the task on images and videos end to end, the answer cache, columns in the
leaderboard and CIs in compare, the --judge flag, and sharding under torchrun."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from evalsuite import score
from evalsuite.errors import InputError
from evalsuite.tasks.judge import meta_eval, scoring
from evalsuite.tasks.judge import questions as qs
from evalsuite.tasks.judge import task as judge_task

REPO = Path(__file__).resolve().parent.parent
JUDGE = "python:tests.test_judge:ScriptedJudge"


class ScriptedJudge:
    """Known logits: yes = 0.1 · (len(question) mod 11), no = 2 · (mean pixel / 255) − 1 over the media's frames."""

    protocol = "judge-scripted"
    fingerprint = "f" * 64
    calls = 0

    def yes_no_logits(self, media, questions):
        type(self).calls += len(questions)
        return np.array([[expected_yes(q), expected_no(m)] for m, q in zip(media, questions)])


def expected_yes(question: str) -> float:
    return 0.1 * (len(question) % 11)


def expected_no(media) -> float:
    frames = media if isinstance(media, list) else [media]
    return 2.0 * float(np.mean([np.asarray(f, dtype=np.float64).mean() for f in frames])) / 255.0 - 1.0


@pytest.mark.parametrize("module", [scoring, qs, judge_task, meta_eval])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_p_yes_is_normalised_over_the_two_answers():
    logits = np.array([[0.0, 0.0], [3.0, 1.0], [1000.0, -1000.0], [-1000.0, 1000.0]])
    p = scoring.p_yes(logits)
    assert p.tolist() == pytest.approx([0.5, np.exp(3) / (np.exp(3) + np.exp(1)), 1.0, 0.0])
    assert scoring.p_yes(logits + 123.0).tolist() == pytest.approx(p.tolist())  # only the difference counts
    with pytest.raises(ValueError):
        scoring.p_yes(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError):
        scoring.p_yes(np.zeros((2, 3)))


GOLDEN = {
    "a photo of two red apples to the left of a wooden bowl": [
        ("entity", "Are there apples?"), ("count", "Are there exactly two apples?"),
        ("attribute", "Are the apples red?"), ("entity", "Is there a bowl?"), ("attribute", "Is the bowl wooden?"),
        ("spatial", "Are the apples to the left of the bowl?")],
    'a neon sign that says "OPEN" above a blue door': [
        ("text", 'Does the image contain the text "OPEN"?'), ("entity", "Is there a neon sign?"),
        ("entity", "Is there a door?"), ("attribute", "Is the door blue?"),
        ("spatial", "Is the neon sign above the door?")],
    "three dogs running on the beach": [
        ("entity", "Are there dogs?"), ("count", "Are there exactly three dogs?"), ("action", "Are the dogs running?"),
        ("entity", "Is there a beach?")],
    "A cat sitting on a sofa, with a 'Welcome' sign": [
        ("text", 'Does the image contain the text "Welcome"?'), ("entity", "Is there a cat?"),
        ("action", "Is the cat sitting?"), ("entity", "Is there a sofa?"), ("entity", "Is there a sign?")],
    "a photo of a dog right of a cat": [
        ("entity", "Is there a dog?"), ("entity", "Is there a cat?"),
        ("spatial", "Is the dog to the right of the cat?")],
    "12 eggs in a carton": [
        ("entity", "Are there eggs?"), ("count", "Are there exactly twelve eggs?"), ("entity", "Is there a carton?")],
}


@pytest.mark.parametrize("prompt", list(GOLDEN))
def test_decomposition_is_golden(prompt):
    assert [(q.aspect, q.text) for q in qs.decompose(prompt)] == GOLDEN[prompt]


def test_automatic_set_adds_the_whole_prompt_and_the_quality_questions():
    image = qs.automatic(["a red car"], "image")
    assert image.for_prompt("a red car")[0] == qs.Question("global", 'Does this image show "a red car"?')
    assert [q.aspect for q in image.quality] == ["artifacts", "anatomy"]
    video = qs.automatic(["a red car"], "video")
    assert [q.aspect for q in video.quality] == ["artifacts", "anatomy", "temporal", "motion"]
    assert video.for_prompt("a red car")[0].text == 'Does this video show "a red car"?'
    assert image.sha256 != video.sha256 and image.sha256 == qs.automatic(["a red car"], "image").sha256
    assert qs.automatic(["a red car"], "image", quality=False).quality == []


def test_question_files(tmp_path):
    good = tmp_path / "q.jsonl"
    good.write_text(json.dumps({"prompt": "a cat", "questions": [{"aspect": "entity", "question": "Is there a cat?"}]})
                    + "\n")
    loaded = qs.load(str(good), "image")
    assert loaded.for_prompt("a cat")[0] == qs.Question("entity", "Is there a cat?")
    assert loaded.for_prompt("a dog") is None and loaded.source == "file:q.jsonl"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "a cat", "questions": [{"aspect": "vibes", "question": "Nice?"}]}) + "\n")
    with pytest.raises(InputError, match="bad.jsonl, record 1"):
        qs.load(str(bad), "image")
    with pytest.raises(InputError, match="does not exist"):
        qs.load(str(tmp_path / "missing.jsonl"), "image")


def test_dpg_and_geneval_structures_import(tmp_path):
    csv = tmp_path / "dpg_bench.csv"
    csv.write_text("item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,"
                   "question_natural_language\n"
                   'a1,two cats on a mat,,1,0,entity,whole,"entity - whole (cat)",Are there cats?\n'
                   'a1,two cats on a mat,,2,1,attribute,count,"attribute - count (cat, 2)",Are there two cats?\n'
                   'a1,two cats on a mat,,3,1,relation,spatial,"relation - spatial (cat, mat, on)",Are the cats on '
                   "the mat?\n")
    dpg = qs.load(f"dpg:{csv}", "image", quality=False)
    assert [(q.aspect, q.text) for q in dpg.for_prompt("two cats on a mat")] == [
        ("entity", "Are there cats?"), ("count", "Are there two cats?"), ("spatial", "Are the cats on the mat?")]
    meta = tmp_path / "evaluation_metadata.jsonl"
    meta.write_text("\n".join(json.dumps(m) for m in [
        {"tag": "counting", "include": [{"class": "dog", "count": 3}], "exclude": [{"class": "dog", "count": 4}],
         "prompt": "a photo of three dogs"},
        {"tag": "position", "include": [{"class": "cat", "count": 1},
                                        {"class": "bench", "count": 1, "position": ["left of", 0]}],
         "prompt": "a photo of a bench left of a cat"},
        {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
    ]))
    geneval = qs.load(f"geneval:{meta}", "image", quality=False)
    assert [q.text for q in geneval.for_prompt("a photo of three dogs")] == ["Are there dogs?",
                                                                           "Are there exactly 3 dogs?"]
    assert geneval.for_prompt("a photo of a bench left of a cat")[-1] == qs.Question(
        "spatial", "Is the bench to the left of the cat?")
    assert geneval.for_prompt("a photo of a red car")[-1] == qs.Question("attribute", "Is the car red?")


def _expected(doc: dict) -> dict:
    """The task's numbers recomputed from the files, the automatic questions and the scripted logits."""
    medium = doc["details"]["medium"]
    per_sample = []
    for name, prompt in zip(doc["per_sample"]["name"], doc["per_sample"]["prompt"]):
        questions = qs.prompt_questions(prompt, medium) + qs.quality_questions(medium)
        media: Any
        if medium == "image":
            media = Image.open(name).convert("RGB")
        else:
            from evalsuite.videoio import read_all_frames

            video = read_all_frames(name)
            media = [video[i] for i in judge_task.frame_indices(len(video), 8)]
        p = [1 / (1 + np.exp(expected_no(media) - expected_yes(f"{q.text} {qs.ANSWER_INSTRUCTION}")))
             for q in questions]
        by_aspect: dict = {}
        for q, value in zip(questions, p):
            by_aspect.setdefault(q.aspect, []).append(value)
        per_sample.append({**{a: np.mean(v) for a, v in by_aspect.items()}, "overall": np.mean(p)})
    aspects = {a for s in per_sample for a in s}
    return {f"judge_{a}": np.mean([s[a] for s in per_sample if a in s]) for a in aspects}


def test_task_on_images_end_to_end_and_cached(tmp_path):
    store = tmp_path / "store"
    ScriptedJudge.calls = 0
    run = score("demo", tasks=["vlm-judge"], num_samples=4, store=store, progress=False,
                options={"vlm-judge.judge": JUDGE})
    doc = run["vlm-judge"]
    assert doc["status"] == "ok", doc.get("reason")
    expected = _expected(doc)
    assert set(doc["metrics"]) == set(expected) and {"judge_overall", "judge_global", "judge_artifacts"} <= \
        set(expected)
    for metric, value in expected.items():
        assert doc["metrics"][metric] == pytest.approx(value, rel=1e-9), metric
    assert doc["family"] == "text-image" and doc["num_samples"] == 4
    assert doc["protocol"].startswith("judge-scripted-ffffffffffff-q")
    assert doc["protocol"].endswith(doc["details"]["questions_sha256"][:10])
    header, *prompts = [json.loads(line) for line in (store / doc["artifacts"][0]).read_text().splitlines()]
    assert header["answer_instruction"] == qs.ANSWER_INSTRUCTION and header["quality"]
    assert {p["prompt"] for p in prompts} == set(doc["per_sample"]["prompt"])
    asked = ScriptedJudge.calls
    assert asked == doc["details"]["cache"]["misses"] > 0
    again = score("demo", tasks=["vlm-judge"], num_samples=4, store=store, progress=False,
                  options={"vlm-judge.judge": JUDGE}, seed=0)["vlm-judge"]
    assert ScriptedJudge.calls == asked  # every answer came from the cache
    assert again["details"]["cache"] == {"hits": asked, "misses": 0}
    assert again["metrics"] == doc["metrics"]


def test_task_on_videos(tmp_path):
    run = score("demo-video", tasks=["vlm-judge"], num_samples=2, store=tmp_path / "store", progress=False,
                options={"vlm-judge.judge": JUDGE})
    doc = run["vlm-judge"]
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["family"] == "video" and doc["details"]["medium"] == "video"
    assert {"judge_temporal", "judge_motion"} <= set(doc["metrics"])
    from evalsuite.videoio import read_all_frames

    total = len(read_all_frames(doc["per_sample"]["name"][0]))
    assert total > 8 and doc["details"]["frames"]["per_video"][0] == judge_task.frame_indices(total, 8)
    for metric, value in _expected(doc).items():
        assert doc["metrics"][metric] == pytest.approx(value, rel=1e-9), metric


def test_question_file_drives_generation_and_scoring(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p, "questions": [{"aspect": "entity", "question": q}]})
                              for p, q in [("a red cube", "Is there a cube?"), ("a blue ball", "Is there a ball?")]))
    doc = score("demo", tasks=["vlm-judge"], num_samples=4, store=tmp_path / "store", progress=False,
                options={"vlm-judge.judge": JUDGE, "vlm-judge.questions": str(path),
                         "vlm-judge.quality": False})["vlm-judge"]
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["per_sample"]["prompt"] == ["a red cube", "a blue ball", "a red cube", "a blue ball"]
    assert set(doc["metrics"]) == {"judge_entity", "judge_overall"}
    assert doc["details"]["question_source"] == "file:q.jsonl"


def test_no_judge_is_a_skip_with_the_fix_and_a_bad_one_an_error(tmp_path):
    doc = score("demo", tasks=["vlm-judge"], num_samples=2, store=tmp_path / "s", progress=False)["vlm-judge"]
    assert doc["status"] == "skipped" and "--judge transformers:" in doc["fix"]
    with pytest.raises(InputError):
        score("demo", tasks=["vlm-judge"], num_samples=2, store=tmp_path / "s2", progress=False,
              options={"vlm-judge.judge": "python:tests.test_judge:expected_yes_missing"})
    with pytest.raises(InputError, match="vlm-judge.media"):
        score("demo", tasks=["vlm-judge"], num_samples=2, store=tmp_path / "s3", progress=False,
              options={"vlm-judge.judge": JUDGE, "vlm-judge.media": "audio"})


def test_columns_in_the_leaderboard_and_cis_in_compare(tmp_path):
    from evalsuite.leaderboard.compare import compare
    from evalsuite.leaderboard.data import build_tables
    from evalsuite.results import ResultsStore

    store = tmp_path / "store"
    runs = [score("demo", tasks=["vlm-judge"], num_samples=4, store=store, progress=False, seed=seed,
                  options={"vlm-judge.judge": JUDGE}) for seed in (0, 10)]
    protocol = runs[0]["vlm-judge"]["protocol"]
    assert runs[1]["vlm-judge"]["protocol"] == protocol  # same prompts, same judge: one column
    (table,) = [t for t in build_tables(ResultsStore(store), []) if t.family == "text-image"]
    keys = {c.key for c in table.columns}
    assert {f"vlm-judge [{protocol}]/judge_overall", f"vlm-judge [{protocol}]/judge_entity"} <= keys
    report = compare(store, [r.run_id for r in runs])
    overall = next(r for r in report.rows if r.metric == "judge_overall")
    assert overall.cells[1].ci is not None and overall.cells[1].ci.paired is False  # different samples


def test_the_judge_flag(tmp_path):
    from typer.testing import CliRunner

    from evalsuite.cli import app

    result = CliRunner().invoke(app, ["score", "demo", "--tasks", "vlm-judge", "--judge", JUDGE, "--num-samples", "2",
                                      "--store", str(tmp_path / "store"), "--json", "--workers", "0"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert {r["metric"] for r in rows} >= {"judge_overall", "judge_global"} and rows[0]["status"] == "ok"


def test_two_ranks_equal_one_process(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "evalsuite",
           "score", "demo", "--tasks", "vlm-judge", "--judge", JUDGE, "--num-samples", "4", "--store",
           str(tmp_path / "dist"), "--json", "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from evalsuite.results import ResultsStore

    dist_store = ResultsStore(tmp_path / "dist")
    (run,) = dist_store.runs()
    (doc,) = dist_store.load_run(run["run_id"])
    single = score("demo", tasks=["vlm-judge"], num_samples=4, store=tmp_path / "single", progress=False,
                   options={"vlm-judge.judge": JUDGE})["vlm-judge"]
    assert doc["metrics"] == pytest.approx(single["metrics"], rel=1e-12)
    assert [Path(n).name for n in doc["per_sample"]["name"]] == [Path(n).name for n in single["per_sample"]["name"]]


def _labels(tmp_path) -> Path:
    """Six images whose brightness decides the scripted judge's 'no' logit, and labels that follow it."""
    rows = ["file,prompt,aspect,label"]
    for i, level in enumerate([20, 60, 100, 140, 180, 220]):
        Image.fromarray(np.full((16, 16, 3), level, dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows += [f"{i}.png,a red car,entity,{6 - i}", f"{i}.png,a red car,overall,{(6 - i) % 3}"]
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_judge_eval_correlates_with_labels(tmp_path):
    from scipy.stats import kendalltau, spearmanr

    from evalsuite.tasks.judge.meta_eval import correlations, judge_eval

    report = judge_eval(_labels(tmp_path), JUDGE, n_boot=300, progress=False)
    entity = report.aspects["entity"]
    assert entity["n"] == 6 and entity["spearman"] == pytest.approx(1.0) and entity["kendall"] == pytest.approx(1.0)
    overall = report.aspects["overall"]
    labels = [r.label for r in report.rows if r.aspect == "overall"]
    scores = [s for s, r in zip(report.scores, report.rows) if r.aspect == "overall"]
    assert overall["spearman"] == pytest.approx(spearmanr(scores, labels).statistic)
    assert overall["kendall"] == pytest.approx(kendalltau(scores, labels).statistic)
    low, high = overall["spearman_ci"]
    assert low <= high and report.aspects["all"]["n"] == 12
    # the row's score is the task's: the mean P(yes) of the prompt's entity questions, here "Is there a car?"
    yes = expected_yes(f"Is there a car? {qs.ANSWER_INSTRUCTION}")
    assert report.scores[0] == pytest.approx(1 / (1 + np.exp(expected_no(Image.open(tmp_path / "0.png")) - yes)))
    assert correlations(np.ones(4), np.arange(4), n_boot=100)["spearman"] is None  # constant: undefined


def test_judge_eval_command_and_bad_labels(tmp_path):
    from typer.testing import CliRunner

    from evalsuite.cli import app

    result = CliRunner().invoke(app, ["judge-eval", "--labels", str(_labels(tmp_path)), "--judge", JUDGE,
                                      "--n-boot", "200", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["aspects"]) == {"entity", "overall", "all"} and len(data["rows"]) == 12
    bad = tmp_path / "bad.csv"
    bad.write_text("file,prompt,aspect,label\n0.png,a red car,vibes,1\n")
    result = CliRunner().invoke(app, ["judge-eval", "--labels", str(bad), "--judge", JUDGE])
    assert result.exit_code != 0 and "line 2: aspect 'vibes'" in result.output and "Traceback" not in result.output

"""The 2025-26 metrics are first-class (issue 17): listed by `evalsuite tasks` with what each needs, in the
image-quality and text-image suites, and the demo model runs those suites offline as skips naming the fix."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.tasks import get_suite

NEW_IMAGE_QUALITY = ["cmmd", "fd-dinov2", "aesthetic"]
NEW_TEXT_IMAGE = ["vqascore", "hpsv2", "pickscore", "imagereward", "t2i-compbench"]


def test_suites_hold_the_new_tasks():
    assert set(NEW_IMAGE_QUALITY) <= set(get_suite("image-quality")["tasks"])
    assert set(NEW_TEXT_IMAGE) <= set(get_suite("text-image")["tasks"])


def test_tasks_lists_them_with_what_they_need():
    result = CliRunner().invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["task"]: r for r in json.loads(result.stdout)}
    for task in NEW_IMAGE_QUALITY + NEW_TEXT_IMAGE + ["vlm-judge"]:
        assert task in rows, task
        assert rows[task]["weights"] or "needs" in str(rows[task]["runnable"]), task


def test_demo_runs_the_text_image_suite_as_skips_with_fixes(tmp_path):
    result = CliRunner().invoke(app, ["score", "demo", "--suite", "text-image", "--num-samples", "4",
                                      "--max-prompts", "2", "--store", str(tmp_path / "store"), "--workers", "0",
                                      "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["task"]: r for r in json.loads(result.stdout)["results"]}
    for task in NEW_TEXT_IMAGE:
        assert rows[task]["status"] == "skipped" and rows[task]["fix"], task

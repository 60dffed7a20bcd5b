"""Knobs and variants (issue 16): a model declares what a variant may change; `SPEC?knob=value` selects a variant
whose id names its knob values and weights; the demo's knobs really change its images; `variant-fidelity` scores a
variant against the reference variant at the same prompts and seeds."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from evalsuite import knobs
from evalsuite.errors import InputError
from evalsuite.models import resolve_model
from evalsuite.runner import ScoreOptions, score


def test_doctests():
    result = doctest.testmod(knobs)
    assert result.attempted > 0 and result.failed == 0


def test_grid_is_every_combination_in_order():
    grid = knobs.parse_grid(["steps=1,2,4", "compression=fp16,palettize4"])
    assert grid == {"steps": ["1", "2", "4"], "compression": ["fp16", "palettize4"]}
    variants = knobs.grid_variants(grid)
    assert len(variants) == 6 and variants[0] == {"steps": "1", "compression": "fp16"}
    assert variants[1] == {"steps": "1", "compression": "palettize4"}
    for bad, message in [(["steps"], "is not KNOB=V1"), (["steps=1", "steps=2"], "twice"), (["steps=1,1"], "repeats")]:
        with pytest.raises(InputError, match=message):
            knobs.parse_grid(bad)


def test_a_query_only_counts_when_it_is_knob_pairs():
    assert knobs.split_spec("folder:/data/what?/x") == ("folder:/data/what?/x", {})
    assert knobs.split_spec("python:m:f?steps=4") == ("python:m:f", {"steps": "4"})
    with pytest.raises(InputError, match="sets the knob steps twice"):
        knobs.split_spec("demo?steps=1&steps=2")
    assert knobs.variant_spec("demo", {"steps": 4, "compression": "fp16"}) == "demo?compression=fp16&steps=4"


def test_the_default_variant_keeps_the_model_id_and_others_get_their_variant_id():
    base = resolve_model("demo")
    assert base.model_id == "demo@1"  # results stored before knobs existed stay the same model
    assert base.info["variant"]["id"] == "demo@1?compression=fp32&steps=none"
    two = resolve_model("demo?steps=2")
    sha = two.generator.weights_sha256
    assert len(sha) == 64
    assert two.model_id == two.info["variant"]["id"] == f"demo@1?compression=fp32&steps=2#w={sha[:16]}"
    assert two.info["variant"]["knobs"] == {"steps": 2, "compression": "fp32"}
    assert resolve_model("demo?steps=2").model_id == two.model_id  # deterministic
    assert resolve_model("demo?steps=3").model_id != two.model_id


@pytest.mark.parametrize("spec, message", [
    ("demo?stepz=2", "model demo has no knob stepz"),
    ("demo?steps=two", "demo knob steps is 'two', which is not of type int"),
    ("demo?steps=0", "demo knob steps=0"),
    ("demo?steps=2&compression=int3", "compression='int3' is not one of its values"),
    ("demo?compression=fp16", "needs steps"),
])
def test_bad_knobs_are_one_line_errors_naming_model_and_knob(spec, message):
    with pytest.raises(InputError, match=message) as info:
        resolve_model(spec)
    assert info.value.fix


def test_a_folder_has_no_knobs(tmp_path):
    (tmp_path / "imgs").mkdir()
    with pytest.raises(InputError, match="folder of samples; it has no knobs"):
        resolve_model(f"folder:{tmp_path / 'imgs'}?steps=2")


def test_demo_steps_change_the_image_and_more_steps_come_closer_to_the_ideal_one():
    prompts, seeds = ["two blue squares", "a red circle"], [3, 4]
    ideal = [np.asarray(i, dtype=float) for i in resolve_model("demo").generator.generate(prompts, seeds)]

    def mse(spec):
        images = resolve_model(spec).generator.generate(prompts, seeds)
        return float(np.mean([((np.asarray(a, dtype=float) - b) ** 2).mean() for a, b in zip(images, ideal)]))

    errors = [mse(f"demo?steps={n}") for n in (1, 2, 4, 8)]
    assert errors == sorted(errors, reverse=True) and errors[-1] > 0
    again = resolve_model("demo?steps=2").generator.generate(prompts, seeds)
    assert all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(again, resolve_model("demo?steps=2").generator.generate(prompts, seeds)))


def _fidelity(tmp_path, spec, **task_options):
    opts = ScoreOptions(tasks=["variant-fidelity"], num_samples=4, store=tmp_path / "s", progress=False,
                        task_options={"variant-fidelity": task_options} if task_options else {})
    (doc,) = score(spec, opts).results
    return doc


def test_variant_fidelity_ranks_step_counts_and_is_exact_for_the_reference_itself(tmp_path):
    same = _fidelity(tmp_path, "demo")
    assert same["status"] == "ok" and same["metrics"]["psnr"] == float("inf")
    assert same["metrics"]["ssim"] == pytest.approx(1.0, abs=1e-12)
    psnr = [_fidelity(tmp_path, f"demo?steps={n}")["metrics"]["psnr"] for n in (1, 4)]
    assert psnr[0] < psnr[1] < float("inf")
    doc = _fidelity(tmp_path, "demo?steps=4")
    assert doc["model"]["id"].startswith("demo@1?compression=fp32&steps=4#w=")
    assert doc["details"]["reference"]["model_id"] == "demo@1" and doc["protocol"] == "fidelity-to:demo@1"
    assert len(doc["per_sample"]["psnr"]) == 4
    # another reference variant, by its knobs
    other = _fidelity(tmp_path, "demo?steps=4", reference="?steps=8")
    assert other["details"]["reference"]["model_id"].startswith("demo@1?compression=fp32&steps=8")
    assert other["metrics"]["psnr"] > doc["metrics"]["psnr"]  # 4 steps are closer to 8 steps than to the ideal


def test_variant_fidelity_without_knobs_or_reference_is_skipped_with_the_fix(tmp_path):
    doc = _fidelity(tmp_path, "python:tests.tiny_models:noise_generator")
    assert doc["status"] == "skipped" and "variant-fidelity.reference" in doc["fix"]


def test_cli_lists_a_models_knobs_and_the_error_points_there():
    import json

    from typer.testing import CliRunner

    from evalsuite.cli import app

    result = CliRunner().invoke(app, ["knobs", "demo", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["knob"]: r for r in json.loads(result.output)}
    assert rows["steps"]["default"] is None and rows["steps"]["type"] == "int | none"
    assert rows["compression"]["default"] == "fp32" and "palettize4" in rows["compression"]["values"]
    table = CliRunner().invoke(app, ["knobs", "python:tests.tiny_models:noise_generator"])
    assert table.exit_code == 0 and "declares no knobs" in table.output
    with pytest.raises(InputError) as info:
        resolve_model("demo?steps=zero")
    assert "`evalsuite knobs MODEL`" in info.value.fix

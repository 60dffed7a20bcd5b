"""Sample store: content-addressed PNGs, reruns reuse them, interrupted generation resumes with only the missing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from evalsuite.models import resolve_model
from evalsuite.samples import SampleStore, make_requests
from tests.tiny_models import NoiseGenerator


class Interrupted(RuntimeError):
    pass


class FailingAfter(NoiseGenerator):
    """Dies (like a killed job) once it has produced `limit` images."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    def generate(self, prompts, seeds):
        if len(self.calls) >= self.limit:
            raise Interrupted("simulated crash")
        return super().generate(prompts, seeds)


def test_resume_generates_only_missing_and_same_samples(tmp_path):
    requests = make_requests(["a", "b", "c"], 20, seed=100)
    # an uninterrupted run in one store
    clean_store = SampleStore(tmp_path / "clean", NoiseGenerator.model_id)
    clean_paths, n_clean = clean_store.ensure(NoiseGenerator(), requests, batch_size=4, progress=False)
    assert n_clean == 20
    # an interrupted run in another, then a rerun
    store = SampleStore(tmp_path / "resumed", NoiseGenerator.model_id)
    with pytest.raises(Interrupted):
        store.ensure(FailingAfter(8), requests, batch_size=4, progress=False)
    assert len(store.missing(requests)) == 12
    assert not list(store.dir.rglob("*.tmp"))  # nothing half-written
    gen = NoiseGenerator()
    paths, generated = store.ensure(gen, requests, batch_size=4, progress=False)
    assert generated == 12
    assert gen.calls == [(r.prompt, r.seed) for r in requests[8:]]
    for p, q in zip(paths, clean_paths):
        assert p.relative_to(store.dir) == q.relative_to(clean_store.dir)
        assert p.read_bytes() == q.read_bytes()
    # a third run generates nothing
    again = NoiseGenerator()
    _, generated = store.ensure(again, requests, batch_size=4, progress=False)
    assert generated == 0 and again.calls == []
    entries = store.entries()
    assert len(entries) == 20
    assert {(e["prompt"], e["seed"]) for e in entries} == {(r.prompt, r.seed) for r in requests}


def test_paths_depend_on_model_prompt_and_seed(tmp_path):
    a = SampleStore(tmp_path, "model-a")
    b = SampleStore(tmp_path, "model-b")
    r1, r2, r3 = make_requests(["x", "y"], 2, 0) + make_requests(["x"], 1, 5)
    assert len({a.path_for(r1), a.path_for(r2), a.path_for(r3), b.path_for(r1)}) == 4
    assert a.path_for(r1) == SampleStore(tmp_path, "model-a").path_for(r1)


def test_demo_is_deterministic_and_prompt_driven():
    gen = resolve_model("demo").generator
    one = np.asarray(gen.generate(["three red circles"], [7])[0])
    assert np.array_equal(one, np.asarray(gen.generate(["three red circles"], [7])[0]))
    assert not np.array_equal(one, np.asarray(gen.generate(["three red circles"], [8])[0]))
    assert not np.array_equal(one, np.asarray(gen.generate(["two blue squares"], [7])[0]))
    # red shapes: some pixels are exactly the prompt's colour
    assert ((one == (220, 40, 40)).all(axis=2)).sum() > 20


def test_score_generator_reuses_samples(tmp_path):
    from evalsuite.runner import ScoreOptions, score

    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(10):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(ref / f"{i}.png")
    opts = dict(tasks=["fid"], extractor="python:tests.tiny_models:tiny_uint8", ref=f"folder:{ref}",
                num_samples=12, num_workers=0, progress=False)
    first = score("python:tests.tiny_models:noise_generator", ScoreOptions.with_legacy(**opts))
    second = score("python:tests.tiny_models:noise_generator", ScoreOptions.with_legacy(**opts))
    assert first.results[0]["provenance"]["samples_generated_this_run"] == 12
    assert second.results[0]["provenance"]["samples_generated_this_run"] == 0
    assert first.results[0]["metrics"] == second.results[0]["metrics"]
    manifest = list((tmp_path / "store" / "samples").glob("*/manifest.jsonl"))
    assert len(manifest) == 1
    assert json.loads(manifest[0].read_text().splitlines()[0])["model_id"] == "test-noise@1"

"""Per-image scores are cached by (scorer identity, image content, prompt) (issue 20 item 4): a second run of a
text-image task over the same images asks the model nothing and gives the same numbers; a changed image, another
scorer identity or an in-memory model without a weights digest are scored again."""

from __future__ import annotations

import doctest

import pytest
from PIL import Image

from evalsuite import score, score_cache
from evalsuite.errors import InputError
from evalsuite.score_cache import scorer_identity
from evalsuite.tasks.t2i import clipscore as clipscore_module


def test_doctests():
    result = doctest.testmod(score_cache)
    assert result.attempted > 0 and result.failed == 0


def test_second_run_reads_every_score_from_the_cache(tmp_path, tiny_openai_clip, monkeypatch):
    store = tmp_path / "store"
    calls = {"n": 0}
    real = clipscore_module.CLIPScorer.score

    def counted(self, images, prompts):
        calls["n"] += len(images)
        return real(self, images, prompts)

    built = {"n": 0}
    real_init = clipscore_module.CLIPScorer.__init__

    def counted_init(self, *args, **kwargs):
        built["n"] += 1
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(clipscore_module.CLIPScorer, "score", counted)
    monkeypatch.setattr(clipscore_module.CLIPScorer, "__init__", counted_init)
    first = score("demo", tasks=["clipscore"], num_samples=6, store=store, progress=False)["clipscore"]
    assert first["status"] == "ok", first.get("reason")
    assert calls["n"] == 6 and first["details"]["cached_samples"] == 0 and built["n"] == 1
    again = score("demo", tasks=["clipscore"], num_samples=6, store=store, progress=False)["clipscore"]
    assert calls["n"] == 6 and again["details"]["cached_samples"] == 6  # the model was not asked again
    assert built["n"] == 1  # nor even loaded: the cache is keyed by the weights store's digest
    assert again["metrics"] == first["metrics"] and again["per_sample"] == first["per_sample"]
    assert again["provenance"]["weights_sha256"] == first["provenance"]["weights_sha256"]



def test_a_changed_image_is_scored_again(tmp_path, tiny_openai_clip):
    import json

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 40), (60 * i, 20, 200 - 40 * i)).save(folder / f"{i}.png")
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"file": f"{i}.png", "prompt": f"a shape {i}"}) + "\n"
                                                  for i in range(4)))
    run = lambda: score(f"folder:{folder}", tasks=["clipscore"], store=tmp_path / "store",  # noqa: E731
                        progress=False)["clipscore"]
    first = run()
    assert first["details"]["cached_samples"] == 0 and run()["details"]["cached_samples"] == 4
    Image.new("RGB", (40, 40), (255, 255, 0)).save(folder / "2.png")
    third = run()
    assert third["details"]["cached_samples"] == 3
    assert third["per_sample"]["clipscore"][2] != first["per_sample"]["clipscore"][2]
    assert third["per_sample"]["clipscore"][:2] == first["per_sample"]["clipscore"][:2]


def test_identity_keys_what_changes_the_number():
    class Task:
        name, version, options = "clipscore", "2", None

    class Scorer:
        protocol, weights_sha256 = "clipscore-openai-vit-b-32", "a" * 64

    class Ctx:
        device = "cpu"

    base = scorer_identity(Task(), Scorer(), Ctx())
    assert base is not None and base["weights"] == "a" * 64 and base["device"] == "cpu"
    cuda = type("Ctx", (), {"device": "cuda"})()
    assert scorer_identity(Task(), Scorer(), cuda) != base
    no_digest = type("Scorer", (), {"protocol": "p", "weights_sha256": None})()
    assert scorer_identity(Task(), no_digest, Ctx()) is None  # an in-memory model: never cached


def test_a_damaged_or_linked_entry_is_ignored(tmp_path):
    cache = score_cache.ScoreCache({"t": 1}, root=tmp_path)
    sha = "ab" * 32
    cache.put_many(sha, {"p": 1.5})
    path = cache._path(sha)
    path.write_text("{not json")
    assert cache.get(sha, "p") is None
    path.unlink()
    target = tmp_path / "elsewhere.json"
    target.write_text('{"x": 1}')
    path.symlink_to(target)
    assert cache.get(sha, "p") is None
    with pytest.raises(InputError):
        cache.put_many(sha, {"p": 2.0})  # never writes through a link
    assert target.read_text() == '{"x": 1}'

"""The text-image tasks' layout (issue 15): GenEval and DPG-Bench each in one folder with their task classes, no
module there over 400 lines, and the old import paths (`evalsuite.tasks.t2i.geneval`, `evalsuite.tasks.t2i.dpg`,
`evalsuite.tasks.text_image`) still giving the same objects."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from evalsuite.task import BUILTIN_TASK_MODULES, TASKS

TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"


@pytest.mark.parametrize("folder", ["geneval", "dpg", "t2i"])
def test_no_module_over_400_lines(folder):
    for path in sorted((TASKS_DIR / folder).glob("*.py")):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 400, path


@pytest.mark.parametrize("task, module", [("geneval", "evalsuite.tasks.geneval.task"),
                                          ("counting", "evalsuite.tasks.geneval.counting_task"),
                                          ("dpg-bench", "evalsuite.tasks.dpg.task"),
                                          ("clipscore", "evalsuite.tasks.text_image")])
def test_each_task_class_lives_in_its_folder(task, module):
    assert module in BUILTIN_TASK_MODULES
    assert TASKS.get(task).__module__ == module


@pytest.mark.parametrize("shim, homes", [
    ("evalsuite.tasks.t2i.geneval", ["evalsuite.tasks.geneval.prompts", "evalsuite.tasks.geneval.scoring",
                                     "evalsuite.tasks.geneval.detectors", "evalsuite.tasks.geneval.color_classifier",
                                     "evalsuite.tasks.t2i.backends"]),
    ("evalsuite.tasks.t2i.dpg", ["evalsuite.tasks.dpg.prompts", "evalsuite.tasks.dpg.scoring",
                                 "evalsuite.tasks.dpg.images", "evalsuite.tasks.dpg.vqa"]),
    ("evalsuite.tasks.text_image", ["evalsuite.tasks.text_image", "evalsuite.tasks.geneval.task",
                                    "evalsuite.tasks.geneval.counting_task", "evalsuite.tasks.dpg.task",
                                    "evalsuite.tasks.t2i.task_helpers"]),
])
def test_old_import_paths_reexport_the_same_objects(shim, homes):
    module = importlib.import_module(shim)
    owners = [importlib.import_module(h) for h in homes]
    for name in module.__all__:
        obj = getattr(module, name)
        assert any(getattr(owner, name, None) is obj for owner in owners), name


def test_backends_load_from_the_new_modules():
    from evalsuite.tasks.t2i import backends

    assert backends.BACKENDS["detector"].builtin_modules == ("evalsuite.tasks.geneval.detectors",)
    assert backends.BACKENDS["color"].builtin_modules == ("evalsuite.tasks.geneval.color_classifier",)
    assert backends.BACKENDS["vqa"].builtin_modules == ("evalsuite.tasks.dpg.vqa",)
    assert {"mask2former", "torchvision-maskrcnn"} <= set(backends.registered("detector"))
    assert "clip-vit-l-14" in backends.registered("color")
    assert {"mplug", "transformers"} <= set(backends.registered("vqa"))

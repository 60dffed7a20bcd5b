"""The task registry: a task is a small declared unit (name, version, family, sample kind, metrics with their
direction, the weights and reference statistics it needs) with one `run(ctx)`; the CLI discovers them here.

Built-in task modules are listed in BUILTIN_MODULES; third-party packages add theirs through the
`evalsuite.tasks` entry-point group (each entry point names a module that registers tasks on import).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from evalsuite.errors import UnknownNameError
from evalsuite.tasks.base import MetricInfo, Task, TaskOutput

BUILTIN_MODULES = ("evalsuite.tasks.image_quality", "evalsuite.tasks.autoencoder", "evalsuite.tasks.text_image",
                   "evalsuite.tasks.video_native", "evalsuite.tasks.video_fvd", "evalsuite.tasks.video_vbench")

_TASKS: dict[str, type[Task]] = {}
_SUITES: dict[str, dict] = {}
_loaded = False


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task to the registry under `cls.name`."""
    if cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task '{cls.name}' is registered twice")
    _TASKS[cls.name] = cls
    return cls


def register_suite(name: str, tasks: list[str], description: str, options: dict | None = None) -> None:
    """A named list of tasks with default options (e.g. the reference to compare against)."""
    _SUITES[name] = {"name": name, "tasks": list(tasks), "description": description, "options": options or {}}


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group="evalsuite.tasks"):
        importlib.import_module(ep.value)
    _loaded = True


def all_tasks() -> list[type[Task]]:
    _load()
    return [_TASKS[k] for k in sorted(_TASKS)]


def get(name: str) -> type[Task]:
    _load()
    if name not in _TASKS:
        raise UnknownNameError(f"unknown task '{name}'",
                               f"known tasks: {', '.join(sorted(_TASKS))} (`evalsuite tasks`)")
    return _TASKS[name]


def suites() -> list[dict]:
    _load()
    return [_SUITES[k] for k in sorted(_SUITES)]


def get_suite(name: str) -> dict:
    _load()
    if name not in _SUITES:
        raise UnknownNameError(f"unknown suite '{name}'", f"known suites: {', '.join(sorted(_SUITES))}")
    return _SUITES[name]


__all__ = ["MetricInfo", "Task", "TaskOutput", "register", "register_suite", "all_tasks", "get", "suites",
           "get_suite"]

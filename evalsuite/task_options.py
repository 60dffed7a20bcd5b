"""Options that belong to a task: read from `-o TASK.NAME=VALUE` (one task) and `-o NAME=VALUE` (every task of the
run that declares NAME), checked against each task's `Options` dataclass, converted to the declared type, and
built into the instance the task reads as `self.options`.

The run stores what was asked (`ScoreOptions.task_options`: `{"*": {NAME: VALUE}, TASK: {NAME: VALUE}}`) and each
result stores its task's resolved options (provenance `task_options`).

>>> from evalsuite.task_options import parse_assignments
>>> parse_assignments(["geneval.detector=torchvision-maskrcnn", "images_per_prompt=2"])
{'geneval': {'detector': 'torchvision-maskrcnn'}, '*': {'images_per_prompt': '2'}}
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from evalsuite.errors import InputError

if TYPE_CHECKING:
    from evalsuite.task import Task

ALL_TASKS = "*"  # the key of settings that apply to every task of the run declaring the option
LIST_FIX = "`evalsuite tasks --options` lists every task's options"

# the flags (and ScoreOptions fields) that set task options before options belonged to tasks: they still work, as
# aliases of these settings ("NAME": every task declaring NAME; "TASK.NAME": that task only)
LEGACY_ALIASES: dict[str, str] = {
    "biased_cov": "biased_cov",
    "kid_subsets": "kid.subsets",
    "kid_subset_size": "kid.subset_size",
    "pr_neighbourhood": "precision-recall.k",
    "pr_extractor": "precision-recall.extractor",
    "data": "data",
    "resolution": "resolution",
    "frames": "frames",
    "dct_block": "spectral.dct_block",
    "images_per_prompt": "images_per_prompt",
    "max_prompts": "max_prompts",
    "detector": "detector",
    "color": "geneval.color",
    "vqa": "dpg-bench.vqa",
    "dpg": "dpg-bench.dpg",
    "clip_backbone": "clipscore.backbone",
    "geneval_missing_as_failure": "geneval.missing_as_failure",
    "frame_stride": "frame_stride",
    "frame_start": "frame_start",
    "vbench_frames": "vbench_frames",
    "fvd_max_real": "fvd.max_real",
    "vbench_python": "vbench.python",
    "judge": "vlm-judge.judge",
}
# the command-line flags of those aliases, where the flag is not the name in --kebab-case (None: no flag)
_LEGACY_FLAGS: dict[str, str | None] = {"pr_neighbourhood": "--pr-k", "kid_subsets": None, "kid_subset_size": None}


def legacy_flag(old: str) -> str | None:
    """The command-line flag of an old option name (None when it had none)."""
    return _LEGACY_FLAGS.get(old, "--" + old.replace("_", "-"))


def parse_assignments(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """`-o` arguments (`TASK.NAME=VALUE` or `NAME=VALUE`) as {TASK or "*": {NAME: VALUE}}; values stay strings
    until `resolve` converts them to the declared types."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"-o {item!r} is not NAME=VALUE", "write -o TASK.NAME=VALUE (e.g. -o "
                             "geneval.detector=torchvision-maskrcnn) or -o NAME=VALUE for every task; " + LIST_FIX)
        task, dot, name = key.rpartition(".")
        add(out, task if dot else ALL_TASKS, name, value.strip())
    return out


def add(settings: dict[str, dict[str, Any]], task: str, name: str, value: Any) -> None:
    """Set one option (`task` "*" for every task declaring it); setting one twice to different values is an error."""
    if not name.isidentifier():
        raise InputError(f"option name {name!r} is not an identifier", LIST_FIX)
    held = settings.setdefault(task, {})
    if name in held and held[name] != value:
        where = name if task == ALL_TASKS else f"{task}.{name}"
        raise InputError(f"option {where} was given twice ({held[name]!r} and {value!r})", "give it once")
    held[name] = value


def from_legacy(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Task settings from the old flat option names (`--detector X`, `kid_subsets=50`, a manifest stored before
    options belonged to tasks)."""
    out: dict[str, dict[str, Any]] = {}
    for old, value in values.items():
        task, dot, name = LEGACY_ALIASES[old].rpartition(".")
        add(out, task if dot else ALL_TASKS, name, value)
    return out


def merge(*settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Several settings dicts as one (a setting given twice with different values is an error)."""
    out: dict[str, dict[str, Any]] = {}
    for one in settings:
        for task, values in one.items():
            for name, value in values.items():
                add(out, task, name, value)
    return out


def fields_of(task_cls: type) -> list[dataclasses.Field]:
    """The declared options of a task class."""
    options = getattr(task_cls, "Options", None)
    return list(dataclasses.fields(options)) if options is not None and dataclasses.is_dataclass(options) else []


def check(settings: Mapping[str, Mapping[str, Any]], run_tasks: Iterable[type[Task]],
          all_tasks: Iterable[type[Task]]) -> None:
    """Refuse, before any work: a TASK.NAME whose task does not exist or does not declare NAME, and a NAME no
    registered task declares. (A NAME declared only by tasks outside this run is accepted: a suite's flags apply to
    the tasks that read them.)"""
    by_name = {t.name: t for t in all_tasks}
    declared_anywhere = {f.name for t in by_name.values() for f in fields_of(t)}
    for task, values in settings.items():
        if task == ALL_TASKS:
            unknown = sorted(set(values) - declared_anywhere)
            if unknown:
                raise InputError(f"no task has an option named {', '.join(unknown)}", LIST_FIX)
            continue
        if task not in by_name:
            raise InputError(f"-o {task}.{next(iter(values))}: there is no task named {task!r}",
                             f"known tasks: {', '.join(sorted(by_name))}")
        names = {f.name for f in fields_of(by_name[task])}
        unknown = sorted(set(values) - names)
        if unknown:
            have = ", ".join(sorted(names)) or "none"
            raise InputError(f"task {task} has no option {', '.join(unknown)}", f"its options: {have}; " + LIST_FIX)
    for cls in run_tasks:  # convert now: a bad value fails before any work, naming the option
        resolve(cls, settings)


def resolve(task_cls: type[Task], settings: Mapping[str, Mapping[str, Any]]) -> Any:
    """The task's `Options` instance: its defaults, overridden by the run's "*" settings it declares, then by the
    settings addressed to it by name; each value converted to the declared type (strings from the command line)."""
    options_cls = getattr(task_cls, "Options", None)
    if options_cls is None or not (isinstance(options_cls, type) and dataclasses.is_dataclass(options_cls)):
        return None if options_cls is None else options_cls()
    hints = typing.get_type_hints(options_cls)
    declared = {f.name for f in dataclasses.fields(options_cls)}
    values = {k: v for k, v in settings.get(ALL_TASKS, {}).items() if k in declared}
    values.update(settings.get(task_cls.name, {}))
    kwargs = {k: convert(v, hints[k], f"{task_cls.name}.{k}") for k, v in values.items()}
    return options_cls(**kwargs)


def as_json(options: Any) -> dict:
    """A resolved options instance as stored in a result's provenance."""
    if options is None or not dataclasses.is_dataclass(options) or isinstance(options, type):
        return {}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(options).items()}


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def convert(value: Any, annotation: Any, where: str) -> Any:
    """`value` as the declared type: `int`, `float`, `bool`, `str`, `Path`, or one of them or None (`X | None`).
    Strings (the command line's) are parsed; other values must already have the type (an int is taken as a
    float). Anything else is an error naming the option."""
    args = typing.get_args(annotation)
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        (annotation,) = [a for a in args if a is not type(None)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
    else:
        return value  # a type this module does not parse: the task checks it
    kind = getattr(annotation, "__name__", str(annotation)) + (" or none" if optional else "")
    raise InputError(f"option {where} is {value!r}, which is not of type {kind}",
                     f"pass a value of type {kind}; " + LIST_FIX)


def describe(task_cls: type[Task]) -> list[dict]:
    """The options of a task for `evalsuite tasks --options`: name, type, default, help."""
    options_cls = getattr(task_cls, "Options", None)
    if options_cls is None or not dataclasses.is_dataclass(options_cls):
        return []
    hints = typing.get_type_hints(options_cls)
    rows = []
    for f in dataclasses.fields(options_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        kind = hints[f.name]
        rows.append({"task": task_cls.name, "option": f.name, "type": _type_name(kind),
                     "default": str(default) if isinstance(default, Path) else default,
                     "help": f.metadata.get("help", ""),
                     "aliases": sorted(flag for old, new in LEGACY_ALIASES.items()
                                       if new in (f.name, f"{task_cls.name}.{f.name}")
                                       and (flag := legacy_flag(old)) is not None)})
    return rows


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join("none" if a is type(None) else _type_name(a) for a in args)
    return getattr(annotation, "__name__", str(annotation))

"""The built-in tasks (`evalsuite.tasks.*`: one module per task family). The task contract and the one registry
of tasks and suites live in the core (`evalsuite.task`); the names are re-exported here because task modules and
plugins import them from `evalsuite.tasks`. Third-party packages add tasks through the `evalsuite.tasks`
entry-point group (each entry point names a module that registers its tasks on import).
"""

from __future__ import annotations

from evalsuite.task import (
    BUILTIN_TASK_MODULES,
    MetricInfo,
    NoOptions,
    Requirements,
    Task,
    TaskOutput,
    all_tasks,
    get,
    get_suite,
    register,
    register_suite,
    suites,
)

BUILTIN_MODULES = BUILTIN_TASK_MODULES

__all__ = ["BUILTIN_MODULES", "MetricInfo", "NoOptions", "Requirements", "Task", "TaskOutput", "all_tasks", "get",
           "get_suite", "register", "register_suite", "suites"]

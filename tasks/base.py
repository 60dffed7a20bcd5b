"""The task contract's classes, re-exported from the core (`evalsuite.task`), where they live."""

from evalsuite.task import MetricInfo, NoOptions, Requirements, Task, TaskOutput

__all__ = ["MetricInfo", "NoOptions", "Requirements", "Task", "TaskOutput"]

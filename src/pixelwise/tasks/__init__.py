"""Pixelwise tasks: what a head predicts (class labels, metric depth, boundaries) and everything
that follows from it -- decoder, loss, prediction, metric, output files.  See ``base.py``."""

from .base import (
    HeadSpec,
    Metric,
    Task,
    check_heads,
    check_task_options,
    get_task,
    head_specs,
    head_tasks,
    list_tasks,
    register_task,
)

__all__ = [
    "HeadSpec",
    "Metric",
    "Task",
    "check_heads",
    "check_task_options",
    "get_task",
    "head_specs",
    "head_tasks",
    "list_tasks",
    "register_task",
]

"""Task types (tasks/base.py: the contract and registry) and the built-in ones, registered on import."""

import importlib
import importlib.util

from leanbert.tasks.base import (
    TASK_TYPES,
    EncodedTask,
    PredictSpec,
    TaskRequest,
    TaskType,
    get_task_type,
    other_task_names,
    register_task_type,
    task_type_for,
    task_type_of,
)

# One module per built-in type; each registers itself. A name whose file is not (yet) there is skipped.
BUILT_IN = ("sequence", "qa", "token", "choice")
for _name in BUILT_IN:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")

__all__ = ["TASK_TYPES", "EncodedTask", "PredictSpec", "TaskRequest", "TaskType", "get_task_type", "other_task_names",
           "register_task_type", "task_type_for", "task_type_of"]

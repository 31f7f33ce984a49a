"""The task stage's labels must be the teacher's, by name: the student learns the teacher's logits position by
position, so the task's label i must mean the teacher's label i.

The teacher's label names are the ones ``leanbert finetune`` saved with it (``task.labels`` in its
config.json). A task whose names differ (a teacher fine-tuned on ``0/1``, a task labelled ``neg/pos``) is
refused unless ``data.label_map`` says which teacher label each task label is (``data.label_map={neg: 0,
pos: 1}``, or ``data.label_map=neg:0,pos:1``); matching them by position would train silently on swapped
labels whenever the two orders differ. The task's examples are then renumbered into the teacher's order; the
outputs keep the task's names (f1's positive class is the second label in the teacher's order).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from leanbert.config import ConfigError
from leanbert.errors import UserError
from leanbert.model_dir import read_model_config
from leanbert.tasks import get_task_type
from leanbert.tasks.glue import TaskData

KEY = "data.label_map"


def parse_label_map(value: Any) -> dict[str, str]:
    """``{task label: teacher label}`` from a mapping or ``"a:x,b:y"`` (YAML reads ``{a:x}`` without spaces as a
    key ``"a:x"`` with no value, so that form is taken apart too)."""
    if value is None or value == {}:
        return {}
    if isinstance(value, str):
        value = dict.fromkeys(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, dict):
        raise ConfigError(f"{KEY}={value!r} must be a mapping of task label to teacher label, e.g. "
                          f"{KEY}={{neg: 0, pos: 1}}")
    out: dict[str, str] = {}
    for key, target in value.items():
        if target is None and isinstance(key, str) and ":" in key:
            key, target = (part.strip() for part in key.split(":", 1))
        if isinstance(target, bool) or not isinstance(target, str | int) or str(target) == "":
            raise ConfigError(f"{KEY}: task label {key!r} maps to {target!r}; expected a teacher label such as "
                              f"0 or pos")
        out[str(key)] = str(target)
    return out


def teacher_labels(teacher_dir: str | Path, num_labels: int) -> tuple[str, ...] | None:
    """The label names the teacher was fine-tuned with, or None when its directory records none."""
    task = read_model_config(teacher_dir)[1].get("task")
    labels = task.get("labels") if isinstance(task, dict) else None
    if not isinstance(labels, list) or len(labels) != num_labels:
        return None
    return tuple(str(label) for label in labels)


def align_task_labels(task: TaskData, teacher: tuple[str, ...] | None, label_map: dict[str, str],
                      teacher_dir: str | Path) -> TaskData:
    """``task`` with its labels numbered in the teacher's order (module docstring); refused when they differ."""
    if not get_task_type(task.kind).named_classes:  # QA has no classes; tag and option labels are not renumbered
        if label_map:
            raise UserError(f"{KEY} is for sentence classification; the task is a {task.kind} task")
        return task
    ours = task.spec.labels
    if ours is None or teacher is None:
        if label_map:
            what = "is a regression task" if ours is None else f"teacher {teacher_dir} records no label names"
            raise UserError(f"{KEY} is set but the {what}; remove {KEY}")
        return task
    unknown = [key for key in label_map if key not in ours]
    if unknown:
        raise UserError(f"{KEY}: {unknown[0]!r} is not a label of the task (its labels: {', '.join(ours)})")
    mapped = [label_map.get(label, label) for label in ours]
    if sorted(mapped) != sorted(teacher):
        example = ",".join(f"{a}:{b}" for a, b in zip(ours, teacher))
        raise UserError(f"--teacher {teacher_dir} was fine-tuned on labels {', '.join(teacher)} but the task's "
                        f"labels are {', '.join(mapped)}; say which teacher label each task label is with "
                        f"{KEY}, e.g. {KEY}={example}")
    index = [teacher.index(name) for name in mapped]  # task label i -> teacher position
    if index == list(range(len(index))):
        return task
    names = [""] * len(ours)
    for i, j in enumerate(index):
        names[j] = ours[i]

    def renumber(examples: list) -> list:
        return [dataclasses.replace(e, label=index[e.label]) for e in examples]

    spec = dataclasses.replace(task.spec, labels=tuple(names))
    return TaskData(spec, renumber(task.train), {split: renumber(rows) for split, rows in task.dev.items()})

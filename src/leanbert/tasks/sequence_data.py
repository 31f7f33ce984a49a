"""One entry point for the ``finetune`` command: a GLUE task from ``--data`` or ``--task custom`` files."""

from __future__ import annotations

from pathlib import Path

from leanbert.errors import UserError
from leanbert.tasks.custom import load_custom
from leanbert.tasks.glue import TaskData, load_task


def load_task_data(task: str, data: str | Path | None = None, train: str | Path | None = None,
                   dev: str | Path | None = None, text_columns: str | None = None,
                   label_column: str | None = None, regression: bool = False) -> TaskData:
    """``task`` is a GLUE name (needs ``data``) or ``custom`` (needs train, dev, text_columns and
    label_column). Flags that belong to the other kind are an error rather than silently ignored."""
    custom_flags = {"--train": train, "--dev": dev, "--text-columns": text_columns,
                    "--label-column": label_column}
    if task.strip().lower() == "custom":
        missing = [flag for flag, value in custom_flags.items() if value is None]
        if missing:
            raise UserError(f"--task custom needs {', '.join(missing)} "
                            "(e.g. --train train.csv --dev dev.csv --text-columns text --label-column label)")
        if data is not None:
            raise UserError("--data is for GLUE tasks; --task custom reads --train and --dev")
        return load_custom(train, dev, text_columns, label_column, regression=regression)
    given = [flag for flag, value in custom_flags.items() if value is not None]
    if regression:
        given.append("--regression")
    if given:
        raise UserError(f"{', '.join(given)} only apply to --task custom; task {task!r} is read from --data")
    if data is None:
        raise UserError(f"--task {task} needs --data DIR (the GLUE folder or the task's own folder)")
    return load_task(task, data)

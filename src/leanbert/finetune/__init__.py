"""Fine-tuning: GLUE-format and custom TSV/CSV/JSONL tasks, their encoding into Batches and metrics, and the
task job (``task_job.TaskJob``) that trains any objective on a task and writes OUT_DIR; ``run.finetune`` is
the ``leanbert finetune`` command's library function. Scoring a model lives in ``leanbert.inference``."""

from leanbert.finetune.config import Recipe
from leanbert.finetune.custom import load_custom
from leanbert.finetune.data import load_task_data
from leanbert.finetune.encode import Collator, Features, PairEncoder, iterate_batches, load_any_tokenizer
from leanbert.finetune.metrics import aggregate_seeds, compute_metrics, predictions_from_logits
from leanbert.finetune.tasks import (
    GLUE_TASKS,
    TASK_NAMES,
    Example,
    TaskData,
    TaskSpec,
    get_task,
    load_task,
)

__all__ = [
    "GLUE_TASKS", "TASK_NAMES", "Collator", "Example", "Features", "PairEncoder", "Recipe", "TaskData",
    "TaskSpec", "aggregate_seeds", "compute_metrics", "get_task", "iterate_batches", "load_any_tokenizer",
    "load_custom", "load_task", "load_task_data", "predictions_from_logits",
]

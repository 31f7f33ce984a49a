"""Fine-tuning data and metrics: GLUE-format tasks, custom TSV/CSV/JSONL tasks, encoding into Batches,
and the GLUE metrics. The training loop lives elsewhere; this package only feeds and scores it."""

from leanbert.finetune.custom import load_custom
from leanbert.finetune.data import load_task_data
from leanbert.finetune.encode import Collator, Features, PairEncoder, iterate_batches, load_tokenizer
from leanbert.finetune.metrics import aggregate_seeds, compute_metrics, predictions_from_logits
from leanbert.finetune.tasks import (
    GLUE_TASKS,
    TASK_NAMES,
    Example,
    Recipe,
    TaskData,
    TaskSpec,
    get_task,
    load_task,
)

__all__ = [
    "GLUE_TASKS", "TASK_NAMES", "Collator", "Example", "Features", "PairEncoder", "Recipe", "TaskData",
    "TaskSpec", "aggregate_seeds", "compute_metrics", "get_task", "iterate_batches", "load_custom",
    "load_task", "load_task_data", "load_tokenizer", "predictions_from_logits",
]

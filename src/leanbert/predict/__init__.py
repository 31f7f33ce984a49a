"""``leanbert predict``: run a fine-tuned model over a file. classifier.py: sequence classifiers (and
``predict_file``, which hands a task type with its own ``PredictSpec`` to tasks.py); tasks.py: QA, NER,
multiple choice and any type that reads and formats its own input and output."""

from leanbert.predict.classifier import (
    CHECK_ROWS,
    check_out_file,
    check_precision,
    format_predictions,
    open_predictor,
    predict_file,
    read_examples,
    read_file_examples,
    read_gold,
    read_stdin_examples,
    softmax,
)
from leanbert.predict.tasks import STDIN, predict_task_file, saved_heads, write_output

__all__ = ["CHECK_ROWS", "STDIN", "check_out_file", "check_precision", "format_predictions", "open_predictor",
           "predict_file", "predict_task_file", "read_examples", "read_file_examples", "read_gold",
           "read_stdin_examples", "saved_heads", "softmax", "write_output"]

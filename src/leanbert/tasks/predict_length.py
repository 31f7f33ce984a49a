"""The sequence length ``leanbert predict`` encodes with, for task types with their own predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanbert.safe_io import read_json_object

DEFAULT_MAX_LEN = 512  # BERT's usual limit, when the model saved no fine-tuning length


def predict_max_len(model_dir: Path, task_meta: dict[str, Any]) -> int:
    """The fine-tuning ``max_seq_len`` the model saved, else 512; never beyond the model's ``max_positions``
    (read from a leanbert or ONNX config.json in ``model_dir``, which a Hugging Face model is imported into)."""
    saved = task_meta.get("max_seq_len")
    length = saved if isinstance(saved, int) and not isinstance(saved, bool) else DEFAULT_MAX_LEN
    config = model_dir / "config.json"
    model = read_json_object(config, "a model config").get("model") if config.is_file() else None
    positions = model.get("max_positions") if isinstance(model, dict) else None
    return min(length, positions) if isinstance(positions, int) and positions > 0 else length

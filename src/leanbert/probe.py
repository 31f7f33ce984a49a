"""Linear probes of frozen features: how much does an encoder already know about a task, before fine-tuning?

A logistic regression (scikit-learn) is fitted on features of the task's training examples and scored on the
dev set: the mean over real tokens of every hidden state (``mean0`` = the embeddings, ``mean<L>`` = the last
layer) and the last layer's [CLS] vector (``cls``). A pretrained encoder whose features carry no more than
random weights' has learned nothing the task can use (benchmarks/feature_probe.py prints both).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from leanbert.finetune.source import resolve_model_dir
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model
from leanbert.tasks.encode import Collator, PairEncoder
from leanbert.tasks.glue import TaskData


def layer_features(model: LeanBertModel, features, pad_id: int, batch_size: int = 256) -> dict[str, np.ndarray]:
    """{"mean<i>": (N, H) mean over real tokens of hidden state i, "cls": (N, H) last layer at [CLS]}."""
    collator = Collator(pad_id)
    out: dict[str, list[np.ndarray]] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collator(features[start:start + batch_size])
            result = model(batch.input_ids, batch.attention_mask, batch.token_type_ids, output_hidden_states=True)
            mask = batch.attention_mask.unsqueeze(-1).float()  # (B, T, 1)
            for i, hidden in enumerate(result.hidden_states):
                out.setdefault(f"mean{i}", []).append(((hidden * mask).sum(1) / mask.sum(1)).float().numpy())
            out.setdefault("cls", []).append(result.last_hidden_state[:, 0].float().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def probe(model: LeanBertModel, encoder: PairEncoder, train, dev) -> dict[str, float]:
    """Dev accuracy of a logistic regression on each kind of feature (keys as ``layer_features``)."""
    from sklearn.linear_model import LogisticRegression

    train_x = layer_features(model, train, encoder.pad_id)
    dev_x = layer_features(model, dev, encoder.pad_id)
    train_y, dev_y = [f.label for f in train], [f.label for f in dev]
    return {name: float(LogisticRegression(max_iter=2000).fit(train_x[name], train_y).score(dev_x[name], dev_y))
            for name in train_x}


def last_layer_key(model: LeanBertModel) -> str:
    """The feature a single probe score reports: the last layer, mean-pooled (not picked on the dev set)."""
    return f"mean{model.config.num_layers}"


def load_probe_inputs(model: str | Path, task: TaskData, max_train: int = 0, max_seq_len: int = 128):
    """(model, encoder, train features, dev features) for MODEL (a leanbert model dir, a pretraining run or a
    Hugging Face dir) on the first ``max_train`` training examples (0 = all) and the first dev split."""
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = resolve_model_dir(model, Path(tmp), log=lambda *_: None)
        loaded = load_model(model_dir)
        encoder = PairEncoder.from_dir(model_dir, max_seq_len)
    train = encoder.encode(task.train[: max_train or None])
    dev = encoder.encode(next(iter(task.dev.values())))
    return loaded, encoder, train, dev


def majority_accuracy(dev) -> float:
    """The dev accuracy of always answering the most frequent dev label."""
    labels = [f.label for f in dev]
    return max(float(np.mean([label == c for label in labels])) for c in set(labels))

"""Run a classifier model over encoded examples: logits, predictions, and a task's dev metrics.

Used by fine-tuning's dev scoring, distillation's student and teacher scoring, and (soon)
``leanbert predict``. Rows are batched by length so padding stays small, and come back in input order. Under torchrun each rank
scores every ``world_size``-th row and the logits are gathered, so every rank returns all rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from leanbert.finetune.encode import Collator, Features
from leanbert.finetune.metrics import predictions_from_logits
from leanbert.finetune.tasks import TaskSpec
from leanbert.model.model import LeanBertModel
from leanbert.train.distributed import DistEnv, gather_rows


def predict_logits(model: LeanBertModel, features: Sequence[Features], collator: Collator, batch_size: int,
                   env: DistEnv | None = None) -> np.ndarray:
    """(N, num_labels) float32 classifier logits in input order, computed in eval mode without gradients (the
    model's train/eval mode is restored afterwards)."""
    env = env or DistEnv()
    mine = np.arange(env.rank, len(features), env.world_size)
    by_length = np.argsort([features[i].input_ids.shape[0] for i in mine], kind="stable")
    device = next(model.parameters()).device
    outputs = [torch.zeros((0, model.config.num_labels))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(by_length), batch_size):
            rows = mine[by_length[start:start + batch_size]]
            batch = collator([features[i] for i in rows]).to(device)
            logits = model(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits  # (B, C)
            outputs.append(logits.float().cpu())
    model.train(was_training)
    sorted_logits = torch.cat(outputs)  # (n_mine, C) in length order
    local = torch.empty_like(sorted_logits)
    local[torch.from_numpy(by_length)] = sorted_logits  # row j of local is features[mine[j]]
    logits = np.empty((len(features), local.shape[1]), dtype=np.float32)  # (N, C)
    for rank, part in enumerate(gather_rows(local, env)):
        logits[rank::env.world_size] = part.cpu().numpy()
    return logits


def predict(model: LeanBertModel, features: Sequence[Features], collator: Collator, batch_size: int,
            regression: bool, env: DistEnv | None = None) -> np.ndarray:
    """(N,) predictions in input order: class indices, or scores for a regression model."""
    return predictions_from_logits(predict_logits(model, features, collator, batch_size, env), regression)


def gold_labels(features: Sequence[Features]) -> np.ndarray:
    """(N,) the labels carried by ``features``."""
    return np.asarray([f.label for f in features])


def score(model: LeanBertModel, spec: TaskSpec, dev: Mapping[str, Sequence[Features]], collator: Collator,
          batch_size: int, env: DistEnv | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``spec``'s metrics of ``model`` on every dev split, and the predictions (split -> (N,))."""
    predictions = {split: predict(model, features, collator, batch_size, spec.regression, env)
                   for split, features in dev.items()}
    outputs = {split: (predictions[split], gold_labels(dev[split])) for split in predictions}
    return spec.compute_metrics(outputs), predictions

"""Linear probes of frozen features: how much does a pretrained encoder already know about a task?

For MODEL and for the same architecture with random weights, fits a logistic regression (scikit-learn) on the
mean-pooled hidden states of every layer (layer 0 = the embeddings) and on the last layer's [CLS] vector, using
the task's training examples, and prints the dev accuracy of each. A pretrained model whose features carry no
more than random ones has learned nothing the task can use, and will fine-tune no better than from scratch.

  python benchmarks/feature_probe.py leanbert-demo/pretrain --task custom --train leanbert-demo/data/train.tsv \\
      --dev leanbert-demo/data/dev.tsv --text-columns sentence --label-column label
  python benchmarks/feature_probe.py runs/electra-cpu --task sst2 --data ../shared/data/glue --max-train 5000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from leanbert.finetune.data import load_task_data
from leanbert.finetune.encode import Collator, PairEncoder
from leanbert.finetune.source import resolve_model_dir
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model


def layer_features(model: LeanBertModel, features, pad_id: int, batch_size: int = 256) -> dict[str, np.ndarray]:
    """{"mean<i>": (N, H) mean over real tokens of hidden state i, "cls": (N, H) last layer at [CLS]}."""
    collator = Collator(pad_id)
    out: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collator(features[start:start + batch_size])
            result = model(batch.input_ids, batch.attention_mask, batch.token_type_ids, output_hidden_states=True)
            mask = batch.attention_mask.unsqueeze(-1).float()  # (B, T, 1)
            for i, hidden in enumerate(result.hidden_states):
                out.setdefault(f"mean{i}", []).append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
            out.setdefault("cls", []).append(result.last_hidden_state[:, 0].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def probe(model: LeanBertModel, encoder: PairEncoder, train, dev) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    train_x = layer_features(model, train, encoder.pad_id)
    dev_x = layer_features(model, dev, encoder.pad_id)
    train_y, dev_y = [f.label for f in train], [f.label for f in dev]
    return {name: LogisticRegression(max_iter=2000).fit(train_x[name], train_y).score(dev_x[name], dev_y)
            for name in train_x}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="leanbert model dir, pretraining run dir, or HF model dir")
    parser.add_argument("--task", required=True, help="a GLUE classification task or custom")
    parser.add_argument("--data", help="GLUE folder (GLUE tasks)")
    parser.add_argument("--train", help="custom: training file")
    parser.add_argument("--dev", help="custom: dev file")
    parser.add_argument("--text-columns", help="custom: text column(s)")
    parser.add_argument("--label-column", help="custom: label column")
    parser.add_argument("--max-train", type=int, default=0, help="use the first N training examples (0 = all)")
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-weights baseline")
    args = parser.parse_args()

    task = load_task_data(args.task, data=args.data, train=args.train, dev=args.dev,
                          text_columns=args.text_columns, label_column=args.label_column)
    if task.spec.regression:
        parser.error("a linear probe needs a classification task")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = resolve_model_dir(args.model, Path(tmp))
        pretrained = load_model(model_dir)
        encoder = PairEncoder.from_dir(model_dir, args.max_seq_len)
    train = encoder.encode(task.train[: args.max_train or None])
    dev = encoder.encode(next(iter(task.dev.values())))
    torch.manual_seed(args.seed)
    random = LeanBertModel(pretrained.config).eval()
    majority = max(np.mean([f.label == c for f in dev]) for c in {f.label for f in dev})
    print(f"{args.model}: {len(train)} train / {len(dev)} dev examples; majority class {majority:.3f}")
    results = {"pretrained": probe(pretrained, encoder, train, dev), "random": probe(random, encoder, train, dev)}
    names = list(results["pretrained"])
    print(f"{'features':<12}" + "".join(f"{n:>10}" for n in names))
    for kind, scores in results.items():
        print(f"{kind:<12}" + "".join(f"{scores[n]:>10.3f}" for n in names))


if __name__ == "__main__":
    main()

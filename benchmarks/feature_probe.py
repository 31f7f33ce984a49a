"""Linear probes of frozen features: how much does a pretrained encoder already know about a task?

For MODEL and for the same architecture with random weights, fits a logistic regression (scikit-learn) on the
mean-pooled hidden states of every layer (layer 0 = the embeddings) and on the last layer's [CLS] vector, using
the task's training examples, and prints the dev accuracy of each (the method lives in ``leanbert.probe``).
A pretrained model whose features carry no more than random ones has learned nothing the task can use, and
will fine-tune no better than from scratch.

  python benchmarks/feature_probe.py leanbert-demo/pretrain --task custom --train leanbert-demo/data/train.tsv \\
      --dev leanbert-demo/data/dev.tsv --text-columns sentence --label-column label
  python benchmarks/feature_probe.py runs/electra-cpu --task sst2 --data ../shared/data/glue --max-train 5000
"""

from __future__ import annotations

import argparse

import torch

from leanbert.model.model import LeanBertModel
from leanbert.probe import load_probe_inputs, majority_accuracy, probe
from leanbert.tasks.sequence_data import load_task_data


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
    pretrained, encoder, train, dev = load_probe_inputs(args.model, task, args.max_train, args.max_seq_len)
    torch.manual_seed(args.seed)
    random = LeanBertModel(pretrained.config).eval()
    majority = majority_accuracy(dev)
    print(f"{args.model}: {len(train)} train / {len(dev)} dev examples; majority class {majority:.3f}")
    results = {"pretrained": probe(pretrained, encoder, train, dev), "random": probe(random, encoder, train, dev)}
    names = list(results["pretrained"])
    print(f"{'features':<12}" + "".join(f"{n:>10}" for n in names))
    for kind, scores in results.items():
        print(f"{kind:<12}" + "".join(f"{scores[n]:>10.3f}" for n in names))


if __name__ == "__main__":
    main()

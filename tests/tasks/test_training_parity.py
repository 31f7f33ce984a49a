"""`leanbert finetune --task qa | ner | multiple-choice` trains as a plain PyTorch loop over transformers' own
*ForQuestionAnswering / *ForTokenClassification / *ForMultipleChoice does, from the same weights (dropout 0):
the same encoded rows and batch order, AdamW without decay on biases and LayerNorm weights, linear warm-up and
decay, clipping at 1.0, and each task's loss. Per-step losses and the final weights agree, so a gap between the
two in the benchmarks (benchmarks/squad.py, ner_mc_vs_transformers.py) can only come from the seeds."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_config
from leanbert.batch import IGNORE_INDEX
from leanbert.finetune.config import finetune_config
from leanbert.finetune.run import finetune, starting_model
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model
from leanbert.tasks import TaskRequest, task_type_for
from leanbert.tasks.encode import iterate_batches
from qa_helpers import FIXTURES, SQUAD_V1, minilm_dir

STEPS, BATCH, LR = 4, 4, 3e-3
COMMON = [f"train.lr={LR}", f"train.max_steps={STEPS}", f"train.batch_size={BATCH}", "train.warmup_ratio=0.25",
          "train.dropout=0.0", "train.log_every=1", "train.unpad=true", "train.seeds=[0]",
          "train.eval_at_start=false"]


def qa_loss(out, batch):  # transformers' loss with the padding kept out of the softmax (leanbert's)
    pad = batch.attention_mask == 0
    return (F.cross_entropy(out.start_logits.masked_fill(pad, -1e4), batch.targets["start_positions"])
            + F.cross_entropy(out.end_logits.masked_fill(pad, -1e4), batch.targets["end_positions"])) / 2


def ner_loss(out, batch):  # transformers' own: labelled pieces only
    labels = batch.targets["token_labels"]
    return F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def choice_loss(out, batch):  # every row of the fixture has all its options: nothing to mask
    assert bool(batch.targets["choice_mask"].all())
    return F.cross_entropy(out.logits, batch.targets["choice_labels"])


def hf_inputs(batch, options: int | None) -> dict:
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
              "token_type_ids": batch.token_type_ids}
    if options:  # leanbert stacks a row's options as (B * C, T); transformers takes (B, C, T)
        inputs = {k: v.reshape(-1, options, v.shape[-1]) for k, v in inputs.items()}
    return inputs


CASES = {
    "qa": (dict(train=str(SQUAD_V1), dev=str(SQUAD_V1)), ["data.max_seq_len=96", "data.doc_stride=32"],
           "AutoModelForQuestionAnswering", qa_loss, None),
    "ner": (dict(train=str(FIXTURES / "wnut_train.conll"), dev=str(FIXTURES / "wnut_dev.conll")),
            ["data.max_seq_len=64"], "AutoModelForTokenClassification", ner_loss, None),
    "multiple-choice": (dict(train=str(FIXTURES / "social_iqa.jsonl"), dev=str(FIXTURES / "social_iqa.jsonl")),
                        ["data.max_seq_len=64"], "AutoModelForMultipleChoice", choice_loss, 3),
}


def plain_loop(model, encoded, loss_fn, options) -> list[float]:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    plain = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}],
                                  lr=LR, eps=1e-6)  # leanbert's adam_eps
    warmup = 1  # 0.25 * STEPS
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (STEPS - s) / (STEPS - warmup)))
    losses = []
    for batch in iterate_batches(encoded.train, BATCH, encoded.collator, shuffle=True, seed=0):  # seed 0, epoch 0
        if len(losses) == STEPS:
            break
        loss = loss_fn(model(**hf_inputs(batch, options)), batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert len(losses) == STEPS
    return losses


@pytest.mark.parametrize("kind", list(CASES))
def test_finetune_matches_a_plain_loop_over_transformers_model(kind, tmp_path):
    transformers = pytest.importorskip("transformers")
    files, overrides, auto_class, loss_fn, options = CASES[kind]
    overrides = [*COMMON, *overrides]
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(vocab_size=30522, max_positions=128, type_vocab_size=2)), tmp_path / "base",
               tokenizer_dir=minilm_dir())
    task_type = task_type_for(kind)
    task = task_type.load(TaskRequest(kind, **files))
    finetune(tmp_path / "base", task, tmp_path / "ft", overrides, progress=False, log=lambda *a, **k: None)
    records = [json.loads(line) for line in (tmp_path / "ft/runs/seed-0/metrics.jsonl").open()]
    ours = [r["loss"] for r in records if "loss" in r]

    base = load_model(tmp_path / "base")
    start = starting_model(base, task_type, task_type.head_options(task.spec), 0, 0.0, False)  # finetune's seed 0
    save_model(start, tmp_path / "start", tokenizer_dir=minilm_dir())
    model_class = getattr(transformers, auto_class)
    theirs_model = model_class.from_pretrained(export_to_hf(tmp_path / "start", tmp_path / "start-hf")).train()
    config = finetune_config(task.spec.recipe, overrides, task_type.data_config)
    encoded = task_type.encode(task, minilm_dir(), config.data, base.config)
    lengths = {int(row.sum()) for b in iterate_batches(encoded.train, BATCH, encoded.collator)
               for row in b.attention_mask}
    assert len(lengths) > 1  # rows of several lengths: padded batches, so the encoder's unpadding runs
    theirs = plain_loop(theirs_model, encoded, loss_fn, options)

    assert ours == pytest.approx(theirs, rel=1e-4)
    trained = model_class.from_pretrained(export_to_hf(tmp_path / "ft/model", tmp_path / "ft-hf"))
    before = model_class.from_pretrained(tmp_path / "start-hf")
    moved = max((a - b).abs().max().item() for a, b in zip(trained.parameters(), before.parameters()))
    assert moved > LR  # it trained (Adam moves a weight by about lr a step): not two frozen models agreeing
    for (name, mine), other in zip(trained.named_parameters(), theirs_model.parameters()):
        if name == "qa_outputs.bias":
            # a softmax over the window is blind to a bias shared by every position: its gradient is rounding
            # noise, which Adam scales up into steps of no consequence (a span's score never depends on it)
            continue
        torch.testing.assert_close(mine, other, rtol=1e-3, atol=1e-4, msg=lambda m: f"{name}: {m}")

"""`leanbert finetune --task qa` trains as a plain PyTorch loop over transformers' BertForQuestionAnswering does,
from the same weights (dropout 0): the same windows and batch order, AdamW without decay on biases and LayerNorm
weights, linear warm-up and decay, clipping at 1.0, and the QA loss over each window's real tokens. Per-step losses
and the final weights agree, so a SQuAD gap between the two (benchmarks/squad.py) can only come from seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_config
from leanbert.finetune.config import finetune_config
from leanbert.finetune.run import finetune, starting_model
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model
from leanbert.tasks import TaskRequest, task_type_for
from leanbert.tasks.encode import iterate_batches
from leanbert.tasks.qa import QADataConfig
from leanbert.tasks.qa_features import QACollator, WindowEncoder
from qa_helpers import SQUAD_V1, minilm_dir

STEPS = 4
OVERRIDES = ["train.lr=3e-3", f"train.max_steps={STEPS}", "train.batch_size=4", "train.warmup_ratio=0.25",
             "data.max_seq_len=96", "data.doc_stride=32", "train.dropout=0.0", "train.log_every=1",
             "train.unpad=true", "train.seeds=[0]", "train.eval_at_start=false"]


def _plain_loop(hf_model, features, collator, eps: float) -> list[float]:
    decay = [p for p in hf_model.parameters() if p.ndim >= 2]
    plain = [p for p in hf_model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}],
                                  lr=3e-3, eps=eps)
    warmup = 1
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (STEPS - s) / (STEPS - warmup)))
    losses = []
    for batch in iterate_batches(features, 4, collator, shuffle=True, seed=0):  # epoch 0 of seed 0
        if len(losses) == STEPS:
            break
        out = hf_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       token_type_ids=batch.token_type_ids)
        pad = batch.attention_mask == 0
        loss = (F.cross_entropy(out.start_logits.masked_fill(pad, -1e4), batch.targets["start_positions"])
                + F.cross_entropy(out.end_logits.masked_fill(pad, -1e4), batch.targets["end_positions"])) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf_model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert len(losses) == STEPS
    return losses


def test_finetune_qa_matches_a_plain_loop_over_transformers_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = tiny_config(vocab_size=30522, max_positions=128, type_vocab_size=2)
    save_model(LeanBertModel(config), tmp_path / "base", tokenizer_dir=minilm_dir())
    task_type = task_type_for("qa")
    task = task_type.load(TaskRequest("qa", train=str(SQUAD_V1), dev=str(SQUAD_V1)))
    finetune(tmp_path / "base", task, tmp_path / "ft", OVERRIDES, progress=False, log=lambda *a, **k: None)
    records = [json.loads(line) for line in (tmp_path / "ft/runs/seed-0/metrics.jsonl").open()]
    ours = [r["loss"] for r in records if "loss" in r]

    start = starting_model(load_model(tmp_path / "base"), task_type, task_type.head_options(task.spec), 0, 0.0,
                           False)  # what finetune starts seed 0 from
    save_model(start, tmp_path / "start", tokenizer_dir=minilm_dir())
    hf_model = transformers.AutoModelForQuestionAnswering.from_pretrained(
        export_to_hf(tmp_path / "start", tmp_path / "start-hf")).train()
    data = finetune_config(task.spec.recipe, OVERRIDES, QADataConfig).data
    windows = WindowEncoder(minilm_dir(), data.max_seq_len, data.doc_stride, data.max_query_length)
    features = windows.encode(task.train, labels=True)
    assert any(f.input_ids.shape[0] < data.max_seq_len for f in features)  # padded batches: unpadding runs
    theirs = _plain_loop(hf_model, features, QACollator(windows.pad_id), eps=1e-6)  # leanbert's adam_eps

    assert ours == pytest.approx(theirs, rel=1e-4)
    assert ours[-1] < ours[0] - 0.05  # it learned: the comparison is not between two frozen models
    trained = transformers.AutoModelForQuestionAnswering.from_pretrained(
        export_to_hf(tmp_path / "ft/model", tmp_path / "ft-hf"))
    for (name, mine), theirs_param in zip(trained.named_parameters(), hf_model.parameters()):
        if name == "qa_outputs.bias":
            # a softmax over the window is blind to a bias shared by every position: its gradient is rounding
            # noise, which Adam scales up into steps of no consequence (a span's score never depends on it)
            continue
        torch.testing.assert_close(mine, theirs_param, rtol=1e-3, atol=1e-5, msg=lambda m: f"{name}: {m}")

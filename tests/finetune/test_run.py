"""End-to-end fine-tuning: the command, its outputs, the custom-task path, layer-wise LR decay, several seeds,
bad data, export of the fine-tuned model to transformers' *ForSequenceClassification, and two processes
under torchrun.

A tiny random BERT (2 layers, hidden 64) with a 2000-piece WordPiece tokenizer trained on an SST-2 slice is
built once per module; fine-tuning it on 3000 SST-2 rows must beat the majority class on the real dev set.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from leanbert.cli import main
from leanbert.config import ConfigError
from leanbert.errors import UserError
from leanbert.finetune.config import finetune_config, to_train_config
from leanbert.finetune.layer_decay import layer_lr_scales
from leanbert.finetune.objective import SequenceClassification
from leanbert.finetune.run import finetune
from leanbert.finetune.task_job import EpochBatches
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, read_model_config, save_model
from leanbert.presets import model_config
from leanbert.tasks.encode import Features
from leanbert.tasks.metrics import accuracy
from leanbert.tasks.recipe import Recipe
from leanbert.tasks.sequence_data import load_task_data
from leanbert.train.optim import parameter_groups

SST2_ROWS = 3000
QUICK = ["data.max_train_examples=64", "train.max_steps=4", "train.batch_size=16", "data.max_seq_len=32"]


@pytest.fixture(scope="module")
def sst2_slice(tmp_path_factory, shared_data) -> Path:
    """A GLUE-layout SST-2 folder: the first SST2_ROWS training rows and the full 872-row dev set."""
    folder = tmp_path_factory.mktemp("glue") / "SST-2"
    folder.mkdir()
    src = Path(shared_data) / "glue" / "SST-2"
    lines = (src / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "train.tsv").write_text("".join(lines[: SST2_ROWS + 1]), encoding="utf-8")
    (folder / "dev.tsv").write_text((src / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, sst2_slice) -> Path:
    """A 2-layer, hidden-64 BERT (random weights) with its tokenizer, as a leanbert model directory."""
    from leanbert.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("tiny")
    rows = (sst2_slice / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    (root / "text.txt").write_text("".join(r.split("\t")[0] + "\n" for r in rows), encoding="utf-8")
    info = train_tokenizer([str(root / "text.txt")], root / "tok", vocab_size=2000, lowercase=True)
    config = model_config("bert-tiny", vocab_size=info.vocab_size, hidden_size=64, num_heads=2,
                          intermediate_size=128, num_layers=2, max_positions=128, heads=["mlm"])
    torch.manual_seed(0)
    return save_model(LeanBertModel(config), root / "model", tokenizer_dir=root / "tok")


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory, tiny_model_dir, sst2_slice) -> Path:
    out = tmp_path_factory.mktemp("runs") / "sst2"
    rc = main(["finetune", str(tiny_model_dir), "--task", "sst2", "--data", str(sst2_slice.parent), "--out",
               str(out), "--quiet", "train.lr=1e-3", "train.epochs=3", "data.max_seq_len=64"])
    assert rc == 0
    return out


def _read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_sst2_beats_majority_class(sst2_run, sst2_slice):
    metrics = json.loads((sst2_run / "metrics.json").read_text())
    gold = [r[1] for r in _read_tsv(sst2_slice / "dev.tsv")[1:]]
    majority = max(gold.count("0"), gold.count("1")) / len(gold)  # 444 / 872 = 0.509
    assert metrics["accuracy"] > majority + 0.08, metrics["accuracy"]


def test_outputs_metrics_predictions_and_model(sst2_run, sst2_slice):
    metrics = json.loads((sst2_run / "metrics.json").read_text())
    assert metrics["task"] == "sst2" and metrics["metric_names"] == ["accuracy"] and metrics["seeds"] == [0]
    assert metrics["config"]["train"]["lr"] == 1e-3 and metrics["config"]["data"]["max_seq_len"] == 64
    assert metrics["config"]["train"]["batch_size"] == 32  # the sst2 recipe's default
    rows = _read_tsv(sst2_run / "predictions.tsv")
    assert rows[0] == ["index", "prediction", "gold"] and len(rows) == 873
    gold = [r[1] for r in _read_tsv(sst2_slice / "dev.tsv")[1:]]
    assert [r[2] for r in rows[1:]] == gold and [r[0] for r in rows[1:]] == [str(i) for i in range(872)]
    assert {r[1] for r in rows[1:]} <= {"0", "1"}
    assert accuracy([r[1] for r in rows[1:]], gold) == pytest.approx(metrics["accuracy"])
    # the saved model reproduces the predictions
    config, meta = read_model_config(sst2_run / "model")
    assert config.heads == ["classifier"] and config.num_labels == 2
    assert meta["task"]["labels"] == ["0", "1"] and (sst2_run / "model" / "tokenizer.json").is_file()
    # the loop's log: training loss falls, one dev evaluation per epoch
    log = [json.loads(line) for line in (sst2_run / "runs" / "seed-0" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert {94, 188, 282} <= {r["step"] for r in log if "val_accuracy" in r}  # 3000 / 32 -> 94 steps per epoch
    assert not (sst2_run / "runs" / "seed-0" / "checkpoints").exists()


def test_saved_model_predicts_like_predictions_tsv(sst2_run, sst2_slice):
    from leanbert.tasks.encode import PairEncoder
    from leanbert.tasks.glue import load_task

    model = load_model(sst2_run / "model")
    task = load_task("sst2", sst2_slice)
    encoder = PairEncoder.from_dir(sst2_run / "model", 64)
    features = encoder.encode(task.dev["dev"][:40])
    from leanbert.tasks.encode import Collator
    from leanbert.tasks.sequence import predict

    preds = predict(model, features, Collator(encoder.pad_id), 16, regression=False)
    rows = _read_tsv(sst2_run / "predictions.tsv")[1:41]
    assert [str(p) for p in preds] == [r[1] for r in rows]


def test_export_to_hf_sequence_classification(sst2_run, tmp_path):
    transformers = pytest.importorskip("transformers")
    from leanbert.interop.hf import export_to_hf

    export_to_hf(sst2_run / "model", tmp_path / "hf")
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    assert type(hf).__name__ == "BertForSequenceClassification" and hf.config.num_labels == 2
    assert hf.config.id2label == {0: "0", 1: "1"} and hf.config.label2id == {"0": 0, "1": 1}  # the task's labels
    ours = load_model(sst2_run / "model")
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    enc = tok(["a gorgeous , witty film", "dull and lifeless"], ["", "x"], padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = hf(**enc).logits
        mine = ours(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits
    torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_custom_csv_task_end_to_end(tmp_path, tiny_model_dir, sst2_slice, capsys):
    rows = _read_tsv(sst2_slice / "train.tsv")[1:401]
    dev_rows = _read_tsv(sst2_slice / "dev.tsv")[1:51]
    for name, data in (("train.csv", rows), ("dev.csv", dev_rows)):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "review", "sentiment"])
            writer.writerows([i, text, "pos" if label == "1" else "neg"] for i, (text, label) in enumerate(data))
    out = tmp_path / "out"
    rc = main(["finetune", str(tiny_model_dir), "--task", "custom", "--train", str(tmp_path / "train.csv"),
               "--dev", str(tmp_path / "dev.csv"), "--text-columns", "review", "--label-column", "sentiment",
               "--out", str(out), "--quiet", "train.max_steps=6", "train.batch_size=16", "data.max_seq_len=32"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "custom" and metrics["metric_names"] == ["accuracy", "f1", "mcc"]
    assert all(0 <= metrics[k] <= 1 for k in ("accuracy", "f1")) and -1 <= metrics["mcc"] <= 1
    pred = _read_tsv(out / "predictions.tsv")
    assert len(pred) == 51 and {r[1] for r in pred[1:]} <= {"neg", "pos"}
    assert [r[2] for r in pred[1:]] == ["pos" if r[1] == "1" else "neg" for r in dev_rows]
    assert read_model_config(out / "model")[1]["task"]["labels"] == ["neg", "pos"]
    assert "custom dev: accuracy" in capsys.readouterr().out


def _regression_task(tmp_path):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "great", "awful", "film", "plot"]
    for name, n in (("train.jsonl", 64), ("dev.jsonl", 20)):
        with open(tmp_path / name, "w", encoding="utf-8") as f:
            for _ in range(n):
                text = " ".join(rng.choice(words, 5))
                f.write(json.dumps({"a": text, "b": text[::-1], "score": float(text.count("g"))}) + "\n")
    return load_task_data("custom", train=tmp_path / "train.jsonl", dev=tmp_path / "dev.jsonl",
                          text_columns="a,b", label_column="score", regression=True)


def test_custom_regression_path(tmp_path, tiny_model_dir):
    task = _regression_task(tmp_path)
    result = finetune(tiny_model_dir, task, tmp_path / "out", ["train.max_steps=3", "data.max_seq_len=32"],
                      progress=False, log=lambda *_: None)
    assert set(result.metrics["metric_names"]) == {"pearson", "spearman"}
    assert read_model_config(tmp_path / "out" / "model")[0].num_labels == 1
    rows = _read_tsv(tmp_path / "out" / "predictions.tsv")
    assert len(rows) == 21 and all(np.isfinite(float(r[1])) for r in rows[1:])


def test_several_seeds_mean_and_std(tmp_path, tiny_model_dir):
    task = _regression_task(tmp_path)
    settings = ["train.max_steps=8", "train.batch_size=16", "data.max_seq_len=32", "train.lr=1e-3"]
    result = finetune(tiny_model_dir, task, tmp_path / "out", [*settings, "train.seeds=[3,4,5]"],
                      progress=False, log=lambda *_: None)
    m = result.metrics
    assert m["seeds"] == [3, 4, 5] and "pearson" not in m
    for name in ("pearson", "spearman"):
        per_seed = [m["per_seed"][s][name] for s in ("3", "4", "5")]
        assert m[f"{name}_mean"] == pytest.approx(np.mean(per_seed))
        assert m[f"{name}_std"] == pytest.approx(np.std(per_seed, ddof=1))
        assert len(set(per_seed)) == 3  # different seeds really differ
    best = max((3, 4, 5), key=lambda s: m["per_seed"][str(s)]["pearson"])
    assert m["model_seed"] == best
    for seed in (3, 4, 5):
        assert (tmp_path / "out" / "runs" / f"seed-{seed}" / "metrics.jsonl").is_file()
    # the same seed alone gives the same result
    again = finetune(tiny_model_dir, task, tmp_path / "again", [*settings, "train.seeds=[4]"],
                     progress=False, log=lambda *_: None)
    assert again.metrics["pearson"] == m["per_seed"]["4"]["pearson"]


def test_layer_decay_scales_and_param_groups():
    L, decay = 3, 0.5
    config = model_config("bert-tiny", vocab_size=50, hidden_size=16, num_heads=2, intermediate_size=32,
                          num_layers=L, heads=["classifier"])
    model = LeanBertModel(config)
    scales = layer_lr_scales(model, decay)
    assert scales["encoder.embeddings.word_embeddings.weight"] == decay ** (L + 2)
    for i in range(L):  # ELECTRA's depths: layer i -> i + 1, so the top layer gets decay ** 2
        assert scales[f"encoder.attention.{i}.qkv.weight"] == decay ** (L + 1 - i)
        assert scales[f"encoder.ffn.{i}.fc_out.bias"] == decay ** (L + 1 - i)
    assert scales["encoder.pooler.weight"] == decay
    assert scales["heads.classifier.classifier.weight"] == 1.0
    assert set(scales) == {n for n, _ in model.named_parameters()}
    # through the optimizer groups of the objective: every parameter once, lr_scale as above
    objective = SequenceClassification(model)
    groups = parameter_groups(objective, 0.01, layer_lr_scales(model, decay, prefix="model."))
    names = {id(p): n for n, p in objective.named_parameters()}
    seen = [names[id(p)] for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(names.values())
    for g in groups:
        for p in g["params"]:
            assert g["lr_scale"] == scales[names[id(p)].removeprefix("model.")]
            assert g["weight_decay"] == (0.01 if p.ndim >= 2 else 0.0)


def test_layer_decay_with_shared_layers():
    config = model_config("albert-base", vocab_size=50, hidden_size=16, num_heads=2, intermediate_size=32,
                          num_layers=4, num_groups=2, embedding_size=8, heads=["classifier"])
    scales = layer_lr_scales(LeanBertModel(config), 0.5)
    # block 0 serves layers 1, 2 (mean depth 1.5), block 1 layers 3, 4 (3.5); top = 4 + 2
    assert scales["encoder.attention.0.qkv.weight"] == pytest.approx(0.5 ** 4.5)
    assert scales["encoder.ffn.1.fc_in.weight"] == pytest.approx(0.5 ** 2.5)
    assert scales["encoder.embeddings.project.weight"] == 0.5 ** 6
    assert all(v == 1.0 for v in layer_lr_scales(LeanBertModel(config), 1.0).values())


def test_layer_decay_run_uses_scaled_rates(tmp_path, tiny_model_dir, sst2_slice):
    """With layer_decay the embeddings move less than the top layer (relative to plain fine-tuning)."""
    task = load_task_data("sst2", data=sst2_slice)
    start = load_model(tiny_model_dir)
    moved = {}
    for decay in (1.0, 0.1):
        out = tmp_path / f"d{decay}"
        finetune(tiny_model_dir, task, out, [*QUICK, f"train.layer_decay={decay}", "train.warmup_ratio=0"],
                 progress=False, log=lambda *_: None)
        end = load_model(out / "model").state_dict()
        moved[decay] = {k: float((end[k] - v).abs().max()) for k, v in start.state_dict().items()
                        if k.startswith("encoder.")}
    emb = "encoder.embeddings.position_embeddings.weight"
    # Adam's step size is ~lr per element: decay 0.1 scales the embeddings' steps by 0.1 ** 4
    assert moved[0.1][emb] < 0.01 * moved[1.0][emb]
    assert moved[0.1]["encoder.attention.1.qkv.weight"] > 0.001 * moved[1.0]["encoder.attention.1.qkv.weight"]


def test_config_defaults_overrides_and_errors():
    config = finetune_config(Recipe(epochs=10), ["train.lr=5e-5", "train.seeds=[1,2]", "data.max_seq_len=64"])
    assert config.train.epochs == 10 and config.train.lr == 5e-5 and config.train.seeds == [1, 2]
    tc = to_train_config(config, num_train=100, seed=1)
    assert tc.max_steps == 40 and tc.warmup_steps == 4 and tc.eval_every == 4 and tc.batch_size == 32
    with pytest.raises(ConfigError, match="train.seeds"):
        finetune_config(Recipe(), ["train.seeds=3"])
    with pytest.raises(ConfigError, match="train.layer_decay"):
        finetune_config(Recipe(), ["train.layer_decay=1.5"])
    with pytest.raises(ConfigError, match="train.dropout"):
        finetune_config(Recipe(), ["train.dropout=1.5"])
    with pytest.raises(ConfigError, match="unknown key train.lrr"):
        finetune_config(Recipe(), ["train.lrr=1"])
    with pytest.raises(ConfigError, match="unknown group"):
        finetune_config(Recipe(), ["model.hidden_size=3"])


@pytest.mark.parametrize("from_scratch", [False, True])
def test_dropout_override_reaches_the_fine_tuned_model(tmp_path, tiny_model_dir, sst2_slice, from_scratch):
    task = load_task_data("sst2", sst2_slice.parent)
    result = finetune(tiny_model_dir, task, tmp_path / "out", ["train.max_steps=1", "train.dropout=0.25"],
                      from_scratch=from_scratch, progress=False, log=lambda *_: None)
    config, _ = read_model_config(result.out_dir / "model")
    assert config.hidden_dropout == config.attention_dropout == 0.25
    assert read_model_config(tiny_model_dir)[0].hidden_dropout == 0.1  # the source is untouched


def test_malformed_data_exit_2_with_file_and_line(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "train.tsv").write_text("text\tlabel\ngood\tpos\nbad\tneg\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("text\tlabel\nok\tpos\nextra\tneg\tfield\n", encoding="utf-8")
    out = tmp_path / "out"
    rc = main(["finetune", str(tiny_model_dir), "--task", "custom", "--train", str(tmp_path / "train.tsv"),
               "--dev", str(tmp_path / "dev.tsv"), "--text-columns", "text", "--label-column", "label",
               "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tmp_path / 'dev.tsv'}:3" in err and err.count("\n") == 1
    assert not out.exists()
    (tmp_path / "dev.tsv").write_text("text\tlabel\nok\tmaybe\n", encoding="utf-8")
    rc = main(["finetune", str(tiny_model_dir), "--task", "custom", "--train", str(tmp_path / "train.tsv"),
               "--dev", str(tmp_path / "dev.tsv"), "--text-columns", "text", "--label-column", "label",
               "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tmp_path / 'dev.tsv'}:2" in err and "unknown label 'maybe'" in err


def test_model_errors(tmp_path, tiny_model_dir, sst2_slice, capsys):
    args = ["--task", "sst2", "--data", str(sst2_slice), "--out", str(tmp_path / "o"), "--quiet"]
    assert main(["finetune", str(tmp_path / "missing"), *args]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["finetune", str(tiny_model_dir), *args, "data.max_seq_len=1000"]) == 2
    assert "max_positions" in capsys.readouterr().err
    assert main(["finetune", str(tiny_model_dir), *args, "oops"]) == 2
    assert "key=value" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("x")
    assert main(["finetune", str(tiny_model_dir), *args]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "o" / "keep.txt").is_file()


def test_from_hf_dir_and_pretraining_run_layout(tmp_path, tiny_model_dir, sst2_slice):
    """MODEL may be a Hugging Face directory (imported on the fly) or a run dir with model/discriminator."""
    from leanbert.interop.hf import export_to_hf

    task = load_task_data("sst2", data=sst2_slice)
    hf_dir = export_to_hf(tiny_model_dir, tmp_path / "hf")  # BertForMaskedLM + tokenizer files
    messages = []
    result = finetune(hf_dir, task, tmp_path / "from_hf", QUICK, progress=False, log=messages.append)
    assert any("importing the Hugging Face model" in m for m in messages)
    tuned = load_model(tmp_path / "from_hf" / "model")
    source = load_model(tiny_model_dir)
    assert tuned.config.heads == ["classifier"] and "accuracy" in result.metrics
    assert tuned.config == dataclasses.replace(source.config, heads=["classifier"], num_labels=2)
    # an ELECTRA-style run directory: run/model/discriminator
    disc = tmp_path / "run" / "model" / "discriminator"
    save_model(source, disc, tokenizer_dir=tiny_model_dir)
    messages.clear()
    finetune(tmp_path / "run", task, tmp_path / "from_run", QUICK, progress=False, log=messages.append)
    assert any(str(disc) in m for m in messages)
    with pytest.raises(UserError, match="no config.json"):
        finetune(tmp_path, task, tmp_path / "x", QUICK, progress=False, log=lambda *_: None)


def test_from_scratch_changes_only_the_weights(tmp_path, tiny_model_dir, sst2_slice):
    task = load_task_data("sst2", data=sst2_slice)
    finetune(tiny_model_dir, task, tmp_path / "pre", [*QUICK, "train.max_steps=1", "train.lr=1e-9"],
             progress=False, log=lambda *_: None)
    # the fixture model was initialised with torch seed 0: another seed gives other random weights
    finetune(tiny_model_dir, task, tmp_path / "scratch", [*QUICK, "train.max_steps=1", "train.lr=1e-9",
                                                          "train.seeds=[7]"],
             from_scratch=True, progress=False, log=lambda *_: None)
    source = load_model(tiny_model_dir).state_dict()
    pre = load_model(tmp_path / "pre" / "model").state_dict()
    scratch = load_model(tmp_path / "scratch" / "model").state_dict()
    key = "encoder.attention.0.qkv.weight"
    torch.testing.assert_close(pre[key], source[key], rtol=0, atol=1e-6)
    assert not torch.allclose(scratch[key], source[key], atol=1e-3)
    assert json.loads((tmp_path / "scratch" / "metrics.json").read_text())["from_scratch"] is True


def test_epoch_batches_split_each_global_batch_between_ranks():
    features = [Features(np.array([i]), np.array([0]), i % 2) for i in range(37)]

    def labels_of(rank, world, batch_size=8):
        collator = lambda rows: [int(f.input_ids[0]) for f in rows]  # noqa: E731  (ids instead of a Batch)
        data = EpochBatches(features, batch_size, collator, seed=3, rank=rank, world_size=world)
        return [list(epoch) for epoch in (data, data)]  # two epochs: a new order each time

    one = labels_of(0, 1)
    assert one[0] != one[1] and sorted(sum(one[0], [])) == list(range(37))
    parts = [labels_of(rank, 3) for rank in range(3)]
    for epoch in range(2):
        for step, batch in enumerate(one[epoch][:-1]):  # full batches: the ranks' shares interleave to it
            assert sorted(sum((p[epoch][step] for p in parts), [])) == sorted(batch)
        last = one[epoch][-1]  # 37 = 4 x 8 + 5 rows: 2, 2 and 1 per rank
        assert [len(p[epoch][-1]) for p in parts] == [2, 2, 1] and sorted(sum((p[epoch][-1] for p in parts), [])) == sorted(last)
    tiny = [labels_of(rank, 4, batch_size=4)[0][-1] for rank in range(4)]  # last batch: 1 row for 4 ranks
    assert all(len(t) == 1 for t in tiny)  # topped up from the epoch's start: no rank is left without data


def test_two_processes_under_torchrun_match_one(tmp_path, tiny_model_dir, sst2_slice):
    """`torchrun --nproc_per_node 2 -m leanbert.cli finetune`: each rank takes half of every global batch and scores
    half of the dev set; with dropout off and whole batches the result is one process's, up to summation order."""
    args = [str(tiny_model_dir), "--task", "sst2", "--data", str(sst2_slice), "--quiet", "train.dropout=0",
            "train.lr=1e-3", "data.max_train_examples=64", "train.epochs=2", "train.batch_size=16",
            "data.max_seq_len=32"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "leanbert.cli", "finetune", *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("examples, 8 steps x 1 seed(s) on 2 processes") == 1  # rank 0 alone reports
    assert proc.stdout.count("sst2 dev: accuracy") == 1
    assert main(["finetune", *args, "--out", str(tmp_path / "one")]) == 0

    ddp, one = (load_model(tmp_path / run / "model").state_dict() for run in ("ddp", "one"))
    start = load_model(tiny_model_dir).state_dict()
    assert sum(not torch.allclose(start[k], v) for k, v in one.items() if k in start) > 10  # training moved them
    for name, value in one.items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-4, atol=1e-5, msg=name)
    metrics = {run: json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("ddp", "one")}
    assert metrics["ddp"]["accuracy"] == pytest.approx(metrics["one"]["accuracy"], abs=2 / 872)
    assert len(_read_tsv(tmp_path / "ddp" / "predictions.tsv")) == 873

    def logged(run, key):
        lines = (tmp_path / run / "runs" / "seed-0" / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x)[key] for x in lines if key in json.loads(x)]

    assert logged("ddp", "loss") == pytest.approx(logged("one", "loss"), rel=1e-4)
    assert logged("ddp", "tokens") == logged("one", "tokens")  # the ranks read disjoint halves
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "one"]  # no rank left a temporary folder

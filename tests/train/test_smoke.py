"""End to end on real text: tokenizer train -> prepare -> pretrain -> checkpoint -> resume -> model dir -> export.

Each recipe runs through the CLI in-process with a tiny model on a slice of ../shared/data/corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from leanbert.cli import main
from leanbert.model_dir import load_model

RECIPES = {
    # name: (tokenizer kind, objective, extra overrides, exported networks)
    "electra": ("wordpiece", "electra", ["objective.generator_fraction=0.5"], ["discriminator", "generator"]),
    "albert": ("unigram", "mlm+sop", ["model.preset=albert-base", "model.embedding_size=16", "data.ngram=3",
                                      "train.optimizer=lamb", "train.lr=1e-2"], [""]),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    """~800 lines of the Wikipedia sample plus ~800 movie-review lines: documents and blank lines kept."""
    out = tmp_path_factory.mktemp("corpus") / "slice.txt"
    parts = []
    for name in ("wiki-sample.txt", "movie-reviews.txt"):
        lines = (Path(shared_data) / "corpus" / name).read_text(encoding="utf-8").splitlines()[:800]
        parts.append("\n".join(lines).strip() + "\n")
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, corpus):
    """kind -> (tokenizer dir, dataset dir), each built once through the CLI."""
    cache: dict[str, tuple[Path, Path]] = {}

    def get(kind: str) -> tuple[Path, Path]:
        if kind not in cache:
            root = tmp_path_factory.mktemp(kind)
            tok, data = root / "tok", root / "data"
            _run(["tokenizer", "train", str(corpus), "--out", str(tok), "--kind", kind, "--vocab-size", "600",
                  "--lowercase"])
            _run(["prepare", str(corpus), "--tokenizer", str(tok), "--out", str(data), "--valid-fraction", "0.1",
                  "--quiet"])
            cache[kind] = (tok, data)
        return cache[kind]

    return get


def _run(args: list[str]) -> None:
    assert main(args) == 0, args


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_pretrain_resume_export_end_to_end(tmp_path, prepared, recipe):
    kind, objective, extra, networks = RECIPES[recipe]
    _, data = prepared(kind)
    settings = ["--config", "configs/smoke.yaml", f"data.path={data}", f"objective.name={objective}",
                "data.seq_len=32", "train.batch_size=4", "train.schedule=constant", "train.warmup_steps=0",
                "train.log_every=1", "train.eval_every=3", "train.checkpoint_every=3", "train.eval_batches=2",
                *extra]
    root = Path(__file__).resolve().parents[2]
    settings[1] = str(root / settings[1])

    full = tmp_path / "full"
    _run(["pretrain", *settings, "train.max_steps=6", "--out", str(full), "--no-progress"])
    part = tmp_path / "part"
    _run(["pretrain", *settings, "train.max_steps=3", "--out", str(part), "--no-progress"])
    assert main(["pretrain", *settings, "train.max_steps=6", "--out", str(part), "--no-progress"]) == 2  # no --resume
    _run(["pretrain", "--out", str(part), "--resume", "train.max_steps=6", "--no-progress"])  # reads config.yaml

    assert _losses(part) == _losses(full)  # same batches, masks, ELECTRA samples and updates
    assert sorted(p.name for p in (part / "checkpoints").iterdir()) == ["step-3", "step-6"]
    val = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines() if "val_loss" in x]
    assert [v["step"] for v in val] == [0, 3, 6] and "val_mlm_loss" in val[-1]
    config = (full / "config.yaml").read_text()
    assert "vocab_size: 600" in config and f"name: {objective}" in config

    for name in networks:
        model_dir = full / "model" / name if name else full / "model"
        assert (model_dir / "tokenizer.json").is_file()
        model = load_model(model_dir)
        hf_dir = tmp_path / f"hf-{name or 'model'}"
        _run(["export", str(model_dir), str(hf_dir)])
        import transformers

        hf_config = json.loads((hf_dir / "config.json").read_text())
        hf_model = getattr(transformers, hf_config["architectures"][0]).from_pretrained(hf_dir).eval()
        ids = torch.tensor([[2, 10, 11, 12, 3]])
        with torch.no_grad():
            ours = model(ids, torch.ones_like(ids)).last_hidden_state
            theirs = hf_model(ids, attention_mask=torch.ones_like(ids), output_hidden_states=True).hidden_states[-1]
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_nan_loss_exits_nonzero_with_message(tmp_path, prepared, capsys):
    _, data = prepared("wordpiece")
    root = Path(__file__).resolve().parents[2]
    code = main(["pretrain", "--config", str(root / "configs" / "smoke.yaml"), f"data.path={data}",
                 "data.seq_len=32", "train.batch_size=4", "train.lr=1e30", "train.warmup_steps=0",
                 "train.clip_norm=0", "train.max_steps=8", "train.log_every=1", "train.checkpoint_every=100",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    assert "NaN/inf" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model").exists()

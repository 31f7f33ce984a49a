"""TNF (tnf.enabled=true): notes and their EMA against a float64 re-computation from the paper's formulas,
window clipping, input mixing (exactly the rare words' pieces, nothing without a note, E != H), ELECTRA's
generator left alone, metrics, config checks, 2-process DDP, and a tiny run that trains, resumes exactly,
fine-tunes and exports without the notes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from leanbert.addons.tnf.addon import TnfConfig, ema_update, note_windows, window_notes
from leanbert.addons.tnf.rare_words import RareWords
from leanbert.config import ConfigError
from objectives.tnf_helpers import SETTINGS, tnf_batch, tnf_objective

LAMBDA = 0.5


# -- the formulas, in float64 ------------------------------------------------------------------------------


def reference_note(hidden: np.ndarray, length: int, start: int, end: int, k: int) -> np.ndarray:
    """Note(w, x) = mean of c_j over j = s-k .. t+k (t = end - 1), clipped to the real tokens 0..length-1."""
    lo, hi = max(start - k, 0), min(end - 1 + k, length - 1)
    return np.mean([hidden[j] for j in range(lo, hi + 1)], axis=0)


def test_window_notes_equal_float64_and_clip_at_the_sequence_edges():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 12, 5, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 8:] = 0  # row 1 has 8 real tokens
    hidden[1, 8:] = 0.0
    occ = [(0, 0, 1), (0, 10, 12), (1, 6, 8), (1, 3, 4), (0, 4, 7)]  # left edge, right edge, padding, middle
    rare = RareWords(*(torch.tensor(c) for c in zip(*[(r, s, e) for r, s, e in occ])),
                     torch.arange(len(occ)), SETTINGS)
    lo, hi = note_windows(rare, mask, window=2)
    assert lo.tolist() == [0, 8, 4, 1, 2] and hi.tolist() == [3, 12, 8, 6, 9]  # [lo, hi): clipped, no padding
    notes = window_notes(hidden.float(), rare, mask, window=2)  # float32, as in training
    lengths = mask.sum(1).tolist()
    for k, (r, s, e) in enumerate(occ):
        expected = reference_note(hidden[r].numpy(), lengths[r], s, e, 2)
        np.testing.assert_allclose(notes[k].double().numpy(), expected, rtol=1e-6, atol=1e-6)
    # k = 16 (the paper's window) on a short sequence: the whole real sequence
    wide = window_notes(hidden.float(), rare, mask, window=16)
    np.testing.assert_allclose(wide[2].double().numpy(), hidden[1, :8].mean(0).numpy(), rtol=1e-6, atol=1e-6)


def test_ema_update_equals_float64():
    g = torch.Generator().manual_seed(1)
    notes = torch.randn(6, 4, generator=g)
    has_note = torch.tensor([False, True, False, True, False, False])
    ref = notes.double().clone()
    words = torch.tensor([1, 2, 1, 3, 2, 2])
    new = torch.randn(6, 4, generator=g)
    ema_update(notes, has_note, words, new, gamma=0.1)
    for w in (1, 2, 3):
        mean = new.double()[words == w].mean(0)  # several occurrences in one step: averaged first
        ref[w] = 0.9 * ref[w] + 0.1 * mean if w in (1, 3) else mean  # word 2's first note is taken as is
    torch.testing.assert_close(notes.double(), ref, rtol=1e-6, atol=1e-6)
    assert has_note.tolist() == [False, True, True, True, False, False]


# -- input mixing ------------------------------------------------------------------------------------------


def _norm_inputs(objective, network, batch, call: int = 0) -> torch.Tensor:
    """The (B, T, E) input of ``network``'s embedding LayerNorm at its ``call``-th use in one forward of
    ``objective`` (ELECTRA's networks share it: the generator's call comes first, the discriminator's
    last)."""
    seen = []
    handle = network.encoder.embeddings.norm.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        objective(batch)
    finally:
        handle.remove()
    return seen[call].detach()


def _occurrences(rare) -> list[tuple[int, int, int, int]]:
    return list(zip(rare.rows.tolist(), rare.starts.tolist(), rare.ends.tolist(), rare.word_ids.tolist()))


def _pieces(batch, words) -> torch.Tensor:
    """(B, T) bool: the pieces of the occurrences of ``words``."""
    rare = batch.extras["rare_words"]
    out = torch.zeros(batch.input_ids.shape, dtype=torch.bool)
    for r, s, e, w in _occurrences(rare):
        if w in words:
            out[r, s:e] = True
    return out


def test_mixing_touches_exactly_the_pieces_of_words_with_a_note():
    tnf = tnf_objective().train()
    batch = tnf_batch()
    plain = _norm_inputs(tnf.inner, tnf.noted, batch)
    assert torch.equal(_norm_inputs(tnf, tnf.noted, batch), plain)  # no note yet: nothing changes
    torch.manual_seed(0)
    assert torch.equal(tnf(batch).loss, tnf.inner(batch).loss)
    tnf._pending.clear()

    note = torch.randn(32)
    tnf.notes[1], tnf.has_note[1] = note, True  # word 1 has a note; words 3 and 5 do not
    mixed = _norm_inputs(tnf, tnf.noted, batch)
    touched = _pieces(batch, {1})
    assert touched.sum() == 3  # row 0 pieces 2, 3 and row 1 piece 1
    assert torch.equal(mixed[~touched], plain[~touched])  # bit for bit elsewhere
    expected = (1 - LAMBDA) * plain.double()[touched] + LAMBDA * note.double()
    torch.testing.assert_close(mixed[touched].double(), expected, rtol=1e-6, atol=1e-6)


def test_window_mode_mixes_the_clipped_window_with_the_mean_of_overlapping_notes():
    tnf = tnf_objective(mix_positions="window", window=1).train()
    batch = tnf_batch(occurrences=((0, 2, 4, 1), (0, 6, 7, 3), (0, 7, 8, 5)))
    plain = _norm_inputs(tnf.inner, tnf.noted, batch)
    tnf.notes[1], tnf.notes[3] = torch.randn(32), torch.randn(32)
    tnf.has_note[1] = tnf.has_note[3] = True
    mixed = _norm_inputs(tnf, tnf.noted, batch)
    note = {1: tnf.notes[1].double(), 3: tnf.notes[3].double()}
    want = plain.double().clone()
    for t, notes in {1: [1], 2: [1], 3: [1], 4: [1], 5: [3], 6: [3], 7: [3]}.items():  # word 5 has no note
        want[0, t] = (1 - LAMBDA) * want[0, t] + LAMBDA * torch.stack([note[w] for w in notes]).mean(0)
    torch.testing.assert_close(mixed.double(), want, rtol=1e-6, atol=1e-6)
    assert torch.equal(mixed[1:], plain[1:])


def test_factorized_embeddings_mix_a_projected_note():
    tnf = tnf_objective(model={"embedding_size": 16}).train()
    assert tnf.project is not None and tnf.project.weight.shape == (16, 32)  # H -> E
    batch = tnf_batch()
    plain = _norm_inputs(tnf.inner, tnf.noted, batch)
    tnf.notes[1], tnf.has_note[1] = torch.randn(32), True
    mixed = _norm_inputs(tnf, tnf.noted, batch)
    touched = _pieces(batch, {1})
    projected = tnf.project.weight.detach().double() @ tnf.notes[1].double()  # (E,)
    torch.testing.assert_close(mixed[touched].double(), (1 - LAMBDA) * plain.double()[touched]
                               + LAMBDA * projected, rtol=1e-6, atol=1e-6)
    assert torch.equal(mixed[~touched], plain[~touched])
    tnf(batch).loss.backward()
    assert tnf.project.weight.grad is not None and tnf.project.weight.grad.abs().sum() > 0  # trained


def test_electra_notes_feed_the_discriminator_and_the_generator_gets_plain_input():
    tnf = tnf_objective("electra").train()
    assert tnf.noted is tnf.inner.discriminator and tnf.mlm_networks == [tnf.inner.generator]
    batch = tnf_batch()
    tnf.notes[1], tnf.has_note[1] = torch.randn(32), True
    torch.manual_seed(0)
    generator_plain = _norm_inputs(tnf.inner, tnf.inner.generator, batch)
    torch.manual_seed(0)
    generator_tnf = _norm_inputs(tnf, tnf.inner.generator, batch)
    assert torch.equal(generator_tnf, generator_plain)
    torch.manual_seed(0)
    disc_plain = _norm_inputs(tnf.inner, tnf.noted, batch, call=-1)
    torch.manual_seed(0)
    disc_tnf = _norm_inputs(tnf, tnf.noted, batch, call=-1)
    touched = _pieces(batch, {1})
    assert not torch.equal(disc_tnf[touched], disc_plain[touched])
    assert torch.equal(disc_tnf[~touched], disc_plain[~touched])
    tnf.after_step(1, _single())
    assert tnf.has_note[[1, 3, 5]].all()  # notes from the discriminator's outputs
    for network in (tnf.inner.generator, tnf.inner.discriminator):  # no hook left behind
        assert not network._forward_hooks and not network._forward_pre_hooks


# -- notes after each optimizer step -----------------------------------------------------------------------


def _single():
    from leanbert.train.distributed import DistEnv

    return DistEnv()  # one process on the CPU


def _hidden(tnf, batch) -> torch.Tensor:
    seen = []
    handle = tnf.noted.register_forward_hook(lambda m, a, out: seen.append(out.last_hidden_state.detach()))
    try:
        tnf(batch)
    finally:
        handle.remove()
    return seen[0].double()


def test_after_step_notes_equal_a_float64_recomputation_over_two_steps():
    tnf = tnf_objective(gamma=0.25).train()
    first, second = tnf_batch(seed=0), tnf_batch(seed=1, occurrences=((0, 1, 3, 1), (2, 5, 6, 3)))
    h1a, h1b = _hidden(tnf, first), _hidden(tnf, second)  # step 1: two micro-batches
    tnf.after_step(1, _single())
    ref = {}
    for hidden, batch in ((h1a, first), (h1b, second)):
        lengths = batch.attention_mask.sum(1).tolist()
        rare = batch.extras["rare_words"]
        for r, s, e, w in _occurrences(rare):
            ref.setdefault(w, []).append(reference_note(hidden[r].numpy(), lengths[r], s, e, 2))
    step1 = {w: np.mean(v, axis=0) for w, v in ref.items()}  # word 1 occurs 3 times: averaged first
    assert sorted(np.flatnonzero(tnf.has_note.numpy())) == [1, 3, 5]
    for w, note in step1.items():
        np.testing.assert_allclose(tnf.notes[w].double().numpy(), note, rtol=1e-5, atol=1e-6)

    h2 = _hidden(tnf, second)  # step 2: the notes now also change the input
    tnf.after_step(2, _single())
    lengths = second.attention_mask.sum(1).tolist()
    for r, s, e, w in ((0, 1, 3, 1), (2, 5, 6, 3)):
        expected = 0.75 * step1[w] + 0.25 * reference_note(h2[r].numpy(), lengths[r], s, e, 2)
        np.testing.assert_allclose(tnf.notes[w].double().numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tnf.notes[5].double().numpy(), step1[5], rtol=1e-6)  # not seen: unchanged


def test_eval_forward_takes_no_notes_and_mixes_only_when_asked():
    tnf = tnf_objective()
    batch = tnf_batch()
    tnf.notes[1], tnf.has_note[1] = torch.randn(32), True
    tnf.eval()
    plain = _norm_inputs(tnf.inner, tnf.noted, batch)
    assert torch.equal(_norm_inputs(tnf, tnf.noted, batch), plain) and not tnf._pending
    tnf.config.notes_in_eval = True
    assert not torch.equal(_norm_inputs(tnf, tnf.noted, batch), plain) and not tnf._pending


def test_metrics_split_mlm_into_rare_pieces_and_the_rest():
    tnf = tnf_objective().train()
    batch = tnf_batch()
    seen = []
    handle = tnf.noted.register_forward_hook(lambda m, a, out: seen.append(out.mlm_logits.detach()))
    metrics = tnf(batch).metrics
    handle.remove()
    masked = batch.labels != -100  # (B, T)
    rare = _pieces(batch, {1, 3, 5})[masked]  # (N,) in the head's row-major order
    logits, targets = seen[0].double(), batch.labels[masked]
    ce = -torch.log_softmax(logits, -1)[torch.arange(len(targets)), targets]
    assert metrics["mlm_rare_count"].item() == rare.sum().item() > 0
    assert metrics["mlm_rare_count"] + metrics["mlm_other_count"] == metrics["mlm_count"]
    torch.testing.assert_close(metrics["mlm_rare_loss"].double(), ce[rare].mean(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(metrics["mlm_other_loss"].double(), ce[~rare].mean(), rtol=1e-5, atol=1e-5)
    right = (logits.argmax(-1) == targets).double()
    torch.testing.assert_close(metrics["mlm_rare_accuracy"].double(), right[rare].mean())
    assert metrics["tnf_rare_sequence_fraction"].item() == 1.0 and metrics["tnf_sequences"].item() == 3
    assert tnf.metric_weights["mlm_rare_loss"] == "mlm_rare_count"


# -- configuration -----------------------------------------------------------------------------------------


def test_refusals_name_the_key():
    tnf = tnf_objective()
    batch = tnf_batch()
    batch.extras["rare_words"].settings = (5, 12, 8)
    with pytest.raises(ConfigError, match=r"table was made with .*\(5, 12, 8\).*leanbert rare-words"):
        tnf(batch)
    batch.extras = {}
    with pytest.raises(ConfigError, match=r"data.features: \[rare_words\]"):
        tnf(batch)
    with pytest.raises(ConfigError, match="tnf.max_count=5 is below tnf.min_count=10"):
        TnfConfig(min_count=10, max_count=5)
    with pytest.raises(ConfigError, match="tnf.mix_positions='span'"):
        TnfConfig(mix_positions="span")
    with pytest.raises(ConfigError, match=r"tnf.gamma=0 must be a number in \(0, 1\]"):
        TnfConfig(gamma=0)


def test_pretrain_config_implies_rare_words_and_refuses_a_contradiction(tmp_path):
    from leanbert.pretrain_config import load_pretrain_config

    config, _ = load_pretrain_config(None, ["tnf.enabled=true", "tnf.window=4"])
    assert config.data.features == ["rare_words"] and config.addons["tnf"].window == 4
    assert load_pretrain_config(None, [])[0].data.features == []
    with pytest.raises(ConfigError, match=r"data.rare_words=False does not fit tnf.enabled=true"):
        load_pretrain_config(None, ["tnf.enabled=true", "data.rare_words=false"])
    # the older spelling data.rare_words: true is the feature listed once, with or without tnf
    assert load_pretrain_config(None, ["data.rare_words=true"])[0].data.features == ["rare_words"]
    both = ["tnf.enabled=true", "data.rare_words=true", "data.features=[rare_words]"]
    assert load_pretrain_config(None, both)[0].data.features == ["rare_words"]
    with pytest.raises(ConfigError, match=r"data.rare_words=3 must be true or false"):
        load_pretrain_config(None, ["data.rare_words=3"])
    with pytest.raises(ConfigError, match=r"data.features: 'rare_word' is not a batch feature; choose from "):
        load_pretrain_config(None, ["data.features=[rare_word]"])


def test_a_run_directory_written_before_data_features_still_resumes():
    """config.yaml of older runs says data.rare_words: true/false; resuming compares it as today's."""
    from leanbert.pretrain import check_resume_compatible
    from leanbert.pretrain_config import load_pretrain_config

    for flag, extra in ((False, []), (True, ["tnf.enabled=true"])):
        config, _ = load_pretrain_config(None, extra)
        current = config.to_dict()
        saved = {**current, "data": {k: v for k, v in current["data"].items() if k != "features"}}
        saved["data"]["rare_words"] = flag
        assert check_resume_compatible(saved, current, Path("old/config.yaml")) == []
        assert load_pretrain_config(None, [], base=saved)[0].to_dict() == current
    with pytest.raises(ConfigError, match="cannot --resume"):  # a real change is still refused
        check_resume_compatible({**current, "data": {**saved["data"], "rare_words": False}}, current, Path("x"))


# -- DDP: 2 gloo processes ---------------------------------------------------------------------------------


def test_ddp_ranks_end_each_step_with_the_same_dictionary_as_one_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    worker = Path(__file__).with_name("tnf_ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(worker), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (load_file(str(tmp_path / f"notes-rank{r}.safetensors")) for r in range(2))
    assert torch.equal(rank0["notes"], rank1["notes"]) and torch.equal(rank0["has_note"], rank1["has_note"])

    from objectives.tnf_ddp_worker import occurrences

    single = tnf_objective().train()  # one process, the same 4 micro-batches per step in rank order
    for step in (1, 2, 3, 4):
        with torch.no_grad():
            for seed in range(10 * step, 10 * step + 4):
                single(tnf_batch(seed=seed, occurrences=occurrences(step, (seed - 10 * step) // 2)))
        single.after_step(step, _single())
    assert torch.equal(rank0["has_note"], single.has_note)
    torch.testing.assert_close(rank0["notes"], single.notes, rtol=1e-6, atol=1e-7)


# -- a tiny run: trains, resumes exactly, and the model has no notes --------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared_data) -> Path:
    from leanbert.addons.tnf.rare_words import RareWordSettings, build_rare_word_table, write_rare_word_table
    from leanbert.data.prepare import prepare_dataset
    from leanbert.data.tokenizer import load_tokenizer, train_tokenizer

    root = tmp_path_factory.mktemp("tnf-data")
    corpus = Path(shared_data) / "corpus" / "movie-reviews.txt"
    lines = corpus.read_text(encoding="utf-8").splitlines()[:400]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_tokenizer([str(root / "corpus.txt")], root / "tok", vocab_size=400, lowercase=True)
    prepare_dataset([str(root / "corpus.txt")], root / "tok", root / "data", valid_fraction=0.1,
                    progress=False)
    table = build_rare_word_table(root / "data", load_tokenizer(root / "tok"), RareWordSettings(3, 30, 300))
    write_rare_word_table(root / "data", table)
    return root / "data"


def _settings(data: Path, max_steps: int, objective: str = "mlm") -> list[str]:
    return ["model.preset=bert-tiny", "model.hidden_size=32", "model.num_heads=2",
            "model.intermediate_size=64", "model.num_layers=1", "model.hidden_dropout=0.0",
            "model.attention_dropout=0.0",
            f"objective.name={objective}", f"data.path={data}", "data.seq_len=32", "train.batch_size=4",
            f"train.max_steps={max_steps}", "train.log_every=1", "train.eval_every=2", "train.eval_batches=1",
            "train.checkpoint_every=2", "train.warmup_steps=0", "train.schedule=constant", "train.device=cpu",
            "tnf.enabled=true", "tnf.min_count=3", "tnf.max_count=30", "tnf.max_words=300", "tnf.window=4"]


def _rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_resumes_exactly_with_notes_and_its_model_finetunes_and_exports_without_them(tmp_path,
                                                                                              dataset):
    from leanbert.finetune.run import finetune
    from leanbert.interop.hf import export_to_hf
    from leanbert.model_dir import load_model
    from leanbert.pretrain import pretrain
    from leanbert.pretrain_config import load_pretrain_config
    from leanbert.tasks.sequence_data import load_task_data

    config, _ = load_pretrain_config(None, _settings(dataset, 4))
    pretrain(config, tmp_path / "full", progress=False)
    pretrain(load_pretrain_config(None, _settings(dataset, 2))[0], tmp_path / "part", progress=False)
    pretrain(config, tmp_path / "part", resume=True, progress=False)
    full, part = _rows(tmp_path / "full"), _rows(tmp_path / "part")
    losses = {r["step"]: r["loss"] for r in full if "loss" in r}
    assert {r["step"]: r["loss"] for r in part if "loss" in r} == losses and len(losses) == 4
    train_rows = [r for r in full if "loss" in r]
    assert all(0 < r["tnf_rare_sequence_fraction"] <= 1 for r in train_rows)
    assert train_rows[0]["tnf_notes_filled"] == 0 < train_rows[-1]["tnf_notes_filled"]
    assert any("val_mlm_rare_loss" in r for r in full)
    saved = {run: load_file(str(tmp_path / run / "checkpoints" / "step-4" / "objective.safetensors"))
             for run in ("full", "part")}
    assert saved["full"]["has_note"].any()
    for key in saved["full"]:
        assert torch.equal(saved["full"][key], saved["part"][key]), key  # notes and weights, bit for bit

    model_dir = tmp_path / "full" / "model"
    stored = set(load_file(str(next(model_dir.rglob("*.safetensors")))))
    assert not any("note" in key or key.startswith("project") for key in stored)
    model = load_model(model_dir).eval()
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        assert torch.isfinite(model(ids, torch.ones_like(ids)).last_hidden_state).all()
    assert (export_to_hf(model_dir, tmp_path / "hf") / "config.json").is_file()
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("dev", 8)):
        with open(tmp_path / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for _ in range(n):
                label = int(rng.integers(2))
                f.write(json.dumps({"text": "a good film" if label else "a bad plot", "label": label}) + "\n")
    task = load_task_data("custom", train=tmp_path / "train.jsonl", dev=tmp_path / "dev.jsonl",
                          text_columns="text", label_column="label")
    result = finetune(tmp_path / "full", task, tmp_path / "ft", ["train.max_steps=2", "data.max_seq_len=16"],
                      progress=False, log=lambda *_: None)
    assert 0 <= result.metrics["accuracy"] <= 1


def test_tiny_electra_run_trains_with_notes(tmp_path, dataset):
    from leanbert.pretrain import pretrain
    from leanbert.pretrain_config import load_pretrain_config

    settings = _settings(dataset, 2, "electra") + ["model.preset=electra-small", "model.embedding_size=16",
                                                   "model.num_heads=4", "train.checkpoint_every=0"]
    pretrain(load_pretrain_config(None, settings)[0], tmp_path / "run", progress=False)
    last = [r for r in _rows(tmp_path / "run") if "loss" in r][-1]
    assert last["tnf_notes_filled"] > 0 and "rtd_loss" in last and "mlm_rare_count" in last
    assert sorted(p.name for p in (tmp_path / "run" / "model").iterdir()) == ["discriminator", "generator",
                                                                               "roles.json"]

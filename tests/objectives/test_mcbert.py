"""MC-BERT (objective.name=mcbert): the candidate/label rules, sampling, gradients, the loss in float64,
embedding sharing, and a tiny run that trains, resumes exactly, fine-tunes and exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import randomize_, tiny_config
from leanbert.data.masking import Masker
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer
from leanbert.finetune.run import finetune
from leanbert.interop.hf import export_to_hf
from leanbert.model_dir import load_model
from leanbert.objectives import build_objective, objective_config
from leanbert.objectives.mcbert import CHOICE_HEAD, NEITHER, MCBert, multi_choice_targets
from leanbert.objectives.registry import training_flops_per_token
from leanbert.objectives.vocab_softmax import vocab_softmax
from leanbert.pretrain import pretrain
from leanbert.pretrain_config import load_pretrain_config
from leanbert.tasks.sequence_data import load_task_data

N = NEITHER


def test_candidates_and_labels_on_hand_made_cases():
    original = torch.tensor([[10, 11, 12, 13, 14]])
    chosen = torch.tensor([[False, True, True, True, False]])
    samples = torch.tensor([[[20, 21, 22],    # not chosen: input stays, candidates as drawn
                             [30, 31, 33],    # chosen, sample 30 != 11: replaced, original into slot 1
                             [12, 40, 12],    # chosen, sample equals the original: not replaced, duplicate kept
                             [50, 50, 13],    # replaced; the original also drawn in slot 2: a duplicate
                             [14, 14, 14]]])  # not chosen, the controller drew the input itself
    before = samples.clone()
    corrupted, candidates, labels = multi_choice_targets(samples, original, chosen)
    assert corrupted.tolist() == [[10, 30, 12, 50, 14]]
    assert candidates.tolist() == [[[N, 21, 22], [N, 11, 33], [N, 40, 12], [N, 13, 13], [N, 14, 14]]]
    assert labels.tolist() == [[0, 1, 0, 1, 0]]
    assert torch.equal(samples, before)  # pure: the inputs are not modified


def test_mask_mode_puts_mask_at_every_chosen_position():
    masker = Masker(mask_prob=0.15, masking="mask", whole_word=False, ngram=1, max_predictions=0, mask_id=4,
                    word_start=np.ones(100, dtype=bool), replace_pool=np.arange(5, 100))
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, size=(64, 40))
    inputs, labels = masker.mask_batch(ids, np.ones_like(ids, dtype=bool), rng)
    chosen = labels != -100
    assert chosen.sum() == 64 * 6 and (inputs[chosen] == 4).all() and (inputs[~chosen] == ids[~chosen]).all()


def test_k_draws_per_row_are_columnwise_single_draws():
    torch.manual_seed(0)
    logits = torch.randn(7, 13)
    targets = torch.randint(0, 13, (7,))
    uniforms = torch.rand(7, 4)
    _, _, many = vocab_softmax(logits, targets, uniforms)
    assert many.shape == (7, 4)
    for j in range(4):
        _, _, one = vocab_softmax(logits, targets, uniforms[:, j].contiguous())
        assert torch.equal(many[:, j], one)


def _objective(make_batch, **fields):
    torch.manual_seed(0)
    config = tiny_config(family="electra", vocab_size=11, hidden_size=24, num_heads=4, intermediate_size=48)
    objective = build_objective(objective_config("mcbert", controller_divider=2, **fields), config)
    randomize_(objective, std=0.5)
    return objective, make_batch(vocab=11)


def test_sampled_candidates_follow_the_controller_softmax(make_batch):
    """K = 4000 draws per position, each draw against the controller's float64 softmax (recomputed over all
    positions): every frequency within 5 binomial standard deviations (+1e-3) of its probability."""
    objective, batch = _objective(make_batch, num_candidates=4000)
    objective.eval()
    with torch.no_grad():
        step = objective.step(batch)
        ctrl = objective.controller(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    probs = torch.softmax(ctrl.mlm_logits.double(), -1)  # (B, T, V)
    real = batch.attention_mask.bool()
    samples = step.samples[real]  # (R, K)
    freq = F.one_hot(samples, 11).double().mean(1)  # (R, V)
    p = probs[real]
    bound = 5 * (p * (1 - p) / samples.shape[1]).sqrt() + 1e-3
    assert ((freq - p).abs() <= bound).all(), (freq - p).abs().max()
    # the corrupted input takes draw 0 at the masked positions
    assert torch.equal(step.corrupted[step.positions], step.samples[..., 0][step.positions])


def test_no_gradient_reaches_the_controller_through_the_samples(make_batch):
    objective, batch = _objective(make_batch, mlm_weight=0.0)
    step = objective.step(batch)
    assert not step.samples.requires_grad and not step.candidates.requires_grad
    step.output.loss.backward()
    shared = {id(objective.main.encoder.embeddings.word_embeddings.weight),
              id(objective.main.heads[CHOICE_HEAD].bias)}
    own = [(n, p) for n, p in objective.controller.named_parameters() if id(p) not in shared]
    assert own and all(p.grad is None or not p.grad.any() for _, p in own), [n for n, p in own if p.grad is not None]
    assert objective.main.encoder.attention[0].qkv.weight.grad.abs().sum() > 0


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def test_loss_equals_a_float64_recomputation(make_batch):
    objective, batch = _objective(make_batch, num_candidates=5, choice_weight=7.0, mlm_weight=0.5)
    objective.double()
    torch.manual_seed(3)
    step = objective.step(batch)
    # controller MLM: mean over masked tokens of -log softmax at the original token
    targets = batch.labels[step.positions]
    mlm = -torch.log_softmax(step.ctrl_logits, -1).gather(1, targets[:, None]).mean()
    # main head from its formulas: LayerNorm(gelu(dense h)), then h . E[c] + b[c], NEITHER's own vector/bias
    head = objective.main.heads[CHOICE_HEAD]
    hidden = objective.main(step.corrupted, batch.attention_mask, batch.token_type_ids,
                            head_inputs={"candidates": step.candidates}).last_hidden_state
    x = hidden @ head.dense.weight.T + head.dense.bias
    x = 0.5 * x * (1 + torch.erf(x / 2 ** 0.5))
    x = _layer_norm(x, head.norm.weight, head.norm.bias, head.norm.eps)
    table = objective.main.encoder.embeddings.word_embeddings.weight
    logits = torch.empty(step.candidates.shape, dtype=torch.float64)
    for idx in np.ndindex(*step.candidates.shape):
        c = int(step.candidates[idx])
        vec, b = (head.neither, head.neither_bias) if c == NEITHER else (table[c], head.bias[c])
        logits[idx] = x[idx[:2]] @ vec + b
    torch.testing.assert_close(step.choice_logits, logits, rtol=1e-10, atol=1e-10)
    real = batch.attention_mask.bool()
    choice = -torch.log_softmax(logits[real], -1).gather(1, step.labels[real][:, None]).mean()
    torch.testing.assert_close(step.output.loss, 0.5 * mlm + 7.0 * choice, rtol=1e-10, atol=1e-10)
    assert step.output.metrics["choice_replaced"] == step.labels[real].sum()


def test_one_embedding_table_trained_by_both_networks(make_batch):
    objective, batch = _objective(make_batch)
    table = objective.main.encoder.embeddings.word_embeddings
    assert objective.controller.encoder.embeddings.word_embeddings.table is table
    assert objective.controller.heads["mlm"].bias is objective.main.heads[CHOICE_HEAD].bias
    for mlm_weight, choice_weight in ((1.0, 0.0), (0.0, 1.0)):  # controller alone, main model alone
        objective.zero_grad()
        objective.objective_config.mlm_weight, objective.objective_config.choice_weight = mlm_weight, choice_weight
        objective(batch).loss.backward()
        assert table.weight.grad.abs().sum() > 0 and objective.main.heads[CHOICE_HEAD].bias.grad.abs().sum() > 0
    # checkpoints hold each shared tensor once and restore the sharing
    state = objective.state_dict()
    assert not any(k.startswith("controller.encoder.embeddings.word_embeddings.table") for k in state)
    assert "controller.heads.mlm.bias" not in state
    torch.manual_seed(1)
    fresh = build_objective(objective.objective_config, objective.main.config)
    fresh.load_state_dict(state)
    assert fresh.controller.encoder.embeddings.word_embeddings.table is fresh.main.encoder.embeddings.word_embeddings
    torch.testing.assert_close(fresh.controller.word_embeddings, objective.controller.word_embeddings)


def test_models_are_a_plain_encoder_and_a_plain_mlm(make_batch):
    objective, batch = _objective(make_batch)
    objective.eval()
    models = objective.models()
    assert models["discriminator"].config.heads == [] and models["controller"].config.heads == ["mlm"]
    with torch.no_grad():
        ours = objective.controller(batch.input_ids, batch.attention_mask, batch.token_type_ids).mlm_logits
        plain = models["controller"](batch.input_ids, batch.attention_mask, batch.token_type_ids).mlm_logits
        torch.testing.assert_close(plain, ours)
        enc = objective.main(batch.input_ids, batch.attention_mask, head_inputs={"candidates": batch.input_ids[
            ..., None]}).last_hidden_state
        torch.testing.assert_close(models["discriminator"](batch.input_ids, batch.attention_mask).last_hidden_state,
                                   enc)


def test_controller_shape_and_flops():
    from leanbert.objectives.mcbert import controller_config

    base = tiny_config(hidden_size=48, num_heads=6, intermediate_size=96, embedding_size=16)
    ctrl = controller_config(base, 3)
    assert (ctrl.hidden_size, ctrl.num_heads, ctrl.intermediate_size, ctrl.num_layers) == (16, 2, 32, 2)
    data = load_pretrain_config(None, ["data.seq_len=32"])[0].data
    mc = training_flops_per_token(base, objective_config("mcbert"), data)
    mlm = training_flops_per_token(base, objective_config("mlm"), data)
    assert mc > mlm > 0


# -- a tiny run through leanbert.pretrain: trains, resumes exactly, fine-tunes, exports ----------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("mcbert-data")
    lines = (Path(shared_data) / "corpus" / "movie-reviews.txt").read_text(encoding="utf-8").splitlines()[:400]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_tokenizer([str(root / "corpus.txt")], root / "tok", vocab_size=400, lowercase=True)
    prepare_dataset([str(root / "corpus.txt")], root / "tok", root / "data", valid_fraction=0.1, progress=False)
    return root / "data"


def _settings(data: Path, max_steps: int) -> list[str]:
    return ["model.preset=electra-small", "model.hidden_size=32", "model.num_heads=4", "model.embedding_size=16",
            "model.intermediate_size=64", "model.num_layers=2", "model.hidden_dropout=0.0",
            "model.attention_dropout=0.0", "objective.name=mcbert", "objective.controller_divider=2",
            "objective.num_candidates=4", f"data.path={data}", "data.seq_len=32", "train.batch_size=4",
            f"train.max_steps={max_steps}", "train.log_every=1", "train.eval_every=2", "train.eval_batches=1",
            "train.checkpoint_every=2", "train.warmup_steps=0", "train.schedule=constant", "train.device=cpu"]


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_tiny_run_trains_resumes_exactly_finetunes_and_exports(tmp_path, dataset):
    config, _ = load_pretrain_config(None, _settings(dataset, 4))
    assert config.data.masking == "mask" and config.data.pairs == "none"
    pretrain(config, tmp_path / "full", progress=False)
    pretrain(load_pretrain_config(None, _settings(dataset, 2))[0], tmp_path / "part", progress=False)
    pretrain(config, tmp_path / "part", resume=True, progress=False)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full") and len(_losses(tmp_path / "full")) == 4
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_choice_accuracy" in r][-1]
    assert {"val_mlm_accuracy", "val_choice_replaced_accuracy", "val_choice_original_accuracy",
            "val_choice_all_neither_accuracy"} <= set(val)

    model_dir = tmp_path / "full" / "model"
    import transformers

    ids = torch.tensor([[2, 10, 11, 12, 3]])
    for name, cls_name, field in (("discriminator", "ElectraModel", "last_hidden_state"),
                                  ("controller", "ElectraForMaskedLM", "mlm_logits")):
        model = load_model(model_dir / name).eval()
        hf_dir = export_to_hf(model_dir / name, tmp_path / f"hf-{name}")
        assert json.loads((hf_dir / "config.json").read_text())["architectures"] == [cls_name]
        hf_model = getattr(transformers, cls_name).from_pretrained(hf_dir).eval()
        with torch.no_grad():
            ours = getattr(model(ids, torch.ones_like(ids)), field)
            theirs = hf_model(ids, attention_mask=torch.ones_like(ids))
            theirs = theirs.logits if field == "mlm_logits" else theirs.last_hidden_state
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)

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
    assert isinstance(build_objective(config.objective, config.model_config()), MCBert)


def test_cpu_recipe_resolves_to_mcbert_with_mask_masking():
    recipe = Path(__file__).resolve().parents[2] / "configs" / "mcbert-cpu.yaml"
    config, _ = load_pretrain_config(str(recipe), [])
    assert config.objective == objective_config("mcbert", controller_divider=2)
    assert config.data.masking == "mask" and config.model_config().hidden_size == 128

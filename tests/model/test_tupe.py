"""TUPE (Ke, He, Liu, ICLR 2021) and relative buckets: the encoder's attention logits against the paper's
equations re-computed in float64, padding invariance, one position term per forward, parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import randomize_, tiny_config
from leanbert.config import ConfigError
from leanbert.finetune.layer_decay import parameter_depths
from leanbert.model.model import LeanBertModel
from leanbert.model.padding import set_unpadding
from leanbert.model.positions.relative import relative_bucket_ids

SCHEMES = {  # the paper's four rows, plus the untied-[CLS] variants
    "bert-a": dict(position="absolute"),
    "bert-r": dict(position="absolute", position_options=dict(relative_buckets=8, relative_max_distance=12)),
    "tupe-a": dict(position="tupe"),
    "tupe-r": dict(position="tupe", position_options=dict(relative_buckets=8, relative_max_distance=12)),
    "tupe-r-learned-theta": dict(position="tupe", position_options=dict(relative_buckets=8, relative_max_distance=12,
                                                                        cls_theta="learned")),
    "tupe-a-tied-cls": dict(position="tupe", position_options=dict(untie_cls=False)),
    "bert-r-tied-cls": dict(position="absolute", position_options=dict(relative_buckets=8, relative_max_distance=12,
                                                                       untie_cls=False)),
}


def t5_bucket(offset: int, num_buckets: int, max_distance: int) -> int:
    """T5's bidirectional bucket of key - query = ``offset``, written from the paper's description: half the
    buckets per direction (keys after the query in the upper half), exact below half of a half, then
    logarithmic up to max_distance."""
    half = num_buckets // 2
    base = half if offset > 0 else 0
    n, exact = abs(offset), half // 2
    if n < exact:
        return base + n
    return base + min(half - 1, exact + int(math.log(n / exact) / math.log(max_distance / exact) * (half - exact)))


def relative_term(table: torch.Tensor, T: int, num_buckets: int, max_distance: int, untie: bool) -> torch.Tensor:
    """(heads, T, T) float64: b[bucket(i, j)] with TUPE's two [CLS] buckets when ``untie``."""
    out = torch.empty(table.shape[1], T, T, dtype=torch.float64)
    for i in range(T):
        for j in range(T):
            bucket = t5_bucket(j - i, num_buckets, max_distance)
            if untie and i == 0:
                bucket = num_buckets // 2  # [CLS] to others
            elif untie and j == 0:
                bucket = num_buckets  # others to [CLS]
            out[:, i, j] = table[bucket]
    return out


def position_logits(model: LeanBertModel, T: int) -> torch.Tensor | None:
    """The paper's per-head position logits (heads, T, T) in float64, or None for BERT-A."""
    cfg = model.config
    p = {k: v.double() for k, v in model.state_dict().items()}
    nh, d = cfg.num_heads, cfg.head_dim
    pre = "encoder.embeddings.position_embeddings."
    opts = cfg.scheme_options
    term = None
    if cfg.position == "tupe":
        rows = F.layer_norm(p[pre + "table.weight"][: T + 1], (cfg.hidden_size,), p[pre + "norm.weight"],
                            p[pre + "norm.bias"], cfg.layer_norm_eps)
        pq = (rows @ p[pre + "query.weight"].T + p[pre + "query.bias"]).view(T + 1, nh, d)
        pk = (rows @ p[pre + "key.weight"].T + p[pre + "key.bias"]).view(T + 1, nh, d)
        term = torch.empty(nh, T, T, dtype=torch.float64)
        for h in range(nh):
            for i in range(T):
                for j in range(T):  # token t at table row t + 1
                    term[h, i, j] = pq[i + 1, h] @ pk[j + 1, h] / math.sqrt(2 * d)
            if opts.untie_cls:  # reset(): theta_1 on row 0 (incl. [CLS]->[CLS]), theta_2 on column 0
                if opts.cls_theta == "learned":
                    theta1, theta2 = p[pre + "cls_to_others"][h], p[pre + "others_to_cls"][h]
                else:  # the reference: from virtual row 0 and row 1
                    theta1 = pq[0, h] @ pk[0, h] / math.sqrt(2 * d)
                    theta2 = pq[1, h] @ pk[1, h] / math.sqrt(2 * d)
                term[h, 1:, 0] = theta2
                term[h, 0, :] = theta1
    if opts.relative_buckets:
        rel = relative_term(p[pre + "relative.bias.weight"], T, opts.relative_buckets, opts.relative_max_distance,
                            opts.untie_cls)
        term = rel if term is None else term + rel
    return term


def reference_forward(model: LeanBertModel, ids, mask, types):
    """Final hidden states and every layer's pre-softmax logits, from the parameters in float64."""
    cfg = model.config
    enc = model.encoder
    p = {k: v.double() for k, v in model.state_dict().items()}
    T = ids.shape[1]
    nh, d = cfg.num_heads, cfg.head_dim
    x = p["encoder.embeddings.word_embeddings.weight"][ids]
    if cfg.position == "absolute":
        x = x + p["encoder.embeddings.position_embeddings.weight"][:T]
    x = x + p["encoder.embeddings.token_type_embeddings.weight"][types]
    x = F.layer_norm(x, (cfg.embedding_size,), p["encoder.embeddings.norm.weight"],
                     p["encoder.embeddings.norm.bias"], cfg.layer_norm_eps)
    if cfg.embedding_size != cfg.hidden_size:
        x = x @ p["encoder.embeddings.project.weight"].T + p["encoder.embeddings.project.bias"]
    word_scale = 1 / math.sqrt(2 * d) if cfg.position == "tupe" else 1 / math.sqrt(d)
    position = position_logits(model, T)
    all_scores = []
    for layer in range(cfg.num_layers):
        a = f"encoder.attention.{enc.attention_index[layer]}."
        q, k, v = (x @ p[a + "qkv.weight"].T + p[a + "qkv.bias"]).split(cfg.hidden_size, dim=-1)
        heads = lambda t: t.view(t.shape[0], T, nh, d).transpose(1, 2)  # noqa: E731
        scores = heads(q) @ heads(k).transpose(-1, -2) * word_scale  # (B, nh, T, T)
        if position is not None:
            scores = scores + position
        all_scores.append(scores)
        probs = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf")).softmax(-1)
        ctx = (probs @ heads(v)).transpose(1, 2).reshape(x.shape)
        x = F.layer_norm(x + ctx @ p[a + "out.weight"].T + p[a + "out.bias"], (cfg.hidden_size,),
                         p[a + "norm.weight"], p[a + "norm.bias"], cfg.layer_norm_eps)
        f = f"encoder.ffn.{enc.ffn_index[layer]}."
        h = F.gelu(x @ p[f + "fc_in.weight"].T + p[f + "fc_in.bias"]) @ p[f + "fc_out.weight"].T + p[f + "fc_out.bias"]
        x = F.layer_norm(x + h, (cfg.hidden_size,), p[f + "norm.weight"], p[f + "norm.bias"], cfg.layer_norm_eps)
    return x, all_scores


def odd_inputs(batch: int = 3, length: int = 13, seed: int = 0):
    """Odd length; with batch > 1, row 1 padded after 5 tokens (fill < 0.95, so the encoder unpads)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 101, (batch, length), generator=g)
    ids[:, 0] = 2  # [CLS]
    mask = torch.ones_like(ids)
    mask[1:2, 5:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, length // 2:] = 1
    return ids, mask, types


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("sharing, embedding_size", [("none", 32), ("all", 16)])
def test_logits_and_outputs_match_the_papers_equations_in_float64(scheme, sharing, embedding_size):
    model = LeanBertModel(tiny_config(sharing=sharing, embedding_size=embedding_size, num_layers=3,
                                      **SCHEMES[scheme])).eval()
    randomize_(model)
    ids, mask, types = odd_inputs()
    with torch.no_grad():
        out = model(ids, mask, types, output_attention_scores=True)
        fast = model(ids, mask, types).last_hidden_state  # the SDPA path, bias as attn_mask
    ref_hidden, ref_scores = reference_forward(model, ids, mask, types)
    real = (mask[:, None, :, None] * mask[:, None, None, :]).bool()  # (B, 1, T, T) padding rows/cols are moot
    for ours, theirs in zip(out.attention_scores, ref_scores, strict=True):
        real_pairs = real.expand_as(ours)
        torch.testing.assert_close(ours[real_pairs].double(), theirs[real_pairs], atol=2e-5, rtol=1e-5)
    keep = mask.bool()
    torch.testing.assert_close(out.last_hidden_state[keep].double(), ref_hidden[keep], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(fast, out.last_hidden_state, atol=2e-5, rtol=1e-5)


def test_t5_buckets_match_hand_computed_values():
    ids = relative_bucket_ids(300, 32, 128)  # [query, key]
    expected = {-1: 1, 1: 17, -7: 7, -8: 8, 20: 16 + 8 + 2, -127: 15, -128: 15, -250: 15, 250: 31, 0: 0}
    for offset, bucket in expected.items():
        query = 299 if offset < 0 else 0
        assert ids[query, query + offset] == bucket == t5_bucket(offset, 32, 128), offset


@pytest.mark.parametrize("scheme", ["tupe-a", "tupe-r", "bert-r"])
@pytest.mark.parametrize("unpad", [True, False])
def test_padding_leaves_real_tokens_unchanged(scheme, unpad):
    model = LeanBertModel(tiny_config(**SCHEMES[scheme])).eval()
    randomize_(model)
    set_unpadding(model, unpad)
    ids, mask, types = odd_inputs(batch=1, length=9)
    padded_ids = torch.cat([ids, torch.zeros(1, 8, dtype=ids.dtype)], 1)  # fill 9/17: unpads when enabled
    padded_mask = torch.cat([mask, torch.zeros(1, 8, dtype=mask.dtype)], 1)
    padded_types = torch.cat([types, torch.zeros(1, 8, dtype=types.dtype)], 1)
    with torch.no_grad():
        alone = model(ids, mask, types).last_hidden_state  # (1, 9, H)
        padded = model(padded_ids, padded_mask, padded_types).last_hidden_state[:, :9]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_layers, sharing", [(1, "none"), (4, "none"), (4, "all")])
@pytest.mark.parametrize("scheme", ["tupe-a", "tupe-r"])
def test_position_term_is_computed_once_per_forward(num_layers, sharing, scheme):
    model = LeanBertModel(tiny_config(num_layers=num_layers, sharing=sharing, **SCHEMES[scheme]))
    positions = model.encoder.embeddings.position_embeddings
    calls = []
    watched = [positions.query, positions.key, positions.norm]
    if positions.relative is not None:
        watched.append(positions.relative)
    for module in watched:
        module.register_forward_hook(lambda mod, args, out: calls.append(type(mod).__name__))
    ids, mask, types = odd_inputs()
    model(ids, mask, types, output_attention_scores=True)
    model(ids, mask, types)
    assert len(calls) == 2 * len(watched)


def test_tupe_adds_what_the_paper_says_for_bert_base():
    from leanbert.commands.params_cmd import count_parameters

    base = count_parameters("bert-base")["total"]
    tupe = count_parameters("bert-base", ["position=tupe"])["total"]
    hidden = 768
    added = (513 * hidden + 2 * hidden) + 2 * (hidden * hidden + hidden)  # table + its LayerNorm + U_Q, U_K
    assert tupe - base == added - 512 * hidden  # BERT's (512 x 768) input table goes away
    assert round((tupe - base) / 1e6, 2) == 1.18  # the paper: "about 1.18M" more
    tupe_r = count_parameters("bert-base", ["position=tupe", "relative_buckets=32"])["total"]
    assert tupe_r - tupe == 33 * 12  # 32 buckets + one for "others to [CLS]", per head


def test_params_command_shows_the_tupe_count(capsys):
    from leanbert.cli import main

    assert main(["params", "bert-base", "position=tupe", "--json"]) == 0
    import json

    shown = json.loads(capsys.readouterr().out)["total"]
    assert main(["params", "bert-base", "--json"]) == 0
    assert shown - json.loads(capsys.readouterr().out)["total"] == 1_183_488


def test_position_parameters_get_the_embeddings_depth_in_layer_decay():
    model = LeanBertModel(tiny_config(num_layers=3, heads=["classifier"], **SCHEMES["tupe-r"]))
    depths = parameter_depths(model)
    position = {n: d for n, d in depths.items() if ".position_embeddings." in n}
    assert len(position) >= 8 and set(position.values()) == {0.0}


def test_untied_cls_thetas_are_free_parameters_when_learned():
    model = LeanBertModel(tiny_config(**SCHEMES["tupe-r-learned-theta"]))
    positions = model.encoder.embeddings.position_embeddings
    ids, mask, types = odd_inputs()
    model(ids, mask, types).last_hidden_state.square().sum().backward()
    assert positions.cls_to_others.grad.abs().sum() > 0 and positions.others_to_cls.grad.abs().sum() > 0


def test_bf16_autocast_runs_and_stays_close():
    model = LeanBertModel(tiny_config(**SCHEMES["tupe-r"])).eval()
    ids, mask, types = odd_inputs()
    with torch.no_grad():
        full = model(ids, mask, types).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(ids, mask, types).last_hidden_state
            term = model.encoder.embeddings.position_embeddings.attention_bias(13)
    assert term.dtype == torch.bfloat16  # the position projections run in bf16
    keep = mask.bool()
    assert torch.isfinite(half).all() and (half.float() - full)[keep].abs().max() < 0.1


@pytest.mark.parametrize("fields, message", [
    (dict(position="rope"), "model.position='rope' is not allowed"),
    (dict(position_options=dict(relative_buckets=7)), "model.position_options.relative_buckets=7"),
    (dict(position_options=dict(relative_buckets=2)), "model.position_options.relative_buckets=2"),
    (dict(position_options=dict(relative_buckets=32, relative_max_distance=8)),
     "model.position_options.relative_max_distance=8"),
    (dict(position="tupe", position_options=dict(cls_theta="free")),
     "model.position_options.cls_theta='free' is not allowed"),
    (dict(position_options=dict(cls_theta="learned")), "unknown key model.position_options.cls_theta"),
    (dict(position_options=7), "model.position_options=7 must be a mapping"),
])
def test_bad_position_keys_name_the_key(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_config(**fields)


def test_too_long_input_is_refused():
    model = LeanBertModel(tiny_config(position="tupe", max_positions=8))
    with pytest.raises(ValueError, match="max_positions=8"):
        model(torch.full((1, 9), 7))


# ------------------------------------------------------------------------------------------------------------
# A few pretraining steps per scheme through the CLI: trains, checkpoints, resumes exactly.

@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, shared_data):
    """A 300-piece WordPiece tokenizer and prepared shards from 300 lines each of the Wikipedia sample and the
    movie reviews (enough documents for a validation split)."""
    from pathlib import Path

    from leanbert.cli import main

    root = tmp_path_factory.mktemp("tupe-data")
    corpus = root / "slice.txt"
    parts = []
    for name in ("wiki-sample.txt", "movie-reviews.txt"):
        lines = (Path(shared_data) / "corpus" / name).read_text(encoding="utf-8").splitlines()[:300]
        parts.append("\n".join(lines).strip() + "\n")
    corpus.write_text("\n".join(parts), encoding="utf-8")
    assert main(["tokenizer", "train", str(corpus), "--out", str(root / "tok"), "--kind", "wordpiece",
                 "--vocab-size", "300", "--lowercase"]) == 0
    assert main(["prepare", str(corpus), "--tokenizer", str(root / "tok"), "--out", str(root / "data"),
                 "--valid-fraction", "0.1", "--quiet"]) == 0
    return root / "data"


PAPER_ROWS = {
    "bert-a": ["model.position=absolute", "model.relative_buckets=0"],
    "bert-r": ["model.position=absolute"],
    "tupe-a": ["model.relative_buckets=0"],
    "tupe-r": [],
}


@pytest.mark.parametrize("row", list(PAPER_ROWS))
def test_each_scheme_pretrains_and_resumes_exactly(tmp_path, tiny_dataset, row):
    import json
    from pathlib import Path

    from leanbert.cli import main
    from leanbert.model_dir import load_model

    recipe = Path(__file__).resolve().parents[2] / "configs" / "tupe-cpu.yaml"
    settings = ["--config", str(recipe), f"data.path={tiny_dataset}", "model.hidden_size=32", "model.num_layers=2",
                "model.intermediate_size=64", "model.max_positions=32", "model.relative_buckets=8",
                "model.relative_max_distance=16", "data.seq_len=24", "train.batch_size=4", "train.max_minutes=0",
                "train.schedule=constant", "train.warmup_steps=0", "train.log_every=1", "train.eval_every=2", "train.eval_batches=1",
                "train.checkpoint_every=2", *PAPER_ROWS[row]]

    def losses(run: Path) -> dict[int, float]:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in rows if "loss" in r}

    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["pretrain", *settings, "train.max_steps=4", "--out", str(full), "--no-progress"]) == 0
    assert main(["pretrain", *settings, "train.max_steps=2", "--out", str(part), "--no-progress"]) == 0
    assert main(["pretrain", "--out", str(part), "--resume", "train.max_steps=4", "--no-progress"]) == 0
    assert losses(part) == losses(full) and len(losses(full)) == 4  # same batches, masks and updates
    val = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines() if "val_loss" in x]
    assert [v["step"] for v in val] == [0, 2, 4]
    model = load_model(full / "model")
    assert model.config.position == ("tupe" if row.startswith("tupe") else "absolute")
    assert model.config.position_options["relative_buckets"] == (8 if row.endswith("-r") else 0)

    # fine-tuning keeps the scheme (the paper fine-tunes with the same position flags)
    words = ["good", "bad", "film", "plot", "great", "awful"]
    for name, n in (("train.tsv", 24), ("dev.tsv", 8)):
        lines = ["text\tlabel"] + [f"{words[i % 6]} {words[(i * 5) % 6]} film\t{i % 2}" for i in range(n)]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    tuned = tmp_path / "tuned"
    assert main(["finetune", str(full / "model"), "--task", "custom", "--train", str(tmp_path / "train.tsv"),
                 "--dev", str(tmp_path / "dev.tsv"), "--text-columns", "text", "--label-column", "label",
                 "--out", str(tuned), "--quiet", "train.max_steps=2", "train.batch_size=8",
                 "data.max_seq_len=16"]) == 0
    assert load_model(tuned / "model").config.position == model.config.position


@pytest.mark.parametrize("scheme", ["tupe-r", "bert-r"])
def test_electra_generator_keeps_its_own_position_module(scheme):
    """Per-head/hidden-width position parts fit one network only; words, token types and the LayerNorm stay
    shared, and the objective's state dict round-trips."""
    from leanbert.batch import Batch
    from leanbert.objectives import build_objective, objective_config

    torch.manual_seed(0)
    objective = build_objective(objective_config("electra"),
                                tiny_config(family="electra", embedding_size=16, **SCHEMES[scheme]))
    disc, gen = objective.discriminator.encoder.embeddings, objective.generator.encoder.embeddings
    assert gen.position_embeddings is not disc.position_embeddings and gen.word_embeddings is disc.word_embeddings
    assert gen.position_embeddings.relative.bias.weight.shape[1] == objective.generator.config.num_heads == 1
    ids, mask, types = odd_inputs()
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    batch = Batch(input_ids=ids.masked_fill(labels != -100, 4), attention_mask=mask, token_type_ids=types,
                  labels=labels)
    out = objective(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    for net in (objective.generator, objective.discriminator):
        grads = [p.grad for n, p in net.named_parameters() if ".position_embeddings." in n]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    state = objective.state_dict()
    assert any(k.startswith("generator.encoder.embeddings.position_embeddings.") for k in state)
    assert not any(k.startswith("generator.encoder.embeddings.word_embeddings.") for k in state)
    twin = build_objective(objective_config("electra"),
                           tiny_config(family="electra", embedding_size=16, **SCHEMES[scheme]))
    twin.load_state_dict(state)
    for (name, a), b in zip(objective.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_export_refuses_tupe_and_relative_buckets():
    from leanbert.errors import UserError
    from leanbert.interop.hf import check_exportable

    with pytest.raises(UserError, match="position='tupe'"):
        check_exportable(tiny_config(position="tupe"))
    with pytest.raises(UserError, match="position_options.relative_buckets=8"):
        check_exportable(tiny_config(**SCHEMES["bert-r"]))
    check_exportable(tiny_config())

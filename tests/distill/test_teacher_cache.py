"""The teacher-output cache: what it serves equals the live teacher (logits, hidden states, embeddings,
attention scores at the real positions), the objective's loss is the same with and without it, features beyond
the disk budget are recomputed, and a change of teacher weights, rows or max length invalidates it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import tiny_config
from leanbert.distill.matches import LayerMatch
from leanbert.distill.objective import PredictionTarget, TransformerDistillation
from leanbert.distill.teacher_cache import CACHE_DIR, needed_features, prepare_cache
from leanbert.model.model import LeanBertModel
from leanbert.tasks.encode import Collator, Features, iterate_batches

MATCHES = [LayerMatch(0, 0, "embedding"), LayerMatch(1, 1, "attention"), LayerMatch(1, 2, "hidden")]


def make_rows(count: int = 21, seed: int = 0, max_len: int = 14) -> list[Features]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        length = int(rng.integers(3, max_len + 1))
        ids = rng.integers(5, 101, length)
        types = (np.arange(length) >= length // 2).astype(np.int64)
        rows.append(Features(ids.astype(np.int64), types, -100 if i % 3 == 0 else int(i % 2)))
    return rows


def teacher_model(seed: int = 0) -> LeanBertModel:
    torch.manual_seed(seed)
    return LeanBertModel(tiny_config(heads=["classifier"], num_labels=2)).eval()


def build(tmp_path, teacher, rows, budget=100.0, previous=None, max_len=14, name=CACHE_DIR):
    return prepare_cache(teacher, rows, Collator(0), max_len, MATCHES, budget, tmp_path / name,
                         previous=previous, batch_size=5, log=lambda _: None)


def test_cached_outputs_equal_the_live_teacher(tmp_path):
    teacher, rows = teacher_model(), make_rows()
    cache, info = build(tmp_path, teacher, rows)
    assert not info["reused"] and info["features_cached"] == [["attention", 1], ["hidden", 0], ["hidden", 2]]
    for batch in iterate_batches(rows, 6, Collator(0), shuffle=True, seed=3):
        served = cache.outputs(batch.row_index, batch.input_ids.shape[1], needed_features(MATCHES))
        with torch.no_grad():
            live = teacher(batch.input_ids, batch.attention_mask, batch.token_type_ids, output_hidden_states=True,
                           output_attention_scores=True)
        torch.testing.assert_close(served.logits, live.logits, rtol=1e-5, atol=1e-5)
        mask = batch.attention_mask.bool()  # (B, T)
        for layer in (0, 2):
            torch.testing.assert_close(served.hidden_states[layer][mask], live.hidden_states[layer][mask],
                                       rtol=1e-5, atol=1e-5)
        pairs = mask[:, None, :, None] & mask[:, None, None, :]  # (B, 1, T, T)
        pairs = pairs.expand_as(live.attention_scores[0])
        torch.testing.assert_close(served.attention_scores[0][pairs], live.attention_scores[0][pairs],
                                   rtol=1e-5, atol=1e-5)
        assert served.hidden_states[1] is None and served.attention_scores[1] is None


@pytest.mark.parametrize("budget", [100.0, 0.0])
def test_loss_is_the_same_with_and_without_the_cache(tmp_path, budget):
    """Step 1 (matches) and step 2 (prediction, with unlabeled rows); a budget of 0 recomputes features."""
    teacher, rows = teacher_model(), make_rows()
    cache, info = build(tmp_path, teacher, rows, budget=budget)
    assert bool(info["features_recomputed"]) == (budget == 0.0)
    torch.manual_seed(1)
    student = LeanBertModel(tiny_config(heads=["classifier"], num_labels=2, num_layers=1)).eval()
    batch = next(iter(iterate_batches(rows, 7, Collator(0), shuffle=True, seed=0)))
    for matches, target in (([LayerMatch(0, 0, "embedding"), LayerMatch(1, 1, "attention"),
                              LayerMatch(1, 2, "hidden")], None), ([], PredictionTarget(2.0, 0.5))):
        torch.manual_seed(2)
        plain = TransformerDistillation(student, teacher, "t", matches, target)
        torch.manual_seed(2)
        cached = TransformerDistillation(student, teacher, "t", matches, target, cache=cache)
        calls: list[int] = []
        hook = teacher.encoder.register_forward_hook(lambda *_, seen=calls: seen.append(1))
        got = cached(batch).loss
        hook.remove()
        assert len(calls) == (1 if matches and budget == 0.0 else 0)  # the teacher runs only when it must
        torch.testing.assert_close(got, plain(batch).loss, rtol=1e-5, atol=1e-6)


def test_a_change_of_teacher_rows_or_max_length_invalidates_the_cache(tmp_path):
    teacher, rows = teacher_model(), make_rows()
    first, _ = build(tmp_path, teacher, rows, name="first")
    again, info = build(tmp_path, teacher, rows, previous=first.directory, name="again")
    assert info["reused"] and np.array_equal(np.asarray(again.logits), np.asarray(first.logits))

    other_teacher = teacher_model(seed=1)
    _, info = build(tmp_path, other_teacher, rows, previous=first.directory, name="teacher")
    assert not info["reused"]
    with torch.no_grad():  # the same architecture with one weight nudged is another teacher too
        nudged = teacher_model()
        next(nudged.parameters()).view(-1)[0] += 1e-3
    _, info = build(tmp_path, nudged, rows, previous=first.directory, name="nudged")
    assert not info["reused"]

    changed = list(rows)
    changed[4] = Features(changed[4].input_ids[:-1], changed[4].token_type_ids[:-1], changed[4].label)
    cache, info = build(tmp_path, teacher, changed, previous=first.directory, name="rows")
    assert not info["reused"] and cache.logits.shape == (21, 2)
    _, info = build(tmp_path, teacher, rows[:-1], previous=first.directory, name="fewer")
    assert not info["reused"]

    _, info = build(tmp_path, teacher, rows, previous=first.directory, max_len=16, name="longer")
    assert not info["reused"]
    _, info = build(tmp_path, teacher, rows, budget=0.0, previous=first.directory, name="no-features")
    assert not info["reused"]  # another set of stored features
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary directory left behind

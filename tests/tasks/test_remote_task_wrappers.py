"""The remote-code wrappers of the token and multiple-choice heads (LeanBertForTokenClassification,
LeanBertForMultipleChoice, for a TUPE model transformers has no class for) equal leanbert's logits."""

from __future__ import annotations

import pytest
import torch

from helpers import randomize_, tiny_config
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model

transformers = pytest.importorskip("transformers")


def _inputs(rows: int = 6, length: int = 13):
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, 101, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ids[mask == 0] = 0
    return ids, mask, (torch.arange(length) >= 5).long().expand(rows, -1) * mask


def _export(tmp_path, head: str, **fields) -> LeanBertModel:
    torch.manual_seed(0)
    ours = LeanBertModel(tiny_config(position="tupe", heads=[head], num_labels=3, **fields)).eval()
    randomize_(ours, std=0.1)
    save_model(ours, tmp_path / "ours")
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    return ours


def test_token_classification_wrapper(tmp_path):
    ours = _export(tmp_path, "token")
    theirs = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "hf", trust_remote_code=True)
    assert type(theirs).__name__ == "LeanBertForTokenClassification"
    ids, mask, types = _inputs()
    with torch.no_grad():
        got = theirs.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types).logits  # (B, T, 3)
        mine = ours(ids, mask, types).logits
    real = mask.bool()
    torch.testing.assert_close(got[real], mine[real], rtol=0, atol=1e-5)
    # Labels -100 are ignored (padding and later sub-words), as transformers' token classifiers do.
    labels = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(3)).masked_fill(~real, -100)
    labels[0, 2] = -100
    with torch.no_grad():
        loss = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels).loss
    kept = labels != -100
    expected = torch.nn.functional.cross_entropy(mine[kept].double(), labels[kept])
    torch.testing.assert_close(loss.double(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "electra"])
def test_multiple_choice_wrapper(family, tmp_path):
    ours = _export(tmp_path, "choice", family=family)
    theirs = transformers.AutoModelForMultipleChoice.from_pretrained(tmp_path / "hf", trust_remote_code=True)
    assert type(theirs).__name__ == "LeanBertForMultipleChoice"
    ids, mask, types = _inputs()  # 2 examples x 3 options
    with torch.no_grad():
        got = theirs.eval()(input_ids=ids.view(2, 3, -1), attention_mask=mask.view(2, 3, -1),
                            token_type_ids=types.view(2, 3, -1)).logits  # (2, 3)
        mine = ours(ids, mask, types).logits.view(2, 3)
    torch.testing.assert_close(got, mine, rtol=0, atol=1e-5)

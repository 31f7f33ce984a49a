"""A tiny two-entry comparison end to end: equal FLOPs budgets, evaluations, results.json, report and plots;
then resume: a finished entry is not run again and an interrupted one continues from its checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compare.tiny_compare import TINY_BASE, write_spec
from leanbert.cli import main
from leanbert.compare.entry_run import entry_dir
from leanbert.compare.plan import plan_comparison
from leanbert.compare.spec import parse_spec
from leanbert.pretrain import pretrain

BUDGET = 3e8  # MLM: 18 steps, ELECTRA (generator + discriminator): 12 steps


def two_entry_spec(tmp_path: Path, data: Path, task: dict[str, str], **evaluate) -> Path:
    spec = {"data": str(data), "budget": {"flops": BUDGET}, "base": TINY_BASE, "baseline": "mlm",
            "entries": [{"name": "mlm", "objective.name": "mlm"},
                        {"name": "electra", "objective.name": "electra", "objective.generator_fraction": 0.5}],
            "evaluate": {"valid_marks": 4, **evaluate}}
    return write_spec(tmp_path / "spec.yaml", spec)


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_data, tiny_task) -> Path:
    root = tmp_path_factory.mktemp("compare")
    spec = two_entry_spec(root, tiny_data, tiny_task,
                          finetune=[{**tiny_task, "seeds": 2, "overrides": {"train.max_steps": 4,
                                                                            "data.max_seq_len": 32}}],
                          probe=[{**tiny_task, "max_seq_len": 32}])
    assert main(["compare", str(spec), "--out", str(root / "out"), "--no-progress"]) == 0
    return root / "out"


def test_two_objectives_stop_at_equal_flops_within_one_step(compared):
    results = json.loads((compared / "results.json").read_text())
    entries = results["entries"]
    step_flops = {name: e["flops_per_token"] * TINY_BASE["train.batch_size"] * TINY_BASE["data.seq_len"]
                  for name, e in entries.items()}
    assert entries["electra"]["flops_per_token"] > 1.3 * entries["mlm"]["flops_per_token"]
    assert entries["electra"]["steps"] < entries["mlm"]["steps"]
    for name, e in entries.items():
        assert e["steps"] == e["max_steps"]
        assert BUDGET - step_flops[name] < e["flops"] <= BUDGET  # within one of its own steps below the budget
    assert abs(entries["mlm"]["flops"] - entries["electra"]["flops"]) < max(step_flops.values())
    # validation at step 0, every ceil(max_steps / valid_marks) steps, and at the last step
    for name, curves in results["curves"].items():
        (curve,) = curves
        every = -(-entries[name]["max_steps"] // 4)
        expected = sorted({*range(0, entries[name]["max_steps"], every), entries[name]["max_steps"]})
        assert [p["step"] for p in curve] == expected
        assert [p["flops"] for p in curve] == pytest.approx([s * step_flops[name] for s in expected])


def test_report_results_and_plots(compared):
    results = json.loads((compared / "results.json").read_text())
    assert results["unfinished"] == [] and results["baseline"] == "mlm"
    for name, e in results["entries"].items():
        for key in ("flops", "minutes", "steps", "final_valid_loss", "downstream", "verdict", "parameters",
                    "tokens", "steps_to_baseline_loss"):
            assert key in e, (name, key)
        assert set(e["downstream"]["custom"]) >= {"mean", "std"} and len(e["downstream"]["custom"]["values"]) == 2
        assert 0.0 <= e["probe"]["custom"]["mean"] <= 1.0
    assert results["entries"]["mlm"]["verdict"] == "baseline"
    assert set(results["entries"]["electra"]["verdict"]) == {"valid_loss", "custom", "probe:custom"}
    assert results["entries"]["mlm"]["steps_to_baseline_loss"] is not None  # the baseline reaches its own loss
    report = (compared / "report.md").read_text()
    assert "| electra |" in report and "verdict vs baseline" in report and "valid_loss.png" in report
    for plot in ("valid_loss.png", "downstream.png"):
        assert (compared / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (entry_dir(compared, "electra") / "seed-0" / "finetune-custom" / "metrics.json").is_file()


def test_resume_skips_finished_entries_and_continues_an_interrupted_one(tmp_path, tiny_data, tiny_task, capsys):
    spec_path = two_entry_spec(tmp_path, tiny_data, tiny_task)
    out = tmp_path / "out"
    assert main(["compare", str(spec_path), "--out", str(out), "--no-progress", "--entry", "mlm"]) == 0
    finished = (entry_dir(out, "mlm") / "result.json").read_bytes()
    mlm_metrics = (entry_dir(out, "mlm") / "seed-0" / "pretrain" / "metrics.jsonl").read_bytes()
    assert json.loads((out / "results.json").read_text())["unfinished"] == ["electra"]
    # electra interrupted after its step-6 checkpoint: the same run cut at 6 of 12 steps, model/ not yet written
    plan = plan_comparison(parse_spec(spec_path))["electra"]
    assert plan.budget.max_steps == 12 and plan.budget.eval_every == 3  # checkpoints at 3, 6, 9, 12
    run_dir = entry_dir(out, "electra") / "seed-0" / "pretrain"
    config = plan.configs[0]
    config.train.max_steps = 6
    pretrain(config, run_dir, progress=False)
    shutil.rmtree(run_dir / "model")
    capsys.readouterr()
    assert main(["compare", str(spec_path), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "resuming from" in err and "step 6" in err
    assert (entry_dir(out, "mlm") / "result.json").read_bytes() == finished  # not run again
    assert (entry_dir(out, "mlm") / "seed-0" / "pretrain" / "metrics.jsonl").read_bytes() == mlm_metrics
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    kinds = [(r["step"], "loss" in r) for r in records]
    assert len(kinds) == len(set(kinds)) and records[-1]["step"] == 12  # continued, no step repeated
    results = json.loads((out / "results.json").read_text())
    assert results["unfinished"] == [] and results["entries"]["electra"]["steps"] == 12
    # a different budget in the same DIR is another experiment
    text = spec_path.read_text().replace("300000000.0", "400000000.0")
    assert text != spec_path.read_text()
    spec_path.write_text(text)
    assert main(["compare", str(spec_path), "--out", str(out), "--no-progress"]) == 2
    assert "was started with another `budget`" in capsys.readouterr().err

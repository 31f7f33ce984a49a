"""The report's verdicts on made-up numbers: win, loss, tie and cannot tell, by leanbert.verdict's one rule
(a difference counts when it exceeds 2 standard errors), through the same code that writes results.json,
report.md and the plots."""

from __future__ import annotations

import json

from leanbert.compare.report import table_rows, write_report
from leanbert.compare.results import build_results


def made_up(name: str, scores: list[float], losses: list[float], curve_losses: list[float]) -> dict:
    curve = [{"step": 10 * i, "flops": 1e9 * i, "elapsed_s": 6.0 * i, "valid_loss": v}
             for i, v in enumerate(curve_losses)]
    runs = [{"seed": s, "steps": 40, "tokens": 5120, "flops": 4e9, "flops_real_tokens": 3.9e9, "minutes": 0.4,
             "final_valid_loss": loss, "curve": curve} for s, loss in enumerate(losses)]
    return {"name": name, "objective": "mlm", "flops_per_token": 1e5, "max_steps": 40, "parameters": 1_000_000,
            "runs": runs, "downstream": {"sst2": {"metric": "accuracy", "values": scores}},
            "probe": {}}


SPEC = {"budget": {"flops": 4e9}, "seeds": [0, 1]}


def test_win_loss_tie_and_cannot_tell(tmp_path):
    results = {
        "base": made_up("base", [0.80, 0.81, 0.79], [5.0, 5.1], [9.0, 7.0, 6.0, 5.5, 5.05]),
        "better": made_up("better", [0.90, 0.91, 0.89], [4.0, 4.1], [9.0, 6.5, 5.0, 4.5, 4.05]),
        "worse": made_up("worse", [0.70, 0.71, 0.69], [6.0, 6.1], [9.0, 8.0, 7.0, 6.5, 6.05]),
        "noisy": made_up("noisy", [0.70, 0.90, 0.82], [4.9, 5.3], [9.0, 7.0, 6.0, 5.5, 5.1]),
        "one-seed": made_up("one-seed", [0.95], [3.0], [9.0, 3.0]),
    }
    order = list(results)
    out = build_results(SPEC, results, "base", order)
    verdict = {name: e["verdict"] for name, e in out["entries"].items()}
    assert verdict["base"] == "baseline"
    assert verdict["better"]["sst2"]["outcome"] == "win" and verdict["better"]["valid_loss"]["outcome"] == "win"
    assert verdict["worse"]["sst2"]["outcome"] == "loss" and verdict["worse"]["valid_loss"]["outcome"] == "loss"
    assert verdict["noisy"]["sst2"]["outcome"] == "tie" and verdict["noisy"]["valid_loss"]["outcome"] == "tie"
    assert verdict["one-seed"]["sst2"]["outcome"] == "cannot tell"
    # steps to the baseline's final loss (5.05): the first validation point at or below it
    reach = {name: e["steps_to_baseline_loss"] for name, e in out["entries"].items()}
    assert reach == {"base": 40, "better": 20, "worse": None, "noisy": None, "one-seed": 10}
    rows = {r[0]: r for r in table_rows(out)}
    assert rows["better"][-1] == "valid_loss: win; sst2: win" and rows["worse"][7] == "not reached"
    assert rows["base"][8] == "0.8000 ± 0.0100"
    write_report(tmp_path, out, "made-up.yaml")
    assert json.loads((tmp_path / "results.json").read_text())["entries"]["noisy"]["verdict"]["sst2"]["outcome"] \
        == "tie"
    report = (tmp_path / "report.md").read_text()
    assert "| worse |" in report and "sst2: loss" in report and "2 standard errors" in report
    assert (tmp_path / "valid_loss.png").stat().st_size > 0 and (tmp_path / "downstream.png").stat().st_size > 0


def test_unfinished_baseline_leaves_verdicts_open():
    results = {"other": made_up("other", [0.9, 0.91], [4.0, 4.1], [9.0, 4.0])}
    out = build_results(SPEC, results, "base", ["base", "other"])
    assert out["unfinished"] == ["base"] and out["entries"]["other"]["verdict"] is None

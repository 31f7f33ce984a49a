"""Bad specs stop before anything runs: exit status 2, one stderr line naming the spec and the key, no DIR."""

from __future__ import annotations

import pytest

from compare.tiny_compare import TINY_BASE, write_spec
from leanbert.cli import main

ENTRIES = [{"name": "mlm", "objective.name": "mlm"}, {"name": "electra", "objective.name": "electra"}]


def base_spec(data, **changes) -> dict:
    spec = {"data": str(data), "budget": {"steps": 4}, "base": dict(TINY_BASE), "entries": list(ENTRIES)}
    spec.update(changes)
    return spec


CASES = {
    "unknown top-level key": (lambda d, t: base_spec(d, budgets={"steps": 4}), "unknown key 'budgets'"),
    "unknown evaluate key": (lambda d, t: base_spec(d, evaluate={"probes": []}), "evaluate: unknown key 'probes'"),
    "missing dataset": (lambda d, t: base_spec(d.parent / "nowhere"), "is not a prepared dataset"),
    "entry overrides fail validation": (
        lambda d, t: base_spec(d, entries=[*ENTRIES, {"name": "bad", "model.sharing": "half"}]),
        "entry bad: model.sharing"),
    "objective key of another objective": (
        lambda d, t: base_spec(d, entries=[*ENTRIES, {"name": "hot", "objective.temperature": 2.0}]),
        "entry hot: unknown key objective.temperature"),
    "budget key in an entry": (
        lambda d, t: base_spec(d, entries=[{"name": "long", "train.max_steps": 99}]),
        "train.max_steps is set by the budget"),
    "baseline not an entry": (lambda d, t: base_spec(d, baseline="bert"), "baseline 'bert' is not an entry"),
    "two budgets": (lambda d, t: base_spec(d, budget={"steps": 4, "minutes": 1}), "budget must be one of"),
    "flops below one step": (lambda d, t: base_spec(d, budget={"flops": 10}), "less than one step of entry"),
    "missing task file": (
        lambda d, t: base_spec(d, evaluate={"finetune": [{**t, "train": t["train"] + ".missing"}]}),
        "evaluate.finetune custom"),
    "bad fine-tuning override": (
        lambda d, t: base_spec(d, evaluate={"finetune": [{**t, "overrides": {"train.lrr": 1}}]}),
        "train.lrr"),
    "duplicate entry": (lambda d, t: base_spec(d, entries=[*ENTRIES, ENTRIES[0]]), "two entries are named 'mlm'"),
    # numbers: one central check (leanbert.config.check_number / check_seed) refuses them before any run
    "budget inf": (lambda d, t: base_spec(d, budget={"minutes": float("inf")}), "budget.minutes=inf"),
    "budget nan": (lambda d, t: base_spec(d, budget={"flops": float("nan")}), "budget.flops=nan"),
    "budget steps 1e300": (lambda d, t: base_spec(d, budget={"steps": 1e300}), "budget.steps"),
    "seed 2**70": (lambda d, t: base_spec(d, seeds=[2**70]), "seeds entry=1180591620717411303424"),
    "seed count 10**9": (lambda d, t: base_spec(d, seeds=10**9), "seeds=1000000000 must be an integer <= 1000"),
    "fine-tuning seed -1": (lambda d, t: base_spec(d, evaluate={"finetune": [{**t, "seeds": [-1]}]}),
                            "seeds entry=-1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_spec_is_one_line_before_anything_runs(case, tmp_path, tiny_data, tiny_task, capsys):
    make, expected = CASES[case]
    spec = write_spec(tmp_path / "spec.yaml", make(tiny_data, tiny_task))
    out = tmp_path / "out"
    assert main(["compare", str(spec), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("leanbert compare: error: "), err
    assert expected in err and str(spec) in err, err
    assert not out.exists()


def test_unknown_entry_and_foreign_out_dir(tmp_path, tiny_data, capsys):
    spec = write_spec(tmp_path / "spec.yaml", base_spec(tiny_data))
    assert main(["compare", str(spec), "--out", str(tmp_path / "out"), "--entry", "bert"]) == 2
    assert "no entry named 'bert'" in capsys.readouterr().err
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    assert main(["compare", str(spec), "--out", str(user), "--no-progress"]) == 2
    assert "is not a `leanbert compare` directory" in capsys.readouterr().err
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]

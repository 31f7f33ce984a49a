"""configs/compare/*.yaml check out (every entry's config, the tasks) on a prepared dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leanbert.compare.plan import plan_comparison
from leanbert.compare.spec import parse_spec

SPECS = sorted((Path(__file__).resolve().parents[2] / "configs" / "compare").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_shipped_spec_plans(path, tmp_path, tiny_data, shared_data):
    raw = yaml.safe_load(path.read_text())
    raw["data"] = str(tiny_data)  # the real dataset is made by the README's commands
    for group in ("finetune", "probe"):
        for task in raw["evaluate"].get(group, []):
            task["data"] = str(Path(shared_data) / "glue")
    spec_path = tmp_path / path.name
    spec_path.write_text(yaml.safe_dump(raw))
    plans = plan_comparison(parse_spec(spec_path))
    assert list(plans)[0] == raw["baseline"]
    steps = {name: plan.budget.max_steps for name, plan in plans.items()}
    assert steps["electra"] < steps["mlm"] and steps["mcbert"] < steps["mlm"]

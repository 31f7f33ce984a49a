"""The floor plan reads bottom-up: ``leanbert.train`` (the one loop) imports nothing from the objectives or the
data pipeline, so distillation and fine-tuning can reuse it without dragging pretraining in."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil, sys
import leanbert.train
names = sorted(m.name for m in pkgutil.iter_modules(leanbert.train.__path__))
for name in names:
    importlib.import_module(f"leanbert.train.{name}")
above = [m for m in sys.modules if m.split(".")[:2] in (["leanbert", "objectives"], ["leanbert", "data"])]
print(json.dumps({"modules": names, "above": sorted(above)}))
"""


def test_train_imports_nothing_from_objectives_or_data():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"checkpoint", "config", "loop", "metrics", "optim"} <= set(seen["modules"])  # the probe saw them
    assert seen["above"] == []

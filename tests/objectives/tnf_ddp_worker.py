"""Run by ``torchrun --nproc_per_node 2`` in test_tnf.py: every rank takes notes on its own micro-batches,
then ``after_step`` combines them; each rank writes its dictionary to OUT/notes-rank{R}.safetensors after the
loop's own cross-rank buffer check."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests folder

from leanbert.train.distributed import check_buffers_agree, init_distributed, shutdown  # noqa: E402
from objectives.tnf_helpers import tnf_batch, tnf_objective  # noqa: E402

DEFAULT = tnf_batch().extras["rare_words"]
DEFAULT_OCCURRENCES = tuple(zip(*(t.tolist() for t in (DEFAULT.rows, DEFAULT.starts, DEFAULT.ends,
                                                       DEFAULT.word_ids))))


def occurrences(step: int, rank: int) -> tuple:
    """Steps 1-2: every micro-batch has rare words; step 3: only rank 0's; step 4: none anywhere."""
    return DEFAULT_OCCURRENCES if step <= 2 or (step == 3 and rank == 0) else ()


def main(out: str) -> None:
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    objective = tnf_objective().train()
    for step in (1, 2, 3, 4):  # rank r's micro-batches: seeds 10 * step + 2 * r and + 1
        with torch.no_grad():
            for micro in range(2):
                seed = 10 * step + 2 * env.rank + micro
                objective(tnf_batch(seed=seed, occurrences=occurrences(step, env.rank)))
        objective.after_step(step, env)
    check_buffers_agree(objective, env)
    save_file({"notes": objective.notes.contiguous(), "has_note": objective.has_note.contiguous()},
              str(Path(out) / f"notes-rank{env.rank}.safetensors"))
    shutdown(env)


if __name__ == "__main__":
    main(sys.argv[1])

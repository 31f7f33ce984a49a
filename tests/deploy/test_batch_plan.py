"""Token-budget batching (``inference.plan_batches``) and the CPU flag check behind every bf16 setting."""

from __future__ import annotations

import numpy as np
import pytest

from leanbert.errors import UserError
from leanbert.inference import plan_batches, run_in_order
from leanbert.tasks.encode import Collator, Features
from leanbert.train.cpu_features import describe, has_bf16, has_vnni, parse_flags, require_bf16


@pytest.mark.parametrize("seed", range(5))
def test_every_row_once_within_both_budgets(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 200, size=int(rng.integers(1, 300))).tolist()
    batch_size, max_tokens = int(rng.integers(1, 40)), int(rng.integers(50, 3000))
    batches = plan_batches(lengths, batch_size, max_tokens)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) <= batch_size
        assert len(batch) == 1 or len(batch) * width <= max_tokens  # one over-long row still gets a batch
    # sorted: no batch starts shorter than the previous one ended
    assert all(lengths[a[-1]] <= lengths[b[0]] for a, b in zip(batches, batches[1:]))


def test_the_budget_packs_short_rows_densely():
    lengths = [10] * 100 + [100] * 10
    batches = plan_batches(lengths, batch_size=1000, max_tokens=500)
    assert [len(b) for b in batches] == [50, 50, 5, 5]


def test_outputs_come_back_in_input_order():
    lengths = [7, 3, 9, 3, 5, 12, 1]
    features = [Features(np.full(n, n, dtype=np.int64), np.zeros(n, dtype=np.int64), 0) for n in lengths]

    def forward(batch):  # each row's output: its real length and its first id
        return np.stack([batch.attention_mask.sum(1).numpy(), batch.input_ids[:, 0].numpy()], 1).astype(np.float32)

    out = run_in_order(forward, features, Collator(0), batch_size=2, max_tokens=16)
    np.testing.assert_array_equal(out, np.array([[n, n] for n in lengths], dtype=np.float32))


CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 {extra}\nbogomips\t: 5192\n"


def test_bf16_needs_native_instructions():
    avx2 = parse_flags(CPUINFO.format(extra=""))
    assert "avx2" in avx2 and not has_bf16(avx2) and not has_vnni(avx2)
    with pytest.raises(UserError, match="no native bf16.*use fp32"):
        require_bf16("train.precision=bf16", avx2)
    for flag in ("avx512_bf16", "amx_bf16"):
        flags = parse_flags(CPUINFO.format(extra=f"avx512f {flag} avx512_vnni"))
        require_bf16("train.precision=bf16", flags)  # no error
        assert has_vnni(flags) and flag in describe(flags)
    assert parse_flags("") == frozenset() and describe(frozenset()) == "no bf16/VNNI/AMX flags"

"""How much ``leanbert augment`` would write, checked before any work: an absurd ``--num-augmented`` (10**9)
would otherwise run silently for days and fill the disk.

The estimate is an upper bound: every input row followed by N_a variants of about its own size (duplicate
variants are dropped, so the real output is smaller). Above ``MAX_OUTPUT_BYTES`` or the free space of the
output's file system, the command stops and says what it would produce, unless ``--allow-large``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from leanbert.errors import UserError

MAX_OUTPUT_BYTES = 10 * 2**30  # about 4 hours of sampling at the rate below
# Sampling speed in input bytes x variants per second. Measured: 2,000 SST-2 rows (113 KB), GloVe candidates,
# AMD EPYC, 1 thread: --num-augmented 100 took 12.1 s longer than 20 (80 x 113 KB / 12.1 s = 0.75 MB/s; about
# 13,000 variant draws/s). An MLM adds its forward passes, so this is a lower bound on the time.
SAMPLED_BYTES_PER_SECOND = 7.5e5


@dataclass(frozen=True)
class AugmentSize:
    input_rows: int  # lines of the input file (the header included)
    input_bytes: int
    num_augmented: int

    @property
    def output_rows(self) -> int:
        return self.input_rows * (1 + self.num_augmented)

    @property
    def output_bytes(self) -> int:
        return self.input_bytes * (1 + self.num_augmented)

    @property
    def seconds(self) -> float:
        return self.input_bytes * self.num_augmented / SAMPLED_BYTES_PER_SECOND

    def describe(self) -> str:
        return (f"up to {self.output_rows:,} rows, about {_size(self.output_bytes)}, about "
                f"{_duration(self.seconds)} ({self.input_rows:,} input rows x (1 + --num-augmented "
                f"{self.num_augmented:,}))")


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def count_lines(path: Path, block: int = 1 << 20) -> int:
    """Lines of ``path`` (a last line without a newline counts), streamed in blocks: memory stays flat."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def estimate_size(input_path: str | Path, num_augmented: int) -> AugmentSize:
    path = Path(input_path)
    return AugmentSize(count_lines(path), path.stat().st_size, num_augmented)


def check_size(size: AugmentSize, output_path: str | Path, allow_large: bool) -> None:
    """Refuse an output over ``MAX_OUTPUT_BYTES`` or the free disk space, unless ``allow_large``."""
    if allow_large:
        return
    parent = Path(output_path).resolve().parent
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if size.output_bytes > min(MAX_OUTPUT_BYTES, free):
        limit = (f"the {_size(free)} free on {parent}" if free < MAX_OUTPUT_BYTES
                 else f"the {_size(MAX_OUTPUT_BYTES)} limit")
        raise UserError(f"--num-augmented {size.num_augmented:,} would write {size.describe()}, over {limit}; "
                        f"lower --num-augmented, or pass --allow-large to write it anyway")

"""Which fast paths this CPU has: bf16 matmuls (AVX512-BF16 or AMX) and int8 dot products (VNNI).

bf16 on a CPU without bf16 instructions is emulated and runs several times SLOWER than fp32 (measured on an
AVX2 box: 0.7-12 GFLOP/s against ~50 for fp32), so leanbert refuses ``bf16`` there instead of running slowly.
The flags are read from /proc/cpuinfo (Linux); elsewhere none are known and bf16 is refused. The parsing takes
the text as an argument so tests can hand in any CPU's flags.
"""

from __future__ import annotations

from pathlib import Path

from leanbert.errors import UserError

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # either one gives native bf16 dot products
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def parse_flags(cpuinfo: str) -> frozenset[str]:
    """The ``flags`` of the first processor in /proc/cpuinfo text (every core of a machine has the same)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
            return frozenset(value.split())
    return frozenset()


def cpu_flags(path: Path = CPUINFO) -> frozenset[str]:
    """This machine's CPU flags; empty where /proc/cpuinfo is unreadable (not Linux)."""
    try:
        return parse_flags(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return frozenset()


def has_bf16(flags: frozenset[str]) -> bool:
    return any(flag in flags for flag in BF16_FLAGS)


def has_vnni(flags: frozenset[str]) -> bool:
    return any(flag in flags for flag in VNNI_FLAGS)


def describe(flags: frozenset[str]) -> str:
    """One line for benchmark tables: which of the fast-path flags are present."""
    present = [flag for flag in (*BF16_FLAGS, *VNNI_FLAGS) if flag in flags]
    return ", ".join(present) if present else "no bf16/VNNI/AMX flags"


def require_bf16(what: str, flags: frozenset[str] | None = None) -> None:
    """Raise a one-line UserError unless the CPU multiplies bf16 natively. ``what`` names the setting."""
    flags = cpu_flags() if flags is None else flags
    if not has_bf16(flags):
        raise UserError(f"{what}: this CPU has no native bf16 (neither avx512_bf16 nor amx_bf16 in "
                        f"/proc/cpuinfo), where bf16 runs slower than fp32; use fp32 here")

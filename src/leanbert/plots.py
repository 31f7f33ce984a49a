"""What every report that draws shares: matplotlib's Agg backend (no display needed) and atomic PNG writes."""

from __future__ import annotations

import os
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported only when a report draws."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` through a temporary sibling, so a killed report never leaves half a PNG."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)

"""What every report that draws shares: matplotlib's Agg backend (no display needed) and atomic PNG writes."""

from __future__ import annotations

import os
from pathlib import Path

from leanbert.atomic import current_umask, temp_file_path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported only when a report draws."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` through a temporary sibling, so a killed report never leaves half a PNG."""
    tmp = temp_file_path(path)  # named so that the next run cleans it up if this one is killed
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain savefig would not
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

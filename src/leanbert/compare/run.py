"""``leanbert compare SPEC --out DIR``: run every entry (or the ones named) and write the report.

DIR holds ``spec.json`` (the spec it was started with: continuing with a different budget, dataset, base,
seeds, evaluations or entry overrides is refused; new entries may be added), ``entries/NAME/`` (one per
entry, see ``entry_run``), ``results.json``, ``report.md`` and the plots. Several processes (or machines
sharing the directory) may each run ``--entry NAME`` into the same DIR: they share nothing but files, each
entry is locked by the process running it, and every report write is atomic.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from leanbert.atomic import write_json_atomically
from leanbert.compare.entry_run import RESULT, entry_dir, is_finished, run_entry
from leanbert.compare.plan import EntryPlan, plan_comparison
from leanbert.compare.report import write_report
from leanbert.compare.results import build_results
from leanbert.compare.spec import CompareSpec, parse_spec
from leanbert.errors import UserError
from leanbert.outdir import MARKER, open_run_dir, read_marker, write_marker
from leanbert.run_lock import RunLock

SPEC_FILE = "spec.json"
KIND = "compare"


def _check_same_spec(saved: dict[str, Any], current: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The spec DIR continues with: ``current`` when it agrees with ``saved`` on everything but added entries."""
    for key in current:
        if key != "entries" and saved.get(key) != current[key]:
            raise UserError(f"--out {out_dir} was started with another `{key}` ({saved.get(key)!r}, now "
                            f"{current[key]!r}); use a new --out for a new comparison")
    for name, overrides in current["entries"].items():
        if name in saved["entries"] and saved["entries"][name] != overrides:
            raise UserError(f"--out {out_dir}: entry {name} was started with other overrides "
                            f"({saved['entries'][name]!r}); rename the entry or use a new --out")
    return {**current, "entries": {**saved["entries"], **current["entries"]}}


def open_compare_dir(out_dir: Path, spec: CompareSpec) -> None:
    """Create DIR (marker + spec.json) or check that it is this comparison's; briefly locked so that entries
    started together do not race on spec.json."""
    open_run_dir(out_dir, KIND, [spec.data, spec.path], resume=True, lock=False)  # location rules
    if out_dir.exists() and any(out_dir.iterdir()) and read_marker(out_dir) != KIND:
        raise UserError(f"--out {out_dir} already exists and is not a `leanbert compare` directory (no "
                        f"{MARKER} naming compare); choose a new directory")
    lock = RunLock(out_dir / ".leanbert-compare-spec.lock", "leanbert compare", f"comparison {out_dir}")
    for attempt in range(50):  # another process holds it for a moment only
        try:
            lock.acquire()
            break
        except UserError:
            if attempt == 49:
                raise
            time.sleep(0.2)
    try:
        current = spec.to_dict()
        path = out_dir / SPEC_FILE
        if path.is_file():
            current = _check_same_spec(json.loads(path.read_text(encoding="utf-8")), current, out_dir)
        else:
            write_marker(out_dir, KIND)
        write_json_atomically(path, current)
    finally:
        lock.release()


def finished_results(out_dir: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    return {n: json.loads((entry_dir(out_dir, n) / RESULT).read_text(encoding="utf-8"))
            for n in names if is_finished(out_dir, n)}


def planned_flops(plan: EntryPlan, seeds: int) -> float:
    return plan.budget.flops_at(plan.budget.max_steps) * seeds


def run_compare(spec_path: str | Path, out_dir: str | Path, only: list[str] | None = None,
                progress: bool = True, report_only: bool = False) -> Path:
    """Check the whole spec, then run the entries (``only``: just those; ``report_only``: none) and write the
    report; returns DIR/report.md. An entry that another process is running is left to it (and reported as
    unfinished)."""
    out_dir = Path(out_dir)
    spec = parse_spec(spec_path)
    for name in only or []:
        spec.entry(name)  # an unknown --entry is an error before anything runs
    plans = plan_comparison(spec)
    open_compare_dir(out_dir, spec)
    order = [e.name for e in spec.entries]
    todo = [] if report_only else [n for n in order if n in (only or order)]
    total = sum(planned_flops(plans[n], len(spec.seeds)) for n in todo)
    done_flops = sum(planned_flops(plans[n], len(spec.seeds)) for n in todo if is_finished(out_dir, n))
    bar = tqdm(total=total, initial=done_flops, unit="FLOP", unit_scale=True, position=0, dynamic_ncols=True,
               disable=not progress, desc=f"compare: {sum(is_finished(out_dir, n) for n in todo)}/{len(todo)} "
                                          "entries")
    try:
        for name in todo:
            if is_finished(out_dir, name):
                continue
            try:
                run_entry(spec, plans[name], out_dir, progress, on_pretrained=bar.update)
            except UserError as err:
                if only or "is in use by" not in str(err):
                    raise
                print(f"leanbert compare: {name}: {err}; leaving it to that process", file=sys.stderr)
            bar.set_description(f"compare: {sum(is_finished(out_dir, n) for n in todo)}/{len(todo)} entries")
    finally:
        bar.close()
    results = build_results(spec.to_dict(), finished_results(out_dir, order), spec.baseline, order)
    return write_report(out_dir, results, str(spec.path))

"""``run_job``: the one place that does what every job does around its own work, once and in this order.

1. the torchrun environment (``job_env``), with logging and progress bars on rank 0 only;
2. the lock (``leanbert.run_lock``) and the output-folder policy (``leanbert.outdir``), by layout:

   * ``run_dir``: filled in place, locked (``RUN_DIR/.leanbert-lock``), continued with ``--resume``
     (pretrain, distill's general stage). Without ``--resume`` a directory holding a run is refused; with it,
     a finished run or a shorter ``train.max_steps`` is (all checked here);
   * ``published``: written into a temporary sibling renamed into place at the end (``Job.publish``), locked
     next to it (``PARENT/.NAME.lock``); a non-empty OUT_DIR only with ``--overwrite`` over the same command's
     output (finetune, distill's task stage);
   * ``in_place``: a coordinator that writes as it goes (the demos): an earlier output of the same command is
     emptied with ``--overwrite``, the marker comes first; locked next to it like ``published``;
3. a scratch folder next to the output (``make_temp_dir``: its name carries the pid, so the next start removes
   the one a killed run left);
4. the job's own inputs (``JobSpec.open_inputs``), then the policy of a ``published`` or ``in_place`` output
   (so a bad input is named before a bad ``--out``);
5. the body, ``body(job)``; a run directory's marker and ``config.yaml`` are written by ``Job.train`` once the
   resumed checkpoint is known good (the loop's ``on_ready``), so a resume that fails leaves them as they were;
6. the scratch folder removed and the lock released, whatever happened.

::

    spec = JobSpec("pretrain", out_dir, "run_dir", inputs=[data], device=cfg.train.device, resume=resume,
                   max_steps=cfg.train.max_steps, saved_config=saved)
    def body(job: Job) -> Result:
        job.check_resume(resolved)                       # compared with the saved config.yaml; becomes the new one
        eval_fn = job.validation(lambda: build_loader(...), cfg.train.eval_batches)
        return job.train(objective, batches, cfg.train, eval_fn=eval_fn)
    result = run_job(spec, body)
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from torch import nn

from leanbert.atomic import make_temp_dir, write_text_atomically
from leanbert.batch import Batch
from leanbert.errors import UserError
from leanbert.jobs.env import Log, job_env, main_process_only, train_objective, write_on_main
from leanbert.jobs.resume import CONFIG_FILE, check_not_a_run, check_resume_compatible, check_resume_steps
from leanbert.jobs.validation import make_eval_fn
from leanbert.outdir import check_out_dir, fresh_out_dir, open_run_dir, write_marker
from leanbert.run_lock import RunLock, lock_output
from leanbert.train.config import TrainConfig
from leanbert.train.distributed import DistEnv
from leanbert.train.loop import EvalFn, LoopResult

Layout = Literal["run_dir", "published", "in_place"]
LAYOUTS = ("run_dir", "published", "in_place")
T = TypeVar("T")


@dataclass(frozen=True)
class JobSpec:
    """What the runner needs to know about a job before it starts (see the module docstring for ``layout``).

    ``inputs``: every file or directory the job reads (the output may be none of them, nor hold one).
    ``max_steps``: a run directory's ``train.max_steps`` (checked against its checkpoints on ``--resume``).
    ``saved_config``: the ``config.yaml`` of the run being resumed, which ``Job.check_resume`` compares.
    ``open_inputs``: reads the job's own inputs before the output policy is checked, so that a bad input is
    named before a bad ``--out`` (finetune resolves MODEL, importing a Hugging Face one into scratch); what it
    returns is ``Job.inputs``."""

    kind: str  # leanbert.outdir.KINDS
    out_dir: Path
    layout: Layout
    inputs: Sequence[str | Path] = ()
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    max_steps: int | None = None
    saved_config: dict[str, Any] | None = None
    open_inputs: Callable[[Job], Any] | None = None


class Job:
    """A running job, handed to its body: the environment, rank-0 logging, the output and scratch folders,
    and the runner's services (validation fallback, the loop on the run directory, publishing)."""

    def __init__(self, spec: JobSpec, env: DistEnv, log: Log, progress: bool, scratch: Path):
        self.spec, self.env, self.log, self.progress, self.scratch = spec, env, log, progress, scratch
        self.out_dir = Path(spec.out_dir)
        self.resolved: dict[str, Any] | None = None
        self.inputs: Any = None  # what spec.open_inputs returned

    def check_resume(self, resolved: dict[str, Any]) -> None:
        """``resolved`` becomes the run's ``config.yaml``; when resuming, it may differ from the saved one only
        in resumable settings (a ConfigError otherwise), and each allowed change is reported."""
        self.resolved = resolved
        if self.spec.saved_config is not None:
            for change in check_resume_compatible(self.spec.saved_config, resolved, self.out_dir / CONFIG_FILE):
                self.log(f"leanbert: resuming with a changed setting: {change}", file=sys.stderr)

    def validation(self, make_loader: Callable[[], Any] | None, num_batches: int,
                   derived_metrics: Callable[[dict[str, float]], dict[str, float]] | None = None
                   ) -> EvalFn | None:
        """The evaluation function over ``make_loader()``'s stream, or None: without a loader (validation
        switched off), or when it cannot be built (then said once, with how to silence it)."""
        if make_loader is None:
            return None
        try:
            loader = make_loader()
        except UserError as err:
            self.log(f"leanbert: no validation ({err}); set data.valid_split='' to silence this", file=sys.stderr)
            return None
        return make_eval_fn(loader, num_batches, self.env.device, derived_metrics)

    def train(self, objective: nn.Module, batches: Iterable[Batch], config: TrainConfig, *,
              eval_fn: EvalFn | None = None, param_groups: list[dict[str, Any]] | None = None,
              run_dir: Path | None = None) -> LoopResult:
        """The shared loop. Without ``run_dir``: on the job's run directory (``run_dir`` layout), resumed with
        ``--resume``, its marker and config.yaml written once the run is known good. With ``run_dir``: a fresh
        sub-run there (a task job's seed)."""
        own = run_dir is None
        if own and self.spec.layout != "run_dir":
            raise ValueError(f"a {self.spec.layout!r} job trains into a run_dir it names")
        return train_objective(objective, batches, config, self.out_dir if own else run_dir, self.env,
                               eval_fn=eval_fn, param_groups=param_groups, resume=own and self.spec.resume,
                               progress=self.progress, on_ready=self._write_run_files if own else None)

    def _write_run_files(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_marker(self.out_dir, self.spec.kind)
        if self.resolved is not None:
            write_text_atomically(self.out_dir / CONFIG_FILE, yaml.safe_dump(self.resolved, sort_keys=False))

    def publish(self, fill: Callable[[Path], None]) -> Path:
        """``published`` layout: ``fill(folder)`` on every rank (it may train, which needs them all); rank 0's
        folder, with the job's marker added, is renamed into OUT_DIR when complete (replacing an earlier output
        only then); the other ranks fill a folder in scratch and write nothing."""
        if self.spec.layout != "published":
            raise ValueError(f"a {self.spec.layout!r} job does not publish")

        def fill_and_mark(folder: Path) -> None:
            fill(folder)
            if self.env.is_main:
                write_marker(folder, self.spec.kind)  # so that the same command's --overwrite may replace it

        write_on_main(self.out_dir, fill_and_mark, self.env, scratch=self.scratch / f"rank-{self.env.rank}")
        return self.out_dir


def _claim_run_dir(spec: JobSpec, env: DistEnv) -> RunLock | None:
    out_dir = Path(spec.out_dir)
    if not spec.resume:
        check_not_a_run(out_dir)
    # one process per run directory (rank 0 holds the lock); never an input or a foreign directory
    lock = open_run_dir(out_dir, spec.kind, spec.inputs, spec.resume, lock=env.is_main)
    try:
        if spec.resume and spec.max_steps is not None:
            check_resume_steps(out_dir, spec.max_steps)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


def _lock_output(spec: JobSpec, env: DistEnv) -> RunLock | None:
    """The lock next to OUT_DIR (rank 0): a second process is told at once who holds it."""
    return lock_output(spec.out_dir) if env.is_main else None


def _check_output(spec: JobSpec, env: DistEnv) -> None:
    """The policy of an output that appears when complete (``published``) or is emptied first (``in_place``)."""
    if spec.layout == "published":
        check_out_dir(spec.out_dir, spec.kind, spec.inputs, spec.overwrite)
    elif env.is_main:
        check_out_dir(spec.out_dir, spec.kind, spec.inputs, spec.overwrite)
        fresh_out_dir(spec.out_dir, spec.kind, spec.overwrite)


def _scratch(spec: JobSpec) -> Path:
    """A private folder next to the output (the system's temp folder when the parent does not exist here)."""
    parent = Path(spec.out_dir).parent
    return make_temp_dir(parent if parent.exists() else None, Path(spec.out_dir).name, "work")


def run_job(spec: JobSpec, body: Callable[[Job], T], *, env: DistEnv | None = None, log: Log = print,
            progress: bool = True) -> T:
    """Run ``body(job)`` inside the job's lifecycle (module docstring). ``env``: the caller's torchrun
    environment (it stays the caller's to tear down); None joins torchrun's here when launched by it."""
    if spec.layout not in LAYOUTS:
        raise ValueError(f"job layout {spec.layout!r} is not one of {LAYOUTS}")
    with job_env(spec.device, env) as env:
        log, progress = main_process_only(env, log, progress)
        lock = _claim_run_dir(spec, env) if spec.layout == "run_dir" else _lock_output(spec, env)
        scratch = None
        try:
            scratch = _scratch(spec)
            job = Job(spec, env, log, progress, scratch)
            if spec.open_inputs is not None:
                job.inputs = spec.open_inputs(job)
            if spec.layout != "run_dir":
                _check_output(spec, env)
            return body(job)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            if lock is not None:
                lock.release()

"""The job runner: what every training job (pretrain, distill's two stages, finetune, the demos) does around its
own work, written once (``runner.run_job``), and the pieces it is built from (``env``: torchrun environment,
seeds, the training loop call, rank-0 publishing; ``resume``: the resume rules; ``validation``: the evaluation
function of a run directory). The lifecycle primitives (locks, scratch folders, markers, torchrun set-up) are
called from this package only."""

from leanbert.jobs.env import Log, main_process_only, seed_everything, seed_per_rank, train_objective
from leanbert.jobs.resume import CONFIG_FILE, check_resume_compatible, check_resume_steps
from leanbert.jobs.runner import Job, JobSpec, run_job

__all__ = ["CONFIG_FILE", "Job", "JobSpec", "Log", "check_resume_compatible", "check_resume_steps",
           "main_process_only", "run_job", "seed_everything", "seed_per_rank", "train_objective"]

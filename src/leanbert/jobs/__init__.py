"""The job runner: what every training job (pretrain, distill's two stages, finetune, the demos) does around its
own work, written once (``runner.run_job``), and the pieces it is built from (``env``: torchrun environment,
seeds, the training loop call, rank-0 publishing; ``resume``: the resume rules)."""

from leanbert.jobs.env import (
    Log,
    job_env,
    main_process_only,
    seed_everything,
    seed_per_rank,
    train_objective,
    write_on_main,
)
from leanbert.jobs.resume import CONFIG_FILE, check_resume_compatible, check_resume_steps
from leanbert.jobs.runner import Job, JobSpec, run_job

__all__ = ["CONFIG_FILE", "Job", "JobSpec", "check_resume_compatible", "check_resume_steps", "run_job", "Log", "job_env", "main_process_only", "seed_everything", "seed_per_rank", "train_objective",
           "write_on_main"]

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

__all__ = ["Log", "job_env", "main_process_only", "seed_everything", "seed_per_rank", "train_objective",
           "write_on_main"]

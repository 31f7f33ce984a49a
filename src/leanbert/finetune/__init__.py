"""Fine-tuning: the task job (``task_job.TaskJob``) that trains any objective on a task and writes OUT_DIR,
its ``train.*`` settings (config.py), the encoder source (source.py) and layer-wise LR decay;
``run.finetune`` is the ``leanbert finetune`` command's library function. What a task is (reading, encoding,
metrics, the GLUE table, custom files) lives in ``leanbert.tasks``; scoring a model in ``leanbert.inference``."""

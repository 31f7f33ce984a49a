"""The one training loop and what it needs (optimiser, schedule, checkpoints, metrics, distributed set-up).

Imports nothing from the objectives or the data pipeline (tests/test_import_floor.py), so pretraining, distillation
and fine-tuning share it.
"""

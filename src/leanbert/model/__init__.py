"""The encoder, its heads and the model. Importing the package registers the task heads (task_heads.py) next
to the pretraining heads, so every saved model's ``heads`` validate."""

from leanbert.model import task_heads  # noqa: F401  (registers the task heads)

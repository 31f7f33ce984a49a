"""TinyBERT-style distillation (Jiao et al., 2020): stateless layer-matching losses (losses.py; the
prediction-layer loss is per task type: tasks/prediction_loss.py), declarative layer matches (matches.py) and
data augmentation for task distillation (augment.py, ``leanbert augment``)."""

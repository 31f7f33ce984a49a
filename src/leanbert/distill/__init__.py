"""TinyBERT-style distillation (Jiao et al., 2020): stateless losses (losses.py), declarative layer matches
(matches.py) and data augmentation for task distillation (augment.py, ``leanbert augment``)."""

"""``leanbert demo``: the whole pipeline on real text that PyPI packages ship (see ``pipeline.py``)."""

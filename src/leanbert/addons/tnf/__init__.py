"""TNF, Taking Notes on the Fly: the add-on (addon.py) and the rare-word table and batch feature it reads
(rare_words.py). Importing the package registers both."""

from __future__ import annotations

from leanbert.addons.tnf import addon, rare_words  # noqa: F401  (each registers itself)

"""Equal-compute method comparisons (``leanbert compare``): spec -> plan (budgets) -> entries -> report."""

from leanbert.compare.run import run_compare
from leanbert.compare.spec import CompareSpec, parse_spec

__all__ = ["CompareSpec", "parse_spec", "run_compare"]

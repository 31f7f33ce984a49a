"""leanbert: pretrain, compress and fine-tune compact BERT-family encoders."""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "save_model"]


def __getattr__(name):
    # Lazy so `import leanbert` stays cheap (no torch import) for the CLI's --help.
    if name in ("load_model", "save_model"):
        from leanbert import model_dir

        return getattr(model_dir, name)
    raise AttributeError(name)

"""Deployment formats beyond the Hugging Face export in ``leanbert.interop.hf``: ONNX (``onnx.py``) and
the self-contained modeling file for remote-code exports (``remote_modeling.py``)."""

"""Deployment formats beyond the Hugging Face export in ``leanbert.interop.hf``: ONNX (``onnx.py``) and
remote-code exports that ship leanbert's own model modules (``remote.py``, ``remote_bundle.py``,
``remote_wrapper.py``)."""

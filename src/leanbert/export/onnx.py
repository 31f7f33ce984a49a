"""``leanbert export MODEL OUT --format onnx [--quantize int8] [--dev DATA]``: an ONNX Runtime directory.

OUT holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``, each (batch, sequence)
int64; outputs ``last_hidden_state`` and the task type's outputs named as in transformers: ``logits`` for
sequence classification, ``start_logits`` and ``end_logits`` for QA; a pretraining head's ``logits``), the
tokenizer files and ``config.json`` (``"format": "leanbert-onnx"``: the model config, the task's labels, the
opset and whether the weights are int8), so ``leanbert predict OUT`` runs it.

The graph is traced by ``torch.onnx.export``'s TorchScript exporter with dynamic batch and sequence axes.
Unpadding is switched off first (``set_unpadding``): it reads the mask on the host and makes the token count a
data-dependent shape, neither of which may be frozen into a graph; the padded path with the additive padding
bias is what gets traced. int8 is onnxruntime's dynamic quantization (int8 weights of the MatMuls with a scale
per output channel, activations quantized per batch at run time; VNNI CPUs run it fastest). With ``--dev`` (a
fine-tuned model's GLUE task folder or dev file) the fp32 and int8 graphs are both scored on it and the change is
printed and recorded in config.json.

onnx and onnxruntime are an optional extra: ``pip install 'leanbert[onnx]'``.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from leanbert.atomic import make_temp_dir, write_json_atomically
from leanbert.batch import Batch
from leanbert.config import ConfigError, from_dict, to_dict
from leanbert.errors import UserError
from leanbert.inference import DEFAULT_MAX_LEN, Predictor, id2label_names, run_in_order
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.model.padding import set_unpadding
from leanbert.model_dir import copy_tokenizer_files, load_model, read_model_config
from leanbert.outdir import check_out_dir, publish_dir
from leanbert.safe_io import read_json_object
from leanbert.tasks import task_type_of
from leanbert.tasks.encode import Collator, Features, PairEncoder
from leanbert.tasks.glue import GLUE_TASKS, TaskSpec, read_examples, resolve_task_dir
from leanbert.tasks.metrics import predictions_from_logits
from leanbert.tasks.readers import detect_format

ONNX_NAME = "model.onnx"
FORMAT = "leanbert-onnx"
FORMAT_VERSION = 1
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
QUANTIZE_CHOICES = ("int8",)


def require_onnxruntime():
    """The onnxruntime module, or a UserError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError("ONNX needs onnxruntime and onnx: pip install 'leanbert[onnx]' "
                        "(or pip install onnxruntime onnx)") from None
    return onnxruntime


class OnnxGraph(nn.Module):
    """The traced function: the three transformers inputs -> last_hidden_state plus the task type's outputs
    (``onnx_outputs``: logits; start_logits, end_logits ...), or a pretraining head's logits, as a tuple."""

    def __init__(self, model: LeanBertModel, saved_type: str | None = None):
        super().__init__()
        self.model = model
        self.task_type = task_type_of(model.config.heads, saved_type)
        self.has_logits = any(name in model.config.heads for name in ("rtd", "mlm"))
        self.has_types = model.config.type_vocab_size > 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids, attention_mask, token_type_ids if self.has_types else None)
        if self.task_type is not None:
            return (out.last_hidden_state, *self.task_type.graph_outputs(out))
        if self.has_logits:
            return out.last_hidden_state, out.logits  # (B, T, H), (B, T) | (B, T, V)
        return (out.last_hidden_state,)


def output_axes(model: LeanBertModel, saved_type: str | None = None) -> dict[str, dict[int, str]]:
    """Dynamic axes of each output, in graph order: the task type's (``saved_type``: the model's saved
    ``task.type``), or per-token pretraining logits."""
    axes = {"last_hidden_state": {0: "batch", 1: "sequence"}}
    task_type = task_type_of(model.config.heads, saved_type)
    if task_type is not None:
        axes.update({name: dict(dims) for name, dims in task_type.onnx_outputs.items()})
    elif any(name in model.config.heads for name in ("rtd", "mlm")):
        axes["logits"] = {0: "batch", 1: "sequence"}
    return axes


def export_graph(model: LeanBertModel, path: Path, saved_type: str | None = None) -> list[str]:
    """Trace ``model`` (eval mode, unpadding off) into ``path``; returns the output names. ``saved_type``: the
    model's saved ``task.type``."""
    model = model.eval()
    set_unpadding(model, False)
    # a new module starts in training mode, and torch.onnx.export restores the wrapper's mode afterwards,
    # which would switch the caller's model (and its dropout) back on
    graph = OnnxGraph(model, saved_type).eval()
    length = min(8, model.config.max_positions)
    ids = torch.full((2, length), 5, dtype=torch.long)  # (2, T): the trace needs no real text
    mask = torch.ones_like(ids)
    mask[1, length // 2:] = 0  # a padded row, so the padding bias is in the trace
    types = torch.zeros_like(ids)
    axes = output_axes(model, saved_type)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES} | axes
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer flags Python checks on shapes (length <= max_positions): they guard, they do not compute.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (ids, mask, types), str(path), input_names=list(INPUT_NAMES),
                          output_names=list(axes), dynamic_axes=dynamic, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)
    return list(axes)


def quantize_int8(source: Path, target: Path) -> None:
    """onnxruntime's dynamic int8 quantization of ``source`` into ``target``, with one weight scale per output
    channel: on MiniLM-L6 fine-tuned on SST-2 it lost 0.11 dev points where one scale per tensor lost 0.57, at
    the same batch-1 speed; quantizing only MatMul, or running onnxruntime's transformer optimizer first (it
    fuses LayerNorm and GELU but not leanbert's fused-QKV attention), measured no faster
    (benchmarks/int8_levers.py, BENCHMARKS.md)."""
    require_onnxruntime()
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process the graph (shape inference) is for static models
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


class OnnxRunner:
    """An onnxruntime session over a graph written by ``export_graph``."""

    def __init__(self, path: Path, threads: int = 0):
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (the machine's cores)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for unreadable graphs
            raise UserError(f"{path}: onnxruntime cannot load it ({err})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            token_type_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Inputs (B, T) int64 -> {output name: array}."""
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feeds = {name: given[name].astype(np.int64) for name in self.input_names}
        return dict(zip(self.output_names, self.session.run(None, feeds)))

    def outputs(self, features: Sequence, collator, batch_size: int, names: Sequence[str]
                ) -> list[dict[str, np.ndarray]]:
        """Per batch of ``batch_size`` features in their order: {name: output} for the named outputs."""
        missing = [name for name in names if name not in self.output_names]
        if missing:
            raise UserError(f"the ONNX graph has no {', '.join(missing)} output (outputs: "
                            f"{', '.join(self.output_names)})")
        parts = []
        for start in range(0, len(features), batch_size):
            batch = collator(features[start:start + batch_size])
            out = self.run(batch.input_ids.numpy(), batch.attention_mask.numpy(), batch.token_type_ids.numpy())
            parts.append({name: out[name].astype(np.float32) for name in names})
        return parts

    def forward(self, batch: Batch) -> np.ndarray:
        """(B, C) float32 classifier logits of one padded batch (an ``inference.ForwardFn``)."""
        if "logits" not in self.output_names:
            raise UserError("the ONNX graph has no logits output (a model without a classifier head)")
        out = self.run(batch.input_ids.numpy(), batch.attention_mask.numpy(), batch.token_type_ids.numpy())
        return out["logits"].astype(np.float32)

    def logits(self, features: Sequence[Features], collator: Collator, batch_size: int) -> np.ndarray:
        """(N, C) classifier logits of ``features`` in their order, length-sorted batches of ``batch_size``."""
        return run_in_order(self.forward, features, collator, batch_size)


# ------------------------------------------------------------------------------------------------------------
# Dev-set accuracy of fp32 vs int8


def dev_examples(task_meta: dict[str, Any], dev: Path):
    """(TaskSpec, dev Examples) for a fine-tuned model's task: a GLUE task folder (or the GLUE root), or a
    file in the task's own layout (a custom task's dev file needs its label in a column named ``label``)."""
    name = task_meta.get("name")
    if name in GLUE_TASKS:
        spec = GLUE_TASKS[name]
        if dev.is_dir():
            folder = resolve_task_dir(spec, dev)
            split, file = next(iter(spec.dev_files.items()))
            return spec, read_examples(spec, folder / file)
        return spec, read_examples(spec, dev)
    if dev.is_dir():
        raise UserError(f"--dev {dev}: a directory, but the model's task {name!r} is not a GLUE task; "
                        "pass its dev file")
    labels = task_meta.get("labels")
    regression = bool(task_meta.get("regression"))
    columns = tuple(task_meta.get("text_columns") or ())
    spec = TaskSpec("custom", "", columns, "label", None if regression else tuple(labels),
                    ("pearson", "spearman") if regression else ("accuracy",), fmt=detect_format(dev))
    return spec, read_examples(spec, dev)


def compare_on_dev(model_dir: Path, fp32: Path, int8: Path, dev: Path, log=print) -> dict[str, Any]:
    """Score the fp32 and int8 graphs on ``dev``; log and return both metrics and their change."""
    config, meta = read_model_config(model_dir)
    task = meta.get("task")
    if not isinstance(task, dict):
        raise UserError(f"--dev {dev}: {model_dir} has no task metadata (a `leanbert finetune` model has); "
                        "cannot score it on a dev set")
    task_type = task_type_of(config.heads, task.get("type"))
    if task_type is None or task_type.name != "sequence":
        raise UserError(f"--dev {dev}: scoring fp32 against int8 is implemented for sequence classification "
                        f"models; {model_dir} is a {getattr(task_type, 'name', 'pretraining')} model")
    spec, examples = dev_examples(task, dev)
    max_len = task.get("max_seq_len") if isinstance(task.get("max_seq_len"), int) else 128
    encoder = PairEncoder.from_dir(model_dir, max_len)
    features = encoder.encode(examples)
    gold = np.asarray([f.label for f in features])
    collator = Collator(encoder.pad_id, regression=spec.regression)
    result: dict[str, Any] = {"dev": str(dev), "examples": len(features)}
    for name, path in (("fp32", fp32), ("int8", int8)):
        logits = OnnxRunner(path).logits(features, collator, 32)
        result[name] = spec.compute_metrics({"dev": (predictions_from_logits(logits, spec.regression), gold)})
    main = spec.metrics[0]
    change = result["int8"][main] - result["fp32"][main]
    result["change"] = {main: change}
    log(f"dev {main} on {len(features)} examples: fp32 {result['fp32'][main]:.4f} -> int8 "
        f"{result['int8'][main]:.4f} ({100 * change:+.2f} points)")
    return result


# ------------------------------------------------------------------------------------------------------------
# The directory


def onnx_config(model: LeanBertModel, meta: dict[str, Any], outputs: list[str], quantize: str | None,
                dev_result: dict[str, Any] | None) -> dict[str, Any]:
    """config.json of an ONNX directory."""
    config: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION,
                              "model": to_dict(model.config),
                              "onnx": {"file": ONNX_NAME, "opset": OPSET, "inputs": list(INPUT_NAMES),
                                       "outputs": outputs, "quantize": quantize}}
    task = meta.get("task")
    if isinstance(task, dict):
        config["task"] = task
        labels = task.get("labels")
        if labels and len(labels) == model.config.num_labels:
            config["id2label"] = {str(i): str(label) for i, label in enumerate(labels)}
            config["label2id"] = {str(label): i for i, label in enumerate(labels)}
    if dev_result is not None:
        config["onnx"]["dev"] = dev_result
    return config


def export_onnx(model_dir: str | Path, out_dir: str | Path, quantize: str | None = None,
                dev: str | Path | None = None, overwrite: bool = False, log=print) -> Path:
    """leanbert model directory -> ONNX directory (see the module docstring). ``out_dir`` follows the
    output-directory policy (``leanbert.outdir``) as the Hugging Face export does."""
    model_dir = Path(model_dir)
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise UserError(f"--quantize {quantize!r}: expected one of {', '.join(QUANTIZE_CHOICES)}")
    if dev is not None and quantize is None:
        raise UserError("--dev measures what int8 costs; it needs --quantize int8")
    if dev is not None and not Path(dev).exists():
        raise UserError(f"--dev {dev}: no such file or directory")
    check_out_dir(out_dir, "export", [model_dir, *([dev] if dev else [])], overwrite, flag="OUT_DIR")
    require_onnxruntime()
    model = load_model(model_dir)
    _, meta = read_model_config(model_dir)
    work = make_temp_dir(Path(out_dir).parent if Path(out_dir).parent.exists() else None,
                         Path(out_dir).name, "work")
    try:
        fp32 = work / "fp32.onnx"
        task = meta.get("task") if isinstance(meta.get("task"), dict) else {}
        outputs = export_graph(model, fp32, task.get("type"))
        final = fp32
        dev_result = None
        if quantize == "int8":
            final = work / "int8.onnx"
            quantize_int8(fp32, final)
            if dev is not None:
                dev_result = compare_on_dev(model_dir, fp32, final, Path(dev), log)
        config = onnx_config(model, meta, outputs, quantize, dev_result)

        def fill(tmp: Path) -> None:
            shutil.copyfile(final, tmp / ONNX_NAME)
            copy_tokenizer_files(model_dir, tmp)
            write_json_atomically(tmp / "config.json", config)

        return publish_dir(out_dir, "export", fill, inputs=[model_dir], overwrite=overwrite, flag="OUT_DIR")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_onnx_config(directory: Path) -> dict[str, Any]:
    """An ONNX directory's config.json, checked to be one (UserError otherwise)."""
    path = directory / "config.json"
    if not path.is_file():
        raise UserError(f"{path}: missing (an ONNX directory from `leanbert export --format onnx` has one)")
    meta = read_json_object(path, "an ONNX directory config")
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a leanbert ONNX config (expected \"format\": \"{FORMAT}\")")
    return meta


def open_onnx_predictor(directory: str | Path) -> Predictor:
    """An ``inference.Predictor`` over an ONNX directory."""

    directory = Path(directory)
    meta = read_onnx_config(directory)
    try:
        config = from_dict(ModelConfig, meta.get("model", {}), prefix="model.")
    except ConfigError as err:
        raise UserError(f"{directory / 'config.json'}: {err}") from None
    if "classifier" not in config.heads:
        raise UserError(f"{directory}: the exported model has no classifier head; predict needs a fine-tuned "
                        "model")
    runner = OnnxRunner(directory / ONNX_NAME)
    task = meta.get("task") if isinstance(meta.get("task"), dict) else {}
    max_len = task.get("max_seq_len") if isinstance(task.get("max_seq_len"), int) else DEFAULT_MAX_LEN
    return Predictor(runner.forward, id2label_names(meta, config.num_labels), directory,
                      min(max_len, config.max_positions), str(directory))

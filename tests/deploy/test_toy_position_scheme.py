"""A position scheme in one file of its own plus one registration, with no edit to src/ (ARCHITECTURE.md 3.2,
T1): its options are validated under model.position_options, MLM and ELECTRA pretrain with it, and the
Hugging Face export ships its file as remote code that transformers runs without leanbert installed."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from leanbert.config import ConfigError
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer
from leanbert.export.remote import remote_code_reason
from leanbert.interop.hf import export_to_hf
from leanbert.model import POSITION_SCHEMES
from leanbert.model.config import ModelConfig
from leanbert.model_dir import load_model
from leanbert.pretrain import pretrain
from leanbert.pretrain_config import load_pretrain_config

TOY_SOURCE = '''"""ALiBi-style positions: no input term, a fixed per-head penalty proportional to the distance."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from leanbert.config import ConfigError
from leanbert.model.positions import PositionScheme, PositionSchemeSpec, register_position_scheme


@dataclass
class ToyAlibiOptions:
    slope_base: float = 8.0

    def __post_init__(self) -> None:
        if isinstance(self.slope_base, bool) or not isinstance(self.slope_base, int | float) or self.slope_base <= 1:
            raise ConfigError(f"model.position_options.slope_base={self.slope_base!r} must be a number > 1")


class ToyAlibi(PositionScheme):
    def __init__(self, config):
        super().__init__()
        heads, base = config.num_heads, float(config.scheme_options.slope_base)
        self.slopes = [base ** (-(h + 1) / heads) for h in range(heads)]  # plain numbers: nothing to save

    def attention_bias(self, length: int) -> torch.Tensor:
        position = torch.arange(length)
        distance = (position[None, :] - position[:, None]).abs().float()  # (T, T)
        return -(torch.tensor(self.slopes)[:, None, None] * distance).unsqueeze(0)  # (1, heads, T, T)


register_position_scheme(PositionSchemeSpec("toy_alibi", ToyAlibi, ToyAlibiOptions,
                                            hf_reason=lambda options: "position='toy_alibi'",
                                            shareable_across_widths=lambda options: False))
'''

transformers = pytest.importorskip("transformers")


@pytest.fixture
def toy_alibi(tmp_path):
    folder = tmp_path / "toy_module"
    folder.mkdir()
    (folder / "toy_alibi.py").write_text(TOY_SOURCE, encoding="utf-8")
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("toy_alibi")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("toy_alibi", None)
        POSITION_SCHEMES.pop("toy_alibi", None)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("toy-scheme-data")
    lines = (Path(shared_data) / "corpus" / "movie-reviews.txt").read_text(encoding="utf-8").splitlines()[:200]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_tokenizer([str(root / "corpus.txt")], root / "tok", vocab_size=300, lowercase=True)
    prepare_dataset([str(root / "corpus.txt")], root / "tok", root / "data", valid_fraction=0.0, progress=False)
    return root / "data"


def _pretrain(data: Path, out: Path, objective: str) -> Path:
    settings = ["model.preset=bert-tiny", "model.hidden_size=16", "model.num_heads=2", "model.intermediate_size=32",
                "model.num_layers=1", "model.position=toy_alibi", "model.position_options.slope_base=4.0",
                f"objective.name={objective}", f"data.path={data}", "data.seq_len=32", "train.batch_size=4",
                "train.max_steps=2", "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=0",
                "train.warmup_steps=0", "train.device=cpu"]
    config, _ = load_pretrain_config(None, settings)
    pretrain(config, out, progress=False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert [r["step"] for r in rows] == [1, 2] and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    return out / "model"


def test_a_scheme_from_its_own_file_trains_and_exports_as_remote_code(toy_alibi, dataset, tmp_path):
    with pytest.raises(ConfigError, match=r"model.position_options.slope_base=0.0 must be a number > 1"):
        ModelConfig(position="toy_alibi", position_options={"slope_base": 0})

    electra = _pretrain(dataset, tmp_path / "electra", "electra")
    generator = load_model(electra / "generator")
    assert isinstance(generator.encoder.position_scheme, toy_alibi.ToyAlibi)  # its own: not shareable

    model_dir = _pretrain(dataset, tmp_path / "mlm", "mlm")
    model = load_model(model_dir).eval()
    assert remote_code_reason(model.config) == "position='toy_alibi'"
    export_to_hf(model_dir, tmp_path / "hf")
    assert (tmp_path / "hf" / "lbx_toy_alibi.py").is_file()

    ids = torch.tensor([[2, 17, 25, 31, 40, 3], [2, 50, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    script = (
        "import json, sys; sys.modules['leanbert'] = None\n"
        "import torch, transformers\n"
        f"m = transformers.AutoModelForMaskedLM.from_pretrained({str(tmp_path / 'hf')!r}, trust_remote_code=True)\n"
        f"ids, mask = torch.tensor({ids.tolist()}), torch.tensor({mask.tolist()})\n"
        "with torch.no_grad():\n"
        "    print(json.dumps(m.eval()(input_ids=ids, attention_mask=mask).logits.tolist()))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                               "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = torch.tensor(json.loads(done.stdout.strip().splitlines()[-1]))
    with torch.no_grad():
        mine = model(ids, mask).mlm_logits
    keep = mask.bool()
    torch.testing.assert_close(theirs[keep], mine[keep], rtol=0, atol=1e-5)

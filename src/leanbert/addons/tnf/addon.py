"""TNF, Taking Notes on the Fly (Wu et al., ICLR 2021): a note dictionary for rare words, as an add-on.

``tnf.enabled=true`` wraps any objective that provides its kept network live (``KEPT_HIDDEN``: mlm, mlm+nsp,
mlm+sop, electra, mcbert). There is no public code; what the
paper states and what we chose:

* Rare words (paper: ~100-500 corpus occurrences): the dataset's rare-word table (``leanbert rare-words``,
  addons/tnf/rare_words.py), made with the same ``tnf.min_count`` / ``tnf.max_count`` / ``tnf.max_words``
  (checked on every batch). A word = its run of word pieces, as whole-word masking defines it.
* Note (paper sec. 3): Note(w, x) = the encoder's last-layer outputs c_j averaged over positions s-k .. t+k
  (k = ``tnf.window``, paper 16), where s..t are the word's pieces. We clip the window to the sequence's real
  tokens ([CLS]/[SEP] included, padding never) and divide by the number of positions actually summed; the
  paper writes 1/(2k + t - s), which ignores clipping.
* Update after each optimizer step: NoteDict(w) <- (1 - gamma) NoteDict(w) + gamma Note(w, x) (``tnf.gamma``,
  paper 0.1); a word's first note is taken as is. Several occurrences of a word in one step (all micro-batches
  and all ranks) are averaged first, then one update is made (our choice). Notes are outputs of a finished
  forward, stored in buffers: they never carry gradient ("detached").
* Input (paper eq. 3): at a rare word's positions, before the embedding LayerNorm,
  (1 - lambda) (token + position + type embedding) + lambda NoteDict(w) (``tnf.note_weight`` = the paper's
  lambda, 0.5; ``lambda`` is a Python keyword), only when the word already has a note. Which positions: the
  word's own pieces (``tnf.mix_positions=word``, one reading) or its whole clipped window (``window``, another
  reading; overlapping windows get the mean of their notes).
* Embedding size E != hidden size H (ALBERT, electra-small): notes live in H, the embedding sum in E. We
  project with a learned H -> E linear map (no bias, BERT's initialisation, trained with the rest, dropped
  with the notes); the paper's models have E = H.
* ELECTRA and MC-BERT: notes are taken from and fed to the kept network (``ObjectiveSpec.kept``: the
  discriminator / main model); the generator / meta-controller gets the plain input (no notes).
* FLOPs: TNF adds no model FLOPs (``tnf_flops_per_token`` = 0): its one weight matmul, the H -> E note
  projection, runs on the few rare-word occurrences of a batch (not per token), and the note averaging and
  mixing are gathers and weighted sums over those occurrences, which model FLOPs do not count (as embedding
  lookups and element-wise work are not). compare's equal-FLOPs budgets therefore give a TNF entry the same
  steps as its objective alone.
* Pretraining only: notes and the projection are buffers/parameters of this wrapper, so checkpoints hold them
  (exact resume) but model directories (``saved_models()``), fine-tuning and export never see them. Validation uses
  the plain model unless ``tnf.notes_in_eval=true``.
* DDP: ``after_step`` gathers every rank's (word id, note) rows in rank order, so all ranks apply the same
  update to the same dictionary.

Metrics: ``tnf_rare_sequence_fraction`` (sequences holding a rare word; paper ~20%) over ``tnf_sequences``,
``tnf_notes_filled`` (words with a note) per batch, and the MLM loss/accuracy split into rare-word pieces
(``mlm_rare_*``) and the rest (``mlm_other_*``); for ELECTRA these are the generator's, for MC-BERT the meta-controller's (the networks with an MLM head).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from leanbert.addons.tnf.rare_words import RARE_WORDS_FEATURE, RareWords
from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.config import ConfigError
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, ObjectiveWrapper, Output
from leanbert.objectives.registry import KEPT_HIDDEN, AddonConfig, AddonSpec, DataNeeds, register_addon
from leanbert.train.distributed import DistEnv, gather_rows

MIX_POSITIONS = ("word", "window")
# the head whose predictions TNF splits into rare-word and other pieces; the objectives report that head's
# metrics as <head>_loss / <head>_accuracy / <head>_count (objectives/mlm.py), which the split is derived from
MLM_HEAD = "mlm"


@dataclass
class TnfConfig(AddonConfig):
    """The ``tnf.*`` keys (see the module docstring for what the paper states and what we chose)."""

    min_count: int = 100
    max_count: int = 500
    max_words: int = 20000
    window: int = 16
    gamma: float = 0.1
    note_weight: float = 0.5
    mix_positions: str = "word"
    notes_in_eval: bool = False

    def __post_init__(self) -> None:
        for name, low in (("min_count", 1), ("max_count", 1), ("max_words", 1), ("window", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"tnf.{name}={value!r} must be an integer >= {low}")
        if self.max_count < self.min_count:
            raise ConfigError(f"tnf.max_count={self.max_count} is below tnf.min_count={self.min_count}")
        for name in ("gamma", "note_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError(f"tnf.{name}={value!r} must be a number in (0, 1]")
        if self.mix_positions not in MIX_POSITIONS:
            raise ConfigError(f"tnf.mix_positions={self.mix_positions!r} must be one of "
                              f"{', '.join(MIX_POSITIONS)}")
        if not isinstance(self.notes_in_eval, bool):
            raise ConfigError(f"tnf.notes_in_eval={self.notes_in_eval!r} must be true or false")

    @property
    def table_settings(self) -> tuple[int, int, int]:
        return (self.min_count, self.max_count, self.max_words)


def span_matrix(rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, batch: int, length: int,
                dtype: torch.dtype) -> torch.Tensor:
    """(K, B*T) with a 1 where occurrence k covers position t of row rows[k] (lo[k] <= t < hi[k]).
    A matrix product with it sums over spans exactly and deterministically (no atomics, no host sync); its
    size, K x B x T with K ~ B / 4 occurrences (paper: ~20% of sequences hold a rare word), stays below one
    (B, T, H) activation for B < 4H."""
    t = torch.arange(length, device=rows.device)  # (T,)
    inside = (t[None, :] >= lo[:, None]) & (t[None, :] < hi[:, None])  # (K, T)
    same_row = rows[:, None] == torch.arange(batch, device=rows.device)[None, :]  # (K, B)
    covered = same_row[:, :, None] & inside[:, None, :]  # (K, B, T)
    return covered.reshape(len(rows), batch * length).to(dtype)  # (K, B*T)


def note_windows(rare: RareWords, attention_mask: torch.Tensor, window: int,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi), each (K,): positions s-k .. t+k of every occurrence clipped to its sequence's real tokens,
    as a half-open range [lo, hi)."""
    lengths = attention_mask.sum(dim=1)[rare.rows]  # (K,)
    lo = (rare.starts - window).clamp(min=0)  # (K,)
    hi = torch.minimum(rare.ends + window, lengths)  # (K,)
    return lo, hi


def window_notes(hidden: torch.Tensor, rare: RareWords, attention_mask: torch.Tensor, window: int,
                 ) -> torch.Tensor:
    """(K, H) float32: Note(w, x) of every occurrence, the mean of ``hidden`` (B, T, H) over its clipped
    window."""
    B, T, H = hidden.shape
    lo, hi = note_windows(rare, attention_mask, window)
    spans = span_matrix(rare.rows, lo, hi, B, T, torch.float32)  # (K, B*T)
    sums = spans @ hidden.detach().reshape(B * T, H).float()  # (K, H)
    return sums / (hi - lo).clamp(min=1).to(torch.float32)[:, None]  # (K, H)


def mix_notes(embeddings: torch.Tensor, rare: RareWords, spans: torch.Tensor, notes: torch.Tensor,
              has_note: torch.Tensor, note_weight: float) -> torch.Tensor:
    """embeddings: (B, T, E); spans: (K, B*T) the positions each occurrence mixes; notes: (K, E) its word's
    note; has_note: (K,) bool. Returns (1 - w) embedding + w * note where a covering word has a note (the mean
    of the notes when windows overlap), the embedding unchanged elsewhere."""
    B, T, E = embeddings.shape
    weight = spans * has_note.to(spans.dtype)[:, None]  # (K, B*T)
    count = weight.sum(dim=0)  # (B*T,)
    note_sum = weight.t() @ notes.to(spans.dtype)  # (B*T, E)
    note = (note_sum / count.clamp(min=1)[:, None]).to(embeddings.dtype).view(B, T, E)
    mixed = (1 - note_weight) * embeddings + note_weight * note  # (B, T, E)
    return torch.where((count > 0).view(B, T, 1), mixed, embeddings)


def ema_update(notes: torch.Tensor, has_note: torch.Tensor, word_ids: torch.Tensor, new_notes: torch.Tensor,
               gamma: float) -> None:
    """In place: average ``new_notes`` (N, H) per word first, then NoteDict(w) <- (1 - gamma) NoteDict(w) +
    gamma mean, or the mean itself for a word without a note yet. Sums by a one-hot matrix product
    (deterministic, so every rank computes the same bits from the same gathered rows)."""
    words, inverse = torch.unique(word_ids, return_inverse=True)  # (U,), (N,)
    one_hot = (inverse[None, :] == torch.arange(len(words), device=words.device)[:, None]).float()  # (U, N)
    mean = (one_hot @ new_notes.float()) / one_hot.sum(dim=1, keepdim=True)  # (U, H)
    old = notes[words]  # (U, H)
    updated = torch.where(has_note[words][:, None], (1 - gamma) * old + gamma * mean, mean)  # (U, H)
    notes[words] = updated.to(notes.dtype)
    has_note[words] = True


class TakingNotes(ObjectiveWrapper):
    """The TNF wrapper around an MLM-family objective (see the module docstring)."""

    def __init__(self, inner: Objective, config: TnfConfig, model_config: ModelConfig, kept: str = "model"):
        super().__init__(inner)
        networks = inner.networks()  # live: the modules inner's forward runs
        if not isinstance(networks.get(kept), LeanBertModel):  # a bug in the objective's entry, not bad input
            raise RuntimeError(f"{type(inner).__name__}.networks() has no LeanBertModel under its kept role "
                               f"{kept!r} (it has {sorted(networks)})")
        self.config = config
        self.noted = networks[kept]  # takes and gets the notes
        self.mlm_networks = [m for m in networks.values()
                             if isinstance(m, LeanBertModel) and MLM_HEAD in m.heads]  # rare/other MLM metrics
        H, E = model_config.hidden_size, model_config.embedding_size
        self.project = nn.Linear(H, E, bias=False) if E != H else None  # notes (H) into the embedding sum (E)
        if self.project is not None:
            nn.init.normal_(self.project.weight, std=model_config.initializer_range)
        self.register_buffer("notes", torch.zeros(config.max_words, H))  # (R, H)
        self.register_buffer("has_note", torch.zeros(config.max_words, dtype=torch.bool))  # (R,)
        self.metric_weights = {**self.metric_weights,
                               "tnf_rare_sequence_fraction": "tnf_sequences",
                               "tnf_notes_filled": "tnf_batches",
                               "mlm_rare_loss": "mlm_rare_count", "mlm_rare_accuracy": "mlm_rare_count",
                               "mlm_other_loss": "mlm_other_count", "mlm_other_accuracy": "mlm_other_count"}
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # this step's (word ids, notes)

    # --- forward --------------------------------------------------------------------------------------------
    def _rare_words(self, batch: Batch) -> RareWords:
        rare = batch.extras.get(RARE_WORDS_FEATURE.name)
        if rare is None:
            raise ConfigError("tnf.enabled=true needs batches with rare-word occurrences "
                              f"(data.features: [{RARE_WORDS_FEATURE.name}])")
        if tuple(rare.settings) != self.config.table_settings:
            raise ConfigError(f"the dataset's rare-word table was made with (min_count, max_count, "
                              f"max_words) = {tuple(rare.settings)} but tnf.* say "
                              f"{self.config.table_settings}; run "
                              f"`leanbert rare-words DATA` with the tnf.* settings of this run")
        return rare

    def forward(self, batch: Batch) -> Output:
        rare = self._rare_words(batch)
        B, T = batch.input_ids.shape
        use_notes = self.training or self.config.notes_in_eval
        captured: dict[str, object] = {}

        def embedding_hook(x: torch.Tensor) -> torch.Tensor:  # (B, T, E) before the embedding LayerNorm
            if self.config.mix_positions == "word":
                lo, hi = rare.starts, rare.ends
            else:
                lo, hi = note_windows(rare, batch.attention_mask, self.config.window)
            spans = span_matrix(rare.rows, lo, hi, B, T, x.dtype)  # (K, B*T)
            notes = self.notes[rare.word_ids]  # (K, H)
            if self.project is not None:
                notes = self.project(notes.to(self.project.weight.dtype))  # (K, E)
            return mix_notes(x, rare, spans, notes, self.has_note[rare.word_ids], self.config.note_weight)

        def take_hidden(module, args, kwargs, output) -> None:
            captured["hidden"] = output.last_hidden_state  # (B, T, H)

        def take_mlm(module, args, kwargs, output) -> None:
            captured["mlm"] = (output.mlm_logits, kwargs.get("mlm_positions"))

        with _hooks_on([self.noted], take_hidden), _hooks_on(self.mlm_networks, take_mlm), \
                (self.noted.attached_embedding_hook(embedding_hook) if use_notes else nullcontext()):
            out = self.inner(batch)
        if self.training:
            with torch.no_grad():
                notes = window_notes(captured["hidden"], rare, batch.attention_mask, self.config.window)
                self._pending.append((rare.word_ids, notes))
        metrics = dict(out.metrics)
        metrics.update(self._metrics(batch, rare, captured.get("mlm"), out.metrics))
        return Output(loss=out.loss, metrics=metrics)

    @torch.no_grad()
    def _metrics(self, batch: Batch, rare: RareWords, mlm, inner_metrics) -> dict[str, torch.Tensor]:
        B, T = batch.input_ids.shape
        device = batch.input_ids.device
        has_rare = torch.zeros(B, device=device).index_fill_(0, rare.rows, 1.0)  # (B,)
        metrics = {"tnf_rare_sequence_fraction": has_rare.mean(),
                   "tnf_sequences": torch.tensor(float(B), device=device),
                   "tnf_notes_filled": self.has_note.sum().float(),
                   "tnf_batches": torch.ones((), device=device)}
        if mlm is None or batch.labels is None:
            return metrics
        logits, positions = mlm
        if positions is None:  # dense head: (B, T, V)
            positions = batch.labels != IGNORE_INDEX
            logits = logits.reshape(B * T, -1)[positions.reshape(-1)]
        rare_piece = span_matrix(rare.rows, rare.starts, rare.ends, B, T, torch.float32).sum(0) > 0  # (B*T,)
        index = torch.nonzero_static(positions.reshape(-1), size=logits.shape[0]).squeeze(1)  # (N,)
        rows = torch.nonzero(rare_piece[index]).squeeze(1)  # (Nr,) the one host sync: how many rare rows
        targets = batch.labels.reshape(-1)[index[rows]]  # (Nr,)
        picked = logits[rows].float()  # (Nr, V)
        loss_sum = F.cross_entropy(picked, targets, reduction="sum")
        correct = (picked.argmax(-1) == targets).float().sum()
        n_rare = torch.tensor(float(len(rows)), device=device)
        metrics.update({"mlm_rare_loss": loss_sum / n_rare.clamp(min=1),
                        "mlm_rare_accuracy": correct / n_rare.clamp(min=1), "mlm_rare_count": n_rare})
        loss_key, accuracy_key, count_key = (f"{MLM_HEAD}_{name}" for name in ("loss", "accuracy", "count"))
        if loss_key in inner_metrics and count_key in inner_metrics:
            total = torch.as_tensor(inner_metrics[count_key], device=device, dtype=torch.float32)
            n_other = total - n_rare
            loss_other = torch.as_tensor(inner_metrics[loss_key], device=device) * total - loss_sum
            right_other = torch.as_tensor(inner_metrics[accuracy_key], device=device) * total - correct
            metrics.update({"mlm_other_loss": loss_other / n_other.clamp(min=1),
                            "mlm_other_accuracy": right_other / n_other.clamp(min=1),
                            "mlm_other_count": n_other})
        return metrics

    # --- after each optimizer step --------------------------------------------------------------------------
    def after_step(self, step: int, env: DistEnv) -> None:
        """Average this step's notes per word over every micro-batch and rank, then one EMA update per
        word."""
        super().after_step(step, env)
        H = self.notes.shape[1]
        device = self.notes.device
        if self._pending:
            word_ids = torch.cat([w for w, _ in self._pending]).to(device)  # (N,)
            notes = torch.cat([n for _, n in self._pending]).to(device)  # (N, H)
        else:
            word_ids = torch.zeros(0, dtype=torch.long, device=device)  # (0,)
            notes = torch.zeros(0, H, device=device)  # (0, H)
        self._pending = []
        all_ids = torch.cat([part.to(device) for part in gather_rows(word_ids, env)])  # rank order
        all_notes = torch.cat([part.to(device) for part in gather_rows(notes, env)])
        if len(all_ids):
            ema_update(self.notes, self.has_note, all_ids, all_notes, self.config.gamma)


@contextmanager
def _hooks_on(modules: list[nn.Module], after):
    """Output hooks on ``modules`` for the duration of one wrapped forward (nothing left behind)."""
    handles = [m.register_forward_hook(after, with_kwargs=True) for m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def wrap_with_notes(objective: Objective, config: TnfConfig, model_config: ModelConfig, kept: str) -> Objective:
    return TakingNotes(objective, config, model_config, kept)


def tnf_flops_per_token(model_config: ModelConfig, config: TnfConfig, data, objective_config) -> float:
    """0: no per-token weight matmul (see the module docstring, FLOPs)."""
    return 0.0


register_addon(AddonSpec(group="tnf", config_class=TnfConfig, wrap=wrap_with_notes,
                         flops_per_token=tnf_flops_per_token, requires=frozenset({KEPT_HIDDEN}),
                         data=DataNeeds(features=frozenset({RARE_WORDS_FEATURE.name}))))

"""A small BERT-style WordPiece tokenizer folder for the token-classification and multiple-choice tests."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TEXTS = ["Empire State Building is in New York", "Paris and London are big cities", "Peter lives in Berlin",
         "the man is sitting on a roof and he starts pulling up roofing", "What does Tracy need to do before this?",
         "go home and see Riley", "make a new plan", "find somewhere to go", "@paulwalk it's the view from here",
         "Microsoft bought GitHub for billions", "a lady walks to a barbell and lifts it"]


def make_tokenizer_dir(folder: Path, vocab_size: int = 160) -> Path:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(TEXTS * 3, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder

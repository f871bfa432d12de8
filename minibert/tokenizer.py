"""Tokenizer: BERT's WordPiece through Hugging Face `tokenizers`, returning padded numpy batches.

The pipeline (normalise -> split on whitespace and punctuation -> WordPiece -> [CLS] A [SEP]
B [SEP]) comes from the checkpoint's tokenizer.json, or is built from its vocab.txt the way
BERT's own tokenizer does. Batches are padded to their longest sequence, not to a fixed length.
"""
import json

import numpy as np
from tokenizers import Tokenizer as WordPieceBackend
from tokenizers.implementations import BertWordPieceTokenizer

from . import named_models

SPECIAL_TOKENS = (("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("cls_token", "[CLS]"),
                  ("pad_token", "[PAD]"), ("mask_token", "[MASK]"))


class Tokenizer:
    def __init__(self, backend, pad_token="[PAD]"):
        # padding and truncation are applied per call; a fixed length stored in
        # tokenizer.json (all-MiniLM-L6-v2 pads everything to 128) must not apply
        backend.no_padding()
        backend.no_truncation()
        self.backend = backend
        self.pad_token_id = backend.token_to_id(pad_token)
        if self.pad_token_id is None:
            raise ValueError(f"pad token {pad_token!r} is not in the vocabulary")

    @classmethod
    def from_pretrained(cls, name_or_path):
        """The tokenizer of a checkpoint: a name ("minilm-l6"), a folder or a hub id."""
        folder = named_models.folder_of(name_or_path)
        settings, config_file = {}, folder / "tokenizer_config.json"
        if config_file.is_file():
            try:
                settings = json.loads(config_file.read_text("utf-8"))
            except json.JSONDecodeError as e:
                raise ValueError(f"{config_file}: not valid JSON (line {e.lineno}: {e.msg})") from None
        special = {role: _token(settings.get(role, default)) for role, default in SPECIAL_TOKENS}
        if (folder / "tokenizer.json").is_file():
            return cls(WordPieceBackend.from_file(str(folder / "tokenizer.json")),
                       special["pad_token"])
        vocab = folder / "vocab.txt"
        if not vocab.is_file():
            raise FileNotFoundError(f"{folder}: expected tokenizer.json or vocab.txt, "
                                    f"found neither")
        backend = BertWordPieceTokenizer(
            str(vocab), lowercase=settings.get("do_lower_case", _is_uncased(vocab)),
            strip_accents=settings.get("strip_accents"),
            handle_chinese_chars=settings.get("tokenize_chinese_chars", True), **special)
        return cls(backend, special["pad_token"])

    @property
    def vocab_size(self):
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __call__(self, texts, pairs=None, max_length=128):
        """texts (and pairs): a string or a list of B strings -> {"input_ids", "token_type_ids",
        "attention_mask"}: int64 (B, T), T the longest encoding of the batch, at most max_length.

        Too-long inputs lose tokens from their end; for a pair, from the longer of the two first,
        each keeping one token at least: a pair needs max_length 5 or more."""
        texts = _as_list(texts, "texts")
        if pairs is not None:
            pairs = _as_list(pairs, "pairs")
            if len(pairs) != len(texts):
                raise ValueError(f"pairs: expected one per text ({len(texts)}), found {len(pairs)}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 3:
            raise ValueError(f"max_length: expected an integer >= 3 (room for [CLS] and [SEP]), "
                             f"found {max_length!r}")
        if pairs is not None and max_length < 5:
            raise ValueError(f"max_length: a pair needs 5 at least (a token of each text, [CLS] "
                             f"and two [SEP]), found {max_length}")
        self.backend.enable_truncation(max_length=max_length, strategy="longest_first")
        try:
            encodings = self.backend.encode_batch(texts if pairs is None
                                                  else list(zip(texts, pairs)))
        finally:
            self.backend.no_truncation()
        B, T = len(encodings), max(len(e.ids) for e in encodings)
        batch = {"input_ids": np.full((B, T), self.pad_token_id, dtype=np.int64),
                 "token_type_ids": np.zeros((B, T), dtype=np.int64),
                 "attention_mask": np.zeros((B, T), dtype=np.int64)}
        for b, e in enumerate(encodings):     # dynamic padding: right-pad to the batch's longest
            batch["input_ids"][b, :len(e.ids)] = e.ids
            batch["token_type_ids"][b, :len(e.ids)] = e.type_ids
            batch["attention_mask"][b, :len(e.ids)] = 1
        return batch

    def decode(self, ids, skip_special_tokens=True):
        """Token ids (a sequence of ints) -> text; [CLS], [SEP] and [PAD] left out by default."""
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids):
        return [self.backend.id_to_token(int(i)) for i in ids]


def _as_list(texts, argument):
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, (list, tuple)) or not texts:
        found = repr(texts) if isinstance(texts, (list, tuple)) else type(texts).__name__
        raise ValueError(f"{argument}: expected a string or a non-empty list of strings, "
                         f"found {found}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{argument}[{i}]: expected a string, found {type(text).__name__}")
    return list(texts)


def _token(setting):
    # tokenizer_config.json holds a special token as "[PAD]" or as {"content": "[PAD]", ...}
    return setting["content"] if isinstance(setting, dict) else setting


def _is_uncased(vocab):
    """A vocabulary without upper-case word pieces belongs to an uncased (lowercasing) model;
    bracketed pieces ([CLS], [unused0]) are special."""
    with open(vocab, encoding="utf-8") as f:
        return not any(not piece.startswith("[") and piece != piece.lower() for piece in f)

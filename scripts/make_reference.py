"""Write minibert/reference/minilm_reference.npz: what Hugging Face transformers computes on the
minilm-l6 checkpoint, so the tests can compare minibert against it without torch installed.

For three inputs -- one sentence ("single"), a padded batch of three sentences of different
lengths ("batch"), a sentence pair with token types ("pair") -- it stores
    {case}.texts, {case}.pairs                      the strings (pairs only for "pair")
    {case}.input_ids / token_type_ids / attention_mask   BertTokenizerFast, padding=True, truncation=True
    {case}.sequence_output (B, T, C), {case}.pooled_output (B, C)   BertModel, float32, eval mode
and the ids BertTokenizerFast gives on hard strings (accents, punctuation, CJK, emoji, unknown
and very long words, pairs, truncation to 16 tokens):
    tokens.{case}.texts, tokens.{case}.pairs, tokens.{case}.max_length,
    tokens.{case}.input_ids / token_type_ids / attention_mask

Needs the "reference" extra (torch CPU + transformers). Rerun after changing the inputs:
    .venv/bin/python scripts/make_reference.py
"""
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import BertModel, BertTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))          # use the minibert of this checkout, installed or not
from minibert import named_models  # noqa: E402

OUTPUT = ROOT / "minibert" / "reference" / "minilm_reference.npz"   # package data: notebook 3 reads it

MODEL_CASES = {   # case -> (texts, pairs)
    "single": (["The quick brown fox jumps over the lazy dog."], None),
    "batch": (["A short one.",
               "Adapters add a few trainable parameters to a frozen pretrained network.",
               "Padding must not change the outputs of the real tokens."], None),
    "pair": (["How old is the universe?"], ["About 13.8 billion years, cosmologists estimate."]),
}

HARD_TEXTS = [
    "Crème brûlée à Zürich",
    "e\u0301cole, naïve café, Ångström, São Paulo",
    "Hello, world!!! (really?) -- yes; no: 'maybe' \"quoted\" $3.50 & 100% #tag @user",
    "don't can't won't it's U.S.A. e-mail state-of-the-art 3.14159",
    "日本語のテキスト",
    "中文分词测试，还有한국어 텍스트",
    "I love pizza 🍕🔥 so much 😂👍🏽",
    "Xyzzyplugh qwrtplkq zzzzyxwvut",
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "McDonald's iPhone NASA GPU CuPy",
    "Ελληνικά и русский текст",
    "tab\there\u200bzero\u00adwidth\u0007bell",
    "   leading and trailing whitespace \t\n",
    "[CLS] [MASK] inside [SEP] text",
    "",
]
HARD_PAIRS = [
    ("How old are you?", "I'm 6 years old."),
    ("Crème brûlée", "日本語のテキスト"),
    ("A premise with 🍕 emoji.", "A hypothesis"),
    ("", "only the second segment"),
]
LONG = ("This sentence is deliberately long so that it has to be truncated to sixteen "
        "tokens, which drops the tail.")
TOKEN_CASES = {   # case -> (texts, pairs, max_length)
    "hard": (HARD_TEXTS, None, 128),
    "pairs": ([a for a, _ in HARD_PAIRS], [b for _, b in HARD_PAIRS], 128),
    "truncated": ([LONG, "short", "pneumonoultramicroscopicsilicovolcanoconiosis " * 3], None, 16),
    "truncated_pairs": ([LONG, "a short first segment", LONG],
                        ["short second", LONG, "another long second segment that needs cutting "
                                                "as well, word after word after word"], 16),
}


def encode(tokenizer, texts, pairs, max_length):
    enc = tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length,
                    return_tensors="np")
    return {name: enc[name].astype(np.int64)
            for name in ("input_ids", "token_type_ids", "attention_mask")}


def main():
    folder = named_models.folder_of("minilm-l6")
    tokenizer = BertTokenizerFast.from_pretrained(folder)
    model = BertModel.from_pretrained(folder, attn_implementation="eager",
                                      dtype=torch.float32).eval()
    arrays = {}
    for case, (texts, pairs) in MODEL_CASES.items():
        enc = encode(tokenizer, texts, pairs, 128)
        with torch.no_grad():
            out = model(**{name: torch.from_numpy(a) for name, a in enc.items()})
        arrays[f"{case}.texts"] = np.array(texts)
        if pairs is not None:
            arrays[f"{case}.pairs"] = np.array(pairs)
        arrays.update({f"{case}.{name}": a for name, a in enc.items()})
        arrays[f"{case}.sequence_output"] = out.last_hidden_state.numpy().astype(np.float32)
        arrays[f"{case}.pooled_output"] = out.pooler_output.numpy().astype(np.float32)
    for case, (texts, pairs, max_length) in TOKEN_CASES.items():
        prefix = f"tokens.{case}"
        arrays[f"{prefix}.texts"] = np.array(texts)
        if pairs is not None:
            arrays[f"{prefix}.pairs"] = np.array(pairs)
        arrays[f"{prefix}.max_length"] = np.array(max_length)
        arrays.update({f"{prefix}.{name}": a
                       for name, a in encode(tokenizer, texts, pairs, max_length).items()})
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUTPUT, **arrays)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({OUTPUT.stat().st_size // 1024} KB, "
          f"{len(arrays)} arrays)")


if __name__ == "__main__":
    main()

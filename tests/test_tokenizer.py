"""Tokenizer: the same ids as transformers' BertTokenizerFast, batches padded to their longest."""
import shutil
from importlib.resources import files

import numpy as np
import pytest

from minibert import named_models
from minibert.tokenizer import Tokenizer

FIXTURE = files("minibert") / "reference" / "minilm_reference.npz"   # scripts/make_reference.py
TOKEN_CASES = ["hard", "pairs", "truncated", "truncated_pairs"]
MODEL_CASES = ["single", "batch", "pair"]
FIELDS = ("input_ids", "token_type_ids", "attention_mask")


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as z:
        return {name: z[name] for name in z.files}


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_pretrained("minilm-l6")


def inputs(reference, prefix):
    """(texts, pairs, max_length) stored under prefix in the fixture."""
    texts = [str(s) for s in reference[f"{prefix}.texts"]]
    pairs = [str(s) for s in reference[f"{prefix}.pairs"]] if f"{prefix}.pairs" in reference else None
    max_length = int(reference[f"{prefix}.max_length"]) if f"{prefix}.max_length" in reference else 128
    return texts, pairs, max_length


def assert_same_batch(found, reference, prefix):
    for field in FIELDS:
        expected = reference[f"{prefix}.{field}"]
        assert found[field].dtype == np.int64
        assert found[field].shape == expected.shape, field
        np.testing.assert_array_equal(found[field], expected, err_msg=f"{prefix}.{field}")


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_ids_match_bert_tokenizer_fast(tok, reference, case):
    texts, pairs, max_length = inputs(reference, f"tokens.{case}")
    assert_same_batch(tok(texts, pairs, max_length=max_length), reference, f"tokens.{case}")


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_inputs_match_bert_tokenizer_fast(tok, reference, case):
    texts, pairs, _ = inputs(reference, case)
    assert_same_batch(tok(texts, pairs), reference, case)


@pytest.mark.parametrize("with_config", [True, False])
def test_built_from_vocab_txt_matches(tmp_path, reference, with_config):
    # without tokenizer.json the pipeline is built from vocab.txt; without tokenizer_config.json
    # lowercasing follows the vocabulary, which is uncased
    source = named_models.folder_of("minilm-l6")
    shutil.copy(source / "vocab.txt", tmp_path)
    if with_config:
        shutil.copy(source / "tokenizer_config.json", tmp_path)
    tok = Tokenizer.from_pretrained(tmp_path)
    for case in TOKEN_CASES:
        texts, pairs, max_length = inputs(reference, f"tokens.{case}")
        assert_same_batch(tok(texts, pairs, max_length=max_length), reference, f"tokens.{case}")


def test_cased_vocab_keeps_case(tmp_path):
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Hello", "hello", "world", "##s"]
    (tmp_path / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    tok = Tokenizer.from_pretrained(tmp_path)
    assert tok("Hello worlds")["input_ids"].tolist() == [[2, 5, 7, 8, 3]]
    assert tok("hello")["input_ids"].tolist() == [[2, 6, 3]]


def test_live_against_transformers(tok, reference):
    transformers = pytest.importorskip("transformers")
    fast = transformers.BertTokenizerFast.from_pretrained(named_models.folder_of("minilm-l6"))
    texts, _, _ = inputs(reference, "tokens.hard")
    long_text = " ".join(["word"] * 300)
    batches = [(texts, None, 128), (texts, texts[::-1], 128), ([long_text, "x"], None, 128),
               (["a b c d e f", "g"], ["h", "i j k l m n o"], 5), (["one two"], ["three"], 5)]
    for texts, pairs, max_length in batches:
        expected = fast(texts, pairs, padding=True, truncation=True, max_length=max_length,
                        return_tensors="np")
        found = tok(texts, pairs, max_length=max_length)
        for field in FIELDS:
            np.testing.assert_array_equal(found[field], expected[field], err_msg=field)
    # where transformers keeps no token of a text ([CLS] [SEP] [SEP]), minibert refuses
    with pytest.raises(ValueError, match="a pair needs 5 at least"):
        tok(["one two"], ["three"], max_length=3)


def test_dynamic_padding(tok):
    enc = tok(["hi", "a somewhat longer sentence", "ok then"])
    T = enc["input_ids"].shape[1]
    assert T == 6 and T != 128                          # [CLS] a somewhat longer sentence [SEP]
    lengths = enc["attention_mask"].sum(axis=1)
    assert lengths.tolist() == [3, 6, 4]
    for b, n in enumerate(lengths):
        assert (enc["input_ids"][b, n:] == tok.pad_token_id).all()
        assert (enc["token_type_ids"][b, n:] == 0).all()
    single = tok("hi")                                   # a string is a batch of one
    assert single["input_ids"].shape == (1, 3)


def test_truncation_to_max_length(tok):
    long_text = " ".join(["word"] * 300)
    assert tok(long_text)["input_ids"].shape == (1, 128)
    assert tok(long_text, max_length=10)["input_ids"].shape == (1, 10)
    assert tok([long_text, "x"], max_length=512)["input_ids"].shape == (2, 302)


def test_token_types_of_a_pair(tok):
    enc = tok("how old are you", pairs="six")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens == ["[CLS]", "how", "old", "are", "you", "[SEP]", "six", "[SEP]"]
    assert enc["token_type_ids"][0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]


def test_pair_truncation_cuts_the_longer_segment_first(tok):
    enc = tok("a b c d e f g h", pairs="x y", max_length=8)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens == ["[CLS]", "a", "b", "c", "[SEP]", "x", "y", "[SEP]"]


def test_vocab_decode(tok):
    assert tok.vocab_size == 30522
    assert tok.pad_token_id == 0
    assert tok.decode(tok("Hello, World!")["input_ids"][0]) == "hello, world!"


@pytest.mark.parametrize("kwargs, argument", [
    (dict(texts=5), "texts"),
    (dict(texts=[]), "texts"),
    (dict(texts=["fine", b"bytes"]), r"texts\[1\]"),
    (dict(texts=["a", "b"], pairs=["only one"]), "pairs"),
    (dict(texts=["a"], pairs=[None]), r"pairs\[0\]"),
    (dict(texts="a", max_length=2), "max_length"),
    (dict(texts="a", max_length=12.5), "max_length"),
])
def test_bad_input_names_the_argument(tok, kwargs, argument):
    with pytest.raises(ValueError, match=f"^{argument}: expected"):
        tok(**kwargs)


def test_folder_without_vocabulary(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json or vocab.txt"):
        Tokenizer.from_pretrained(tmp_path)

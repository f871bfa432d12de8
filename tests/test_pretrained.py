"""The pretrained model end to end: minilm-l6 computes what Hugging Face transformers computes
(the fixture written by scripts/make_reference.py), and a checkpoint that does not fit is refused."""
import json
import re
import shutil
from importlib.resources import files

import numpy as np
import pytest

from minibert import named_models
from minibert.model import BertModel
from minibert.tokenizer import Tokenizer

from closeness import assert_close

FIXTURE = files("minibert") / "reference" / "minilm_reference.npz"   # package data
CASES = ["single", "batch", "pair"]
# float32 on both sides, summed in other orders: ~40 roundings of 1.2e-7 along six layers
# (measured 4e-7 on the sequence output, 9e-7 on the pooled one)
TOL = 5e-6


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as z:
        return {name: z[name] for name in z.files}


@pytest.fixture(scope="module")
def model():
    return BertModel.from_pretrained("minilm-l6")


@pytest.mark.parametrize("case", CASES)
def test_outputs_match_transformers(model, reference, case):
    mask = reference[f"{case}.attention_mask"]
    seq, pooled = model.forward(reference[f"{case}.input_ids"],
                                token_type_ids=reference[f"{case}.token_type_ids"],
                                attention_mask=mask)
    expected_seq = reference[f"{case}.sequence_output"]
    assert seq.shape == expected_seq.shape and seq.dtype == np.float32
    # padded positions carry no meaning and are ill-conditioned: there both float32
    # implementations sit ~2e-5 from a float64 run, so only real tokens are compared
    real = mask.astype(bool)
    assert_close(seq[real], expected_seq[real], tol=TOL, name="sequence_output")
    assert_close(pooled, reference[f"{case}.pooled_output"], tol=TOL, name="pooled_output")


def test_tokenizer_to_model_matches_transformers(model, reference):
    tok = Tokenizer.from_pretrained("minilm-l6")
    enc = tok([str(s) for s in reference["pair.texts"]], [str(s) for s in reference["pair.pairs"]])
    _, pooled = model.forward(**enc)
    assert_close(pooled, reference["pair.pooled_output"], tol=TOL, name="pooled_output")


def test_config_disagreeing_with_weights_is_refused(tmp_path):
    source = named_models.folder_of("minilm-l6")
    shutil.copy(source / "model.safetensors", tmp_path)
    fields = json.loads((source / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**fields, "vocab_size": 30000}))
    with pytest.raises(ValueError, match=re.escape(
            "config.json disagrees with the weights: vocab_size is 30000 but "
            "embeddings.word_embeddings.weight has 30522 in dimension 0")):
        BertModel.from_pretrained(tmp_path)

"""An epoch's order (plain shuffling, or grouped by length), padding, and resumable batches."""
import json

import numpy as np
import pytest

from minibert.data import tasks
from minibert.data.batching import (epoch_batches, epoch_order, make_batches, padding_share,
                                    token_lengths)
from minibert.cli import main
from minibert.tokenizer import Tokenizer


def test_plain_order_is_the_seeded_permutation():
    # the default every earlier result was made with: one permutation per (seed, epoch)
    np.testing.assert_array_equal(epoch_order(50, 3, 1),
                                  np.random.default_rng([3, 1]).permutation(50))


def test_grouped_order_puts_similar_lengths_together():
    n = 992                                      # runs of n // (4 B) = 31 batches: 4 runs
    lengths = np.random.default_rng(0).integers(5, 120, n)
    order = epoch_order(n, 0, 0, batch_size=8, lengths=lengths)
    assert sorted(order) == list(range(n))                           # every example once
    assert lengths[order[0]] == lengths.max()                        # the longest batch first
    runs = order.reshape(4, 8 * 31)[:, 1:]        # the first of each run may be the swapped one
    assert all((np.diff(lengths[run]) <= 0).all() for run in runs)   # each run sorted, longest first
    np.testing.assert_array_equal(order, epoch_order(n, 0, 0, 8, lengths))      # seeded
    assert not np.array_equal(order, epoch_order(n, 0, 1, 8, lengths))       # new each epoch
    grouped, shuffled = padding_share(order, lengths, 8), padding_share(epoch_order(n, 0, 0),
                                                                        lengths, 8)
    assert grouped < 0.05 < 0.3 < shuffled


def test_padding_share_by_hand():
    # batches [3, 1] and [2]: padded to 3 and 2, so 6 + 2 = 8 positions of which 6 are tokens
    assert padding_share([0, 1, 2], [3, 1, 2], 2) == pytest.approx(2 / 8)


def test_token_lengths_are_the_batches_attention_masks():
    tokenizer = Tokenizer.from_pretrained("minilm-l6")
    examples = tasks.load_examples("TREC-6", "train", max_examples=40)
    lengths = token_lengths(tokenizer, examples, 16)
    masks = [b["attention_mask"].sum(axis=1) for b in make_batches(tokenizer, examples, 7, 16)]
    np.testing.assert_array_equal(lengths, np.concatenate(masks))
    assert lengths.max() == 16                                        # truncated as trained


@pytest.mark.parametrize("group", [False, True])
def test_an_epoch_resumed_at_a_batch_gives_the_same_batches(group):
    tokenizer = Tokenizer.from_pretrained("minilm-l6")
    examples = tasks.load_examples("TREC-6", "train", max_examples=40)
    lengths = token_lengths(tokenizer, examples, 128) if group else None
    order = {"seed": 0, "batch_size": 4, "max_length": 128, "lengths": lengths}
    whole = list(epoch_batches(tokenizer, examples, 2, start=0, **order))
    resumed = list(epoch_batches(tokenizer, examples, 2, start=6, **order))
    assert len(whole) == 10 and len(resumed) == 4
    for a, b in zip(whole[6:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.slow
def test_a_grouped_run_reports_the_padding_it_saves(tmp_path):
    assert main(["train", "--task", "TREC-6", "--out", str(tmp_path), "--epochs", "1",
                 "--max-train-examples", "96", "--max-eval-examples", "16", "--batch-size", "8",
                 "--group-by-length"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["group_by_length"] is True
    assert 0.0 <= results["padding_share"] < results["padding_share_shuffled"] < 1.0

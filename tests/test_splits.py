"""The stratified split: shares per class, nothing lost or doubled, the same split from any
input order, and classes mixed within each split."""
import collections
import random

from minibert.data.splits import stratified_split
from minibert.data.tasks import Example


def examples(counts):
    """counts[label] examples of each label, lines numbered from 2 (after a header)."""
    labels = [label for label, n in enumerate(counts) for _ in range(n)]
    return [Example(f"text {i}", None, label, i + 2) for i, label in enumerate(labels)]


def test_each_class_is_split_80_10_10():
    data = examples([700, 250, 43])
    parts = stratified_split(data, salt="t")
    counts = {split: collections.Counter(e.label for e in part) for split, part in parts.items()}
    # round(43 * 0.1) = 4 per held-out split, 35 left for train
    assert counts == {"train": {0: 560, 1: 200, 2: 35}, "dev": {0: 70, 1: 25, 2: 4},
                      "test": {0: 70, 1: 25, 2: 4}}
    assert sorted(e.line for part in parts.values() for e in part) == [e.line for e in data]


def test_the_split_depends_on_the_lines_and_the_salt_not_the_order():
    data = examples([50, 30])
    shuffled = random.Random(1).sample(data, len(data))
    assert stratified_split(shuffled, salt="t") == stratified_split(data, salt="t")
    assert stratified_split(data, salt="u") != stratified_split(data, salt="t")


def test_classes_are_mixed_within_a_split():
    train = stratified_split(examples([500, 500]), salt="t")["train"]
    assert 150 <= sum(e.label for e in train[:400]) <= 250       # not all of one class first

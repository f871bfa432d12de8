"""A deterministic, stratified train/dev/test split for data that comes without one.

Each class keeps its share in every split: of a class's n examples, round(n * dev share) go to
dev, round(n * test share) to test and the rest to train. Which ones is decided by a key per
example, the sha256 of "<salt>:<line>" (its line in the source file): no random generator, so
the split is the same on every machine and with every NumPy version. Within each split the
examples are ordered by the same key, so the classes are mixed and the first N training
examples (--max-train-examples N) are a random sample of the training split.
"""
import hashlib

SHARES = {"train": 0.8, "dev": 0.1, "test": 0.1}


def _key(salt, example):
    return hashlib.sha256(f"{salt}:{example.line}".encode()).hexdigest()


def stratified_split(examples, salt, shares=SHARES):
    """{split: examples} of `examples` (tasks.Example, each with its own line), by class."""
    by_class = {}
    for example in sorted(examples, key=lambda e: _key(salt, e)):
        by_class.setdefault(example.label, []).append(example)
    parts = {split: [] for split in shares}
    for members in by_class.values():
        start = 0
        for split in [s for s in shares if s != "train"]:
            count = round(len(members) * shares[split])
            parts[split] += members[start:start + count]
            start += count
        parts["train"] += members[start:]
    return {split: sorted(part, key=lambda e: _key(salt, e)) for split, part in parts.items()}

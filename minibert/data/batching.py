"""Batches for training and evaluation: the order of an epoch, and padding to each batch's own
longest sequence.

An epoch's order comes from (seed, epoch) alone, so a resumed run sees the very same batches.
Plain shuffling is the default. Length grouping (`group_by_length`, as Hugging Face's Trainer
means it) shuffles, then sorts each run of 50 batches' worth of examples by length, so that a
batch holds sequences of similar length and carries little padding; the longest batch comes
first, so a run that does not fit in memory fails at once.
"""
import numpy as np

MEGABATCH_BATCHES = 50      # batches per sorted run, Hugging Face's default


def epoch_order(n, seed, epoch, batch_size=None, lengths=None):
    """The example indices of one epoch: shuffled, or grouped by length when `lengths` (one per
    example) are given."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    if lengths is None:
        return order
    lengths = np.asarray(lengths)
    # as Hugging Face's get_length_grouped_indices: fewer per run on small sets
    size = batch_size * max(1, min(n // (batch_size * 4), MEGABATCH_BATCHES))
    runs = [order[i:i + size] for i in range(0, n, size)]
    runs = [run[np.argsort(-lengths[run], kind="stable")] for run in runs]
    longest = int(np.argmax([lengths[run[0]] for run in runs]))
    runs[0][0], runs[longest][0] = runs[longest][0], runs[0][0]
    return np.concatenate(runs)


def token_lengths(tokenizer, examples, max_length):
    """The number of tokens of each example as the model sees it (truncated to max_length)."""
    lengths = []
    for batch in make_batches(tokenizer, examples, 1024, max_length):
        lengths.extend(batch["attention_mask"].sum(axis=1).tolist())
    return np.array(lengths)


def padding_share(order, lengths, batch_size):
    """The share of padding among the tokens of an epoch's batches, each padded to its own
    longest sequence."""
    lengths = np.asarray(lengths)[order]
    padded = real = 0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start:start + batch_size]
        padded += batch.max() * len(batch)
        real += batch.sum()
    return float(1.0 - real / padded)


def make_batches(tokenizer, examples, batch_size, max_length):
    """Batch dicts (input_ids, token_type_ids, attention_mask, labels) of consecutive
    examples, each padded to its own longest sequence."""
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        pairs = [e.text_b for e in chunk] if chunk[0].text_b is not None else None
        batch = tokenizer([e.text_a for e in chunk], pairs, max_length=max_length)
        batch["labels"] = np.array([e.label for e in chunk])
        yield batch


def epoch_examples(examples, epoch, *, seed, batch_size, start=0, lengths=None):
    """One epoch's examples in the order epoch_order gives, from those of batch `start` on."""
    order = epoch_order(len(examples), seed, epoch, batch_size, lengths)
    return [examples[i] for i in order[start * batch_size:]]


def epoch_batches(tokenizer, examples, epoch, *, seed, batch_size, max_length, start=0,
                  lengths=None):
    """One epoch's batches from batch `start` on, in the order epoch_order gives, each padded
    to its longest sequence of at most max_length tokens."""
    return make_batches(tokenizer, epoch_examples(examples, epoch, seed=seed,
                                                  batch_size=batch_size, start=start,
                                                  lengths=lengths), batch_size, max_length)

"""Evaluation and prediction with what training wrote (an adapter file, or another method's
trained file): `minibert eval` on a task's evaluation split or on your own labelled files,
SQuAD's answers, and what `minibert predict` reads.

Every entry point starts the same way: `check` the settings before any work, then `prepare`:
load the base model, load the file onto it with its head, make the tokenizer. Every one then
runs the one inference loop, `head_outputs`: forward without caches, dropout off, the head's
outputs copied to the host batch by batch.
"""
import dataclasses

import numpy as np

from .. import adapterhub, checks, speed
from ..adapter_files import load_training_file, read_adapter_file
from ..backend import to_host
from ..heads import QuestionAnsweringHead, SequenceClassificationHead
from ..model import BertModel
from ..named_models import DEFAULT_MODEL
from ..tokenizer import Tokenizer
from ..data import own_data, tasks
from ..data.batching import make_batches
from ..qa import squad
from ..qa.answers import best_answers, write_answers
from ..qa.metric import squad_scores
from ..qa.windows import make_windows, window_batches
from .settings import (QUESTION_ANSWERING, check_data_and_model, check_own_files,
                       check_question_answering, default_sequence_length, is_question_answering,
                       trained_file)
from .settings import task as check_task

N_BEST = 20             # start and end candidates per window, as run_squad.py


# ---------------------------------------------------------------------------- the one loop
def head_outputs(model, head, batches):
    """The head's outputs for every batch, dropout off, on the host, in batch order: one array
    per batch (logits (B, K), or regression values (B,)), or (start, end) logits (B, T) for a
    span head."""
    model.eval()
    head.eval()
    outputs = []
    for batch in batches:
        seq, pooled = model.forward(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                                    attention_mask=batch["attention_mask"], keep_cache=False)
        out, _ = head.forward_batch(seq, pooled, {**batch, "labels": None})
        outputs.append(tuple(map(to_host, out)) if isinstance(out, tuple) else to_host(out))
    return outputs


def example_outputs(model, head, tokenizer, examples, batch_size, max_length):
    """The head's outputs for every example: (N, K) logits, or (N,) regression values."""
    return np.concatenate(head_outputs(model, head, make_batches(tokenizer, examples,
                                                                 batch_size, max_length)))


def predict(model, head, tokenizer, examples, batch_size, max_length):
    """Class ids (or regression values) for every example, dropout off."""
    outputs = example_outputs(model, head, tokenizer, examples, batch_size, max_length)
    return outputs if head.is_regression else outputs.argmax(axis=-1)


def evaluate(model, head, tokenizer, task, examples, batch_size=32, max_length=128):
    """The task's metrics (and "score") of the model + head on the examples."""
    predictions = predict(model, head, tokenizer, examples, batch_size, max_length)
    return tasks.compute_metrics(task, predictions, np.array([e.label for e in examples]))


def predict_answers(model, head, tokenizer, questions, windows, batch_size=32,
                    max_answer_length=30):
    """{question id: answer text} for the questions, from their windows, dropout off."""
    outputs = head_outputs(model, head,
                           window_batches(windows, batch_size, tokenizer.pad_token_id))
    starts = [row for start, _ in outputs for row in start]
    ends = [row for _, end in outputs for row in end]
    return best_answers(questions, windows, starts, ends, N_BEST, max_answer_length)


# ---------------------------------------------------------------------------- the preamble
@dataclasses.dataclass
class Trained:
    """A base model with an adapter file loaded and active, its head, and the tokenizer."""
    model: BertModel
    head: object
    tokenizer: Tokenizer


def check(spec, splits, model_name, adapters, data_dir, batch_size, max_seq_length, device,
          max_eval_examples=None):
    """The checks every evaluation and prediction makes first; returns the sequence length
    (when None: the one the adapter file records, else the task's default) and the example
    count (None: all)."""
    if max_seq_length is None:
        max_seq_length = recorded_length(adapters)
    max_seq_length = default_sequence_length(spec, max_seq_length)
    check_data_and_model(spec, splits, model_name, data_dir, batch_size, max_seq_length, device)
    if not adapterhub.is_folder(adapters):
        checks.existing_file("adapters", adapters)
    return max_seq_length, checks.example_count("max_eval_examples", max_eval_examples)


def check_trained_on(adapters, spec):
    """An adapter file trained on a named task is scored on that task alone: on another, its
    labels would mean other things."""
    info = readable_info(adapters)
    task, data = info.get("task"), info.get("data") or {}
    if task is not None and task != spec.name:
        what = "your own files" if "label_column" in data else "another task"
        raise checks.BadValue("adapters", f"expected an adapter file trained on {spec.name}, "
                                          f"found {adapters}, trained on {task} ({what}); "
                                          "score it on what it was trained on")


def recorded_length(adapters):
    """The max_seq_length an adapter file was trained with; None where it does not say (files
    written before it was recorded)."""
    return (readable_info(adapters).get("data") or {}).get("max_seq_length")


def readable_info(adapters):
    """The metadata of an adapter file, read alone; {} for a file that cannot be read, which
    the loading refuses later, by name."""
    try:
        return read_adapter_file(adapters, tensors=False)[0]
    except (OSError, ValueError, TypeError):
        return {}


def prepare(model_name, adapters, device=None, kind="classification"):
    """The base model with the file written by training loaded onto it (an adapter file, or
    the trained file of another method), its head (which must be one for tasks of `kind`), and
    the tokenizer."""
    speed.enable()
    model = BertModel.from_pretrained(model_name, device=device)
    head = load_training_file(model, adapters)
    if kind == QUESTION_ANSWERING:
        if not isinstance(head, QuestionAnsweringHead):
            raise ValueError(f"{adapters}: holds no question-answering head; it cannot be "
                             "evaluated on SQuAD")
    elif not isinstance(head, SequenceClassificationHead):
        raise ValueError(f"{adapters}: holds no classification head, so it predicts no labels "
                         "(a question-answering head is scored on SQuAD alone)")
    return Trained(model, head, Tokenizer.from_pretrained(model_name))


def trained_data(adapters, columns):
    """What the adapter file says of its data: (its task's name, its labels in id order or None
    for regression, the own_data.Columns to read new files by). `columns` {text_column,
    text_pair_column, label_column}: names given now, None to take the file's (else text and
    label). A file that cannot say is refused as a bad `adapters`."""
    try:
        info, _ = read_adapter_file(adapters, tensors=False)
    except ValueError as e:
        raise checks.BadValue("adapters", str(e)) from None
    data, head = info.get("data") or {}, info["head"]
    if head is None or "num_labels" not in head or ("labels" not in data
                                                    and head["num_labels"] > 1):
        found = ("no head" if head is None else "a question-answering head"
                 if "num_labels" not in head else "no labels")
        raise checks.BadValue("adapters", f"expected an adapter file with a classification head "
                                          f"and its labels, found {adapters}, which records "
                                          f"{found}")

    def pick(setting, default):
        given = columns.get(setting)
        return given if given is not None else data.get(setting, default)
    return info["task"], data.get("labels"), own_data.Columns(
        pick("text_column", "text"), pick("label_column", "label"),
        pick("text_pair_column", None))


# ---------------------------------------------------------------------------- entry points
def run_eval(task, model_name, adapters, data_dir=None, batch_size=32, max_seq_length=None,
             max_eval_examples=None, device=None, **question_answering):
    """Score a base model + adapter file on the task's evaluation split; max_eval_examples
    None or 0: all. SQuAD takes the window settings and `predictions` of run_squad_eval."""
    spec = check_task("task", task)
    adapters = trained_file("adapters", adapters)
    if is_question_answering(spec):
        return run_squad_eval(model_name, adapters, data_dir, batch_size, max_seq_length,
                              max_eval_examples, device, **question_answering)
    max_seq_length, max_eval_examples = check(spec, (spec.eval_split,), model_name, adapters,
                                              data_dir, batch_size, max_seq_length, device,
                                              max_eval_examples)
    check_trained_on(adapters, spec)
    examples = tasks.load_examples(spec.name, spec.eval_split, data_dir, max_eval_examples)
    trained = prepare(model_name, adapters, device)
    if trained.head.num_labels != spec.num_labels:
        raise ValueError(f"{adapters}: its head has {trained.head.num_labels} labels, "
                         f"{spec.name} has {spec.num_labels}")
    metrics = evaluate(trained.model, trained.head, trained.tokenizer, spec.name, examples,
                       batch_size, max_seq_length)
    return {"task": spec.name, "metrics": metrics, "score": metrics["score"],
            "eval_split": spec.eval_split, "eval_examples": len(examples)}


def run_squad_eval(model_name, adapters, data_dir=None, batch_size=32, max_seq_length=None,
                   max_eval_examples=None, device=None, doc_stride=128, max_query_length=64,
                   max_answer_length=30, predictions=None):
    """Score a base model + adapter file (with its QA head) on SQuAD dev, the first
    max_eval_examples questions (None or 0: all); write the answers to `predictions` (a path)
    when given."""
    spec = squad.SQUAD
    adapters = trained_file("adapters", adapters)
    max_seq_length, max_eval_examples = check(spec, ("dev",), model_name, adapters, data_dir,
                                              batch_size, max_seq_length, device,
                                              max_eval_examples)
    check_question_answering(spec, max_seq_length, doc_stride, max_query_length,
                             max_answer_length)
    if predictions is not None:
        checks.output_file("predictions", predictions)
    questions = squad.load_questions("dev", data_dir, max_eval_examples)
    trained = prepare(model_name, adapters, device, QUESTION_ANSWERING)
    windows = make_windows(trained.tokenizer, questions, max_seq_length, doc_stride,
                           max_query_length)
    answers = predict_answers(trained.model, trained.head, trained.tokenizer, questions,
                              windows, batch_size, max_answer_length)
    if predictions is not None:
        write_answers(predictions, answers)
    metrics = squad_scores(questions, answers)
    return {"task": spec.name, "metrics": metrics, "score": metrics["score"],
            "exact_match": metrics["exact_match"], "f1": metrics["f1"],
            "eval_split": spec.eval_split, "eval_examples": len(questions),
            "eval_windows": len(windows), "predictions": predictions}


def run_eval_files(adapters, files, model_name=DEFAULT_MODEL, columns=None, file_format=None,
                   batch_size=32, max_seq_length=None, max_eval_examples=None, device=None):
    """Score a base model + adapter file on your own labelled files ({split: path}, dev and/or
    test), read with the adapter file's columns unless `columns` ({text_column, ...}) names
    others; max_seq_length None: 128."""
    columns = columns or {}
    adapters = trained_file("adapters", adapters)
    if not files:
        raise checks.BadValue("dev_file", "expected a dev or a test file (or a task), found none")
    settings = {f"{split}_file": path for split, path in files.items()}
    check_own_files(settings, file_format, columns)           # the columns named now
    max_seq_length, max_eval_examples = check(None, None, model_name, adapters, None,
                                              batch_size, max_seq_length, device,
                                              max_eval_examples)
    trained_on, labels, columns = trained_data(adapters, columns)
    check_own_files(settings, file_format, columns.by_setting())
    parts = {split: own_data.label_ids(own_data.read_labelled(path, file_format, columns,
                                                              labels is None),
                                       labels, path, trained_on, columns)[:max_eval_examples]
             for split, path in files.items()}
    trained = prepare(model_name, adapters, device)
    spec = own_data.make_task(trained_on, labels, columns)
    scores = {split: evaluate(trained.model, trained.head, trained.tokenizer, spec, examples,
                              batch_size, max_seq_length)
              for split, examples in parts.items()}
    return {"task": trained_on, "labels": labels,
            "files": {split: {"path": str(files[split]), "metrics": metrics,
                              "examples": len(parts[split])} for split, metrics in scores.items()}}

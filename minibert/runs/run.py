"""A training run on a real task, end to end: data -> tokenizer -> model (+ adapters) ->
training, with an evaluation and a checkpoint after each epoch -> results.json (+ the adapter
file). `Run.run_training` runs the one training loop (train.training_loop) with what a run adds
after each step and epoch: the progress bar, checkpoints, evaluation, stop requests;
`QuestionAnsweringRun` (qa_run.py) changes what a task of that kind changes. The analyses build
their runs from the same steps.
"""
import collections
import contextlib
import dataclasses
import json
import math
import signal
import threading
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import speed
from ..adapter_files import adapter_config_metadata, save_adapters, save_trained
from ..adapters import add_adapter_set
from ..atomic import write_atomically
from ..checks import plural
from ..heads import SequenceClassificationHead
from ..model import BertModel
from ..param_names import is_adapter
from ..tokenizer import Tokenizer
from ..train import Progress, configure, make_optimizer, training_loop
from ..data import own_data, tasks
from ..data.batching import epoch_batches, epoch_order, padding_share, token_lengths
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import evaluate
from .settings import (ADAPTER_FILE, CHECKPOINT, RESULTS, TRAINED_FILE, TRAINED_FILES,
                       is_question_answering, pooling_reason)


@dataclasses.dataclass
class TaskData:
    """A task and the training and evaluation examples the settings select from it (and, for
    your own files, the test file's examples, scored once training ends)."""
    spec: tasks.Task
    train: list
    eval: list
    test: list | None = None

    @classmethod
    def load(cls, settings):
        if settings.train_file is not None:
            spec, parts = own_data.load_training_data(settings.data_files(), settings.columns(),
                                                      settings.regression, settings.file_format)
            return cls(spec, parts["train"][:settings.max_train_examples],
                       parts["dev"][:settings.max_eval_examples], parts.get("test"))
        spec = tasks.get_task(settings.task)
        return cls(spec, tasks.load_examples(spec.name, "train", settings.data_dir,
                                             settings.max_train_examples),
                   tasks.load_examples(spec.name, spec.eval_split, settings.data_dir,
                                       settings.max_eval_examples))

    def description(self, settings):
        """What an adapter file records of the data, so that eval and predict read new files
        the same way: the labels (None: regression), the length the texts were cut to and,
        for your own files, the columns. None
        for extractive QA: its answers are spans of the context, not labels."""
        if is_question_answering(self.spec):
            return None
        labels = None if self.spec.labels is None else list(self.spec.labels)
        if settings.train_file is None:
            return {"labels": labels, "max_seq_length": settings.max_seq_length}
        return {"labels": labels, **settings.columns().by_setting(),
                "regression": settings.regression, "max_seq_length": settings.max_seq_length}


def build_model(settings, name=None):
    """The pretrained model of the settings, its dropout seeded; for the adapters method, with a
    fresh adapter set called `name` (default: the task's name)."""
    model = BertModel.from_pretrained(settings.model, device=settings.device)
    model.seed(settings.seed)
    if settings.method == "adapters":
        add_adapter_set(model, settings.adapter_config(), name or settings.task, settings.seed)
    return model


def new_head(model, spec, seed, pooling="cls", pooling_reason=None):
    """A freshly initialised head for the task, on the model's pooled output (pooling "cls")
    or on the mean of its token states ("mean")."""
    return SequenceClassificationHead(model.config.hidden_size, spec.num_labels,
                                      model.config.hidden_dropout_prob, device=model.device,
                                      seed=seed, pooling=pooling, pooling_reason=pooling_reason)


def fit(model, head, tokenizer, examples, settings, optimizer=None, progress=None, on_step=None,
        on_epoch=None, lengths=None):
    """train.training_loop on the examples with the settings' learning rate, epochs, batch size
    and shuffling seed (grouped by length if the settings say so, with the examples' token
    `lengths`, counted here when not given); returns the progress."""
    if settings.group_by_length and lengths is None:
        lengths = token_lengths(tokenizer, examples, settings.max_seq_length)

    def batches(epoch, start):
        return settings_batches(tokenizer, examples, settings, epoch, start, lengths)
    return training_loop(model, head, batches, settings.train_settings(),
                         math.ceil(len(examples) / settings.batch_size), optimizer, progress,
                         on_step, on_epoch)


def settings_batches(tokenizer, examples, settings, epoch, start, lengths):
    """Epoch `epoch`'s batches from batch `start` on, in the order and sizes the RunSettings
    give (grouped by the token `lengths` when they say so)."""
    return epoch_batches(tokenizer, examples, epoch, seed=settings.seed,
                         batch_size=settings.batch_size, max_length=settings.max_seq_length,
                         start=start, lengths=lengths if settings.group_by_length else None)


MIN_STEPS = 20            # fewer optimizer steps than this: a warning as training begins
MIN_CLASS_ROWS = 5        # a class with fewer training rows: a warning too


class Interrupted(RuntimeError):
    """SIGINT or SIGTERM arrived; a checkpoint was written and the run can be resumed."""


@contextlib.contextmanager
def stop_requests():
    """While inside: SIGINT and SIGTERM set a flag (checked after each step) instead of
    killing the run mid-write. Only the main thread can take signals: a run in another thread
    (a Ray Tune trial) is stopped by its host, and goes on from its last checkpoint."""
    requested = []
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    handler = lambda signum, frame: requested.append(signal.Signals(signum).name)
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Run:
    """A training run on a task: its model, head and optimizer, where it stands (progress), its
    score after each epoch (history), and its checkpoint in the output folder, which holds all of
    these so that the run can stop and go on."""

    def __init__(self, settings):
        self.settings = settings
        self.out = Path(settings.out)
        self.checkpoint = self.out / CHECKPOINT
        self.tokenizer = Tokenizer.from_pretrained(settings.model)
        self.data = self.load_data()
        self.model = build_model(settings, self.data.spec.name)
        self.head = self.new_head()
        configure(self.model, self.head, settings.method, settings.top_k)
        self.optimizer = make_optimizer(self.model, self.head, settings.train_settings())
        self.progress, self.history = Progress(), []
        self.lengths = self.token_lengths()

    # --- what a task's kind changes (qa_run.QuestionAnsweringRun: extractive QA) ---
    def load_data(self):
        return TaskData.load(self.settings)

    def new_head(self):
        settings = self.settings
        return new_head(self.model, self.data.spec, settings.seed, settings.pooling,
                        pooling_reason(settings.model, settings.pooling))

    def token_lengths(self):
        """The token count of each training example, for grouping and the padding share."""
        return token_lengths(self.tokenizer, self.data.train, self.settings.max_seq_length)

    def epoch_batches(self, epoch, start):
        """Epoch `epoch`'s training batches from batch `start` on."""
        return settings_batches(self.tokenizer, self.data.train, self.settings, epoch, start,
                                self.lengths)

    def evaluate(self, examples=None):
        """The task's metrics (and "score") on the evaluation examples (or `examples`)."""
        settings = self.settings
        return evaluate(self.model, self.head, self.tokenizer, self.data.spec,
                        self.data.eval if examples is None else examples, settings.batch_size,
                        settings.max_seq_length)

    # --- the run ---
    def resume(self):
        """Go on from the checkpoint: parameters, optimizer, dropout generators, progress and
        history as they were when it was written."""
        self.progress, extra = load_checkpoint(self.checkpoint, self.model, self.head,
                                               self.optimizer)
        self.history = extra["history"]

    replaces_finished_run = False     # run_train's overwrite: the folder holds an older run

    def save_checkpoint(self):
        save_checkpoint(self.checkpoint, self.model, self.head, self.optimizer, self.progress,
                        {"settings": dataclasses.asdict(self.settings), "history": self.history})
        if self.replaces_finished_run:          # the new run has its own state now
            for name in (RESULTS, *TRAINED_FILES, "predictions.json"):
                (self.out / name).unlink(missing_ok=True)
            self.replaces_finished_run = False

    def run_training(self):
        """Train to the last epoch with a progress bar, from where the run stands, in the one
        training loop (train.training_loop): after each epoch, evaluate and checkpoint; every
        settings.checkpoint_every steps, checkpoint. SIGINT or SIGTERM write a checkpoint and
        raise Interrupted."""
        settings, progress = self.settings, self.progress
        steps_per_epoch = math.ceil(len(self.data.train) / settings.batch_size)
        total = settings.epochs * len(self.data.train)
        # the bar counts examples, so its rate is the throughput in examples per second
        bar = tqdm(total=total, desc=f"{self.data.spec.name} {settings.method}", unit="ex",
                   disable=None, initial=min(progress.step * settings.batch_size, total))
        with stop_requests() as requested, contextlib.closing(bar):
            if progress.step == 0:
                for line in self.data_summary(settings.epochs * steps_per_epoch):
                    bar.write(line)

            def after_step(progress, loss, examples):
                bar.set_postfix(loss=f"{loss:.4f}")
                bar.update(examples)
                every = settings.checkpoint_every
                if requested or (every and progress.step % every == 0):
                    self.save_checkpoint()
                if requested:
                    # the settings hold absolute paths: the command works from any folder
                    raise Interrupted(f"{requested[0]} at step {progress.step}: checkpoint "
                                      f"written to {self.checkpoint.absolute()}; resume "
                                      f"with: minibert train --resume {self.out.absolute()}")

            training_loop(self.model, self.head, self.epoch_batches, settings.train_settings(),
                          steps_per_epoch, self.optimizer, progress, on_step=after_step,
                          on_epoch=lambda epoch, seconds, mean_loss: self.end_epoch(
                              bar, epoch + 1, seconds, mean_loss))

    def data_summary(self, total_steps):
        """Lines shown as training begins: the labels found with their row counts, and a
        warning where a run is too short to learn much or a class too small."""
        settings, spec, lines = self.settings, self.data.spec, []
        if not is_question_answering(spec) and spec.labels is not None:
            counts = collections.Counter(e.label for e in self.data.train)
            lines.append("labels (training rows): " + ", ".join(
                f"{label} {counts[i]:,d}" for i, label in enumerate(spec.labels)))
            lines += [f"warning: label {label!r} has {plural(counts[i], 'training row')}; a "
                      f"class needs {MIN_CLASS_ROWS} at least to be learnt"
                      for i, label in enumerate(spec.labels) if counts[i] < MIN_CLASS_ROWS]
        if total_steps < MIN_STEPS:
            lines.append(f"warning: this run makes {plural(total_steps, 'optimizer step')} "
                         f"({plural(len(self.data.train), 'example')}, batch "
                         f"{settings.batch_size}, {plural(settings.epochs, 'epoch')}); under "
                         f"{MIN_STEPS} the model barely moves from where it began: give more "
                         "--epochs or a smaller --batch-size")
        return lines

    def end_epoch(self, bar, epoch, seconds, mean_loss):
        """Epoch `epoch` (counted from 1) is done: score it, record it, checkpoint."""
        metrics = self.evaluate()
        self.history.append({"epoch": epoch, "train_loss": mean_loss,
                             "train_seconds": seconds, "metrics": metrics})
        bar.write(f"epoch {epoch}: train loss {mean_loss:.4f} ({seconds:.0f} s), "
                  f"{self.data.spec.eval_split} "
                  + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        self.save_checkpoint()

    def results(self):
        """The results.json of the finished run."""
        settings, spec, model, head = self.settings, self.data.spec, self.model, self.head
        metrics = self.history[-1]["metrics"]
        train_seconds = sum(h["train_seconds"] for h in self.history)
        trained = model.num_params(model.trainable_names()) + head.num_params()
        base = model.num_params([n for n in model.params if not is_adapter(n)])
        return {
            "task": spec.name, "method": settings.method,
            "adapter_size": settings.adapter_size if settings.method == "adapters" else None,
            # the adapter's whole variant, as its file keeps it
            "adapter": (adapter_config_metadata(model.adapters.config)
                        if settings.method == "adapters" else None),
            "pooling": settings.pooling,
            "pooling_reason": pooling_reason(settings.model, settings.pooling),
            "metrics": metrics, "score": metrics["score"], "score_metric": spec.score,
            "eval_split": spec.eval_split, "trained_params": trained,
            "total_params": model.num_params() + head.num_params(),
            "trained_percent_of_base": 100.0 * trained / base,
            "train_seconds": train_seconds,
            "seconds_per_epoch": train_seconds / settings.epochs,
            "examples_per_second": settings.epochs * len(self.data.train) / train_seconds,
            "train_examples": len(self.data.train), "eval_examples": len(self.data.eval),
            "seed": settings.seed, "learning_rate": settings.learning_rate,
            # where the numbers were made: runs on other CPUs differ in BLAS's rounding
            "machine": speed.machine(),
            "padding_share": self.padding_share(settings.group_by_length),
            "padding_share_shuffled": self.padding_share(False),
            "settings": dataclasses.asdict(settings), "history": self.history,
            **self.test_results(),
        }

    def test_results(self):
        """Your own data's test file scored by the final model: {"test_metrics": ...,
        "test_examples": N}, or nothing without one; and the labels, in id order."""
        if self.settings.train_file is None:
            return {}
        labels = {"labels": self.data.description(self.settings)["labels"]}
        if self.data.test is None:
            return labels
        metrics = self.evaluate(self.data.test)
        return {**labels, "test_metrics": metrics, "test_examples": len(self.data.test)}

    def padding_share(self, grouped):
        """Padding's share of the training batches' tokens over all epochs, grouped by length or
        plainly shuffled."""
        settings, n = self.settings, len(self.lengths)
        return float(np.mean([padding_share(
            epoch_order(n, settings.seed, epoch, settings.batch_size,
                        self.lengths if grouped else None), self.lengths, settings.batch_size)
            for epoch in range(settings.epochs)]))

    def finish(self):
        """Write what eval and predict load, atomically: the adapter file (method adapters) or
        the trained file (the other methods: the weights they trained, and the head); then
        results.json, and remove the checkpoint. Returns the results."""
        task, data = self.data.spec.name, self.data.description(self.settings)
        if self.settings.method == "adapters":
            save_adapters(self.model, self.out / ADAPTER_FILE, self.head, task, data)
        else:
            save_trained(self.model, self.out / TRAINED_FILE, self.head,
                         self.settings.method, task, data)
        results = self.results()
        write_atomically(self.out / RESULTS, lambda tmp: Path(tmp).write_text(
            json.dumps(results, indent=2) + "\n", "utf-8"))
        self.checkpoint.unlink()
        return results

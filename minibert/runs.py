"""A run on a real task, end to end: data -> tokenizer -> model (+ adapters) -> training ->
evaluation -> results.json (+ the adapter file). `minibert train` and `minibert eval` call it;
the experiments build their runs from the same steps.
"""
import contextlib
import dataclasses
import functools
import json
import math
import signal
import threading
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import checks, tasks
from .adapter_files import load_adapters, save_adapters
from .adapters import add_adapters
from .batching import epoch_batches, epoch_order, make_batches, padding_share, token_lengths
from .files import write_atomically
from .folder_lock import locked
from .heads import SequenceClassificationHead
from .model import BertModel
from .names import is_adapter
from .tokenizer import Tokenizer
from .training_checkpoint import load_checkpoint, read_manifest, save_checkpoint
from .train import METHODS, Progress, TrainSettings, configure, make_optimizer, train

# learning rates that work for each method on minilm-l6 (adapters and small parts need more)
DEFAULT_LR = {"adapters": 1e-3, "full": 5e-5, "top-k": 1e-4, "layernorm": 1e-3, "head": 1e-3}


@dataclasses.dataclass
class RunSettings:
    """Everything a training run depends on. Made settings are checked settings: every field is
    checked against what it may be (the model's config and the task's files read, nothing
    loaded), and a bad one raises checks.BadValue naming it."""
    task: str = "TREC-6"
    method: str = "adapters"
    model: str = "minilm-l6"
    out: str = "runs/trec6"
    adapter_size: int = 64
    adapter_init_std: float = 1e-3
    top_k: int = None
    data_dir: str = None
    lr: float = None
    epochs: int = 3
    batch_size: int = 32
    max_seq_length: int = 128
    seed: int = 0
    max_train_examples: int = None     # None or 0: all
    max_eval_examples: int = None      # None or 0: all
    device: str = None
    checkpoint_every: int = 0      # steps; 0: at the end of each epoch only
    group_by_length: bool = False  # batches of similar length (less padding), in shuffled order

    def __post_init__(self):
        spec = checks.task("task", self.task)
        checks.choice("method", self.method, METHODS)
        config = check_data_and_model(spec, (spec.eval_split, "train"), self.model,
                                      self.data_dir, self.batch_size, self.max_seq_length,
                                      self.device)
        checks.output_folder("out", self.out)
        checks.integer("adapter_size", self.adapter_size)
        # > 0, not >= 0 as for AdapterConfig: adapters of zero weights get zero weight gradients
        # and would stay zero, training their output bias alone
        checks.positive("adapter_init_std", self.adapter_init_std)
        if self.method == "top-k" or self.top_k is not None:
            checks.integer("top_k", self.top_k, 1, config.num_hidden_layers)
        if self.lr is not None:
            checks.positive("lr", self.lr)
        checks.integer("epochs", self.epochs)
        checks.integer("seed", self.seed, minimum=0)
        self.max_train_examples = checks.example_count("max_train_examples",
                                                       self.max_train_examples)
        self.max_eval_examples = checks.example_count("max_eval_examples", self.max_eval_examples)
        checks.integer("checkpoint_every", self.checkpoint_every, minimum=0)
        checks.choice("group_by_length", self.group_by_length, (False, True))

    @property
    def learning_rate(self):
        return DEFAULT_LR[self.method] if self.lr is None else self.lr

    def train_settings(self):
        return TrainSettings(lr=self.learning_rate, epochs=self.epochs)


def check_data_and_model(spec, splits, model, data_dir, batch_size, max_seq_length, device):
    """The checks a training run and an evaluation share; returns the model's config."""
    checks.task_files("data_dir", spec, data_dir, splits)
    config = checks.model_config("model", model)
    checks.integer("batch_size", batch_size)
    # 3 tokens at least: [CLS], [SEP] and one of the text
    checks.sequence_length("max_seq_length", max_seq_length, config, minimum=3)
    checks.device("device", device)
    return config


@dataclasses.dataclass
class TaskData:
    """A task and the training and evaluation examples the settings select from it."""
    spec: tasks.Task
    train: list
    eval: list

    @classmethod
    def load(cls, settings):
        spec = tasks.get_task(settings.task)
        return cls(spec, tasks.load_examples(spec.name, "train", settings.data_dir,
                                             settings.max_train_examples),
                   tasks.load_examples(spec.name, spec.eval_split, settings.data_dir,
                                       settings.max_eval_examples))


def build_model(settings):
    """The pretrained model of the settings, its dropout seeded; for the adapters method, with a
    fresh adapter set named after the task."""
    model = BertModel.from_pretrained(settings.model, device=settings.device)
    model.seed(settings.seed)
    if settings.method == "adapters":
        add_adapters(model, size=settings.adapter_size, init_std=settings.adapter_init_std,
                     name=tasks.get_task(settings.task).name, seed=settings.seed)
    return model


def new_head(model, spec, seed):
    """A freshly initialised head for the task on the model's pooled output."""
    return SequenceClassificationHead(model.config.hidden_size, spec.num_labels,
                                      model.config.hidden_dropout_prob, device=model.device,
                                      seed=seed)


def predict(model, head, tokenizer, examples, batch_size, max_length):
    """Class ids (or regression values) for every example, dropout off."""
    model.eval()
    head.eval()
    outputs = []
    for batch in make_batches(tokenizer, examples, batch_size, max_length):
        _, pooled = model.forward(batch["input_ids"], batch["token_type_ids"],
                                  batch["attention_mask"], keep_cache=False)
        logits, _ = head.forward(pooled)
        logits = model.device.to_host(logits)
        outputs.append(logits if head.is_regression else logits.argmax(axis=-1))
    return np.concatenate(outputs)


def evaluate(model, head, tokenizer, task, examples, batch_size=32, max_length=128):
    """The task's metrics (and "score") of the model + head on the examples."""
    predictions = predict(model, head, tokenizer, examples, batch_size, max_length)
    return tasks.compute_metrics(task, predictions, np.array([e.label for e in examples]))


def fit(model, head, tokenizer, examples, settings, optimizer=None, progress=None, on_step=None,
        on_epoch=None, lengths=None):
    """train.train on the examples with the settings' learning rate, epochs, batch size and
    shuffling seed (grouped by length if the settings say so, with the examples' token
    `lengths`, counted here when not given); returns the progress."""
    if settings.group_by_length and lengths is None:
        lengths = token_lengths(tokenizer, examples, settings.max_seq_length)
    grouping = lengths if settings.group_by_length else None

    def batches(epoch, start):
        return epoch_batches(tokenizer, examples, settings, epoch, start, grouping)
    return train(model, head, batches, settings.train_settings(),
                 math.ceil(len(examples) / settings.batch_size), optimizer, progress, on_step,
                 on_epoch)


CHECKPOINT = "checkpoint.safetensors"


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


def resume_settings(out, given=None):
    """The settings of the interrupted run whose checkpoint is in folder `out`, writing into
    `out`. `given` ({setting: value}) are settings asked for now: each must be the saved one,
    else checks.BadValue names it (a resumed run goes on as it began)."""
    checkpoint = checks.existing_folder("resume", out) / CHECKPOINT
    if not checkpoint.is_file():
        raise checks.BadValue("resume", f"expected a folder holding {CHECKPOINT} (an "
                                        f"interrupted run), found none in {out}")
    try:
        saved = read_manifest(checkpoint)["extra"]["settings"]
    except ValueError as e:
        raise checks.BadValue("resume", str(e)) from None
    settings = RunSettings(**{**saved, "out": str(out)})
    for name, now in (given or {}).items():
        then = getattr(settings, name)
        if not _same_setting(name, then, now):
            raise checks.BadValue(name, f"expected {then!r}, the setting of the run being "
                                        f"resumed in {out}, found {now!r}; leave it out, or "
                                        "start a new run in another folder")
    return settings


def _same_setting(name, then, now):
    """Whether a setting asked for now is the saved one: a path by the folder it names, an
    example count with 0 as None (both: all examples)."""
    if name == "out":
        return Path(then).resolve() == Path(now).resolve()
    if name in ("max_train_examples", "max_eval_examples"):
        return then == (now or None)
    return then == now


class Run:
    """A training run on a task: its model, head and optimizer, where it stands (progress), its
    score after each epoch (history), and its checkpoint in the output folder, which holds all of
    these so that the run can stop and go on."""

    def __init__(self, settings):
        self.settings = settings
        self.out = Path(settings.out)
        self.checkpoint = self.out / CHECKPOINT
        self.data = TaskData.load(settings)
        self.tokenizer = Tokenizer.from_pretrained(settings.model)
        self.model = build_model(settings)
        self.head = new_head(self.model, self.data.spec, settings.seed)
        configure(self.model, self.head, settings.method, settings.top_k)
        self.optimizer = make_optimizer(self.model, self.head, settings.train_settings())
        self.progress, self.history = Progress(), []
        self.lengths = token_lengths(self.tokenizer, self.data.train, settings.max_seq_length)

    def resume(self):
        """Go on from the checkpoint: parameters, optimizer, dropout generators, progress and
        history as they were when it was written."""
        self.progress, extra = load_checkpoint(self.checkpoint, self.model, self.head,
                                               self.optimizer)
        self.history = extra["history"]

    def save_checkpoint(self):
        save_checkpoint(self.checkpoint, self.model, self.head, self.optimizer, self.progress,
                        {"settings": dataclasses.asdict(self.settings), "history": self.history})

    def train(self):
        """Train to the last epoch with a progress bar; evaluate and checkpoint after each epoch
        and checkpoint every settings.checkpoint_every steps. SIGINT or SIGTERM write a
        checkpoint and raise Interrupted."""
        settings = self.settings
        total = settings.epochs * len(self.data.train)
        # the bar counts examples, so its rate is the throughput in examples per second
        bar = tqdm(total=total, desc=f"{self.data.spec.name} {settings.method}", unit="ex",
                   disable=None, initial=min(self.progress.step * settings.batch_size, total))
        with stop_requests() as requested:
            try:
                fit(self.model, self.head, self.tokenizer, self.data.train, settings,
                    self.optimizer, self.progress, lengths=self.lengths,
                    on_step=functools.partial(self._after_step, bar, requested),
                    on_epoch=functools.partial(self._after_epoch, bar))
            finally:
                bar.close()

    def _after_step(self, bar, requested, progress, loss, examples):
        bar.set_postfix(loss=f"{loss:.4f}")
        bar.update(examples)
        every = self.settings.checkpoint_every
        if requested or (every and progress.step % every == 0):
            self.save_checkpoint()
        if requested:
            raise Interrupted(f"{requested[0]} at step {progress.step}: checkpoint written to "
                              f"{self.checkpoint}; resume with: minibert train --resume {self.out}")

    def _after_epoch(self, bar, epoch, seconds, mean_loss):
        spec, settings = self.data.spec, self.settings
        metrics = evaluate(self.model, self.head, self.tokenizer, spec.name, self.data.eval,
                           settings.batch_size, settings.max_seq_length)
        self.history.append({"epoch": epoch + 1, "train_loss": mean_loss,
                             "train_seconds": seconds, "metrics": metrics})
        bar.write(f"epoch {epoch + 1}: train loss {mean_loss:.4f} ({seconds:.0f} s), "
                  f"{spec.eval_split} " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
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
            "metrics": metrics, "score": metrics["score"], "score_metric": spec.score,
            "eval_split": spec.eval_split, "trained_params": trained,
            "total_params": model.num_params() + head.num_params(),
            "trained_percent_of_base": 100.0 * trained / base,
            "train_seconds": train_seconds,
            "seconds_per_epoch": train_seconds / settings.epochs,
            "examples_per_second": settings.epochs * len(self.data.train) / train_seconds,
            "train_examples": len(self.data.train), "eval_examples": len(self.data.eval),
            "seed": settings.seed, "learning_rate": settings.learning_rate,
            "padding_share": self.padding_share(settings.group_by_length),
            "padding_share_shuffled": self.padding_share(False),
            "settings": dataclasses.asdict(settings), "history": self.history,
        }

    def padding_share(self, grouped):
        """Padding's share of the training batches' tokens over all epochs, grouped by length or
        plainly shuffled."""
        settings, n = self.settings, len(self.lengths)
        return float(np.mean([padding_share(
            epoch_order(n, settings.seed, epoch, settings.batch_size,
                        self.lengths if grouped else None), self.lengths, settings.batch_size)
            for epoch in range(settings.epochs)]))

    def finish(self):
        """Write the adapter file (method adapters) and results.json, each atomically, then
        remove the checkpoint. Returns the results."""
        if self.settings.method == "adapters":
            save_adapters(self.model, self.out / "adapter.safetensors", self.head,
                          task=self.data.spec.name)
        results = self.results()
        write_atomically(self.out / "results.json", lambda tmp: Path(tmp).write_text(
            json.dumps(results, indent=2) + "\n", "utf-8"))
        self.checkpoint.unlink()
        return results


def run_train(settings, resume=False):
    """Train, evaluate after each epoch, write results.json (and adapter.safetensors).

    A checkpoint is kept in the output folder after every epoch (and every
    settings.checkpoint_every steps, and on SIGINT/SIGTERM); resume=True goes on from it, and
    the run then ends exactly as an uninterrupted one would. It is removed once results.json
    is written. While it runs, the output folder is locked (folder_lock): a second run there
    is refused."""
    checkpoint = Path(settings.out) / CHECKPOINT
    if not resume and checkpoint.exists():
        raise ValueError(f"{checkpoint}: an interrupted run is here; resume it with "
                         f"minibert train --resume {settings.out}, or choose another --out")
    with locked(settings.out):
        run = Run(settings)
        if resume:
            run.resume()
        run.train()
        return run.finish()


def run_eval(task, model_name, adapters, data_dir=None, batch_size=32, max_seq_length=128,
             max_eval_examples=None, device=None):
    """Score a base model + adapter file on the task's evaluation split; max_eval_examples
    None or 0: all."""
    spec = checks.task("task", task)
    check_data_and_model(spec, (spec.eval_split,), model_name, data_dir, batch_size,
                         max_seq_length, device)
    checks.existing_file("adapters", adapters)
    max_eval_examples = checks.example_count("max_eval_examples", max_eval_examples)
    examples = tasks.load_examples(spec.name, spec.eval_split, data_dir, max_eval_examples)
    model = BertModel.from_pretrained(model_name, device=device)
    head = load_adapters(model, adapters)
    if head is None:
        raise ValueError(f"{adapters}: holds no task head; it cannot be evaluated on {spec.name}")
    if head.num_labels != spec.num_labels:
        raise ValueError(f"{adapters}: its head has {head.num_labels} labels, "
                         f"{spec.name} has {spec.num_labels}")
    metrics = evaluate(model, head, Tokenizer.from_pretrained(model_name), spec.name, examples,
                       batch_size, max_seq_length)
    return {"task": spec.name, "metrics": metrics, "score": metrics["score"],
            "eval_split": spec.eval_split, "eval_examples": len(examples)}

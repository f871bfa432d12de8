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

from . import checks, own_data, tasks
from .adapter_files import load_adapters, read_adapter_file, save_adapters
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
    task: str = None                   # None: TREC-6, or your own files when train_file is given
    method: str = "adapters"
    model: str = "minilm-l6"
    out: str = None                    # None: runs/<task, lower case, no dashes> (runs/trec6),
                                       # or runs/<training file's stem>
    adapter_size: int = 64
    adapter_init_std: float = 1e-3
    top_k: int = None
    data_dir: str = None
    lr: float = None
    epochs: int = 3
    batch_size: int = 32
    max_seq_length: int = None         # None: the task's (128; SQuAD 384)
    seed: int = 0
    max_train_examples: int = None     # None or 0: all
    max_eval_examples: int = None      # None or 0: all
    device: str = None
    checkpoint_every: int = 0      # steps; 0: at the end of each epoch only
    group_by_length: bool = False  # batches of similar length (less padding), in shuffled order
    # your own data (minibert.own_data): scored on dev after each epoch, on test at the end
    train_file: str = None
    dev_file: str = None
    test_file: str = None
    text_column: str = "text"
    text_pair_column: str = None
    label_column: str = "label"
    regression: bool = False
    file_format: str = None        # csv | tsv | jsonl; None: from each file's extension
    # extractive QA (SQuAD) only: windows over long contexts, and the longest answer predicted
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30

    def __post_init__(self):
        if self.train_file is None:
            self._check_no_files()
            self.task = "TREC-6" if self.task is None else self.task
            spec = checks.task("task", self.task, question_answering=True)
        else:
            self._check_own_data()
            spec = None
        self.max_seq_length = default_sequence_length(spec, self.max_seq_length)
        if self.out is None:
            name = spec.name.lower().replace("-", "") if spec else Path(self.train_file).stem
            self.out = f"runs/{name}"
        checks.choice("method", self.method, METHODS)
        config = check_data_and_model(spec, spec and (spec.eval_split, "train"), self.model,
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
        check_question_answering(spec, self.max_seq_length, self.doc_stride,
                                 self.max_query_length, self.max_answer_length)

    def _check_no_files(self):
        """Without train_file, the options of your own files are not taken."""
        for name in ("dev_file", "test_file"):
            if getattr(self, name) is not None:
                raise checks.BadValue(name, f"expected no {name} without train_file (a task's "
                                            f"splits are its own), found {getattr(self, name)!r}")
        if self.regression:
            raise checks.BadValue("regression", "expected regression only with train_file (a "
                                                "task knows its head)")

    def _check_own_data(self):
        """Your own files: no task beside them, a dev file, the files readable and holding the
        columns."""
        if self.task is not None:
            raise checks.BadValue("task", f"expected no task beside train_file (your files are "
                                          f"the task), found {self.task!r}")
        if self.dev_file is None:
            raise checks.BadValue("dev_file", "expected a dev file beside train_file (it is "
                                              "scored after every epoch), found none")
        checks.choice("regression", self.regression, (False, True))
        check_own_files({f"{split}_file": path for split, path in self.data_files().items()},
                        self.file_format, self.columns().by_setting())

    def columns(self):
        """The own_data.Columns of the settings, each name checked."""
        return own_data.Columns(
            checks.column("text_column", self.text_column),
            checks.column("label_column", self.label_column),
            checks.column("text_pair_column", self.text_pair_column, optional=True))

    def data_files(self):
        """{split: path} of your own files."""
        return {split: path for split, path in (("train", self.train_file), ("dev", self.dev_file),
                                                ("test", self.test_file)) if path is not None}

    @property
    def learning_rate(self):
        return DEFAULT_LR[self.method] if self.lr is None else self.lr

    def train_settings(self):
        return TrainSettings(lr=self.learning_rate, epochs=self.epochs)


def is_squad(spec):
    """Whether the task (a spec; None: your own files) is SQuAD, extractive QA."""
    return spec is not None and spec.name == "SQuAD"


def default_sequence_length(spec, max_seq_length):
    """max_seq_length, or the task's default when it is None: 384 for SQuAD (its contexts are
    long), 128 for the others and your own files (spec None)."""
    if max_seq_length is not None:
        return max_seq_length
    return 384 if is_squad(spec) else 128


def check_question_answering(spec, max_seq_length, doc_stride, max_query_length,
                             max_answer_length):
    """The window settings of extractive QA, positive integers; for SQuAD, a question of
    max_query_length tokens must leave room for context in a window of max_seq_length (checked
    before). Other tasks do not use them."""
    checks.integer("doc_stride", doc_stride)
    longest = max_seq_length - 4 if is_squad(spec) else None    # [CLS], 2 [SEP], 1 token
    checks.integer("max_query_length", max_query_length, 1, longest)
    checks.integer("max_answer_length", max_answer_length)


def check_data_and_model(spec, splits, model, data_dir, batch_size, max_seq_length, device):
    """The checks a training run and an evaluation share; returns the model's config. spec None:
    your own files (checked by their own settings)."""
    if spec is not None:
        checks.task_files("data_dir", spec, data_dir, splits)
    elif data_dir is not None:
        checks.existing_folder("data_dir", data_dir)
    config = checks.model_config("model", model)
    checks.integer("batch_size", batch_size)
    # 3 tokens at least: [CLS], [SEP] and one of the text
    checks.sequence_length("max_seq_length", max_seq_length, config, minimum=3)
    checks.device("device", device)
    return config


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
        """What an adapter file records of the data: the labels (None: regression) and, for
        your own files, the columns, so that eval and predict read new files the same way. None
        for SQuAD: its answers are spans of the context, not labels."""
        if is_squad(self.spec):
            return None
        labels = None if self.spec.labels is None else list(self.spec.labels)
        if settings.train_file is None:
            return {"labels": labels}
        return {"labels": labels, **settings.columns().by_setting(),
                "regression": settings.regression}


def build_model(settings, name=None):
    """The pretrained model of the settings, its dropout seeded; for the adapters method, with a
    fresh adapter set called `name` (default: the task's name)."""
    model = BertModel.from_pretrained(settings.model, device=settings.device)
    model.seed(settings.seed)
    if settings.method == "adapters":
        add_adapters(model, size=settings.adapter_size, init_std=settings.adapter_init_std,
                     name=name or settings.task, seed=settings.seed)
    return model


def new_head(model, spec, seed):
    """A freshly initialised head for the task on the model's pooled output."""
    return SequenceClassificationHead(model.config.hidden_size, spec.num_labels,
                                      model.config.hidden_dropout_prob, device=model.device,
                                      seed=seed)


def head_outputs(model, head, tokenizer, examples, batch_size, max_length):
    """The head's outputs for every example, dropout off, on the host: (N, K) logits, or (N,)
    regression values."""
    model.eval()
    head.eval()
    outputs = []
    for batch in make_batches(tokenizer, examples, batch_size, max_length):
        _, pooled = model.forward(batch["input_ids"], batch["token_type_ids"],
                                  batch["attention_mask"], keep_cache=False)
        logits, _ = head.forward(pooled)
        outputs.append(model.device.to_host(logits))
    return np.concatenate(outputs)


def predict(model, head, tokenizer, examples, batch_size, max_length):
    """Class ids (or regression values) for every example, dropout off."""
    outputs = head_outputs(model, head, tokenizer, examples, batch_size, max_length)
    return outputs if head.is_regression else outputs.argmax(axis=-1)


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
        self.tokenizer = Tokenizer.from_pretrained(settings.model)
        self.data = self.load_data()
        self.model = build_model(settings, self.data.spec.name)
        self.head = self.new_head()
        configure(self.model, self.head, settings.method, settings.top_k)
        self.optimizer = make_optimizer(self.model, self.head, settings.train_settings())
        self.progress, self.history = Progress(), []
        self.lengths = self.token_lengths()

    # --- what a task changes (squad_run.SquadRun: extractive QA) ---
    def load_data(self):
        return TaskData.load(self.settings)

    def new_head(self):
        return new_head(self.model, self.data.spec, self.settings.seed)

    def token_lengths(self):
        """The token count of each training example, for grouping and the padding share."""
        return token_lengths(self.tokenizer, self.data.train, self.settings.max_seq_length)

    def epoch_batches(self, epoch, start):
        """Epoch `epoch`'s training batches from batch `start` on."""
        grouping = self.lengths if self.settings.group_by_length else None
        return epoch_batches(self.tokenizer, self.data.train, self.settings, epoch, start,
                             grouping)

    def evaluate(self, examples=None):
        """The task's metrics (and "score") on the evaluation examples (or `examples`)."""
        settings = self.settings
        return evaluate(self.model, self.head, self.tokenizer, self.data.spec,
                        self.data.eval if examples is None else examples, settings.batch_size,
                        settings.max_seq_length)

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
                train(self.model, self.head, self.epoch_batches, settings.train_settings(),
                      math.ceil(len(self.data.train) / settings.batch_size), self.optimizer,
                      self.progress, functools.partial(self._after_step, bar, requested),
                      functools.partial(self._after_epoch, bar))
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
        spec = self.data.spec
        metrics = self.evaluate()
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
        """Write the adapter file (method adapters) and results.json, each atomically, then
        remove the checkpoint. Returns the results."""
        if self.settings.method == "adapters":
            save_adapters(self.model, self.out / "adapter.safetensors", self.head,
                          task=self.data.spec.name, data=self.data.description(self.settings))
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
        if settings.task == "SQuAD":
            from .squad_run import SquadRun     # a Run of this module, for extractive QA
            run = SquadRun(settings)
        else:
            run = Run(settings)
        if resume:
            run.resume()
        run.train()
        return run.finish()


def run_eval(task, model_name, adapters, data_dir=None, batch_size=32, max_seq_length=None,
             max_eval_examples=None, device=None):
    """Score a base model + adapter file on the task's evaluation split; max_eval_examples
    None or 0: all. (SQuAD: squad_run.run_squad_eval.)"""
    spec = checks.task("task", task)
    max_seq_length = default_sequence_length(spec, max_seq_length)
    check_data_and_model(spec, (spec.eval_split,), model_name, data_dir, batch_size,
                         max_seq_length, device)
    checks.existing_file("adapters", adapters)
    max_eval_examples = checks.example_count("max_eval_examples", max_eval_examples)
    examples = tasks.load_examples(spec.name, spec.eval_split, data_dir, max_eval_examples)
    model, head = load_trained(model_name, adapters, device)
    if head.num_labels != spec.num_labels:
        raise ValueError(f"{adapters}: its head has {head.num_labels} labels, "
                         f"{spec.name} has {spec.num_labels}")
    metrics = evaluate(model, head, Tokenizer.from_pretrained(model_name), spec.name, examples,
                       batch_size, max_seq_length)
    return {"task": spec.name, "metrics": metrics, "score": metrics["score"],
            "eval_split": spec.eval_split, "eval_examples": len(examples)}


def load_trained(model_name, adapters, device=None):
    """(model, head): the base model with the adapter file loaded and active, and its head."""
    model = BertModel.from_pretrained(model_name, device=device)
    head = load_adapters(model, adapters)
    if head is None or not head.reads_pooled:
        raise ValueError(f"{adapters}: holds no classification head, so it predicts no labels "
                         "(a question-answering head is scored on SQuAD alone)")
    return model, head


def trained_data(adapters, columns):
    """What the adapter file says of its data: (its task's name, its labels in id order or None
    for regression, the own_data.Columns to read new files by). `columns` {text_column,
    text_pair_column, label_column}: names given now, None to take the file's (else text and
    label). A file that cannot say is refused as a bad `adapters`."""
    try:
        info, _ = read_adapter_file(adapters)
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


def check_own_files(files, file_format, columns):
    """Your files ({setting: path}) exist, their format is known, and their headers hold the
    columns ({setting: name}; None: not needed)."""
    for name, path in files.items():
        checks.data_file(name, path, file_format, columns)


def run_eval_files(adapters, files, model_name="minilm-l6", columns=None, file_format=None,
                   batch_size=32, max_seq_length=None, max_eval_examples=None, device=None):
    """Score a base model + adapter file on your own labelled files ({split: path}, dev and/or
    test), read with the adapter file's columns unless `columns` ({text_column, ...}) names
    others; max_seq_length None: 128."""
    columns = columns or {}
    max_seq_length = default_sequence_length(None, max_seq_length)
    if not files:
        raise checks.BadValue("dev_file", "expected a dev or a test file (or a task), found none")
    settings = {f"{split}_file": path for split, path in files.items()}
    check_own_files(settings, file_format, columns)           # the columns named now
    check_data_and_model(None, None, model_name, None, batch_size, max_seq_length, device)
    max_eval_examples = checks.example_count("max_eval_examples", max_eval_examples)
    checks.existing_file("adapters", adapters)
    trained_on, labels, columns = trained_data(adapters, columns)
    check_own_files(settings, file_format, columns.by_setting())
    parts = {split: own_data.label_ids(own_data.read_labelled(path, file_format, columns,
                                                              labels is None),
                                       labels, path, trained_on, columns)[:max_eval_examples]
             for split, path in files.items()}
    model, head = load_trained(model_name, adapters, device)
    tokenizer = Tokenizer.from_pretrained(model_name)
    spec = own_data.make_task(trained_on, labels, columns)
    scores = {split: evaluate(model, head, tokenizer, spec, examples, batch_size, max_seq_length)
              for split, examples in parts.items()}
    return {"task": trained_on, "labels": labels,
            "files": {split: {"path": str(files[split]), "metrics": metrics,
                              "examples": len(parts[split])} for split, metrics in scores.items()}}

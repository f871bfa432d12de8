"""A run on a real task, end to end: data -> tokenizer -> model (+ adapters) -> training ->
evaluation -> results.json (+ the adapter file). `minibert train` and `minibert eval` call it.
"""
import contextlib
import dataclasses
import json
import math
import signal
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import tasks
from .adapter_files import load_adapters, save_adapters
from .adapters import add_adapters
from .files import write_atomically
from .heads import SequenceClassificationHead
from .model import BertModel
from .names import is_adapter
from .tokenizer import Tokenizer
from .training_checkpoint import load_checkpoint, read_manifest, save_checkpoint
from .train import Progress, TrainSettings, configure, make_optimizer, train

# learning rates that work for each method on minilm-l6 (adapters and small parts need more)
DEFAULT_LR = {"adapters": 1e-3, "full": 5e-5, "top-k": 1e-4, "layernorm": 1e-3, "head": 1e-3}


@dataclasses.dataclass
class RunSettings:
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
    max_train_examples: int = None
    max_eval_examples: int = None
    device: str = None
    checkpoint_every: int = 0      # steps; 0: at the end of each epoch only

    @property
    def learning_rate(self):
        return DEFAULT_LR[self.method] if self.lr is None else self.lr


def make_batches(tokenizer, examples, batch_size, max_length):
    """Batch dicts (input_ids, token_type_ids, attention_mask, labels) of consecutive
    examples, each padded to its own longest sequence."""
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        pairs = [e.text_b for e in chunk] if chunk[0].text_b is not None else None
        batch = tokenizer([e.text_a for e in chunk], pairs, max_length=max_length)
        batch["labels"] = np.array([e.label for e in chunk])
        yield batch


def shuffled_batches(tokenizer, examples, settings, epoch, start=0):
    """One epoch's batches from batch `start` on. The order comes from (seed, epoch) alone, so
    a resumed run sees the very same batches."""
    order = np.random.default_rng([settings.seed, epoch]).permutation(len(examples))
    shuffled = [examples[i] for i in order[start * settings.batch_size:]]
    return make_batches(tokenizer, shuffled, settings.batch_size, settings.max_seq_length)


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


CHECKPOINT = "checkpoint.safetensors"


class Interrupted(RuntimeError):
    """SIGINT or SIGTERM arrived; a checkpoint was written and the run can be resumed."""


@contextlib.contextmanager
def stop_requests():
    """While inside: SIGINT and SIGTERM set a flag (checked after each step) instead of
    killing the run mid-write."""
    requested = []
    handler = lambda signum, frame: requested.append(signal.Signals(signum).name)
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def resume_settings(out):
    """The settings of the interrupted run whose checkpoint is in folder `out`."""
    return RunSettings(**read_manifest(Path(out) / CHECKPOINT)["extra"]["settings"])


def run_train(settings, resume=False):
    """Train, evaluate after each epoch, write results.json (and adapter.safetensors).

    A checkpoint is kept in the output folder after every epoch (and every
    settings.checkpoint_every steps, and on SIGINT/SIGTERM); resume=True goes on from it, and
    the run then ends exactly as an uninterrupted one would. It is removed once results.json
    is written."""
    spec = tasks.get_task(settings.task)
    out = Path(settings.out)
    checkpoint_path = out / CHECKPOINT
    if not resume and checkpoint_path.exists():
        raise ValueError(f"{checkpoint_path}: an interrupted run is here; resume it with "
                         f"minibert train --resume {out}, or choose another --out")
    train_examples = tasks.load_examples(spec.name, "train", settings.data_dir,
                                         settings.max_train_examples)
    eval_examples = tasks.load_examples(spec.name, spec.eval_split, settings.data_dir,
                                        settings.max_eval_examples)
    tokenizer = Tokenizer.from_pretrained(settings.model)
    model = BertModel.from_pretrained(settings.model, device=settings.device)
    model.seed(settings.seed)
    if settings.method == "adapters":
        add_adapters(model, size=settings.adapter_size, init_std=settings.adapter_init_std,
                     name=spec.name, seed=settings.seed)
    head = SequenceClassificationHead(model.config.hidden_size, spec.num_labels,
                                      model.config.hidden_dropout_prob, device=model.device,
                                      seed=settings.seed)
    configure(model, head, settings.method, settings.top_k)
    train_settings = TrainSettings(lr=settings.learning_rate, epochs=settings.epochs)
    optimizer = make_optimizer(model, head, train_settings)
    progress, history = Progress(), []
    if resume:
        progress, extra = load_checkpoint(checkpoint_path, model, head, optimizer)
        history = extra["history"]
    out.mkdir(parents=True, exist_ok=True)

    def save():
        save_checkpoint(checkpoint_path, model, head, optimizer, progress,
                        {"settings": dataclasses.asdict(settings), "history": history})

    steps_per_epoch = math.ceil(len(train_examples) / settings.batch_size)
    bar = tqdm(total=settings.epochs * len(train_examples), desc=f"{spec.name} {settings.method}",
               unit="ex", disable=None,      # its rate is the throughput in examples per second
               initial=min(progress.step * settings.batch_size,
                           settings.epochs * len(train_examples)))

    with stop_requests() as requested:
        def on_step(progress, loss, examples):
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(examples)
            every = settings.checkpoint_every
            if requested or (every and progress.step % every == 0):
                save()
            if requested:
                raise Interrupted(f"{requested[0]} at step {progress.step}: checkpoint written to "
                                  f"{checkpoint_path}; resume with: minibert train --resume {out}")

        def on_epoch(epoch, seconds, mean_loss):
            metrics = evaluate(model, head, tokenizer, spec.name, eval_examples,
                               settings.batch_size, settings.max_seq_length)
            history.append({"epoch": epoch + 1, "train_loss": mean_loss,
                            "train_seconds": seconds, "metrics": metrics})
            bar.write(f"epoch {epoch + 1}: train loss {mean_loss:.4f} ({seconds:.0f} s), "
                      f"{spec.eval_split} " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            save()

        try:
            train(model, head, lambda epoch, start: shuffled_batches(
                tokenizer, train_examples, settings, epoch, start), train_settings,
                steps_per_epoch, optimizer, progress, on_step, on_epoch)
        finally:
            bar.close()

    if settings.method == "adapters":
        save_adapters(model, out / "adapter.safetensors", head, task=spec.name)
    metrics = history[-1]["metrics"]
    train_seconds = sum(h["train_seconds"] for h in history)
    trained = model.num_params(model.trainable_names()) + head.num_params()
    base = model.num_params([n for n in model.params if not is_adapter(n)])
    results = {
        "task": spec.name, "method": settings.method,
        "adapter_size": settings.adapter_size if settings.method == "adapters" else None,
        "metrics": metrics, "score": metrics["score"], "score_metric": spec.score,
        "eval_split": spec.eval_split, "trained_params": trained,
        "total_params": model.num_params() + head.num_params(),
        "trained_percent_of_base": 100.0 * trained / base,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / settings.epochs,
        "examples_per_second": settings.epochs * len(train_examples) / train_seconds,
        "train_examples": len(train_examples), "eval_examples": len(eval_examples),
        "seed": settings.seed, "learning_rate": settings.learning_rate,
        "settings": dataclasses.asdict(settings), "history": history,
    }
    write_atomically(out / "results.json", lambda tmp: Path(tmp).write_text(
        json.dumps(results, indent=2) + "\n", "utf-8"))
    checkpoint_path.unlink()
    return results


def run_eval(task, model_name, adapters, data_dir=None, batch_size=32, max_seq_length=128,
             max_eval_examples=None, device=None):
    """Score a base model + adapter file on the task's evaluation split."""
    spec = tasks.get_task(task)
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

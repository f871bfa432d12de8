"""The trainer: which parameters learn (the method), and the loop that teaches them.

Methods, by name:
  adapters   every adapter, all 2L+1 LayerNorms and the head; the pooler is used but frozen,
             as in google-research/adapter-bert
  full       everything
  top-k      the top k layers, the pooler and the head
  layernorm  the LayerNorms and the head
  head       the head alone (feature-based baseline)
A head that does not read the pooled output (QuestionAnsweringHead, or a mean-pooling
SequenceClassificationHead) does not use the pooler, which then never learns.
"""
import dataclasses
import math
import time

from . import checks
from .param_names import is_adapter, is_layernorm, layer_of, parse
from .optim import AdamW, clip_global_norm, linear_warmup_decay

METHODS = ("adapters", "full", "top-k", "layernorm", "head")
# the learning rate of each method unless one is given: what works on minilm-l6 (adapters and
# small parts need more than full fine-tuning)
DEFAULT_LR = {"adapters": 1e-3, "full": 5e-5, "top-k": 1e-4, "layernorm": 1e-3, "head": 1e-3}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the parameters are those of the last good step."""


def configure(model, head, method, top_k=None):
    """Freeze and unfreeze `model` for `method`; the head always learns."""
    checks.choice("method", method, METHODS)
    L = model.config.num_hidden_layers
    if method == "adapters" and model.adapters.active is None:
        raise ValueError("method 'adapters': the model has no active adapters; "
                         "call minibert.add_adapters(model, size=...) first")
    if method == "top-k":
        checks.integer("top_k", top_k, 1, L)
    learns = {
        "adapters": lambda n: is_adapter(n) or is_layernorm(n),
        "full": lambda n: True,
        "top-k": lambda n: parse(n).site == "pooler" or (
            layer_of(n) is not None and layer_of(n) >= L - (top_k or 0)),
        "layernorm": is_layernorm,
        "head": lambda n: False,
    }[method]
    model.unfreeze()
    # a head that does not read the pooled output (extractive QA, mean pooling) leaves the
    # pooler unused: it does not learn
    model.freeze([n for n in model.params
                  if not learns(n) or (parse(n).site == "pooler" and not head.reads_pooled)])
    head.unfreeze()


@dataclasses.dataclass
class TrainSettings:
    lr: float = 1e-4
    epochs: int = 3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    adam_eps: float = 1e-6
    max_grad_norm: float = 1.0

    def __post_init__(self):
        checks.positive("lr", self.lr)
        checks.integer("epochs", self.epochs)
        checks.probability("warmup_fraction", self.warmup_fraction)
        checks.non_negative("weight_decay", self.weight_decay)
        checks.positive("adam_eps", self.adam_eps)
        checks.positive("max_grad_norm", self.max_grad_norm)


def train_step(model, head, batch, optimizer, lr, max_grad_norm=1.0):
    """One step on a batch dict (input_ids, token_type_ids, attention_mask, labels, and what
    else the head reads) -> loss."""
    model.train()
    head.train()
    model.zero_grad()
    head.zero_grad()
    seq, pooled = model.forward(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                                attention_mask=batch["attention_mask"])
    _, loss = head.forward_batch(seq, pooled, batch)
    loss = float(loss)
    if not math.isfinite(loss):
        raise TrainingDiverged(f"loss is {loss} at optimizer step {optimizer.steps + 1}; the "
                               "parameters are those of the last finite step (try a lower lr)")
    model.backward(*head.backward_batch())
    grads = list(model.grads.values()) + list(head.grads.values())
    clip_global_norm(grads, max_grad_norm)
    optimizer.step(lr)
    return loss


@dataclasses.dataclass
class Progress:
    """Where training stands; a checkpoint saves it so that a run resumes at the exact step."""
    epoch: int = 0                # epochs completed
    batch: int = 0                # batches completed in the current epoch
    step: int = 0                 # optimizer steps completed
    epoch_losses: list = dataclasses.field(default_factory=list)   # this epoch's, so far

    def step_done(self, loss):
        self.step += 1
        self.batch += 1
        self.epoch_losses.append(loss)

    def epoch_done(self):
        """Start the next epoch; returns the mean training loss of the one that ended."""
        mean_loss = sum(self.epoch_losses) / max(1, len(self.epoch_losses))
        self.epoch, self.batch, self.epoch_losses = self.epoch + 1, 0, []
        return mean_loss


def learning_rate(settings, step, total_steps):
    """The learning rate at optimizer step `step` of `total_steps`: warmup, then linear decay."""
    return settings.lr * linear_warmup_decay(step, total_steps, settings.warmup_fraction)


def make_optimizer(model, head, settings):
    return AdamW([model, head], lr=settings.lr, eps=settings.adam_eps,
                 weight_decay=settings.weight_decay)


def training_loop(model, head, epoch_batches, settings, steps_per_epoch, optimizer=None, progress=None,
          on_step=None, on_epoch=None):
    """The training loop, the one every run takes (the commands' Run.run_training, the notebooks, the
    analyses): until settings.epochs epochs are complete, from `progress` on (a fresh start
    when None). epoch_batches(epoch, start) yields that epoch's batch dicts from batch `start`
    on, in the same order every time. What a caller adds plugs in: on_step(progress, loss,
    examples) follows every step (a progress bar, a checkpoint; what it raises stops the loop);
    on_epoch(epoch, seconds, mean_loss) every epoch (epoch counted from 0). Returns the
    progress."""
    optimizer = make_optimizer(model, head, settings) if optimizer is None else optimizer
    progress = Progress() if progress is None else progress
    total = settings.epochs * steps_per_epoch
    while progress.epoch < settings.epochs:
        start = time.perf_counter()
        for batch in epoch_batches(progress.epoch, progress.batch):
            lr = learning_rate(settings, progress.step, total)
            progress.step_done(train_step(model, head, batch, optimizer, lr, settings.max_grad_norm))
            if on_step is not None:
                on_step(progress, progress.epoch_losses[-1], len(batch["labels"]))
        mean_loss = progress.epoch_done()
        if on_epoch is not None:
            on_epoch(progress.epoch - 1, time.perf_counter() - start, mean_loss)
    return progress

"""The Python API refuses bad settings with a ValueError naming the setting, what was expected and
what was found: the same checks (minibert.checks) as the command line, before any work."""
import math

import pytest

import minibert
from minibert.lab import analyses, bench
from minibert.accounting import parameter_table
from minibert.adapters import AdapterConfig
from minibert.named_models import config_of
from minibert.optim import AdamW
from minibert.runs import RunSettings, run_eval
from minibert.train import TrainSettings

from conftest import tiny_config


@pytest.fixture
def model():
    return minibert.BertModel(tiny_config())


@pytest.mark.parametrize("make, message", [
    (lambda: RunSettings(epochs=0), "epochs: expected a positive integer, found 0"),
    (lambda: RunSettings(batch_size="32"), "batch_size: expected a positive integer, found '32'"),
    (lambda: RunSettings(epochs=True), "epochs: expected a positive integer, found True"),
    (lambda: RunSettings(lr=-1.0), "lr: expected a finite number > 0, found -1.0"),
    (lambda: RunSettings(lr=math.nan), "lr: expected a finite number > 0, found nan"),
    (lambda: RunSettings(adapter_init_std=0.0),
     "adapter_init_std: expected a finite number > 0, found 0.0"),
    (lambda: RunSettings(max_seq_length=1000),
     r"max_seq_length: expected an integer in \[3, 512\], found 1000"),
    (lambda: RunSettings(method="top-k"), r"top_k: expected an integer in \[1, 6\], found None"),
    (lambda: RunSettings(max_train_examples=-1),
     r"max_train_examples: expected an integer >= 0 \(0: all examples\), found -1"),
    (lambda: RunSettings(seed=-1), "seed: expected an integer >= 0, found -1"),
    (lambda: RunSettings(task="SST-3"), "task: expected one of SST-2, .*, found 'SST-3'"),
    (lambda: RunSettings(device="tpu"), "device: expected one of .*'numpy'.*, found 'tpu'"),
    (lambda: RunSettings(model="bert-base-random"),
     "model: expected a model with weights, found 'bert-base-random'"),
    (lambda: RunSettings(out=__file__), "out: expected a folder or a path where one can be made, "
                                        "found a file at .*test_checks.py"),
    (lambda: TrainSettings(lr=0), "lr: expected a finite number > 0, found 0"),
    (lambda: TrainSettings(epochs=2.0), "epochs: expected a positive integer, found 2.0"),
    (lambda: TrainSettings(warmup_fraction=1.5),
     r"warmup_fraction: expected a number in \[0, 1\], found 1.5"),
    (lambda: AdamW([], lr=math.inf), "lr: expected a finite number > 0, found inf"),
    (lambda: AdamW([], betas=(0.9, 1.0)), r"betas: expected a number in \[0, 1\), found 1.0"),
    (lambda: AdamW([], eps=0.0), "eps: expected a finite number > 0, found 0.0"),
    (lambda: AdamW([], weight_decay=-0.01),
     "weight_decay: expected a finite number >= 0, found -0.01"),
    (lambda: AdapterConfig(init_std=math.inf),
     "adapter init_std: expected a finite number >= 0, found inf"),
    (lambda: parameter_table(config_of("minilm-l6"), num_labels=0),
     "num_labels: expected a positive integer, found 0"),
    (lambda: parameter_table(config_of("minilm-l6"), leave_out=[2, 6]),
     r"leave_out: expected layer indices in \[0, 5\], found \[6\]"),
    (lambda: run_eval("TREC-6", "minilm-l6", adapters=__file__, batch_size=0),
     "batch_size: expected a positive integer, found 0"),
    (lambda: run_eval("TREC-6", "minilm-l6", adapters="no-such.safetensors"),
     "adapters: expected a file, found nothing at no-such.safetensors"),
    (lambda: bench.benchmark(["tiny-random"], seq_lengths=[24, 129]),
     r"seq_length: expected an integer in \[1, 128\], found 129"),
    (lambda: bench.benchmark(["tiny-random"], seq_lengths=[24], repeats=0),
     "repeats: expected a positive integer, found 0"),
    (lambda: analyses.run_experiment("ablation", "unused", RunSettings(), ("TREC-6", "SST-2")),
     r"tasks: expected one task for experiment ablation, found \['TREC-6', 'SST-2'\]"),
])
def test_bad_settings_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        make()


def test_layer_and_adapter_arguments_are_checked_before_the_model_changes(model):
    names = list(model.params)
    with pytest.raises(ValueError, match="^leave_out: expected a list of layer indices, found 3$"):
        minibert.add_adapters(model, size=4, leave_out=3)
    with pytest.raises(ValueError, match="^adapter size: expected a positive integer, found '8'$"):
        minibert.add_adapters(model, size="8")
    assert list(model.params) == names and model.adapters.active is None


def test_what_zero_means(tmp_path):
    """0 examples means all of them; adapters may start at exactly zero outside a training run
    (the identity, for checks), not inside one, where they would never leave zero."""
    settings = RunSettings(max_train_examples=0, max_eval_examples=0, out=str(tmp_path))
    assert settings.max_train_examples is None and settings.max_eval_examples is None
    assert AdapterConfig(init_std=0.0).init_std == 0.0

"""A run's settings, checked before any work starts: the task (or your own files), the model,
the method and its numbers. Checking reads the model's config and looks for the task's files,
loading nothing. Also: the settings of an interrupted run, read back from its checkpoint."""
import dataclasses
import os
from pathlib import Path

from .. import adapterhub, checks
from ..adapters import ACTIVATIONS, PLACEMENTS, SITES, AdapterConfig
from ..heads import POOLINGS
from ..named_models import DEFAULT_MODEL, check_model, default_pooling
from ..train import DEFAULT_LR, METHODS, TrainSettings
from ..data import checks as data_checks
from ..data import own_data, tasks
from ..qa import squad
from .checkpoint import read_manifest

# a run's adapter settings: AdapterConfig's fields, each under its setting's name
ADAPTER_SETTINGS = {"adapter_size": "size", "adapter_init_std": "init_std",
                    "adapter_activation": "activation", "leave_out": "leave_out",
                    "adapter_placement": "placement", "adapter_sites": "sites",
                    "adapter_scaling": "scaling", "adapter_ln_before": "ln_before",
                    "adapter_ln_after": "ln_after"}
# those of the adapter's variant, which the adapters method alone takes
VARIANT = tuple(s for s in ADAPTER_SETTINGS if s not in ("adapter_size", "adapter_init_std"))
CHECKPOINT = "checkpoint.safetensors"    # an interrupted run's, in its output folder
RESULTS = "results.json"                 # a finished run's
QUESTION_ANSWERING = squad.SQUAD.kind
# every task a run takes, by name: the classification and regression tasks, and SQuAD
TASKS = {**tasks.TASKS, squad.SQUAD.name: squad.SQUAD}


@dataclasses.dataclass
class RunSettings:
    """Everything a training run depends on. Made settings are checked settings: every field is
    checked against what it may be (the model's config and the task's files read, nothing
    loaded), and a bad one raises checks.BadValue naming it."""
    task: str = None                   # None: TREC-6, or your own files when train_file is given
    method: str = "adapters"
    model: str = DEFAULT_MODEL
    out: str = None                    # None: runs/<task, lower case, no dashes> (runs/trec6),
                                       # or runs/<training file's stem>
    # the adapter (AdapterConfig's fields and defaults; ADAPTER_SETTINGS)
    adapter_size: int = AdapterConfig.size
    adapter_init_std: float = AdapterConfig.init_std
    adapter_placement: str = AdapterConfig.placement      # houlsby | pfeiffer | parallel
    adapter_activation: str = AdapterConfig.activation    # the bottleneck's nonlinearity
    adapter_sites: tuple = AdapterConfig.sites            # None: the placement's
    adapter_scaling: float = AdapterConfig.scaling        # None: the placement's
    adapter_ln_before: bool = AdapterConfig.ln_before     # a LayerNorm of its own before down
    adapter_ln_after: bool = AdapterConfig.ln_after       # and after up
    leave_out: tuple = AdapterConfig.leave_out            # layers without adapters
    pooling: str = None                # cls | mean | cls_token; None: the checkpoint's;
                                       # SQuAD's head reads every token and takes none
    top_k: int = None
    data_dir: str = None
    lr: float = None                   # None: the method's (train.DEFAULT_LR)
    epochs: int = 3
    batch_size: int = 32
    max_seq_length: int = None         # None: the task's (128; SQuAD 384)
    seed: int = 0
    max_train_examples: int = None     # None or 0: all
    max_eval_examples: int = None      # None or 0: all
    device: str = None
    checkpoint_every: int = 0      # steps; 0: at the end of each epoch only
    group_by_length: bool = False  # batches of similar length (less padding), in shuffled order
    # your own data (minibert.data.own_data): scored on dev after each epoch, on test at the end
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
            spec = task("task", "TREC-6" if self.task is None else self.task)
            self.task = spec.name
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
        self._check_adapter_variant(config)
        self.pooling = check_pooling("pooling", self.pooling, spec, self.model)
        if self.top_k is not None and self.method != "top-k":
            raise checks.BadValue("top_k", f"expected none with method {self.method} (method "
                                           f"top-k alone takes it), found {self.top_k!r}")
        if self.method == "top-k":
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
        # saved absolute, so that a run resumes from any folder
        for name in ("data_dir", "train_file", "dev_file", "test_file"):
            if getattr(self, name) is not None:
                setattr(self, name, os.path.abspath(getattr(self, name)))

    def _check_adapter_variant(self, config):
        """The adapter's variant, each setting named; other methods take none of them."""
        checks.choice("adapter_placement", self.adapter_placement, PLACEMENTS)
        checks.choice("adapter_activation", self.adapter_activation, sorted(ACTIVATIONS))
        if self.adapter_sites is not None:
            if isinstance(self.adapter_sites, str) or not self.adapter_sites:
                raise checks.BadValue("adapter_sites", "expected a list of sites, found "
                                                       f"{self.adapter_sites!r}")
            for site in self.adapter_sites:
                checks.choice("adapter_sites", site, SITES)
            # lists, as results.json gives them back
            self.adapter_sites = [s for s in SITES if s in self.adapter_sites]
        if self.adapter_scaling is not None:
            checks.finite("adapter_scaling", self.adapter_scaling)
        checks.choice("adapter_ln_before", self.adapter_ln_before, (False, True))
        checks.choice("adapter_ln_after", self.adapter_ln_after, (False, True))
        checks.layers("leave_out", self.leave_out, config.num_hidden_layers)
        self.leave_out = sorted(set(self.leave_out))
        if self.method != "adapters":
            for field in dataclasses.fields(self):
                default = list(field.default) if isinstance(field.default, tuple) else \
                    field.default
                if field.name in VARIANT and getattr(self, field.name) != default:
                    raise checks.BadValue(field.name, f"expected none with method {self.method} "
                                          f"(method adapters alone takes it), found "
                                          f"{getattr(self, field.name)!r}")

    def adapter_config(self):
        """The AdapterConfig of an adapters run."""
        def field(value):                    # lists, as results.json keeps them, as tuples
            return tuple(value) if isinstance(value, list) else value
        return AdapterConfig(**{name: field(getattr(self, setting))
                                for setting, name in ADAPTER_SETTINGS.items()})

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
            raise checks.BadValue("dev_file", "expected a dev file beside the training file "
                                              "(it is scored after every epoch), found none")
        checks.choice("regression", self.regression, (False, True))
        check_own_files({f"{split}_file": path for split, path in self.data_files().items()},
                        self.file_format, self.columns().by_setting())

    def columns(self):
        """The own_data.Columns of the settings, each name checked."""
        return own_data.Columns(
            data_checks.column("text_column", self.text_column),
            data_checks.column("label_column", self.label_column),
            data_checks.column("text_pair_column", self.text_pair_column, optional=True))

    def data_files(self):
        """{split: path} of your own files."""
        return {split: path for split, path in (("train", self.train_file), ("dev", self.dev_file),
                                                ("test", self.test_file)) if path is not None}

    @property
    def spec(self):
        """The task (tasks.Task or squad.QuestionAnsweringTask); None for your own files."""
        return None if self.train_file is not None else TASKS[self.task]

    @property
    def learning_rate(self):
        return DEFAULT_LR[self.method] if self.lr is None else self.lr

    def train_settings(self):
        return TrainSettings(lr=self.learning_rate, epochs=self.epochs)


def task(name, value):
    """A task's name -> the task: a tasks.Task, or SQuAD's squad.QuestionAnsweringTask."""
    return TASKS[checks.name_among(name, value, TASKS)]


def is_question_answering(spec):
    """Whether the task (None: your own files) is extractive question answering."""
    return spec is not None and spec.kind == QUESTION_ANSWERING


def task_files(name, spec, data_dir, splits):
    """The files of the task's splits exist where they are looked for: GLUE's under the data
    folder `data_dir` (else $GLUE_DIR); SQuAD's in data_dir when given (else its wheel); a task
    read from a wheel needs none. Named `name` when they do not."""
    if not is_question_answering(spec):
        return data_checks.task_files(name, spec, data_dir, splits)
    if data_dir is None:
        return
    checks.existing_folder(name, data_dir)
    try:
        for split in splits:
            squad.squad_file(split, data_dir)
    except FileNotFoundError as e:
        raise checks.BadValue(name, str(e)) from None


def default_sequence_length(spec, max_seq_length):
    """max_seq_length, or the task's default when it is None: 384 for extractive QA (SQuAD's
    contexts are long), 128 for the others and your own files (spec None)."""
    if max_seq_length is not None:
        return max_seq_length
    return 384 if is_question_answering(spec) else 128


def check_question_answering(spec, max_seq_length, doc_stride, max_query_length,
                             max_answer_length):
    """The window settings of extractive QA, positive integers; for SQuAD, a question of
    max_query_length tokens must leave room for context in a window of max_seq_length (checked
    before). Other tasks do not use them."""
    checks.integer("doc_stride", doc_stride)
    longest = max_seq_length - 4 if is_question_answering(spec) else None  # [CLS], 2 [SEP], 1
    checks.integer("max_query_length", max_query_length, 1, longest)
    checks.integer("max_answer_length", max_answer_length)


def check_pooling(name, pooling, spec, model):
    """The pooling of a sequence head: the one given, else the model's default; None for
    extractive QA, which refuses one."""
    if is_question_answering(spec):
        if pooling is not None:
            raise checks.BadValue(name, f"expected none for {spec.name} (its head scores every "
                                        f"token and reads no pooled vector), found {pooling!r}")
        return None
    if pooling is not None:
        return checks.choice(name, pooling, POOLINGS)
    try:
        return default_pooling(model)[0]
    except (OSError, ValueError) as e:         # a checkpoint's broken pooling config
        raise checks.BadValue("model", str(e)) from None


def pooling_reason(model, pooling):
    """Why a run's head reads `pooling`, in words, for results.json and the adapter file."""
    if pooling is None:
        return None
    default, why = default_pooling(model)
    if pooling == default:
        return f"the default ({why})"
    return f"set in the run's settings; the default is {default} ({why})"


ADAPTER_FILE = "adapter.safetensors"     # what a finished adapters run keeps
TRAINED_FILE = "trained.safetensors"     # what a finished run of another method keeps
TRAINED_FILES = (ADAPTER_FILE, TRAINED_FILE)


def trained_file(name, path):
    """The file eval and predict load: `path` itself (an AdapterHub adapter folder too), or in
    a run's folder the file its run wrote (the adapter file, or another method's trained
    file)."""
    if path is None or not Path(path).is_dir() or adapterhub.is_folder(path):
        return path
    found = [Path(path) / f for f in TRAINED_FILES if (Path(path) / f).is_file()]
    if len(found) != 1:
        raise checks.BadValue(name, f"expected a run folder holding one of "
                                    f"{', '.join(TRAINED_FILES)}, found "
                                    f"{'both' if found else 'neither'} in {path}")
    return found[0]


def check_data_and_model(spec, splits, model, data_dir, batch_size, max_seq_length, device):
    """The checks a training run and an evaluation share; returns the model's config. spec None:
    your own files (checked by their own settings)."""
    if spec is not None:
        task_files("data_dir", spec, data_dir, splits)
    elif data_dir is not None:
        checks.existing_folder("data_dir", data_dir)
    config = check_model("model", model)
    checks.integer("batch_size", batch_size)
    # 3 tokens at least: [CLS], [SEP] and one of the text
    checks.sequence_length("max_seq_length", max_seq_length, config, minimum=3)
    checks.device("device", device)
    return config


def check_own_files(files, file_format, columns):
    """Your files ({setting: path}) exist, their format is known, and their headers hold the
    columns ({setting: name}; None: not needed)."""
    for name, path in files.items():
        data_checks.data_file(name, path, file_format, columns)


PATHS = ("out", "data_dir", "train_file", "dev_file", "test_file")   # saved absolute


def resume_settings(out, given=None):
    """The settings of the interrupted run whose checkpoint is in folder `out`, writing into
    `out`. `given` ({setting: value}) are settings asked for now: each must be the saved one,
    else checks.BadValue names it (a resumed run goes on as it began)."""
    checkpoint = checks.existing_folder("resume", out) / CHECKPOINT
    if not checkpoint.is_file() and (Path(out) / RESULTS).is_file():
        raise checks.BadValue("resume", f"expected an interrupted run, found a finished one in "
                                        f"{out}: its results are in {Path(out) / RESULTS}")
    if not checkpoint.is_file():
        raise checks.BadValue("resume", f"expected a folder holding {CHECKPOINT} (an "
                                        f"interrupted run), found none in {out}")
    try:
        saved = read_manifest(checkpoint)["extra"]["settings"]
    except ValueError as e:
        raise checks.BadValue("resume", str(e)) from None
    # runs begun before heads had a pooling read the pooled [CLS]; SQuAD's head takes none
    saved.setdefault("pooling", None if saved.get("task") == squad.SQUAD.name else "cls")
    settings = RunSettings(**{**saved, "out": str(out)})
    for name, now in (given or {}).items():
        then = settings.learning_rate if name == "lr" else getattr(settings, name)
        if not _same_setting(name, then, now):
            raise checks.BadValue(name, f"expected {then!r}, the setting of the run being "
                                        f"resumed in {out}, found {now!r}; leave it out, or "
                                        "start a new run in another folder")
    return settings


def _same_setting(name, then, now):
    """Whether a setting asked for now is the saved one: a path by what it names, an example
    count with 0 as None (both: all examples)."""
    if name in PATHS and then is not None and now is not None:
        return Path(then).resolve() == Path(now).resolve()
    if name in ("max_train_examples", "max_eval_examples"):
        return then == (now or None)
    return then == now

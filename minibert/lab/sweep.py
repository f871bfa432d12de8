"""Hyperparameter sweeps with seeds, the paper's protocol: a grid of learning rates x epochs x
adapter sizes, each configuration trained with several seeds, the best kept on validation.

Each trial is one ordinary training run (`runs.run_train`, the code path of `minibert train`)
in its own folder OUT/trials/NAME, with its checkpoint, results.json and train.log (the lines it
prints, which the driver passes on named by trial). The trials run on Ray Tune (the optional
extra `pip install 'minibert[sweep]'`): embedded on this machine by default, as many at once as
the CPUs allow at `cpus_per_trial` each, or on an existing cluster (`address`). minibert keeps
no scheduler of its own: this module says which trials are left, Ray runs them.

Nothing is lost:
- a trial whose worker dies is started again by Ray (up to `max_failures` times) and goes on
  from its own checkpoint, so it ends exactly as an uninterrupted run would;
- the driver records each trial in OUT/sweep.json as it finishes; running the same sweep again
  skips the recorded trials, takes a finished trial's results.json as it is, and resumes the
  interrupted ones from their checkpoints;
- a sweep folder holds the trials of one set of settings: a sweep with any other setting
  (other than the swept ones) is refused, naming the setting.

On a cluster of several machines, OUT must be a folder every node sees at the same path (a
shared file system): the trials write there and a retried trial may land on another node.
"""
import contextlib
import dataclasses
import importlib.util
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import checks
from ..atomic import write_atomically
from ..train import DEFAULT_LR
from ..runs import CHECKPOINT, RunSettings, run_train
from ..runs.checkpoint import read_manifest
from ..runs.lock import locked
from ..speed import parallel
from .analyses import Record, changed_settings, interrupted

# Houlsby et al. 2019, Section 3.2 (GLUE): learning rate x epochs x adapter size, 5 seeds, the
# best model on validation. Their full fine-tuning baseline is BERT's own protocol (Devlin et
# al. 2019, Section 4.1): 3 epochs, the best of four learning rates on dev, with random restarts.
PAPER_GRIDS = {
    "adapters": dict(lr=(3e-5, 3e-4, 3e-3), epochs=(3, 20), adapter_size=(8, 64, 256), seeds=5),
    "full": dict(lr=(5e-5, 4e-5, 3e-5, 2e-5), epochs=(3,), adapter_size=(64,), seeds=5),
}
GRIDS = ("paper",)
SWEPT = ("lr", "epochs", "adapter_size", "seed")      # the settings a trial's own values set
DEFAULT_SEEDS = 3
TRIAL_LOG = "train.log"      # a trial's printed lines, in its folder
ADDRESS = re.compile(r"ray://[^\s:/]+:(\d+)")


@dataclasses.dataclass
class Grid:
    """The values swept: every combination of learning rate, epochs and adapter size, each
    trained with seeds 0 .. seeds - 1."""
    lr: tuple
    epochs: tuple
    adapter_size: tuple
    seeds: int

    @classmethod
    def make(cls, method, grid=None, lr=None, epochs=None, adapter_size=None, seeds=None):
        """The grid asked for: the paper's (grid="paper"), or the values given, each axis left
        out taking the method's default (one value; DEFAULT_SEEDS seeds)."""
        given = {"lr": lr, "epochs": epochs, "adapter_size": adapter_size, "seeds": seeds}
        if grid is not None:
            checks.choice("grid", grid, GRIDS)
            if method not in PAPER_GRIDS:
                raise checks.BadValue("grid", f"expected a method the paper sweeps "
                                              f"({', '.join(PAPER_GRIDS)}), found {method!r}")
            for name, value in given.items():
                if value is not None:
                    raise checks.BadValue(name, f"expected nothing beside --grid {grid}, which "
                                                f"sets it, found {value!r}")
            return cls(**PAPER_GRIDS[method])
        lr = _distinct("lr", lr or [DEFAULT_LR[method]], checks.positive)
        epochs = _distinct("epochs", epochs or [RunSettings.epochs], checks.integer)
        sizes = _distinct("adapter_size", adapter_size or [RunSettings.adapter_size],
                          checks.integer)
        if method != "adapters" and len(sizes) > 1:
            raise checks.BadValue("adapter_size", f"expected one size: method {method} trains "
                                                  f"no adapters, found {list(sizes)}")
        seeds = DEFAULT_SEEDS if seeds is None else checks.integer("seeds", seeds)
        return cls(lr, epochs, sizes, seeds)

    def configurations(self):
        return [(lr, epochs, size) for lr in self.lr for epochs in self.epochs
                for size in self.adapter_size]


def _distinct(name, values, check):
    for value in values:
        check(name, value)
    if len(set(values)) != len(values):
        raise checks.BadValue(name, f"expected distinct values, found {list(values)}")
    return tuple(values)


def trial_name(method, lr, epochs, adapter_size, seed):
    size = f"-size{adapter_size}" if method == "adapters" else ""
    return f"lr{lr:g}-epochs{epochs}{size}-seed{seed}"


def grid_trials(out, base, grid):
    """{trial name: RunSettings} of every trial of the grid on the settings `base` ({setting:
    value}, the swept ones left out), each checked, each writing into OUT/trials/NAME; the
    paths made absolute."""
    base = {name: value for name, value in base.items() if value is not None}
    if set(base) & {*SWEPT, "out"}:
        raise ValueError(f"{sorted(set(base) & {*SWEPT, 'out'})}: set by the grid and the "
                         "sweep's folder, not by the shared settings")
    # absolute paths: a Ray worker runs in a folder of its own
    for name in ("model", "data_dir"):
        if isinstance(base.get(name), str) and Path(base[name]).expanduser().exists():
            base[name] = str(Path(base[name]).expanduser().absolute())
    out = Path(out).expanduser().absolute()
    method = base.get("method", RunSettings.method)
    trials = {}
    for lr, epochs, size in grid.configurations():
        for seed in range(grid.seeds):
            name = trial_name(method, lr, epochs, size, seed)
            trials[name] = RunSettings(**base, lr=lr, epochs=epochs, adapter_size=size,
                                       seed=seed, out=str(out / "trials" / name))
    return trials


def shared_settings(settings):
    """A trial's settings that every trial of its sweep shares (all but the swept ones and
    its folder)."""
    return {name: value for name, value in dataclasses.asdict(settings).items()
            if name not in SWEPT and name != "out"}


@dataclasses.dataclass
class Engine:
    """Where and how the trials run: Ray at `address` (None: embedded on this machine), each
    trial holding `cpus_per_trial` CPUs (its BLAS and row chunks use as many threads, at least
    one: 0.5 puts two one-thread trials on each CPU) and `gpus_per_trial` GPUs (fractions
    share one), started again up to `max_failures` times when its worker dies."""
    address: str = None
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    max_failures: int = 3

    def check(self, device):
        if self.address is not None and self.address != "auto":
            port = ADDRESS.fullmatch(self.address) if isinstance(self.address, str) else None
            if port is None or not 0 < int(port[1]) < 65536:
                raise checks.BadValue("address", f"expected auto or ray://HOST:PORT, found "
                                                 f"{self.address!r}")
        checks.positive("cpus_per_trial", self.cpus_per_trial)
        checks.non_negative("gpus_per_trial", self.gpus_per_trial)
        if self.gpus_per_trial and device != "cupy":
            raise checks.BadValue("gpus_per_trial", f"expected 0 for trials on device "
                                                    f"{device or 'numpy'} (GPUs serve --device "
                                                    f"cupy), found {self.gpus_per_trial!r}")
        checks.integer("max_failures", self.max_failures, minimum=0)


def run_sweep(out, base, grid, engine=None, report=print):
    """Every trial of `grid` on the settings `base` ({setting: value}) on the Engine (default:
    embedded Ray, a CPU per trial), those recorded in OUT/sweep.json skipped; returns
    sweep.json's data, whose settings name the grid's trials. Progress goes to `report`.
    Raises checks.BadValue before any work for a bad setting, or for a sweep folder whose
    trials were made with other settings."""
    engine = engine or Engine()
    checks.output_folder("out", out)
    engine.check(base.get("device"))
    trials = grid_trials(out, base, grid)
    shared = shared_settings(next(iter(trials.values())))
    _check_same_sweep(Path(out), shared)
    with locked(out):
        record = Record(out, "sweep", {"base": shared, "grid": dataclasses.asdict(grid),
                                       "trials": list(trials)})
        left = {name: settings for name, settings in trials.items() if not record.done(name)}
        report(f"sweep: {checks.plural(len(trials), 'trial')}, "
               f"{len(trials) - len(left)} done earlier, "
               f"{len(left)} to run")
        if left:
            run_on_ray(left, engine, record, list(trials), report)
        return record.data


def _check_same_sweep(out, shared):
    """Refuse a sweep into a folder whose sweep.json was made with other shared settings."""
    path = out / "sweep.json"
    if not path.exists():
        return
    changed = changed_settings(json.loads(path.read_text("utf-8"))["settings"]["base"], shared)
    if changed:
        name, (then, now) = next(iter(changed.items()))
        raise checks.BadValue(name, f"expected {then!r}, the setting of the sweep in {out}, "
                                    f"found {now!r}; its trials must not mix with others: "
                                    "choose another --out")


def combine(sources, out):
    """One sweep of the trials recorded by several (a grid run in parts, each part into its
    folder), for one table and figure: OUT/sweep.json holds every trial of the sources, which
    must share every setting but the swept ones. `sources`: sweep folders or their sweep.json.
    OUT is a new folder or one whose trials are all among these (one of the sources, or an
    earlier combination of them), so no trial's record is lost. Returns its data.
    Raises checks.BadValue naming the source and the setting or trial that does not fit."""
    records = [(path, _read_record(path)) for path in map(_sweep_file, sources)]
    out = checks.output_folder("out", out)
    target = out / "sweep.json"
    # the settings as the newest record writes them: an older one lacks the settings added
    # since, which held their defaults when it was made (changed_settings fills them in)
    newest_path, newest = max(records, key=lambda record: len(record[1]["settings"]["base"]))
    base = newest["settings"]["base"]
    runs, recorded_in = {}, {}
    for path, data in records:
        changed = changed_settings(data["settings"]["base"], base)
        if changed:
            name, (theirs, ours) = next(iter(changed.items()))
            raise checks.BadValue("sources", f"{path} was made with {name} {theirs!r}, "
                                             f"{newest_path} with {ours!r}: their trials do not "
                                             "belong together")
        for name, entry in data["runs"].items():
            if name in runs and runs[name] != entry:
                raise checks.BadValue("sources", f"{path} records trial {name} otherwise than "
                                              f"{recorded_in[name]}")
            runs[name], recorded_in[name] = entry, path
    if target.exists():
        kept = json.loads(target.read_text("utf-8")).get("runs", {})
        lost = [name for name, entry in kept.items() if runs.get(name) != entry]
        if lost:
            raise checks.BadValue("out", f"expected a new folder or one whose trials are among "
                                         f"those combined, found trial {lost[0]} in {target}; "
                                         "choose another --out")
    data = {"experiment": "sweep",
            "settings": {"base": base, "grid": None, "trials": list(runs),
                         "sources": [str(path) for path, _ in records]},
            "runs": runs}
    with locked(out):
        write_atomically(target, lambda tmp: Path(tmp).write_text(
            json.dumps(data, indent=2) + "\n", "utf-8"))
    return data


def _sweep_file(source):
    path = Path(source).expanduser()
    return path / "sweep.json" if path.is_dir() else path


def _read_record(path):
    if not path.is_file():
        raise checks.BadValue("sources", f"expected a sweep's folder or its sweep.json, found no "
                                      f"such file: {path}")
    try:
        data = json.loads(path.read_text("utf-8"))
        data["settings"]["base"]["task"], data["settings"]["trials"], data["runs"].items()
    except (ValueError, KeyError, TypeError, AttributeError):
        raise checks.BadValue("sources", f"expected a sweep's record (its settings and trials), "
                                      f"found another file: {path}") from None
    return data


def trial_entry(results, seconds):
    """What sweep.json keeps of a trial: its settings, seed, scores after each epoch, times."""
    keep = ("task", "method", "adapter_size", "learning_rate", "seed", "score", "score_metric",
            "metrics", "eval_split", "trained_params", "train_examples", "eval_examples",
            "train_seconds", "seconds_per_epoch", "settings")
    return {**{k: results[k] for k in keep}, "machine": results.get("machine"),  # None: older
            "epochs": results["settings"]["epochs"],
            "dev_scores": [h["metrics"]["score"] for h in results["history"]],
            "history": results["history"], "seconds": seconds}


def finished_results(settings):
    """The results.json of a finished trial of these settings in its folder, else None."""
    path = Path(settings.out) / "results.json"
    if not path.exists():
        return None
    results = json.loads(path.read_text("utf-8"))
    changed = changed_settings({**results["settings"], "out": settings.out},
                               dataclasses.asdict(settings))
    if changed:
        raise ValueError(f"{path}: a run with other settings is here (setting: (then, now) "
                         f"{changed}); remove {settings.out} to start that trial over")
    return results


def train_trial(config):
    """One trial, inside a Ray worker: limit BLAS and the row chunks to the trial's CPUs, then
    the ordinary training run (resumed from its checkpoint if one is there, taken as it is if
    it already finished); reports the trial's sweep.json entry, which says at which optimizer
    step the run went on from a checkpoint (None: it began here)."""
    from ray import tune
    from threadpoolctl import threadpool_limits
    config = config["trial"]
    settings = RunSettings(**config["settings"])
    parallel.SETTINGS.threads = config["threads"]
    started = time.perf_counter()
    log = Path(settings.out) / TRIAL_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    # the lines go to the trial's own file, which the driver passes on (TrialLines)
    with threadpool_limits(config["threads"]), open(log, "a", buffering=1,
                                                    encoding="utf-8") as lines, \
            contextlib.redirect_stdout(lines):
        results, resumed_at = finished_results(settings), None
        if results is None:
            if interrupted(settings):
                resumed_at = read_manifest(Path(settings.out) / CHECKPOINT)["progress"]["step"]
            results = run_train(settings, resume=resumed_at is not None)
    tune.report({"score": results["score"],
                 "trial": {**trial_entry(results, time.perf_counter() - started),
                           "resumed_at_step": resumed_at}})


def ray_installed():
    return importlib.util.find_spec("ray") is not None


def run_on_ray(trials, engine, record, names, report):
    """Run `trials` ({name: RunSettings}) as Ray Tune trials, each recorded in `record` as it
    finishes; raises RuntimeError when some failed for good or the sweep was stopped."""
    if not ray_installed():
        raise RuntimeError("minibert sweep runs its trials on Ray, which is not installed: "
                           "pip install 'minibert[sweep]'")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback
    # Tune's own output (a box, a table every few seconds, CSV and TensorBoard files): the
    # callback below says what a sweep needs; Tune's result.json stays, from which it reads
    # the results it returns
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # what reaches Ray's forwarding (a worker's errors and warnings) as it is: no folding of
    # alike lines of several trials into one, no colour codes in a log that is not a terminal
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    # token authentication stays on; only its notice, which asks nothing of a sweep, is quiet
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR)
    started_here = not ray.is_initialized()
    if started_here:
        # "local": a Ray of its own, even where `ray start` left a cluster running
        ray.init(address=engine.address or "local", include_dashboard=False,
                 log_to_driver=True)
    threads = max(1, int(engine.cpus_per_trial))
    configs = [{"name": name, "settings": dataclasses.asdict(s), "threads": threads}
               for name, s in trials.items()]
    report = OneLineAtATime(report)
    lines = TrialLines({name: Path(s.out) / TRIAL_LOG for name, s in trials.items()}, report)
    try:
        with tempfile.TemporaryDirectory(prefix="minibert-sweep-") as storage:
            tuner = tune.Tuner(
                tune.with_resources(train_trial, {"cpu": engine.cpus_per_trial,
                                                  "gpu": engine.gpus_per_trial}),
                param_space={"trial": tune.grid_search(configs)},
                tune_config=tune.TuneConfig(reuse_actors=False),
                run_config=tune.RunConfig(
                    storage_path=storage, name="sweep", verbose=0,
                    failure_config=tune.FailureConfig(max_failures=engine.max_failures),
                    callbacks=[JsonLoggerCallback(),
                               _progress_callback(tune, record, names, report)]))
            # the callback records each trial as it ends; the results as Tune returns them
            # also reach this process when the callback ran elsewhere (ray:// runs Tune's
            # loop on the cluster)
            try:
                results = tuner.fit()
            except Exception as e:     # Tune's loop itself failed (its memory monitor, say)
                stopped = f"Ray stopped the sweep ({str(e).splitlines()[0]})"
            else:
                stopped = None
                for result in results:
                    if result.config is None:      # never started: the sweep was stopped first
                        continue
                    name = result.config["trial"]["name"]
                    if result.error is None and "trial" in result.metrics \
                            and not record.done(name):
                        record.add(name, result.metrics["trial"])
    finally:
        lines.stop()
        if started_here:
            ray.shutdown()
    failed = [name for name in trials if not record.done(name)]
    if failed:
        raise RuntimeError(f"{stopped or 'the sweep ended'}: {len(failed)} of {len(names)} "
                           f"trials did not finish ({', '.join(failed)}); the others are in "
                           "sweep.json; run the same command again to go on with them")


_PRINTING = threading.Lock()


@dataclasses.dataclass
class OneLineAtATime:
    """`report`, called from several threads (Tune's loop, TrialLines) without mixing their
    lines. The lock is the module's: Tune pickles its callbacks, which hold this."""
    report: object

    def __call__(self, line):
        with _PRINTING:
            self.report(line)


class TrialLines:
    """Passes on the lines the trials print, each with its trial's name, as they come: a thread
    reads each trial's log file ({name: path}) from where it stood when the sweep began. The
    trials write into the sweep's folder, which every node sees, so the lines come from there
    rather than from Ray's forwarding of a worker's output, which can drop a trial's last
    lines when the sweep ends (Ray shuts down before they reach this process)."""

    def __init__(self, logs, report, every=0.25):
        self.logs, self.report, self.every = logs, report, every
        self.read_to = {name: path.stat().st_size if path.exists() else 0
                        for name, path in logs.items()}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self):
        while not self.stopped.wait(self.every):
            self.read()

    def read(self):
        """Report every whole line written since the last read."""
        for name, path in self.logs.items():
            if not path.exists():
                continue
            with open(path, "rb") as log:
                log.seek(self.read_to[name])
                new = log.read()
            whole = new[:new.rfind(b"\n") + 1]
            self.read_to[name] += len(whole)
            for line in whole.decode("utf-8", "replace").splitlines():
                self.report(f"({name}) {line}")

    def stop(self):
        """Stop following; report what is left (a trial's lines are all written by now)."""
        self.stopped.set()
        self.thread.join()
        self.read()


def _progress_callback(tune, record, names, report):
    """A Tune callback: record each finished trial in sweep.json; print done / running / left
    whenever a trial starts, ends, fails or is started again."""

    def status(trials, trial, event, running):
        running += sum(t.status == "RUNNING" for t in trials if t is not trial)
        done = sum(record.done(name) for name in names)
        report(f"{trial.config['trial']['name']} {event}: {done} done, {running} running, "
               f"{len(names) - done - running} left")

    class Progress(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            status(trials, trial, "started", 1)

        def on_trial_complete(self, iteration, trials, trial, **info):
            entry = trial.last_result["trial"]
            record.add(trial.config["trial"]["name"], entry)
            status(trials, trial, f"finished (score {entry['score']:.4f})", 0)

        def on_trial_recover(self, iteration, trials, trial, **info):
            status(trials, trial, "lost its worker; it goes on from its checkpoint", 0)

        def on_trial_error(self, iteration, trials, trial, **info):
            status(trials, trial, f"FAILED ({trial.error_file or 'no error file'})", 0)
    return Progress()

"""Starting a training run: the Run of the task's kind, in its locked output folder, from the
beginning or from its checkpoint. `minibert train` and the sweeps' trials start runs here."""
import json
from pathlib import Path

from .. import speed
from .lock import locked
from .qa_run import QuestionAnsweringRun
from .run import Run
from .. import checks
from .settings import CHECKPOINT, RESULTS, is_question_answering


def run_train(settings, resume=False, overwrite=False):
    """Train, evaluate after each epoch, write results.json (and adapter.safetensors).

    A checkpoint is kept in the output folder after every epoch (and every
    settings.checkpoint_every steps, and on SIGINT/SIGTERM); resume=True goes on from it, and
    the run then ends exactly as an uninterrupted one would. It is removed once results.json
    is written. While it runs, the output folder is locked (runs.lock): a second run there
    is refused. A folder that holds a finished run is refused too, unless overwrite: then its
    results stay whole until the new run writes its first checkpoint."""
    checkpoint = Path(settings.out) / CHECKPOINT
    if not resume and checkpoint.exists():
        raise ValueError(f"{checkpoint}: an interrupted run is here; resume it with "
                         f"minibert train --resume {settings.out}, or choose another --out")
    finished = Path(settings.out) / RESULTS
    if not resume and not overwrite and finished.exists():
        raise checks.BadValue("out", f"expected a folder without a finished run, found one in "
                                     f"{settings.out} ({finished_run(finished)}); choose "
                                     "another --out, or give --overwrite to replace it")
    speed.enable()
    with locked(settings.out):
        kind = QuestionAnsweringRun if is_question_answering(settings.spec) else Run
        run = kind(settings)
        run.replaces_finished_run = not resume and finished.exists()
        if resume:
            run.resume()
        run.run_training()
        return run.finish()


def finished_run(results_file):
    """A finished run in a few words, from its results.json: task, method, seed, score."""
    try:
        r = json.loads(Path(results_file).read_text("utf-8"))
        return (f"{r['task']} {r['method']}, seed {r['seed']}: {r['score_metric']} "
                f"{r['score']:.4f}")
    except (OSError, ValueError, KeyError, TypeError):
        return f"{results_file} is there"

"""Starting a training run: the Run of the task's kind, in its locked output folder, from the
beginning or from its checkpoint. `minibert train` and the sweeps' trials start runs here."""
from pathlib import Path

from .. import speed
from .lock import locked
from .qa_run import QuestionAnsweringRun
from .run import Run
from .settings import CHECKPOINT, is_question_answering


def run_train(settings, resume=False):
    """Train, evaluate after each epoch, write results.json (and adapter.safetensors).

    A checkpoint is kept in the output folder after every epoch (and every
    settings.checkpoint_every steps, and on SIGINT/SIGTERM); resume=True goes on from it, and
    the run then ends exactly as an uninterrupted one would. It is removed once results.json
    is written. While it runs, the output folder is locked (runs.lock): a second run there
    is refused."""
    checkpoint = Path(settings.out) / CHECKPOINT
    if not resume and checkpoint.exists():
        raise ValueError(f"{checkpoint}: an interrupted run is here; resume it with "
                         f"minibert train --resume {settings.out}, or choose another --out")
    speed.enable()
    with locked(settings.out):
        kind = QuestionAnsweringRun if is_question_answering(settings.spec) else Run
        run = kind(settings)
        if resume:
            run.resume()
        run.train()
        return run.finish()

"""Runs on real tasks: what `minibert train`, `eval` and `predict` do, for a task's files or
your own. A run's settings, checked before any work (`settings`); a training run and its
extractive-QA variant (`run`, `qa_run`), started in a locked output folder (`launch`, `lock`)
and resumable from its training checkpoint (`checkpoint`); evaluation with a trained adapter
file and the one inference loop (`evaluation`); labelling new texts, `minibert predict`
(`labelling`).

May import: the library (the top-level modules), the data and QA wings, and the speed layer,
which its entry points switch on. Nothing here is imported by the library.
"""
from .evaluation import (evaluate, head_outputs, predict, predict_answers, run_eval,
                         run_eval_files, run_squad_eval)
from .launch import run_train
from .labelling import run_predict
from .run import Interrupted, Run, TaskData, build_model, fit, new_head
from .qa_run import QuestionAnsweringRun
from .settings import CHECKPOINT, RunSettings, resume_settings

__all__ = ["CHECKPOINT", "Interrupted", "QuestionAnsweringRun", "Run", "RunSettings", "TaskData",
           "build_model", "evaluate", "fit", "head_outputs", "new_head", "predict",
           "predict_answers", "resume_settings", "run_eval", "run_eval_files", "run_predict",
           "run_squad_eval", "run_train"]

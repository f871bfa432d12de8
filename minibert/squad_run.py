"""Extractive QA runs on SQuAD: the Run of runs.py with its questions cut into windows
(qa_windows), the span head, answers picked from the start and end logits (qa_answers) and
scored by the official metric (squad_metric), and the answers written as predictions.json in
the official format, {question id: answer text}, which the official evaluation script reads.
"""
import json
from pathlib import Path

import numpy as np

from . import checks
from .adapter_files import load_adapters
from .backend import to_host
from .batching import epoch_examples
from .files import write_atomically
from .heads import QuestionAnsweringHead
from .model import BertModel
from .qa_answers import best_answers
from .qa_windows import make_windows, window_batches
from .runs import (Run, TaskData, check_data_and_model, check_question_answering,
                   default_sequence_length)
from .squad import SQUAD, load_questions
from .squad_metric import squad_scores
from .tokenizer import Tokenizer

N_BEST = 20             # start and end candidates per window, as run_squad.py


class SquadRun(Run):
    """A training run on SQuAD. Its training examples are windows (several per question when
    the context is long), so batches, lengths and throughput count windows; max_train_examples
    and max_eval_examples count questions."""

    def load_data(self):
        settings = self.settings
        self.train_questions = load_questions("train", settings.data_dir,
                                              settings.max_train_examples)
        eval_questions = load_questions("dev", settings.data_dir, settings.max_eval_examples)
        self.eval_windows = self.windows(eval_questions)
        self.predictions = None
        return TaskData(SQUAD, self.windows(self.train_questions), eval_questions)

    def windows(self, questions):
        settings = self.settings
        return make_windows(self.tokenizer, questions, settings.max_seq_length,
                            settings.doc_stride, settings.max_query_length)

    def new_head(self):
        return QuestionAnsweringHead(self.model.config.hidden_size, device=self.model.device,
                                     seed=self.settings.seed)

    def token_lengths(self):
        return np.array([len(window.input_ids) for window in self.data.train])

    def epoch_batches(self, epoch, start):
        settings = self.settings
        grouping = self.lengths if settings.group_by_length else None
        windows = epoch_examples(self.data.train, settings, epoch, start, grouping)
        return window_batches(windows, settings.batch_size, self.tokenizer.pad_token_id)

    def evaluate(self):
        settings = self.settings
        self.predictions = predict_answers(self.model, self.head, self.tokenizer, self.data.eval,
                                           self.eval_windows, settings.batch_size,
                                           settings.max_answer_length)
        return squad_scores(self.data.eval, self.predictions)

    def results(self):
        results = super().results()
        metrics = results["metrics"]
        results.update(exact_match=metrics["exact_match"], f1=metrics["f1"],
                       train_examples=len(self.train_questions),
                       train_windows=len(self.data.train), eval_windows=len(self.eval_windows),
                       windows_per_second=results.pop("examples_per_second"))
        return results

    def finish(self):
        """predictions.json (the last evaluation's answers), then as Run.finish."""
        if self.predictions is None:        # resumed after the last epoch's evaluation
            self.evaluate()
        write_predictions(self.out / "predictions.json", self.predictions)
        return super().finish()


def predict_answers(model, head, tokenizer, questions, windows, batch_size=32,
                    max_answer_length=30):
    """{question id: answer text} for the questions, from their windows, dropout off."""
    model.eval()
    head.eval()
    starts, ends = [], []
    for batch in window_batches(windows, batch_size, tokenizer.pad_token_id):
        seq, _ = model.forward(batch["input_ids"], batch["token_type_ids"],
                               batch["attention_mask"], keep_cache=False)
        (start, end), _ = head.forward(seq, batch["candidates"])
        starts.extend(to_host(start))
        ends.extend(to_host(end))
    return best_answers(questions, windows, starts, ends, N_BEST, max_answer_length)


def write_predictions(path, predictions):
    """predictions ({question id: answer text}) as the official format's JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_text(
        json.dumps(predictions, ensure_ascii=False, indent=1) + "\n", "utf-8"))


def run_squad_eval(model_name, adapters, data_dir=None, batch_size=32, max_seq_length=None,
                   max_eval_examples=None, device=None, doc_stride=128, max_query_length=64,
                   max_answer_length=30, predictions=None):
    """Score a base model + adapter file (with its QA head) on SQuAD dev, the first
    max_eval_examples questions (None or 0: all); write the answers to `predictions` (a path)
    when given."""
    max_seq_length = default_sequence_length(SQUAD, max_seq_length)
    check_data_and_model(SQUAD, ("dev",), model_name, data_dir, batch_size, max_seq_length,
                         device)
    check_question_answering(SQUAD, max_seq_length, doc_stride, max_query_length, max_answer_length)
    checks.existing_file("adapters", adapters)
    max_eval_examples = checks.example_count("max_eval_examples", max_eval_examples)
    if predictions is not None:
        checks.output_file("predictions", predictions)
    questions = load_questions("dev", data_dir, max_eval_examples)
    model = BertModel.from_pretrained(model_name, device=device)
    head = load_adapters(model, adapters)
    if not isinstance(head, QuestionAnsweringHead):
        raise ValueError(f"{adapters}: holds no question-answering head; it cannot be evaluated "
                         "on SQuAD")
    tokenizer = Tokenizer.from_pretrained(model_name)
    windows = make_windows(tokenizer, questions, max_seq_length, doc_stride, max_query_length)
    answers = predict_answers(model, head, tokenizer, questions, windows, batch_size,
                              max_answer_length)
    if predictions is not None:
        write_predictions(predictions, answers)
    metrics = squad_scores(questions, answers)
    return {"task": SQUAD.name, "metrics": metrics, "score": metrics["score"],
            "exact_match": metrics["exact_match"], "f1": metrics["f1"],
            "eval_split": SQUAD.eval_split, "eval_examples": len(questions),
            "eval_windows": len(windows), "predictions": predictions}

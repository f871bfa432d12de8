"""Extractive QA runs (SQuAD): the Run of run.py with its questions cut into windows
(qa.windows), the span head, answers picked from the start and end logits (qa.answers) and
scored by the official metric (qa.metric), and the last evaluation's answers written as
predictions.json in the official format, {question id: answer text}.
"""
import numpy as np

from ..heads import QuestionAnsweringHead
from ..data.batching import epoch_examples
from ..qa.answers import write_answers
from ..qa.metric import squad_scores
from ..qa.squad import SQUAD, load_questions
from ..qa.windows import make_windows, window_batches
from .evaluation import predict_answers
from .run import Run, TaskData


class QuestionAnsweringRun(Run):
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
        windows = epoch_examples(self.data.train, epoch, seed=settings.seed,
                                 batch_size=settings.batch_size, start=start, lengths=grouping)
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
        write_answers(self.out / "predictions.json", self.predictions)
        return super().finish()

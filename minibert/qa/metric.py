"""The official SQuAD v1.1 metrics (evaluate-v1.1.py): exact match and token F1.

Both compare normalised answers: lower-cased, punctuation removed, the articles a, an and the
removed, whitespace collapsed. A question scores the best of its gold answers; the scores are
averaged over the questions and given in percent, as the official script prints them. A
question without a prediction scores 0.
"""
import collections
import re
import string

_PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """Lower case, no punctuation, no articles, single spaces (the official order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction, gold):
    """F1 of the normalised answers' tokens, counted with repetition."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(questions, predictions):
    """{"exact_match": %, "f1": %, "score": F1} of predictions ({question id: answer text})
    over the questions (each with its gold answers)."""
    if not questions:
        raise ValueError("squad_scores: no questions to score")
    em = f1 = 0.0
    for question in questions:
        if question.id not in predictions:
            continue
        prediction, golds = predictions[question.id], [a.text for a in question.answers]
        em += max(exact_match(prediction, gold) for gold in golds)
        f1 += max(token_f1(prediction, gold) for gold in golds)
    metrics = {"exact_match": 100.0 * em / len(questions), "f1": 100.0 * f1 / len(questions)}
    return {**metrics, "score": metrics["f1"]}

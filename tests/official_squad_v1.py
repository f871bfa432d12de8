"""An independent re-implementation of the official SQuAD v1.1 evaluation script
(evaluate-v1.1.py), written from its definition without minibert: it reads the dataset file and
a predictions file ({question id: answer text}) as the official script does and prints
{"exact_match": ..., "f1": ...}. One addition: --questions N scores the first N questions of the
file only (a run on a dev subset), as if the file held those alone.

    python tests/official_squad_v1.py dev-v1.1.json predictions.json [--questions N]
"""
import argparse
import json
import re
import string
import sys
from collections import Counter


def normalize(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize(prediction).split()
    ground_truth_tokens = normalize(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction, ground_truth):
    return normalize(prediction) == normalize(ground_truth)


def evaluate(dataset, predictions, questions=None):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if questions is not None and total == questions:
                    break
                total += 1
                if qa["id"] not in predictions:
                    print(f"Unanswered question {qa['id']} will receive score 0.",
                          file=sys.stderr)
                    continue
                ground_truths = [answer["text"] for answer in qa["answers"]]
                prediction = predictions[qa["id"]]
                exact_match += max(exact_match_score(prediction, g) for g in ground_truths)
                f1 += max(f1_score(prediction, g) for g in ground_truths)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Evaluation for SQuAD 1.1")
    parser.add_argument("dataset_file")
    parser.add_argument("prediction_file")
    parser.add_argument("--questions", type=int)
    args = parser.parse_args(argv)
    with open(args.dataset_file) as f:
        dataset = json.load(f)
    if dataset["version"] != "1.1":
        print("Evaluation expects v-1.1, but got dataset with v-" + dataset["version"],
              file=sys.stderr)
    with open(args.prediction_file) as f:
        predictions = json.load(f)
    print(json.dumps(evaluate(dataset["data"], predictions, args.questions)))


if __name__ == "__main__":
    main()

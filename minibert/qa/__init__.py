"""Extractive question answering, SQuAD v1.1: the reader (`squad`), question + context windows
as BERT's run_squad.py cuts them (`windows`), the best answer span over a question's windows
(`answers`), and the official exact match and F1 (`metric`).

May import: the data wing (`minibert.data`: its wheels). It knows nothing of models: the
windows take a tokenizer, the answers take logits.
"""

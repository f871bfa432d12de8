"""The laboratory: the paper's analyses and their figures (`analyses`), hyperparameter sweeps
with seeds on Ray and their report (`sweep`, `sweep_report`), the benchmark against PyTorch
(`bench`), checks for the notebooks' exercises (`exercises`), and what produced a result
(`provenance`).

May import: everything below it (the library, the data and QA wings, runs, the speed layer);
Ray, matplotlib and torch only where they are used, as optional extras.
"""

"""A sweep's report on made-up trials: means and sample stds over seeds, the paper's
selection (the best single trial, not the best mean), the table and the figure."""
import pytest

from minibert.lab.sweep_report import configurations, format_table, selection, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def entry(lr, seed, score, size=8, epochs=3):
    return {"task": "RTE", "method": "adapters", "eval_split": "dev", "score_metric": "accuracy",
            "train_examples": 100, "learning_rate": lr, "epochs": epochs, "adapter_size": size,
            "seed": seed, "score": score, "seconds": 10.0 + seed}


TRIALS = [entry(1e-3, 0, 0.5), entry(1e-3, 1, 0.7), entry(1e-2, 0, 0.8), entry(1e-2, 1, 0.2),
          entry(1e-3, 0, 0.6, size=64, epochs=20)]
DATA = {"settings": {"base": {"model": "minilm-l6"},
                     "trials": [f"t{i}" for i in range(len(TRIALS))]},
        "runs": {f"t{i}": t for i, t in enumerate(TRIALS)}}


def test_each_configuration_gets_the_mean_and_sample_std_of_its_seeds():
    rows = configurations(TRIALS)
    assert list(rows) == [(1e-3, 3, 8), (1e-3, 20, 64), (1e-2, 3, 8)]
    assert rows[(1e-3, 3, 8)]["mean"] == pytest.approx(0.6)
    assert rows[(1e-3, 3, 8)]["std"] == pytest.approx(0.1414213562)       # n - 1
    assert rows[(1e-2, 3, 8)]["scores"] == [0.8, 0.2]
    assert rows[(1e-3, 20, 64)]["std"] is None                             # one seed
    assert rows[(1e-3, 3, 8)]["seconds"] == 10.5


def test_the_papers_selection_is_the_best_single_trial_not_the_best_mean():
    assert selection(TRIALS) is TRIALS[2]
    table = format_table(DATA, TRIALS)
    assert "| lr 0.001, 3 epochs, size 8 | 2 | 60.0 ± 14.1 | 50.0, 70.0 | 10 |" in table
    assert "| lr 0.001, 20 epochs, size 64 | 1 | 60.0 | 60.0 | 10 |" in table
    assert "best configuration by mean over seeds: lr 0.001, 3 epochs, size 8, 60.0 ± 14.1" in table
    assert "paper's selection (best trial on validation): lr 0.01, 3 epochs, size 8, seed 0: " \
           "80.0" in table


def test_the_report_is_written_as_a_table_and_a_figure(tmp_path):
    table = write_report(tmp_path, DATA)
    assert (tmp_path / "sweep.md").read_text() == table
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.md", "sweep.png"]

"""The `minibert` command."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import minibert
from minibert.cli import main, make_parser
from minibert.runs import RunSettings


def test_gradcheck_passes_and_prints_every_tensor(capsys):
    assert main(["gradcheck", "--layers", "1", "--hidden-size", "8", "--heads", "2"]) == 0
    out = capsys.readouterr().out
    assert "encoder.layer.0.attention.self.query.weight" in out and "classifier.bias" in out
    assert "within 1e-06" in out


def test_params_works_from_a_config_alone(tmp_path, capsys):
    assert main(["params", "--model", "bert-base-uncased", "--adapter-size", "64", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["per_adapter"] == 99_136 and table["adapters"] == 2_379_264
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 128, "num_hidden_layers": 2,
                                                      "num_attention_heads": 2,
                                                      "intermediate_size": 512}))
    assert main(["params", "--model", str(tmp_path), "--adapter-size", "8"]) == 0
    assert "per adapter: 2CM + C + M = 2,184" in capsys.readouterr().out


def test_params_names_a_missing_model(tmp_path, capsys):
    assert main(["params", "--model", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_commands_that_draw_nothing_do_not_import_matplotlib():
    code = ("import sys, minibert.cli; minibert.cli.main(['params', '--model', 'bert-base-uncased']); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr


def test_version_usage_and_help_on_every_option(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"minibert {minibert.__version__}\n"
    assert main([]) == 2                         # a bare `minibert`: the commands, not one line
    assert capsys.readouterr().out.startswith("usage: minibert")
    _, commands = make_parser()
    unexplained = [(name, action.option_strings[-1]) for name, parser in commands.choices.items()
                   for action in parser._actions
                   if action.option_strings and action.dest != "help" and not action.help]
    assert unexplained == []


def test_task_names_are_matched_without_regard_to_case_and_a_near_miss_is_named(capsys):
    assert RunSettings(task="trec-6").task == RunSettings(task="trec6").task == "TREC-6"
    assert main(["train", "--task", "TRECC-6"]) == 2
    assert capsys.readouterr().err.endswith("found 'TRECC-6'; did you mean 'TREC-6'?\n")
    assert main(["train", "--task", "TREC-6", "--top-k", "3"]) == 2
    assert capsys.readouterr().err == ("minibert train: error: --top-k: expected none with "
                                       "method adapters (method top-k alone takes it), found 3\n")

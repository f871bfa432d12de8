"""docs/commands.md against the `minibert` parser: every option of every command is named
under its command on the page, and every default a help text states is the one the code uses.

The page opens with a synopsis, one `minibert COMMAND ...` line per use of a command (indented
lines carry it on), then bullets and paragraphs about the options. An option of COMMAND counts
as named under it when the page names it (as a whole option, `--seed` not inside `--seeds`):
- in one of COMMAND's synopsis lines, or
- in a bullet or paragraph that names COMMAND in backticks (`train`, `minibert train ...`), or
- in the synopsis lines of another command that has the very same option: the same argparse
  action (sweep takes train's) or one made by the same shared helper (the same option string
  and help text, as train, eval and experiment share --batch-size). An option of the same name
  that means something else (gradcheck's --seed, predict's --batch-size) is named on its own.

A help text that names two or more of an option's choices names them all. A help text states
a default as "default VALUE", "(default: VALUE)", "default VALUE1 VALUE2" (a list), "default:
NAME VALUE; NAME VALUE" (one per experiment), or "0: all" (all, 0, being the default where no
other is stated); "default: the ...", "default $VAR", "default per method" and the like
describe a default in words, which is not compared.
"""
import argparse
import re
from pathlib import Path

import pytest

from minibert.cli import RUN_DEFAULTS, make_parser
from minibert.data import tasks
from minibert.lab import analyses, bench, sweep
from minibert.runs.settings import default_sequence_length

PAGE = Path(__file__).resolve().parent.parent / "docs" / "commands.md"
ADAPTER_FILES = "the adapter file's"        # a default the code reads from the adapter file


def commands():
    return make_parser()[1].choices


def options(parser):
    """{option string: action} of a command, --help left out."""
    return {option: action for action in parser._actions for option in action.option_strings
            if not isinstance(action, argparse._HelpAction)}


def named(option, text):
    return re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", text) is not None


def sections(page, names):
    """{command: its synopsis lines} and {command: its synopsis lines and the prose naming it}."""
    before, fence, rest = page.partition("```bash\n")
    assert fence, f"{PAGE}: expected the synopsis in a ```bash block"
    block, _, after = rest.partition("```")
    synopsis, command = {name: "" for name in names}, None
    for line in block.splitlines():
        found = re.match(r"minibert (\S+)", line)
        if found:
            command = found.group(1)
            assert command in names, f"{PAGE}: synopsis of an unknown command: {line}"
        elif line.strip() and not line.startswith(" "):
            command = None
        if command is not None:
            synopsis[command] += line + "\n"
    paragraphs = re.split(r"\n(?=- )|\n\s*\n", before + after)
    whole = dict(synopsis)
    for paragraph in paragraphs:
        spans = re.findall(r"`([^`]+)`", paragraph)
        for name in names:
            if any(re.match(rf"(minibert )?{re.escape(name)}(?![\w-])", s) for s in spans):
                whole[name] += paragraph + "\n"
    return synopsis, whole


def undocumented(page, parsers):
    """['command --option', ...]: the options the page does not name under their command."""
    synopsis, whole = sections(page, list(parsers))
    by_command = {name: options(parser) for name, parser in parsers.items()}
    missing = []
    for name, opts in by_command.items():
        for option, action in opts.items():
            if option == "--version" or named(option, whole[name]):
                continue
            shared = [other for other, theirs in by_command.items() if other != name
                      and option in theirs and (theirs[option] is action
                                                or theirs[option].help == action.help)]
            if not any(named(option, synopsis[other]) for other in shared):
                missing.append(f"{name} {option}")
    return missing


def test_every_option_is_named_under_its_command():
    missing = undocumented(PAGE.read_text("utf-8"), commands())
    assert not missing, (f"{len(missing)} options that docs/commands.md does not name under "
                         f"their command: {', '.join(missing)}")


def test_a_missing_option_is_found():
    parsers = commands()
    page = PAGE.read_text("utf-8")
    assert "bench --repeats" in undocumented(page.replace("--repeats", "--rePeats"), parsers)
    # an option named only under another command, with another meaning, does not count
    lone = {"gradcheck": parsers["gradcheck"]}
    page = "```bash\nminibert gradcheck [--device cupy]\nminibert train [--seed 0]\n```\n"
    with pytest.raises(AssertionError, match="unknown command"):
        undocumented(page, lone)
    found = undocumented(page.replace("minibert train [--seed 0]\n", ""), lone)
    assert "gradcheck --seed" in found and "gradcheck --device" not in found


def unlisted_choices(parsers):
    """['command --option: ...']: help texts that name some of an option's choices, not all."""
    unlisted = []
    for name, parser in parsers.items():
        for option, action in options(parser).items():
            if option != action.option_strings[-1] or not action.choices or not action.help:
                continue
            listed = [c for c in action.choices if named(str(c), action.help)]
            if len(listed) >= 2 and len(listed) < len(action.choices):
                unlisted.append(f"{name} {option}: names {', '.join(map(str, listed))}, not "
                                + ", ".join(str(c) for c in action.choices if c not in listed))
    return unlisted


def test_a_help_that_lists_choices_lists_them_all():
    unlisted = unlisted_choices(commands())
    assert not unlisted, "help texts leaving choices out: " + "; ".join(unlisted)


def test_a_left_out_choice_is_found():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pooling", choices=("cls", "mean", "cls_token"), help="cls or mean")
    parser.add_argument("--method", choices=("adapters", "full"), help="default adapters")
    assert [u.split(":")[0] for u in unlisted_choices({"params": parser})] == ["params --pooling"]


# ---------------------------------------------------------------------------------- defaults

# words that begin a default told in words rather than a value
IN_WORDS = {"the", "per", "from", "plain", "takes", "ray", "a", "an", "as"}
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"


def stated_default(text):
    """The default a help text states: a number, a word, a list of numbers, a dict (one per
    experiment), "all" or "none"; None where it states none, or tells it in words only."""
    found = re.search(r"\bdefault\b:? ?([^;,:()]*)", text)
    if found and found.group(1).strip():
        value = found.group(1).strip()
        first = value.split()[0]
        if first in analyses.EXPERIMENTS:           # default: tradeoff 500; init-scale 1000 ...
            listed = text[found.start(1):].split(")")[0]
            return {part.split()[0]: " ".join(part.split()[1:])
                    for part in listed.split(";") if part.strip()}
        if (first.lower() in IN_WORDS or first.startswith("$")
                or re.search(r"/[A-Z]+\b", first)):  # runs/TASK: a pattern, not a value
            return None
        words = value.split()
        if all(re.fullmatch(NUMBER, w) for w in words):
            return [float(w) for w in words] if len(words) > 1 else float(words[0])
        return first
    if re.search(r"\b0: all\b", text):
        return "all"
    return None


# Where argparse's default is None and the code fills one in later: (command, dest) -> what it
# fills in (train's and sweep's options have no argparse defaults: RunSettings' hold).
def filled_defaults():
    sequence = default_sequence_length(tasks.get_task("SST-2"), None)
    return {
        ("train", "max_seq_length"): sequence, ("sweep", "max_seq_length"): sequence,
        ("train", "task"): "TREC-6", ("sweep", "task"): "TREC-6",   # RunSettings.__post_init__
        ("eval", "max_seq_length"): ADAPTER_FILES, ("predict", "max_seq_length"): ADAPTER_FILES,
        ("sweep", "seeds"): sweep.DEFAULT_SEEDS,
        ("bench", "models"): " ".join(bench.DEFAULT_MODELS),
        ("bench", "seq_length"): [float(t) for t in bench.DEFAULT_LENGTHS],
        ("experiment", "max_train_examples"): {name: str(n) for name, n in
                                               analyses.DEFAULT_TRAIN_EXAMPLES.items()},
        ("experiment", "tasks"): {name: " ".join(t) for name, t in
                                  analyses.DEFAULT_TASKS.items()},
    }


def used_default(command, action, filled):
    """The default the code uses for an option of a command."""
    value = action.default
    if value is None and command in ("train", "sweep"):
        value = RUN_DEFAULTS.get(action.dest)
    if value is None:
        value = filled.get((command, action.dest))
    return value


def agrees(stated, used):
    if stated == "all":
        return used in (None, 0)
    if stated == "none":
        return used in (None, [], ())
    if isinstance(stated, (float, list)):
        try:
            return (list(map(float, used)) if isinstance(stated, list) else float(used)) == stated
        except (TypeError, ValueError):
            return False
    if isinstance(stated, dict):
        return stated == used
    return stated == str(used)


def wrong_defaults(parsers):
    """['command --option: help says X, the code uses Y', ...]"""
    filled = filled_defaults()
    wrong = []
    for name, parser in parsers.items():
        for option, action in options(parser).items():
            if option != action.option_strings[-1] or not action.help:
                continue
            stated = stated_default(action.help)
            if stated is None:
                continue
            used = used_default(name, action, filled)
            if not agrees(stated, used):
                wrong.append(f"{name} {option}: help says {stated!r}, the code uses {used!r}")
    return wrong


def test_every_default_a_help_states_is_the_one_used():
    wrong = wrong_defaults(commands())
    assert not wrong, "help texts stating another default than the code's: " + "; ".join(wrong)


@pytest.mark.parametrize("text, stated", [
    ("examples per step (default 32)", 32.0), ("default 3", 3.0), ("> 0, default 0.001", 1e-3),
    ("the largest relative error passed (default 1e-6)", 1e-6), ("0: all", "all"),
    ("0: all (the default); SQuAD: questions", "all"), ("default 128, SQuAD 384", 128.0),
    ("the bottleneck's nonlinearity (default gelu, the erf form)", "gelu"),
    ("layers without adapters (default none)", "none"), ("default 0: no more", 0.0),
    ("one or more lengths (default 24 128: short)", [24.0, 128.0]),
    ("0: all; default: tradeoff 500; ablation 1000", {"tradeoff": "500", "ablation": "1000"}),
    ("numpy | cupy (default $MINIBERT_DEVICE or numpy)", None),
    ("default: the adapter file's", None), ("default per method: adapters 0.001", None),
    ("default runs/TASK (runs/trec6)", None), ("a divisor of the hidden size", None),
])
def test_a_stated_default_is_read(text, stated):
    assert stated_default(text) == stated


def test_a_wrong_default_is_found():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4, help="default 3")
    parser.add_argument("--max-eval-examples", type=int, default=400, help="0: all")
    parser.add_argument("--batch-size", type=int, default=32, help="(default 32)")
    wrong = wrong_defaults({"experiment": parser})
    assert [w.split(":")[0] for w in wrong] == ["experiment --epochs",
                                                "experiment --max-eval-examples"]

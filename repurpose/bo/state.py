"""Append-only JSON-lines journals of BO studies, so that a killed study resumes.

A journal is a text file of one JSON object per line: a header line
``{"format": ..., "format_version": ..., "space": ..., "settings": ...}`` and then one line
per finished trial, each appended, flushed and fsynced as the trial is told (the layout of
``optuna``'s ``JournalFileStorage``). The header is written atomically (temporary sibling,
fsync, ``os.replace``), so a journal always starts with a whole header.

Reading tolerates exactly what a kill can leave behind: a torn (partial) **last** line is
dropped with a warning, and that trial runs again. Anything else (an unreadable line before
the last one, another format, a newer ``format_version``) raises
:class:`~repurpose.exceptions.ModelFileError` naming the file and what to do.

Two formats use this layout:

* ``repurpose.bo.state`` (version 2): a :class:`~repurpose.bo.BayesianOptimizer` study, one
  :class:`~repurpose.bo.Trial` per line. Version 1 files (the whole state as one JSON
  document, rewritten after every trial) are still read, and migrated forward on load.
* ``repurpose.bo.hyperband`` (version 1): a :class:`~repurpose.bo.HyperbandScheduler` run,
  one :class:`~repurpose.bo.ScheduledTrial` per line.

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "study.jsonl")
>>> create_journal(path, {"format": FORMAT, "format_version": FORMAT_VERSION,
...                       "space": {"dimensions": {}}, "settings": {}})
>>> append_record(path, {"params": {}, "value": 1.5, "status": "ok"})
>>> journal = read_journal(path, FORMAT, FORMAT_VERSION)
>>> journal.records, journal.clean
([{'params': {}, 'value': 1.5, 'status': 'ok'}], True)
"""
import dataclasses
import json
import logging
import math
import os
from typing import Any, Dict, List

from ..exceptions import ModelFileError
from ..persist import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["FORMAT", "FORMAT_VERSION", "SCHEDULE_FORMAT", "SCHEDULE_FORMAT_VERSION",
           "Journal", "create_journal", "append_record", "read_journal", "write_journal",
           "write_state", "read_state", "state_header", "encode_float", "decode_float",
           "MIGRATIONS"]

FORMAT = "repurpose.bo.state"
FORMAT_VERSION = 2
SCHEDULE_FORMAT = "repurpose.bo.hyperband"
SCHEDULE_FORMAT_VERSION = 1
_TRIAL_KEYS = ("params", "value", "status")


@dataclasses.dataclass
class Journal:
    """What :func:`read_journal` found: the header, the records in order, and whether the
    file is clean (False when a torn last line was dropped or the file was migrated from an
    older version; the next write should then rewrite the whole journal)."""

    header: Dict[str, Any]
    records: List[Dict[str, Any]]
    clean: bool = True


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
    >>> create_journal(path, {'format': FORMAT, 'format_version': FORMAT_VERSION,
    ...                       'space': {'dimensions': {}}, 'settings': {}})
    >>> read_journal(path, FORMAT, FORMAT_VERSION).records
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
    >>> create_journal(path, state_header({'space': {'dimensions': {}}, 'settings': {}}))
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
    >>> header = state_header({'space': {'dimensions': {}}, 'settings': {}})
    >>> write_journal(path, header, [{'params': {}, 'value': 2.0, 'status': 'ok'}])
    >>> len(read_journal(path, FORMAT, FORMAT_VERSION).records)
    1
    """
    text = _line(header) + "".join(_line(r) for r in records)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)

    atomic_write(path, write, overwrite=True)


def _check_header(path, header, fmt, max_version, what):
    if not isinstance(header, dict) or header.get("format") != fmt:
        found = header.get("format") if isinstance(header, dict) else None
        raise ModelFileError(f"{path!r} is not a {what} file (format {found!r}, expected "
                             f"{fmt!r}). Pass another state_path.")
    version = header.get("format_version")
    if (not isinstance(version, int) or isinstance(version, bool) or version < 1
            or version > max_version):
        raise ModelFileError(f"{what} file {path!r} has format_version {version!r}, but this "
                             f"repurpose reads up to {max_version}. Upgrade repurpose.")
    missing = [k for k in ("space", "settings") if not isinstance(header.get(k), dict)]
    if missing and version == max_version:
        raise ModelFileError(f"{what} file {path!r} has a header without {missing}; it is "
                             f"corrupted. Remove it (or choose another state_path) to start "
                             f"afresh.")
    return version


def read_journal(path, fmt, max_version, what="BO journal", legacy=None):
    """Read a journal; return a :class:`Journal`.

    Parameters
    ----------
    path : str or path-like
    fmt : str
        The expected ``format`` of the header.
    max_version : int
        The newest ``format_version`` this code reads (the journal layout).
    what : str, default='BO journal'
        How messages name the file.
    legacy : callable, default=None
        ``legacy(document) -> Journal or None`` for files that are one JSON document rather
        than JSON lines (older versions); None if the document is not one it knows.

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
    >>> create_journal(path, state_header({'space': {'dimensions': {}}, 'settings': {}}))
    >>> append_record(path, {'params': {}, 'value': 1.0, 'status': 'ok'})
    >>> with open(path, 'a') as handle:
    ...     _ = handle.write('{"params": {}, "val')
    >>> journal = read_journal(path, FORMAT, FORMAT_VERSION)
    >>> len(journal.records), journal.clean
    (1, False)
    >>> read_journal(path, SCHEDULE_FORMAT, SCHEDULE_FORMAT_VERSION)
    Traceback (most recent call last):
    ...
    repurpose.exceptions.ModelFileError: '...' is not a BO journal file (format ...
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if not data.strip():
        raise ModelFileError(f"{what} file {path!r} is empty; it is corrupted. Remove it (or "
                             f"choose another state_path) to start afresh.")
    raw_lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    if complete:
        raw_lines.pop()  # the empty piece after the final newline
    objs, bad = [], None
    for number, raw in enumerate(raw_lines, start=1):
        try:
            obj = json.loads(raw.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            bad = (number, err)
            break
        objs.append(obj)
    if bad is not None and bad[0] == 1:
        document = None
        try:
            document = json.loads(data.decode("utf-8"))
        except ValueError:
            pass
        if isinstance(document, dict) and legacy is not None:
            found = legacy(document)
            if found is not None:
                return found
        if isinstance(document, dict):
            _check_header(path, document, fmt, max_version, what)
        raise ModelFileError(f"{what} file {path!r} is not valid JSON at line 1 ({bad[1]}); "
                             f"it is corrupted. Remove it (or choose another state_path) to "
                             f"start afresh.") from bad[1]
    header = objs[0]
    version = _check_header(path, header, fmt, max_version, what)
    if version != max_version and legacy is not None:
        found = legacy(header)
        if found is not None:
            return found
    if version != max_version:
        raise ModelFileError(f"{what} file {path!r} has format_version {version}, which is "
                             f"not a JSON-lines journal this repurpose can read.")
    clean = True
    if bad is not None:
        number, err = bad
        if number != len(raw_lines):
            raise ModelFileError(
                f"{what} file {path!r}: line {number} of {len(raw_lines)} is not valid JSON "
                f"({err}). Only the last line can be torn by an interrupted write, so the file is "
                f"corrupted. Restore it from a backup, or move it away and start a new study "
                f"(lines 2-{number - 1} hold the trials told before the damage).") from err
        logger.warning("%s file %s: dropped its torn last line %d (an interrupted write); that "
                       "trial will run again.", what, path, number)
        clean = False
    elif not complete and objs:
        clean = False  # whole last line but no newline: rewrite before appending
    return Journal(header, objs[1:], clean)


# ---------------------------------------------------------------------- optimiser studies
def _trial_records(path, records):
    for number, record in enumerate(records, start=2):
        if not all(k in record for k in _TRIAL_KEYS):
            missing = [k for k in _TRIAL_KEYS if k not in record]
            raise ModelFileError(f"BO state file {path!r}: line {number} is a trial without "
                                 f"{missing}; the file is corrupted. Restore it from a backup "
                                 f"or start a new study with another state_path.")
    return records


def _v1_to_v2(document):
    """Version 1 (one JSON document with a ``trials`` list) -> the version 2 layout."""
    state = dict(document)
    trials = state.pop("trials", [])
    state["format_version"] = 2
    return state, trials


# Ordered forward migrations of the in-memory state: MIGRATIONS[v] turns version v into v + 1.
MIGRATIONS = {1: _v1_to_v2}


def _legacy_state(path):
    def legacy(document):
        if document.get("format") != FORMAT or document.get("format_version") != 1:
            return None
        if not isinstance(document.get("trials"), list):
            raise ModelFileError(f"BO state file {path!r} (format_version 1) has no trials "
                                 f"list; it is corrupted. Remove it to start afresh.")
        version, header, trials = 1, document, None
        while version < FORMAT_VERSION:
            header, trials = MIGRATIONS[version](header)
            version = header["format_version"]
        logger.info("Read %s (format_version 1); it becomes a version %d journal on the next "
                    "write.", path, FORMAT_VERSION)
        _check_header(path, header, FORMAT, FORMAT_VERSION, "BO state")
        return Journal(header, trials, clean=False)
    return legacy


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
    >>> write_state(path, {'space': {'dimensions': {}}, 'settings': {'seed': 0},
    ...                    'trials': [{'params': {}, 'value': 0.5, 'status': 'ok'}]})
    >>> state, clean = read_state(path)
    >>> state['trials'], state['settings'], clean
    ([{'params': {}, 'value': 0.5, 'status': 'ok'}], {'seed': 0}, True)
    """
    path = os.fspath(path)
    journal = read_journal(path, FORMAT, FORMAT_VERSION, what="BO state",
                           legacy=_legacy_state(path))
    trials = _trial_records(path, journal.records)
    state = {"space": journal.header["space"], "settings": journal.header["settings"],
             "trials": trials}
    return state, journal.clean


def state_header(state):
    """The journal header of a :meth:`BayesianOptimizer.get_state` dict.

    Examples
    --------
    >>> state_header({'space': {'dimensions': {}}, 'settings': {}, 'trials': []})
    {'format': 'repurpose.bo.state', 'format_version': 2, 'space': {'dimensions': {}},
     'settings': {}}
    """
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "space": state["space"],
            "settings": state["settings"]}


def write_state(path, state):
    """Write a whole optimiser study as a version 2 journal, atomically replacing ``path``.

    Parameters
    ----------
    path : str or path-like
    state : dict
        ``space``, ``settings`` and ``trials``, as :meth:`BayesianOptimizer.get_state`
        gives them.

    See Also
    --------
    read_state : The inverse.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'study.jsonl')
    >>> write_state(path, {'space': {'dimensions': {}}, 'settings': {}, 'trials': []})
    >>> read_state(path)[0]['trials']
    []
    """
    write_journal(path, state_header(state), state["trials"])

"""The one output-folder protocol of every job (fine-tuning, tuning).

A job writes its resolved config first, then its other files, into ``run.output_dir``:

- a missing or empty folder starts the job (``'new'``);
- a folder holding this job's resolved config (equal to this config, up to keys added by a
  later version) is continued with ``resume``; without it, it is an error that says so;
- ``overwrite`` starts again there, removing only the files this kind of job writes;
- a folder holding another job's resolved config, files that are no job's, or a finished
  job (with a ``finished`` marker) is refused, naming what differs, before any work.

A job holds the folder's lock (:meth:`OutputFolder.lock`) from before that check to its end,
so a second job on the same folder is refused, naming the first, instead of mixing its files
with the first's. Under the lock, what an interrupted write of ours left behind (hidden
``.<output>.*.tmp`` / ``.*.old`` siblings of the job's outputs) is removed
(:meth:`OutputFolder.remove_leftovers`).
"""
import fnmatch
import logging
import os
import shutil

import yaml

from .._validation import brief_list
from ..exceptions import InvalidParameterError
from ..persist import FolderLock, remove_temporaries

logger = logging.getLogger(__name__)

__all__ = ["OutputFolder"]


def differences(a, b, prefix=""):
    """Dotted keys whose values differ between the nested mappings ``a`` and ``b``.

    Examples
    --------
    >>> differences({'train': {'n_epochs': 3, 'lr': 1}}, {'train': {'n_epochs': 4, 'lr': 1}})
    ['train.n_epochs (3 here, 4 there)']
    """
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key} ({va!r} here, {vb!r} there)")
    return out


class OutputFolder:
    """How a kind of job owns its output folder.

    Parameters
    ----------
    resolved_name : str
        The resolved-config file the job writes first (``config.resolved.yaml``).
    what : str
        How messages call the job (``'job'``, ``'tuning run'``).
    outputs : tuple of str
        Every file or folder the job writes there (what ``overwrite`` removes).
    finished : str, default=None
        An output whose presence means the job finished (nothing left to resume).
    label : str, default=None
        What a folder of such files is, for the message about foreign files (default
        ``what``).

    Examples
    --------
    >>> import os, tempfile
    >>> folder = OutputFolder('job.yaml', 'demo job', ('job.yaml', 'result.txt'))
    >>> out = tempfile.mkdtemp()
    >>> folder.check(out, {'a': 1})
    'new'
    >>> with open(os.path.join(out, 'job.yaml'), 'w') as handle:
    ...     _ = handle.write('a: 1')
    >>> folder.check(out, {'a': 1}, resume=True), folder.check(out, {'a': 2}, overwrite=True)
    ('resume', 'new')
    >>> os.listdir(out)
    []
    """

    def __init__(self, resolved_name, what, outputs, finished=None, label=None):
        self.resolved_name, self.what, self.label = resolved_name, what, label or what
        self.outputs, self.finished = tuple(outputs), finished

    def check(self, out, ours, resume=False, overwrite=False, upgrade=None):
        """Say whether the job at ``out`` is ``'new'`` or a ``'resume'``; raise otherwise.

        Parameters
        ----------
        out : str
            ``run.output_dir``.
        ours : dict
            This job's resolved config as plain values (what it writes to
            ``resolved_name``), less any keys that may change between runs.
        resume, overwrite : bool, default=False
            ``--resume`` / ``--overwrite``; not both.
        upgrade : callable, default=None
            ``upgrade(theirs) -> dict`` brings the folder's resolved config to the form of
            ``ours`` (defaults of keys added since it was written, keys that may change).

        Returns
        -------
        {'new', 'resume'}

        Raises
        ------
        FileExistsError
            For another job's or foreign files, a finished job, or this job's files without
            ``resume`` or ``overwrite``.
        FileNotFoundError
            With ``resume`` but nothing to resume.
        InvalidParameterError
            With both ``resume`` and ``overwrite``.
        """
        if resume and overwrite:
            raise InvalidParameterError("Pass --resume or --overwrite, not both.")
        entries = sorted(e for e in os.listdir(out) if not self._is_ours_hidden(e)) \
            if os.path.isdir(out) else []
        resolved = os.path.join(out, self.resolved_name)
        if not entries:
            if resume:
                raise FileNotFoundError(
                    f"--resume: run.output_dir {out!r} holds no {self.what} to "
                    f"resume{'' if os.path.isdir(out) else ' (it does not exist)'}. Run "
                    f"without --resume to start it.")
            return "new"
        if not os.path.isfile(resolved):
            raise FileExistsError(
                f"run.output_dir {out!r} is not empty and holds no {self.resolved_name} (found "
                f"{brief_list(entries)}): those are not a {self.label}'s files, and "
                f"--overwrite never removes them. Choose a new or empty folder.")
        if overwrite:
            self._remove_outputs(out)
            return "new"
        try:
            with open(resolved, encoding="utf-8") as handle:
                theirs = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise FileExistsError(f"run.output_dir {out!r} holds an unreadable "
                                  f"{self.resolved_name} ({err}). Choose a new or empty "
                                  f"folder, or pass --overwrite.") from err
        theirs = (upgrade or (lambda d: d))(theirs) if isinstance(theirs, dict) else {}
        if ours != theirs:
            diff = differences(ours, theirs)
            raise FileExistsError(
                f"run.output_dir {out!r} holds another {self.what}'s files: its "
                f"{self.resolved_name} differs in {', '.join(diff[:6])}"
                f"{' ...' if len(diff) > 6 else ''}. Choose another run.output_dir, or pass "
                f"--overwrite to start again there.")
        if self.finished and os.path.exists(os.path.join(out, self.finished)):
            raise FileExistsError(
                f"run.output_dir {out!r} holds this {self.what}, finished "
                f"({self.finished} exists). Nothing to resume; pass --overwrite to run it "
                f"again there, or choose another run.output_dir.")
        if not resume:
            raise FileExistsError(
                f"run.output_dir {out!r} holds this {self.what}'s files from an "
                f"earlier run. Pass --resume to continue it, --overwrite to start again, or "
                f"choose another run.output_dir.")
        return "resume"

    def _remove_outputs(self, out):
        """Remove what this kind of job writes (and only that) from ``out``."""
        for name in self.outputs:
            _remove(os.path.join(out, name))
        self.remove_leftovers(out)
        logger.info("--overwrite: removed the earlier %s's files from %s", self.what, out)

    def lock(self, out):
        """The lock a job holds on its folder ``out`` from before :meth:`check` to its end
        (a :class:`~repurpose.persist.FolderLock`, the file ``.<folder>.lock`` beside it;
        the folder's parent is created if missing).

        Raises
        ------
        LockedError
            On entry, if another process holds it; the message names that process.

        Examples
        --------
        >>> import os, tempfile
        >>> out = os.path.join(tempfile.mkdtemp(), 'run')
        >>> with OutputFolder('job.yaml', 'demo job', ('job.yaml',)).lock(out) as lock:
        ...     os.path.basename(lock.lock_path)
        '.run.lock'
        """
        parent = os.path.dirname(os.path.abspath(out))
        os.makedirs(parent, exist_ok=True)
        return FolderLock(out, what=f"{self.what} folder")

    def remove_leftovers(self, out):
        """Remove the hidden temporary siblings of this job's outputs in ``out``
        (``.<output>.XXXXXXXX.tmp``, ``.<output>.XXXXXXXX.old``) that a killed write left
        behind, each logged at INFO; call it under :meth:`lock`. Returns the names removed.

        Examples
        --------
        >>> import os, tempfile
        >>> out = tempfile.mkdtemp()
        >>> os.mkdir(os.path.join(out, '.model.k2x9ab3d.tmp'))
        >>> folder = OutputFolder('job.yaml', 'demo job', ('job.yaml', 'model'))
        >>> folder.remove_leftovers(out), os.listdir(out)
        (['.model.k2x9ab3d.tmp'], [])
        """
        return [entry for output in self.outputs
                for entry in remove_temporaries(out, output.rstrip("/"), ("tmp", "old"))]

    def _is_ours_hidden(self, name):
        """A leftover of one of our outputs, or the lock file of one (a journal's)."""
        return any(fnmatch.fnmatchcase(name, f".{output.rstrip('/')}.*.{ext}")
                   for output in self.outputs for ext in ("tmp", "old")) \
            or name in {f".{output.rstrip('/')}.lock" for output in self.outputs}


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)

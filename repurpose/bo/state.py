"""The optimiser's state as JSON: search space, settings, RNG seed and every trial.

The whole state is rewritten after every ``tell`` through :func:`repurpose.persist.atomic_write`
(temporary sibling, fsync, ``os.replace``), so a killed run leaves either the previous or the
new state on disk, never a torn file, and resumes with nothing lost.
"""
import json
import os

from ..exceptions import ModelFileError
from ..persist import atomic_write

__all__ = ["FORMAT", "FORMAT_VERSION", "write_state", "read_state"]

FORMAT = "repurpose.bo.state"
FORMAT_VERSION = 1


def write_state(path, state):
    """Write the JSON-able dict ``state`` to ``path`` atomically (replacing it)."""
    text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **state},
                      allow_nan=False, indent=1)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write, overwrite=True)


def read_state(path):
    """Read a state written by :func:`write_state`; raise :class:`ModelFileError` with the
    file name if it is corrupted, of another format, or from a newer version."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"BO state file {path!r} is not valid JSON ({err}); it is "
                             f"corrupted. Remove it to start afresh.") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not a BO state file (format "
                             f"{state.get('format') if isinstance(state, dict) else None!r}, "
                             f"expected {FORMAT!r}). Pass another state_path.")
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"BO state file {path!r} has format_version {version!r}, but this "
                             f"repurpose reads up to {FORMAT_VERSION}. Upgrade repurpose.")
    return state

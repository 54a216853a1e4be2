"""The job-file reference tables of ``docs/guide/jobs.md``, written from the schema.

Every row comes from :func:`~repurpose.jobs.field_reference`, so the ``model`` and ``train``
tables follow :class:`~repurpose.repurposers.FineTuneRepurposer`'s signature, constraint
table and docstring. Rewrite the page after changing any of them::

    python -c "from repurpose.jobs._reference import update_reference as u; u('docs/guide/jobs.md')"
"""
import json
import re

from ..repurposers import FineTuneRepurposer
from ._config import field_reference

__all__ = ["reference_tables", "update_reference"]

_HEADER = "| key | accepts | default | meaning |\n|---|---|---|---|\n"


def _yaml_words(text):
    """Python words -> the YAML a job file holds (None -> null, True -> true)."""
    text = re.sub(r"\bNone\b", "null", text)
    return re.sub(r"\b(True|False)\b", lambda m: m.group(1).lower(), text)


def reference_tables(estimator=FineTuneRepurposer):
    """``{section: markdown table}`` of every job key.

    Parameters
    ----------
    estimator : type, default=FineTuneRepurposer
        Whose parameters the ``model`` and ``train`` sections are.

    Returns
    -------
    dict of str -> str
        One ``| key | accepts | default | meaning |`` table per section.

    Examples
    --------
    >>> print(reference_tables()['run'].splitlines()[3])
    | `output_dir` | a non-empty string | required | folder for the job's files; new or empty, or this job's own with --resume |
    """
    tables = {}
    for key, default, accepts, doc in field_reference(estimator):
        section, name = key.split(".", 1)
        shown = "required" if default == "required" else \
            f"`{json.dumps(list(default) if isinstance(default, tuple) else default)}`"
        doc = doc.replace("``", "`")
        row = f"| `{name}` | {_yaml_words(accepts)} | {shown} | {_yaml_words(doc)} |\n"
        tables[section] = tables.get(section, _HEADER) + row
    return tables


def update_reference(path, estimator=FineTuneRepurposer):
    """Rewrite the table under each ``### `<section>``` heading of the markdown at ``path``.

    Returns
    -------
    bool
        Whether the file changed.
    """
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    new = text
    for section, table in reference_tables(estimator).items():
        pattern = re.compile(r"(### `" + section + r"`\n(?:(?!\| key).*\n)*?)"
                             r"\| key \| accepts \| default \| meaning \|\n(?:\|.*\n)+")
        new = pattern.sub(lambda m: m.group(1) + table, new, count=1)
    if new != text:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(new)
    return new != text

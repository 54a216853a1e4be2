"""The job-file schema toolkit: typed section fields, one reader that reports every problem,
``--set`` overrides, and sections built from an estimator's own signature and constraints.

A section is a dataclass whose fields carry a :class:`~repurpose._validation.Constraint`
and a one-line description (:func:`field`). The ``model`` and ``train`` sections of a
fine-tuning job are not written here: :func:`estimator_section` reads them from
:class:`~repurpose.repurposers.FineTuneRepurposer` (signature defaults, its
``_parameter_constraints`` table, its docstring), so a new hyper-parameter of the estimator
is a job key, a ``--set`` key, a tunable dimension and a row of the docs reference at once.
"""
import dataclasses
import inspect
import re

import yaml

from .._validation import Custom, Integer, ListOf, Problem, brief_list, is_integer, suggest
from ..context import resolve_contexts
from ..exceptions import ContextError, InvalidParameterError

__all__ = ["Bad", "SIZE", "CTX", "DIGITS", "SHAPE", "field", "read_section", "problems_message", "parse_overrides",
           "apply_overrides", "unknown_key", "estimator_section", "parameter_docs"]

# Names people type from habit (timm, Keras, PyTorch) -> ours; difflib alone misses them.
ALIASES = {"lr": "learning_rate", "epochs": "n_epochs", "num_epochs": "n_epochs",
           "wd": "weight_decay", "bs": "batch_size", "random_state": "seed",
           "scheduler": "lr_schedule", "lr_scheduler": "lr_schedule", "warmup": "warmup_epochs",
           "device": "ctx", "devices": "ctx", "gpus": "ctx", "output": "output_dir",
           "out": "output_dir", "out_dir": "output_dir", "layer": "transfer_layer",
           "freeze": "fixed_layers", "frozen_layers": "fixed_layers", "val": "validation"}


class Bad(Problem):
    """A problem whose text is the whole message (``'key: <text>'``), for checks whose
    failure is more than 'must be <what>'."""


# ---------------------------------------------------------------------- job-only values
def _size(value):
    """An int (shorter side) or a [width, height] pair."""
    if is_integer(value) and value >= 1:
        return int(value)
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(is_integer(v) and v >= 1 for v in value)):
        return [int(v) for v in value]
    raise Problem()


SIZE = Custom(_size, "a positive integer or a [width, height] pair")


def _ctx(value):
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, str) for v in value):
            raise Problem()
        value = list(value)
    elif not isinstance(value, str):
        raise Problem()
    try:
        resolve_contexts(value)
    except ContextError as err:
        raise Bad(str(err)) from None
    return value


CTX = Custom(_ctx, "'cpu', 'gpu', 'gpu:0,1', ... or a list of them")
DIGITS = ListOf(Integer(0, 9), "a list of digits 0-9")
SHAPE = ListOf(Integer(1), "a list of positive integers")


def field(default, constraint, doc, required=False):
    """A section field: its default, its constraint and its one-line description."""
    if isinstance(default, list):
        default = tuple(default)  # dataclasses refuse mutable defaults; read as lists
    return dataclasses.field(default=default, metadata={"check": constraint, "doc": doc,
                                                         "required": required})


# ---------------------------------------------------------------------- from estimators
def parameter_docs(cls):
    """``{name: description}`` from the numpydoc ``Parameters`` section of ``cls``.

    A description is the text under ``name : type`` up to its first sentence; a parameter
    without text gets its type line. Hand-written because numpydoc/napoleon are docs-only
    dependencies and only this one section, in the project's own style, is read.

    Examples
    --------
    >>> class Model:
    ...     '''Parameters
    ...     ----------
    ...     alpha : float, default=1.0
    ...         Strength of the penalty. Larger is smoother.
    ...     beta : int, default=2
    ...     '''
    >>> parameter_docs(Model)
    {'alpha': 'strength of the penalty', 'beta': 'int, default=2'}
    """
    docs = {}
    for klass in reversed(cls.__mro__):  # a subclass documents its own parameters
        docs.update(_parameters_section(inspect.getdoc(klass) or ""))
    return docs


def _parameters_section(text):
    match = re.search(r"^Parameters\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", text,
                      flags=re.S | re.M)
    docs, current, lines = {}, None, []

    def finish():
        if current is not None:
            body = " ".join(lines).strip()
            sentence = re.split(r"(?<=[a-z0-9)'`])\. ", body)[0].rstrip(".") if body else ""
            first = sentence.split(" ")[0] if sentence else ""
            if first[1:2].islower() and first not in ("None", "True", "False"):
                sentence = sentence[:1].lower() + sentence[1:]  # 'Base rate' -> 'base rate'
            docs[current[0]] = sentence or current[1]
    for line in (match.group(1) if match else "").splitlines():
        head = re.match(r"^(\w+) : (.*)$", line)
        if head:
            finish()
            current, lines = (head.group(1), head.group(2).strip()), []
        elif line.startswith("    ") and current is not None:
            lines.append(line.strip())
    finish()
    return docs


def estimator_section(name, estimator, params, extra=()):
    """A section dataclass whose fields are ``params`` of ``estimator``.

    Each field's default is the signature's, its constraint the estimator's
    ``_parameter_constraints`` entry, its description the docstring's first sentence.

    Parameters
    ----------
    name : str
        The class name, e.g. ``'TrainConfig'``.
    estimator : type
        The estimator class (``FineTuneRepurposer`` or a subclass).
    params : sequence of str
        Its constructor parameters this section holds, in order.
    extra : sequence of (name, dataclasses.Field), default=()
        Fields of the job's own (``train.seed``) appended.

    Returns
    -------
    type
        A dataclass; its docstring lists the fields.
    """
    signature = inspect.signature(estimator.__init__).parameters
    table = estimator._parameter_constraints
    docs = parameter_docs(estimator)
    missing = [p for p in params if p not in table]
    if missing:
        raise TypeError(f"{estimator.__name__} declares no constraint for {missing}; add "
                        f"them to its _parameter_constraints.")
    fields = [(p, object, field(signature[p].default, table[p], docs.get(p, "")))
              for p in params]
    fields += [(n, object, f) for n, f in extra]
    cls = dataclasses.make_dataclass(name, fields)
    lines = [f"Job section built from :class:`{estimator.__module__}.{estimator.__name__}`'s "
             f"parameters.", "", "Parameters", "----------"]
    for f in dataclasses.fields(cls):
        lines += [f"{f.name} : {f.metadata['check'].what}, default={f.default!r}",
                  f"    {f.metadata['doc']}"]
    first = dataclasses.fields(cls)[0]
    value = list(first.default) if isinstance(first.default, tuple) else first.default
    section = name[:-len("Config")].lower()
    lines += ["", "Examples", "--------", f">>> from repurpose.jobs import {name}, read_section",
              ">>> problems = []",
              f">>> section = read_section({section!r}, {name}, {{{first.name!r}: {value!r}}}, "
              f"problems)", f">>> section.{first.name}, problems", f"({value!r}, [])"]
    cls.__doc__ = "\n".join(lines)
    cls.__module__ = "repurpose.jobs"
    return cls


# ---------------------------------------------------------------------- reading
def problems_message(name, problems):
    """One message listing every problem of a config.

    Parameters
    ----------
    name : str
        What has the problems (a file name, ``'--set'``, ``'the model section'``).
    problems : list of str
        One ``'key: what is wrong'`` sentence per problem.

    Returns
    -------
    str
        ``'<name> has <n> problem(s): <problems joined by "; ">.'``

    Examples
    --------
    >>> problems_message('job.yaml', ['train.n_epochs: must be an integer >= 1, got 0',
    ...                               'train.lr: unknown key'])
    'job.yaml has 2 problems: train.n_epochs: must be an integer >= 1, got 0; train.lr: ...'
    """
    n = len(problems)
    text = "; ".join(p.rstrip(". ") for p in problems)
    return f"{name} has {n} problem{'s' if n != 1 else ''}: {text}" + (
        "" if text.endswith(("?", "!")) else ".")


def unknown_key(where, key, known):
    """``'<where>.<key>: unknown key. Did you mean ...?'`` (habitual aliases first)."""
    alias = ALIASES.get(str(key))
    hint = f"Did you mean {alias!r}?" if alias in known else suggest(key, known)
    kind = "section" if not where else "key"
    path = f"{where}.{key}" if where else str(key)
    if hint:
        return f"{path}: unknown {kind}. {hint}"
    return f"{path}: unknown {kind} (known: {brief_list(known, 8)})"


def check_value(constraint, value, where):
    """``(normalised value, None)`` or ``(None, '<where>: must be ..., got ...')``."""
    try:
        return constraint.normalise(value), None
    except Bad as bad:
        return None, f"{where}: {bad}"
    except Problem as problem:
        hint = f". {problem.hint}" if problem.hint else ""
        return None, f"{where}: must be {constraint.what}, got {value!r}{hint}"


def read_section(section, cls, values, problems):
    """Build one section's dataclass from its raw mapping, checking every key.

    Each value goes through its field's constraint; unknown keys (with close matches), bad
    values and missing required keys are appended to ``problems`` as ``'section.key: ...'``,
    and the key keeps its default. Tuples become lists, as YAML writes them.

    Parameters
    ----------
    section : str
        The section's name in the config (``'train'``).
    cls : type
        Its dataclass (:class:`~repurpose.jobs.TrainConfig`).
    values : dict or None
        The raw mapping; None is an empty section.
    problems : list of str
        Problems are appended here.

    Returns
    -------
    object
        An instance of ``cls``.

    Examples
    --------
    >>> from repurpose.jobs import TrainConfig
    >>> problems = []
    >>> train = read_section('train', TrainConfig, {'n_epochs': 3, 'lr': 0.1}, problems)
    >>> train.n_epochs, train.step_epochs, problems
    (3, [], ["train.lr: unknown key. Did you mean 'learning_rate'?"])
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        problems.append(f"{section}: must be a mapping of keys, got {values!r}")
        values = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    obj = cls()
    for key, value in values.items():
        if key not in fields:
            problems.append(unknown_key(section, key, list(fields)))
            continue
        value, problem = check_value(fields[key].metadata["check"], value, f"{section}.{key}")
        if problem:
            problems.append(problem)
        else:
            setattr(obj, key, value)
    for key, f in fields.items():
        if f.metadata["required"] and values.get(key) is None:
            problems.append(f"{section}.{key}: missing. Give {f.metadata['doc']}")
        if isinstance(getattr(obj, key), tuple):
            setattr(obj, key, list(getattr(obj, key)))
    return obj


# ---------------------------------------------------------------------- overrides
def parse_overrides(items):
    """Parse ``['train.n_epochs=3', 'model.hidden_units=[64]']`` into ``{key: value}``.

    Values are read as YAML, so ``3`` is an int, ``null`` is None and ``[64, 32]`` a list.

    Parameters
    ----------
    items : sequence of str or None
        ``section.key=value`` items, as ``--set`` gives them (deeper keys such as
        ``tune.space.lr=...`` too); None or empty gives ``{}``.

    Returns
    -------
    dict of str -> object
        The parsed value of each dotted key, in order.

    Raises
    ------
    InvalidParameterError
        Listing every item that is not ``section.key=value``.

    Examples
    --------
    >>> parse_overrides(['train.n_epochs=3', 'run.ctx=gpu:0,1', 'model.hidden_units=[64]'])
    {'train.n_epochs': 3, 'run.ctx': 'gpu:0,1', 'model.hidden_units': [64]}
    """
    parsed, problems = {}, []
    for item in items or ():
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or "." not in key or not all(key.split(".")):
            problems.append(f"--set {item!r}: expected section.key=value, e.g. "
                            f"train.n_epochs=3")
            continue
        try:
            parsed[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            parsed[key] = text  # not YAML on its own (e.g. 'a: b'): take the text as is
    if problems:
        raise InvalidParameterError(problems_message("--set", problems))
    return parsed


def apply_overrides(raw, overrides, problems):
    """Write ``{'a.b.c': value}`` overrides into the nested mapping ``raw`` in place."""
    for key, value in overrides.items():
        parts = key.split(".")
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f"{'.'.join(parts[:depth + 1])}: --set {key} needs a mapping "
                                f"here, the config has {child!r}")
                break
            node = child
        else:
            node[parts[-1]] = value

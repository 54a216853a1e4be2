"""The API reference covers every public name, and every public docstring has its sections.

Public means listed in the ``__all__`` of a module in ``PUBLIC_MODULES``. The docs build
(``sphinx-build -W`` in ``.ci/run``) renders what these tests check exists. Both tests run on
the docstrings as Python holds them: no Sphinx or numpydoc needed.
"""
import ast
import importlib
import inspect
import pathlib
import re
import textwrap

import pytest

DOCS_API = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api"

# The top-level package last: a name it re-exports is reported under its defining module.
PUBLIC_MODULES = (
    "repurpose.source", "repurpose.features", "repurpose.heads",
    "repurpose.repurposers", "repurpose.bayes", "repurpose.bo", "repurpose.metrics",
    "repurpose.persist", "repurpose.data", "repurpose.data.transforms", "repurpose.zoo",
    "repurpose.jobs", "repurpose.plots", "repurpose.exceptions", "repurpose.context",
    "repurpose.seeding", "repurpose.cli", "repurpose.demo", "repurpose",
)

# Docstring sections still missing, by public name: the remaining documentation work. The test
# fails on a gap not listed here (so nothing new goes in undocumented) and on an entry that is
# no longer a gap (so the list only shrinks): delete the entry when you add the section.
KNOWN_GAPS = {}


def _public_objects():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        assert hasattr(module, "__all__"), f"{module_name} has no __all__"
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


def _documented_objects():
    """The objects named by the autosummary and data directives of ``docs/api/*.rst``."""
    found = []
    for page in sorted(DOCS_API.glob("*.rst")):
        current = None
        in_autosummary = False
        for line in page.read_text().splitlines():
            if m := re.match(r"\.\. (?:currentmodule|automodule|module):: (\S+)", line):
                current = m.group(1)
            if m := re.match(r"\.\. data:: (\S+)", line):
                found.append(m.group(1))
            if line.startswith(".. autosummary::"):
                in_autosummary = True
            elif in_autosummary and line and not line.startswith(" "):
                in_autosummary = False
            elif in_autosummary and re.match(r"   [~\w]", line):
                entry = line.strip().lstrip("~")
                found.append(f"{current}.{entry}" if current else entry)
    return found


def _resolve(dotted):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_api_reference_lists_every_public_name():
    documented = _documented_objects()
    assert documented, f"no autosummary entries found under {DOCS_API}"
    documented_ids = {id(_resolve(dotted)) for dotted in documented}
    missing = []
    for module_name, name, obj in _public_objects():
        dotted = f"{module_name}.{name}"
        if inspect.ismodule(obj) or dotted in documented:
            continue
        # A class or function may be documented under the module that defines it publicly.
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) not in documented_ids:
            missing.append(dotted)
    assert not missing, f"public names missing from docs/api/*.rst: {missing}"


def _sections(doc):
    return set(re.findall(r"^(\w[\w ]*)\n-{3,}$", doc, re.M))


def _has_parameters(obj):
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return any(p.kind not in kinds for name, p in signature.parameters.items()
               if name not in ("self", "cls"))


def _returns_value(func):
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False
    tree = ast.parse(source).body[0]
    nested = {id(n) for node in ast.walk(tree) if node is not tree
              and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
              for n in ast.walk(node)}
    return any(id(node) not in nested and (
        isinstance(node, (ast.Yield, ast.YieldFrom))
        or isinstance(node, ast.Return) and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None))
        for node in ast.walk(tree))


def docstring_gaps(obj):
    """The numpydoc sections ``obj``'s own docstring lacks (STYLE.md section 7)."""
    doc = obj.__doc__ and inspect.cleandoc(obj.__doc__)
    if not doc:
        return ["docstring"]
    sections = _sections(doc)
    missing = []
    if _has_parameters(obj) and "Parameters" not in sections:
        missing.append("Parameters")
    if (inspect.isfunction(obj) and _returns_value(obj)
            and not sections & {"Returns", "Yields"}):
        missing.append("Returns")
    if "Examples" not in sections:
        missing.append("Examples")
    return missing


def _callables():
    seen = set()
    for module_name, name, obj in _public_objects():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) not in seen:
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj


def test_public_docstrings_have_their_sections():
    gaps = {name: docstring_gaps(obj) for name, obj in _callables()}
    gaps = {name: missing for name, missing in gaps.items() if missing}
    new = {name: missing for name, missing in gaps.items()
           if not set(missing) <= set(KNOWN_GAPS.get(name, ()))}
    assert not new, f"public docstrings missing numpydoc sections: {new}"
    fixed = {name: sorted(set(missing) - set(gaps.get(name, ())))
             for name, missing in KNOWN_GAPS.items() if set(missing) - set(gaps.get(name, ()))}
    assert not fixed, f"no longer missing, delete from KNOWN_GAPS in {__file__}: {fixed}"


@pytest.mark.parametrize("doc, obj_missing", [
    ("Summary.\n\nExamples\n--------\n>>> 1\n1", []),
    ("Summary.", ["Examples"]),
])
def test_docstring_gaps_reads_sections(doc, obj_missing):
    def f():
        pass
    f.__doc__ = doc
    assert docstring_gaps(f) == obj_missing


def test_docstring_gaps_wants_parameters_and_returns():
    def f(x):
        """Summary."""
        return x
    assert docstring_gaps(f) == ["Parameters", "Returns", "Examples"]

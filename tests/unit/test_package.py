"""Package-wide checks: imports point one way, doctests pass, no pickle, no print; the
distribution's name and the install hints."""
import ast
import doctest
import importlib
import importlib.metadata
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

import repurpose

PACKAGE_DIR = pathlib.Path(repurpose.__file__).parent

# Lower ranks may not import higher ones (STYLE.md §1): data flows source -> features -> heads.
RANKS = {
    "exceptions": 0, "_version": 0, "_dask": 0, "_validation": 0, "_progress": 0, "context": 0,
    "_gpy": 0, "plots": 1,
    "seeding": 0, "persist": 0, "zoo": 0, "model_zoo": 0, "bo": 0, "metrics": 0,
    "data": 1, "source": 2, "features": 3, "heads": 4, "bayes": 4, "repurposers": 5,
    "jobs": 5, "demo": 5, "cli": 6,
}
# Upward imports that are allowed: none (SourceModel.extract moved to features).
ALLOWED = set()


def _modules():
    return sorted(m.name for m in pkgutil.walk_packages(repurpose.__path__, "repurpose.")
                  if not m.name.endswith("__main__"))  # importing __main__ runs the program


def _top(module_name):
    parts = module_name.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path, module_name):
    tree = ast.parse(path.read_text())
    package = module_name if path.name == "__init__.py" else module_name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
            yield from names
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


@pytest.mark.parametrize("module_name", _modules())
def test_imports_point_one_way(module_name):
    spec = importlib.util.find_spec(module_name)
    path = pathlib.Path(spec.origin)
    src = _top(module_name)
    if src not in RANKS:
        pytest.fail(f"{module_name}: top-level part {src!r} has no rank in RANKS")
    for target in _imports(path, module_name):
        if not target.startswith("repurpose.") or _top(target) == src:
            continue
        dst = _top(target)
        assert dst in RANKS, f"{module_name} imports {target}, which has no rank"
        if RANKS[dst] > RANKS[src]:
            assert (src, dst) in ALLOWED, f"{module_name} imports {target}: an upward import"


def _module_graph():
    """``{module: {modules it imports, anywhere in the file}}`` and every private name
    imported from another top-level package, as ``'importer <- module.name'``."""
    modules = set(_modules())

    def resolve(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges, private = {m: set() for m in modules}, []
    for module_name in modules:
        path = pathlib.Path(importlib.util.find_spec(module_name).origin)
        package = module_name if path.name == "__init__.py" else module_name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if not base.startswith("repurpose"):
                    continue
                for alias in node.names:
                    target = resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}" in \
                        modules else resolve(base)
                    if target and target != module_name:
                        edges[module_name].add(target)
                    private_name = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private_name and target and _top(target) != _top(module_name):
                        private.append(f"{module_name} <- {base}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    target = resolve(alias.name) if alias.name.startswith("repurpose") else None
                    if target and target != module_name:
                        edges[module_name].add(target)
    return edges, private


def test_no_import_circles_between_any_modules():
    # Inside packages too: the modules of a package import each other one way, and no
    # function-level import hides a circle (the graph counts imports anywhere in a file).
    edges, _ = _module_graph()
    state, circles = {}, []

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"
    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, f"import circles: {circles[:3]}"


def test_no_private_names_imported_from_another_package():
    _, private = _module_graph()
    assert not private, f"private names imported across packages: {private}"


@pytest.mark.parametrize("module_name", _modules())
def test_doctests(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module_name}"


def test_no_pickle_and_no_print_in_library():
    for path in PACKAGE_DIR.rglob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "cloudpickle", "dill"} & set(names), path
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print"):
                assert "cli" in path.parts or path.parent.name == "scripts", \
                    f"print() in library code: {path}:{node.lineno}"


def test_public_names():
    assert set(repurpose.__all__) >= {"SourceModel", "list_models"}
    for name in repurpose.__all__:
        assert getattr(repurpose, name) is not None


def test_library_installs_no_logging_handlers():
    import logging

    assert logging.getLogger("repurpose").handlers == []
    assert not any(isinstance(h, logging.StreamHandler) and h.stream is not None
                   for h in logging.getLogger().handlers
                   if type(h).__module__.startswith("repurpose"))


# What tqdm.autonotebook looks at to decide it runs in a Jupyter kernel, faked in a fresh
# interpreter; then the IProgress warnings that importing each module emits.
_IN_JUPYTER_KERNEL = """
import sys, types, warnings
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
ipython = sys.modules["IPython"] = types.ModuleType("IPython")
shell = type("ZMQInteractiveShell", (), {})()
ipython.get_ipython = lambda: shell
for module in ("repurpose", "tqdm.auto"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        __import__(module)
    print(sum("IProgress" in str(w.message) for w in caught))
"""


def test_progress_bars_do_not_warn_in_a_notebook_without_ipywidgets():
    out = subprocess.run([sys.executable, "-c", _IN_JUPYTER_KERNEL], capture_output=True,
                         text=True, check=True).stdout.split()
    has_widgets = importlib.util.find_spec("ipywidgets") is not None
    # tqdm.auto itself warns without ipywidgets (the fake kernel works); repurpose does not.
    assert out == ["0", "0" if has_widgets else "1"]


# The name `repurpose` on the public package index is another project (which also imports as
# `repurpose`): this one is the distribution `repurpose-mxnet`, installed from a checkout.
DISTRIBUTION = "repurpose-mxnet"
REPO_DIR = pathlib.Path(__file__).resolve().parents[2]  # the checkout these tests are in
# A pip command that names the bare `repurpose` (with or without extras or a version), and
# any `'repurpose[extra]'` requirement. `.venv/bin/repurpose` and `repurpose-mxnet` are fine.
_BAD_HINTS = re.compile(r"pip3? install[^\n`&;|]*?(?<![\w./-])[\'\"]?repurpose(?![\w-])"
                        r"|[\'\"]repurpose\[")


def test_installed_distribution_is_repurpose_mxnet():
    try:
        meta = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{DISTRIBUTION} is not installed in this interpreter: install the "
                    f"checkout (pip install -c constraints.txt -e .) so its metadata is there.")
    assert meta["Name"] == DISTRIBUTION
    assert meta["Version"] == repurpose.__version__
    # The `repurpose` command comes from this distribution.
    scripts = {ep.dist.name: ep.value for ep in
               importlib.metadata.entry_points(group="console_scripts", name="repurpose")}
    assert scripts == {DISTRIBUTION: "repurpose.cli:main"}


def _hint_files():
    yield REPO_DIR / "README.md"
    for folder in ("repurpose", "demos", "docs"):
        for path in sorted((REPO_DIR / folder).rglob("*")):
            rel = path.relative_to(REPO_DIR).parts
            # Build products: docs/_build and docs/demos (a copy of demos/, checked there).
            if rel[:2] in (("docs", "_build"), ("docs", "demos")) or "__pycache__" in rel:
                continue
            if path.suffix in (".py", ".md", ".rst", ".ipynb", ".txt", ".yaml", ".yml"):
                yield path


def test_no_install_hint_names_the_other_projects_package():
    bad = [f"{path.relative_to(REPO_DIR)}:{text.count(chr(10), 0, m.start()) + 1}: "
           f"{m.group(0)!r}"
           for path in _hint_files()
           for text in [path.read_text(encoding="utf-8")]
           for m in _BAD_HINTS.finditer(text)]
    assert not bad, ("these tell users to install `repurpose` from the package index, which is "
                     "another project; write pip install -c constraints.txt '.[x]' (from a "
                     "checkout of repurpose-mxnet):\n" + "\n".join(bad))


@pytest.mark.parametrize("hint, bad", [
    ("pip install 'repurpose[dask]'", True), ("pip install repurpose[onnx]", True),
    ("pip install -U repurpose", True), ("pip install repurpose==0.1.0", True),
    ("requires 'repurpose[onnx]'", True),
    ("pip install -c constraints.txt '.[dask]'", False),
    ("pip install -c constraints.txt . && .venv/bin/repurpose demo", False),
    ("pip install repurpose-mxnet", False), ("pip install . && repurpose demo", False),
])
def test_install_hint_pattern(hint, bad):
    assert bool(_BAD_HINTS.search(hint)) is bad

"""The explicit class registry used by :func:`repurpose.load`: a saved file names its class,
and only classes registered here can be built from a file (never a string imported blindly).
"""
import importlib

from .._validation import brief_list, suggest

__all__ = ["register", "registered_class", "registered_names"]

_REGISTRY = {}
#: The packages whose import registers the built-in estimators (and SourceModel). They sit
#: above persist, so they are imported by name when a file is first read, not at the top.
BUILT_IN = ("repurpose.source", "repurpose.heads", "repurpose.repurposers")


def import_built_in():
    """Import :data:`BUILT_IN`, so that every built-in class is registered."""
    for package in BUILT_IN:
        importlib.import_module(package)


def register(cls):
    """Class decorator: make ``cls`` loadable by :func:`repurpose.load` under its name.

    Parameters
    ----------
    cls : type
        A class with ``_get_state`` / ``_set_state``; its ``__name__`` is written to files.

    Returns
    -------
    type
        ``cls`` itself, so this works as a decorator.

    Raises
    ------
    ValueError
        If another class is already registered under the same name.

    Examples
    --------
    >>> from repurpose.heads import LogisticHead
    >>> register(LogisticHead) is LogisticHead  # registering a class again changes nothing
    True
    """
    name = cls.__name__
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"Two saveable classes are named {name!r}; names must be unique.")
    _REGISTRY[name] = cls
    return cls


def registered_names():
    """Return the names of every saveable class, sorted.

    Returns
    -------
    list of str
        Class names that :func:`repurpose.load` can build.

    Examples
    --------
    >>> import repurpose
    >>> "LogisticHead" in registered_names()
    True
    """
    import_built_in()
    return sorted(_REGISTRY)


def registered_class(name, where):
    """Return the class registered as ``name``; ``where`` names the file for the error.

    Parameters
    ----------
    name : str
        A class name read from a file.
    where : str
        The file it was read from, for the error message.

    Returns
    -------
    type
        The registered class.

    Raises
    ------
    ValueError
        If no class is registered as ``name`` (the message lists close matches).

    Examples
    --------
    >>> registered_class("LogisticHead", "manifest.json").__name__
    'LogisticHead'
    """
    if name not in _REGISTRY:
        import_built_in()
    if name not in _REGISTRY:
        hint = suggest(name, list(_REGISTRY))
        raise ValueError(
            f"{where} holds a {name!r}, which this version of repurpose cannot load "
            f"(known: {brief_list(registered_names())}). {hint}".rstrip())
    return _REGISTRY[name]

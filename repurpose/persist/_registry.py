"""The explicit class registry used by :func:`repurpose.load`: a saved file names its class,
and only classes registered here can be built from a file (never a string imported blindly).
"""
from .._validation import brief_list, suggest

__all__ = ["register", "registered_class", "registered_names"]

_REGISTRY = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by :func:`repurpose.load` under its name."""
    name = cls.__name__
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"Two saveable classes are named {name!r}; names must be unique.")
    _REGISTRY[name] = cls
    return cls


def registered_names():
    """Return the names of every saveable class, sorted."""
    return sorted(_REGISTRY)


def registered_class(name, where):
    """Return the class registered as ``name``; ``where`` names the file for the error."""
    if name not in _REGISTRY:
        hint = suggest(name, list(_REGISTRY))
        raise ValueError(
            f"{where} holds a {name!r}, which this version of repurpose cannot load "
            f"(known: {brief_list(registered_names())}). {hint}".rstrip())
    return _REGISTRY[name]

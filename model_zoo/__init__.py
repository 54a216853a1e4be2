"""The project's model zoo, installed as ``repurpose.model_zoo``.

Each sub-folder holds one model: ``<name>-symbol.json``, ``<name>-0000.params`` and
``model_card.json`` (input shape, normalisation, class names, classifier and feature layers,
source accuracy, SHA-256 of both files); ``scripts/`` holds the seeded scripts that trained
them. This package only re-exports the registry functions of :mod:`repurpose.zoo`, which
finds these files with ``importlib.resources``.
"""
from ..zoo import get_model_card, list_models

__all__ = ["list_models", "get_model_card"]

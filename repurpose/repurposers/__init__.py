"""Repurposers: source-model features composed with a head (and, later, fine-tuning)."""
from ._base import BaseRepurposer
from ._heads import GpRepurposer, LogisticRepurposer, SvmRepurposer

__all__ = ["BaseRepurposer", "LogisticRepurposer", "SvmRepurposer", "GpRepurposer"]

"""Repurposers: source-model features composed with a head, or the source network fine-tuned."""
from ._base import BaseRepurposer
from ._finetune import FineTuneRepurposer, RandomFreezeRepurposer
from ._heads import BnnRepurposer, GpRepurposer, LogisticRepurposer, SvmRepurposer
from ._schedules import learning_rate_at

__all__ = ["BaseRepurposer", "LogisticRepurposer", "SvmRepurposer", "GpRepurposer",
           "BnnRepurposer", "FineTuneRepurposer", "RandomFreezeRepurposer", "learning_rate_at"]

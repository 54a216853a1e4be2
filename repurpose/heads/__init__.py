"""Heads: scikit-learn classifiers on feature arrays, with calibrated probabilities."""
from ._base import BaseHead
from ._bnn import BnnHead
from ._logistic import LogisticHead
from ._gp import GpHead
from ._svm import SvmHead

__all__ = ["BaseHead", "LogisticHead", "SvmHead", "GpHead", "BnnHead"]

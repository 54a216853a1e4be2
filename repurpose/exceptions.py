"""Exception classes of ``repurpose``.

Each class also subclasses the builtin that a plain ``except`` clause would use for the same
mistake, so ``except ValueError`` keeps working for callers who do not know our names.
"""
from sklearn.exceptions import NotFittedError

__all__ = [
    "RepurposeError",
    "InvalidParameterError",
    "UnknownLayerError",
    "DataError",
    "ModelFileError",
    "MissingWeightsError",
    "ContextError",
    "UnsupportedOperatorError",
    "HardwareNotSupportedError",
    "CapabilityError",
    "NotFittedError",
]


class RepurposeError(Exception):
    """Base class of every error raised by ``repurpose`` itself."""


class InvalidParameterError(RepurposeError, ValueError, TypeError):
    """A parameter has a value or type we cannot use."""


class UnknownLayerError(RepurposeError, KeyError, ValueError):
    """A layer name that the model does not have.

    The message lists the closest names the model does have.
    """

    def __str__(self):  # KeyError quotes its message; show it as a sentence instead.
        return str(self.args[0]) if self.args else ""


class DataError(RepurposeError, ValueError):
    """Input data of the wrong shape, dtype or content (empty, NaN, inf)."""


class ModelFileError(RepurposeError, ValueError):
    """A model file that is missing, corrupted or does not fit its companion file."""


class MissingWeightsError(ModelFileError, FileNotFoundError):
    """Pretrained weights that are not on disk (``repurpose`` never downloads)."""


class ContextError(RepurposeError, ValueError):
    """A device context that cannot be parsed or is not present on this machine."""


class UnsupportedOperatorError(ModelFileError):
    """An operator (or opset) in an imported model that MXNet cannot run."""


class HardwareNotSupportedError(RepurposeError, RuntimeError):
    """The requested precision needs CPU or GPU features this machine does not have."""


class CapabilityError(RepurposeError, TypeError):
    """A component was asked for something it does not offer (check its flag first), e.g.
    a closed-form KL divergence from a prior that has none."""

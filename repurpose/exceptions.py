"""Exception classes of ``repurpose``.

Each class also subclasses the builtin that a plain ``except`` clause would use for the same
mistake, so ``except ValueError`` keeps working for callers who do not know our names.
"""
__all__ = [
    "RepurposeError",
    "InvalidParameterError",
    "UnknownLayerError",
    "DataError",
    "ModelFileError",
    "MissingWeightsError",
    "DownloadError",
    "ContextError",
    "UnsupportedOperatorError",
    "HardwareNotSupportedError",
    "CapabilityError",
    "StoreMismatchError",
    "ClusterError",
    "LockedError",
    "DiskFullError",
    "NotFittedError",
]


class RepurposeError(Exception):
    """Base class of every error raised by ``repurpose`` itself.

    Examples
    --------
    >>> from repurpose.exceptions import RepurposeError
    >>> try:
    ...     raise RepurposeError("Something went wrong.")
    ... except Exception as err:
    ...     print(type(err).__name__, err)
    RepurposeError Something went wrong.
    """


class InvalidParameterError(RepurposeError, ValueError, TypeError):
    """A parameter has a value or type we cannot use.

    Examples
    --------
    >>> from repurpose.exceptions import InvalidParameterError
    >>> try:
    ...     raise InvalidParameterError("n_bins must be a positive int, got 0.")
    ... except ValueError as err:
    ...     print(type(err).__name__, err)
    InvalidParameterError n_bins must be a positive int, got 0.
    """


class UnknownLayerError(RepurposeError, KeyError, ValueError):
    """A layer name that the model does not have.

    The message lists the closest names the model does have.

    Examples
    --------
    >>> from repurpose.exceptions import UnknownLayerError
    >>> try:
    ...     raise UnknownLayerError("Unknown layer 'relu9'. Did you mean 'relu3_fwd'?")
    ... except KeyError as err:
    ...     print(type(err).__name__, err)
    UnknownLayerError Unknown layer 'relu9'. Did you mean 'relu3_fwd'?
    """

    def __str__(self):  # KeyError quotes its message; show it as a sentence instead.
        return str(self.args[0]) if self.args else ""


class DataError(RepurposeError, ValueError):
    """Input data of the wrong shape, dtype or content (empty, NaN, inf).

    Examples
    --------
    >>> from repurpose.exceptions import DataError
    >>> try:
    ...     raise DataError("X contains NaN.")
    ... except ValueError as err:
    ...     print(type(err).__name__, err)
    DataError X contains NaN.
    """


class ModelFileError(RepurposeError, ValueError):
    """A model file that is missing, corrupted or does not fit its companion file.

    Examples
    --------
    >>> from repurpose.exceptions import ModelFileError
    >>> try:
    ...     raise ModelFileError("manifest.json is not valid JSON.")
    ... except ValueError as err:
    ...     print(type(err).__name__, err)
    ModelFileError manifest.json is not valid JSON.
    """


class MissingWeightsError(ModelFileError, FileNotFoundError):
    """Pretrained weights that are not on disk (fetched only on request: ``download=True``).

    Examples
    --------
    >>> from repurpose.exceptions import MissingWeightsError
    >>> try:
    ...     raise MissingWeightsError("Weights for 'resnet18_v1' not found.")
    ... except FileNotFoundError as err:
    ...     print(type(err).__name__, err)
    MissingWeightsError Weights for 'resnet18_v1' not found.
    """


class DownloadError(RepurposeError, OSError):
    """A download that failed; nothing of it is left in the cache folder.

    No connection, an HTTP error, a transfer that broke off, or a file whose checksum is
    wrong; the message names the URL and the file to place by hand. Also an ``OSError``,
    the class of network and file errors (``requests``' errors, too).

    Examples
    --------
    >>> from repurpose.exceptions import DownloadError
    >>> try:
    ...     raise DownloadError("Could not download https://example.org/w.zip: Connection refused.")
    ... except OSError as err:
    ...     print(type(err).__name__, err)
    DownloadError Could not download https://example.org/w.zip: Connection refused.
    """


class ContextError(RepurposeError, ValueError):
    """A device context that cannot be parsed or is not present on this machine.

    Examples
    --------
    >>> from repurpose.exceptions import ContextError
    >>> try:
    ...     raise ContextError("gpu:3 requested, but 1 GPU found.")
    ... except ValueError as err:
    ...     print(type(err).__name__, err)
    ContextError gpu:3 requested, but 1 GPU found.
    """


class UnsupportedOperatorError(ModelFileError):
    """An operator (or opset) in an imported model that MXNet cannot run.

    Examples
    --------
    >>> from repurpose.exceptions import UnsupportedOperatorError
    >>> try:
    ...     raise UnsupportedOperatorError("ONNX operator 'Foo' is not supported.")
    ... except ValueError as err:
    ...     print(type(err).__name__, err)
    UnsupportedOperatorError ONNX operator 'Foo' is not supported.
    """


class HardwareNotSupportedError(RepurposeError, RuntimeError):
    """The requested precision needs CPU or GPU features this machine does not have.

    Examples
    --------
    >>> from repurpose.exceptions import HardwareNotSupportedError
    >>> try:
    ...     raise HardwareNotSupportedError("int8 needs AVX-512 VNNI.")
    ... except RuntimeError as err:
    ...     print(type(err).__name__, err)
    HardwareNotSupportedError int8 needs AVX-512 VNNI.
    """


class CapabilityError(RepurposeError, TypeError):
    """A component was asked for something it does not offer (check its flag first), e.g.
    a closed-form KL divergence from a prior that has none.

    Examples
    --------
    >>> from repurpose.exceptions import CapabilityError
    >>> try:
    ...     raise CapabilityError("LaplacePrior has no closed-form KL.")
    ... except TypeError as err:
    ...     print(type(err).__name__, err)
    CapabilityError LaplacePrior has no closed-form KL.
    """


class StoreMismatchError(RepurposeError, ValueError):
    """An existing feature store was written for another model, layer set or input, or is
    unfinished or damaged.

    Examples
    --------
    >>> from repurpose.exceptions import StoreMismatchError
    >>> try:
    ...     raise StoreMismatchError("Store 'f' holds layers ['a'], not ['b'].")
    ... except ValueError as err:
    ...     print(type(err).__name__, err)
    StoreMismatchError Store 'f' holds layers ['a'], not ['b'].
    """


class ClusterError(RepurposeError, ConnectionError, RuntimeError):
    """A Dask scheduler that does not answer, or workers that cannot run repurpose.

    Also a ``ConnectionError`` (an unreachable scheduler) and a ``RuntimeError`` (workers
    without repurpose or with another version), so either ``except`` clause catches it.

    Examples
    --------
    >>> from repurpose.exceptions import ClusterError
    >>> try:
    ...     raise ClusterError("No Dask scheduler answered at 'tcp://10.0.0.1:8786'.")
    ... except ConnectionError as err:
    ...     print(type(err).__name__, err)
    ClusterError No Dask scheduler answered at 'tcp://10.0.0.1:8786'.
    """


class LockedError(RepurposeError, RuntimeError):
    """A journal, job folder, feature store or checkpoint folder that another process is
    writing; the message names the holder (process, host, since when).

    Examples
    --------
    >>> from repurpose.exceptions import LockedError
    >>> try:
    ...     raise LockedError("The job folder 'out' is in use by process 12 on host-a.")
    ... except RuntimeError as err:
    ...     print(type(err).__name__, err)
    LockedError The job folder 'out' is in use by process 12 on host-a.
    """


class DiskFullError(RepurposeError, OSError):
    """A write the file system had no room for (disk full, over quota, over the file-size
    limit); the message names the file, the free space left and what to do.

    An ``OSError`` with the original ``errno`` (``ENOSPC`` when the writer, e.g. MXNet's,
    gave none), so ``except OSError`` catches it as it caught the original. Raised by
    :func:`repurpose.persist.explain_full_disk` around every write of the toolkit.

    Parameters
    ----------
    code : int
        The ``errno``.
    path : str
        What was being written, as the message names it.
    reason : str
        Why the write failed (``'File too large'``, ``'No space left on device'``, ...).
    free : str
        The free space left in the folder of ``path``, in words (``'1.2 GiB'``).
    hint : str, optional
        What else to say (e.g. that the previous checkpoint is kept).

    Examples
    --------
    >>> import errno
    >>> from repurpose.exceptions import DiskFullError
    >>> try:
    ...     raise DiskFullError(errno.ENOSPC, "out/model", "No space left on device", "0 bytes")
    ... except OSError as err:
    ...     print(type(err).__name__, err.errno == errno.ENOSPC, err.path)
    DiskFullError True out/model
    """

    def __init__(self, code, path, reason, free, hint=None):
        message = (f"Not enough room to write {path!r}: {reason}; {free} free there. Free "
                   f"some space (or raise the quota or file-size limit), or write to another "
                   f"folder or disk, and run again.")
        super().__init__(code, message + (f" {hint}" if hint else ""))
        self.path, self.reason, self.free, self.hint = path, reason, free, hint

    def __reduce__(self):  # pickled back from a Dask worker as it was raised
        return type(self), (self.errno, self.path, self.reason, self.free, self.hint)


def __getattr__(name):
    # scikit-learn's NotFittedError, re-exported on first use: importing this module (as the
    # command line does first) must not load scikit-learn.
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    raise AttributeError(f"module 'repurpose.exceptions' has no attribute {name!r}")

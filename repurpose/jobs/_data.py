"""A job's data in memory: the ``data`` section loaded and checked before any training."""
import numpy as np

from .._validation import brief_list
from ..data import ImageFolder, load_builtin
from ..exceptions import DataError

__all__ = ["load_job_data", "check_splits", "image_folder", "JobData"]

SPLITS = ("train", "validation", "test")


class JobData(dict):
    """``{'train': (X, y) or None, 'validation': ..., 'test': ...}`` as
    :func:`load_job_data` reads them, with what was left out on the way.

    Attributes
    ----------
    skipped : dict of str -> str
        Damaged image files left out (``data.on_damaged: skip``), each with the reason,
        over all splits; for the job's summary.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped = {}


def _load_npy(spec, where):
    arrays = []
    for key in ("X", "y"):
        try:
            arrays.append(np.load(spec[key], allow_pickle=False))
        except (OSError, ValueError) as err:
            raise DataError(f"{where}.{key}: cannot read {spec[key]!r} as a .npy array "
                            f"({err}).") from err
    X, y = arrays
    if len(X) != len(y):
        raise DataError(f"{where}: X ({spec['X']}) has {len(X)} samples but y ({spec['y']}) "
                        f"has {len(y)}. Give one label per sample.")
    if X.ndim < 2:
        raise DataError(f"{where}.X: expected an array of samples (n, ...), got shape "
                        f"{X.shape}.")
    return X, y


def load_job_data(data):
    """Load the ``data`` section into memory.

    Parameters
    ----------
    data : DataConfig
        A validated section (``kind`` resolved).

    Returns
    -------
    JobData
        A dict: ``'train'``, ``'validation'``, ``'test'``, each ``(X, y)`` or None; its
        ``skipped`` attribute names the damaged images left out (``data.on_damaged:
        skip``).

    Raises
    ------
    DataError
        For unreadable files, X/y of different lengths, images of different sizes, damaged
        images (``data.on_damaged: error``, naming them), or more ``n_per_class`` than a
        class has.

    Examples
    --------
    >>> from repurpose.jobs import config_from_dict
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'shifted_digits', 'classes': [5, 6, 7, 8, 9],
    ...                                  'n_per_class': 10},
    ...                         'run': {'output_dir': '/out'}})
    >>> loaded = load_job_data(job.data)
    >>> loaded['train'][0].shape, loaded['validation'], len(loaded['test'][1])
    ((50, 1, 8, 8), None, 846)
    >>> loaded.skipped
    {}
    """
    loaded = JobData.fromkeys(SPLITS)
    if data.kind == "builtin":
        X, y = load_builtin(data.train, classes=data.classes, max_shift=data.max_shift,
                            random_state=data.seed)
        if data.n_per_class is None:
            loaded["train"] = (X, y)
            return loaded
        # The same draw as repurpose.demo.make_demo_task (tested to match).
        rng = np.random.RandomState(data.seed)
        picks = []
        for c in np.unique(y):
            members = np.flatnonzero(y == c)
            if len(members) <= data.n_per_class:
                raise DataError(f"data.n_per_class={data.n_per_class}, but class {c} of "
                                f"{data.train!r} has only {len(members)} images. Use fewer.")
            picks.append(rng.permutation(members)[:data.n_per_class])
        train = np.concatenate(picks)
        test = np.setdiff1d(np.arange(len(y)), train)
        loaded["train"] = (X[train], y[train])
        loaded["test"] = (X[test], y[test])
        return loaded
    for split in loaded:
        spec = getattr(data, split)
        if spec is None:
            continue
        if data.kind == "npy":
            loaded[split] = _load_npy(spec, f"data.{split}")
        else:
            folder = image_folder(data, spec)
            loaded[split] = folder.to_arrays(hint="data.resize and data.crop")
            loaded.skipped.update(folder.skipped)
    return loaded


def image_folder(data, path):
    """The :class:`~repurpose.data.ImageFolder` at ``path`` with ``data``'s transforms."""
    def size(value):
        return tuple(value) if isinstance(value, list) else value
    return ImageFolder(path, resize=size(data.resize), crop=size(data.crop),
                       normalize=data.normalize, grayscale=data.grayscale,
                       on_damaged=data.on_damaged)


def check_splits(data):
    """Finite inputs; train has 2+ classes; validation and test have train's sample shape
    and no class train lacks.

    Parameters
    ----------
    data : dict
        What :func:`load_job_data` returns.

    Raises
    ------
    DataError
        Naming the split and what to change.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((4, 1, 8, 8), np.float32)
    >>> check_splits({'train': (X, np.array([0, 1, 0, 1])), 'validation': None,
    ...               'test': (X, np.array([0, 1, 2, 2]))})
    Traceback (most recent call last):
    ...
    repurpose.exceptions.DataError: data.test has classes that data.train lacks: 2 (train ...
    """
    for split in SPLITS:
        pair = data[split]
        if pair is not None and pair[0].dtype.kind in "fc" and not np.isfinite(pair[0]).all():
            raise DataError(f"data.{split} holds NaN or inf values. Remove or impute them.")
    X, y = data["train"]
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"data.train has 1 class ({classes[0]!r}); fine-tuning needs at "
                        f"least 2 classes.")
    for split in ("validation", "test"):
        if data[split] is None:
            continue
        X_other, y_other = data[split]
        if X_other.shape[1:] != X.shape[1:]:
            raise DataError(f"data.{split} samples have shape {X_other.shape[1:]}, but "
                            f"data.train samples have {X.shape[1:]}. Give both the same "
                            f"shape (image folders: data.resize and data.crop).")
        unseen = np.setdiff1d(np.unique(y_other), classes)
        if len(unseen):
            raise DataError(f"data.{split} has classes that data.train lacks: "
                            f"{brief_list(unseen.tolist())} (train has "
                            f"{brief_list(classes.tolist())}). A fine-tuned model only "
                            f"predicts classes it was trained on.")


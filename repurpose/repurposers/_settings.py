"""The training settings: the choices the trainer accepts and :class:`TrainSettings`.

:class:`TrainSettings` is what :func:`~repurpose.repurposers._training.train_network` takes
instead of a dict, so a misspelt setting fails where it is built, not in the middle of a
run. Each field is named like the fine-tuning repurposers' parameter it comes from, and the
repurposer fills it by those names (:meth:`TrainSettings.from_estimator`): a parameter added
to the repurposer and here needs no third edit.
"""
import dataclasses
from typing import Optional, Tuple, Union

from ._schedules import learning_rate_at

__all__ = ["OPTIMIZERS", "LR_SCHEDULES", "MONITORS", "AUGMENTATIONS", "TrainSettings"]

#: Optimizer names accepted by ``optimizer=``.
OPTIMIZERS = ("sgd", "nag", "adam", "rmsprop", "adagrad")
#: Learning-rate schedules accepted by ``lr_schedule=``.
LR_SCHEDULES = ("constant", "step", "cosine")
#: Quantities early stopping can watch, and whether larger is better.
MONITORS = {"val_loss": False, "val_accuracy": True, "train_loss": False,
            "train_accuracy": True}
#: Values of ``augment=`` (True means 'shift').
AUGMENTATIONS = (False, True, None, "shift", "flip", "shift+flip")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How the training loop trains: the fine-tuning parameters of the same names, and ``seed``.

    The values are taken as the repurposer's constraint table checked them; building the
    settings converts the numbers and flags to the field's type (``int``, ``float``,
    ``bool``, a tuple of ints), so the loop computes with exactly these values.

    Parameters
    ----------
    optimizer : {'sgd', 'nag', 'adam', 'rmsprop', 'adagrad'}
    learning_rate, momentum, weight_decay, transferred_lr_mult : float
    lr_schedule : {'constant', 'step', 'cosine'}
    warmup_epochs : int
    step_epochs : tuple of int
    step_factor : float
    n_epochs, batch_size : int
    early_stopping : bool
    patience : int
    monitor : {'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy'}
    augment : {False, True, None, 'shift', 'flip', 'shift+flip'}
    seed : int
        Seeds every epoch's shuffle, augmentation and dropout (with the epoch number).

    Examples
    --------
    >>> class Estimator:
    ...     optimizer, learning_rate, momentum, weight_decay = 'sgd', 0.1, 0.9, 0
    ...     transferred_lr_mult, lr_schedule, warmup_epochs, step_epochs = 1, 'step', 0, [2]
    ...     step_factor, n_epochs, batch_size, early_stopping = 0.5, 3, 8, False
    ...     patience, monitor, augment = 2, 'train_loss', True
    >>> settings = TrainSettings.from_estimator(Estimator(), seed=7)
    >>> settings.step_epochs, settings.weight_decay, settings.augmentation
    ((2,), 0.0, 'shift')
    >>> [settings.learning_rate_at(e) for e in range(3)]
    [0.1, 0.05, 0.05]
    >>> TrainSettings(**dict(dataclasses.asdict(settings), n_epoch=3))
    Traceback (most recent call last):
    ...
    TypeError: TrainSettings.__init__() got an unexpected keyword argument 'n_epoch'
    """

    optimizer: str
    learning_rate: float
    momentum: float
    weight_decay: float
    transferred_lr_mult: float
    lr_schedule: str
    warmup_epochs: int
    step_epochs: Tuple[int, ...]
    step_factor: float
    n_epochs: int
    batch_size: int
    early_stopping: bool
    patience: int
    monitor: str
    augment: Union[bool, str, None]
    seed: int

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in (int, float, bool):
                value = field.type(value)
            elif field.type == Tuple[int, ...]:
                value = tuple(int(v) for v in value)
            object.__setattr__(self, field.name, value)  # frozen: the documented way

    @classmethod
    def from_estimator(cls, estimator, **values):
        """The settings of ``estimator``: each field from its attribute of the same name.

        Parameters
        ----------
        estimator : object
            A fine-tuning repurposer (anything with an attribute per field).
        **values
            Fields the estimator does not hold (``seed``) or that replace its own.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise TypeError(f"TrainSettings has no field {unknown[0]!r}; its fields are {names}.")
        return cls(**{name: values[name] if name in values else getattr(estimator, name)
                      for name in names})

    @property
    def augmentation(self) -> Optional[str]:
        """The augmentation mode ('shift', 'flip', 'shift+flip'), or None for none."""
        return "shift" if self.augment is True else (self.augment or None)

    @property
    def larger_is_better(self) -> bool:
        """Whether a larger value of :attr:`monitor` is an improvement."""
        return MONITORS[self.monitor]

    def learning_rate_at(self, epoch):
        """The learning rate of (0-based) ``epoch`` (see :func:`._schedules.learning_rate_at`)."""
        return learning_rate_at(epoch, self.learning_rate, self.lr_schedule, self.n_epochs,
                                self.warmup_epochs, self.step_epochs, self.step_factor)

"""Fine-tuning repurposers: train (part of) the source network itself with a new classifier.

:class:`FineTuneRepurposer` keeps the network up to a transfer layer and puts a new head on
it; :class:`RandomFreezeRepurposer` keeps the whole architecture and only swaps the classifier
layer. The shared machinery is :class:`~repurpose.repurposers._network.NetworkRepurposer`;
the result is kept as a ``SourceModel`` (``network_``).
"""
from .._validation import (Boolean, Integer, ListOf, Nullable, Real, Text, check_layer_names,
                           store_params)
from ..exceptions import InvalidParameterError
from ..persist import register
from ._network import NetworkRepurposer, _classifier_layer, _names, _producer

__all__ = ["FineTuneRepurposer", "RandomFreezeRepurposer"]


@register
class FineTuneRepurposer(NetworkRepurposer):
    """Fine-tune a source network with a new head on top of a transfer layer.

    Keeps the network up to ``transfer_layer``, adds optional hidden dense layers (relu, with
    batch norm and dropout if asked) and a dense output layer with one unit per class of
    ``y``, freezes ``fixed_layers`` (or every layer up to ``fixed_below``), re-initialises
    ``random_layers`` and trains the rest.

    Parameters
    ----------
    source : SourceModel
    transfer_layer : str, default=None
        Last kept layer of the source; None takes the model card's ``feature_layer``, else
        the layer feeding the classifier (output) layer.
    hidden_units : tuple of int, default=()
        Widths of hidden dense layers of the new head.
    dropout : float, default=0.0
        Dropout rate after each hidden layer and before the output layer (0: none).
    batchnorm : bool, default=False
        Batch norm after each hidden dense layer.
    fixed_layers : tuple of str, default=()
        Layers of the source whose parameters stay fixed.
    fixed_below : str, default=None
        Also fix every layer up to and including this one.
    random_layers : tuple of str, default=()
        Layers of the source to re-initialise (seeded) and train.
    optimizer : {'sgd', 'nag', 'adam', 'rmsprop', 'adagrad'}, default='sgd'
        MXNet optimizer.
    learning_rate : float, default=0.01
        Base learning rate (of the new layers).
    momentum : float, default=0.9
        Momentum of 'sgd' and 'nag'.
    weight_decay : float, default=1e-4
        L2 penalty.
    transferred_lr_mult : float, default=1.0
        Learning-rate multiplier of the transferred (not new, not re-initialised) layers.
    lr_schedule : {'constant', 'step', 'cosine'}, default='cosine'
        Learning-rate schedule.
    warmup_epochs : int, default=0
        Epochs of linear warm-up before the schedule.
    step_epochs : tuple of int, default=()
        1-based epochs where 'step' multiplies the rate by ``step_factor``.
    step_factor : float, default=0.1
        Factor of the 'step' schedule.
    n_epochs : int, default=20
        Training epochs (at most).
    batch_size : int, default=32
        Samples per step, split over the contexts.
    validation_fraction : float, default=0.2
        Stratified, seeded hold-out of ``(X, y)`` when ``X_val`` is not given; 0 for none.
    early_stopping : bool, default=True
        Stop when ``monitor`` has not improved for ``patience`` epochs and restore the
        weights of the best epoch.
    patience : int, default=5
        Epochs without improvement before early stopping.
    monitor : {'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy'}, default='val_loss'
        What early stopping watches.
    freeze_bn_stats : bool, default=True
        Batch-norm layers among the frozen layers keep their running mean / variance
        (``use_global_stats``) during training.
    augment : {False, True, 'shift', 'flip', 'shift+flip'}, default=False
        Random 1-pixel shifts and/or horizontal flips of image batches (True = 'shift').
    ctx : str, mx.Context or list, default='cpu'
        Contexts; each batch is split over them (data parallel).
    kvstore : {None, 'local', 'dist_sync', 'dist_async'}, default=None
        None / 'local' trains in this process. 'dist_sync' trains data-parallel across the
        worker processes of a job started by ``repurpose launch`` (or MXNet's launcher):
        every worker calls ``fit`` with the same data and parameters, computes rows
        ``rank::n_workers`` of each batch of ``batch_size`` (the global batch), and the
        parameter servers sum the gradients, so the result matches one process. Only rank
        0 writes checkpoints. 'dist_async' lets workers step without waiting for each other
        (optimizer on the servers; needs ``transferred_lr_mult=1``). See
        docs/guide/distributed_finetuning.md.
    checkpoint_dir : str or path-like, default=None
        Write a checkpoint there after each epoch; ``fit(..., resume=True)`` continues it.
    progress : bool, default=False
        tqdm bar over epochs.
    random_state : int, RandomState or None, default=None
        Seeds the new layers, re-initialised layers, validation split, shuffling,
        augmentation and dropout.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    network_ : SourceModel
        The fine-tuned network; its output layer ``ft_out_fwd`` gives class scores.
    history_ : list of dict
        One dict per epoch: epoch, lr, train_loss, train_accuracy, val_loss, val_accuracy,
        seconds.
    best_epoch_ : int or None
        Epoch with the best ``monitor`` value (its weights are kept when early stopping).
    n_epochs_run_ : int

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> from repurpose.demo import make_demo_task
    >>> X, y, X_test, y_test = make_demo_task(n_per_class=10)
    >>> model = FineTuneRepurposer(SourceModel.from_zoo('digits_cnn'), n_epochs=5,
    ...                            random_state=0).fit(X, y)
    >>> model.predict(X_test[:3]).shape
    (3,)
    """

    def __init__(self, source, transfer_layer=None, hidden_units=(), dropout=0.0,
                 batchnorm=False, fixed_layers=(), fixed_below=None, random_layers=(),
                 optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=1e-4,
                 transferred_lr_mult=1.0, lr_schedule="cosine", warmup_epochs=0,
                 step_epochs=(), step_factor=0.1, n_epochs=20, batch_size=32,
                 validation_fraction=0.2, early_stopping=True, patience=5,
                 monitor="val_loss", freeze_bn_stats=True, augment=False, ctx="cpu",
                 kvstore=None, checkpoint_dir=None, progress=False, random_state=None):
        store_params(self, locals())

    _parameter_constraints = {
        **NetworkRepurposer._parameter_constraints,
        "transfer_layer": Nullable(Text(what="a layer name")),
        "hidden_units": ListOf(Integer(1), "a sequence of positive integers"),
        "dropout": Real(0, 1, high_open=True),
        "batchnorm": Boolean(),
        "fixed_below": Nullable(Text(what="a layer name")),
    }

    def _transfer_layer(self):
        names = self.source.layer_names
        layer = self.transfer_layer
        if layer is None:
            card = self.source.metadata.get("feature_layer")
            if card in names:
                return card
            classifier = _classifier_layer(self.source)
            layer = _producer(self.source, classifier)
            if layer is None:
                raise InvalidParameterError(
                    f"The source's classifier layer {classifier!r} reads the input directly; "
                    f"there is no layer below it to transfer. Pass transfer_layer=.")
            return layer
        check_layer_names([layer], names, "source.layer_names")
        outputs = self.source.output_layers
        if layer in outputs:
            below = _producer(self.source, _classifier_layer(self.source))
            raise InvalidParameterError(
                f"transfer_layer {layer!r} is the source's output layer: there is nothing to "
                f"replace. Choose a layer below the output, e.g. {below!r} (the model card's "
                f"feature_layer is {self.source.metadata.get('feature_layer')!r}).")
        return layer

    def _fixed(self, trunk):
        fixed = set(_names(self.fixed_layers))
        if self.fixed_below is not None:
            check_layer_names([self.fixed_below], self.source.layer_names,
                              "source.layer_names")
            if self.fixed_below not in trunk.layer_names:
                raise InvalidParameterError(
                    f"fixed_below {self.fixed_below!r} lies above transfer_layer "
                    f"{self._transfer_layer()!r}; name a layer up to the transfer layer.")
            names = trunk.layer_names
            fixed |= set(names[: names.index(self.fixed_below) + 1])
        return fixed

    def _head_specs(self, n_classes):
        specs = []
        for i, units in enumerate(self.hidden_units):
            specs.append({"type": "dense", "units": int(units), "name": f"ft_hidden{i}"})
            if self.batchnorm:
                specs.append({"type": "batchnorm", "name": f"ft_bn{i}"})
            specs.append({"type": "activation", "activation": "relu", "name": f"ft_relu{i}"})
        if self.dropout > 0:
            specs.append({"type": "dropout", "rate": float(self.dropout), "name": "ft_drop"})
        specs.append({"type": "dense", "units": int(n_classes), "name": "ft_out"})
        return specs


@register
class RandomFreezeRepurposer(NetworkRepurposer):
    """Keep the whole source network, swap its classifier layer for a new one, train.

    The classifier (the model card's ``classifier_layer``, else the output layer, skipping
    a softmax) is replaced by a dense layer with one unit per class of ``y``; ``fixed_layers``
    stay fixed, ``random_layers`` are re-initialised (seeded) and trained with the rest.

    Parameters
    ----------
    source : SourceModel
    fixed_layers : tuple of str, default=()
        Layers of the source whose parameters stay fixed.
    random_layers : tuple of str, default=()
        Layers of the source to re-initialise (seeded) and train.
    optimizer : {'sgd', 'nag', 'adam', 'rmsprop', 'adagrad'}, default='sgd'
        MXNet optimizer.
    learning_rate : float, default=0.01
        Base learning rate (of the new layers).
    momentum : float, default=0.9
        Momentum of 'sgd' and 'nag'.
    weight_decay : float, default=1e-4
        L2 penalty.
    transferred_lr_mult : float, default=1.0
        Learning-rate multiplier of the transferred (not new, not re-initialised) layers.
    lr_schedule : {'constant', 'step', 'cosine'}, default='cosine'
        Learning-rate schedule.
    warmup_epochs : int, default=0
        Epochs of linear warm-up before the schedule.
    step_epochs : tuple of int, default=()
        1-based epochs where 'step' multiplies the rate by ``step_factor``.
    step_factor : float, default=0.1
        Factor of the 'step' schedule.
    n_epochs : int, default=20
        Training epochs (at most).
    batch_size : int, default=32
        Samples per step, split over the contexts.
    validation_fraction : float, default=0.2
        Stratified, seeded hold-out of ``(X, y)`` when ``X_val`` is not given; 0 for none.
    early_stopping : bool, default=True
        Stop when ``monitor`` has not improved for ``patience`` epochs and restore the
        weights of the best epoch.
    patience : int, default=5
        Epochs without improvement before early stopping.
    monitor : {'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy'}, default='val_loss'
        What early stopping watches.
    freeze_bn_stats : bool, default=True
        Batch-norm layers among the frozen layers keep their running mean / variance
        (``use_global_stats``) during training.
    augment : {False, True, 'shift', 'flip', 'shift+flip'}, default=False
        Random 1-pixel shifts and/or horizontal flips of image batches (True = 'shift').
    ctx : str, mx.Context or list, default='cpu'
        Contexts; each batch is split over them (data parallel).
    kvstore : {None, 'local', 'dist_sync', 'dist_async'}, default=None
        None / 'local' trains in this process. 'dist_sync' trains data-parallel across the
        worker processes of a job started by ``repurpose launch`` (or MXNet's launcher):
        every worker calls ``fit`` with the same data and parameters, computes rows
        ``rank::n_workers`` of each batch of ``batch_size`` (the global batch), and the
        parameter servers sum the gradients, so the result matches one process. Only rank
        0 writes checkpoints. 'dist_async' lets workers step without waiting for each other
        (optimizer on the servers; needs ``transferred_lr_mult=1``). See
        docs/guide/distributed_finetuning.md.
    checkpoint_dir : str or path-like, default=None
        Write a checkpoint there after each epoch; ``fit(..., resume=True)`` continues it.
    progress : bool, default=False
        tqdm bar over epochs.
    random_state : int, RandomState or None, default=None
        Seeds the new layers, re-initialised layers, validation split, shuffling,
        augmentation and dropout.

    Attributes
    ----------
    classes_, network_, history_, best_epoch_, n_epochs_run_
        As in :class:`FineTuneRepurposer`.

    Examples
    --------
    Keep the first two convolutions, re-initialise the third, train the rest:

    >>> from repurpose import SourceModel
    >>> from repurpose.demo import make_demo_task
    >>> X, y, X_test, y_test = make_demo_task(n_per_class=10)
    >>> model = RandomFreezeRepurposer(SourceModel.from_zoo('digits_cnn'),
    ...                                fixed_layers=('conv1_fwd', 'conv2_fwd'),
    ...                                random_layers=('conv3_fwd',), n_epochs=5,
    ...                                random_state=0).fit(X, y)
    >>> model.classes_, len(model.history_)
    (array([5, 6, 7, 8, 9]), 5)
    >>> model.predict_proba(X_test[:3]).shape
    (3, 5)
    """

    def __init__(self, source, fixed_layers=(), random_layers=(), optimizer="sgd",
                 learning_rate=0.01, momentum=0.9, weight_decay=1e-4, transferred_lr_mult=1.0,
                 lr_schedule="cosine", warmup_epochs=0, step_epochs=(), step_factor=0.1,
                 n_epochs=20, batch_size=32, validation_fraction=0.2, early_stopping=True,
                 patience=5, monitor="val_loss", freeze_bn_stats=True, augment=False,
                 ctx="cpu", kvstore=None, checkpoint_dir=None, progress=False,
                 random_state=None):
        store_params(self, locals())

    def _transfer_layer(self):
        classifier = _classifier_layer(self.source)
        layer = _producer(self.source, classifier)
        if layer is None:
            raise InvalidParameterError(
                f"The source's classifier layer {classifier!r} reads the input directly; "
                f"there is nothing to keep. Use a deeper source model.")
        return layer

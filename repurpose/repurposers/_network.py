"""The machinery both fine-tuning repurposers share: parameter checks, building the network
with :class:`~repurpose.SourceModel` surgery (truncate, add_layers, freeze, reinitialize),
the data checks and split, training through
:func:`~repurpose.repurposers._training.train_network`, checkpoints, prediction and state.
"""
import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod

import mxnet as mx
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .. import seeding
from .._validation import (Boolean, Custom, Integer, ListOf, Nullable, Options, Problem, Real,
                           Text, brief_list, check_layer_names, check_params)
from ..context import resolve_contexts, split_batch
from ..data import as_batch_stream
from ..exceptions import DataError, InvalidParameterError
from ..features._checks import known_length
from ..heads._base import check_labels, unseen_labels
from ..persist import save as _save
from ..source import SourceModel
from ..source._graph import graph_nodes, layer_params
from ._checkpoint import data_fingerprint, read_checkpoint
from ._distributed import LOCAL, WorkerGroup, check_kvstore, get_kvstore, launch_environment
from ._training import (AUGMENTATIONS, LR_SCHEDULES, MONITORS, OPTIMIZERS, TrainSettings,
                        freeze_batchnorm_stats, stratified_split, train_network)

logger = logging.getLogger(__name__)

__all__ = ["NetworkRepurposer", "HEAD_PREFIX", "OUTPUT_LAYER"]

#: Name prefix of every layer the repurposers add (the output layer is ``ft_out_fwd``).
HEAD_PREFIX = "ft_"
OUTPUT_LAYER = "ft_out_fwd"
_SOFTMAX_OPS = ("SoftmaxOutput", "SoftmaxActivation", "softmax", "log_softmax")

#: Constructor parameters that do not change the result (left out of the fingerprint).
_NOT_FINGERPRINTED = ("ctx", "checkpoint_dir", "progress", "kvstore")


def _folder_path(value):
    if not isinstance(value, (str, os.PathLike)):
        raise Problem()
    return value


#: A sequence of layer names; one name stands for a sequence of one.
_LAYER_NAMES = ListOf(Text(what="a layer name"), "a sequence of layer names", single=True)


def _names(value):
    """A tuple of layer names from a str or a sequence of str (checked by the table)."""
    return _LAYER_NAMES.normalise(value)


def _producer(model, layer):
    """The operator layer whose output feeds ``layer`` (first input that is an operator)."""
    nodes = graph_nodes(model.symbol)
    by_name = {n["name"]: n for n in nodes}
    for source_id, *_ in by_name[layer]["inputs"]:
        if nodes[source_id]["op"] != "null":
            return nodes[source_id]["name"]
    return None


def _classifier_layer(model):
    """The source's classifier layer: the model card's, else the output (past a softmax)."""
    card = model.metadata.get("classifier_layer")
    if card in model.layer_names:
        return card
    outputs = model.output_layers
    if len(outputs) != 1:
        raise InvalidParameterError(
            f"The source model has {len(outputs)} outputs ({brief_list(outputs)}); name the "
            f"layer to build on with transfer_layer=.")
    layer = outputs[0]
    ops = {n["name"]: n["op"] for n in graph_nodes(model.symbol)}
    if ops[layer] in _SOFTMAX_OPS:
        layer = _producer(model, layer) or layer
    return layer


class NetworkRepurposer(ClassifierMixin, BaseEstimator, ABC):
    """Shared machinery: validation, training, prediction and state of both repurposers."""

    # ------------------------------------------------------------------ to specialise
    def _head_specs(self, n_classes):
        """Layer specs stacked on the transfer layer (the last one outputs class scores)."""
        return [{"type": "dense", "units": int(n_classes), "name": "ft_out"}]

    @abstractmethod
    def _transfer_layer(self):
        """The last source layer the network keeps (validated)."""

    def _fixed(self, trunk):
        return set(_names(self.fixed_layers))

    # ------------------------------------------------------------------ validation
    #: The allowed values of each constructor parameter, declared once: ``fit`` checks them
    #: (:func:`~repurpose._validation.check_params`), and the job schema (``repurpose.jobs``),
    #: ``--set``, the tuner's search spaces and the docs reference read this table.
    _parameter_constraints = {
        "fixed_layers": _LAYER_NAMES,
        "random_layers": _LAYER_NAMES,
        "optimizer": Options(*OPTIMIZERS),
        "learning_rate": Real(0, 1e3, low_open=True),
        "momentum": Real(0, 1, high_open=True),
        "weight_decay": Real(0, 1e3),
        "transferred_lr_mult": Real(0, 1e3),
        "lr_schedule": Options(*LR_SCHEDULES),
        "warmup_epochs": Integer(0),
        "step_epochs": ListOf(Integer(1), "a sequence of epoch numbers (integers >= 1)"),
        "step_factor": Real(0, 1e3, low_open=True),
        "n_epochs": Integer(1),
        "batch_size": Integer(1),
        "validation_fraction": Real(0, 1, high_open=True),
        "early_stopping": Boolean(),
        "patience": Integer(1),
        "monitor": Options(*MONITORS),
        "freeze_bn_stats": Boolean(),
        "augment": Options(*AUGMENTATIONS),
        "checkpoint_dir": Nullable(Custom(_folder_path, "a folder path")),
        "progress": Boolean(),
    }

    def _validate_params(self):
        if not isinstance(self.source, SourceModel):
            raise InvalidParameterError(
                f"source must be a repurpose.SourceModel, got {type(self.source).__name__}. "
                f"Load one with SourceModel.from_zoo / from_checkpoint / from_gluon.")
        check_params(self.get_params(deep=False), self._parameter_constraints)
        if check_kvstore(self.kvstore) == "dist_async" and self.transferred_lr_mult != 1:
            raise InvalidParameterError(
                f"kvstore='dist_async' runs the optimizer on the parameter servers, which "
                f"apply one learning rate to every layer, but transferred_lr_mult is "
                f"{self.transferred_lr_mult!r}. Use transferred_lr_mult=1.0, or "
                f"kvstore='dist_sync'.")

    def _check_layer_sets(self, trunk):
        """Fixed / random layers exist in the trunk and do not overlap; return both sets."""
        fixed = self._fixed(trunk)
        random_layers = set(_names(self.random_layers))
        for name, layers in (("fixed_layers", fixed), ("random_layers", random_layers)):
            check_layer_names(sorted(layers, key=str), self.source.layer_names,
                              "source.layer_names")
            cut = sorted(set(layers) - set(trunk.layer_names))
            if cut:
                raise InvalidParameterError(
                    f"{name} names {brief_list(cut)}, which lie above transfer_layer "
                    f"{self._transfer_layer()!r} and are not part of the fine-tuned network. "
                    f"Name layers up to {self._transfer_layer()!r}.")
        both = sorted(fixed & random_layers)
        if both:
            raise InvalidParameterError(
                f"Layers {brief_list(both)} are both fixed (fixed_layers/fixed_below) and "
                f"random (random_layers). A layer is either kept frozen or re-initialised and "
                f"trained; remove it from one of the two.")
        return fixed, random_layers

    # ------------------------------------------------------------------ network
    def _trunk(self, source=None):
        source = self.source if source is None else source
        return source.truncate(self._transfer_layer())

    def _shaped_source(self, input_shape):
        """The source with an input shape: its own, else ``input_shape`` (from the data).

        Shapes from the data: a source loaded without ``input_shape`` (a plain MXNet
        checkpoint) is used exactly as if it had been loaded with the shape of the training
        samples, so the network, its seeded new layers and the saved result are the same as
        with the shape given up front. A source whose added layers wait for an input shape
        (``add_layers`` without one) takes it from this first batch in place, as extraction
        does; a plain one is left as it is (``with_input_shape`` returns a new model).

        Raises
        ------
        DataError
            If the source's graph does not accept samples of ``input_shape``.
        """
        source = self.source
        if source.input_shape is None:
            source._take_input_shape(tuple(input_shape))
            source = source.with_input_shape(tuple(input_shape))
        return source

    def _build_network(self, n_classes, seed_head=0, seed_random=0, source=None):
        """Trunk + new head, frozen and re-initialised layers applied; also the new params.

        ``source`` (default: the ``source`` parameter) must have its input shape, see
        :meth:`_shaped_source`.
        """
        trunk = self._trunk(source)
        fixed, random_layers = self._check_layer_sets(trunk)
        net = trunk.add_layers(self._head_specs(n_classes), random_state=seed_head)
        new_layers = set(net.layer_names) - set(trunk.layer_names)
        if fixed:
            net = net.freeze(sorted(fixed, key=net.layer_names.index))
        if random_layers:
            net = net.reinitialize(sorted(random_layers, key=net.layer_names.index),
                                   random_state=seed_random)
        owned = _owned_params(net)
        new_params = {p for layer in new_layers | random_layers for p in owned[layer]}
        metadata = dict(net.metadata)
        metadata.update({"classifier_layer": OUTPUT_LAYER,
                         "feature_layer": _producer(net, OUTPUT_LAYER),
                         "n_classes": int(n_classes), "fine_tuned_from": metadata.get("name"),
                         "transfer_layer": self._transfer_layer()})
        metadata.pop("class_names", None)
        net = SourceModel(net.symbol, net.arg_params, net.aux_params,
                          input_name=net.input_name, input_shape=net.input_shape,
                          metadata=metadata, frozen_layers=net.frozen_layers)
        return net, new_params

    @staticmethod
    def _with_params(net, values):
        args = {k: values[k] for k in net.arg_params}
        auxs = {k: values[k] for k in net.aux_params}
        return SourceModel(net.symbol, args, auxs, input_name=net.input_name,
                           input_shape=net.input_shape, metadata=net.metadata,
                           frozen_layers=net.frozen_layers)

    # ------------------------------------------------------------------ data
    def _as_array(self, X, name, input_shape=None, owner="the source model"):
        """``X`` (any input of ``as_batch_stream``) as one float32 array. Its first batch is
        read and checked first, its sample shape against ``input_shape`` (that of ``owner``)
        too when that is known, before the rest is read."""
        in_memory = isinstance(X, np.ndarray) and X.dtype == np.float32
        stream = as_batch_stream(X, batch_size=max(len(X), 1) if in_memory else 256, name=name)
        stream.peek()
        self._check_sample_shape(stream.sample_shape, name, input_shape, owner)
        if in_memory:
            return X
        return np.concatenate([batch for _, batch in stream])

    @staticmethod
    def _check_sample_shape(sample_shape, name, input_shape, owner="the source model"):
        if input_shape is not None and tuple(sample_shape) != tuple(input_shape):
            raise DataError(f"{name} has samples of shape {tuple(sample_shape)}, but {owner} "
                            f"takes {tuple(input_shape)}. Resize or reshape the inputs.")

    def _check_targets(self, y, n_samples, name="y"):
        # None and mixed label types are errors; object labels (pandas) become a str array.
        y = check_labels(y, f"{type(self).__name__}.fit", name=name)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1 or len(y) != n_samples:
            raise DataError(f"{name} has shape {y.shape}; expected ({n_samples},) labels, one "
                            f"per sample of X.")
        check_classification_targets(y)
        return y

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, X_val=None, y_val=None, resume=False, epoch_callback=None):
        """Build the network for the labels of ``y`` and train it on ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, \\*input_shape), or any input of
            :func:`repurpose.data.as_batch_stream`
            Training inputs (held in memory). A source loaded without ``input_shape`` takes
            the shape of these samples, read from the first batch, as if it had been loaded
            with it (``SourceModel.with_input_shape``); the fitted network and what ``save``
            writes carry that shape.
        y : array-like of shape (n_samples,)
            Labels of any values.
        X_val, y_val : default=None
            Validation data; without them, ``validation_fraction`` of ``(X, y)`` is held out
            (stratified, seeded).
        resume : bool, default=False
            Continue from the newest checkpoint in ``checkpoint_dir`` (start from epoch 1 if
            there is none yet). The result equals that of an uninterrupted run.
        epoch_callback : callable, default=None
            Called as ``epoch_callback(row)`` after every epoch with that epoch's
            ``history_`` row (``epoch``, ``lr``, ``train_loss``, ``train_accuracy``,
            ``val_loss``, ``val_accuracy``, ``seconds``); returning ``False`` ends training
            after that epoch. Exceptions it raises propagate out of ``fit``. Used to report
            learning curves to :func:`repurpose.bo.minimize_with_early_stopping`.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError, UnknownLayerError, DataError
            For bad parameters, layer names or data (samples of another shape than the
            source's input shape, or a shape its graph rejects), before any training.
        ValueError
            If ``checkpoint_dir`` holds a checkpoint and ``resume`` is False, or holds
            another job's checkpoint.
        """
        for attr in ("classes_", "history_", "best_epoch_", "network_", "n_epochs_run_"):
            self.__dict__.pop(attr, None)
        self.__dict__.pop("_block_cache", None)
        self._validate_params()
        check_labels(y, f"{type(self).__name__}.fit")  # y=None or mixed types: before reading X
        if check_kvstore(self.kvstore) is not None:
            launch_environment(kvstore=self.kvstore)  # before any work: started by a launcher?
        contexts = resolve_contexts(self.ctx)
        if resume and self.checkpoint_dir is None:
            raise InvalidParameterError("resume=True needs checkpoint_dir= (the folder of the "
                                        "checkpoints to resume from).")
        trunk = self._trunk()
        self._check_layer_sets(trunk)
        # A source without input_shape takes it from X (its first batch's sample shape),
        # checked against the graph here, before any long work; a source whose added layers
        # waited for the shape has its parameters from here on, before the checkpoint
        # fingerprint hashes it.
        X = self._as_array(X, "X", self.source.input_shape)
        source = self._shaped_source(X.shape[1:])
        y, classes, y_idx, X_val, y_val = self._check_fit_data(X, y, X_val, y_val,
                                                              source.input_shape)
        group = LOCAL
        if check_kvstore(self.kvstore) is not None:
            group = WorkerGroup(get_kvstore(self.kvstore))
        rng = check_random_state(self.random_state)
        seeds = {k: seeding.derive_seed(rng) for k in ("head", "random", "split", "train")}
        # Rank 0's seeds everywhere (they differ between processes if random_state=None).
        seeds = dict(zip(seeds, group.broadcast_ints("seeds", list(seeds.values()))))
        train, val = self._split(X, y_idx, X_val, y_val, classes, seeds["split"])
        checkpoint = self._checkpoint_plan(X, y, X_val, y_val, resume)
        network, new_params = self._build_network(len(classes), seeds["head"], seeds["random"],
                                                  source=source)
        block = self._training_block(network, contexts)
        block_params = list(block.collect_params().values())
        logger.info("%s: training %d of %d parameters (%d frozen layers) on %d samples, %d "
                    "classes, contexts %s%s", type(self).__name__,
                    sum(p.grad_req != "null" for p in block_params), len(block_params),
                    len(network.frozen_layers), len(train[0]), len(classes), contexts,
                    f", worker {group.rank} of {group.n_workers} ({self.kvstore})"
                    if group.distributed else "")
        settings = TrainSettings.from_estimator(self, seed=seeds["train"])
        result = train_network(block, contexts, *train, *val, settings, new_params=new_params,
                               checkpoint=checkpoint, progress=bool(self.progress),
                               description=type(self).__name__,
                               epoch_callback=epoch_callback, group=group)
        values = {name: p.data(contexts[0]).asnumpy()
                  for name, p in block.collect_params().items()}
        self.network_ = self._with_params(network, values)
        self.classes_ = classes
        self.history_ = result["history"]
        self.best_epoch_ = result["best_epoch"]
        self.n_epochs_run_ = result["n_epochs_run"]
        return self

    def _check_fit_data(self, X, y, X_val, y_val, input_shape):
        """Labels and validation data checked against ``X``, before any long work.

        Returns ``(y, classes, y as class indices, X_val, y_val)``.
        """
        y = self._check_targets(y, len(X))
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes to "
                             f"fit; got 1 class ({classes[0]!r}).")
        if (X_val is None) != (y_val is None):
            raise InvalidParameterError("Pass both X_val and y_val, or neither.")
        if X_val is not None:
            X_val = self._as_array(X_val, "X_val", input_shape,
                                   owner="the source model" if self.source.input_shape
                                   else "X (whose shape the source takes)")
            y_val = self._check_targets(y_val, len(X_val), "y_val")
            unseen = unseen_labels(y_val, classes)
            if len(unseen):
                raise DataError(
                    f"y_val holds label(s) {brief_list(unseen.tolist())} that y (the training "
                    f"labels) does not have (classes: {brief_list(classes.tolist())}). Drop "
                    f"those validation samples or add training samples of those classes.")
        monitor_needs_val = self.monitor.startswith("val_")
        will_have_val = X_val is not None or self.validation_fraction > 0
        if self.early_stopping and monitor_needs_val and not will_have_val:
            raise InvalidParameterError(
                f"early_stopping monitors {self.monitor!r}, but there is no validation data "
                f"(validation_fraction=0 and no X_val). Pass X_val/y_val, set "
                f"validation_fraction > 0, monitor='train_loss', or early_stopping=False.")
        return y, classes, y_idx, X_val, y_val

    def _split(self, X, y_idx, X_val, y_val, classes, seed):
        """``((X_train, y_train), (X_val, y_val))`` with class indices as labels: the given
        validation data, else a stratified, seeded hold-out of ``validation_fraction``."""
        if X_val is not None or self.validation_fraction == 0:
            y_val_idx = None if y_val is None else np.searchsorted(classes, y_val)
            return (X, y_idx), (X_val, y_val_idx)
        train_pos, val_pos = stratified_split(y_idx, float(self.validation_fraction),
                                              np.random.RandomState(seed))
        if len(val_pos) == 0:
            raise DataError(
                f"validation_fraction={self.validation_fraction} of {len(y_idx)} samples "
                f"holds out no sample (each class keeps at least 1 for training). Raise "
                f"validation_fraction, pass X_val/y_val, or set it to 0.")
        return (X[train_pos], y_idx[train_pos]), (X[val_pos], y_idx[val_pos])

    def _training_block(self, network, contexts):
        """The hybridized Gluon block that trains ``network`` (batch-norm statistics of
        frozen layers kept with ``freeze_bn_stats``)."""
        train_net = network
        if self.freeze_bn_stats and network.frozen_layers:
            train_net = SourceModel(
                freeze_batchnorm_stats(network.symbol, network.frozen_layers),
                network.arg_params, network.aux_params, input_name=network.input_name,
                input_shape=network.input_shape, metadata=network.metadata,
                frozen_layers=network.frozen_layers)
        block = train_net.to_gluon(ctx=contexts)
        block.hybridize(static_alloc=True)
        return block

    def _fingerprint(self, X, y, X_val, y_val):
        params = {}
        for key, value in self.get_params(deep=False).items():
            if key in _NOT_FINGERPRINTED:
                continue
            params[key] = value.sha256 if isinstance(value, SourceModel) else \
                json.loads(json.dumps(value, default=repr))
        text = json.dumps({"class": type(self).__name__, "params": params,
                           "data": data_fingerprint(X, y, X_val, y_val)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest(), params

    def _checkpoint_plan(self, X, y, X_val, y_val, resume):
        if self.checkpoint_dir is None:
            return None
        folder = os.fspath(self.checkpoint_dir)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise InvalidParameterError(f"checkpoint_dir {folder!r} is a file; pass a folder.")
        fingerprint, params = self._fingerprint(X, y, X_val, y_val)
        found = read_checkpoint(folder, with_arrays=False) if os.path.isdir(folder) else None
        if found is not None:
            meta = found[0]
            if meta.get("fingerprint") != fingerprint:
                old = meta.get("params") or {}
                diff = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
                what = (f"different parameters ({brief_list(diff)})" if diff
                        else "different data (X, y or the validation data)")
                raise ValueError(
                    f"checkpoint_dir {folder!r} holds the checkpoint of another job, with "
                    f"{what} (epoch {meta.get('epoch')}). Choose another checkpoint_dir (or "
                    f"remove that one); to resume it, call fit with the job's own parameters "
                    f"and data and resume=True.")
            if not resume:
                raise ValueError(
                    f"checkpoint_dir {folder!r} already holds a checkpoint of this job (after "
                    f"epoch {meta.get('epoch')}). Pass resume=True to continue it, or choose "
                    f"another checkpoint_dir (or remove that one) to start afresh.")
        return {"dir": folder, "fingerprint": fingerprint, "params": params,
                "resume": bool(resume)}

    # ------------------------------------------------------------------ predict
    def _block(self):
        check_is_fitted(self, "network_")
        cache = self.__dict__.get("_block_cache")
        if cache is None or cache[0] is not self.network_:
            block = self.network_.to_gluon(ctx=resolve_contexts(self.ctx))
            block.hybridize(static_alloc=True)
            cache = (self.network_, block)
            self.__dict__["_block_cache"] = cache
        return cache[1]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_block_cache", None)
        return state

    def decision_function(self, X):
        """Class scores (logits) of ``X``; columns follow :attr:`classes_` (zero rows for an
        array of zero samples)."""
        block = self._block()
        if known_length(X) == 0:  # zero samples: zero rows of scores
            self._check_sample_shape(tuple(X.shape[1:]), "X", self.network_.input_shape,
                                     owner="the fitted network (trained on that shape)")
            return np.zeros((0, len(self.classes_)))
        X = self._as_array(X, "X", self.network_.input_shape,
                           owner="the fitted network (trained on that shape)")
        contexts = resolve_contexts(self.ctx)
        batch = int(self.batch_size) * len(contexts)
        outs = []
        for start in range(0, len(X), batch):
            outs.extend(block(x) for _, x in split_batch(X[start:start + batch], contexts))
        return np.concatenate([o.asnumpy() for o in outs]).astype(np.float64)

    def predict_proba(self, X):
        """Class probabilities of ``X``; columns follow :attr:`classes_`."""
        scores = self.decision_function(X)
        scores -= scores.max(axis=1, keepdims=True)
        proba = np.exp(scores)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Most probable class of each sample of ``X``."""
        scores = self.decision_function(X)  # NotFittedError before fit
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy on ``(X, y)``; labels never seen in fit are an error."""
        check_is_fitted(self, "network_")
        y = check_labels(y, f"{type(self).__name__}.score")
        unseen = unseen_labels(y, self.classes_)
        if len(unseen):
            raise DataError(
                f"y holds label(s) {brief_list(unseen.tolist())} that {type(self).__name__} "
                f"never saw in fit (classes_: {brief_list(self.classes_.tolist())}).")
        return super().score(X, y, sample_weight=sample_weight)

    # ------------------------------------------------------------------ state
    def save(self, path, overwrite=False):
        """Save to the folder ``path`` (JSON manifest + arrays + the source model).

        ``repurpose.load(path)`` rebuilds the network from the source and predicts the same.
        """
        return _save(self, path, overwrite=overwrite)

    def _get_state(self):
        check_is_fitted(self, "network_")
        classes = np.asarray(self.classes_)
        if classes.dtype == object:
            classes = classes.astype(str)
        arrays = {"classes_": classes}
        for name, value in {**self.network_.arg_params, **self.network_.aux_params}.items():
            arrays[f"net/{name}"] = value.asnumpy()
        state = {"history_": self.history_, "best_epoch_": self.best_epoch_,
                 "n_epochs_run_": int(self.n_epochs_run_), "n_classes": int(len(classes)),
                 "network_sha256": self.network_.sha256,
                 # The network's input shape, taken from the data when the source had none.
                 "input_shape": list(self.network_.input_shape)}
        return state, arrays

    def _set_state(self, state, arrays):
        self._validate_params()
        shape = state.get("input_shape")  # absent from files saved before it was recorded
        source = self.source if shape is None else self._shaped_source(tuple(shape))
        network, _ = self._build_network(int(state["n_classes"]), source=source)
        values = {k[len("net/"):]: v for k, v in arrays.items() if k.startswith("net/")}
        missing = sorted((set(network.arg_params) | set(network.aux_params)) - set(values))
        if missing:
            raise DataError(f"The saved state lacks parameters {brief_list(missing)} of the "
                            f"rebuilt network; the file belongs to another version.")
        self.network_ = self._with_params(network, {k: mx.nd.array(v, dtype=v.dtype)
                                                    for k, v in values.items()})
        self.classes_ = np.asarray(arrays["classes_"])
        self.history_ = list(state["history_"])
        self.best_epoch_ = state["best_epoch_"]
        self.n_epochs_run_ = int(state["n_epochs_run_"])
        return self


def _owned_params(model):
    inputs = [model.input_name] + [a for a in model.symbol.list_arguments()
                                   if a.endswith("label")]
    return layer_params(model.symbol, inputs)

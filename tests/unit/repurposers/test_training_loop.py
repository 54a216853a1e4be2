"""The training loop on its own: TrainSettings, the callbacks' hooks and order, stopping,
and the checkpoint file's header and strict JSON. Runs on a tiny Dense network."""
import dataclasses
import inspect
import json
import logging

import mxnet as mx
import numpy as np
import pytest

from repurpose.exceptions import ModelFileError
from repurpose.repurposers import FineTuneRepurposer, RandomFreezeRepurposer
from repurpose.repurposers._callbacks import EarlyStopping, EpochCallback
from repurpose.repurposers._checkpoint import (CHECKPOINT_FILE, read_checkpoint,
                                               write_checkpoint)
from repurpose.repurposers._loop import Callback, ParallelBlock, TrainingLoop, TrainState
from repurpose.repurposers._training import TrainSettings, make_optimizer, train_network

LOGGER = "repurpose.repurposers._training"
BASE = dict(optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=0.0,
            transferred_lr_mult=1.0, lr_schedule="constant", warmup_epochs=0, step_epochs=(),
            step_factor=0.1, n_epochs=4, batch_size=8, early_stopping=False, patience=2,
            monitor="train_loss", augment=False, seed=0)


def _data(n=24, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def _block(seed=0):
    mx.random.seed(seed)
    net = mx.gluon.nn.Dense(2, in_units=4)
    net.initialize(mx.init.Xavier(), ctx=[mx.cpu()])
    return net


def _settings(**changes):
    return TrainSettings(**dict(BASE, **changes))


class Recorder(Callback):
    def __init__(self, name, calls, stop_at=None):
        self.name, self.calls, self.stop_at = name, calls, stop_at

    def on_train_begin(self, loop):
        self.calls.append((self.name, "begin"))

    def on_epoch_end(self, loop, row):
        self.calls.append((self.name, row["epoch"]))
        if row["epoch"] == self.stop_at:
            loop.stop("%s stopped after epoch %d", self.name, row["epoch"])

    def on_train_end(self, loop):
        self.calls.append((self.name, "end"))

    def close(self, loop):
        self.calls.append((self.name, "close"))


def _loop(callbacks, settings=None, state=None):
    settings = settings or _settings()
    par = ParallelBlock(_block(), [mx.cpu()])
    optimizer = make_optimizer("sgd", settings.learning_rate,
                               param_dict=dict(enumerate(par.trainable)))
    return TrainingLoop(par, optimizer, mx.optimizer.get_updater(optimizer), settings,
                        _data(), (None, None), state or TrainState(), callbacks,
                        logger=logging.getLogger(LOGGER))


# ---------------------------------------------------------------------- settings
@pytest.mark.parametrize("cls", [FineTuneRepurposer, RandomFreezeRepurposer])
def test_settings_fields_are_repurposer_parameters(cls):
    params = set(inspect.signature(cls).parameters)
    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    assert fields - params == {"seed"}


def test_settings_from_estimator_reads_each_field():
    model = FineTuneRepurposer(None, learning_rate=0.5, step_epochs=[3, 5], augment=True,
                               n_epochs=7)
    settings = TrainSettings.from_estimator(model, seed=11)
    assert settings.learning_rate == 0.5 and settings.step_epochs == (3, 5)
    assert settings.n_epochs == 7 and settings.seed == 11 and settings.augmentation == "shift"
    assert TrainSettings.from_estimator(model, seed=1, n_epochs=2).n_epochs == 2


def test_settings_misspelt_name_error():
    with pytest.raises(TypeError, match="n_epoch"):
        TrainSettings(**dict(BASE, n_epoch=3))
    with pytest.raises(TypeError, match="no field 'sed'"):
        TrainSettings.from_estimator(FineTuneRepurposer(None), sed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        _settings().n_epochs = 3


def test_settings_convert_to_field_types():
    settings = _settings(learning_rate=1, n_epochs=np.int64(3), early_stopping=np.bool_(True),
                         step_epochs=[np.int32(2)])
    assert type(settings.learning_rate) is float and type(settings.n_epochs) is int
    assert settings.early_stopping is True and settings.step_epochs == (2,)


def test_train_network_needs_settings_not_a_dict():
    X, y = _data()
    with pytest.raises(TypeError, match="settings must be a TrainSettings, got dict"):
        train_network(_block(), [mx.cpu()], X, y, None, None, dict(BASE))


# ---------------------------------------------------------------------- loop and hooks
def test_hooks_run_in_order_and_unwind_in_reverse():
    calls = []
    state = _loop([Recorder("a", calls), Recorder("b", calls)],
                  _settings(n_epochs=2)).run()
    assert calls == [("a", "begin"), ("b", "begin"), ("a", 1), ("b", 1), ("a", 2), ("b", 2),
                     ("b", "end"), ("a", "end"), ("b", "close"), ("a", "close")]
    assert state.epoch == 2 and [r["epoch"] for r in state.history] == [1, 2]


def test_failure_skips_on_train_end_but_closes():
    calls = []

    class Boom(Callback):
        def on_epoch_end(self, loop, row):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _loop([Recorder("a", calls), Boom()]).run()
    assert calls == [("a", "begin"), ("a", 1), ("a", "close")]


def test_first_stop_is_logged_and_ends_after_that_epoch(caplog):
    calls = []
    loop = _loop([Recorder("a", calls, stop_at=2), Recorder("b", calls, stop_at=2)])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        state = loop.run()
    assert state.epoch == 2 and ("b", 2) in calls and ("a", "end") in calls
    stops = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    assert stops == ["fine-tune: a stopped after epoch 2"]


def test_same_seed_same_history_and_weights():
    def run():
        X, y = _data()
        block = _block()
        result = train_network(block, [mx.cpu()], X, y, X[:6], y[:6],
                               _settings(augment=False, early_stopping=True,
                                         monitor="val_loss"))
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in result["history"]]
        return rows, block.weight.data().asnumpy()

    (h1, w1), (h2, w2) = run(), run()
    assert h1 == h2 and h1[0]["val_loss"] is not None
    np.testing.assert_array_equal(w1, w2)


def test_resumed_stopped_state_trains_no_more():
    state = TrainState(epoch=2, history=[{"epoch": 1}, {"epoch": 2}], stopped=True)
    assert _loop([], state=state).run().epoch == 2


# ---------------------------------------------------------------------- early stopping
class _FakeLoop:
    """What EarlyStopping reads of a loop: state, par (weights), stop reason, logger."""

    def __init__(self):
        self.state, self.stop_reason, self.description = TrainState(), None, "run"
        self.logger = logging.getLogger(LOGGER)
        self.par = ParallelBlock(_block(), [mx.cpu()])


def test_early_stopping_counts_bad_epochs_and_keeps_the_best():
    loop, es = _FakeLoop(), EarlyStopping(_settings(early_stopping=True, patience=2))
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.6], start=1):
        es.on_epoch_end(loop, {"epoch": epoch, "train_loss": loss})
    assert (loop.state.best_epoch, loop.state.best_value) == (2, 0.5)
    assert loop.state.bad_epochs == 2 and loop.state.stopped and es.stopped_after == 4
    assert loop.state.best_params is not None


def test_early_stopping_message_gives_way_to_an_earlier_stop(caplog):
    loop, es = _FakeLoop(), EarlyStopping(_settings(early_stopping=True, patience=1))
    es.on_epoch_end(loop, {"epoch": 1, "train_loss": 1.0})
    es.on_epoch_end(loop, {"epoch": 2, "train_loss": 2.0})
    with caplog.at_level(logging.INFO, logger=LOGGER):
        loop.stop_reason = (EpochCallback.REASON, 2)
        es.on_train_end(loop)
        loop.stop_reason = None
        es.on_train_end(loop)
    assert [r.getMessage() for r in caplog.records] == [
        "run: early stopping after epoch 2 (train_loss did not improve for 1 epochs; best "
        "1.0000 in epoch 1)"]


def test_without_early_stopping_the_best_epoch_is_still_tracked():
    loop, es = _FakeLoop(), EarlyStopping(_settings(early_stopping=False, patience=1))
    for epoch, loss in enumerate([1.0, 2.0, 3.0], start=1):
        es.on_epoch_end(loop, {"epoch": epoch, "train_loss": loss})
    assert loop.state.best_epoch == 1 and not loop.state.stopped
    assert loop.state.best_params is None


# ---------------------------------------------------------------------- checkpoint file
def test_checkpoint_json_is_strict_and_headed(tmp_path):
    write_checkpoint(tmp_path, {"epoch": 1, "best_value": float("nan")},
                     {"w": mx.nd.ones((2,))})
    text = (tmp_path / CHECKPOINT_FILE).read_text()
    assert "NaN" not in text
    meta = json.loads(text)
    assert meta["best_value"] is None and meta["format"] == "repurpose.finetune-checkpoint"
    assert meta["format_version"] == 1 and meta["params_file"] == "epoch-0001.params"
    assert read_checkpoint(tmp_path, with_arrays=False)[0]["epoch"] == 1


@pytest.mark.parametrize("change, match", [
    ({"format": "something.else"}, "is not a repurpose fine-tuning checkpoint file"),
    ({"format_version": 2}, "format_version 2, newer than this repurpose"),
    ({"format_version": "1"}, "format_version '1'; expected an integer"),
])
def test_checkpoint_header_error(tmp_path, change, match):
    write_checkpoint(tmp_path, {"epoch": 1}, {"w": mx.nd.ones((2,))})
    path = tmp_path / CHECKPOINT_FILE
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **change)))
    with pytest.raises(ModelFileError, match=match + ".*choose another checkpoint_dir"):
        read_checkpoint(tmp_path)


def test_unreadable_checkpoint_error(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_text("{not json")
    with pytest.raises(ModelFileError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path)

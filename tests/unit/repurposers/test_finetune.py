"""FineTuneRepurposer / RandomFreezeRepurposer and the training loop, on digits_cnn (8x8)."""
import logging
import os

import mxnet as mx
import numpy as np
import pytest
from sklearn.base import clone

from repurpose import SourceModel, load
from repurpose.exceptions import DataError, InvalidParameterError, UnknownLayerError
from repurpose.repurposers._checkpoint import (CHECKPOINT_FILE, decode_optimizer_state,
                                               encode_optimizer_state, read_checkpoint,
                                               write_checkpoint)
from repurpose.repurposers._finetune import FineTuneRepurposer, RandomFreezeRepurposer
from repurpose.repurposers._training import (augment_images, freeze_batchnorm_stats,
                                             learning_rate_at, stratified_split)

FAST = dict(n_epochs=2, batch_size=16, random_state=0)


@pytest.fixture(scope="module")
def source():
    return SourceModel.from_zoo("digits_cnn")


@pytest.fixture(scope="module")
def task():
    from repurpose.demo import make_demo_task

    X, y, X_test, y_test = make_demo_task(n_per_class=10, random_state=0)
    names = np.array(["five", "six", "seven", "eight", "nine"])
    return X, names[y - 5], X_test[:200], names[y_test[:200] - 5]


def _weights(model):
    net = model.network_
    return {k: v.asnumpy() for k, v in {**net.arg_params, **net.aux_params}.items()}


# ---------------------------------------------------------------------- contract
@pytest.mark.parametrize("cls", [FineTuneRepurposer, RandomFreezeRepurposer])
def test_fit_predict_with_string_labels(cls, source, task):
    X, y, X_test, y_test = task
    model = cls(source, **FAST)
    assert model.fit(X, y) is model
    assert list(model.classes_) == sorted(set(y))
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-6)
    assert (model.predict(X_test) == model.classes_[proba.argmax(1)]).all()
    assert 0 <= model.score(X_test, y_test) <= 1
    assert model.n_epochs_run_ == 2 and len(model.history_) == 2
    assert set(model.history_[0]) == {"epoch", "lr", "train_loss", "train_accuracy",
                                      "val_loss", "val_accuracy", "seconds"}
    assert isinstance(model.network_, SourceModel)
    assert model.network_.output_layers == ["ft_out_fwd"]


def test_constructor_stores_params_unmodified(source):
    model = FineTuneRepurposer(source, hidden_units=[8], fixed_layers="oops", ctx="gpu:7")
    assert model.hidden_units == [8] and model.fixed_layers == "oops"
    assert clone(model).source is source
    params = model.get_params()
    assert params["lr_schedule"] == "cosine" and params["checkpoint_dir"] is None


def test_network_layout(source, task):
    X, y, _, _ = task
    model = FineTuneRepurposer(source, hidden_units=(16,), batchnorm=True, dropout=0.2,
                               fixed_below="relu2_fwd", **FAST).fit(X, y)
    names = model.network_.layer_names
    assert names[names.index("fc1_relu_fwd") + 1:] == [
        "ft_hidden0_fwd", "ft_bn0_fwd", "ft_relu0_fwd", "ft_drop_fwd", "ft_out_fwd"]
    assert "fc2_fwd" not in names
    assert model.network_.frozen_layers == tuple(source.layer_names[:6])
    assert model.network_.metadata["classifier_layer"] == "ft_out_fwd"


def test_random_freeze_replaces_only_the_classifier(source, task):
    X, y, _, _ = task
    model = RandomFreezeRepurposer(source, fixed_layers=("conv1_fwd",),
                                   random_layers=("conv3_fwd",), **FAST).fit(X, y)
    assert model.network_.layer_names == source.layer_names[:-1] + ["ft_out_fwd"]
    w = _weights(model)
    np.testing.assert_array_equal(w["conv1_weight"], source.arg_params["conv1_weight"].asnumpy())
    assert w["ft_out_weight"].shape == (5, 64)


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_weights_other_seed_differs(source, task):
    X, y, _, _ = task
    a = _weights(FineTuneRepurposer(source, dropout=0.3, augment=True, **FAST).fit(X, y))
    b = _weights(FineTuneRepurposer(source, dropout=0.3, augment=True, **FAST).fit(X, y))
    c = _weights(FineTuneRepurposer(source, dropout=0.3, augment=True,
                                    **dict(FAST, random_state=1)).fit(X, y))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_several_contexts_match_one(source, task):
    X, y, X_test, _ = task
    kw = dict(FAST, fixed_below="relu3_fwd", hidden_units=(8,))
    one = FineTuneRepurposer(source, ctx="cpu", **kw).fit(X, y)
    two = FineTuneRepurposer(source, ctx="cpu:0,1", **kw).fit(X, y)
    w1, w2 = _weights(one), _weights(two)
    for k in w1:
        np.testing.assert_allclose(w1[k], w2[k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(one.predict_proba(X_test), two.predict_proba(X_test), atol=1e-5)


# ---------------------------------------------------------------------- freezing
def test_frozen_layers_and_bn_stats_stay_fixed(source, task):
    X, y, _, _ = task
    model = FineTuneRepurposer(source, fixed_layers=("conv1_fwd", "bn1_fwd"),
                               **FAST).fit(X, y)
    w = _weights(model)
    src = {k: v.asnumpy() for k, v in {**source.arg_params, **source.aux_params}.items()}
    for name in ("conv1_weight", "bn1_gamma", "bn1_beta", "bn1_running_mean", "bn1_running_var"):
        np.testing.assert_array_equal(w[name], src[name], err_msg=name)
    # Unfrozen layers learn, and their batch-norm running statistics move.
    assert not np.array_equal(w["conv2_weight"], src["conv2_weight"])
    assert not np.array_equal(w["bn2_running_mean"], src["bn2_running_mean"])


def test_frozen_bn_stats_update_when_not_asked_to_freeze_them(source, task):
    X, y, _, _ = task
    model = FineTuneRepurposer(source, fixed_layers=("bn1_fwd",), freeze_bn_stats=False,
                               **FAST).fit(X, y)
    w = _weights(model)
    np.testing.assert_array_equal(w["bn1_gamma"], source.arg_params["bn1_gamma"].asnumpy())
    assert not np.array_equal(w["bn1_running_mean"],
                              source.aux_params["bn1_running_mean"].asnumpy())


def test_freeze_batchnorm_stats_rewrites_only_named_nodes(source):
    symbol = freeze_batchnorm_stats(source.symbol, ["bn1_fwd"])
    attrs = {n: a for n, a in symbol.attr_dict().items() if n.startswith("bn")}
    assert attrs["bn1_fwd"]["use_global_stats"] == "True"
    assert attrs["bn2_fwd"].get("use_global_stats", "False") == "False"


def test_transferred_lr_mult_zero_keeps_transferred_weights(source, task):
    X, y, _, _ = task
    model = FineTuneRepurposer(source, transferred_lr_mult=0.0, weight_decay=0.0,
                               freeze_bn_stats=True, **FAST).fit(X, y)
    w = _weights(model)
    np.testing.assert_array_equal(w["fc1_weight"], source.arg_params["fc1_weight"].asnumpy())
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"] * 1.5


# ---------------------------------------------------------------------- schedule, split, augment
def test_learning_rate_schedules():
    assert learning_rate_at(0, 0.1, "constant", 10) == 0.1
    assert [learning_rate_at(e, 1.0, "step", 6, step_epochs=(3, 5), step_factor=0.5)
            for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cosine = [learning_rate_at(e, 1.0, "cosine", 5) for e in range(5)]
    assert cosine[0] == 1.0 and all(a > b for a, b in zip(cosine, cosine[1:])) and cosine[-1] > 0
    warm = [learning_rate_at(e, 1.0, "cosine", 6, warmup_epochs=2) for e in range(3)]
    np.testing.assert_allclose(warm, [1 / 3, 2 / 3, 1.0])


def test_stratified_split_is_seeded_and_keeps_every_class():
    y = np.repeat(np.arange(4), [10, 10, 3, 1])
    train, val = stratified_split(y, 0.2, np.random.RandomState(0))
    train2, val2 = stratified_split(y, 0.2, np.random.RandomState(0))
    assert (val == val2).all() and (train == train2).all()
    assert set(y[train]) == {0, 1, 2, 3} and np.bincount(y[val]).tolist() == [2, 2, 1]
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)


def test_augment_shift_and_flip():
    X = np.zeros((50, 1, 8, 8), np.float32)
    X[:, :, 3:5, 3:5] = 1
    shifted = augment_images(X, "shift", np.random.RandomState(0))
    assert shifted.shape == X.shape and (shifted.sum(axis=(1, 2, 3)) == 4).all()
    assert not np.array_equal(shifted, X)
    Y = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8).repeat(20, 0)
    flipped = augment_images(Y, "flip", np.random.RandomState(0))
    assert all(np.array_equal(f, Y[0]) or np.array_equal(f, Y[0][..., ::-1]) for f in flipped)


# ---------------------------------------------------------------------- early stopping
def test_early_stopping_restores_best_epoch(source, task):
    X, y, X_test, _ = task
    kw = dict(lr_schedule="constant", learning_rate=0.05, batch_size=16, random_state=0)
    stopped = FineTuneRepurposer(source, n_epochs=30, patience=2, **kw).fit(X, y)
    losses = [r["val_loss"] for r in stopped.history_]
    assert stopped.best_epoch_ == int(np.argmin(losses)) + 1
    assert stopped.n_epochs_run_ == len(losses)
    assert stopped.n_epochs_run_ < 30 and stopped.n_epochs_run_ - stopped.best_epoch_ == 2
    replay = FineTuneRepurposer(source, n_epochs=stopped.best_epoch_, early_stopping=False,
                                **kw).fit(X, y)
    np.testing.assert_array_equal(stopped.decision_function(X_test),
                                  replay.decision_function(X_test))


def test_epoch_callback_sees_each_row_and_can_end_training(source, task):
    X, y, X_test, _ = task
    rows = []

    def callback(row):
        rows.append(row)
        return row["epoch"] < 2  # False after epoch 2 ends training

    model = FineTuneRepurposer(source, n_epochs=5, batch_size=16, random_state=0,
                               early_stopping=False).fit(X, y, epoch_callback=callback)
    assert model.n_epochs_run_ == 2 and rows == model.history_
    two = FineTuneRepurposer(source, n_epochs=5, batch_size=16, random_state=0,
                             early_stopping=False).fit(
        X, y, epoch_callback=lambda row: row["epoch"] < 2)
    np.testing.assert_array_equal(model.decision_function(X_test),
                                  two.decision_function(X_test))


def test_epoch_callback_exception_propagates(source, task):
    X, y, _, _ = task

    class Halt(Exception):
        pass

    def callback(row):
        raise Halt(row["epoch"])

    with pytest.raises(Halt, match="1"):
        FineTuneRepurposer(source, **FAST).fit(X, y, epoch_callback=callback)


def test_explicit_validation_data_and_adam(source, task):
    X, y, X_test, y_test = task
    model = FineTuneRepurposer(source, optimizer="adam", learning_rate=1e-3, **FAST)
    model.fit(X, y, X_val=X_test[:40], y_val=y_test[:40])
    assert model.history_[0]["val_accuracy"] is not None


# ---------------------------------------------------------------------- persistence
def test_save_load_predicts_identically(source, task, tmp_path):
    X, y, X_test, _ = task
    model = FineTuneRepurposer(source, hidden_units=(8,), batchnorm=True, fixed_below="bn1_fwd",
                               **FAST).fit(X, y)
    state, arrays = model._get_state()
    assert "net/ft_out_weight" in arrays and "net/bn1_running_mean" in arrays
    model.save(tmp_path / "ft")
    loaded = load(tmp_path / "ft")
    assert type(loaded) is FineTuneRepurposer and loaded.get_params()["hidden_units"] == (8,)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    assert list(loaded.classes_) == list(model.classes_)
    assert loaded.history_ == model.history_ and loaded.network_.sha256 == model.network_.sha256


def test_pickle_in_memory(source, task):
    import pickle

    X, y, X_test, _ = task
    model = FineTuneRepurposer(source, **FAST).fit(X, y)
    model.predict(X_test[:5])  # builds the cached block
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict_proba(X_test), model.predict_proba(X_test))


# ---------------------------------------------------------------------- checkpoints
class _StopAfter(logging.Handler):
    """Interrupts training (as Ctrl-C would) once an epoch's log line appears."""

    def __init__(self, epoch):
        super().__init__()
        self.marker = f"epoch {epoch}/"

    def emit(self, record):
        if self.marker in record.getMessage():
            raise KeyboardInterrupt


def test_checkpoint_resume_matches_uninterrupted(source, task, tmp_path):
    X, y, X_test, _ = task
    kw = dict(n_epochs=4, batch_size=16, random_state=0, optimizer="adam",
              learning_rate=1e-3, dropout=0.2, augment=True, early_stopping=True, patience=10)
    full = FineTuneRepurposer(source, **kw).fit(X, y)
    logger = logging.getLogger("repurpose.repurposers._training")
    handler, level = _StopAfter(2), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(KeyboardInterrupt):
            FineTuneRepurposer(source, checkpoint_dir=tmp_path / "ck", **kw).fit(X, y)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    meta, _ = read_checkpoint(tmp_path / "ck")
    assert meta["epoch"] == 1  # the checkpoint of epoch 2 was never written
    resumed = FineTuneRepurposer(source, checkpoint_dir=tmp_path / "ck", **kw)
    resumed.fit(X, y, resume=True)
    assert resumed.n_epochs_run_ == 4 and len(resumed.history_) == 4
    wf, wr = _weights(full), _weights(resumed)
    for k in wf:
        np.testing.assert_allclose(wf[k], wr[k], rtol=1e-6, atol=1e-7, err_msg=k)
    np.testing.assert_array_equal(full.predict(X_test), resumed.predict(X_test))
    files = sorted(os.listdir(tmp_path / "ck"))
    assert files == [CHECKPOINT_FILE, "epoch-0004.params"]


def test_checkpoint_dir_of_another_job_error(source, task, tmp_path):
    X, y, _, _ = task
    FineTuneRepurposer(source, checkpoint_dir=tmp_path, **FAST).fit(X, y)
    other = FineTuneRepurposer(source, checkpoint_dir=tmp_path, **dict(FAST, learning_rate=0.5))
    with pytest.raises(ValueError, match="another job.*learning_rate.*another checkpoint_dir"):
        other.fit(X, y)
    with pytest.raises(ValueError, match="another job"):
        other.fit(X, y, resume=True)
    with pytest.raises(ValueError, match="different data"):
        FineTuneRepurposer(source, checkpoint_dir=tmp_path, **FAST).fit(X[:-1], y[:-1])


def test_checkpoint_dir_of_same_job_needs_resume(source, task, tmp_path):
    X, y, _, _ = task
    first = FineTuneRepurposer(source, checkpoint_dir=tmp_path, **FAST).fit(X, y)
    again = FineTuneRepurposer(source, checkpoint_dir=tmp_path, **FAST)
    with pytest.raises(ValueError, match="resume=True"):
        again.fit(X, y)
    again.fit(X, y, resume=True)  # finished: restores the final state without training
    np.testing.assert_array_equal(first.decision_function(X), again.decision_function(X))


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    arrays = {"w": mx.nd.ones((2,))}
    write_checkpoint(tmp_path, {"epoch": 1, "fingerprint": "f"}, arrays)
    with pytest.raises((TypeError, ValueError, mx.base.MXNetError)):
        write_checkpoint(tmp_path, {"epoch": 2, "fingerprint": "f"}, {"w": "not an array"})
    meta, saved = read_checkpoint(tmp_path)
    assert meta["epoch"] == 1 and saved["w"].asnumpy().tolist() == [1, 1]
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_FILE, "epoch-0001.params"]


def test_optimizer_state_round_trip():
    states = {0: mx.nd.ones((2,)), 1: (mx.nd.zeros((3,)), mx.nd.ones((3,)) * 2), 2: None}
    structure, arrays = encode_optimizer_state(states)
    back = decode_optimizer_state(structure, arrays, mx.cpu())
    assert back[2] is None and isinstance(back[1], tuple)
    assert back[1][1].asnumpy().tolist() == [2, 2, 2] and back[0].shape == (2,)


# ---------------------------------------------------------------------- bad input
def test_unknown_layer_error_suggests(source, task):
    X, y, _, _ = task
    with pytest.raises(UnknownLayerError, match="Did you mean 'conv1_fwd'"):
        FineTuneRepurposer(source, fixed_layers=("conv1_fw",), **FAST).fit(X, y)
    with pytest.raises(UnknownLayerError, match="relu3_fwd"):
        FineTuneRepurposer(source, transfer_layer="relu3_fw", **FAST).fit(X, y)


def test_transfer_layer_output_error(source, task):
    X, y, _, _ = task
    with pytest.raises(InvalidParameterError, match="output layer.*below the output"):
        FineTuneRepurposer(source, transfer_layer="fc2_fwd", **FAST).fit(X, y)


def test_layer_above_transfer_layer_error(source, task):
    X, y, _, _ = task
    with pytest.raises(InvalidParameterError, match="above transfer_layer"):
        FineTuneRepurposer(source, transfer_layer="relu3_fwd", fixed_layers=("fc1_fwd",),
                           **FAST).fit(X, y)


def test_fixed_and_random_overlap_error(source, task):
    X, y, _, _ = task
    with pytest.raises(InvalidParameterError, match="conv2_fwd.*both fixed.*random"):
        FineTuneRepurposer(source, fixed_below="relu2_fwd", random_layers=("conv2_fwd",),
                           **FAST).fit(X, y)


def test_fixed_and_random_disjoint_ok(source, task):
    X, y, _, _ = task
    model = FineTuneRepurposer(source, fixed_below="relu2_fwd", random_layers=("conv3_fwd",),
                               **FAST).fit(X, y)
    assert not np.array_equal(_weights(model)["conv3_weight"],
                              source.arg_params["conv3_weight"].asnumpy())


def test_one_class_error(source, task):
    X, _, _, _ = task
    with pytest.raises(ValueError, match="at least 2 classes.*1 class"):
        FineTuneRepurposer(source, **FAST).fit(X, np.zeros(len(X)))


def test_validation_labels_missing_from_training_error(source, task):
    X, y, X_test, y_test = task
    keep = y != "nine"
    with pytest.raises(DataError, match="y_val holds label.*'nine'"):
        FineTuneRepurposer(source, **FAST).fit(X[keep], y[keep], X_val=X_test, y_val=y_test)


@pytest.mark.parametrize("params, match", [
    ({"optimizer": "sgdd"}, "optimizer must be one of.*Did you mean 'sgd'"),
    ({"learning_rate": -1}, "learning_rate must be a number"),
    ({"monitor": "val_acc"}, "monitor must be one of"),
    ({"augment": "rotate"}, "augment must be one of"),
    ({"hidden_units": (8, 0)}, "hidden_units"),
    ({"validation_fraction": 0.0}, "no validation data"),
    ({"dropout": 1.0}, "dropout must be a number in"),
])
def test_bad_parameters_error(source, task, params, match):
    X, y, _, _ = task
    with pytest.raises(InvalidParameterError, match=match):
        FineTuneRepurposer(source, **dict(FAST, **params)).fit(X, y)


def test_resume_without_checkpoint_dir_error(source, task):
    X, y, _, _ = task
    with pytest.raises(InvalidParameterError, match="checkpoint_dir"):
        FineTuneRepurposer(source, **FAST).fit(X, y, resume=True)


def test_wrong_input_shape_error(source, task):
    _, y, _, _ = task
    with pytest.raises(DataError, match=r"shape \(1, 4, 4\).*\(1, 8, 8\)"):
        FineTuneRepurposer(source, **FAST).fit(np.zeros((len(y), 1, 4, 4), np.float32), y)


def test_progress_bar_and_epoch_log(source, task, caplog):
    X, y, _, _ = task
    with caplog.at_level(logging.INFO, logger="repurpose"):
        FineTuneRepurposer(source, progress=True, **FAST).fit(X, y)
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert any("epoch 2/2" in line and "val_loss" in line for line in lines)

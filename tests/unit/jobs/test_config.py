"""Job configs: every problem found, named by key path, reported at once."""
import dataclasses
import json
import os

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repurpose import jobs as cfg
from repurpose.jobs._sections import job_sections
from repurpose.repurposers import _training
from repurpose.jobs import (JobConfig, check_layers, check_output_dir, config_from_dict,
                              dump_config, load_config, load_job_data, parse_overrides)
from repurpose.exceptions import InvalidParameterError


def _job(tmp_path, **sections):
    """A minimal valid job dict (builtin data, zoo model) with ``sections`` merged in."""
    raw = {"source": {"model": "digits_cnn"},
           "data": {"train": "shifted_digits", "classes": [5, 6, 7, 8, 9], "n_per_class": 4},
           "train": {"n_epochs": 2},
           "run": {"output_dir": str(tmp_path / "out")}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def _write(tmp_path, raw, name="job.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw) if name.endswith(".yaml") else json.dumps(raw))
    return path


# ---------------------------------------------------------------------- valid configs
def test_minimal_config_ok_with_defaults(tmp_path):
    job = load_config(_write(tmp_path, _job(tmp_path)))
    assert isinstance(job, JobConfig)
    assert job.data.kind == "builtin" and job.train.n_epochs == 2
    assert job.train.learning_rate == 0.01 and job.train.lr_schedule == "cosine"
    assert job.model.hidden_units == [] and job.run.ctx == "cpu"
    assert job.run.output_dir == str(tmp_path / "out")


def test_json_config_ok(tmp_path):
    job = load_config(_write(tmp_path, _job(tmp_path), name="job.json"))
    assert job.source.model == "digits_cnn"


def test_defaults_mirror_the_api():
    """Config defaults equal FineTuneRepurposer's (the signature given by the issue)."""
    api = dict(transfer_layer=None, hidden_units=(), dropout=0.0, batchnorm=False,
               fixed_layers=(), fixed_below=None, random_layers=(), optimizer="sgd",
               learning_rate=0.01, momentum=0.9, weight_decay=1e-4, transferred_lr_mult=1.0,
               lr_schedule="cosine", warmup_epochs=0, step_epochs=(), step_factor=0.1,
               n_epochs=20, batch_size=32, validation_fraction=0.2, early_stopping=True,
               patience=5, monitor="val_loss", freeze_bn_stats=True, augment=False, ctx="cpu")
    job = config_from_dict({"source": {"model": "digits_cnn"},
                            "data": {"train": "digits"}, "run": {"output_dir": "o"}})
    kwargs = job.to_repurposer_kwargs()
    for key, value in api.items():
        assert kwargs[key] == value, key
    assert kwargs["checkpoint_dir"].endswith("checkpoints") and kwargs["progress"] is False


def test_kwargs_are_immutable_and_named_like_the_api(tmp_path):
    job = config_from_dict(_job(tmp_path, model={"hidden_units": [16, 8],
                                                 "fixed_layers": "conv1_fwd"},
                                train={"seed": 7}))
    kwargs = job.to_repurposer_kwargs()
    assert kwargs["hidden_units"] == (16, 8) and kwargs["fixed_layers"] == ("conv1_fwd",)
    assert kwargs["random_state"] == 7 and "seed" not in kwargs
    assert kwargs["checkpoint_dir"] == str(tmp_path / "out" / "checkpoints")


def test_relative_paths_follow_the_config_file(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    raw = {"source": {"model": "digits_cnn"}, "data": {"train": "../imgs"},
           "train": {"n_epochs": 1}, "run": {"output_dir": "runs/1"}}
    job = load_config(_write(tmp_path / "jobs", raw))
    assert job.data.kind == "image_folder" and job.data.train == str(tmp_path / "imgs")
    assert job.run.output_dir == str(tmp_path / "jobs" / "runs" / "1")


def test_npy_data_ok(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((6, 1, 8, 8), np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 1] * 3))
    job = load_config(_write(tmp_path, _job(tmp_path, data={
        "train": {"X": "x.npy", "y": "y.npy"}, "classes": None, "n_per_class": None})))
    assert job.data.kind == "npy"
    X, y = load_job_data(job.data)["train"]
    assert X.shape == (6, 1, 8, 8) and len(y) == 6


def test_builtin_task_is_the_demo_task(tmp_path):
    from repurpose.demo import make_demo_task

    job = config_from_dict(_job(tmp_path, data={"n_per_class": 3, "seed": 1}))
    data = load_job_data(job.data)
    expected = make_demo_task(n_per_class=3, random_state=1)
    for got, want in zip(data["train"] + data["test"], expected):
        np.testing.assert_array_equal(got, want)
    assert data["validation"] is None


# ---------------------------------------------------------------------- problems
def _error(tmp_path, match, **sections):
    with pytest.raises(InvalidParameterError, match=match):
        load_config(_write(tmp_path, _job(tmp_path, **sections)))


def test_unknown_key_ok_when_spelled_right(tmp_path):
    assert load_config(_write(tmp_path, _job(tmp_path, train={"learning_rate": 0.1})))


def test_unknown_key_error_suggests(tmp_path):
    _error(tmp_path, r"train\.lr: unknown key\. Did you mean 'learning_rate'\?",
           train={"lr": 0.1})
    _error(tmp_path, r"model\.hiden_units: unknown key\. Did you mean 'hidden_units'",
           model={"hiden_units": [3]})


def test_unknown_section_error_suggests(tmp_path):
    raw = _job(tmp_path)
    raw["trian"] = {"n_epochs": 3}
    with pytest.raises(InvalidParameterError, match=r"trian: unknown section\. Did you mean "
                                                     r"'train'"):
        load_config(_write(tmp_path, raw))


@pytest.mark.parametrize("section, key, value, words", [
    ("train", "learning_rate", "fast", "train.learning_rate: must be a number in \\(0, 1000\\], "
                                       "got 'fast'"),
    ("train", "learning_rate", -0.1, r"must be a number in \(0, 1000\], got -0.1"),
    ("train", "n_epochs", 2.5, "train.n_epochs: must be an integer >= 1, got 2.5"),
    ("train", "batch_size", True, "train.batch_size: must be an integer >= 1, got True"),
    ("train", "early_stopping", "yes please", "train.early_stopping: must be True or False"),
    ("train", "validation_fraction", 1.0, r"must be a number in \[0, 1\), got 1.0"),
    ("train", "augment", "flipp", "Did you mean 'flip'"),
    ("model", "hidden_units", [8, -1], r"model.hidden_units: must be a sequence of positive "
                                       r"integers, got \[8, -1\]. Item 1 \(-1\) is not"),
    ("model", "dropout", float("nan"), "model.dropout: must be a number in"),
    ("source", "input_shape", "3x8x8", "source.input_shape: must be a list of positive"),
    ("run", "ctx", 0, "run.ctx: must be 'cpu'"),
])
def test_wrong_type_error(tmp_path, section, key, value, words):
    _error(tmp_path, words, **{section: {key: value}})


@pytest.mark.parametrize("section, key, value, words", [
    ("train", "optimizer", "sgdd", r"train\.optimizer: must be one of .* got 'sgdd'\. "
                                   r"Did you mean 'sgd'\?"),
    ("train", "lr_schedule", "cosin", "Did you mean 'cosine'"),
    ("train", "monitor", "loss", "train.monitor: must be one of"),
    ("data", "kind", "folder", "data.kind: must be one of 'image_folder'"),
    ("data", "normalize", "imagenett", "Did you mean 'imagenet'"),
])
def test_bad_choice_error(tmp_path, section, key, value, words):
    _error(tmp_path, words, **{section: {key: value}})


def test_bad_choice_ok(tmp_path):
    job = load_config(_write(tmp_path, _job(tmp_path, train={
        "optimizer": "adam", "lr_schedule": "step", "step_epochs": [1], "augment": "shift"})))
    assert job.train.optimizer == "adam" and job.train.step_epochs == [1]


@pytest.mark.parametrize("data, words", [
    ({"train": "no/such/folder", "classes": None, "n_per_class": None},
     r"data\.train: image folder '.*no/such/folder' does not exist"),
    ({"train": {"X": "x.npy", "y": "y.npy"}, "classes": None, "n_per_class": None},
     r"data\.train\.X: file '.*x\.npy' does not exist; data\.train\.y: file"),
    ({"train": "shifted_digit", "classes": None, "n_per_class": None},
     "Did you mean 'shifted_digits'"),
])
def test_missing_path_error(tmp_path, data, words):
    _error(tmp_path, words, data=data)


def test_missing_model_error_suggests_zoo_name(tmp_path):
    _error(tmp_path, r"source\.model: Model 'digits_cn' is neither .* nor a model-zoo name\. "
                     r"Did you mean 'digits_cnn'", source={"model": "digits_cn"})


def test_model_specs_with_prefixes(tmp_path, tiny_checkpoint):
    # The command line's spec reading, with paths relative to the job file's folder.
    prefix, epoch, _ = tiny_checkpoint
    job = load_config(_write(tmp_path, _job(tmp_path, source={"model": "zoo:digits_cnn"})))
    assert job.source.model == "zoo:digits_cnn"
    relative = os.path.relpath(prefix, tmp_path)
    job = load_config(_write(tmp_path, _job(tmp_path, source={
        "model": f"checkpoint:{relative}", "epoch": epoch})))
    assert job.source.model == f"checkpoint:{prefix}"
    _error(tmp_path, r"source\.model: Model 'hub:x' has the unknown prefix",
           source={"model": "hub:x"})
    _error(tmp_path, r"source\.model: 'digits_cn' is not a model-zoo name\. Did you mean",
           source={"model": "zoo:digits_cn"})


def test_checkpoint_model_ok(tmp_path, tiny_checkpoint):
    prefix, epoch, _ = tiny_checkpoint
    job = load_config(_write(tmp_path, _job(tmp_path, source={"model": prefix, "epoch": epoch})))
    assert job.source.model == prefix


def test_required_keys_error(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"has 3 problems: source\.model: missing.*"
                                                    r"data\.train: missing.*run\.output_dir: "
                                                    r"missing"):
        load_config(_write(tmp_path, {"train": {"n_epochs": 1}}))


def test_keys_of_another_data_kind_error(tmp_path):
    _error(tmp_path, r"data\.resize: applies to image_folder data only, but data\.kind is "
                     r"'builtin'", data={"resize": 32})


def test_early_stopping_without_validation_error(tmp_path):
    _error(tmp_path, "train.early_stopping: monitors 'val_loss', but there is no validation",
           train={"validation_fraction": 0})
    assert load_config(_write(tmp_path, _job(tmp_path, train={
        "validation_fraction": 0, "early_stopping": False})))


def test_several_problems_listed_at_once_with_their_count(tmp_path):
    raw = _job(tmp_path, train={"lr": 0.1, "learning_rate": "fast", "optimizer": "sgdd"},
               source={"model": "digits_cn"})
    path = _write(tmp_path, raw)
    with pytest.raises(InvalidParameterError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path} has 4 problems: ")
    for words in ("train.lr: unknown key", "train.learning_rate: must be a number in (0, 1000]",
                  "train.optimizer: must be one of", "source.model: Model 'digits_cn'"):
        assert words in message
    assert message.count("; ") == 3


def test_not_yaml_error(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("train: {n_epochs: 3\nrun: [\n")
    with pytest.raises(InvalidParameterError, match=r"job\.yaml is not valid YAML at line"):
        load_config(path)


def test_not_a_mapping_error(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(InvalidParameterError, match="top level: must be a mapping of sections"):
        load_config(path)


def test_missing_config_file_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Config file .* does not exist"):
        load_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------- overrides
def test_overrides_ok():
    assert parse_overrides(["train.n_epochs=3", "model.hidden_units=[8, 4]",
                            "train.seed=null", "run.ctx=cpu:0,1", "source.model=a=b"]) == {
        "train.n_epochs": 3, "model.hidden_units": [8, 4], "train.seed": None,
        "run.ctx": "cpu:0,1", "source.model": "a=b"}


@pytest.mark.parametrize("item", ["n_epochs=3", "train.n_epochs", ".x=1", "train.=1"])
def test_overrides_error(item):
    with pytest.raises(InvalidParameterError, match=r"--set has 1 problem: --set .*expected "
                                                    r"section\.key=value"):
        parse_overrides([item])


def test_overrides_replace_file_values(tmp_path):
    path = _write(tmp_path, _job(tmp_path))
    job = load_config(path, ["train.n_epochs=5", "train.learning_rate=0.5",
                             "model.hidden_units=[8]"])
    assert (job.train.n_epochs, job.train.learning_rate, job.model.hidden_units) == (5, 0.5, [8])


def test_overrides_are_validated_like_the_file(tmp_path):
    path = _write(tmp_path, _job(tmp_path))
    with pytest.raises(InvalidParameterError, match="has 2 problems") as info:
        load_config(path, ["train.epochs=3", "train.n_epochs=many"])
    assert "train.epochs: unknown key. Did you mean 'n_epochs'?" in str(info.value)
    assert "train.n_epochs: must be an integer >= 1, got 'many'" in str(info.value)


def test_override_paths_are_relative_to_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "jobs").mkdir()
    monkeypatch.chdir(tmp_path)
    job = load_config(_write(tmp_path / "jobs", _job(tmp_path)), ["run.output_dir=here"])
    assert job.run.output_dir == str(tmp_path / "here")


# ---------------------------------------------------------------------- job checks
def test_check_layers_ok(tmp_path):
    job = config_from_dict(_job(tmp_path, model={"transfer_layer": "fc1_relu_fwd"}))
    check_layers(job, ["conv1_fwd", "fc1_fwd", "fc1_relu_fwd"])


def test_check_layers_error_lists_every_unknown_layer(tmp_path):
    job = config_from_dict(_job(tmp_path, model={"transfer_layer": "fc1_relu",
                                                 "fixed_layers": ["conv1_fwd", "conv9"]}))
    with pytest.raises(InvalidParameterError,
                       match=r"2 problems: model\.transfer_layer: unknown layer 'fc1_relu'\. "
                             r"Did you mean 'fc1_relu_fwd'.*model\.fixed_layers\[1\]: unknown "
                             r"layer 'conv9'"):
        check_layers(job, ["conv1_fwd", "fc1_fwd", "fc1_relu_fwd"])


def test_output_dir_new_ok_and_resume_error(tmp_path):
    job = config_from_dict(_job(tmp_path))
    assert check_output_dir(job) == "new"
    with pytest.raises(FileNotFoundError, match="holds no job to resume"):
        check_output_dir(job, resume=True)


def test_output_dir_of_this_job_needs_resume(tmp_path):
    job = config_from_dict(_job(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    (out / cfg.RESOLVED_CONFIG_NAME).write_text(dump_config(job))
    assert check_output_dir(job, resume=True) == "resume"
    with pytest.raises(FileExistsError, match="Pass --resume to continue it"):
        check_output_dir(job)


def test_output_dir_of_another_job_error(tmp_path):
    job = config_from_dict(_job(tmp_path))
    other = config_from_dict(_job(tmp_path, train={"n_epochs": 7}))
    out = tmp_path / "out"
    out.mkdir()
    (out / cfg.RESOLVED_CONFIG_NAME).write_text(dump_config(other))
    for resume in (False, True):
        with pytest.raises(FileExistsError, match=r"holds another job's files: .* differs in "
                                                  r"train\.n_epochs \(2 here, 7 there\)"):
            check_output_dir(job, resume=resume)


def _written_before_download_existed(job):
    resolved = yaml.safe_load(dump_config(job))
    del resolved["source"]["download"]
    return yaml.safe_dump(resolved)


def test_output_dir_of_a_job_from_before_an_upgrade_resumes(tmp_path):
    """A key added since the job started (source.download) counts as its default."""
    job = config_from_dict(_job(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    (out / cfg.RESOLVED_CONFIG_NAME).write_text(_written_before_download_existed(job))
    assert check_output_dir(job, resume=True) == "resume"


def test_output_dir_of_a_job_from_before_an_upgrade_with_a_new_value_error(tmp_path):
    job = config_from_dict(_job(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    (out / cfg.RESOLVED_CONFIG_NAME).write_text(_written_before_download_existed(job))
    job.source.download = True
    with pytest.raises(FileExistsError, match=r"differs in source\.download \(True here, "
                                              r"False there\)"):
        check_output_dir(job, resume=True)


def test_output_dir_with_foreign_files_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a repurpose job's files"):
        check_output_dir(config_from_dict(_job(tmp_path)))


# ---------------------------------------------------------------------- properties
def test_defaults_round_trip(tmp_path):
    job = config_from_dict(_job(tmp_path))
    again = config_from_dict(yaml.safe_load(dump_config(job)))
    assert again == job


_valid_train = st.fixed_dictionaries({}, optional={
    "optimizer": st.sampled_from(_training.OPTIMIZERS),
    "learning_rate": st.floats(1e-6, 10),
    "momentum": st.floats(0, 0.99),
    "weight_decay": st.floats(0, 1),
    "transferred_lr_mult": st.floats(0, 10),
    "n_epochs": st.integers(1, 100),
    "batch_size": st.integers(1, 512),
    "validation_fraction": st.floats(0.01, 0.9),
    "patience": st.integers(1, 20),
    "monitor": st.sampled_from(tuple(_training.MONITORS)),
    "freeze_bn_stats": st.booleans(),
    "augment": st.sampled_from(_training.AUGMENTATIONS),
    "seed": st.none() | st.integers(0, 2 ** 31),
})
_valid_model = st.fixed_dictionaries({}, optional={
    "hidden_units": st.lists(st.integers(1, 1024), max_size=3),
    "dropout": st.floats(0, 0.9),
    "batchnorm": st.booleans(),
    "fixed_layers": st.lists(st.sampled_from(["conv1_fwd", "relu3_fwd"]), max_size=2),
    "transfer_layer": st.none() | st.just("fc1_relu_fwd"),
})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(train=_valid_train, model=_valid_model)
def test_valid_configs_round_trip_through_yaml(tmp_path, train, model):
    job = config_from_dict(_job(tmp_path, train=train, model=model))
    assert config_from_dict(yaml.safe_load(dump_config(job))) == job


_garbage = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                     st.text(max_size=6), st.lists(st.integers(-2, 2), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_keys = [(section, f.name) for section, c in job_sections().items()
         for f in dataclasses.fields(c)]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(_keys), value=_garbage)
def test_garbage_values_raise_invalid_parameter_error_or_pass(tmp_path, key, value):
    section, name = key
    raw = _job(tmp_path)
    raw.setdefault(section, {})[name] = value
    try:
        job = config_from_dict(raw)
    except InvalidParameterError as err:
        assert f"{section}.{name}" in str(err) or "data." in str(err) or "train." in str(err)
    else:  # accepted values survive a round trip
        assert config_from_dict(yaml.safe_load(dump_config(job))) == job


def test_docs_list_every_key():
    import pathlib

    docs = pathlib.Path(__file__).parents[3] / "docs" / "guide" / "jobs.md"
    text = docs.read_text()
    for key, _, _, _ in cfg.field_reference():
        section, name = key.split(".")
        assert f"### `{section}`" in text and f"| `{name}` |" in text, key


def test_demo_job_file_is_valid():
    import pathlib

    path = pathlib.Path(__file__).parents[3] / "demos" / "jobs" / "digits_finetune.yaml"
    job = load_config(path)
    assert job.data.kind == "builtin" and job.model.transfer_layer == "fc1_relu_fwd"


def test_read_section_ok_and_error():
    # The one section reader, shared by job configs and tuning configs (repurpose.jobs._tune).
    problems = []
    train = cfg.read_section("train", cfg.TrainConfig, {"n_epochs": 3}, problems)
    assert problems == [] and train.n_epochs == 3 and train.step_epochs == []
    run = cfg.read_section("run", cfg.RunConfig, {"ctx": 3, "out": "x"}, problems)
    assert run.ctx == "cpu"  # a bad value keeps the default
    assert problems == ["run.ctx: must be 'cpu', 'gpu', 'gpu:0,1', ... or a list of them, "
                        "got 3", "run.out: unknown key. Did you mean 'output_dir'?",
                        "run.output_dir: missing. Give folder for the job's files; new or "
                        "empty, or this job's own with --resume"]
    cfg.read_section("model", cfg.ModelConfig, ["dropout"], problems)
    assert problems[-1] == "model: must be a mapping of keys, got ['dropout']"



def test_duplicate_keys_in_a_job_file_are_an_error_naming_both_lines(tmp_path):
    # issue 13: PyYAML silently kept the last of two equal keys.
    path = tmp_path / "job.yaml"
    path.write_text("source: {model: digits_cnn}\ndata: {train: digits}\ntrain:\n"
                    "  n_epochs: 3\n  learning_rate: 0.1\n  n_epochs: 30\n"
                    f"run: {{output_dir: {tmp_path / 'out'}}}\n")
    with pytest.raises(InvalidParameterError,
                       match=r"job.yaml: key 'n_epochs' is given twice, at lines 4 and 6"):
        load_config(path)
    path.write_text(f"source: {{model: digits_cnn}}\ndata: {{train: digits}}\n"
                    f"run: {{output_dir: {tmp_path / 'out'}}}\nsource: {{model: x}}\n")
    with pytest.raises(InvalidParameterError, match=r"key 'source' is given twice, at lines "
                                                    r"1 and 4"):
        load_config(path)

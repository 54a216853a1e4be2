"""A hyper-parameter is declared once: FineTuneRepurposer's signature, docstring line and
constraint entry. The job schema, ``--set``, the tuner's search space and the docs reference
read it from there; a subclass that adds one gets all four."""
import inspect
import pathlib

import pytest

from repurpose import SourceModel
from repurpose._validation import Real, store_params
from repurpose.exceptions import InvalidParameterError
from repurpose.jobs import config_from_dict, field_reference, tune_config_from_dict
from repurpose.jobs._sections import MODEL_PARAMS, SET_BY_JOB
from repurpose.jobs._reference import reference_tables, update_reference
from repurpose.jobs._schema import parameter_docs
from repurpose.jobs._tune import _check_estimator_params
from repurpose.repurposers import FineTuneRepurposer

JOBS_MD = pathlib.Path(__file__).parents[3] / "docs" / "guide" / "jobs.md"


class SmoothedFineTuneRepurposer(FineTuneRepurposer):
    """Fine-tuning with one more hyper-parameter (what a developer adding one writes).

    Parameters
    ----------
    label_smoothing : float, default=0.0
        Share of each one-hot target spread evenly over the other classes.
    """

    _parameter_constraints = {**FineTuneRepurposer._parameter_constraints,
                              "label_smoothing": Real(0, 1, high_open=True)}

    def __init__(self, source, label_smoothing=0.0, transfer_layer=None, hidden_units=(),
                 dropout=0.0, batchnorm=False, fixed_layers=(), fixed_below=None,
                 random_layers=(), optimizer="sgd", learning_rate=0.01, momentum=0.9,
                 weight_decay=1e-4, transferred_lr_mult=1.0, lr_schedule="cosine",
                 warmup_epochs=0, step_epochs=(), step_factor=0.1, n_epochs=20, batch_size=32,
                 validation_fraction=0.2, early_stopping=True, patience=5,
                 monitor="val_loss", freeze_bn_stats=True, augment=False, ctx="cpu",
                 kvstore=None, checkpoint_dir=None, progress=False, random_state=None):
        store_params(self, locals())


def _job(tmp_path, **train):
    return {"source": {"model": "digits_cnn"}, "data": {"train": "digits"},
            "train": train, "run": {"output_dir": str(tmp_path / "out")}}


def test_every_parameter_has_one_constraint_one_doc_line_and_one_job_key():
    names = [p for p in inspect.signature(FineTuneRepurposer.__init__).parameters
             if p != "self"]
    docs = parameter_docs(FineTuneRepurposer)
    keys = {key.split(".", 1)[1] for key, *_ in field_reference()
            if key.split(".")[0] in ("model", "train")}
    for name in names:
        if name in ("source", "ctx", "kvstore", "random_state"):
            continue  # checked where they are resolved (contexts, kvstore, seeding)
        assert name in FineTuneRepurposer._parameter_constraints, name
        assert docs.get(name) and " : " not in docs[name], (name, docs.get(name))
    assert keys == (set(names) - set(SET_BY_JOB)) | {"seed"}
    assert set(MODEL_PARAMS) <= keys


def test_a_new_parameter_reaches_the_job_schema_and_set(tmp_path):
    job = config_from_dict(_job(tmp_path, label_smoothing=0.1),
                           overrides=["train.n_epochs=2"], estimator=SmoothedFineTuneRepurposer)
    assert job.train.label_smoothing == 0.1 and job.train.n_epochs == 2
    kwargs = job.to_repurposer_kwargs()
    model = SmoothedFineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), **kwargs)
    assert model.get_params()["label_smoothing"] == 0.1
    job = config_from_dict(_job(tmp_path), overrides=["train.label_smoothing=0.2"],
                           estimator=SmoothedFineTuneRepurposer)
    assert job.train.label_smoothing == 0.2
    with pytest.raises(InvalidParameterError,
                       match=r"train.label_smoothing: must be a number in \[0, 1\), got 1.5"):
        config_from_dict(_job(tmp_path, label_smoothing=1.5),
                         estimator=SmoothedFineTuneRepurposer)
    # The plain estimator has no such key: the schema is the estimator's.
    with pytest.raises(InvalidParameterError, match="train.label_smoothing: unknown key"):
        config_from_dict(_job(tmp_path, label_smoothing=0.1))


def test_a_new_parameter_is_validated_by_the_estimator():
    source = SourceModel.from_zoo("digits_cnn")
    with pytest.raises(InvalidParameterError, match=r"label_smoothing must be a number in "
                                                    r"\[0, 1\), got -0.1\."):
        SmoothedFineTuneRepurposer(source, label_smoothing=-0.1)._validate_params()


def test_a_new_parameter_is_tunable(tmp_path):
    def tune(high):
        raw = _job(tmp_path)
        raw["tune"] = {"estimator": "finetune", "n_trials": 2, "search_space": {
            "label_smoothing": {"type": "real", "low": 0.0, "high": high}}}
        return tune_config_from_dict(raw, estimator=SmoothedFineTuneRepurposer)
    cfg = tune(0.3)
    assert list(cfg.space.dimensions) == ["label_smoothing"]
    source = SourceModel.from_zoo("digits_cnn")
    _check_estimator_params(cfg, source)  # every end of the range is allowed
    with pytest.raises(InvalidParameterError,
                       match=r"tune.search_space.label_smoothing.high: label_smoothing must "
                             r"be a number in \[0, 1\), got 1.5"):
        _check_estimator_params(tune(1.5), source)


def test_a_new_parameter_is_in_the_docs_reference():
    rows = {key: (default, accepts, doc) for key, default, accepts, doc in
            field_reference(SmoothedFineTuneRepurposer)}
    assert rows["train.label_smoothing"] == (
        0.0, "a number in [0, 1)", "share of each one-hot target spread evenly over the "
                                   "other classes")
    assert "| `label_smoothing` | a number in [0, 1) | `0.0` |" in \
        reference_tables(SmoothedFineTuneRepurposer)["train"]


def test_the_docs_page_shows_the_current_reference(tmp_path):
    copy = tmp_path / "jobs.md"
    copy.write_text(JOBS_MD.read_text())
    assert not update_reference(copy), (
        "docs/guide/jobs.md's key tables are out of date; run "
        "`python -c \"from repurpose.jobs._reference import update_reference as u; "
        "u('docs/guide/jobs.md')\"`")

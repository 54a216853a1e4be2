"""The fine-tuning job runner behind ``repurpose finetune --config job.yaml``.

Cheap checks first (the file, the output folder, the launcher's environment), then the source
model and the layers the file names, then the data, all before any training; then
:class:`~repurpose.repurposers.FineTuneRepurposer` trains with checkpoints in
``<output_dir>/checkpoints`` (so ``resume`` continues a killed job), and the job writes
``model/``, ``metrics.json`` and ``training_curve.png`` next to ``config.resolved.yaml``.
"""
import contextlib
import dataclasses
import logging
import os
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from .. import metrics
from ..exceptions import ContextError, DataError, InvalidParameterError, UnknownLayerError
from ..persist import atomic_write, write_json
from ..plots import plot_training_history
from ..repurposers._distributed import DMLC_VARIABLES, get_kvstore, launch_environment
from ..source import SourceModel
from ._config import check_layers, check_output_dir, dump_config, load_config
from ._data import check_splits, load_job_data
from ._sections import FINETUNE_OUTPUT, RESOLVED_CONFIG_NAME

logger = logging.getLogger(__name__)

__all__ = ["JobFailedError", "FinetuneResult", "run_finetune", "load_source"]

# Errors that mean "the job is wrong", not "the run failed": raised as they are from fit.
_CONFIG_ERRORS = (InvalidParameterError, UnknownLayerError, ContextError, DataError)


class JobFailedError(RuntimeError):
    """Training started and then failed (the command line exits with status 1).

    Examples
    --------
    >>> issubclass(JobFailedError, RuntimeError)  # a failure of the run, not of its input
    True
    """


@dataclasses.dataclass
class FinetuneResult:
    """What a finished fine-tuning job did.

    Parameters
    ----------
    model : FineTuneRepurposer
        The fitted estimator.
    report : dict or None
        What ``metrics.json`` holds (None on workers other than rank 0, which write nothing).
    output_dir : str
    rank, n_workers : int
        This process's place in a distributed job (0 and 1 in one process).

    Examples
    --------
    See :func:`run_finetune`; in one process:

    >>> FinetuneResult(model=None, report=None, output_dir='out').rank
    0
    """

    model: object
    report: dict
    output_dir: str
    rank: int = 0
    n_workers: int = 1


def load_source(section):
    """The :class:`~repurpose.SourceModel` a job's ``source`` section names."""
    return SourceModel.from_spec(section.model, epoch=section.epoch,
                                 input_shape=tuple(section.input_shape)
                                 if section.input_shape else None,
                                 weights=section.weights, download=section.download)


def _launch_command(job, config):
    d = job.distributed
    return (f"repurpose launch --workers {d.workers} --servers {d.servers} -- repurpose "
            f"finetune --config {config}")


def _join_distributed_job(job, config):
    """Check the launcher's environment against ``distributed``, join the job, return its kv.

    Every worker checks the output folder before the barrier that follows, and only rank 0
    writes to it afterwards, so all of them see the folder as it was before the job.
    """
    d = job.distributed
    if not os.environ.get("DMLC_ROLE"):
        raise InvalidParameterError(
            f"{config} sets distributed.kvstore: {d.kvstore}, but this process was not "
            f"started by a launcher ({', '.join(DMLC_VARIABLES)} are not set). Run "
            f"`{_launch_command(job, config)}` on one machine, or MXNet's tools/launch.py on "
            f"several (docs/guide/distributed_finetuning.md).")
    env = launch_environment(kvstore=d.kvstore)
    for key, ours, theirs in (("workers", d.workers, env["n_workers"]),
                              ("servers", d.servers, env["n_servers"])):
        if ours != theirs:
            raise InvalidParameterError(
                f"{config} sets distributed.{key}: {ours}, but the launcher started "
                f"{theirs} (DMLC_NUM_{key[:-1].upper()}={theirs}). Launch with "
                f"`{_launch_command(job, config)}` or change distributed.{key}.")
    return get_kvstore(d.kvstore)


def run_finetune(config, overrides=None, resume=False, overwrite=False, progress=False):
    """Run the fine-tuning job of the file ``config``.

    Parameters
    ----------
    config : str or path-like
        The job file (YAML or JSON); see ``docs/guide/jobs.md``.
    overrides : list of str, default=None
        ``['train.n_epochs=3', ...]`` (``--set``).
    resume : bool, default=False
        Continue the unfinished job in ``run.output_dir`` from its last checkpoint.
    overwrite : bool, default=False
        Start again in a ``run.output_dir`` that holds an earlier job (only a job's files
        are removed).
    progress : bool, default=False
        A progress bar over the epochs.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    InvalidParameterError, UnknownLayerError, DataError, ContextError, FileExistsError
        For anything wrong with the job, before any training.
    LockedError
        If another process runs a job in ``run.output_dir`` (it holds the folder's lock
        from before the folder is checked to its end); the message names it.
    JobFailedError
        If training or writing the outputs fails; the checkpoints let ``resume`` continue.

    Examples
    --------
    >>> import os, tempfile, yaml
    >>> folder = tempfile.mkdtemp()
    >>> job = {'source': {'model': 'digits_cnn'}, 'train': {'n_epochs': 2},
    ...        'data': {'train': 'shifted_digits', 'classes': [5, 6], 'n_per_class': 8},
    ...        'run': {'output_dir': 'out'}}
    >>> with open(os.path.join(folder, 'job.yaml'), 'w') as handle:
    ...     yaml.safe_dump(job, handle)
    >>> result = run_finetune(os.path.join(folder, 'job.yaml'))
    >>> result.report['n_epochs_run'], sorted(os.listdir(result.output_dir))
    (2, ['checkpoints', 'config.resolved.yaml', 'metrics.json', 'model', 'training_curve.png'])
    """
    # Long for its docstring; the body is the job's five steps in order, each a few calls.
    started = time.perf_counter()
    config = os.fspath(config)
    # 1. Everything cheap first: the config (keys, types, choices, paths), the output folder.
    job = load_config(config, overrides=overrides)
    kv = _join_distributed_job(job, config) if job.distributed.kvstore else None
    rank = 0 if kv is None else kv.rank
    with contextlib.ExitStack() as stack:
        if rank == 0:  # the writer; held from before the folder is looked at to the end
            stack.enter_context(FINETUNE_OUTPUT.lock(job.run.output_dir))
        # Only rank 0 replaces an earlier run (--overwrite); the others start with it.
        state = check_output_dir(job, resume=resume, overwrite=overwrite) \
            if rank == 0 or not overwrite else "new"
        if rank == 0:
            FINETUNE_OUTPUT.remove_leftovers(job.run.output_dir)
        if kv is not None:
            kv._barrier()  # every worker has checked the folder; now rank 0 may write to it
        return _train(job, config, kv, state, resume, progress, started)


def _train(job, config, kv, state, resume, progress, started):
    """Steps 2-5 of :func:`run_finetune`, on a checked output folder."""
    rank = 0 if kv is None else kv.rank
    # 2. The source model and the layers the config names; 3. the data.
    source = load_source(job.source)
    check_layers(job, source.layer_names)
    data = load_job_data(job.data)
    check_splits(data)
    X, y = data["train"]
    model = job.estimator(source, **dict(job.to_repurposer_kwargs(), progress=progress))
    out = job.run.output_dir
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        if state == "new":
            _write_text(os.path.join(out, RESOLVED_CONFIG_NAME), dump_config(job))
    logger.info("Job %s: %s %s on %d images (%d classes) for up to %d epochs, output %s",
                config, "resuming" if resume else "fine-tuning", job.source.model, len(y),
                len(np.unique(y)), job.train.n_epochs, out)
    # 4. Train.
    X_val, y_val = data["validation"] if data["validation"] is not None else (None, None)
    try:
        model.fit(X, y, X_val=X_val, y_val=y_val, resume=resume)
    except _CONFIG_ERRORS:
        raise
    except Exception as err:  # noqa: BLE001 - reported as a failed run, cause chained
        again = f"repurpose finetune --config {config} --resume"
        if kv is not None:
            again = f"{_launch_command(job, config)} --resume"
        raise JobFailedError(
            f"training failed ({type(err).__name__}: {err}). The checkpoints in "
            f"{job.checkpoint_dir} let `{again}` continue after the last finished "
            f"epoch.") from err
    n_workers = 1 if kv is None else kv.num_workers
    if rank != 0:
        return FinetuneResult(model, None, out, rank, n_workers)
    # 5. Outputs.
    try:
        report = _write_outputs(job, config, model, data, started)
    except Exception as err:  # noqa: BLE001 - the model is trained; say so
        raise JobFailedError(f"writing the outputs to {out} failed ({type(err).__name__}: "
                             f"{err}).") from err
    return FinetuneResult(model, report, out, rank, n_workers)


def _write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    atomic_write(path, write, overwrite=True)


def _write_outputs(job, config, model, data, started):
    out = job.run.output_dir
    y, X_val = data["train"][1], (data["validation"] or (None, None))[0]
    history = [dict(row) for row in model.history_]
    report = {"config": os.path.abspath(config), "source_model": job.source.model,
              "classes": np.asarray(model.classes_).tolist(),
              "n_train": int(len(y)),
              "n_validation": None if X_val is None else int(len(X_val)),
              "validation_fraction": (None if X_val is not None
                                      else job.train.validation_fraction),
              "n_epochs_run": len(history), "history": history, "test": None,
              # damaged images left out under data.on_damaged: skip, {path: why}
              "skipped_images": dict(getattr(data, "skipped", {})),
              "seconds": None}
    if data["test"] is not None:
        X_test, y_test = data["test"]
        proba = model.predict_proba(X_test)
        report["test"] = {"n_samples": int(len(y_test)),
                          **metrics.summary(y_test, proba, model.classes_)}
        logger.info("Test: accuracy %.3f, NLL %.3f on %d images", report["test"]["accuracy"],
                    report["test"]["nll"], len(y_test))
    model.save(os.path.join(out, "model"))
    figure = plot_training_history(history)

    def write_png(tmp):  # an Agg canvas of its own: no window, whatever the backend
        FigureCanvasAgg(figure).print_figure(tmp, dpi=100, format="png")
    atomic_write(os.path.join(out, "training_curve.png"), write_png, overwrite=True)
    report["seconds"] = time.perf_counter() - started
    write_json(os.path.join(out, "metrics.json"), report, overwrite=True)
    return report

"""Command ``tune``: Bayesian optimisation of a head or a fine-tuning job from a config file
(:mod:`repurpose.jobs`), its trials one at a time or several at once on a Dask cluster
(``--scheduler``, ``--workers``); prints a summary of the best configuration (the whole of it,
with a config snippet, is in ``best.json``), the saved model's folder and the plots. Imports
happen when the command runs."""
import logging
import os

from ._commands import add_job_args

__all__ = ["add_commands"]


def _run_tune(args):
    from ..jobs import BEST_NAME, JOURNAL_NAME, TRIALS_NAME, load_tune_config, run_tuning

    if not args.quiet:  # one line per trial unless -q (or everything with -v)
        for name in ("repurpose.bo", "repurpose.jobs"):
            if logging.getLogger(name).getEffectiveLevel() > logging.INFO:
                logging.getLogger(name).setLevel(logging.INFO)
    cfg = load_tune_config(args.config, overrides=args.set)
    result = run_tuning(cfg, resume=args.resume, overwrite=args.overwrite,
                        progress=not (args.no_progress or args.quiet), scheduler=args.scheduler,
                        n_workers=args.workers)
    report = result.report
    if result.already_finished:
        print(f"The study in {result.output_dir} had already finished: nothing was run or "
              f"refitted.")
    failed = f", {report['n_failed']} failed" if report["n_failed"] else ""
    print(f"Best {report['metric']} of {report['n_trials']} trials{failed}: "
          f"{report['best_value']:.4g}")
    print("Best parameters: " + ", ".join(f"{k}={_compact(v)}" for k, v in
                                          result.best_params.items()))
    if result.test is not None:
        print(f"Test ({result.test['n_samples']} samples, best configuration refitted on all "
              f"training data): accuracy {result.test['accuracy']:.4f}, NLL "
              f"{result.test['nll']:.4f}")
    print(f"Best model (refitted on all training data): {result.model_dir} "
          f"(repurpose.load reads it)")
    written = [os.path.basename(path) for path in result.plots] + [TRIALS_NAME, JOURNAL_NAME]
    print(f"Wrote {os.path.join(result.output_dir, BEST_NAME)} (with a config snippet and the "
          f"Python call), {', '.join(written)}")


def _compact(value):
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def add_commands(commands, common):
    """Register ``tune`` on ``commands`` (argparse subparsers); ``common`` holds the flags
    of every command."""
    p = commands.add_parser(
        "tune", parents=[common],
        help="tune a head or a fine-tuning job by Bayesian optimisation from a YAML/JSON "
             "config (docs/guide/tuning.md)")
    add_job_args(p, "tuning config", "tune.n_trials=40",
                 resume_help="continue the study in run.output_dir; finished trials are kept",
                 overwrite_help="start again in a run.output_dir that holds an earlier tuning "
                                "run (only a tuning run's files are removed)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the trials on the Dask cluster of this scheduler "
                        "(tcp://HOST:8786), each told as it finishes")
    p.add_argument("--workers", metavar="K", type=int,
                   help="trials running at once (default: 1, or every worker thread of "
                        "--scheduler's cluster); K > 1 without --scheduler starts a local "
                        "Dask cluster of K processes")
    p.set_defaults(run=_run_tune)

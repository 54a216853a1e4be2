"""Jobs: the application layer the command line (and scripts) run on.

A job is a YAML/JSON file of typed sections (``source``, ``data``, ``model``, ``train``,
``run``, ``distributed``; tuning jobs add ``tune``) checked all at once before any long
work, an output folder with one protocol (new, resumed or replaced), and a runner:
fine-tuning, tuning, extraction and prediction. The ``model`` and ``train`` sections are
read from :class:`~repurpose.repurposers.FineTuneRepurposer`'s own signature and constraint
table, so a hyper-parameter is declared once. See ``docs/guide/jobs.md``.
"""
from ._config import (BUILTIN_JOB_DATASETS, DATA_KINDS, RESOLVED_CONFIG_NAME, DataConfig,
                      DistributedConfig, JobConfig, ModelConfig, RunConfig, SourceConfig,
                      TrainConfig, check_layers, check_output_dir, check_paths,
                      config_from_dict, dump_config, field_reference, load_config,
                      load_job_data, make_image_folder, parse_overrides, problems_message,
                      read_config_file, read_image_folder, read_section, with_added_defaults)
from ._tune import (BEST_NAME, ESTIMATORS, JOURNAL_NAME, RESOLVED_TUNE_CONFIG_NAME,
                    TRIALS_NAME, TuneConfig, TuneResult, TuneSection, check_tune_output_dir,
                    load_tune_config, run_tuning, tune_config_from_dict)

__all__ = ["JobConfig", "SourceConfig", "DataConfig", "ModelConfig", "TrainConfig",
           "RunConfig", "DistributedConfig", "load_config", "config_from_dict",
           "parse_overrides", "dump_config", "check_layers", "check_output_dir",
           "with_added_defaults", "load_job_data", "read_image_folder", "make_image_folder",
           "field_reference", "read_section", "check_paths", "read_config_file",
           "problems_message", "RESOLVED_CONFIG_NAME", "DATA_KINDS", "BUILTIN_JOB_DATASETS",
           "TuneConfig", "TuneSection", "TuneResult", "load_tune_config",
           "tune_config_from_dict", "check_tune_output_dir", "run_tuning", "ESTIMATORS",
           "RESOLVED_TUNE_CONFIG_NAME", "JOURNAL_NAME", "TRIALS_NAME", "BEST_NAME"]

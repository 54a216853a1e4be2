"""Jobs: the application layer the command line (and scripts) run on.

A job is a YAML/JSON file of typed sections (``source``, ``data``, ``model``, ``train``,
``run``, ``distributed``; tuning jobs add ``tune``) checked all at once before any long
work, an output folder with one protocol (new, resumed or replaced), and a runner:
fine-tuning, tuning, extraction and prediction. The ``model`` and ``train`` sections are
read from :class:`~repurpose.repurposers.FineTuneRepurposer`'s own signature and constraint
table, so a hyper-parameter is declared once. See ``docs/guide/jobs.md``.
"""
from ._config import (check_layers, check_output_dir, check_paths, config_from_dict,
                      dump_config, field_reference, load_config, read_config_file,
                      with_added_defaults)
from ._data import check_splits, load_job_data
from ._extract import ExtractResult, extract_job
from ._finetune import FinetuneResult, JobFailedError, run_finetune
from ._schema import parse_overrides, problems_message, read_section
from ._sections import (DATA_KINDS, RESOLVED_CONFIG_NAME, DataConfig, DistributedConfig,
                        JobConfig, ModelConfig, RunConfig, SourceConfig, TrainConfig)
from ._tune import TuneResult, run_tuning
from ._tune_config import (BEST_NAME, ESTIMATORS, JOURNAL_NAME, RESOLVED_TUNE_CONFIG_NAME,
                           TRIALS_NAME, TuneConfig, TuneSection, check_tune_output_dir,
                           load_tune_config, tune_config_from_dict)

__all__ = ["JobConfig", "SourceConfig", "DataConfig", "ModelConfig", "TrainConfig",
           "RunConfig", "DistributedConfig", "load_config", "config_from_dict",
           "parse_overrides", "dump_config", "check_layers", "check_output_dir",
           "with_added_defaults", "load_job_data", "check_splits", "field_reference",
           "read_section", "check_paths", "read_config_file", "problems_message",
           "RESOLVED_CONFIG_NAME", "DATA_KINDS",
           "TuneConfig", "TuneSection", "TuneResult", "load_tune_config",
           "tune_config_from_dict", "check_tune_output_dir", "run_tuning", "ESTIMATORS",
           "RESOLVED_TUNE_CONFIG_NAME", "JOURNAL_NAME", "TRIALS_NAME", "BEST_NAME",
           "run_finetune", "FinetuneResult", "JobFailedError", "extract_job", "ExtractResult"]

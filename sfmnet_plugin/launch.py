"""What every launcher does before BasicSR's pipeline takes over the command line."""
import importlib
import sys

import torch

from sfmnet_plugin._compat import normalize_local_rank_argument
from sfmnet_plugin.option_files import default_root_path, resolved_option_argv
from sfmnet_plugin.preflight import check_run
from sfmnet_plugin.run_session import run_session

PIPELINES = {'train': ('basicsr.train', 'train_pipeline'), 'test': ('basicsr.test', 'test_pipeline')}


def run_basicsr_pipeline(stage, root_path=None):
    """Run BasicSR's ``stage`` pipeline on ``sys.argv`` with ``_base_`` options merged and torch
    launchers' ``--local-rank`` understood; outputs go under ``root_path`` (default: see
    :func:`sfmnet_plugin.option_files.default_root_path`).

    The caller has imported ``sfmnet_plugin`` (fixes and registrations) before this module.
    """
    module_name, function_name = PIPELINES[stage]
    pipeline = getattr(importlib.import_module(module_name), function_name)
    check_run(stage, sys.argv)  # missing data or weights: a PreflightError before anything is created
    with resolved_option_argv(normalize_local_rank_argument(sys.argv)) as argv, run_session(stage):
        sys.argv = argv
        try:
            pipeline(root_path or default_root_path())
        finally:
            # BasicSR never tears the process group down; gloo's threads then abort some ranks at exit
            # ("terminate called without an active exception") after a successful run.
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()

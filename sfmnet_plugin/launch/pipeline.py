"""What every launcher does before BasicSR's pipeline takes over the command line."""
import importlib
import sys

import torch

from sfmnet_plugin.config.option_files import (
    default_root_path,
    option_file_argument,
    resolved_option_argv,
    split_force_yml,
)
from sfmnet_plugin.config.option_schema import OptionKeyError, validate_option_file
from sfmnet_plugin.data.image_check import DatasetImageError
from sfmnet_plugin.launch.preflight import check_run
from sfmnet_plugin.launch.session import run_session
from sfmnet_plugin.utils.nonfinite import NonFiniteError
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

PIPELINES = {'train': ('basicsr.train', 'train_pipeline'), 'test': ('basicsr.test', 'test_pipeline')}


def normalize_local_rank_argument(argv):
    """Rewrite torch >= 2's ``--local-rank`` into the ``--local_rank`` that BasicSR parses."""
    return [('--local_rank' + arg[len('--local-rank'):]) if arg.startswith('--local-rank') else arg for arg in argv]


def run_basicsr_pipeline(stage, root_path=None):
    """Run BasicSR's ``stage`` pipeline on ``sys.argv`` with ``_base_`` options merged and torch
    launchers' ``--local-rank`` understood; outputs go under ``root_path`` (default: see
    :func:`sfmnet_plugin.config.option_files.default_root_path`).

    The caller has imported ``sfmnet_plugin`` (fixes and registrations) before this module.
    """
    module_name, function_name = PIPELINES[stage]
    pipeline = getattr(importlib.import_module(module_name), function_name)
    argv = normalize_local_rank_argument(sys.argv)
    check_option_file(argv)
    check_run(stage, argv)  # missing data or weights: a PreflightError before anything is created
    with resolved_option_argv(argv) as argv, run_session(stage):
        sys.argv = argv
        try:
            pipeline(root_path or default_root_path())
        except (NonFiniteError, DatasetImageError, UnsafeOrInvalidFileError) as error:
            # a diverged run, corrupt data, a checkpoint or state refused: one line in the log and on stderr
            from basicsr.utils import get_root_logger

            get_root_logger().error(str(error))
            print(f'error: {error}', file=sys.stderr)
            sys.exit(1)
        finally:
            # BasicSR never tears the process group down; gloo's threads then abort some ranks at exit
            # ("terminate called without an active exception") after a successful run.
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


def check_option_file(argv):
    """Read the ``-opt`` file safely and check its keys before BasicSR builds anything.

    An unsafe or invalid YAML file, a bad ``_base_`` or an unknown key is one ``error:`` line
    naming the file (exit status 2), not a traceback after half a run was set up.
    """
    argv, overrides = split_force_yml(argv)
    option_path = option_file_argument(argv)
    if option_path is None:
        return  # BasicSR's own parser reports the missing -opt
    try:
        validate_option_file(option_path, overrides)
    except (UnsafeOrInvalidFileError, OptionKeyError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(2)

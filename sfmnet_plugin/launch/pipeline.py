"""The hand-off of a checked :class:`~sfmnet_plugin.launch.request.RunRequest` to BasicSR's pipeline.

BasicSR's ``train_pipeline`` / ``test_pipeline`` parse ``sys.argv`` and open the ``-opt`` file themselves.
:func:`run_basicsr_pipeline` therefore writes the request's merged options to a temporary file (when the
file uses ``_base_`` or ``--force_yml``; otherwise BasicSR reads, and saves with the run, the file itself),
sets ``sys.argv`` to the request's BasicSR command line for the duration of the pipeline (the one place the
plugin sets it) and restores it afterwards.
"""
import importlib
import shutil
import sys
import tempfile
from contextlib import contextmanager

import torch

from sfmnet_plugin.config.option_files import write_merged_options
from sfmnet_plugin.data.image_check import DatasetImageError
from sfmnet_plugin.launch.session import run_session
from sfmnet_plugin.utils.nonfinite import NonFiniteError
from sfmnet_plugin.utils.output_paths import OutputWriteError
from sfmnet_plugin.utils.run_lock import RunFolderInUseError
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

PIPELINES = {'train': ('basicsr.train', 'train_pipeline'), 'test': ('basicsr.test', 'test_pipeline')}


@contextmanager
def basicsr_option_file(request):
    """Yield the path BasicSR reads as ``-opt``: the request's merged options in a temporary folder that lives as
    long as the ``with`` block (the whole run), or the option file itself when it needs no merging."""
    if not request.writes_merged_file:
        yield request.option_path
        return
    out_dir = tempfile.mkdtemp(prefix='sfmnet_options_')
    try:
        yield write_merged_options(request.options, request.option_path, out_dir, request.overrides)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


@contextmanager
def command_line(argv):
    """``sys.argv = argv`` inside the ``with`` block: BasicSR's ``parse_options`` reads nothing else."""
    saved = sys.argv
    sys.argv = list(argv)
    try:
        yield
    finally:
        sys.argv = saved


@contextmanager
def option_copy_naming_the_user_command(user_argv):
    """BasicSR's copy of the option file in the experiment folder starts with ``# CMD: <sys.argv>``, which inside
    the pipeline is the BasicSR command line with the temporary merged file (deleted when the run ends); within
    the ``with`` block the copy names ``user_argv``, the command the user ran, instead."""
    import basicsr.train as basicsr_train

    upstream = basicsr_train.copy_opt_file

    def copy_opt_file(opt_file, experiments_root):
        with command_line(user_argv):
            upstream(opt_file, experiments_root)

    basicsr_train.copy_opt_file = copy_opt_file
    try:
        yield
    finally:
        basicsr_train.copy_opt_file = upstream


def run_basicsr_pipeline(request):
    """Run BasicSR's pipeline of ``request.stage`` on the request; outputs go under ``request.root_path``.

    The caller has imported ``sfmnet_plugin`` (fixes and registrations) and checked the request.
    """
    module_name, function_name = PIPELINES[request.stage]
    pipeline = getattr(importlib.import_module(module_name), function_name)
    user_argv = list(sys.argv)
    with basicsr_option_file(request) as option_file, run_session(request), \
            option_copy_naming_the_user_command(user_argv), command_line(request.basicsr_argv(option_file)):
        try:
            pipeline(request.root_path)
        except (NonFiniteError, DatasetImageError, UnsafeOrInvalidFileError, RunFolderInUseError,
                OutputWriteError) as error:
            # a diverged run, corrupt data, a checkpoint or state refused, the folder in use by another run, a
            # checkpoint that cannot be written: one line in the log and on stderr
            from basicsr.utils import get_root_logger

            get_root_logger().error(str(error))
            print(f'error: {error}', file=sys.stderr)
            sys.exit(1)
        finally:
            # BasicSR never tears the process group down; gloo's threads then abort some ranks at exit
            # ("terminate called without an active exception") after a successful run.
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()

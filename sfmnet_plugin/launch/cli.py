"""The launcher: the one module behind every way to train or test with the plugin.

Its doors, and the preferred one for each job:

* training: ``sfmnet-train -opt X.yml`` (also ``python -m sfmnet_plugin.train`` and, from a checkout, BasicSR's
  ``python basicsr/train.py``); testing: ``sfmnet-test -opt X.yml`` (``python -m sfmnet_plugin.test``,
  ``python basicsr/test.py``);
* several processes: ``torchrun --nproc_per_node=N -m sfmnet_plugin.train -opt X.yml --launcher pytorch``;
* another BasicSR project: its own ``train.py`` / ``test.py`` call :func:`train_pipeline` / :func:`test_pipeline`
  where BasicSR's would call ``basicsr.train.train_pipeline`` / ``basicsr.test.test_pipeline``.

All of them run :func:`main`: ``_base_`` and ``--force_yml`` merged, option keys and values checked, the
pre-flight, the process's CPU settings, then BasicSR's pipeline inside the plugin's run
(:mod:`sfmnet_plugin.launch.session`).

The command line is parsed here into a :class:`~sfmnet_plugin.launch.request.RunRequest`, so that
``--help`` explains the command (BasicSR's bare parser offered ``--auto_resume`` for testing too) and a
wrong argument is a usage error. ``sfmnet-train``/``-test`` answer ``--help`` and usage errors before torch is
imported with the same parser (:mod:`sfmnet_plugin.launch.arguments`, the standard library only, which they run
from its file), then hand the command line unchanged to :func:`train_pipeline`/:func:`test_pipeline`. Whatever
stops a run before anything is created is printed without a traceback, with exit status 2: an option file that cannot be
read or has unknown keys as one ``error:`` line naming the file, a
:class:`~sfmnet_plugin.launch.preflight.PreflightError` as one line per problem.
"""
import sys

from sfmnet_plugin.config.option_files import ROOT_PATH_VARIABLE
from sfmnet_plugin.config.option_schema import OptionKeyError, validate_options
from sfmnet_plugin.launch.arguments import build_parser
from sfmnet_plugin.launch.pipeline import run_basicsr_pipeline
from sfmnet_plugin.launch.preflight import PreflightError, check_run
from sfmnet_plugin.launch.request import RunRequest
from sfmnet_plugin.utils.error_boundary import one_line
from sfmnet_plugin.utils.output_guard import probe_writable
from sfmnet_plugin.utils.output_paths import OutputPathError
from sfmnet_plugin.utils.process_settings import apply_process_settings
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError


def parse_command_line(stage, argv, root_path=None, program=None):
    """The :class:`RunRequest` of the launcher arguments ``argv`` (without the program name).

    A usage error or ``--help`` exits here (argparse); an option file that cannot be read raises
    ``FileNotFoundError`` or :class:`~sfmnet_plugin.config.option_files.OptionFileError`.
    """
    args = build_parser(stage).parse_args(argv)
    return RunRequest.read(stage, args, program or sys.argv[0], root_path)


def main(stage, root_path=None, argv=None):
    """Check the command line (``argv``, default ``sys.argv[1:]``), then run the pipeline on it.

    Returns when the run finished; exits with status 2 and one line per problem when it cannot start. With
    ``argv=None`` the command line is this process's own, and the process-wide CPU settings
    (:func:`~sfmnet_plugin.utils.process_settings.apply_process_settings`) may restart it once to take effect.
    """
    try:
        request = parse_command_line(stage, sys.argv[1:] if argv is None else argv, root_path)
        validate_options(request.options, request.option_path)
        check_run(request)  # missing data or weights
        # the outputs root ($SFMNET_ROOT_PATH): a folder where files can be created (probed, nothing left behind)
        probe_writable(request.root_path, option=f'the outputs root (${ROOT_PATH_VARIABLE} or the checkout)')
    except (UnsafeOrInvalidFileError, OptionKeyError, OutputPathError, OSError) as error:
        # one line naming the option file or the path
        print(f'sfmnet-{stage}: error: {one_line(error)}', file=sys.stderr)
        sys.exit(2)
    except PreflightError as error:
        lines = error.problems
        print(f'sfmnet-{stage}: cannot start, {len(lines)} problem{"s" if len(lines) != 1 else ""} '
              '(nothing was created):', file=sys.stderr)
        for line in lines:
            print(f'  - {line}', file=sys.stderr)
        sys.exit(2)
    apply_process_settings(restart=argv is None)
    try:
        run_basicsr_pipeline(request)
    except OSError as error:  # a folder that cannot be created or written (read-only, full, a file in the way)
        print(f'sfmnet-{stage}: error: {one_line(error)}', file=sys.stderr)
        sys.exit(1)


def train_pipeline(root_path: str | None = None) -> None:
    """BasicSR's ``train_pipeline(root_path)`` with the plugin's run behaviour: the command line of this process
    (``-opt``, ``--auto_resume``, ``--launcher``, ...), outputs under ``root_path``."""
    main('train', root_path)


def test_pipeline(root_path: str | None = None) -> None:
    """BasicSR's ``test_pipeline(root_path)`` with the plugin's run behaviour (see :func:`train_pipeline`)."""
    main('test', root_path)

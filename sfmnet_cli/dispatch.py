"""From a parsed command line to the tool's body: process settings, the lazy import, the error boundary.

The one place where a console script leaves the standard library: :func:`run_tool` applies the plugin's
process-wide settings (:mod:`sfmnet_plugin.utils.process_settings`) while torch is not loaded yet, so that its
OpenMP default takes effect, then imports ``sfmnet_plugin.tools.<tool>`` (which imports the library, torch and
basicsr) and runs its ``run(args)`` inside the plugin's error boundary
(:func:`sfmnet_plugin.utils.error_boundary.console_script`) with the errors the body names in ``USER_ERRORS``.
"""
import argparse
import importlib
import importlib.util
import os
import runpy
from collections.abc import Callable
from typing import Any


def library_module_from_file(relative_path: str) -> dict[str, Any]:
    """The namespace of ``sfmnet_plugin/<relative_path>``, a module of the standard library only, run from its file.

    Importing it as ``sfmnet_plugin.<...>`` would first import the package, which imports torch (and libgomp reads
    its wait setting once, when torch loads it). ``find_spec`` of a top-level package finds it without importing it.
    """
    spec = importlib.util.find_spec('sfmnet_plugin')
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'sfmnet_plugin': install the sfmnet-plugin package.")
    folder = list(spec.submodule_search_locations)[0]
    return runpy.run_path(os.path.join(folder, *relative_path.split('/')))


def launcher_parser(stage: str, prog: str) -> argparse.ArgumentParser:
    """The parser of ``sfmnet-train``/``-test`` (``stage``): the launcher's own
    (:func:`sfmnet_plugin.launch.arguments.build_parser`), so the front accepts exactly what the launcher then parses
    again."""
    return library_module_from_file('launch/arguments.py')['build_parser'](stage, prog=prog)


def apply_process_settings() -> None:
    """The plugin's process settings (allocator, OpenMP wait default), before anything imports torch."""
    library_module_from_file('utils/process_settings.py')['apply_process_settings']()


def run_tool(tool: str, args: argparse.Namespace, prog: str | None, status: int = 1) -> int | None:
    """Run ``sfmnet_plugin.tools.<tool>.run(args)`` with the process settings applied and its user errors as one
    line: ``<prog>: error: ...`` (``error: ...`` without ``prog``) and exit status ``status``; Ctrl-C is 130."""
    apply_process_settings()
    body = importlib.import_module(f'sfmnet_plugin.tools.{tool}')
    from sfmnet_plugin.utils.error_boundary import console_script

    def run(_argv: list[str] | None) -> int | None:
        return body.run(args)

    guarded: Callable[[list[str] | None], int | None] = console_script(
        prog, user_errors=getattr(body, 'USER_ERRORS', ()), status=status)(run)
    return guarded(None)


def run_launcher(stage: str, argv: list[str] | None) -> int:
    """Run ``sfmnet-train`` / ``sfmnet-test`` (``stage``) on ``argv`` with the process settings applied: the
    launcher's :func:`~sfmnet_plugin.launch.cli.train_pipeline` / ``test_pipeline`` on this process's command line
    (``argv=None``), else its ``main`` on ``argv``. It parses and checks the command line itself, and exits with
    status 2 when a run cannot start."""
    apply_process_settings()
    from sfmnet_plugin.launch import cli

    if argv is None:
        {'train': cli.train_pipeline, 'test': cli.test_pipeline}[stage]()
    else:
        cli.main(stage, argv=argv)
    return 0

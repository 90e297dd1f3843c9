"""Training launcher: BasicSR's ``train_pipeline`` with the plugin's components and fixes.

Usage (from the repository root)::

    python sfmnet_plugin/train.py -opt options/train_SFMNet_x8.yml [--auto_resume] [--debug]
    torchrun --nproc_per_node=2 sfmnet_plugin/train.py -opt options/train_SFMNet_x8.yml --launcher pytorch

``sfmnet-train`` (console script) and ``python basicsr/train.py`` behave the same.
"""
import runpy
import sys
from os import path as osp

if __package__ in (None, ''):
    # Run as a script: put the checkout, not this folder, first on sys.path (as `python -m` would), and set
    # the OpenMP wait default before the package imports torch, whose libgomp reads it once (the launcher
    # would otherwise restart to apply it; see sfmnet_plugin.utils.process_settings).
    sys.path[0] = osp.dirname(osp.dirname(osp.abspath(__file__)))
    runpy.run_path(osp.join(sys.path[0], 'sfmnet_plugin', 'utils', 'process_settings.py'))[
        'set_openmp_wait_policy_default']()

import sfmnet_plugin  # noqa: E402,F401  (compatibility fixes and registrations before basicsr)
from sfmnet_plugin.launch.cli import main as run_launcher  # noqa: E402


def main(root_path: str | None = None, argv: list[str] | None = None) -> None:
    """Train with the options given on the command line; outputs go under ``root_path``."""
    run_launcher('train', root_path, argv)


if __name__ == '__main__':
    main()

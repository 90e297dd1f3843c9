"""Testing launcher: BasicSR's ``test_pipeline`` with the plugin's components and fixes.

Usage (from the repository root)::

    python sfmnet_plugin/test.py -opt options/test_SFMNet_x8.yml

Results (images, per-image metrics CSV, a Markdown summary and a contact sheet when the model is
one of the plugin's) go to ``results/<name>/``. ``sfmnet-test`` and ``python basicsr/test.py``
behave the same.
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
    """Test with the options given on the command line; results go under ``root_path``."""
    run_launcher('test', root_path, argv)


if __name__ == '__main__':
    main()

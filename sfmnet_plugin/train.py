"""``python -m sfmnet_plugin.train`` (torchrun's and the demo's command) and ``python sfmnet_plugin/train.py``:
training with :mod:`sfmnet_plugin.launch.cli`, as ``sfmnet-train`` (:mod:`sfmnet_cli.train`, which answers
``--help`` before torch is imported)."""
import runpy
import sys
from os import path as osp

if __package__ in (None, ''):
    # Run by path (python sfmnet_plugin/train.py): put the checkout, not this folder, first on sys.path, and set the
    # OpenMP wait default before the package imports torch, whose libgomp reads it once (the launcher would otherwise
    # restart to apply it; see sfmnet_plugin.utils.process_settings).
    sys.path[0] = osp.dirname(osp.dirname(osp.abspath(__file__)))
    runpy.run_path(osp.join(sys.path[0], 'sfmnet_plugin', 'utils', 'process_settings.py'))[
        'set_openmp_wait_policy_default']()

from sfmnet_plugin.launch.cli import train_pipeline as main  # noqa: E402

if __name__ == '__main__':
    main()

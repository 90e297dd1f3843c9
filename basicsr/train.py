"""``python basicsr/train.py -opt ...``: BasicSR's usual command, run from this repository's root.

This folder deliberately has no ``__init__.py``: it is not a package and never shadows the
installed ``basicsr``; it only holds this script and ``test.py``, doors to the plugin's launcher
(:mod:`sfmnet_plugin.launch.cli`) with outputs under the repository root.
"""
import runpy
from os import path as osp

if __name__ == '__main__':
    runpy.run_path(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'sfmnet_plugin', 'train.py'),
                   run_name='__main__')

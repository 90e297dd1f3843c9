"""``python basicsr/test.py -opt ...``: BasicSR's usual command, run from this repository's root.

This folder deliberately has no ``__init__.py``: it is not a package and never shadows the
installed ``basicsr``; it only holds this script, which runs the plugin's test launcher exactly as
``python sfmnet_plugin/test.py`` does (outputs under the repository root).
"""
import runpy
from os import path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

if __name__ == '__main__':
    runpy.run_path(osp.join(REPO_ROOT, 'sfmnet_plugin', 'test.py'), run_name='__main__')

"""Crop Helen faces around their 194 landmarks (or take aligned crops) and write HR and LR LMDBs.

Run with --help for the options; the logic lives in sfmnet_plugin.prep.helen (see datasets_prep/README.md).
"""
import os
import sys

# Use the sfmnet_plugin next to this script even when the package is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfmnet_plugin.prep.helen import cli  # noqa: E402

if __name__ == '__main__':
    sys.exit(cli())

"""Crop Helen faces around their 194 landmarks (or take aligned crops) and write HR and LR LMDBs.

Run with --help for the options; the same as the console script ``sfmnet-prepare-helen``
(sfmnet_cli.prepare_helen; see datasets_prep/README.md).
"""
import os
import sys

# Use the sfmnet_cli and sfmnet_plugin next to this script even when the package is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfmnet_cli.prepare_helen import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

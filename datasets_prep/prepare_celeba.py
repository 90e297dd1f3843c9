"""Crop CelebA faces (in-the-wild or aligned protocol) and write HR and x4/x8/x16 LR LMDBs per split.

Run with --help for the options; the same as the console script ``sfmnet-prepare-celeba``
(sfmnet_cli.prepare_celeba; see datasets_prep/README.md).
"""
import os
import sys

# Use the sfmnet_cli and sfmnet_plugin next to this script even when the package is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfmnet_cli.prepare_celeba import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

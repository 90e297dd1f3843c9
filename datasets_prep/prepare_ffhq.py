"""Resize the FFHQ 1024x1024 release (to 512 by default) and write HR LMDBs per split, for SPARNetHD.

Run with --help for the options; the same as the console script ``sfmnet-prepare-ffhq``
(sfmnet_cli.prepare_ffhq; see datasets_prep/README.md).
"""
import os
import sys

# Use the sfmnet_cli and sfmnet_plugin next to this script even when the package is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfmnet_cli.prepare_ffhq import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

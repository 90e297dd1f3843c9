"""Check LMDBs against their meta_info.txt and HR/LR LMDB pairs against each other.

Run with --help for the options; the same as the console script ``sfmnet-verify-lmdb``
(sfmnet_cli.verify_lmdb; see datasets_prep/README.md).
"""
import os
import sys

# Use the sfmnet_cli and sfmnet_plugin next to this script even when the package is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfmnet_cli.verify_lmdb import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

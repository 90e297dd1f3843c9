"""Convert an image folder, or the SFMNet HR/LR_* folder layout, into BasicSR LMDBs.

Run with --help for the options; the same as the console script ``sfmnet-folder-to-lmdb``
(sfmnet_cli.folder_to_lmdb; see datasets_prep/README.md).
"""
import os
import sys

# Use the sfmnet_cli and sfmnet_plugin next to this script even when the package is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfmnet_cli.folder_to_lmdb import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())

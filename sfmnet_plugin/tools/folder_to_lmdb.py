"""The body of ``sfmnet-folder-to-lmdb`` (its command line: :mod:`sfmnet_cli.folder_to_lmdb`): image folders ->
BasicSR LMDBs with :func:`sfmnet_plugin.prep.folder.convert_folder` or, with ``--sfmnet-layout``,
:func:`sfmnet_plugin.prep.folder.convert_sfmnet_layout`."""
import argparse

from sfmnet_plugin.prep.folder import convert_folder, convert_sfmnet_layout
from sfmnet_plugin.prep.split_writer import DataPrepError

# a wrong input (DataPrepError) or value: one line, as the plugin's error boundary prints it, and exit status 2
USER_ERRORS = (DataPrepError, ValueError)


def run(args: argparse.Namespace) -> int:
    """Convert a folder or an SFMNet layout; returns 0, or 1 when LR and HR LMDBs do not pair up."""
    if not args.sfmnet_layout:
        convert_folder(args.source, args.output, args.workers, args.overwrite, args.recursive, args.landmarks)
        return 0
    problems = convert_sfmnet_layout(args.source, args.output, args.workers, args.overwrite, args.recursive)
    for problem in problems:
        print(f'pairing problem: {problem}')
    return 1 if problems else 0



"""The body of ``sfmnet-prepare-ffhq`` (its command line: :mod:`sfmnet_cli.prepare_ffhq`): the FFHQ release -> HR
LMDBs with :func:`sfmnet_plugin.prep.ffhq.prepare_ffhq`."""
import argparse

from sfmnet_plugin.prep.ffhq import prepare_ffhq
from sfmnet_plugin.prep.split_writer import DataPrepError
from sfmnet_plugin.tools.common import spec_from_args

# a wrong input (DataPrepError) or value: one line, as the plugin's error boundary prints it, and exit status 2
USER_ERRORS = (DataPrepError, ValueError)


def run(args: argparse.Namespace) -> int:
    """Prepare the requested FFHQ splits; returns the exit code (bad input raises DataPrepError)."""
    prepare_ffhq(args.root, args.out, args.splits, args.metadata, spec=spec_from_args(args), workers=args.workers,
                 save_png=args.save_png, overwrite=args.overwrite)
    return 0



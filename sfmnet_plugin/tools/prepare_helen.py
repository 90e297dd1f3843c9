"""The body of ``sfmnet-prepare-helen`` (its command line: :mod:`sfmnet_cli.prepare_helen`): Helen faces -> HR and
LR LMDBs with :func:`sfmnet_plugin.prep.helen.prepare_helen` or
:func:`sfmnet_plugin.prep.helen.prepare_aligned_helen`."""
import argparse

from sfmnet_plugin.prep.helen import prepare_aligned_helen, prepare_helen
from sfmnet_plugin.prep.split_writer import DataPrepError
from sfmnet_plugin.tools.common import spec_from_args

# a wrong input (DataPrepError) or value: one line, as the plugin's error boundary prints it, and exit status 2
USER_ERRORS = (DataPrepError, ValueError)


def run(args: argparse.Namespace) -> int:
    """Prepare the Helen splits; returns the exit code (bad input raises DataPrepError)."""
    common = dict(spec=spec_from_args(args), workers=args.workers, save_png=args.save_png, overwrite=args.overwrite)
    if args.from_aligned:
        prepare_aligned_helen(args.from_aligned, args.split_name, args.out, **common)
    else:
        prepare_helen(args.images, args.annotations, args.test_list, args.out, margin=args.margin, **common)
    return 0



"""``sfmnet-prepare-helen`` (also ``datasets_prep/prepare_helen.py``): Helen faces -> HR and LR LMDBs.

The work is :func:`sfmnet_plugin.prep.helen.prepare_helen` (photos and their 194 landmarks) or, with
``--from-aligned DIR``, :func:`sfmnet_plugin.prep.helen.prepare_aligned_helen`.
"""
import argparse
import sys

from sfmnet_plugin.prep.helen import DEFAULT_MARGIN, DEFAULT_OUT, prepare_aligned_helen, prepare_helen
from sfmnet_plugin.tools.common import add_output_arguments, run_prep_tool, spec_from_args


def build_parser():
    parser = argparse.ArgumentParser(
        description='Crop Helen faces around their 194 landmarks (or take aligned crops) and write HR and bicubic LR '
                    'LMDBs (BasicSR layout) per split.',
        epilog='Example: python datasets_prep/prepare_helen.py --images /data/helen '
               '--annotations /data/helen/annotation --test-list lists/helen_test.txt')
    parser.add_argument('--images', action='append', default=[],
                        help='folder searched recursively for the Helen *.jpg photos; repeatable (helen_1 ... helen_5)')
    parser.add_argument('--annotations', help='folder of the 194-point annotation files (*.txt)')
    parser.add_argument('--test-list', help='file of image names (one per line) that form the test split; '
                                            'the other annotated images form the train split')
    parser.add_argument('--margin', type=float, default=DEFAULT_MARGIN,
                        help='crop side = longer edge of the landmarks\' box x margin (default: %(default)s)')
    parser.add_argument('--from-aligned', metavar='DIR',
                        help='instead: a folder of aligned square face crops, written as split --split-name')
    parser.add_argument('--split-name', default='test', help='split name for --from-aligned (default: test)')
    add_output_arguments(parser, default_out=DEFAULT_OUT)
    return parser


def run(argv=None):
    """Prepare the Helen splits; returns the exit code (bad input raises DataPrepError)."""
    args = build_parser().parse_args(argv)
    common = dict(spec=spec_from_args(args), workers=args.workers, save_png=args.save_png, overwrite=args.overwrite)
    if args.from_aligned:
        prepare_aligned_helen(args.from_aligned, args.split_name, args.out, **common)
    else:
        prepare_helen(args.images, args.annotations, args.test_list, args.out, margin=args.margin, **common)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point: errors print ``error: ...`` and exit with 2."""
    return run_prep_tool(run, argv)


if __name__ == '__main__':
    sys.exit(main())

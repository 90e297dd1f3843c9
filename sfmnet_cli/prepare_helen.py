"""``sfmnet-prepare-helen`` (also ``datasets_prep/prepare_helen.py``): Helen faces -> HR and LR LMDBs.

The work is :func:`sfmnet_plugin.prep.helen.prepare_helen` (photos and their 194 landmarks) or, with
``--from-aligned DIR``, :func:`sfmnet_plugin.prep.helen.prepare_aligned_helen`.
"""
import argparse
import sys

from sfmnet_cli.arguments import add_output_arguments
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.prep.helen's DEFAULT_MARGIN and DEFAULT_OUT
DEFAULT_MARGIN = 1.1
DEFAULT_OUT = 'datasets/Helen'


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


def main(argv: list[str] | None = None) -> int | None:
    """Console entry point: errors print ``error: ...`` and exit with 2."""
    return run_tool('prepare_helen', build_parser().parse_args(argv), 'sfmnet-prepare-helen', status=2)


if __name__ == '__main__':
    sys.exit(main())

"""``sfmnet-prepare-ffhq`` (also ``datasets_prep/prepare_ffhq.py``): the FFHQ release -> HR LMDBs for SPARNetHD.

The work is :func:`sfmnet_plugin.prep.ffhq.prepare_ffhq`; see its module for the splits and sizes.
"""
import argparse
import sys

from sfmnet_cli.arguments import add_output_arguments
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.prep.ffhq's DEFAULT_OUT, IMAGE_FOLDER, SPLITS and DEFAULT_SPEC (hr_size, scales, min_crop_size)
DEFAULT_OUT = 'datasets/FFHQ'
IMAGE_FOLDER = 'images1024x1024'
SPLITS = ('train', 'val', 'all')
HR_SIZE, SCALES, MIN_CROP_SIZE = 512, (), 512


def build_parser():
    parser = argparse.ArgumentParser(
        description='Resize the FFHQ 1024x1024 release (PIL bicubic, as SPARNetHD) into BasicSR HR LMDBs per split.',
        epilog='Example: python datasets_prep/prepare_ffhq.py --root /data/ffhq --workers 16   '
               '# -> datasets/FFHQ/{train,val}/HR.lmdb at 512x512')
    parser.add_argument('--root', required=True,
                        help=f'the FFHQ folder: holds {IMAGE_FOLDER}/ (numbered sub-folders or flat), or is that '
                             'image folder itself')
    parser.add_argument('--splits', nargs='+', choices=SPLITS, default=['train', 'val'],
                        help='train = 00000-59999, val = 60000-69999, all = every image (default: train val)')
    parser.add_argument('--metadata', help='ffhq-dataset-v2.json: take each image\'s split from its "category"')
    add_output_arguments(parser, default_out=DEFAULT_OUT, hr_size=HR_SIZE, scales=SCALES,
                         min_crop_size=MIN_CROP_SIZE)
    return parser


def main(argv: list[str] | None = None) -> int | None:
    """Console entry point: errors print ``error: ...`` and exit with 2."""
    return run_tool('prepare_ffhq', build_parser().parse_args(argv), 'sfmnet-prepare-ffhq', status=2)


if __name__ == '__main__':
    sys.exit(main())

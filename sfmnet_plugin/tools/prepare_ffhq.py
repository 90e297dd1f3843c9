"""``sfmnet-prepare-ffhq`` (also ``datasets_prep/prepare_ffhq.py``): the FFHQ release -> HR LMDBs for SPARNetHD.

The work is :func:`sfmnet_plugin.prep.ffhq.prepare_ffhq`; see its module for the splits and sizes.
"""
import argparse
import sys

from sfmnet_plugin.prep.ffhq import DEFAULT_OUT, DEFAULT_SPEC, IMAGE_FOLDER, SPLITS, prepare_ffhq
from sfmnet_plugin.tools.common import add_output_arguments, run_prep_tool, spec_from_args


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
    add_output_arguments(parser, default_out=DEFAULT_OUT, hr_size=DEFAULT_SPEC.hr_size, scales=DEFAULT_SPEC.scales,
                         min_crop_size=DEFAULT_SPEC.min_crop_size)
    return parser


def run(argv=None):
    """Prepare the requested FFHQ splits; returns the exit code (bad input raises DataPrepError)."""
    args = build_parser().parse_args(argv)
    prepare_ffhq(args.root, args.out, args.splits, args.metadata, spec=spec_from_args(args), workers=args.workers,
                 save_png=args.save_png, overwrite=args.overwrite)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point: errors print ``error: ...`` and exit with 2."""
    return run_prep_tool(run, argv)


if __name__ == '__main__':
    sys.exit(main())

"""``sfmnet-prepare-celeba`` (also ``datasets_prep/prepare_celeba.py``): crop CelebA faces and write HR and LR LMDBs.

The work is :func:`sfmnet_plugin.prep.celeba.prepare_celeba`; see its module for the three crop protocols.
"""
import argparse
import sys

from sfmnet_plugin.prep.celeba import (
    DEFAULT_MARGIN,
    DEFAULT_MIN_CROP,
    DEFAULT_MTCNN_MARGIN,
    DEFAULT_MTCNN_MIN_CROP,
    DEFAULT_OUT,
    IMAGE_DIRS,
    PARTITION_SPLITS,
    prepare_celeba,
    protocol_defaults,
)
from sfmnet_plugin.prep.split_writer import DataPrepError, check_split_name
from sfmnet_plugin.tools.common import add_output_arguments, positive_int, run_prep_tool, spec_from_args


def build_parser():
    parser = argparse.ArgumentParser(
        description='Crop CelebA faces and write HR and bicubic LR LMDBs (BasicSR layout) per split.',
        epilog='Example: python datasets_prep/prepare_celeba.py --root /data/CelebA --protocol wild --workers 8')
    parser.add_argument('--root', required=True,
                        help='the CelebA release folder (with Anno/ and Eval/; images in img_celeba/ or '
                             'Img/img_celeba/, img_align_celeba/ or Img/img_align_celeba/)')
    parser.add_argument('--protocol', choices=sorted(IMAGE_DIRS), default='wild',
                        help='wild: in-the-wild photos cropped around the landmarks (DIC/SFMNet); '
                             'aligned: centre crop of img_align_celeba; mtcnn: in-the-wild photos cropped on the '
                             'MTCNN face box, faces under 128 px skipped unless --min-crop-size says otherwise '
                             '(SPARNet; needs facenet-pytorch) (default: wild)')
    parser.add_argument('--images', help='image folder, if not in one of the standard places under --root')
    parser.add_argument('--crop-from', choices=('landmarks', 'bbox'), default='landmarks',
                        help='wild protocol: square from the 5 landmarks (Anno/list_landmarks_celeba.txt) or on the '
                             'face box (Anno/list_bbox_celeba.txt) (default: landmarks)')
    parser.add_argument('--margin', type=float,
                        help=f'crop side multiplier. wild: 1.0 = the 68-landmark box of the mean face (default '
                             f'{DEFAULT_MARGIN}); mtcnn: 1.0 = the longer edge of the MTCNN box (default '
                             f'{DEFAULT_MTCNN_MARGIN})')
    parser.add_argument('--aligned-crop-size', type=positive_int, default=178,
                        help='aligned protocol: side of the centre square cut from the 178x218 images (default: 178)')
    parser.add_argument('--splits', nargs='+', choices=list(PARTITION_SPLITS.values()),
                        default=list(PARTITION_SPLITS.values()),
                        help='official splits to build from Eval/list_eval_partition.txt (default: train val test)')
    parser.add_argument('--split-list', action='append', default=[], metavar='NAME:FILE',
                        help='build split NAME from the image names in FILE (one per line, e.g. 201600.jpg); '
                             'repeatable; replaces the official partition')
    add_output_arguments(parser, default_out=None, default_out_text=f"{DEFAULT_OUT['wild']}, or "
                         f"{DEFAULT_OUT['aligned']} with --protocol aligned", min_crop_size=DEFAULT_MIN_CROP,
                         min_crop_size_text=f'{DEFAULT_MIN_CROP}, or {DEFAULT_MTCNN_MIN_CROP} with --protocol mtcnn')
    parser.set_defaults(min_crop_size=None)  # its default depends on the protocol (protocol_defaults)
    return parser


def parse_split_list_option(text):
    """``NAME:FILE`` -> (NAME, FILE)."""
    name, sep, file = text.partition(':')
    if not sep or not name or not file:
        raise DataPrepError(f'--split-list {text!r}: expected NAME:FILE, e.g. test:lists/celeba_test.txt.')
    check_split_name(name)
    return name, file


def split_lists_from_options(options):
    """``{split: list file}`` of the ``--split-list NAME:FILE`` options, in their order."""
    split_lists = {}
    for option in options:
        split, list_file = parse_split_list_option(option)
        if split in split_lists:
            raise DataPrepError(f'--split-list: split {split!r} is given twice.')
        split_lists[split] = list_file
    return split_lists


def run(argv=None):
    """Prepare the requested CelebA splits; returns the exit code (bad input raises DataPrepError)."""
    args = build_parser().parse_args(argv)
    if args.min_crop_size is None:
        args.min_crop_size = protocol_defaults(args.protocol)[1]
    prepare_celeba(args.root, args.out, args.protocol, image_dir=args.images, crop_from=args.crop_from,
                   margin=args.margin, aligned_crop_size=args.aligned_crop_size, splits=args.splits,
                   split_lists=split_lists_from_options(args.split_list), spec=spec_from_args(args),
                   workers=args.workers, save_png=args.save_png, overwrite=args.overwrite)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point: errors print ``error: ...`` and exit with 2."""
    return run_prep_tool(run, argv)


if __name__ == '__main__':
    sys.exit(main())

"""``sfmnet-prepare-celeba`` (also ``datasets_prep/prepare_celeba.py``): crop CelebA faces and write HR and LR LMDBs.

The work is :func:`sfmnet_plugin.prep.celeba.prepare_celeba`; see its module for the three crop protocols.
"""
import argparse
import sys

from sfmnet_cli.arguments import add_output_arguments, positive_int
from sfmnet_cli.dispatch import run_tool

# sfmnet_plugin.prep.celeba's DEFAULT_MARGIN, DEFAULT_MTCNN_MARGIN, DEFAULT_MIN_CROP, DEFAULT_MTCNN_MIN_CROP,
# DEFAULT_OUT, IMAGE_DIRS (its keys: the protocols) and PARTITION_SPLITS (its values: the official splits)
DEFAULT_MARGIN = 1.1
DEFAULT_MTCNN_MARGIN = 1.0
DEFAULT_MIN_CROP = 64
DEFAULT_MTCNN_MIN_CROP = 128
DEFAULT_OUT = {'wild': 'datasets/CelebA', 'aligned': 'datasets/CelebA_aligned', 'mtcnn': 'datasets/CelebA_mtcnn'}
PROTOCOLS = ('aligned', 'mtcnn', 'wild')
SPLITS = ('train', 'val', 'test')


def build_parser():
    parser = argparse.ArgumentParser(
        description='Crop CelebA faces and write HR and bicubic LR LMDBs (BasicSR layout) per split.',
        epilog='Example: python datasets_prep/prepare_celeba.py --root /data/CelebA --protocol wild --workers 8')
    parser.add_argument('--root', required=True,
                        help='the CelebA release folder (with Anno/ and Eval/; images in img_celeba/ or '
                             'Img/img_celeba/, img_align_celeba/ or Img/img_align_celeba/)')
    parser.add_argument('--protocol', choices=PROTOCOLS, default='wild',
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
    parser.add_argument('--splits', nargs='+', choices=list(SPLITS),
                        default=list(SPLITS),
                        help='official splits to build from Eval/list_eval_partition.txt (default: train val test)')
    parser.add_argument('--split-list', action='append', default=[], metavar='NAME:FILE',
                        help='build split NAME from the image names in FILE (one per line, e.g. 201600.jpg); '
                             'repeatable; replaces the official partition')
    add_output_arguments(parser, default_out=None, default_out_text=f"{DEFAULT_OUT['wild']}, or "
                         f"{DEFAULT_OUT['aligned']} with --protocol aligned", min_crop_size=DEFAULT_MIN_CROP,
                         min_crop_size_text=f'{DEFAULT_MIN_CROP}, or {DEFAULT_MTCNN_MIN_CROP} with --protocol mtcnn')
    parser.set_defaults(min_crop_size=None)  # its default depends on the protocol (protocol_defaults)
    return parser


def main(argv: list[str] | None = None) -> int | None:
    """Console entry point: errors print ``error: ...`` and exit with 2."""
    return run_tool('prepare_celeba', build_parser().parse_args(argv), 'sfmnet-prepare-celeba', status=2)


if __name__ == '__main__':
    sys.exit(main())

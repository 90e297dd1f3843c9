"""CelebA -> HR/LR LMDBs for face super-resolution (the logic of ``datasets_prep/prepare_celeba.py``).

Three crop protocols:

* ``wild`` (default; DIC/SFMNet use the in-the-wild ``img_celeba``): a square around the face
  predicted from the official 5 landmarks (:func:`~sfmnet_plugin.prep.face_crop.square_from_five_points`,
  side x ``--margin``), or with ``--crop-from bbox`` a square on the official face box; PIL
  bicubic to the HR size.
* ``aligned``: the centre ``--aligned-crop-size`` square of ``img_align_celeba`` (178 x 218; 178
  = the whole width, rows 20-197; 138 = the tighter crop of several GAN/SR papers), PIL bicubic
  to the HR size.
* ``mtcnn`` (SPARNet, docs/fidelity.md §B5.1): MTCNN run on ``img_celeba``; the square on the box of the
  annotated face (the one around the official landmarks), side = the box's longer edge x
  ``--margin`` (default 1.0 here), no alignment; only faces whose square is at least 128 px
  (``--min-crop-size``, default 128 here) are kept; PIL bicubic to the HR size.

Splits come from ``Eval/list_eval_partition.txt`` (``--splits``) or from ``--split-list NAME:FILE``
lists of image names. Each split becomes ``<out>/<split>/{HR,LR_x4,LR_x8,LR_x16}.lmdb``.
"""
import argparse
import importlib.util
from os import path as osp

import numpy as np

from sfmnet_plugin.faces.detect import FACENET_REQUIREMENT
from sfmnet_plugin.prep.celeba_annotations import PARTITION_SPLITS, read_bboxes, read_landmarks, read_partition
from sfmnet_plugin.prep.cli import add_output_arguments, positive_int, read_name_list, run_cli, spec_from_args
from sfmnet_plugin.prep.face_crop import (
    CentreCrop,
    DetectedBoxCrop,
    SquareCrop,
    square_from_bbox,
    square_from_five_points,
)
from sfmnet_plugin.prep.pipeline import DataPrepError, Job, check_split_name, prepare_split

IMAGE_DIRS = {'wild': ('img_celeba', osp.join('Img', 'img_celeba')),
              'aligned': ('img_align_celeba', osp.join('Img', 'img_align_celeba')),
              'mtcnn': ('img_celeba', osp.join('Img', 'img_celeba'))}
LANDMARKS_FILE = osp.join('Anno', 'list_landmarks_celeba.txt')
BBOX_FILE = osp.join('Anno', 'list_bbox_celeba.txt')
PARTITION_FILE = osp.join('Eval', 'list_eval_partition.txt')
DEFAULT_OUT = {'wild': osp.join('datasets', 'CelebA'), 'aligned': osp.join('datasets', 'CelebA_aligned'),
               'mtcnn': osp.join('datasets', 'CelebA_mtcnn')}
DEFAULT_MARGIN = 1.1
# mtcnn: the square on the longer edge of MTCNN's box already frames the face like the wild
# protocol's default (1.07-1.13 x the 68-landmark box on the two public-domain test photos).
DEFAULT_MTCNN_MARGIN = 1.0
# mtcnn: SPARNet kept only faces larger than 128 x 128 (maintainer, §B5.1).
DEFAULT_MTCNN_MIN_CROP = 128


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
                         f"{DEFAULT_OUT['aligned']} with --protocol aligned",
                         min_crop_size_text=f'64, or {DEFAULT_MTCNN_MIN_CROP} with --protocol mtcnn')
    # --min-crop-size defaults per protocol (see resolve_protocol_defaults)
    parser.set_defaults(min_crop_size=None, generic_min_crop_size=parser.get_default('min_crop_size'))
    return parser


def resolve_protocol_defaults(args):
    """Fill in ``--margin`` and ``--min-crop-size`` when they were not given: their defaults depend on the protocol."""
    mtcnn = args.protocol == 'mtcnn'
    if args.margin is None:
        args.margin = DEFAULT_MTCNN_MARGIN if mtcnn else DEFAULT_MARGIN
    if args.min_crop_size is None:
        args.min_crop_size = DEFAULT_MTCNN_MIN_CROP if mtcnn else args.generic_min_crop_size
    if args.margin <= 0:
        raise DataPrepError(f'--margin must be positive, got {args.margin}.')


def find_image_dir(root, protocol, override):
    """The folder holding the protocol's images."""
    candidates = [override] if override else [osp.join(root, name) for name in IMAGE_DIRS[protocol]]
    for candidate in candidates:
        if osp.isdir(candidate):
            return candidate
    raise DataPrepError(f'Image folder for the {protocol} protocol not found; looked for {", ".join(candidates)} '
                        '(extract the archive there or pass --images).')


def parse_split_list_option(text):
    """``NAME:FILE`` -> (NAME, FILE)."""
    name, sep, file = text.partition(':')
    if not sep or not name or not file:
        raise DataPrepError(f'--split-list {text!r}: expected NAME:FILE, e.g. test:lists/celeba_test.txt.')
    check_split_name(name)
    return name, file


def image_name(entry):
    """The CelebA file name of a list entry: ``000001``, ``000001.jpg`` and ``000001.png`` all mean ``000001.jpg``."""
    return osp.splitext(entry)[0] + '.jpg'


def splits_from_lists(split_lists, known_names):
    """Split name -> sorted image names from ``--split-list`` files; names must be in ``known_names`` if given."""
    splits, owner = {}, {}
    for option in split_lists:
        split, list_file = parse_split_list_option(option)
        if split in splits:
            raise DataPrepError(f'--split-list: split {split!r} is given twice.')
        names = []
        for entry, line_no in read_name_list(list_file).items():
            name = image_name(entry)
            if known_names is not None and name not in known_names:
                raise DataPrepError(f'{list_file}, line {line_no}: {entry} is not in the annotation file.')
            if name in owner:
                raise DataPrepError(f'{list_file}, line {line_no}: {entry} is also in split {owner[name]!r}.')
            owner[name] = split
            names.append(name)
        splits[split] = sorted(names)
    return splits


def official_splits(partition_file, wanted, known_names):
    """Split name -> sorted image names from ``list_eval_partition.txt``, for the ``wanted`` splits."""
    partition = read_partition(partition_file)
    if known_names is not None:
        missing = [name for name in partition if name not in known_names]
        if missing:
            raise DataPrepError(f'{partition_file} lists {len(missing)} images without annotation, e.g. '
                                f'{", ".join(missing[:5])}.')
    return {split: sorted(name for name, owner in partition.items() if owner == split) for split in wanted}


def crop_factory(args):
    """(function image name -> crop, set of annotated names or None) for the chosen protocol."""
    if args.protocol == 'aligned':
        crop = CentreCrop(args.aligned_crop_size)
        return (lambda name: crop), None
    if args.protocol == 'mtcnn':
        points = read_landmarks(osp.join(args.root, LANDMARKS_FILE))
        return (lambda name: DetectedBoxCrop(tuple(np.mean(points[name], axis=0)), args.margin)), points
    if args.crop_from == 'bbox':
        boxes = read_bboxes(osp.join(args.root, BBOX_FILE))
        return (lambda name: SquareCrop(square_from_bbox(*boxes[name], margin=args.margin))), boxes
    points = read_landmarks(osp.join(args.root, LANDMARKS_FILE))
    return (lambda name: SquareCrop(square_from_five_points(points[name], args.margin))), points


def main(argv=None):
    """Prepare the requested CelebA splits; returns the exit code (bad input raises DataPrepError)."""
    args = build_parser().parse_args(argv)
    resolve_protocol_defaults(args)
    spec = spec_from_args(args)
    if args.protocol == 'mtcnn' and importlib.util.find_spec('facenet_pytorch') is None:
        # Fail now rather than in every worker (the workers build their own detector).
        raise DataPrepError(f'--protocol mtcnn needs {FACENET_REQUIREMENT} (MTCNN, weights inside the wheel): '
                            f'pip install --no-deps {FACENET_REQUIREMENT}')
    out_root = args.out or DEFAULT_OUT[args.protocol]
    image_dir = find_image_dir(args.root, args.protocol, args.images)
    crop_for, known_names = crop_factory(args)
    if args.split_list:
        splits = splits_from_lists(args.split_list, known_names)
    else:
        splits = official_splits(osp.join(args.root, PARTITION_FILE), args.splits, known_names)
    for split in [split for split, names in splits.items() if not names]:
        print(f'Split {split!r} has no images in {PARTITION_FILE}; nothing to write for it.')
        del splits[split]
    if not splits:
        raise DataPrepError('None of the requested splits has any image.')
    for split, names in splits.items():
        jobs = [Job(osp.splitext(name)[0], osp.join(image_dir, name), crop_for(name)) for name in names]
        prepare_split(out_root, split, jobs, spec, args.workers, args.save_png, args.overwrite)
    return 0


def cli(argv=None):
    """Entry point of ``datasets_prep/prepare_celeba.py``: errors print ``error: ...`` and exit with 2."""
    return run_cli(main, argv)

"""CelebA -> HR/LR LMDBs for face super-resolution (:func:`prepare_celeba`; ``sfmnet-prepare-celeba`` is its CLI).

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

Splits come from ``Eval/list_eval_partition.txt`` (``splits``) or from lists of image names
(``split_lists``, ``--split-list NAME:FILE``). Each split becomes ``<out>/<split>/{HR,LR_x4,LR_x8,LR_x16}.lmdb``.
"""
import importlib.util
from os import path as osp

import numpy as np

from sfmnet_plugin.faces.detect import FACENET_REQUIREMENT
from sfmnet_plugin.prep.celeba_annotations import PARTITION_SPLITS, read_bboxes, read_landmarks, read_partition
from sfmnet_plugin.prep.face_crop import (
    CentreCrop,
    DetectedBoxCrop,
    SquareCrop,
    square_from_bbox,
    square_from_five_points,
)
from sfmnet_plugin.prep.name_lists import read_name_list
from sfmnet_plugin.prep.split_writer import DataPrepError, Job, SampleSpec, check_split_name, prepare_split

IMAGE_DIRS = {'wild': ('img_celeba', osp.join('Img', 'img_celeba')),
              'aligned': ('img_align_celeba', osp.join('Img', 'img_align_celeba')),
              'mtcnn': ('img_celeba', osp.join('Img', 'img_celeba'))}
LANDMARKS_FILE = osp.join('Anno', 'list_landmarks_celeba.txt')
BBOX_FILE = osp.join('Anno', 'list_bbox_celeba.txt')
PARTITION_FILE = osp.join('Eval', 'list_eval_partition.txt')
DEFAULT_OUT = {'wild': osp.join('datasets', 'CelebA'), 'aligned': osp.join('datasets', 'CelebA_aligned'),
               'mtcnn': osp.join('datasets', 'CelebA_mtcnn')}
OFFICIAL_SPLITS = tuple(PARTITION_SPLITS.values())
DEFAULT_MARGIN = 1.1
DEFAULT_MIN_CROP = 64  # wild and aligned: the preparation scripts' --min-crop-size
# mtcnn: the square on the longer edge of MTCNN's box already frames the face like the wild
# protocol's default (1.07-1.13 x the 68-landmark box on the two public-domain test photos).
DEFAULT_MTCNN_MARGIN = 1.0
# mtcnn: SPARNet kept only faces larger than 128 x 128 (maintainer, §B5.1).
DEFAULT_MTCNN_MIN_CROP = 128


def protocol_defaults(protocol):
    """``(margin, min_crop_size)`` of a protocol: the mtcnn protocol frames and filters faces differently."""
    if protocol == 'mtcnn':
        return DEFAULT_MTCNN_MARGIN, DEFAULT_MTCNN_MIN_CROP
    return DEFAULT_MARGIN, DEFAULT_MIN_CROP


def find_image_dir(root, protocol, override):
    """The folder holding the protocol's images."""
    candidates = [override] if override else [osp.join(root, name) for name in IMAGE_DIRS[protocol]]
    for candidate in candidates:
        if osp.isdir(candidate):
            return candidate
    raise DataPrepError(f'Image folder for the {protocol} protocol not found; looked for {", ".join(candidates)} '
                        '(extract the archive there or pass --images).')


def image_name(entry):
    """The CelebA file name of a list entry: ``000001``, ``000001.jpg`` and ``000001.png`` all mean ``000001.jpg``."""
    return osp.splitext(entry)[0] + '.jpg'


def splits_from_lists(split_lists, known_names):
    """Split name -> sorted image names from ``{split: list file}``; names must be in ``known_names`` if given."""
    splits, owner = {}, {}
    for split, list_file in split_lists.items():
        check_split_name(split)
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


def crop_factory(root, protocol, crop_from, margin, aligned_crop_size):
    """(function image name -> crop, set of annotated names or None) for the chosen protocol."""
    if protocol == 'aligned':
        crop = CentreCrop(aligned_crop_size)
        return (lambda name: crop), None
    if protocol == 'mtcnn':
        points = read_landmarks(osp.join(root, LANDMARKS_FILE))
        return (lambda name: DetectedBoxCrop(tuple(np.mean(points[name], axis=0)), margin)), points
    if crop_from == 'bbox':
        boxes = read_bboxes(osp.join(root, BBOX_FILE))
        return (lambda name: SquareCrop(square_from_bbox(*boxes[name], margin=margin))), boxes
    points = read_landmarks(osp.join(root, LANDMARKS_FILE))
    return (lambda name: SquareCrop(square_from_five_points(points[name], margin))), points


def prepare_celeba(root, out_root=None, protocol='wild', *, image_dir=None, crop_from='landmarks', margin=None,
                   aligned_crop_size=178, splits=OFFICIAL_SPLITS, split_lists=None, spec=None,
                   workers=1, save_png=False, overwrite=False):
    """Prepare CelebA splits under ``out_root`` (default :data:`DEFAULT_OUT` of the protocol).

    ``split_lists`` (``{split: file of image names}``) replaces the official partition's ``splits``;
    ``margin`` and ``spec.min_crop_size`` default to the protocol's (:func:`protocol_defaults`). Bad input
    raises :class:`DataPrepError`; a split that exists is kept unless ``overwrite``.
    """
    default_margin, default_min_crop = protocol_defaults(protocol)
    margin = default_margin if margin is None else margin
    if margin <= 0:
        raise DataPrepError(f'--margin must be positive, got {margin}.')
    spec = spec or SampleSpec(min_crop_size=default_min_crop)
    if protocol == 'mtcnn' and importlib.util.find_spec('facenet_pytorch') is None:
        # Fail now rather than in every worker (the workers build their own detector).
        raise DataPrepError(f'--protocol mtcnn needs {FACENET_REQUIREMENT} (MTCNN, weights inside the wheel): '
                            f'pip install --no-deps {FACENET_REQUIREMENT}')
    out_root = out_root or DEFAULT_OUT[protocol]
    image_dir = find_image_dir(root, protocol, image_dir)
    crop_for, known_names = crop_factory(root, protocol, crop_from, margin, aligned_crop_size)
    if split_lists:
        names_of = splits_from_lists(split_lists, known_names)
    else:
        names_of = official_splits(osp.join(root, PARTITION_FILE), splits, known_names)
    for split in [split for split, names in names_of.items() if not names]:
        print(f'Split {split!r} has no images in {PARTITION_FILE}; nothing to write for it.')
        del names_of[split]
    if not names_of:
        raise DataPrepError('None of the requested splits has any image.')
    for split, names in names_of.items():
        jobs = [Job(osp.splitext(name)[0], osp.join(image_dir, name), crop_for(name)) for name in names]
        prepare_split(out_root, split, jobs, spec, workers, save_png, overwrite)

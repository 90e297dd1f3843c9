"""FFHQ -> HR LMDBs at 512x512 (or any size) for SPARNetHD (:func:`prepare_ffhq`; ``sfmnet-prepare-ffhq`` is its CLI).

FFHQ (NVlabs/ffhq-dataset) ships 70,000 aligned 1024x1024 PNGs, ``images1024x1024/00000/00000.png`` ...
``images1024x1024/69000/69999.png`` (mirrors also store them in one flat folder). SPARNetHD's loader resized each
to 512x512 with PIL's bicubic and made the LR on the fly (``docs/fidelity.md`` §B7), which
is what this preparation stores: ``<out>/<split>/HR.lmdb`` (keys ``00000`` ...), made for
:class:`~sfmnet_plugin.data.degraded_face_dataset.DegradedFaceDataset`. LR scales (``--scales``) add bicubic
LR LMDBs for non-blind SR networks.

Splits follow FFHQ's own metadata: ``train`` = images 00000-59999 ("training" in ``ffhq-dataset-v2.json``),
``val`` = 60000-69999 ("validation"); ``all`` = every image. With the metadata file ``ffhq-dataset-v2.json`` the
categories are read from the file instead of the numbers.

The work runs in parallel worker processes and each split appears atomically (built as ``<split>.partial`` and
renamed when complete); a split that exists is kept, so an interrupted run resumes with the next split
(:mod:`~sfmnet_plugin.prep.split_writer`, shared with the CelebA and Helen scripts).
"""
import json
import os
from os import path as osp

from sfmnet_plugin.data.image_io import list_image_files
from sfmnet_plugin.prep.face_crop import WholeImage
from sfmnet_plugin.prep.split_writer import DataPrepError, Job, SampleSpec, prepare_split

IMAGE_FOLDER = 'images1024x1024'
FFHQ_TRAINING_IMAGES = 60000  # images 00000-59999 are "training", 60000-69999 "validation" (ffhq-dataset-v2.json)
METADATA_CATEGORIES = {'training': 'train', 'validation': 'val'}
SPLITS = ('train', 'val', 'all')
DEFAULT_SIZE = 512  # SPARNetHD's training size
DEFAULT_OUT = osp.join('datasets', 'FFHQ')
# never an upscaled "HR" face: images smaller than the HR size are skipped
DEFAULT_SPEC = SampleSpec(hr_size=DEFAULT_SIZE, scales=(), min_crop_size=DEFAULT_SIZE)


def find_images(root):
    """Image stem -> path of every image in the FFHQ folder (its numbered sub-folders or a flat folder)."""
    folder = osp.join(root, IMAGE_FOLDER) if osp.isdir(osp.join(root, IMAGE_FOLDER)) else root
    if not osp.isdir(folder):
        raise DataPrepError(f'FFHQ folder not found: {root}')
    folders = [folder] + sorted(osp.join(folder, name) for name in os.listdir(folder)
                                if osp.isdir(osp.join(folder, name)))
    images = {}
    for current in folders:
        for stem, path in list_image_files(current).items():
            if stem in images:
                raise DataPrepError(f'{images[stem]} and {path} have the same name; FFHQ names are unique.')
            images[stem] = path
    if not images:
        raise DataPrepError(f'{folder}: no images found (expected {IMAGE_FOLDER}/00000/00000.png ...).')
    return images


def split_by_number(stem):
    """FFHQ's split of an image name: 'train' below 60000, else 'val'."""
    if not stem.isdigit():
        raise DataPrepError(f'{stem}: not an FFHQ image number; use --splits all for a folder of other faces.')
    return 'train' if int(stem) < FFHQ_TRAINING_IMAGES else 'val'


def read_metadata_splits(path):
    """Image stem -> split from ``ffhq-dataset-v2.json`` (``{"0": {"category": "training", ...}, ...}``)."""
    try:
        with open(path, encoding='utf-8') as f:
            metadata = json.load(f)
    except FileNotFoundError as error:
        raise DataPrepError(f'--metadata file not found: {path}') from error
    except json.JSONDecodeError as error:
        raise DataPrepError(f'{path}: not valid JSON ({error}).') from error
    splits = {}
    for index, entry in metadata.items():
        category = entry.get('category') if isinstance(entry, dict) else None
        if category not in METADATA_CATEGORIES or not str(index).isdigit():
            raise DataPrepError(f'{path}: entry {index!r} has no training/validation category.')
        splits[f'{int(index):05d}'] = METADATA_CATEGORIES[category]
    return splits


def assign_splits(images, wanted, metadata_path=None):
    """Split name -> sorted image stems, for the ``wanted`` splits."""
    if 'all' in wanted and len(wanted) > 1:
        raise DataPrepError('--splits all already holds every image; do not combine it with train or val.')
    if wanted == ['all']:
        return {'all': sorted(images)}
    categories = read_metadata_splits(metadata_path) if metadata_path else None
    splits = {split: [] for split in wanted}
    for stem in sorted(images):
        if categories is not None:
            if stem not in categories:
                raise DataPrepError(f'{images[stem]}: image {stem} is not in {metadata_path}.')
            split = categories[stem]
        else:
            split = split_by_number(stem)
        if split in splits:
            splits[split].append(stem)
    return splits


def prepare_ffhq(root, out_root=DEFAULT_OUT, splits=('train', 'val'), metadata_path=None, *, spec=DEFAULT_SPEC,
                 workers=1, save_png=False, overwrite=False):
    """Prepare the requested FFHQ splits (see the module) under ``out_root``; bad input raises DataPrepError."""
    images = find_images(root)
    for split, stems in assign_splits(images, list(splits), metadata_path).items():
        if not stems:
            print(f'Split {split!r} has no images in {root}; nothing to write for it.')
            continue
        jobs = [Job(stem, images[stem], WholeImage(square=True)) for stem in stems]
        prepare_split(out_root, split, jobs, spec, workers, save_png, overwrite)

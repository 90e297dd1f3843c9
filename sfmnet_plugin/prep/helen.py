"""Helen -> HR/LR LMDBs (:func:`prepare_helen`, :func:`prepare_aligned_helen`; ``sfmnet-prepare-helen`` is the CLI).

From the photos: Helen's annotation folder holds one file per image, line 1 the image name
without extension, then 194 lines ``x , y`` (floats). The face square is the bounding box of the
194 points made square (its longer edge x ``margin``), PIL bicubic to the HR size. Names in
the test list form the ``test`` split, the rest ``train``.

:func:`prepare_aligned_helen` takes a folder of already aligned square crops (such as the released
50-image Helen test set): they are only validated, resized to the HR size where needed and
written as one split.
"""
from os import path as osp

from basicsr.utils import scandir

from sfmnet_plugin.data.image_io import list_image_files
from sfmnet_plugin.prep.face_crop import SquareCrop, WholeImage, square_around_points
from sfmnet_plugin.prep.name_lists import read_name_list, read_text_lines
from sfmnet_plugin.prep.split_writer import DataPrepError, Job, SampleSpec, check_split_name, prepare_split

HELEN_POINTS = 194
DEFAULT_MARGIN = 1.1
DEFAULT_OUT = osp.join('datasets', 'Helen')
DEFAULT_SPEC = SampleSpec(min_crop_size=64)  # the preparation scripts' defaults


def read_helen_annotation(path):
    """(image name, [(x, y)] x 194) from one Helen annotation file; errors name the file and line."""
    lines = read_text_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        raise DataPrepError(f'{path}, line 1: expected the image name.')
    points = []
    for line_no, line in enumerate(lines[1:], start=2):
        parts = line.split(',')
        try:
            if len(parts) != 2:
                raise ValueError
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise DataPrepError(f'{path}, line {line_no}: expected "x , y" (two numbers), got {line!r}.') from None
    if len(points) != HELEN_POINTS:
        raise DataPrepError(f'{path}, line {len(lines) + 1}: expected {HELEN_POINTS} landmark lines after the name, '
                            f'found {len(points)}.')
    return lines[0].strip(), points


def find_photos(image_dirs):
    """Image stem -> path of every *.jpg under the folders (searched recursively)."""
    photos = {}
    for folder in image_dirs:
        if not osp.isdir(folder):
            raise DataPrepError(f'--images {folder}: folder not found.')
        for path in sorted(scandir(folder, suffix=('.jpg', '.JPG'), recursive=True, full_path=True)):
            stem = osp.splitext(osp.basename(path))[0]
            if stem in photos:
                raise DataPrepError(f'Two photos named {stem}: {photos[stem]} and {path}.')
            photos[stem] = path
    return photos


def landmark_jobs(image_dirs, annotation_dir, test_list=None, margin=DEFAULT_MARGIN):
    """Split name -> jobs for the photo + annotation mode."""
    if not image_dirs or not annotation_dir:
        raise DataPrepError('--images and --annotations are required (or use --from-aligned DIR).')
    if not osp.isdir(annotation_dir):
        raise DataPrepError(f'--annotations {annotation_dir}: folder not found.')
    photos = find_photos(image_dirs)
    annotations = {}
    for file_name in sorted(scandir(annotation_dir, suffix='.txt')):
        file_path = osp.join(annotation_dir, file_name)
        name, points = read_helen_annotation(file_path)
        if name in annotations:
            raise DataPrepError(f'{file_path}: image {name} is also annotated in {annotations[name][0]}.')
        annotations[name] = (file_path, points)
    if not annotations:
        raise DataPrepError(f'--annotations {annotation_dir}: no *.txt annotation files.')
    test_names = set()
    if test_list:
        for entry, line_no in read_name_list(test_list).items():
            name = osp.splitext(entry)[0]
            if name not in annotations:
                raise DataPrepError(f'{test_list}, line {line_no}: {entry} has no annotation file.')
            test_names.add(name)
    splits = {'train': [], 'test': []}
    for name, (_, points) in sorted(annotations.items()):
        # A missing photo becomes a job on its expected path, reported as unreadable with the others.
        path = photos.get(name, osp.join(image_dirs[0], f'{name}.jpg'))
        crop = SquareCrop(square_around_points(points, margin))
        splits['test' if name in test_names else 'train'].append(Job(name, path, crop))
    return {split: jobs for split, jobs in splits.items() if jobs}


def aligned_jobs(folder, split_name):
    """Split name -> jobs for aligned crops: every image of the folder, whole and square."""
    images = list_image_files(folder)
    if not images:
        raise DataPrepError(f'--from-aligned {folder}: no images found.')
    return {split_name: [Job(stem, path, WholeImage(square=True)) for stem, path in images.items()]}


def prepare_helen(image_dirs, annotation_dir, test_list=None, out_root=DEFAULT_OUT, *, margin=DEFAULT_MARGIN,
                  spec=DEFAULT_SPEC, workers=1, save_png=False, overwrite=False):
    """Crop the annotated Helen photos (found under ``image_dirs``) into ``out_root``'s train and test splits."""
    if margin <= 0:
        raise DataPrepError(f'--margin must be positive, got {margin}.')
    _prepare(landmark_jobs(image_dirs, annotation_dir, test_list, margin), out_root, spec, workers, save_png,
             overwrite)


def prepare_aligned_helen(folder, split_name='test', out_root=DEFAULT_OUT, *, spec=DEFAULT_SPEC,
                          workers=1, save_png=False, overwrite=False):
    """Write a folder of aligned square face crops as split ``split_name`` of ``out_root``."""
    check_split_name(split_name)
    _prepare(aligned_jobs(folder, split_name), out_root, spec, workers, save_png, overwrite)


def _prepare(splits, out_root, spec, workers, save_png, overwrite):
    for split, jobs in splits.items():
        prepare_split(out_root, split, jobs, spec, workers, save_png, overwrite)

"""Helen -> HR/LR LMDBs (the logic of ``datasets_prep/prepare_helen.py``).

From the photos: Helen's annotation folder holds one file per image, line 1 the image name
without extension, then 194 lines ``x , y`` (floats). The face square is the bounding box of the
194 points made square (its longer edge x ``--margin``), PIL bicubic to the HR size. Names in
``--test-list`` form the ``test`` split, the rest ``train``.

With ``--from-aligned DIR``, a folder of already aligned square crops (such as the released
50-image Helen test set) is only validated, resized to the HR size where needed and written as
split ``--split-name``.
"""
import argparse
from os import path as osp

from basicsr.utils import scandir

from sfmnet_plugin.data.image_io import list_image_files
from sfmnet_plugin.prep.cli import add_output_arguments, read_name_list, read_text_lines, run_cli, spec_from_args
from sfmnet_plugin.prep.face_crop import SquareCrop, WholeImage, square_around_points
from sfmnet_plugin.prep.pipeline import DataPrepError, Job, check_split_name, prepare_split

HELEN_POINTS = 194
DEFAULT_MARGIN = 1.1


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
    add_output_arguments(parser, default_out=osp.join('datasets', 'Helen'))
    return parser


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


def landmark_jobs(args):
    """Split name -> jobs for the photo + annotation mode."""
    if not args.images or not args.annotations:
        raise DataPrepError('--images and --annotations are required (or use --from-aligned DIR).')
    if not osp.isdir(args.annotations):
        raise DataPrepError(f'--annotations {args.annotations}: folder not found.')
    photos = find_photos(args.images)
    annotations = {}
    for file_name in sorted(scandir(args.annotations, suffix='.txt')):
        file_path = osp.join(args.annotations, file_name)
        name, points = read_helen_annotation(file_path)
        if name in annotations:
            raise DataPrepError(f'{file_path}: image {name} is also annotated in {annotations[name][0]}.')
        annotations[name] = (file_path, points)
    if not annotations:
        raise DataPrepError(f'--annotations {args.annotations}: no *.txt annotation files.')
    test_names = set()
    if args.test_list:
        for entry, line_no in read_name_list(args.test_list).items():
            name = osp.splitext(entry)[0]
            if name not in annotations:
                raise DataPrepError(f'{args.test_list}, line {line_no}: {entry} has no annotation file.')
            test_names.add(name)
    splits = {'train': [], 'test': []}
    for name, (_, points) in sorted(annotations.items()):
        # A missing photo becomes a job on its expected path, reported as unreadable with the others.
        path = photos.get(name, osp.join(args.images[0], f'{name}.jpg'))
        crop = SquareCrop(square_around_points(points, args.margin))
        splits['test' if name in test_names else 'train'].append(Job(name, path, crop))
    return {split: jobs for split, jobs in splits.items() if jobs}


def aligned_jobs(args):
    """Split name -> jobs for ``--from-aligned``: every image of the folder, whole and square."""
    images = list_image_files(args.from_aligned)
    if not images:
        raise DataPrepError(f'--from-aligned {args.from_aligned}: no images found.')
    return {args.split_name: [Job(stem, path, WholeImage(square=True)) for stem, path in images.items()]}


def main(argv=None):
    """Prepare the Helen splits; returns the exit code (bad input raises DataPrepError)."""
    args = build_parser().parse_args(argv)
    if args.margin <= 0:
        raise DataPrepError(f'--margin must be positive, got {args.margin}.')
    check_split_name(args.split_name)
    spec = spec_from_args(args)
    splits = aligned_jobs(args) if args.from_aligned else landmark_jobs(args)
    for split, jobs in splits.items():
        prepare_split(args.out, split, jobs, spec, args.workers, args.save_png, args.overwrite)
    return 0


def cli(argv=None):
    """Entry point of ``datasets_prep/prepare_helen.py``: errors print ``error: ...`` and exit with 2."""
    return run_cli(main, argv)

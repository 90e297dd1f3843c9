"""``check_images_at_start``: decode every image of a dataset before training draws the first batch.

A corrupt image inside a training LMDB otherwise crashes the run when it is first drawn, possibly
hours in. The check is the verifier's fast path (:func:`sfmnet_plugin.data.lmdb_reader.check_lmdb`:
every stored PNG is decoded and compared with its ``meta_info.txt`` shape, in worker processes);
folders get every file decoded with the plugin's decoder. It is opt-in because it reads the whole
dataset once (its cost: docs/safety.md).
"""
from sfmnet_plugin.data.image_io import ImageDecodeError, read_rgb_image
from sfmnet_plugin.data.lmdb_reader import check_lmdb
from sfmnet_plugin.utils.parallel import parallel_imap

_SHOWN = 5


class DatasetImageError(ValueError):
    """Images of a dataset that do not decode; the message names the dataset and the first bad images."""


def _decode_problem(path):
    try:
        read_rgb_image(path)
    except (OSError, ImageDecodeError) as error:
        return f'{path}: {error}'
    return None


def image_problems(root, backend, paths=(), workers=1):
    """Problems of every image of one dataset root: an LMDB (``backend == 'lmdb'``) or the files ``paths``."""
    if backend == 'lmdb':
        return check_lmdb(root, workers)
    return [problem for problem in parallel_imap(_decode_problem, list(paths), workers) if problem]


def check_images_at_start(name, roots, workers=1):
    """Raise :class:`DatasetImageError` if any image of ``roots`` (``[(root, backend, paths)]``) does not decode."""
    problems = [problem for root, backend, paths in roots for problem in image_problems(root, backend, paths, workers)]
    if problems:
        more = len(problems) - _SHOWN
        shown = '; '.join(problems[:_SHOWN]) + (f'; and {more} more' if more > 0 else '')
        raise DatasetImageError(f'dataset {name}: check_images_at_start found {len(problems)} problem(s): {shown}. '
                                'Rebuild or repair the data (datasets_prep/verify_lmdb.py lists them all).')

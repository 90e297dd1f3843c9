"""Readers for the annotation files of the official CelebA release, with errors naming file and line.

* ``Anno/list_landmarks_celeba.txt`` (in-the-wild) and ``Anno/list_landmarks_align_celeba.txt``:
  line 1 the number of images, line 2 the header ``lefteye_x lefteye_y righteye_x righteye_y
  nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y``, then rows
  ``000001.jpg 69 109 106 113 77 142 73 152 108 154``.
* ``Anno/list_bbox_celeba.txt``: count, header ``image_id x_1 y_1 width height``, rows
  ``000001.jpg    95  71 226 313``.
* ``Eval/list_eval_partition.txt``: rows ``000001.jpg 0`` (0 train, 1 val, 2 test), no header.
"""
from sfmnet_plugin.prep.name_lists import read_text_lines
from sfmnet_plugin.prep.split_writer import DataPrepError

LANDMARK_HEADER = ('lefteye_x', 'lefteye_y', 'righteye_x', 'righteye_y', 'nose_x', 'nose_y',
                   'leftmouth_x', 'leftmouth_y', 'rightmouth_x', 'rightmouth_y')
BBOX_HEADER = ('image_id', 'x_1', 'y_1', 'width', 'height')
PARTITION_SPLITS = {0: 'train', 1: 'val', 2: 'test'}


def _parse_int_row(path, line_no, line, n_values):
    tokens = line.split()
    if len(tokens) != n_values + 1:
        raise DataPrepError(f'{path}, line {line_no}: expected an image name and {n_values} integers, got {line!r}.')
    try:
        return tokens[0], tuple(int(token) for token in tokens[1:])
    except ValueError:
        raise DataPrepError(f'{path}, line {line_no}: expected {n_values} integers after the image name, '
                            f'got {line!r}.') from None


def read_counted_table(path, header):
    """Rows of a CelebA table with a count line and a header line: image name -> tuple of ints.

    ``header`` lists the expected header tokens; a table whose header starts with ``image_id``
    (the bbox file) has one value fewer than header tokens.
    """
    lines = read_text_lines(path)
    if len(lines) < 2:
        raise DataPrepError(f'{path}, line {len(lines) + 1}: the file ends before the count and header lines.')
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DataPrepError(f'{path}, line 1: expected the number of images, got {lines[0]!r}.') from None
    if tuple(lines[1].split()) != header:
        raise DataPrepError(f'{path}, line 2: expected the header {" ".join(header)!r}, got {lines[1]!r}.')
    n_values = len(header) - (header[0] == 'image_id')
    rows = {}
    for line_no, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        name, values = _parse_int_row(path, line_no, line, n_values)
        if name in rows:
            raise DataPrepError(f'{path}, line {line_no}: {name} appears twice.')
        rows[name] = values
    if len(rows) != count:
        raise DataPrepError(f'{path}, line 1: says {count} images but the file has {len(rows)} rows '
                            '(truncated download or edited file?).')
    return rows


def read_landmarks(path):
    """Image name -> ((x, y) x 5): left eye, right eye, nose, left mouth corner, right mouth corner."""
    table = read_counted_table(path, LANDMARK_HEADER)
    return {name: tuple(zip(values[0::2], values[1::2])) for name, values in table.items()}


def read_bboxes(path):
    """Image name -> (x_1, y_1, width, height) of the face box; a non-positive size is an error."""
    boxes = read_counted_table(path, BBOX_HEADER)
    for name, (_, _, width, height) in boxes.items():
        if width <= 0 or height <= 0:
            raise DataPrepError(f'{path}: {name} has a face box of size {width}x{height}.')
    return boxes


def read_partition(path):
    """Image name -> split name ('train', 'val', 'test') from ``list_eval_partition.txt``."""
    splits = {}
    for line_no, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        name, (split_id,) = _parse_int_row(path, line_no, line, 1)
        if split_id not in PARTITION_SPLITS:
            raise DataPrepError(f'{path}, line {line_no}: split {split_id} is not 0 (train), 1 (val) or 2 (test).')
        if name in splits:
            raise DataPrepError(f'{path}, line {line_no}: {name} appears twice.')
        splits[name] = PARTITION_SPLITS[split_id]
    return splits

"""LMDBs in BasicSR's layout: PNG bytes under ASCII keys plus a ``meta_info.txt`` of shapes.

``meta_info.txt`` has one line per image, ``<key>.png (<h>,<w>,<c>) <png compress level>``
(for example ``000001.png (128,128,3) 1``); BasicSR takes the text before the first ``.`` as
the key. Reading only: training data, the benchmark and the verifier read through here; writing
is offline preparation (:mod:`sfmnet_plugin.prep.lmdb_writer`).

:func:`check_lmdb` is the fast integrity check (every stored PNG decoded and compared with its
``meta_info.txt`` shape, in worker processes) shared by ``verify_lmdb.py`` and a dataset's
``check_images_at_start``.
"""
import io
import re
from os import path as osp

from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.utils.lmdb_env import damaged_lmdb, open_shared_lmdb
from sfmnet_plugin.utils.parallel import parallel_imap

META_INFO_NAME = 'meta_info.txt'
_CHUNK = 256
_SHOWN = 5
_META_LINE = re.compile(r'^(?P<key>[^.\s]+)\.png \((?P<h>\d+),(?P<w>\d+),(?P<c>\d+)\) (?P<level>\d+)$')


def read_meta_info(lmdb_path):
    """Map key -> (h, w, c) from an LMDB's ``meta_info.txt``, in file order.

    A missing file, a malformed line or a repeated key raises an error naming the file and line.
    """
    meta_path = osp.join(lmdb_path, META_INFO_NAME)
    if not osp.isfile(meta_path):
        raise FileNotFoundError(f'{meta_path!r} not found: {lmdb_path!r} is not a complete BasicSR LMDB '
                                '(the preparation scripts write meta_info.txt last).')
    shapes = {}
    with open(meta_path, encoding='ascii', errors='replace') as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            match = _META_LINE.match(line)
            if match is None:
                raise ValueError(f'{meta_path}, line {line_no}: expected "<key>.png (<h>,<w>,<c>) <compress_level>", '
                                 f'got {line!r}.')
            key = match['key']
            if key in shapes:
                raise ValueError(f'{meta_path}, line {line_no}: key {key!r} is listed twice.')
            shapes[key] = (int(match['h']), int(match['w']), int(match['c']))
    return shapes


def read_lmdb_keys(lmdb_path):
    """Every key actually stored in an LMDB (decoded as ASCII), without reading the values."""
    import lmdb

    env = open_shared_lmdb(lmdb_path)
    try:
        with env.begin(write=False) as txn:
            return [key.decode('ascii', errors='replace') for key in txn.cursor().iternext(keys=True, values=False)]
    except lmdb.Error as error:
        raise damaged_lmdb(lmdb_path, error) from error


def meta_info_problems(lmdb_path):
    """How ``meta_info.txt`` disagrees with what the LMDB stores: listed keys that are not stored, and the stored
    size of the first listed image against its listed size. Cheap enough for a run's pre-flight (the keys are read
    without their values, one image is decoded); :func:`check_lmdb` decodes every image."""
    shapes = read_meta_info(lmdb_path)
    stored = set(read_lmdb_keys(lmdb_path))
    missing = [key for key in shapes if key not in stored]
    problems = [f'{len(missing)} of the {len(shapes)} keys in {META_INFO_NAME} are not stored ({examples(missing)})'
                ] if missing else []
    first = next((key for key in shapes if key in stored), None)
    if first is not None:
        import lmdb

        try:
            with open_shared_lmdb(lmdb_path).begin(write=False) as txn:
                content = txn.get(first.encode('ascii'))
        except lmdb.Error as error:
            raise damaged_lmdb(lmdb_path, error) from error
        try:
            shape, _ = stored_shape(content)
        except OSError as error:
            problems.append(f'image {first} does not decode ({error})')
        else:
            if shape != shapes[first]:
                problems.append(f'image {first} is stored as {shape[1]}x{shape[0]}x{shape[2]} but {META_INFO_NAME} '
                                f'lists {shapes[first][1]}x{shapes[first][0]}x{shapes[first][2]}')
    return problems


def examples(names):
    """The first few of ``names``, sorted, and how many more: for one-line problem reports."""
    names = sorted(names)
    return ', '.join(names[:_SHOWN]) + (f' and {len(names) - _SHOWN} more' if len(names) > _SHOWN else '')


def stored_shape(content):
    """(h, w, channels) and format of encoded image bytes; raises OSError if they do not decode."""
    with Image.open(io.BytesIO(content)) as img:
        img.load()
        return (img.height, img.width, len(img.getbands())), img.format


def _check_chunk(task):
    import lmdb

    lmdb_path, entries = task
    problems = []
    with open_shared_lmdb(lmdb_path).begin(write=False) as txn:
        for key, expected in entries:
            try:
                shape, image_format = stored_shape(txn.get(key.encode('ascii')))
            except lmdb.Error as err:
                problems.append(f'{key}: does not read ({err})')
                continue
            except (OSError, SyntaxError, Image.DecompressionBombError) as err:
                problems.append(f'{key}: cannot decode ({err})')
                continue
            if image_format != 'PNG':
                problems.append(f'{key}: stored as {image_format}, meta_info.txt promises PNG')
            if shape != expected:
                problems.append(f'{key}: stored image is {shape} (h,w,c) but meta_info.txt says {expected}')
    return problems


def check_lmdb(lmdb_path, workers=1):
    """Problems of one LMDB against its ``meta_info.txt`` (an empty list when it is sound)."""
    if not osp.isfile(osp.join(lmdb_path, 'data.mdb')):
        return [f'{lmdb_path} has no data.mdb']
    try:
        meta = read_meta_info(lmdb_path)
        stored = set(read_lmdb_keys(lmdb_path))
    except (FileNotFoundError, ValueError) as err:  # DamagedLmdbError included
        return [str(err)]
    problems = []
    missing = [key for key in meta if key not in stored]
    if missing:
        problems.append(f'{len(missing)} keys in meta_info.txt are not stored: {examples(missing)}')
    extra = stored.difference(meta)
    if extra:
        problems.append(f'{len(extra)} stored keys are not in meta_info.txt: {examples(extra)}')
    entries = [(key, shape) for key, shape in meta.items() if key in stored]
    chunks = [(lmdb_path, entries[start:start + _CHUNK]) for start in range(0, len(entries), _CHUNK)]
    with tqdm(total=len(entries), desc=osp.basename(lmdb_path), unit='img', dynamic_ncols=True) as progress:
        for chunk, chunk_problems in zip(chunks, parallel_imap(_check_chunk, chunks, workers, chunksize=1)):
            problems.extend(chunk_problems)
            progress.update(len(chunk[1]))
    return problems
